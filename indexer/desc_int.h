/*
 * desc_int.h - internals shared by the descriptor files (describe.c,
 * desc_sample.c, desc_grid.c, desc_orient.c, desc_fit.c, desc_shape.c,
 * desc_relief.c, desc_colour.c).  Not a public API: see describe.h.
 *
 * Everything works in a normalised frame: x' = (x - centroid) / scale,
 * where centroid and scale (RMS distance to the centroid) come from the
 * area-weighted surface (or the points of a cloud), so radii written here
 * are fractions of the scan's size.  Positions are floats; sums, fits and
 * statistics are doubles.
 */
#ifndef REFSCAN_DESC_INT_H
#define REFSCAN_DESC_INT_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "describe.h"
#include "../formats/scan.h"

struct err;
struct image;

/* ---- layout (docs/descriptors.md) ---- */
#define DESC_D2_BINS 32
#define DESC_A3_BINS 18
#define DESC_D1_BINS 16
#define DESC_SH_SHELLS 16
#define DESC_SH_DEGREES 8          /* l = 0..7 */
#define DESC_PCA_LEN 3
#define DESC_SHAPE_LEN (DESC_D2_BINS + DESC_A3_BINS + DESC_D1_BINS + \
			DESC_SH_SHELLS * DESC_SH_DEGREES + DESC_PCA_LEN)

#define DESC_SI_BINS 9
#define DESC_CV_BINS 6
#define DESC_LOCAL_SCALES 2
#define DESC_PAIR_NB 4        /* bins of each of the four pair features */
#define DESC_PAIR_BINS (DESC_PAIR_NB * DESC_PAIR_NB * DESC_PAIR_NB * DESC_PAIR_NB)
#define DESC_PAIR_R 0.3       /* pairs of fit centres closer than this (of R) */
#define DESC_LOCAL_LEN (DESC_LOCAL_SCALES * DESC_SI_BINS * DESC_CV_BINS + DESC_PAIR_BINS)

#define DESC_RELIEF_SCALES 3
#define DESC_RELIEF_STATS 8
#define DESC_RELIEF_HIST 16
#define DESC_RELIEF_PER_SCALE (DESC_RELIEF_STATS + DESC_RELIEF_HIST)
#define DESC_RELIEF_LEN (DESC_RELIEF_SCALES * DESC_RELIEF_PER_SCALE)

#define DESC_LAB_L 5
#define DESC_LAB_AB 7
#define DESC_LAB_LEN (DESC_LAB_L * DESC_LAB_AB * DESC_LAB_AB)
#define DESC_LBP_P 8
#define DESC_LBP_BINS (DESC_LBP_P + 2)
#define DESC_LBP_SCALES 2
#define DESC_COLOUR_LEN (DESC_LAB_LEN + DESC_LBP_SCALES * DESC_LBP_BINS)

#define DESC_SIZE_LEN 4

/* ---- sampling parameters ---- */
#define DESC_N_CENTRES 8192   /* area-uniform samples for the global shape */
#define DESC_N_FIT 4096       /* of which (every other one) local fits are made at */
#define DESC_N_L 160          /* expected points per L-filter ball (quartic fit) */
#define DESC_N_S 64           /* expected points per S-filter ball (plane fit) */
#define DESC_NB_CAP 640       /* points kept per ball (reservoir beyond) */
#define DESC_MIN_NB 12        /* fewer: widen the ball, then give up */
#define DESC_SPECK_SHARE 0.05 /* specks are left out up to this share of the faces */
#define DESC_AREA_K 8         /* a cloud point's area: its 8th neighbour's distance^2 */
#define DESC_AREA_CLAMP 100.0 /* cloud weights within this factor of their median */
#define DESC_AREA_CELL 3.5    /* kNN grid cell, in spacings of a sphere's cloud */
#define DESC_AREA_MAX_PTS ((size_t)1 << 24) /* larger clouds weigh points equally */
#define DESC_MIN_POINTS 16    /* fewer finite points: ERR_UNDESCRIBABLE */
#define DESC_LEVEL_CAP ((size_t)1 << 21) /* largest global sample set */
#define DESC_RES_FACTOR 3.0   /* S-filter radius >= this x sampling spacing */
#define DESC_NOISE_CENTRES 1024 /* centres that measure the roughness below it */
#define DESC_LOCAL_MIN_SPACINGS 2.5 /* local-geometry radius >= this x spacing */
#define DESC_BAND_MAX 0.3     /* L-filter radius <= this (normalised): beyond is form */

/*
 * Radii: relief bands between an S-filter radius and an L-filter radius,
 * relative (fractions of the RMS radius) and in millimetres, and the
 * local-geometry radii (relative; they share the relief fits).
 */
