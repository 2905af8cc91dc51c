/*
 * formats.h - public entry points of formats/: read any supported scan.
 *
 * The format is chosen by magic bytes (each reader's probe scores the
 * first bytes); the file extension only breaks ties.  Readers parse from
 * a buffer, so tests and fuzzers never touch disk; scan_read_file() maps
 * the file, reads it, then loads referenced MTL files and resolves
 * textures relative to the scan's directory.
 *
 * Safe on untrusted input: every declared count is checked against the
 * bytes left and against struct limits before allocating.
 */
#ifndef REFSCAN_FORMATS_H
#define REFSCAN_FORMATS_H

#include <stddef.h>

#include "limits.h"
#include "scan.h"

struct err;

typedef int (*format_read_fn)(const unsigned char *buf, size_t len,
			      const struct limits *lim, struct scan *out,
			      struct err *e);

struct format {
	const char *name;  /* "ply", ... */
	const char *exts;  /* space-separated lower-case extensions, "ply" */
	/* 0 = not this format, higher = more certain (100 = magic matched) */
	int (*probe)(const unsigned char *buf, size_t len);
	format_read_fn read;
};

/* NULL-terminated table of readers. */
const struct format *const *format_table(void);

/*
 * Pick a reader for buf; ext (may be NULL, without the dot) breaks ties.
 * Returns NULL when nothing claims the data.
 */
const struct format *format_detect(const unsigned char *buf, size_t len,
				   const char *ext);

/* True when path's extension is one refscan reads (ply obj stl off ...). */
int format_is_scan_name(const char *path);

/*
 * Read a scan from memory, detecting the format.  name (may be NULL) is
 * only used for its extension.  On failure *out is released and e filled.
 * Does not load referenced files (see scan_read_file).
 */
int scan_read_buffer(const unsigned char *buf, size_t len, const char *name,
		     const struct limits *lim, struct scan *out, struct err *e);

/*
 * Read a scan file: map, detect, read, then resolve mtllib and texture
 * references relative to the file's directory (missing ones become
 * warnings).  lim may be NULL for defaults.  Returns 0 or a negative
 * enum errc with e->path set.  The caller releases *out with
 * scan_release() (also on failure, where it is already empty).
 */
int scan_read_file(const char *path, const struct limits *lim,
		   struct scan *out, struct err *e);

/*
 * Resolve a path referenced by a scan ('textures/skin.png') against the
 * directory of base_path.  Rejects absolute paths and any '..' component
 * (returns NULL).  Backslashes are treated as separators.  Returns a
 * malloc'd string the caller frees with xfree(), or NULL.
 */
char *format_resolve_ref(const char *base_path, const char *ref, size_t len);

/* Readers, each (buf, len, limits, out, err); see the per-format headers. */
int ply_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e);
int obj_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e);
int stl_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e);
int off_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e);
int pcd_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e);
int xyz_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e);

int ply_probe(const unsigned char *buf, size_t len);
int obj_probe(const unsigned char *buf, size_t len);
int stl_probe(const unsigned char *buf, size_t len);
int off_probe(const unsigned char *buf, size_t len);
int pcd_probe(const unsigned char *buf, size_t len);
int xyz_probe(const unsigned char *buf, size_t len);

/*
 * MTL: parse a material library and fill the materials of s that it
 * defines (by name; names not used by the OBJ are added too), adding
 * map_Kd textures as declared paths.  mtl_path is used only to resolve
 * textures relative to the MTL file.  Returns 0 or ERR_FORMAT/ERR_LIMIT.
 */
int mtl_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *s, struct err *e);

/*
 * Binary little-endian PLY writer: positions, and normals, colours, UVs
 * when present; faces as uchar-count int lists, with per-corner UVs as a
 * `texcoord` list and per-face colours when present; `comment
 * TextureFile` for each texture's declared path and `comment units mm`
 * when known.  Writes to path atomically (temp file in the same
 * directory, fsync, rename, fsync of the directory).  Returns 0, ERR_IO
 * (message keeps strerror, e->path set), ERR_NOMEM, or ERR_FORMAT /
 * ERR_LIMIT for a scan PLY cannot hold (a texture path with a line
 * break, more than INT32_MAX vertices).  Thread-safe for distinct paths.
 */
int ply_write(const char *path, const struct scan *s, struct err *e);

/* Same, to an open FILE (no atomic rename). */
int ply_write_stream(void *fp /* FILE * */, const struct scan *s,
		     struct err *e);

#endif
