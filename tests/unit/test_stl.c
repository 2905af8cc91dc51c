/*
 * test_stl.c - the STL reader (formats/stl.c): ascii and binary, the
 * ascii-or-binary rule, welding, Magics and VisCAM colours, size checks,
 * error messages, truncation and allocation-failure sweeps, fixtures, and
 * the third-party STL files in ../shared/data/conformance when present.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "formats/formats.h"
#include "formats/writers.h"
#include "tests/lib/gen.h"
#include "tests/lib/readertest.h"

/* ---- generators ---------------------------------------------------- */

static const float cube_v[8][3] = {
	{ 0, 0, 0 }, { 1, 0, 0 }, { 1, 1, 0 }, { 0, 1, 0 },
	{ 0, 0, 1 }, { 1, 0, 1 }, { 1, 1, 1 }, { 0, 1, 1 },
};
static const int cube_t[12][3] = {
	{ 0, 2, 1 }, { 0, 3, 2 }, { 4, 5, 6 }, { 4, 6, 7 }, { 0, 1, 5 }, { 0, 5, 4 },
	{ 1, 2, 6 }, { 1, 6, 5 }, { 2, 3, 7 }, { 2, 7, 6 }, { 3, 0, 4 }, { 3, 4, 7 },
};

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
}

/* Ascii cube, triangles [from, to) in one solid; nl is the line break. */
static void ascii_solid(struct sbuf *b, const char *name, int from, int to, const char *nl)
{
	sb_add(b, "solid %s%s", name, nl);
	for (int t = from; t < to; t++) {
		sb_add(b, "  facet normal 0 0 0%s    outer loop%s", nl, nl);
		for (int k = 0; k < 3; k++) {
			const float *v = cube_v[cube_t[t][k]];
			sb_add(b, "      vertex %g %g %g%s", (double)v[0], (double)v[1],
			       (double)v[2], nl);
		}
		sb_add(b, "    endloop%s  endfacet%s", nl, nl);
	}
	sb_add(b, "endsolid %s%s", name, nl);
}

static void put_u32le(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put_f32le(unsigned char *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	put_u32le(p, u);
}

/*
 * Binary cube: header text (NUL-padded), per-facet attributes (NULL: 0),
 * extra trailing bytes.  Returns a malloc'd buffer of *len bytes.
 */
static unsigned char *binary_cube(const char *header, size_t hlen, const uint16_t *attrs,
				  size_t extra, size_t *len)
{
	*len = 84 + 12 * 50 + extra;
	unsigned char *b = calloc(1, *len);
	assert_non_null(b);
	memcpy(b, header, hlen < 80 ? hlen : 80);
	put_u32le(b + 80, 12);
	for (int t = 0; t < 12; t++) {
		unsigned char *r = b + 84 + 50 * t;
		put_f32le(r + 8, 1.0f); /* a normal the reader must ignore */
		for (int k = 0; k < 3; k++)
			for (int c = 0; c < 3; c++)
				put_f32le(r + 12 + 12 * k + 4 * c, cube_v[cube_t[t][k]][c]);
		uint16_t a = attrs ? attrs[t] : 0;
		r[48] = (unsigned char)a;
		r[49] = (unsigned char)(a >> 8);
	}
	for (size_t i = 0; i < extra; i++)
		b[84 + 600 + i] = (unsigned char)(0xA5 ^ i);
	return b;
}

/* ---- checks -------------------------------------------------------- */

static int read_ok(const void *buf, size_t len, struct scan *s)
{
	struct err e;
	err_init(&e);
	int rc = stl_read(buf, len, NULL, s, &e);
	if (rc)
		fail_msg("stl_read failed: %d %s", rc, e.msg);
	return rc;
}

static int read_fail(const void *buf, size_t len, struct err *e)
{
	struct scan s;
	err_init(e);
	int rc = stl_read(buf, len, NULL, &s, e);
	assert_true(rc < 0);
	assert_int_equal(s.n_vertices, 0);
	assert_null(s.positions);
	return rc;
}

/* The welded cube: 8 vertices, every triangle the cube's, corners in order. */
static void assert_cube(const struct scan *s, size_t first, size_t n_tris)
{
	assert_int_equal(s->n_vertices, 8);
	assert_int_equal(s->n_faces, n_tris);
	assert_int_equal(s->n_polygons, n_tris);
	assert_null(s->normals);
	for (size_t t = 0; t < n_tris; t++)
		for (int k = 0; k < 3; k++) {
			uint32_t i = s->indices[3 * t + (size_t)k];
			assert_true(i < 8);
			assert_memory_equal(s->positions + 3 * i, cube_v[cube_t[first + t][k]],
					    3 * sizeof(float));
		}
	for (int k = 0; k < 3; k++) {
		assert_true(s->bbox_min[k] == 0.0f);
		assert_true(s->bbox_max[k] == 1.0f);
	}
	/* distinct positions really are distinct */
	for (size_t i = 0; i < s->n_vertices; i++)
		for (size_t j = i + 1; j < s->n_vertices; j++)
			assert_memory_not_equal(s->positions + 3 * i, s->positions + 3 * j,
						3 * sizeof(float));
}

/* ---- ascii --------------------------------------------------------- */

static void test_stl_ascii_cube_welds_36_corners_into_8_vertices(void **state)
{
	(void)state;
	struct sbuf b = { 0 };
	struct scan s;
	ascii_solid(&b, "cube", 0, 12, "\n");
	read_ok(b.p, b.len, &s);
	assert_string_equal(s.encoding, "ascii");
	assert_cube(&s, 0, 12);
	assert_null(s.face_colors);
	assert_int_equal(s.units, UNITS_UNKNOWN);
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);
	free(b.p);
}

