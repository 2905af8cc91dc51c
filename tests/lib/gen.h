/*
 * gen.h - seeded generator of scan-like surfaces, and the perturbations
 * used to evaluate descriptors (rigid motion, noise, decimation, point
 * sampling, cropping).
 *
 * A generated scan is a parametric base form (flat tile, wave panel, blob,
 * trunk, torus, rounded box, limb) meshed as one or six (u, v) grids, whose
 * vertices are displaced along the base normal by a relief height field
 * evaluated at the vertex's physical position in millimetres.  The relief
 * therefore has the same physical scale at every mesh resolution; features
 * smaller than about two edge lengths are faded out (band-limited) rather
 * than aliased, as a scanner's reconstruction would lose them.
 *
 * Everything here is deterministic: the same parameters give bit-identical
 * scans and byte-identical files, with any number of OpenMP threads (every
 * parallel loop writes independent elements).  All noise is hash-based and
 * keyed by the seed.  Units are millimetres throughout.
 *
 * Errors follow the project's convention: 0 or a negative enum errc with a
 * caller-owned struct err filled.  Output scans belong to the caller
 * (scan_release); output images too (image_release).  Functions that take
 * an input scan never modify it.  Not for untrusted input: these build test
 * data, though they still check sizes and allocations.
 */
#ifndef REFSCAN_TESTS_GEN_H
#define REFSCAN_TESTS_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;
struct image;
struct scan;

/* Version of the generator's output; bumped whenever bytes change. */
#define GEN_VERSION 1

enum gen_form {
	GEN_FORM_TILE,      /* gently curved rectangular patch, S x 0.75 S */
	GEN_FORM_PANEL,     /* saddle with travelling waves, S x 0.8 S */
	GEN_FORM_BLOB,      /* lumpy closed blob (cube-sphere), ~S across */
	GEN_FORM_TRUNK,     /* open tapered, slightly bent tube along z, height S */
	GEN_FORM_TORUS,     /* ring, outer diameter S */
	GEN_FORM_BOX,       /* rounded box S x 0.7 S x 0.45 S */
	GEN_FORM_LIMB,      /* elongated ellipsoid with a bulge along x, length S */
	GEN_N_FORMS
};

enum gen_material {
	GEN_MAT_NONE,       /* smooth */
	GEN_MAT_SKIN,       /* pores 0.1-0.25 mm, creases 1.5-3 mm apart, micro-relief */
	GEN_MAT_BARK,       /* plates and deep furrows along the grain, mm to cm */
	GEN_MAT_FABRIC,     /* plain weave, 0.7 mm thread pitch */
	GEN_MAT_STONE,      /* fractal relief with cracks and grains */
	GEN_MAT_HAMMERED,   /* overlapping round dimples 2-4 mm */
	GEN_MAT_WOOD,       /* growth rings ~2 mm and fibre grooves along the grain */
	GEN_MAT_LEATHER,    /* pebble grain ~1.2 mm cells, creases */
	GEN_MAT_KNIT,       /* stockinette V stitches, 3 x 2.4 mm */
	GEN_N_MATERIALS
};

enum gen_color {
	GEN_COLOR_NONE,
	GEN_COLOR_VERTEX,   /* per-vertex RGBA from the material's palette */
	GEN_COLOR_TEXTURE,  /* PNG texture + per-vertex UVs + one material */
	GEN_N_COLORS
};

enum gen_format {
	GEN_FMT_PLY,        /* binary little-endian PLY (ply_write) */
	GEN_FMT_PLY_ASCII,  /* ascii PLY (written here) */
	GEN_FMT_OBJ,        /* OBJ + MTL (+ PNG) */
	GEN_FMT_STL,        /* binary STL */
	GEN_FMT_STL_ASCII,  /* ascii STL */
	GEN_N_FORMATS
};

struct gen_params {
	enum gen_form form;
	enum gen_material material;
	double size_mm;          /* largest extent of the base form (default 100) */
	size_t triangles;        /* target triangle count; the result is within ~5% */
	uint64_t seed;
	double amplitude_mm;     /* peak relief depth; 0 = the material's typical */
	enum gen_color color;
	uint32_t texture_px;     /* texture width = height; 0 = chosen from triangles */
	const char *texture_name; /* declared texture path (default "texture.png") */
	bool normals;            /* per-vertex normals (default true) */
	bool uvs;                /* per-vertex UVs even without a texture (default false) */
	bool jitter;             /* irregular vertex placement like a scanner's mesh (default true) */
	/* relief from an image instead of the material's (NULL: the material's);
	 * amplitude_mm is then its peak depth (0: 0.5 mm).  Borrowed. */
	const struct gen_heightmap *heightmap;
};

/*
 * A height map from a photograph of a surface, for relief that no
 * generator made: luminance, zero mean, scaled so that 3 standard
 * deviations are 1 (clamped to [-1, 1]), with 2x box-filtered levels so
 * that a scan samples it no finer than its edge length.  Applied by
 * triplanar projection (each axis plane's view blended by the normal),
 * mirrored at the image's edges, at width_mm per image width, from an
 * offset the scan's seed chooses.
 */
