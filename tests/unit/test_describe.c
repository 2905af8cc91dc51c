/*
 * test_describe.c - the descriptors: layout, invariance, determinism
 * across thread counts, absent colour, relief statistics on analytic
 * surfaces, degenerate inputs and allocation failures.
 *
 * Surfaces come from the seeded generator (tests/lib/gen.h) and from
 * analytic height fields built here.
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
#include "formats/image.h"
#include "formats/scan.h"
#include "indexer/desc_int.h"
#include "indexer/describe.h"
#include "query/rank.h"
#include "tests/lib/gen.h"

static float *vec(void)
{
	float *v = alloc_array(describe_dim(), sizeof(float));
	assert_non_null(v);
	return v;
}

static void assert_finite(const float *v)
{
	for (size_t i = 0; i < describe_dim(); i++)
		assert_true(isfinite(v[i]));
}

/* |got - want| <= tol, saying which when not */
#define assert_near(got, want, tol) \
	do { \
		double g_ = (got), w_ = (want), t_ = (tol); \
		if (!(fabs(g_ - w_) <= t_)) \
			fail_msg("%s = %g, want %g +- %g", #got, g_, w_, t_); \
	} while (0)

/* Squared L2 over the compared floats (the carried ones are not). */
static double l2(const float *a, const float *b)
{
	double s = 0;
	for (size_t i = 0; i < describe_dim() - DESC_CARRIED; i++) {
		double d = (double)a[i] - b[i];
		s += d * d;
	}
	return s;
}

/* Weighted distance over the blocks that need no units or colour. */
static double rel_dist(const float *a, const float *b)
{
	float w[DESC_N_BLOCKS] = { 0 };
	describe_default_weights(w);
	w[DESC_RELIEF_MM] = 0;
	w[DESC_COLOUR] = 0;
	w[DESC_SIZE] = 0;
	return describe_distance(a, b, w);
}

static double block_norm2(const float *v, enum desc_block_id id)
{
	const struct desc_block *b = &describe_blocks()[id];
	double s = 0;
	for (size_t i = b->offset; i < b->offset + b->length; i++)
		s += (double)v[i] * v[i];
	return s;
}

static void gen(enum gen_form f, enum gen_material m, size_t tris, uint64_t seed,
		enum gen_color colour, struct scan *s, struct image *tex)
{
	struct gen_params p;
	struct err e;
	err_init(&e);
	gen_params_init(&p);
	p.form = f;
	p.material = m;
	p.triangles = tris;
	p.seed = seed;
	p.color = colour;
	assert_int_equal(gen_scan(&p, s, tex, &e), 0);
}

static void describe_ok(const struct scan *s, const struct describe_opts *o, float *v,
			struct desc_info *info)
{
	struct err e;
	err_init(&e);
	int rc = describe_scan(s, o, v, info, &e);
	if (rc)
		fail_msg("describe_scan: %s", e.msg);
	assert_finite(v);
}

/* A height field z = f(x, y) over [0, w] x [0, w] mm, n x n vertices. */
static void height_field(struct scan *s, size_t n, double w,
			 double (*f)(double x, double y, const double *prm),
			 const double *prm)
{
	struct err e;
	err_init(&e);
	scan_init(s);
	size_t nf = 2 * (n - 1) * (n - 1);
	assert_int_equal(scan_alloc(s, n * n, nf, 0, &e), 0);
	s->n_vertices = n * n;
	s->n_faces = nf;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			double x = w * (double)i / (double)(n - 1), y = w * (double)j / (double)(n - 1);
			float *p = s->positions + 3 * (i * n + j);
			p[0] = (float)x;
			p[1] = (float)y;
			p[2] = (float)f(x, y, prm);
		}
	size_t k = 0;
	for (size_t i = 0; i + 1 < n; i++)
		for (size_t j = 0; j + 1 < n; j++) {
			uint32_t a = (uint32_t)(i * n + j), b = (uint32_t)((i + 1) * n + j);
			uint32_t c = b + 1, d = a + 1;
			uint32_t *ix = s->indices + 3 * k;
			ix[0] = a;
			ix[1] = b;
			ix[2] = c;
			ix[3] = a;
			ix[4] = c;
			ix[5] = d;
			k += 2;
		}
	s->n_polygons = nf;
	s->units = UNITS_MM;
	assert_int_equal(scan_finalize(s, &e), 0);
}

static double hf_flat(double x, double y, const double *prm)
{
	(void)x;
	(void)y;
	(void)prm;
	return 0;
}

static double hf_sine(double x, double y, const double *prm)
{
	(void)y;
	return prm[0] * sin(2 * M_PI * x / prm[1]);
}

static double hf_eggcrate(double x, double y, const double *prm)
{
	return prm[0] * sin(2 * M_PI * x / prm[1]) * sin(2 * M_PI * y / prm[1]);
}

/* s reflected in the plane x = 0, faces rewound so that they still face out. */
static void mirror_x(struct scan *s)
{
	struct err e;
	err_init(&e);
	for (size_t i = 0; i < s->n_vertices; i++) {
		s->positions[3 * i] = -s->positions[3 * i];
		if (s->normals)
			s->normals[3 * i] = -s->normals[3 * i];
	}
	for (size_t f = 0; f < s->n_faces; f++) {
		uint32_t t = s->indices[3 * f + 1];
		s->indices[3 * f + 1] = s->indices[3 * f + 2];
		s->indices[3 * f + 2] = t;
	}
	assert_null(s->corner_uvs);
	assert_int_equal(scan_finalize(s, &e), 0);
}

