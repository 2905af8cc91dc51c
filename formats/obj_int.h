/*
 * obj_int.h - internals shared by the OBJ and MTL readers (obj.c, mtl.c)
 * and their tests: the logical-line scanner (backslash continuations),
 * a name -> material index table, and the chunked reader entry point.
 */
#ifndef REFSCAN_OBJ_INT_H
#define REFSCAN_OBJ_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"
#include "scan.h"

struct err;

/*
 * Most distinct materials one scan may name (usemtl + newmtl).  Real scans
 * use a handful; the cap keeps hostile files from making the material
 * table (searched linearly by scan_material_intern) quadratic.
 */
#define OBJ_MAX_MATERIALS 4096u

/* Default bytes per chunk of the parallel OBJ reader. */
#define OBJ_CHUNK_BYTES ((size_t)4 << 20)

/*
 * Logical lines of an OBJ/MTL buffer.  A physical line ending in '\'
 * continues on the next one (Wavefront spec, any statement, comments
 * too); such a line is copied, with each "\\\n" turned into a blank, into
 * *join (owned by the caller, grown as needed, reused).  Every other line
 * is returned in place.  A trailing '\r' is dropped.
 */
struct obj_lines {
	const char *p;   /* next unread byte */
	const char *end; /* one past the last byte */
	long line;       /* 1-based number of the next physical line */
	size_t max_len;  /* limit on one line, physical or joined */
	char *join;      /* scratch for joined lines; xfree() when done */
	size_t join_cap; /* bytes */
};

/*
 * Next logical line into [*ls, *le) and its first line number *lno.
 * Returns 1, 0 at the end, or ERR_LIMIT (line too long) / ERR_NOMEM with
 * e filled (e->line set).  [*ls, *le) is valid until the next call.
 */
int obj_next_line(struct obj_lines *L, const char **ls, const char **le,
		  long *lno, struct err *e);

/*
 * Why a buffer cannot be OBJ/MTL text: returns 0 when it is plain text,
 * else ERR_UNSUPPORTED (UTF-16, CR-only line ends) or ERR_FORMAT (binary,
 * a NUL byte) with e filled.  Trailing NUL padding is not an error: *len is cut before it
 * and *padding says how many bytes were dropped.
 */
int obj_check_text(const unsigned char *buf, size_t *len, size_t *padding,
		   struct err *e);

/* Name -> material index, so usemtl/newmtl lookups are O(1). */
struct mtl_names {
	int32_t *slots; /* material index, -1 when empty */
	size_t cap;     /* power of two */
	size_t used;
};

/* Index the materials s already has.  Returns 0 or ERR_NOMEM. */
int mtl_names_init(struct mtl_names *m, const struct scan *s);
void mtl_names_release(struct mtl_names *m);

/*
 * Index of material name[0..len) in s, adding it (scan_material_intern)
 * when new.  Returns the index, ERR_NOMEM, or ERR_LIMIT past
 * OBJ_MAX_MATERIALS (e filled).
 */
int32_t mtl_names_intern(struct mtl_names *m, struct scan *s, const char *name,
			 size_t len, struct err *e);

/*
 * obj_read() with chunks of about chunk_bytes (0 = OBJ_CHUNK_BYTES), so
 * tests can check that any split gives the same scan.
 */
int obj_read_chunked(const unsigned char *buf, size_t len,
		     const struct limits *lim, struct scan *out, struct err *e,
		     size_t chunk_bytes);

#endif
