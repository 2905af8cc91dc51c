/*
 * test_triangulate.c - ear-clipping triangulation (formats/triangulate.c):
 * convex and concave polygons in arbitrary planes and both windings must
 * give n-2 triangles whose areas sum to the polygon's area, each with the
 * polygon's winding; degenerate and crossing polygons still give n-2
 * valid triangles; bad input gives clean errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "formats/triangulate.h"

#define MAXN 5000

struct poly {
	uint32_t n;
	float pos[3 * MAXN];  /* one vertex per corner, in polygon order */
	uint32_t idx[MAXN];   /* corner -> vertex index (identity unless set) */
	uint32_t tris[3 * MAXN];
};

static struct poly P;

/*
 * Place 2D outline (x, y) in 3D: rotate by the given angles and shift, so
 * the triangulator has to find the plane itself.  flip reverses the
 * winding (a clockwise outline seen from the normal).
 */
static void make_poly(const double *xy, uint32_t n, double rx, double ry,
		      double shift, int flip)
{
	P.n = n;
	double cx = cos(rx), sx = sin(rx), cy = cos(ry), sy = sin(ry);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t s = flip ? n - 1 - i : i;
		double x = xy[2 * s], y = xy[2 * s + 1], z = 0;
		/* rotate about x, then about y */
		double y1 = y * cx - z * sx, z1 = y * sx + z * cx;
		double x2 = x * cy + z1 * sy, z2 = -x * sy + z1 * cy;
		P.pos[3 * i] = (float)(x2 + shift);
		P.pos[3 * i + 1] = (float)(y1 + shift);
		P.pos[3 * i + 2] = (float)(z2 - shift);
		P.idx[i] = i;
	}
}

static void sub(const float *a, const float *b, double *r)
{
	for (int k = 0; k < 3; k++)
		r[k] = (double)a[k] - (double)b[k];
}

static void cross(const double *a, const double *b, double *r)
{
	r[0] = a[1] * b[2] - a[2] * b[1];
	r[1] = a[2] * b[0] - a[0] * b[2];
	r[2] = a[0] * b[1] - a[1] * b[0];
}

/* Newell normal of the current polygon (length = twice its area). */
static void newell(double *nrm)
{
	nrm[0] = nrm[1] = nrm[2] = 0;
	for (uint32_t i = 0; i < P.n; i++) {
		const float *a = P.pos + 3 * P.idx[i], *b = P.pos + 3 * P.idx[(i + 1) % P.n];
		nrm[0] += ((double)a[1] - b[1]) * ((double)a[2] + b[2]);
		nrm[1] += ((double)a[2] - b[2]) * ((double)a[0] + b[0]);
		nrm[2] += ((double)a[0] - b[0]) * ((double)a[1] + b[1]);
	}
}

/* Signed area of triangle t along the unit normal u. */
static double tri_area(const uint32_t *t, const double *u)
{
	double e1[3], e2[3], c[3];
	sub(P.pos + 3 * t[1], P.pos + 3 * t[0], e1);
	sub(P.pos + 3 * t[2], P.pos + 3 * t[0], e2);
	cross(e1, e2, c);
	return 0.5 * (c[0] * u[0] + c[1] * u[1] + c[2] * u[2]);
}

/*
 * Triangulate P and check: n-2 triangles of valid indices; every corner
 * used; areas sum to the polygon's area (relative tol) and each triangle
 * has the polygon's winding (area >= -tol, > 0 when strict).
 */