static void test_describe_layout_is_contiguous(void **state)
{
	(void)state;
	const struct desc_block *b = describe_blocks();
	size_t off = 0;
	assert_string_equal(DESC_SCHEMA, "refscan-desc-7");
	for (int i = 0; i < DESC_N_BLOCKS; i++) {
		assert_int_equal(b[i].offset, off);
		assert_true(b[i].length > 0);
		assert_true(b[i].weight >= 0);
		assert_int_equal(describe_block_find(b[i].name), i);
		off += b[i].length;
	}
	assert_int_equal(off, describe_noise_offset());
	assert_int_equal(off + DESC_CARRIED, describe_dim());
	assert_int_equal(describe_block_find("nonsense"), -1);
	/* cues lie inside their blocks; only the fine local radius is fine */
	size_t n;
	const struct desc_cue *c = describe_cues(&n);
	for (size_t i = 0; i < n; i++) {
		assert_true(c[i].offset >= b[c[i].block].offset);
		assert_true(c[i].offset + c[i].length <= b[c[i].block].offset + b[c[i].block].length);
		assert_int_equal(c[i].fine, !strcmp(c[i].name, "local-fine"));
	}
}

/*
 * The noise level (describe.h, DESC_CARRIED): roughness below the
 * resolution over the fine local radius (at least 2.5 spacings), times
 * sqrt(DESC_N_L / vertices in it), at most that of 2.5 spacings.  A
 * smooth generated blob shows only its facets' sag; the same blob with
 * noise of 0.3 spacings along its normals shows about half of that in
 * spacings (the quadric takes some), whatever its size and pose; the
 * level is carried in the vector, where no block reads it.
 */
static void test_describe_measures_noise_below_resolution(void **state)
{
	(void)state;
	struct scan s, noisy;
	struct err e;
	struct desc_info info;
	float *v = vec(), *vn = vec();
	err_init(&e);
	gen(GEN_FORM_BLOB, GEN_MAT_NONE, 20000, 3, GEN_COLOR_NONE, &s, NULL);
	describe_ok(&s, NULL, v, &info);
	double clean = info.noise, clean_sp = info.noise_spacings;
	assert_true(v[describe_noise_offset()] == (float)clean);
	const double most = sqrt(DESC_N_L / (M_PI * 2.5 * 2.5)) / 2.5;
	assert_true(clean <= clean_sp * most + 1e-12);

	double spacing = sqrt(gen_surface_area(&s) / (double)s.n_vertices);
	assert_int_equal(gen_crop(&s, 1.0, 1, &noisy, &e), 0);
	assert_int_equal(gen_noise(&noisy, 5, 0.3 * spacing, &e), 0);
	describe_ok(&noisy, NULL, vn, &info);
	double rough = info.noise, rough_sp = info.noise_spacings;
	assert_true(vn[describe_noise_offset()] == (float)rough);
	assert_true(rough <= rough_sp * most + 1e-12);

	/* moved, turned and 2.3 times larger, units lost: the same level */
	assert_int_equal(gen_rigid(&noisy, 9, 2.3, 50.0, NULL, NULL, &e), 0);
	noisy.units = UNITS_UNKNOWN;
	describe_ok(&noisy, NULL, vn, &info);
	double moved = info.noise;
	print_message("noise level: clean %.4f (%.4f spacings), 0.3 spacings %.4f (%.4f), "
		      "moved and scaled %.4f\n", clean, clean_sp, rough, rough_sp, moved);
	assert_true(clean_sp >= 0 && clean_sp < 0.05);
	assert_true(rough_sp > 0.1 && rough_sp < 0.3);
	/* so the ranking tells the noisy copy from its clean scan */
	assert_true(rough > RANK_NOISE_RATIO * fmax(clean, RANK_NOISE_FLOOR));
	assert_true(fabs(moved - rough) < 0.1 * rough);
	scan_release(&noisy);
	scan_release(&s);
	xfree(v);
	xfree(vn);
}

/*
 * The noise level a vector's fine cues tolerate (describe.h): the median
 * curvedness of its fine fits.  The level is the curvedness noise gives
 * those fits, so a noisy flat tile (its fine radius 2.5 spacings, fewer
 * vertices than the fit has points) tolerates about its own level; a
 * clean tile tolerates no more than the histogram's first bin, 2^-7; a
 * blob with skin relief curves enough at the fine radius to tolerate
 * several times what the clean tile does.
 */
static void test_describe_fine_tolerance_follows_curvedness(void **state)
{
	(void)state;
	struct scan flat, noisy, blob;
	struct err e;
	struct desc_info info;
	float *v = vec();
	err_init(&e);
	gen(GEN_FORM_TILE, GEN_MAT_NONE, 20000, 2, GEN_COLOR_NONE, &flat, NULL);
	describe_ok(&flat, NULL, v, &info);
	double clean_tol = describe_fine_tolerance(v);
	assert_true(clean_tol > 0 && clean_tol <= exp2(-7) + 1e-12);

	double spacing = sqrt(gen_surface_area(&flat) / (double)flat.n_vertices);
	double level[2], tol[2];
	for (int k = 0; k < 2; k++) {
		assert_int_equal(gen_crop(&flat, 1.0, 1, &noisy, &e), 0);
		assert_int_equal(gen_noise(&noisy, 7 + k, (k ? 0.6 : 0.3) * spacing, &e), 0);
		describe_ok(&noisy, NULL, v, &info);
		level[k] = info.noise;
		tol[k] = describe_fine_tolerance(v);
		scan_release(&noisy);
	}
	gen(GEN_FORM_BLOB, GEN_MAT_SKIN, 60000, 2, GEN_COLOR_NONE, &blob, NULL);
	describe_ok(&blob, NULL, v, &info);
	double blob_tol = describe_fine_tolerance(v);
	print_message("fine tolerance: clean tile %.4f; noisy tile level %.4f tolerates %.4f, "
		      "level %.4f tolerates %.4f; skin blob %.4f\n", clean_tol, level[0], tol[0],
		      level[1], tol[1], blob_tol);
	for (int k = 0; k < 2; k++) {
		assert_true(level[k] > RANK_NOISE_RATIO * RANK_NOISE_FLOOR);
		assert_true(tol[k] > 0.6 * level[k] && tol[k] < 1.5 * level[k]);
	}
	assert_true(tol[1] > 1.5 * tol[0]);
	assert_true(blob_tol > 4 * clean_tol);
	/* no fine histogram (all zero): nothing tolerated */
	memset(v, 0, describe_dim() * sizeof(float));
	assert_true(describe_fine_tolerance(v) == 0);
	scan_release(&blob);
	scan_release(&flat);
	xfree(v);
}

