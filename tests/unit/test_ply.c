/*
 * test_ply.c - the PLY reader and writer (formats/ply.c).
 *
 * Inputs are built in memory by a small PLY builder (header text plus
 * body values encoded as ascii, binary little endian or binary big
 * endian), so every variant is checked in all three encodings with the
 * values it should give.  Also: malformed and hostile headers, a
 * truncation sweep, an allocation-failure sweep, the writer (round trip,
 * I/O errors, atomic replace), the fixtures in tests/data/ply and, when
 * present, every PLY in ../shared/data/conformance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/mapfile.h"
#include "formats/formats.h"
#include "formats/scan.h"

/* ------------------------------------------------------------------ */
/* builder */

enum enc { ASCII, LE, BE };
static const char *const enc_name[] = { "ascii", "binary_little_endian",
					"binary_big_endian" };

static const struct {
	const char *name;
	int size;
	int kind; /* 0 signed, 1 unsigned, 2 float */
} types[] = {
	{ "char", 1, 0 },   { "int8", 1, 0 },    { "uchar", 1, 1 },  { "uint8", 1, 1 },
	{ "short", 2, 0 },  { "int16", 2, 0 },   { "ushort", 2, 1 }, { "uint16", 2, 1 },
	{ "int", 4, 0 },    { "int32", 4, 0 },   { "uint", 4, 1 },   { "uint32", 4, 1 },
	{ "float", 4, 2 },  { "float32", 4, 2 }, { "double", 8, 2 }, { "float64", 8, 2 },
};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

struct pb {
	unsigned char *b;
	size_t n, cap;
	enum enc enc;
};

static void pb_raw(struct pb *pb, const void *d, size_t n)
{
	if (pb->n + n > pb->cap) {
		pb->cap = (pb->n + n) * 2 + 64;
		pb->b = realloc(pb->b, pb->cap);
		assert_non_null(pb->b);
	}
	memcpy(pb->b + pb->n, d, n);
	pb->n += n;
}

__attribute__((format(printf, 2, 3)))
static void pb_printf(struct pb *pb, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(buf));
	pb_raw(pb, buf, (size_t)n);
}

/* "ply" + format line; the caller adds the rest of the header. */
static void pb_begin(struct pb *pb, enum enc enc)
{
	memset(pb, 0, sizeof(*pb));
	pb->enc = enc;
	pb_printf(pb, "ply\nformat %s 1.0\n", enc_name[enc]);
}

static int type_index(const char *name)
{
	for (size_t i = 0; i < N_TYPES; i++)
		if (!strcmp(types[i].name, name))
			return (int)i;
	fail_msg("unknown test type %s", name);
	return -1;
}

/* One value of the given PLY type, in the builder's encoding. */
static void pb_val(struct pb *pb, const char *type, double v)
{
	int t = type_index(type);
	if (pb->enc == ASCII) {
		/* enough digits to give back the same float or double */
		if (types[t].kind == 2 && types[t].size == 4)
			pb_printf(pb, "%.9g ", (double)(float)v);
		else if (types[t].kind == 2)
			pb_printf(pb, "%.17g ", v);
		else
			pb_printf(pb, "%lld ", (long long)v);
		return;
	}
	unsigned char b[8];
	int size = types[t].size;
	if (types[t].kind == 2 && size == 4) {
		float f = (float)v;
		uint32_t u;
		memcpy(&u, &f, 4);
		for (int i = 0; i < 4; i++)
			b[i] = (unsigned char)(u >> (8 * i));
	} else if (types[t].kind == 2) {
		uint64_t u;
		memcpy(&u, &v, 8);
		for (int i = 0; i < 8; i++)
			b[i] = (unsigned char)(u >> (8 * i));
	} else {
		uint64_t u = (uint64_t)(int64_t)v;
		for (int i = 0; i < size; i++)
			b[i] = (unsigned char)(u >> (8 * i));
	}
	if (pb->enc == BE)
		for (int i = 0; i < size / 2; i++) {
			unsigned char x = b[i];
			b[i] = b[size - 1 - i];
			b[size - 1 - i] = x;
		}
	pb_raw(pb, b, (size_t)size);
}

/* A list: count then items. */
static void pb_list(struct pb *pb, const char *ctype, const char *itype,
		    int n, const double *v)
{
	pb_val(pb, ctype, n);
	for (int i = 0; i < n; i++)
		pb_val(pb, itype, v[i]);
}

/* End of a record (a newline in ascii). */
static void pb_eol(struct pb *pb)
{
	if (pb->enc == ASCII)
		pb_raw(pb, "\n", 1);
}

static void pb_free(struct pb *pb)
{
	free(pb->b);
	memset(pb, 0, sizeof(*pb));
}

static int pb_read(const struct pb *pb, struct scan *s, struct err *e)
{
	err_init(e);
	return ply_read(pb->b, pb->n, NULL, s, e);
}

static int str_read(const char *text, struct scan *s, struct err *e)
{
	err_init(e);
	return ply_read((const unsigned char *)text, strlen(text), NULL, s, e);
}

/* Read and require success, printing the error otherwise. */
static void must_read(const struct pb *pb, struct scan *s)
{
	struct err e;
	int rc = pb_read(pb, s, &e);
	if (rc)
		fail_msg("ply_read failed (%d): line %ld offset %lld: %s", rc, e.line,
			 (long long)e.offset, e.msg);
}

#define XYZ "property float x\nproperty float y\nproperty float z\n"
#define FACE "element face 1\nproperty list uchar int vertex_indices\n"

/* The standard test triangle header: x y z of type t, 3 vertices. */
static const double tri_xyz[3][3] = { { 1, 2, 3 }, { -4, 5, -6 }, { 7, -8, 9 } };

/* ------------------------------------------------------------------ */
/* probing, encodings, scalar types */

static void test_ply_probe_recognises_magic_only(void **state)
{
	(void)state;
	assert_int_equal(ply_probe((const unsigned char *)"ply\nformat", 10), 100);
	assert_int_equal(ply_probe((const unsigned char *)"ply\r\nformat", 11), 100);
	assert_int_equal(ply_probe((const unsigned char *)"plyx\n", 5), 0);
	assert_int_equal(ply_probe((const unsigned char *)"solid x\n", 8), 0);
	assert_int_equal(ply_probe((const unsigned char *)"ply", 3), 0);
}

static void test_ply_reads_ascii_triangle_with_values(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(str_read("ply\nformat ascii 1.0\n"
				  "element vertex 3\nproperty float x\nproperty float y\n"
				  "property float z\nelement face 1\n"
				  "property list uchar int vertex_indices\nend_header\n"
				  "0 0 0\n1.5 0 0\n0 2.25 -1e-3\n3 2 1 0\n",
				  &s, &e), 0);
	assert_string_equal(s.format, "ply");
	assert_string_equal(s.encoding, "ascii");
	assert_int_equal(s.n_vertices, 3);
	assert_int_equal(s.n_faces, 1);
	assert_int_equal(s.n_polygons, 1);
	assert_float_equal(s.positions[3], 1.5f, 0);
	assert_float_equal(s.positions[7], 2.25f, 0);
	assert_float_equal(s.positions[8], -1e-3f, 0);
	assert_int_equal(s.indices[0], 2);
	assert_int_equal(s.indices[1], 1);
	assert_int_equal(s.indices[2], 0);
	assert_null(s.normals);
	assert_null(s.colors);
	assert_null(s.uvs);
	assert_float_equal(s.bbox_max[0], 1.5f, 0);
	assert_float_equal(s.bbox_min[2], -1e-3f, 0);
	scan_release(&s);
}

/* x y z of every scalar type and alias, in every encoding */
static void test_ply_reads_every_scalar_type_in_every_encoding(void **state)
{
	(void)state;
	for (int enc = ASCII; enc <= BE; enc++) {
		for (size_t t = 0; t < N_TYPES; t++) {
			const char *tn = types[t].name;
			struct pb pb;
			struct scan s;
			pb_begin(&pb, (enum enc)enc);
			pb_printf(&pb, "element vertex 3\nproperty %s x\nproperty %s y\n"
				  "property %s z\nend_header\n", tn, tn, tn);
			for (int i = 0; i < 3; i++) {
				for (int k = 0; k < 3; k++) {
					double v = tri_xyz[i][k];
					if (types[t].kind == 1)
						v = fabs(v);
					if (types[t].kind == 2)
						v += 0.25;
					pb_val(&pb, tn, v);
				}
				pb_eol(&pb);
			}
			must_read(&pb, &s);
			assert_string_equal(s.encoding, enc_name[enc]);
			assert_int_equal(s.n_vertices, 3);
			for (int i = 0; i < 3; i++)
				for (int k = 0; k < 3; k++) {
					double v = tri_xyz[i][k];
					if (types[t].kind == 1)
						v = fabs(v);
					if (types[t].kind == 2)
						v += 0.25;
					if (s.positions[3 * i + k] != (float)v)
						fail_msg("%s %s: vertex %d[%d] = %g, want %g",
							 enc_name[enc], tn, i, k,
							 (double)s.positions[3 * i + k], v);
				}
			scan_release(&s);
			pb_free(&pb);
		}
	}
}

static void test_ply_reads_extreme_integer_values(void **state)
{
	(void)state;
	for (int enc = ASCII; enc <= BE; enc++) {
		struct pb pb;
		struct scan s;
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element vertex 2\nproperty char x\nproperty short y\n"
			  "property uint z\nend_header\n");
		pb_val(&pb, "char", -128);
		pb_val(&pb, "short", -32768);
		pb_val(&pb, "uint", 4294967295.0);
		pb_eol(&pb);
		pb_val(&pb, "char", 127);
		pb_val(&pb, "short", 32767);
		pb_val(&pb, "uint", 0);
		pb_eol(&pb);
		must_read(&pb, &s);
		assert_float_equal(s.positions[0], -128.0f, 0);
		assert_float_equal(s.positions[1], -32768.0f, 0);
		assert_float_equal(s.positions[2], 4294967295.0f, 0);
		assert_float_equal(s.positions[3], 127.0f, 0);
		assert_float_equal(s.positions[4], 32767.0f, 0);
		scan_release(&s);
		pb_free(&pb);
	}
}

static void test_ply_reads_double_coordinates_rounded_to_float(void **state)
{
	(void)state;
	for (int enc = ASCII; enc <= BE; enc++) {
		struct pb pb;
		struct scan s;
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element vertex 1\nproperty double x\nproperty double y\n"
			  "property double z\nend_header\n");
		pb_val(&pb, "double", 0.1);
		pb_val(&pb, "double", 1e30);
		pb_val(&pb, "double", -123456.789);
		pb_eol(&pb);
		must_read(&pb, &s);
		assert_true(s.positions[0] == 0.1f);
		assert_true(s.positions[1] == 1e30f);
		assert_true(s.positions[2] == (float)-123456.789);
		scan_release(&s);
		pb_free(&pb);
	}
}

/* ------------------------------------------------------------------ */
/* faces and lists */

static int in_poly(uint32_t v, const uint32_t *poly, int n)
{
	for (int i = 0; i < n; i++)
		if (poly[i] == v)
			return 1;
	return 0;
}

/* z of the cross product of triangle t (positions in the xy plane) */
static double tri_cross_z(const struct scan *s, size_t t)
{
	const float *a = s->positions + 3 * s->indices[3 * t];
	const float *b = s->positions + 3 * s->indices[3 * t + 1];
	const float *c = s->positions + 3 * s->indices[3 * t + 2];
	return ((double)b[0] - a[0]) * ((double)c[1] - a[1]) -
	       ((double)b[1] - a[1]) * ((double)c[0] - a[0]);
}

/*
 * Triangles [t0, t0 + n - 2) must cover polygon poly (counter-clockwise in
 * xy, area `area`): vertices from the polygon, all distinct, same winding,
 * areas summing to the polygon's.
 */
