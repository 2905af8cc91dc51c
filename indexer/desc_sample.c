/*
 * desc_sample.c - prepare a scan for description and draw surface points.
 *
 * Preparation keeps the finite vertices and the faces with positive
 * area, computes the area-weighted centroid and covariance exactly from
 * the triangles (second moments, A/12 (sum v v^T + s s^T)), and sets the
 * normalised frame (centroid at the origin, RMS radius 1).  A cloud uses
 * its finite points with equal weights.
 *
 * Sampling is counter-based: sample i of stream k is a pure function of
 * (seed, k, i), so any thread can draw any sample and the result never
 * depends on the number of threads.  Mesh samples are stratified over the
 * cumulative area (Osada et al. 2002, sec. 4.1); cloud subsets keep the
 * points whose hashed key is below the wanted fraction, so subsets of one
 * cloud are nested.
 *
 * A neighbourhood at radius r needs a given number of points per ball.
 * When a global sample set of that density is affordable it is drawn
 * once and gridded; otherwise (fine radii on large surfaces) points are
 * drawn on demand on the triangles near each centre, at the same density
 * (Poisson-like rejection in the triangle or in the disc where the ball
 * meets the triangle's plane), so a ball's contents are statistically
 * the same either way.
 */
#include "desc_int.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "../formats/image.h"
#include "../formats/scan.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../common/banned.h"

#define CHUNK 65536

int desc_threads(const struct desc_src *src)
{
	int nt = src->threads > 0 ? src->threads : omp_get_max_threads();
	return nt < 1 ? 1 : nt;
}

int desc_pts_alloc(struct desc_pts *p, size_t n, bool colour)
{
	memset(p, 0, sizeof(*p));
	size_t m = n ? n : 1;
	p->pos = alloc_array(m, 3 * sizeof(float));
	p->nrm = alloc_array_zero(m, 3 * sizeof(float));
	p->lab = colour ? alloc_array(m, 3 * sizeof(float)) : NULL;
	if (!p->pos || !p->nrm || (colour && !p->lab)) {
		desc_pts_release(p);
		return ERR_NOMEM;
	}
	p->n = n;
	return 0;
}

void desc_pts_release(struct desc_pts *p)
{
	xfree(p->pos);
	xfree(p->nrm);
	xfree(p->lab);
	xfree(p->id);
	memset(p, 0, sizeof(*p));
}

/* Triangle of face f in the normalised frame. */
static void tri_vertices(const struct desc_src *src, uint32_t f, double a[3],
			 double b[3], double c[3])
{
	const uint32_t *ix = src->s->indices + 3 * (size_t)f;
	desc_vertex(src, ix[0], a);
	desc_vertex(src, ix[1], b);
	desc_vertex(src, ix[2], c);
}

static void cross(const double a[3], const double b[3], double o[3])
{
	o[0] = a[1] * b[2] - a[2] * b[1];
	o[1] = a[2] * b[0] - a[0] * b[2];
	o[2] = a[0] * b[1] - a[1] * b[0];
}