/* Share of the pair histogram's mass (squared Hellinger entries) whose
 * pairs have a normal at 15 degrees or more to the line joining them. */
static double pair_mass_across(const float *v)
{
	const struct desc_block *b = describe_blocks();
	const float *p = v + b[DESC_LOCAL].offset + DESC_LOCAL_SCALES * DESC_SI_BINS * DESC_CV_BINS;
	double all = 0, across = 0;
	for (int k = 0; k < DESC_PAIR_BINS; k++) {
		int hi = (k / DESC_PAIR_NB) % DESC_PAIR_NB;
		all += (double)p[k] * p[k];
		across += hi >= 1 ? (double)p[k] * p[k] : 0;
	}
	return all > 0 ? across / all : -1;
}

/*
 * The pair features see how faces stand to each other, which curvature
 * histograms cannot: a flat sheet and two parallel sheets 1 mm apart have
 * the same (flat) local geometry, but only the second has pairs whose
 * normals point along the line joining them.
 */
static void test_describe_pairs_see_facing_surfaces(void **state)
{
	(void)state;
	struct scan one, two;
	struct err e;
	struct desc_info info;
	float *v = vec();
	err_init(&e);
	height_field(&one, 61, 20.0, hf_flat, NULL);
	scan_init(&two);
	assert_int_equal(scan_alloc(&two, 2 * one.n_vertices, 2 * one.n_faces, 0, &e), 0);
	two.n_vertices = 2 * one.n_vertices;
	two.n_faces = two.n_polygons = 2 * one.n_faces;
	two.units = UNITS_MM;
	for (size_t i = 0; i < one.n_vertices; i++) {
		memcpy(two.positions + 3 * i, one.positions + 3 * i, 3 * sizeof(float));
		memcpy(two.positions + 3 * (one.n_vertices + i), one.positions + 3 * i,
		       3 * sizeof(float));
		two.positions[3 * (one.n_vertices + i) + 2] += 1.0f;
	}
	for (size_t c = 0; c < 3 * one.n_faces; c++) {
		two.indices[c] = one.indices[c];
		two.indices[3 * one.n_faces + c] = one.indices[c] + (uint32_t)one.n_vertices;
	}
	assert_int_equal(scan_finalize(&two, &e), 0);
	describe_ok(&one, NULL, v, &info);
	double m1 = pair_mass_across(v);
	describe_ok(&two, NULL, v, &info);
	double m2 = pair_mass_across(v);
	assert_true(m1 >= 0 && m1 < 0.01);
	assert_true(m2 > 0.1);
	scan_release(&one);
	scan_release(&two);
	xfree(v);
}

static void test_describe_is_invariant_to_rigid_motion_reflection_and_scale(void **state)
{
	(void)state;
	struct scan s, moved, other;
	struct err e;
	float *v = vec(), *vm = vec(), *vo = vec();
	struct desc_info info;
	err_init(&e);
	gen(GEN_FORM_BLOB, GEN_MAT_STONE, 20000, 7, GEN_COLOR_NONE, &s, NULL);
	describe_ok(&s, NULL, v, &info);
	assert_true(info.flags & DESC_HAS_UNITS);
	assert_false(info.flags & DESC_HAS_COLOUR);

	/* rotated and moved, same millimetres: the whole vector agrees */
	assert_int_equal(gen_crop(&s, 1.0, 1, &moved, &e), 0);
	assert_int_equal(gen_rigid(&moved, 11, 1.0, 500.0, NULL, NULL, &e), 0);
	describe_ok(&moved, NULL, vm, &info);
	double d_rigid = l2(v, vm);
	scan_release(&moved);

	/* scaled 2.3x, units unknown: the relative blocks agree */
	assert_int_equal(gen_crop(&s, 1.0, 1, &moved, &e), 0);
	assert_int_equal(gen_rigid(&moved, 12, 2.3, 50.0, NULL, NULL, &e), 0);
	moved.units = UNITS_UNKNOWN;
	describe_ok(&moved, NULL, vm, &info);
	assert_false(info.flags & DESC_HAS_UNITS);
	assert_true(block_norm2(vm, DESC_RELIEF_MM) == 0);
	double d_scaled = rel_dist(v, vm);
	scan_release(&moved);

	/* its mirror image: every part is invariant to reflection too */
	assert_int_equal(gen_crop(&s, 1.0, 1, &moved, &e), 0);
	mirror_x(&moved);
	assert_int_equal(gen_rigid(&moved, 13, 1.0, 500.0, NULL, NULL, &e), 0);
	describe_ok(&moved, NULL, vm, &info);
	double d_mirror = l2(v, vm);
	scan_release(&moved);

	/* against other shapes and other surfaces */
	const enum gen_form forms[] = { GEN_FORM_TORUS, GEN_FORM_BOX, GEN_FORM_LIMB, GEN_FORM_TRUNK };
	const enum gen_material mats[] = { GEN_MAT_STONE, GEN_MAT_STONE, GEN_MAT_STONE, GEN_MAT_STONE };
	double nearest = INFINITY, nearest_all = INFINITY;
	for (size_t i = 0; i < 4; i++) {
		gen(forms[i], mats[i], 20000, 7, GEN_COLOR_NONE, &other, NULL);
		describe_ok(&other, NULL, vo, &info);
		print_message("other %zu: %.5f %.5f\n", i, rel_dist(v, vo), l2(v, vo));
		nearest = fmin(nearest, rel_dist(v, vo));
		nearest_all = fmin(nearest_all, l2(v, vo));
		scan_release(&other);
	}
	print_message("rigid %.5f mirrored %.5f scaled %.5f nearest other %.5f (all blocks %.5f)\n",
		      d_rigid, d_mirror, d_scaled, nearest, nearest_all);
	assert_true(d_rigid < 0.01 * nearest_all);
	assert_true(d_mirror < 0.01 * nearest_all);
	assert_true(d_scaled < 0.01 * nearest);
	scan_release(&s);
	xfree(v);
	xfree(vm);
	xfree(vo);
}

