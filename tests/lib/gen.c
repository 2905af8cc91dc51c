/*
 * gen.c - seeded scan-like surfaces and perturbations (see gen.h).
 *
 * Pipeline of gen_scan():
 *   1. lay out the form's charts: one (u, v) grid (tile, panel, trunk,
 *      torus) or six cube faces (blob, box, limb, which avoids the pinched
 *      poles of a latitude/longitude sphere), sized so the triangle count
 *      meets the target with near-square cells;
 *   2. evaluate the base form at every grid point (interior points jittered
 *      by up to 0.3 cell, so the mesh is irregular like a scanner's), with
 *      the base normal by central differences, and scale it so its largest
 *      extent is size_mm;
 *   3. weld: vertices on seams have bit-identical base positions, so a hash
 *      on the position bits finds them; only one of each is displaced and
 *      the others copy it, keeping the mesh watertight;
 *   4. displace along the base normal by the material's relief evaluated
 *      at the point in mm, band-limited for the mesh's edge length;
 *   5. triangulate each grid cell along its shorter diagonal, then compute
 *      area-weighted normals across seams.
 *
 * Relief functions are solid (3D) textures of the position, so they have
 * no seams and a physical scale; the woven and knitted ones are 2D
 * patterns blended over the three axis planes by the normal (triplanar
 * projection).  Anisotropic materials run along a grain axis chosen per
 * form (the trunk's axis, the limb's length, the tile's y).
 *
 * Noise: gradient noise on an integer lattice with gradients picked by a
 * 64-bit hash of (lattice point, seed), quintic interpolation; cellular
 * (Worley) noise with one hashed feature point per cell.  No tables, so
 * it is thread-safe and seeds are unlimited.
 */
#include "gen.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "formats/formats.h"
#include "formats/image.h"
#include "indexer/describe.h"
#include "formats/scan.h"
#include "formats/writers.h"

#include "common/banned.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Below this many elements a loop runs on one thread: starting a team
 * costs more than it saves, and far more on a loaded machine. */
#define PAR_MIN 20000

/* ---------------------------------------------------------------- names */

static const char *const form_names[GEN_N_FORMS] = {
	"tile", "panel", "blob", "trunk", "torus", "box", "limb",
};
static const char *const form_summaries[GEN_N_FORMS] = {
	"gently curved rectangular patch, S x 0.75 S (skin patch, sample tile)",
	"saddle with travelling waves, S x 0.8 S (draped or bent panel)",
	"lumpy closed blob, about S across (cast, pebble, fruit)",
	"open tapered and slightly bent tube, height S (trunk, branch, column)",
	"ring, outer diameter S (handle, bangle, moulding)",
	"rounded box S x 0.7 S x 0.45 S (case, block, carved object)",
	"elongated ellipsoid with a bulge, length S (forearm, finger, leg)",
};
static const char *const material_names[GEN_N_MATERIALS] = {
	"none", "skin", "bark", "fabric", "stone", "hammered", "wood", "leather", "knit",
};
static const char *const material_summaries[GEN_N_MATERIALS] = {
	"smooth, no relief",
	"pores 0.1-0.25 mm across, creases every ~2 mm across the grain, rhomboid micro-furrows",
	"plates split by deep furrows along the grain (mm to cm), cross cracks",
	"plain weave of 0.7 mm threads over drape folds",
	"fractal relief from 16 mm down, cracks, pitted grains",
	"overlapping round dimples 2-3.6 mm across with sharp ridges",
	"growth rings ~2 mm apart with raised latewood, fibre grooves and pores along the grain",
	"pebble grain cells ~1.3 mm with creases, follicle pits, flex wrinkles",
	"stockinette stitches, 3 mm wales by 2.4 mm courses, fuzzy yarn",
};
static const double material_amp[GEN_N_MATERIALS] = {
	0.0, 0.1, 4.0, 0.3, 1.0, 0.12, 0.1, 0.2, 1.0,
};
static const char *const material_categories[GEN_N_MATERIALS] = {
	"smooth", "organic", "plant", "textile", "mineral", "metal", "plant", "organic", "textile",
};
static const char *const color_names[GEN_N_COLORS] = { "none", "vertex", "texture" };
static const char *const format_names[GEN_N_FORMATS] = {
	"ply", "ply-ascii", "obj", "stl", "stl-ascii",
};
static const char *const format_exts[GEN_N_FORMATS] = { "ply", "ply", "obj", "stl", "stl" };

#define NAME_GETTER(fn, type, table, n)                 \
	const char *fn(type v)                          \
	{                                               \
		return (unsigned)v < (n) ? table[v] : "?"; \
	}
NAME_GETTER(gen_form_name, enum gen_form, form_names, GEN_N_FORMS)
NAME_GETTER(gen_form_summary, enum gen_form, form_summaries, GEN_N_FORMS)
NAME_GETTER(gen_material_name, enum gen_material, material_names, GEN_N_MATERIALS)
NAME_GETTER(gen_material_summary, enum gen_material, material_summaries, GEN_N_MATERIALS)
NAME_GETTER(gen_material_category, enum gen_material, material_categories, GEN_N_MATERIALS)
NAME_GETTER(gen_color_name, enum gen_color, color_names, GEN_N_COLORS)
NAME_GETTER(gen_format_name, enum gen_format, format_names, GEN_N_FORMATS)
NAME_GETTER(gen_format_ext, enum gen_format, format_exts, GEN_N_FORMATS)

double gen_material_amplitude(enum gen_material m)
{
	return (unsigned)m < GEN_N_MATERIALS ? material_amp[m] : 0.0;
}

static int parse_in(const char *s, const char *const *table, int n)
{
	for (int i = 0; s && i < n; i++)
		if (!strcmp(s, table[i]))
			return i;
	return -1;
}

int gen_form_parse(const char *s)
{
	return parse_in(s, form_names, GEN_N_FORMS);
}

int gen_material_parse(const char *s)
{
	return parse_in(s, material_names, GEN_N_MATERIALS);
}

int gen_color_parse(const char *s)
{
	return parse_in(s, color_names, GEN_N_COLORS);
}

int gen_format_parse(const char *s)
{
	return parse_in(s, format_names, GEN_N_FORMATS);
}

void gen_params_init(struct gen_params *p)
{
	memset(p, 0, sizeof(*p));
	p->form = GEN_FORM_TILE;
	p->material = GEN_MAT_STONE;
	p->size_mm = 100.0;
	p->triangles = 20000;
	p->seed = 1;
	p->amplitude_mm = 0.0;
	p->color = GEN_COLOR_NONE;
	p->normals = true;
	p->jitter = true;
}

/* ---------------------------------------------------------------- noise */

