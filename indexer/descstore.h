/*
 * descstore.h - descriptors in the archive: the describe step of
 * `refscan index`, stable reference ids, and the descriptor table at the
 * end of each per-version index file (docs/archive-format.md,
 * "Descriptors and the per-version index").
 *
 *   descriptor blob     describe_dim() little-endian float32s, schema
 *                       DESC_SCHEMA; stored content-addressed in the
 *                       volumes like any other blob, so an unchanged scan
 *                       keeps its blob and is never described again.
 *   reference id        the first 53 bits of SHA-256("refscan-ref\0" path),
 *                       so JSON readers that hold numbers as doubles keep
 *                       them exact.  The same path has the same id in
 *                       every version and every archive; a changed scan
 *                       keeps its id, a renamed one gets a new one.  Two
 *                       paths of one version with the same hash (about
 *                       one chance in 10^4 at a million scans) are told
 *                       apart by rehashing the later one (descstore_ids).
 *   versions/<V>.index  a FAISS index file (faiss_write_index) over every
 *                       live entry's descriptor, with ids as above,
 *                       followed by the descriptor table (ids, blob
 *                       digests, vectors; sorted by id) and a fixed
 *                       64-byte footer.  FAISS reads the file from the
 *                       start and stops at its own end, so the file is
 *                       also a plain FAISS index.
 *
 * Search (query/) builds the index through the build hook that the
 * program registers (descstore_set_builder): indexing never depends on
 * search, and search reads what this module writes.
 */
#ifndef REFSCAN_DESCSTORE_H
#define REFSCAN_DESCSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/sha256.h"

struct archive_dir;
struct err;
struct index_hooks;
struct manifest;
struct manifest_entry;
struct scan;

#define DESCSTORE_MAGIC "RSDTAB01"     /* 8 bytes, first of the footer */
#define DESCSTORE_FOOTER_LEN 64u
#define DESCSTORE_SCHEMA_MAX 24u       /* schema bytes in the footer, NUL-padded */

/* What precedes the table in the index file. */
enum descstore_kind {
	DESCSTORE_NONE = 0,   /* no FAISS index: the table only */
	DESCSTORE_EXACT = 1,  /* FAISS IDMap2,Flat: exact */
	DESCSTORE_ANN = 2     /* FAISS IVF (or graph): approximate */
};

#define DESCSTORE_ID_BITS 53

/*
 * The id a reference at archive path gets unless it collides (>= 0,
 * < 2^53).  Thread-safe.
 */
int64_t descstore_id(const char *path);

/* True when en has a descriptor of this refscan's schema (DESC_SCHEMA). */
bool descstore_has_desc(const struct manifest_entry *en);

/*
 * The id of every entry of m: ids[i] for m->entries[i], -1 for entries
 * without a current descriptor.  Distinct, and a pure function of the
 * set of described paths.  Returns 0, ERR_NOMEM.
 */
int descstore_ids(const struct manifest *m, int64_t *ids, struct err *e);

/* The descriptor table of one version. */
struct descstore_table {
	size_t n;                 /* rows */
	size_t dim;               /* floats per vector */
	int64_t *ids;             /* n, strictly ascending */
	unsigned char (*digests)[SHA256_LEN]; /* n descriptor blob digests */
	float *vecs;              /* n * dim, row-major */
	uint32_t kind;            /* enum descstore_kind */
	uint64_t faiss_bytes;     /* bytes of the FAISS index before the table */
	char schema[DESCSTORE_SCHEMA_MAX + 1]; /* descriptor schema of the rows */
};

void descstore_table_init(struct descstore_table *t);
/* Free what t owns; t is left as after init. */
void descstore_table_release(struct descstore_table *t);

/* Row of id, or SIZE_MAX (binary search). */
size_t descstore_table_find(const struct descstore_table *t, int64_t id);

/*
 * Append t (ids ascending) and the footer to the file at path, which
 * holds t->kind's FAISS index (or nothing, DESCSTORE_NONE), then fsync
 * it.  Returns 0, ERR_IO (strerror kept, e->path set), ERR_INTERNAL
 * (unsorted ids).
 */
int descstore_table_append(const char *path, const struct descstore_table *t,
			   struct err *e);

