/*
 * test_off.c - the Geomview OFF reader (formats/off.c): every keyword
 * variant, comments and count placement, polygons, the colour notations,
 * homogeneous coordinates, binary OFF, count and index errors, sweeps,
 * fixtures, and the third-party OFF files in ../shared/data/conformance
 * when present.
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
#include "tests/lib/readertest.h"

static const char cube_verts[] =
	"0 0 0\n1 0 0\n1 1 0\n0 1 0\n0 0 1\n1 0 1\n1 1 1\n0 1 1\n";
static const int cube_quads[6][4] = {
	{ 0, 3, 2, 1 }, { 4, 5, 6, 7 }, { 0, 1, 5, 4 },
	{ 1, 2, 6, 5 }, { 2, 3, 7, 6 }, { 3, 0, 4, 7 },
};

/* "4 a b c d<suffix i>\n" for the six cube quads, into buf. */
static void cube_faces(char *buf, size_t n, const char *const suffix[6])
{
	size_t len = 0;
	for (int i = 0; i < 6; i++) {
		int w = snprintf(buf + len, n - len, "4 %d %d %d %d%s\n", cube_quads[i][0],
				 cube_quads[i][1], cube_quads[i][2], cube_quads[i][3],
				 suffix ? suffix[i] : "");
		assert_true(w > 0 && (size_t)w < n - len);
		len += (size_t)w;
	}
}

static void read_ok(const char *text, size_t len, struct scan *s)
{
	struct err e;
	err_init(&e);
	int rc = off_read((const unsigned char *)text, len, NULL, s, &e);
	if (rc)
		fail_msg("off_read failed: %d line %ld: %s", rc, e.line, e.msg);
}

static void read_str(const char *text, struct scan *s)
{
	read_ok(text, strlen(text), s);
}

static int read_fail(const char *text, size_t len, struct err *e)
{
	struct scan s;
	err_init(e);
	int rc = off_read((const unsigned char *)text, len, NULL, &s, e);
	assert_true(rc < 0);
	assert_true(e->msg[0] != '\0');
	assert_int_equal(s.n_vertices, 0);
	assert_null(s.positions);
	return rc;
}

static int fail_str(const char *text, struct err *e)
{
	return read_fail(text, strlen(text), e);
}

static bool has_warning(const struct scan *s, const char *needle)
{
	for (size_t i = 0; i < s->n_warnings; i++)
		if (strstr(s->warnings[i], needle))
			return true;
	return false;
}

/* Twice the signed area of triangle t in the xy, yz or zx plane (axis). */
static double tri_area2(const struct scan *s, size_t t, int axis)
{
	const float *a = s->positions + 3 * s->indices[3 * t];
	const float *b = s->positions + 3 * s->indices[3 * t + 1];
	const float *c = s->positions + 3 * s->indices[3 * t + 2];
	int u = axis, v = (axis + 1) % 3;
	return ((double)b[u] - a[u]) * ((double)c[v] - a[v]) -
	       ((double)c[u] - a[u]) * ((double)b[v] - a[v]);
}

/*
 * The unit cube from quads: 8 vertices at their coordinates, 12 triangles,
 * each from its own quad's corners, the pair of a quad covering it with
 * its winding (signed areas add up to the quad's).
 */
static void assert_cube(const struct scan *s)
{
	assert_int_equal(s->n_vertices, 8);
	assert_int_equal(s->n_faces, 12);
	assert_int_equal(s->n_polygons, 6);
	static const float v[8][3] = {
		{ 0, 0, 0 }, { 1, 0, 0 }, { 1, 1, 0 }, { 0, 1, 0 },
		{ 0, 0, 1 }, { 1, 0, 1 }, { 1, 1, 1 }, { 0, 1, 1 },
	};
	assert_memory_equal(s->positions, v, sizeof(v));
	for (int q = 0; q < 6; q++) {
		for (int t = 0; t < 2; t++)
			for (int k = 0; k < 3; k++) {
				int idx = (int)s->indices[3 * (2 * q + t) + k];
				assert_true(idx == cube_quads[q][0] || idx == cube_quads[q][1] ||
					    idx == cube_quads[q][2] || idx == cube_quads[q][3]);
			}
		/* each quad lies in an axis plane: area 1, both halves same winding */
		double sum = 0;
		for (int axis = 0; axis < 3; axis++) {
			double a0 = tri_area2(s, 2 * (size_t)q, axis);
			double a1 = tri_area2(s, 2 * (size_t)q + 1, axis);
			assert_true(a0 * a1 >= 0);
			sum += fabs(a0 + a1);
		}
		assert_true(fabs(sum - 2.0) < 1e-6);
	}
}

/* ---- keyword, counts, comments ------------------------------------- */