static void check_covers(const struct scan *s, size_t t0, const uint32_t *poly,
			 int n, double area)
{
	double sum = 0;
	for (size_t t = t0; t < t0 + (size_t)n - 2; t++) {
		const uint32_t *tri = s->indices + 3 * t;
		for (int k = 0; k < 3; k++)
			assert_true(in_poly(tri[k], poly, n));
		assert_true(tri[0] != tri[1] && tri[1] != tri[2] && tri[0] != tri[2]);
		double cz = tri_cross_z(s, t);
		assert_true(cz > 0);
		sum += cz / 2;
	}
	assert_float_equal(sum, area, 1e-6);
}

/* every count type x every integer index type x every encoding */
static void test_ply_reads_lists_with_any_count_and_index_type(void **state)
{
	(void)state;
	static const double quad[4] = { 0, 1, 2, 3 }, tri[3] = { 3, 2, 4 };
	for (int enc = ASCII; enc <= BE; enc++) {
		for (size_t c = 0; c < N_TYPES; c++) {
			if (types[c].kind == 2)
				continue;
			for (size_t it = 0; it < N_TYPES; it++) {
				if (types[it].kind == 2)
					continue;
				struct pb pb;
				struct scan s;
				pb_begin(&pb, (enum enc)enc);
				pb_printf(&pb, "element vertex 5\nproperty float x\n"
					  "property float y\nproperty float z\n"
					  "element face 2\nproperty list %s %s vertex_indices\n"
					  "end_header\n", types[c].name, types[it].name);
				static const double v[5][2] = { { 0, 0 }, { 2, 0 }, { 2, 2 },
								{ 0, 2 }, { -1, 1 } };
				for (int i = 0; i < 5; i++) {
					pb_val(&pb, "float", v[i][0]);
					pb_val(&pb, "float", v[i][1]);
					pb_val(&pb, "float", 0);
					pb_eol(&pb);
				}
				pb_list(&pb, types[c].name, types[it].name, 4, quad);
				pb_eol(&pb);
				pb_list(&pb, types[c].name, types[it].name, 3, tri);
				pb_eol(&pb);
				must_read(&pb, &s);
				assert_int_equal(s.n_polygons, 2);
				assert_int_equal(s.n_faces, 3);
				uint32_t q[4] = { 0, 1, 2, 3 };
				check_covers(&s, 0, q, 4, 4.0);
				assert_int_equal(s.indices[6], 3);
				assert_int_equal(s.indices[7], 2);
				assert_int_equal(s.indices[8], 4);
				scan_release(&s);
				pb_free(&pb);
			}
		}
	}
}

static void test_ply_triangulates_polygons_keeping_winding(void **state)
{
	(void)state;
	/* a concave L-shaped hexagon, counter-clockwise, area 3 */
	struct scan s;
	struct err e;
	assert_int_equal(str_read("ply\nformat ascii 1.0\nelement vertex 6\n"
				  "property float x\nproperty float y\nproperty float z\n"
				  "element face 1\nproperty list uchar int vertex_indices\n"
				  "end_header\n"
				  "0 0 0\n2 0 0\n2 1 0\n1 1 0\n1 2 0\n0 2 0\n"
				  "6 0 1 2 3 4 5\n", &s, &e), 0);
	assert_int_equal(s.n_polygons, 1);
	assert_int_equal(s.n_faces, 4);
	uint32_t poly[6] = { 0, 1, 2, 3, 4, 5 };
	double sum = 0;
	for (size_t t = 0; t < 4; t++) {
		for (int k = 0; k < 3; k++)
			assert_true(in_poly(s.indices[3 * t + k], poly, 6));
		sum += tri_cross_z(&s, t) / 2;
	}
	/* same winding as the polygon: the signed areas add up to +3 */
	assert_float_equal(sum, 3.0, 1e-6);
	scan_release(&s);
}

/* a convex 5000-gon with texcoords: over the ear-clipping size, a fan */
static void test_ply_warns_when_huge_polygons_become_fans(void **state)
{
	(void)state;
	const int n = 5000;
	struct pb pb;
	struct scan s;
	double *idx = malloc((size_t)n * sizeof(*idx)), *uv = malloc(2 * (size_t)n * sizeof(*uv));
	assert_non_null(idx);
	assert_non_null(uv);
	pb_begin(&pb, LE);
	pb_printf(&pb, "element vertex %d\n" XYZ "element face 1\n"
		  "property list ushort int vertex_indices\n"
		  "property list ushort float texcoord\nend_header\n", n);
	for (int i = 0; i < n; i++) {
		double a = 2 * M_PI * i / n;
		pb_val(&pb, "float", cos(a));
		pb_val(&pb, "float", sin(a));
		pb_val(&pb, "float", 0);
		idx[i] = i;
		uv[2 * i] = i;
		uv[2 * i + 1] = -i;
	}
	pb_list(&pb, "ushort", "int", n, idx);
	pb_list(&pb, "ushort", "float", 2 * n, uv);
	must_read(&pb, &s);
	assert_int_equal(s.n_polygons, 1);
	assert_int_equal(s.n_faces, (size_t)n - 2);
	assert_int_equal(s.n_warnings, 1);
	assert_non_null(strstr(s.warnings[0], "1 polygons with more than 4096 vertices split as a fan"));
	for (size_t k = 0; k < 3 * s.n_faces; k++) {
		assert_float_equal(s.corner_uvs[2 * k], (float)s.indices[k], 0);
		assert_float_equal(s.corner_uvs[2 * k + 1], -(float)s.indices[k], 0);
	}
	uint32_t *poly = malloc((size_t)n * sizeof(*poly));
	assert_non_null(poly);
	for (int i = 0; i < n; i++)
		poly[i] = (uint32_t)i;
	check_covers(&s, 0, poly, n, n / 2.0 * sin(2 * M_PI / n));
	free(poly);
	scan_release(&s);
	pb_free(&pb);
	free(idx);
	free(uv);
}

static void test_ply_reads_vertex_index_name(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(str_read("ply\nformat ascii 1.0\nelement vertex 3\n"
				  "property float32 x\nproperty float32 y\nproperty float32 z\n"
				  "element face 1\nproperty list uint8 int32 vertex_index\n"
				  "end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", &s, &e), 0);
	assert_int_equal(s.n_faces, 1);
	assert_int_equal(s.indices[1], 1);
	assert_int_equal(s.indices[2], 2);
	scan_release(&s);
}

static void test_ply_reads_faces_declared_before_vertices(void **state)
{
	(void)state;
	for (int enc = ASCII; enc <= BE; enc++) {
		struct pb pb;
		struct scan s;
		static const double quad[4] = { 0, 1, 2, 3 };
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element face 1\nproperty list uchar int vertex_indices\n"
			  "element vertex 4\nproperty float x\nproperty float y\n"
			  "property float z\nend_header\n");
		pb_list(&pb, "uchar", "int", 4, quad);
		pb_eol(&pb);
		static const double v[4][2] = { { 0, 0 }, { 3, 0 }, { 3, 1 }, { 0, 1 } };
		for (int i = 0; i < 4; i++) {
			pb_val(&pb, "float", v[i][0]);
			pb_val(&pb, "float", v[i][1]);
			pb_val(&pb, "float", 7);
			pb_eol(&pb);
		}
		must_read(&pb, &s);
		assert_int_equal(s.n_vertices, 4);
		assert_int_equal(s.n_faces, 2);
		assert_float_equal(s.positions[3], 3.0f, 0);
		assert_float_equal(s.positions[11], 7.0f, 0);
		uint32_t q[4] = { 0, 1, 2, 3 };
		check_covers(&s, 0, q, 4, 3.0);
		scan_release(&s);
		pb_free(&pb);
	}
}

/* ------------------------------------------------------------------ */
/* vertex attributes */

static void test_ply_reads_normals_colours_and_uvs(void **state)
{
	(void)state;
	for (int enc = ASCII; enc <= BE; enc++) {
		struct pb pb;
		struct scan s;
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element vertex 2\nproperty float x\nproperty float y\n"
			  "property float z\nproperty float nx\nproperty float ny\n"
			  "property float nz\nproperty uchar red\nproperty uchar green\n"
			  "property uchar blue\nproperty uchar alpha\nproperty float u\n"
			  "property float v\nend_header\n");
		for (int i = 0; i < 2; i++) {
			for (int k = 0; k < 3; k++)
				pb_val(&pb, "float", i * 3 + k);
			pb_val(&pb, "float", i ? 0 : 1);
			pb_val(&pb, "float", i ? 1 : 0);
			pb_val(&pb, "float", 0);
			pb_val(&pb, "uchar", 10 + i);
			pb_val(&pb, "uchar", 20 + i);
			pb_val(&pb, "uchar", 250);
			pb_val(&pb, "uchar", 128);
			pb_val(&pb, "float", 0.25 * i);
			pb_val(&pb, "float", 0.75);
			pb_eol(&pb);
		}
		must_read(&pb, &s);
		assert_non_null(s.normals);
		assert_non_null(s.colors);
		assert_non_null(s.uvs);
		assert_float_equal(s.positions[5], 5.0f, 0);
		assert_float_equal(s.normals[0], 1.0f, 0);
		assert_float_equal(s.normals[4], 1.0f, 0);
		assert_int_equal(s.colors[0], 10);
		assert_int_equal(s.colors[1], 20);
		assert_int_equal(s.colors[2], 250);
		assert_int_equal(s.colors[3], 128);
		assert_int_equal(s.colors[4], 11);
		assert_int_equal(s.colors[5], 21);
		assert_float_equal(s.uvs[2], 0.25f, 0);
		assert_float_equal(s.uvs[3], 0.75f, 0);
		scan_release(&s);
		pb_free(&pb);
	}
}

/* colours stored as float 0..1, clamped; no alpha means opaque */
static void test_ply_reads_float_colours_as_unit_range(void **state)
{
	(void)state;
	static const double in[4][3] = {
		{ 0, 0.5, 1 }, { 2, -1, 0.2 }, { 1.0 / 255, 0.999, 0.001 }, { 0.25, 0.75, 0.1 }
	};
	static const uint8_t want[4][3] = {
		{ 0, 128, 255 }, { 255, 0, 51 }, { 1, 255, 0 }, { 64, 191, 26 }
	};
	for (int enc = ASCII; enc <= BE; enc++) {
		for (int dbl = 0; dbl < 2; dbl++) {
			const char *t = dbl ? "double" : "float";
			struct pb pb;
			struct scan s;
			pb_begin(&pb, (enum enc)enc);
			pb_printf(&pb, "element vertex 4\nproperty float x\nproperty float y\n"
				  "property float z\nproperty %s red\nproperty %s green\n"
				  "property %s blue\nend_header\n", t, t, t);
			for (int i = 0; i < 4; i++) {
				for (int k = 0; k < 3; k++)
					pb_val(&pb, "float", i);
				for (int k = 0; k < 3; k++)
					pb_val(&pb, t, in[i][k]);
				pb_eol(&pb);
			}
			must_read(&pb, &s);
			for (int i = 0; i < 4; i++) {
				for (int k = 0; k < 3; k++)
					assert_int_equal(s.colors[4 * i + k], want[i][k]);
				assert_int_equal(s.colors[4 * i + 3], 255);
			}
			scan_release(&s);
			pb_free(&pb);
		}
	}
}

static void test_ply_reads_diffuse_colour_names(void **state)
{
	(void)state;
	for (int enc = ASCII; enc <= BE; enc++) {
		struct pb pb;
		struct scan s;
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element vertex 1\nproperty float x\nproperty float y\n"
			  "property float z\nproperty uchar diffuse_red\n"
			  "property uchar diffuse_green\nproperty uchar diffuse_blue\n"
			  "property float psz\nend_header\n");
		for (int k = 0; k < 3; k++)
			pb_val(&pb, "float", 1);
		pb_val(&pb, "uchar", 7);
		pb_val(&pb, "uchar", 8);
		pb_val(&pb, "uchar", 9);
		pb_val(&pb, "float", 0.5);
		pb_eol(&pb);
		must_read(&pb, &s);
		assert_non_null(s.colors);
		assert_int_equal(s.colors[0], 7);
		assert_int_equal(s.colors[1], 8);
		assert_int_equal(s.colors[2], 9);
		assert_int_equal(s.colors[3], 255);
		scan_release(&s);
		pb_free(&pb);
	}
}

