/*
 * test_obj.c - the OBJ and MTL readers (formats/obj.c, formats/mtl.c):
 * every statement and index form with its values, the quirks of real
 * exporters, malformed input (clear errors with line numbers), limits,
 * out-of-memory at every allocation, the chunked/parallel read giving the
 * same scan as a single pass, end-to-end reads with MTL and textures
 * from a temporary folder, fixtures and fuzz crashers in tests/data/obj,
 * and every OBJ of ../shared/data/conformance when it is present.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "common/alloc.h"
#include "common/err.h"
#include "common/mapfile.h"
#include "formats/formats.h"
#include "formats/obj_int.h"
#include "formats/triangulate.h"

/* ---- helpers ---- */

static int read_obj_lim(const char *text, size_t len, const struct limits *lim,
			struct scan *s, struct err *e)
{
	scan_init(s);
	err_init(e);
	return obj_read((const unsigned char *)text, len, lim, s, e);
}

static int read_obj(const char *text, struct scan *s, struct err *e)
{
	return read_obj_lim(text, strlen(text), NULL, s, e);
}

static int read_mtl(const char *text, struct scan *s, struct err *e)
{
	err_init(e);
	return mtl_read((const unsigned char *)text, strlen(text), NULL, s, e);
}

/* Expect a failure with code, line and exact message; s must be empty. */
static void expect_error(const char *text, size_t len, const struct limits *lim,
			 int code, long line, const char *msg)
{
	struct scan s;
	struct err e;
	int rc = read_obj_lim(text, len, lim, &s, &e);
	if (rc != code || e.line != line || (msg && strcmp(e.msg, msg)))
		fail_msg("got rc %d line %ld '%s', want rc %d line %ld '%s'", rc, e.line,
			 e.msg, code, line, msg ? msg : "(any)");
	assert_int_equal(s.n_vertices, 0);
	assert_null(s.positions);
	assert_null(s.indices);
	scan_release(&s);
}

static void expect_error_text(const char *text, int code, long line, const char *msg)
{
	expect_error(text, strlen(text), NULL, code, line, msg);
}

static bool has_warning(const struct scan *s, const char *part)
{
	for (size_t i = 0; i < s->n_warnings; i++)
		if (strstr(s->warnings[i], part))
			return true;
	return false;
}

static void assert_vec3(const float *v, float x, float y, float z)
{
	if (v[0] != x || v[1] != y || v[2] != z)
		fail_msg("got (%g %g %g), want (%g %g %g)", (double)v[0], (double)v[1],
			 (double)v[2], (double)x, (double)y, (double)z);
}

static void assert_tri(const struct scan *s, size_t f, uint32_t a, uint32_t b, uint32_t c)
{
	const uint32_t *t = s->indices + 3 * f;
	if (t[0] != a || t[1] != b || t[2] != c)
		fail_msg("face %zu: got (%u %u %u), want (%u %u %u)", f, t[0], t[1], t[2], a, b, c);
}

/* ---- geometry and attributes ---- */

static void test_obj_reads_positions_and_triangles(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("# a triangle and a quad\n"
				  "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv -2.5 1e2 .25\n"
				  "f 1 2 3\nf 1 2 3 4\n", &s, &e), 0);
	assert_string_equal(s.format, "obj");
	assert_int_equal(s.n_vertices, 5);
	assert_int_equal(s.n_polygons, 2);
	assert_int_equal(s.n_faces, 3);
	assert_vec3(s.positions + 3 * 4, -2.5f, 100.0f, 0.25f);
	assert_tri(&s, 0, 0, 1, 2);
	assert_null(s.normals);
	assert_null(s.colors);
	assert_null(s.corner_uvs);
	assert_null(s.face_material);
	assert_int_equal(s.n_warnings, 0);
	assert_true(s.bbox_max[1] == 100.0f && s.bbox_min[0] == -2.5f);
	scan_release(&s);
}

static void test_obj_reads_vertex_colours_as_rgba(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 0 0 0 1 0.5 0\n"
				  "v 1 0 0\n"                  /* no colour: white */
				  "v 0 1 0 2 -1 nan\n"         /* clamped, NaN -> 0 */
				  "v 1 1 0 0.2 0.4 0.6 0.9\n", /* a 7th value ignored */
				  &s, &e), 0);
	assert_non_null(s.colors);
	static const uint8_t want[16] = { 255, 128, 0, 255, 255, 255, 255, 255,
					  255, 0, 0, 255, 51, 102, 153, 255 };
	assert_memory_equal(s.colors, want, sizeof(want));
	assert_vec3(s.positions + 6, 0, 1, 0);
	assert_int_equal(s.n_faces, 0);
	scan_release(&s);
}

static void test_obj_ignores_w_component(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 1 2 3 0.5\nv 4 5 6 1\nv 7 8 9 1\nf 1 2 3\n", &s, &e), 0);
	assert_null(s.colors);
	assert_vec3(s.positions + 3, 4, 5, 6);
	scan_release(&s);
}

static void test_obj_reads_every_face_index_form(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
				  "vt 0.1 0.2\nvt 0.3 0.4\nvt 0.5 0.6\n"
				  "vn 0 0 1\nvn 0 1 0\n"
				  "f 1 2 3\n"
				  "f 1/1 2/2 3/3\n"
				  "f 1//1 2//1 4//2\n"
				  "f 1/3/2 3/2/1 4/1/2\n"
				  "f 2/1/ 3// 4/2\n", /* empty trailing fields */
				  &s, &e), 0);
	assert_int_equal(s.n_faces, 5);
	assert_tri(&s, 2, 0, 1, 3);
	assert_tri(&s, 3, 0, 2, 3);
	assert_non_null(s.corner_uvs);
	/* face 1: corners 1/1 2/2 3/3 */
	static const float uv1[6] = { 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f };
	assert_memory_equal(s.corner_uvs + 6, uv1, sizeof(uv1));
	/* face 3: 1/3 3/2 4/1 */
	static const float uv3[6] = { 0.5f, 0.6f, 0.3f, 0.4f, 0.1f, 0.2f };
	assert_memory_equal(s.corner_uvs + 18, uv3, sizeof(uv3));
	/* face 0 has no vt: (0,0) and a warning */
	static const float zero[6] = { 0 };
	assert_memory_equal(s.corner_uvs, zero, sizeof(zero));
	assert_true(has_warning(&s, "face corners have no texture coordinate"));
	/* normals: vertex 1 got vn 1 first (face 2), vertex 4 got vn 2 */
	assert_non_null(s.normals);
	assert_vec3(s.normals, 0, 0, 1);
	assert_vec3(s.normals + 9, 0, 1, 0);
	assert_vec3(s.normals + 6, 0, 0, 1); /* vertex 3: first from face 3 (vn 1) */
	scan_release(&s);
}

static void test_obj_first_normal_given_to_a_vertex_wins(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 5 5 5\n"
				  "vn 1 0 0\nvn 0 1 0\nvn 0 0 1\n"
				  "f 1//3 2//3 3//3\n"
				  "f 3//1 2//2 1//1\n", &s, &e), 0);
	for (int i = 0; i < 3; i++)
		assert_vec3(s.normals + 3 * i, 0, 0, 1);
	/* vertex 4 is in no face */
	assert_vec3(s.normals + 9, 0, 0, 0);
	assert_true(has_warning(&s, "1 of 4 vertices have no normal"));
	scan_release(&s);
	/* vn lines nobody refers to give no normals at all */
	assert_int_equal(read_obj("v 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 0 1\nf 1 2 3\n", &s, &e), 0);
	assert_null(s.normals);
	scan_release(&s);
}