static void test_describe_is_byte_identical_across_threads(void **state)
{
	(void)state;
	struct scan s, cloud;
	struct err e;
	struct describe_opts o;
	struct desc_info info;
	float *a = vec(), *b = vec();
	err_init(&e);
	describe_opts_init(&o);
	gen(GEN_FORM_TORUS, GEN_MAT_KNIT, 30000, 3, GEN_COLOR_VERTEX, &s, NULL);
	o.threads = 1;
	describe_ok(&s, &o, a, &info);
	assert_true(info.flags & DESC_HAS_COLOUR);
	o.threads = 3;
	describe_ok(&s, &o, b, &info);
	assert_memory_equal(a, b, describe_dim() * sizeof(float));

	/* a cloud without normals takes the orientation path too */
	assert_int_equal(gen_sample_points(&s, 40000, 5, &cloud, &e), 0);
	xfree(cloud.normals);
	cloud.normals = NULL;
	o.threads = 1;
	describe_ok(&cloud, &o, a, &info);
	assert_true(info.flags & DESC_POINT_CLOUD);
	assert_true(info.flags & DESC_NORMALS_GUESSED);
	o.threads = 2;
	describe_ok(&cloud, &o, b, &info);
	assert_memory_equal(a, b, describe_dim() * sizeof(float));
	/* and the seed is the only source of randomness */
	o.seed = 2;
	describe_ok(&cloud, &o, b, &info);
	assert_memory_not_equal(a, b, describe_dim() * sizeof(float));
	scan_release(&cloud);
	scan_release(&s);
	xfree(a);
	xfree(b);
}

static void test_describe_marks_absent_colour(void **state)
{
	(void)state;
	struct scan s;
	struct image tex;
	struct describe_opts o;
	struct desc_info info;
	float *v = vec();
	const float w = describe_blocks()[DESC_COLOUR].weight;

	gen(GEN_FORM_TILE, GEN_MAT_WOOD, 8000, 1, GEN_COLOR_NONE, &s, NULL);
	describe_ok(&s, NULL, v, &info);
	assert_false(info.flags & DESC_HAS_COLOUR);
	assert_true(block_norm2(v, DESC_COLOUR) == 0);
	scan_release(&s);

	gen(GEN_FORM_TILE, GEN_MAT_WOOD, 8000, 1, GEN_COLOR_VERTEX, &s, NULL);
	describe_ok(&s, NULL, v, &info);
	assert_true(info.flags & DESC_HAS_COLOUR);
	assert_true(info.colour_fraction > 0.99);
	assert_near(block_norm2(v, DESC_COLOUR), w, 1e-3);
	/* one flat colour says nothing about the surface: marked, not used */
	for (size_t i = 0; i < s.n_vertices; i++)
		memcpy(s.colors + 4 * i, (const uint8_t[4]){ 200, 180, 150, 255 }, 4);
	describe_ok(&s, NULL, v, &info);
	assert_false(info.flags & DESC_HAS_COLOUR);
	assert_true(info.flags & DESC_COLOUR_UNIFORM);
	assert_true(block_norm2(v, DESC_COLOUR) == 0);
	scan_release(&s);

	/* a texture counts only when its pixels are given */
	image_init(&tex);
	gen(GEN_FORM_TILE, GEN_MAT_WOOD, 8000, 1, GEN_COLOR_TEXTURE, &s, &tex);
	assert_non_null(tex.rgba);
	describe_ok(&s, NULL, v, &info);
	assert_false(info.flags & DESC_HAS_COLOUR);
	assert_true(info.flags & DESC_TEXTURE_MISSING);
	assert_true(block_norm2(v, DESC_COLOUR) == 0);
	describe_opts_init(&o);
	o.textures = &tex;
	o.n_textures = 1;
	describe_ok(&s, &o, v, &info);
	assert_true(info.flags & DESC_HAS_COLOUR);
	assert_near(block_norm2(v, DESC_COLOUR), w, 1e-3);
	image_release(&tex);
	scan_release(&s);
	xfree(v);
}

static void test_relief_of_sine_has_amplitude_over_sqrt2(void **state)
{
	(void)state;
	struct scan s;
	struct desc_band b;
	struct err e;
	const double prm[2] = { 0.1, 4.0 }; /* amplitude, wavelength (mm) */
	err_init(&e);
	height_field(&s, 401, 60.0, hf_sine, prm);
	/* the band 0.3-16 mm holds the 4 mm sine (S is raised to 3 spacings) */
	assert_int_equal(describe_relief(&s, NULL, 0.3, 16.0, &b, &e), 0);
	print_message("sine: Sa %.4f Sq %.4f Ssk %.3f Sku %.3f Sdr %.5f a2 %.3f a4 %.3f\n",
		      b.sa, b.sq, b.ssk, b.sku, b.sdr, b.aniso2, b.aniso4);
	assert_true(b.resolved);
	assert_near(b.sq, 0.1 / sqrt(2.0), 0.1 * 0.1 / sqrt(2.0));
	assert_near(b.sa, 2 * 0.1 / M_PI, 0.1 * 2 * 0.1 / M_PI);
	assert_true(fabs(b.ssk) < 0.2);
	assert_near(b.sku, 1.5, 0.3);
	/* Sdr of a sine: mean sqrt(1 + (A k cos)^2) - 1, about (A k)^2 / 4 */
	double ak = 0.1 * 2 * M_PI / 4.0;
	assert_near(b.sdr, ak * ak / 4, 0.3 * ak * ak / 4);
	double sine_a2 = b.aniso2;
	scan_release(&s);

	/* the egg crate has the same wavelength in two directions */
	height_field(&s, 401, 60.0, hf_eggcrate, prm);
	assert_int_equal(describe_relief(&s, NULL, 0.3, 16.0, &b, &e), 0);
	print_message("egg crate: Sq %.4f a2 %.3f a4 %.3f\n", b.sq, b.aniso2, b.aniso4);
	assert_near(b.sq, 0.1 / 2, 0.1 * 0.1 / 2);
	assert_true(sine_a2 > b.aniso2 + 0.2);
	scan_release(&s);
}

