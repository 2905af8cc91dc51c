/*
 * test_pcd.c - the PCD reader: ascii, binary and binary_compressed data
 * (compressed test data made here with liblzf's own lzf_compress), field
 * types and sizes, packed colours, normals, skipped fields, NaN points,
 * organised clouds, header errors naming the line, size checks before
 * allocation, truncation and out-of-memory sweeps, fuzz fixtures, and the
 * real PCL test files when REFSCAN_SHARED_DATA is present.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liblzf/lzf.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/mapfile.h"
#include "formats/formats.h"

/* ------------------------------------------------------------ helpers */

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct buf *b, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(tmp));
	put(b, tmp, (size_t)n);
}

static void put_f32(struct buf *b, float v)
{
	put(b, &v, 4); /* the test host is little-endian like every PCD writer */
}

static void put_u32(struct buf *b, uint32_t v)
{
	put(b, &v, 4);
}

static int read_pcd(const struct buf *b, struct scan *s, struct err *e)
{
	err_init(e);
	return scan_read_buffer(b->p, b->len, "t.pcd", NULL, s, e);
}

static void expect_error(const struct buf *b, int code, long line, const char *needle)
{
	struct scan s;
	struct err e;
	int rc = read_pcd(b, &s, &e);
	if (rc != code || (line && e.line != line) || !strstr(e.msg, needle))
		fail_msg("got rc %d line %ld '%s', want rc %d line %ld '%s'",
			 rc, e.line, e.msg, code, line, needle);
	assert_int_equal(s.n_vertices, 0);
	assert_null(s.positions);
}

static const char *warning_with(const struct scan *s, const char *needle)
{
	for (size_t i = 0; i < s->n_warnings; i++)
		if (strstr(s->warnings[i], needle))
			return s->warnings[i];
	return NULL;
}

static void header(struct buf *b, const char *fields, const char *size,
		   const char *type, const char *count, unsigned w, unsigned h,
		   const char *data)
{
	putf(b, "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
		"FIELDS %s\nSIZE %s\nTYPE %s\nCOUNT %s\nWIDTH %u\nHEIGHT %u\n"
		"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS %u\nDATA %s\n",
	     fields, size, type, count, w, h, w * h, data);
}

/* ------------------------------------------------------------- ascii */

static void test_pcd_ascii_reads_positions_normals_and_colours(void **state)
{
	(void)state;
	struct buf b = { 0 };
	header(&b, "x y z normal_x normal_y normal_z rgb curvature",
	       "4 4 4 4 4 4 4 4", "F F F F F F F F", "1 1 1 1 1 1 1 1", 3, 1, "ascii");
	/* PCL >= 1.8 prints a float rgb as its uint32 bits */
	putf(&b, "1.5 -2 3e-1 0 0 1 %u 0.01\n", 0x00FF8040u);
	putf(&b, "4 5 6 1 0 0 %u 0.02\n", 0x00000000u);
	putf(&b, "-7 8.25 -9 0 -1 0 %u 0\n", 0xFF0A141Eu);
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_string_equal(s.format, "pcd");
	assert_string_equal(s.encoding, "ascii");
	assert_int_equal(s.n_vertices, 3);
	assert_int_equal(s.n_faces, 0);
	assert_float_equal(s.positions[0], 1.5f, 0);
	assert_float_equal(s.positions[2], 0.3f, 1e-7);
	assert_float_equal(s.positions[7], 8.25f, 0);
	assert_non_null(s.normals);
	assert_float_equal(s.normals[2], 1.0f, 0);
	assert_float_equal(s.normals[7], -1.0f, 0);
	assert_non_null(s.colors);
	const uint8_t want[12] = { 255, 128, 64, 255, 0, 0, 0, 255, 10, 20, 30, 255 };
	assert_memory_equal(s.colors, want, 12);
	assert_float_equal(s.bbox_min[0], -7.0f, 0);
	assert_float_equal(s.bbox_max[2], 6.0f, 0);
	assert_string_equal(scan_meta_get(&s, "viewpoint"), "0 0 0 1 0 0 0");
	assert_string_equal(scan_meta_get(&s, "pcd_version"), "0.7");
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);
	free(b.p);
}