static void test_obj_resolves_negative_indices_against_what_was_read(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 0 0 0\nv 1 0 0\nv 0 1 0\n"
				  "vt 0 0\nvt 1 0\nvt 0 1\n"
				  "f -3/-3 -2/-2 -1/-1\n"
				  "v 1 1 0\nvt 1 1\n"
				  "f -3/-1 -2 -1\n"      /* -1 is now vertex 4 */
				  "f 2 4 3\n", &s, &e), 0);
	assert_tri(&s, 0, 0, 1, 2);
	assert_tri(&s, 1, 1, 2, 3);
	assert_tri(&s, 2, 1, 3, 2);
	assert_true(s.corner_uvs[6] == 1.0f && s.corner_uvs[7] == 1.0f);
	scan_release(&s);
}

/* Signed area of the triangles along +z, and every one counter-clockwise. */
static double area_z(const struct scan *s)
{
	double sum = 0;
	for (size_t f = 0; f < s->n_faces; f++) {
		const float *a = s->positions + 3 * s->indices[3 * f];
		const float *b = s->positions + 3 * s->indices[3 * f + 1];
		const float *c = s->positions + 3 * s->indices[3 * f + 2];
		double z = ((double)b[0] - a[0]) * ((double)c[1] - a[1]) -
			   ((double)b[1] - a[1]) * ((double)c[0] - a[0]);
		assert_true(z > 0);
		sum += z / 2;
	}
	return sum;
}

static void test_obj_triangulates_concave_polygons_inside_their_outline(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	/* an L shape (area 5) and a dart quad whose short diagonal is outside */
	assert_int_equal(read_obj("v 0 0 0\nv 3 0 0\nv 3 1 0\nv 1 1 0\nv 1 3 0\nv 0 3 0\n"
				  "f 1 2 3 4 5 6\n", &s, &e), 0);
	assert_int_equal(s.n_faces, 4);
	assert_true(fabs(area_z(&s) - 5.0) < 1e-9);
	scan_release(&s);
	assert_int_equal(read_obj("v 0 0 0\nv 10 0.5 0\nv 0 1 0\nv 1 0.5 0\nf 1 2 3 4\n", &s, &e), 0);
	assert_true(fabs(area_z(&s) - 4.5) < 1e-6);
	assert_tri(&s, 0, 1, 2, 3);
	assert_tri(&s, 1, 1, 3, 0);
	scan_release(&s);
}

static void test_obj_corner_uvs_follow_the_triangulation(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	/* each vertex i has vt i with u = i / 10: every triangle corner's u
	 * must match the vertex it landed on */
	assert_int_equal(read_obj("v 0 0 0\nv 3 0 0\nv 3 1 0\nv 1 1 0\nv 1 3 0\nv 0 3 0\n"
				  "vt 0.0 9\nvt 0.1 9\nvt 0.2 9\nvt 0.3 9\nvt 0.4 9\nvt 0.5 9\n"
				  "f 1/1 2/2 3/3 4/4 5/5 6/6\n", &s, &e), 0);
	for (size_t k = 0; k < 3 * s.n_faces; k++) {
		float want = (float)s.indices[k] / 10.0f;
		assert_true(fabsf(s.corner_uvs[2 * k] - want) < 1e-6f);
		assert_true(s.corner_uvs[2 * k + 1] == 9.0f);
	}
	scan_release(&s);
}

static void test_obj_texture_coordinates_take_one_to_three_values(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 0 0 0\nv 1 0 0\nv 0 1 0\n"
				  "vt 0.5\nvt 0.25 0.75\nvt 0.1 0.2 0.3\n"
				  "f 1/1 2/2 3/3\n", &s, &e), 0);
	static const float want[6] = { 0.5f, 0, 0.25f, 0.75f, 0.1f, 0.2f };
	assert_memory_equal(s.corner_uvs, want, sizeof(want));
	scan_release(&s);
}

static void test_obj_broken_vt_or_vn_reference_drops_only_that_attribute(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	/* trimesh and tinyobjloader both carry files like this */
	assert_int_equal(read_obj("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0.5 0.5\n"
				  "f 1/1/1 2/7/1 3/1/1\n", &s, &e), 0);
	assert_int_equal(s.n_faces, 1);
	assert_null(s.normals);
	assert_true(has_warning(&s, "line 5: 3 face corners name a normal that does not exist (have 0; ignored)"));
	assert_true(has_warning(&s, "line 5: 1 face corners name a texture coordinate that does not exist (have 1; ignored)"));
	assert_true(s.corner_uvs[0] == 0.5f && s.corner_uvs[2] == 0.0f);
	scan_release(&s);
}

static void test_obj_points_and_lines_keep_vertices_without_faces(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 1\n"
				  "p 1 2 3 4\nl 1 2\nl 2 3 4\n", &s, &e), 0);
	assert_int_equal(s.n_vertices, 4);
	assert_int_equal(s.n_faces, 0);
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);
}

static void test_obj_with_only_vertices_is_a_point_cloud(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 1 2 3\nv 4 5 6\n", &s, &e), 0);
	assert_int_equal(s.n_vertices, 2);
	assert_int_equal(s.n_faces, 0);
	assert_int_equal(s.n_polygons, 0);
	assert_vec3(s.bbox_max, 4, 5, 6);
	scan_release(&s);
}

static void test_obj_ignores_groups_objects_and_smoothing(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("o thing\ng front cube\ns 1\ns off\nmg 1 0.5\n"
				  "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", &s, &e), 0);
	assert_int_equal(s.n_faces, 1);
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);
}

static void test_obj_unknown_statements_warn_once(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 0 0 0\nv 1 0 0\nv 0 1 0\n"
				  "vw 0 0 1.0\nvw 1 0 1.0\nt crease 2/1/0 1 2\nf 1 2 3\n", &s, &e), 0);
	assert_int_equal(s.n_warnings, 1);
	assert_string_equal(s.warnings[0], "line 4: unknown statement 'vw' ignored (3 such lines)");
	scan_release(&s);
}

static void test_obj_mtllib_records_every_declared_name(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("mtllib a.mtl b.MTL\n"
				  "mtllib my materials.mtl\n"           /* one name with a space */
				  "mtllib sub\\ dir/c d.mtl  e.mtl\n"    /* escaped blank */
				  "mtllib ./a.mtl a.mtl\n"               /* duplicate a.mtl */
				  "mtllib \t\n"
				  "mtllib no extension here\n"
				  "v 0 0 0\n", &s, &e), 0);
	static const char *want[] = { "a.mtl", "b.MTL", "my materials.mtl", "sub dir/c d.mtl",
				      "e.mtl", "./a.mtl", "no extension here" };
	assert_int_equal(s.n_libraries, 7);
	for (size_t i = 0; i < 7; i++)
		assert_string_equal(s.libraries[i], want[i]);
	assert_true(has_warning(&s, "line 5: mtllib without a file name"));
	scan_release(&s);
}

static void test_obj_usemtl_sets_the_material_of_each_triangle(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
				  "f 1 2 3\n"                          /* before any usemtl */
				  "usemtl skin, left arm   \n"          /* spaces, trailing blanks */
				  "f 1 2 3 4\n"
				  "usemtl\tbark\n"
				  "f 1 3 4\n"
				  "usemtl skin, left arm\n"
				  "f 2 3 4\n"
				  "usemtl\n"                            /* no material again */
				  "f 1 2 4\n", &s, &e), 0);
	assert_int_equal(s.n_materials, 2);
	assert_string_equal(s.materials[0].name, "skin, left arm");
	assert_string_equal(s.materials[1].name, "bark");
	assert_false(s.materials[0].defined);
	static const int32_t want[] = { -1, 0, 0, 1, 0, -1 };
	assert_int_equal(s.n_faces, 6);
	assert_memory_equal(s.face_material, want, sizeof(want));
	scan_release(&s);
}