static void test_stl_ascii_reads_two_solids_as_one_mesh(void **state)
{
	(void)state;
	struct sbuf b = { 0 };
	struct scan s;
	ascii_solid(&b, "lower", 0, 5, "\n");
	ascii_solid(&b, "upper", 5, 12, "\n");
	read_ok(b.p, b.len, &s);
	assert_cube(&s, 0, 12);
	scan_release(&s);
	free(b.p);
}

static void test_stl_ascii_accepts_crlf_blank_lines_indent_and_upper_case(void **state)
{
	(void)state;
	static const char text[] =
		"\xEF\xBB\xBF  SOLID part\r\n\r\n"
		"\tFACET NORMAL 0 0 1\r\n"
		"\t\tOUTER LOOP\r\n"
		"\t\t\tVERTEX  0.5 -2.25e1 +3\r\n\r\n"
		"   \t\tVertex 1 0 0\r\n"
		"vertex 0 1 0\r\n"
		"\t\tENDLOOP\r\n\tENDFACET\r\n"
		"ENDSOLID part\r\n";
	struct scan s;
	read_ok(text, sizeof(text) - 1, &s);
	assert_int_equal(s.n_vertices, 3);
	assert_int_equal(s.n_faces, 1);
	assert_true(s.positions[0] == 0.5f);
	assert_true(s.positions[1] == -22.5f);
	assert_true(s.positions[2] == 3.0f);
	assert_true(s.positions[3] == 1.0f);
	assert_true(s.positions[7] == 1.0f);
	assert_int_equal(s.indices[0], 0);
	assert_int_equal(s.indices[1], 1);
	assert_int_equal(s.indices[2], 2);
	scan_release(&s);
}

static void test_stl_ascii_missing_endsolid_after_complete_facet_is_a_warning(void **state)
{
	(void)state;
	static const char text[] =
		"solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
		"vertex 0 1 0\nendloop\nendfacet\n";
	struct scan s;
	read_ok(text, sizeof(text) - 1, &s);
	assert_int_equal(s.n_faces, 1);
	assert_int_equal(s.n_warnings, 1);
	assert_non_null(strstr(s.warnings[0], "missing 'endsolid'"));
	scan_release(&s);
}

