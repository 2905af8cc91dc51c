/*
 * desc_colour.c - surface colour: where it comes from and its histograms.
 *
 * Colour at a surface point comes, in this order, from the face's
 * material texture (UV interpolated, bilinear texel lookup, repeat
 * wrap, v = 0 at the bottom row as in OBJ and PLY), from vertex colours
 * (interpolated) or from a face colour.  Points without any are NaN and
 * take no part.  sRGB is converted to CIELAB (D65 white, CIE 15:2004).
 *
 * The Lab histogram has 5 lightness bins over [0, 100] and 7 x 7 bins
 * over a*, b* companded by t = x / (|x| + 20), which spends resolution
 * on the low chromas of skin, stone and wood; votes are trilinear.
 */
#include "desc_int.h"
#include "../formats/image.h"
#include "../formats/scan.h"

#include <math.h>
#include <string.h>

#include "../common/banned.h"

/*
 * The texture of face f: its material's map (face_material, or material 0
 * for every face when there is no per-face array, as OBJ writers assume),
 * or texture 0 when the scan has textures but no materials (PLY
 * "comment TextureFile").  -1 when none.
 */

static double srgb_linear(double c)
{
	c /= 255.0;
	return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
}

static double lab_f(double t)
{
	const double d = 6.0 / 29.0;
	return t > d * d * d ? cbrt(t) : t / (3 * d * d) + 4.0 / 29.0;
}

void desc_srgb_to_lab(double r, double g, double b, float lab[3])
{
	double R = srgb_linear(r), G = srgb_linear(g), B = srgb_linear(b);
	double X = 0.4124564 * R + 0.3575761 * G + 0.1804375 * B;
	double Y = 0.2126729 * R + 0.7151522 * G + 0.0721750 * B;
	double Z = 0.0193339 * R + 0.1191920 * G + 0.9503041 * B;
	double fx = lab_f(X / 0.95047), fy = lab_f(Y), fz = lab_f(Z / 1.08883);
	lab[0] = (float)(116 * fy - 16);
	lab[1] = (float)(500 * (fx - fy));
	lab[2] = (float)(200 * (fy - fz));
}

/* Bilinear RGB lookup with repeat wrap; false for non-finite uv. */
static bool texel(const struct image *im, double u, double v, double rgb[3])
{
	if (!isfinite(u) || !isfinite(v) || !im->width || !im->height)
		return false;
	u -= floor(u);
	v -= floor(v);
	double x = u * im->width - 0.5, y = (1 - v) * im->height - 0.5;
	double fx = floor(x), fy = floor(y);
	double ax = x - fx, ay = y - fy;
	long W = (long)im->width, H = (long)im->height;
	long x0 = (long)fx, y0 = (long)fy;
	long xs[2] = { ((x0 % W) + W) % W, (((x0 + 1) % W) + W) % W };
	long ys[2] = { ((y0 % H) + H) % H, (((y0 + 1) % H) + H) % H };
	double wx[2] = { 1 - ax, ax }, wy[2] = { 1 - ay, ay };
	rgb[0] = rgb[1] = rgb[2] = 0;
	for (int j = 0; j < 2; j++)
		for (int i = 0; i < 2; i++) {
			const uint8_t *px = im->rgba + 4 * ((size_t)ys[j] * im->width + (size_t)xs[i]);
			double w = wx[i] * wy[j];
			for (int k = 0; k < 3; k++)
				rgb[k] += w * px[k];
		}
	return true;
}

int32_t desc_face_texture(const struct scan *s, size_t f)
{
	int32_t m;
	if (s->face_material)
		m = s->face_material[f];
	else if (s->n_materials)
		m = 0;
	else
		return s->n_textures ? 0 : -1;
	if (m < 0 || (size_t)m >= s->n_materials)
		return -1;
	int32_t t = s->materials[m].texture;
	return t >= 0 && (size_t)t < s->n_textures ? t : -1;
}