static inline uint64_t mix64(uint64_t z)
{
	z += 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static inline uint64_t hash3(int64_t x, int64_t y, int64_t z, uint64_t seed)
{
	return mix64(seed ^ ((uint64_t)x * 0x8CB92BA72F3D8DD7ull +
			     (uint64_t)y * 0xD6E8FEB86659FD93ull +
			     (uint64_t)z * 0xA0761D6478BD642Full));
}

/* Uniform in [0, 1) from the top 53 bits. */
static inline double u01(uint64_t h)
{
	return (double)(h >> 11) * 0x1.0p-53;
}

static inline double fade(double t)
{
	return t * t * t * (t * (t * 6.0 - 15.0) + 10.0);
}

static inline double lerp(double a, double b, double t)
{
	return a + (b - a) * t;
}

static inline double smoothstep(double a, double b, double x)
{
	if (x <= a)
		return 0.0;
	if (x >= b)
		return 1.0;
	double t = (x - a) / (b - a);
	return t * t * (3.0 - 2.0 * t);
}

static inline double clamp01(double x)
{
	return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* Dot of one of Perlin's 12 cube-edge gradients (picked by h) with (x,y,z). */
static inline double grad(uint64_t h, double x, double y, double z)
{
	switch ((h >> 32) & 15) {
	case 0: case 12: return x + y;
	case 1: case 13: return -x + y;
	case 2: return x - y;
	case 3: return -x - y;
	case 4: return x + z;
	case 5: return -x + z;
	case 6: return x - z;
	case 7: return -x - z;
	case 8: return y + z;
	case 9: case 14: return -y + z;
	case 10: return y - z;
	default: return -y - z;
	}
}

/* Gradient noise, about [-1, 1], zero at lattice points. */
static double gnoise(double x, double y, double z, uint64_t seed)
{
	double fx = floor(x), fy = floor(y), fz = floor(z);
	int64_t ix = (int64_t)fx, iy = (int64_t)fy, iz = (int64_t)fz;
	x -= fx;
	y -= fy;
	z -= fz;
	double u = fade(x), v = fade(y), w = fade(z);
	double n000 = grad(hash3(ix, iy, iz, seed), x, y, z);
	double n100 = grad(hash3(ix + 1, iy, iz, seed), x - 1, y, z);
	double n010 = grad(hash3(ix, iy + 1, iz, seed), x, y - 1, z);
	double n110 = grad(hash3(ix + 1, iy + 1, iz, seed), x - 1, y - 1, z);
	double n001 = grad(hash3(ix, iy, iz + 1, seed), x, y, z - 1);
	double n101 = grad(hash3(ix + 1, iy, iz + 1, seed), x - 1, y, z - 1);
	double n011 = grad(hash3(ix, iy + 1, iz + 1, seed), x, y - 1, z - 1);
	double n111 = grad(hash3(ix + 1, iy + 1, iz + 1, seed), x - 1, y - 1, z - 1);
	return lerp(lerp(lerp(n000, n100, u), lerp(n010, n110, u), v),
		    lerp(lerp(n001, n101, u), lerp(n011, n111, u), v), w);
}

static double gnoise3(const double p[3], double scale, uint64_t seed)
{
	return gnoise(p[0] / scale, p[1] / scale, p[2] / scale, seed);
}

/*
 * Weight of a component whose features repeat every lambda mm when the
 * surface is sampled every s mm: 1 when well resolved, fading to 0 at the
 * Nyquist limit (lambda = 2 s), so fine detail disappears instead of
 * aliasing into noise.
 */
static inline double band(double lambda, double s)
{
	return smoothstep(2.0 * s, 3.5 * s, lambda);
}

/*
 * Fractal sum of gradient noise: octaves from wavelength lambda0 halving,
 * amplitudes times gain, each band-limited for spacing s; normalised by
 * the unfiltered total so the amplitude does not depend on s.
 */
static double fbm(const double p[3], double lambda0, int octaves, double gain,
		  double s, uint64_t seed)
{
	double sum = 0, norm = 0, a = 1, lam = lambda0;
	for (int k = 0; k < octaves; k++) {
		double w = band(lam, s);
		if (w > 0)
			sum += a * w * gnoise3(p, lam, seed + (uint64_t)k * 0x51ED27ull);
		norm += a;
		a *= gain;
		lam *= 0.5;
	}
	return norm > 0 ? sum / norm : 0;
}

struct cell {
	double f1, f2;     /* distances to the nearest and second feature, cell units */
	uint64_t id;       /* hash of the nearest feature's cell */
};

/* Cellular noise at p (in cell units): one jittered feature per cell. */
static void worley(double x, double y, double z, uint64_t seed, struct cell *c)
{
	double fx = floor(x), fy = floor(y), fz = floor(z);
	int64_t ix = (int64_t)fx, iy = (int64_t)fy, iz = (int64_t)fz;
	double d1 = DBL_MAX, d2 = DBL_MAX;
	uint64_t id = 0;
	for (int dz = -1; dz <= 1; dz++)
		for (int dy = -1; dy <= 1; dy++)
			for (int dx = -1; dx <= 1; dx++) {
				uint64_t h = hash3(ix + dx, iy + dy, iz + dz, seed);
				double px = fx + dx + (double)(h & 0x1FFFFF) * 0x1.0p-21;
				double py = fy + dy + (double)((h >> 21) & 0x1FFFFF) * 0x1.0p-21;
				double pz = fz + dz + (double)((h >> 42) & 0x1FFFFF) * 0x1.0p-21;
				double d = (px - x) * (px - x) + (py - y) * (py - y) +
					   (pz - z) * (pz - z);
				if (d < d1) {
					d2 = d1;
					d1 = d;
					id = h;
				} else if (d < d2) {
					d2 = d;
				}
			}
	c->f1 = sqrt(d1);
	c->f2 = sqrt(d2);
	c->id = id;
}

/* Distance from (x, y) to the segment (ax, ay)-(bx, by). */
static double seg_dist(double x, double y, double ax, double ay, double bx, double by)
{
	double vx = bx - ax, vy = by - ay;
	double t = ((x - ax) * vx + (y - ay) * vy) / (vx * vx + vy * vy);
	t = clamp01(t);
	double dx = x - ax - t * vx, dy = y - ay - t * vy;
	return sqrt(dx * dx + dy * dy);
}

/*
 * Round pits scattered over the surface: one candidate per cubic cell of
 * side `cell` mm, kept with probability prob when it lies within half a
 * cell of the surface (measured along the normal n), so the pits have a
 * density of about prob / cell^2 on the surface whatever its orientation.
 * Radius rmin..rmax, depth dmin..dmax, band-limited for sampling s.
 * Returns the (negative) height; *hit is 1 inside a pit.
 */
static double pits(const double p[3], const double n[3], double cell, double prob,
		   double rmin, double rmax, double dmin, double dmax, double s,
		   uint64_t seed, double *hit)
{
	double x = p[0] / cell, y = p[1] / cell, z = p[2] / cell;
	double fx = floor(x), fy = floor(y), fz = floor(z);
	int64_t ix = (int64_t)fx, iy = (int64_t)fy, iz = (int64_t)fz;
	double best = 0;
	*hit = 0;
	for (int dz = -1; dz <= 1; dz++)
		for (int dy = -1; dy <= 1; dy++)
			for (int dx = -1; dx <= 1; dx++) {
				uint64_t h = hash3(ix + dx, iy + dy, iz + dz, seed);
				if (u01(mix64(h + 1)) >= prob)
					continue;
				double v[3] = {
					(fx + dx + (double)(h & 0x1FFFFF) * 0x1.0p-21) * cell - p[0],
					(fy + dy + (double)((h >> 21) & 0x1FFFFF) * 0x1.0p-21) * cell - p[1],
					(fz + dz + (double)((h >> 42) & 0x1FFFFF) * 0x1.0p-21) * cell - p[2],
				};
				double dn = v[0] * n[0] + v[1] * n[1] + v[2] * n[2];
				if (fabs(dn) > 0.5 * cell)
					continue;
				double dt2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2] - dn * dn;
				double rad = rmin + (rmax - rmin) * u01(mix64(h + 2));
				double depth = dmin + (dmax - dmin) * u01(mix64(h + 3));
				double re2 = rad * rad + 0.25 * s * s;
				if (dt2 >= re2)
					continue;
				double q = 1 - dt2 / re2;
				double d = -depth * (rad * rad / re2) * q * q;
				if (d < best) {
					best = d;
					*hit = 1;
				}
			}
	return best * band(cell, s);
}

/* --------------------------------------------------------------- relief */

struct relief {
	const struct gen_heightmap *hm; /* relief from an image, or NULL */
	enum gen_material m;
	uint64_t seed;
	int grain;          /* axis the anisotropic materials run along */
	double amp;         /* amplitude / the material's default */
	int variant;        /* palette choice from the seed (dye, metal) */
};

struct rsample {
	double h;           /* height in mm at the default amplitude */
	double tone;        /* 0 = surface, 1 = cavity or feature, for colour */
	double aux;         /* material-specific colour parameter, 0..1 */
};

/*
 * A groove of width w (mm) and depth d seen with sampling s: widened and
 * made shallower so its cross-section area is kept (a scanner blurs a
 * crease, it does not erase it).  x is the distance to its centre line.
 */
static inline double groove(double x, double w, double d, double s)
{
	double we = sqrt(w * w + 0.25 * s * s);
	return -d * (w / we) * exp(-(x * x) / (we * we));
}

static void relief_skin(const struct relief *r, const double p[3],
			const double n[3], double s, struct rsample *o)
{
	const int g = r->grain;
	double h = 0, cav = 0;
	/* primary creases across the grain, fading in and out */
	const double sp = 2.2;
	double wb = band(sp, s);
	if (wb > 0) {
		double ph = p[g] / sp + 0.9 * gnoise3(p, 7.0, r->seed + 1);
		double k = floor(ph + 0.5), t = (ph - k) * sp;
		double dk = 0.5 + 0.5 * u01(mix64(r->seed + 2 + (uint64_t)(int64_t)k));
		double on = smoothstep(-0.25, 0.35, gnoise3(p, 9.0, r->seed + 3));
		double c = wb * on * groove(t, 0.11, 0.06 * dk, s);
		h += c;
		cav += -c / 0.06;
	}
	/* micro-furrows: two families of lines at about +-55 degrees */
	const double sp2 = 0.5;
	double wb2 = band(sp2, s);
	if (wb2 > 0) {
		int a = (g + 1) % 3, b = (g + 2) % 3;
		double warp = 0.35 * gnoise3(p, 1.7, r->seed + 4);
		for (int fam = 0; fam < 2; fam++) {
			double cg = 0.57, cs = fam ? 0.82 : -0.82;
			double proj = cg * p[g] + cs * (0.8 * p[a] + 0.6 * p[b]);
			double ph = proj / sp2 + warp;
			double t = (ph - floor(ph + 0.5)) * sp2;
			h += wb2 * groove(t, 0.035, 0.018, s);
		}
	}
	/* pores: 0.1-0.24 mm across, about 150 per square centimetre */
	double hit;
	double pit = pits(p, n, 0.7, 0.75, 0.05, 0.12, 0.04, 0.09, s, r->seed + 5, &hit);
	h += pit;
	cav += -pit / 0.05;
	/* soft undulation of the body and a fine roughness */
	h += 0.02 * fbm(p, 6.0, 2, 0.5, s, r->seed + 6);
	h += 0.006 * fbm(p, 0.25, 2, 0.5, s, r->seed + 7);
	o->h = h;
	o->tone = clamp01(cav);
	o->aux = 0.5 + 0.5 * gnoise3(p, 12.0, r->seed + 8);
}

static void relief_bark(const struct relief *r, const double p[3], double s,
			struct rsample *o)
{
	const int g = r->grain;
	double q[3] = { p[0], p[1], p[2] };
	q[g] /= 7.0; /* furrows are long along the grain */
	/* plates separated where the noise crosses zero: narrow deep furrows */
	double n = fbm(q, 9.0, 3, 0.45, s, r->seed + 11);
	double furrow = 1.0 - smoothstep(0.0, 0.12, fabs(n));
	double wb = band(4.0, s);
	double h = -3.2 * wb * furrow * furrow;
	/* plate surfaces: undulating and rough */
	double plate = 1.0 - furrow;
	h += plate * (0.55 * fbm(q, 4.0, 3, 0.5, s, r->seed + 12) +
		      0.12 * fbm(p, 1.0, 3, 0.5, s, r->seed + 13));
	/* cross cracks breaking the plates */
	double c[3] = { p[0] / 25.0, p[1] / 25.0, p[2] / 25.0 };
	c[g] = p[g] / 3.0;
	double cn = gnoise(c[0], c[1], c[2], r->seed + 14);
	double crack = 1.0 - smoothstep(0.0, 0.05 + 0.02 * smoothstep(1.0, 4.0, s), fabs(cn));
	h -= 1.4 * band(3.0, s) * crack * plate *
	     smoothstep(0.0, 0.3, gnoise3(p, 18.0, r->seed + 15) + 0.1);
	o->h = h;
	o->tone = clamp01(furrow + 0.6 * crack * plate);
	o->aux = smoothstep(0.25, 0.6, gnoise3(p, 14.0, r->seed + 16)); /* lichen */
}

/*
 * Plain weave in plane coordinates (a, b) mm: warp threads run along b,
 * weft along a, each passing over and under alternately.  Returns the
 * height in thread units; *weft is 1 where a weft thread is on top, and
 * *gap 1 in the holes between threads.
 */
static double weave2d(double a, double b, double pitch, uint64_t seed,
		      double *weft, double *gap)
{
	/* threads are not perfectly straight */
	a += 0.05 * pitch * gnoise(b / 2.5, a / 2.5, 0.5, seed);
	b += 0.05 * pitch * gnoise(a / 2.5, b / 2.5, 1.5, seed);
	double A = a / pitch, B = b / pitch;
	double i = floor(A), j = floor(B);
	double fa = A - i, fb = B - j;
	double xa = (fa - 0.5) / 0.44, xb = (fb - 0.5) / 0.44;
	double cw = xa * xa < 1 ? sqrt(1 - xa * xa) : -1;
	double cf = xb * xb < 1 ? sqrt(1 - xb * xb) : -1;
	double zw = 0.5 * cos(M_PI * (B - 0.5 + i));
	double zf = -0.5 * cos(M_PI * (A - 0.5 + j));
	double hw = cw >= 0 ? 0.6 * zw + cw : -1.0;
	double hf = cf >= 0 ? 0.6 * zf + cf : -1.0;
	double h = hw > hf ? hw : hf;
	*weft = hf > hw ? 1.0 : 0.0;
	*gap = h < -0.5 ? 1.0 : 0.0;
	return h < -0.5 ? -0.4 : h;
}

/* Blend weights of the three axis planes for normal n (triplanar). */
static void triplanar(const double n[3], double w[3])
{
	double sum = 0;
	for (int k = 0; k < 3; k++) {
		double a = n[k] * n[k];
		w[k] = a * a * a;
		sum += w[k];
	}
	for (int k = 0; k < 3; k++)
		w[k] = sum > 0 ? w[k] / sum : 1.0 / 3.0;
}

/* Plane coordinates for the plane normal to axis k: b along the grain. */
static void plane_coords(const double p[3], int k, int g, double *a, double *b)
{
	int u = (k + 1) % 3, v = (k + 2) % 3;
	if (u == g) {
		*a = p[v];
		*b = p[u];
	} else {
		*a = p[u];
		*b = p[v];
	}
}

static void relief_fabric(const struct relief *r, const double p[3],
			  const double n[3], double s, struct rsample *o)
{
	const double pitch = 0.7;
	double w[3], h = 0, weft = 0, gap = 0;
	double wb = band(pitch, s);
	triplanar(n, w);
	if (wb > 0) {
		for (int k = 0; k < 3; k++) {
			if (w[k] < 0.01)
				continue;
			double a, b, wf, gp;
			plane_coords(p, k, r->grain, &a, &b);
			h += w[k] * weave2d(a, b, pitch, r->seed + 21, &wf, &gp);
			weft += w[k] * wf;
			gap += w[k] * gp;
		}
		h *= 0.13 * wb;
	}
	/* drape folds, soft and long along the grain */
	double q[3] = { p[0], p[1], p[2] };
	q[r->grain] /= 3.0;
	double fold = fbm(q, 18.0, 2, 0.5, s, r->seed + 22);
	h += 0.4 * (0.35 - fabs(fold)) * band(10.0, s);
	/* loose fibres */
	h += 0.01 * fbm(p, 0.15, 2, 0.5, s, r->seed + 23);
	o->h = h;
	o->tone = clamp01(gap * wb);
	o->aux = weft * wb;
}

static void relief_stone(const struct relief *r, const double p[3],
			 const double n[3], double s, struct rsample *o)
{
	double h = 0.75 * fbm(p, 16.0, 7, 0.55, s, r->seed + 31);
	/* cracks along cell boundaries, warped, present in patches */
	double q[3];
	for (int k = 0; k < 3; k++)
		q[k] = p[k] + 2.5 * gnoise3(p, 9.0, r->seed + 32 + (uint64_t)k);
	const double cell = 14.0;
	struct cell c;
	worley(q[0] / cell, q[1] / cell, q[2] / cell, r->seed + 35, &c);
	double edge = (c.f2 - c.f1) * cell * 0.5;
	double on = smoothstep(-0.2, 0.25, gnoise3(p, 30.0, r->seed + 36));
	double crack = on * band(cell, s) * groove(edge, 0.12, 0.5, s);
	h += crack;
	/* mineral grains (colour) and pits where grains fell out */
	const double gc = 0.8;
	struct cell gcell;
	worley(p[0] / gc, p[1] / gc, p[2] / gc, r->seed + 37, &gcell);
	double hit;
	h += pits(p, n, 1.0, 0.5, 0.08, 0.2, 0.02, 0.05, s, r->seed + 38, &hit);
	double tone_g = 0.5 * hit;
	o->h = h;
	o->tone = clamp01(-crack / 0.25 + tone_g);
	o->aux = u01(mix64(gcell.id + 11)); /* grain colour */
}

static void relief_hammered(const struct relief *r, const double p[3], double s,
			    struct rsample *o)
{
	/* each dimple: a spherical cap from a hammer face of radius ~12 mm */
	const double cell = 2.4, face = 12.0;
	double x = p[0] / cell, y = p[1] / cell, z = p[2] / cell;
	double fx = floor(x), fy = floor(y), fz = floor(z);
	int64_t ix = (int64_t)fx, iy = (int64_t)fy, iz = (int64_t)fz;
	double best = 0, ridge = 0;
	for (int dz = -1; dz <= 1; dz++)
		for (int dy = -1; dy <= 1; dy++)
			for (int dx = -1; dx <= 1; dx++) {
				uint64_t h = hash3(ix + dx, iy + dy, iz + dz, r->seed + 41);
				double px = (fx + dx + (double)(h & 0x1FFFFF) * 0x1.0p-21) * cell;
				double py = (fy + dy + (double)((h >> 21) & 0x1FFFFF) * 0x1.0p-21) * cell;
				double pz = (fz + dz + (double)((h >> 42) & 0x1FFFFF) * 0x1.0p-21) * cell;
				double rad = 1.0 + 0.8 * u01(mix64(h));
				double d2 = (px - p[0]) * (px - p[0]) + (py - p[1]) * (py - p[1]) +
					    (pz - p[2]) * (pz - p[2]);
				if (d2 >= rad * rad)
					continue;
				double depth = rad * rad / (2.0 * face);
				double cap = -depth * (1.0 - d2 / (rad * rad));
				if (cap < best) {
					best = cap;
					ridge = sqrt(d2) / rad;
				}
			}
	double wb = band(cell, s);
	double h = wb * best;
	h += 0.04 * fbm(p, 25.0, 2, 0.5, s, r->seed + 42);
	h += 0.002 * fbm(p, 0.2, 2, 0.5, s, r->seed + 43);
	o->h = h;
	o->tone = wb * ridge * ridge; /* bright at the ridges */
	o->aux = 0.5 + 0.5 * gnoise3(p, 20.0, r->seed + 44);
}

static void relief_wood(const struct relief *r, const double p[3], double s,
			struct rsample *o)
{
	const int g = r->grain, a = (g + 1) % 3, b = (g + 2) % 3;
	/* growth rings around an axis parallel to the grain, slightly tilted,
	 * running below the surface so the surface cuts them into flames */
	double ca = p[a] - 25.0 - 0.05 * p[g];
	double cb = p[b] + 45.0 + 0.03 * p[g];
	double rr = sqrt(ca * ca + cb * cb) + 3.0 * gnoise3(p, 25.0, r->seed + 51);
	const double ring = 2.0;
	double ph = rr / ring;
	ph -= floor(ph);
	double late = smoothstep(0.62, 0.8, ph) * (1.0 - smoothstep(0.9, 1.0, ph));
	double wr = band(ring, s);
	double h = 0.05 * wr * late;
	/* fibre grooves along the grain */
	double q[3] = { p[0] / 0.12, p[1] / 0.12, p[2] / 0.12 };
	q[g] = p[g] / 4.0;
	h += 0.015 * band(0.25, s) * gnoise(q[0], q[1], q[2], r->seed + 52);
	/* open pores in the earlywood: short grooves along the grain */
	double wp = band(0.3, s);
	if (wp > 0 && late < 0.5) {
		double cx[3] = { p[0] / 0.3, p[1] / 0.3, p[2] / 0.3 };
		cx[g] = p[g] / 3.0;
		struct cell c;
		worley(cx[0], cx[1], cx[2], r->seed + 53, &c);
		if (u01(mix64(c.id + 3)) < 0.5 && c.f1 < 0.35)
			h -= wp * 0.03 * (1.0 - c.f1 / 0.35);
	}
	h += 0.03 * fbm(p, 30.0, 2, 0.5, s, r->seed + 54);
	o->h = h;
	o->tone = wr * late;
	o->aux = 0.5 + 0.5 * gnoise3(p, 40.0, r->seed + 55);
}

static void relief_leather(const struct relief *r, const double p[3],
			   const double n[3], double s, struct rsample *o)
{
	double q[3];
	for (int k = 0; k < 3; k++)
		q[k] = p[k] + 0.25 * gnoise3(p, 2.0, r->seed + 61 + (uint64_t)k);
	const double cell = 1.3;
	double wb = band(cell, s);
	double h = 0, crease = 0;
	if (wb > 0) {
		struct cell c;
		worley(q[0] / cell, q[1] / cell, q[2] / cell, r->seed + 64, &c);
		double edge = (c.f2 - c.f1) * cell * 0.5;
		double ee = sqrt(0.15 * 0.15 + 0.25 * s * s);
		double top = smoothstep(0.0, ee, edge);
		double dome = 1.0 - 0.5 * c.f1 * c.f1;
		h += wb * (0.12 * top * dome + 0.03 * u01(mix64(c.id + 3)) - 0.09);
		crease = wb * (1.0 - top);
	}
	/* hair follicle pits */
	double hit;
	h += pits(p, n, 0.4, 0.5, 0.03, 0.06, 0.02, 0.045, s, r->seed + 65, &hit);
	/* flex wrinkles: ridged noise cut into the surface */
	double wn = fbm(p, 12.0, 2, 0.5, s, r->seed + 66);
	double wr = 1.0 - smoothstep(0.0, 0.08 + 0.02 * smoothstep(1.0, 4.0, s), fabs(wn));
	h -= 0.12 * band(5.0, s) * wr;
	o->h = h;
	o->tone = clamp01(crease + wr);
	o->aux = 0.5 + 0.5 * gnoise3(p, 25.0, r->seed + 67);
}

/*
 * Stockinette in plane coordinates (a across wales, b along them): each
 * stitch is a V of two yarn legs; legs reach into the rows above and
 * below, so the neighbours are checked too.  Height in mm; *gap 1 between
 * yarns.
 */
static double knit2d(double a, double b, uint64_t seed, double *gap)
{
	const double W = 3.0, H = 2.4, rad = 0.55;
	a += 0.1 * gnoise(a / 6.0, b / 6.0, 0.5, seed);
	double i0 = floor(a / W), j0 = floor(b / H);
	double best = -1;
	for (int dj = -1; dj <= 1; dj++)
		for (int di = -1; di <= 1; di++) {
			double cx = (i0 + di + 0.5) * W, cy = (j0 + dj + 0.5) * H;
			double d1 = seg_dist(a, b, cx - 0.42 * W, cy + 0.62 * H,
					     cx - 0.04 * W, cy - 0.5 * H);
			double d2 = seg_dist(a, b, cx + 0.42 * W, cy + 0.62 * H,
					     cx + 0.04 * W, cy - 0.5 * H);
			double d = d1 < d2 ? d1 : d2;
			if (d < rad) {
				/* the lower end of a leg dives under the next row */
				double y = (b - cy) / H;
				double dive = 0.25 * smoothstep(-0.2, -0.5, y);
				double t = sqrt(rad * rad - d * d) - dive;
				if (t > best)
					best = t;
			}
		}
	*gap = best < 0 ? 1.0 : 0.0;
	return best < 0 ? -0.25 : best;
}

static void relief_knit(const struct relief *r, const double p[3],
			const double n[3], double s, struct rsample *o)
{
	double w[3], h = 0, gap = 0;
	double wb = band(2.4, s);
	triplanar(n, w);
	if (wb > 0) {
		for (int k = 0; k < 3; k++) {
			if (w[k] < 0.01)
				continue;
			double a, b, gp;
			plane_coords(p, k, r->grain, &a, &b);
			h += w[k] * knit2d(a, b, r->seed + 71, &gp);
			gap += w[k] * gp;
		}
		h *= wb;
	}
	h += 0.03 * fbm(p, 0.3, 2, 0.5, s, r->seed + 72);  /* fuzz */
	h += 0.3 * fbm(p, 20.0, 2, 0.5, s, r->seed + 73);  /* slack */
	o->h = h;
	o->tone = clamp01(gap * wb);
	o->aux = 0.5 + 0.5 * gnoise3(p, 10.0, r->seed + 74);
}

int gen_heightmap_init(struct gen_heightmap *hm, const struct image *im, double width_mm,
		       struct err *e)
{
	memset(hm, 0, sizeof(*hm));
	if (!im->rgba || im->width < 2 || im->height < 2 || !(width_mm > 0))
		return err_set(e, ERR_FORMAT, "a height map needs an image of 2 x 2 pixels or more "
				   "and a positive width");
	size_t n = (size_t)im->width * im->height;
	float *L = alloc_array(n, sizeof(float));
	if (!L)
		return err_set(e, ERR_NOMEM, "out of memory");
	double sum = 0, sum2 = 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *c = im->rgba + 4 * i;
		double y = (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255.0;
		L[i] = (float)y;
		sum += y;
		sum2 += y * y;
	}
	double mean = sum / (double)n, sd = sqrt(fmax(sum2 / (double)n - mean * mean, 0));
	for (size_t i = 0; i < n; i++) {
		double v = sd > 0 ? (L[i] - mean) / (3 * sd) : 0;
		L[i] = (float)(v < -1 ? -1 : v > 1 ? 1 : v);
	}
	hm->px[0] = L;
	hm->w[0] = im->width;
	hm->h[0] = im->height;
	hm->levels = 1;
	hm->width_mm = width_mm;
	while (hm->levels < GEN_HM_LEVELS) {
		int k = hm->levels;
		uint32_t w = hm->w[k - 1] / 2, h = hm->h[k - 1] / 2;
		if (w < 2 || h < 2)
			break;
		float *d = alloc_array((size_t)w * h, sizeof(float));
		if (!d) {
			gen_heightmap_release(hm);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		const float *u = hm->px[k - 1];
		size_t uw = hm->w[k - 1];
		for (uint32_t y = 0; y < h; y++)
			for (uint32_t x = 0; x < w; x++) {
				size_t a = 2 * (size_t)y * uw + 2 * (size_t)x;
				d[(size_t)y * w + x] = 0.25f * (u[a] + u[a + 1] + u[a + uw] + u[a + uw + 1]);
			}
		hm->px[k] = d;
		hm->w[k] = w;
		hm->h[k] = h;
		hm->levels++;
	}
	return 0;
}

void gen_heightmap_release(struct gen_heightmap *hm)
{
	for (int k = 0; k < GEN_HM_LEVELS; k++)
		xfree(hm->px[k]);
	memset(hm, 0, sizeof(*hm));
}

/* Mirrored-repeat index of i into [0, n). */
static size_t mirror(double i, size_t n)
{
	double p = fmod(i, 2.0 * (double)n);
	if (p < 0)
		p += 2.0 * (double)n;
	size_t k = (size_t)p;
	if (k >= 2 * n)
		k = 2 * n - 1;
	return k < n ? k : 2 * n - 1 - k;
}

/* Bilinear value of level k at (x, y) in that level's pixels. */
static double hm_sample(const struct gen_heightmap *hm, int k, double x, double y)
{
	size_t w = hm->w[k], h = hm->h[k];
	double fx = floor(x - 0.5), fy = floor(y - 0.5);
	double tx = x - 0.5 - fx, ty = y - 0.5 - fy;
	size_t x0 = mirror(fx, w), x1 = mirror(fx + 1, w);
	size_t y0 = mirror(fy, h), y1 = mirror(fy + 1, h);
	const float *p = hm->px[k];
	double a = lerp(p[y0 * w + x0], p[y0 * w + x1], tx);
	double b = lerp(p[y1 * w + x0], p[y1 * w + x1], tx);
	return lerp(a, b, ty);
}

/* Triplanar height of the map at p (mm), sampled no finer than s. */
static void relief_map(const struct relief *r, const double p[3], const double n[3],
		       double s, struct rsample *o)
{
	const struct gen_heightmap *hm = r->hm;
	double px = hm->width_mm / hm->w[0];
	int k = 0;
	while (k + 1 < hm->levels && px * (double)(1u << (k + 1)) <= s)
		k++;
	double scale = (double)(1u << k);
	double w[3], h = 0;
	triplanar(n, w);
	for (int a = 0; a < 3; a++) {
		if (w[a] < 0.01)
			continue;
		double u, v;
		plane_coords(p, a, r->grain, &u, &v);
		uint64_t hs = mix64(r->seed + 101 + (uint64_t)a);
		double ou = u01(hs) * hm->w[0], ov = u01(mix64(hs)) * hm->h[0];
		h += w[a] * hm_sample(hm, k, (u / px + ou) / scale, (v / px + ov) / scale);
	}
	o->h = h;
	o->tone = 0.5 - 0.5 * h;
	o->aux = 0.5;
}

static void relief_eval(const struct relief *r, const double p[3],
			const double n[3], double s, struct rsample *o)
{
	o->h = 0;
	o->tone = 0;
	o->aux = 0;
	if (r->hm) {
		relief_map(r, p, n, s, o);
		o->h *= r->amp;
		return;
	}
	switch (r->m) {
	case GEN_MAT_SKIN: relief_skin(r, p, n, s, o); break;
	case GEN_MAT_BARK: relief_bark(r, p, s, o); break;
	case GEN_MAT_FABRIC: relief_fabric(r, p, n, s, o); break;
	case GEN_MAT_STONE: relief_stone(r, p, n, s, o); break;
	case GEN_MAT_HAMMERED: relief_hammered(r, p, s, o); break;
	case GEN_MAT_WOOD: relief_wood(r, p, s, o); break;
	case GEN_MAT_LEATHER: relief_leather(r, p, n, s, o); break;
	case GEN_MAT_KNIT: relief_knit(r, p, n, s, o); break;
	default: break;
	}
	o->h *= r->amp;
}

static void relief_init(struct relief *r, enum gen_material m, uint64_t seed,
			int grain, double amplitude_mm)
{
	r->hm = NULL;
	r->m = m;
	r->seed = mix64(seed ^ 0x5EEDull);
	r->grain = grain;
	double def = gen_material_amplitude(m);
	r->amp = amplitude_mm > 0 && def > 0 ? amplitude_mm / def : 1.0;
	r->variant = (int)(mix64(seed ^ 0xC0105ull) % 4);
}

double gen_relief(enum gen_material m, uint64_t seed, const double pos[3],
		  const double nrm[3], int grain, double spacing_mm,
		  double amplitude_mm)
{
	struct relief r;
	struct rsample o;
	relief_init(&r, m, seed, grain < 0 || grain > 2 ? 2 : grain, amplitude_mm);
	relief_eval(&r, pos, nrm, spacing_mm, &o);
	return o.h;
}

/* --------------------------------------------------------------- colour */

static void mix3(double out[3], const double a[3], const double b[3], double t)
{
	for (int k = 0; k < 3; k++)
		out[k] = a[k] + (b[k] - a[k]) * t;
}

/* Surface colour (linear 0..1) of a relief sample at p. */
static void relief_color(const struct relief *r, const double p[3],
			 const struct rsample *o, double rgb[3])
{
	double mott = gnoise3(p, 15.0, r->seed + 91);   /* large blotches */
	double fine = gnoise3(p, 0.7, r->seed + 92);    /* small speckle */
	switch (r->m) {
	case GEN_MAT_SKIN: {
		static const double base[3] = { 0.86, 0.66, 0.56 };
		static const double red[3] = { 0.80, 0.50, 0.45 };
		static const double dark[3] = { 0.62, 0.42, 0.36 };
		mix3(rgb, base, red, clamp01(0.5 + 1.5 * mott) * 0.5);
		mix3(rgb, rgb, dark, o->tone * 0.7);
		break;
	}
	case GEN_MAT_BARK: {
		static const double plate[3] = { 0.46, 0.41, 0.36 };
		static const double furrow[3] = { 0.17, 0.12, 0.09 };
		static const double lichen[3] = { 0.56, 0.60, 0.42 };
		mix3(rgb, plate, lichen, o->aux * 0.8 * (1.0 - o->tone));
		mix3(rgb, rgb, furrow, o->tone);
		break;
	}
	case GEN_MAT_FABRIC: {
		static const double dyes[4][3] = {
			{ 0.13, 0.18, 0.36 }, { 0.55, 0.10, 0.12 },
			{ 0.38, 0.40, 0.22 }, { 0.80, 0.74, 0.62 },
		};
		const double *d = dyes[r->variant];
		double weft[3] = { d[0] * 0.8, d[1] * 0.8, d[2] * 0.8 };
		static const double black[3] = { 0.03, 0.03, 0.03 };
		mix3(rgb, d, weft, o->aux);
		mix3(rgb, rgb, black, o->tone * 0.8);
		break;
	}
	case GEN_MAT_STONE: {
		static const double grey[3] = { 0.55, 0.53, 0.50 };
		static const double warm[3] = { 0.62, 0.55, 0.46 };
		static const double dark[3] = { 0.22, 0.21, 0.20 };
		mix3(rgb, grey, warm, clamp01(0.5 + mott));
		if (o->aux > 0.85)
			mix3(rgb, rgb, dark, 0.6);
		else if (o->aux < 0.1)
			mix3(rgb, rgb, (const double[3]){ 0.85, 0.84, 0.82 }, 0.5);
		mix3(rgb, rgb, dark, o->tone);
		break;
	}
	case GEN_MAT_HAMMERED: {
		static const double copper[3] = { 0.72, 0.45, 0.22 };
		static const double steel[3] = { 0.60, 0.61, 0.63 };
		const double *m = r->variant & 1 ? steel : copper;
		double bright[3] = { m[0] * 1.3, m[1] * 1.3, m[2] * 1.3 };
		double dull[3] = { m[0] * 0.75, m[1] * 0.75, m[2] * 0.75 };
		mix3(rgb, dull, m, o->aux);
		mix3(rgb, rgb, bright, o->tone * 0.8);
		break;
	}
	case GEN_MAT_WOOD: {
		static const double early[3] = { 0.78, 0.61, 0.42 };
		static const double late[3] = { 0.52, 0.35, 0.20 };
		mix3(rgb, early, late, o->tone);
		double k = 0.9 + 0.2 * o->aux;
		for (int c = 0; c < 3; c++)
			rgb[c] *= k;
		break;
	}
	case GEN_MAT_LEATHER: {
		static const double brown[3] = { 0.42, 0.26, 0.15 };
		static const double crease[3] = { 0.22, 0.13, 0.07 };
		mix3(rgb, brown, crease, o->tone * 0.8);
		double k = 0.85 + 0.3 * o->aux;
		for (int c = 0; c < 3; c++)
			rgb[c] *= k;
		break;
	}
	case GEN_MAT_KNIT: {
		static const double wool[4][3] = {
			{ 0.85, 0.82, 0.74 }, { 0.45, 0.08, 0.10 },
			{ 0.20, 0.32, 0.22 }, { 0.35, 0.35, 0.38 },
		};
		static const double shade[3] = { 0.05, 0.05, 0.05 };
		mix3(rgb, wool[r->variant], shade, o->tone * 0.7);
		break;
	}
	default:
		rgb[0] = rgb[1] = rgb[2] = 0.75;
		break;
	}
	for (int c = 0; c < 3; c++)
		rgb[c] = clamp01(rgb[c] * (1.0 + 0.06 * fine));
}

static void base_color(const struct relief *r, float kd[3])
{
	double p[3] = { 0, 0, 0 }, rgb[3];
	struct rsample o = { 0, 0, 0.5 };
	relief_color(r, p, &o, rgb);
	for (int k = 0; k < 3; k++)
		kd[k] = (float)rgb[k];
}

static inline uint8_t to_u8(double v)
{
	return (uint8_t)lrint(clamp01(v) * 255.0);
}

/* ---------------------------------------------------------------- forms */

struct form {
	enum gen_form kind;
	uint64_t seed;
	int cube;            /* six cube-face charts */
	int grain;           /* axis of anisotropic relief */
};

/* Cube face f (0 +x, 1 -x, 2 +y, 3 -y, 4 +z, 5 -z): axes of s and t. */
static void face_axes(int f, int *a, int *as, int *at)
{
	int ax = f / 2, b = (ax + 1) % 3, c = (ax + 2) % 3;
	*a = ax;
	if (f % 2 == 0) {
		*as = b;
		*at = c;
	} else {
		*as = c;
		*at = b;
	}
}

/* Point of the cube [-1,1]^3 for face f at (s, t) in [0,1]. */
static void cube_point(int f, double s, double t, double q[3])
{
	int a, as, at;
	face_axes(f, &a, &as, &at);
	q[a] = f % 2 == 0 ? 1.0 : -1.0;
	q[as] = 2.0 * s - 1.0;
	q[at] = 2.0 * t - 1.0;
}

/* Unit direction through cube point q with equal-angle warping. */
static void cube_dir(const double q[3], double d[3])
{
	double w[3], len = 0;
	for (int k = 0; k < 3; k++) {
		/* the face coordinate stays +-1; the others are warped */
		w[k] = fabs(q[k]) == 1.0 ? q[k] : tan(q[k] * M_PI / 4.0);
		len += w[k] * w[k];
	}
	len = sqrt(len);
	for (int k = 0; k < 3; k++)
		d[k] = w[k] / len;
}

/* Base form at chart `face`, parameters (s, t); unscaled (about unit size). */
static void form_point(const struct form *F, int face, double s, double t, double P[3])
{
	switch (F->kind) {
	case GEN_FORM_TILE: {
		double x = s - 0.5, y = 0.75 * (t - 0.5);
		P[0] = x;
		P[1] = y;
		P[2] = 0.03 * gnoise(1.3 * x, 1.3 * y, 0.5, F->seed) - 0.06 * (x * x + y * y);
		break;
	}
	case GEN_FORM_PANEL: {
		double x = s - 0.5, y = 0.8 * (t - 0.5);
		P[0] = x;
		P[1] = y;
		P[2] = 0.22 * (x * x - y * y) + 0.025 * sin(2.0 * M_PI * (2.5 * x + 0.6 * y));
		break;
	}
	case GEN_FORM_TRUNK: {
		double th = 2.0 * M_PI * s, z = t - 0.5;
		double c = cos(th), sn = sin(th);
		double rad = 0.17 * (1.0 - 0.2 * t) *
			     (1.0 + 0.07 * gnoise(1.5 * c, 1.5 * sn, 3.0 * z, F->seed));
		P[0] = 0.05 * sin(1.3 * M_PI * t) + rad * c;
		P[1] = rad * sn;
		P[2] = z;
		break;
	}
	case GEN_FORM_TORUS: {
		double th = 2.0 * M_PI * s, ph = 2.0 * M_PI * t;
		const double R = 0.36, r = 0.14;
		P[0] = (R + r * cos(ph)) * cos(th);
		P[1] = (R + r * cos(ph)) * sin(th);
		P[2] = r * sin(ph);
		break;
	}
	case GEN_FORM_BOX: {
		static const double half[3] = { 0.5, 0.35, 0.225 };
		const double rr = 0.06;
		double q[3], in[3], d[3], len = 0;
		cube_point(face, s, t, q);
		for (int k = 0; k < 3; k++) {
			double v = q[k] * half[k], lim = half[k] - rr;
			in[k] = v > lim ? lim : v < -lim ? -lim : v;
			d[k] = v - in[k];
			len += d[k] * d[k];
		}
		len = sqrt(len);
		for (int k = 0; k < 3; k++)
			P[k] = len > 0 ? in[k] + rr * d[k] / len : q[k] * half[k];
		break;
	}
	case GEN_FORM_BLOB: {
		double q[3], d[3];
		cube_point(face, s, t, q);
		cube_dir(q, d);
		double rad = 0.5 * (1.0 + 0.22 * gnoise(1.1 * d[0], 1.1 * d[1], 1.1 * d[2], F->seed) +
				    0.08 * gnoise(2.3 * d[0], 2.3 * d[1], 2.3 * d[2], F->seed + 1));
		P[0] = rad * d[0];
		P[1] = 0.85 * rad * d[1];
		P[2] = 0.75 * rad * d[2];
		break;
	}
	default: { /* GEN_FORM_LIMB */
		double q[3], d[3];
		cube_point(face, s, t, q);
		cube_dir(q, d);
		double x = 0.5 * d[0];
		double k = (1.0 + 0.18 * exp(-((x - 0.12) / 0.16) * ((x - 0.12) / 0.16))) *
			   (1.0 - 0.25 * (d[0] + 1.0) * 0.5);
		P[0] = x;
		P[1] = 0.17 * k * d[1];
		P[2] = 0.15 * k * d[2];
		break;
	}
	}
}

/* Base normal by central differences of the parametrisation. */
static void form_normal(const struct form *F, int face, double s, double t, double N[3])
{
	const double h = 1e-4;
	double a[3], b[3], c[3], d[3];
	form_point(F, face, s + h, t, a);
	form_point(F, face, s - h, t, b);
	form_point(F, face, s, t + h, c);
	form_point(F, face, s, t - h, d);
	double u[3] = { a[0] - b[0], a[1] - b[1], a[2] - b[2] };
	double v[3] = { c[0] - d[0], c[1] - d[1], c[2] - d[2] };
	N[0] = u[1] * v[2] - u[2] * v[1];
	N[1] = u[2] * v[0] - u[0] * v[2];
	N[2] = u[0] * v[1] - u[1] * v[0];
	double len = sqrt(N[0] * N[0] + N[1] * N[1] + N[2] * N[2]);
	if (len > 0) {
		for (int k = 0; k < 3; k++)
			N[k] /= len;
	} else {
		N[0] = N[1] = 0;
		N[2] = 1;
	}
}

struct chart {
	int face;            /* cube face, or 0 */
	size_t nu, nv;       /* grid points along s and t (wrapping ones include the seam copy) */
	int wrap_u, wrap_v;  /* periodic: the last column/row repeats the first */
	double uv0[2], uv1[2]; /* atlas rectangle */
	double len_u, len_v; /* approximate lengths (unscaled) */
	size_t v0, f0;       /* first vertex and face */
};

struct layout {
	struct chart ch[6];
	int n_charts;
	size_t n_vertices, n_faces;
	double edge;         /* target edge length (unscaled) */
};

static size_t cells_for(double len, double edge, size_t min)
{
	double n = floor(len / edge + 0.5);
	if (!(n >= (double)min))
		n = (double)min;
	if (n > 1e7)
		n = 1e7;
	return (size_t)n;
}

static void form_init(struct form *F, enum gen_form kind, uint64_t seed)
{
	F->kind = kind;
	F->seed = mix64(seed ^ 0xF0F0ull);
	F->cube = kind == GEN_FORM_BLOB || kind == GEN_FORM_BOX || kind == GEN_FORM_LIMB;
	F->grain = kind == GEN_FORM_TILE || kind == GEN_FORM_PANEL ? 1 :
		   kind == GEN_FORM_LIMB ? 0 : 2;
}

/* Lay out charts so that about `triangles` triangles result. */
static void layout_make(const struct form *F, size_t triangles, struct layout *L)
{
	memset(L, 0, sizeof(*L));
	double T = (double)triangles;
	if (F->cube) {
		double E[3];
		if (F->kind == GEN_FORM_BOX) {
			E[0] = 1.0;
			E[1] = 0.7;
			E[2] = 0.45;
		} else if (F->kind == GEN_FORM_LIMB) {
			E[0] = M_PI / 2 * 0.5;
			E[1] = M_PI / 2 * 0.17;
			E[2] = M_PI / 2 * 0.15;
		} else {
			E[0] = M_PI / 2 * 0.5;
			E[1] = M_PI / 2 * 0.43;
			E[2] = M_PI / 2 * 0.38;
		}
		double A = 2.0 * (E[0] * E[1] + E[1] * E[2] + E[0] * E[2]);
		L->edge = sqrt(2.0 * A / T);
		size_t n[3];
		for (int k = 0; k < 3; k++)
			n[k] = cells_for(E[k], L->edge, 1) + 1;
		L->n_charts = 6;
		for (int f = 0; f < 6; f++) {
			int a, as, at;
			face_axes(f, &a, &as, &at);
			struct chart *c = &L->ch[f];
			c->face = f;
			c->nu = n[as];
			c->nv = n[at];
			c->len_u = E[as];
			c->len_v = E[at];
			/* 3 x 2 atlas with a small gutter so texels do not bleed */
			const double g = 0.004;
			int col = f % 3, row = f / 3;
			c->uv0[0] = col / 3.0 + g;
			c->uv1[0] = (col + 1) / 3.0 - g;
			c->uv0[1] = row / 2.0 + g;
			c->uv1[1] = (row + 1) / 2.0 - g;
		}
	} else {
		struct chart *c = &L->ch[0];
		L->n_charts = 1;
		switch (F->kind) {
		case GEN_FORM_TILE: c->len_u = 1.0; c->len_v = 0.75; break;
		case GEN_FORM_PANEL: c->len_u = 1.0; c->len_v = 0.8; break;
		case GEN_FORM_TRUNK:
			c->len_u = 2 * M_PI * 0.155;
			c->len_v = 1.0;
			c->wrap_u = 1;
			break;
		default:
			c->len_u = 2 * M_PI * 0.36;
			c->len_v = 2 * M_PI * 0.14;
			c->wrap_u = c->wrap_v = 1;
			break;
		}
		L->edge = sqrt(2.0 * c->len_u * c->len_v / T);
		c->nu = cells_for(c->len_u, L->edge, c->wrap_u ? 3 : 1) + 1;
		c->nv = cells_for(c->len_v, L->edge, c->wrap_v ? 3 : 1) + 1;
		c->uv0[0] = c->uv0[1] = 0;
		c->uv1[0] = c->uv1[1] = 1;
	}
	for (int i = 0; i < L->n_charts; i++) {
		struct chart *c = &L->ch[i];
		c->v0 = L->n_vertices;
		c->f0 = L->n_faces;
		L->n_vertices += c->nu * c->nv;
		L->n_faces += 2 * (c->nu - 1) * (c->nv - 1);
	}
}

/* ----------------------------------------------------------------- weld */

/*
 * canon[i] = the first vertex with exactly the same position bits as i.
 * Open addressing on a hash of the bits; deterministic (first index wins).
 */
static int weld(const float *pos, size_t n, uint32_t *canon, struct err *e)
{
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	uint32_t *slot = alloc_array(cap, sizeof(*slot));
	if (!slot)
		return err_set(e, ERR_NOMEM, "out of memory for %zu vertices", n);
	memset(slot, 0xFF, cap * sizeof(*slot));
	for (size_t i = 0; i < n; i++) {
		uint32_t b[3];
		memcpy(b, pos + 3 * i, sizeof(b));
		uint64_t h = mix64(((uint64_t)b[0] << 32 | b[1]) ^ mix64(b[2]));
		size_t k = (size_t)h & (cap - 1);
		for (;;) {
			if (slot[k] == UINT32_MAX) {
				slot[k] = (uint32_t)i;
				canon[i] = (uint32_t)i;
				break;
			}
			if (!memcmp(pos + 3 * (size_t)slot[k], pos + 3 * i, 3 * sizeof(float))) {
				canon[i] = slot[k];
				break;
			}
			k = (k + 1) & (cap - 1);
		}
	}
	xfree(slot);
	return 0;
}

/* Area-weighted normals accumulated on canonical vertices, then copied. */
static int normals_from_faces(struct scan *s, const uint32_t *canon, struct err *e)
{
	size_t nv = s->n_vertices;
	double *acc = alloc_array_zero(nv ? 3 * nv : 1, sizeof(double));
	if (!acc)
		return err_set(e, ERR_NOMEM, "out of memory for %zu normals", nv);
	for (size_t f = 0; f < s->n_faces; f++) {
		const uint32_t *t = s->indices + 3 * f;
		const float *a = s->positions + 3 * t[0];
		const float *b = s->positions + 3 * t[1];
		const float *c = s->positions + 3 * t[2];
		double u[3], v[3], w[3];
		for (int k = 0; k < 3; k++) {
			u[k] = (double)b[k] - a[k];
			v[k] = (double)c[k] - a[k];
		}
		w[0] = u[1] * v[2] - u[2] * v[1];
		w[1] = u[2] * v[0] - u[0] * v[2];
		w[2] = u[0] * v[1] - u[1] * v[0];
		if (!isfinite(w[0] + w[1] + w[2]))
			continue;
		for (int j = 0; j < 3; j++) {
			double *d = acc + 3 * (size_t)canon[t[j]];
			d[0] += w[0];
			d[1] += w[1];
			d[2] += w[2];
		}
	}
	for (size_t i = 0; i < nv; i++) {
		const double *d = acc + 3 * (size_t)canon[i];
		double len = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
		float *o = s->normals + 3 * i;
		if (len > 0) {
			for (int k = 0; k < 3; k++)
				o[k] = (float)(d[k] / len);
		} else {
			o[0] = o[1] = 0;
			o[2] = 1;
		}
	}
	xfree(acc);
	return 0;
}

int gen_normals(struct scan *s, struct err *e)
{
	int rc;
	uint32_t *canon = NULL;
	if (s->n_vertices > UINT32_MAX - 1)
		return err_set(e, ERR_LIMIT, "%zu vertices (limit %u)", s->n_vertices,
			       UINT32_MAX - 1);
	if (!s->normals) {
		s->normals = alloc_array(s->n_vertices ? 3 * s->n_vertices : 1, sizeof(float));
		if (!s->normals)
			return err_set(e, ERR_NOMEM, "out of memory for %zu normals", s->n_vertices);
	}
	canon = alloc_array(s->n_vertices ? s->n_vertices : 1, sizeof(*canon));
	if (!canon) {
		rc = err_set(e, ERR_NOMEM, "out of memory for %zu vertices", s->n_vertices);
		goto out;
	}
	if ((rc = weld(s->positions, s->n_vertices, canon, e)))
		goto out;
	rc = normals_from_faces(s, canon, e);
out:
	xfree(canon);
	return rc;
}

/* ------------------------------------------------------------- gen_scan */

static inline double jitter(uint64_t seed, int chart, size_t i, size_t j, int axis)
{
	uint64_t h = hash3((int64_t)chart * 2 + axis, (int64_t)i, (int64_t)j, seed);
	return (u01(h) - 0.5) * 0.6;
}

/* Parameters of grid point (i, j) of chart c: for the position (wrapped)
 * and for the UV (unwrapped), jittered inside the chart. */
static void grid_param(const struct chart *c, int ci, size_t i, size_t j, int jit,
		       uint64_t seed, double *s, double *t, double *su, double *tv)
{
	size_t cu = c->nu - 1, cv = c->nv - 1;
	size_t iw = c->wrap_u && i == cu ? 0 : i;
	size_t jw = c->wrap_v && j == cv ? 0 : j;
	/* open borders are shared with other charts: pinned in both axes;
	 * a wrap seam is pinned across itself so its UVs stay in [0, 1] */
	int border = (!c->wrap_u && (i == 0 || i == cu)) ||
		     (!c->wrap_v && (j == 0 || j == cv));
	double ju = 0, jv = 0;
	if (jit && !border) {
		if (!(c->wrap_u && iw == 0))
			ju = jitter(seed, ci, iw, jw, 0);
		if (!(c->wrap_v && jw == 0))
			jv = jitter(seed, ci, iw, jw, 1);
	}
	*s = ((double)iw + ju) / (double)cu;
	*t = ((double)jw + jv) / (double)cv;
	*su = ((double)i + ju) / (double)cu;
	*tv = ((double)j + jv) / (double)cv;
}

static int texture_make(const struct form *F, const struct layout *L,
			const struct relief *R, double scale, uint32_t px,
			struct image *tex, struct err *e)
{
	image_init(tex);
	tex->rgba = alloc_array((size_t)px * px, 4);
	if (!tex->rgba)
		return err_set(e, ERR_NOMEM, "out of memory for a %ux%u texture", px, px);
	tex->width = tex->height = px;
	tex->channels = 3;
	long n = (long)px * (long)px;
#pragma omp parallel for schedule(dynamic, 4096) if (n > PAR_MIN)
	for (long k = 0; k < n; k++) {
		uint32_t x = (uint32_t)(k % px), y = (uint32_t)(k / px);
		double u = (x + 0.5) / px, v = 1.0 - (y + 0.5) / px; /* row 0 is the top */
		const struct chart *c = &L->ch[0];
		if (L->n_charts == 6) {
			int col = (int)(u * 3), row = (int)(v * 2);
			col = col > 2 ? 2 : col;
			row = row > 1 ? 1 : row;
			c = &L->ch[row * 3 + col];
		}
		double s = clamp01((u - c->uv0[0]) / (c->uv1[0] - c->uv0[0]));
		double t = clamp01((v - c->uv0[1]) / (c->uv1[1] - c->uv0[1]));
		double P[3], N[3], rgb[3];
		form_point(F, c->face, s, t, P);
		form_normal(F, c->face, s, t, N);
		for (int a = 0; a < 3; a++)
			P[a] *= scale;
		double texel = scale * c->len_u / (px * (c->uv1[0] - c->uv0[0]));
		struct rsample o;
		relief_eval(R, P, N, texel, &o);
		relief_color(R, P, &o, rgb);
		uint8_t *d = tex->rgba + 4 * (size_t)k;
		d[0] = to_u8(rgb[0]);
		d[1] = to_u8(rgb[1]);
		d[2] = to_u8(rgb[2]);
		d[3] = 255;
	}
	return 0;
}

static int meta_add_str(struct scan *s, const char *k, const char *v)
{
	return scan_meta_add(s, k, strlen(k), v, strlen(v));
}

static int meta_add_u64(struct scan *s, const char *k, uint64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return meta_add_str(s, k, buf);
}

static int meta_add_num(struct scan *s, const char *k, double v)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%.6g", v);
	return meta_add_str(s, k, buf);
}

int gen_scan(const struct gen_params *p, struct scan *out, struct image *tex,
	     struct err *e)
{
	struct form F;
	struct layout L;
	struct relief R;
	uint32_t *canon = NULL;
	int rc = 0;

	scan_init(out);
	if (tex)
		image_init(tex);
	if ((unsigned)p->form >= GEN_N_FORMS || (unsigned)p->material >= GEN_N_MATERIALS ||
	    (unsigned)p->color >= GEN_N_COLORS)
		return err_set(e, ERR_INTERNAL, "unknown form, material or colour mode");
	if (!(p->size_mm > 0 && p->size_mm < 1e6))
		return err_set(e, ERR_LIMIT, "size %g mm out of range (0, 1e6)", p->size_mm);
	if (!(p->amplitude_mm >= 0 && p->amplitude_mm < 1e4))
		return err_set(e, ERR_LIMIT, "amplitude %g mm out of range [0, 1e4)", p->amplitude_mm);
	if (p->triangles < 8 || p->triangles > 400000000u)
		return err_set(e, ERR_LIMIT, "%zu triangles out of range [8, 4e8]", p->triangles);
	if (p->color == GEN_COLOR_TEXTURE && !tex)
		return err_set(e, ERR_INTERNAL, "texture mode needs an image to fill");

	form_init(&F, p->form, p->seed);
	layout_make(&F, p->triangles, &L);
	relief_init(&R, p->material, p->seed, F.grain, p->amplitude_mm);
	if (p->heightmap) {
		if (!p->heightmap->levels)
			return err_set(e, ERR_INTERNAL, "empty height map");
		R.hm = p->heightmap;
		R.amp = p->amplitude_mm > 0 ? p->amplitude_mm : 0.5;
	}
	if (L.n_vertices >= UINT32_MAX)
		return err_set(e, ERR_LIMIT, "%zu vertices (limit %u)", L.n_vertices, UINT32_MAX);

	const bool want_uv = p->uvs || p->color == GEN_COLOR_TEXTURE;
	unsigned flags = SCAN_ALLOC_NORMALS;
	if (want_uv)
		flags |= SCAN_ALLOC_UVS;
	if (p->color == GEN_COLOR_VERTEX)
		flags |= SCAN_ALLOC_COLORS;
	if ((rc = scan_alloc(out, L.n_vertices, L.n_faces, flags, e)))
		goto out;
	out->n_vertices = L.n_vertices;
	out->n_faces = out->n_polygons = L.n_faces;
	out->units = UNITS_MM;
	snprintf(out->encoding, sizeof(out->encoding), "generated");

	/* 2. base form, unscaled, with base normals */
	for (int ci = 0; ci < L.n_charts; ci++) {
		const struct chart *c = &L.ch[ci];
		long n = (long)(c->nu * c->nv);
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
		for (long k = 0; k < n; k++) {
			size_t i = (size_t)k % c->nu, j = (size_t)k / c->nu;
			size_t vi = c->v0 + (size_t)k;
			double s, t, su, tv, P[3], N[3];
			grid_param(c, ci, i, j, p->jitter, F.seed, &s, &t, &su, &tv);
			form_point(&F, c->face, s, t, P);
			form_normal(&F, c->face, s, t, N);
			for (int a = 0; a < 3; a++) {
				out->positions[3 * vi + (size_t)a] = (float)P[a];
				out->normals[3 * vi + (size_t)a] = (float)N[a];
			}
			if (want_uv) {
				out->uvs[2 * vi] = (float)(c->uv0[0] + (c->uv1[0] - c->uv0[0]) * su);
				out->uvs[2 * vi + 1] = (float)(c->uv0[1] + (c->uv1[1] - c->uv0[1]) * tv);
			}
		}
	}
	/* scale so the largest extent is size_mm */
	float lo[3] = { FLT_MAX, FLT_MAX, FLT_MAX }, hi[3] = { -FLT_MAX, -FLT_MAX, -FLT_MAX };
	for (size_t i = 0; i < out->n_vertices; i++)
		for (int a = 0; a < 3; a++) {
			float v = out->positions[3 * i + (size_t)a];
			lo[a] = v < lo[a] ? v : lo[a];
			hi[a] = v > hi[a] ? v : hi[a];
		}
	double ext = 0;
	for (int a = 0; a < 3; a++)
		ext = (double)(hi[a] - lo[a]) > ext ? (double)(hi[a] - lo[a]) : ext;
	const double scale = ext > 0 ? p->size_mm / ext : 1.0;
	for (size_t i = 0; i < 3 * out->n_vertices; i++)
		out->positions[i] = (float)(out->positions[i] * scale);
	const double spacing = L.edge * scale;

	/* 3. weld seams */
	canon = alloc_array(out->n_vertices, sizeof(*canon));
	if (!canon) {
		rc = err_set(e, ERR_NOMEM, "out of memory for %zu vertices", out->n_vertices);
		goto out;
	}
	if ((rc = weld(out->positions, out->n_vertices, canon, e)))
		goto out;

	/* 4. relief on canonical vertices, then copies */
	long nv = (long)out->n_vertices;
#pragma omp parallel for schedule(dynamic, 1024) if (nv > PAR_MIN)
	for (long k = 0; k < nv; k++) {
		size_t i = (size_t)k;
		if (canon[i] != i)
			continue;
		double P[3], N[3], rgb[3];
		for (int a = 0; a < 3; a++) {
			P[a] = out->positions[3 * i + (size_t)a];
			N[a] = out->normals[3 * i + (size_t)a];
		}
		struct rsample o;
		relief_eval(&R, P, N, spacing, &o);
		for (int a = 0; a < 3; a++)
			out->positions[3 * i + (size_t)a] = (float)(P[a] + o.h * N[a]);
		if (out->colors) {
			relief_color(&R, P, &o, rgb);
			uint8_t *d = out->colors + 4 * i;
			d[0] = to_u8(rgb[0]);
			d[1] = to_u8(rgb[1]);
			d[2] = to_u8(rgb[2]);
			d[3] = 255;
		}
	}
	for (size_t i = 0; i < out->n_vertices; i++) {
		size_t c = canon[i];
		if (c == i)
			continue;
		memcpy(out->positions + 3 * i, out->positions + 3 * c, 3 * sizeof(float));
		if (out->colors)
			memcpy(out->colors + 4 * i, out->colors + 4 * c, 4);
	}

	/* 5. triangles along the shorter diagonal, outward */
	for (int ci = 0; ci < L.n_charts; ci++) {
		const struct chart *c = &L.ch[ci];
		long ncell = (long)((c->nu - 1) * (c->nv - 1));
#pragma omp parallel for schedule(static) if (ncell > PAR_MIN)
		for (long k = 0; k < ncell; k++) {
			size_t i = (size_t)k % (c->nu - 1), j = (size_t)k / (c->nu - 1);
			uint32_t a = (uint32_t)(c->v0 + j * c->nu + i);
			uint32_t b = a + 1;
			uint32_t d = (uint32_t)(a + c->nu);
			uint32_t cc = d + 1;
			const float *pa = out->positions + 3 * (size_t)a;
			const float *pb = out->positions + 3 * (size_t)b;
			const float *pc = out->positions + 3 * (size_t)cc;
			const float *pd = out->positions + 3 * (size_t)d;
			double d1 = 0, d2 = 0;
			for (int q = 0; q < 3; q++) {
				d1 += ((double)pc[q] - pa[q]) * ((double)pc[q] - pa[q]);
				d2 += ((double)pd[q] - pb[q]) * ((double)pd[q] - pb[q]);
			}
			uint32_t *t = out->indices + 3 * (c->f0 + 2 * (size_t)k);
			if (d1 <= d2) {
				t[0] = a; t[1] = b; t[2] = cc;
				t[3] = a; t[4] = cc; t[5] = d;
			} else {
				t[0] = a; t[1] = b; t[2] = d;
				t[3] = b; t[4] = cc; t[5] = d;
			}
		}
	}
	if (p->normals) {
		if ((rc = normals_from_faces(out, canon, e)))
			goto out;
	} else {
		xfree(out->normals);
		out->normals = NULL;
	}

	/* one material named after the relief; the texture in texture mode */
	int32_t mi = scan_material_intern(out, material_names[p->material],
					  strlen(material_names[p->material]));
	if (mi < 0) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	out->materials[mi].defined = true;
	base_color(&R, out->materials[mi].kd);
	if (p->color == GEN_COLOR_TEXTURE) {
		const char *tn = p->texture_name ? p->texture_name : "texture.png";
		int32_t ti = scan_texture_add(out, tn, strlen(tn));
		if (ti < 0) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		out->materials[mi].texture = ti;
		out->materials[mi].kd[0] = out->materials[mi].kd[1] = out->materials[mi].kd[2] = 1.0f;
		uint32_t px = p->texture_px;
		if (!px) {
			double want = sqrt(2.0 * (double)p->triangles);
			px = 256;
			while (px < want && px < 4096)
				px *= 2;
		}
		if (px > 16384)
			px = 16384;
		if ((rc = texture_make(&F, &L, &R, scale, px, tex, e)))
			goto out;
	}
	if (meta_add_str(out, "generator", "refscan-gen") ||
	    meta_add_num(out, "generator_version", GEN_VERSION) ||
	    meta_add_str(out, "form", form_names[p->form]) ||
	    meta_add_str(out, "material", material_names[p->material]) ||
	    meta_add_u64(out, "seed", p->seed) ||
	    meta_add_num(out, "size_mm", p->size_mm) ||
	    meta_add_num(out, "amplitude_mm", R.amp * gen_material_amplitude(p->material)) ||
	    meta_add_num(out, "edge_mm", spacing)) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = scan_finalize(out, e);
out:
	xfree(canon);
	if (rc) {
		scan_release(out);
		if (tex)
			image_release(tex);
	}
	return rc;
}

/* --------------------------------------------------------------- output */

/* "dir/name.ext" -> "dir/name" + suffix (caller frees). */
static char *with_suffix(const char *path, const char *suffix)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash + 1 : path, '.');
	size_t stem = dot ? (size_t)(dot - path) : strlen(path);
	size_t n = stem + strlen(suffix) + 1;
	char *r = xmalloc(n);
	if (r)
		snprintf(r, n, "%.*s%s", (int)stem, path, suffix);
	return r;
}