static double dot(const double a[3], const double b[3])
{
	return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

/* Tests only: 0 makes clouds weigh their points equally (desc_int.h). */
static int no_cloud_weights;

int desc_test_cloud_weights(int on)
{
	int old = !no_cloud_weights;
	no_cloud_weights = !on;
	return old;
}

/* Index of the first cdf entry > t. */
static size_t cdf_find(const double *cdf, size_t n, double t)
{
	size_t lo = 0, hi = n - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cdf[mid] > t)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Per-chunk moments, combined in chunk order for determinism. */
struct moments {
	double w, m[3], mm[6];
	size_t n_valid, n_bad;
};

static void moments_add(struct moments *acc, const struct moments *c)
{
	acc->w += c->w;
	for (int k = 0; k < 3; k++)
		acc->m[k] += c->m[k];
	for (int k = 0; k < 6; k++)
		acc->mm[k] += c->mm[k];
	acc->n_valid += c->n_valid;
	acc->n_bad += c->n_bad;
}

static void outer_add(double mm[6], const double v[3], double w)
{
	mm[0] += w * v[0] * v[0];
	mm[1] += w * v[0] * v[1];
	mm[2] += w * v[0] * v[2];
	mm[3] += w * v[1] * v[1];
	mm[4] += w * v[1] * v[2];
	mm[5] += w * v[2] * v[2];
}

/* Face area in model units relative to ref, or 0 when unusable. */
static double face_area(const struct scan *s, size_t f, const double ref[3],
			double v[3][3], bool *bad)
{
	const uint32_t *ix = s->indices + 3 * f;
	*bad = false;
	for (int k = 0; k < 3; k++) {
		if (ix[k] >= s->n_vertices || !scan_vertex_finite(s, ix[k])) {
			*bad = true;
			return 0;
		}
		const float *p = s->positions + 3 * (size_t)ix[k];
		for (int j = 0; j < 3; j++)
			v[k][j] = (double)p[j] - ref[j];
	}
	double e1[3], e2[3], n[3];
	for (int j = 0; j < 3; j++) {
		e1[j] = v[1][j] - v[0][j];
		e2[j] = v[2][j] - v[0][j];
	}
	cross(e1, e2, n);
	double a = 0.5 * sqrt(dot(n, n));
	return isfinite(a) ? a : 0;
}

static uint32_t uf_find(uint32_t *parent, uint32_t x)
{
	while (parent[x] != x) {
		parent[x] = parent[parent[x]];
		x = parent[x];
	}
	return x;
}

/*
 * Specks: the connected pieces of a mesh (faces joined by shared vertices)
 * with at most a thousandth of its faces, as a scanner leaves around what
 * it scanned (dust, bits of the turntable, stray reflections meshed into a
 * few triangles).  Left in, a speck floating near the surface is measured
 * as relief by every fit whose ball it enters.  They are left out when all
 * of them together hold at most DESC_SPECK_SHARE of the faces; otherwise
 * the small pieces are what the scan is (gravel, a soup of unwelded
 * triangles) and every face stays.  Returns the face mask (1: speck) or
 * NULL when nothing is left out; sets src->n_specks (faces left out),
 * src->speck_v (the vertex mask) and src->n_speck_v.
 */
static uint8_t *find_specks(struct desc_src *src)
{
	const struct scan *s = src->s;
	size_t nv = s->n_vertices, nf = s->n_faces;
	if (nf < 1000 || nv > UINT32_MAX)
		return NULL;
	uint32_t *parent = alloc_array(nv, sizeof(uint32_t));
	uint32_t *count = alloc_array_zero(nv, sizeof(uint32_t));
	uint8_t *mask = NULL;
	if (!parent || !count)
		goto out;
	for (size_t v = 0; v < nv; v++)
		parent[v] = (uint32_t)v;
	for (size_t f = 0; f < nf; f++) {
		const uint32_t *ix = s->indices + 3 * f;
		uint32_t a = uf_find(parent, ix[0]);
		for (int k = 1; k < 3; k++) {
			uint32_t b = uf_find(parent, ix[k]);
			if (a != b)
				parent[b] = a;
		}
	}
	for (size_t f = 0; f < nf; f++)
		count[uf_find(parent, s->indices[3 * f])]++;
	size_t small = nf / 1000, n = 0;
	for (size_t v = 0; v < nv; v++)
		if (count[v] && count[v] <= small)
			n += count[v];
	/* none, or so many that the small pieces are the scan */
	if (!n || (double)n > DESC_SPECK_SHARE * (double)nf)
		goto out;
	mask = alloc_array(nf, 1);
	src->speck_v = alloc_array(nv, 1);
	if (!mask || !src->speck_v) {
		xfree(mask);
		xfree(src->speck_v);
		mask = src->speck_v = NULL;
		goto out;
	}
	for (size_t f = 0; f < nf; f++) {
		uint32_t r = uf_find(parent, s->indices[3 * f]);
		mask[f] = count[r] <= small;
	}
	for (size_t v = 0; v < nv; v++) {
		uint32_t r = uf_find(parent, (uint32_t)v);
		src->speck_v[v] = count[r] && count[r] <= small;
		src->n_speck_v += src->speck_v[v];
	}
	src->n_specks = n;
out:
	xfree(parent);
	xfree(count);
	return mask;
}

static int prepare_mesh(struct desc_src *src, const double ref[3],
			struct moments *tot, struct err *e)
{
	const struct scan *s = src->s;
	size_t nf = s->n_faces;
	uint8_t *speck = find_specks(src);
	size_t n_chunks = (nf + CHUNK - 1) / CHUNK;
	struct moments *cm = alloc_array_zero(n_chunks ? n_chunks : 1, sizeof(*cm));
	double *area = alloc_array(nf ? nf : 1, sizeof(double));
	if (!cm || !area) {
		xfree(cm);
		xfree(area);
		xfree(speck);
		return err_set(e, ERR_NOMEM, "out of memory preparing %zu faces", nf);
	}
	int nt = desc_threads(src);
	#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
	for (size_t c = 0; c < n_chunks; c++) {
		size_t lo = c * CHUNK, hi = lo + CHUNK < nf ? lo + CHUNK : nf;
		struct moments m;
		memset(&m, 0, sizeof(m));
		for (size_t f = lo; f < hi; f++) {
			double v[3][3];
			bool bad;
			double a = face_area(s, f, ref, v, &bad);
			if (speck && speck[f])
				a = 0;
			area[f] = a > 0 ? a : 0;
			if (bad)
				m.n_bad++;
			if (!(a > 0))
				continue;
			m.n_valid++;
			double sum[3];
			for (int j = 0; j < 3; j++)
				sum[j] = v[0][j] + v[1][j] + v[2][j];
			m.w += a;
			for (int j = 0; j < 3; j++)
				m.m[j] += a * sum[j] / 3.0;
			double q[6] = { 0 };
			for (int k = 0; k < 3; k++)
				outer_add(q, v[k], 1.0);
			outer_add(q, sum, 1.0);
			for (int j = 0; j < 6; j++)
				m.mm[j] += a * q[j] / 12.0;
		}
		cm[c] = m;
	}
	memset(tot, 0, sizeof(*tot));
	for (size_t c = 0; c < n_chunks; c++)
		moments_add(tot, &cm[c]);
	xfree(cm);
	xfree(speck);
	if (!tot->n_valid || !(tot->w > 0)) {
		xfree(area);
		return 0;
	}
	src->tri = alloc_array(tot->n_valid, sizeof(uint32_t));
	src->cdf = alloc_array(tot->n_valid, sizeof(double));
	if (!src->tri || !src->cdf) {
		xfree(area);
		return err_set(e, ERR_NOMEM, "out of memory preparing %zu faces", nf);
	}
	/* serial compaction and prefix sum: one ordered pass */
	size_t k = 0;
	double acc = 0;
	for (size_t f = 0; f < nf; f++) {
		if (!(area[f] > 0))
			continue;
		acc += area[f];
		src->tri[k] = (uint32_t)f;
		src->cdf[k] = acc;
		k++;
	}
	src->n_tris = k;
	xfree(area);
	return 0;
}

static void prepare_cloud_moments(const struct scan *s, const double ref[3],
				  const float *wv, struct moments *tot, int nt)
{
	size_t nv = s->n_vertices;
	size_t n_chunks = (nv + CHUNK - 1) / CHUNK;
	memset(tot, 0, sizeof(*tot));
	struct moments local[64];
	/* fixed groups of chunks so the summation order never changes */
	for (size_t base = 0; base < n_chunks; base += 64) {
		size_t cnt = n_chunks - base < 64 ? n_chunks - base : 64;
		#pragma omp parallel for num_threads(nt)
		for (size_t c = 0; c < cnt; c++) {
			size_t lo = (base + c) * CHUNK;
			size_t hi = lo + CHUNK < nv ? lo + CHUNK : nv;
			struct moments m;
			memset(&m, 0, sizeof(m));
			for (size_t i = lo; i < hi; i++) {
				if (!scan_vertex_finite(s, i))
					continue;
				const float *p = s->positions + 3 * i;
				double v[3] = { p[0] - ref[0], p[1] - ref[1], p[2] - ref[2] };
				double w = wv ? (double)wv[i] : 1.0;
				m.n_valid++;
				m.w += w;
				for (int j = 0; j < 3; j++)
					m.m[j] += w * v[j];
				outer_add(m.mm, v, w);
			}
			local[c] = m;
		}
		for (size_t c = 0; c < cnt; c++)
			moments_add(tot, &local[c]);
	}
}


/*
 * About the median of the positive values of v[0..n): the centre of the
 * bin of a 4096-bin histogram of log2 v where half the count is reached
 * (within 4 % of the true median, in linear time: a scale, not a
 * statistic).  0 when none is positive.
 */
static double median_about(const float *v, size_t n)
{
	enum { BINS = 4096 };
	const double lo = -200, hi = 200; /* log2 range of floats, generously */
	size_t *cnt = alloc_array_zero(BINS, sizeof(size_t)), tot = 0;
	if (!cnt)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!(v[i] > 0))
			continue;
		double b = (log2((double)v[i]) - lo) / (hi - lo) * BINS;
		size_t k = b < 0 ? 0 : b >= BINS ? BINS - 1 : (size_t)b;
		cnt[k]++;
		tot++;
	}
	double m = 0;
	for (size_t k = 0, acc = 0; k < BINS && tot; k++) {
		acc += cnt[k];
		if (2 * acc >= tot) {
			m = exp2(lo + ((double)k + 0.5) * (hi - lo) / BINS);
			break;
		}
	}
	xfree(cnt);
	return m;
}