extern const double desc_relief_l[DESC_RELIEF_SCALES];
extern const double desc_relief_s[DESC_RELIEF_SCALES];
extern const double desc_relief_l_mm[DESC_RELIEF_SCALES];
extern const double desc_relief_s_mm[DESC_RELIEF_SCALES];
extern const double desc_local_radii[DESC_LOCAL_SCALES];

/* ---- counter-based random numbers: value = f(seed, stream, index) ---- */
static inline uint64_t desc_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t desc_hash(uint64_t seed, uint64_t stream, uint64_t i)
{
	return desc_mix(desc_mix(seed ^ desc_mix(stream)) ^ i);
}

/* Uniform in [0, 1) from 53 bits. */
static inline double desc_u01(uint64_t h)
{
	return (double)(h >> 11) * 0x1.0p-53;
}

/* Random streams (one per use, so sets never share numbers). */
enum desc_stream {
	DS_CENTRES = 1,
	DS_PAIRS,
	DS_TRIPLES,
	DS_CLOUD,
	DS_LEVEL = 16,    /* + scale slot */
	DS_LOCAL = 64,    /* + scale slot */
	DS_RESERVOIR = 128
};

/* ---- small linear algebra (desc_fit.c) ---- */
/* Add the outer product d d^T to the symmetric 3x3 cov (xx xy xz yy yz zz). */
static inline void desc_cov_add(double cov[6], const double d[3])
{
	cov[0] += d[0] * d[0];
	cov[1] += d[0] * d[1];
	cov[2] += d[0] * d[2];
	cov[3] += d[1] * d[1];
	cov[4] += d[1] * d[2];
	cov[5] += d[2] * d[2];
}

/*
 * Eigen-decomposition of the symmetric 3x3 matrix a (xx xy xz yy yz zz)
 * by Jacobi rotations: val ascending, vec rows the unit eigenvectors.
 */
void desc_eig3(const double a[6], double val[3], double vec[3][3]);

/* Unit eigenvector of the least eigenvalue of a (closed form; Jacobi when
 * the two least eigenvalues coincide). */
void desc_least_axis(const double a[6], double n[3]);

/* ---- points ---- */
struct desc_pts {
	size_t n;
	float *pos;    /* 3n, normalised frame */
	float *nrm;    /* 3n, unit and oriented, or all zero when unknown */
	float *lab;    /* 3n CIELAB (NaN when no colour there), or NULL */
	uint32_t *id;  /* source vertex index (clouds), or NULL */
};

int desc_pts_alloc(struct desc_pts *p, size_t n, bool colour);
void desc_pts_release(struct desc_pts *p);

/* ---- the prepared scan (desc_sample.c) ---- */
struct desc_src {
	const struct scan *s;
	const struct image *tex;  /* aligned with s->textures, may be NULL */
	size_t n_tex;
	uint64_t seed;
	int threads;

	bool mesh;                /* false: the points of a cloud */
	double centre[3];         /* centroid, model units */
	double scale;             /* RMS radius, model units */
	double inv_scale;
	double cov[6];            /* covariance in the normalised frame */
	double area;              /* normalised surface area (estimated for clouds) */
	float orient;             /* +1, or -1 when the winding faces inwards */

	/* mesh: valid faces, their cumulative normalised area */
	size_t n_tris;
	uint32_t *tri;            /* face indices with positive finite area */
	double *cdf;              /* cdf[i] = area of tris 0..i */

	/* cloud: finite vertices and a uniform key per vertex for subsets */
	size_t n_pts;
	uint32_t *pt;             /* finite vertex indices */
	float *key;               /* u in [0,1): subset of fraction f = key < f */
	bool cloud_normals;       /* the cloud carries normals */
	float *wv;                /* area weight per vertex (mean 1), or NULL: equal;
				     with it, cdf holds the cumulative weights of pt */

	double spacing;           /* sampling resolution: sqrt(area per vertex) */
	size_t n_specks;          /* mesh faces left out as specks (find_specks) */
	uint8_t *speck_v;         /* their vertices (1), or NULL when none */
	size_t n_speck_v;

	bool colour;              /* colour is sampled (some source exists) */
	bool units;
	double mm_per_unit;
};

/*
 * Validate and prepare: finite vertices, faces with positive area,
 * centroid, covariance, normalisation, orientation, colour source.
 * info receives counts.  Returns 0, ERR_UNDESCRIBABLE (too few points,
 * no extent) or ERR_NOMEM.
 */
int desc_src_init(struct desc_src *src, const struct scan *s,
		  const struct describe_opts *o, struct desc_info *info,
		  struct err *e);
void desc_src_release(struct desc_src *src);

/* Normalised position of vertex v. */
static inline void desc_vertex(const struct desc_src *src, uint32_t v, double p[3])
{
	const float *q = src->s->positions + 3 * (size_t)v;
	for (int k = 0; k < 3; k++)
		p[k] = ((double)q[k] - src->centre[k]) * src->inv_scale;
}

