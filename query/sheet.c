/*
 * sheet.c - contact sheets of a sculpt and its matches (sheet.h).
 */
#include "sheet.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "../common/raster.h"
#include "../formats/image.h"
#include "../formats/scan.h"
#include "../indexer/describe.h"

#include <math.h>
#include <string.h>

#include "../common/banned.h"

#define SS 2 /* samples per pixel along each axis */

static const uint8_t bg_sheet[3] = { 238, 238, 238 };
static const uint8_t bg_sculpt[3] = { 220, 230, 244 };
static const uint8_t bg_match[3] = { 255, 255, 255 };
static const uint8_t bg_missing[3] = { 248, 226, 226 };
static const uint8_t ink_cross[3] = { 200, 90, 90 };
static const uint8_t bar_track[3] = { 214, 214, 214 };
static const uint8_t bar_fill[3] = { 38, 118, 108 };

/* The picture's frame: screen axes x, y and the viewing direction d. */
struct frame {
	double c[3], x[3], y[3], d[3];
	double scale, u0, v0; /* screen pixel = (dot(p - c, x) - u0) * scale */
};

static double dot3(const double *a, const double *b)
{
	return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static bool unit3(double *a)
{
	double l = sqrt(dot3(a, a));
	if (!(l > 1e-12) || !isfinite(l))
		return false;
	for (int k = 0; k < 3; k++)
		a[k] /= l;
	return true;
}

static void cross3(const double *a, const double *b, double *out)
{
	out[0] = a[1] * b[2] - a[2] * b[1];
	out[1] = a[2] * b[0] - a[0] * b[2];
	out[2] = a[0] * b[1] - a[1] * b[0];
}

/*
 * The way the surface faces on the whole: the sum of its triangles' area
 * vectors (a cloud's normals), kept only when it is a good part of the
 * total (an open surface); 0 for a closed one.
 */
static void facing(const struct scan *s, double a[3])
{
	double sum = 0;
	a[0] = a[1] = a[2] = 0;
	for (size_t t = 0; t < s->n_faces; t++) {
		const uint32_t *tr = s->indices + 3 * t;
		if (!scan_vertex_finite(s, tr[0]) || !scan_vertex_finite(s, tr[1]) ||
		    !scan_vertex_finite(s, tr[2]))
			continue;
		double e1[3], e2[3], n[3];
		for (int k = 0; k < 3; k++) {
			e1[k] = (double)s->positions[3 * tr[1] + k] - s->positions[3 * tr[0] + k];
			e2[k] = (double)s->positions[3 * tr[2] + k] - s->positions[3 * tr[0] + k];
		}
		cross3(e1, e2, n);
		for (int k = 0; k < 3; k++)
			a[k] += n[k];
		sum += sqrt(dot3(n, n));
	}
	for (size_t i = 0; !s->n_faces && s->normals && i < s->n_vertices; i++) {
		double n[3] = { s->normals[3 * i], s->normals[3 * i + 1], s->normals[3 * i + 2] };
		if (!isfinite(n[0] + n[1] + n[2]))
			continue;
		for (int k = 0; k < 3; k++)
			a[k] += n[k];
		sum += sqrt(dot3(n, n));
	}
	if (!(sqrt(dot3(a, a)) > 0.1 * sum))
		a[0] = a[1] = a[2] = 0;
}

/*
 * Look along dir (or down the least axis), x the largest axis across it,
 * y so that x, y and the direction towards the viewer are right-handed.
 */
static bool frame_axes(const struct scan *s, const double *dir, struct frame *f)
{
	double axis[3][3];
	if (!describe_axes(s, f->c, axis))
		return false;
	/* signs fixed (largest component positive): the same picture everywhere */
	for (int a = 0; a < 3; a++) {
		int big = 0;
		for (int k = 1; k < 3; k++)
			if (fabs(axis[a][k]) > fabs(axis[a][big]))
				big = k;
		if (axis[a][big] < 0)
			for (int k = 0; k < 3; k++)
				axis[a][k] = -axis[a][k];
	}
	/*
	 * By default from the side of the least axis that an open surface
	 * faces (a one-sided scan from its scanner's side), else from its +
	 * side: a tile in z = 0 from above.
	 */
	double down[3] = { -axis[2][0], -axis[2][1], -axis[2][2] }, face[3];
	facing(s, face);
	if (dot3(face, axis[2]) < 0)
		for (int k = 0; k < 3; k++)
			down[k] = -down[k];
	memcpy(f->d, dir ? dir : down, sizeof(f->d));
	if (!unit3(f->d))
		memcpy(f->d, down, sizeof(f->d));
	for (int a = 0; a < 3; a++) {
		double t = dot3(axis[a], f->d);
		for (int k = 0; k < 3; k++)
			f->x[k] = axis[a][k] - t * f->d[k];
		if (unit3(f->x))
			break;
	}
	cross3(f->x, f->d, f->y); /* x cross y = -d: towards the viewer */
	return unit3(f->y);
}

/* Fit the projected finite vertices into w x h with a margin. */
static void frame_fit(const struct scan *s, struct frame *f, uint32_t w, uint32_t h)
{
	double lo[2] = { INFINITY, INFINITY }, hi[2] = { -INFINITY, -INFINITY };
	for (size_t i = 0; i < s->n_vertices; i++) {
		if (!scan_vertex_finite(s, i))
			continue;
		double p[3];
		for (int k = 0; k < 3; k++)
			p[k] = s->positions[3 * i + k] - f->c[k];
		double u = dot3(p, f->x), v = dot3(p, f->y);
		lo[0] = fmin(lo[0], u);
		hi[0] = fmax(hi[0], u);
		lo[1] = fmin(lo[1], v);
		hi[1] = fmax(hi[1], v);
	}
	double du = hi[0] - lo[0], dv = hi[1] - lo[1];
	double margin = 0.06;
	double su = du > 0 ? (double)w * (1 - 2 * margin) / du : INFINITY;
	double sv = dv > 0 ? (double)h * (1 - 2 * margin) / dv : INFINITY;
	f->scale = fmin(su, sv);
	if (!isfinite(f->scale))
		f->scale = 1; /* a single point */
	/* centre the bounding box */
	f->u0 = 0.5 * (lo[0] + hi[0]) - 0.5 * (double)w / f->scale;
	f->v0 = 0.5 * (lo[1] + hi[1]) - 0.5 * (double)h / f->scale;
}

/* Vertex i on screen: column u, row v (top row 0), depth z (smaller nearer). */
static void project(const struct frame *f, const struct scan *s, size_t i, uint32_t h,
		    double *u, double *v, double *z)
{
	double p[3];
	for (int k = 0; k < 3; k++)
		p[k] = s->positions[3 * i + k] - f->c[k];
	*u = (dot3(p, f->x) - f->u0) * f->scale;
	*v = (double)h - (dot3(p, f->y) - f->v0) * f->scale;
	*z = dot3(p, f->d);
}

/* Lambert with an ambient term; n faces the viewer after this. */
static float shade(const struct frame *f, double *n)
{
	if (dot3(n, f->d) > 0)
		for (int k = 0; k < 3; k++)
			n[k] = -n[k];
	/* light from the viewer's side, upper left */
	double l[3];
	for (int k = 0; k < 3; k++)
		l[k] = -f->d[k] - 0.5 * f->x[k] + 0.6 * f->y[k];
	unit3(l);
	double lam = dot3(n, l);
	return (float)(0.16 + 0.84 * (lam > 0 ? lam : 0));
}

/*
 * A lit surface point's pixel colour, packed as r << 16 | g << 8 | b in a
 * float (exact below 2^24): clay, a little warmer than grey, or albedo
 * (sRGB 0..255) lit by lum.
 */
static float paint(float lum, const double *albedo)
{
	double c[3];
	if (albedo) {
		for (int k = 0; k < 3; k++)
			c[k] = fmin(albedo[k] * (0.15 + (double)lum), 255);
	} else {
		double g = 24 + 226 * (double)lum;
		c[0] = g;
		c[1] = 0.97 * g;
		c[2] = 0.92 * g;
	}
	long r = lround(c[0]), gg = lround(c[1]), b = lround(c[2]);
	return (float)(r << 16 | gg << 8 | b);
}

/*
 * Face t on screen (u, v, z) and its unit normal; false when it has a
 * non-finite corner or no area.
 */
static bool face_on_screen(const struct scan *s, const struct frame *f, size_t t, uint32_t h,
			   double u[3], double v[3], double z[3], double n[3])
{
	const uint32_t *tr = s->indices + 3 * t;
	if (!scan_vertex_finite(s, tr[0]) || !scan_vertex_finite(s, tr[1]) ||
	    !scan_vertex_finite(s, tr[2]))
		return false;
	double e1[3], e2[3];
	for (int k = 0; k < 3; k++)
		project(f, s, tr[k], h, &u[k], &v[k], &z[k]);
	for (int k = 0; k < 3; k++) {
		e1[k] = (double)s->positions[3 * tr[1] + k] - s->positions[3 * tr[0] + k];
		e2[k] = (double)s->positions[3 * tr[2] + k] - s->positions[3 * tr[0] + k];
	}
	cross3(e1, e2, n);
	return unit3(n);
}

/*
 * Triangles.  Without colour each is one lit clay tone.  With colour the
 * buffer first records which face each sample sees (face numbers are exact
 * in a float below 2^24), then each sample takes the colour at its own
 * point of that face, so a texture keeps its detail on large triangles;
 * bigger meshes take one colour per face, at its centre.
 */
static void draw_triangles(const struct scan *s, const struct image *tex, size_t n_tex,
			   const struct frame *f, float *zb, float *ib, uint32_t w, uint32_t h)
{
	bool colour = (tex && n_tex) || s->colors || s->face_colors;
	bool per_sample = colour && s->n_faces < ((size_t)1 << 24);
	double u[3], v[3], z[3], n[3], rgb[3];
	for (size_t t = 0; t < s->n_faces; t++) {
		if (!face_on_screen(s, f, t, h, u, v, z, n))
			continue;
		float value;
		if (per_sample)
			value = (float)t;
		else if (colour && describe_surface_rgb(s, tex, n_tex, t, 1.0 / 3, 1.0 / 3, rgb))
			value = paint(shade(f, n), rgb);
		else
			value = paint(shade(f, n), NULL);
		raster_triangle(u, v, z, w, h, zb, ib, value);
	}
	if (!per_sample)
		return;
	for (size_t j = 0; j < h; j++)
		for (size_t i = 0; i < w; i++) {
			float *at = ib + j * w + i;
			if (*at < 0)
				continue;
			size_t t = (size_t)*at;
			(void)face_on_screen(s, f, t, h, u, v, z, n); /* drawn: on screen */
			double cu = (double)i + 0.5, cv = (double)j + 0.5;
			double det = (u[1] - u[0]) * (v[2] - v[0]) - (u[2] - u[0]) * (v[1] - v[0]);
			double b1 = ((cu - u[0]) * (v[2] - v[0]) - (u[2] - u[0]) * (cv - v[0])) / det;
			double b2 = ((u[1] - u[0]) * (cv - v[0]) - (cu - u[0]) * (v[1] - v[0])) / det;
			bool has = describe_surface_rgb(s, tex, n_tex, t, b1, b2, rgb);
			*at = paint(shade(f, n), has ? rgb : NULL);
		}
}

static void draw_points(const struct scan *s, const struct frame *f, float *zb, float *ib,
			uint32_t w, uint32_t h)
{
	size_t n = 0;
	double zlo = INFINITY, zhi = -INFINITY, lo[2] = { INFINITY, INFINITY };
	double hi[2] = { -INFINITY, -INFINITY };
	for (size_t i = 0; i < s->n_vertices; i++) {
		if (!scan_vertex_finite(s, i))
			continue;
		double u, v, z;
		project(f, s, i, h, &u, &v, &z);
		zlo = fmin(zlo, z);
		zhi = fmax(zhi, z);
		lo[0] = fmin(lo[0], u);
		hi[0] = fmax(hi[0], u);
		lo[1] = fmin(lo[1], v);
		hi[1] = fmax(hi[1], v);
		n++;
	}
	/* dots a little wider than the points' spacing over their extent */
	double spacing = sqrt(fmax(hi[0] - lo[0], 1) * fmax(hi[1] - lo[1], 1) / (double)(n ? n : 1));
	double half = fmin(fmax(0.65 * spacing, 0.5), 8.0);
	for (size_t i = 0; i < s->n_vertices; i++) {
		if (!scan_vertex_finite(s, i))
			continue;
		double u, v, z, nv[3];
		project(f, s, i, h, &u, &v, &z);
		float lum;
		if (s->normals) {
			for (int k = 0; k < 3; k++)
				nv[k] = s->normals[3 * i + k];
			lum = unit3(nv) ? shade(f, nv) : 0.5f;
		} else {
			lum = (float)(zhi > zlo ? 0.9 - 0.6 * (z - zlo) / (zhi - zlo) : 0.7);
		}
		double rgb[3];
		if (s->colors)
			for (int k = 0; k < 3; k++)
				rgb[k] = s->colors[4 * i + k];
		float px = paint(lum, s->colors ? rgb : NULL);
		long i0 = (long)ceil(u - half - 0.5), i1 = (long)floor(u + half - 0.5);
		long j0 = (long)ceil(v - half - 0.5), j1 = (long)floor(v + half - 0.5);
		for (long j = j0 < 0 ? 0 : j0; j <= j1 && j < (long)h; j++)
			for (long k = i0 < 0 ? 0 : i0; k <= i1 && k < (long)w; k++) {
				size_t at = (size_t)j * w + (size_t)k;
				if ((float)z < zb[at]) {
					zb[at] = (float)z;
					ib[at] = px;
				}
			}
	}
}

int sheet_render(const struct scan *s, const struct image *tex, size_t n_tex,
		 const double *dir, uint8_t *rgb, uint32_t w, uint32_t h, struct err *e)
{
	struct frame f;
	if (!frame_axes(s, dir, &f))
		return err_set(e, ERR_UNDESCRIBABLE, "nothing to draw: no finite vertex");
	uint32_t W = w * SS, H = h * SS;
	frame_fit(s, &f, W, H);
	float *zb = alloc_array((size_t)W * H, sizeof(float));
	float *ib = alloc_array((size_t)W * H, sizeof(float));
	if (!zb || !ib) {
		xfree(zb);
		xfree(ib);
		return err_set(e, ERR_NOMEM, "out of memory for a %ux%u picture", w, h);
	}
	for (size_t i = 0; i < (size_t)W * H; i++) {
		zb[i] = INFINITY;
		ib[i] = -1;
	}
	if (s->n_faces)
		draw_triangles(s, tex, n_tex, &f, zb, ib, W, H);
	else
		draw_points(s, &f, zb, ib, W, H);
	/* average each pixel's samples; uncovered samples show the background */
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			uint8_t *px = rgb + ((size_t)y * w + x) * 3;
			double acc[3] = { 0, 0, 0 };
			for (int sy = 0; sy < SS; sy++)
				for (int sx = 0; sx < SS; sx++) {
					float c = ib[((size_t)y * SS + (size_t)sy) * W + (size_t)x * SS + (size_t)sx];
					if (c < 0) {
						for (int k = 0; k < 3; k++)
							acc[k] += px[k];
						continue;
					}
					uint32_t v = (uint32_t)c;
					acc[0] += v >> 16;
					acc[1] += (v >> 8) & 255;
					acc[2] += v & 255;
				}
			for (int k = 0; k < 3; k++)
				px[k] = (uint8_t)lround(acc[k] / (SS * SS));
		}
	xfree(zb);
	xfree(ib);
	return 0;
}