static void test_ply_reads_colours_of_other_integer_types(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(str_read("ply\nformat ascii 1.0\nelement vertex 1\n"
				  "property float x\nproperty float y\nproperty float z\n"
				  "property ushort red\nproperty int green\nproperty char blue\n"
				  "property ushort alpha\nend_header\n"
				  "0 0 0 65535 300 -5 32896\n", &s, &e), 0);
	assert_int_equal(s.colors[0], 255);
	assert_int_equal(s.colors[1], 255);
	assert_int_equal(s.colors[2], 0);
	assert_int_equal(s.colors[3], 128);
	scan_release(&s);
}

static void test_ply_reads_every_uv_name_pair(void **state)
{
	(void)state;
	static const char *const names[][2] = {
		{ "u", "v" }, { "s", "t" }, { "texture_u", "texture_v" },
		{ "texture_s", "texture_t" },
	};
	for (int enc = ASCII; enc <= BE; enc++) {
		for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
			struct pb pb;
			struct scan s;
			pb_begin(&pb, (enum enc)enc);
			pb_printf(&pb, "element vertex 2\nproperty float x\nproperty float y\n"
				  "property float z\nproperty float %s\nproperty double %s\n"
				  "end_header\n", names[n][0], names[n][1]);
			for (int i = 0; i < 2; i++) {
				for (int k = 0; k < 3; k++)
					pb_val(&pb, "float", i);
				pb_val(&pb, "float", 0.125 + i);
				pb_val(&pb, "double", 0.5 - i);
				pb_eol(&pb);
			}
			must_read(&pb, &s);
			assert_non_null(s.uvs);
			assert_float_equal(s.uvs[0], 0.125f, 0);
			assert_float_equal(s.uvs[1], 0.5f, 0);
			assert_float_equal(s.uvs[2], 1.125f, 0);
			assert_float_equal(s.uvs[3], -0.5f, 0);
			scan_release(&s);
			pb_free(&pb);
		}
	}
}

static void test_ply_ignores_partial_attribute_sets(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	/* nx without ny/nz, red/green without blue, u without v */
	assert_int_equal(str_read("ply\nformat ascii 1.0\nelement vertex 1\n"
				  "property float x\nproperty float y\nproperty float z\n"
				  "property float nx\nproperty uchar red\nproperty uchar green\n"
				  "property float u\nend_header\n1 2 3 4 5 6 7\n", &s, &e), 0);
	assert_null(s.normals);
	assert_null(s.colors);
	assert_null(s.uvs);
	assert_float_equal(s.positions[2], 3.0f, 0);
	scan_release(&s);
	/* alpha alone is no colour, on vertices or faces */
	assert_int_equal(str_read("ply\nformat ascii 1.0\nelement vertex 3\n" XYZ
				  "property uchar alpha\nelement face 1\n"
				  "property list uchar int vertex_indices\nproperty uchar alpha\n"
				  "end_header\n0 0 0 1\n1 0 0 2\n0 1 0 3\n3 0 1 2 9\n", &s, &e), 0);
	assert_null(s.colors);
	assert_null(s.face_colors);
	assert_int_equal(s.n_faces, 1);
	scan_release(&s);
}

static void test_ply_uses_the_first_of_two_vertex_elements(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(str_read("ply\nformat ascii 1.0\nelement vertex 2\n" XYZ
				  "element vertex 1\nproperty float x\nend_header\n"
				  "1 2 3\n4 5 6\n7\n", &s, &e), 0);
	assert_int_equal(s.n_vertices, 2);
	assert_float_equal(s.positions[5], 6.0f, 0);
	assert_int_equal(s.n_warnings, 1);
	assert_non_null(strstr(s.warnings[0], "line 7: second 'vertex' element ignored"));
	scan_release(&s);
}

/* per-face texcoord lists become per-corner UVs, also through triangulation */
static void test_ply_reads_face_texcoords_as_corner_uvs(void **state)
{
	(void)state;
	for (int enc = ASCII; enc <= BE; enc++) {
		struct pb pb;
		struct scan s;
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "comment TextureFile skin.png\n"
			  "element vertex 5\nproperty float x\nproperty float y\n"
			  "property float z\nelement face 2\n"
			  "property list uchar int vertex_indices\n"
			  "property list uchar float texcoord\nend_header\n");
		static const double v[5][2] = { { 0, 0 }, { 1, 0 }, { 1, 1 }, { 0, 1 }, { 2, 0 } };
		for (int i = 0; i < 5; i++) {
			pb_val(&pb, "float", v[i][0]);
			pb_val(&pb, "float", v[i][1]);
			pb_val(&pb, "float", 0);
			pb_eol(&pb);
		}
		static const double tri[3] = { 1, 4, 2 };
		static const double tri_uv[6] = { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6 };
		pb_list(&pb, "uchar", "int", 3, tri);
		pb_list(&pb, "uchar", "float", 6, tri_uv);
		pb_eol(&pb);
		static const double quad[4] = { 0, 1, 2, 3 };
		static const double quad_uv[8] = { 0, 0, 0.5, 0, 0.5, 0.5, 0, 0.5 };
		pb_list(&pb, "uchar", "int", 4, quad);
		pb_list(&pb, "uchar", "float", 8, quad_uv);
		pb_eol(&pb);
		must_read(&pb, &s);
		assert_int_equal(s.n_faces, 3);
		assert_non_null(s.corner_uvs);
		assert_int_equal(s.n_textures, 1);
		assert_string_equal(s.textures[0].declared, "skin.png");
		for (int k = 0; k < 6; k++)
			assert_float_equal(s.corner_uvs[k], (float)tri_uv[k], 0);
		/* each quad corner keeps the UV of its polygon corner */
		for (int k = 3; k < 9; k++) {
			uint32_t vi = s.indices[k];
			assert_true(vi <= 3);
			assert_float_equal(s.corner_uvs[2 * k], (float)quad_uv[2 * vi], 0);
			assert_float_equal(s.corner_uvs[2 * k + 1], (float)quad_uv[2 * vi + 1], 0);
		}
		uint32_t q[4] = { 0, 1, 2, 3 };
		check_covers(&s, 1, q, 4, 1.0);
		scan_release(&s);
		pb_free(&pb);
	}
}

static void test_ply_reads_face_colours(void **state)
{
	(void)state;
	for (int enc = ASCII; enc <= BE; enc++) {
		struct pb pb;
		struct scan s;
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element vertex 4\nproperty float x\nproperty float y\n"
			  "property float z\nelement face 2\n"
			  "property list uchar int vertex_indices\nproperty uchar red\n"
			  "property uchar green\nproperty uchar blue\nproperty uchar alpha\n"
			  "end_header\n");
		static const double v[4][2] = { { 0, 0 }, { 1, 0 }, { 1, 1 }, { 0, 1 } };
		for (int i = 0; i < 4; i++) {
			pb_val(&pb, "float", v[i][0]);
			pb_val(&pb, "float", v[i][1]);
			pb_val(&pb, "float", 0);
			pb_eol(&pb);
		}
		static const double quad[4] = { 0, 1, 2, 3 }, tri[3] = { 0, 1, 2 };
		pb_list(&pb, "uchar", "int", 4, quad);
		for (int k = 0; k < 4; k++)
			pb_val(&pb, "uchar", 10 * (k + 1));
		pb_eol(&pb);
		pb_list(&pb, "uchar", "int", 3, tri);
		for (int k = 0; k < 4; k++)
			pb_val(&pb, "uchar", 200 + k);
		pb_eol(&pb);
		must_read(&pb, &s);
		assert_int_equal(s.n_faces, 3);
		assert_non_null(s.face_colors);
		for (int t = 0; t < 2; t++)
			for (int k = 0; k < 4; k++)
				assert_int_equal(s.face_colors[4 * t + k], 10 * (k + 1));
		for (int k = 0; k < 4; k++)
			assert_int_equal(s.face_colors[8 + k], 200 + k);
		scan_release(&s);
		pb_free(&pb);
	}
}

/* ------------------------------------------------------------------ */
/* skipped elements and properties */

static void test_ply_skips_unknown_elements_and_properties(void **state)
{
	(void)state;
	for (int enc = ASCII; enc <= BE; enc++) {
		struct pb pb;
		struct scan s;
		static const double l2[2] = { 1000, -1 }, l0[1] = { 0 };
		static const double l5[5] = { 9, 8, 7, 6, 5 };
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb,
			  "comment a scan with everything\n"
			  "element material 1\nproperty uchar ambient_red\n"
			  "property float specular_power\nproperty list uchar char name\n"
			  "element vertex 3\nproperty int flags\nproperty float x\n"
			  "property list ushort int neighbours\nproperty float y\n"
			  "property float z\nproperty double confidence\n"
			  "element range_grid 4\nproperty list uchar int vertex_indices\n"
			  "element edge 2\nproperty int vertex1\nproperty int vertex2\n"
			  "property uchar red\n"
			  "element face 1\nproperty list int uint junk\n"
			  "property list uchar int vertex_indices\nproperty float quality\n"
			  "property list short double more\n"
			  "element camera 1\nproperty float view_px\nproperty float view_py\n"
			  "end_header\n");
		pb_val(&pb, "uchar", 5);
		pb_val(&pb, "float", 2.5);
		pb_list(&pb, "uchar", "char", 5, l5);
		pb_eol(&pb);
		for (int i = 0; i < 3; i++) {
			pb_val(&pb, "int", -7);
			pb_val(&pb, "float", tri_xyz[i][0]);
			if (i == 1)
				pb_list(&pb, "ushort", "int", 2, l2);
			else
				pb_list(&pb, "ushort", "int", 0, l0);
			pb_val(&pb, "float", tri_xyz[i][1]);
			pb_val(&pb, "float", tri_xyz[i][2]);
			pb_val(&pb, "double", 0.5);
			pb_eol(&pb);
		}
		for (int i = 0; i < 4; i++) {
			pb_list(&pb, "uchar", "int", i, l5);
			pb_eol(&pb);
		}
		for (int i = 0; i < 2; i++) {
			pb_val(&pb, "int", i);
			pb_val(&pb, "int", i + 1);
			pb_val(&pb, "uchar", 255);
			pb_eol(&pb);
		}
		static const double tri[3] = { 2, 0, 1 };
		pb_list(&pb, "int", "uint", 5, l5);
		pb_list(&pb, "uchar", "int", 3, tri);
		pb_val(&pb, "float", 0.9);
		pb_list(&pb, "short", "double", 2, l2);
		pb_eol(&pb);
		pb_val(&pb, "float", 1);
		pb_val(&pb, "float", 2);
		pb_eol(&pb);
		must_read(&pb, &s);
		assert_int_equal(s.n_vertices, 3);
		assert_int_equal(s.n_faces, 1);
		for (int i = 0; i < 3; i++)
			for (int k = 0; k < 3; k++)
				assert_float_equal(s.positions[3 * i + k], (float)tri_xyz[i][k], 0);
		assert_int_equal(s.indices[0], 2);
		assert_int_equal(s.indices[1], 0);
		assert_int_equal(s.indices[2], 1);
		assert_null(s.colors);
		assert_int_equal(s.n_warnings, 0);
		scan_release(&s);
		pb_free(&pb);
	}
}

/* ------------------------------------------------------------------ */
/* header comments, CRLF, metadata */

