/*
 * test_gen.c - the scan generator (tests/lib/gen.c): determinism, sizes
 * and triangle counts, watertight seams and outward winding, relief
 * statistics that tell the materials apart the way real scans do, texture
 * mode, the library plan, and the perturbations used to evaluate
 * descriptors (subdivision, smoothing and turned triangles among them).
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
#include "tests/lib/gen.h"

/* Doubles within tol (cmocka's assert_float_equal works in float). */
#define assert_near(a, b, tol) assert_near_at((a), (b), (tol), #a, __FILE__, __LINE__)
static void assert_near_at(double a, double b, double tol, const char *what,
			   const char *file, int line)
{
	if (!(fabs(a - b) <= tol))
		fail_msg("%s:%d: %s = %.9g, want %.9g +- %.3g", file, line, what, a, b, tol);
}

static struct gen_params small(enum gen_form f, enum gen_material m, size_t tris)
{
	struct gen_params p;
	gen_params_init(&p);
	p.form = f;
	p.material = m;
	p.triangles = tris;
	p.seed = 42;
	return p;
}

static void make(const struct gen_params *p, struct scan *s)
{
	struct err e;
	err_init(&e);
	int rc = gen_scan(p, s, NULL, &e);
	if (rc)
		fail_msg("gen_scan: %s", e.msg);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * Count undirected edges (vertices identified by position) used by one
 * face (boundary), two faces (manifold interior) or more.
 */
static void edge_census(const struct scan *s, size_t *once, size_t *twice, size_t *more,
			double *rim_z)
{
	/* identify vertices by exact position: sort indices by position bits */
	size_t nv = s->n_vertices;
	uint32_t *id = malloc(nv * sizeof(*id));
	uint64_t *key = malloc(nv * sizeof(*key) * 2);
	assert_non_null(id);
	assert_non_null(key);
	for (size_t i = 0; i < nv; i++) {
		uint32_t b[3];
		memcpy(b, s->positions + 3 * i, sizeof(b));
		/* 64-bit hash of the bits, then index: equal positions sort together */
		uint64_t h = ((uint64_t)b[0] * 0x9E3779B97F4A7C15ull) ^
			     ((uint64_t)b[1] * 0xC2B2AE3D27D4EB4Full) ^
			     ((uint64_t)b[2] * 0x165667B19E3779F9ull);
		key[2 * i] = h;
		key[2 * i + 1] = i;
	}
	/* simple approach: sort pairs (hash, index) by hash */
	qsort(key, nv, 2 * sizeof(uint64_t), cmp_u64);
	for (size_t i = 0; i < nv;) {
		size_t j = i;
		while (j < nv && key[2 * j] == key[2 * i])
			j++;
		for (size_t k = i; k < j; k++)
			id[key[2 * k + 1]] = (uint32_t)key[2 * i + 1];
		i = j;
	}
	uint64_t *edges = malloc(3 * s->n_faces * sizeof(*edges));
	assert_non_null(edges);
	for (size_t f = 0; f < s->n_faces; f++)
		for (int k = 0; k < 3; k++) {
			uint64_t a = id[s->indices[3 * f + k]];
			uint64_t b = id[s->indices[3 * f + (k + 1) % 3]];
			edges[3 * f + k] = a < b ? a << 32 | b : b << 32 | a;
		}
	qsort(edges, 3 * s->n_faces, sizeof(*edges), cmp_u64);
	*once = *twice = *more = 0;
	for (size_t i = 0; i < 3 * s->n_faces;) {
		size_t j = i;
		while (j < 3 * s->n_faces && edges[j] == edges[i])
			j++;
		if (j - i == 1) {
			(*once)++;
			/* how far the boundary is from the bottom or top of the box */
			for (int k = 0; k < 2 && rim_z; k++) {
				uint32_t v = (uint32_t)(k ? edges[i] : edges[i] >> 32);
				double z = s->positions[3 * (size_t)v + 2];
				double dz = fmin(fabs(z - s->bbox_min[2]), fabs(z - s->bbox_max[2]));
				*rim_z = dz > *rim_z ? dz : *rim_z;
			}
		}
		else if (j - i == 2)
			(*twice)++;
		else
			(*more)++;
		i = j;
	}
	free(edges);
	free(key);
	free(id);
}

/* Signed volume by the divergence theorem (positive: outward winding). */
static double signed_volume(const struct scan *s)
{
	double v = 0;
	for (size_t f = 0; f < s->n_faces; f++) {
		const float *a = s->positions + 3 * s->indices[3 * f];
		const float *b = s->positions + 3 * s->indices[3 * f + 1];
		const float *c = s->positions + 3 * s->indices[3 * f + 2];
		v += ((double)a[0] * ((double)b[1] * c[2] - (double)b[2] * c[1]) -
		      (double)a[1] * ((double)b[0] * c[2] - (double)b[2] * c[0]) +
		      (double)a[2] * ((double)b[0] * c[1] - (double)b[1] * c[0])) / 6.0;
	}
	return v;
}

static double max_extent(const struct scan *s)
{
	double m = 0;
	for (int k = 0; k < 3; k++) {
		double d = (double)s->bbox_max[k] - s->bbox_min[k];
		m = d > m ? d : m;
	}
	return m;
}

static void test_gen_same_seed_gives_identical_scans(void **state)
{
	(void)state;
	struct gen_params p = small(GEN_FORM_BLOB, GEN_MAT_SKIN, 6000);
	p.color = GEN_COLOR_VERTEX;
	struct scan a, b, c;
	make(&p, &a);
	make(&p, &b);
	p.seed = 43;
	make(&p, &c);
	assert_int_equal(a.n_vertices, b.n_vertices);
	assert_int_equal(a.n_faces, b.n_faces);
	assert_memory_equal(a.positions, b.positions, 3 * a.n_vertices * sizeof(float));
	assert_memory_equal(a.normals, b.normals, 3 * a.n_vertices * sizeof(float));
	assert_memory_equal(a.colors, b.colors, 4 * a.n_vertices);
	assert_memory_equal(a.indices, b.indices, 3 * a.n_faces * sizeof(uint32_t));
	/* another seed: same topology size, different surface */
	assert_int_equal(a.n_vertices, c.n_vertices);
	assert_true(memcmp(a.positions, c.positions, 3 * a.n_vertices * sizeof(float)) != 0);
	scan_release(&a);
	scan_release(&b);
	scan_release(&c);
}

static void test_gen_meets_triangle_target_and_size_for_every_form(void **state)
{
	(void)state;
	for (int f = 0; f < GEN_N_FORMS; f++) {
		for (size_t target = 3000; target <= 48000; target *= 4) {
			struct gen_params p = small((enum gen_form)f, GEN_MAT_NONE, target);
			p.size_mm = 80;
			struct scan s;
			make(&p, &s);
			double ratio = (double)s.n_faces / (double)target;
			if (ratio < 0.93 || ratio > 1.07)
				fail_msg("%s: %zu triangles for a target of %zu",
					 gen_form_name((enum gen_form)f), s.n_faces, target);
			/* no relief: the largest extent is the requested size */
			assert_near(max_extent(&s), 80.0, 1e-3);
			assert_int_equal(s.units, UNITS_MM);
			assert_string_equal(scan_meta_get(&s, "form"), gen_form_name((enum gen_form)f));
			assert_int_equal(s.n_nonfinite, 0);
			scan_release(&s);
		}
	}
}

static void test_gen_closed_forms_are_watertight_and_outward(void **state)
{
	(void)state;
	const enum gen_form closed[] = { GEN_FORM_BLOB, GEN_FORM_BOX, GEN_FORM_LIMB, GEN_FORM_TORUS };
	for (size_t i = 0; i < sizeof(closed) / sizeof(closed[0]); i++) {
		struct gen_params p = small(closed[i], GEN_MAT_STONE, 8000);
		struct scan s;
		make(&p, &s);
		size_t once, twice, more;
		edge_census(&s, &once, &twice, &more, NULL);
		/* every edge joins exactly two triangles, across seams too */
		if (once || more)
			fail_msg("%s: %zu boundary and %zu non-manifold edges",
				 gen_form_name(closed[i]), once, more);
		assert_true(twice > 0);
		assert_true(signed_volume(&s) > 0);
		/* vertex normals agree with the winding: point away from the centre */
		double cx = 0.5 * ((double)s.bbox_min[0] + s.bbox_max[0]);
		double cy = 0.5 * ((double)s.bbox_min[1] + s.bbox_max[1]);
		double cz = 0.5 * ((double)s.bbox_min[2] + s.bbox_max[2]);
		size_t out = 0;
		for (size_t v = 0; v < s.n_vertices; v++) {
			const float *q = s.positions + 3 * v, *n = s.normals + 3 * v;
			double d[3] = { q[0] - cx, q[1] - cy, q[2] - cz };
			if (closed[i] == GEN_FORM_TORUS) {
				/* away from the tube's centre line */
				double r = sqrt(d[0] * d[0] + d[1] * d[1]);
				/* 100 mm outer diameter: the tube's centre circle has radius 36 mm */
				double k = r > 0 ? (r - 36.0) / r : 0;
				d[0] *= k;
				d[1] *= k;
			}
			if (d[0] * n[0] + d[1] * n[1] + d[2] * n[2] > 0)
				out++;
		}
		if ((double)out < 0.97 * (double)s.n_vertices)
			fail_msg("%s: only %zu of %zu normals point outward",
				 gen_form_name(closed[i]), out, s.n_vertices);
		scan_release(&s);
	}
}

static void test_gen_open_forms_have_boundary_only_at_the_rim(void **state)
{
	(void)state;
	struct gen_params p = small(GEN_FORM_TRUNK, GEN_MAT_BARK, 10000);
	struct scan s;
	make(&p, &s);
	size_t once, twice, more;
	double rim = 0;
	edge_census(&s, &once, &twice, &more, &rim);
	assert_int_equal(more, 0);
	/* boundary edges: the two rims only (the wrap seam is welded); bark
	 * relief tilts them by at most a few mm */
	assert_true(once > 0 && once < s.n_faces / 50);
	assert_true(rim < 4.0);
	scan_release(&s);
}

/* Statistics of gen_relief on a flat patch (normal z, grain y). */
struct rstats {
	double rms, skew, aniso;   /* aniso: mean |dh/dx| / mean |dh/dy| */
	double corr50;             /* lag (mm) where autocorrelation along x < 0.5 */
	double gpeak, gpeak_lag;   /* peak of the gradient autocorrelation, lag mm */
};

#define RN 400
static void relief_stats(enum gen_material m, double sp, double amp, struct rstats *st)
{
	static double H[RN][RN];
	const double nrm[3] = { 0, 0, 1 };
	double mean = 0, m2 = 0, m3 = 0, gx = 0, gy = 0;
	for (int j = 0; j < RN; j++)
		for (int i = 0; i < RN; i++) {
			double p[3] = { i * sp + 3.3, j * sp - 7.1, 0 };
			H[j][i] = gen_relief(m, 7, p, nrm, 1, sp, amp);
			mean += H[j][i];
		}
	mean /= RN * RN;
	for (int j = 0; j < RN; j++)
		for (int i = 0; i < RN; i++) {
			double d = H[j][i] - mean;
			m2 += d * d;
			m3 += d * d * d;
			if (i + 1 < RN && j + 1 < RN) {
				gx += fabs(H[j][i + 1] - H[j][i]);
				gy += fabs(H[j + 1][i] - H[j][i]);
			}
		}
	m2 /= RN * RN;
	m3 /= RN * RN;
	st->rms = sqrt(m2);
	st->skew = m2 > 0 ? m3 / pow(m2, 1.5) : 0;
	st->aniso = gy > 0 ? gx / gy : 0;
	st->corr50 = -1;
	for (int L = 1; L < RN / 2 && st->corr50 < 0 && m2 > 0; L++) {
		double c = 0;
		long n = 0;
		for (int j = 0; j < RN; j += 2)
			for (int i = 0; i + L < RN; i++, n++)
				c += (H[j][i] - mean) * (H[j][i + L] - mean);
		if (c / (double)n / m2 < 0.5)
			st->corr50 = L * sp;
	}
	double g2 = 0;
	for (int j = 0; j < RN; j += 2)
		for (int i = 0; i + 1 < RN; i++)
			g2 += (H[j][i + 1] - H[j][i]) * (H[j][i + 1] - H[j][i]);
	st->gpeak = 0;
	st->gpeak_lag = 0;
	for (int L = (int)(0.6 / sp); L < (int)(4.0 / sp) && g2 > 0; L++) {
		double c = 0;
		for (int j = 0; j < RN; j += 2)
			for (int i = 0; i + L + 1 < RN; i++)
				c += (H[j][i + 1] - H[j][i]) * (H[j][i + L + 1] - H[j][i + L]);
		if (c / g2 > st->gpeak) {
			st->gpeak = c / g2;
			st->gpeak_lag = L * sp;
		}
	}
	print_message("  %-9s rms %.4f mm skew %+.2f aniso %.2f corr50 %.2f mm gradpeak %.2f at %.2f mm\n",
		      gen_material_name(m), st->rms, st->skew, st->aniso, st->corr50,
		      st->gpeak, st->gpeak_lag);
}

static void test_gen_materials_differ_in_scan_statistics(void **state)
{
	(void)state;
	struct rstats st[GEN_N_MATERIALS];
	const double sp = 0.05; /* a 20 x 20 mm patch sampled every 0.05 mm */
	for (int m = 0; m < GEN_N_MATERIALS; m++)
		relief_stats((enum gen_material)m, sp, 0, &st[m]);
	assert_true(st[GEN_MAT_NONE].rms == 0);
	/* every material has relief of its documented order of magnitude */
	for (int m = 1; m < GEN_N_MATERIALS; m++) {
		double a = gen_material_amplitude((enum gen_material)m);
		if (st[m].rms < 0.05 * a || st[m].rms > a)
			fail_msg("%s: rms %.4f mm for a peak depth of %.3f mm",
				 gen_material_name((enum gen_material)m), st[m].rms, a);
	}
	/* skin: pits and creases make a strongly negative skew, fine scale */
	assert_true(st[GEN_MAT_SKIN].skew < -1.0);
	assert_true(st[GEN_MAT_SKIN].corr50 < 0.3);
	/* wood: raised latewood, positive skew; grain makes it anisotropic */
	assert_true(st[GEN_MAT_WOOD].skew > 0.3);
	assert_true(st[GEN_MAT_WOOD].aniso > 3.0);
	/* bark: furrows along the grain, mm-scale, depth in mm */
	assert_true(st[GEN_MAT_BARK].aniso > 2.0);
	assert_true(st[GEN_MAT_BARK].skew < 0);
	assert_true(st[GEN_MAT_BARK].rms > 0.3);
	/* isotropic ones */
	const enum gen_material iso[] = { GEN_MAT_STONE, GEN_MAT_HAMMERED, GEN_MAT_LEATHER };
	for (size_t i = 0; i < 3; i++)
		assert_true(st[iso[i]].aniso > 0.67 && st[iso[i]].aniso < 1.5);
	/* hammered: smooth dimples 2-3.6 mm across, wider than skin features */
	assert_true(st[GEN_MAT_HAMMERED].corr50 > 3 * st[GEN_MAT_SKIN].corr50);
	/* stone: cracks give a negative tail, no periodicity */
	assert_true(st[GEN_MAT_STONE].skew < -0.3);
	assert_true(st[GEN_MAT_STONE].gpeak < 0.2);
	/* periodic textiles: weave repeats every two 0.7 mm threads, knit every 3 mm wale */
	assert_true(st[GEN_MAT_FABRIC].gpeak > 0.5);
	assert_near(st[GEN_MAT_FABRIC].gpeak_lag, 1.4, 0.1);
	assert_true(st[GEN_MAT_KNIT].gpeak > 0.2);
	assert_near(st[GEN_MAT_KNIT].gpeak_lag, 3.0, 0.25);
}

static void test_gen_relief_scales_with_amplitude_and_band_limits(void **state)
{
	(void)state;
	const double p[3] = { 1.234, -5.6, 0.7 }, n[3] = { 0, 0, 1 };
	for (int m = 1; m < GEN_N_MATERIALS; m++) {
		double a = gen_material_amplitude((enum gen_material)m);
		double h1 = gen_relief((enum gen_material)m, 3, p, n, 1, 0.05, a);
		double h2 = gen_relief((enum gen_material)m, 3, p, n, 1, 0.05, 2 * a);
		double h0 = gen_relief((enum gen_material)m, 3, p, n, 1, 0.05, 0);
		assert_near(h2, 2 * h1, 1e-12);
		assert_near(h0, h1, 1e-12); /* 0 means the default */
	}
	/* seen every 2 mm, skin's sub-mm pores and creases fade out, stone's
	 * 16 mm relief stays */
	struct rstats fine, coarse;
	relief_stats(GEN_MAT_SKIN, 0.05, 0, &fine);
	relief_stats(GEN_MAT_SKIN, 2.0, 0, &coarse);
	assert_true(coarse.rms < 0.5 * fine.rms);
	relief_stats(GEN_MAT_STONE, 0.05, 0, &fine);
	relief_stats(GEN_MAT_STONE, 2.0, 0, &coarse);
	assert_true(coarse.rms > 0.5 * fine.rms);
}

static void test_gen_texture_mode_gives_uvs_material_and_image(void **state)
{
	(void)state;
	const enum gen_form forms[] = { GEN_FORM_TILE, GEN_FORM_BOX, GEN_FORM_TORUS };
	for (int i = 0; i < 3; i++) {
		struct gen_params p = small(forms[i], GEN_MAT_WOOD, 4000);
		p.size_mm = 30; /* texels of 0.5 mm or less resolve the 2 mm rings */
		p.color = GEN_COLOR_TEXTURE;
		p.texture_px = 128;
		p.texture_name = "wood.png";
		struct scan s;
		struct image tex;
		struct err e;
		err_init(&e);
		assert_int_equal(gen_scan(&p, &s, &tex, &e), 0);
		assert_non_null(s.uvs);
		assert_null(s.colors);
		for (size_t v = 0; v < 2 * s.n_vertices; v++)
			assert_true(s.uvs[v] >= 0.0f && s.uvs[v] <= 1.0f);
		assert_int_equal(s.n_textures, 1);
		assert_string_equal(s.textures[0].declared, "wood.png");
		assert_int_equal(s.n_materials, 1);
		assert_string_equal(s.materials[0].name, "wood");
		assert_int_equal(s.materials[0].texture, 0);
		assert_int_equal(tex.width, 128);
		assert_int_equal(tex.height, 128);
		/* a wood texture: brownish (red > blue), with rings (not flat) */
		double sr = 0, sb = 0, lo = 255, hi = 0;
		for (size_t k = 0; k < 128 * 128; k++) {
			const uint8_t *px = tex.rgba + 4 * k;
			sr += px[0];
			sb += px[2];
			lo = px[1] < lo ? px[1] : lo;
			hi = px[1] > hi ? px[1] : hi;
			assert_int_equal(px[3], 255);
		}
		assert_true(sr > 1.3 * sb);
		assert_true(hi - lo > 30);
		scan_release(&s);
		image_release(&tex);
	}
}

static void test_gen_vertex_colours_darken_in_cavities(void **state)
{
	(void)state;
	/* bark furrows are dark: low vertices are darker than high ones */
	struct gen_params p = small(GEN_FORM_TILE, GEN_MAT_BARK, 60000);
	p.size_mm = 150;
	p.color = GEN_COLOR_VERTEX;
	struct scan s;
	make(&p, &s);
	assert_non_null(s.colors);
	double zsum = 0;
	for (size_t v = 0; v < s.n_vertices; v++)
		zsum += s.positions[3 * v + 2];
	double zmean = zsum / (double)s.n_vertices;
	double lo_l = 0, hi_l = 0;
	size_t lo_n = 0, hi_n = 0;
	for (size_t v = 0; v < s.n_vertices; v++) {
		const uint8_t *c = s.colors + 4 * v;
		double l = c[0] + c[1] + c[2];
		if (s.positions[3 * v + 2] < zmean - 1.0) {
			lo_l += l;
			lo_n++;
		} else if (s.positions[3 * v + 2] > zmean + 0.5) {
			hi_l += l;
			hi_n++;
		}
		assert_int_equal(c[3], 255);
	}
	assert_true(lo_n > 100 && hi_n > 100);
	assert_true(lo_l / (double)lo_n < 0.8 * hi_l / (double)hi_n);
	scan_release(&s);
}

static void test_gen_library_plan_covers_every_form_and_material(void **state)
{
	(void)state;
	int seen[GEN_N_FORMS][GEN_N_MATERIALS] = { { 0 } };
	int fmts[GEN_N_FORMATS] = { 0 }, colors[GEN_N_COLORS] = { 0 };
	for (size_t i = 0; i < GEN_N_FORMS * GEN_N_MATERIALS; i++) {
		struct gen_params p, q;
		enum gen_format f, g;
		gen_library_item(i, 9, 0, &p, &f);
		gen_library_item(i, 9, 0, &q, &g);
		assert_memory_equal(&p, &q, sizeof(p)); /* deterministic */
		assert_int_equal(f, g);
		seen[p.form][p.material]++;
		fmts[f]++;
		colors[p.color]++;
		assert_true(p.triangles >= 5000 && p.triangles <= 60000);
		if (f == GEN_FMT_STL || f == GEN_FMT_STL_ASCII)
			assert_int_equal(p.color, GEN_COLOR_NONE);
	}
	for (int f = 0; f < GEN_N_FORMS; f++)
		for (int m = 0; m < GEN_N_MATERIALS; m++)
			assert_int_equal(seen[f][m], 1);
	for (int f = 0; f < GEN_N_FORMATS; f++)
		assert_true(fmts[f] > 0);
	for (int c = 0; c < GEN_N_COLORS; c++)
		assert_true(colors[c] > 0);
}

static void test_gen_rigid_keeps_shape_up_to_scale(void **state)
{
	(void)state;
	struct gen_params p = small(GEN_FORM_LIMB, GEN_MAT_SKIN, 4000);
	struct scan a, b;
	make(&p, &a);
	make(&p, &b);
	double R[9], t[3];
	struct err e;
	err_init(&e);
	assert_int_equal(gen_rigid(&b, 5, 1.7, 30.0, R, t, &e), 0);
	/* R is a rotation */
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			double d = 0;
			for (int k = 0; k < 3; k++)
				d += R[3 * i + k] * R[3 * j + k];
			assert_near(d, i == j ? 1.0 : 0.0, 1e-9);
		}
	double det = R[0] * (R[4] * R[8] - R[5] * R[7]) - R[1] * (R[3] * R[8] - R[5] * R[6]) +
		     R[2] * (R[3] * R[7] - R[4] * R[6]);
	assert_near(det, 1.0, 1e-9);
	for (int k = 0; k < 3; k++)
		assert_true(fabs(t[k]) <= 30.0);
	/* distances scale by 1.7, normals keep their angles */
	for (size_t k = 0; k < 200; k++) {
		size_t i = (k * 7919) % a.n_vertices, j = (k * 104729 + 13) % a.n_vertices;
		double da = 0, db = 0, na = 0, nb = 0;
		for (int q = 0; q < 3; q++) {
			double x = (double)a.positions[3 * i + q] - a.positions[3 * j + q];
			double y = (double)b.positions[3 * i + q] - b.positions[3 * j + q];
			da += x * x;
			db += y * y;
			na += (double)a.normals[3 * i + q] * a.normals[3 * j + q];
			nb += (double)b.normals[3 * i + q] * b.normals[3 * j + q];
		}
		assert_near(sqrt(db), 1.7 * sqrt(da), 1e-4 * (1 + sqrt(db)));
		assert_near(nb, na, 1e-5);
	}
	scan_release(&a);
	scan_release(&b);
}