static void test_off_reads_cube_of_quads_as_12_triangles(void **state)
{
	(void)state;
	char faces[256], text[512];
	cube_faces(faces, sizeof(faces), NULL);
	snprintf(text, sizeof(text), "OFF\n8 6 12\n%s%s", cube_verts, faces);
	struct scan s;
	read_str(text, &s);
	assert_string_equal(s.encoding, "ascii");
	assert_cube(&s);
	assert_null(s.normals);
	assert_null(s.colors);
	assert_null(s.uvs);
	assert_null(s.face_colors);
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);
}

static void test_off_counts_on_keyword_line_glued_or_on_a_later_line(void **state)
{
	(void)state;
	static const char *const heads[] = {
		"OFF 8 6 0\n", "OFF8 6 12\n", "\t  OFF8 6 12 # or nah\n", "OFF\n\n8\n6\n",
		"OFF\n# counts\n8 6 # edges omitted\n", "\xEF\xBB\xBFOFF\n8 6 0\n",
		"# leading comment\n#\n\nOFF\n8 6 12\n",
	};
	char faces[256], text[512];
	cube_faces(faces, sizeof(faces), NULL);
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		snprintf(text, sizeof(text), "%s%s%s", heads[i], cube_verts, faces);
		struct scan s;
		read_str(text, &s);
		assert_cube(&s);
		scan_release(&s);
	}
}

static void test_off_comments_anywhere_blank_lines_and_crlf(void **state)
{
	(void)state;
	static const char text[] =
		"# a cube\r\nOFF# keyword\r\n8 6 12#counts\r\n\r\n"
		"0 0 0#v0\r\n1 0 0 # v1\r\n\r\n1 1 0\r\n0 1 0\r\n# top\r\n0 0 1\r\n1 0 1\r\n1 1 1\r\n0 1 1\r\n"
		"4 0 3 2 1#bottom\r\n4 4 5 6 7 # top\r\n\r\n4 0 1 5 4\r\n4 1 2 6 5\r\n"
		"4 2 3 7 6\r\n4 3 0 4 7\r\n# end\r\n";
	struct scan s;
	read_ok(text, sizeof(text) - 1, &s);
	assert_cube(&s);
	assert_null(s.face_colors);
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);
}

