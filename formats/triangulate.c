/*
 * triangulate.c - polygon triangulation by ear clipping (see triangulate.h).
 *
 * Method (D. Eberly, "Triangulation by Ear Clipping", Geometric Tools):
 * the polygon is projected onto the coordinate plane most perpendicular
 * to its Newell normal, oriented so that its winding is counter-clockwise
 * there, and ears are cut one at a time from a circular linked list.  A
 * vertex is an ear when it is strictly convex and no non-convex vertex
 * lies inside or on its triangle (for a simple polygon, a triangle that
 * holds any vertex holds a reflex one).  Cutting an ear can only change
 * the convexity and ear status of its two neighbours, so only those are
 * re-tested: O(n^2) in all.
 *
 * Invariants: every step cuts exactly one vertex, so the loop ends after
 * n - 3 steps and always emits n - 2 triangles.  When no ear exists (the
 * polygon crosses itself, or rounding), the "best" candidate is cut
 * instead: a vertex whose triangle has zero area (collinear or duplicate
 * points, so no area is lost), else the most convex one.  Triangles keep
 * the polygon's vertex order (prev, v, next), hence its winding.
 * Coordinates are projected without rotation, so the 2D points are the
 * file's own floats and the orientation tests are done in double.
 */
#include "triangulate.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <math.h>
#include <string.h>

#include "../common/banned.h"

enum vflags {
	V_REFLEX = 1 << 0, /* interior angle >= 180 degrees (not strictly convex) */
	V_EAR = 1 << 1     /* cached ear test result */
};

struct ring {
	const double *xy; /* 2 per corner */
	uint32_t *prev, *next;
	uint8_t *flags;
};

void triangulator_init(struct triangulator *t)
{
	memset(t, 0, sizeof(*t));
}

void triangulator_release(struct triangulator *t)
{
	xfree(t->scratch);
	memset(t, 0, sizeof(*t));
}

/* Twice the signed area of (a, b, c); > 0 when counter-clockwise. */
static inline double cross3(const double *a, const double *b, const double *c)
{
	return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
}

static inline int same_point(const double *a, const double *b)
{
	return a[0] == b[0] && a[1] == b[1];
}

static inline double corner_cross(const struct ring *r, uint32_t v)
{
	return cross3(r->xy + 2 * r->prev[v], r->xy + 2 * v, r->xy + 2 * r->next[v]);
}

static void update_reflex(struct ring *r, uint32_t v)
{
	if (corner_cross(r, v) > 0)
		r->flags[v] &= (uint8_t)~V_REFLEX;
	else
		r->flags[v] |= V_REFLEX;
}

/* Full ear test of v against the m vertices still in the ring. */
static int is_ear(const struct ring *r, uint32_t v, uint32_t m)
{
	uint32_t a = r->prev[v], c = r->next[v];
	const double *pa = r->xy + 2 * a, *pv = r->xy + 2 * v, *pc = r->xy + 2 * c;
	if (r->flags[v] & V_REFLEX)
		return 0;
	uint32_t w = r->next[c];
	for (uint32_t k = 3; k < m; k++, w = r->next[w]) {
		if (!(r->flags[w] & V_REFLEX))
			continue;
		const double *p = r->xy + 2 * w;
		/* a point shared with the ear (a polygon that touches itself,
		 * hole bridges) does not block it */
		if (same_point(p, pa) || same_point(p, pv) || same_point(p, pc))
			continue;
		if (cross3(pa, pv, p) >= 0 && cross3(pv, pc, p) >= 0 &&
		    cross3(pc, pa, p) >= 0)
			return 0;
	}
	return 1;
}

static void update_ear(struct ring *r, uint32_t v, uint32_t m)
{
	if (is_ear(r, v, m))
		r->flags[v] |= V_EAR;
	else
		r->flags[v] &= (uint8_t)~V_EAR;
}

/*
 * No ear left (self-intersection or rounding): pick the vertex to cut.
 * A zero-area corner first (nothing is lost), else the most convex one;
 * NaN-safe, always returns a vertex of the ring.
 */
