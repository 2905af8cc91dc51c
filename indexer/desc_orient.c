/*
 * desc_orient.c - consistent normals for a point cloud that has none.
 *
 * Hoppe, DeRose, Duchamp, McDonald, Stuetzle, "Surface reconstruction
 * from unorganized points", SIGGRAPH 1992, sec. 3.3: unoriented normals
 * from local PCA, then orientation propagated along a minimum spanning
 * tree of the k-nearest-neighbour graph weighted by 1 - |n_i . n_j|, so
 * the sign travels across flat regions first and never jumps across a
 * thin sheet where it is ambiguous.  Each connected part starts at its
 * highest point (largest z), whose outward normal has n_z > 0.
 *
 * Runs on the centre samples only (a few thousand points): the fits take
 * their orientation from the centre's normal.  Deterministic: the heap
 * breaks ties by index and every loop runs in a fixed order.
 */
#include "desc_int.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <math.h>
#include <string.h>

#include "../common/banned.h"

#define KNN 8

struct heap_item {
	float w;
	uint32_t to, from;
};

static bool item_less(const struct heap_item *a, const struct heap_item *b)
{
	if (a->w != b->w)
		return a->w < b->w;
	return a->to < b->to;
}

static void heap_push(struct heap_item *h, size_t *n, struct heap_item it)
{
	size_t i = (*n)++;
	h[i] = it;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!item_less(&h[i], &h[p]))
			break;
		struct heap_item t = h[i];
		h[i] = h[p];
		h[p] = t;
		i = p;
	}
}

static struct heap_item heap_pop(struct heap_item *h, size_t *n)
{
	struct heap_item top = h[0];
	h[0] = h[--(*n)];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < *n && item_less(&h[l], &h[m]))
			m = l;
		if (r < *n && item_less(&h[r], &h[m]))
			m = r;
		if (m == i)
			break;
		struct heap_item t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
	return top;
}

/* The KNN nearest centres of every centre (UINT32_MAX pads). */
static int knn_graph(const struct desc_pts *C, double h, uint32_t *nbr,
		     int threads, struct err *e)
{
	struct desc_grid g;
	int rc = desc_grid_points(&g, C->pos, C->n, h, threads, e);
	if (rc < 0)
		return rc;
	#pragma omp parallel for num_threads(threads > 0 ? threads : 1) schedule(static)
	for (size_t i = 0; i < C->n; i++) {
		const float *c = C->pos + 3 * i;
		float bd[KNN];
		uint32_t bi[KNN];
		for (int k = 0; k < KNN; k++) {
			bd[k] = INFINITY;
			bi[k] = UINT32_MAX;
		}
		int32_t cx = desc_cell(c[0], g.inv_h), cy = desc_cell(c[1], g.inv_h),
			cz = desc_cell(c[2], g.inv_h);
		for (int32_t x = cx - 1; x <= cx + 1; x++)
		for (int32_t y = cy - 1; y <= cy + 1; y++)
		for (int32_t z = cz - 1; z <= cz + 1; z++) {
			uint32_t b = desc_bucket(&g, desc_cell_key(x, y, z));
			for (uint32_t t = g.start[b]; t < g.start[b + 1]; t++) {
				uint32_t j = g.items[t];
				const float *p = C->pos + 3 * (size_t)j;
				if (j == i || desc_cell(p[0], g.inv_h) != x ||
				    desc_cell(p[1], g.inv_h) != y || desc_cell(p[2], g.inv_h) != z)
					continue;
				float d = (p[0] - c[0]) * (p[0] - c[0]) + (p[1] - c[1]) * (p[1] - c[1]) +
					  (p[2] - c[2]) * (p[2] - c[2]);
				if (d > bd[KNN - 1] || (d == bd[KNN - 1] && j > bi[KNN - 1]))
					continue;
				int k = KNN - 1;
				while (k > 0 && (d < bd[k - 1] || (d == bd[k - 1] && j < bi[k - 1]))) {
					bd[k] = bd[k - 1];
					bi[k] = bi[k - 1];
					k--;
				}
				bd[k] = d;
				bi[k] = j;
			}
		}
		memcpy(nbr + KNN * i, bi, sizeof(bi));
	}
	desc_grid_release(&g);
	return 0;
}

