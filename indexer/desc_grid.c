/*
 * desc_grid.c - hashed uniform grids for ball queries.
 *
 * Cells are hashed into a power-of-two bucket table (no dense array, so
 * memory follows the number of items, not the extent); items are stored
 * bucket by bucket with a counting sort that runs in index order, so the
 * layout never depends on the number of threads.  A query visits the
 * cells overlapping the ball's bounding box and skips items whose own
 * cell differs (hash collisions).
 */
#include "desc_int.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "../formats/scan.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "../common/banned.h"

static uint32_t buckets_for(size_t n)
{
	uint32_t b = 1024;
	while (b < n && b < (1u << 30))
		b <<= 1;
	return b;
}

void desc_grid_release(struct desc_grid *g)
{
	xfree(g->start);
	xfree(g->items);
	xfree(g->keys);
	memset(g, 0, sizeof(*g));
}

int desc_grid_points(struct desc_grid *g, const float *pos, size_t n, double h,
		     int threads, struct err *e)
{
	memset(g, 0, sizeof(*g));
	if (n > UINT32_MAX)
		return err_set(e, ERR_LIMIT, "too many points to grid (%zu)", n);
	g->inv_h = 1.0 / h;
	uint32_t nb = buckets_for(n);
	g->mask = nb - 1;
	uint32_t *bucket = alloc_array(n ? n : 1, sizeof(uint32_t));
	g->start = alloc_array_zero((size_t)nb + 2, sizeof(uint32_t));
	g->items = alloc_array(n ? n : 1, sizeof(uint32_t));
	if (!bucket || !g->start || !g->items) {
		xfree(bucket);
		desc_grid_release(g);
		return err_set(e, ERR_NOMEM, "out of memory gridding %zu points", n);
	}
	int nt = threads > 0 ? threads : omp_get_max_threads();
	#pragma omp parallel for num_threads(nt) schedule(static)
	for (size_t i = 0; i < n; i++) {
		const float *p = pos + 3 * i;
		uint64_t key = desc_cell_key(desc_cell(p[0], g->inv_h),
					     desc_cell(p[1], g->inv_h),
					     desc_cell(p[2], g->inv_h));
		bucket[i] = desc_bucket(g, key);
	}
	for (size_t i = 0; i < n; i++)
		g->start[bucket[i] + 2]++;
	for (uint32_t b = 2; b < nb + 2; b++)
		g->start[b] += g->start[b - 1];
	for (size_t i = 0; i < n; i++)
		g->items[g->start[bucket[i] + 1]++] = (uint32_t)i;
	g->n_items = n;
	xfree(bucket);
	return 0;
}

/* Cell range of the bounding box of valid triangle i. */
static void tri_cells(const struct desc_src *src, uint32_t f, double inv_h,
		      int32_t lo[3], int32_t hi[3])
{
	const uint32_t *ix = src->s->indices + 3 * (size_t)f;
	double p[3][3];
	for (int k = 0; k < 3; k++)
		desc_vertex(src, ix[k], p[k]);
	for (int k = 0; k < 3; k++) {
		double mn = fmin(p[0][k], fmin(p[1][k], p[2][k]));
		double mx = fmax(p[0][k], fmax(p[1][k], p[2][k]));
		lo[k] = desc_cell(mn, inv_h);
		hi[k] = desc_cell(mx, inv_h);
	}
}

int desc_grid_tris(struct desc_grid *g, const struct desc_src *src, double h,
		   size_t max_items, struct err *e)
{
	memset(g, 0, sizeof(*g));
	g->inv_h = 1.0 / h;
	size_t nt = src->n_tris;
	/* count the entries first so a huge grid is refused before allocating */
	size_t total = 0;
	for (size_t i = 0; i < nt; i++) {
		int32_t lo[3], hi[3];
		tri_cells(src, src->tri[i], g->inv_h, lo, hi);
		double c = 1;
		for (int k = 0; k < 3; k++)
			c *= (double)(hi[k] - lo[k] + 1);
		if (c > (double)max_items || total + (size_t)c > max_items)
			return ERR_LIMIT;
		total += (size_t)c;
	}
	if (total > UINT32_MAX)
		return ERR_LIMIT;
	uint32_t nb = buckets_for(total);
	g->mask = nb - 1;
	g->start = alloc_array_zero((size_t)nb + 2, sizeof(uint32_t));
	g->items = alloc_array(total ? total : 1, sizeof(uint32_t));
	g->keys = alloc_array(total ? total : 1, sizeof(uint64_t));
	if (!g->start || !g->items || !g->keys) {
		desc_grid_release(g);
		return err_set(e, ERR_NOMEM, "out of memory gridding %zu triangles", nt);
	}
	/* counting sort in two passes over the cells, so no scratch copy */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < nt; i++) {
			int32_t lo[3], hi[3];
			uint32_t f = src->tri[i];
			tri_cells(src, f, g->inv_h, lo, hi);
			for (int32_t x = lo[0]; x <= hi[0]; x++)
			for (int32_t y = lo[1]; y <= hi[1]; y++)
			for (int32_t z = lo[2]; z <= hi[2]; z++) {
				uint64_t key = desc_cell_key(x, y, z);
				uint32_t b = desc_bucket(g, key);
				if (pass == 0) {
					g->start[b + 2]++;
					continue;
				}
				uint32_t slot = g->start[b + 1]++;
				g->items[slot] = f;
				g->keys[slot] = key;
			}
		}
		if (pass == 0)
			for (uint32_t b = 2; b < nb + 2; b++)
				g->start[b] += g->start[b - 1];
	}
	g->n_items = total;
	return 0;
}