static int write_texture(const char *path, const struct scan *s,
			 const struct image *tex, struct err *e)
{
	if (!tex || !tex->rgba || !s->n_textures)
		return 0;
	const char *decl = s->textures[0].declared;
	char *tp = format_resolve_ref(path, decl, strlen(decl));
	if (!tp)
		return err_set(e, ERR_IO, "texture name '%s' is not a safe relative path", decl);
	size_t n = (size_t)tex->width * tex->height;
	uint8_t *rgb = alloc_array(n ? n : 1, 3);
	if (!rgb) {
		xfree(tp);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		memcpy(rgb + 3 * i, tex->rgba + 4 * i, 3);
	int rc = image_write_png(tp, rgb, tex->width, tex->height, 3, e);
	xfree(rgb);
	xfree(tp);
	return rc;
}

int gen_write(const char *path, enum gen_format f, const struct scan *s,
	      const struct image *tex, struct err *e)
{
	int rc = 0;
	char *mtl = NULL;
	err_set_path(e, path);
	switch (f) {
	case GEN_FMT_PLY:
		rc = ply_write(path, s, e);
		break;
	case GEN_FMT_PLY_ASCII:
		rc = gen_write_ply_ascii(path, s, e);
		break;
	case GEN_FMT_OBJ:
		if (s->n_materials) {
			mtl = with_suffix(path, ".mtl");
			if (!mtl)
				return err_set(e, ERR_NOMEM, "out of memory");
			const char *base = strrchr(mtl, '/');
			base = base ? base + 1 : mtl;
			if ((rc = mtl_write(mtl, s, e)))
				break;
			rc = obj_write(path, s, base, e);
		} else {
			rc = obj_write(path, s, NULL, e);
		}
		break;
	case GEN_FMT_STL:
	case GEN_FMT_STL_ASCII:
		rc = stl_write(path, s, f == GEN_FMT_STL_ASCII, e);
		break;
	default:
		rc = err_set(e, ERR_INTERNAL, "unknown output format %d", (int)f);
		break;
	}
	if (!rc && f != GEN_FMT_STL && f != GEN_FMT_STL_ASCII)
		rc = write_texture(path, s, tex, e);
	xfree(mtl);
	return rc;
}

int gen_write_ply_ascii(const char *path, const struct scan *s, struct err *e)
{
	struct wfile w;
	int rc = wfile_open(&w, path, e);
	if (rc)
		return rc;
	FILE *fp = w.fp;
	if (fprintf(fp, "ply\nformat ascii 1.0\ncomment written by refscan\n") < 0)
		goto io;
	if (s->units != UNITS_UNKNOWN &&
	    fprintf(fp, "comment units %s\n", scan_units_name(s->units)) < 0)
		goto io;
	for (size_t i = 0; i < s->n_textures; i++)
		if (fprintf(fp, "comment TextureFile %s\n", s->textures[i].declared) < 0)
			goto io;
	if (fprintf(fp, "element vertex %zu\nproperty float x\nproperty float y\nproperty float z\n",
		    s->n_vertices) < 0)
		goto io;
	if (s->normals && fprintf(fp, "property float nx\nproperty float ny\nproperty float nz\n") < 0)
		goto io;
	if (s->colors && fprintf(fp, "property uchar red\nproperty uchar green\nproperty uchar blue\n") < 0)
		goto io;
	if (s->uvs && fprintf(fp, "property float s\nproperty float t\n") < 0)
		goto io;
	if (fprintf(fp, "element face %zu\nproperty list uchar int vertex_indices\nend_header\n",
		    s->n_faces) < 0)
		goto io;
	for (size_t i = 0; i < s->n_vertices; i++) {
		const float *q = s->positions + 3 * i;
		if (fprintf(fp, "%.9g %.9g %.9g", (double)q[0], (double)q[1], (double)q[2]) < 0)
			goto io;
		if (s->normals) {
			q = s->normals + 3 * i;
			if (fprintf(fp, " %.7g %.7g %.7g", (double)q[0], (double)q[1], (double)q[2]) < 0)
				goto io;
		}
		if (s->colors) {
			const uint8_t *c = s->colors + 4 * i;
			if (fprintf(fp, " %u %u %u", c[0], c[1], c[2]) < 0)
				goto io;
		}
		if (s->uvs && fprintf(fp, " %.7g %.7g", (double)s->uvs[2 * i],
				      (double)s->uvs[2 * i + 1]) < 0)
			goto io;
		if (fputc('\n', fp) == EOF)
			goto io;
	}
	for (size_t f = 0; f < s->n_faces; f++) {
		const uint32_t *t = s->indices + 3 * f;
		if (fprintf(fp, "3 %u %u %u\n", t[0], t[1], t[2]) < 0)
			goto io;
	}
	return wfile_commit(&w, e);
io:
	rc = err_set_errno(e, ERR_IO, "write failed");
	wfile_abort(&w);
	err_set_path(e, path);
	return rc;
}

/* -------------------------------------------------------------- library */

void gen_library_item(size_t i, uint64_t seed, size_t triangles,
		      struct gen_params *p, enum gen_format *fmt)
{
	static const double sizes[GEN_N_MATERIALS][3] = {
		{ 20, 100, 300 },  /* none */
		{ 30, 60, 120 },   /* skin */
		{ 150, 300, 500 }, /* bark */
		{ 20, 40, 80 },    /* fabric */
		{ 50, 100, 200 },  /* stone */
		{ 40, 80, 150 },   /* hammered */
		{ 40, 100, 200 },  /* wood */
		{ 30, 60, 100 },   /* leather */
		{ 40, 80, 150 },   /* knit */
	};
	static const enum gen_format fmts[] = {
		GEN_FMT_PLY, GEN_FMT_OBJ, GEN_FMT_STL, GEN_FMT_PLY_ASCII,
		GEN_FMT_OBJ, GEN_FMT_PLY, GEN_FMT_STL_ASCII,
	};
	uint64_t h = mix64(seed ^ mix64((uint64_t)i + 0xA11ull));
	gen_params_init(p);
	/* i = 9a + b: material b, form (3a + b) mod 7 covers all 63 pairs */
	p->material = (enum gen_material)(i % GEN_N_MATERIALS);
	p->form = (enum gen_form)((i / GEN_N_MATERIALS + i) % GEN_N_FORMS);
	p->seed = h;
	p->size_mm = sizes[p->material][(h >> 8) % 3];
	p->triangles = triangles ? triangles :
		(size_t)(5000.0 * pow(12.0, u01(mix64(h + 1))));
	p->amplitude_mm = gen_material_amplitude(p->material) * (0.6 + 0.8 * u01(mix64(h + 2)));
	*fmt = fmts[(i + (h >> 20) % 7) % 7];
	p->color = (enum gen_color)((i / 2 + (h >> 30)) % GEN_N_COLORS);
	if (*fmt == GEN_FMT_STL || *fmt == GEN_FMT_STL_ASCII)
		p->color = GEN_COLOR_NONE;
}

/* -------------------------------------------------------- perturbations */

/* Copy units, metadata, materials and textures (not geometry). */
static int copy_info(const struct scan *in, struct scan *out, bool materials,
		     struct err *e)
{
	out->units = in->units;
	snprintf(out->encoding, sizeof(out->encoding), "%s", in->encoding);
	for (size_t i = 0; i < in->n_meta; i++)
		if (meta_add_str(out, in->meta[i].key, in->meta[i].value))
			return err_set(e, ERR_NOMEM, "out of memory");
	if (!materials)
		return 0;
	for (size_t i = 0; i < in->n_textures; i++) {
		const struct scan_texture *t = &in->textures[i];
		int32_t k = scan_texture_add(out, t->declared, strlen(t->declared));
		if (k < 0)
			return err_set(e, ERR_NOMEM, "out of memory");
		if (t->resolved && !out->textures[k].resolved) {
			out->textures[k].resolved = xstrdup(t->resolved);
			if (!out->textures[k].resolved)
				return err_set(e, ERR_NOMEM, "out of memory");
		}
		out->textures[k].exists = t->exists;
	}
	for (size_t i = 0; i < in->n_materials; i++) {
		const struct scan_material *m = &in->materials[i];
		int32_t k = scan_material_intern(out, m->name, strlen(m->name));
		if (k < 0)
			return err_set(e, ERR_NOMEM, "out of memory");
		out->materials[k].texture = m->texture;
		memcpy(out->materials[k].kd, m->kd, sizeof(m->kd));
		out->materials[k].defined = m->defined;
	}
	return 0;
}

struct rng {
	uint64_t state;
};

static double rng_u01(struct rng *r)
{
	r->state += 0x9E3779B97F4A7C15ull;
	return u01(mix64(r->state));
}

/* Standard normal from two uniforms (Box-Muller). */
static double gauss(uint64_t h)
{
	double u1 = (double)((h >> 11) + 1) * 0x1.0p-53;  /* (0, 1] */
	double u2 = u01(mix64(h));
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

int gen_rigid(struct scan *s, uint64_t seed, double scale, double translate_mm,
	      double R[9], double t[3], struct err *e)
{
	struct rng g = { mix64(seed ^ 0x7161Dull) };
	double M[9], T[3];
	if (!(scale > 0) || !isfinite(scale) || !(translate_mm >= 0))
		return err_set(e, ERR_INTERNAL, "bad scale %g or translation %g", scale, translate_mm);
	/* uniform random rotation (Shoemake): a uniform unit quaternion */
	double u1 = rng_u01(&g), u2 = rng_u01(&g), u3 = rng_u01(&g);
	double a = sqrt(1 - u1), b = sqrt(u1);
	double w = a * sin(2 * M_PI * u2), x = a * cos(2 * M_PI * u2);
	double y = b * sin(2 * M_PI * u3), z = b * cos(2 * M_PI * u3);
	M[0] = 1 - 2 * (y * y + z * z);
	M[1] = 2 * (x * y - w * z);
	M[2] = 2 * (x * z + w * y);
	M[3] = 2 * (x * y + w * z);
	M[4] = 1 - 2 * (x * x + z * z);
	M[5] = 2 * (y * z - w * x);
	M[6] = 2 * (x * z - w * y);
	M[7] = 2 * (y * z + w * x);
	M[8] = 1 - 2 * (x * x + y * y);
	for (int k = 0; k < 3; k++)
		T[k] = (2 * rng_u01(&g) - 1) * translate_mm;
	for (size_t i = 0; i < s->n_vertices; i++) {
		float *p = s->positions + 3 * i;
		double q[3] = { p[0], p[1], p[2] };
		for (int r = 0; r < 3; r++)
			p[r] = (float)(scale * (M[3 * r] * q[0] + M[3 * r + 1] * q[1] +
						M[3 * r + 2] * q[2]) + T[r]);
		if (s->normals) {
			float *n = s->normals + 3 * i;
			double m[3] = { n[0], n[1], n[2] };
			for (int r = 0; r < 3; r++)
				n[r] = (float)(M[3 * r] * m[0] + M[3 * r + 1] * m[1] + M[3 * r + 2] * m[2]);
		}
	}
	if (R)
		memcpy(R, M, sizeof(M));
	if (t)
		memcpy(t, T, sizeof(T));
	return scan_finalize(s, e);
}

int gen_noise(struct scan *s, uint64_t seed, double sigma_mm, struct err *e)
{
	int rc = 0;
	bool had_normals = s->normals != NULL;
	uint32_t *canon = NULL;
	if (!(sigma_mm >= 0) || !isfinite(sigma_mm))
		return err_set(e, ERR_INTERNAL, "bad sigma %g", sigma_mm);
	if (s->n_vertices > UINT32_MAX - 1)
		return err_set(e, ERR_LIMIT, "%zu vertices (limit %u)", s->n_vertices, UINT32_MAX - 1);
	canon = alloc_array(s->n_vertices ? s->n_vertices : 1, sizeof(*canon));
	if (!canon)
		return err_set(e, ERR_NOMEM, "out of memory for %zu vertices", s->n_vertices);
	if ((rc = weld(s->positions, s->n_vertices, canon, e)))
		goto out;
	if (!had_normals && s->n_faces) {
		if ((rc = gen_normals(s, e)))
			goto out;
	}
	uint64_t key = mix64(seed ^ 0x4015Eull);
	for (size_t i = 0; i < s->n_vertices; i++) {
		if (canon[i] != i)
			continue;
		float *p = s->positions + 3 * i;
		uint64_t h = mix64(key + i);
		if (s->normals) {
			double d = sigma_mm * gauss(h);
			for (int k = 0; k < 3; k++)
				p[k] = (float)(p[k] + d * s->normals[3 * i + (size_t)k]);
		} else {
			/* a point cloud without normals: isotropic noise */
			for (int k = 0; k < 3; k++)
				p[k] = (float)(p[k] + sigma_mm * gauss(mix64(h + (uint64_t)k)));
		}
	}
	for (size_t i = 0; i < s->n_vertices; i++)
		if (canon[i] != i)
			memcpy(s->positions + 3 * i, s->positions + 3 * (size_t)canon[i],
			       3 * sizeof(float));
	if (s->n_faces && s->normals) {
		if ((rc = normals_from_faces(s, canon, e)))
			goto out;
	}
	if (!had_normals) {
		xfree(s->normals);
		s->normals = NULL;
	}
	rc = scan_finalize(s, e);
out:
	xfree(canon);
	return rc;
}

static double triangle_area(const struct scan *s, size_t f, double n[3])
{
	const uint32_t *t = s->indices + 3 * f;
	const float *a = s->positions + 3 * t[0];
	const float *b = s->positions + 3 * t[1];
	const float *c = s->positions + 3 * t[2];
	double u[3], v[3], w[3];
	for (int k = 0; k < 3; k++) {
		u[k] = (double)b[k] - a[k];
		v[k] = (double)c[k] - a[k];
	}
	w[0] = u[1] * v[2] - u[2] * v[1];
	w[1] = u[2] * v[0] - u[0] * v[2];
	w[2] = u[0] * v[1] - u[1] * v[0];
	double len = sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
	if (n) {
		for (int k = 0; k < 3; k++)
			n[k] = len > 0 ? w[k] / len : 0;
	}
	return isfinite(len) ? 0.5 * len : 0;
}

double gen_surface_area(const struct scan *s)
{
	double a = 0;
	for (size_t f = 0; f < s->n_faces; f++)
		a += triangle_area(s, f, NULL);
	return a;
}

/* Cluster ids for cell size c; returns the number of clusters or 0 on OOM. */
static size_t cluster(const struct scan *s, double c, const float lo[3],
		      uint32_t *id)
{
	size_t n = s->n_vertices, cap = 16, count = 0;
	while (cap < 2 * n)
		cap *= 2;
	uint64_t *keys = alloc_array(cap, sizeof(*keys));
	uint32_t *vals = alloc_array(cap, sizeof(*vals));
	if (!keys || !vals) {
		xfree(keys);
		xfree(vals);
		return 0;
	}
	memset(vals, 0xFF, cap * sizeof(*vals));
	for (size_t i = 0; i < n; i++) {
		const float *p = s->positions + 3 * i;
		if (!scan_vertex_finite(s, i)) {
			id[i] = UINT32_MAX;
			continue;
		}
		uint64_t k3[3];
		for (int a = 0; a < 3; a++)
			k3[a] = (uint64_t)(int64_t)floor(((double)p[a] - lo[a]) / c) & 0x1FFFFF;
		uint64_t key = k3[0] | k3[1] << 21 | k3[2] << 42;
		size_t slot = (size_t)mix64(key) & (cap - 1);
		while (vals[slot] != UINT32_MAX && keys[slot] != key)
			slot = (slot + 1) & (cap - 1);
		if (vals[slot] == UINT32_MAX) {
			keys[slot] = key;
			vals[slot] = (uint32_t)count++;
		}
		id[i] = vals[slot];
	}
	xfree(keys);
	xfree(vals);
	return count;
}

/*
 * Edge collapse by the quadric error metric (Garland & Heckbert,
 * "Surface simplification using quadric error metrics", SIGGRAPH 1997),
 * the decimation of the common mesh tools: every vertex carries the sum
 * of the squared-distance quadrics of its triangles' planes (area
 * weighted) and of planes through its border edges, perpendicular to the
 * surface (so borders and crops keep their outline); the edge whose merged
 * vertex, placed where the merged quadric is least, adds the least error
 * collapses first.  A collapse that would turn a triangle over is refused.
 * Flat and evenly curved regions go first, features (gear teeth, creases)
 * last.
 */
struct qem_edge {
	double cost;
	uint32_t a, b;     /* vertices, a < b */
	uint32_t va, vb;   /* their versions when the entry was made */
};

struct qem {
	size_t nv, nf;
	double *q;         /* 10 per vertex: a2 ab ac ad b2 bc bd c2 cd d2 */
	double *p;         /* 3 per vertex */
	double *col;       /* 4 per vertex (colour sums), or NULL */
	uint32_t *cnt;     /* vertices merged into each */
	uint32_t *parent;  /* union-find over vertices */
	uint32_t *ver;
	uint32_t *mark;    /* stamps for de-duplicating neighbours */
	uint32_t *head, *tail, *next, *nface; /* per-vertex face lists (pool) */
	uint8_t *dead;     /* per face */
	struct qem_edge *heap;
	size_t nh, caph;
	uint32_t stamp;
};

static uint32_t qem_find(struct qem *Q, uint32_t v)
{
	while (Q->parent[v] != v) {
		Q->parent[v] = Q->parent[Q->parent[v]];
		v = Q->parent[v];
	}
	return v;
}

static void qem_add_plane(double *q, const double n[3], double d, double w)
{
	q[0] += w * n[0] * n[0];
	q[1] += w * n[0] * n[1];
	q[2] += w * n[0] * n[2];
	q[3] += w * n[0] * d;
	q[4] += w * n[1] * n[1];
	q[5] += w * n[1] * n[2];
	q[6] += w * n[1] * d;
	q[7] += w * n[2] * n[2];
	q[8] += w * n[2] * d;
	q[9] += w * d * d;
}

static double qem_eval(const double *q, const double x[3])
{
	return q[0] * x[0] * x[0] + 2 * q[1] * x[0] * x[1] + 2 * q[2] * x[0] * x[2] +
	       2 * q[3] * x[0] + q[4] * x[1] * x[1] + 2 * q[5] * x[1] * x[2] +
	       2 * q[6] * x[1] + q[7] * x[2] * x[2] + 2 * q[8] * x[2] + q[9];
}

/* Where the quadric a + b is least (or the best of the ends and the
 * midpoint when that is ill-posed); returns the error there. */
static double qem_place(const struct qem *Q, uint32_t a, uint32_t b, double x[3])
{
	double q[10];
	for (int k = 0; k < 10; k++)
		q[k] = Q->q[10 * (size_t)a + k] + Q->q[10 * (size_t)b + k];
	double A00 = q[0], A01 = q[1], A02 = q[2], A11 = q[4], A12 = q[5], A22 = q[7];
	double c0 = A11 * A22 - A12 * A12, c1 = A02 * A12 - A01 * A22, c2 = A01 * A12 - A02 * A11;
	double det = A00 * c0 + A01 * c1 + A02 * c2;
	double tr = A00 + A11 + A22;
	const double *pa = Q->p + 3 * (size_t)a, *pb = Q->p + 3 * (size_t)b;
	if (fabs(det) > 1e-9 * tr * tr * tr && tr > 0) {
		double r0 = -q[3], r1 = -q[6], r2 = -q[8];
		double d1 = A01 * A22 - A02 * A12, d2 = A01 * A12 - A02 * A11;
		double e1 = A00 * A22 - A02 * A02, e2 = A00 * A12 - A01 * A02;
		double f2 = A00 * A11 - A01 * A01;
		x[0] = (c0 * r0 - d1 * r1 + d2 * r2) / det;
		x[1] = (-d1 * r0 + e1 * r1 - e2 * r2) / det;
		x[2] = (d2 * r0 - e2 * r1 + f2 * r2) / det;
		/* a minimum far from the edge is a near-degenerate solve */
		double L2 = 0, D2 = 0;
		for (int k = 0; k < 3; k++) {
			double m = 0.5 * (pa[k] + pb[k]);
			L2 += (pa[k] - pb[k]) * (pa[k] - pb[k]);
			D2 += (x[k] - m) * (x[k] - m);
		}
		if (isfinite(x[0] + x[1] + x[2]) && D2 <= 4 * L2)
			return fmax(qem_eval(q, x), 0);
	}
	double best = INFINITY;
	for (int t = 0; t < 3; t++) {
		double y[3];
		for (int k = 0; k < 3; k++)
			y[k] = t == 0 ? pa[k] : t == 1 ? pb[k] : 0.5 * (pa[k] + pb[k]);
		double v = qem_eval(q, y);
		if (v < best) {
			best = v;
			memcpy(x, y, sizeof(y));
		}
	}
	return fmax(best, 0);
}

static bool heap_less(const struct qem_edge *x, const struct qem_edge *y)
{
	if (x->cost != y->cost)
		return x->cost < y->cost;
	return x->a != y->a ? x->a < y->a : x->b < y->b;
}

static int qem_push(struct qem *Q, uint32_t a, uint32_t b)
{
	if (a > b) {
		uint32_t t = a;
		a = b;
		b = t;
	}
	if (Q->nh == Q->caph) {
		size_t cap = Q->caph ? 2 * Q->caph : 1024;
		struct qem_edge *h = realloc_array(Q->heap, cap, sizeof(*h));
		if (!h)
			return ERR_NOMEM;
		Q->heap = h;
		Q->caph = cap;
	}
	double x[3];
	struct qem_edge e = { qem_place(Q, a, b, x), a, b, Q->ver[a], Q->ver[b] };
	size_t i = Q->nh++;
	while (i > 0 && heap_less(&e, &Q->heap[(i - 1) / 2])) {
		Q->heap[i] = Q->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	Q->heap[i] = e;
	return 0;
}

static struct qem_edge qem_pop(struct qem *Q)
{
	struct qem_edge top = Q->heap[0], last = Q->heap[--Q->nh];
	size_t i = 0, n = Q->nh;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && heap_less(&Q->heap[c + 1], &Q->heap[c]))
			c++;
		if (!heap_less(&Q->heap[c], &last))
			break;
		Q->heap[i] = Q->heap[c];
		i = c;
	}
	if (n)
		Q->heap[i] = last;
	return top;
}

static void tri_normal(const double *a, const double *b, const double *c, double n[3])
{
	double u[3], v[3];
	for (int k = 0; k < 3; k++) {
		u[k] = b[k] - a[k];
		v[k] = c[k] - a[k];
	}
	n[0] = u[1] * v[2] - u[2] * v[1];
	n[1] = u[2] * v[0] - u[0] * v[2];
	n[2] = u[0] * v[1] - u[1] * v[0];
}

/* Would moving a and b to x turn over (or flatten) a triangle that stays? */
static bool qem_flips(struct qem *Q, const uint32_t *idx, uint32_t a, uint32_t b,
		      const double x[3])
{
	for (int s = 0; s < 2; s++) {
		for (uint32_t k = Q->head[s ? b : a]; k != UINT32_MAX; k = Q->next[k]) {
			uint32_t f = Q->nface[k];
			if (Q->dead[f])
				continue;
			uint32_t t[3];
			int hit = 0;
			for (int j = 0; j < 3; j++) {
				t[j] = qem_find(Q, idx[3 * (size_t)f + j]);
				hit += t[j] == a || t[j] == b;
			}
			if (hit != 1)
				continue; /* collapses with the edge, or not around it */
			const double *P[3];
			double moved[3];
			memcpy(moved, x, sizeof(moved));
			for (int j = 0; j < 3; j++)
				P[j] = t[j] == a || t[j] == b ? moved : Q->p + 3 * (size_t)t[j];
			double n0[3], n1[3];
			tri_normal(Q->p + 3 * (size_t)t[0], Q->p + 3 * (size_t)t[1],
				   Q->p + 3 * (size_t)t[2], n0);
			tri_normal(P[0], P[1], P[2], n1);
			double d = n0[0] * n1[0] + n0[1] * n1[1] + n0[2] * n1[2];
			double l0 = sqrt(n0[0] * n0[0] + n0[1] * n0[1] + n0[2] * n0[2]);
			double l1 = sqrt(n1[0] * n1[0] + n1[1] * n1[1] + n1[2] * n1[2]);
			if (!(d > 0.2 * l0 * l1))
				return true;
		}
	}
	return false;
}

static void qem_release(struct qem *Q)
{
	xfree(Q->q);
	xfree(Q->p);
	xfree(Q->col);
	xfree(Q->cnt);
	xfree(Q->parent);
	xfree(Q->ver);
	xfree(Q->mark);
	xfree(Q->head);
	xfree(Q->tail);
	xfree(Q->next);
	xfree(Q->nface);
	xfree(Q->dead);
	xfree(Q->heap);
}

struct half_edge {
	uint32_t a, b, f;
};

static int cmp_half_edge(const void *x, const void *y)
{
	const struct half_edge *p = x, *q = y;
	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	if (p->b != q->b)
		return p->b < q->b ? -1 : 1;
	return (p->f > q->f) - (p->f < q->f);
}

/* The quadrics, face lists and first heap of in's triangles (idx: their
 * corners, welded). */
static int qem_init(struct qem *Q, const struct scan *in, const uint32_t *idx)
{
	size_t nv = in->n_vertices, nf = in->n_faces;
	struct half_edge *he = NULL;
	memset(Q, 0, sizeof(*Q));
	Q->nv = nv;
	Q->nf = nf;
	Q->q = alloc_array_zero(nv, 10 * sizeof(double));
	Q->p = alloc_array(nv, 3 * sizeof(double));
	Q->col = in->colors ? alloc_array_zero(nv, 4 * sizeof(double)) : NULL;
	Q->cnt = alloc_array(nv, sizeof(uint32_t));
	Q->parent = alloc_array(nv, sizeof(uint32_t));
	Q->ver = alloc_array_zero(nv, sizeof(uint32_t));
	Q->mark = alloc_array_zero(nv, sizeof(uint32_t));
	Q->head = alloc_array(nv, sizeof(uint32_t));
	Q->tail = alloc_array(nv, sizeof(uint32_t));
	Q->next = alloc_array(nf, 3 * sizeof(uint32_t));
	Q->nface = alloc_array(nf, 3 * sizeof(uint32_t));
	Q->dead = alloc_array_zero(nf, 1);
	he = alloc_array(nf, 3 * sizeof(*he));
	if (!Q->q || !Q->p || (in->colors && !Q->col) || !Q->cnt || !Q->parent || !Q->ver ||
	    !Q->mark || !Q->head || !Q->tail || !Q->next || !Q->nface || !Q->dead || !he) {
		xfree(he);
		return ERR_NOMEM;
	}
	for (size_t v = 0; v < nv; v++) {
		for (int k = 0; k < 3; k++)
			Q->p[3 * v + k] = in->positions[3 * v + (size_t)k];
		if (Q->col)
			for (int k = 0; k < 4; k++)
				Q->col[4 * v + k] = in->colors[4 * v + (size_t)k];
		Q->cnt[v] = 1;
		Q->parent[v] = (uint32_t)v;
		Q->head[v] = Q->tail[v] = UINT32_MAX;
	}
	for (size_t f = 0; f < nf; f++) {
		const uint32_t *t = idx + 3 * f;
		double n[3];
		if (!isfinite(Q->p[3 * (size_t)t[0]] + Q->p[3 * (size_t)t[0] + 1] +
			      Q->p[3 * (size_t)t[0] + 2] + Q->p[3 * (size_t)t[1]] +
			      Q->p[3 * (size_t)t[1] + 1] + Q->p[3 * (size_t)t[1] + 2] +
			      Q->p[3 * (size_t)t[2]] + Q->p[3 * (size_t)t[2] + 1] +
			      Q->p[3 * (size_t)t[2] + 2])) {
			/* a triangle with a non-finite corner is left out */
			Q->dead[f] = 1;
			for (int j = 0; j < 3; j++)
				he[3 * f + (size_t)j] = (struct half_edge){ 0, 0, (uint32_t)f };
			continue;
		}
		tri_normal(Q->p + 3 * (size_t)t[0], Q->p + 3 * (size_t)t[1], Q->p + 3 * (size_t)t[2], n);
		double len = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
		if (len > 0) {
			for (int k = 0; k < 3; k++)
				n[k] /= len;
			double d = -(n[0] * Q->p[3 * (size_t)t[0]] + n[1] * Q->p[3 * (size_t)t[0] + 1] +
				     n[2] * Q->p[3 * (size_t)t[0] + 2]);
			for (int j = 0; j < 3; j++)
				qem_add_plane(Q->q + 10 * (size_t)t[j], n, d, 0.5 * len);
		}
		for (int j = 0; j < 3; j++) {
			uint32_t v = t[j], k = (uint32_t)(3 * f + (size_t)j);
			Q->nface[k] = (uint32_t)f;
			Q->next[k] = UINT32_MAX;
			if (Q->tail[v] == UINT32_MAX)
				Q->head[v] = k;
			else
				Q->next[Q->tail[v]] = k;
			Q->tail[v] = k;
			uint32_t a = t[j], b = t[(j + 1) % 3];
			he[k] = (struct half_edge){ a < b ? a : b, a < b ? b : a, (uint32_t)f };
		}
	}
	/* an edge of one triangle is a border: hold it with a plane through it */
	qsort(he, 3 * nf, sizeof(*he), cmp_half_edge);
	int rc = 0;
	for (size_t i = 0; i < 3 * nf && !rc;) {
		size_t j = i + 1;
		while (j < 3 * nf && he[j].a == he[i].a && he[j].b == he[i].b)
			j++;
		if (he[i].a != he[i].b) {
			if (j == i + 1) {
				const uint32_t *t = idx + 3 * (size_t)he[i].f;
				double n[3], e[3], m[3];
				tri_normal(Q->p + 3 * (size_t)t[0], Q->p + 3 * (size_t)t[1],
					   Q->p + 3 * (size_t)t[2], n);
				const double *pa = Q->p + 3 * (size_t)he[i].a, *pb = Q->p + 3 * (size_t)he[i].b;
				for (int k = 0; k < 3; k++)
					e[k] = pb[k] - pa[k];
				m[0] = e[1] * n[2] - e[2] * n[1];
				m[1] = e[2] * n[0] - e[0] * n[2];
				m[2] = e[0] * n[1] - e[1] * n[0];
				double ml = sqrt(m[0] * m[0] + m[1] * m[1] + m[2] * m[2]);
				double el2 = e[0] * e[0] + e[1] * e[1] + e[2] * e[2];
				if (ml > 0) {
					for (int k = 0; k < 3; k++)
						m[k] /= ml;
					double d = -(m[0] * pa[0] + m[1] * pa[1] + m[2] * pa[2]);
					qem_add_plane(Q->q + 10 * (size_t)he[i].a, m, d, 10 * el2);
					qem_add_plane(Q->q + 10 * (size_t)he[i].b, m, d, 10 * el2);
				}
			}
		}
		i = j;
	}
	for (size_t i = 0; i < 3 * nf && !rc;) {
		size_t j = i + 1;
		while (j < 3 * nf && he[j].a == he[i].a && he[j].b == he[i].b)
			j++;
		if (he[i].a != he[i].b)
			rc = qem_push(Q, he[i].a, he[i].b);
		i = j;
	}
	xfree(he);
	return rc;
}

/* Collapse b into a at x; push the edges around a again. */
static int qem_collapse(struct qem *Q, const uint32_t *idx, uint32_t a, uint32_t b,
			const double x[3])
{
	Q->parent[b] = a;
	memcpy(Q->p + 3 * (size_t)a, x, 3 * sizeof(double));
	for (int k = 0; k < 10; k++)
		Q->q[10 * (size_t)a + k] += Q->q[10 * (size_t)b + k];
	if (Q->col)
		for (int k = 0; k < 4; k++)
			Q->col[4 * (size_t)a + k] += Q->col[4 * (size_t)b + k];
	Q->cnt[a] += Q->cnt[b];
	Q->ver[a]++;
	Q->ver[b]++;
	if (Q->head[b] != UINT32_MAX) {
		if (Q->tail[a] == UINT32_MAX)
			Q->head[a] = Q->head[b];
		else
			Q->next[Q->tail[a]] = Q->head[b];
		Q->tail[a] = Q->tail[b];
	}
	/* drop the triangles that collapsed (and any dead ones) from a's list */
	uint32_t prev = UINT32_MAX;
	for (uint32_t k = Q->head[a]; k != UINT32_MAX; k = Q->next[k]) {
		uint32_t f = Q->nface[k];
		if (!Q->dead[f]) {
			uint32_t t[3];
			for (int j = 0; j < 3; j++)
				t[j] = qem_find(Q, idx[3 * (size_t)f + j]);
			if (t[0] == t[1] || t[1] == t[2] || t[0] == t[2])
				Q->dead[f] = 1;
		}
		if (Q->dead[f]) {
			if (prev == UINT32_MAX)
				Q->head[a] = Q->next[k];
			else
				Q->next[prev] = Q->next[k];
			continue;
		}
		prev = k;
	}
	Q->tail[a] = prev;
	if (++Q->stamp == 0)
		Q->stamp = 1;
	Q->mark[a] = Q->stamp;
	for (uint32_t k = Q->head[a]; k != UINT32_MAX; k = Q->next[k]) {
		uint32_t f = Q->nface[k];
		for (int j = 0; j < 3; j++) {
			uint32_t w = qem_find(Q, idx[3 * (size_t)f + j]);
			if (Q->mark[w] == Q->stamp)
				continue;
			Q->mark[w] = Q->stamp;
			if (qem_push(Q, a, w))
				return ERR_NOMEM;
		}
	}
	return 0;
}

/*
 * in's corners with vertices at one position made one (seams, soups), as
 * a mesh tool merges them before decimating: *out, 3 per face.
 */
static int weld_corners(const struct scan *in, uint32_t **out, struct err *e)
{
	uint32_t *canon = alloc_array(in->n_vertices, sizeof(*canon));
	uint32_t *idx = alloc_array(in->n_faces, 3 * sizeof(*idx));
	int rc = canon && idx ? weld(in->positions, in->n_vertices, canon, e) :
				err_set(e, ERR_NOMEM, "out of memory");
	for (size_t c = 0; !rc && c < 3 * in->n_faces; c++)
		idx[c] = canon[in->indices[c]];
	xfree(canon);
	if (rc) {
		xfree(idx);
		idx = NULL;
	}
	*out = idx;
	return rc;
}

static int decimate_qem(const struct scan *in, size_t target, struct scan *out,
			struct err *e)
{
	struct qem Q;
	uint32_t *map = NULL;
	uint32_t *idx;
	int rc = weld_corners(in, &idx, e);
	if (rc)
		return rc;
	rc = qem_init(&Q, in, idx);
	size_t live = 0;
	if (!rc) {
		/* vertices no triangle uses do not count */
		for (size_t v = 0; v < Q.nv; v++)
			live += Q.head[v] != UINT32_MAX;
	}
	while (!rc && live > target && Q.nh > 0) {
		struct qem_edge c = qem_pop(&Q);
		if (Q.parent[c.a] != c.a || Q.parent[c.b] != c.b || Q.ver[c.a] != c.va ||
		    Q.ver[c.b] != c.vb)
			continue;
		double x[3];
		qem_place(&Q, c.a, c.b, x);
		if (qem_flips(&Q, idx, c.a, c.b, x))
			continue;
		rc = qem_collapse(&Q, idx, c.a, c.b, x);
		live--;
	}
	if (rc) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	map = alloc_array(Q.nv, sizeof(uint32_t));
	if (!map) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	size_t nv = 0, nf = 0;
	for (size_t v = 0; v < Q.nv; v++)
		map[v] = Q.parent[v] == v && Q.head[v] != UINT32_MAX ? (uint32_t)nv++ : UINT32_MAX;
	for (size_t f = 0; f < Q.nf; f++)
		nf += !Q.dead[f];
	unsigned flags = SCAN_ALLOC_NORMALS | (in->colors ? SCAN_ALLOC_COLORS : 0u);
	if ((rc = scan_alloc(out, nv, nf, flags, e)))
		goto out;
	out->n_vertices = nv;
	for (size_t v = 0; v < Q.nv; v++) {
		uint32_t k = map[v];
		if (k == UINT32_MAX)
			continue;
		for (int j = 0; j < 3; j++)
			out->positions[3 * (size_t)k + (size_t)j] = (float)Q.p[3 * v + (size_t)j];
		if (out->colors)
			for (int j = 0; j < 4; j++)
				out->colors[4 * (size_t)k + (size_t)j] =
					(uint8_t)lrint(Q.col[4 * v + (size_t)j] / Q.cnt[v]);
	}
	nf = 0;
	for (size_t f = 0; f < Q.nf; f++) {
		if (Q.dead[f])
			continue;
		uint32_t t[3];
		for (int j = 0; j < 3; j++)
			t[j] = map[qem_find(&Q, idx[3 * f + (size_t)j])];
		if (t[0] == UINT32_MAX || t[1] == UINT32_MAX || t[2] == UINT32_MAX ||
		    t[0] == t[1] || t[1] == t[2] || t[0] == t[2])
			continue;
		memcpy(out->indices + 3 * nf, t, sizeof(t));
		nf++;
	}
	out->n_faces = out->n_polygons = nf;
	if ((rc = gen_normals(out, e)))
		goto out;
	if ((rc = copy_info(in, out, false, e)))
		goto out;
	rc = scan_finalize(out, e);
out:
	xfree(map);
	xfree(idx);
	qem_release(&Q);
	if (rc)
		scan_release(out);
	return rc;
}

int gen_decimate(const struct scan *in, double factor, struct scan *out,
		 struct err *e)
{
	int rc = 0;
	uint32_t *id = NULL;
	double *acc = NULL;
	uint32_t *cnt = NULL;
	scan_init(out);
	if (!(factor >= 1.0) || !isfinite(factor))
		return err_set(e, ERR_INTERNAL, "decimation factor %g below 1", factor);
	if (in->n_vertices > UINT32_MAX - 1)
		return err_set(e, ERR_LIMIT, "%zu vertices (limit %u)", in->n_vertices, UINT32_MAX - 1);
	if (in->n_vertices == 0)
		return copy_info(in, out, false, e);
	double target = (double)in->n_vertices / factor;
	if (target < 4)
		target = 4;
	if (in->n_faces > 0)
		return decimate_qem(in, (size_t)target, out, e);
	/* a cloud: vertex clustering */
	/* first guess from the surface area (or the box for a cloud) */
	double area = gen_surface_area(in);
	float lo[3], hi[3];
	memcpy(lo, in->bbox_min, sizeof(lo));
	memcpy(hi, in->bbox_max, sizeof(hi));
	if (area <= 0) {
		double d[3], m = 0;
		for (int a = 0; a < 3; a++) {
			d[a] = (double)hi[a] - lo[a];
			m = d[a] > m ? d[a] : m;
		}
		area = d[0] * d[1] + d[1] * d[2] + d[0] * d[2];
		if (!(area > 0))
			area = m > 0 ? m * m : 1;
	}
	double c = sqrt(area / target);
	id = alloc_array(in->n_vertices, sizeof(*id));
	if (!id) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	size_t nc = 0;
	for (int it = 0; it < 6; it++) {
		nc = cluster(in, c, lo, id);
		if (!nc) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		double ratio = (double)nc / target;
		if (ratio > 0.93 && ratio < 1.07)
			break;
		c *= sqrt(ratio);
	}
	bool faces = in->n_faces > 0;
	unsigned flags = SCAN_ALLOC_NORMALS | (in->colors ? SCAN_ALLOC_COLORS : 0u);
	acc = alloc_array_zero(nc, 10 * sizeof(double));
	cnt = alloc_array_zero(nc, sizeof(*cnt));
	if (!acc || !cnt) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < in->n_vertices; i++) {
		if (id[i] == UINT32_MAX)
			continue;
		double *a = acc + 10 * (size_t)id[i];
		for (int k = 0; k < 3; k++)
			a[k] += in->positions[3 * i + (size_t)k];
		if (in->normals)
			for (int k = 0; k < 3; k++)
				a[3 + k] += in->normals[3 * i + (size_t)k];
		if (in->colors)
			for (int k = 0; k < 4; k++)
				a[6 + k] += in->colors[4 * i + (size_t)k];
		cnt[id[i]]++;
	}
	/* count surviving triangles first, to allocate exactly */
	size_t nf = 0;
	for (size_t f = 0; f < in->n_faces; f++) {
		const uint32_t *t = in->indices + 3 * f;
		uint32_t x = id[t[0]], y = id[t[1]], z = id[t[2]];
		if (x != UINT32_MAX && y != UINT32_MAX && z != UINT32_MAX &&
		    x != y && y != z && x != z)
			nf++;
	}
	if ((rc = scan_alloc(out, nc, nf, flags, e)))
		goto out;
	out->n_vertices = nc;
	out->n_faces = out->n_polygons = nf;
	for (size_t k = 0; k < nc; k++) {
		const double *a = acc + 10 * k;
		double n = cnt[k] ? cnt[k] : 1;
		for (int q = 0; q < 3; q++)
			out->positions[3 * k + (size_t)q] = (float)(a[q] / n);
		if (out->colors)
			for (int q = 0; q < 4; q++)
				out->colors[4 * k + (size_t)q] = (uint8_t)lrint(a[6 + q] / n);
		double len = sqrt(a[3] * a[3] + a[4] * a[4] + a[5] * a[5]);
		for (int q = 0; q < 3; q++)
			out->normals[3 * k + (size_t)q] = len > 0 ? (float)(a[3 + q] / len) :
							  q == 2 ? 1.0f : 0.0f;
	}
	nf = 0;
	for (size_t f = 0; f < in->n_faces; f++) {
		const uint32_t *t = in->indices + 3 * f;
		uint32_t x = id[t[0]], y = id[t[1]], z = id[t[2]];
		if (x == UINT32_MAX || y == UINT32_MAX || z == UINT32_MAX ||
		    x == y || y == z || x == z)
			continue;
		out->indices[3 * nf] = x;
		out->indices[3 * nf + 1] = y;
		out->indices[3 * nf + 2] = z;
		nf++;
	}
	if (faces) {
		if ((rc = gen_normals(out, e)))
			goto out;
	}
	if (!in->normals && !faces) {
		xfree(out->normals);
		out->normals = NULL;
	}
	if ((rc = copy_info(in, out, false, e)))
		goto out;
	rc = scan_finalize(out, e);
out:
	xfree(id);
	xfree(acc);
	xfree(cnt);
	if (rc)
		scan_release(out);
	return rc;
}