static void test_pcd_ascii_float_printed_rgb_is_unpacked(void **state)
{
	(void)state;
	/* before PCL 1.8 a float rgb was printed as the float itself */
	uint32_t bits = 0x00FF8040u;
	float f;
	memcpy(&f, &bits, 4);
	struct buf b = { 0 };
	header(&b, "x y z rgb", "4 4 4 4", "F F F F", "1 1 1 1", 1, 1, "ascii");
	putf(&b, "0 0 0 %.9g\n", (double)f);
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_int_equal(s.colors[0], 255);
	assert_int_equal(s.colors[1], 128);
	assert_int_equal(s.colors[2], 64);
	scan_release(&s);
	free(b.p);
}

static void test_pcd_ascii_skips_extra_fields_with_counts(void **state)
{
	(void)state;
	struct buf b = { 0 };
	header(&b, "hist x intensity y z", "4 4 2 8 4", "F F U F I", "3 1 1 1 1", 2, 1, "ascii");
	putf(&b, "0.1 0.2 0.3 10 65535 20.5 -3\n");
	putf(&b, "1 2 3 11 0 21.5 -4\n");
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_int_equal(s.n_vertices, 2);
	const float want[6] = { 10, 20.5f, -3, 11, 21.5f, -4 };
	assert_memory_equal(s.positions, want, sizeof(want));
	assert_null(s.normals);
	assert_null(s.colors);
	scan_release(&s);
	free(b.p);
}

static void test_pcd_nan_points_are_kept_and_counted(void **state)
{
	(void)state;
	struct buf b = { 0 };
	header(&b, "x y z", "4 4 4", "F F F", "1 1 1", 2, 2, "ascii");
	putf(&b, "nan nan nan\n1 2 3\nNaN 0 0\n-1 -2 -3\n");
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_int_equal(s.n_vertices, 4);
	assert_int_equal(s.n_nonfinite, 2);
	assert_true(isnan(s.positions[0]));
	assert_float_equal(s.bbox_min[0], -1, 0);
	assert_float_equal(s.bbox_max[2], 3, 0);
	assert_non_null(warning_with(&s, "2 vertices have non-finite"));
	assert_string_equal(scan_meta_get(&s, "organized"), "2x2");
	scan_release(&s);
	free(b.p);
}

static void test_pcd_crlf_comments_and_no_points_line(void **state)
{
	(void)state;
	struct buf b = { 0 };
	putf(&b, "# made on windows\r\nVERSION .7\r\nFIELDS x y z\r\n# sizes\r\n"
		 "SIZE 4 4 4\r\nTYPE F F F\r\nCOUNT 1 1 1\r\nWIDTH 3\r\nHEIGHT 2\r\n"
		 "DATA ascii\r\n1 1 1\r\n2 2 2\r\n\r\n3 3 3\r\n4 4 4\r\n5 5 5\r\n6 6 6\r\n");
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_int_equal(s.n_vertices, 6);
	assert_float_equal(s.positions[17], 6, 0);
	scan_release(&s);
	free(b.p);
}

static void test_pcd_v05_without_type_and_count_reads_floats(void **state)
{
	(void)state;
	struct buf b = { 0 };
	putf(&b, "VERSION .5\nCOLUMNS x y z\nSIZE 4 4 4\nPOINTS 2\nDATA ascii\n"
		 "1 2 3\n4 5 6\n");
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_int_equal(s.n_vertices, 2);
	assert_float_equal(s.positions[5], 6, 0);
	scan_release(&s);
	free(b.p);
}

static void test_pcd_ascii_extra_lines_are_a_warning(void **state)
{
	(void)state;
	struct buf b = { 0 };
	header(&b, "x y z", "4 4 4", "F F F", "1 1 1", 1, 1, "ascii");
	putf(&b, "1 2 3\n4 5 6\n\n");
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_int_equal(s.n_vertices, 1);
	assert_non_null(warning_with(&s, "1 lines after the last of 1 points"));
	scan_release(&s);
	free(b.p);
}

static void test_pcd_partial_normals_are_ignored_with_a_warning(void **state)
{
	(void)state;
	struct buf b = { 0 };
	header(&b, "x y z normal_x normal_y", "4 4 4 4 4", "F F F F F", "1 1 1 1 1", 1, 1,
	       "ascii");
	putf(&b, "1 2 3 0 1\n");
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_null(s.normals);
	assert_non_null(warning_with(&s, "only 2 of normal_x"));
	scan_release(&s);
	free(b.p);
}

/* ------------------------------------------------------------ binary */

/*
 * Four points of x (I2) _ (U1 x3 padding) y (F4) z (F8) intensity (F4)
 * rgba (U4) normal_x/y/z (F4): 2+3+4+8+4+4+12 = 37 bytes a record.
 */