#define GEN_HM_LEVELS 12
struct gen_heightmap {
	int levels;
	uint32_t w[GEN_HM_LEVELS], h[GEN_HM_LEVELS];
	float *px[GEN_HM_LEVELS];
	double width_mm;
};

/* Build from a decoded image (at least 2 x 2 pixels).  0 or ERR_NOMEM /
 * ERR_FORMAT. */
int gen_heightmap_init(struct gen_heightmap *hm, const struct image *im, double width_mm,
		       struct err *e);
void gen_heightmap_release(struct gen_heightmap *hm);

/* Defaults: tile, stone, 100 mm, 20000 triangles, seed 1, no colour. */
void gen_params_init(struct gen_params *p);

/* Names used on the command line and in metadata ("tile", "skin", ...). */
const char *gen_form_name(enum gen_form f);
const char *gen_material_name(enum gen_material m);
const char *gen_color_name(enum gen_color c);
const char *gen_format_name(enum gen_format f);
/* File extension without the dot: "ply", "obj", "stl". */
const char *gen_format_ext(enum gen_format f);
/* One line describing a form or material, for --list. */
const char *gen_form_summary(enum gen_form f);
const char *gen_material_summary(enum gen_material m);
/* The material's default peak relief depth in mm. */
double gen_material_amplitude(enum gen_material m);
/*
 * Parse a name; returns the enum value or -1 when unknown.
 * Formats: ply, ply-ascii, obj, stl, stl-ascii.
 */
int gen_form_parse(const char *s);
int gen_material_parse(const char *s);
int gen_color_parse(const char *s);
int gen_format_parse(const char *s);

/*
 * Build a scan: positions in mm (units UNITS_MM), triangles wound so that
 * normals point out of the form, normals/colours/UVs as asked, one material
 * named after the relief material (Kd = its base colour; map_Kd the texture
 * in texture mode).  Metadata: generator, form, material, seed, size_mm,
 * amplitude_mm, edge_mm.  Seams (cube faces, the wrap of tubes and rings)
 * carry duplicated vertices with identical positions and normals, so UVs
 * can differ across them, as in textured scanner exports.
 *
 * tex (OUT, may be NULL unless color is GEN_COLOR_TEXTURE) receives the
 * texture, RGBA8, release with image_release().  *out is initialised here
 * and released on failure.  Returns 0, ERR_LIMIT for absurd sizes, or
 * ERR_NOMEM.
 */
int gen_scan(const struct gen_params *p, struct scan *out, struct image *tex,
	     struct err *e);

/*
 * Relief of a material at a point, for tests of the relief statistics:
 * height in mm (negative into the surface) at position pos (mm) whose base
 * normal is nrm, band-limited for a sampling distance spacing_mm.
 * grain is the axis (0 x, 1 y, 2 z) along which anisotropic materials run.
 * Thread-safe.
 */
double gen_relief(enum gen_material m, uint64_t seed, const double pos[3],
		  const double nrm[3], int grain, double spacing_mm,
		  double amplitude_mm);

/*
 * Write s as path in format f.  A texture (tex non-NULL and s has one) is
 * written as PNG at the declared texture path resolved next to path; OBJ
 * writes <stem>.mtl beside it when s has materials.  STL keeps geometry
 * only.  Every file is written atomically.  Returns 0 or ERR_IO /
 * ERR_UNSUPPORTED (a writer not available).
 */
int gen_write(const char *path, enum gen_format f, const struct scan *s,
	      const struct image *tex, struct err *e);

/* Ascii PLY (positions, normals, colours, UVs, texture comment, units). */
int gen_write_ply_ascii(const char *path, const struct scan *s, struct err *e);

/*
 * The i-th scan of a varied library (forms x materials x sizes x colour
 * modes x formats), seeded by seed.  triangles 0 = vary per scan
 * (5k..60k); otherwise use that count.  Fills p and *fmt; p->texture_name
 * is left NULL (the caller names files).
 */
void gen_library_item(size_t i, uint64_t seed, size_t triangles,
		      struct gen_params *p, enum gen_format *fmt);

/* Material category tags for metadata ("organic", "textile", ...). */
const char *gen_material_category(enum gen_material m);

/*
 * --- Perturbations -------------------------------------------------------
 * Each is seeded and deterministic.  In-place ones keep every attribute;
 * the others build a new scan (out, initialised here, released on failure)
 * with units and metadata copied.
 */

/*
 * Area-weighted vertex normals, averaged across vertices that share a
 * position (seams), written into s->normals (allocated if missing).
 */
int gen_normals(struct scan *s, struct err *e);

/*
 * Random rigid motion and uniform scale, in place: p' = scale * R p + t,
 * R uniform over rotations, t uniform in a cube of half-side translate_mm.
 * Normals are rotated.  R (row-major 3x3) and t are returned when the
 * pointers are non-NULL.
 */
int gen_rigid(struct scan *s, uint64_t seed, double scale,
	      double translate_mm, double R[9] /* OUT */, double t[3] /* OUT */,
	      struct err *e);