static void test_obj_too_many_materials_is_a_limit_error(void **state)
{
	(void)state;
	size_t cap = 64 + 20 * (OBJ_MAX_MATERIALS + 1);
	char *text = malloc(cap);
	size_t n = (size_t)snprintf(text, cap, "v 0 0 0\n");
	for (unsigned i = 0; i <= OBJ_MAX_MATERIALS; i++)
		n += (size_t)snprintf(text + n, cap - n, "usemtl m%u\n", i);
	char msg[64];
	snprintf(msg, sizeof(msg), "more than %u materials", OBJ_MAX_MATERIALS);
	expect_error(text, n, NULL, ERR_LIMIT, 2 + OBJ_MAX_MATERIALS, msg);
	free(text);
}

static void test_obj_units_comment_sets_units(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("# units mm\nv 0 0 0\n", &s, &e), 0);
	assert_int_equal(s.units, UNITS_MM);
	scan_release(&s);
	assert_int_equal(read_obj("#Units micrometers\nv 0 0 0\n", &s, &e), 0);
	assert_int_equal(s.units, UNITS_UM);
	scan_release(&s);
	assert_int_equal(read_obj("# units furlongs\nv 0 0 0\n", &s, &e), 0);
	assert_int_equal(s.units, UNITS_UNKNOWN);
	assert_true(has_warning(&s, "line 1: unknown units 'furlongs' ignored"));
	scan_release(&s);
}

static void test_obj_backslash_continues_a_line(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 0 0 \\\n  0\n"
				  "v 1 0 0\nv 1 1 0\nv 0 1 0\n"
				  "f 1 2 \\\r\n 3 \\\n 4\n"
				  "usemtl long \\\nname\n"
				  "f 1 2 3 \\", &s, &e), 0);
	assert_int_equal(s.n_vertices, 4);
	assert_int_equal(s.n_faces, 3);
	assert_int_equal(s.n_polygons, 2);
	assert_string_equal(s.materials[0].name, "long  name");
	scan_release(&s);
	/* line numbers after a continuation still count physical lines */
	expect_error_text("v 0 0 \\\n0\nv 1 \\\n 0 \\\n 0\nv 1 2 z\n", ERR_FORMAT, 6,
			  "bad number near 'z'");
}

static void test_obj_accepts_crlf_tabs_bom_and_no_final_newline(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("\xEF\xBB\xBFv\t0 0 0\r\n  v 1\t0 0 \r\nv 0 1 0\r\n\r\n\tf 1 2 3", &s, &e), 0);
	assert_int_equal(s.n_vertices, 3);
	assert_int_equal(s.n_faces, 1);
	assert_vec3(s.positions + 3, 1, 0, 0);
	scan_release(&s);
}

static void test_obj_allows_comments_after_statements(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 0 0 0 # origin\nv 1 0 0\t#x\nv 0 1 0\nf 1 2 3 # tri\n", &s, &e), 0);
	assert_int_equal(s.n_faces, 1);
	assert_null(s.colors);
	scan_release(&s);
	/* a '#' glued to a value is not a comment */
	expect_error_text("v 0 0 0#c\n", ERR_FORMAT, 1, "bad number near '0#c'");
}

static void test_obj_reads_msvc_nan_and_infinity(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("v 1.#IND -1.#IND00 1.#QNAN\nv 1.#INF -1.#INF 2\nv 1 2 3\n", &s, &e), 0);
	assert_true(isnan(s.positions[0]) && isnan(s.positions[2]));
	assert_true(isinf(s.positions[3]) && s.positions[3] > 0);
	assert_true(isinf(s.positions[4]) && s.positions[4] < 0);
	assert_int_equal(s.n_nonfinite, 2);
	assert_vec3(s.bbox_min, 1, 2, 3);
	scan_release(&s);
}

static void test_obj_trailing_nul_padding_is_a_warning(void **state)
{
	(void)state;
	static const char text[] = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n\0\0\0\0";
	struct scan s;
	struct err e;
	assert_int_equal(read_obj_lim(text, sizeof(text) - 1, NULL, &s, &e), 0);
	assert_int_equal(s.n_faces, 1);
	assert_true(has_warning(&s, "4 NUL bytes of padding after the text ignored"));
	scan_release(&s);
}

static void test_obj_comment_only_file_is_empty_not_an_error(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_obj("# Blender v2.91.0 OBJ File: ''\n# www.blender.org\n", &s, &e), 0);
	assert_int_equal(s.n_vertices, 0);
	assert_true(has_warning(&s, "no vertices"));
	scan_release(&s);
}

static void test_obj_huge_polygon_is_fanned_with_a_warning(void **state)
{
	(void)state;
	uint32_t n = TRIANGULATE_MAX_EAR + 4;
	size_t cap = (size_t)n * 48 + 64;
	char *text = malloc(cap);
	size_t len = 0;
	for (uint32_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "v %.6f %.6f 0\n",
					cos(2 * M_PI * i / n), sin(2 * M_PI * i / n));
	len += (size_t)snprintf(text + len, cap - len, "f");
	for (uint32_t i = 1; i <= n; i++)
		len += (size_t)snprintf(text + len, cap - len, " %u", i);
	struct scan s;
	struct err e;
	assert_int_equal(read_obj_lim(text, len, NULL, &s, &e), 0);
	assert_int_equal(s.n_faces, n - 2);
	assert_true(has_warning(&s, "1 polygons with more than 4096 vertices were split as a fan"));
	scan_release(&s);
	free(text);
}

/* ---- malformed input ---- */

static void test_obj_rejects_truncated_statements(void **state)
{
	(void)state;
	expect_error_text("v 0 0 0\nv 1 2\n", ERR_FORMAT, 2, "vertex has 2 coordinates (need 3)");
	expect_error_text("v 0 0 0\nv 1 0 0\nf 1 2\nf 1\n", ERR_FORMAT, 3,
			  "no face has 3 or more vertices");
	expect_error_text("v 0 0 0\nf\n", ERR_FORMAT, 2, "no face has 3 or more vertices");
	/* a short face is skipped, but its indices are still checked */
	expect_error_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 7\n", ERR_FORMAT, 5,
			  "face vertex index 7 out of range (have 3)");
	expect_error_text("v 0 0 0\nvn 1 0\n", ERR_FORMAT, 2, "normal has 2 components (need 3)");
	expect_error_text("v 0 0 0\nvt\n", ERR_FORMAT, 2, "texture coordinate without values");
	expect_error_text("v", ERR_FORMAT, 1, "vertex has 0 coordinates (need 3)");
}

static void test_obj_skips_faces_with_fewer_than_3_vertices(void **state)
{
	(void)state;
	static const char text[] =
		"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\n"
		"f 1 2\n"          /* an edge written as a face */
		"f 1 2 3\n"
		"f 4\n"            /* a point */
		"f\n"
		"f # 1 2 3\n"
		"f 2 4 3\n";
	struct scan s;
	struct err e;
	err_init(&e);
	assert_int_equal(read_obj_lim(text, sizeof(text) - 1, NULL, &s, &e), 0);
	assert_int_equal(s.n_vertices, 4);
	assert_int_equal(s.n_faces, 2);
	assert_int_equal(s.n_polygons, 2);
	assert_int_equal(s.indices[0], 0);
	assert_int_equal(s.indices[3], 1);
	assert_int_equal(s.indices[4], 3);
	assert_true(has_warning(&s, "line 5: 4 faces with fewer than 3 vertices skipped"));
	scan_release(&s);
}