int gen_sample_points(const struct scan *in, size_t n, uint64_t seed,
		      struct scan *out, struct err *e)
{
	int rc = 0;
	double *cdf = NULL;
	scan_init(out);
	if (!in->n_faces)
		return err_set(e, ERR_FORMAT, "cannot sample points from a scan without triangles");
	cdf = alloc_array(in->n_faces, sizeof(*cdf));
	if (!cdf)
		return err_set(e, ERR_NOMEM, "out of memory");
	double total = 0;
	for (size_t f = 0; f < in->n_faces; f++) {
		total += triangle_area(in, f, NULL);
		cdf[f] = total;
	}
	if (!(total > 0)) {
		rc = err_set(e, ERR_FORMAT, "scan has no surface area to sample");
		goto out;
	}
	if ((rc = scan_alloc(out, n, 0, SCAN_ALLOC_NORMALS |
			     (in->colors ? SCAN_ALLOC_COLORS : 0u), e)))
		goto out;
	out->n_vertices = n;
	uint64_t key = mix64(seed ^ 0x5A3Bull);
	long ln = (long)n;
#pragma omp parallel for schedule(static) if (ln > PAR_MIN)
	for (long lk = 0; lk < ln; lk++) {
		size_t k = (size_t)lk;
		uint64_t h = mix64(key + k);
		double r = u01(h) * total;
		size_t lo = 0, hi = in->n_faces - 1;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (cdf[mid] <= r)
				lo = mid + 1;
			else
				hi = mid;
		}
		double r1 = sqrt(u01(mix64(h + 1))), r2 = u01(mix64(h + 2));
		double w[3] = { 1 - r1, r1 * (1 - r2), r1 * r2 };
		const uint32_t *t = in->indices + 3 * lo;
		double fn[3];
		triangle_area(in, lo, fn);
		double nn[3] = { 0, 0, 0 }, c[4] = { 0, 0, 0, 0 };
		for (int q = 0; q < 3; q++) {
			double pv = 0;
			for (int j = 0; j < 3; j++)
				pv += w[j] * in->positions[3 * (size_t)t[j] + (size_t)q];
			out->positions[3 * k + (size_t)q] = (float)pv;
			if (in->normals)
				for (int j = 0; j < 3; j++)
					nn[q] += w[j] * in->normals[3 * (size_t)t[j] + (size_t)q];
		}
		if (!in->normals)
			memcpy(nn, fn, sizeof(nn));
		double len = sqrt(nn[0] * nn[0] + nn[1] * nn[1] + nn[2] * nn[2]);
		for (int q = 0; q < 3; q++)
			out->normals[3 * k + (size_t)q] = len > 0 ? (float)(nn[q] / len) : 0.0f;
		if (in->colors) {
			for (int q = 0; q < 4; q++) {
				for (int j = 0; j < 3; j++)
					c[q] += w[j] * in->colors[4 * (size_t)t[j] + (size_t)q];
				out->colors[4 * k + (size_t)q] = (uint8_t)lrint(c[q]);
			}
		}
	}
	if ((rc = copy_info(in, out, false, e)))
		goto out;
	rc = scan_finalize(out, e);
