/*
 * test_sheet.c - contact-sheet drawings (query/sheet.c): silhouettes of
 * known boxes have their proportions along each axis, light falls from
 * the upper left, an open surface is seen from the side it faces, relief
 * shows as shading that a smooth surface lacks, colour is drawn where the
 * scan has it,
 * clouds are drawn as dots, a scan with nothing to draw is refused
 * without touching the picture, and a sheet has its cells, score bars
 * and crossed-out cells where they belong, written as a PNG that reads
 * back pixel for pixel.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "err.h"
#include "formats/image.h"
#include "formats/scan.h"
#include "query/sheet.h"
#include "tests/lib/gen.h"

#include "banned.h"

#define PX 128u

static const uint8_t white[3] = { 255, 255, 255 };

static uint8_t *blank(void)
{
	uint8_t *p = alloc_array((size_t)PX * PX, 3);
	assert_non_null(p);
	for (size_t i = 0; i < (size_t)PX * PX; i++)
		memcpy(p + 3 * i, white, 3);
	return p;
}

static bool is_white(const uint8_t *p, uint32_t x, uint32_t y)
{
	return !memcmp(p + ((size_t)y * PX + x) * 3, white, 3);
}

/* Bounding box of the drawn (non-white) pixels; returns their count. */
static size_t drawn_box(const uint8_t *p, uint32_t *x0, uint32_t *x1, uint32_t *y0, uint32_t *y1)
{
	size_t n = 0;
	*x0 = *y0 = PX;
	*x1 = *y1 = 0;
	for (uint32_t y = 0; y < PX; y++)
		for (uint32_t x = 0; x < PX; x++)
			if (!is_white(p, x, y)) {
				n++;
				*x0 = x < *x0 ? x : *x0;
				*x1 = x > *x1 ? x : *x1;
				*y0 = y < *y0 ? y : *y0;
				*y1 = y > *y1 ? y : *y1;
			}
	return n;
}

/* A closed box a x b x c, corner at the origin: 8 vertices, 12 triangles. */
static void box(struct scan *s, double a, double b, double c)
{
	static const uint32_t quads[6][4] = {
		{ 0, 1, 3, 2 }, { 4, 6, 7, 5 }, { 0, 4, 5, 1 },
		{ 2, 3, 7, 6 }, { 0, 2, 6, 4 }, { 1, 5, 7, 3 },
	};
	struct err e;
	err_init(&e);
	scan_init(s);
	assert_int_equal(scan_alloc(s, 8, 12, 0, &e), 0);
	s->n_vertices = 8;
	s->n_faces = 12;
	for (uint32_t i = 0; i < 8; i++) {
		s->positions[3 * i] = (float)(i & 4 ? a : 0);
		s->positions[3 * i + 1] = (float)(i & 2 ? b : 0);
		s->positions[3 * i + 2] = (float)(i & 1 ? c : 0);
	}
	for (int q = 0; q < 6; q++) {
		uint32_t *t = s->indices + 6 * q;
		t[0] = quads[q][0];
		t[1] = quads[q][1];
		t[2] = quads[q][2];
		t[3] = quads[q][0];
		t[4] = quads[q][2];
		t[5] = quads[q][3];
	}
	s->n_polygons = 12;
	assert_int_equal(scan_finalize(s, &e), 0);
}

static void render_ok(const struct scan *s, const double *dir, uint8_t *p)
{
	struct err e;
	err_init(&e);
	int rc = sheet_render(s, NULL, 0, dir, p, PX, PX, &e);
	if (rc)
		fail_msg("sheet_render: %s", e.msg);
}

/*
 * A 4 x 2 x 1 box seen along its least axis (z) fills the picture's width
 * less the margins and half as much height; along x it shows its 2 x 1
 * end; the drawing is centred.
 */
