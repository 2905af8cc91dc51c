/*
 * desc_view.c - what one scanner position sees of a scan, and the
 * descriptors of such views (describe.h: describe_view_mask,
 * describe_views).
 *
 * A scanner standing on one side records the surface it can see: the
 * faces in front, not those behind them or facing away.  A reference
 * described whole and a query scanned from one side share only part of
 * their surface, so each reference is also described as seen from
 * DESC_VIEWS directions, and a search matches a query against the whole
 * and against every view (query/rank.h, views).
 *
 * Visibility is an orthographic depth buffer: DESC_VIEW_RES cells across
 * the projected bounding square of a mesh, each holding the nearest depth
 * of the triangles that cover its centre; a triangle is seen when the
 * depth of its centre is at most DESC_VIEW_TOL cells behind its cell's.
 * A cloud has no triangles: each point covers its cell and the eight
 * around it, with cells sized for about four points each.
 *
 * The view of a scan for describing is a shallow copy: new vertex and
 * face arrays, the original's materials, textures and metadata borrowed
 * (never released here).
 */
#include "describe.h"
#include "desc_int.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "../common/raster.h"
#include "../formats/scan.h"

#include <math.h>
#include <string.h>

#include "../common/banned.h"

/* An orthographic view along dir: image axes a, b and a depth buffer. */
struct view_grid {
	double a[3], b[3], dir[3]; /* image axes and viewing direction */
	double u0, v0, cell;      /* lower corner and cell size */
	size_t res;
	float *depth;             /* res * res, nearest depth per cell */
};

/* Point p in image cells (u, v) and its depth z along the view. */
static void view_project(const struct view_grid *g, const float *p, double *u, double *v,
			 double *z)
{
	double x[3] = { p[0], p[1], p[2] };
	*u = (x[0] * g->a[0] + x[1] * g->a[1] + x[2] * g->a[2] - g->u0) / g->cell;
	*v = (x[0] * g->b[0] + x[1] * g->b[1] + x[2] * g->b[2] - g->v0) / g->cell;
	*z = x[0] * g->dir[0] + x[1] * g->dir[1] + x[2] * g->dir[2];
}

/* Depth-buffer cell of projected (u, v); -1 outside. */
static long view_cell(const struct view_grid *g, double u, double v)
{
	if (!(u >= 0 && v >= 0 && u < (double)g->res && v < (double)g->res))
		return -1;
	return (long)((size_t)v * g->res + (size_t)u);
}

/* Nearest depth at every cell centre the triangle covers. */
static void view_raster(struct view_grid *g, const float *p0, const float *p1,
			const float *p2)
{
	double u[3], v[3], z[3];
	view_project(g, p0, &u[0], &v[0], &z[0]);
	view_project(g, p1, &u[1], &v[1], &z[1]);
	view_project(g, p2, &u[2], &v[2], &z[2]);
	raster_triangle(u, v, z, g->res, g->res, g->depth, NULL, 0);
}

static bool face_finite(const struct scan *s, const uint32_t *tr)
{
	return scan_vertex_finite(s, tr[0]) && scan_vertex_finite(s, tr[1]) &&
	       scan_vertex_finite(s, tr[2]);
}