out:
	xfree(cdf);
	if (rc)
		scan_release(out);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The scan_alloc flags of every attribute in has. */
static unsigned alloc_flags(const struct scan *in)
{
	return (in->normals ? SCAN_ALLOC_NORMALS : 0u) |
	       (in->colors ? SCAN_ALLOC_COLORS : 0u) |
	       (in->uvs ? SCAN_ALLOC_UVS : 0u) |
	       (in->corner_uvs ? SCAN_ALLOC_CORNER_UVS : 0u) |
	       (in->face_material ? SCAN_ALLOC_FACE_MATERIAL : 0u) |
	       (in->face_colors ? SCAN_ALLOC_FACE_COLORS : 0u);
}

/*
 * The part of in that vkeep and fkeep mark (fkeep NULL: a point cloud),
 * every attribute kept.  Vertices are renumbered in order; a kept face
 * must have its three vertices kept.
 */
static int subset(const struct scan *in, const uint8_t *vkeep, const uint8_t *fkeep,
		  struct scan *out, struct err *e)
{
	int rc = 0;
	size_t nv = in->n_vertices;
	uint32_t *map = alloc_array(nv ? nv : 1, sizeof(*map));
	if (!map)
		return err_set(e, ERR_NOMEM, "out of memory");
	size_t kept = 0, nf = 0;
	for (size_t i = 0; i < nv; i++)
		map[i] = vkeep[i] ? (uint32_t)kept++ : UINT32_MAX;
	for (size_t f = 0; fkeep && f < in->n_faces; f++)
		nf += fkeep[f] != 0;
	unsigned flags = alloc_flags(in);
	if ((rc = scan_alloc(out, kept, nf, flags, e)))
		goto out;
	out->n_vertices = kept;
	out->n_faces = out->n_polygons = nf;
	for (size_t i = 0; i < nv; i++) {
		uint32_t k = map[i];
		if (k == UINT32_MAX)
			continue;
		memcpy(out->positions + 3 * (size_t)k, in->positions + 3 * i, 3 * sizeof(float));
		if (in->normals)
			memcpy(out->normals + 3 * (size_t)k, in->normals + 3 * i, 3 * sizeof(float));
		if (in->colors)
			memcpy(out->colors + 4 * (size_t)k, in->colors + 4 * i, 4);
		if (in->uvs)
			memcpy(out->uvs + 2 * (size_t)k, in->uvs + 2 * i, 2 * sizeof(float));
	}
	nf = 0;
	for (size_t f = 0; fkeep && f < in->n_faces; f++) {
		const uint32_t *t = in->indices + 3 * f;
		if (!fkeep[f])
			continue;
		for (int k = 0; k < 3; k++)
			out->indices[3 * nf + (size_t)k] = map[t[k]];
		if (in->corner_uvs)
			memcpy(out->corner_uvs + 6 * nf, in->corner_uvs + 6 * f, 6 * sizeof(float));
		if (in->face_material)
			out->face_material[nf] = in->face_material[f];
		if (in->face_colors)
			memcpy(out->face_colors + 4 * nf, in->face_colors + 4 * f, 4);
		nf++;
	}
	if ((rc = copy_info(in, out, true, e)))
		goto out;
	rc = scan_finalize(out, e);
out:
	xfree(map);
	if (rc)
		scan_release(out);
	return rc;
}