static void test_sheet_box_proportions(void **state)
{
	(void)state;
	struct scan s;
	uint32_t x0, x1, y0, y1;
	box(&s, 4, 2, 1);
	uint8_t *p = blank();
	render_ok(&s, NULL, p);
	size_t n = drawn_box(p, &x0, &x1, &y0, &y1);
	double wd = x1 - x0 + 1, ht = y1 - y0 + 1;
	assert_true(fabs(wd - 0.88 * PX) <= 2);
	assert_true(fabs(ht - 0.44 * PX) <= 2);
	assert_true(fabs(wd * ht - (double)n) <= 0.02 * wd * ht); /* a filled rectangle */
	assert_true(abs((int)(x0 + x1) - (int)PX) <= 2);
	assert_true(abs((int)(y0 + y1) - (int)PX) <= 2);
	/* seen square-on, the face is one flat colour */
	const uint8_t *c = p + ((size_t)(PX / 2) * PX + PX / 2) * 3;
	assert_memory_equal(c, p + ((size_t)(y0 + 3) * PX + x0 + 3) * 3, 3);

	const double along_x[3] = { 1, 0, 0 };
	for (size_t i = 0; i < (size_t)PX * PX; i++)
		memcpy(p + 3 * i, white, 3);
	render_ok(&s, along_x, p);
	drawn_box(p, &x0, &x1, &y0, &y1);
	wd = x1 - x0 + 1;
	ht = y1 - y0 + 1;
	assert_true(fabs(wd - 0.88 * PX) <= 2);
	assert_true(fabs(ht - 0.44 * PX) <= 2);
	xfree(p);
	scan_release(&s);
}

/*
 * A roof, ridge along x (its longest axis), seen from above: x runs to
 * the right and y up the picture, and the light comes from above, upper
 * left, so the slope facing +y (upper half) is lighter than the one
 * facing -y.  A face seen square-on has the colour of the shading model:
 * 0.16 + 0.84 n.l with n.l = 1 / sqrt(1 + 0.5^2 + 0.6^2), grey 24 + 226 of
 * that, warmed by 1, 0.97, 0.92.
 */
static void test_sheet_light_from_upper_left(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	err_init(&e);
	scan_init(&s);
	assert_int_equal(scan_alloc(&s, 6, 4, 0, &e), 0);
	static const float v[6][3] = { { 0, -1, 0 }, { 0, 0, 0.4f }, { 0, 1, 0 },
				       { 4, -1, 0 }, { 4, 0, 0.4f }, { 4, 1, 0 } };
	static const uint32_t f[4][3] = { { 0, 3, 4 }, { 0, 4, 1 }, { 1, 4, 5 }, { 1, 5, 2 } };
	memcpy(s.positions, v, sizeof(v));
	memcpy(s.indices, f, sizeof(f));
	s.n_vertices = 6;
	s.n_faces = s.n_polygons = 4;
	assert_int_equal(scan_finalize(&s, &e), 0);
	uint8_t *p = blank();
	render_ok(&s, NULL, p);
	const uint8_t *up = p + ((size_t)(PX / 2 - PX / 8) * PX + PX / 2) * 3;
	const uint8_t *dn = p + ((size_t)(PX / 2 + PX / 8) * PX + PX / 2) * 3;
	assert_false(is_white(p, PX / 2, PX / 2 - PX / 8));
	assert_false(is_white(p, PX / 2, PX / 2 + PX / 8));
	assert_true(up[0] > dn[0] + 10);
	assert_true(dn[0] > 24); /* the ambient light: no face black */
	scan_release(&s);

	box(&s, 4, 2, 1);
	for (size_t i = 0; i < (size_t)PX * PX; i++)
		memcpy(p + 3 * i, white, 3);
	render_ok(&s, NULL, p);
	const uint8_t *c = p + ((size_t)(PX / 2) * PX + PX / 2) * 3;
	double g = 24 + 226 * (0.16 + 0.84 / sqrt(1 + 0.25 + 0.36));
	assert_true(fabs(c[0] - g) <= 1);
	assert_true(fabs(c[1] - 0.97 * g) <= 1);
	assert_true(fabs(c[2] - 0.92 * g) <= 1);
	xfree(p);
	scan_release(&s);
}