static void test_ply_reads_texture_units_and_comments(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(str_read("ply\nformat ascii 1.0\n"
				  "comment VCGLIB generated\n"
				  "comment TextureFile   fuze uv.jpg \n"
				  "comment TextureFile textures/skin_2.png\n"
				  "comment units mm\n"
				  "obj_info scanner Artec Eva\n"
				  "element vertex 1\nproperty float x\nproperty float y\n"
				  "property float z\nend_header\n1 2 3\n", &s, &e), 0);
	assert_int_equal(s.n_textures, 2);
	assert_string_equal(s.textures[0].declared, "fuze uv.jpg");
	assert_string_equal(s.textures[1].declared, "textures/skin_2.png");
	assert_null(s.textures[0].resolved);
	assert_int_equal(s.units, UNITS_MM);
	assert_string_equal(scan_meta_get(&s, "units"), "mm");
	assert_string_equal(scan_meta_get(&s, "comment"), "VCGLIB generated");
	assert_string_equal(scan_meta_get(&s, "obj_info"), "scanner Artec Eva");
	scan_release(&s);

	assert_int_equal(str_read("ply\nformat ascii 1.0\nobj_info units: cm\n"
				  "element vertex 0\nproperty float x\nproperty float y\n"
				  "property float z\nend_header\n", &s, &e), 0);
	assert_int_equal(s.units, UNITS_CM);
	scan_release(&s);

	assert_int_equal(str_read("ply\nformat ascii 1.0\ncomment units furlongs\n"
				  "element vertex 0\nproperty float x\nproperty float y\n"
				  "property float z\nend_header\n", &s, &e), 0);
	assert_int_equal(s.units, UNITS_UNKNOWN);
	assert_int_equal(s.n_warnings, 1);
	assert_non_null(strstr(s.warnings[0], "unknown units 'furlongs'"));
	scan_release(&s);
}

static void test_ply_reads_crlf_header_and_body(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(str_read("ply\r\nformat ascii 1.0\r\ncomment units mm\r\n"
				  "comment TextureFile a.png\r\n"
				  "element vertex 3\r\nproperty float x\r\nproperty float y\r\n"
				  "property float z\r\nproperty uchar red\r\nproperty uchar green\r\n"
				  "property uchar blue\r\nelement face 1\r\n"
				  "property list uchar int vertex_indices\r\nend_header\r\n"
				  "0 0 0 1 2 3\r\n1 0 0 4 5 6\r\n0 1 0 7 8 9\r\n3 0 1 2\r\n",
				  &s, &e), 0);
	assert_int_equal(s.n_vertices, 3);
	assert_int_equal(s.n_faces, 1);
	assert_int_equal(s.colors[10], 9);
	assert_int_equal(s.units, UNITS_MM);
	assert_string_equal(s.textures[0].declared, "a.png");
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);

	/* binary body after a CRLF header starts right after "\r\n" */
	for (int enc = LE; enc <= BE; enc++) {
		struct pb pb;
		memset(&pb, 0, sizeof(pb));
		pb.enc = (enum enc)enc;
		pb_printf(&pb, "ply\r\nformat %s 1.0\r\nelement vertex 1\r\n"
			  "property uchar x\r\nproperty float y\r\nproperty float z\r\n"
			  "end_header\r\n", enc_name[enc]);
		pb_val(&pb, "uchar", 13);
		pb_val(&pb, "float", 10);
		pb_val(&pb, "float", 0.5);
		must_read(&pb, &s);
		assert_float_equal(s.positions[0], 13.0f, 0);
		assert_float_equal(s.positions[1], 10.0f, 0);
		assert_float_equal(s.positions[2], 0.5f, 0);
		scan_release(&s);
		pb_free(&pb);
	}
}

static void test_ply_accepts_blank_lines_and_warns_on_extra_values(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(str_read("ply\nformat ascii 1.0\nelement vertex 3\n"
				  "property float x\nproperty float y\nproperty float z\n"
				  "element face 1\nproperty list uchar int vertex_indices\n"
				  "end_header\n\n0 0 0\n  \n1 0 0 99\n0 1 0\n\n3 0 1 2 5 5\n\n",
				  &s, &e), 0);
	assert_int_equal(s.n_vertices, 3);
	assert_float_equal(s.positions[3], 1.0f, 0);
	assert_float_equal(s.positions[7], 1.0f, 0);
	assert_int_equal(s.n_faces, 1);
	assert_int_equal(s.n_warnings, 1);
	assert_non_null(strstr(s.warnings[0], "line 13: 2 records have more values"));
	scan_release(&s);
}

static void test_ply_warns_on_unknown_header_lines(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(str_read("ply\nformat ascii 1.0\n"
				  "Created by Blender3D 247 - www.blender.org\n"
				  "element vertex 1\nproperty float x\nproperty float y\n"
				  "property float z\nend_header\n1 2 3\n", &s, &e), 0);
	assert_int_equal(s.n_vertices, 1);
	assert_int_equal(s.n_warnings, 1);
	assert_non_null(strstr(s.warnings[0], "line 3: unknown header line"));
	scan_release(&s);
}

static void test_ply_keeps_nonfinite_coordinates(void **state)
{
	(void)state;
	for (int enc = ASCII; enc <= BE; enc++) {
		struct pb pb;
		struct scan s;
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element vertex 3\nproperty float x\nproperty float y\n"
			  "property float z\nend_header\n");
		double vals[3][3] = { { 1, 2, 3 }, { NAN, 0, 0 }, { 4, INFINITY, -5 } };
		for (int i = 0; i < 3; i++) {
			for (int k = 0; k < 3; k++)
				pb_val(&pb, "float", vals[i][k]);
			pb_eol(&pb);
		}
		must_read(&pb, &s);
		assert_int_equal(s.n_vertices, 3);
		assert_true(isnan(s.positions[3]));
		assert_true(isinf(s.positions[7]));
		assert_int_equal(s.n_nonfinite, 2);
		assert_float_equal(s.bbox_max[2], 3.0f, 0);
		assert_int_equal(s.n_warnings, 1);
		scan_release(&s);
		pb_free(&pb);
	}
}

/* bbox and non-finite count against a plain loop, at every small size */
static void test_ply_bbox_covers_exactly_the_finite_vertices(void **state)
{
	(void)state;
	srand(7);
	for (int n = 1; n <= 40; n++) {
		for (int with_bad = 0; with_bad < 2; with_bad++) {
			struct pb pb;
			struct scan s;
			float lo[3] = { 0, 0, 0 }, hi[3] = { 0, 0, 0 };
			size_t bad = 0;
			int any = 0;
			pb_begin(&pb, LE);
			pb_printf(&pb, "element vertex %d\n" XYZ "end_header\n", n);
			for (int i = 0; i < n; i++) {
				float v[3];
				for (int k = 0; k < 3; k++)
					v[k] = (float)(rand() % 2001 - 1000) / 8.0f;
				if (with_bad && rand() % 4 == 0)
					v[rand() % 3] = rand() % 2 ? NAN : -INFINITY;
				int fin = isfinite(v[0]) && isfinite(v[1]) && isfinite(v[2]);
				bad += !fin;
				for (int k = 0; k < 3 && fin; k++) {
					lo[k] = !any || v[k] < lo[k] ? v[k] : lo[k];
					hi[k] = !any || v[k] > hi[k] ? v[k] : hi[k];
				}
				any |= fin;
				for (int k = 0; k < 3; k++)
					pb_val(&pb, "float", v[k]);
			}
			must_read(&pb, &s);
			assert_int_equal(s.n_nonfinite, bad);
			for (int k = 0; k < 3; k++) {
				assert_true(s.bbox_min[k] == lo[k]);
				assert_true(s.bbox_max[k] == hi[k]);
			}
			scan_release(&s);
			pb_free(&pb);
		}
	}
}

static void test_ply_reads_empty_and_pointless_files(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(str_read("ply\nformat binary_little_endian 1.0\n"
				  "element vertex 0\nproperty float x\nproperty float y\n"
				  "property float z\nelement face 0\n"
				  "property list uchar int vertex_indices\nend_header\n", &s, &e), 0);
	assert_int_equal(s.n_vertices, 0);
	assert_int_equal(s.n_faces, 0);
	scan_release(&s);
	/* a header without elements is an empty scan, with a warning */
	assert_int_equal(str_read("ply\nformat ascii 1.0\nend_header\n", &s, &e), 0);
	assert_int_equal(s.n_vertices, 0);
	assert_int_equal(s.n_warnings, 1);
	scan_release(&s);
}

static void test_ply_warns_on_trailing_binary_data(void **state)
{
	(void)state;
	struct pb pb;
	struct scan s;
	pb_begin(&pb, LE);
	pb_printf(&pb, "element vertex 1\nproperty float x\nproperty float y\n"
		  "property float z\nend_header\n");
	for (int k = 0; k < 3; k++)
		pb_val(&pb, "float", k);
	pb_printf(&pb, "junk!");
	must_read(&pb, &s);
	assert_int_equal(s.n_vertices, 1);
	assert_int_equal(s.n_warnings, 1);
	assert_non_null(strstr(s.warnings[0], "5 bytes of trailing data"));
	scan_release(&s);
	pb_free(&pb);
}

/* ------------------------------------------------------------------ */
/* malformed input */

struct bad_case {
	const char *name;
	const char *text;
	int code;
	const char *msg;  /* expected substring */
	long line;        /* expected line, 0 to skip */
};

static void check_bad(const struct bad_case *c)
{
	struct scan s;
	struct err e;
	int rc = str_read(c->text, &s, &e);
	if (rc != c->code)
		fail_msg("%s: rc %d (%s), want %d", c->name, rc, e.msg, c->code);
	if (!strstr(e.msg, c->msg))
		fail_msg("%s: message '%s' lacks '%s'", c->name, e.msg, c->msg);
	if (c->line && e.line != c->line)
		fail_msg("%s: line %ld, want %ld (%s)", c->name, e.line, c->line, e.msg);
	assert_int_equal(s.n_vertices, 0);
	assert_null(s.positions);
	assert_int_equal(s.n_warnings, 0);
}