bool describe_surface_rgb(const struct scan *s, const struct image *tex, size_t n_tex,
			  size_t f, double b1, double b2, double rgb[3])
{
	double b0 = 1 - b1 - b2;
	if (tex) {
		int32_t t = desc_face_texture(s, f);
		if (t >= 0 && (size_t)t < n_tex && tex[t].rgba) {
			double uv[2];
			bool have = false;
			if (s->corner_uvs) {
				const float *c = s->corner_uvs + 6 * f;
				for (int k = 0; k < 2; k++)
					uv[k] = b0 * c[k] + b1 * c[2 + k] + b2 * c[4 + k];
				have = true;
			} else if (s->uvs) {
				const uint32_t *ix = s->indices + 3 * f;
				for (int k = 0; k < 2; k++)
					uv[k] = b0 * s->uvs[2 * (size_t)ix[0] + k] +
						b1 * s->uvs[2 * (size_t)ix[1] + k] +
						b2 * s->uvs[2 * (size_t)ix[2] + k];
				have = true;
			}
			if (have && texel(&tex[t], uv[0], uv[1], rgb))
				return true;
		}
	}
	if (s->colors) {
		const uint32_t *ix = s->indices + 3 * f;
		for (int k = 0; k < 3; k++)
			rgb[k] = b0 * s->colors[4 * (size_t)ix[0] + k] +
				 b1 * s->colors[4 * (size_t)ix[1] + k] +
				 b2 * s->colors[4 * (size_t)ix[2] + k];
		return true;
	}
	if (s->face_colors) {
		const uint8_t *c = s->face_colors + 4 * f;
		for (int k = 0; k < 3; k++)
			rgb[k] = c[k];
		return true;
	}
	return false;
}

bool desc_face_colour(const struct desc_src *src, uint32_t f, double b1,
		      double b2, float lab[3])
{
	double rgb[3];
	if (!describe_surface_rgb(src->s, src->tex, src->n_tex, f, b1, b2, rgb))
		return false;
	desc_srgb_to_lab(rgb[0], rgb[1], rgb[2], lab);
	return true;
}

bool desc_vertex_colour(const struct desc_src *src, uint32_t v, float lab[3])
{
	if (!src->s->colors)
		return false;
	const uint8_t *c = src->s->colors + 4 * (size_t)v;
	desc_srgb_to_lab(c[0], c[1], c[2], lab);
	return true;
}

bool desc_hellinger(float *h, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += h[i];
	if (!(s > 0)) {
		memset(h, 0, n * sizeof(*h));
		return false;
	}
	for (size_t i = 0; i < n; i++)
		h[i] = (float)sqrt(h[i] / s);
	return true;
}

void desc_lab_hist(const struct desc_pts *C, float *out)
{
	double h[DESC_LAB_LEN];
	memset(h, 0, sizeof(h));
	for (size_t i = 0; C->lab && i < C->n; i++) {
		const float *lab = C->lab + 3 * i;
		if (!isfinite(lab[0]))
			continue;
		double ta = lab[1] / (fabs(lab[1]) + 20.0), tb = lab[2] / (fabs(lab[2]) + 20.0);
		int il[2], ia[2], ib[2];
		double wl[2], wa[2], wb[2];
		desc_tent(lab[0], 0, 25, DESC_LAB_L, il, wl);
		desc_tent(ta, -0.75, 0.25, DESC_LAB_AB, ia, wa);
		desc_tent(tb, -0.75, 0.25, DESC_LAB_AB, ib, wb);
		for (int x = 0; x < 2; x++)
			for (int y = 0; y < 2; y++)
				for (int z = 0; z < 2; z++)
					h[(il[x] * DESC_LAB_AB + ia[y]) * DESC_LAB_AB + ib[z]] +=
						wl[x] * wa[y] * wb[z];
	}
	for (size_t i = 0; i < DESC_LAB_LEN; i++)
		out[i] = (float)h[i];
	desc_hellinger(out, DESC_LAB_LEN);
}

void desc_lbp_hist(const struct desc_bfit *f, size_t n, float *out)
{
	double h[DESC_LBP_BINS] = { 0 };
	for (size_t i = 0; i < n; i++)
		if (f[i].lbp < DESC_LBP_BINS)
			h[f[i].lbp] += 1;
	for (int i = 0; i < DESC_LBP_BINS; i++)
		out[i] = (float)h[i];
	desc_hellinger(out, DESC_LBP_BINS);
}