#define B_FIELDS "x _ y z intensity rgba normal_x normal_y normal_z"
#define B_SIZE "2 1 4 8 4 4 4 4 4"
#define B_TYPE "I U F F F U F F F"
#define B_COUNT "1 3 1 1 1 1 1 1 1"
#define B_RECORD 37
#define B_POINTS 4

static const int16_t bx[B_POINTS] = { -5, 0, 300, 32767 };
static const float by[B_POINTS] = { 0.5f, -1.25f, 1e6f, 0 };
static const double bz[B_POINTS] = { 1.0 / 3, -2, 7.5, 1e-3 };
static const uint32_t bc[B_POINTS] = { 0x80112233u, 0xFF000000u, 0x00FFFFFFu, 0x01020304u };

static void put_binary_points(struct buf *b)
{
	for (int i = 0; i < B_POINTS; i++) {
		put(b, &bx[i], 2);
		put(b, "\xAA\xBB\xCC", 3);
		put_f32(b, by[i]);
		put(b, &bz[i], 8);
		put_f32(b, 99.0f);
		put_u32(b, bc[i]);
		put_f32(b, 0);
		put_f32(b, 0);
		put_f32(b, (float)i);
	}
}

static void check_binary_points(const struct scan *s)
{
	assert_int_equal(s->n_vertices, B_POINTS);
	for (int i = 0; i < B_POINTS; i++) {
		assert_float_equal(s->positions[3 * i], (float)bx[i], 0);
		assert_float_equal(s->positions[3 * i + 1], by[i], 0);
		assert_float_equal(s->positions[3 * i + 2], (float)bz[i], 0);
		assert_int_equal(s->colors[4 * i], (bc[i] >> 16) & 255);
		assert_int_equal(s->colors[4 * i + 1], (bc[i] >> 8) & 255);
		assert_int_equal(s->colors[4 * i + 2], bc[i] & 255);
		assert_int_equal(s->colors[4 * i + 3], bc[i] >> 24);
		assert_float_equal(s->normals[3 * i + 2], (float)i, 0);
	}
}

static struct buf binary_file(void)
{
	struct buf b = { 0 };
	header(&b, B_FIELDS, B_SIZE, B_TYPE, B_COUNT, B_POINTS, 1, "binary");
	put_binary_points(&b);
	return b;
}

static void test_pcd_binary_reads_records_of_mixed_types(void **state)
{
	(void)state;
	struct buf b = binary_file();
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_string_equal(s.encoding, "binary");
	check_binary_points(&s);
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);
	free(b.p);
}

static void test_pcd_binary_double_xyz_and_float_rgb(void **state)
{
	(void)state;
	struct buf b = { 0 };
	header(&b, "x y z rgb", "8 8 8 4", "F F F F", "1 1 1 1", 2, 1, "binary");
	const double v[6] = { 1e-9, 123456.789, -0.5, 2, 3, 4 };
	uint32_t c[2] = { 0x000A0B0Cu, 0xFF102030u }; /* the second is a NaN float */
	put(&b, &v[0], 24);
	put(&b, &c[0], 4);
	put(&b, &v[3], 24);
	put(&b, &c[1], 4);
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_float_equal(s.positions[0], (float)1e-9, 0);
	assert_float_equal(s.positions[1], (float)123456.789, 0);
	assert_float_equal(s.positions[5], 4, 0);
	const uint8_t want[8] = { 10, 11, 12, 255, 0x10, 0x20, 0x30, 255 };
	assert_memory_equal(s.colors, want, 8);
	scan_release(&s);
	free(b.p);
}

static void test_pcd_binary_trailing_bytes_warn_unless_zero_padding(void **state)
{
	(void)state;
	struct buf b = binary_file();
	struct scan s;
	struct err e;
	put(&b, "\0\0\0\0\0\0\0\0", 8);
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);
	put(&b, "junk", 4);
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_non_null(warning_with(&s, "12 bytes after the last point"));
	check_binary_points(&s);
	scan_release(&s);
	free(b.p);
}