static void test_obj_rejects_bad_numbers(void **state)
{
	(void)state;
	expect_error_text("v 0 0 0\nv 1 x 3\n", ERR_FORMAT, 2, "bad number near 'x'");
	expect_error_text("v 1e2 2.e+1 3.1+e2\n", ERR_FORMAT, 1, "bad number near '3.1+e2'");
	expect_error_text("v 1 2 3\nvt 0.5 1..5\n", ERR_FORMAT, 2, "bad number near '1..5'");
	expect_error_text("v 1 2 3\nvn 1 2 \x01\x02\n", ERR_FORMAT, 2, "bad number near '?" "?'");
	expect_error_text("v 1,5 2 3\n", ERR_FORMAT, 1, "bad number near '1,5'");
}

static void test_obj_rejects_out_of_range_vertex_indices(void **state)
{
	(void)state;
	const char *tri = "v 0 0 0\nv 1 0 0\nv 0 1 0\n";
	char buf[256];
	snprintf(buf, sizeof(buf), "%sf 1 2 4\n", tri);
	expect_error_text(buf, ERR_FORMAT, 4, "face vertex index 4 out of range (have 3)");
	snprintf(buf, sizeof(buf), "%sf 0 1 2\n", tri);
	expect_error_text(buf, ERR_FORMAT, 4, "face vertex index 0 out of range (have 3)");
	snprintf(buf, sizeof(buf), "%sf -1 -2 -4\n", tri);
	expect_error_text(buf, ERR_FORMAT, 4, "face vertex index -4 out of range (have 3)");
	/* relative indices count only what was read before the face */
	expect_error_text("v 0 0 0\nv 1 0 0\nf -1 -2 -3\nv 0 1 0\n", ERR_FORMAT, 3,
			  "face vertex index -3 out of range (have 2)");
	snprintf(buf, sizeof(buf), "%sf 1 2 99999999999999999999\n", tri);
	expect_error_text(buf, ERR_FORMAT, 4, "bad face vertex '99999999999999999999'");
	snprintf(buf, sizeof(buf), "%sf 1 2 -9223372036854775808\n", tri);
	expect_error_text(buf, ERR_FORMAT, 4,
			  "face vertex index -9223372036854775808 out of range (have 3)");
	snprintf(buf, sizeof(buf), "%sf 1 2 4294967297\n", tri);
	expect_error_text(buf, ERR_FORMAT, 4, "face vertex index 4294967297 out of range (have 3)");
}

static void test_obj_rejects_malformed_face_vertices(void **state)
{
	(void)state;
	const char *tri = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvn 0 0 1\n";
	static const char *bad[] = { "f 1 2 x", "f 1/x 2 3", "f 1/1/1/1 2 3", "f /1 2 3",
				     "f 1 2 3/1/a", "f 1 2 3.0", "f 1 2 +-3", "f 1 2 3#" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[256];
		snprintf(buf, sizeof(buf), "%s%s\n", tri, bad[i]);
		expect_error_text(buf, ERR_FORMAT, 6, NULL);
	}
	expect_error_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3x\n", ERR_FORMAT, 4, "bad face vertex '3x'");
}

static void test_obj_rejects_empty_garbage_and_binary_input(void **state)
{
	(void)state;
	expect_error("", 0, NULL, ERR_FORMAT, 0, "empty file");
	expect_error("\xEF\xBB\xBF", 3, NULL, ERR_FORMAT, 0, "empty file");
	expect_error_text("hello world\nthis is not a mesh\n", ERR_FORMAT, 1,
			  "not an OBJ file: no OBJ statements, starts with 'hello'");
	static const char junk[] = "v 0 0 0\n\x7f\x45\x4c\x46\x02\x01\x01\0\0\0\x03\x00\x3e\x00more\n";
	expect_error(junk, sizeof(junk) - 1, NULL, ERR_FORMAT, 2,
		     "NUL byte at offset 15: binary data, not a text file");
	/* random binary with no NUL */
	char rnd[512];
	srand(7);
	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (char)(1 + rand() % 255);
	struct scan s;
	struct err e;
	int rc = read_obj_lim(rnd, sizeof(rnd), NULL, &s, &e);
	assert_true(rc == ERR_FORMAT || rc == ERR_LIMIT);
	assert_true(e.msg[0] != '\0');
	scan_release(&s);
}

static void test_obj_rejects_utf16_and_cr_only_text(void **state)
{
	(void)state;
	const char *ascii = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n";
	char le[128], be[128];
	size_t n = strlen(ascii);
	for (size_t i = 0; i < n; i++) {
		le[2 * i] = ascii[i];
		le[2 * i + 1] = 0;
		be[2 * i] = 0;
		be[2 * i + 1] = ascii[i];
	}
	const char *msg = "UTF-16 text is not supported (save the file as UTF-8)";
	expect_error(le, 2 * n, NULL, ERR_UNSUPPORTED, 1, msg);
	expect_error(be, 2 * n, NULL, ERR_UNSUPPORTED, 1, msg);
	char bom[130] = { (char)0xFF, (char)0xFE };
	memcpy(bom + 2, le, 2 * n);
	expect_error(bom, 2 * n + 2, NULL, ERR_UNSUPPORTED, 1, msg);
	expect_error_text("v 0 0 0\rv 1 0 0\rv 0 1 0\rf 1 2 3\r", ERR_UNSUPPORTED, 1,
			  "lines end in CR only (classic Mac OS); convert them to LF or CRLF");
	/* and the probe hands such files to the OBJ reader */
	assert_true(obj_probe((const unsigned char *)be, 2 * n) > 0);
}

static void test_obj_enforces_line_length_and_polygon_limits(void **state)
{
	(void)state;
	struct limits lim;
	limits_init(&lim);
	lim.max_line_length = 32;
	const char *ok = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n";
	struct scan s;
	struct err e;
	assert_int_equal(read_obj_lim(ok, strlen(ok), &lim, &s, &e), 0);
	scan_release(&s);
	const char *longl = "v 0 0 0\nv 1.000000000000 0.00000000000000 0\n";
	expect_error(longl, strlen(longl), &lim, ERR_LIMIT, 2, "line is longer than 32 bytes");
	/* joined continuation lines count as one */
	const char *joined = "v 0 0 0\nv 1.0000000000 \\\n 0.00000000000 \\\n 0.000000000\n";
	expect_error(joined, strlen(joined), &lim, ERR_LIMIT, 2,
		     "line is longer than 32 bytes (with its continuations)");
	limits_init(&lim);
	lim.max_polygon_degree = 4;
	const char *pent = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv -1 0 0\nf 1 2 3 4\nf 1 2 3 4 5\n";
	expect_error(pent, strlen(pent), &lim, ERR_LIMIT, 7, "face with 5 vertices (limit 4)");
}

static void test_obj_enforces_count_limits_before_allocating(void **state)
{
	(void)state;
	struct limits lim;
	limits_init(&lim);
	lim.max_vertices = 3;
	const char *four = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 1\n";
	expect_error(four, strlen(four), &lim, ERR_LIMIT, 0, "4 vertices (limit 3)");
	const char *vts = "v 0 0 0\nvt 0 0\nvt 0 0\nvt 0 0\nvt 1 1\n";
	expect_error(vts, strlen(vts), &lim, ERR_LIMIT, 0, "4 texture coordinates (limit 3)");
	limits_init(&lim);
	lim.max_faces = 2;
	const char *quads = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3 4\nf 1 2 3\n";
	expect_error(quads, strlen(quads), &lim, ERR_LIMIT, 0, "3 triangles (limit 2)");
	/* a limit error allocates nothing big: only chunk bookkeeping */
	struct scan s;
	struct err e;
	alloc_fail_after(-1);
	uint64_t before = alloc_count();
	read_obj_lim(quads, strlen(quads), &lim, &s, &e);
	assert_true(alloc_count() - before <= 2);
	scan_release(&s);
	limits_init(&lim);
	lim.max_referenced_files = 2;
	const char *libs = "mtllib a.mtl b.mtl c.mtl\nv 0 0 0\n";
	expect_error(libs, strlen(libs), &lim, ERR_LIMIT, 1, "more than 2 material libraries");
}