/*
 * Read the table at the end of the index file at path.  expect_dim > 0
 * checks the dimension.  Every size in the footer is checked against the
 * file's length before anything is allocated, and ids must be strictly
 * ascending, so this is safe on damaged files (the archive also checks
 * the file's SHA-256 before trusting the FAISS part).  Returns 0,
 * ERR_NOTFOUND, ERR_IO, ERR_FORMAT (no table, bad footer, unsorted),
 * ERR_VERSION (newer table format), ERR_NOMEM.  Release with
 * descstore_table_release().
 */
int descstore_table_read(const char *path, size_t expect_dim,
			 struct descstore_table *t, struct err *e);

/* ---- descriptor blobs ------------------------------------------------ */

/* Bytes of a DESC_SCHEMA descriptor blob. */
size_t descstore_blob_size(void);

/* v (describe_dim() floats) as little-endian bytes; out has blob_size. */
void descstore_encode(const float *v, unsigned char *out);
/* The inverse; returns ERR_FORMAT when len is wrong or a value is not finite. */
int descstore_decode(const unsigned char *buf, size_t len, float *v,
		     struct err *e);

/* ---- this run's descriptors ------------------------------------------ */

/*
 * Descriptors computed in this run, keyed by blob digest, so the build
 * hook finds them without reading the new volume back.  Thread-safe
 * (an OpenMP critical section guards put and find).
 */
struct descstore_cache {
	size_t n, cap;
	struct descstore_cached *items;
	size_t dim;               /* floats per vector */
	bool sorted;              /* items sorted by digest (descstore_collect) */
};

void descstore_cache_init(struct descstore_cache *c);
void descstore_cache_release(struct descstore_cache *c);
/* Copy v under digest d.  0 or ERR_NOMEM. */
int descstore_cache_put(struct descstore_cache *c,
			const unsigned char d[SHA256_LEN], const float *v);
/* Copy the vector of d into v; false when absent. */
bool descstore_cache_get(struct descstore_cache *c,
			 const unsigned char d[SHA256_LEN], float *v);

/*
 * The describe hook of `refscan index` (struct index_hooks.describe):
 * decodes the scan's textures (describe_load_textures; their warnings
 * join the entry's stats), describes it in the entry's units, records
 * the description ("descriptor": flags, extents in mm, area, colour
 * fraction) in en->stats, puts the vector into the cache ctx (a struct
 * descstore_cache) and returns the blob.  A scan too thin to describe
 * returns ERR_UNDESCRIBABLE with describe_scan()'s reason as e->msg
 * ("3 usable points, a descriptor needs 16") and no blob; its texture
 * warnings still join en->stats.  Any other failure returns its code
 * with "cannot describe: reason".  Thread-safe.
 */
int descstore_describe(void *ctx, struct scan *s, struct manifest_entry *en,
		       unsigned char **out, size_t *len, struct err *e);

/*
 * Gather the descriptor of every entry of m that has a DESC_SCHEMA
 * descriptor, into t (sorted by id): from the cache c (may be NULL),
 * else from prev (the previous version's table, may be NULL) when the
 * row's digest matches, else from the volumes (each volume streamed
 * once).  Every vector taken from prev or the volumes is checked against
 * its digest.  *n_skipped (may be NULL) counts entries without a current
 * descriptor.  Returns 0, ERR_CORRUPT (a damaged or missing blob),
 * ERR_INTERNAL (two paths with one id), ERR_NOMEM, ERR_IO.
 */
int descstore_collect(struct archive_dir *a, const struct manifest *m,
		      struct descstore_cache *c,
		      const struct descstore_table *prev,
		      struct descstore_table *t, size_t *n_skipped,
		      struct err *e);

/*
 * Read the table of version v's index file when it has one (any failure
 * leaves t empty: the caller falls back to the volumes).
 */
void descstore_table_read_version(struct archive_dir *a, uint64_t v,
				  struct descstore_table *t);

/* ---- hooks -------------------------------------------------------------- */

/*
 * Register the per-version index builder (refscan.c registers search's;
 * the signature is that of struct index_hooks.build_index).  Call once
 * at start-up, before any thread; NULL means no index file.  The builder
 * gets the run's struct descstore_cache as ctx.
 */
void descstore_set_builder(int (*fn)(void *ctx, struct archive_dir *a,
				     const struct manifest *m,
				     const char *tmp_path, const char **schema,
				     struct err *e));

/* The hooks `refscan index` and `refscan reindex` run with: c as ctx. */
void descstore_hooks(struct index_hooks *h, struct descstore_cache *c);

#endif