static void test_off_probe_accepts_every_keyword_variant(void **state)
{
	(void)state;
	static const char *const yes[] = {
		"OFF\n", "COFF\n", "NOFF\n", "CNOFF\n", "STOFF\n", "STCNOFF\n", "4OFF\n",
		"nOFF\n", "4nOFF\n", "STC4nOFF\n", "OFF BINARY\n", "OFF8 6 12", "# c\n  OFF",
		"OFF",
	};
	static const char *const no[] = {
		"OFFSET 1 2 3", "NCOFF\n", "off\n", "ply\n", "solid x\n", "3 4 5\n", "COFFEE",
	};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_int_equal(off_probe((const unsigned char *)yes[i], strlen(yes[i])), 100);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_int_equal(off_probe((const unsigned char *)no[i], strlen(no[i])), 0);
	struct err e;
	assert_int_equal(fail_str("NCOFF\n3 1 0\n", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "expected an OFF keyword ([ST][C][N][4][n]OFF) near 'NCOFF'");
}

/* ---- per-vertex data ------------------------------------------------ */

static void test_off_coff_vertex_colours_as_floats_or_bytes(void **state)
{
	(void)state;
	struct scan s;
	read_str("COFF\n3 1 0\n"
		 "0 0 0 1.0 0.5 0.0 0.25\n"   /* floats with alpha */
		 "1 0 0 255 128 0\n"          /* integers, no alpha */
		 "0 1 0 1 0 0 1\n"            /* integers: near black, not red */
		 "3 0 1 2\n", &s);
	assert_non_null(s.colors);
	static const uint8_t want[3][4] = {
		{ 255, 128, 0, 64 }, { 255, 128, 0, 255 }, { 1, 0, 0, 1 },
	};
	assert_memory_equal(s.colors, want, sizeof(want));
	assert_null(s.face_colors);
	scan_release(&s);

	/* Geomview reads float colours above 1 as 0..255 */
	read_str("COFF\n3 1 0\n0 0 0 255.0 0 0\n1 0 0 0 0.5 1\n0 1 0 2 -1 300 0.5\n3 0 1 2\n", &s);
	static const uint8_t want2[3][4] = {
		{ 255, 0, 0, 255 }, { 0, 128, 255, 255 }, { 2, 0, 255, 1 },
	};
	assert_memory_equal(s.colors, want2, sizeof(want2));
	assert_true(has_warning(&s, "2 colour values out of range (clamped)"));
	scan_release(&s);
}

static void test_off_noff_stoff_and_combined_prefixes_fill_their_arrays(void **state)
{
	(void)state;
	struct scan s;
	read_str("NOFF\n3 1 0\n0 0 0 0 0 1\n1 0 0 0 1 0\n0 1 0 1 0 0\n3 0 1 2\n", &s);
	static const float n[9] = { 0, 0, 1, 0, 1, 0, 1, 0, 0 };
	assert_non_null(s.normals);
	assert_memory_equal(s.normals, n, sizeof(n));
	assert_null(s.colors);
	scan_release(&s);

	read_str("STOFF\n3 1 0\n0 0 0 0.25 0.75\n1 0 0 1 0\n0 1 0 0 1\n3 0 1 2\n", &s);
	static const float uv[6] = { 0.25f, 0.75f, 1, 0, 0, 1 };
	assert_non_null(s.uvs);
	assert_memory_equal(s.uvs, uv, sizeof(uv));
	scan_release(&s);

	/* every prefix, in order: position(4), normal, colour, texture */
	read_str("STCN4nOFF\n3\n3 1\n"
		 "2 4 6 2  0 0 1  0.0 1.0 0.0  0.5 0.25\n"
		 "3 0 0 3  0 1 0  1.0 0.0 0.0 0.5  1 1\n"
		 "0 0 0 1  1 0 0  0.0 0.0 0.0  0 0\n"
		 "3 0 1 2\n", &s);
	static const float p[6] = { 1, 2, 3, 1, 0, 0 };
	static const float n2[6] = { 0, 0, 1, 0, 1, 0 };
	static const uint8_t c[8] = { 0, 255, 0, 255, 255, 0, 0, 128 };
	static const float uv2[4] = { 0.5f, 0.25f, 1, 1 };
	assert_int_equal(s.n_vertices, 3);
	assert_int_equal(s.n_faces, 1);
	assert_memory_equal(s.positions, p, sizeof(p));
	assert_memory_equal(s.normals, n2, sizeof(n2));
	assert_memory_equal(s.colors, c, sizeof(c));
	assert_memory_equal(s.uvs, uv2, sizeof(uv2));
	scan_release(&s);
}

static void test_off_4off_divides_by_w_and_w_zero_is_non_finite(void **state)
{
	(void)state;
	struct scan s;
	read_str("4OFF\n4 1 0\n2 4 6 2\n-3 0 1.5 -1.5\n0 1 0 0.5\n1 1 1 0\n3 0 1 2\n", &s);
	assert_true(s.positions[0] == 1.0f && s.positions[1] == 2.0f && s.positions[2] == 3.0f);
	assert_true(s.positions[3] == 2.0f && s.positions[4] == 0.0f && s.positions[5] == -1.0f);
	assert_true(s.positions[7] == 2.0f);
	assert_false(scan_vertex_finite(&s, 3));
	assert_int_equal(s.n_nonfinite, 1);
	assert_true(s.bbox_max[2] == 3.0f);
	assert_true(has_warning(&s, "non-finite"));
	scan_release(&s);
}

static void test_off_ndim_other_than_3_is_unsupported(void **state)
{
	(void)state;
	struct err e;
	assert_int_equal(fail_str("nOFF\n4\n1 0 0\n0 0 0 0\n", &e), ERR_UNSUPPORTED);
	assert_string_equal(e.msg, "nOFF with dimension 4 is not supported (only 3)");
	assert_int_equal(e.line, 2);
	struct scan s;
	read_str("nOFF 3 3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", &s);
	assert_int_equal(s.n_faces, 1);
	scan_release(&s);
}

static void test_off_vertex_line_errors_name_line_and_vertex(void **state)
{
	(void)state;
	struct err e;
	assert_int_equal(fail_str("OFF\n3 1 0\n0 0 0\n1 0 zero\n0 1 0\n3 0 1 2\n", &e), ERR_FORMAT);
	assert_int_equal(e.line, 4);
	assert_string_equal(e.msg, "vertex 1: bad number near 'zero'");
	assert_int_equal(fail_str("COFF\n3 1 0\n0 0 0 1 1 1\n1 0 0 1 1\n0 1 0 1 1 1\n3 0 1 2\n", &e),
			 ERR_FORMAT);
	assert_string_equal(e.msg, "vertex 1: expected 6 values, found 5");
	/* within the byte bound, but the file ends before the last vertex */
	assert_int_equal(fail_str("OFF\n3 0 0\n0.000000 0.000000 0.000000\n1.000000 0 0\n", &e),
			 ERR_FORMAT);
	assert_string_equal(e.msg, "truncated: expected vertex 2 of 3 near end of file");
	struct scan s;
	read_str("OFF\n3 1 0\n0 0 0 9 9\n1 0 0\n0 1 0\n3 0 1 2\n", &s);
	assert_true(has_warning(&s, "1 vertex lines carry extra values (ignored)"));
	scan_release(&s);
}

/* ---- faces ---------------------------------------------------------- */

static void test_off_face_colours_in_every_notation(void **state)
{
	(void)state;
	char faces[512], text[1024];
	static const char *const suffix[6] = {
		" 255 0 0",           /* 3 integers */
		" 0 255 0 128",       /* 4 integers */
		" 0.0 0.0 1.0",       /* 3 floats */
		" 1.0 1.0 0.0 0.5",   /* 4 floats */
		"",                   /* no colour: Geomview grey */
		" 7",                 /* colormap index: ignored */
	};
	cube_faces(faces, sizeof(faces), suffix);
	snprintf(text, sizeof(text), "OFF\n8 6 12\n%s%s", cube_verts, faces);
	struct scan s;
	read_str(text, &s);
	assert_cube(&s);
	assert_non_null(s.face_colors);
	static const uint8_t want[6][4] = {
		{ 255, 0, 0, 255 }, { 0, 255, 0, 128 }, { 0, 0, 255, 255 },
		{ 255, 255, 0, 128 }, { 170, 170, 170, 170 }, { 170, 170, 170, 170 },
	};
	for (int q = 0; q < 6; q++)
		for (int t = 0; t < 2; t++)
			assert_memory_equal(s.face_colors + 4 * (2 * q + t), want[q], 4);
	assert_true(has_warning(&s, "1 faces give a colormap index instead of a colour"));
	scan_release(&s);

	/* two trailing values are no colour */
	read_str("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2 0.5 0.5\n", &s);
	assert_null(s.face_colors);
	assert_true(has_warning(&s, "1 faces end with values that are not a colour"));
	scan_release(&s);
	struct err e;
	assert_int_equal(fail_str("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2 red\n", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "face 0: bad colour value near 'red'");
}

static void test_off_first_coloured_face_greys_the_earlier_ones(void **state)
{
	(void)state;
	struct scan s;
	read_str("OFF\n4 3 0\n0 0 0\n1 0 0\n0 1 0\n1 1 0\n"
		 "3 0 1 2\n4 0 1 3 2 0 0 255\n3 1 3 2\n", &s);
	assert_int_equal(s.n_faces, 4);
	static const uint8_t want[4][4] = {
		{ 170, 170, 170, 170 }, { 0, 0, 255, 255 }, { 0, 0, 255, 255 }, { 170, 170, 170, 170 },
	};
	assert_memory_equal(s.face_colors, want, sizeof(want));
	scan_release(&s);
}

static void test_off_pentagons_and_concave_polygons_keep_their_outline(void **state)
{
	(void)state;
	/* concave: the notch at (1,1) makes a fan from vertex 0 leave the outline */
	struct scan s;
	read_str("OFF\n5 1 0\n0 0 0\n1 1 0\n2 0 0\n2 2 0\n0 2 0\n5 0 1 2 3 4\n", &s);
	assert_int_equal(s.n_faces, 3);
	assert_int_equal(s.n_polygons, 1);
	unsigned used = 0;
	double signed_sum = 0;
	for (size_t t = 0; t < 3; t++) {
		for (int k = 0; k < 3; k++)
			used |= 1u << s.indices[3 * t + (size_t)k];
		double a = tri_area2(&s, t, 0);
		/* no triangle folds back over the notch */
		assert_true(a > 0);
		signed_sum += a;
	}
	assert_int_equal(used, 0x1F);
	/* the polygon winds counter-clockwise, twice-area 6; its triangles agree */
	assert_true(fabs(signed_sum - 6.0) < 1e-6);
	scan_release(&s);

	/* a convex hexagon and a triangle: 4 + 1 triangles */
	read_str("OFF\n6 2 0\n2 0 0\n1 1.7 0\n-1 1.7 0\n-2 0 0\n-1 -1.7 0\n1 -1.7 0\n"
		 "6 0 1 2 3 4 5\n3 0 2 4\n", &s);
	assert_int_equal(s.n_faces, 5);
	assert_int_equal(s.n_polygons, 2);
	for (size_t t = 0; t < 5; t++)
		assert_true(tri_area2(&s, t, 0) > 0);
	scan_release(&s);
}

static void test_off_short_faces_are_skipped_with_a_count_but_checked(void **state)
{
	(void)state;
	struct scan s;
	read_str("OFF\n4 5 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n2 0 1\n1 3\n0\n3 0 1 2\n2 2 3 1 0 0\n", &s);
	assert_int_equal(s.n_faces, 1);
	assert_int_equal(s.n_polygons, 5);
	assert_true(has_warning(&s, "4 faces with fewer than 3 vertices skipped"));
	scan_release(&s);
	struct err e;
	assert_int_equal(fail_str("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n2 0 9\n3 0 1 2\n", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "face 0: vertex index 9 out of range (have 3)");
}

static void test_off_degenerate_faces_with_repeated_indices_are_kept(void **state)
{
	(void)state;
	struct scan s;
	read_str("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 0 0\n4 0 1 1 2\n", &s);
	assert_int_equal(s.n_faces, 3);
	for (size_t i = 0; i < 9; i++)
		assert_true(s.indices[i] < 3);
	scan_release(&s);
}

static void test_off_index_out_of_range_names_line_face_and_index(void **state)
{
	(void)state;
	struct err e;
	static const char text[] = "OFF\n3 4\n0.1 0.2 0.3\n0.2 0.3 0.4\n0.3 0.4 0.5\n0\n2\r20\n4\n";
	assert_int_equal(read_fail(text, sizeof(text) - 1, &e), ERR_FORMAT);
	assert_int_equal(e.line, 7);
	assert_string_equal(e.msg, "face 1: vertex index 20 out of range (have 3)");
	assert_int_equal(fail_str("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 -1 2\n", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "face 0: vertex index -1 out of range (have 3)");
	assert_int_equal(fail_str("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 99999999999999999999\n", &e),
			 ERR_FORMAT);
	assert_non_null(strstr(e.msg, "bad vertex index"));
}

static void test_off_face_indices_may_wrap_onto_following_lines(void **state)
{
	(void)state;
	struct scan s;
	read_str("OFF\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0\n1\n  2 3 255 0 0\n", &s);
	assert_int_equal(s.n_faces, 2);
	static const uint8_t red[4] = { 255, 0, 0, 255 };
	assert_memory_equal(s.face_colors, red, 4);
	assert_memory_equal(s.face_colors + 4, red, 4);
	scan_release(&s);
}

/* ---- counts --------------------------------------------------------- */

static void test_off_huge_declared_counts_fail_before_allocating(void **state)
{
	(void)state;
	struct err e;
	assert_int_equal(fail_str("OFF\n1099511627776 1 0\n0 0 0\n", &e), ERR_LIMIT);
	assert_string_equal(e.msg, "header declares 1099511627776 vertices (limit 2147483647)");
	assert_int_equal(fail_str("OFF\n3 1099511627776 0\n0 0 0\n1 0 0\n0 1 0\n", &e), ERR_LIMIT);
	assert_int_equal(fail_str("OFF\n18446744073709551615 1 0\n", &e), ERR_LIMIT);
	assert_int_equal(fail_str("OFF\n18446744073709551616 1 0\n", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "bad vertex count near '18446744073709551616'");
	/* under the limits, over what the bytes can hold */
	assert_int_equal(fail_str("OFF\n1000000000 1000000000 0\n0 0 0\n", &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "truncated: header declares 1000000000 vertices"));
	assert_int_equal(fail_str("OFF\n3 1000 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", &e), ERR_FORMAT);
	/* limits shrunk at run time */
	struct limits lim;
	struct scan s;
	limits_init(&lim);
	lim.max_vertices = 2;
	err_init(&e);
	static const char tri[] = "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n";
	assert_int_equal(off_read((const unsigned char *)tri, sizeof(tri) - 1, &lim, &s, &e),
			 ERR_LIMIT);
	limits_init(&lim);
	lim.max_faces = 1;
	static const char quad[] = "OFF\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n";
	assert_int_equal(off_read((const unsigned char *)quad, sizeof(quad) - 1, &lim, &s, &e),
			 ERR_LIMIT);
	assert_string_equal(e.msg, "more than 1 triangles (limit)");
	limits_init(&lim);
	lim.max_polygon_degree = 3;
	assert_int_equal(off_read((const unsigned char *)quad, sizeof(quad) - 1, &lim, &s, &e),
			 ERR_LIMIT);
	assert_string_equal(e.msg, "face 0: 4 vertices (limit 3)");
}

static void test_off_bad_counts_and_header_errors(void **state)
{
	(void)state;
	struct err e;
	assert_int_equal(fail_str("OFF\n-3 1 0\n", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "bad vertex count near '-3'");
	assert_int_equal(fail_str("OFF\n3 x 0\n", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "bad face count near 'x'");
	assert_int_equal(fail_str("OFF\n3 1 0 7\n0 0 0\n", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "unexpected '7' after the vertex and face counts");
	assert_int_equal(fail_str("OFF", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "bad vertex count near 'end of file'");
	assert_int_equal(fail_str("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "truncated: expected face 0 of 1 near end of file");
	assert_int_equal(fail_str("OFF\n9 1 0\n0 0 0\n1 0 0\n0 1 0\n", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "truncated: header declares 9 vertices and 1 faces, more than the 19 bytes that follow hold");
	assert_int_equal(fail_str("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", &e), ERR_FORMAT);
	assert_string_equal(e.msg, "truncated: expected face 1 of 2 near end of file");
	assert_int_equal(fail_str("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1", &e), ERR_FORMAT);
	assert_int_equal(read_fail("", 0, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "empty file");
	struct scan s;
	read_str("OFF\n0 0 0\n", &s);
	assert_int_equal(s.n_vertices, 0);
	assert_int_equal(s.n_faces, 0);
	scan_release(&s);
	read_str("OFF\n2 0 0\n1 2 3\n4 5 6\n", &s);
	assert_int_equal(s.n_vertices, 2);
	assert_true(s.positions[5] == 6.0f);
	scan_release(&s);
}

/* ---- binary --------------------------------------------------------- */

static size_t put_be(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	return 4;
}

static size_t put_bef(unsigned char *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return put_be(p, u);
}

/* Binary COFF: a unit square as one quad with an RGBA face colour. */
static size_t binary_square(unsigned char *b, const char *keyword)
{
	size_t n = (size_t)snprintf((char *)b, 64, "%s BINARY # data\n", keyword);
	n += put_be(b + n, 4);
	n += put_be(b + n, 1);
	n += put_be(b + n, 0);
	static const float v[4][3] = { { 0, 0, 0 }, { 2, 0, 0 }, { 2, 2, 0 }, { 0, 2, 0 } };
	for (int i = 0; i < 4; i++) {
		for (int k = 0; k < 3; k++)
			n += put_bef(b + n, v[i][k]);
		if (!strcmp(keyword, "COFF"))
			for (int k = 0; k < 4; k++)
				n += put_bef(b + n, k == i ? 1.0f : 0.0f);
	}
	n += put_be(b + n, 4);
	for (uint32_t i = 0; i < 4; i++)
		n += put_be(b + n, i);
	n += put_be(b + n, 4);
	n += put_bef(b + n, 1.0f);
	n += put_bef(b + n, 0.5f);
	n += put_bef(b + n, 0.0f);
	n += put_bef(b + n, 1.0f);
	return n;
}

static void test_off_binary_reads_big_endian_counts_vertices_and_faces(void **state)
{
	(void)state;
	unsigned char b[512];
	size_t n = binary_square(b, "COFF");
	struct scan s;
	struct err e;
	err_init(&e);
	assert_int_equal(off_read(b, n, NULL, &s, &e), 0);
	assert_string_equal(s.encoding, "binary");
	assert_int_equal(s.n_vertices, 4);
	assert_int_equal(s.n_faces, 2);
	assert_int_equal(s.n_polygons, 1);
	assert_true(s.positions[3] == 2.0f && s.positions[7] == 2.0f);
	static const uint8_t vc[16] = { 255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255 };
	assert_memory_equal(s.colors, vc, sizeof(vc));
	static const uint8_t fc[4] = { 255, 128, 0, 255 };
	assert_memory_equal(s.face_colors, fc, 4);
	assert_memory_equal(s.face_colors + 4, fc, 4);
	scan_release(&s);

	/* negative counts, bad colour counts, indices out of range */
	n = binary_square(b, "OFF");
	size_t hdr = strlen("OFF BINARY # data\n");
	unsigned char c[512];
	memcpy(c, b, n);
	put_be(c + hdr, 0xFFFFFFFFu);
	assert_int_equal(off_read(c, n, NULL, &s, &e), ERR_FORMAT);
	assert_int_equal(e.offset, (int64_t)hdr);
	memcpy(c, b, n);
	put_be(c + n - 20, 5);
	assert_int_equal(off_read(c, n, NULL, &s, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "face 0: 5 colour components (expected 0 to 4)");
	memcpy(c, b, n);
	put_be(c + n - 24, 4);
	assert_int_equal(off_read(c, n, NULL, &s, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "face 0: vertex index 4 out of range (have 4)");
	assert_int_equal(e.offset, (int64_t)(n - 24));
	/* trailing bytes are a warning */
	memcpy(c, b, n);
	memcpy(c + n, "tail", 4);
	assert_int_equal(off_read(c, n + 4, NULL, &s, &e), 0);
	assert_true(has_warning(&s, "4 bytes after the last face ignored"));
	scan_release(&s);
	/* BINARY must end its line */
	assert_int_equal(fail_str("OFF BINARY 3 1 0\n", &e), ERR_FORMAT);
}

static void test_off_every_prefix_of_a_binary_fails_cleanly(void **state)
{
	(void)state;
	unsigned char b[512];
	size_t n = binary_square(b, "COFF");
	assert_int_equal(readertest_truncation_sweep(off_read, b, n), n);
}

static void test_off_every_text_prefix_cut_before_the_last_index_fails(void **state)
{
	(void)state;
	char faces[256];
	cube_faces(faces, sizeof(faces), NULL);
	/* COFF: every vertex line gets a colour, as floats */
	char coff[1024];
	size_t o = (size_t)snprintf(coff, sizeof(coff), "COFF\n8 6 12\n");
	for (const char *p = cube_verts; *p;) {
		const char *nl = strchr(p, '\n');
		o += (size_t)snprintf(coff + o, sizeof(coff) - o, "%.*s 0.5 0.5 0.5\n",
				      (int)(nl - p), p);
		p = nl + 1;
	}
	o += (size_t)snprintf(coff + o, sizeof(coff) - o, "%s", faces);
	/* the last index is the byte before the final newline */
	size_t last = o - 1;
	struct err e;
	for (size_t k = 0; k < last; k++) {
		char *p = malloc(k ? k : 1);
		assert_non_null(p);
		memcpy(p, coff, k);
		read_fail(p, k, &e);
		free(p);
	}
	struct scan s;
	read_ok(coff, last, &s);
	assert_cube(&s);
	scan_release(&s);
}

static void test_off_allocation_failures_are_clean(void **state)
{
	(void)state;
	static const char text[] =
		"CNOFF\n5 4 0\n0 0 0 0 0 1 1 0 0\n1 1 0 0 0 1 0 1 0\n2 0 0 0 0 1 0 0 1\n"
		"2 2 0 0 0 1 1 1 1\n0 2 0 0 0 1 0.5 0.5 0.5\n"
		"5 0 1 2 3 4\n3 0 2 4 255 0 0\n2 0 1\n4 0 1 2 3 0.5 0.5 0.5 0.5\n";
	assert_true(readertest_oom_sweep(off_read, (const unsigned char *)text,
					 sizeof(text) - 1) > 3);
	unsigned char b[512];
	size_t n = binary_square(b, "COFF");
	assert_true(readertest_oom_sweep(off_read, b, n) > 3);
}

static void test_off_fixtures_read_as_listed(void **state)
{
	(void)state;
	size_t n = readertest_replay("off", off_read);
	printf("  %zu off fixtures checked\n", n);
	assert_true(n >= 41);
	/* the values behind two of them */
	char path[4096];
	unsigned char *buf;
	size_t len;
	struct scan s;
	snprintf(path, sizeof(path), "%s/tests/data/off/good/comments-blank-lines-crlf.off",
		 readertest_top());
	assert_int_equal(readertest_load(path, &buf, &len), 0);
	read_ok((const char *)buf, len, &s);
	assert_cube(&s);
	scan_release(&s);
	free(buf);
	snprintf(path, sizeof(path), "%s/tests/data/off/good/binary-cube.off", readertest_top());
	assert_int_equal(readertest_load(path, &buf, &len), 0);
	read_ok((const char *)buf, len, &s);
	assert_cube(&s);
	static const uint8_t grey[4] = { 170, 170, 170, 170 }, orange[4] = { 255, 128, 0, 255 };
	assert_memory_equal(s.face_colors, grey, 4);
	assert_memory_equal(s.face_colors + 4 * 2, orange, 4);
	scan_release(&s);
	free(buf);
}

/* ---- third-party files ---------------------------------------------- */

/* Files in ../shared/data/conformance that must be refused, and why. */
static const char *const conf_invalid[] = {
	"debian-assimp-testmodels/invalid/empty.off",        /* empty */
	"debian-assimp-testmodels/invalid/OutOfMemory.off",  /* 3.5e11 vertices */
	"debian-assimp-testmodels/OFF/invalid.off",          /* index 20 of 3 */
};

static char conf_root[4096];
static size_t conf_n, conf_pass;

/* Independent reading of the header counts: keyword, [Ndim], NV NF. */
static bool declared_counts(const unsigned char *b, size_t len, long long *nv, long long *nf)
{
	char tok[64];
	long long v[3];
	int got = 0, want = 2;
	size_t i = 0;
	bool keyword = true;
	while (i < len && got < want) {
		while (i < len && (isspace(b[i]) || b[i] == '#')) {
			if (b[i] == '#')
				while (i < len && b[i] != '\n')
					i++;
			else
				i++;
		}
		size_t n = 0;
		while (i < len && !isspace(b[i]) && b[i] != '#' && n + 1 < sizeof(tok))
			tok[n++] = (char)b[i++];
		tok[n] = '\0';
		if (!n)
			break;
		if (keyword) {
			keyword = false;
			char *o = strstr(tok, "OFF");
			if (!o)
				return false;
			if (o > tok && o[-1] == 'n')
				want = 3;
			if (o[3]) /* counts glued to the keyword */
				v[got++] = strtoll(o + 3, NULL, 10);
			continue;
		}
		v[got++] = strtoll(tok, NULL, 10);
	}
	if (got < want)
		return false;
	*nv = v[want - 2];
	*nf = v[want - 1];
	return true;
}

static int conf_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type != FTW_F)
		return 0;
	const char *rel = path + strlen(conf_root) + 1;
	const char *base = strrchr(path, '/') + 1;
	const char *dot = strrchr(base, '.');
	unsigned char *buf;
	size_t len;
	if (dot && strcasecmp(dot, ".off"))
		return 0;
	assert_int_equal(readertest_load(path, &buf, &len), 0);
	long long nv = -1, nf = -1;
	bool declared = declared_counts(buf, len, &nv, &nf);
	/* extension-less Geomview files count when their first word says OFF */
	if (!dot && (!strstr(rel, "debian-geomview-off/") || !declared)) {
		free(buf);
		return 0;
	}
	bool want_fail = false;
	for (size_t i = 0; i < sizeof(conf_invalid) / sizeof(conf_invalid[0]); i++)
		if (!strcmp(rel, conf_invalid[i]))
			want_fail = true;
	struct scan s;
	struct err e;
	err_init(&e);
	int rc = off_read(buf, len, NULL, &s, &e);
	bool pass;
	char what[400];
	if (rc < 0) {
		pass = want_fail && e.msg[0];
		snprintf(what, sizeof(what), "error: %s%s", e.msg,
			 want_fail ? "" : " (expected a read)");
	} else {
		pass = !want_fail && declared && (long long)s.n_vertices == nv &&
		       (long long)s.n_polygons == nf;
		snprintf(what, sizeof(what), "%zu/%lld vertices, %zu/%lld polygons, %zu triangles%s%s%s",
			 s.n_vertices, nv, s.n_polygons, nf, s.n_faces,
			 s.colors ? ", vertex colours" : "", s.face_colors ? ", face colours" : "",
			 want_fail ? " (expected an error)" : "");
	}
	printf("  %s  %-62s %s\n", pass ? "pass" : "FAIL", rel, what);
	conf_n++;
	conf_pass += pass;
	scan_release(&s);
	free(buf);
	return 0;
}

static void test_off_conformance_files(void **state)
{
	(void)state;
	const char *data = getenv("REFSCAN_SHARED_DATA");
	snprintf(conf_root, sizeof(conf_root), "%s/conformance",
		 data && *data ? data : "../shared/data");
	if (access(conf_root, R_OK) != 0) {
		printf("  off conformance: skipped: %s is not present\n", conf_root);
		skip();
	}
	assert_int_equal(nftw(conf_root, conf_visit, 16, FTW_PHYS), 0);
	printf("  off conformance: %zu files, %zu pass, %zu fail (%.1f%%)\n", conf_n, conf_pass,
	       conf_n - conf_pass, conf_n ? 100.0 * (double)conf_pass / (double)conf_n : 0.0);
	assert_true(conf_n > 0);
	assert_int_equal(conf_pass, conf_n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_reads_cube_of_quads_as_12_triangles),
		cmocka_unit_test(test_off_counts_on_keyword_line_glued_or_on_a_later_line),
		cmocka_unit_test(test_off_comments_anywhere_blank_lines_and_crlf),
		cmocka_unit_test(test_off_probe_accepts_every_keyword_variant),
		cmocka_unit_test(test_off_coff_vertex_colours_as_floats_or_bytes),
		cmocka_unit_test(test_off_noff_stoff_and_combined_prefixes_fill_their_arrays),
		cmocka_unit_test(test_off_4off_divides_by_w_and_w_zero_is_non_finite),
		cmocka_unit_test(test_off_ndim_other_than_3_is_unsupported),
		cmocka_unit_test(test_off_vertex_line_errors_name_line_and_vertex),
		cmocka_unit_test(test_off_face_colours_in_every_notation),
		cmocka_unit_test(test_off_first_coloured_face_greys_the_earlier_ones),
		cmocka_unit_test(test_off_pentagons_and_concave_polygons_keep_their_outline),
		cmocka_unit_test(test_off_short_faces_are_skipped_with_a_count_but_checked),
		cmocka_unit_test(test_off_degenerate_faces_with_repeated_indices_are_kept),
		cmocka_unit_test(test_off_index_out_of_range_names_line_face_and_index),
		cmocka_unit_test(test_off_face_indices_may_wrap_onto_following_lines),
		cmocka_unit_test(test_off_huge_declared_counts_fail_before_allocating),
		cmocka_unit_test(test_off_bad_counts_and_header_errors),
		cmocka_unit_test(test_off_binary_reads_big_endian_counts_vertices_and_faces),
		cmocka_unit_test(test_off_every_prefix_of_a_binary_fails_cleanly),
		cmocka_unit_test(test_off_every_text_prefix_cut_before_the_last_index_fails),
		cmocka_unit_test(test_off_allocation_failures_are_clean),
		cmocka_unit_test(test_off_fixtures_read_as_listed),
		cmocka_unit_test(test_off_conformance_files),
	};
	return cmocka_run_group_tests_name("off", tests, NULL, NULL);
}