static void test_gen_noise_moves_along_normals_with_sigma(void **state)
{
	(void)state;
	struct gen_params p = small(GEN_FORM_BLOB, GEN_MAT_NONE, 20000);
	struct scan a, b;
	make(&p, &a);
	make(&p, &b);
	struct err e;
	err_init(&e);
	const double sigma = 0.05;
	assert_int_equal(gen_noise(&b, 11, sigma, &e), 0);
	double s1 = 0, s2 = 0, off = 0;
	for (size_t v = 0; v < a.n_vertices; v++) {
		const float *n = a.normals + 3 * v;
		double d[3], along = 0, len2 = 0;
		for (int k = 0; k < 3; k++) {
			d[k] = (double)b.positions[3 * v + k] - a.positions[3 * v + k];
			along += d[k] * n[k];
			len2 += d[k] * d[k];
		}
		s1 += along;
		s2 += along * along;
		off += sqrt(fabs(len2 - along * along));
	}
	double nv = (double)a.n_vertices;
	double mean = s1 / nv, sd = sqrt(s2 / nv - mean * mean);
	assert_true(fabs(mean) < 0.1 * sigma);
	assert_near(sd, sigma, 0.1 * sigma);
	assert_true(off / nv < 1e-3 * sigma + 1e-5); /* only along the normal */
	/* seams move together: still closed */
	size_t once, twice, more;
	edge_census(&b, &once, &twice, &more, NULL);
	assert_int_equal(once, 0);
	assert_int_equal(more, 0);
	scan_release(&a);
	scan_release(&b);
}