/* A bowl z = 0.3 (x^2 + y^2) over [-1.5, 1.5] x [-1, 1]; normals up unless flipped. */
static void bowl(struct scan *s, bool down)
{
	const size_t n = 41;
	struct err e;
	err_init(&e);
	scan_init(s);
	assert_int_equal(scan_alloc(s, n * n, 2 * (n - 1) * (n - 1), 0, &e), 0);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			double x = -1.5 + 3.0 * (double)i / (double)(n - 1);
			double y = -1.0 + 2.0 * (double)j / (double)(n - 1);
			float *p = s->positions + 3 * (i * n + j);
			p[0] = (float)x;
			p[1] = (float)y;
			p[2] = (float)(0.3 * (x * x + y * y));
		}
	size_t k = 0;
	for (size_t i = 0; i + 1 < n; i++)
		for (size_t j = 0; j + 1 < n; j++) {
			uint32_t a = (uint32_t)(i * n + j), b = (uint32_t)((i + 1) * n + j);
			uint32_t c = b + 1, d = a + 1;
			uint32_t t[6] = { a, b, c, a, c, d };
			if (down) {
				t[1] = c;
				t[2] = b;
				t[4] = d;
				t[5] = c;
			}
			memcpy(s->indices + 3 * k, t, sizeof(t));
			k += 2;
		}
	s->n_vertices = n * n;
	s->n_faces = s->n_polygons = k;
	assert_int_equal(scan_finalize(s, &e), 0);
}

/* Mean grey of the drawn pixels of a quadrant (qx, qy: 0 left / top, 1 right / bottom). */
static double quadrant(const uint8_t *p, int qx, int qy)
{
	double s = 0, n = 0;
	for (uint32_t y = (uint32_t)qy * PX / 2; y < (uint32_t)(qy + 1) * PX / 2; y++)
		for (uint32_t x = (uint32_t)qx * PX / 2; x < (uint32_t)(qx + 1) * PX / 2; x++)
			if (!is_white(p, x, y)) {
				s += p[((size_t)y * PX + x) * 3];
				n++;
			}
	assert_true(n > 0);
	return s / n;
}

/*
 * An open surface is drawn from the side it faces: a bowl whose faces
 * face up is seen from above, into it, so the light from the upper left
 * falls on its lower-right wall; wound the other way it is seen from
 * below, a dome lit on its upper left.
 */
static void test_sheet_open_surface_from_its_side(void **state)
{
	(void)state;
	struct scan s;
	uint8_t *p = blank();
	bowl(&s, false);
	render_ok(&s, NULL, p);
	assert_true(quadrant(p, 1, 1) > quadrant(p, 0, 0) + 10);
	scan_release(&s);
	for (size_t i = 0; i < (size_t)PX * PX; i++)
		memcpy(p + 3 * i, white, 3);
	bowl(&s, true);
	render_ok(&s, NULL, p);
	assert_true(quadrant(p, 0, 0) > quadrant(p, 1, 1) + 10);
	scan_release(&s);
	xfree(p);
}

/* Mean grey step between drawn neighbours along rows: fine shading. */
static double drawn_steps(const uint8_t *p)
{
	double s = 0, n = 0;
	for (uint32_t y = 0; y < PX; y++)
		for (uint32_t x = 0; x + 1 < PX; x++) {
			if (is_white(p, x, y) || is_white(p, x + 1, y))
				continue;
			s += fabs((double)p[((size_t)y * PX + x) * 3] - p[((size_t)y * PX + x + 1) * 3]);
			n++;
		}
	assert_true(n > 0.3 * PX * PX);
	return s / n;
}

/*
 * Relief reads: neighbouring pixels of a tile with stone relief differ
 * far more than those of the same smooth tile, whose shading only drifts.
 */