static void test_pcd_binary_every_truncation_fails_cleanly(void **state)
{
	(void)state;
	struct buf b = binary_file();
	size_t data_off = b.len - (size_t)B_RECORD * B_POINTS;
	for (size_t n = 0; n < b.len; n++) {
		unsigned char *cut = malloc(n ? n : 1);
		assert_non_null(cut);
		memcpy(cut, b.p, n);
		struct scan s;
		struct err e;
		err_init(&e);
		int rc = pcd_read(cut, n, NULL, &s, &e);
		if (rc >= 0)
			fail_msg("prefix %zu/%zu read", n, b.len);
		if (n >= data_off) {
			/* in the points: the error names the cut point and offset */
			char want[64];
			size_t pt = (n - data_off) / B_RECORD;
			snprintf(want, sizeof(want), "point %zu: truncated", pt);
			if (rc != ERR_FORMAT || !strstr(e.msg, want) ||
			    e.offset != (int64_t)(data_off + pt * B_RECORD))
				fail_msg("prefix %zu: rc %d offset %lld '%s'", n, rc,
					 (long long)e.offset, e.msg);
		}
		scan_release(&s);
		free(cut);
	}
	free(b.p);
}

static void test_pcd_huge_point_counts_fail_before_allocating(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int sizes;           /* append compressed/raw sizes and 16 bytes */
		uint32_t csize, usize;
		const char *msg;
	} cases[] = {
		/* over the vertex limit */
		{ "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 4000000000\nHEIGHT 1\n"
		  "DATA binary\n", 0, 0, 0, "points (limit" },
		/* within the limit but not in the bytes */
		{ "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 2000000000\nHEIGHT 1\n"
		  "DATA binary\n0123456789ab", 0, 0, 0, "point 1: truncated" },
		{ "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 2000000000\nHEIGHT 1\n"
		  "DATA ascii\n1 2 3\n", 0, 0, 0, "cannot fit" },
		/* width * height overflows */
		{ "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 4294967296\nHEIGHT 4294967296\n"
		  "DATA ascii\n1 2 3\n", 0, 0, 0, "overflows" },
		/* a huge COUNT makes the record overflow */
		{ "FIELDS x y z h\nSIZE 4 4 4 8\nTYPE F F F F\nCOUNT 1 1 1 4611686018427387904\n"
		  "WIDTH 1\nDATA binary\n", 0, 0, 0, "count too large" },
		/* compressed: a raw size far beyond what 16 bytes of LZF give */
		{ "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 300000000\nHEIGHT 1\n"
		  "DATA binary_compressed\n", 1, 16, 3600000000u, "more than LZF can expand" },
		/* compressed: the raw size disagrees with the points */
		{ "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 100\nHEIGHT 1\n"
		  "DATA binary_compressed\n", 1, 16, 0xffffffffu, "differs from POINTS" },
		/* compressed: more compressed bytes claimed than present */
		{ "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 100\nHEIGHT 1\n"
		  "DATA binary_compressed\n", 1, 0x7fffffffu, 1200, "only 16 bytes follow" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = { 0 };
		put(&b, cases[i].text, strlen(cases[i].text));
		if (cases[i].sizes) {
			put_u32(&b, cases[i].csize);
			put_u32(&b, cases[i].usize);
			put(&b, "0123456789abcdef", 16);
		}
		struct scan s;
		struct err e;
		err_init(&e);
		/* one allocation (the field table) may succeed; no point arrays */
		alloc_fail_after(1);
		int rc = pcd_read(b.p, b.len, NULL, &s, &e);
		alloc_fail_after(-1);
		if ((rc != ERR_FORMAT && rc != ERR_LIMIT) || !strstr(e.msg, cases[i].msg))
			fail_msg("case %zu: rc %d '%s', want '%s'", i, rc, e.msg, cases[i].msg);
		scan_release(&s);
		free(b.p);
	}
}

/* -------------------------------------------------- binary_compressed */

/* The binary_file points as PCL compresses them: field after field. */
static struct buf compressed_file(uint32_t *usize_out, unsigned char **raw_out)
{
	struct buf aos = { 0 }, soa = { 0 }, b = { 0 };
	put_binary_points(&aos);
	const size_t sizes[9] = { 2, 3, 4, 8, 4, 4, 4, 4, 4 };
	size_t off = 0;
	for (int f = 0; f < 9; f++) {
		for (int i = 0; i < B_POINTS; i++)
			put(&soa, aos.p + (size_t)i * B_RECORD + off, sizes[f]);
		off += sizes[f];
	}
	assert_int_equal(soa.len, B_RECORD * B_POINTS);
	unsigned char out[1024];
	unsigned n = lzf_compress(soa.p, (unsigned)soa.len, out, sizeof(out));
	assert_true(n > 0);
	header(&b, B_FIELDS, B_SIZE, B_TYPE, B_COUNT, B_POINTS, 1, "binary_compressed");
	put_u32(&b, n);
	put_u32(&b, (uint32_t)soa.len);
	put(&b, out, n);
	if (usize_out)
		*usize_out = (uint32_t)soa.len;
	if (raw_out)
		*raw_out = soa.p;
	else
		free(soa.p);
	free(aos.p);
	return b;
}