/* A roof over [0, 60]^2 mm: two planes meeting at a crease along x = 30. */
static double roof(double x)
{
	return 10 - 0.5 * fabs(x - 30);
}

/*
 * Quadric-error decimation moves no vertex off a piecewise-planar surface,
 * keeps the crease at its height and the outline where it was: what
 * vertex clustering (which averages across the crease and pulls the
 * border in) does not.
 */
static void test_gen_decimate_keeps_planes_creases_and_borders(void **state)
{
	(void)state;
	const size_t n = 61;
	struct scan a, d;
	struct err e;
	err_init(&e);
	scan_init(&a);
	size_t nf = 2 * (n - 1) * (n - 1);
	assert_int_equal(scan_alloc(&a, n * n, nf, 0, &e), 0);
	a.n_vertices = n * n;
	a.n_faces = a.n_polygons = nf;
	a.units = UNITS_MM;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			float *p = a.positions + 3 * (i * n + j);
			p[0] = (float)i;
			p[1] = (float)j;
			p[2] = (float)roof((double)i);
		}
	size_t k = 0;
	for (size_t i = 0; i + 1 < n; i++)
		for (size_t j = 0; j + 1 < n; j++, k += 2) {
			uint32_t v = (uint32_t)(i * n + j), w = (uint32_t)((i + 1) * n + j);
			uint32_t *t = a.indices + 3 * k;
			t[0] = v, t[1] = w, t[2] = w + 1;
			t[3] = v, t[4] = w + 1, t[5] = v + 1;
		}
	assert_int_equal(scan_finalize(&a, &e), 0);
	assert_int_equal(gen_decimate(&a, 4.0, &d, &e), 0);
	double r = (double)d.n_vertices / ((double)a.n_vertices / 4.0);
	assert_true(r > 0.85 && r < 1.15);
	double top = -1;
	for (size_t v = 0; v < d.n_vertices; v++) {
		const float *p = d.positions + 3 * v;
		assert_near(p[2], roof(p[0]), 1e-3);
		top = fmax(top, p[2]);
	}
	assert_near(top, 10.0, 1e-3);
	for (int c = 0; c < 2; c++) {
		assert_near(d.bbox_min[c], 0.0, 1e-3);
		assert_near(d.bbox_max[c], 60.0, 1e-3);
	}
	assert_near(gen_surface_area(&d), gen_surface_area(&a), 1e-3 * gen_surface_area(&a));
	scan_release(&d);

	/* the same roof as a triangle soup (no shared vertex) is welded first */
	struct scan soup;
	scan_init(&soup);
	assert_int_equal(scan_alloc(&soup, 3 * nf, nf, 0, &e), 0);
	soup.n_vertices = 3 * nf;
	soup.n_faces = soup.n_polygons = nf;
	for (size_t c = 0; c < 3 * nf; c++) {
		memcpy(soup.positions + 3 * c, a.positions + 3 * (size_t)a.indices[c],
		       3 * sizeof(float));
		soup.indices[c] = (uint32_t)c;
	}
	assert_int_equal(scan_finalize(&soup, &e), 0);
	assert_int_equal(gen_decimate(&soup, 24.0, &d, &e), 0);
	r = (double)d.n_vertices / ((double)soup.n_vertices / 24.0);
	assert_true(r > 0.85 && r < 1.15);
	assert_near(gen_surface_area(&d), gen_surface_area(&a), 1e-3 * gen_surface_area(&a));
	scan_release(&soup);
	scan_release(&d);
	scan_release(&a);
}