void gen_direction(uint64_t seed, double dir[3])
{
	struct rng g = { mix64(seed ^ 0xC809ull) };
	double z = 2 * rng_u01(&g) - 1, ph = 2 * M_PI * rng_u01(&g);
	dir[0] = sqrt(1 - z * z) * cos(ph);
	dir[1] = sqrt(1 - z * z) * sin(ph);
	dir[2] = z;
}

int gen_crop(const struct scan *in, double keep, uint64_t seed,
	     struct scan *out, struct err *e)
{
	int rc = 0;
	double *d = NULL, *sorted = NULL;
	uint8_t *vk = NULL, *fk = NULL;
	scan_init(out);
	if (!(keep > 0 && keep <= 1))
		return err_set(e, ERR_INTERNAL, "crop fraction %g not in (0, 1]", keep);
	if (in->n_vertices > UINT32_MAX - 1)
		return err_set(e, ERR_LIMIT, "%zu vertices (limit %u)", in->n_vertices, UINT32_MAX - 1);
	size_t nv = in->n_vertices;
	d = alloc_array(nv ? nv : 1, sizeof(*d));
	sorted = alloc_array(nv ? nv : 1, sizeof(*sorted));
	vk = alloc_array(nv ? nv : 1, 1);
	fk = alloc_array(in->n_faces ? in->n_faces : 1, 1);
	if (!d || !sorted || !vk || !fk) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	double dir[3];
	gen_direction(seed, dir);
	size_t nfin = 0;
	for (size_t i = 0; i < nv; i++) {
		const float *p = in->positions + 3 * i;
		d[i] = scan_vertex_finite(in, i) ?
			dir[0] * p[0] + dir[1] * p[1] + dir[2] * p[2] : HUGE_VAL;
		if (isfinite(d[i]))
			sorted[nfin++] = d[i];
	}
	double thr = -HUGE_VAL;
	if (nfin) {
		qsort(sorted, nfin, sizeof(*sorted), cmp_double);
		size_t k = (size_t)ceil(keep * (double)nfin);
		thr = sorted[(k ? k : 1) - 1];
	}
	for (size_t i = 0; i < nv; i++)
		vk[i] = d[i] <= thr;
	for (size_t f = 0; f < in->n_faces; f++) {
		const uint32_t *t = in->indices + 3 * f;
		fk[f] = vk[t[0]] && vk[t[1]] && vk[t[2]];
	}
	rc = subset(in, vk, in->n_faces ? fk : NULL, out, e);
out:
	xfree(d);
	xfree(sorted);
	xfree(vk);
	xfree(fk);
	return rc;
}