static uint32_t best_cut(const struct ring *r, uint32_t start, uint32_t m)
{
	uint32_t best = start, v = start;
	double best_cross = -INFINITY;
	for (uint32_t k = 0; k < m; k++, v = r->next[v]) {
		double c = corner_cross(r, v);
		if (c == 0)
			return v;
		if (c > best_cross) {
			best_cross = c;
			best = v;
		}
	}
	return best;
}

static void emit_fan(uint32_t n, uint32_t *out)
{
	for (uint32_t i = 0; i + 2 < n; i++) {
		out[3 * i] = 0;
		out[3 * i + 1] = i + 1;
		out[3 * i + 2] = i + 2;
	}
}

static int grow_scratch(struct triangulator *t, uint32_t n, struct err *e)
{
	/* 2 doubles + 2 uint32 + 1 flag byte per corner */
	size_t need;
	if (ckd_mul(&need, (size_t)n, 2 * sizeof(double) + 2 * sizeof(uint32_t) + 1))
		return err_set(e, ERR_NOMEM, "polygon with %u vertices is too large", n);
	if (need <= t->scratch_cap)
		return 0;
	void *p = xrealloc(t->scratch, need);
	if (!p)
		return err_set(e, ERR_NOMEM, "out of memory triangulating a polygon with %u vertices", n);
	t->scratch = p;
	t->scratch_cap = need;
	return 0;
}

/* Quad: shorter diagonal when convex, through the reflex vertex if not. */
static void split_quad(const double xy[8], const double p3[12], uint32_t *out)
{
	int reflex = -1, n_reflex = 0;
	for (int i = 0; i < 4; i++) {
		double c = cross3(xy + 2 * ((i + 3) & 3), xy + 2 * i, xy + 2 * ((i + 1) & 3));
		if (c < 0) {
			reflex = i;
			n_reflex++;
		}
	}
	int d; /* first vertex of the chosen diagonal: d -- d+2 */
	if (n_reflex == 1) {
		d = reflex & 1;
	} else {
		double d02 = 0, d13 = 0;
		for (int k = 0; k < 3; k++) {
			double a = p3[k] - p3[6 + k], b = p3[3 + k] - p3[9 + k];
			d02 += a * a;
			d13 += b * b;
		}
		d = d13 < d02 ? 1 : 0;
	}
	/* (d, d+1, d+2) and (d, d+2, d+3): both keep the quad's winding */
	uint32_t a = (uint32_t)d;
	out[0] = a;
	out[1] = (a + 1) & 3;
	out[2] = (a + 2) & 3;
	out[3] = a;
	out[4] = (a + 2) & 3;
	out[5] = (a + 3) & 3;
}

