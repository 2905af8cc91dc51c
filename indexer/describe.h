/*
 * describe.h - shape and surface-texture descriptors of a scan.
 *
 * describe_scan() maps a scan (triangle mesh or point cloud) to a
 * fixed-length float vector made of blocks: global shape, local
 * geometry, relief micro-texture (relative to size, and in millimetres
 * when units are known), colour and size.  Every block is normalised on
 * its own and multiplied by the square root of its default weight, so
 * the squared L2 distance between two whole vectors is the weighted sum
 * of the per-block squared distances; FAISS can search the vector as is
 * and query can re-rank with other weights (describe_distance).
 * The layout is versioned by DESC_SCHEMA and documented, with formulas
 * and references, in docs/descriptors.md.
 *
 * An absent block (no colour, unknown units) is all zeros and its flag in
 * struct desc_info is clear: it is marked, never filled with guesses.
 *
 * Invariants: the vector is a pure function of the geometry, attributes
 * and textures of the scan and of opts->seed.  Randomness comes from a
 * counter-based hash of (seed, stream, index), and every parallel
 * reduction runs in a fixed order, so results are byte-identical for any
 * number of threads.  The global-shape, local-geometry and relative relief
 * blocks are invariant to rotation, translation and uniform scale (up to
 * sampling noise).
 */
#ifndef REFSCAN_DESCRIBE_H
#define REFSCAN_DESCRIBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;
struct image;
struct limits;
struct scan;

/* Identifies the layout below; stored with every descriptor. */
#define DESC_SCHEMA "refscan-desc-7"

enum desc_block_id {
	DESC_SHAPE = 0,   /* global shape: D2, A3, D1, SH energies, PCA */
	DESC_LOCAL,       /* shape index x curvedness at 2 scales */
	DESC_RELIEF,      /* relief at 3 scales relative to size */
	DESC_RELIEF_MM,   /* relief at 3 scales in mm (units known) */
	DESC_COLOUR,      /* Lab histogram + ring LBP at 2 scales */
	DESC_SIZE,        /* log extents and area in mm (units known) */
	DESC_N_BLOCKS
};

struct desc_block {
	const char *name;  /* "shape", "local", "relief", ... (stable, for JSON) */
	size_t offset;     /* first float of the block */
	size_t length;     /* floats */
	float weight;      /* default weight (vector holds sqrt(weight) * block) */
	const char *summary;
};

/* The block table, DESC_N_BLOCKS entries in vector order.  Static. */
const struct desc_block *describe_blocks(void);

/*
 * Cues of the robust ranking (query/rank.h): the parts of the vector a
 * search weighs on their own, the better half of them counting fully and
 * the rest a twentieth, so that a perturbation that spoils one part (a crop: the global shape; noise or
 * decimation: the relief) does not decide the match.  Every block is one
 * cue, except the local block whose two radii are two.  Static; *n gets
 * the count.
 */
struct desc_cue {
	const char *name;
	enum desc_block_id block;
	size_t offset, length; /* floats of the vector, inside the block */
	bool fine;             /* measured at the fine local radius, which
				  vertex noise disturbs (see DESC_CARRIED) */
};
const struct desc_cue *describe_cues(size_t *n);

/*
 * After the blocks the vector carries DESC_CARRIED floats that are never
 * compared (no block, no weight; FAISS sees them as 0).  The first, at
 * describe_noise_offset(), is the scan's noise level (desc_info.noise):
 * the curvedness (C r) its roughness below the resolution gives the fine
 * local fits (a clean surface shows only the sag of its facets there,
 * vertex noise its own RMS): that roughness over their radius, times
 * sqrt(DESC_N_L / vertices in the radius) where the radius holds fewer
 * vertices than the fit has points (describe.c).  The ranking leaves the
 * cues marked fine out of a pair whose levels are unlike (query/rank.h,
 * "Noise").
 */
#define DESC_CARRIED 1
size_t describe_noise_offset(void);