/* ---- MTL ---- */

static void test_mtl_reads_diffuse_colour_and_texture(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	scan_init(&s);
	assert_int_equal(scan_material_intern(&s, "skin", 4), 0);
	assert_int_equal(read_mtl("# exported\r\n"
				  "newmtl skin\r\n"
				  "Ka 0.1 0.1 0.1\r\n"
				  "Kd 0.8 0.6 0.5\r\n"
				  "map_Kd textures/skin diffuse.png\r\n"
				  "\r\n"
				  "\tnewmtl  grey stone \n"
				  "Kd 0.5\n"
				  "map_Bump bump.png\nbump b2.png\nnorm n.png\nmap_Ka a.png\n", &s, &e), 0);
	assert_int_equal(s.n_materials, 2);
	assert_true(s.materials[0].defined && s.materials[1].defined);
	assert_string_equal(s.materials[1].name, "grey stone");
	static const float kd0[3] = { 0.8f, 0.6f, 0.5f }, kd1[3] = { 0.5f, 0.5f, 0.5f };
	assert_memory_equal(s.materials[0].kd, kd0, sizeof(kd0));
	assert_memory_equal(s.materials[1].kd, kd1, sizeof(kd1));
	assert_int_equal(s.n_textures, 1);
	assert_string_equal(s.textures[0].declared, "textures/skin diffuse.png");
	assert_int_equal(s.materials[0].texture, 0);
	assert_int_equal(s.materials[1].texture, -1);
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);
}