int sheet_init(struct sheet *sh, uint32_t rows, uint32_t cols, struct err *e)
{
	memset(sh, 0, sizeof(*sh));
	if (!rows || !cols || rows > SHEET_MAX_ROWS || cols > SHEET_MAX_COLS)
		return err_set(e, ERR_LIMIT, "a sheet of %u x %u cells: at most %u x %u", rows, cols,
			       SHEET_MAX_ROWS, SHEET_MAX_COLS);
	sh->rows = rows;
	sh->cols = cols;
	sh->w = cols * (SHEET_CELL + SHEET_PAD) + SHEET_PAD;
	sh->h = rows * (SHEET_CELL + SHEET_BAR + 2 + SHEET_PAD) + SHEET_PAD;
	sh->rgb = alloc_array((size_t)sh->w * sh->h, 3);
	if (!sh->rgb)
		return err_set(e, ERR_NOMEM, "out of memory for a %ux%u sheet", sh->w, sh->h);
	for (size_t i = 0; i < (size_t)sh->w * sh->h; i++)
		memcpy(sh->rgb + 3 * i, bg_sheet, 3);
	return 0;
}

static void fill(struct sheet *sh, uint32_t x0, uint32_t y0, uint32_t w, uint32_t h,
		 const uint8_t *c)
{
	for (uint32_t y = y0; y < y0 + h; y++)
		for (uint32_t x = x0; x < x0 + w; x++)
			memcpy(sh->rgb + ((size_t)y * sh->w + x) * 3, c, 3);
}