int describe_view_mask(const struct scan *in, const double dir[3], uint8_t *vkeep,
		       uint8_t *fkeep, struct err *e)
{
	struct view_grid g;
	size_t nv = in->n_vertices, nf = in->n_faces;
	memset(&g, 0, sizeof(g));
	memset(vkeep, 0, nv);
	if (nf)
		memset(fkeep, 0, nf);
	double len = sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
	if (!(len > 0) || !isfinite(len))
		return err_set(e, ERR_INTERNAL, "view direction has no length");
	for (int k = 0; k < 3; k++)
		g.dir[k] = dir[k] / len;
	/* image axes: any two unit vectors perpendicular to dir and each other */
	double t[3] = { 0, 0, 0 };
	t[fabs(g.dir[0]) < 0.6 ? 0 : 1] = 1;
	double ta = t[0] * g.dir[0] + t[1] * g.dir[1] + t[2] * g.dir[2];
	for (int k = 0; k < 3; k++)
		g.a[k] = t[k] - ta * g.dir[k];
	double al = sqrt(g.a[0] * g.a[0] + g.a[1] * g.a[1] + g.a[2] * g.a[2]);
	for (int k = 0; k < 3; k++)
		g.a[k] /= al;
	g.b[0] = g.dir[1] * g.a[2] - g.dir[2] * g.a[1];
	g.b[1] = g.dir[2] * g.a[0] - g.dir[0] * g.a[2];
	g.b[2] = g.dir[0] * g.a[1] - g.dir[1] * g.a[0];
	/* the projected bounding square */
	double ulo = HUGE_VAL, uhi = -HUGE_VAL, vlo = HUGE_VAL, vhi = -HUGE_VAL;
	size_t nfin = 0;
	for (size_t i = 0; i < nv; i++) {
		if (!scan_vertex_finite(in, i))
			continue;
		const float *p = in->positions + 3 * i;
		double u = p[0] * g.a[0] + p[1] * g.a[1] + p[2] * g.a[2];
		double v = p[0] * g.b[0] + p[1] * g.b[1] + p[2] * g.b[2];
		ulo = fmin(ulo, u);
		uhi = fmax(uhi, u);
		vlo = fmin(vlo, v);
		vhi = fmax(vhi, v);
		nfin++;
	}
	if (!nfin)
		return 0;
	/* a mesh: DESC_VIEW_RES cells across; a cloud: n / 4 cells in the square */
	g.res = DESC_VIEW_RES;
	if (!nf) {
		double r = sqrt((double)nfin / 4.0);
		if (r < (double)g.res)
			g.res = r > 4 ? (size_t)r : 4;
	}
	g.cell = fmax(uhi - ulo, vhi - vlo) / (double)g.res * (1 + 1e-9);
	if (!(g.cell > 0))
		g.cell = 1;
	g.u0 = ulo;
	g.v0 = vlo;
	g.depth = alloc_array(g.res * g.res, sizeof(float));
	if (!g.depth)
		return err_set(e, ERR_NOMEM, "out of memory for the depth buffer");
	for (size_t c = 0; c < g.res * g.res; c++)
		g.depth[c] = INFINITY;
	double tol = DESC_VIEW_TOL * g.cell;
	if (nf) {
		for (size_t f = 0; f < nf; f++) {
			const uint32_t *tr = in->indices + 3 * f;
			if (face_finite(in, tr))
				view_raster(&g, in->positions + 3 * (size_t)tr[0],
					    in->positions + 3 * (size_t)tr[1],
					    in->positions + 3 * (size_t)tr[2]);
		}
		/* a triangle is seen when its centre is not behind the nearest surface */
		for (size_t f = 0; f < nf; f++) {
			const uint32_t *tr = in->indices + 3 * f;
			if (!face_finite(in, tr))
				continue;
			float c[3];
			for (int k = 0; k < 3; k++)
				c[k] = (in->positions[3 * (size_t)tr[0] + (size_t)k] +
					in->positions[3 * (size_t)tr[1] + (size_t)k] +
					in->positions[3 * (size_t)tr[2] + (size_t)k]) / 3.0f;
			double u, v, z;
			view_project(&g, c, &u, &v, &z);
			long cell = view_cell(&g, u, v);
			/* isfinite: a triangle seen edge-on covers no cell centre */
			if (cell >= 0 && isfinite(g.depth[cell]) &&
			    !(z > (double)g.depth[cell] + tol)) {
				fkeep[f] = 1;
				vkeep[tr[0]] = vkeep[tr[1]] = vkeep[tr[2]] = 1;
			}
		}
	} else {
		for (size_t i = 0; i < nv; i++) {
			if (!scan_vertex_finite(in, i))
				continue;
			double u, v, z;
			view_project(&g, in->positions + 3 * i, &u, &v, &z);
			/* a point hides what lies behind it in its cell and the 8 around */
			for (int dv = -1; dv <= 1; dv++)
				for (int du = -1; du <= 1; du++) {
					long cell = view_cell(&g, u + du, v + dv);
					if (cell >= 0 && z < (double)g.depth[cell])
						g.depth[cell] = (float)z;
				}
		}
		for (size_t i = 0; i < nv; i++) {
			if (!scan_vertex_finite(in, i))
				continue;
			double u, v, z;
			view_project(&g, in->positions + 3 * i, &u, &v, &z);
			long cell = view_cell(&g, u, v);
			vkeep[i] = cell >= 0 && !(z > (double)g.depth[cell] + tol);
		}
	}
	xfree(g.depth);
	return 0;
}