int triangulate_polygon_corners(struct triangulator *t, const float *positions,
				size_t n_positions, const uint32_t *poly,
				uint32_t n, uint32_t *out, struct err *e)
{
	if (n < 3)
		return err_set(e, ERR_FORMAT, "polygon with %u vertices (need at least 3)", n);
	for (uint32_t i = 0; i < n; i++)
		if (poly[i] >= n_positions)
			return err_set(e, ERR_FORMAT,
				       "polygon corner %u: vertex index %u out of range (have %zu)",
				       i, poly[i], n_positions);
	if (n == 3) {
		out[0] = 0;
		out[1] = 1;
		out[2] = 2;
		return 0;
	}
	if (n > TRIANGULATE_MAX_EAR) {
		t->n_fanned++;
		emit_fan(n, out);
		return 0;
	}

	/* Newell normal, relative to the first vertex to keep precision on
	 * scans far from the origin */
	const float *o = positions + 3 * (size_t)poly[0];
	double nrm[3] = { 0, 0, 0 };
	for (uint32_t i = 0; i < n; i++) {
		const float *a = positions + 3 * (size_t)poly[i];
		const float *b = positions + 3 * (size_t)poly[i + 1 == n ? 0 : i + 1];
		double ax = (double)a[0] - o[0], ay = (double)a[1] - o[1], az = (double)a[2] - o[2];
		double bx = (double)b[0] - o[0], by = (double)b[1] - o[1], bz = (double)b[2] - o[2];
		nrm[0] += (ay - by) * (az + bz);
		nrm[1] += (az - bz) * (ax + bx);
		nrm[2] += (ax - bx) * (ay + by);
	}
	int k = 0;
	for (int j = 1; j < 3; j++)
		if (fabs(nrm[j]) > fabs(nrm[k]))
			k = j;
	if (!(fabs(nrm[k]) > 0) || !isfinite(nrm[k])) {
		/* no plane (all points collinear or coincident, or not finite):
		 * every split has zero area, a fan is as good as any */
		emit_fan(n, out);
		return 0;
	}
	int ax0 = (k + 1) % 3, ax1 = (k + 2) % 3;
	double flip = nrm[k] < 0 ? -1.0 : 1.0;

	if (n == 4) {
		double xy[8], p3[12];
		for (int i = 0; i < 4; i++) {
			const float *p = positions + 3 * (size_t)poly[i];
			xy[2 * i] = p[ax0];
			xy[2 * i + 1] = flip * p[ax1];
			for (int j = 0; j < 3; j++)
				p3[3 * i + j] = p[j];
		}
		split_quad(xy, p3, out);
		return 0;
	}

	int rc = grow_scratch(t, n, e);
	if (rc)
		return rc;
	double *xy = t->scratch;
	struct ring r = {
		.xy = xy,
		.prev = (uint32_t *)(xy + 2 * (size_t)n),
		.next = (uint32_t *)(xy + 2 * (size_t)n) + n,
		.flags = (uint8_t *)((uint32_t *)(xy + 2 * (size_t)n) + 2 * (size_t)n),
	};
	for (uint32_t i = 0; i < n; i++) {
		const float *p = positions + 3 * (size_t)poly[i];
		xy[2 * i] = p[ax0];
		xy[2 * i + 1] = flip * p[ax1];
		r.prev[i] = i ? i - 1 : n - 1;
		r.next[i] = i + 1 == n ? 0 : i + 1;
		r.flags[i] = 0;
	}
	for (uint32_t i = 0; i < n; i++)
		update_reflex(&r, i);
	for (uint32_t i = 0; i < n; i++)
		update_ear(&r, i, n);

	uint32_t m = n, v = 1, n_out = 0;
	while (m > 3) {
		uint32_t cut = UINT32_MAX, w = v;
		for (uint32_t s = 0; s < m; s++, w = r.next[w]) {
			if (!(r.flags[w] & V_EAR))
				continue;
			/* cached flags are exact for simple polygons; re-check
			 * so a crossing polygon never cuts a stale ear */
			if (is_ear(&r, w, m)) {
				cut = w;
				break;
			}
			r.flags[w] &= (uint8_t)~V_EAR;
		}
		if (cut == UINT32_MAX)
			cut = best_cut(&r, v, m);
		uint32_t a = r.prev[cut], c = r.next[cut];
		out[3 * n_out] = a;
		out[3 * n_out + 1] = cut;
		out[3 * n_out + 2] = c;
		n_out++;
		r.next[a] = c;
		r.prev[c] = a;
		m--;
		update_reflex(&r, a);
		update_reflex(&r, c);
		update_ear(&r, a, m);
		update_ear(&r, c, m);
		v = c;
	}
	out[3 * n_out] = r.prev[v];
	out[3 * n_out + 1] = v;
	out[3 * n_out + 2] = r.next[v];
	return 0;
}

int triangulate_polygon(struct triangulator *t, const float *positions,
			size_t n_positions, const uint32_t *poly, uint32_t n,
			uint32_t *out, struct err *e)
{
	int rc = triangulate_polygon_corners(t, positions, n_positions, poly, n, out, e);
	if (rc)
		return rc;
	for (size_t i = 0; i < 3 * ((size_t)n - 2); i++)
		out[i] = poly[out[i]];
	return 0;
}