static void test_sheet_relief_shows(void **state)
{
	(void)state;
	struct gen_params g;
	struct scan smooth, stone;
	struct err e;
	err_init(&e);
	gen_params_init(&g);
	g.form = GEN_FORM_TILE;
	g.size_mm = 40;
	g.triangles = 60000;
	g.material = GEN_MAT_NONE;
	assert_int_equal(gen_scan(&g, &smooth, NULL, &e), 0);
	g.material = GEN_MAT_STONE;
	assert_int_equal(gen_scan(&g, &stone, NULL, &e), 0);
	uint8_t *a = blank(), *b = blank();
	render_ok(&smooth, NULL, a);
	render_ok(&stone, NULL, b);
	double sa = drawn_steps(a), sb = drawn_steps(b);
	assert_true(sb > 4 * sa);
	assert_true(sb > 4);
	xfree(a);
	xfree(b);
	scan_release(&smooth);
	scan_release(&stone);
}

/* Drawn pixels whose channel k exceeds both others by more than margin, and all drawn. */
static void dominant(const uint8_t *p, int k, int margin, size_t *hits, size_t *drawn)
{
	*hits = *drawn = 0;
	for (size_t i = 0; i < (size_t)PX * PX; i++) {
		const uint8_t *c = p + 3 * i;
		if (!memcmp(c, white, 3))
			continue;
		(*drawn)++;
		*hits += c[k] > c[(k + 1) % 3] + margin && c[k] > c[(k + 2) % 3] + margin;
	}
}

/*
 * Colour where the scan has it, by the descriptor's rule: a textured
 * tile whose texture is made all green is drawn green; without its
 * texture, as clay; with vertex colours all red, red.
 */
static void test_sheet_draws_colour(void **state)
{
	(void)state;
	struct gen_params g;
	struct scan s;
	struct image tex;
	struct err e;
	size_t hits, drawn;
	err_init(&e);
	gen_params_init(&g);
	g.form = GEN_FORM_TILE;
	g.triangles = 8000;
	g.color = GEN_COLOR_TEXTURE;
	image_init(&tex);
	assert_int_equal(gen_scan(&g, &s, &tex, &e), 0);
	assert_int_equal(s.n_textures, 1);
	for (size_t i = 0; i < (size_t)tex.width * tex.height; i++) {
		tex.rgba[4 * i] = 10;
		tex.rgba[4 * i + 1] = 200;
		tex.rgba[4 * i + 2] = 30;
	}
	uint8_t *p = blank();
	assert_int_equal(sheet_render(&s, &tex, 1, NULL, p, PX, PX, &e), 0);
	dominant(p, 1, 60, &hits, &drawn);
	assert_true(drawn > PX * PX / 4);
	assert_true(hits == drawn);
	for (size_t i = 0; i < (size_t)PX * PX; i++)
		memcpy(p + 3 * i, white, 3);
	render_ok(&s, NULL, p); /* no texture given: clay */
	dominant(p, 1, 5, &hits, &drawn);
	assert_int_equal(hits, 0);
	image_release(&tex);
	scan_release(&s);

	g.color = GEN_COLOR_VERTEX;
	assert_int_equal(gen_scan(&g, &s, NULL, &e), 0);
	assert_non_null(s.colors);
	for (size_t i = 0; i < s.n_vertices; i++) {
		s.colors[4 * i] = 220;
		s.colors[4 * i + 1] = 20;
		s.colors[4 * i + 2] = 20;
	}
	for (size_t i = 0; i < (size_t)PX * PX; i++)
		memcpy(p + 3 * i, white, 3);
	render_ok(&s, NULL, p);
	dominant(p, 0, 60, &hits, &drawn);
	assert_true(drawn > PX * PX / 4);
	assert_true(hits == drawn);
	xfree(p);
	scan_release(&s);
}