void describe_view_direction(int i, double dir[3])
{
	/* a Fibonacci lattice on the sphere: even, and fixed */
	double z = 1.0 - (2.0 * i + 1.0) / DESC_VIEWS;
	double r = sqrt(fmax(0.0, 1.0 - z * z)), ph = 2.399963229728653 * i;
	dir[0] = r * cos(ph);
	dir[1] = r * sin(ph);
	dir[2] = z;
}

/* The arrays a view owns; everything else in it is in's. */
static void view_release(struct scan *v)
{
	xfree(v->positions);
	xfree(v->normals);
	xfree(v->colors);
	xfree(v->uvs);
	xfree(v->indices);
	xfree(v->corner_uvs);
	xfree(v->face_material);
	xfree(v->face_colors);
	memset(v, 0, sizeof(*v));
}

/*
 * Shallow copy of in keeping the marked vertices and faces (a mesh keeps
 * the vertices of its kept faces only).  Returns 0 or ERR_NOMEM.
 */
static int view_build(const struct scan *in, const uint8_t *vkeep, const uint8_t *fkeep,
		      uint32_t *map, struct scan *out, struct err *e)
{
	size_t nv = in->n_vertices, nf = in->n_faces, kv = 0, kf = 0;
	*out = *in;
	out->positions = out->normals = out->uvs = out->corner_uvs = NULL;
	out->colors = out->face_colors = NULL;
	out->indices = NULL;
	out->face_material = NULL;
	for (size_t i = 0; i < nv; i++)
		map[i] = vkeep[i] ? (uint32_t)kv++ : UINT32_MAX;
	for (size_t f = 0; f < nf; f++)
		kf += fkeep[f] != 0;
	out->n_vertices = kv;
	out->n_faces = out->n_polygons = kf;
	out->n_nonfinite = 0;
	out->positions = alloc_array(kv ? kv : 1, 3 * sizeof(float));
	if (in->normals)
		out->normals = alloc_array(kv ? kv : 1, 3 * sizeof(float));
	if (in->colors)
		out->colors = alloc_array(kv ? kv : 1, 4);
	if (in->uvs)
		out->uvs = alloc_array(kv ? kv : 1, 2 * sizeof(float));
	if (kf) {
		out->indices = alloc_array(kf, 3 * sizeof(uint32_t));
		if (in->corner_uvs)
			out->corner_uvs = alloc_array(kf, 6 * sizeof(float));
		if (in->face_material)
			out->face_material = alloc_array(kf, sizeof(int32_t));
		if (in->face_colors)
			out->face_colors = alloc_array(kf, 4);
	}
	if (!out->positions || (in->normals && !out->normals) || (in->colors && !out->colors) ||
	    (in->uvs && !out->uvs) || (kf && !out->indices) ||
	    (kf && in->corner_uvs && !out->corner_uvs) ||
	    (kf && in->face_material && !out->face_material) ||
	    (kf && in->face_colors && !out->face_colors)) {
		view_release(out);
		return err_set(e, ERR_NOMEM, "out of memory for a view of %zu points", kv);
	}
	for (int k = 0; k < 3; k++)
		out->bbox_min[k] = out->bbox_max[k] = 0;
	for (size_t i = 0; i < nv; i++) {
		uint32_t j = map[i];
		if (j == UINT32_MAX)
			continue;
		const float *p = in->positions + 3 * i;
		memcpy(out->positions + 3 * (size_t)j, p, 3 * sizeof(float));
		for (int k = 0; k < 3; k++) {
			if (j == 0 || p[k] < out->bbox_min[k])
				out->bbox_min[k] = p[k];
			if (j == 0 || p[k] > out->bbox_max[k])
				out->bbox_max[k] = p[k];
		}
		if (in->normals)
			memcpy(out->normals + 3 * (size_t)j, in->normals + 3 * i, 3 * sizeof(float));
		if (in->colors)
			memcpy(out->colors + 4 * (size_t)j, in->colors + 4 * i, 4);
		if (in->uvs)
			memcpy(out->uvs + 2 * (size_t)j, in->uvs + 2 * i, 2 * sizeof(float));
	}
	kf = 0;
	for (size_t f = 0; f < nf; f++) {
		if (!fkeep[f])
			continue;
		for (int k = 0; k < 3; k++)
			out->indices[3 * kf + (size_t)k] = map[in->indices[3 * f + (size_t)k]];
		if (in->corner_uvs)
			memcpy(out->corner_uvs + 6 * kf, in->corner_uvs + 6 * f, 6 * sizeof(float));
		if (in->face_material)
			out->face_material[kf] = in->face_material[f];
		if (in->face_colors)
			memcpy(out->face_colors + 4 * kf, in->face_colors + 4 * f, 4);
		kf++;
	}
	return 0;
}