static void test_stl_ascii_errors_name_the_line_and_token(void **state)
{
	(void)state;
	struct err e;
	static const char expect_vertex[] =
		"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nxyz 1 0 0\n";
	assert_int_equal(read_fail(expect_vertex, sizeof(expect_vertex) - 1, &e), ERR_FORMAT);
	assert_int_equal(e.line, 5);
	assert_string_equal(e.msg, "expected 'vertex' near 'xyz'");

	static const char four[] =
		"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
		"vertex 0 1 0\nvertex 1 1 0\nendloop\nendfacet\nendsolid\n";
	assert_int_equal(read_fail(four, sizeof(four) - 1, &e), ERR_FORMAT);
	assert_int_equal(e.line, 2);
	assert_string_equal(e.msg, "facet 0 has 4 vertices (expected 3)");

	static const char two[] =
		"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
		"endloop\nendfacet\nendsolid\n";
	assert_int_equal(read_fail(two, sizeof(two) - 1, &e), ERR_FORMAT);
	assert_int_equal(e.line, 2);
	assert_string_equal(e.msg, "facet 0 has 2 vertices (expected 3)");

	static const char bad_number[] =
		"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
		"vertex 0 1.5.2 0\nendloop\nendfacet\nendsolid\n";
	assert_int_equal(read_fail(bad_number, sizeof(bad_number) - 1, &e), ERR_FORMAT);
	assert_int_equal(e.line, 6);
	assert_string_equal(e.msg, "bad number in vertex near '1.5.2'");

	static const char mid_facet[] = "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\n";
	assert_int_equal(read_fail(mid_facet, sizeof(mid_facet) - 1, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "facet 0: expected 'vertex' near end of file");

	static const char junk[] = "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\n"
				   "vertex 1 0 0\nvertex 0 1 0\nendloop\nendfacet\nhello\n";
	assert_int_equal(read_fail(junk, sizeof(junk) - 1, &e), ERR_FORMAT);
	assert_int_equal(e.line, 9);
	assert_string_equal(e.msg, "expected 'facet' or 'endsolid' near 'hello'");

	static const char after[] = "solid x\nendsolid x\ngarbage\n";
	assert_int_equal(read_fail(after, sizeof(after) - 1, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "expected 'solid' near 'garbage'");
}

static void test_stl_units_come_from_the_header_text(void **state)
{
	(void)state;
	static const char text[] = "solid part units=mm\nendsolid part\n";
	struct scan s;
	read_ok(text, sizeof(text) - 1, &s);
	assert_int_equal(s.units, UNITS_MM);
	scan_release(&s);

	size_t len;
	unsigned char *b = binary_cube("exported UNITS=inch", 19, NULL, 0, &len);
	read_ok(b, len, &s);
	assert_int_equal(s.units, UNITS_IN);
	scan_release(&s);
	free(b);
}

/* ---- binary -------------------------------------------------------- */

static void test_stl_binary_cube_welds_and_ignores_facet_normals(void **state)
{
	(void)state;
	size_t len;
	unsigned char *b = binary_cube("cube", 4, NULL, 0, &len);
	struct scan s;
	read_ok(b, len, &s);
	assert_string_equal(s.encoding, "binary");
	assert_cube(&s, 0, 12);
	assert_null(s.face_colors);
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);
	free(b);
}

static void test_stl_binary_with_solid_header_and_exact_size_is_binary(void **state)
{
	(void)state;
	size_t len;
	unsigned char *b = binary_cube("solid cube", 10, NULL, 0, &len);
	struct scan s;
	read_ok(b, len, &s);
	assert_string_equal(s.encoding, "binary");
	assert_cube(&s, 0, 12);
	scan_release(&s);
	/* padded with spaces like some CAD exporters: still the size rule */
	memset(b + 10, ' ', 70);
	read_ok(b, len, &s);
	assert_string_equal(s.encoding, "binary");
	assert_cube(&s, 0, 12);
	scan_release(&s);
	free(b);
}

static void test_stl_solid_header_binary_with_trailing_bytes_falls_back_to_binary(void **state)
{
	(void)state;
	size_t len;
	unsigned char *b = binary_cube("solid cube", 10, NULL, 17, &len);
	struct scan s;
	read_ok(b, len, &s);
	assert_string_equal(s.encoding, "binary");
	assert_cube(&s, 0, 12);
	assert_int_equal(s.n_warnings, 1);
	assert_string_equal(s.warnings[0], "17 bytes after the 12 declared triangles ignored");
	scan_release(&s);
	free(b);
}

static void test_stl_binary_shorter_than_declared_names_offset_and_counts(void **state)
{
	(void)state;
	size_t len;
	unsigned char *b = binary_cube("cube", 4, NULL, 0, &len);
	struct err e;
	assert_int_equal(read_fail(b, len - 1, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "truncated: header declares 12 triangles, file holds only 11");
	assert_int_equal(e.offset, 84 + 11 * 50);
	/* counts that cannot fit are refused before allocating */
	put_u32le(b + 80, 40000000u);
	assert_int_equal(read_fail(b, len, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "truncated: header declares 40000000 triangles, file holds only 12");
	put_u32le(b + 80, 0xFFFFFFFFu);
	assert_int_equal(read_fail(b, len, &e), ERR_LIMIT);
	assert_string_equal(e.msg, "header declares 4294967295 triangles (limit 2147483647)");
	free(b);
}

static void test_stl_binary_count_over_limit_is_err_limit(void **state)
{
	(void)state;
	size_t len;
	unsigned char *b = binary_cube("cube", 4, NULL, 0, &len);
	struct limits lim;
	struct scan s;
	struct err e;
	limits_init(&lim);
	lim.max_faces = 11;
	err_init(&e);
	assert_int_equal(stl_read(b, len, &lim, &s, &e), ERR_LIMIT);
	assert_int_equal(e.offset, 80);
	limits_init(&lim);
	lim.max_vertices = 7;
	assert_int_equal(stl_read(b, len, &lim, &s, &e), ERR_LIMIT);
	assert_non_null(strstr(e.msg, "more than 7 distinct vertices"));
	assert_null(s.positions);
	lim.max_vertices = 8;
	assert_int_equal(stl_read(b, len, &lim, &s, &e), 0);
	assert_int_equal(s.n_vertices, 8);
	scan_release(&s);
	free(b);
}

static void test_stl_magics_color_header_gives_default_and_facet_colours(void **state)
{
	(void)state;
	uint16_t attrs[12];
	for (int t = 0; t < 12; t++)
		attrs[t] = 0x8000; /* per-object colour */
	attrs[0] = 31;                  /* own colour, red (Magics: red in bits 0-4) */
	attrs[1] = (uint16_t)(16 << 5); /* green 16 -> 132 */
	attrs[2] = (uint16_t)(31 << 10);
	static const char header[] = "COLOR=\x10\x20\x30\x40,MATERIAL=\x01\x02\x03";
	size_t len;
	unsigned char *b = binary_cube(header, sizeof(header) - 1, attrs, 0, &len);
	struct scan s;
	read_ok(b, len, &s);
	assert_non_null(s.face_colors);
	static const uint8_t want[4][4] = {
		{ 255, 0, 0, 255 }, { 0, 132, 0, 255 }, { 0, 0, 255, 255 }, { 0x10, 0x20, 0x30, 0x40 },
	};
	assert_memory_equal(s.face_colors, want[0], 4);
	assert_memory_equal(s.face_colors + 4, want[1], 4);
	assert_memory_equal(s.face_colors + 8, want[2], 4);
	for (int t = 3; t < 12; t++)
		assert_memory_equal(s.face_colors + 4 * t, want[3], 4);
	scan_release(&s);
	free(b);
}

static void test_stl_viscam_colours_need_bit_15_and_reverse_channels(void **state)
{
	(void)state;
	uint16_t attrs[12] = { 0 };
	attrs[4] = 0x8000 | 31;          /* VisCAM: blue in bits 0-4 */
	attrs[5] = 0x8000 | (31 << 10);  /* red */
	attrs[6] = 31 << 10;             /* no bit 15: not a colour */
	size_t len;
	unsigned char *b = binary_cube("part", 4, attrs, 0, &len);
	struct scan s;
	read_ok(b, len, &s);
	assert_non_null(s.face_colors);
	static const uint8_t white[4] = { 255, 255, 255, 255 }, blue[4] = { 0, 0, 255, 255 },
			     red[4] = { 255, 0, 0, 255 };
	for (int t = 0; t < 12; t++)
		assert_memory_equal(s.face_colors + 4 * t,
				    t == 4 ? blue : t == 5 ? red : white, 4);
	scan_release(&s);

	/* attributes without bit 15 everywhere: no colours at all */
	attrs[4] = attrs[5] = 7;
	free(b);
	b = binary_cube("part", 4, attrs, 0, &len);
	read_ok(b, len, &s);
	assert_null(s.face_colors);
	scan_release(&s);
	free(b);
}

static void test_stl_minus_zero_welds_with_plus_zero(void **state)
{
	(void)state;
	static const char text[] =
		"solid z\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\n"
		"endloop\nendfacet\nfacet normal 0 0 1\nouter loop\nvertex -0 -0.0 0\n"
		"vertex 1 -0 0\nvertex 0 1 -0\nendloop\nendfacet\nendsolid z\n";
	struct scan s;
	read_ok(text, sizeof(text) - 1, &s);
	assert_int_equal(s.n_vertices, 3);
	assert_int_equal(s.n_faces, 2);
	assert_memory_equal(s.indices, s.indices + 3, 3 * sizeof(uint32_t));
	assert_false(signbit(s.positions[0]));
	scan_release(&s);
}

static void test_stl_welding_keeps_distinct_positions_of_a_triangle_soup(void **state)
{
	(void)state;
	/* 3000 separate triangles: nothing to weld, and the table must grow */
	const size_t n = 3000;
	size_t len = 84 + 50 * n;
	unsigned char *b = calloc(1, len);
	assert_non_null(b);
	put_u32le(b + 80, (uint32_t)n);
	for (size_t t = 0; t < n; t++)
		for (int k = 0; k < 3; k++)
			for (int c = 0; c < 3; c++)
				put_f32le(b + 84 + 50 * t + 12 + 12 * (size_t)k + 4 * (size_t)c,
					  (float)(t * 3 + (size_t)k) + (float)c * 0.25f);
	struct scan s;
	read_ok(b, len, &s);
	assert_int_equal(s.n_vertices, 3 * n);
	for (size_t i = 0; i < 3 * n; i++) {
		uint32_t v = s.indices[i];
		assert_true(s.positions[3 * v] == (float)i);
		assert_true(s.positions[3 * v + 2] == (float)i + 0.5f);
	}
	scan_release(&s);
	free(b);
}

/* ---- round trip through the writer --------------------------------- */

static int cmp_pos(const void *a, const void *b)
{
	return memcmp(a, b, 3 * sizeof(float));
}

/* Distinct positions of s, counted by sorting copies (welding's answer). */
static size_t distinct_positions(const struct scan *s)
{
	float *p = malloc(s->n_vertices * 3 * sizeof(float) + 1);
	assert_non_null(p);
	memcpy(p, s->positions, s->n_vertices * 3 * sizeof(float));
	for (size_t i = 0; i < 3 * s->n_vertices; i++)
		if (p[i] == 0.0f)
			p[i] = 0.0f;
	qsort(p, s->n_vertices, 3 * sizeof(float), cmp_pos);
	size_t n = s->n_vertices ? 1 : 0;
	for (size_t i = 1; i < s->n_vertices; i++)
		n += memcmp(p + 3 * (i - 1), p + 3 * i, 3 * sizeof(float)) != 0;
	free(p);
	return n;
}

static void test_stl_reads_back_generated_scans_written_by_stl_write(void **state)
{
	(void)state;
	struct gen_params gp;
	struct scan g, s;
	struct err e;
	gen_params_init(&gp);
	gp.form = GEN_FORM_TORUS;     /* the wrap seams duplicate vertices */
	gp.material = GEN_MAT_BARK;
	gp.triangles = 6000;
	gp.seed = 7;
	err_init(&e);
	assert_int_equal(gen_scan(&gp, &g, NULL, &e), 0);
	size_t want_v = distinct_positions(&g);
	assert_true(want_v < g.n_vertices); /* seams exist and must weld */
	for (int ascii = 0; ascii <= 1; ascii++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *fp = open_memstream(&buf, &len);
		assert_non_null(fp);
		assert_int_equal(stl_write_stream(fp, &g, ascii, &e), 0);
		assert_int_equal(fclose(fp), 0);
		read_ok(buf, len, &s);
		assert_string_equal(s.encoding, ascii ? "ascii" : "binary");
		assert_int_equal(s.n_faces, g.n_faces);
		assert_int_equal(s.n_vertices, want_v);
		/* every corner is the generated position, bit for bit */
		for (size_t i = 0; i < 3 * g.n_faces; i++) {
			const float *a = g.positions + 3 * g.indices[i];
			const float *b = s.positions + 3 * s.indices[i];
			for (int k = 0; k < 3; k++)
				assert_true(a[k] == b[k]);
		}
		scan_release(&s);
		free(buf);
	}
	scan_release(&g);
}

/* ---- garbage, sweeps, detection ------------------------------------ */

static void test_stl_rejects_empty_and_garbage(void **state)
{
	(void)state;
	struct err e;
	assert_int_equal(read_fail("", 0, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "empty file");
	assert_int_equal(read_fail("hello", 5, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "84-byte header"));
	unsigned char noise[300];
	unsigned x = 12345;
	for (size_t i = 0; i < sizeof(noise); i++) {
		x = x * 1103515245u + 12345u;
		noise[i] = (unsigned char)(x >> 16);
	}
	assert_int_equal(read_fail(noise, sizeof(noise), &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "truncated"));
	/* a solid with no facet cut before its endsolid */
	assert_int_equal(read_fail("solid", 5, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "expected 'facet' or 'endsolid' near end of file");
	/* text with a NUL is not ascii STL: read as binary, which it is not */
	static const char nul_text[] = "solid x\nendsolid x\n\0";
	assert_int_equal(read_fail(nul_text, sizeof(nul_text) - 1, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "84-byte header"));
}

static void test_stl_every_prefix_of_a_binary_fails_cleanly(void **state)
{
	(void)state;
	size_t len;
	unsigned char *b = binary_cube("cube", 4, NULL, 0, &len);
	assert_int_equal(readertest_truncation_sweep(stl_read, b, len), len);
	free(b);
	/* the same with a "solid" header, which first tries ascii */
	b = binary_cube("solid cube", 10, NULL, 0, &len);
	assert_int_equal(readertest_truncation_sweep(stl_read, b, len), len);
	free(b);
}

static void test_stl_every_prefix_of_an_ascii_facet_fails_cleanly(void **state)
{
	(void)state;
	/* cut anywhere inside the facet; every cut before 'endfacet' ends fails */
	static const char text[] =
		"solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
		"vertex 0 1 0\nendloop\nendfacet";
	size_t start = strlen("solid t\n") + 1;
	struct err e;
	for (size_t k = start; k < sizeof(text) - 1; k++) {
		char *p = malloc(k);
		assert_non_null(p);
		memcpy(p, text, k);
		assert_int_equal(read_fail(p, k, &e), ERR_FORMAT);
		free(p);
	}
	struct scan s;
	read_ok(text, sizeof(text) - 1, &s);
	assert_int_equal(s.n_faces, 1);
	scan_release(&s);
}

static void test_stl_allocation_failures_are_clean(void **state)
{
	(void)state;
	struct sbuf a = { 0 };
	ascii_solid(&a, "one", 0, 6, "\n");
	ascii_solid(&a, "two", 6, 12, "\n");
	assert_true(readertest_oom_sweep(stl_read, (unsigned char *)a.p, a.len) > 2);
	free(a.p);

	uint16_t attrs[12] = { 0 };
	attrs[3] = 0x8000 | 5;
	size_t len;
	unsigned char *b = binary_cube("solid x", 7, attrs, 9, &len);
	assert_true(readertest_oom_sweep(stl_read, b, len) > 2);
	free(b);
	b = binary_cube("COLOR=abcd", 10, NULL, 0, &len);
	assert_true(readertest_oom_sweep(stl_read, b, len) > 2);
	free(b);
}

static void test_stl_probe_and_detection(void **state)
{
	(void)state;
	size_t len;
	unsigned char *b = binary_cube("solid x", 7, NULL, 0, &len);
	assert_int_equal(stl_probe(b, len), 100);
	static const char text[] = "solid x\nfacet normal 0 0 1\n";
	assert_int_equal(stl_probe((const unsigned char *)text, sizeof(text) - 1), 100);
	assert_int_equal(stl_probe((const unsigned char *)"solidify", 8), 0);
	assert_int_equal(stl_probe((const unsigned char *)"ply\nformat", 10), 0);
	const struct format *f = format_detect(b, len, NULL);
	assert_non_null(f);
	assert_string_equal(f->name, "stl");
	/* cut short: only the name keeps it an STL, for a clear error */
	f = format_detect(b, len - 10, "stl");
	assert_non_null(f);
	assert_string_equal(f->name, "stl");
	struct scan s;
	struct err e;
	err_init(&e);
	assert_int_equal(scan_read_buffer(b, len - 10, "part.stl", NULL, &s, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "truncated"));
	free(b);
}

static void test_stl_fixtures_read_as_listed(void **state)
{
	(void)state;
	size_t n = readertest_replay("stl", stl_read);
	printf("  %zu stl fixtures checked\n", n);
	assert_true(n >= 18);

	/* values behind the counts of two fixtures */
	char path[4096];
	unsigned char *buf;
	size_t len;
	struct scan s;
	snprintf(path, sizeof(path), "%s/tests/data/stl/good/magics-color.stl", readertest_top());
	assert_int_equal(readertest_load(path, &buf, &len), 0);
	read_ok(buf, len, &s);
	static const uint8_t blue[4] = { 0, 0, 255, 255 }, red[4] = { 255, 0, 0, 255 };
	assert_memory_equal(s.face_colors, blue, 4);
	assert_memory_equal(s.face_colors + 4 * 11, red, 4);
	scan_release(&s);
	free(buf);
	snprintf(path, sizeof(path), "%s/tests/data/stl/good/cube-crlf-upper.stl", readertest_top());
	assert_int_equal(readertest_load(path, &buf, &len), 0);
	read_ok(buf, len, &s);
	assert_cube(&s, 0, 12);
	scan_release(&s);
	free(buf);
}

/* ---- third-party files --------------------------------------------- */

/*
 * Files in ../shared/data/conformance that are not valid STL syntax and
 * must be refused.  Other files in npm-stl-models/broken are broken as
 * geometry (missing face, wrong normals) but valid STL, so they read.
 */
static const char *const conf_invalid[] = {
	"npm-stl-models/broken/empty.stl",
	"npm-stl-models/broken/fourVertices.ascii.stl",
	"npm-stl-models/broken/twoVertices.ascii.stl",
	"npm-stl-models/broken/quad.ascii.stl",
	"npm-stl-models/broken/missingNormal.ascii.stl",
	"npm-stl-models/broken/incorrectFaceCounter.bin.stl",
	"debian-openscad-testing-data/testdata/stl/empty.stl",
	"debian-openscad-testing-data/testdata/stl/unparseable.stl",
	"debian-openscad-testing-data/testdata/stl/invalidvertex.stl",
	"debian-openscad-testing-data/testdata/stl/toomanyvertices.stl",
};

static char conf_root[4096];
static size_t conf_n, conf_pass;

/* Independent count: binary size rule, else 'endfacet' words, else the header. */
static long long declared_triangles(const unsigned char *b, size_t len)
{
	if (len >= 84) {
		uint64_t n = (uint64_t)b[80] | (uint64_t)b[81] << 8 | (uint64_t)b[82] << 16 |
			     (uint64_t)b[83] << 24;
		if (84 + 50 * n == len || (memchr(b, 0, len) && 84 + 50 * n <= len))
			return (long long)n;
	}
	long long n = 0;
	for (size_t i = 0; i + 8 <= len; i++)
		if (!strncasecmp((const char *)b + i, "endfacet", 8))
			n++;
	return n;
}

static int conf_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	const char *dot = strrchr(path, '.');
	if (type != FTW_F || !dot || strcasecmp(dot, ".stl"))
		return 0;
	const char *rel = path + strlen(conf_root) + 1;
	bool want_fail = false;
	for (size_t i = 0; i < sizeof(conf_invalid) / sizeof(conf_invalid[0]); i++)
		if (!strcmp(rel, conf_invalid[i]))
			want_fail = true;
	unsigned char *buf;
	size_t len;
	assert_int_equal(readertest_load(path, &buf, &len), 0);
	struct scan s;
	struct err e;
	err_init(&e);
	int rc = stl_read(buf, len, NULL, &s, &e);
	long long want = declared_triangles(buf, len);
	bool pass;
	char what[400];
	if (rc < 0) {
		pass = want_fail && e.msg[0];
		snprintf(what, sizeof(what), "error: %s", e.msg);
	} else {
		pass = !want_fail && (long long)s.n_faces == want;
		snprintf(what, sizeof(what), "%s, %zu vertices, %zu/%lld triangles%s%s",
			 s.encoding, s.n_vertices, s.n_faces, want,
			 s.face_colors ? ", face colours" : "",
			 want_fail ? " (expected an error)" : "");
	}
	printf("  %s  %-70s %s\n", pass ? "pass" : "FAIL", rel, what);
	conf_n++;
	conf_pass += pass;
	scan_release(&s);
	free(buf);
	return 0;
}

static void test_stl_conformance_files(void **state)
{
	(void)state;
	const char *data = getenv("REFSCAN_SHARED_DATA");
	snprintf(conf_root, sizeof(conf_root), "%s/conformance",
		 data && *data ? data : "../shared/data");
	if (access(conf_root, R_OK) != 0) {
		printf("  stl conformance: skipped: %s is not present\n", conf_root);
		skip();
	}
	assert_int_equal(nftw(conf_root, conf_visit, 16, FTW_PHYS), 0);
	printf("  stl conformance: %zu files, %zu pass, %zu fail (%.1f%%)\n", conf_n, conf_pass,
	       conf_n - conf_pass, conf_n ? 100.0 * (double)conf_pass / (double)conf_n : 0.0);
	assert_true(conf_n > 0);
	assert_int_equal(conf_pass, conf_n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stl_ascii_cube_welds_36_corners_into_8_vertices),
		cmocka_unit_test(test_stl_ascii_reads_two_solids_as_one_mesh),
		cmocka_unit_test(test_stl_ascii_accepts_crlf_blank_lines_indent_and_upper_case),
		cmocka_unit_test(test_stl_ascii_missing_endsolid_after_complete_facet_is_a_warning),
		cmocka_unit_test(test_stl_ascii_errors_name_the_line_and_token),
		cmocka_unit_test(test_stl_units_come_from_the_header_text),
		cmocka_unit_test(test_stl_binary_cube_welds_and_ignores_facet_normals),
		cmocka_unit_test(test_stl_binary_with_solid_header_and_exact_size_is_binary),
		cmocka_unit_test(test_stl_solid_header_binary_with_trailing_bytes_falls_back_to_binary),
		cmocka_unit_test(test_stl_binary_shorter_than_declared_names_offset_and_counts),
		cmocka_unit_test(test_stl_binary_count_over_limit_is_err_limit),
		cmocka_unit_test(test_stl_magics_color_header_gives_default_and_facet_colours),
		cmocka_unit_test(test_stl_viscam_colours_need_bit_15_and_reverse_channels),
		cmocka_unit_test(test_stl_minus_zero_welds_with_plus_zero),
		cmocka_unit_test(test_stl_welding_keeps_distinct_positions_of_a_triangle_soup),
		cmocka_unit_test(test_stl_reads_back_generated_scans_written_by_stl_write),
		cmocka_unit_test(test_stl_rejects_empty_and_garbage),
		cmocka_unit_test(test_stl_every_prefix_of_a_binary_fails_cleanly),
		cmocka_unit_test(test_stl_every_prefix_of_an_ascii_facet_fails_cleanly),
		cmocka_unit_test(test_stl_allocation_failures_are_clean),
		cmocka_unit_test(test_stl_probe_and_detection),
		cmocka_unit_test(test_stl_fixtures_read_as_listed),
		cmocka_unit_test(test_stl_conformance_files),
	};
	return cmocka_run_group_tests_name("stl", tests, NULL, NULL);
}