/* Largest and mean displacement of p's tile from the same tile without
 * relief, and the share of vertices displaced by more than thr mm. */
static void relief_of(const struct gen_params *p, double thr, double *max, double *mean,
		      double *share)
{
	struct gen_params q = *p;
	struct scan a, b;
	q.heightmap = NULL;
	q.material = GEN_MAT_NONE;
	make(p, &a);
	make(&q, &b);
	assert_int_equal(a.n_vertices, b.n_vertices);
	double mx = 0, sum = 0;
	size_t over = 0;
	for (size_t i = 0; i < a.n_vertices; i++) {
		double d2 = 0, dot = 0;
		for (int k = 0; k < 3; k++) {
			double d = (double)a.positions[3 * i + k] - b.positions[3 * i + k];
			d2 += d * d;
			dot += d * b.normals[3 * i + k];
		}
		double d = sqrt(d2);
		mx = fmax(mx, d);
		sum += dot;
		over += d > thr;
	}
	*max = mx;
	*mean = sum / (double)a.n_vertices;
	*share = (double)over / (double)a.n_vertices;
	scan_release(&a);
	scan_release(&b);
}

/*
 * A height map's relief: stripes 3 pixels wide (black and white, so
 * +-1/3 after normalising to 3 standard deviations) at 0.133 mm a pixel.
 * A mesh finer than the pixels carries them at full depth; one whose
 * edges span several stripes samples the box-filtered levels and is
 * nearly flat, as a scanner of that resolution would see it.
 */