static void check_covers(int strict)
{
	struct triangulator t;
	struct err e;
	triangulator_init(&t);
	err_init(&e);
	assert_int_equal(triangulate_polygon(&t, P.pos, P.n, P.idx, P.n, P.tris, &e), 0);
	triangulator_release(&t);

	double nrm[3];
	newell(nrm);
	double len = sqrt(nrm[0] * nrm[0] + nrm[1] * nrm[1] + nrm[2] * nrm[2]);
	assert_true(len > 0);
	double u[3] = { nrm[0] / len, nrm[1] / len, nrm[2] / len };
	double area = len / 2, sum = 0, tol = 1e-5 * area;
	uint8_t used[MAXN] = { 0 };
	for (uint32_t i = 0; i < P.n - 2; i++) {
		const uint32_t *tr = P.tris + 3 * i;
		for (int k = 0; k < 3; k++) {
			assert_true(tr[k] < P.n);
			used[tr[k]] = 1;
		}
		assert_true(tr[0] != tr[1] && tr[1] != tr[2] && tr[0] != tr[2]);
		double a = tri_area(tr, u);
		if (strict)
			assert_true(a > 0);
		else
			assert_true(a >= -tol);
		sum += a;
	}
	for (uint32_t i = 0; i < P.n; i++)
		assert_true(used[i]);
	if (fabs(sum - area) > tol)
		fail_msg("triangle areas sum to %.9g, polygon area %.9g", sum, area);
}

/* Check in several planes, both windings, near and far from the origin. */
static void check_outline(const double *xy, uint32_t n, int strict)
{
	static const double rot[][2] = { { 0, 0 }, { 1.5707963, 0 }, { 0, 1.5707963 },
					 { 0.7, 0.3 }, { 2.5, -1.1 } };
	for (size_t r = 0; r < sizeof(rot) / sizeof(rot[0]); r++)
		for (int flip = 0; flip < 2; flip++)
			for (int far = 0; far < 2; far++) {
				make_poly(xy, n, rot[r][0], rot[r][1], far ? 1000.0 : 0.0, flip);
				check_covers(strict);
			}
}

static void test_triangle_is_copied(void **state)
{
	(void)state;
	static const double tri[] = { 0, 0, 1, 0, 0, 1 };
	make_poly(tri, 3, 0, 0, 0, 0);
	uint32_t poly[3] = { 2, 0, 1 }, out[3];
	struct triangulator t;
	triangulator_init(&t);
	assert_int_equal(triangulate_polygon(&t, P.pos, 3, poly, 3, out, NULL), 0);
	assert_int_equal(out[0], 2);
	assert_int_equal(out[1], 0);
	assert_int_equal(out[2], 1);
	triangulator_release(&t);
}

static void test_convex_quad_splits_along_shorter_diagonal(void **state)
{
	(void)state;
	/* rhombus: diagonal 0-2 is 4 long, 1-3 is 2 long */
	static const double q[] = { -2, 0, 0, -1, 2, 0, 0, 1 };
	make_poly(q, 4, 0, 0, 0, 0);
	check_covers(1);
	static const uint32_t want[] = { 1, 2, 3, 1, 3, 0 };
	assert_memory_equal(P.tris, want, sizeof(want));
	/* the same rhombus starting one corner later: now 0-2 is shorter */
	static const double q2[] = { 0, -1, 2, 0, 0, 1, -2, 0 };
	make_poly(q2, 4, 0, 0, 0, 0);
	check_covers(1);
	static const uint32_t want2[] = { 0, 1, 2, 0, 2, 3 };
	assert_memory_equal(P.tris, want2, sizeof(want2));
}

static void test_concave_quad_splits_through_reflex_vertex(void **state)
{
	(void)state;
	/* a dart: vertex 3 is reflex and the outside diagonal 0-2 is the
	 * shorter one, so picking by length alone would be wrong */
	static const double q[] = { 0, 0, 10, 0.5, 0, 1, 1, 0.5 };
	check_outline(q, 4, 1);
	make_poly(q, 4, 0.7, 0.3, 0, 0);
	check_covers(1);
	static const uint32_t want[] = { 1, 2, 3, 1, 3, 0 };
	assert_memory_equal(P.tris, want, sizeof(want));
}

static void test_convex_polygon_gives_fan_with_positive_areas(void **state)
{
	(void)state;
	double xy[2 * 12];
	for (int i = 0; i < 12; i++) {
		xy[2 * i] = cos(2 * M_PI * i / 12);
		xy[2 * i + 1] = sin(2 * M_PI * i / 12);
	}
	check_outline(xy, 12, 1);
}