static void test_pcd_binary_compressed_reads_fields_one_after_another(void **state)
{
	(void)state;
	struct buf b = compressed_file(NULL, NULL);
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), 0);
	assert_string_equal(s.encoding, "binary_compressed");
	check_binary_points(&s);
	scan_release(&s);
	free(b.p);
}

static void test_pcd_compressed_every_truncation_fails_cleanly(void **state)
{
	(void)state;
	struct buf b = compressed_file(NULL, NULL);
	for (size_t n = 0; n < b.len; n++) {
		struct scan s;
		struct err e;
		err_init(&e);
		unsigned char *cut = malloc(n ? n : 1);
		assert_non_null(cut);
		memcpy(cut, b.p, n);
		int rc = pcd_read(cut, n, NULL, &s, &e);
		if (rc >= 0 || !e.msg[0])
			fail_msg("prefix %zu/%zu: rc %d", n, b.len, rc);
		scan_release(&s);
		free(cut);
	}
	free(b.p);
}

static void test_pcd_bad_lzf_data_is_format_error(void **state)
{
	(void)state;
	struct buf b = compressed_file(NULL, NULL);
	/* the stream follows the two sizes after the DATA line */
	unsigned char *nl = memmem(b.p, b.len, "binary_compressed\n", 18);
	assert_non_null(nl);
	size_t off = (size_t)(nl - b.p) + 18;
	/* a back reference before the start of the output */
	b.p[off + 8] = 0xE0;
	b.p[off + 9] = 0x00;
	b.p[off + 10] = 0xFF;
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "corrupt LZF data"));
	assert_int_equal(e.offset, (int64_t)off + 8);
	scan_release(&s);
	free(b.p);
}

static void test_pcd_decompressed_size_mismatch_is_format_error(void **state)
{
	(void)state;
	/* header sizes agree, but the stream holds one byte less */
	uint32_t usize;
	unsigned char *raw;
	struct buf b0 = compressed_file(&usize, &raw);
	unsigned char out[1024];
	unsigned n = lzf_compress(raw, usize - 1, out, sizeof(out));
	assert_true(n > 0);
	struct buf b = { 0 };
	header(&b, B_FIELDS, B_SIZE, B_TYPE, B_COUNT, B_POINTS, 1, "binary_compressed");
	put_u32(&b, n);
	put_u32(&b, usize);
	put(&b, out, n);
	struct scan s;
	struct err e;
	assert_int_equal(read_pcd(&b, &s, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "expands to 147 bytes, header says 148"));
	scan_release(&s);
	/* the stream holds more than the header says */
	free(b.p);
	b = (struct buf){ 0 };
	header(&b, "x y z", "4 4 4", "F F F", "1 1 1", 12, 1, "binary_compressed");
	n = lzf_compress(raw, usize, out, sizeof(out));
	put_u32(&b, n);
	put_u32(&b, 144);
	put(&b, out, n);
	assert_int_equal(read_pcd(&b, &s, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "corrupt LZF data (or it expands to more than 144"));
	scan_release(&s);
	free(b.p);
	free(b0.p);
	free(raw);
}

/* ----------------------------------------------------- header errors */