static void test_relief_of_flat_plane_is_zero(void **state)
{
	(void)state;
	struct scan s;
	struct desc_band b;
	struct desc_info info;
	struct err e;
	float *v = vec();
	err_init(&e);
	height_field(&s, 101, 50.0, hf_flat, NULL);
	assert_int_equal(describe_relief(&s, NULL, 1.0, 8.0, &b, &e), 0);
	assert_true(b.sa < 1e-5);
	assert_true(b.sq < 1e-5);
	describe_ok(&s, NULL, v, &info);
	for (int k = 0; k < 3; k++)
		assert_true(!info.relief_mm[k].resolved || info.relief_mm[k].sq < 1e-5);
	scan_release(&s);
	xfree(v);
}

static void test_describe_rejects_degenerate_inputs(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	float *v = vec();
	for (size_t n = 0; n <= 2; n++) {
		scan_init(&s);
		err_init(&e);
		if (n) {
			assert_int_equal(scan_alloc(&s, n, 0, 0, &e), 0);
			s.n_vertices = n;
			for (size_t i = 0; i < 3 * n; i++)
				s.positions[i] = (float)i;
		}
		assert_int_equal(describe_scan(&s, NULL, v, NULL, &e), ERR_UNDESCRIBABLE);
		char want[64];
		snprintf(want, sizeof(want), "%zu usable point%s, a descriptor needs 16", n,
			 n == 1 ? "" : "s");
		assert_string_equal(e.msg, want);
		scan_release(&s);
	}
	/* 100 copies of one point */
	scan_init(&s);
	assert_int_equal(scan_alloc(&s, 100, 0, 0, &e), 0);
	s.n_vertices = 100;
	for (size_t i = 0; i < 100; i++) {
		s.positions[3 * i] = 1.5f;
		s.positions[3 * i + 1] = -2.0f;
		s.positions[3 * i + 2] = 1e3f;
	}
	err_init(&e);
	assert_int_equal(describe_scan(&s, NULL, v, NULL, &e), ERR_UNDESCRIBABLE);
	assert_string_equal(e.msg, "no extent: all 100 points coincide");
	for (size_t i = 0; i < describe_dim(); i++)
		assert_true(v[i] == 0);
	/* all NaN */
	for (size_t i = 0; i < 300; i++)
		s.positions[i] = NAN;
	err_init(&e);
	assert_int_equal(describe_scan(&s, NULL, v, NULL, &e), ERR_UNDESCRIBABLE);
	assert_string_equal(e.msg, "0 usable points, a descriptor needs 16");
	/* 15 finite points of 100 are one too few, 16 are enough */
	for (size_t i = 0; i < 16; i++) {
		s.positions[3 * i] = (float)i;
		s.positions[3 * i + 1] = (float)((i * 7) % 5);
		s.positions[3 * i + 2] = (float)((i * 3) % 4);
	}
	s.positions[3 * 15] = NAN;
	err_init(&e);
	assert_int_equal(describe_scan(&s, NULL, v, NULL, &e), ERR_UNDESCRIBABLE);
	assert_string_equal(e.msg, "15 usable points, a descriptor needs 16");
	s.positions[3 * 15] = 15.0f;
	describe_ok(&s, NULL, v, NULL);
	/* points on a line, and on a plane: defined vectors */
	for (size_t i = 0; i < 100; i++) {
		s.positions[3 * i] = (float)i;
		s.positions[3 * i + 1] = 2.0f * (float)i;
		s.positions[3 * i + 2] = 0;
	}
	describe_ok(&s, NULL, v, NULL);
	for (size_t i = 0; i < 100; i++)
		s.positions[3 * i + 1] = (float)((i * 37) % 11);
	describe_ok(&s, NULL, v, NULL);
	scan_release(&s);

	/* one triangle */
	scan_init(&s);
	assert_int_equal(scan_alloc(&s, 3, 1, 0, &e), 0);
	s.n_vertices = 3;
	s.n_faces = 1;
	const float tri[9] = { 0, 0, 0, 1, 0, 0, 0, 1, 0 };
	memcpy(s.positions, tri, sizeof(tri));
	s.indices[0] = 0;
	s.indices[1] = 1;
	s.indices[2] = 2;
	describe_ok(&s, NULL, v, NULL);
	/* coordinates whose squares overflow */
	for (int i = 0; i < 9; i++)
		s.positions[i] = tri[i] * 3e38f;
	err_init(&e);
	int rc = describe_scan(&s, NULL, v, NULL, &e);
	assert_true(rc == 0 || rc == ERR_UNDESCRIBABLE);
	if (rc == 0)
		assert_finite(v);
	scan_release(&s);
	xfree(v);
}

static void test_describe_skips_nonfinite_vertices(void **state)
{
	(void)state;
	struct scan s, t;
	struct err e;
	struct desc_info ia, ib;
	float *a = vec(), *b = vec();
	err_init(&e);
	gen(GEN_FORM_LIMB, GEN_MAT_LEATHER, 6000, 2, GEN_COLOR_NONE, &s, NULL);
	describe_ok(&s, NULL, a, &ia);
	/* the same scan with a NaN vertex and a face that uses it */
	scan_init(&t);
	assert_int_equal(scan_alloc(&t, s.n_vertices + 1, s.n_faces + 1, 0, &e), 0);
	t.n_vertices = s.n_vertices + 1;
	t.n_faces = s.n_faces + 1;
	memcpy(t.positions, s.positions, 3 * s.n_vertices * sizeof(float));
	memcpy(t.indices, s.indices, 3 * s.n_faces * sizeof(uint32_t));
	t.positions[3 * s.n_vertices] = NAN;
	t.positions[3 * s.n_vertices + 1] = 1;
	t.positions[3 * s.n_vertices + 2] = 1;
	t.indices[3 * s.n_faces] = 0;
	t.indices[3 * s.n_faces + 1] = 1;
	t.indices[3 * s.n_faces + 2] = (uint32_t)s.n_vertices;
	t.units = s.units;
	scan_finalize(&t, &e);
	describe_ok(&t, NULL, b, &ib);
	assert_int_equal(ib.n_skipped, 2);
	assert_int_equal(ib.n_faces, ia.n_faces);
	assert_memory_equal(a, b, describe_dim() * sizeof(float));
	scan_release(&t);
	scan_release(&s);
	xfree(a);
	xfree(b);
}