/*
 * The noise level the fine cues of vector v tolerate: the median
 * curvedness (C r, desc_relief.c) of its fine local histogram.  Vertex
 * noise of level L gives a flat surface's fine fits a median curvedness
 * of about L (0.76 to 1.23 L on noisy planes, L from 0.006 to 0.21), so
 * below that level the noise out-curves less than half of v's surface
 * and the fine histogram still tells surfaces apart.  0 for a vector
 * without fine local geometry.
 */
double describe_fine_tolerance(const float *v);

/* Floats in a descriptor: the block lengths and DESC_CARRIED. */
size_t describe_dim(void);

enum desc_flags {
	DESC_HAS_COLOUR = 1 << 0,      /* colour block present */
	DESC_HAS_UNITS = 1 << 1,       /* relief-mm and size blocks present */
	DESC_POINT_CLOUD = 1 << 2,     /* described from points, not faces */
	DESC_NORMALS_GUESSED = 1 << 3, /* cloud without normals: orientation guessed */
	DESC_TEXTURE_MISSING = 1 << 4, /* a referenced texture could not be used */
	DESC_COLOUR_UNIFORM = 1 << 5,  /* colours present but all equal: not used */
	DESC_UNDERSAMPLED = 1 << 6,    /* some scale had fewer points than it needs */
	DESC_PARTIAL_COLOUR = 1 << 7,  /* colour on part of the surface only */
	DESC_LOCAL_SPARSE = 1 << 8     /* cloud too sparse for the local radii: its
					  local geometry is left out of a query */
};

struct describe_opts {
	uint64_t seed;      /* sampling seed (default 1) */
	double mm_per_unit; /* > 0 overrides scan->units; 0 = use scan->units */
	int threads;        /* OpenMP threads; 0 = omp_get_max_threads() */
	/*
	 * Local fits at every fit_stride-th of the DESC_N_CENTRES samples:
	 * 0 = 2 (the descriptor's own); describe_views() uses
	 * DESC_VIEW_FIT_STRIDE.  More is cheaper and noisier, never biased.
	 */
	int fit_stride;
	/*
	 * Decoded texture images, indexed like scan->textures (n_textures
	 * entries; an entry with rgba == NULL is unavailable).  NULL when the
	 * caller has none.  Borrowed.  See describe_load_textures().
	 */
	const struct image *textures;
	size_t n_textures;
};

/*
 * ISO 25178-2 style statistics of one relief band: the scale-limited
 * surface between an S-filter (smoothing at radius s) and an L-filter
 * (form removal at radius l).  Lengths are in mm when the units are
 * known, else in the scan's own units.
 */
struct desc_band {
	double s, l;          /* S- and L-filter radii */
	bool resolved;        /* measured; see fine and coarse when not */
	bool fine;            /* not measured: s reached l at this sampling density */
	bool coarse;          /* not measured: l is beyond 0.3 of the RMS radius,
				 where the band would hold the form */
	double width;         /* share of the nominal band kept, 0..1 */
	double sa, sq;        /* mean |h|, RMS h */
	double ssk, sku;      /* skewness, kurtosis (3 for a Gaussian field) */
	double sdr;           /* developed interfacial area ratio, 0.01 = 1% */
	double aniso2;        /* ridge-ness 0..1: ridges and grooves 1, dimples 0 */
	double aniso4;        /* 4-fold variogram harmonic 0..1 (weaves: high) */
};

struct desc_info {
	unsigned flags;         /* enum desc_flags */
	size_t n_points;        /* finite vertices used */
	size_t n_faces;         /* faces with positive area used (0: point cloud) */
	size_t n_skipped;       /* non-finite vertices and faces touching them */
	size_t n_specks;        /* faces left out as specks (small detached pieces) */
	size_t n_views;         /* views described (set by the caller of describe_views) */
	double mm_per_unit;     /* 0 when unknown */
	double scale;           /* RMS distance to the centroid, model units */
	double extent[3];       /* principal extents, largest first (mm when known) */
	double area;            /* surface area (mm^2 when known); estimated for clouds */
	double colour_fraction; /* share of the surface area with colour */
	double spacing;         /* sampling resolution (mm when known) */
	double noise;           /* noise level: the curvedness roughness below
				   the resolution gives the fine local fits */
	double noise_spacings;  /* the same roughness in point spacings */
	struct desc_band relief[3];    /* relative bands (DESC_RELIEF) */
	struct desc_band relief_mm[3]; /* millimetre bands (when units known) */
};