static void test_pcd_header_errors_name_line_and_field(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int code;
		long line;
		const char *msg;
	} cases[] = {
		{ "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F X F\nWIDTH 1\nDATA ascii\n1 2 3\n",
		  ERR_FORMAT, 4, "field 'y': type 'X' is not I, U or F" },
		{ "VERSION 0.7\nFIELDS x y z\nSIZE 4 4\nWIDTH 1\nDATA ascii\n1 2 3\n",
		  ERR_FORMAT, 3, "SIZE has 2 values for 3 fields" },
		{ "VERSION 0.7\nFIELDS x y z\nSIZE 4 3 4\nWIDTH 1\nDATA ascii\n1 2 3\n",
		  ERR_FORMAT, 3, "field 'y': size 3 is not 1, 2, 4 or 8" },
		{ "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 2\nTYPE F F F\nWIDTH 1\nDATA ascii\n1 2 3\n",
		  ERR_FORMAT, 6, "field 'z': float of size 2" },
		{ "VERSION 0.7\nSIZE 4 4 4\nFIELDS x y z\nWIDTH 1\nDATA ascii\n1 2 3\n",
		  ERR_FORMAT, 2, "SIZE before FIELDS" },
		{ "VERSION 0.7\nFIELDS x y intensity\nSIZE 4 4 4\nWIDTH 1\nDATA ascii\n1 2 3\n",
		  ERR_UNSUPPORTED, 5, "no 'z' field" },
		{ "VERSION 1.0\nFIELDS x y z\nSIZE 4 4 4\nWIDTH 1\nDATA ascii\n1 2 3\n",
		  ERR_VERSION, 1, "newer than 0.7" },
		{ "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nWIDTH 1\nDATA zstd\n",
		  ERR_UNSUPPORTED, 5, "DATA 'zstd'" },
		{ "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nWIDTH 2\nHEIGHT 3\nPOINTS 5\nDATA ascii\n",
		  ERR_FORMAT, 6, "POINTS 5 differs from WIDTH * HEIGHT = 2 * 3 = 6" },
		{ "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nWIDTH -1\nDATA ascii\n",
		  ERR_FORMAT, 4, "WIDTH: bad count" },
		{ "VERSION 0.7\nFIELDS x y z x\nSIZE 4 4 4 4\nWIDTH 1\nDATA ascii\n1 2 3 4\n",
		  ERR_FORMAT, 5, "field 'x' given twice" },
		{ "VERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 8\nTYPE F F F F\nWIDTH 1\nDATA ascii\n",
		  ERR_FORMAT, 6, "field 'rgb': size 8" },
		{ "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nVIEWPOINT 0 0 0 1\nWIDTH 1\nDATA ascii\n",
		  ERR_FORMAT, 4, "VIEWPOINT has 4 numbers" },
		{ "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nWIDTH 1\n",
		  ERR_FORMAT, 5, "no DATA line" },
		/* point data errors: point index and line */
		{ "FIELDS x y z\nSIZE 4 4 4\nWIDTH 3\nDATA ascii\n1 2 3\n4 five 6\n7 8 9\n",
		  ERR_FORMAT, 6, "point 1: field 'y': bad number near 'five'" },
		{ "FIELDS x y z\nSIZE 4 4 4\nWIDTH 3\nDATA ascii\n1 2 3\n4 5 6\n7.00 8.00\n",
		  ERR_FORMAT, 7, "point 2: 2 values, expected 3" },
		{ "FIELDS x y z\nSIZE 4 4 4\nWIDTH 2\nDATA ascii\n1 2 3 4\n5 6 7\n",
		  ERR_FORMAT, 5, "point 0: more than 3 values" },
		{ "FIELDS x y z\nSIZE 4 4 4\nWIDTH 3\nDATA ascii\n1.0 2.0 3.0\n4 5 6\n",
		  ERR_FORMAT, 7, "point 2 missing: file ends after 2 of 3 points" },
		{ "FIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F U\nWIDTH 1\nDATA ascii\n1 2 3 red\n",
		  ERR_FORMAT, 6, "point 0: field 'rgb': bad colour near 'red'" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = { 0 };
		put(&b, cases[i].text, strlen(cases[i].text));
		expect_error(&b, cases[i].code, cases[i].line, cases[i].msg);
		free(b.p);
	}
}

static void test_pcd_limits_on_fields_and_header(void **state)
{
	(void)state;
	struct buf b = { 0 };
	putf(&b, "FIELDS x y z a b c\nSIZE 4 4 4 4 4 4\nWIDTH 1\nDATA ascii\n1 2 3 4 5 6\n");
	struct limits lim;
	limits_init(&lim);
	lim.max_properties = 5;
	struct scan s;
	struct err e;
	err_init(&e);
	assert_int_equal(pcd_read(b.p, b.len, &lim, &s, &e), ERR_LIMIT);
	assert_non_null(strstr(e.msg, "6 fields (limit 5)"));
	scan_release(&s);
	limits_init(&lim);
	lim.max_header_bytes = 20;
	assert_int_equal(pcd_read(b.p, b.len, &lim, &s, &e), ERR_LIMIT);
	assert_non_null(strstr(e.msg, "header longer than 20 bytes"));
	scan_release(&s);
	limits_init(&lim);
	lim.max_vertices = 0;
	assert_int_equal(pcd_read(b.p, b.len, &lim, &s, &e), ERR_LIMIT);
	scan_release(&s);
	free(b.p);
}