int describe_views(const struct scan *s, const struct describe_opts *o, const float *whole,
		   float *out, size_t *n_described, struct err *e)
{
	size_t nv = s->n_vertices, nf = s->n_faces, dim = describe_dim();
	uint8_t *vk = alloc_array(nv ? nv : 1, 1);
	uint8_t *fk = alloc_array(nf ? nf : 1, 1);
	uint32_t *map = alloc_array(nv ? nv : 1, sizeof(uint32_t));
	int rc = 0;
	if (n_described)
		*n_described = 0;
	if (!vk || !fk || !map) {
		rc = err_set(e, ERR_NOMEM, "out of memory for the views of %zu points", nv);
		goto out;
	}
	struct describe_opts vo = *o;
	vo.fit_stride = DESC_VIEW_FIT_STRIDE;
	for (int i = 0; i < DESC_VIEWS; i++) {
		double dir[3];
		struct scan v;
		struct err ev;
		float *dst = out + (size_t)i * dim;
		describe_view_direction(i, dir);
		if ((rc = describe_view_mask(s, dir, vk, fk, e)) < 0)
			goto out;
		size_t kv = 0, kf = 0;
		for (size_t j = 0; j < nv; j++)
			kv += vk[j];
		for (size_t f = 0; f < nf; f++)
			kf += fk[f];
		if (kv == nv && kf == nf) {
			/* everything is seen (an open sheet square-on): the view is the scan */
			memcpy(dst, whole, dim * sizeof(float));
			if (n_described)
				(*n_described)++;
			continue;
		}
		if ((rc = view_build(s, vk, fk, map, &v, e)) < 0)
			goto out;
		err_init(&ev);
		rc = describe_scan(&v, &vo, dst, NULL, &ev);
		view_release(&v);
		if (rc == ERR_NOMEM || rc == ERR_LIMIT) {
			*e = ev;
			goto out;
		}
		if (rc < 0) {
			/* too little seen from there: the whole stands in for it */
			memcpy(dst, whole, dim * sizeof(float));
			rc = 0;
		} else if (n_described) {
			(*n_described)++;
		}
	}
out:
	xfree(vk);
	xfree(fk);
	xfree(map);
	return rc;
}