/*
 * A texture keeps its detail on large triangles: a 2 x 1 quad of two
 * triangles (split along its diagonal) with a texture red on its left
 * half and blue on its right is drawn red at the lower left and blue at
 * the upper right.  One colour per triangle, at its centre, would paint
 * the lower-right triangle (centre u = 2/3) blue all the way to the left
 * edge.
 */
static void test_sheet_texture_per_sample(void **state)
{
	(void)state;
	struct scan s;
	struct image tex;
	struct err e;
	err_init(&e);
	scan_init(&s);
	assert_int_equal(scan_alloc(&s, 4, 2, SCAN_ALLOC_UVS, &e), 0);
	static const float pos[4][3] = { { 0, 0, 0 }, { 2, 0, 0 }, { 2, 1, 0 }, { 0, 1, 0 } };
	static const float uv[4][2] = { { 0, 0 }, { 1, 0 }, { 1, 1 }, { 0, 1 } };
	static const uint32_t tri[2][3] = { { 0, 1, 2 }, { 0, 2, 3 } };
	memcpy(s.positions, pos, sizeof(pos));
	memcpy(s.uvs, uv, sizeof(uv));
	memcpy(s.indices, tri, sizeof(tri));
	s.n_vertices = 4;
	s.n_faces = s.n_polygons = 2;
	assert_true(scan_material_intern(&s, "m", 1) == 0);
	assert_true(scan_texture_add(&s, "t.png", 5) == 0);
	s.materials[0].texture = 0;
	assert_int_equal(scan_finalize(&s, &e), 0);
	image_init(&tex);
	tex.width = 8;
	tex.height = 1;
	tex.rgba = alloc_array(8, 4);
	assert_non_null(tex.rgba);
	for (int x = 0; x < 8; x++) {
		uint8_t *c = tex.rgba + 4 * x;
		c[0] = x < 4 ? 220 : 20;
		c[1] = 20;
		c[2] = x < 4 ? 20 : 220;
		c[3] = 255;
	}
	uint8_t *p = blank();
	assert_int_equal(sheet_render(&s, &tex, 1, NULL, p, PX, PX, &e), 0);
	uint32_t x0, x1, y0, y1;
	drawn_box(p, &x0, &x1, &y0, &y1);
	/* just inside the lower-left and upper-right corners */
	const uint8_t *ll = p + ((size_t)(y1 - 3) * PX + x0 + 3) * 3;
	const uint8_t *ur = p + ((size_t)(y0 + 3) * PX + x1 - 3) * 3;
	const uint8_t *lr_left = p + ((size_t)(y1 - 3) * PX + x0 + (x1 - x0) / 4) * 3;
	assert_true(ll[0] > ll[2] + 60);
	assert_true(ur[2] > ur[0] + 60);
	assert_true(lr_left[0] > lr_left[2] + 60); /* the lower-right triangle's left end: red */
	xfree(p);
	image_release(&tex);
	scan_release(&s);
}

/*
 * A cloud: the points of a disc in the plane z = 0 are drawn as a round
 * patch (centre drawn, corners not), lit by their normals when they have
 * them, shaded by depth when not.
 */
static void test_sheet_cloud_dots(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	err_init(&e);
	scan_init(&s);
	size_t n = 4000;
	assert_int_equal(scan_alloc(&s, n, 0, SCAN_ALLOC_NORMALS, &e), 0);
	s.n_vertices = n;
	for (size_t i = 0; i < n; i++) {
		double r = sqrt(((double)i + 0.5) / (double)n), t = 2.39996 * (double)i;
		s.positions[3 * i] = (float)(r * cos(t));
		s.positions[3 * i + 1] = (float)(r * sin(t));
		s.positions[3 * i + 2] = (float)(0.05 * r * r);
		s.normals[3 * i + 2] = 1;
	}
	assert_int_equal(scan_finalize(&s, &e), 0);
	uint8_t *p = blank();
	render_ok(&s, NULL, p);
	uint32_t x0, x1, y0, y1;
	size_t drawn = drawn_box(p, &x0, &x1, &y0, &y1);
	assert_false(is_white(p, PX / 2, PX / 2));
	assert_true(is_white(p, 2, 2) && is_white(p, PX - 3, PX - 3));
	/* a disc covers about pi/4 of its bounding square */
	double sq = (double)(x1 - x0 + 1) * (y1 - y0 + 1);
	assert_true(drawn > 0.7 * sq && drawn < 0.9 * sq);
	/* without normals: still drawn, nearer points lighter */
	xfree(s.normals);
	s.normals = NULL;
	for (size_t i = 0; i < (size_t)PX * PX; i++)
		memcpy(p + 3 * i, white, 3);
	render_ok(&s, NULL, p);
	assert_false(is_white(p, PX / 2, PX / 2));
	xfree(p);
	scan_release(&s);
}