/*
 * Gaussian noise of standard deviation sigma_mm along each vertex normal
 * (computed first when s has none), in place.  Shared positions (seams)
 * move together, so the mesh does not tear.  Normals are recomputed.
 */
int gen_noise(struct scan *s, uint64_t seed, double sigma_mm, struct err *e);

/*
 * Decimate to about n_vertices / factor vertices (factor > 1), as mesh
 * tools do: a mesh by quadric-error edge collapse (Garland & Heckbert
 * 1997; borders held by perpendicular planes, collapses that turn a
 * triangle over refused), a point cloud by clustering on a grid.  A
 * merged vertex's colour is the mean of its members'; normals are
 * recomputed; UVs, textures and materials are dropped (decimation breaks
 * the parametrisation).
 */
int gen_decimate(const struct scan *in, double factor, struct scan *out,
		 struct err *e);

/* Sum of the triangle areas of s, in its units (0 for a cloud). */
double gen_surface_area(const struct scan *s);

/*
 * n points sampled uniformly by area from the triangles of in (a point
 * cloud: n_faces 0), with interpolated normals (face normal if in has none)
 * and colours.
 */
int gen_sample_points(const struct scan *in, size_t n, uint64_t seed,
		      struct scan *out, struct err *e);

/*
 * Planar crop: a random plane direction, offset so that about keep
 * (0 < keep <= 1) of the vertices lie on the kept side; keeps the triangles
 * whose three vertices are all kept (a point cloud keeps its points), and
 * every attribute.
 */
int gen_crop(const struct scan *in, double keep, uint64_t seed,
	     struct scan *out, struct err *e);

/* A direction uniform on the unit sphere, from seed (gen_crop's planes). */
void gen_direction(uint64_t seed, double dir[3]);

/*
 * What one scanner position sees: an orthographic view along dir (any
 * length > 0), with occlusion.  A mesh keeps the triangles whose centre is
 * not behind the nearest surface in a 256 x 256 depth buffer over its
 * projected bounding square (back faces and hidden parts go, whatever the
 * winding; so do surfaces seen nearly edge-on); a point cloud keeps the
 * points nearest the viewer, each point hiding what lies behind it within
 * about 2 point spacings.  Every attribute is kept.
 */
int gen_view(const struct scan *in, const double dir[3], struct scan *out, struct err *e);

/*
 * Holes, as a scanner leaves where it saw nothing (occluded hollows, shiny
 * or dark spots): n_holes balls around random vertices, each taking the
 * frac / n_holes of the finite vertices nearest its centre (so about frac
 * of the scan in all, less where balls overlap).  A mesh keeps the faces
 * whose three vertices are kept, and only their vertices; a cloud keeps its
 * other points.  Every attribute is kept.
 */
int gen_holes(const struct scan *in, int n_holes, double frac, uint64_t seed,
	      struct scan *out, struct err *e);

/*
 * Outliers, as a scanner picks up specks of background and stray
 * reflections: frac times as many extra faces as in has (a cloud: extra
 * points), uniform in the bounding box grown by a tenth on every side.  A
 * mesh gets isolated equilateral triangles of its mean triangle area,
 * randomly turned; a cloud gets single points with random normals.
 * Outliers are grey (when in has colours) and keep every other attribute
 * of in.
 */
int gen_outliers(const struct scan *in, double frac, uint64_t seed, struct scan *out,
		 struct err *e);

/*
 * A point cloud of about n points whose density falls off along a random
 * direction, ratio times denser on one side of the scan than on the other
 * (exponentially, as a scanner's sampling falls with distance and angle):
 * area-uniform points (gen_sample_points with seed), each kept with
 * probability ratio^-t, t in [0, 1] its position along gen_direction(seed
 * + 1) between the extreme points.
 */
int gen_graded_points(const struct scan *in, size_t n, double ratio, uint64_t seed,
		      struct scan *out, struct err *e);

/*
 * levels (1..8) of midpoint subdivision: every triangle split into four at
 * its edges' midpoints, so the surface is unchanged and each level has four
 * times the triangles.  Normals, colours and UVs are interpolated at the
 * new vertices; corner UVs, materials and face colours follow their
 * triangle.  A point cloud is copied unchanged.
 */
int gen_subdivide(const struct scan *in, int levels, struct scan *out, struct err *e);

/*
 * iterations of Taubin's lambda|mu smoothing (Taubin 1995; lambda 0.5,
 * mu -0.53, umbrella weights over the mesh's edges, coincident vertices
 * moved together), as scanner software and sculpting tools smooth: relief
 * a few edges wide fades, the form keeps its size.  Normals, when present,
 * are recomputed.  A point cloud is left unchanged.
 */
int gen_smooth(struct scan *s, int iterations, struct err *e);

/*
 * Reverse the winding of each triangle with probability share (1: every
 * one, the mesh turned inside out, its normals negated), as exporters and
 * merged scans leave meshes; with share < 1 the normals are recomputed
 * from the faces as they now are.  A point cloud is left unchanged.
 */
int gen_flip(struct scan *s, double share, uint64_t seed, struct err *e);

#endif