/* Unoriented PCA normal of centre i from its graph neighbours. */
static void pca_normal(const struct desc_pts *C, const uint32_t *nbr, size_t i,
		       float out[3])
{
	double m[3] = { C->pos[3 * i], C->pos[3 * i + 1], C->pos[3 * i + 2] };
	int cnt = 1;
	for (int k = 0; k < KNN; k++) {
		uint32_t j = nbr[KNN * i + k];
		if (j == UINT32_MAX)
			continue;
		for (int a = 0; a < 3; a++)
			m[a] += C->pos[3 * (size_t)j + a];
		cnt++;
	}
	for (int a = 0; a < 3; a++)
		m[a] /= cnt;
	double cov[6] = { 0 };
	for (int k = -1; k < KNN; k++) {
		uint32_t j = k < 0 ? (uint32_t)i : nbr[KNN * i + k];
		if (j == UINT32_MAX)
			continue;
		double d[3];
		for (int a = 0; a < 3; a++)
			d[a] = C->pos[3 * (size_t)j + a] - m[a];
		desc_cov_add(cov, d);
	}
	double nn[3];
	desc_least_axis(cov, nn);
	for (int a = 0; a < 3; a++)
		out[a] = (float)nn[a];
}

int desc_orient_cloud(const struct desc_src *src, struct desc_pts *C, struct err *e)
{
	size_t n = C->n;
	int rc = 0;
	if (n < 2)
		return 0;
	uint32_t *nbr = alloc_array(n, KNN * sizeof(uint32_t));
	uint8_t *done = alloc_array_zero(n, 1);
	struct heap_item *heap = alloc_array(n * KNN * 2 + 1, sizeof(*heap));
	if (!nbr || !done || !heap) {
		rc = err_set(e, ERR_NOMEM, "out of memory orienting %zu normals", n);
		goto out;
	}
	/* cell size ~2 centre spacings so 27 cells hold the KNN nearest */
	double h = 2.0 * sqrt(src->area / (double)n);
	rc = knn_graph(C, h, nbr, desc_threads(src), e);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		pca_normal(C, nbr, i, C->nrm + 3 * i);
	for (;;) {
		/* seed: highest point not yet reached */
		size_t seed = n;
		for (size_t i = 0; i < n; i++)
			if (!done[i] && (seed == n || C->pos[3 * i + 2] > C->pos[3 * seed + 2]))
				seed = i;
		if (seed == n)
			break;
		float *sn = C->nrm + 3 * seed;
		if (sn[2] < 0)
			for (int a = 0; a < 3; a++)
				sn[a] = -sn[a];
		size_t hn = 0;
		heap_push(heap, &hn, (struct heap_item){ 0, (uint32_t)seed, (uint32_t)seed });
		while (hn) {
			struct heap_item it = heap_pop(heap, &hn);
			if (done[it.to])
				continue;
			done[it.to] = 1;
			float *nt = C->nrm + 3 * (size_t)it.to;
			const float *nf = C->nrm + 3 * (size_t)it.from;
			if (it.to != it.from && nt[0] * nf[0] + nt[1] * nf[1] + nt[2] * nf[2] < 0)
				for (int a = 0; a < 3; a++)
					nt[a] = -nt[a];
			/* the graph is not symmetric: look both ways through the lists */
			for (int k = 0; k < KNN; k++) {
				uint32_t j = nbr[KNN * (size_t)it.to + k];
				if (j == UINT32_MAX || done[j] || hn >= n * KNN * 2)
					continue;
				const float *nj = C->nrm + 3 * (size_t)j;
				float w = 1 - fabsf(nt[0] * nj[0] + nt[1] * nj[1] + nt[2] * nj[2]);
				heap_push(heap, &hn, (struct heap_item){ w, j, it.to });
			}
		}
	}
out:
	xfree(nbr);
	xfree(done);
	xfree(heap);
	return rc;
}
