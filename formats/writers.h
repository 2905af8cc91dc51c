/*
 * writers.h - OBJ, MTL and STL writers, and the atomic output file they
 * share.
 *
 * Writers take a finished struct scan (indices < n_vertices, as every
 * reader leaves it) and write every attribute the format can hold.  The
 * path forms write to a temporary file beside the target, fsync it and
 * rename it over the target, so a crash or a full disk never leaves a
 * half-written scan under the real name.  Every write is checked: a
 * failure is ERR_IO with strerror kept and the temporary file removed.
 * The _stream forms write to an open FILE (no rename; the caller closes).
 *
 * Numbers: positions with 9 significant digits (a float round-trips
 * exactly), normals 7, UVs 7, colours as 0..1 with 6 (round-trips 8-bit).
 * Thread-safe on distinct paths.
 */
#ifndef REFSCAN_WRITERS_H
#define REFSCAN_WRITERS_H

#include <stdio.h>

struct err;
struct scan;

/*
 * An output file written atomically: data goes to `tmp` (created next to
 * `path` with O_EXCL, so the umask applies as for any new file) and
 * wfile_commit() flushes, fsyncs and renames it to `path`.
 */
struct wfile {
	FILE *fp;     /* write here; 1 MiB buffer */
	char *tmp;    /* temporary path, owned */
	char *path;   /* final path, owned */
};

/*
 * Create the temporary file for path.  Refuses a path that exists and is
 * not a regular file (a device, a directory).  Returns 0, ERR_IO (e names
 * path, keeps strerror) or ERR_NOMEM.  On failure nothing is left behind
 * and w needs no release.
 */
int wfile_open(struct wfile *w, const char *path, struct err *e);

/*
 * Flush, check the stream for earlier write errors, fsync, close and
 * rename over the final path (then fsync its folder).  Returns 0 or
 * ERR_IO; on failure the temporary file is removed.  Either way w is
 * released.
 */
int wfile_commit(struct wfile *w, struct err *e);

/* Close and remove the temporary file; w is released.  Safe after commit. */
void wfile_abort(struct wfile *w);

/*
 * Wavefront OBJ: `# units mm` (when units are known), `mtllib mtl_name`
 * when mtl_name is non-NULL, `v x y z` (`v x y z r g b` with vertex
 * colours, the common extension), `vt` from corner_uvs or else uvs, `vn`
 * from normals, `usemtl` whenever the face material changes (the first
 * material for every face when face_material is NULL), and `f v/vt/vn`
 * with 1-based indices.  A scan without faces is written as bare vertices.
 * Returns 0, ERR_IO, ERR_FORMAT (an index out of range, naming the face)
 * or ERR_NOMEM.
 */
int obj_write(const char *path, const struct scan *s, const char *mtl_name,
	      struct err *e);
int obj_write_stream(FILE *fp, const struct scan *s, const char *mtl_name,
		     struct err *e);

/*
 * Material library for s: one `newmtl` per material with Kd and, when the
 * material has a texture, `map_Kd` with the texture's declared path.
 * Returns 0 or ERR_IO.
 */
int mtl_write(const char *path, const struct scan *s, struct err *e);
int mtl_write_stream(FILE *fp, const struct scan *s, struct err *e);

/*
 * STL, binary (ascii = 0: 80-byte header that does not start with
 * "solid", little-endian uint32 count, 50 bytes per triangle with its unit
 * normal computed from the positions, attribute 0) or ascii (ascii != 0:
 * `solid refscan` ... `endsolid refscan`).  STL holds only geometry:
 * colours, UVs and materials are not written.  Returns 0, ERR_IO,
 * ERR_FORMAT (an index out of range), ERR_LIMIT (more than 2^32-1
 * triangles in binary) or ERR_UNSUPPORTED (a point cloud with points:
 * STL has no way to store them).
 */
int stl_write(const char *path, const struct scan *s, int ascii,
	      struct err *e);
int stl_write_stream(FILE *fp, const struct scan *s, int ascii,
		     struct err *e);

#endif
