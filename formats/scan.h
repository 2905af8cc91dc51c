/*
 * scan.h - the one in-memory model of a scan, shared by every reader.
 *
 * A scan is an indexed triangle mesh with optional per-vertex attributes;
 * a point cloud is a scan with n_faces == 0.  Polygons are triangulated by
 * the readers (n_polygons keeps the source count).  Positions are floats
 * in the file's own units; `units` says what they are when known.
 *
 * Non-finite coordinates (NaN/Inf): kept as read, so counts always match
 * what the file declares, but they are left out of the bounding box,
 * counted in n_nonfinite and reported as a warning; consumers skip them
 * (scan_vertex_finite).  PCD organised clouds use NaN for "no return".
 *
 * Ownership: everything a struct scan points to belongs to it; release
 * with scan_release() (contents) or scan_free() (contents + struct).
 * Not thread-safe for concurrent mutation; concurrent reads are fine.
 */
#ifndef REFSCAN_SCAN_H
#define REFSCAN_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

enum scan_units {
	UNITS_UNKNOWN = 0,
	UNITS_MM,
	UNITS_CM,
	UNITS_M,
	UNITS_IN,
	UNITS_UM
};

struct scan_texture {
	char *declared;  /* path as written in the MTL / PLY comment */
	char *resolved;  /* path usable from the cwd, NULL if unsafe/unresolved */
	bool exists;     /* resolved path is a readable regular file */
};

struct scan_material {
	char *name;        /* usemtl / material name */
	int32_t texture;   /* index into textures (map_Kd), -1 if none */
	float kd[3];       /* diffuse colour 0..1, (0.8,0.8,0.8) default */
	bool defined;      /* found in an MTL file */
};

struct scan_kv {
	char *key;
	char *value;
};

struct scan {
	const char *format;   /* static: "ply", "obj", "stl", "off", "pcd", "xyz" */
	char encoding[32];    /* "ascii", "binary_little_endian", ... */

	size_t n_vertices;
	float *positions;     /* 3 * n_vertices */
	float *normals;       /* 3 * n_vertices, or NULL */
	uint8_t *colors;      /* 4 * n_vertices RGBA, or NULL */
	float *uvs;           /* 2 * n_vertices, or NULL (per-vertex UVs) */

	size_t n_faces;       /* triangles */
	uint32_t *indices;    /* 3 * n_faces, each < n_vertices */
	float *corner_uvs;    /* 6 * n_faces per-corner UVs, or NULL (OBJ vt, PLY texcoord) */
	int32_t *face_material; /* n_faces indices into materials (-1 none), or NULL */
	uint8_t *face_colors; /* 4 * n_faces RGBA, or NULL (OFF/STL per-face colour) */
	size_t n_polygons;    /* faces as declared in the file, before triangulation */

	size_t n_materials;
	struct scan_material *materials;
	size_t n_textures;
	struct scan_texture *textures;
	size_t n_libraries;   /* OBJ mtllib names as declared, resolved later */
	char **libraries;

	enum scan_units units;
	size_t n_meta;        /* key/value metadata from comments (units, scanner...) */
	struct scan_kv *meta;

	float bbox_min[3];    /* over finite vertices; 0 when there are none */
	float bbox_max[3];
	size_t n_nonfinite;   /* vertices with a NaN/Inf coordinate */

	size_t n_warnings;
	char **warnings;      /* one line each, no newline */
};

/* Zero a scan (all counts 0, all pointers NULL, units unknown). */
void scan_init(struct scan *s);
/* Free everything s owns and leave it as after scan_init(). */
void scan_release(struct scan *s);
/* scan_release + free the struct itself; *sp set to NULL.  NULL-safe. */
void scan_free(struct scan **sp);

/* Append a printf-formatted warning.  Returns 0 or ERR_NOMEM. */
int scan_warn(struct scan *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append a metadata pair (copied).  Returns 0 or ERR_NOMEM. */
int scan_meta_add(struct scan *s, const char *key, size_t klen,
		  const char *value, size_t vlen);
/* Value of a metadata key, or NULL.  Borrowed, valid while s lives. */
const char *scan_meta_get(const struct scan *s, const char *key);

/* Add (or find) a material by name; returns its index or ERR_NOMEM. */
int32_t scan_material_intern(struct scan *s, const char *name, size_t len);
/* Add a texture by declared path; returns its index or ERR_NOMEM. */
int32_t scan_texture_add(struct scan *s, const char *declared, size_t len);

/*
 * Allocate the per-vertex / per-face arrays a reader needs.  Counts are
 * checked for overflow; returns 0 or ERR_NOMEM (e filled).  Arrays that
 * already exist are left alone.
 */
enum scan_alloc_flags {
	SCAN_ALLOC_NORMALS = 1 << 0,
	SCAN_ALLOC_COLORS = 1 << 1,
	SCAN_ALLOC_UVS = 1 << 2,
	SCAN_ALLOC_CORNER_UVS = 1 << 3,
	SCAN_ALLOC_FACE_MATERIAL = 1 << 4,
	SCAN_ALLOC_FACE_COLORS = 1 << 5
};
int scan_alloc(struct scan *s, size_t n_vertices, size_t n_faces,
	       unsigned flags, struct err *e);

/*
 * Compute bbox and n_nonfinite, validate that every index < n_vertices
 * (ERR_FORMAT naming the face otherwise) and add the non-finite warning.
 * Every reader calls this last.
 */
int scan_finalize(struct scan *s, struct err *e);

/* True when vertex i has three finite coordinates. */
static inline bool scan_vertex_finite(const struct scan *s, size_t i)
{
	const float *p = s->positions + 3 * i;
	return __builtin_isfinite(p[0]) && __builtin_isfinite(p[1]) &&
	       __builtin_isfinite(p[2]);
}

/* Parse "mm", "millimeters", "cm", "m", "meter", "in", "inch", "um"... */
enum scan_units scan_units_parse(const char *s, size_t len);
/* "mm", "cm", ... or "unknown". */
const char *scan_units_name(enum scan_units u);
/* Millimetres per unit, 0 for unknown. */
double scan_units_mm(enum scan_units u);

#endif