static void test_gen_heightmap_relief_follows_the_image_and_the_resolution(void **state)
{
	(void)state;
	struct image im;
	image_init(&im);
	im.width = im.height = 60;
	im.rgba = alloc_array(60 * 60, 4);
	assert_non_null(im.rgba);
	for (size_t y = 0; y < 60; y++)
		for (size_t x = 0; x < 60; x++) {
			uint8_t v = (x / 3) % 2 ? 255 : 0;
			uint8_t *c = im.rgba + 4 * (y * 60 + x);
			c[0] = c[1] = c[2] = v;
			c[3] = 255;
		}
	struct gen_heightmap hm;
	struct err e;
	err_init(&e);
	assert_int_equal(gen_heightmap_init(&hm, &im, 8.0, &e), 0);
	assert_true(hm.levels >= 5);
	struct gen_params p = small(GEN_FORM_TILE, GEN_MAT_NONE, 100000);
	p.size_mm = 40;
	p.amplitude_mm = 0.6;
	p.heightmap = &hm;
	double mx, mean, share;
	relief_of(&p, 0.15, &mx, &mean, &share);
	assert_true(mx <= 0.2 + 1e-3 && mx > 0.19);
	assert_true(fabs(mean) < 0.02);
	assert_true(share > 0.1);
	p.triangles = 300;
	relief_of(&p, 0.15, &mx, &mean, &share);
	assert_true(mx < 0.05);
	assert_true(share == 0);

	gen_heightmap_release(&hm);
	/* no pixels, or no width: refused */
	struct image tiny;
	image_init(&tiny);
	assert_int_equal(gen_heightmap_init(&hm, &tiny, 8.0, &e), ERR_FORMAT);
	assert_int_equal(gen_heightmap_init(&hm, &im, 0.0, &e), ERR_FORMAT);
	image_release(&im);
}

static void test_gen_decimate_reduces_by_factor(void **state)
{
	(void)state;
	struct gen_params p = small(GEN_FORM_TORUS, GEN_MAT_KNIT, 40000);
	p.color = GEN_COLOR_VERTEX;
	struct scan a, d;
	make(&p, &a);
	struct err e;
	err_init(&e);
	assert_int_equal(gen_decimate(&a, 4.0, &d, &e), 0);
	double r = (double)d.n_vertices / ((double)a.n_vertices / 4.0);
	assert_true(r > 0.85 && r < 1.15);
	assert_true(d.n_faces > a.n_faces / 6 && d.n_faces < a.n_faces / 2);
	assert_non_null(d.normals);
	assert_non_null(d.colors);
	assert_null(d.uvs);
	for (size_t f = 0; f < d.n_faces; f++) {
		const uint32_t *t = d.indices + 3 * f;
		assert_true(t[0] != t[1] && t[1] != t[2] && t[0] != t[2]);
	}
	/* same object: bounding boxes agree to a couple of cluster sizes */
	for (int k = 0; k < 3; k++) {
		assert_near(d.bbox_min[k], a.bbox_min[k], 6.0);
		assert_near(d.bbox_max[k], a.bbox_max[k], 6.0);
	}
	assert_int_equal(d.units, UNITS_MM);
	scan_release(&a);
	scan_release(&d);
}

static void test_gen_sample_points_is_area_weighted(void **state)
{
	(void)state;
	/* a quad of area 0.625 split into triangles of area 0.125 and 0.5 */
	struct scan s, c;
	struct err e;
	err_init(&e);
	scan_init(&s);
	assert_int_equal(scan_alloc(&s, 4, 2, 0, &e), 0);
	const float pos[12] = { 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0.25f, 0 };
	const uint32_t idx[6] = { 0, 1, 3, 1, 2, 3 };
	memcpy(s.positions, pos, sizeof(pos));
	memcpy(s.indices, idx, sizeof(idx));
	s.n_vertices = 4;
	s.n_faces = 2;
	assert_int_equal(scan_finalize(&s, &e), 0);
	assert_int_equal(gen_sample_points(&s, 20000, 3, &c, &e), 0);
	assert_int_equal(c.n_vertices, 20000);
	assert_int_equal(c.n_faces, 0);
	size_t first = 0;
	for (size_t i = 0; i < c.n_vertices; i++) {
		const float *q = c.positions + 3 * i;
		assert_true(q[0] >= 0 && q[0] <= 1 && q[1] >= 0 && q[1] <= 1);
		assert_true(q[2] == 0);
		assert_near(c.normals[3 * i + 2], 1.0, 1e-6);
		/* below the line from (1,0) to (0,0.25): the small triangle */
		if (q[1] < 0.25 * (1 - q[0]))
			first++;
	}
	assert_near((double)first / 20000.0, 0.125 / 0.625, 0.01);
	scan_release(&s);
	scan_release(&c);
}

static void test_gen_crop_keeps_fraction_and_attributes(void **state)
{
	(void)state;
	struct gen_params p = small(GEN_FORM_BOX, GEN_MAT_LEATHER, 20000);
	p.color = GEN_COLOR_TEXTURE;
	p.texture_px = 32;
	struct scan a, c;
	struct image tex;
	struct err e;
	err_init(&e);
	assert_int_equal(gen_scan(&p, &a, &tex, &e), 0);
	assert_int_equal(gen_crop(&a, 0.4, 8, &c, &e), 0);
	double r = (double)c.n_vertices / (double)a.n_vertices;
	assert_near(r, 0.4, 0.01);
	assert_true(c.n_faces > 0 && c.n_faces < a.n_faces / 2);
	assert_non_null(c.uvs);
	assert_non_null(c.normals);
	assert_int_equal(c.n_textures, 1);
	assert_int_equal(c.materials[0].texture, 0);
	/* every kept vertex is a vertex of the original, with its UV */
	for (size_t v = 0; v < c.n_vertices; v += 97) {
		bool found = false;
		for (size_t w = 0; w < a.n_vertices && !found; w++)
			found = !memcmp(c.positions + 3 * v, a.positions + 3 * w, 12) &&
				!memcmp(c.uvs + 2 * v, a.uvs + 2 * w, 8);
		assert_true(found);
	}
	struct scan all;
	assert_int_equal(gen_crop(&a, 1.0, 8, &all, &e), 0);
	assert_int_equal(all.n_vertices, a.n_vertices);
	assert_int_equal(all.n_faces, a.n_faces);
	scan_release(&a);
	scan_release(&c);
	scan_release(&all);
	image_release(&tex);
}

/*
 * Two 40 mm squares, 10 mm apart along z, each an n x n grid; flip: the
 * second square's triangles wound the other way.
 */
static void two_squares(struct scan *s, bool flip)
{
	const size_t n = 21;
	struct err e;
	err_init(&e);
	scan_init(s);
	size_t nv = 2 * n * n, nf = 4 * (n - 1) * (n - 1);
	assert_int_equal(scan_alloc(s, nv, nf, 0, &e), 0);
	s->n_vertices = nv;
	s->n_faces = s->n_polygons = nf;
	s->units = UNITS_MM;
	size_t k = 0;
	for (size_t q = 0; q < 2; q++) {
		uint32_t base = (uint32_t)(q * n * n);
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < n; j++) {
				float *p = s->positions + 3 * (base + i * n + j);
				p[0] = (float)(2.0 * (double)i);
				p[1] = (float)(2.0 * (double)j);
				p[2] = (float)(10.0 * (double)q);
			}
		for (size_t i = 0; i + 1 < n; i++)
			for (size_t j = 0; j + 1 < n; j++, k += 2) {
				uint32_t v = base + (uint32_t)(i * n + j), w = v + (uint32_t)n;
				uint32_t *t = s->indices + 3 * k;
				t[0] = v, t[1] = w, t[2] = w + 1;
				t[3] = v, t[4] = w + 1, t[5] = v + 1;
				if (flip && q) {
					t[1] = w + 1, t[2] = w;
					t[4] = v + 1, t[5] = w + 1;
				}
			}
	}
	assert_int_equal(scan_finalize(s, &e), 0);
}

/* How many vertices of s lie at height z (mm). */
static size_t at_height(const struct scan *s, float z)
{
	size_t c = 0;
	for (size_t v = 0; v < s->n_vertices; v++)
		c += s->positions[3 * v + 2] == z;
	return c;
}