/* Nothing to draw: refused, picture untouched. */
static void test_sheet_nothing_to_draw(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	err_init(&e);
	box(&s, 1, 1, 1);
	for (size_t i = 0; i < 3 * s.n_vertices; i++)
		s.positions[i] = NAN;
	uint8_t *p = blank();
	assert_int_equal(sheet_render(&s, NULL, 0, NULL, p, PX, PX, &e), ERR_UNDESCRIBABLE);
	assert_non_null(strstr(e.msg, "nothing to draw"));
	for (uint32_t y = 0; y < PX; y++)
		for (uint32_t x = 0; x < PX; x++)
			assert_true(is_white(p, x, y));
	xfree(p);
	scan_release(&s);
}

static const uint8_t *at(const struct sheet *sh, uint32_t x, uint32_t y)
{
	return sh->rgb + ((size_t)y * sh->w + x) * 3;
}

/*
 * A sheet of 2 x 3 cells: its size, a sculpt's tinted cell without a bar,
 * a match's bar as long as its score, a missing scan crossed out; written
 * as PNG, it reads back pixel for pixel.
 */
static void test_sheet_layout_and_png(void **state)
{
	(void)state;
	struct sheet sh;
	struct scan s;
	struct err e;
	err_init(&e);
	box(&s, 3, 2, 1);
	assert_int_equal(sheet_init(&sh, 2, 3, &e), 0);
	assert_int_equal(sh.w, 3 * (SHEET_CELL + SHEET_PAD) + SHEET_PAD);
	assert_int_equal(sh.h, 2 * (SHEET_CELL + SHEET_BAR + 2 + SHEET_PAD) + SHEET_PAD);
	assert_int_equal(sheet_cell(&sh, 0, 0, SHEET_SCULPT, &s, NULL, 0, NULL, -1, &e), 0);
	assert_int_equal(sheet_cell(&sh, 0, 1, SHEET_MATCH, &s, NULL, 0, NULL, 50, &e), 0);
	assert_int_equal(sheet_cell(&sh, 1, 2, SHEET_MISSING, NULL, NULL, 0, NULL, 20, &e), 0);
	assert_int_equal(sheet_cell(&sh, 2, 0, SHEET_MATCH, &s, NULL, 0, NULL, 1, &e), ERR_INTERNAL);
	struct sheet big;
	assert_int_equal(sheet_init(&big, 1, SHEET_MAX_COLS + 1, &e), ERR_LIMIT);
	assert_null(big.rgb);

	uint32_t row0 = SHEET_PAD, bar = row0 + SHEET_CELL + 2 + SHEET_BAR / 2;
	uint32_t c0 = SHEET_PAD, c1 = c0 + SHEET_CELL + SHEET_PAD, c2 = c1 + SHEET_CELL + SHEET_PAD;
	/* corners show each cell's background: tinted for the sculpt, white for a match */
	assert_true(at(&sh, c0 + 1, row0 + 1)[2] > at(&sh, c0 + 1, row0 + 1)[0]);
	assert_memory_equal(at(&sh, c1 + 1, row0 + 1), white, 3);
	/* the sculpt has no bar; the match's bar is filled to half its width */
	assert_memory_equal(at(&sh, c0 + 10, bar), at(&sh, 2, 2), 3);
	const uint8_t *fill = at(&sh, c1 + SHEET_CELL / 4, bar);
	const uint8_t *track = at(&sh, c1 + 3 * SHEET_CELL / 4, bar);
	assert_memory_not_equal(fill, track, 3);
	assert_memory_equal(fill, at(&sh, c1 + SHEET_CELL / 2 - 2, bar), 3);
	assert_memory_equal(track, at(&sh, c1 + SHEET_CELL / 2 + 2, bar), 3);
	/* crossed out: the diagonal inked, the cell's corner not */
	uint32_t row1 = row0 + SHEET_CELL + SHEET_BAR + 2 + SHEET_PAD;
	const uint8_t *ink = at(&sh, c2 + SHEET_CELL / 2, row1 + SHEET_CELL / 2);
	const uint8_t *paper = at(&sh, c2 + 2, row1 + SHEET_CELL / 2);
	assert_true(ink[0] > ink[1] + 60);
	assert_memory_not_equal(ink, paper, 3);
	/* an empty cell keeps the sheet's background */
	assert_memory_equal(at(&sh, c1 + SHEET_CELL / 2, row1 + SHEET_CELL / 2), at(&sh, 2, 2), 3);

	char path[512];
	const char *t = getenv("TMPDIR");
	snprintf(path, sizeof(path), "%s/refscan-sheet-test-%ld.png", t && *t ? t : "/tmp",
		 (long)getpid());
	assert_int_equal(sheet_write(&sh, path, &e), 0);
	struct image im;
	image_init(&im);
	assert_int_equal(image_read_file(path, NULL, &im, &e), 0);
	assert_int_equal(im.width, sh.w);
	assert_int_equal(im.height, sh.h);
	for (size_t i = 0; i < (size_t)sh.w * sh.h; i++)
		if (memcmp(im.rgba + 4 * i, sh.rgb + 3 * i, 3) != 0)
			fail_msg("pixel %zu differs after the PNG round trip", i);
	image_release(&im);
	unlink(path);
	/* an unwritable path is an I/O error naming it */
	assert_int_equal(sheet_write(&sh, "/nonexistent-dir/x.png", &e), ERR_IO);
	assert_non_null(strstr(e.path, "/nonexistent-dir/x.png"));
	sheet_release(&sh);
	scan_release(&s);
}