/*
 * n stratified area-uniform surface samples (mesh) or a uniform subset of
 * about n points (cloud), stream `stream`.  colour: fill lab.
 */
int desc_sample(const struct desc_src *src, size_t n, uint64_t stream,
		bool colour, struct desc_pts *out, struct err *e);

/* Colour of face f at barycentric (b1, b2) as CIELAB; false when none. */
bool desc_face_colour(const struct desc_src *src, uint32_t f, double b1,
		      double b2, float lab[3]);
/* Texture index of face f, or -1 (see desc_colour.c). */
int32_t desc_face_texture(const struct scan *s, size_t f);
/* Colour of cloud vertex v; false when none. */
bool desc_vertex_colour(const struct desc_src *src, uint32_t v, float lab[3]);

/* sRGB 0..255 to CIELAB (D65). */
void desc_srgb_to_lab(double r, double g, double b, float lab[3]);

/* ---- hashed uniform grids (desc_grid.c) ---- */
struct desc_grid {
	double inv_h;      /* 1 / cell size */
	uint32_t mask;     /* buckets - 1 (power of two) */
	uint32_t *start;   /* mask + 2 offsets into items */
	uint32_t *items;   /* point or triangle indices, bucket order */
	uint64_t *keys;    /* cell key per item (triangle grids), else NULL */
	size_t n_items;
};

static inline int32_t desc_cell(double x, double inv_h)
{
	double c = floor(x * inv_h);
	if (c < -1048575.0)
		c = -1048575.0;
	if (c > 1048575.0)
		c = 1048575.0;
	return (int32_t)c;
}

static inline uint64_t desc_cell_key(int32_t x, int32_t y, int32_t z)
{
	return ((uint64_t)(uint32_t)(x + 1048576) << 42) |
	       ((uint64_t)(uint32_t)(y + 1048576) << 21) | (uint64_t)(uint32_t)(z + 1048576);
}

/* Bucket of a cell key. */
static inline uint32_t desc_bucket(const struct desc_grid *g, uint64_t key)
{
	return (uint32_t)desc_mix(key) & g->mask;
}

/* Grid over points (cell size h). */
int desc_grid_points(struct desc_grid *g, const float *pos, size_t n, double h,
		     int threads, struct err *e);
/*
 * Grid over the valid triangles of a mesh: each is listed in every cell
 * its bounding box overlaps.  Returns ERR_LIMIT (e untouched) when that
 * would exceed max_items entries.
 */
int desc_grid_tris(struct desc_grid *g, const struct desc_src *src, double h,
		   size_t max_items, struct err *e);
void desc_grid_release(struct desc_grid *g);

/* ---- neighbourhoods (desc_sample.c) ---- */
struct desc_gather {
	size_t n, cap;
	size_t seen;       /* candidates inside the ball (>= n with reservoir) */
	double *p;         /* 3cap, relative to the centre */
	float *nrm;        /* 3cap */
	float *lab;        /* 3cap, when colour */
};

int desc_gather_alloc(struct desc_gather *g, size_t cap);
void desc_gather_release(struct desc_gather *g);

/* The points within radius r of any centre, at a density of about
 * `target` per ball: a global sample set, or triangles sampled around
 * each centre on demand. */
struct desc_nbhd {
	double r;
	double target;           /* expected points per ball */
	bool local;              /* sample triangles around each centre */
	bool colour;
	uint64_t stream;
	struct desc_pts pts;     /* !local */
	struct desc_grid grid;   /* over pts, or over triangles when local */
	double density;          /* local: samples per unit area */
	bool sparse;             /* cloud too sparse for this radius */
};

int desc_nbhd_init(struct desc_nbhd *nb, const struct desc_src *src, double r,
		   double target, uint64_t stream, bool colour, struct err *e);

/*
 * Test hook: 0 lets desc_nbhd_init choose the cheaper sampler (default);
 * 1 forces global sample sets, 2 forces sampling near each centre for
 * meshes.  Not for production use; not thread-safe to change while
 * describing.  Returns the previous setting.
 */
int desc_test_force_sampler(int mode);
/* Tests only: 0 makes clouds weigh their points equally, 1 by area (the
 * default); returns the previous setting.  Not thread-safe. */
int desc_test_cloud_weights(int on);
void desc_nbhd_release(struct desc_nbhd *nb);

/*
 * Points within r of c (normalised frame), excluding cloud vertex
 * `exclude` (UINT32_MAX: none).  centre_id seeds the local sampler.
 * Fills g (relative positions).  Thread-safe for distinct g.
 */
void desc_nbhd_gather(const struct desc_nbhd *nb, const struct desc_src *src,
		      const float c[3], uint32_t exclude, size_t centre_id,
		      double r, struct desc_gather *g);