static void test_ply_rejects_malformed_headers(void **state)
{
	(void)state;
	static const struct bad_case cases[] = {
		{ "empty", "", ERR_FORMAT, "empty file", 0 },
		{ "garbage", "\x89PNG\r\n\x1a\n\0\0", ERR_FORMAT, "not a ply file", 1 },
		{ "magic only", "ply\n", ERR_FORMAT, "missing 'end_header'", 0 },
		{ "no end_header", "ply\nformat ascii 1.0\nelement vertex 1\n" XYZ "0 0 0\n",
		  ERR_FORMAT, "missing 'end_header'", 0 },
		{ "unknown format", "ply\nformat binary_middle_endian 1.0\nend_header\n",
		  ERR_FORMAT, "unknown ply format 'binary_middle_endian'", 2 },
		{ "no format", "ply\nend_header\n", ERR_FORMAT, "missing 'format' line", 0 },
		{ "two formats", "ply\nformat ascii 1.0\nformat ascii 1.0\nend_header\n",
		  ERR_FORMAT, "second 'format'", 3 },
		{ "version", "ply\nformat ascii 2.0\nend_header\n", ERR_VERSION,
		  "unsupported ply version '2.0'", 2 },
		{ "bad type", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
		  "property quad y\nend_header\n", ERR_FORMAT,
		  "element 'vertex': unknown property type 'quad'", 5 },
		{ "float count type", "ply\nformat ascii 1.0\nelement face 1\n"
		  "property list float int vertex_indices\nend_header\n", ERR_FORMAT,
		  "list count type 'float' is not an integer type", 4 },
		{ "bad list item type", "ply\nformat ascii 1.0\nelement face 1\n"
		  "property list uchar long vertex_indices\nend_header\n", ERR_FORMAT,
		  "unknown property type 'long'", 4 },
		{ "float indices", "ply\nformat ascii 1.0\nelement vertex 0\n" XYZ
		  "element face 0\nproperty list uchar float vertex_indices\nend_header\n",
		  ERR_FORMAT, "must hold integers", 8 },
		{ "scalar indices", "ply\nformat ascii 1.0\nelement vertex 0\n" XYZ
		  "element face 0\nproperty int vertex_indices\nend_header\n",
		  ERR_FORMAT, "'vertex_indices' must be a list", 8 },
		{ "list x", "ply\nformat ascii 1.0\nelement vertex 0\n"
		  "property list uchar float x\nproperty float y\nproperty float z\nend_header\n",
		  ERR_FORMAT, "property 'x' must be a scalar", 4 },
		{ "no y", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
		  "end_header\n1\n2\n", ERR_FORMAT, "element 'vertex' has no 'y' property", 3 },
		{ "no indices", "ply\nformat ascii 1.0\nelement vertex 0\n" XYZ
		  "element face 0\nproperty int flags\nend_header\n", ERR_FORMAT,
		  "element 'face' has no 'vertex_indices' list", 7 },
		{ "property first", "ply\nformat ascii 1.0\nproperty float x\nend_header\n",
		  ERR_FORMAT, "property before any element", 3 },
		{ "element before format", "ply\nelement vertex 1\nformat ascii 1.0\n",
		  ERR_FORMAT, "'element' before the 'format' line", 2 },
		{ "bad count", "ply\nformat ascii 1.0\nelement vertex -3\n", ERR_FORMAT,
		  "element 'vertex': bad count '-3'", 3 },
		{ "count overflow", "ply\nformat ascii 1.0\nelement vertex 99999999999999999999\n",
		  ERR_FORMAT, "bad count", 3 },
		{ "no element name", "ply\nformat ascii 1.0\nelement\n", ERR_FORMAT,
		  "element without a name", 3 },
		{ "no property name", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float\n",
		  ERR_FORMAT, "property without a name", 4 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_bad(&cases[i]);
}

static void test_ply_rejects_malformed_ascii_bodies(void **state)
{
	(void)state;
	static const struct bad_case cases[] = {
		{ "fewer vertices", "ply\nformat ascii 1.0\nelement vertex 3\n" XYZ
		  "end_header\n0 0 0\n1 1 1\n", ERR_FORMAT,
		  "element 'vertex' 2: property 'x': unexpected end of file (3 declared)", 0 },
		{ "short line", "ply\nformat ascii 1.0\nelement vertex 2\n" XYZ
		  "end_header\n0 0 0\n1 1\n", ERR_FORMAT,
		  "element 'vertex' 1: property 'z': value missing", 9 },
		{ "not a number", "ply\nformat ascii 1.0\nelement vertex 2\n" XYZ
		  "end_header\n0 0 0\n1 abc 1\n", ERR_FORMAT,
		  "element 'vertex' 1: property 'y': expected a number near 'abc'", 9 },
		{ "number with junk", "ply\nformat ascii 1.0\nelement vertex 1\n" XYZ
		  "end_header\n0 1.5x 0\n", ERR_FORMAT, "expected a number near '1.5x'", 8 },
		{ "two vertex face", "ply\nformat ascii 1.0\nelement vertex 3\n" XYZ
		  "element face 2\nproperty list uchar int vertex_indices\nend_header\n"
		  "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n2 0 1\n", ERR_FORMAT,
		  "face 1: polygon with 2 vertices (need at least 3)", 14 },
		{ "negative count", "ply\nformat ascii 1.0\nelement vertex 3\n" XYZ
		  "element face 1\nproperty list int int vertex_indices\nend_header\n"
		  "0 0 0\n1 0 0\n0 1 0\n-3 0 1 2\n", ERR_FORMAT,
		  "face 0: property 'vertex_indices': negative list count -3", 13 },
		{ "negative count elsewhere", "ply\nformat ascii 1.0\nelement vertex 1\n" XYZ
		  "property list int int nb\nend_header\n0 0 0 -1\n", ERR_FORMAT,
		  "element 'vertex' 0: property 'nb': negative list count -1", 9 },
		{ "index out of range", "ply\nformat ascii 1.0\nelement vertex 4\n" XYZ
		  FACE "end_header\n0 0 0\n1 0 0\n0 1 0\n1 1 0\n3 0 7 2\n", ERR_FORMAT,
		  "face 0: vertex index 7 out of range (have 4)", 14 },
		{ "negative index", "ply\nformat ascii 1.0\nelement vertex 3\n" XYZ
		  FACE "end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 -1 2\n", ERR_FORMAT,
		  "face 0: vertex index -1 out of range (have 3)", 13 },
		{ "list past line end", "ply\nformat ascii 1.0\nelement vertex 3\n" XYZ
		  FACE "end_header\n0 0 0\n1 0 0\n0 1 0\n5 0 1 2\n", ERR_FORMAT,
		  "face 0: property 'vertex_indices': value missing", 13 },
		{ "float index", "ply\nformat ascii 1.0\nelement vertex 3\n" XYZ
		  FACE "end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1.5 2\n", ERR_FORMAT,
		  "expected an integer near '1.5'", 13 },
		{ "huge count", "ply\nformat ascii 1.0\nelement vertex 1099511627776\n" XYZ
		  "end_header\n0 0 0\n", ERR_LIMIT,
		  "1099511627776 vertices exceed the limit", 3 },
		{ "count larger than data", "ply\nformat ascii 1.0\nelement vertex 2000000000\n"
		  XYZ "end_header\n0 0 0\n", ERR_FORMAT, "do not fit in the 6 bytes left", 3 },
		{ "huge unknown element", "ply\nformat ascii 1.0\nelement junk 1099511627776\n"
		  "property int a\nend_header\n1\n", ERR_FORMAT, "do not fit", 0 },
		{ "texcoord mismatch", "ply\nformat ascii 1.0\nelement vertex 3\n" XYZ
		  FACE "property list uchar float texcoord\nend_header\n"
		  "0 0 0\n1 0 0\n0 1 0\n3 0 1 2 4 0 0 1 1\n", ERR_FORMAT,
		  "face 0: 'texcoord' has 4 values for 3 corners", 14 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_bad(&cases[i]);
}

/* binary: an error gives a byte offset, names element, property, index */
static void bin_expect(const struct pb *pb, int code, const char *msg, int64_t off)
{
	struct scan s;
	struct err e;
	int rc = pb_read(pb, &s, &e);
	if (rc != code)
		fail_msg("rc %d (%s), want %d (%s)", rc, e.msg, code, msg);
	if (!strstr(e.msg, msg))
		fail_msg("message '%s' lacks '%s'", e.msg, msg);
	if (off >= 0 && e.offset != off)
		fail_msg("offset %lld, want %lld (%s)", (long long)e.offset,
			 (long long)off, e.msg);
	assert_null(s.positions);
}

static void test_ply_rejects_huge_binary_counts_before_allocating(void **state)
{
	(void)state;
	for (int enc = LE; enc <= BE; enc++) {
		struct pb pb;
		/* 2^40 vertices: over the limit */
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element vertex 1099511627776\n" XYZ "end_header\n");
		for (int k = 0; k < 3; k++)
			pb_val(&pb, "float", 1);
		bin_expect(&pb, ERR_LIMIT, "1099511627776 vertices exceed the limit", -1);
		pb_free(&pb);

		/* within the limit but nowhere near the bytes: count * stride check */
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element vertex 2000000000\n" XYZ "end_header\n");
		size_t body = pb.n;
		for (int k = 0; k < 3; k++)
			pb_val(&pb, "float", 1);
		bin_expect(&pb, ERR_FORMAT,
			   "element 'vertex' 1: property 'x': unexpected end of file (2000000000 declared)",
			   (int64_t)body + 12);
		pb_free(&pb);

		/* 2^40 records of an unknown element: no walk, no hang */
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element vertex 1\n" XYZ
			  "element junk 1099511627776\nproperty list uchar int a\nend_header\n");
		for (int k = 0; k < 3; k++)
			pb_val(&pb, "float", 1);
		pb_val(&pb, "uchar", 0);
		bin_expect(&pb, ERR_FORMAT, "element 'junk': 1099511627776 records", -1);
		pb_free(&pb);

		/* 2^40 faces: over the limit */
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element vertex 1\n" XYZ
			  "element face 1099511627776\nproperty list uchar int vertex_indices\n"
			  "end_header\n");
		bin_expect(&pb, ERR_LIMIT, "1099511627776 faces exceed the limit", -1);
		pb_free(&pb);

		/* an element without properties may claim any count */
		pb_begin(&pb, (enum enc)enc);
		pb_printf(&pb, "element nothing 1099511627776\nelement vertex 1\n" XYZ
			  "end_header\n");
		for (int k = 0; k < 3; k++)
			pb_val(&pb, "float", 1);
		struct scan s;
		must_read(&pb, &s);
		assert_int_equal(s.n_vertices, 1);
		scan_release(&s);
		pb_free(&pb);
	}
}

static void test_ply_rejects_bad_binary_lists(void **state)
{
	(void)state;
	for (int enc = LE; enc <= BE; enc++) {
		for (int simple = 0; simple < 2; simple++) {
			/* simple: the uchar/int fast path; else an int count */
			const char *ct = simple ? "uchar" : "int";
			struct pb pb;
			size_t face_at;
			static const double ok[3] = { 0, 1, 2 }, bad[3] = { 0, 9, 2 },
					    neg[3] = { 0, -2, 2 };
#define START(nfaces)                                                              \
	do {                                                                       \
		pb_begin(&pb, (enum enc)enc);                                      \
		pb_printf(&pb, "element vertex 3\n" XYZ "element face %d\n"        \
			  "property list %s int vertex_indices\nend_header\n",     \
			  nfaces, ct);                                             \
		for (int i = 0; i < 9; i++)                                        \
			pb_val(&pb, "float", i);                                   \
		face_at = pb.n;                                                    \
	} while (0)
			START(2);
			pb_list(&pb, ct, "int", 3, ok);
			pb_list(&pb, ct, "int", 3, bad);
			bin_expect(&pb, ERR_FORMAT, "face 1: vertex index 9 out of range (have 3)", -1);
			pb_free(&pb);

			START(1);
			pb_list(&pb, ct, "int", 3, neg);
			bin_expect(&pb, ERR_FORMAT, "face 0: vertex index -2 out of range (have 3)", -1);
			pb_free(&pb);

			START(2);
			pb_list(&pb, ct, "int", 3, ok);
			pb_list(&pb, ct, "int", 2, ok);
			bin_expect(&pb, ERR_FORMAT, "face 1: polygon with 2 vertices (need at least 3)",
				   (int64_t)face_at + (simple ? 13 : 16));
			pb_free(&pb);

			/* the list runs past the end of the file */
			START(1);
			pb_val(&pb, ct, 200);
			pb_list(&pb, "int", "int", 3, ok);
			bin_expect(&pb, ERR_FORMAT,
				   "face 0: property 'vertex_indices': list of 200 items runs past the end",
				   (int64_t)face_at);
			pb_free(&pb);

			if (!simple) {
				START(1);
				pb_val(&pb, ct, -1);
				pb_list(&pb, "int", "int", 3, ok);
				bin_expect(&pb, ERR_FORMAT,
					   "face 0: property 'vertex_indices': negative list count -1",
					   (int64_t)face_at);
				pb_free(&pb);
				START(1);
				pb_val(&pb, ct, 70000);
				pb_list(&pb, "int", "int", 3, ok);
				bin_expect(&pb, ERR_LIMIT, "polygon with 70000 vertices exceeds the limit",
					   (int64_t)face_at);
				pb_free(&pb);
			}
#undef START
		}
	}
}

static struct pb full_binary(enum enc enc)
{
	struct pb pb;
	pb_begin(&pb, enc);
	pb_printf(&pb, "comment TextureFile t.png\nelement vertex 4\n" XYZ
		  "property float nx\nproperty float ny\nproperty float nz\n"
		  "property uchar red\nproperty uchar green\nproperty uchar blue\n"
		  "property float u\nproperty float v\n"
		  "element face 2\nproperty list uchar int vertex_indices\n"
		  "property list uchar float texcoord\nproperty uchar red\n"
		  "property uchar green\nproperty uchar blue\n"
		  "element edge 1\nproperty int a\nproperty list ushort int b\n"
		  "end_header\n");
	static const double v[4][2] = { { 0, 0 }, { 1, 0 }, { 1, 1 }, { 0, 1 } };
	for (int i = 0; i < 4; i++) {
		pb_val(&pb, "float", v[i][0]);
		pb_val(&pb, "float", v[i][1]);
		pb_val(&pb, "float", 0);
		pb_val(&pb, "float", 0);
		pb_val(&pb, "float", 0);
		pb_val(&pb, "float", 1);
		pb_val(&pb, "uchar", i);
		pb_val(&pb, "uchar", 2 * i);
		pb_val(&pb, "uchar", 3 * i);
		pb_val(&pb, "float", v[i][0]);
		pb_val(&pb, "float", v[i][1]);
		pb_eol(&pb);
	}
	static const double quad[4] = { 0, 1, 2, 3 }, tri[3] = { 0, 1, 3 };
	static const double quv[8] = { 0, 0, 1, 0, 1, 1, 0, 1 };
	pb_list(&pb, "uchar", "int", 4, quad);
	pb_list(&pb, "uchar", "float", 8, quv);
	pb_val(&pb, "uchar", 1);
	pb_val(&pb, "uchar", 2);
	pb_val(&pb, "uchar", 3);
	pb_eol(&pb);
	pb_list(&pb, "uchar", "int", 3, tri);
	pb_list(&pb, "uchar", "float", 6, quv);
	pb_val(&pb, "uchar", 4);
	pb_val(&pb, "uchar", 5);
	pb_val(&pb, "uchar", 6);
	pb_eol(&pb);
	pb_val(&pb, "int", 1);
	pb_list(&pb, "ushort", "int", 2, quad);
	pb_eol(&pb);
	return pb;
}

/* every prefix of a binary file fails cleanly; only the whole file reads */
static void test_ply_truncation_sweep_fails_cleanly(void **state)
{
	(void)state;
	for (int enc = LE; enc <= BE; enc++) {
		struct pb pb = full_binary((enum enc)enc);
		for (size_t n = 0; n <= pb.n; n++) {
			unsigned char *copy = malloc(n ? n : 1);
			assert_non_null(copy);
			memcpy(copy, pb.b, n);
			struct scan s;
			struct err e;
			err_init(&e);
			int rc = ply_read(copy, n, NULL, &s, &e);
			if (n < pb.n) {
				if (rc >= 0)
					fail_msg("prefix of %zu/%zu bytes read", n, pb.n);
				assert_true(e.msg[0] != '\0');
				assert_null(s.positions);
				assert_int_equal(s.n_warnings, 0);
			} else {
				assert_int_equal(rc, 0);
				assert_int_equal(s.n_faces, 3);
				assert_int_equal(s.n_textures, 1);
			}
			scan_release(&s);
			free(copy);
		}
		pb_free(&pb);
	}
}

static void test_ply_ascii_prefixes_never_crash(void **state)
{
	(void)state;
	struct pb pb = full_binary(ASCII);
	size_t ok = 0;
	for (size_t n = 0; n <= pb.n; n++) {
		unsigned char *copy = malloc(n ? n : 1);
		assert_non_null(copy);
		memcpy(copy, pb.b, n);
		struct scan s;
		struct err e;
		err_init(&e);
		int rc = ply_read(copy, n, NULL, &s, &e);
		if (rc == 0)
			ok++;
		else if (!(e.msg[0] && (e.line > 0 || n == 0)))
			fail_msg("prefix %zu: line %ld: '%s'", n, e.line, e.msg);
		scan_release(&s);
		free(copy);
	}
	/* the whole file, and cuts inside the last (skipped) values */
	assert_true(ok >= 1 && ok < 12);
	pb_free(&pb);
}

static void test_ply_binary_decodes_same_as_ascii(void **state)
{
	(void)state;
	struct scan s[3];
	for (int enc = ASCII; enc <= BE; enc++) {
		struct pb pb = full_binary((enum enc)enc);
		must_read(&pb, &s[enc]);
		pb_free(&pb);
	}
	for (int enc = LE; enc <= BE; enc++) {
		assert_int_equal(s[enc].n_vertices, s[0].n_vertices);
		assert_int_equal(s[enc].n_faces, s[0].n_faces);
		assert_memory_equal(s[enc].positions, s[0].positions, 12 * sizeof(float));
		assert_memory_equal(s[enc].normals, s[0].normals, 12 * sizeof(float));
		assert_memory_equal(s[enc].colors, s[0].colors, 16);
		assert_memory_equal(s[enc].uvs, s[0].uvs, 8 * sizeof(float));
		assert_memory_equal(s[enc].indices, s[0].indices, 9 * sizeof(uint32_t));
		assert_memory_equal(s[enc].corner_uvs, s[0].corner_uvs, 18 * sizeof(float));
		assert_memory_equal(s[enc].face_colors, s[0].face_colors, 12);
	}
	assert_int_equal(s[0].colors[4 * 3 + 2], 9);
	assert_int_equal(s[0].face_colors[4 * 2], 4);
	for (int enc = ASCII; enc <= BE; enc++)
		scan_release(&s[enc]);
}

/*
 * A long face element (long enough for the block decoder): mostly
 * triangles, a quad and a pentagon; `layout` 0 is the plain uchar/int
 * list, 1 adds face colours and scalars around the list, 2 uses uint
 * indices.  bad_face >= 0 puts an out-of-range index there.
 */
static struct pb long_faces(enum enc enc, int layout, int bad_face)
{
	struct pb pb;
	const int nf = 200, nv = 220;
	const char *it = layout == 2 ? "uint" : "int";
	pb_begin(&pb, enc);
	pb_printf(&pb, "element vertex %d\n" XYZ "element face %d\n", nv, nf);
	if (layout == 1)
		pb_printf(&pb, "property float quality\nproperty uchar red\n");
	pb_printf(&pb, "property list uchar %s vertex_indices\n", it);
	if (layout == 1)
		pb_printf(&pb, "property ushort green\nproperty uchar blue\n"
			  "property short flags\n");
	pb_printf(&pb, "end_header\n");
	for (int i = 0; i < nv; i++) {
		pb_val(&pb, "float", cos(i * 0.1) * (1 + i % 3));
		pb_val(&pb, "float", sin(i * 0.1) * (1 + i % 3));
		pb_val(&pb, "float", i);
		pb_eol(&pb);
	}
	for (int f = 0; f < nf; f++) {
		double idx[5];
		int n = f == 50 ? 4 : f == 150 ? 5 : 3;
		for (int k = 0; k < n; k++)
			idx[k] = (f + 7 * k) % nv;
		if (f == bad_face)
			idx[1] = nv + 5;
		if (layout == 1) {
			pb_val(&pb, "float", 0.5);
			pb_val(&pb, "uchar", f % 256);
		}
		pb_list(&pb, "uchar", it, n, idx);
		if (layout == 1) {
			pb_val(&pb, "ushort", (f * 3) % 256 * 257);
			pb_val(&pb, "uchar", 255 - f % 256);
			pb_val(&pb, "short", -f);
		}
		pb_eol(&pb);
	}
	return pb;
}

static void test_ply_decodes_long_face_runs_like_ascii(void **state)
{
	(void)state;
	for (int layout = 0; layout < 3; layout++) {
		struct pb ref_pb = long_faces(ASCII, layout, -1);
		struct scan ref;
		must_read(&ref_pb, &ref);
		assert_int_equal(ref.n_polygons, 200);
		assert_int_equal(ref.n_faces, 198 + 2 + 3);
		assert_true(!ref.face_colors == (layout != 1));
		for (int enc = LE; enc <= BE; enc++) {
			struct pb pb = long_faces((enum enc)enc, layout, -1);
			struct scan s;
			must_read(&pb, &s);
			assert_int_equal(s.n_faces, ref.n_faces);
			assert_memory_equal(s.indices, ref.indices, 3 * s.n_faces * sizeof(uint32_t));
			assert_memory_equal(s.positions, ref.positions, 3 * s.n_vertices * sizeof(float));
			if (layout == 1) {
				assert_memory_equal(s.face_colors, ref.face_colors, 4 * s.n_faces);
				/* face 199 is the last triangle: red 199, green 85, blue 56 */
				const uint8_t *c = s.face_colors + 4 * (s.n_faces - 1);
				assert_int_equal(c[0], 199);
				assert_int_equal(c[1], (199 * 3) % 256);
				assert_int_equal(c[2], 56);
				assert_int_equal(c[3], 255);
			}
			scan_release(&s);

			/* a bad index inside a block is still named exactly */
			for (int bad = 0; bad < 200; bad += 37) {
				struct pb bp = long_faces((enum enc)enc, layout, bad);
				char want[80];
				snprintf(want, sizeof(want), "face %d: vertex index 225 out of range (have 220)",
					 bad);
				bin_expect(&bp, ERR_FORMAT, want, -1);
				pb_free(&bp);
			}

			/* and every prefix fails cleanly */
			for (size_t n = pb.n - 400; n < pb.n; n++) {
				unsigned char *copy = malloc(n);
				struct err e;
				assert_non_null(copy);
				memcpy(copy, pb.b, n);
				err_init(&e);
				assert_true(ply_read(copy, n, NULL, &s, &e) < 0);
				if (!strstr(e.msg, "unexpected end of file") &&
				    !strstr(e.msg, "runs past the end of the file"))
					fail_msg("prefix %zu: %s", n, e.msg);
				free(copy);
			}
			pb_free(&pb);
		}
		scan_release(&ref);
		pb_free(&ref_pb);
	}
}

static void test_ply_applies_limits(void **state)
{
	(void)state;
	struct limits lim;
	struct scan s;
	struct err e;
	const char *text = "ply\nformat ascii 1.0\ncomment padding padding padding\n"
			   "element vertex 4\n" XYZ FACE "end_header\n"
			   "0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n";
	const unsigned char *b = (const unsigned char *)text;

	limits_init(&lim);
	lim.max_header_bytes = 40;
	assert_int_equal(ply_read(b, strlen(text), &lim, &s, &e), ERR_LIMIT);
	assert_non_null(strstr(e.msg, "header longer than 40 bytes"));

	limits_init(&lim);
	lim.max_vertices = 3;
	assert_int_equal(ply_read(b, strlen(text), &lim, &s, &e), ERR_LIMIT);
	assert_non_null(strstr(e.msg, "4 vertices exceed the limit of 3"));

	limits_init(&lim);
	lim.max_faces = 1;
	assert_int_equal(ply_read(b, strlen(text), &lim, &s, &e), ERR_LIMIT);
	assert_non_null(strstr(e.msg, "face 0: more than 1 triangles"));

	limits_init(&lim);
	lim.max_polygon_degree = 3;
	assert_int_equal(ply_read(b, strlen(text), &lim, &s, &e), ERR_LIMIT);
	assert_non_null(strstr(e.msg, "face 0: polygon with 4 vertices exceeds the limit of 3"));

	limits_init(&lim);
	lim.max_properties = 2;
	assert_int_equal(ply_read(b, strlen(text), &lim, &s, &e), ERR_LIMIT);
	assert_non_null(strstr(e.msg, "element 'vertex': more than 2 properties"));

	limits_init(&lim);
	assert_int_equal(ply_read(b, strlen(text), &lim, &s, &e), 0);
	assert_int_equal(s.n_faces, 2);
	scan_release(&s);

	/* textures past max_referenced_files are dropped with a warning */
	const char *tex = "ply\nformat ascii 1.0\ncomment TextureFile a.png\n"
			  "comment TextureFile b.png\nelement vertex 0\n" XYZ "end_header\n";
	limits_init(&lim);
	lim.max_referenced_files = 1;
	assert_int_equal(ply_read((const unsigned char *)tex, strlen(tex), &lim, &s, &e), 0);
	assert_int_equal(s.n_textures, 1);
	assert_string_equal(s.textures[0].declared, "a.png");
	assert_int_equal(s.n_warnings, 1);
	assert_non_null(strstr(s.warnings[0], "line 4: more than 1 textures; 'b.png' ignored"));
	scan_release(&s);
}

/* every allocation failing in turn: a clean ERR_NOMEM and no leak */
static void oom_sweep(const unsigned char *b, size_t n)
{
	long i;
	for (i = 0; i < 1000; i++) {
		struct scan s;
		struct err e;
		err_init(&e);
		alloc_fail_after(i);
		int rc = ply_read(b, n, NULL, &s, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			assert_true(s.n_faces > 0);
			scan_release(&s);
			break;
		}
		if (rc != ERR_NOMEM)
			fail_msg("allocation %ld failing gave %d: %s", i, rc, e.msg);
		assert_null(s.positions);
		assert_int_equal(s.n_textures, 0);
		assert_int_equal(s.n_warnings, 0);
	}
	assert_true(i > 3 && i < 1000);
}

static void test_ply_survives_every_allocation_failure(void **state)
{
	(void)state;
	for (int enc = ASCII; enc <= BE; enc++) {
		struct pb pb = full_binary((enum enc)enc);
		/* metadata, units, a warning (unknown units) and polygons */
		struct pb full;
		memset(&full, 0, sizeof(full));
		size_t cut = strlen("ply\nformat ") + strlen(enc_name[enc]) + strlen(" 1.0\n");
		pb_raw(&full, pb.b, cut);
		pb_printf(&full, "comment units mm\nobj_info scanner X\ncomment units parsec\n");
		pb_raw(&full, pb.b + cut, pb.n - cut);
		oom_sweep(full.b, full.n);
		pb_free(&full);
		pb_free(&pb);
	}
}

/* ------------------------------------------------------------------ */
/* writer */

static char tmpdir[4096];

static const char *tmp_path(const char *name)
{
	static char path[4200];
	if (!tmpdir[0]) {
		const char *b = getenv("REFSCAN_BUILD");
		snprintf(tmpdir, sizeof(tmpdir), "%s/test_ply.XXXXXX", b ? b : "/tmp");
		if (!mkdtemp(tmpdir)) {
			snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_ply.XXXXXX");
			assert_non_null(mkdtemp(tmpdir));
		}
	}
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static void read_file_scan(const char *path, struct scan *s)
{
	struct mapfile m;
	struct err e;
	err_init(&e);
	assert_int_equal(mapfile_open(&m, path, &e), 0);
	int rc = ply_read(m.data, m.len, NULL, s, &e);
	if (rc)
		fail_msg("%s: %s", path, e.msg);
	mapfile_release(&m);
}

static void assert_scans_equal(const struct scan *a, const struct scan *b)
{
	assert_int_equal(a->n_vertices, b->n_vertices);
	assert_int_equal(a->n_faces, b->n_faces);
	assert_memory_equal(a->positions, b->positions, 3 * a->n_vertices * sizeof(float));
	assert_memory_equal(a->indices, b->indices, 3 * a->n_faces * sizeof(uint32_t));
	assert_true(!a->normals == !b->normals);
	assert_true(!a->colors == !b->colors);
	assert_true(!a->uvs == !b->uvs);
	assert_true(!a->corner_uvs == !b->corner_uvs);
	assert_true(!a->face_colors == !b->face_colors);
	if (a->normals)
		assert_memory_equal(a->normals, b->normals, 3 * a->n_vertices * sizeof(float));
	if (a->colors)
		assert_memory_equal(a->colors, b->colors, 4 * a->n_vertices);
	if (a->uvs)
		assert_memory_equal(a->uvs, b->uvs, 2 * a->n_vertices * sizeof(float));
	if (a->corner_uvs)
		assert_memory_equal(a->corner_uvs, b->corner_uvs, 6 * a->n_faces * sizeof(float));
	if (a->face_colors)
		assert_memory_equal(a->face_colors, b->face_colors, 4 * a->n_faces);
	assert_int_equal(a->units, b->units);
	assert_int_equal(a->n_textures, b->n_textures);
	for (size_t i = 0; i < a->n_textures; i++)
		assert_string_equal(a->textures[i].declared, b->textures[i].declared);
}

static void test_ply_write_round_trips(void **state)
{
	(void)state;
	struct pb pb = full_binary(BE);
	struct scan a, b;
	must_read(&pb, &a);
	a.units = UNITS_UM;
	assert_true(scan_texture_add(&a, "dir/with space.png", 18) >= 0);
	struct err e;
	err_init(&e);
	const char *path = tmp_path("round.ply");
	assert_int_equal(ply_write(path, &a, &e), 0);
	read_file_scan(path, &b);
	assert_string_equal(b.encoding, "binary_little_endian");
	assert_scans_equal(&a, &b);
	assert_string_equal(b.textures[1].declared, "dir/with space.png");
	scan_release(&b);

	/* positions only, no faces; the file is replaced in place */
	xfree(a.normals);
	a.normals = NULL;
	xfree(a.colors);
	a.colors = NULL;
	xfree(a.uvs);
	a.uvs = NULL;
	xfree(a.corner_uvs);
	a.corner_uvs = NULL;
	xfree(a.face_colors);
	a.face_colors = NULL;
	a.n_faces = 0;
	a.units = UNITS_UNKNOWN;
	assert_int_equal(ply_write(path, &a, &e), 0);
	read_file_scan(path, &b);
	assert_scans_equal(&a, &b);
	assert_null(scan_meta_get(&b, "units"));
	scan_release(&b);

	/* nothing but the file is left in the directory */
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	int files = 0;
	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			files++;
	closedir(d);
	assert_int_equal(files, 1);
	unlink(path);
	scan_release(&a);
	pb_free(&pb);
}

static void test_ply_write_large_mesh_round_trips(void **state)
{
	(void)state;
	/* bigger than the writer's buffer and the reader's parallel threshold */
	struct scan a, b;
	struct err e;
	size_t nv = 100000, nf = 2 * (nv - 2);
	scan_init(&a);
	err_init(&e);
	assert_int_equal(scan_alloc(&a, nv, nf, SCAN_ALLOC_NORMALS | SCAN_ALLOC_COLORS, &e), 0);
	a.n_vertices = nv;
	a.n_faces = nf;
	for (size_t i = 0; i < nv; i++) {
		for (int k = 0; k < 3; k++) {
			a.positions[3 * i + k] = (float)i * 0.5f + (float)k;
			a.normals[3 * i + k] = (float)k - 1.0f;
		}
		for (int k = 0; k < 4; k++)
			a.colors[4 * i + k] = (uint8_t)(i + (size_t)k);
	}
	for (size_t f = 0; f < nf; f++)
		for (int k = 0; k < 3; k++)
			a.indices[3 * f + k] = (uint32_t)((f / 2 + (size_t)k) % nv);
	const char *path = tmp_path("large.ply");
	assert_int_equal(ply_write(path, &a, &e), 0);
	read_file_scan(path, &b);
	assert_scans_equal(&a, &b);
	scan_release(&b);
	unlink(path);
	scan_release(&a);
}

static void test_ply_write_reports_io_errors(void **state)
{
	(void)state;
	struct pb pb = full_binary(LE);
	struct scan a;
	struct err e;
	must_read(&pb, &a);
	FILE *fp = fopen("/dev/full", "wb");
	if (fp) {
		err_init(&e);
		assert_int_equal(ply_write_stream(fp, &a, &e), ERR_IO);
		assert_non_null(strstr(e.msg, "No space left on device"));
		fclose(fp);
	} else {
		printf("ply: /dev/full check skipped: %s\n", strerror(errno));
	}
	err_init(&e);
	assert_int_equal(ply_write(tmp_path("no/such/dir/x.ply"), &a, &e), ERR_IO);
	assert_non_null(strstr(e.msg, "cannot create"));
	assert_non_null(strstr(e.msg, "No such file or directory"));
	assert_non_null(strstr(e.path, "x.ply"));
	scan_release(&a);
	pb_free(&pb);
}

static void test_ply_write_refuses_what_ply_cannot_hold(void **state)
{
	(void)state;
	struct scan a;
	struct err e;
	scan_init(&a);
	assert_true(scan_texture_add(&a, "two\nlines.png", 13) >= 0);
	FILE *fp = fopen("/dev/null", "wb");
	assert_non_null(fp);
	err_init(&e);
	assert_int_equal(ply_write_stream(fp, &a, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "texture 0: path contains a line break"));
	scan_release(&a);
	/* only the count is looked at before the refusal */
	a.n_vertices = (size_t)INT32_MAX + 1;
	assert_int_equal(ply_write_stream(fp, &a, &e), ERR_LIMIT);
	assert_non_null(strstr(e.msg, "2147483648 vertices do not fit in int indices"));
	fclose(fp);
}

static void test_ply_write_over_a_directory_fails_and_cleans_up(void **state)
{
	(void)state;
	struct pb pb = full_binary(LE);
	struct scan a;
	struct err e;
	must_read(&pb, &a);
	const char *dir = tmp_path("adir");
	char dir_copy[4200], inside[4300];
	snprintf(dir_copy, sizeof(dir_copy), "%s", dir);
	assert_int_equal(mkdir(dir_copy, 0755), 0);
	snprintf(inside, sizeof(inside), "%s/keep", dir_copy);
	FILE *fp = fopen(inside, "w");
	assert_non_null(fp);
	fclose(fp);
	err_init(&e);
	assert_int_equal(ply_write(dir_copy, &a, &e), ERR_IO);
	assert_non_null(strstr(e.msg, "not a regular file"));
	assert_string_equal(e.path, dir_copy);
	/* the temp file is gone: only the directory is left in tmpdir */
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	int entries = 0;
	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			entries++;
	closedir(d);
	assert_int_equal(entries, 1);
	unlink(inside);
	rmdir(dir_copy);
	scan_release(&a);
	pb_free(&pb);
}

static void test_ply_write_survives_allocation_failure(void **state)
{
	(void)state;
	struct pb pb = full_binary(LE);
	struct scan a;
	struct err e;
	must_read(&pb, &a);
	FILE *fp = fopen("/dev/null", "wb");
	assert_non_null(fp);
	alloc_fail_after(0);
	int rc = ply_write_stream(fp, &a, &e);
	alloc_fail_after(-1);
	assert_int_equal(rc, ERR_NOMEM);
	assert_int_equal(ply_write_stream(fp, &a, &e), 0);
	fclose(fp);
	scan_release(&a);
	pb_free(&pb);
}

/* ------------------------------------------------------------------ */
/* fixtures and third-party files */

static const char *top_dir(void)
{
	const char *t = getenv("REFSCAN_TOP");
	return t ? t : ".";
}

/*
 * tests/data/ply/bad/<code>-*.ply must fail with that errc name,
 * tests/data/ply/good/ *.ply must read with the counts their headers declare,
 * tests/data/ply/fuzz/ * (inputs found by fuzzing) must not crash.
 */
static void decl_counts(const unsigned char *b, size_t n, long long *nv, long long *nf);

static size_t run_dir(const char *sub, int kind)
{
	char dir[4200];
	size_t count = 0;
	snprintf(dir, sizeof(dir), "%s/tests/data/ply/%s", top_dir(), sub);
	DIR *d = opendir(dir);
	if (!d) {
		printf("ply: %s: %s\n", dir, strerror(errno));
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[8400];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct mapfile m;
		struct scan s;
		struct err e;
		err_init(&e);
		assert_int_equal(mapfile_open(&m, path, &e), 0);
		int rc = ply_read(m.data, m.len, NULL, &s, &e);
		if (kind == 0) {
			const char *dash = strchr(de->d_name, '-');
			assert_non_null(dash);
			char want[32];
			snprintf(want, sizeof(want), "%.*s", (int)(dash - de->d_name), de->d_name);
			if (rc >= 0 || strcmp(err_code_name(rc), want))
				fail_msg("%s: got %s (%s), want %s", de->d_name,
					 rc < 0 ? err_code_name(rc) : "success", e.msg, want);
			assert_true(e.msg[0] != '\0');
		} else if (kind == 1) {
			long long nv = -1, nf = -1;
			decl_counts(m.data, m.len, &nv, &nf);
			if (rc)
				fail_msg("%s: %s", de->d_name, e.msg);
			assert_int_equal(s.n_vertices, nv < 0 ? 0 : nv);
			assert_int_equal(s.n_polygons, nf < 0 ? 0 : nf);
		} else if (rc == 0) {
			for (size_t i = 0; i < 3 * s.n_faces; i++)
				assert_true(s.indices[i] < s.n_vertices);
		} else {
			assert_true(e.msg[0] != '\0');
		}
		scan_release(&s);
		mapfile_release(&m);
		count++;
	}
	closedir(d);
	return count;
}

static void test_ply_fixtures_give_expected_results(void **state)
{
	(void)state;
	size_t bad = run_dir("bad", 0), good = run_dir("good", 1), fuzz = run_dir("fuzz", 2);
	printf("ply: fixtures: %zu bad, %zu good, %zu fuzz regressions\n", bad, good, fuzz);
	assert_true(bad >= 5);
	assert_true(good >= 3);
}

static void read_fixture(const char *name, struct scan *s)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/tests/data/ply/good/%s", top_dir(), name);
	read_file_scan(path, s);
}

/* golden values of the good fixtures */
static void test_ply_fixtures_hold_expected_values(void **state)
{
	(void)state;
	struct scan s;

	/* pentagon + triangle, per-vertex s/t and per-face texcoord */
	read_fixture("le-normals-uv-texcoord.ply", &s);
	assert_int_equal(s.n_vertices, 6);
	assert_int_equal(s.n_polygons, 2);
	assert_int_equal(s.n_faces, 4);
	assert_string_equal(s.textures[0].declared, "uv.png");
	assert_float_equal(s.positions[3 * 2], 3.0f, 0);
	assert_float_equal(s.normals[3 * 5 + 2], 1.0f, 0);
	assert_float_equal(s.uvs[2 * 3 + 1], 0.4f, 0);
	for (int k = 0; k < 9; k++) {
		/* pentagon corners keep their UV: (x/5, y/5) of the vertex */
		uint32_t v = s.indices[k];
		assert_true(v <= 4);
		assert_float_equal(s.corner_uvs[2 * k], s.positions[3 * v] / 5, 1e-6);
		assert_float_equal(s.corner_uvs[2 * k + 1], s.positions[3 * v + 1] / 5, 1e-6);
	}
	assert_int_equal(s.indices[9], 1);
	assert_int_equal(s.indices[10], 5);
	assert_int_equal(s.indices[11], 2);
	assert_float_equal(s.corner_uvs[18], 0.2f, 0);
	assert_float_equal(s.corner_uvs[23], 0.2f, 0);
	scan_release(&s);

	/* big endian doubles, edge and camera elements skipped, face colours */
	read_fixture("be-double-extra-elements.ply", &s);
	assert_int_equal(s.n_vertices, 4);
	assert_int_equal(s.n_faces, 2);
	assert_int_equal(s.units, UNITS_M);
	assert_float_equal(s.positions[11], 1.0f, 0);
	assert_int_equal(s.indices[5], 3);
	assert_int_equal(s.face_colors[0], 200);
	assert_int_equal(s.face_colors[5], 200);
	assert_int_equal(s.face_colors[7], 255);
	assert_int_equal(s.n_warnings, 0);
	scan_release(&s);

	/* CRLF everywhere, obj_info units, vertex_index */
	read_fixture("ascii-crlf-obj-info.ply", &s);
	assert_int_equal(s.units, UNITS_CM);
	assert_string_equal(scan_meta_get(&s, "obj_info"), "scanner test");
	assert_int_equal(s.indices[2], 2);
	assert_float_equal(s.normals[2], 1.0f, 0);
	scan_release(&s);

	read_fixture("le-points-colours.ply", &s);
	assert_int_equal(s.n_faces, 0);
	assert_int_equal(s.colors[4 * 2], 2);
	assert_int_equal(s.colors[4 * 2 + 3], 255);
	assert_float_equal(s.positions[3 * 2 + 2], 6.0f, 0);
	scan_release(&s);
}

/* `element vertex N` / `element face N` from a header, -1 when absent */
static void decl_counts(const unsigned char *b, size_t n, long long *nv, long long *nf)
{
	const char *p = (const char *)b, *end = p + n;
	*nv = *nf = -1;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		char line[256];
		size_t l = (size_t)(e - p) < sizeof(line) - 1 ? (size_t)(e - p) : sizeof(line) - 1;
		memcpy(line, p, l);
		line[l] = '\0';
		if (!strncmp(line, "element vertex ", 15))
			*nv = strtoll(line + 15, NULL, 10);
		else if (!strncmp(line, "element face ", 13))
			*nf = strtoll(line + 13, NULL, 10);
		else if (!strncmp(line, "end_header", 10))
			break;
		p = e + 1;
	}
}

static char conf_root[4096];
static char expected_fail[8192];
static size_t conf_files, conf_failed_as_expected;

static int conf_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	size_t n = strlen(path);
	if (type != FTW_F || n < 4 || strcasecmp(path + n - 4, ".ply"))
		return 0;
	const char *rel = path + strlen(conf_root) + 1;
	char key[1100];
	snprintf(key, sizeof(key), "\n%s\t", rel);
	int want_fail = strstr(expected_fail, key) != NULL;
	struct mapfile m;
	struct scan s;
	struct err e;
	err_init(&e);
	assert_int_equal(mapfile_open(&m, path, &e), 0);
	long long nv, nf;
	decl_counts(m.data, m.len, &nv, &nf);
	int rc = ply_read(m.data, m.len, NULL, &s, &e);
	conf_files++;
	if (want_fail) {
		if (rc == 0)
			fail_msg("%s: read, but it is listed as invalid", rel);
		assert_true(e.msg[0] != '\0' && !strchr(e.msg, '\n'));
		printf("ply: %s: rejected: %s\n", rel, e.msg);
		conf_failed_as_expected++;
	} else {
		if (rc)
			fail_msg("%s: %s", rel, e.msg);
		if (nv >= 0)
			assert_int_equal(s.n_vertices, nv);
		if (nf >= 0)
			assert_int_equal(s.n_polygons, nf);
		assert_true(s.n_faces >= s.n_polygons);
	}
	scan_release(&s);
	mapfile_release(&m);
	return 0;
}