static void test_mtl_skips_texture_options_before_the_path(void **state)
{
	(void)state;
	static const struct {
		const char *line, *path;
	} cases[] = {
		{ "map_Kd -blendu on -blendv off a.png", "a.png" },
		{ "map_Kd -bm 0.5 -boost 1.5 -cc on -clamp off b.png", "b.png" },
		{ "map_Kd -imfchan r -mm 0.1 0.9 c.png", "c.png" },
		{ "map_Kd -mm 0.2 d.png", "d.png" },
		{ "map_Kd -o 0.1 e.png", "e.png" },
		{ "map_Kd -o 0.1 0.2 -s 1 2 3 -t 0.5 0.5 0 f g.png", "f g.png" },
		{ "map_Kd -s 1 2.png", "2.png" },
		{ "map_Kd -texres 512 tex res.jpg", "tex res.jpg" },
		{ "map_Kd -type sphere -colorspace sRGB h.png", "h.png" },
		{ "map_Kd -unknown i.png", "-unknown i.png" },
		{ "MAP_KD\tj.png  ", "j.png" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct scan s;
		struct err e;
		char buf[256];
		scan_init(&s);
		snprintf(buf, sizeof(buf), "newmtl m\n%s\n", cases[i].line);
		assert_int_equal(read_mtl(buf, &s, &e), 0);
		assert_int_equal(s.n_textures, 1);
		if (strcmp(s.textures[0].declared, cases[i].path))
			fail_msg("'%s': got path '%s'", cases[i].line, s.textures[0].declared);
		assert_int_equal(s.materials[0].texture, 0);
		scan_release(&s);
	}
}

static void test_mtl_bad_values_are_warnings_naming_the_line(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	scan_init(&s);
	assert_int_equal(read_mtl("Kd 1 1 1\n"
				  "newmtl a\nKd 0.2 x 0.3\nKd 0.1 0.2\nKd spectral s.rfl\n"
				  "map_Kd -s 1 1 1\n"
				  "newmtl\n"
				  "newmtl b\nKd 2 -1 0.5\nfrobnicate 1\nfrobnicate 2\n"
				  "newmtl a\nKd 0 0 0\nmap_Kd other.png\n", &s, &e), 0);
	assert_true(has_warning(&s, "line 3: bad Kd value; default colour kept"));
	assert_true(has_warning(&s, "line 4: Kd needs 1 or 3 values; default colour kept"));
	assert_true(has_warning(&s, "line 5: Kd spectral is not supported"));
	assert_true(has_warning(&s, "line 6: map_Kd without a file name"));
	assert_true(has_warning(&s, "line 7: newmtl without a name"));
	assert_true(has_warning(&s, "line 12: material 'a' defined again; the first definition is kept"));
	assert_true(has_warning(&s, "1 Kd/map_Kd lines before any newmtl ignored"));
	assert_true(has_warning(&s, "line 10: unknown material statement 'frobnicate' ignored (2 such lines)"));
	/* a keeps its defaults; b is clamped to 0..1; the redefinition is ignored */
	static const float grey[3] = { 0.8f, 0.8f, 0.8f }, b[3] = { 1, 0, 0.5f };
	assert_memory_equal(s.materials[0].kd, grey, sizeof(grey));
	assert_memory_equal(s.materials[1].kd, b, sizeof(b));
	assert_int_equal(s.n_textures, 0);
	scan_release(&s);
}

static void test_mtl_rejects_utf16_binary_and_too_many_textures(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	scan_init(&s);
	static const char u16[] = "n\0e\0w\0m\0t\0l\0 \0a\0\n\0";
	assert_int_equal(mtl_read((const unsigned char *)u16, sizeof(u16) - 1, NULL, &s, &e),
			 ERR_UNSUPPORTED);
	static const char bin[] = "newmtl a\n\0\x01\x02junk";
	assert_int_equal(mtl_read((const unsigned char *)bin, sizeof(bin) - 1, NULL, &s, &e),
			 ERR_FORMAT);
	scan_release(&s);
	struct limits lim;
	limits_init(&lim);
	lim.max_referenced_files = 2;
	const char *three = "newmtl a\nmap_Kd 1.png\nnewmtl b\nmap_Kd 1.png\nmap_Kd 2.png\n"
			    "newmtl c\nmap_Kd 3.png\n";
	scan_init(&s);
	err_init(&e);
	assert_int_equal(mtl_read((const unsigned char *)three, strlen(three), &lim, &s, &e),
			 ERR_LIMIT);
	assert_int_equal(e.line, 7);
	assert_string_equal(e.msg, "more than 2 textures");
	scan_release(&s);
}

/* ---- out of memory ---- */

static const char rich_obj[] =
	"\xEF\xBB\xBF# units mm\n"
	"mtllib a.mtl b c.mtl\n"
	"v 0 0 0 1 0 0\nv 3 0 0\nv 3 1 0\nv 1 1 0\nv 1 3 0\nv 0 3 0\n"
	"vt 0 0\nvt 1 0\nvt 1 1\nvn 0 0 1\nvn 0 1 0\n"
	"usemtl skin\n"
	"f 1/1/1 2/2/1 3/3/2 4/1/1 5/2/2 6/3/1\n"
	"frob 1\n"
	"usemtl bark \\\n tone\n"
	"f -1 -2 -3 -4\nf 1 2 3\np 1 2\n";

static void test_obj_out_of_memory_at_every_allocation_fails_cleanly(void **state)
{
	(void)state;
	long n;
	for (n = 0; n < 10000; n++) {
		struct scan s;
		struct err e;
		scan_init(&s);
		err_init(&e);
		alloc_fail_after(n);
		int rc = obj_read((const unsigned char *)rich_obj, sizeof(rich_obj) - 1, NULL, &s, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			assert_int_equal(s.n_faces, 7);
			assert_int_equal(s.n_materials, 2);
			assert_int_equal(s.n_libraries, 2);
			scan_release(&s);
			break;
		}
		if (rc != ERR_NOMEM)
			fail_msg("allocation %ld: rc %d '%s'", n, rc, e.msg);
		assert_true(strstr(e.msg, "out of memory") != NULL);
		assert_null(s.positions);
		assert_int_equal(s.n_materials, 0);
		scan_release(&s);
	}
	assert_true(n > 5 && n < 10000);
}

static void test_mtl_out_of_memory_at_every_allocation_fails_cleanly(void **state)
{
	(void)state;
	const char *mtl = "newmtl a\nKd 1 0 0\nmap_Kd -o 1 a b.png\nnewmtl b\nmap_Kd c.png\n"
			  "newmtl a\nfrob\nKd x\n";
	long n;
	for (n = 0; n < 1000; n++) {
		struct scan s;
		struct err e;
		scan_init(&s);
		err_init(&e);
		alloc_fail_after(n);
		int rc = mtl_read((const unsigned char *)mtl, strlen(mtl), NULL, &s, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			assert_int_equal(s.n_textures, 2);
			scan_release(&s);
			break;
		}
		assert_int_equal(rc, ERR_NOMEM);
		scan_release(&s);
	}
	assert_true(n > 3 && n < 1000);
}

/* ---- the chunked, parallel read ---- */

static char *make_varied_obj(size_t *len)
{
	size_t cap = 1 << 20, n = 0;
	char *t = malloc(cap);
	n += (size_t)snprintf(t + n, cap - n, "mtllib m.mtl\n# units cm\n");
	for (int blk = 0; blk < 60; blk++) {
		for (int i = 0; i < 12; i++) {
			double a = 0.5 * i, r = i % 2 ? 1.0 : 0.45;
			if (blk % 3 == 0)
				n += (size_t)snprintf(t + n, cap - n, "v %.5f %.5f %d %.3f 0.5 0.25\n",
						      r * cos(a), r * sin(a), blk, i / 12.0);
			else if (blk % 7 == 0)
				n += (size_t)snprintf(t + n, cap - n, "v %.5f \\\n %.5f %d\n",
						      r * cos(a), r * sin(a), blk);
			else
				n += (size_t)snprintf(t + n, cap - n, "v %.5f %.5f %d\n",
						      r * cos(a), r * sin(a), blk);
			n += (size_t)snprintf(t + n, cap - n, "vt %.3f %.3f\nvn 0 %d 1\n", i / 12.0,
					      blk / 60.0, blk % 2);
		}
		if (blk % 4 == 1)
			n += (size_t)snprintf(t + n, cap - n, "usemtl mat %d\n", blk % 3);
		if (blk % 5 == 2)
			n += (size_t)snprintf(t + n, cap - n, "g part%d\nbogus %d\n", blk, blk);
		/* a concave 12-gon (star), a quad, triangles, relative indices */
		n += (size_t)snprintf(t + n, cap - n, "f");
		for (int i = 0; i < 12; i++)
			n += (size_t)snprintf(t + n, cap - n, " %d/%d/%d", -12 + i, -12 + i, -12 + i);
		n += (size_t)snprintf(t + n, cap - n, "\nf -12//-12 -11//-11 \\\n -10//-10 -9//-9\n");
		n += (size_t)snprintf(t + n, cap - n, "f %d/%d %d/%d %d/%d\n", blk * 12 + 1,
				      blk * 12 + 1, blk * 12 + 3, blk * 12 + 3, blk * 12 + 5,
				      blk * 12 + 5);
		if (blk > 0)
			n += (size_t)snprintf(t + n, cap - n, "f 1 %d %d\n", blk * 12, blk * 12 + 2);
		n += (size_t)snprintf(t + n, cap - n, "\n");
	}
	assert_true(n < cap);
	*len = n;
	return t;
}

static void assert_same_scan(const struct scan *a, const struct scan *b)
{
	assert_int_equal(a->n_vertices, b->n_vertices);
	assert_int_equal(a->n_faces, b->n_faces);
	assert_int_equal(a->n_polygons, b->n_polygons);
	assert_memory_equal(a->positions, b->positions, 3 * sizeof(float) * a->n_vertices);
	assert_memory_equal(a->indices, b->indices, 3 * sizeof(uint32_t) * a->n_faces);
	assert_true((a->normals == NULL) == (b->normals == NULL));
	if (a->normals)
		assert_memory_equal(a->normals, b->normals, 3 * sizeof(float) * a->n_vertices);
	assert_true((a->colors == NULL) == (b->colors == NULL));
	if (a->colors)
		assert_memory_equal(a->colors, b->colors, 4 * a->n_vertices);
	assert_true((a->corner_uvs == NULL) == (b->corner_uvs == NULL));
	if (a->corner_uvs)
		assert_memory_equal(a->corner_uvs, b->corner_uvs, 6 * sizeof(float) * a->n_faces);
	assert_true((a->face_material == NULL) == (b->face_material == NULL));
	if (a->face_material)
		assert_memory_equal(a->face_material, b->face_material, sizeof(int32_t) * a->n_faces);
	assert_int_equal(a->n_materials, b->n_materials);
	for (size_t i = 0; i < a->n_materials; i++)
		assert_string_equal(a->materials[i].name, b->materials[i].name);
	assert_int_equal(a->n_libraries, b->n_libraries);
	assert_int_equal(a->units, b->units);
	assert_int_equal(a->n_warnings, b->n_warnings);
	for (size_t i = 0; i < a->n_warnings; i++)
		assert_string_equal(a->warnings[i], b->warnings[i]);
}

static void test_obj_any_chunk_split_and_thread_count_gives_the_same_scan(void **state)
{
	(void)state;
	size_t len;
	char *text = make_varied_obj(&len);
	struct scan ref, s;
	struct err e;
	scan_init(&ref);
	err_init(&e);
	assert_int_equal(obj_read_chunked((const unsigned char *)text, len, NULL, &ref, &e, len + 1), 0);
	assert_int_equal(ref.n_vertices, 720);
	assert_int_equal(ref.n_polygons, 60 * 3 + 59);
	assert_int_equal(ref.n_faces, 60 * (10 + 2 + 1) + 59);
	assert_int_equal(ref.units, UNITS_CM);
	assert_non_null(ref.normals);
	assert_non_null(ref.colors);
	assert_true(has_warning(&ref, "unknown statement 'bogus' ignored (12 such lines)"));
	static const size_t sizes[] = { 1, 7, 100, 1000, 4096, 30000 };
	for (int threads = 1; threads <= 3; threads++) {
#ifdef _OPENMP
		omp_set_num_threads(threads);
#endif
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			scan_init(&s);
			assert_int_equal(obj_read_chunked((const unsigned char *)text, len, NULL,
							  &s, &e, sizes[i]), 0);
			assert_same_scan(&ref, &s);
			scan_release(&s);
		}
	}
	/* an error is reported at the same line whatever the split */
	memcpy(strstr(text, "f 1 36 38"), "f 1 36 0 ", 9);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		scan_init(&s);
		err_init(&e);
		assert_int_equal(obj_read_chunked((const unsigned char *)text, len, NULL, &s, &e,
						  sizes[i]), ERR_FORMAT);
		assert_string_equal(e.msg, "face vertex index 0 out of range (have 720)");
		assert_true(e.line > 100);
		scan_release(&s);
	}
#ifdef _OPENMP
	omp_set_num_threads(1);
#endif
	scan_release(&ref);
	free(text);
}

/* ---- probe ---- */

static int probe(const char *s)
{
	return obj_probe((const unsigned char *)s, strlen(s));
}