/*
 * Area weights of a cloud's points.  A scanner samples what is near it and
 * faces it more densely than what is far or oblique, so a cloud weighing
 * its points equally over-counts the dense side in every distribution.
 * Each point stands for the area around it: a_i = d_k(i)^2, d_k the
 * distance to its DESC_AREA_K-th nearest point (a disc of that radius
 * holds about k points), and w_i = the median of a over i and its k
 * nearest points, so that a stray point floating off the surface, whose
 * own d_k is large, takes the weight of the surface points around it.
 * Weights are kept within DESC_AREA_CLAMP times their median either way
 * (coincident points have no area of their own) and scaled to mean 1.  Returned per vertex of s (0 for non-finite
 * ones), or NULL with *rc = 0 when the cloud is too large to weigh
 * (DESC_AREA_MAX_PTS): its points then count equally.
 */
static float *cloud_weights(const struct scan *s, const double ref[3], double rms,
			    size_t n_finite, int nt, int *rc, struct err *e)
{
	enum { K = DESC_AREA_K, MAX_RING = 6 };
	*rc = 0;
	if (n_finite < 2 * K || n_finite > DESC_AREA_MAX_PTS)
		return NULL;
	size_t nv = s->n_vertices, n = 0;
	float *pos = alloc_array(n_finite, 3 * sizeof(float));
	uint32_t *vid = alloc_array(n_finite, sizeof(uint32_t));
	uint32_t *nbr = alloc_array(n_finite, K * sizeof(uint32_t));
	float *a = alloc_array(n_finite, sizeof(float));
	float *w = alloc_array_zero(nv, sizeof(float));
	struct desc_grid g;
	memset(&g, 0, sizeof(g));
	if (!pos || !vid || !nbr || !a || !w) {
		*rc = err_set(e, ERR_NOMEM, "out of memory weighing %zu points", n_finite);
		goto fail;
	}
	for (size_t i = 0; i < nv; i++) {
		if (!scan_vertex_finite(s, i))
			continue;
		for (int k = 0; k < 3; k++)
			pos[3 * n + (size_t)k] = (float)((double)s->positions[3 * i + (size_t)k] - ref[k]);
		vid[n++] = (uint32_t)i;
	}
	/*
	 * Cells of about three spacings of a closed surface of this RMS
	 * radius: the k nearest then lie within one ring of cells, 27 lookups
	 * (each a cache miss in a large cloud) for about a hundred points.
	 */
	double h = DESC_AREA_CELL * rms * sqrt(2 * M_PI / (double)n);
	if (!(h > 0) || (*rc = desc_grid_points(&g, pos, n, h, nt, e)) < 0)
		goto fail;
	/*
	 * Positions in grid order, and points visited in grid order: a cell's
	 * candidates are then read from consecutive memory, and neighbouring
	 * queries find them in cache (a cloud's file order is often random).
	 */
	float *spos = alloc_array(n, 3 * sizeof(float));
	if (!spos) {
		*rc = err_set(e, ERR_NOMEM, "out of memory weighing %zu points", n);
		goto fail;
	}
	for (size_t t = 0; t < n; t++)
		memcpy(spos + 3 * t, pos + 3 * (size_t)g.items[t], 3 * sizeof(float));
	#pragma omp parallel for num_threads(nt) schedule(dynamic, 1024)
	for (size_t t0 = 0; t0 < n; t0++) {
		size_t i = g.items[t0];
		const float *p = spos + 3 * t0;
		int32_t c[3];
		for (int k = 0; k < 3; k++)
			c[k] = desc_cell(p[k], g.inv_h);
		float best[K];
		uint32_t bi[K];
		int nb = 0;
		for (int ring = 0; ring <= MAX_RING; ring++) {
			for (int dx = -ring; dx <= ring; dx++)
			for (int dy = -ring; dy <= ring; dy++)
			for (int dz = -ring; dz <= ring; dz++) {
				int m = abs(dx) > abs(dy) ? abs(dx) : abs(dy);
				m = abs(dz) > m ? abs(dz) : m;
				if (m != ring)
					continue;
				int32_t x = c[0] + dx, y = c[1] + dy, z = c[2] + dz;
				uint32_t b = desc_bucket(&g, desc_cell_key(x, y, z));
				for (uint32_t t = g.start[b]; t < g.start[b + 1]; t++) {
					const float *q = spos + 3 * (size_t)t;
					float d0 = q[0] - p[0], d1 = q[1] - p[1], d2 = q[2] - p[2];
					float d = d0 * d0 + d1 * d1 + d2 * d2;
					if (nb == K && !(d < best[K - 1]))
						continue;
					uint32_t j = g.items[t];
					if (j == (uint32_t)i || desc_cell(q[0], g.inv_h) != x ||
					    desc_cell(q[1], g.inv_h) != y || desc_cell(q[2], g.inv_h) != z)
						continue;
					/* insertion into the sorted k best (ties: lower index first) */
					int at = nb < K ? nb++ : K - 1;
					while (at > 0 && (best[at - 1] > d ||
							  (best[at - 1] == d && bi[at - 1] > j))) {
						best[at] = best[at - 1];
						bi[at] = bi[at - 1];
						at--;
					}
					best[at] = d;
					bi[at] = j;
				}
			}
			/* every point within ring cells of p has been seen */
			double reach = ring * h;
			if (nb == K && (double)best[K - 1] <= reach * reach)
				break;
		}
		double far = (double)MAX_RING * h;
		a[i] = nb == K ? best[K - 1] : (float)(far * far);
		for (int k = 0; k < K; k++)
			nbr[K * i + (size_t)k] = k < nb ? bi[k] : (uint32_t)i;
	}
	xfree(spos);
	/* the median over each point and its neighbours; then their median */
	float *med = alloc_array(n, sizeof(float));
	if (!med) {
		*rc = err_set(e, ERR_NOMEM, "out of memory weighing %zu points", n);
		goto fail;
	}
	#pragma omp parallel for num_threads(nt) schedule(static)
	for (size_t i = 0; i < n; i++) {
		float v[K + 1];
		v[0] = a[i];
		for (int k = 0; k < K; k++)
			v[k + 1] = a[nbr[K * i + (size_t)k]];
		for (int x = 1; x <= K; x++) /* insertion sort of 9 */
			for (int y = x; y > 0 && v[y - 1] > v[y]; y--) {
				float t = v[y];
				v[y] = v[y - 1];
				v[y - 1] = t;
			}
		med[i] = v[K / 2];
	}
	memcpy(a, med, n * sizeof(float));
	xfree(med);
	double typ = median_about(a, n);
	double sum = 0;
	for (size_t i = 0; i < n; i++) {
		double x = typ > 0 ? (double)a[i] / typ : 1;
		x = x < 1 / DESC_AREA_CLAMP ? 1 / DESC_AREA_CLAMP : x > DESC_AREA_CLAMP ? DESC_AREA_CLAMP : x;
		w[vid[i]] = (float)x;
		sum += x;
	}
	for (size_t i = 0; i < nv; i++)
		w[i] = (float)((double)w[i] * (double)n / sum);
	desc_grid_release(&g);
	xfree(pos);
	xfree(vid);
	xfree(nbr);
	xfree(a);
	return w;
fail:
	desc_grid_release(&g);
	xfree(pos);
	xfree(vid);
	xfree(nbr);
	xfree(a);
	xfree(w);
	return NULL;
}

