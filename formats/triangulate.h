/*
 * triangulate.h - split one polygon into triangles, correctly for concave
 * polygons (ear clipping in the polygon's best-fit plane), shared by the
 * OBJ, PLY and OFF readers.
 *
 * A struct triangulator holds scratch buffers reused across polygons, so
 * readers do no per-polygon allocation once it has grown.  One per thread.
 * Safe on untrusted input: indices are checked against n_positions and
 * degenerate or self-intersecting polygons still yield n-2 triangles
 * covering the outline (never an error for geometry alone).
 *
 * Polygons with more than TRIANGULATE_MAX_EAR vertices are split as a fan
 * from their first vertex (ear clipping is O(n^2)); that is only right for
 * convex ones, so each such polygon is counted in n_fanned and the reader
 * says so in a warning.
 */
#ifndef REFSCAN_TRIANGULATE_H
#define REFSCAN_TRIANGULATE_H

#include <stddef.h>
#include <stdint.h>

struct err;

/* Largest polygon that is ear-clipped; bigger ones become a fan. */
#define TRIANGULATE_MAX_EAR 4096u

struct triangulator {
	void *scratch;      /* owned; grown as needed */
	size_t scratch_cap; /* bytes */
	size_t n_fanned;    /* polygons over TRIANGULATE_MAX_EAR split as a fan */
};

void triangulator_init(struct triangulator *t);
void triangulator_release(struct triangulator *t);

/*
 * Triangulate polygon poly[0..n) (n >= 3; indices into positions, which
 * holds n_positions xyz triples).  Writes 3 * (n - 2) indices to out, in
 * the polygon's winding order.  Returns 0, ERR_FORMAT when n < 3 or an
 * index is >= n_positions (e filled, naming it), or ERR_NOMEM.
 * Triangles n == 3 are copied; convex quads split along the shorter
 * diagonal and concave quads along the diagonal through the reflex
 * vertex, without scratch memory.
 */
int triangulate_polygon(struct triangulator *t, const float *positions,
			size_t n_positions, const uint32_t *poly, uint32_t n,
			uint32_t *out, struct err *e);

/*
 * Same, but writes corner numbers (0..n-1, positions in poly) instead of
 * vertex indices, so a reader can carry per-corner data (OBJ vt/vn) onto
 * the triangles.  out holds 3 * (n - 2) corner numbers.
 */
int triangulate_polygon_corners(struct triangulator *t, const float *positions,
				size_t n_positions, const uint32_t *poly,
				uint32_t n, uint32_t *out, struct err *e);

#endif