/* Defaults: seed 1, units from the scan, all threads, no textures. */
void describe_opts_init(struct describe_opts *o);

/*
 * Describe a scan.  out receives describe_dim() floats; info (may be NULL)
 * the flags and physical figures.  o may be NULL for defaults.
 *
 * Non-finite vertices and the faces that use them are skipped.  A mesh
 * whose faces all have zero area is described as a point cloud.  Returns
 * 0, ERR_UNDESCRIBABLE when fewer than 16 finite points remain or they
 * have no extent (all identical): the scan is valid, there is just too
 * little of it to describe (e->msg says why: "3 usable points, a
 * descriptor needs 16"); ERR_LIMIT or ERR_NOMEM.  On error out is zeroed.
 * Thread-safe (may be called concurrently on different scans), does no
 * I/O; safe on untrusted input (any scan that passed scan_finalize).
 */
int describe_scan(const struct scan *s, const struct describe_opts *o,
		  float *out, struct desc_info *info, struct err *e);

/*
 * Views (indexer/desc_view.c): what one scanner position sees of a scan.
 * A reference is described whole and as seen from DESC_VIEWS fixed
 * directions (describe_view_direction, a Fibonacci lattice in the scan's
 * own coordinates), so that a query scanned from one side finds it
 * (query/rank.h, views).  A descriptor record is the whole vector
 * followed by the views' vectors: describe_record_dim() floats.
 */
#define DESC_VIEWS 8
/* Depth-buffer cells across a mesh's projected bounding square. */
#define DESC_VIEW_RES 256u
/* How far behind the nearest surface (in cells) a triangle's centre may
 * lie and still be seen: a slope of 56 degrees across one cell; steeper,
 * grazing surfaces drop out as they do for a scanner. */
#define DESC_VIEW_TOL 1.5
/* Views fit at every 4th sample (2048 fits), half the whole scan's. */
#define DESC_VIEW_FIT_STRIDE 4

/*
 * The centroid and principal axes of a scan's finite vertices, each vertex
 * counted once: axis[0] along the largest spread, axis[2] the least (unit
 * rows).  false when the scan has no finite vertex.  For pictures and
 * framing; the descriptor's own frame weighs the surface by area.
 */
bool describe_axes(const struct scan *s, double centre[3], double axis[3][3]);

/* Floats in a descriptor record: (1 + DESC_VIEWS) * describe_dim(). */
size_t describe_record_dim(void);

/* Unit direction of view i (0 <= i < DESC_VIEWS). */
void describe_view_direction(int i, double dir[3]);

/*
 * The vertices and faces of in seen looking along dir (orthographic):
 * vkeep (n_vertices) and fkeep (n_faces) get 1 for what is seen.  A
 * mesh keeps the vertices of its seen faces; a cloud the points in
 * front.  Returns 0, ERR_NOMEM, ERR_INTERNAL (dir has no length).
 */
int describe_view_mask(const struct scan *in, const double dir[3], uint8_t *vkeep,
		       uint8_t *fkeep, struct err *e);

/*
 * Describe the DESC_VIEWS views of s into out (DESC_VIEWS *
 * describe_dim() floats), with o as for describe_scan().  whole is s's
 * own vector (describe_scan() with the same o): a view that sees all of s
 * is s, and gets it without being described again; a view too small to
 * describe gets it too.  *n_described (may be NULL) counts the views that
 * are not too small.  Returns 0, ERR_NOMEM or
 * ERR_LIMIT.  Thread-safe and deterministic like describe_scan().
 */
int describe_views(const struct scan *s, const struct describe_opts *o, const float *whole,
		   float *out, size_t *n_described, struct err *e);

/*
 * The I/O side: decode the textures a scan references (resolved paths
 * that exist) into *out, an array of s->n_textures images aligned with
 * s->textures.  A texture that is missing or fails to decode is left
 * empty, counted in *n_failed and described in a warning appended to s
 * (scan_warn); that is not an error.  Returns 0 or ERR_NOMEM.  Free with
 * describe_textures_free().  lim may be NULL.
 */