int desc_src_init(struct desc_src *src, const struct scan *s,
		  const struct describe_opts *o, struct desc_info *info,
		  struct err *e)
{
	memset(src, 0, sizeof(*src));
	src->s = s;
	src->seed = o->seed;
	src->threads = o->threads;
	src->tex = o->textures;
	src->n_tex = o->textures ? o->n_textures : 0;
	src->orient = 1;

	size_t n_finite = 0;
	double ref[3] = { 0, 0, 0 };
	for (size_t i = 0; i < s->n_vertices; i++) {
		if (scan_vertex_finite(s, i)) {
			if (!n_finite)
				for (int k = 0; k < 3; k++)
					ref[k] = s->positions[3 * i + (size_t)k];
			n_finite++;
		}
	}
	info->n_points = n_finite;
	info->n_skipped = s->n_vertices - n_finite;
	if (s->n_vertices > UINT32_MAX)
		return err_set(e, ERR_LIMIT, "too many vertices to describe (%zu)", s->n_vertices);

	struct moments tot;
	memset(&tot, 0, sizeof(tot));
	if (s->n_faces && s->indices) {
		int rc = prepare_mesh(src, ref, &tot, e);
		if (rc < 0)
			return rc;
		info->n_skipped += tot.n_bad;
	}
	if (src->n_tris) {
		src->mesh = true;
		info->n_faces = src->n_tris;
	} else {
		if (n_finite < DESC_MIN_POINTS)
			return err_set(e, ERR_UNDESCRIBABLE,
				       "%zu usable point%s, a descriptor needs %d",
				       n_finite, n_finite == 1 ? "" : "s", DESC_MIN_POINTS);
		prepare_cloud_moments(s, ref, NULL, &tot, desc_threads(src));
		info->flags |= DESC_POINT_CLOUD;
		double var0 = (tot.mm[0] + tot.mm[3] + tot.mm[5]) / tot.w -
			      (tot.m[0] * tot.m[0] + tot.m[1] * tot.m[1] + tot.m[2] * tot.m[2]) /
			      (tot.w * tot.w);
		int rc = 0;
		if (var0 > 0 && isfinite(var0) && !no_cloud_weights)
			src->wv = cloud_weights(s, ref, sqrt(var0), n_finite, desc_threads(src), &rc, e);
		if (rc < 0)
			return rc;
		if (src->wv)
			prepare_cloud_moments(s, ref, src->wv, &tot, desc_threads(src));
	}
	double mean[3], cov[6];
	for (int k = 0; k < 3; k++)
		mean[k] = tot.m[k] / tot.w;
	cov[0] = tot.mm[0] / tot.w - mean[0] * mean[0];
	cov[1] = tot.mm[1] / tot.w - mean[0] * mean[1];
	cov[2] = tot.mm[2] / tot.w - mean[0] * mean[2];
	cov[3] = tot.mm[3] / tot.w - mean[1] * mean[1];
	cov[4] = tot.mm[4] / tot.w - mean[1] * mean[2];
	cov[5] = tot.mm[5] / tot.w - mean[2] * mean[2];
	double var = cov[0] + cov[3] + cov[5];
	double mag = fabs(ref[0]) + fabs(ref[1]) + fabs(ref[2]) + sqrt(fabs(var));
	if (!isfinite(var) || !isfinite(mag))
		return err_set(e, ERR_UNDESCRIBABLE, "coordinates too large to describe");
	/* float positions carry ~1e-7 relative precision: below that, no extent */
	if (!(var > 0) || sqrt(var) <= 1e-6 * mag)
		return err_set(e, ERR_UNDESCRIBABLE, "no extent: all %zu points coincide",
			       n_finite);
	for (int k = 0; k < 3; k++)
		src->centre[k] = ref[k] + mean[k];
	src->scale = sqrt(var);
	src->inv_scale = 1.0 / src->scale;
	double s2 = src->inv_scale * src->inv_scale;
	for (int k = 0; k < 6; k++)
		src->cov[k] = cov[k] * s2;

	if (src->mesh) {
		src->area = tot.w * s2;
		double acc = 0, f = s2;
		for (size_t i = 0; i < src->n_tris; i++)
			src->cdf[i] *= f;
		src->area = src->cdf[src->n_tris - 1];
		/*
		 * Signed volume about the centroid, against the volume A R / 3
		 * of a sphere of the same area: clearly negative means the
		 * winding faces inwards.  An open sheet (a tile, a saddle) has
		 * about none, and then the file's winding is kept.
		 */
		for (size_t i = 0; i < src->n_tris; i++) {
			double a[3], b[3], c[3], n[3];
			tri_vertices(src, src->tri[i], a, b, c);
			cross(b, c, n);
			acc += dot(a, n) / 6;
		}
		src->orient = acc < -0.05 * src->area / 3 ? -1.0f : 1.0f;
		/*
		 * Sampling resolution: the area per vertex, as for a cloud, so a
		 * mesh and a cloud of its vertices agree (a median triangle size
		 * would follow the big flat triangles of CAD-like meshes).
		 */
		size_t nvs = n_finite - (src->n_speck_v < n_finite ? src->n_speck_v : 0);
		src->spacing = sqrt(src->area / (double)(nvs ? nvs : 1));
	} else {
		src->n_pts = n_finite;
		src->pt = alloc_array(n_finite, sizeof(uint32_t));
		src->key = alloc_array(n_finite, sizeof(float));
		if (!src->pt || !src->key)
			return err_set(e, ERR_NOMEM, "out of memory preparing %zu points", n_finite);
		size_t k = 0;
		for (size_t i = 0; i < s->n_vertices; i++) {
			if (!scan_vertex_finite(s, i))
				continue;
			src->pt[k] = (uint32_t)i;
			src->key[k] = (float)desc_u01(desc_hash(src->seed, DS_CLOUD, i));
			k++;
		}
		if (src->wv) {
			/* weighted clouds are sampled like triangles: by cumulative weight */
			src->cdf = alloc_array(n_finite, sizeof(double));
			if (!src->cdf)
				return err_set(e, ERR_NOMEM, "out of memory preparing %zu points", n_finite);
			double acc = 0;
			for (size_t j = 0; j < n_finite; j++) {
				acc += (double)src->wv[src->pt[j]];
				src->cdf[j] = acc;
			}
		}
		src->cloud_normals = s->normals != NULL;
		if (!src->cloud_normals)
			info->flags |= DESC_NORMALS_GUESSED;
	}