static void test_l_shape_is_covered_exactly(void **state)
{
	(void)state;
	static const double l[] = { 0, 0, 3, 0, 3, 1, 1, 1, 1, 3, 0, 3 };
	check_outline(l, 6, 1);
}

static void test_star_is_covered_exactly(void **state)
{
	(void)state;
	double xy[2 * 10];
	for (int i = 0; i < 10; i++) {
		double r = i % 2 ? 0.4 : 1.0, a = 2 * M_PI * i / 10;
		xy[2 * i] = r * cos(a);
		xy[2 * i + 1] = r * sin(a);
	}
	check_outline(xy, 10, 1);
}

/* A comb: a spine along the bottom and `teeth` thin teeth going up. */
static uint32_t comb(double *xy, uint32_t teeth)
{
	uint32_t n = 0;
	xy[n * 2] = 0;
	xy[n++ * 2 + 1] = 0;
	xy[n * 2] = 2.0 * teeth;
	xy[n++ * 2 + 1] = 0;
	for (uint32_t i = teeth; i-- > 0;) {
		double x0 = 2.0 * i;
		xy[n * 2] = x0 + 2;
		xy[n++ * 2 + 1] = 10;
		xy[n * 2] = x0 + 1;
		xy[n++ * 2 + 1] = 10;
		xy[n * 2] = x0 + 1;
		xy[n++ * 2 + 1] = 1;
		xy[n * 2] = x0;
		xy[n++ * 2 + 1] = 1;
	}
	return n;
}

static void test_comb_is_covered_exactly(void **state)
{
	(void)state;
	static double xy[2 * MAXN];
	uint32_t n = comb(xy, 25);
	check_outline(xy, n, 1);
}

static void test_large_comb_finishes_and_is_covered(void **state)
{
	(void)state;
	static double xy[2 * MAXN];
	uint32_t n = comb(xy, 1000); /* 4002 corners, under the fan limit */
	assert_true(n <= TRIANGULATE_MAX_EAR);
	make_poly(xy, n, 0.7, 0.3, 0, 0);
	check_covers(1);
}

static void test_random_star_shaped_polygons_are_covered(void **state)
{
	(void)state;
	static double xy[2 * 200];
	srand(12345);
	for (int iter = 0; iter < 200; iter++) {
		uint32_t n = 5 + (uint32_t)(rand() % 150);
		for (uint32_t i = 0; i < n; i++) {
			double r = 0.2 + (double)rand() / RAND_MAX, a = 2 * M_PI * i / n;
			xy[2 * i] = r * cos(a);
			xy[2 * i + 1] = r * sin(a);
		}
		make_poly(xy, n, 0.1 * iter, 0.05 * iter, iter % 2 ? 500.0 : 0.0, iter % 3 == 0);
		check_covers(1);
	}
}

static void test_collinear_points_keep_the_area(void **state)
{
	(void)state;
	/* a square with extra points along its edges */
	static const double sq[] = { 0, 0, 1, 0, 2, 0, 3, 0, 3, 1.5, 3, 3, 1.5, 3, 0, 3, 0, 2, 0, 1 };
	check_outline(sq, 10, 0);
	/* a triangle with every edge subdivided */
	static const double tri[] = { 0, 0, 1, 0, 2, 0, 1.5, 1, 1, 2, 0.5, 1 };
	check_outline(tri, 6, 0);
}

static void test_duplicate_points_keep_the_area(void **state)
{
	(void)state;
	/* repeated corners (common in scanned meshes) */
	static const double d[] = { 0, 0, 0, 0, 2, 0, 2, 0, 2, 2, 1, 3, 0, 2, 0, 2 };
	check_outline(d, 8, 0);
	/* the same vertex index twice in a row */
	static const double sq[] = { 0, 0, 1, 0, 1, 1, 0, 1, 0.5, 2 };
	make_poly(sq, 5, 0, 0, 0, 0);
	P.idx[2] = 1;
	P.idx[1] = 1;
	struct triangulator t;
	triangulator_init(&t);
	assert_int_equal(triangulate_polygon(&t, P.pos, 5, P.idx, 5, P.tris, NULL), 0);
	for (int i = 0; i < 9; i++)
		assert_true(P.tris[i] < 5);
	triangulator_release(&t);
}