static void test_gen_view_keeps_what_one_position_sees(void **state)
{
	(void)state;
	struct scan a, v, cloud;
	struct err e;
	err_init(&e);
	/* the nearer square hides the farther one, whatever the winding */
	for (int flip = 0; flip < 2; flip++) {
		two_squares(&a, flip);
		const double down[3] = { 0, 0, 1 }, up[3] = { 0, 0, -2 }, side[3] = { 1, 0, 0 };
		assert_int_equal(gen_view(&a, down, &v, &e), 0);
		assert_int_equal(v.n_faces, a.n_faces / 2);
		assert_int_equal(at_height(&v, 0.0f), v.n_vertices);
		scan_release(&v);
		assert_int_equal(gen_view(&a, up, &v, &e), 0);
		assert_int_equal(v.n_faces, a.n_faces / 2);
		assert_int_equal(at_height(&v, 10.0f), v.n_vertices);
		scan_release(&v);
		/* seen edge-on, a square covers nothing */
		assert_int_equal(gen_view(&a, side, &v, &e), 0);
		assert_int_equal(v.n_faces, 0);
		scan_release(&v);
		/* a slanted view still sees the near square whole, the far one in part */
		const double slant[3] = { 1, 0, 1 };
		assert_int_equal(gen_view(&a, slant, &v, &e), 0);
		size_t near = at_height(&v, 0.0f), far = at_height(&v, 10.0f);
		assert_int_equal(near, 21 * 21);
		assert_true(far > 0 && far < 21 * 21 / 2);
		scan_release(&v);
		/* a cloud of both squares: the points of the near one */
		assert_int_equal(gen_sample_points(&a, 20000, 5, &cloud, &e), 0);
		assert_int_equal(gen_view(&cloud, down, &v, &e), 0);
		assert_int_equal(v.n_faces, 0);
		assert_true(v.n_vertices > 9000 && v.n_vertices < 10000);
		assert_int_equal(at_height(&v, 0.0f), v.n_vertices);
		scan_release(&v);
		scan_release(&cloud);
		scan_release(&a);
	}
	/* a closed form: about the half that faces the viewer, with its attributes */
	struct gen_params p = small(GEN_FORM_BLOB, GEN_MAT_SKIN, 20000);
	p.color = GEN_COLOR_VERTEX;
	make(&p, &a);
	double dir[3];
	gen_direction(11, dir);
	assert_near(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2], 1.0, 1e-12);
	assert_int_equal(gen_view(&a, dir, &v, &e), 0);
	double share = gen_surface_area(&v) / gen_surface_area(&a);
	if (!(share > 0.35 && share < 0.6))
		fail_msg("the view keeps %.3f of the blob's area", share);
	assert_non_null(v.colors);
	assert_non_null(v.normals);
	/* outward normals of what is seen point back towards the viewer */
	size_t away = 0;
	for (size_t i = 0; i < v.n_vertices; i++) {
		const float *n = v.normals + 3 * i;
		away += n[0] * dir[0] + n[1] * dir[1] + n[2] * dir[2] > 0.3;
	}
	if ((double)away > 0.01 * (double)v.n_vertices)
		fail_msg("%zu of %zu seen vertices face away from the viewer", away, v.n_vertices);
	scan_release(&v);
	const double none[3] = { 0, 0, 0 };
	assert_int_equal(gen_view(&a, none, &v, &e), ERR_INTERNAL);
	assert_int_equal(v.n_vertices, 0);
	scan_release(&a);
}

/* Share of a's vertices whose position is also one of b's (b a subset). */
static size_t same_positions(const struct scan *a, const struct scan *b)
{
	size_t c = 0, j = 0;
	/* subsets keep the order of the vertices, so one forward walk finds them */
	for (size_t i = 0; i < a->n_vertices && j < b->n_vertices; i++)
		if (!memcmp(a->positions + 3 * i, b->positions + 3 * j, 3 * sizeof(float))) {
			c++;
			j++;
		}
	return c;
}

static void test_gen_holes_outliers_and_graded_density(void **state)
{
	(void)state;
	struct scan a, h, h2, o, cloud, g, u;
	struct err e;
	err_init(&e);
	struct gen_params p = small(GEN_FORM_BLOB, GEN_MAT_SKIN, 20000);
	p.color = GEN_COLOR_VERTEX;
	make(&p, &a);

	/* holes: about a tenth of the vertices, in five places, nothing stray */
	assert_int_equal(gen_holes(&a, 5, 0.1, 3, &h, &e), 0);
	double kept = (double)h.n_vertices / (double)a.n_vertices;
	if (!(kept > 0.88 && kept < 0.91))
		fail_msg("holes kept %.3f of the vertices", kept);
	assert_int_equal(same_positions(&a, &h), h.n_vertices);
	assert_non_null(h.colors);
	uint8_t *used = test_calloc(h.n_vertices, 1);
	for (size_t f = 0; f < 3 * h.n_faces; f++)
		used[h.indices[f]] = 1;
	size_t stray = 0;
	for (size_t i = 0; i < h.n_vertices; i++)
		stray += !used[i];
	test_free(used);
	assert_int_equal(stray, 0);
	double area = gen_surface_area(&h) / gen_surface_area(&a);
	if (!(area > 0.87 && area < 0.93))
		fail_msg("holes kept %.3f of the area", area);
	/* the same seed cuts the same holes, another seed others */
	assert_int_equal(gen_holes(&a, 5, 0.1, 3, &h2, &e), 0);
	assert_int_equal(h2.n_faces, h.n_faces);
	assert_memory_equal(h2.indices, h.indices, 3 * h.n_faces * sizeof(uint32_t));
	scan_release(&h2);
	assert_int_equal(gen_holes(&a, 5, 0.1, 4, &h2, &e), 0);
	assert_true(h2.n_faces != h.n_faces ||
		    memcmp(h2.indices, h.indices, 3 * h.n_faces * sizeof(uint32_t)));
	scan_release(&h2);
	scan_release(&h);
	/* one hole of a cloud takes the points nearest its centre */
	assert_int_equal(gen_sample_points(&a, 20000, 5, &cloud, &e), 0);
	assert_int_equal(gen_holes(&cloud, 1, 0.25, 3, &h, &e), 0);
	assert_int_equal(h.n_vertices, 15000);
	scan_release(&h);

	/* outliers: one extra triangle per hundred, of the mean size, in the box */
	assert_int_equal(gen_outliers(&a, 0.01, 7, &o, &e), 0);
	size_t extra = (a.n_faces + 99) / 100;
	assert_int_equal(o.n_faces, a.n_faces + extra);
	assert_int_equal(o.n_vertices, a.n_vertices + 3 * extra);
	assert_memory_equal(o.indices, a.indices, 3 * a.n_faces * sizeof(uint32_t));
	assert_memory_equal(o.positions, a.positions, 3 * a.n_vertices * sizeof(float));
	double added = gen_surface_area(&o) - gen_surface_area(&a);
	double share = added / gen_surface_area(&a);
	if (!(share > 0.008 && share < 0.012))
		fail_msg("outliers add %.4f of the area", share);
	size_t far = 0;
	for (size_t i = a.n_vertices; i < o.n_vertices; i++) {
		const float *q = o.positions + 3 * i;
		bool inside = true;
		for (int k = 0; k < 3; k++) {
			double w = (double)a.bbox_max[k] - a.bbox_min[k];
			assert_true(q[k] >= a.bbox_min[k] - 0.11 * w && q[k] <= a.bbox_max[k] + 0.11 * w);
			inside = inside && q[k] >= a.bbox_min[k] && q[k] <= a.bbox_max[k];
		}
		far += !inside;
		const uint8_t *c = o.colors + 4 * i;
		assert_true(c[0] == c[1] && c[1] == c[2]);
	}
	/* uniform in the grown box: 1 - 1/1.2^3 of them outside the box itself */
	if (!(far > 0.3 * 3 * (double)extra && far < 0.55 * 3 * (double)extra))
		fail_msg("%zu of %zu outlier corners outside the bounding box", far, 3 * extra);
	scan_release(&o);
	assert_int_equal(gen_outliers(&cloud, 0.05, 7, &o, &e), 0);
	assert_int_equal(o.n_vertices, 21000);
	assert_int_equal(o.n_faces, 0);
	scan_release(&o);

	/* graded density: ten times denser at one end of gen_direction(seed + 1) */
	assert_int_equal(gen_graded_points(&a, 20000, 10, 9, &g, &e), 0);
	assert_int_equal(g.n_faces, 0);
	if (!(g.n_vertices > 19000 && g.n_vertices < 21000))
		fail_msg("graded cloud of %zu points for 20000", g.n_vertices);
	assert_int_equal(gen_sample_points(&a, 20000, 9, &u, &e), 0);
	double dir[3], lo = HUGE_VAL, hi = -HUGE_VAL;
	gen_direction(10, dir);
	for (size_t i = 0; i < a.n_vertices; i++) {
		const float *q = a.positions + 3 * i;
		double t = dir[0] * q[0] + dir[1] * q[1] + dir[2] * q[2];
		lo = t < lo ? t : lo;
		hi = t > hi ? t : hi;
	}
	size_t n[2][2] = { { 0, 0 }, { 0, 0 } }; /* [graded, uniform][low, high end] */
	const struct scan *c2[2] = { &g, &u };
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < c2[k]->n_vertices; i++) {
			const float *q = c2[k]->positions + 3 * i;
			double t = (dir[0] * q[0] + dir[1] * q[1] + dir[2] * q[2] - lo) / (hi - lo);
			if (t < 0.3)
				n[k][0]++;
			else if (t > 0.7)
				n[k][1]++;
		}
	/* keep 10^-t: the low end is 10^0.7 = 5 times denser than the high end */
	assert_true(n[1][0] > 1000 && n[1][1] > 1000);
	double ratio = ((double)n[0][0] / (double)n[1][0]) / ((double)n[0][1] / (double)n[1][1]);
	if (!(ratio > 3.5 && ratio < 7))
		fail_msg("density ratio %.2f between the ends (%zu/%zu, %zu/%zu)", ratio,
			 n[0][0], n[1][0], n[0][1], n[1][1]);
	scan_release(&g);
	scan_release(&u);

	/* bad parameters */
	assert_int_equal(gen_holes(&a, 0, 0.1, 1, &h, &e), ERR_INTERNAL);
	assert_int_equal(gen_holes(&a, 5, 1.0, 1, &h, &e), ERR_INTERNAL);
	assert_int_equal(gen_outliers(&a, 0, 1, &o, &e), ERR_INTERNAL);
	assert_int_equal(gen_graded_points(&a, 100, 0.5, 1, &g, &e), ERR_INTERNAL);
	assert_int_equal(gen_graded_points(&cloud, 100, 10, 1, &g, &e), ERR_FORMAT);
	scan_release(&cloud);
	scan_release(&a);
}