	/* colour sources */
	bool tex_ok = false;
	if (src->mesh && (s->corner_uvs || s->uvs) && s->n_textures) {
		/* the textures the faces use, by the rule of desc_face_texture */
		bool *used = alloc_array_zero(s->n_textures, sizeof(bool));
		if (!used)
			return err_set(e, ERR_NOMEM, "out of memory");
		if (s->face_material) {
			for (size_t m = 0; m < s->n_materials; m++)
				if (s->materials[m].texture >= 0 &&
				    (size_t)s->materials[m].texture < s->n_textures)
					used[s->materials[m].texture] = true;
		} else {
			int32_t t = desc_face_texture(s, 0);
			if (t >= 0)
				used[t] = true;
		}
		for (size_t t = 0; t < s->n_textures; t++) {
			if (!used[t])
				continue;
			if (t < src->n_tex && src->tex[t].rgba)
				tex_ok = true;
			else
				info->flags |= DESC_TEXTURE_MISSING;
		}
		xfree(used);
	}
	src->colour = s->colors != NULL || (src->mesh && s->face_colors) || tex_ok;

	double mpu = o->mm_per_unit > 0 ? o->mm_per_unit : scan_units_mm(s->units);
	if (mpu > 0 && isfinite(mpu)) {
		src->units = true;
		src->mm_per_unit = mpu;
	}
	return 0;
}

void desc_src_release(struct desc_src *src)
{
	xfree(src->tri);
	xfree(src->cdf);
	xfree(src->speck_v);
	xfree(src->wv);
	xfree(src->pt);
	xfree(src->key);
	memset(src, 0, sizeof(*src));
}

static void cloud_normal(const struct desc_src *src, uint32_t v, float out[3])
{
	out[0] = out[1] = out[2] = 0;
	if (!src->cloud_normals)
		return;
	const float *n = src->s->normals + 3 * (size_t)v;
	double l = sqrt((double)n[0] * n[0] + (double)n[1] * n[1] + (double)n[2] * n[2]);
	if (!(l > 0) || !isfinite(l))
		return;
	for (int k = 0; k < 3; k++)
		out[k] = (float)(n[k] / l);
}

/* n samples of a cloud, with the vertex id of each. */
static int cloud_pts_alloc(struct desc_pts *out, size_t n, bool colour, struct err *e)
{
	if (desc_pts_alloc(out, n, colour) < 0)
		return err_set(e, ERR_NOMEM, "out of memory sampling %zu points", n);
	out->id = alloc_array(n ? n : 1, sizeof(uint32_t));
	if (!out->id) {
		desc_pts_release(out);
		return err_set(e, ERR_NOMEM, "out of memory sampling %zu points", n);
	}
	return 0;
}

/* Cloud vertex v as sample k of out: position, normal, colour, id. */
static void put_cloud_point(const struct desc_src *src, uint32_t v, bool colour,
			    struct desc_pts *out, size_t k)
{
	double p[3];
	desc_vertex(src, v, p);
	for (int j = 0; j < 3; j++)
		out->pos[3 * k + j] = (float)p[j];
	cloud_normal(src, v, out->nrm + 3 * k);
	if (colour && !desc_vertex_colour(src, v, out->lab + 3 * k))
		out->lab[3 * k] = out->lab[3 * k + 1] = out->lab[3 * k + 2] = NAN;
	out->id[k] = v;
}

/*
 * n points of a weighted cloud, stratified over the cumulative weights as
 * mesh samples are over the cumulative area: sample i is the point where
 * the cumulative weight crosses (i + u_i) / n of the total, so a point
 * weighing twice the mean is drawn about twice per n / N samples (and at
 * least once in a row of n >= N / its share).
 */
static int sample_weighted_cloud(const struct desc_src *src, size_t n, uint64_t stream,
				 bool colour, struct desc_pts *out, struct err *e)
{
	int rc = cloud_pts_alloc(out, n, colour, e);
	if (rc < 0)
		return rc;
	double total = src->cdf[src->n_pts - 1];
	const size_t blk = 4096;
	size_t n_blk = (n + blk - 1) / blk;
	#pragma omp parallel for num_threads(desc_threads(src)) schedule(dynamic, 1)
	for (size_t bi = 0; bi < n_blk; bi++) {
		size_t lo = bi * blk, hi = lo + blk < n ? lo + blk : n, j = 0;
		for (size_t i = lo; i < hi; i++) {
			double t = ((double)i + desc_u01(desc_hash(src->seed, stream, i))) /
				   (double)n * total;
			if (i == lo)
				j = cdf_find(src->cdf, src->n_pts, t);
			while (j + 1 < src->n_pts && !(src->cdf[j] > t))
				j++;
			put_cloud_point(src, src->pt[j], colour, out, i);
		}
	}
	return 0;
}