static void test_pcd_probe_claims_pcd_headers_only(void **state)
{
	(void)state;
	const char *pcd = "# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\n";
	const char *bare = "FIELDS x y z\nSIZE 4 4 4\n";
	const char *ply = "ply\nformat ascii 1.0\n";
	const char *xyz = "1 2 3\n4 5 6\n";
	assert_int_equal(pcd_probe((const unsigned char *)pcd, strlen(pcd)), 100);
	assert_true(pcd_probe((const unsigned char *)bare, strlen(bare)) > 50);
	assert_int_equal(pcd_probe((const unsigned char *)ply, strlen(ply)), 0);
	assert_int_equal(pcd_probe((const unsigned char *)xyz, strlen(xyz)), 0);
	assert_int_equal(pcd_probe((const unsigned char *)"VERSION", 7), 0);
	const struct format *f = format_detect((const unsigned char *)pcd, strlen(pcd), "txt");
	assert_non_null(f);
	assert_string_equal(f->name, "pcd");
}

/* ------------------------------------------------------------- OOM */

static void oom_sweep(const struct buf *b)
{
	int ok = 0;
	long n;
	for (n = 0; n < 1000; n++) {
		struct scan s;
		struct err e;
		err_init(&e);
		alloc_fail_after(n);
		int rc = scan_read_buffer(b->p, b->len, "t.pcd", NULL, &s, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			ok = 1;
			scan_release(&s);
			break;
		}
		if (rc != ERR_NOMEM)
			fail_msg("allocation %ld failed: rc %d '%s'", n, rc, e.msg);
		assert_null(s.positions);
		assert_int_equal(s.n_meta, 0);
	}
	assert_true(ok);
	assert_true(n >= 4);
}

static void test_pcd_survives_every_allocation_failure(void **state)
{
	(void)state;
	struct buf b = { 0 };
	header(&b, "x y z normal_x normal_y normal_z rgb", "4 4 4 4 4 4 4",
	       "F F F F F F U", "1 1 1 1 1 1 1", 2, 2, "ascii");
	putf(&b, "nan 0 0 0 0 1 5\n1 2 3 0 0 1 6\n1 2 3 0 0 1 7\n1 2 3 0 0 1 8\nextra\n");
	oom_sweep(&b);
	free(b.p);
	b = compressed_file(NULL, NULL);
	put(&b, "trailing", 8);
	oom_sweep(&b);
	free(b.p);
	b = binary_file();
	oom_sweep(&b);
	free(b.p);
}

/* ---------------------------------------------- fixtures and real data */

/* Every byte of an error message is printable: file bytes are quoted safely. */
static void assert_printable(const char *msg, const char *path)
{
	for (const char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			fail_msg("%s: unprintable byte 0x%02x in '%s'", path, (unsigned char)*c, msg);
}

/*
 * Fuzzer inputs kept as fixtures, one per distinct outcome, named after
 * it: names starting "ok" must read, every other one must fail with a
 * clear, printable message (and none may crash or leak).
 */
static void test_pcd_fuzz_fixtures_replay_with_named_outcome(void **state)
{
	(void)state;
	const char *top = getenv("REFSCAN_TOP");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/tests/data/pcd/fuzz", top ? top : ".");
	DIR *d = opendir(dir);
	if (!d) {
		printf("pcd: skipped: no fixture folder %s\n", dir);
		skip();
	}
	int n = 0;
	for (struct dirent *de; (de = readdir(d));) {
		char path[4096 + 260];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct mapfile m;
		struct err e;
		struct scan s;
		err_init(&e);
		assert_int_equal(mapfile_open(&m, path, &e), 0);
		(void)pcd_probe(m.data, m.len);
		int rc = pcd_read(m.data, m.len, NULL, &s, &e);
		mapfile_release(&m);
		int want_ok = !strncmp(de->d_name, "ok", 2);
		if (want_ok != (rc == 0) || (rc < 0 && (!e.msg[0] || rc < ERR_INTERNAL)))
			fail_msg("%s: rc %d '%s'", path, rc, e.msg);
		assert_printable(e.msg, path);
		for (size_t w = 0; w < s.n_warnings; w++)
			assert_printable(s.warnings[w], path);
		scan_release(&s);
		n++;
	}
	closedir(d);
	printf("pcd: %d fuzz fixtures replayed\n", n);
	assert_true(n > 0);
}

/* POINTS (or WIDTH * HEIGHT) as the header declares it, by sscanf. */
static long long declared_points(const unsigned char *b, size_t len)
{
	const char *p = (const char *)b, *end = p + len;
	long long pts = -1, w = -1, h = 1;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		long long v;
		if (sscanf(p, "POINTS %lld", &v) == 1)
			pts = v;
		else if (sscanf(p, "WIDTH %lld", &v) == 1)
			w = v;
		else if (sscanf(p, "HEIGHT %lld", &v) == 1)
			h = v;
		if (!strncmp(p, "DATA", 4))
			break;
		p = e + 1;
	}
	return pts >= 0 ? pts : w * h;
}