/*
 * Midpoint subdivision: four times the triangles per level on the same
 * surface (area, volume, closedness), every new vertex the middle of an
 * edge of the original with its UV the middle of theirs.
 */
static void test_gen_subdivide_keeps_the_surface_and_its_attributes(void **state)
{
	(void)state;
	struct gen_params p = small(GEN_FORM_BOX, GEN_MAT_LEATHER, 3000);
	p.color = GEN_COLOR_TEXTURE;
	p.texture_px = 16;
	struct scan a, d, d2, cloud, c2;
	struct image tex;
	struct err e;
	err_init(&e);
	assert_int_equal(gen_scan(&p, &a, &tex, &e), 0);
	assert_non_null(a.uvs);
	assert_int_equal(gen_subdivide(&a, 1, &d, &e), 0);
	assert_int_equal(d.n_faces, 4 * a.n_faces);
	assert_true(d.n_vertices > a.n_vertices + a.n_faces);
	assert_memory_equal(d.positions, a.positions, 3 * a.n_vertices * sizeof(float));
	assert_near(gen_surface_area(&d), gen_surface_area(&a), 1e-5 * gen_surface_area(&a));
	assert_near(signed_volume(&d), signed_volume(&a), 1e-5 * fabs(signed_volume(&a)));
	size_t once, twice, more;
	edge_census(&d, &once, &twice, &more, NULL);
	assert_int_equal(once, 0);
	assert_int_equal(more, 0);
	/* face f's first child: its corner 0, the middles of its edges 0-1 and 2-0 */
	for (size_t f = 0; f < a.n_faces; f += 37) {
		const uint32_t *t = a.indices + 3 * f, *c = d.indices + 12 * f;
		assert_int_equal(c[0], t[0]);
		for (int k = 0; k < 2; k++) {
			uint32_t m = c[1 + k], x = t[0], y = t[k ? 2 : 1];
			for (int q = 0; q < 3; q++)
				assert_near(d.positions[3 * m + q],
					    0.5 * (a.positions[3 * x + q] + a.positions[3 * y + q]), 1e-5);
			for (int q = 0; q < 2; q++)
				assert_near(d.uvs[2 * m + q], 0.5 * (a.uvs[2 * x + q] + a.uvs[2 * y + q]),
					    1e-6);
			assert_near(hypot(hypot(d.normals[3 * m], d.normals[3 * m + 1]),
					  d.normals[3 * m + 2]), 1.0, 1e-5);
		}
	}
	assert_int_equal(d.n_textures, 1);
	assert_int_equal(d.materials[0].texture, 0);
	/* two levels: sixteen times */
	assert_int_equal(gen_subdivide(&a, 2, &d2, &e), 0);
	assert_int_equal(d2.n_faces, 16 * a.n_faces);
	assert_near(gen_surface_area(&d2), gen_surface_area(&a), 1e-5 * gen_surface_area(&a));
	/* a cloud has nothing to split; no level is refused */
	assert_int_equal(gen_sample_points(&a, 500, 3, &cloud, &e), 0);
	assert_int_equal(gen_subdivide(&cloud, 1, &c2, &e), 0);
	assert_int_equal(c2.n_vertices, cloud.n_vertices);
	assert_memory_equal(c2.positions, cloud.positions, 3 * cloud.n_vertices * sizeof(float));
	scan_release(&c2);
	assert_int_equal(gen_subdivide(&a, 0, &c2, &e), ERR_INTERNAL);
	assert_null(c2.positions);
	/* every allocation failing: nothing half made */
	for (long n = 0; n < 40; n++) {
		alloc_fail_after(n);
		int rc = gen_subdivide(&a, 2, &c2, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			scan_release(&c2);
			break;
		}
		assert_int_equal(rc, ERR_NOMEM);
		assert_null(c2.positions);
	}
	scan_release(&a);
	scan_release(&d);
	scan_release(&d2);
	scan_release(&cloud);
	image_release(&tex);
}

/*
 * RMS of how far b's vertices are off a's, along a's normals (a and b of
 * one vertex order): sliding along the surface does not count.
 */
static double rms_between(const struct scan *a, const struct scan *b)
{
	double s = 0;
	for (size_t i = 0; i < a->n_vertices; i++) {
		double d = 0;
		for (size_t q = 0; q < 3; q++)
			d += ((double)b->positions[3 * i + q] - a->positions[3 * i + q]) *
			     a->normals[3 * i + q];
		s += d * d;
	}
	return sqrt(s / (double)a->n_vertices);
}