int desc_sample(const struct desc_src *src, size_t n, uint64_t stream,
		bool colour, struct desc_pts *out, struct err *e)
{
	colour = colour && src->colour;
	if (src->mesh) {
		if (desc_pts_alloc(out, n, colour) < 0)
			return err_set(e, ERR_NOMEM, "out of memory sampling %zu points", n);
		int nt = desc_threads(src);
		double total = src->area;
		/*
		 * Stratified targets grow with i, so within a block of samples
		 * the face is found by walking the CDF forward from the previous
		 * one (the same face a binary search would find).
		 */
		const size_t blk = 4096;
		size_t n_blk = (n + blk - 1) / blk;
		#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
		for (size_t bi = 0; bi < n_blk; bi++) {
			size_t lo = bi * blk, hi = lo + blk < n ? lo + blk : n, j = 0;
			for (size_t i = lo; i < hi; i++) {
				uint64_t h = desc_hash(src->seed, stream, i);
				double t = ((double)i + desc_u01(h)) / (double)n * total;
				if (i == lo)
					j = cdf_find(src->cdf, src->n_tris, t);
				while (j + 1 < src->n_tris && !(src->cdf[j] > t))
					j++;
				uint32_t f = src->tri[j];
				double u1 = desc_u01(desc_mix(h ^ 0x1234567ull));
				double u2 = desc_u01(desc_mix(h ^ 0x89abcdefull));
				double sq = sqrt(u1), b1 = sq * (1 - u2), b2 = sq * u2;
				double a[3], b[3], c[3], e1[3], e2[3], nn[3];
				tri_vertices(src, f, a, b, c);
				for (int k = 0; k < 3; k++) {
					e1[k] = b[k] - a[k];
					e2[k] = c[k] - a[k];
					out->pos[3 * i + k] = (float)(a[k] + b1 * e1[k] + b2 * e2[k]);
				}
				cross(e1, e2, nn);
				double l = sqrt(dot(nn, nn));
				double inv = l > 0 ? src->orient / l : 0;
				for (int k = 0; k < 3; k++)
					out->nrm[3 * i + k] = (float)(nn[k] * inv);
				if (colour && !desc_face_colour(src, f, b1, b2, out->lab + 3 * i))
					out->lab[3 * i] = out->lab[3 * i + 1] = out->lab[3 * i + 2] = NAN;
			}
		}
		return 0;
	}
	if (src->cdf)
		return sample_weighted_cloud(src, n, stream, colour, out, e);
	/* cloud: keep points whose key is below the fraction */
	double frac = src->n_pts ? (double)n / (double)src->n_pts : 1;
	size_t m = 0;
	for (size_t i = 0; i < src->n_pts; i++)
		if (frac >= 1 || src->key[i] < frac)
			m++;
	int rc = cloud_pts_alloc(out, m, colour, e);
	if (rc < 0)
		return rc;
	size_t k = 0;
	for (size_t i = 0; i < src->n_pts; i++) {
		if (!(frac >= 1 || src->key[i] < frac))
			continue;
		put_cloud_point(src, src->pt[i], colour, out, k++);
	}
	return 0;
}

/* ---- neighbourhoods ---- */

int desc_gather_alloc(struct desc_gather *g, size_t cap)
{
	memset(g, 0, sizeof(*g));
	g->p = alloc_array(cap, 3 * sizeof(double));
	g->nrm = alloc_array(cap, 3 * sizeof(float));
	g->lab = alloc_array(cap, 3 * sizeof(float));
	if (!g->p || !g->nrm || !g->lab) {
		desc_gather_release(g);
		return ERR_NOMEM;
	}
	g->cap = cap;
	return 0;
}

void desc_gather_release(struct desc_gather *g)
{
	xfree(g->p);
	xfree(g->nrm);
	xfree(g->lab);
	memset(g, 0, sizeof(*g));
}

static int force_sampler;

int desc_test_force_sampler(int mode)
{
	int old = force_sampler;
	force_sampler = mode;
	return old;
}

int desc_nbhd_init(struct desc_nbhd *nb, const struct desc_src *src, double r,
		   double target, uint64_t stream, bool colour, struct err *e)
{
	memset(nb, 0, sizeof(*nb));
	nb->r = r;
	nb->target = target;
	nb->stream = stream;
	nb->colour = colour && src->colour;
	double ball = M_PI * r * r;
	double want = target * src->area / ball;
	int rc;
	if (src->mesh) {
		/*
		 * Drawing points on the triangles near each centre costs about
		 * ten visits per triangle in the ball plus the points drawn, per
		 * centre; a global set costs its size.  Take the cheaper.
		 */
		double tris = (double)src->n_tris * ball / src->area;
		double local = (double)DESC_N_FIT * (10 * tris + 2 * target);
		bool near = want > (double)DESC_LEVEL_CAP || local < want;
		if (force_sampler)
			near = force_sampler == 2;
		if (near) {
			nb->local = true;
			nb->density = target / ball;
			/* at most 12 bytes per entry: about 8 cells per triangle */
			size_t cap = 8 * src->n_tris + 65536;
			rc = desc_grid_tris(&nb->grid, src, 2 * r,
					    cap < ((size_t)1 << 23) ? cap : (size_t)1 << 23, e);
			if (rc != ERR_LIMIT)
				goto out;
			/* too many grid entries: fall back to the largest global set */
			nb->local = false;
			want = (double)DESC_LEVEL_CAP;
			nb->sparse = true;
		}
		size_t m = (size_t)ceil(want);
		if (m < 64)
			m = 64;
		rc = desc_sample(src, m, stream, nb->colour, &nb->pts, e);
		if (rc < 0)
			goto out;
	} else {
		size_t m = want >= (double)src->n_pts ? src->n_pts : (size_t)ceil(want);
		if ((double)src->n_pts * ball / src->area < 0.5 * target)
			nb->sparse = true;
		rc = desc_sample(src, m, stream, nb->colour, &nb->pts, e);
		if (rc < 0)
			goto out;
	}
	rc = desc_grid_points(&nb->grid, nb->pts.pos, nb->pts.n, r, src->threads, e);
out:
	if (rc < 0)
		desc_nbhd_release(nb);
	return rc;
}

void desc_nbhd_release(struct desc_nbhd *nb)
{
	desc_pts_release(&nb->pts);
	desc_grid_release(&nb->grid);
	memset(nb, 0, sizeof(*nb));
}

/* Append (or reservoir-replace) one point. */
static void gather_put(struct desc_gather *g, const double rel[3], const float n[3],
		       const float *lab, uint64_t rseed)
{
	size_t slot;
	g->seen++;
	if (g->n < g->cap) {
		slot = g->n++;
	} else {
		uint64_t j = desc_mix(rseed ^ g->seen) % g->seen;
		if (j >= g->cap)
			return;
		slot = (size_t)j;
	}
	for (int k = 0; k < 3; k++) {
		g->p[3 * slot + k] = rel[k];
		g->nrm[3 * slot + k] = n[k];
		g->lab[3 * slot + k] = lab ? lab[k] : NAN;
	}
}

/*
 * The distinct buckets of the cells overlapping the box [c - r, c + r]:
 * every point within r of c lies in one of them, and visiting each
 * bucket once visits each point once (a bucket may also hold far cells,
 * which the distance test drops).  Returns the count.
 */