/* Out of memory at each allocation: ERR_NOMEM, nothing leaked. */
static void test_sheet_out_of_memory(void **state)
{
	(void)state;
	struct scan s;
	struct sheet sh;
	struct err e;
	box(&s, 2, 1, 1);
	int rc = -1;
	for (long n = 0; rc != 0 && n < 20; n++) {
		err_init(&e);
		alloc_fail_after(n);
		rc = sheet_init(&sh, 1, 2, &e);
		if (!rc)
			rc = sheet_cell(&sh, 0, 1, SHEET_MATCH, &s, NULL, 0, NULL, 80, &e);
		alloc_fail_after(-1);
		assert_true(rc == 0 || rc == ERR_NOMEM);
		if (rc)
			assert_non_null(strstr(e.msg, "out of memory"));
		sheet_release(&sh);
	}
	assert_int_equal(rc, 0);
	scan_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sheet_box_proportions),
		cmocka_unit_test(test_sheet_light_from_upper_left),
		cmocka_unit_test(test_sheet_open_surface_from_its_side),
		cmocka_unit_test(test_sheet_relief_shows),
		cmocka_unit_test(test_sheet_draws_colour),
		cmocka_unit_test(test_sheet_texture_per_sample),
		cmocka_unit_test(test_sheet_cloud_dots),
		cmocka_unit_test(test_sheet_nothing_to_draw),
		cmocka_unit_test(test_sheet_layout_and_png),
		cmocka_unit_test(test_sheet_out_of_memory),
	};
	return cmocka_run_group_tests_name("sheet", tests, NULL, NULL);
}