static void test_describe_leaves_out_specks(void **state)
{
	(void)state;
	struct scan s, o, soup;
	struct err e;
	struct desc_info ia, ib;
	float *a = vec(), *b = vec();
	err_init(&e);
	gen(GEN_FORM_BLOB, GEN_MAT_SKIN, 20000, 3, GEN_COLOR_VERTEX, &s, NULL);
	describe_ok(&s, NULL, a, &ia);
	assert_int_equal(ia.n_specks, 0);
	/* a hundredth more faces as detached specks around it: left out whole */
	assert_int_equal(gen_outliers(&s, 0.01, 7, &o, &e), 0);
	describe_ok(&o, NULL, b, &ib);
	assert_int_equal(ib.n_specks, o.n_faces - s.n_faces);
	assert_int_equal(ib.n_faces, ia.n_faces);
	assert_memory_equal(a, b, describe_dim() * sizeof(float));
	for (int k = 0; k < 3; k++)
		assert_true(ib.extent[k] == ia.extent[k]);
	assert_true(ib.spacing == ia.spacing);
	scan_release(&o);
	/* a fifth more: past 5 % of the faces they are part of the scan */
	assert_int_equal(gen_outliers(&s, 0.2, 7, &o, &e), 0);
	describe_ok(&o, NULL, b, &ib);
	assert_int_equal(ib.n_specks, 0);
	assert_int_equal(ib.n_faces, o.n_faces);
	assert_true(rel_dist(a, b) > 0);
	scan_release(&o);
	/* a triangle soup (no shared vertex) is all small pieces: none left out */
	scan_init(&soup);
	assert_int_equal(scan_alloc(&soup, 3 * s.n_faces, s.n_faces, 0, &e), 0);
	soup.n_vertices = 3 * s.n_faces;
	soup.n_faces = s.n_faces;
	for (size_t f = 0; f < s.n_faces; f++)
		for (int k = 0; k < 3; k++) {
			memcpy(soup.positions + 3 * (3 * f + (size_t)k),
			       s.positions + 3 * (size_t)s.indices[3 * f + (size_t)k], 3 * sizeof(float));
			soup.indices[3 * f + (size_t)k] = (uint32_t)(3 * f + (size_t)k);
		}
	assert_int_equal(scan_finalize(&soup, &e), 0);
	describe_ok(&soup, NULL, b, &ib);
	assert_int_equal(ib.n_specks, 0);
	assert_int_equal(ib.n_faces, s.n_faces);
	scan_release(&soup);
	scan_release(&s);
	xfree(a);
	xfree(b);
}

static void test_point_cloud_describes_like_its_mesh(void **state)
{
	(void)state;
	struct scan s, cloud, other;
	struct err e;
	struct desc_info info;
	float *a = vec(), *b = vec(), *c = vec();
	err_init(&e);
	gen(GEN_FORM_TORUS, GEN_MAT_HAMMERED, 40000, 4, GEN_COLOR_NONE, &s, NULL);
	describe_ok(&s, NULL, a, &info);
	assert_int_equal(gen_sample_points(&s, 60000, 9, &cloud, &e), 0);
	describe_ok(&cloud, NULL, b, &info);
	assert_true(info.flags & DESC_POINT_CLOUD);
	/* the area of a cloud is estimated from its density */
	struct desc_info im;
	describe_ok(&s, NULL, c, &im);
	assert_near(info.area, im.area, 0.15 * im.area);
	gen(GEN_FORM_BLOB, GEN_MAT_HAMMERED, 40000, 4, GEN_COLOR_NONE, &other, NULL);
	describe_ok(&other, NULL, c, &info);
	print_message("cloud %.4f other form %.4f\n", l2(a, b), l2(a, c));
	assert_true(l2(a, b) < 0.05 * l2(a, c));
	scan_release(&other);
	scan_release(&cloud);
	scan_release(&s);
	xfree(a);
	xfree(b);
	xfree(c);
}

/*
 * Points drawn near each centre (fine radii on large meshes) and a global
 * sample set of the same density describe a surface alike: both are
 * area-uniform.
 */
static void test_graded_cloud_weighs_points_by_area(void **state)
{
	(void)state;
	struct scan s, even, graded;
	struct err e;
	struct desc_info ie, ig;
	float *a = vec(), *b = vec(), *m = vec(), *u = vec();
	err_init(&e);
	gen(GEN_FORM_LIMB, GEN_MAT_BARK, 40000, 4, GEN_COLOR_NONE, &s, NULL);
	describe_ok(&s, NULL, m, NULL);
	assert_int_equal(gen_sample_points(&s, 30000, 9, &even, &e), 0);
	describe_ok(&even, NULL, a, &ie);
	/* ten times denser at one end, as a scanner samples what is near it */
	assert_int_equal(gen_graded_points(&s, 30000, 10, 9, &graded, &e), 0);
	describe_ok(&graded, NULL, b, &ig);
	/* each point counts for its area: the graded cloud has the even one's area */
	assert_near(ig.area, ie.area, 0.1 * ie.area);
	/* weighed equally, the dense end would outweigh the rest */
	int was = desc_test_cloud_weights(0);
	describe_ok(&graded, NULL, u, NULL);
	desc_test_cloud_weights(was);
	print_message("from the mesh: graded %.4f, even %.4f; graded unweighted %.4f\n",
		      l2(m, b), l2(m, a), l2(m, u));
	assert_true(l2(m, b) < 1.5 * l2(m, a));
	assert_true(l2(m, b) < 0.5 * l2(m, u));
	scan_release(&graded);
	scan_release(&even);
	scan_release(&s);
	xfree(a);
	xfree(b);
	xfree(m);
	xfree(u);
}