static int ball_buckets(const struct desc_grid *gr, const double c[3], double r,
			uint32_t *out, int cap)
{
	int32_t lo[3], hi[3];
	int n = 0;
	for (int k = 0; k < 3; k++) {
		lo[k] = desc_cell(c[k] - r, gr->inv_h);
		hi[k] = desc_cell(c[k] + r, gr->inv_h);
	}
	for (int32_t x = lo[0]; x <= hi[0]; x++)
	for (int32_t y = lo[1]; y <= hi[1]; y++)
	for (int32_t z = lo[2]; z <= hi[2]; z++)
		if (n < cap)
			out[n++] = desc_bucket(gr, desc_cell_key(x, y, z));
	/* sort and drop repeats (insertion sort: usually 27 entries) */
	for (int i = 1; i < n; i++) {
		uint32_t v = out[i];
		int j = i;
		while (j > 0 && out[j - 1] > v) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = v;
	}
	int m = 0;
	for (int i = 0; i < n; i++)
		if (!m || out[m - 1] != out[i])
			out[m++] = out[i];
	return m;
}

static void gather_points(const struct desc_nbhd *nb, const float c[3],
			  uint32_t exclude, double r, struct desc_gather *g,
			  uint64_t rseed)
{
	const struct desc_grid *gr = &nb->grid;
	const struct desc_pts *P = &nb->pts;
	double cc[3] = { c[0], c[1], c[2] }, r2 = r * r;
	uint32_t bk[729];
	/* a ball widened to 4 h spans up to 9 cells per axis */
	int nbk = ball_buckets(gr, cc, r, bk, 729);
	for (int q = 0; q < nbk; q++) {
		uint32_t b = bk[q];
		for (uint32_t t = gr->start[b]; t < gr->start[b + 1]; t++) {
			uint32_t i = gr->items[t];
			const float *p = P->pos + 3 * (size_t)i;
			double rel[3] = { (double)p[0] - cc[0], (double)p[1] - cc[1],
					  (double)p[2] - cc[2] };
			double d2 = rel[0] * rel[0] + rel[1] * rel[1] + rel[2] * rel[2];
			if (d2 >= r2)
				continue;
			if (P->id && P->id[i] == exclude)
				continue;
			gather_put(g, rel, P->nrm + 3 * (size_t)i,
				   P->lab ? P->lab + 3 * (size_t)i : NULL, rseed);
		}
	}
}

/* Squared distance from p to triangle abc (Ericson, Real-Time Collision
 * Detection, 5.1.5). */
static double tri_dist2(const double p[3], const double a[3], const double b[3],
			const double c[3])
{
	double ab[3], ac[3], ap[3], q[3];
	for (int k = 0; k < 3; k++) {
		ab[k] = b[k] - a[k];
		ac[k] = c[k] - a[k];
		ap[k] = p[k] - a[k];
	}
	double d1 = dot(ab, ap), d2 = dot(ac, ap);
	if (d1 <= 0 && d2 <= 0)
		return dot(ap, ap);
	double bp[3] = { p[0] - b[0], p[1] - b[1], p[2] - b[2] };
	double d3 = dot(ab, bp), d4 = dot(ac, bp);
	if (d3 >= 0 && d4 <= d3)
		return dot(bp, bp);
	double vc = d1 * d4 - d3 * d2;
	if (vc <= 0 && d1 >= 0 && d3 <= 0) {
		double v = d1 / (d1 - d3);
		for (int k = 0; k < 3; k++)
			q[k] = p[k] - (a[k] + v * ab[k]);
		return dot(q, q);
	}
	double cp[3] = { p[0] - c[0], p[1] - c[1], p[2] - c[2] };
	double d5 = dot(ab, cp), d6 = dot(ac, cp);
	if (d6 >= 0 && d5 <= d6)
		return dot(cp, cp);
	double vb = d5 * d2 - d1 * d6;
	if (vb <= 0 && d2 >= 0 && d6 <= 0) {
		double w = d2 / (d2 - d6);
		for (int k = 0; k < 3; k++)
			q[k] = p[k] - (a[k] + w * ac[k]);
		return dot(q, q);
	}
	double va = d3 * d6 - d5 * d4;
	if (va <= 0 && (d4 - d3) >= 0 && (d5 - d6) >= 0) {
		double w = (d4 - d3) / ((d4 - d3) + (d5 - d6));
		for (int k = 0; k < 3; k++)
			q[k] = p[k] - (b[k] + w * (c[k] - b[k]));
		return dot(q, q);
	}
	double den = 1.0 / (va + vb + vc);
	double v = vb * den, w = vc * den;
	for (int k = 0; k < 3; k++)
		q[k] = p[k] - (a[k] + ab[k] * v + ac[k] * w);
	return dot(q, q);
}

/* Draw the points of triangle f inside the ball (c, r) at nb->density. */
static void sample_tri_in_ball(const struct desc_nbhd *nb, const struct desc_src *src,
			       uint32_t f, const double cc[3], double r,
			       uint64_t h0, struct desc_gather *g, uint64_t rseed)
{
	double a[3], b[3], c[3], e1[3], e2[3], n[3];
	tri_vertices(src, f, a, b, c);
	if (tri_dist2(cc, a, b, c) >= r * r)
		return;
	for (int k = 0; k < 3; k++) {
		e1[k] = b[k] - a[k];
		e2[k] = c[k] - a[k];
	}
	cross(e1, e2, n);
	double len = sqrt(dot(n, n));
	if (!(len > 0))
		return;
	double un[3] = { n[0] / len, n[1] / len, n[2] / len };
	float fn[3] = { (float)(un[0] * src->orient), (float)(un[1] * src->orient),
			(float)(un[2] * src->orient) };
	double ap[3] = { cc[0] - a[0], cc[1] - a[1], cc[2] - a[2] };
	double d = dot(ap, un);
	double rho2 = r * r - d * d;
	if (!(rho2 > 0))
		return;
	double area = 0.5 * len, disc = M_PI * rho2;
	bool in_disc = area > disc;
	double expect = nb->density * (in_disc ? disc : area);
	double cnt = floor(expect + desc_u01(h0));
	/* a degenerate sliver far larger than the ball cannot flood the buffer */
	if (cnt > 16.0 * nb->target)
		cnt = 16.0 * nb->target;
	/* barycentric solve for the disc case */
	double d00 = dot(e1, e1), d01 = dot(e1, e2), d11 = dot(e2, e2);
	double den = d00 * d11 - d01 * d01;
	double t1[3], t2[3], cp[3];
	if (in_disc) {
		double l1 = sqrt(d00);
		for (int k = 0; k < 3; k++) {
			t1[k] = e1[k] / l1;
			cp[k] = cc[k] - d * un[k];
		}
		cross(un, t1, t2);
	}
	float lab[3];
	for (size_t j = 0; j < (size_t)cnt; j++) {
		uint64_t h = desc_mix(h0 + 0x9e3779b97f4a7c15ull * (j + 1));
		double u1 = desc_u01(h), u2 = desc_u01(desc_mix(h ^ 0x5bd1e995ull));
		double p[3], b1, b2;
		if (!in_disc) {
			double sq = sqrt(u1);
			b1 = sq * (1 - u2);
			b2 = sq * u2;
			for (int k = 0; k < 3; k++)
				p[k] = a[k] + b1 * e1[k] + b2 * e2[k];
		} else {
			double rr = sqrt(rho2 * u1), th = 2 * M_PI * u2;
			double x = rr * cos(th), y = rr * sin(th);
			for (int k = 0; k < 3; k++)
				p[k] = cp[k] + x * t1[k] + y * t2[k];
			double v[3] = { p[0] - a[0], p[1] - a[1], p[2] - a[2] };
			double d20 = dot(v, e1), d21 = dot(v, e2);
			b1 = (d11 * d20 - d01 * d21) / den;
			b2 = (d00 * d21 - d01 * d20) / den;
			if (b1 < 0 || b2 < 0 || b1 + b2 > 1)
				continue;
		}
		double rel[3] = { p[0] - cc[0], p[1] - cc[1], p[2] - cc[2] };
		if (dot(rel, rel) >= r * r)
			continue;
		bool has = nb->colour && desc_face_colour(src, f, b1, b2, lab);
		gather_put(g, rel, fn, has ? lab : NULL, rseed);
	}
}