/*
 * Taubin smoothing takes more than half of a noise a few edges wide off
 * a closed blob and keeps its volume to 0.5 % (the mu steps undo the
 * shrinking of the lambda steps); the mesh stays closed, with unit normals.
 */
static void test_gen_smooth_takes_fine_relief_and_keeps_the_form(void **state)
{
	(void)state;
	struct gen_params p = small(GEN_FORM_BLOB, GEN_MAT_NONE, 20000);
	struct scan clean, noisy;
	struct err e;
	err_init(&e);
	make(&p, &clean);
	make(&p, &noisy);
	double edge = sqrt(4 * gen_surface_area(&clean) / (sqrt(3.0) * (double)clean.n_faces));
	assert_int_equal(gen_noise(&noisy, 5, 0.2 * edge, &e), 0);
	double before = rms_between(&clean, &noisy);
	assert_int_equal(gen_smooth(&noisy, 10, &e), 0);
	double after = rms_between(&clean, &noisy);
	if (!(after < 0.5 * before))
		fail_msg("smoothing left %.4f of %.4f mm", after, before);
	double v0 = signed_volume(&clean), v1 = signed_volume(&noisy);
	if (!(fabs(v1 - v0) < 0.005 * v0))
		fail_msg("volume %.1f, was %.1f", v1, v0);
	size_t once, twice, more;
	edge_census(&noisy, &once, &twice, &more, NULL);
	assert_int_equal(once, 0);
	assert_int_equal(more, 0);
	for (size_t v = 0; v < noisy.n_vertices; v += 101)
		assert_near(hypot(hypot(noisy.normals[3 * v], noisy.normals[3 * v + 1]),
				  noisy.normals[3 * v + 2]), 1.0, 1e-5);
	/* zero iterations change nothing; a negative count is refused */
	struct scan copy;
	make(&p, &copy);
	assert_int_equal(gen_smooth(&copy, 0, &e), 0);
	assert_true(rms_between(&clean, &copy) == 0);
	assert_int_equal(gen_smooth(&copy, -1, &e), ERR_INTERNAL);
	scan_release(&copy);
	scan_release(&clean);
	scan_release(&noisy);
}

/*
 * Turning triangles: all of them turns the mesh inside out (volume and
 * normals negated); a share turns about that share, each face keeping its
 * vertices.
 */
static void test_gen_flip_turns_a_share_of_the_triangles(void **state)
{
	(void)state;
	struct gen_params p = small(GEN_FORM_BLOB, GEN_MAT_NONE, 4000);
	struct scan a, b;
	struct err e;
	err_init(&e);
	make(&p, &a);
	make(&p, &b);
	assert_int_equal(gen_flip(&b, 1.0, 3, &e), 0);
	assert_near(signed_volume(&b), -signed_volume(&a), 1e-6 * fabs(signed_volume(&a)));
	for (size_t v = 0; v < a.n_vertices; v++)
		for (int q = 0; q < 3; q++)
			assert_true(b.normals[3 * v + q] == -a.normals[3 * v + q]);
	scan_release(&b);
	make(&p, &b);
	assert_int_equal(gen_flip(&b, 0.3, 3, &e), 0);
	size_t turned = 0;
	for (size_t f = 0; f < a.n_faces; f++) {
		const uint32_t *x = a.indices + 3 * f, *y = b.indices + 3 * f;
		assert_int_equal(y[0], x[0]);
		if (y[1] == x[2] && y[2] == x[1])
			turned++;
		else
			assert_memory_equal(x, y, 3 * sizeof(uint32_t));
	}
	double share = (double)turned / (double)a.n_faces;
	if (!(share > 0.27 && share < 0.33))
		fail_msg("turned %.3f of the triangles", share);
	for (size_t v = 0; v < b.n_vertices; v += 53)
		assert_near(hypot(hypot(b.normals[3 * v], b.normals[3 * v + 1]),
				  b.normals[3 * v + 2]), 1.0, 1e-5);
	assert_int_equal(gen_flip(&b, 1.5, 3, &e), ERR_INTERNAL);
	scan_release(&a);
	scan_release(&b);
}

static void test_gen_fails_cleanly_when_allocations_fail(void **state)
{
	(void)state;
	struct gen_params p = small(GEN_FORM_BLOB, GEN_MAT_SKIN, 500);
	p.color = GEN_COLOR_TEXTURE;
	p.texture_px = 16;
	int ok = 0;
	for (long n = 0; n < 200 && !ok; n++) {
		struct scan s;
		struct image tex;
		struct err e;
		err_init(&e);
		alloc_fail_after(n);
		int rc = gen_scan(&p, &s, &tex, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			ok = 1;
			scan_release(&s);
			image_release(&tex);
		} else {
			assert_int_equal(rc, ERR_NOMEM);
			assert_int_equal(s.n_vertices, 0);
			assert_null(s.positions);
		}
	}
	assert_true(ok);
}

static void test_gen_rejects_bad_parameters(void **state)
{
	(void)state;
	struct gen_params p = small(GEN_FORM_TILE, GEN_MAT_STONE, 1000);
	struct scan s;
	struct err e;
	err_init(&e);
	p.size_mm = 0;
	assert_int_equal(gen_scan(&p, &s, NULL, &e), ERR_LIMIT);
	p.size_mm = 10;
	p.triangles = 2;
	assert_int_equal(gen_scan(&p, &s, NULL, &e), ERR_LIMIT);
	p.triangles = 100;
	p.color = GEN_COLOR_TEXTURE;
	assert_int_equal(gen_scan(&p, &s, NULL, &e), ERR_INTERNAL);
	assert_int_equal(gen_form_parse("torus"), GEN_FORM_TORUS);
	assert_int_equal(gen_material_parse("hammered"), GEN_MAT_HAMMERED);
	assert_int_equal(gen_format_parse("stl-ascii"), GEN_FMT_STL_ASCII);
	assert_int_equal(gen_material_parse("velvet"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gen_same_seed_gives_identical_scans),
		cmocka_unit_test(test_gen_meets_triangle_target_and_size_for_every_form),
		cmocka_unit_test(test_gen_closed_forms_are_watertight_and_outward),
		cmocka_unit_test(test_gen_open_forms_have_boundary_only_at_the_rim),
		cmocka_unit_test(test_gen_materials_differ_in_scan_statistics),
		cmocka_unit_test(test_gen_relief_scales_with_amplitude_and_band_limits),
		cmocka_unit_test(test_gen_texture_mode_gives_uvs_material_and_image),
		cmocka_unit_test(test_gen_vertex_colours_darken_in_cavities),
		cmocka_unit_test(test_gen_library_plan_covers_every_form_and_material),
		cmocka_unit_test(test_gen_rigid_keeps_shape_up_to_scale),
		cmocka_unit_test(test_gen_noise_moves_along_normals_with_sigma),
		cmocka_unit_test(test_gen_heightmap_relief_follows_the_image_and_the_resolution),
		cmocka_unit_test(test_gen_decimate_reduces_by_factor),
		cmocka_unit_test(test_gen_decimate_keeps_planes_creases_and_borders),
		cmocka_unit_test(test_gen_sample_points_is_area_weighted),
		cmocka_unit_test(test_gen_crop_keeps_fraction_and_attributes),
		cmocka_unit_test(test_gen_view_keeps_what_one_position_sees),
		cmocka_unit_test(test_gen_holes_outliers_and_graded_density),
		cmocka_unit_test(test_gen_subdivide_keeps_the_surface_and_its_attributes),
		cmocka_unit_test(test_gen_smooth_takes_fine_relief_and_keeps_the_form),
		cmocka_unit_test(test_gen_flip_turns_a_share_of_the_triangles),
		cmocka_unit_test(test_gen_fails_cleanly_when_allocations_fail),
		cmocka_unit_test(test_gen_rejects_bad_parameters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