static void test_both_samplers_agree(void **state)
{
	(void)state;
	struct scan s, t;
	struct desc_info info;
	float *a = vec(), *b = vec(), *c = vec();
	gen(GEN_FORM_TORUS, GEN_MAT_KNIT, 40000, 6, GEN_COLOR_VERTEX, &s, NULL);
	gen(GEN_FORM_TORUS, GEN_MAT_STONE, 40000, 6, GEN_COLOR_VERTEX, &t, NULL);
	int old = desc_test_force_sampler(1);
	describe_ok(&s, NULL, a, &info);
	describe_ok(&t, NULL, c, &info);
	desc_test_force_sampler(2);
	describe_ok(&s, NULL, b, &info);
	desc_test_force_sampler(old);
	print_message("near-centre vs global %.5f, other material %.5f\n", l2(a, b), l2(a, c));
	assert_true(l2(a, b) < 0.1 * l2(a, c));
	scan_release(&s);
	scan_release(&t);
	xfree(a);
	xfree(b);
	xfree(c);
}

static void test_distance_helpers_match_plain_l2(void **state)
{
	(void)state;
	struct scan s, t;
	float *a = vec(), *b = vec();
	gen(GEN_FORM_BOX, GEN_MAT_FABRIC, 6000, 1, GEN_COLOR_NONE, &s, NULL);
	gen(GEN_FORM_BOX, GEN_MAT_BARK, 6000, 1, GEN_COLOR_NONE, &t, NULL);
	describe_ok(&s, NULL, a, NULL);
	describe_ok(&t, NULL, b, NULL);
	double d = l2(a, b);
	assert_near(describe_distance(a, b, NULL), d, 1e-4 * d);
	double sum = 0;
	float w[DESC_N_BLOCKS];
	describe_default_weights(w);
	for (int k = 0; k < DESC_N_BLOCKS; k++)
		sum += w[k] * describe_block_distance(a, b, (enum desc_block_id)k);
	assert_near(sum, d, 1e-4 * d);
	/* reweighting both vectors makes plain L2 use the new weights */
	for (int k = 0; k < DESC_N_BLOCKS; k++)
		w[k] = (float)(k + 1) * 0.5f;
	double want = describe_distance(a, b, w);
	describe_reweight(a, w);
	describe_reweight(b, w);
	assert_near(l2(a, b), want, 1e-3 * want);
	scan_release(&s);
	scan_release(&t);
	xfree(a);
	xfree(b);
}

/*
 * A cloud as sparse as the vertices of a coarse mesh: its local geometry
 * comes from a few scattered points of a ball wider than the nominal
 * radius, unlike the mesh's (sampled densely on its faces), so it is
 * flagged and a query leaves it out; the mesh itself and a dense cloud
 * keep theirs.
 */
static void test_sparse_cloud_leaves_out_its_local_geometry(void **state)
{
	(void)state;
	struct scan s, cloud;
	struct err e;
	struct desc_info info;
	float w[DESC_N_BLOCKS], d[DESC_N_BLOCKS];
	float *v = vec();
	err_init(&e);
	describe_default_weights(d);
	gen(GEN_FORM_LIMB, GEN_MAT_NONE, 600, 5, GEN_COLOR_NONE, &s, NULL);
	describe_ok(&s, NULL, v, &info);
	assert_false(info.flags & DESC_POINT_CLOUD);
	assert_false(info.flags & DESC_LOCAL_SPARSE);
	describe_query_weights(&info, NULL, w);
	assert_true(w[DESC_LOCAL] == d[DESC_LOCAL]);

	assert_int_equal(gen_sample_points(&s, s.n_vertices, 3, &cloud, &e), 0);
	describe_ok(&cloud, NULL, v, &info);
	assert_true(info.flags & DESC_POINT_CLOUD);
	assert_true(info.flags & DESC_LOCAL_SPARSE);
	describe_query_weights(&info, NULL, w);
	assert_true(w[DESC_LOCAL] == 0);
	assert_true(w[DESC_SHAPE] == d[DESC_SHAPE] && w[DESC_RELIEF] == d[DESC_RELIEF]);
	scan_release(&cloud);

	assert_int_equal(gen_sample_points(&s, 200000, 3, &cloud, &e), 0);
	describe_ok(&cloud, NULL, v, &info);
	assert_true(info.flags & DESC_POINT_CLOUD);
	assert_false(info.flags & DESC_LOCAL_SPARSE);
	describe_query_weights(&info, NULL, w);
	assert_true(w[DESC_LOCAL] == d[DESC_LOCAL]);
	scan_release(&cloud);
	scan_release(&s);
	xfree(v);
}

static void test_query_weights_leave_out_what_the_query_lacks(void **state)
{
	(void)state;
	struct desc_info q;
	float w[DESC_N_BLOCKS], d[DESC_N_BLOCKS], s[DESC_N_BLOCKS];
	describe_default_weights(d);
	memset(&q, 0, sizeof(q));
	describe_query_weights(&q, NULL, w);
	assert_true(w[DESC_COLOUR] == 0 && w[DESC_RELIEF_MM] == 0 && w[DESC_SIZE] == 0);
	assert_true(w[DESC_SHAPE] == d[DESC_SHAPE] && w[DESC_RELIEF] == d[DESC_RELIEF]);
	q.flags = DESC_HAS_COLOUR | DESC_HAS_UNITS;
	describe_query_weights(&q, NULL, w);
	assert_memory_equal(w, d, sizeof(w));
	/* the surface preset ignores the global form, keeps relief and colour */
	describe_preset_weights(DESC_PRESET_SURFACE, s);
	assert_true(s[DESC_SHAPE] == 0 && s[DESC_LOCAL] == 0);
	assert_true(s[DESC_RELIEF] > 0 && s[DESC_RELIEF_MM] > 0 && s[DESC_COLOUR] > 0);
	describe_preset_weights(DESC_PRESET_OBJECT, w);
	assert_memory_equal(w, d, sizeof(w));
}

/*
 * Views: each is the scan seen from one direction, described as that
 * part would be on its own (the same vector as describing gen_view()'s
 * copy with the views' fit stride), byte-identical for any thread count;
 * a view of a closed form is never the whole; a cloud too small to show
 * 16 points from a side repeats the whole there.
 */