int sheet_cell(struct sheet *sh, uint32_t row, uint32_t col, enum sheet_kind kind,
	       const struct scan *s, const struct image *tex, size_t n_tex, const double *dir,
	       double score, struct err *e)
{
	if (row >= sh->rows || col >= sh->cols)
		return err_set(e, ERR_INTERNAL, "cell %u,%u outside a %ux%u sheet", row, col,
			       sh->rows, sh->cols);
	uint32_t x0 = SHEET_PAD + col * (SHEET_CELL + SHEET_PAD);
	uint32_t y0 = SHEET_PAD + row * (SHEET_CELL + SHEET_BAR + 2 + SHEET_PAD);
	int rc = 0;
	if (kind != SHEET_MISSING) {
		uint8_t *pic = alloc_array((size_t)SHEET_CELL * SHEET_CELL, 3);
		if (!pic)
			return err_set(e, ERR_NOMEM, "out of memory for a picture");
		const uint8_t *bg = kind == SHEET_SCULPT ? bg_sculpt : bg_match;
		for (size_t i = 0; i < (size_t)SHEET_CELL * SHEET_CELL; i++)
			memcpy(pic + 3 * i, bg, 3);
		rc = sheet_render(s, tex, n_tex, dir, pic, SHEET_CELL, SHEET_CELL, e);
		for (uint32_t y = 0; !rc && y < SHEET_CELL; y++)
			memcpy(sh->rgb + ((size_t)(y0 + y) * sh->w + x0) * 3,
			       pic + (size_t)y * SHEET_CELL * 3, (size_t)SHEET_CELL * 3);
		xfree(pic);
		if (rc == ERR_NOMEM)
			return rc;
	}
	if (kind == SHEET_MISSING || rc) {
		fill(sh, x0, y0, SHEET_CELL, SHEET_CELL, bg_missing);
		for (uint32_t t = 16; t < SHEET_CELL - 16; t++)
			for (uint32_t k = 0; k < 3; k++) {
				fill(sh, x0 + t, y0 + t + k - 1, 1, 1, ink_cross);
				fill(sh, x0 + SHEET_CELL - 1 - t, y0 + t + k - 1, 1, 1, ink_cross);
			}
	}
	if (kind != SHEET_SCULPT && score >= 0) {
		double f = score > 100 ? 1 : score / 100;
		uint32_t len = (uint32_t)lround(f * SHEET_CELL);
		fill(sh, x0, y0 + SHEET_CELL + 2, SHEET_CELL, SHEET_BAR, bar_track);
		fill(sh, x0, y0 + SHEET_CELL + 2, len, SHEET_BAR, bar_fill);
	}
	return rc;
}

int sheet_write(const struct sheet *sh, const char *path, struct err *e)
{
	return image_write_png(path, sh->rgb, sh->w, sh->h, 3, e);
}

void sheet_release(struct sheet *sh)
{
	xfree(sh->rgb);
	memset(sh, 0, sizeof(*sh));
}