static void test_pcd_pcl_test_files_read_with_declared_counts(void **state)
{
	(void)state;
	const char *data = getenv("REFSCAN_SHARED_DATA");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/conformance/gh-pcl-testdata/test",
		 data ? data : "../shared/data");
	DIR *d = opendir(dir);
	if (!d) {
		printf("pcd: skipped PCL test files: %s is not present\n", dir);
		skip();
	}
	int n = 0, pass = 0;
	printf("%-6s %-40s %-18s %9s %9s %8s\n", "result", "file", "data", "declared",
	       "read", "nonfinite");
	for (struct dirent *de; (de = readdir(d));) {
		char path[4096 + 260];
		size_t nl = strlen(de->d_name);
		if (nl < 4 || strcmp(de->d_name + nl - 4, ".pcd"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct mapfile m;
		struct err e;
		struct scan s;
		err_init(&e);
		assert_int_equal(mapfile_open(&m, path, &e), 0);
		long long want = declared_points(m.data, m.len);
		mapfile_release(&m);
		int rc = scan_read_file(path, NULL, &s, &e);
		int ok = rc == 0 && (long long)s.n_vertices == want && want > 0 &&
			 !strcmp(s.format, "pcd");
		printf("%-6s %-40s %-18s %9lld %9zu %8zu %s\n", ok ? "pass" : "FAIL",
		       de->d_name, rc ? "-" : s.encoding, want, s.n_vertices,
		       s.n_nonfinite, rc ? e.msg : "");
		n++;
		pass += ok;
		scan_release(&s);
	}
	closedir(d);
	printf("pcd: %d/%d PCL test files read with their declared counts\n", pass, n);
	assert_true(n > 0);
	assert_int_equal(pass, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pcd_ascii_reads_positions_normals_and_colours),
		cmocka_unit_test(test_pcd_ascii_float_printed_rgb_is_unpacked),
		cmocka_unit_test(test_pcd_ascii_skips_extra_fields_with_counts),
		cmocka_unit_test(test_pcd_nan_points_are_kept_and_counted),
		cmocka_unit_test(test_pcd_crlf_comments_and_no_points_line),
		cmocka_unit_test(test_pcd_v05_without_type_and_count_reads_floats),
		cmocka_unit_test(test_pcd_ascii_extra_lines_are_a_warning),
		cmocka_unit_test(test_pcd_partial_normals_are_ignored_with_a_warning),
		cmocka_unit_test(test_pcd_binary_reads_records_of_mixed_types),
		cmocka_unit_test(test_pcd_binary_double_xyz_and_float_rgb),
		cmocka_unit_test(test_pcd_binary_trailing_bytes_warn_unless_zero_padding),
		cmocka_unit_test(test_pcd_binary_every_truncation_fails_cleanly),
		cmocka_unit_test(test_pcd_huge_point_counts_fail_before_allocating),
		cmocka_unit_test(test_pcd_binary_compressed_reads_fields_one_after_another),
		cmocka_unit_test(test_pcd_compressed_every_truncation_fails_cleanly),
		cmocka_unit_test(test_pcd_bad_lzf_data_is_format_error),
		cmocka_unit_test(test_pcd_decompressed_size_mismatch_is_format_error),
		cmocka_unit_test(test_pcd_header_errors_name_line_and_field),
		cmocka_unit_test(test_pcd_limits_on_fields_and_header),
		cmocka_unit_test(test_pcd_probe_claims_pcd_headers_only),
		cmocka_unit_test(test_pcd_survives_every_allocation_failure),
		cmocka_unit_test(test_pcd_fuzz_fixtures_replay_with_named_outcome),
		cmocka_unit_test(test_pcd_pcl_test_files_read_with_declared_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