static void test_obj_probe_claims_obj_text_only(void **state)
{
	(void)state;
	assert_true(probe("# Blender\nmtllib x.mtl\no Cube\nv 1 1 -1\nv 1 -1 -1\n") >= 50);
	assert_true(probe("\xEF\xBB\xBFv 1 2 3\nf 1 1 1\n") >= 50);
	assert_true(probe("g cube\nusemtl a\n") > 0);
	assert_true(probe("# only a comment\n") > 0);
	assert_true(probe("# only a comment\n") < probe("v 1 2 3\n"));
	assert_int_equal(probe("ply\nformat ascii 1.0\nelement vertex 3\n"), 0);
	assert_int_equal(probe("OFF\n3 1 0\n0 0 0\n"), 0);
	assert_int_equal(probe("solid cube\n facet normal 0 0 1\n"), 0);
	assert_int_equal(probe("1.0 2.0 3.0\n4 5 6\n"), 0);
	assert_int_equal(probe("# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\n"), 0);
	assert_int_equal(probe(""), 0);
	static const unsigned char bin[] = { 'v', ' ', '1', 0, 2, 3, 4 };
	assert_int_equal(obj_probe(bin, sizeof(bin)), 0);
}

/* ---- end to end, from a temporary folder ---- */

static const unsigned char png_1x1[] = {
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
	0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00,
	0x00, 0x90, 0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78,
	0x9c, 0x63, 0x38, 0x31, 0xad, 0x02, 0x00, 0x04, 0x00, 0x01, 0xd7, 0xb8, 0xd3, 0x0e,
	0x08, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};

static char tmpdir[256];

static void put_file(const char *rel, const void *data, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void put_text(const char *rel, const char *text)
{
	put_file(rel, text, strlen(text));
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/refscan-test-obj-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	char sub[300];
	snprintf(sub, sizeof(sub), "%s/tex", tmpdir);
	return mkdir(sub, 0755);
}

static int remove_tmpdir(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_obj_file_with_mtl_resolves_its_texture(void **state)
{
	(void)state;
	put_text("model.obj", "mtllib model.mtl\n"
			      "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
			      "usemtl skin tone\nf 1/1 2/2 3/3 4/4\n");
	put_text("model.mtl", "newmtl skin tone\nKd 0.9 0.7 0.6\nmap_Kd -s 1 1 1 tex/skin tone.png\n");
	put_file("tex/skin tone.png", png_1x1, sizeof(png_1x1));
	char path[512];
	snprintf(path, sizeof(path), "%s/model.obj", tmpdir);
	struct scan s;
	struct err e;
	err_init(&e);
	assert_int_equal(scan_read_file(path, NULL, &s, &e), 0);
	assert_int_equal(s.n_faces, 2);
	assert_int_equal(s.n_libraries, 1);
	assert_int_equal(s.n_materials, 1);
	assert_true(s.materials[0].defined);
	assert_true(s.materials[0].kd[0] == 0.9f);
	assert_int_equal(s.materials[0].texture, 0);
	assert_int_equal(s.n_textures, 1);
	assert_string_equal(s.textures[0].declared, "tex/skin tone.png");
	assert_non_null(s.textures[0].resolved);
	assert_true(s.textures[0].exists);
	struct stat st;
	assert_int_equal(stat(s.textures[0].resolved, &st), 0);
	assert_int_equal(s.face_material[0], 0);
	assert_int_equal(s.face_material[1], 0);
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);
}

static void test_obj_missing_mtl_is_a_warning_not_an_error(void **state)
{
	(void)state;
	put_text("nomtl.obj", "mtllib gone.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl a\nf 1 2 3\n");
	char path[512];
	snprintf(path, sizeof(path), "%s/nomtl.obj", tmpdir);
	struct scan s;
	struct err e;
	err_init(&e);
	assert_int_equal(scan_read_file(path, NULL, &s, &e), 0);
	assert_int_equal(s.n_faces, 1);
	assert_true(has_warning(&s, "material library 'gone.mtl' not found"));
	assert_true(has_warning(&s, "material 'a' is not defined in any material library"));
	scan_release(&s);
}

static void test_obj_texture_outside_the_folder_is_refused(void **state)
{
	(void)state;
	put_text("up.obj", "mtllib up.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl m\nf 1 2 3\n");
	put_text("up.mtl", "newmtl m\nmap_Kd ../secret.png\n");
	char path[512];
	snprintf(path, sizeof(path), "%s/up.obj", tmpdir);
	struct scan s;
	struct err e;
	err_init(&e);
	assert_int_equal(scan_read_file(path, NULL, &s, &e), 0);
	assert_int_equal(s.n_textures, 1);
	assert_null(s.textures[0].resolved);
	assert_false(s.textures[0].exists);
	assert_true(has_warning(&s, "texture '../secret.png' is outside the scan's folder"));
	scan_release(&s);
}

static void test_obj_file_errors_name_path_and_line(void **state)
{
	(void)state;
	put_text("bad.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n");
	char path[512], buf[1024];
	snprintf(path, sizeof(path), "%s/bad.obj", tmpdir);
	struct scan s;
	struct err e;
	err_init(&e);
	assert_int_equal(scan_read_file(path, NULL, &s, &e), ERR_FORMAT);
	char want[600];
	snprintf(want, sizeof(want), "%s: line 4: face vertex index 4 out of range (have 3)", path);
	assert_string_equal(err_format(&e, buf, sizeof(buf)), want);
	scan_release(&s);
}

/* ---- fixtures and fuzz crashers in tests/data ---- */

static const char *top_dir(void)
{
	const char *t = getenv("REFSCAN_TOP");
	return t ? t : ".";
}

/*
 * Every file under tests/data/<fmt>/<sub>: good ones must read, bad ones
 * must fail with the errc named by the file's first word before '-'
 * ("format-zero-index.obj"), fuzz ones only must not crash.
 */
static size_t replay_dir(const char *fmt, const char *sub)
{
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/tests/data/%s/%s", top_dir(), fmt, sub);
	DIR *d = opendir(dir);
	size_t n = 0;
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[2048];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct mapfile m;
		struct err e;
		struct scan s;
		err_init(&e);
		assert_int_equal(mapfile_open(&m, path, &e), 0);
		scan_init(&s);
		bool mtl = !strcmp(fmt, "mtl");
		int rc = mtl ? mtl_read(m.data, m.len, NULL, &s, &e) : obj_read(m.data, m.len, NULL, &s, &e);
		mapfile_release(&m);
		scan_release(&s);
		if (!strcmp(sub, "good") && rc != 0)
			fail_msg("%s: %s", path, e.msg);
		if (!strcmp(sub, "bad")) {
			char want[32];
			snprintf(want, sizeof(want), "%.*s", (int)strcspn(de->d_name, "-"), de->d_name);
			if (rc >= 0 || strcmp(err_code_name(rc), want) || !e.msg[0])
				fail_msg("%s: rc %d (%s) '%s', want %s", path, rc, err_code_name(rc), e.msg, want);
		}
		n++;
	}
	closedir(d);
	return n;
}

static void test_obj_fixtures_and_fuzz_crashers_replay(void **state)
{
	(void)state;
	size_t good = replay_dir("obj", "good"), bad = replay_dir("obj", "bad");
	size_t fuzz = replay_dir("obj", "fuzz") + replay_dir("mtl", "fuzz");
	size_t mgood = replay_dir("mtl", "good");
	printf("obj fixtures: %zu good, %zu bad, %zu mtl, %zu fuzz crashers\n", good, bad, mgood, fuzz);
	assert_true(good >= 3 && bad >= 3 && mgood >= 1);
}

/* ---- third-party OBJ files ---- */

static char conf_root[4096];
static size_t conf_files, conf_agree;
static char expected_fail[64][256];
static size_t n_expected_fail;

/* `v` statements, counting a line continued with '\' once. */
static long long count_v_lines(const unsigned char *b, size_t len)
{
	const char *p = (const char *)b, *end = p + len;
	long long v = 0;
	bool continued = false;
	if (len >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF)
		p += 3;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		const char *t = e;
		if (t > p && t[-1] == '\r')
			t--;
		if (!continued) {
			const char *q = p;
			while (q < t && (*q == ' ' || *q == '\t'))
				q++;
			if (t - q >= 2 && q[0] == 'v' && (q[1] == ' ' || q[1] == '\t'))
				v++;
		}
		continued = t > p && t[-1] == '\\';
		p = e + 1;
	}
	return v;
}