/* ---- local fits (desc_fit.c) ---- */
struct desc_bfit {
	float k1, k2;      /* principal curvatures of the L quadric x l, convex > 0 */
	float h;           /* height of the centre above the L quadric (normalised) */
	float hb;          /* band height: S-filtered L residual at the centre */
	float g2;          /* squared slope of the S-filtered residual */
	float rq;          /* ridge-ness of the band's Hessian, 0..1 */
	float re;          /* its curvature energy, the weight of rq */
	float a4;          /* 4-fold variogram harmonic of the L residuals */
	float nrm[3];      /* the L fit's normal (normalised frame) */
	uint8_t lbp;       /* riu2 code 0..P+1, 255 when no colour */
	uint8_t ok;        /* the L fit succeeded */
	uint8_t sok;       /* the S pass succeeded */
	uint8_t border;    /* the L ball is cut by the surface's edge */
	uint8_t widened;   /* a ball had to grow */
};

/*
 * One band pass over every centre: the L fit of radius rl from nbl and,
 * when nbs is non-NULL, the S pass of radius rs from nbs (see
 * desc_fit.c); colour adds the LBP code.  out has centres->n entries.
 * Parallel over centres; deterministic.  *sparse is set when many balls
 * had to widen or a level was too sparse.
 */
int desc_fit_band(const struct desc_src *src, const struct desc_pts *centres,
		  const struct desc_nbhd *nbl, double rl, const struct desc_nbhd *nbs,
		  double rs, bool colour, struct desc_bfit *out, bool *sparse,
		  struct err *e);

/*
 * Median roughness below the resolution at (at most max_centres of) the
 * centres C: the RMS distance of the points within r about their quadric,
 * in model units, over the balls no border cuts (0 when no ball could be
 * fitted).
 */
int desc_fit_roughness(const struct desc_src *src, const struct desc_pts *C,
		       const struct desc_nbhd *nb, double r, size_t max_centres,
		       double *out, struct err *e);

/*
 * Give the centres of a cloud without normals consistently oriented PCA
 * normals (desc_orient.c).  Returns 0 or ERR_NOMEM.
 */
int desc_orient_cloud(const struct desc_src *src, struct desc_pts *centres,
		      struct err *e);

/* ---- blocks ---- */
/* Global shape block (unweighted, unit norm) from the centres. */
int desc_shape_block(const struct desc_src *src, const struct desc_pts *centres,
		     float *out, struct err *e);
/* D2 histogram alone (Hellinger), the evaluation baseline. */
void desc_d2_hist(const struct desc_pts *centres, uint64_t seed, float *out);

/* Linear (tent) vote of x over nb bins centred at lo, lo + step, ...:
 * bins idx[0..1] with weights w[0..1]; clamped at both ends (NaN: bin 0). */
void desc_tent(double x, double lo, double step, int nb, int idx[2], double w[2]);

/* Shape index x curvedness histogram of one scale (Hellinger, unit norm). */
void desc_local_hist(const struct desc_bfit *f, size_t n, float *out);
int desc_pair_hist(const struct desc_pts *C, const struct desc_bfit *f, double rp,
		   int threads, float *out);

/* Raw statistics of one relief band, heights in units of its L radius. */
struct desc_band_raw {
	size_t m;             /* centres measured (0: none, no relief) */
	double sa, sq, ssk, sku, sdr;
	double ridge;         /* energy-weighted ridge-ness of the band Hessian */
	double a4;            /* 4-fold harmonic of the residual variogram */
	double robust;        /* 1.4826 median|h| / Sq */
	double hist[DESC_RELIEF_HIST]; /* h / Sq, tent votes, sums to 1 */
};

/*
 * Measure the band heights of a band pass (L radius r) over the n
 * centres.  f NULL: the band is below the sampling resolution (m = 0).
 */
void desc_band_measure(const struct desc_bfit *f, size_t n, double r,
		       struct desc_band_raw *b);
/* The DESC_RELIEF_PER_SCALE features of a band: statistics, histogram. */
void desc_band_features(const struct desc_band_raw *b, float *out);

/* Lab histogram of the centres (Hellinger). */
void desc_lab_hist(const struct desc_pts *centres, float *out);
/* LBP riu2 histogram of one scale (Hellinger). */
void desc_lbp_hist(const struct desc_bfit *f, size_t n, float *out);

/* Normalise a histogram to sum 1 and take square roots; false if empty. */
bool desc_hellinger(float *h, size_t n);

/* Threads to use (opts->threads or the OpenMP default). */
int desc_threads(const struct desc_src *src);

/*
 * Estimate the surface area of a cloud (normalised units) from the mean
 * number of points within a small ball around the first centres, and
 * store it in src->area.  Returns 0 or ERR_NOMEM.
 */
int desc_cloud_area(struct desc_src *src, const struct desc_pts *centres,
		    struct err *e);

#endif