int describe_load_textures(struct scan *s, const struct limits *lim,
			   struct image **out, size_t *n_failed, struct err *e);

/*
 * The colour of face f of s at barycentric (b1, b2), sRGB 0..255 in rgb,
 * by the descriptor's rule (docs/descriptors.md, block 5): its material's
 * texture (tex: n_tex decoded images aligned with s->textures, may be
 * NULL), else vertex colours, else face colours.  false when it has none.
 */
bool describe_surface_rgb(const struct scan *s, const struct image *tex, size_t n_tex,
			  size_t f, double b1, double b2, double rgb[3]);

/* Release what describe_load_textures() returned; *texp set to NULL. */
void describe_textures_free(struct image **texp, size_t n);

/*
 * Read a scan file, decode its textures and describe it: the path-based
 * wrapper used by `refscan describe`, the indexer and the evaluation.
 * s (may be NULL) receives the scan, with texture warnings appended; the
 * caller releases it with scan_release() (also on failure).  Returns 0 or
 * a negative enum errc with e->path set.
 */
int describe_file(const char *path, const struct describe_opts *o,
		  const struct limits *lim, float *out, struct desc_info *info,
		  struct scan *s, struct err *e);

/*
 * Relief statistics of one band of the caller's choosing, computed as
 * for the descriptor's bands.  Radii (s < l) and results are in mm when
 * the scan's units are known (or o->mm_per_unit is set), else in the
 * scan's own units.  The S radius is raised to the sampling resolution
 * like the descriptor's (out->s says what was used).  For inspection and
 * tests.  Returns 0, ERR_FORMAT for bad radii, or an error as
 * describe_scan().
 */
int describe_relief(const struct scan *s, const struct describe_opts *o,
		    double s_radius, double l_radius, struct desc_band *out,
		    struct err *e);

/*
 * Squared L2 distance between blocks `block` of a and b, divided by the
 * block's default weight: the block's own distance (at most about 4).
 */
float describe_block_distance(const float *a, const float *b,
			      enum desc_block_id block);

/*
 * Weighted squared distance sum_b w[b] * describe_block_distance(a, b, b).
 * weights has DESC_N_BLOCKS entries, or NULL for the defaults (then it
 * equals the plain squared L2 distance of the vectors).
 */
float describe_distance(const float *a, const float *b, const float *weights);

/*
 * Rescale a stored vector in place from the default weights to weights
 * (DESC_N_BLOCKS entries, each >= 0), so plain L2 search uses them.
 */
void describe_reweight(float *v, const float *weights);

/* Default weights into w[DESC_N_BLOCKS]. */
void describe_default_weights(float *w);

/*
 * Weight presets for the two questions a search can ask:
 *   DESC_PRESET_OBJECT   "this object": the defaults, form and relief
 *   DESC_PRESET_SURFACE  "this surface texture, on any form": relief and
 *                        colour only, the global form left out
 */
enum desc_preset { DESC_PRESET_OBJECT, DESC_PRESET_SURFACE };
void describe_preset_weights(enum desc_preset p, float *w);

/*
 * Share of the cues (describe_cues) the robust ranking keeps for a preset
 * (rank_query.keep): 0.5 for an object, whose perturbed copies lose some
 * cues (a crop the form, noise the relief); 1 for a surface, whose few
 * cues (relief relative and in mm, colour) are views of the same texture,
 * none to be thrown away.
 */
double describe_preset_keep(enum desc_preset p);

/*
 * Weights for searching with a query described as q: base (NULL for the
 * defaults) with the blocks the query lacks set to 0 (colour without
 * DESC_HAS_COLOUR; relief_mm and size without DESC_HAS_UNITS), so that
 * references are compared on what the query has instead of being
 * penalised for having more.
 */
void describe_query_weights(const struct desc_info *q, const float *base, float *w);

/* Block id from its name, or -1. */
int describe_block_find(const char *name);

#endif