static void gather_local(const struct desc_nbhd *nb, const struct desc_src *src,
			 const float c[3], size_t centre_id, double r,
			 struct desc_gather *g, uint64_t rseed)
{
	const struct desc_grid *gr = &nb->grid;
	double cc[3] = { c[0], c[1], c[2] };
	int32_t lo[3], hi[3];
	for (int k = 0; k < 3; k++) {
		lo[k] = desc_cell(cc[k] - r, gr->inv_h);
		hi[k] = desc_cell(cc[k] + r, gr->inv_h);
	}
	for (int32_t x = lo[0]; x <= hi[0]; x++)
	for (int32_t y = lo[1]; y <= hi[1]; y++)
	for (int32_t z = lo[2]; z <= hi[2]; z++) {
		uint64_t key = desc_cell_key(x, y, z);
		uint32_t bk = desc_bucket(gr, key);
		for (uint32_t t = gr->start[bk]; t < gr->start[bk + 1]; t++) {
			if (gr->keys[t] != key)
				continue;
			uint32_t f = gr->items[t];
			/* visit each triangle once: in the lowest shared cell */
			double a[3], b[3], v3[3];
			tri_vertices(src, f, a, b, v3);
			int32_t cell[3] = { x, y, z };
			bool first = true;
			for (int k = 0; k < 3 && first; k++) {
				double mn = fmin(a[k], fmin(b[k], v3[k]));
				int32_t tl = desc_cell(mn, gr->inv_h);
				int32_t want = tl > lo[k] ? tl : lo[k];
				if (cell[k] != want)
					first = false;
			}
			if (!first)
				continue;
			uint64_t h0 = desc_hash(src->seed, nb->stream,
						((uint64_t)centre_id << 32) ^ f);
			sample_tri_in_ball(nb, src, f, cc, r, h0, g, rseed);
		}
	}
}

void desc_nbhd_gather(const struct desc_nbhd *nb, const struct desc_src *src,
		      const float c[3], uint32_t exclude, size_t centre_id,
		      double r, struct desc_gather *g)
{
	g->n = 0;
	g->seen = 0;
	uint64_t rseed = desc_hash(src->seed, DS_RESERVOIR + nb->stream, centre_id);
	if (nb->local)
		gather_local(nb, src, c, centre_id, r, g, rseed);
	else
		gather_points(nb, c, exclude, r, g, rseed);
}

/* Points of P within r of c, not counting cloud vertex `exclude`. */
static size_t count_ball(const struct desc_grid *gr, const struct desc_pts *P,
			 const float c[3], uint32_t exclude, double r)
{
	size_t cnt = 0;
	int32_t lo[3], hi[3];
	for (int k = 0; k < 3; k++) {
		lo[k] = desc_cell((double)c[k] - r, gr->inv_h);
		hi[k] = desc_cell((double)c[k] + r, gr->inv_h);
	}
	for (int32_t x = lo[0]; x <= hi[0]; x++)
	for (int32_t y = lo[1]; y <= hi[1]; y++)
	for (int32_t z = lo[2]; z <= hi[2]; z++) {
		uint32_t b = desc_bucket(gr, desc_cell_key(x, y, z));
		for (uint32_t t = gr->start[b]; t < gr->start[b + 1]; t++) {
			uint32_t i = gr->items[t];
			const float *p = P->pos + 3 * (size_t)i;
			if (desc_cell(p[0], gr->inv_h) != x || desc_cell(p[1], gr->inv_h) != y ||
			    desc_cell(p[2], gr->inv_h) != z || P->id[i] == exclude)
				continue;
			double d[3] = { (double)p[0] - c[0], (double)p[1] - c[1],
					(double)p[2] - c[2] };
			if (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] < r * r)
				cnt++;
		}
	}
	return cnt;
}

int desc_cloud_area(struct desc_src *src, const struct desc_pts *C, struct err *e)
{
	const size_t cap = (size_t)1 << 20;
	struct desc_pts P;
	int rc = desc_sample(src, src->n_pts > cap ? cap : src->n_pts, DS_CLOUD, false, &P, e);
	if (rc < 0)
		return rc;
	size_t m = P.n, probes = C->n < 1024 ? C->n : 1024;
	/* first guess: a sphere of RMS radius 1 */
	double A = 4 * M_PI;
	for (int round = 0; round < 4 && m > 1 && probes; round++) {
		double rho = sqrt(24.0 * A / (M_PI * (double)m));
		struct desc_grid g;
		rc = desc_grid_points(&g, P.pos, P.n, rho, src->threads, e);
		if (rc < 0)
			break;
		size_t total = 0;
		for (size_t i = 0; i < probes; i++)
			total += count_ball(&g, &P, C->pos + 3 * i, C->id[i], rho);
		desc_grid_release(&g);
		double mean = (double)total / (double)probes;
		A = (double)m * M_PI * rho * rho / fmax(mean, 0.25);
		if (mean >= 12 && mean <= 48)
			break;
	}
	desc_pts_release(&P);
	src->area = A;
	src->spacing = sqrt(A / (double)src->n_pts);
	return rc;
}