int gen_view(const struct scan *in, const double dir[3], struct scan *out, struct err *e)
{
	size_t nv = in->n_vertices, nf = in->n_faces;
	uint8_t *vk = alloc_array_zero(nv ? nv : 1, 1);
	uint8_t *fk = alloc_array_zero(nf ? nf : 1, 1);
	int rc;
	scan_init(out);
	if (!vk || !fk)
		rc = err_set(e, ERR_NOMEM, "out of memory");
	else if (!(rc = describe_view_mask(in, dir, vk, fk, e)))
		rc = subset(in, vk, nf ? fk : NULL, out, e);
	xfree(vk);
	xfree(fk);
	return rc;
}

int gen_holes(const struct scan *in, int n_holes, double frac, uint64_t seed,
	      struct scan *out, struct err *e)
{
	int rc = 0;
	size_t nv = in->n_vertices, nf = in->n_faces;
	double *d2 = NULL, *sorted = NULL;
	uint32_t *fin = NULL;
	uint8_t *vk = NULL, *fk = NULL;
	scan_init(out);
	if (!(frac > 0 && frac < 1) || n_holes < 1)
		return err_set(e, ERR_INTERNAL, "%d holes of %g of the scan", n_holes, frac);
	if (nv > UINT32_MAX - 1)
		return err_set(e, ERR_LIMIT, "%zu vertices (limit %u)", nv, UINT32_MAX - 1);
	d2 = alloc_array(nv ? nv : 1, sizeof(*d2));
	sorted = alloc_array(nv ? nv : 1, sizeof(*sorted));
	fin = alloc_array(nv ? nv : 1, sizeof(*fin));
	vk = alloc_array(nv ? nv : 1, 1);
	fk = alloc_array(nf ? nf : 1, 1);
	if (!d2 || !sorted || !fin || !vk || !fk) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	size_t nfin = 0;
	for (size_t i = 0; i < nv; i++) {
		vk[i] = scan_vertex_finite(in, i);
		if (vk[i])
			fin[nfin++] = (uint32_t)i;
	}
	/* each hole takes the share of vertices nearest its centre */
	size_t k = (size_t)ceil(frac * (double)nfin / n_holes);
	struct rng g = { mix64(seed ^ 0x401Eull) };
	for (int h = 0; h < n_holes && nfin && k; h++) {
		size_t c = fin[(size_t)(rng_u01(&g) * (double)nfin) % nfin];
		const float *pc = in->positions + 3 * c;
		for (size_t j = 0; j < nfin; j++) {
			const float *p = in->positions + 3 * (size_t)fin[j];
			double s = 0;
			for (int q = 0; q < 3; q++)
				s += ((double)p[q] - pc[q]) * ((double)p[q] - pc[q]);
			d2[j] = sorted[j] = s;
		}
		qsort(sorted, nfin, sizeof(*sorted), cmp_double);
		double r2 = sorted[(k < nfin ? k : nfin) - 1];
		for (size_t j = 0; j < nfin; j++)
			if (d2[j] <= r2)
				vk[fin[j]] = 0;
	}
	for (size_t f = 0; f < nf; f++) {
		const uint32_t *t = in->indices + 3 * f;
		fk[f] = vk[t[0]] && vk[t[1]] && vk[t[2]];
	}
	/* a mesh keeps the vertices of the faces it keeps, and no stray ones */
	if (nf) {
		memset(vk, 0, nv);
		for (size_t f = 0; f < nf; f++)
			if (fk[f])
				for (int q = 0; q < 3; q++)
					vk[in->indices[3 * f + (size_t)q]] = 1;
	}
	rc = subset(in, vk, nf ? fk : NULL, out, e);
out:
	xfree(d2);
	xfree(sorted);
	xfree(fin);
	xfree(vk);
	xfree(fk);
	return rc;
}