/* Degenerate or crossing polygons: n-2 triangles, valid corners, no hang. */
static void check_degenerate(const float *pos, uint32_t n)
{
	struct triangulator t;
	uint32_t poly[64], out[3 * 64];
	uint8_t seen[64] = { 0 };
	triangulator_init(&t);
	for (uint32_t i = 0; i < n; i++)
		poly[i] = i;
	assert_int_equal(triangulate_polygon_corners(&t, pos, n, poly, n, out, NULL), 0);
	for (uint32_t i = 0; i < 3 * (n - 2); i++) {
		assert_true(out[i] < n);
		seen[out[i]] = 1;
	}
	for (uint32_t i = 0; i < 3 * (n - 2); i += 3)
		assert_true(out[i] != out[i + 1] && out[i + 1] != out[i + 2] &&
			    out[i] != out[i + 2]);
	for (uint32_t i = 0; i < n; i++)
		assert_true(seen[i]);
	triangulator_release(&t);
}

static void test_degenerate_polygons_still_give_n_minus_2_triangles(void **state)
{
	(void)state;
	/* all points on a line */
	float line[3 * 6];
	for (int i = 0; i < 6; i++) {
		line[3 * i] = (float)i;
		line[3 * i + 1] = 2.0f * (float)i;
		line[3 * i + 2] = 0;
	}
	check_degenerate(line, 6);
	/* all points the same */
	float same[3 * 7];
	for (int i = 0; i < 21; i++)
		same[i] = 1.5f;
	check_degenerate(same, 7);
	/* bowtie and a self-crossing pentagram */
	static const float bow[] = { 0, 0, 0, 2, 2, 0, 2, 0, 0, 0, 2, 0, 1, 3, 0 };
	check_degenerate(bow, 5);
	float pent[3 * 5];
	for (int i = 0; i < 5; i++) {
		double a = 2 * M_PI * (2 * i % 5) / 5;
		pent[3 * i] = (float)cos(a);
		pent[3 * i + 1] = (float)sin(a);
		pent[3 * i + 2] = 0;
	}
	check_degenerate(pent, 5);
	/* a figure eight (zero net area: no plane) */
	static const float eight[] = { 0, 0, 0, 1, 1, 0, 2, 0, 0, 3, 1, 0, 3, 0, 0, 2, 1, 0, 1, 0, 0, 0, 1, 0 };
	check_degenerate(eight, 8);
	/* non-finite coordinates */
	float nanp[3 * 6];
	for (int i = 0; i < 6; i++) {
		nanp[3 * i] = (float)cos(i);
		nanp[3 * i + 1] = i == 2 ? NAN : (float)sin(i);
		nanp[3 * i + 2] = i == 4 ? INFINITY : 0;
	}
	check_degenerate(nanp, 6);
	/* a polygon that folds back over itself */
	static const float fold[] = { 0, 0, 0, 4, 0, 0, 4, 4, 0, 1, 1, 0, 3, 1, 0, 0, 4, 0, 2, 2, 0 };
	check_degenerate(fold, 7);
}