static void test_ply_reads_conformance_files_as_declared(void **state)
{
	(void)state;
	const char *data = getenv("REFSCAN_SHARED_DATA");
	snprintf(conf_root, sizeof(conf_root), "%s/conformance",
		 data ? data : "../shared/data");
	if (access(conf_root, R_OK) != 0) {
		printf("ply: conformance skipped: %s is not present\n", conf_root);
		skip();
	}
	char tsv[4200];
	snprintf(tsv, sizeof(tsv), "%s/tests/data/conformance-expected.tsv", top_dir());
	FILE *fp = fopen(tsv, "r");
	assert_non_null(fp);
	expected_fail[0] = '\n';
	size_t got = fread(expected_fail + 1, 1, sizeof(expected_fail) - 2, fp);
	expected_fail[got + 1] = '\0';
	fclose(fp);
	assert_int_equal(nftw(conf_root, conf_visit, 16, FTW_PHYS), 0);
	printf("ply: conformance: %zu files, %zu rejected as expected\n", conf_files,
	       conf_failed_as_expected);
	assert_true(conf_files > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ply_probe_recognises_magic_only),
		cmocka_unit_test(test_ply_reads_ascii_triangle_with_values),
		cmocka_unit_test(test_ply_reads_every_scalar_type_in_every_encoding),
		cmocka_unit_test(test_ply_reads_extreme_integer_values),
		cmocka_unit_test(test_ply_reads_double_coordinates_rounded_to_float),
		cmocka_unit_test(test_ply_reads_lists_with_any_count_and_index_type),
		cmocka_unit_test(test_ply_triangulates_polygons_keeping_winding),
		cmocka_unit_test(test_ply_warns_when_huge_polygons_become_fans),
		cmocka_unit_test(test_ply_reads_vertex_index_name),
		cmocka_unit_test(test_ply_reads_faces_declared_before_vertices),
		cmocka_unit_test(test_ply_reads_normals_colours_and_uvs),
		cmocka_unit_test(test_ply_reads_float_colours_as_unit_range),
		cmocka_unit_test(test_ply_reads_diffuse_colour_names),
		cmocka_unit_test(test_ply_reads_colours_of_other_integer_types),
		cmocka_unit_test(test_ply_reads_every_uv_name_pair),
		cmocka_unit_test(test_ply_ignores_partial_attribute_sets),
		cmocka_unit_test(test_ply_uses_the_first_of_two_vertex_elements),
		cmocka_unit_test(test_ply_reads_face_texcoords_as_corner_uvs),
		cmocka_unit_test(test_ply_reads_face_colours),
		cmocka_unit_test(test_ply_skips_unknown_elements_and_properties),
		cmocka_unit_test(test_ply_reads_texture_units_and_comments),
		cmocka_unit_test(test_ply_reads_crlf_header_and_body),
		cmocka_unit_test(test_ply_accepts_blank_lines_and_warns_on_extra_values),
		cmocka_unit_test(test_ply_warns_on_unknown_header_lines),
		cmocka_unit_test(test_ply_keeps_nonfinite_coordinates),
		cmocka_unit_test(test_ply_bbox_covers_exactly_the_finite_vertices),
		cmocka_unit_test(test_ply_reads_empty_and_pointless_files),
		cmocka_unit_test(test_ply_warns_on_trailing_binary_data),
		cmocka_unit_test(test_ply_rejects_malformed_headers),
		cmocka_unit_test(test_ply_rejects_malformed_ascii_bodies),
		cmocka_unit_test(test_ply_rejects_huge_binary_counts_before_allocating),
		cmocka_unit_test(test_ply_rejects_bad_binary_lists),
		cmocka_unit_test(test_ply_truncation_sweep_fails_cleanly),
		cmocka_unit_test(test_ply_ascii_prefixes_never_crash),
		cmocka_unit_test(test_ply_binary_decodes_same_as_ascii),
		cmocka_unit_test(test_ply_decodes_long_face_runs_like_ascii),
		cmocka_unit_test(test_ply_applies_limits),
		cmocka_unit_test(test_ply_survives_every_allocation_failure),
		cmocka_unit_test(test_ply_write_round_trips),
		cmocka_unit_test(test_ply_write_large_mesh_round_trips),
		cmocka_unit_test(test_ply_write_reports_io_errors),
		cmocka_unit_test(test_ply_write_refuses_what_ply_cannot_hold),
		cmocka_unit_test(test_ply_write_over_a_directory_fails_and_cleans_up),
		cmocka_unit_test(test_ply_write_survives_allocation_failure),
		cmocka_unit_test(test_ply_fixtures_give_expected_results),
		cmocka_unit_test(test_ply_fixtures_hold_expected_values),
		cmocka_unit_test(test_ply_reads_conformance_files_as_declared),
	};
	int rc = cmocka_run_group_tests_name("ply", tests, NULL, NULL);
	if (tmpdir[0])
		rmdir(tmpdir);
	return rc;
}