/*
 * out sized for nv vertices and nf faces with in's attributes, in's
 * vertices copied to its first in->n_vertices (counts set; faces not).
 */
static int alloc_with_vertices(const struct scan *in, size_t nv, size_t nf,
			       struct scan *out, struct err *e)
{
	size_t n = in->n_vertices;
	int rc = scan_alloc(out, nv, nf, alloc_flags(in), e);
	if (rc)
		return rc;
	out->n_vertices = nv;
	out->n_faces = out->n_polygons = nf;
	memcpy(out->positions, in->positions, 3 * n * sizeof(float));
	if (in->normals)
		memcpy(out->normals, in->normals, 3 * n * sizeof(float));
	if (in->colors)
		memcpy(out->colors, in->colors, 4 * n);
	if (in->uvs)
		memcpy(out->uvs, in->uvs, 2 * n * sizeof(float));
	return 0;
}

int gen_outliers(const struct scan *in, double frac, uint64_t seed, struct scan *out,
		 struct err *e)
{
	int rc = 0;
	size_t nv = in->n_vertices, nf = in->n_faces;
	scan_init(out);
	if (!(frac > 0 && frac <= 1))
		return err_set(e, ERR_INTERNAL, "outlier fraction %g not in (0, 1]", frac);
	size_t n_out = (size_t)ceil(frac * (double)(nf ? nf : nv));
	size_t add_v = nf ? 3 * n_out : n_out, add_f = nf ? n_out : 0;
	if (nv + add_v > UINT32_MAX - 1)
		return err_set(e, ERR_LIMIT, "%zu vertices (limit %u)", nv + add_v, UINT32_MAX - 1);
	if ((rc = alloc_with_vertices(in, nv + add_v, nf + add_f, out, e)))
		goto out;
	if (nf) {
		memcpy(out->indices, in->indices, 3 * nf * sizeof(uint32_t));
		if (in->corner_uvs)
			memcpy(out->corner_uvs, in->corner_uvs, 6 * nf * sizeof(float));
		if (in->face_material)
			memcpy(out->face_material, in->face_material, nf * sizeof(int32_t));
		if (in->face_colors)
			memcpy(out->face_colors, in->face_colors, 4 * nf);
	}
	/* the bounding box grown by a tenth of its size on every side */
	double lo[3], ext[3];
	for (int q = 0; q < 3; q++) {
		double w = (double)in->bbox_max[q] - in->bbox_min[q];
		lo[q] = in->bbox_min[q] - 0.1 * w;
		ext[q] = 1.2 * w;
	}
	/* a fragment is a triangle of the mesh's mean triangle size */
	double side = nf ? sqrt(4 * gen_surface_area(in) / (sqrt(3.0) * (double)nf)) : 0;
	struct rng g = { mix64(seed ^ 0x0A71Eull) };
	for (size_t o = 0; o < n_out; o++) {
		double c[3], n[3];
		for (int q = 0; q < 3; q++)
			c[q] = lo[q] + rng_u01(&g) * ext[q];
		double z = 2 * rng_u01(&g) - 1, ph = 2 * M_PI * rng_u01(&g);
		n[0] = sqrt(1 - z * z) * cos(ph);
		n[1] = sqrt(1 - z * z) * sin(ph);
		n[2] = z;
		uint8_t grey = (uint8_t)(rng_u01(&g) * 255.0);
		size_t nc = nf ? 3 : 1;
		/* two unit vectors spanning the fragment's plane */
		double a[3] = { 0, 0, 0 }, b[3];
		a[fabs(n[0]) < 0.6 ? 0 : 1] = 1;
		double an = a[0] * n[0] + a[1] * n[1] + a[2] * n[2];
		for (int q = 0; q < 3; q++)
			a[q] -= an * n[q];
		double al = sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
		for (int q = 0; q < 3; q++)
			a[q] /= al;
		b[0] = n[1] * a[2] - n[2] * a[1];
		b[1] = n[2] * a[0] - n[0] * a[2];
		b[2] = n[0] * a[1] - n[1] * a[0];
		for (size_t j = 0; j < nc; j++) {
			size_t v = nv + nc * o + j;
			double ang = 2 * M_PI * (double)j / 3.0, r = side / sqrt(3.0);
			for (int q = 0; q < 3; q++) {
				double p = c[q];
				if (nf)
					p += r * (cos(ang) * a[q] + sin(ang) * b[q]);
				out->positions[3 * v + (size_t)q] = (float)p;
				if (in->normals)
					out->normals[3 * v + (size_t)q] = (float)n[q];
			}
			if (in->colors) {
				memset(out->colors + 4 * v, grey, 3);
				out->colors[4 * v + 3] = 255;
			}
			if (in->uvs)
				out->uvs[2 * v] = out->uvs[2 * v + 1] = 0.5f;
		}
		if (!nf)
			continue;
		size_t f = nf + o;
		for (int q = 0; q < 3; q++)
			out->indices[3 * f + (size_t)q] = (uint32_t)(nv + 3 * o + (size_t)q);
		if (in->corner_uvs)
			for (int q = 0; q < 6; q++)
				out->corner_uvs[6 * f + (size_t)q] = 0.5f;
		if (in->face_material)
			out->face_material[f] = nf ? in->face_material[0] : -1;
		if (in->face_colors) {
			memset(out->face_colors + 4 * f, grey, 3);
			out->face_colors[4 * f + 3] = 255;
		}
	}
	if ((rc = copy_info(in, out, true, e)))
		goto out;
	rc = scan_finalize(out, e);
out:
	if (rc)
		scan_release(out);
	return rc;
}

int gen_graded_points(const struct scan *in, size_t n, double ratio, uint64_t seed,
		      struct scan *out, struct err *e)
{
	int rc;
	struct scan dense;
	uint8_t *vk = NULL;
	scan_init(out);
	if (!(ratio >= 1) || !isfinite(ratio))
		return err_set(e, ERR_INTERNAL, "density ratio %g below 1", ratio);
	/* keep probability exp(-t ln ratio) for t in [0, 1]: its mean is m */
	double m = ratio > 1 ? (1 - 1 / ratio) / log(ratio) : 1;
	double want = ceil((double)n / m);
	if ((rc = gen_sample_points(in, want > 1 ? (size_t)want : 1, seed, &dense, e)))
		return rc;
	double dir[3];
	gen_direction(seed + 1, dir);
	double tlo = HUGE_VAL, thi = -HUGE_VAL;
	for (size_t i = 0; i < dense.n_vertices; i++) {
		const float *p = dense.positions + 3 * i;
		double t = dir[0] * p[0] + dir[1] * p[1] + dir[2] * p[2];
		tlo = t < tlo ? t : tlo;
		thi = t > thi ? t : thi;
	}
	vk = alloc_array(dense.n_vertices ? dense.n_vertices : 1, 1);
	if (!vk) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	uint64_t key = mix64(seed ^ 0x96ADEull);
	for (size_t i = 0; i < dense.n_vertices; i++) {
		const float *p = dense.positions + 3 * i;
		double t = thi > tlo ? (dir[0] * p[0] + dir[1] * p[1] + dir[2] * p[2] - tlo) /
				       (thi - tlo) : 0;
		vk[i] = u01(mix64(key + i)) < exp(-t * log(ratio));
	}
	rc = subset(&dense, vk, NULL, out, e);
out:
	xfree(vk);
	scan_release(&dense);
	return rc;
}

/* ------------------------------------------------ subdivision, smoothing */

/* Open-addressed map from an edge (a < b) to the vertex at its middle. */
struct edge_map {
	uint64_t *key;   /* (a << 32 | b) + 1; 0 empty */
	uint32_t *mid;
	size_t mask;
};

static uint32_t edge_mid(struct edge_map *M, uint32_t a, uint32_t b, uint32_t *next)
{
	if (a > b) {
		uint32_t t = a;
		a = b;
		b = t;
	}
	uint64_t k = ((uint64_t)a << 32 | b) + 1;
	size_t i = (size_t)mix64(k) & M->mask;
	while (M->key[i] && M->key[i] != k)
		i = (i + 1) & M->mask;
	if (!M->key[i]) {
		M->key[i] = k;
		M->mid[i] = (*next)++;
	}
	return M->mid[i];
}

/* One level: every triangle into four at its edges' midpoints. */
static int subdivide_once(const struct scan *in, struct scan *out, struct err *e)
{
	int rc = 0;
	size_t nv = in->n_vertices, nf = in->n_faces;
	struct edge_map M = { NULL, NULL, 0 };
	uint32_t *mids = NULL;
	scan_init(out);
	size_t cap = 16;
	while (cap < 6 * nf)
		cap *= 2;
	/* a closed mesh has 1.5 edges per face: at most 3 */
	if (nf > (UINT32_MAX - 1 - nv) / 3 || nf > SIZE_MAX / 4 / 3)
		return err_set(e, ERR_LIMIT, "%zu triangles too many to subdivide", nf);
	M.key = alloc_array_zero(cap, sizeof(*M.key));
	M.mid = alloc_array(cap, sizeof(*M.mid));
	mids = alloc_array(nf ? 3 * nf : 1, sizeof(*mids));
	if (!M.key || !M.mid || !mids) {
		rc = err_set(e, ERR_NOMEM, "out of memory subdividing %zu triangles", nf);
		goto out;
	}
	M.mask = cap - 1;
	uint32_t next = (uint32_t)nv;
	for (size_t f = 0; f < nf; f++) {
		const uint32_t *t = in->indices + 3 * f;
		for (int k = 0; k < 3; k++)
			mids[3 * f + (size_t)k] = edge_mid(&M, t[k], t[(k + 1) % 3], &next);
	}
	if ((rc = alloc_with_vertices(in, next, 4 * nf, out, e)))
		goto out;
	for (size_t f = 0; f < nf; f++) {
		const uint32_t *t = in->indices + 3 * f;
		const uint32_t *m = mids + 3 * f;
		for (int k = 0; k < 3; k++) {
			uint32_t a = t[k], b = t[(k + 1) % 3];
			size_t v = m[k];
			for (int q = 0; q < 3; q++)
				out->positions[3 * v + (size_t)q] = 0.5f *
					(in->positions[3 * (size_t)a + (size_t)q] +
					 in->positions[3 * (size_t)b + (size_t)q]);
			if (in->normals) {
				double n[3], len = 0;
				for (int q = 0; q < 3; q++) {
					n[q] = (double)in->normals[3 * (size_t)a + (size_t)q] +
					       in->normals[3 * (size_t)b + (size_t)q];
					len += n[q] * n[q];
				}
				len = sqrt(len);
				for (int q = 0; q < 3; q++)
					out->normals[3 * v + (size_t)q] =
						len > 0 ? (float)(n[q] / len) : in->normals[3 * (size_t)a + (size_t)q];
			}
			if (in->colors)
				for (int q = 0; q < 4; q++)
					out->colors[4 * v + (size_t)q] = (uint8_t)
						((in->colors[4 * (size_t)a + (size_t)q] +
						  in->colors[4 * (size_t)b + (size_t)q] + 1) / 2);
			if (in->uvs)
				for (int q = 0; q < 2; q++)
					out->uvs[2 * v + (size_t)q] = 0.5f *
						(in->uvs[2 * (size_t)a + (size_t)q] +
						 in->uvs[2 * (size_t)b + (size_t)q]);
		}
		/* corners' children: three at the corners, one in the middle */
		const uint32_t child[4][3] = {
			{ t[0], m[0], m[2] }, { m[0], t[1], m[1] },
			{ m[2], m[1], t[2] }, { m[0], m[1], m[2] },
		};
		/* the same children as corner numbers: 0-2 corners, 3-5 edges */
		static const int corner[4][3] = { { 0, 3, 5 }, { 3, 1, 4 }, { 5, 4, 2 }, { 3, 4, 5 } };
		for (int c = 0; c < 4; c++) {
			size_t g = 4 * f + (size_t)c;
			memcpy(out->indices + 3 * g, child[c], sizeof(child[c]));
			if (in->corner_uvs) {
				const float *uv = in->corner_uvs + 6 * f;
				for (int k = 0; k < 3; k++) {
					int j = corner[c][k];
					for (int q = 0; q < 2; q++)
						out->corner_uvs[6 * g + 2 * (size_t)k + (size_t)q] = j < 3 ?
							uv[2 * j + q] :
							0.5f * (uv[2 * (j - 3) + q] + uv[2 * ((j - 2) % 3) + q]);
				}
			}
			if (in->face_material)
				out->face_material[g] = in->face_material[f];
			if (in->face_colors)
				memcpy(out->face_colors + 4 * g, in->face_colors + 4 * f, 4);
		}
	}
	if ((rc = copy_info(in, out, true, e)))
		goto out;
	rc = scan_finalize(out, e);
out:
	xfree(M.key);
	xfree(M.mid);
	xfree(mids);
	if (rc)
		scan_release(out);
	return rc;
}

int gen_subdivide(const struct scan *in, int levels, struct scan *out, struct err *e)
{
	struct scan cur, next;
	int rc = 0;
	scan_init(out);
	if (levels < 1 || levels > 8)
		return err_set(e, ERR_INTERNAL, "subdivision levels %d not in 1..8", levels);
	if (in->n_faces == 0) {
		/* a cloud has no triangles to split: an unchanged copy */
		uint8_t *keep = alloc_array(in->n_vertices ? in->n_vertices : 1, 1);
		if (!keep)
			return err_set(e, ERR_NOMEM, "out of memory");
		memset(keep, 1, in->n_vertices);
		rc = subset(in, keep, NULL, out, e);
		xfree(keep);
		return rc;
	}
	scan_init(&cur);
	for (int l = 0; l < levels && !rc; l++) {
		rc = subdivide_once(l ? &cur : in, &next, e);
		scan_release(&cur);
		cur = next;
	}
	if (!rc)
		*out = cur;
	else
		scan_release(&cur);
	return rc;
}

int gen_smooth(struct scan *s, int iterations, struct err *e)
{
	int rc = 0;
	size_t nv = s->n_vertices;
	bool had_normals = s->normals != NULL;
	if (iterations < 0 || iterations > 100000)
		return err_set(e, ERR_INTERNAL, "smoothing iterations %d out of range", iterations);
	if (s->n_faces == 0 || iterations == 0)
		return 0;
	if (nv > UINT32_MAX - 1)
		return err_set(e, ERR_LIMIT, "%zu vertices (limit %u)", nv, UINT32_MAX - 1);
	uint32_t *canon = alloc_array(nv, sizeof(*canon));
	double *p = alloc_array(nv, 3 * sizeof(double));
	double *acc = alloc_array(nv, 4 * sizeof(double));
	if (!canon || !p || !acc) {
		rc = err_set(e, ERR_NOMEM, "out of memory for %zu vertices", nv);
		goto out;
	}
	if ((rc = weld(s->positions, nv, canon, e)))
		goto out;
	for (size_t i = 0; i < 3 * nv; i++)
		p[i] = s->positions[i];
	/* Taubin's lambda|mu pair: pass band k = 1/lambda + 1/mu ~ 0.1 */
	static const double step[2] = { 0.5, -0.53 };
	for (int it = 0; it < 2 * iterations; it++) {
		memset(acc, 0, nv * 4 * sizeof(double));
		for (size_t f = 0; f < s->n_faces; f++) {
			const uint32_t *t = s->indices + 3 * f;
			for (int k = 0; k < 3; k++) {
				size_t a = canon[t[k]], b = canon[t[(k + 1) % 3]];
				if (a == b)
					continue;
				for (int q = 0; q < 3; q++) {
					acc[4 * a + (size_t)q] += p[3 * b + (size_t)q];
					acc[4 * b + (size_t)q] += p[3 * a + (size_t)q];
				}
				acc[4 * a + 3] += 1;
				acc[4 * b + 3] += 1;
			}
		}
		double w = step[it & 1];
		for (size_t i = 0; i < nv; i++) {
			if (canon[i] != i || acc[4 * i + 3] == 0)
				continue;
			for (int q = 0; q < 3; q++)
				p[3 * i + (size_t)q] += w * (acc[4 * i + (size_t)q] / acc[4 * i + 3] -
							     p[3 * i + (size_t)q]);
		}
	}
	for (size_t i = 0; i < nv; i++)
		for (int q = 0; q < 3; q++)
			s->positions[3 * i + (size_t)q] = (float)p[3 * (size_t)canon[i] + (size_t)q];
	if (had_normals && (rc = normals_from_faces(s, canon, e)))
		goto out;
	rc = scan_finalize(s, e);
out:
	xfree(canon);
	xfree(p);
	xfree(acc);
	return rc;
}

int gen_flip(struct scan *s, double share, uint64_t seed, struct err *e)
{
	if (!(share >= 0 && share <= 1))
		return err_set(e, ERR_INTERNAL, "share of flipped triangles %g not in [0, 1]", share);
	struct rng g = { mix64(seed ^ 0xF11Bull) };
	for (size_t f = 0; f < s->n_faces; f++) {
		if (share < 1 && !(rng_u01(&g) < share))
			continue;
		uint32_t *t = s->indices + 3 * f;
		uint32_t x = t[1];
		t[1] = t[2];
		t[2] = x;
		if (s->corner_uvs) {
			float *uv = s->corner_uvs + 6 * f, u[2];
			memcpy(u, uv + 2, sizeof(u));
			memcpy(uv + 2, uv + 4, sizeof(u));
			memcpy(uv + 4, u, sizeof(u));
		}
	}
	if (!s->normals || !s->n_faces)
		return 0;
	if (share >= 1) {
		for (size_t i = 0; i < 3 * s->n_vertices; i++)
			s->normals[i] = -s->normals[i];
		return 0;
	}
	/* what an exporter writes: normals from the faces as they now are */
	return gen_normals(s, e);
}