static void test_describe_views(void **state)
{
	(void)state;
	struct scan s, vs;
	struct err e;
	struct describe_opts o;
	size_t dim = describe_dim(), n1 = 0, n2 = 0;
	float *w = vec(), *one = vec();
	float *v1 = alloc_array(DESC_VIEWS, dim * sizeof(float));
	float *v2 = alloc_array(DESC_VIEWS, dim * sizeof(float));
	assert_non_null(v1);
	assert_non_null(v2);
	err_init(&e);
	gen(GEN_FORM_BLOB, GEN_MAT_BARK, 8000, 5, GEN_COLOR_VERTEX, &s, NULL);
	describe_opts_init(&o);
	o.threads = 1;
	describe_ok(&s, &o, w, NULL);
	assert_int_equal(describe_views(&s, &o, w, v1, &n1, &e), 0);
	o.threads = 2;
	assert_int_equal(describe_views(&s, &o, w, v2, &n2, &e), 0);
	assert_int_equal(n1, DESC_VIEWS);
	assert_int_equal(n2, DESC_VIEWS);
	assert_memory_equal(v1, v2, DESC_VIEWS * dim * sizeof(float));
	double lo = HUGE_VAL;
	for (int i = 0; i < DESC_VIEWS; i++) {
		double dir[3];
		describe_view_direction(i, dir);
		assert_near(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2], 1.0, 1e-12);
		assert_int_equal(gen_view(&s, dir, &vs, &e), 0);
		/* a view of a closed blob: about half of it */
		assert_true(vs.n_faces > s.n_faces / 4 && vs.n_faces < 3 * s.n_faces / 4);
		describe_opts_init(&o);
		o.threads = 1;
		o.fit_stride = DESC_VIEW_FIT_STRIDE;
		describe_ok(&vs, &o, one, NULL);
		assert_memory_equal(one, v1 + (size_t)i * dim, dim * sizeof(float));
		double d = l2(w, v1 + (size_t)i * dim);
		lo = d < lo ? d : lo;
		scan_release(&vs);
	}
	assert_true(lo > 1e-3);
	/* directions spread over the sphere: no two within 60 degrees */
	for (int i = 0; i < DESC_VIEWS; i++)
		for (int j = 0; j < i; j++) {
			double a[3], b[3];
			describe_view_direction(i, a);
			describe_view_direction(j, b);
			assert_true(a[0] * b[0] + a[1] * b[1] + a[2] * b[2] < 0.5);
		}
	scan_release(&s);

	/* 40 points: a side shows about 20, some sides fewer than 16 */
	gen(GEN_FORM_BLOB, GEN_MAT_NONE, 2000, 5, GEN_COLOR_NONE, &vs, NULL);
	assert_int_equal(gen_sample_points(&vs, 40, 3, &s, &e), 0);
	scan_release(&vs);
	describe_opts_init(&o);
	describe_ok(&s, &o, w, NULL);
	assert_int_equal(describe_views(&s, &o, w, v1, &n1, &e), 0);
	assert_true(n1 < DESC_VIEWS);
	size_t same = 0;
	for (int i = 0; i < DESC_VIEWS; i++)
		same += !memcmp(w, v1 + (size_t)i * dim, dim * sizeof(float));
	assert_int_equal(same, DESC_VIEWS - n1);
	scan_release(&s);
	xfree(v1);
	xfree(v2);
	xfree(w);
	xfree(one);
}

static void test_describe_fails_cleanly_out_of_memory(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	struct describe_opts o;
	float *v = vec();
	int rc = -1;
	gen(GEN_FORM_TORUS, GEN_MAT_STONE, 600, 1, GEN_COLOR_VERTEX, &s, NULL);
	describe_opts_init(&o);
	o.threads = 1;
	for (long n = 0; rc != 0 && n < 5000; n++) {
		err_init(&e);
		alloc_fail_after(n);
		rc = describe_scan(&s, &o, v, NULL, &e);
		alloc_fail_after(-1);
		assert_true(rc == 0 || rc == ERR_NOMEM);
	}
	assert_int_equal(rc, 0);
	/* the views: failing at points spread over their allocations */
	float *views = alloc_array(DESC_VIEWS, describe_dim() * sizeof(float));
	assert_non_null(views);
	static const long at[] = { 0, 1, 2, 3, 10, 40, 150, 600, 2500 };
	for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
		err_init(&e);
		alloc_fail_after(at[k]);
		rc = describe_views(&s, &o, v, views, NULL, &e);
		alloc_fail_after(-1);
		assert_true(rc == 0 || rc == ERR_NOMEM);
		if (rc)
			assert_non_null(strstr(e.msg, "out of memory"));
	}
	assert_int_equal(describe_views(&s, &o, v, views, NULL, &e), 0);
	xfree(views);
	scan_release(&s);
	xfree(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe_layout_is_contiguous),
		cmocka_unit_test(test_describe_measures_noise_below_resolution),
		cmocka_unit_test(test_describe_fine_tolerance_follows_curvedness),
		cmocka_unit_test(test_describe_pairs_see_facing_surfaces),
		cmocka_unit_test(test_describe_is_invariant_to_rigid_motion_reflection_and_scale),
		cmocka_unit_test(test_describe_is_byte_identical_across_threads),
		cmocka_unit_test(test_describe_marks_absent_colour),
		cmocka_unit_test(test_relief_of_sine_has_amplitude_over_sqrt2),
		cmocka_unit_test(test_relief_of_flat_plane_is_zero),
		cmocka_unit_test(test_describe_rejects_degenerate_inputs),
		cmocka_unit_test(test_describe_skips_nonfinite_vertices),
		cmocka_unit_test(test_describe_leaves_out_specks),
		cmocka_unit_test(test_point_cloud_describes_like_its_mesh),
		cmocka_unit_test(test_graded_cloud_weighs_points_by_area),
		cmocka_unit_test(test_both_samplers_agree),
		cmocka_unit_test(test_distance_helpers_match_plain_l2),
		cmocka_unit_test(test_sparse_cloud_leaves_out_its_local_geometry),
		cmocka_unit_test(test_query_weights_leave_out_what_the_query_lacks),
		cmocka_unit_test(test_describe_views),
		cmocka_unit_test(test_describe_fails_cleanly_out_of_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