static int visit_obj(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	size_t n = strlen(path);
	if (type != FTW_F || n < 4 || strcasecmp(path + n - 4, ".obj"))
		return 0;
	const char *rel = path + strlen(conf_root) + 1;
	if (strncmp(rel, "gh-tinyobjloader-models", 23) &&
	    strncmp(rel, "debian-assimp-testmodels", 24) && strncmp(rel, "gh-trimesh-models", 17))
		return 0;
	bool want_fail = false;
	for (size_t i = 0; i < n_expected_fail; i++)
		if (!strcmp(expected_fail[i], rel))
			want_fail = true;
	struct mapfile m;
	struct err e;
	err_init(&e);
	if (mapfile_open(&m, path, &e) < 0)
		return 0;
	long long v = count_v_lines(m.data, m.len);
	mapfile_release(&m);
	struct scan s;
	int rc = scan_read_file(path, NULL, &s, &e);
	bool ok;
	char why[600];
	if (rc < 0) {
		ok = want_fail && e.msg[0] && !strchr(e.msg, '\n');
		snprintf(why, sizeof(why), "error: %s", e.msg);
	} else {
		ok = !want_fail && (long long)s.n_vertices == v;
		snprintf(why, sizeof(why), "%zu vertices (%lld v lines), %zu triangles%s", s.n_vertices,
			 v, s.n_faces, want_fail ? ", but an error was expected" : "");
	}
	scan_release(&s);
	conf_files++;
	conf_agree += ok;
	printf("%-5s %s  %s\n", ok ? "pass" : "FAIL", rel, why);
	return 0;
}

static void load_expected_failures(void)
{
	char path[4096], line[1024];
	snprintf(path, sizeof(path), "%s/tests/data/conformance-expected.tsv", top_dir());
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp) && n_expected_fail < 64) {
		char *tab = strchr(line, '\t');
		if (line[0] == '#' || !tab || strncmp(tab + 1, "fail", 4))
			continue;
		*tab = '\0';
		size_t n = strlen(line);
		if (n > 4 && !strcasecmp(line + n - 4, ".obj"))
			snprintf(expected_fail[n_expected_fail++], sizeof(expected_fail[0]), "%.255s", line);
	}
	fclose(fp);
}

static void test_obj_reads_third_party_files_as_declared(void **state)
{
	(void)state;
	const char *data = getenv("REFSCAN_SHARED_DATA");
	snprintf(conf_root, sizeof(conf_root), "%s/conformance", data ? data : "../shared/data");
	if (access(conf_root, R_OK) != 0) {
		printf("obj conformance: skipped: %s is not present\n", conf_root);
		skip();
	}
	load_expected_failures();
	assert_int_equal(nftw(conf_root, visit_obj, 16, FTW_PHYS), 0);
	printf("obj conformance: %zu files, %zu pass, %zu fail, agreement %.1f%%\n", conf_files,
	       conf_agree, conf_files - conf_agree,
	       conf_files ? 100.0 * (double)conf_agree / (double)conf_files : 0.0);
	assert_true(conf_files > 50);
	assert_int_equal(conf_agree, conf_files);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_obj_reads_positions_and_triangles),
		cmocka_unit_test(test_obj_reads_vertex_colours_as_rgba),
		cmocka_unit_test(test_obj_ignores_w_component),
		cmocka_unit_test(test_obj_reads_every_face_index_form),
		cmocka_unit_test(test_obj_first_normal_given_to_a_vertex_wins),
		cmocka_unit_test(test_obj_resolves_negative_indices_against_what_was_read),
		cmocka_unit_test(test_obj_triangulates_concave_polygons_inside_their_outline),
		cmocka_unit_test(test_obj_corner_uvs_follow_the_triangulation),
		cmocka_unit_test(test_obj_texture_coordinates_take_one_to_three_values),
		cmocka_unit_test(test_obj_broken_vt_or_vn_reference_drops_only_that_attribute),
		cmocka_unit_test(test_obj_points_and_lines_keep_vertices_without_faces),
		cmocka_unit_test(test_obj_with_only_vertices_is_a_point_cloud),
		cmocka_unit_test(test_obj_ignores_groups_objects_and_smoothing),
		cmocka_unit_test(test_obj_unknown_statements_warn_once),
		cmocka_unit_test(test_obj_mtllib_records_every_declared_name),
		cmocka_unit_test(test_obj_usemtl_sets_the_material_of_each_triangle),
		cmocka_unit_test(test_obj_too_many_materials_is_a_limit_error),
		cmocka_unit_test(test_obj_units_comment_sets_units),
		cmocka_unit_test(test_obj_backslash_continues_a_line),
		cmocka_unit_test(test_obj_accepts_crlf_tabs_bom_and_no_final_newline),
		cmocka_unit_test(test_obj_allows_comments_after_statements),
		cmocka_unit_test(test_obj_reads_msvc_nan_and_infinity),
		cmocka_unit_test(test_obj_trailing_nul_padding_is_a_warning),
		cmocka_unit_test(test_obj_comment_only_file_is_empty_not_an_error),
		cmocka_unit_test(test_obj_huge_polygon_is_fanned_with_a_warning),
		cmocka_unit_test(test_obj_rejects_truncated_statements),
		cmocka_unit_test(test_obj_skips_faces_with_fewer_than_3_vertices),
		cmocka_unit_test(test_obj_rejects_bad_numbers),
		cmocka_unit_test(test_obj_rejects_out_of_range_vertex_indices),
		cmocka_unit_test(test_obj_rejects_malformed_face_vertices),
		cmocka_unit_test(test_obj_rejects_empty_garbage_and_binary_input),
		cmocka_unit_test(test_obj_rejects_utf16_and_cr_only_text),
		cmocka_unit_test(test_obj_enforces_line_length_and_polygon_limits),
		cmocka_unit_test(test_obj_enforces_count_limits_before_allocating),
		cmocka_unit_test(test_mtl_reads_diffuse_colour_and_texture),
		cmocka_unit_test(test_mtl_skips_texture_options_before_the_path),
		cmocka_unit_test(test_mtl_bad_values_are_warnings_naming_the_line),
		cmocka_unit_test(test_mtl_rejects_utf16_binary_and_too_many_textures),
		cmocka_unit_test(test_obj_out_of_memory_at_every_allocation_fails_cleanly),
		cmocka_unit_test(test_mtl_out_of_memory_at_every_allocation_fails_cleanly),
		cmocka_unit_test(test_obj_any_chunk_split_and_thread_count_gives_the_same_scan),
		cmocka_unit_test(test_obj_probe_claims_obj_text_only),
		cmocka_unit_test_setup_teardown(test_obj_file_with_mtl_resolves_its_texture,
						make_tmpdir, remove_tmpdir),
		cmocka_unit_test_setup_teardown(test_obj_missing_mtl_is_a_warning_not_an_error,
						make_tmpdir, remove_tmpdir),
		cmocka_unit_test_setup_teardown(test_obj_texture_outside_the_folder_is_refused,
						make_tmpdir, remove_tmpdir),
		cmocka_unit_test_setup_teardown(test_obj_file_errors_name_path_and_line,
						make_tmpdir, remove_tmpdir),
		cmocka_unit_test(test_obj_fixtures_and_fuzz_crashers_replay),
		cmocka_unit_test(test_obj_reads_third_party_files_as_declared),
	};
	return cmocka_run_group_tests_name("obj", tests, NULL, NULL);
}