static void test_bad_input_is_a_clean_error(void **state)
{
	(void)state;
	struct triangulator t;
	struct err e;
	float pos[9] = { 0, 0, 0, 1, 0, 0, 0, 1, 0 };
	uint32_t poly[4] = { 0, 1, 3, 2 }, out[6];
	triangulator_init(&t);
	err_init(&e);
	assert_int_equal(triangulate_polygon(&t, pos, 3, poly, 4, out, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "polygon corner 2: vertex index 3 out of range (have 3)");
	assert_int_equal(triangulate_polygon(&t, pos, 3, poly, 2, out, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "polygon with 2 vertices (need at least 3)");
	assert_int_equal(triangulate_polygon(&t, pos, 3, poly, 0, out, &e), ERR_FORMAT);
	triangulator_release(&t);
}

static void test_huge_polygon_is_fanned_and_counted(void **state)
{
	(void)state;
	static double xy[2 * MAXN];
	uint32_t n = TRIANGULATE_MAX_EAR + 10;
	for (uint32_t i = 0; i < n; i++) {
		xy[2 * i] = cos(2 * M_PI * i / n);
		xy[2 * i + 1] = sin(2 * M_PI * i / n);
	}
	make_poly(xy, n, 0, 0, 0, 0);
	struct triangulator t;
	triangulator_init(&t);
	assert_int_equal(triangulate_polygon(&t, P.pos, n, P.idx, n, P.tris, NULL), 0);
	assert_int_equal(t.n_fanned, 1);
	for (uint32_t i = 0; i < n - 2; i++) {
		assert_int_equal(P.tris[3 * i], 0);
		assert_int_equal(P.tris[3 * i + 1], i + 1);
		assert_int_equal(P.tris[3 * i + 2], i + 2);
	}
	triangulator_release(&t);
}

static void test_scratch_is_reused_across_polygons(void **state)
{
	(void)state;
	static double xy[2 * MAXN];
	uint32_t n = comb(xy, 20);
	make_poly(xy, n, 0.3, 0.2, 0, 0);
	struct triangulator t;
	triangulator_init(&t);
	assert_int_equal(triangulate_polygon(&t, P.pos, n, P.idx, n, P.tris, NULL), 0);
	alloc_fail_after(-1);
	uint64_t before = alloc_count();
	for (int i = 0; i < 100; i++)
		assert_int_equal(triangulate_polygon(&t, P.pos, n, P.idx, n - 1 - (uint32_t)(i % 10),
						     P.tris, NULL), 0);
	assert_true(alloc_count() == before);
	triangulator_release(&t);
}

static void test_out_of_memory_is_reported(void **state)
{
	(void)state;
	static const double l[] = { 0, 0, 3, 0, 3, 1, 1, 1, 1, 3, 0, 3 };
	make_poly(l, 6, 0, 0, 0, 0);
	struct triangulator t;
	struct err e;
	triangulator_init(&t);
	err_init(&e);
	alloc_fail_after(0);
	int rc = triangulate_polygon(&t, P.pos, 6, P.idx, 6, P.tris, &e);
	alloc_fail_after(-1);
	assert_int_equal(rc, ERR_NOMEM);
	assert_non_null(strstr(e.msg, "out of memory"));
	/* and it works once memory is back */
	assert_int_equal(triangulate_polygon(&t, P.pos, 6, P.idx, 6, P.tris, &e), 0);
	triangulator_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_triangle_is_copied),
		cmocka_unit_test(test_convex_quad_splits_along_shorter_diagonal),
		cmocka_unit_test(test_concave_quad_splits_through_reflex_vertex),
		cmocka_unit_test(test_convex_polygon_gives_fan_with_positive_areas),
		cmocka_unit_test(test_l_shape_is_covered_exactly),
		cmocka_unit_test(test_star_is_covered_exactly),
		cmocka_unit_test(test_comb_is_covered_exactly),
		cmocka_unit_test(test_large_comb_finishes_and_is_covered),
		cmocka_unit_test(test_random_star_shaped_polygons_are_covered),
		cmocka_unit_test(test_collinear_points_keep_the_area),
		cmocka_unit_test(test_duplicate_points_keep_the_area),
		cmocka_unit_test(test_degenerate_polygons_still_give_n_minus_2_triangles),
		cmocka_unit_test(test_bad_input_is_a_clean_error),
		cmocka_unit_test(test_huge_polygon_is_fanned_and_counted),
		cmocka_unit_test(test_scratch_is_reused_across_polygons),
		cmocka_unit_test(test_out_of_memory_is_reported),
	};
	return cmocka_run_group_tests_name("triangulate", tests, NULL, NULL);
}
