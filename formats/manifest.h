/*
 * manifest.h - the archive's JSON documents (docs/archive-format.md):
 *
 *   versions/<V>.json       one manifest per version (struct manifest)
 *   HEAD                    the current version and the live volumes (struct head)
 *   volumes/<N>.idx.json    the blobs a volume holds (struct volidx)
 *
 * Every document carries "format" (its kind) and "format_version"
 * "MAJOR.MINOR".  Readers accept any minor version of a major they know
 * (unknown keys are ignored) and refuse a newer major with ERR_VERSION.
 * Writers are deterministic: fixed key order, entries sorted by path,
 * blobs by digest, no wall-clock data besides the manifest's "created".
 *
 * The parsers are safe on untrusted input: every field is type-checked,
 * digests must be 64 hex digits, paths must pass volume_path_safe(),
 * entries must be sorted and unique.  Nothing here touches the disk.
 */
#ifndef REFSCAN_MANIFEST_H
#define REFSCAN_MANIFEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/sha256.h"

struct err;

#define MANIFEST_FORMAT_MAJOR 1
/*
 * Minor versions, by document: a 1.1 manifest may hold the entry key
 * "undescribable"; a 1.1 failure cache never lists a scan that reads
 * but cannot be described (failures_parse drops older caches).  HEAD,
 * volume indexes and the stat cache are 1.0.
 */
#define MANIFEST_FORMAT_MINOR 1
#define FAILURES_FORMAT_MINOR 1
#define OTHER_FORMAT_MINOR 0

/* A file stored with a scan: its MTL, a texture, or its sidecar. */
enum manifest_role {
	MANIFEST_ROLE_MTL = 0,
	MANIFEST_ROLE_TEXTURE,
	MANIFEST_ROLE_SIDECAR
};

struct manifest_file {
	char *path;                     /* archive path ("label/dir/skin.png") */
	enum manifest_role role;
	bool missing;                   /* declared by the scan, absent: no blob */
	unsigned char blob[SHA256_LEN]; /* content digest (unless missing) */
	uint64_t size;                  /* bytes */
	int64_t mtime_ns;               /* source mtime, ns since the epoch */
	uint64_t inode;                 /* source inode, for change detection */
	uint32_t mode;                  /* permission bits */
};

/*
 * Descriptor data for an entry, written by the describe step of
 * `refscan index` (indexer/index.h, struct index_hooks).  schema names
 * the layout of the blob's bytes ("refscan-desc-2", ...); NULL when the
 * entry has no descriptors yet.
 */
struct manifest_desc {
	char *schema;
	unsigned char blob[SHA256_LEN];
	uint64_t size;
};

/*
 * An entry whose scan reads fine but has too little geometry to
 * describe (too few usable points, no extent): it is stored and
 * restored like any other, has no descriptors and is left out of the
 * search index.  schema is the descriptor schema that found it so (the
 * scan is described again only when the scan or the schema changes);
 * NULL for every other entry.
 */
struct manifest_undesc {
	char *schema;
	char *reason;      /* "3 usable points, a descriptor needs 16" */
};

struct manifest_entry {
	char *path;        /* archive path of the scan, unique, sorted */
	char *source;      /* absolute source path at index time */
	char *format;      /* "ply", "obj", ... */
	unsigned char blob[SHA256_LEN];
	uint64_t size;
	int64_t mtime_ns;
	uint64_t inode;
	uint32_t mode;
	uint64_t since;    /* version that stored this content */
	size_t n_files;
	struct manifest_file *files; /* MTL, textures, sidecar */
	char *units;       /* "mm", "cm", ... */
	char *units_source; /* "sidecar", "file" or "default" */
	json_t *meta;      /* object: file comments + sidecar, owned reference */
	json_t *stats;     /* object: counts, bbox, warnings, owned reference */
	struct manifest_desc desc;     /* schema NULL: no descriptors */
	struct manifest_undesc undesc; /* schema set: cannot be described */
};

/* A scan that could not be stored in this run. */
struct manifest_failure {
	char *path;        /* archive path */
	char *source;
	char *code;        /* err_code_name() */
	char *message;
	uint64_t size;
	int64_t mtime_ns;
	uint64_t inode;
};

struct manifest_root {
	char *label;       /* first component of archive paths ("incoming") */
	char *source;      /* absolute source directory */
};

struct manifest_counts {
	uint64_t added, changed, removed, unchanged, touched, failed;
};

/* Optional per-version index file (versions/<V>.index), e.g. FAISS. */
struct manifest_index {
	char *file;        /* name inside versions/, NULL when none */
	char *schema;
	unsigned char sha256[SHA256_LEN];
	uint64_t size;
};

struct manifest {
	uint64_t version;  /* >= 1 */
	uint64_t parent;   /* previous version, 0 for the first */
	int64_t created;   /* unix seconds, UTC */
	char *tool;        /* "refscan 0.1.0" */
	char *default_units;
	size_t n_roots;
	struct manifest_root *roots;
	struct manifest_counts counts;
	uint64_t volume;   /* volume written by this version, 0 if none */
	uint64_t new_blobs, new_bytes;
	struct manifest_index index;
	size_t n_entries;
	struct manifest_entry *entries; /* sorted by path (strcmp), unique */
	size_t n_failed;
	struct manifest_failure *failed; /* sorted by path */
};

void manifest_init(struct manifest *m);
/* Free everything m owns; m is left as after manifest_init(). */
void manifest_release(struct manifest *m);
void manifest_entry_release(struct manifest_entry *en);
void manifest_failure_release(struct manifest_failure *f);
/* Deep copy of an entry (meta/stats shared by reference).  0 or ERR_NOMEM. */
int manifest_entry_copy(struct manifest_entry *dst,
			const struct manifest_entry *src, struct err *e);

/*
 * Parse a manifest.  On failure *m is released and e says which field
 * of which entry is wrong; ERR_VERSION for a newer major format.
 */
int manifest_parse(const char *buf, size_t len, struct manifest *m,
		   struct err *e);

/*
 * Serialise m (entries must already be sorted and unique) into a new
 * NUL-terminated buffer *out of *len bytes; free it with xfree().
 * Returns 0, ERR_NOMEM, or ERR_INTERNAL for unsorted entries.
 */
int manifest_dump(const struct manifest *m, char **out, size_t *len,
		  struct err *e);

/* Entry with this path, or NULL (binary search).  Borrowed. */
const struct manifest_entry *manifest_find(const struct manifest *m,
					   const char *path);

/* "mtl", "texture", "sidecar". */
const char *manifest_role_name(enum manifest_role r);

/*
 * failures.json: the scans that failed, with the source stat they had,
 * so an unchanged broken file is not read again every night.  A cache,
 * not part of any version: losing it only means re-reading.
 * *out (n entries, sorted by path) is freed with failures_free().
 * A cache older than 1.1 parses as empty: it may list scans that failed
 * only because they could not be described, which are now stored.
 */
int failures_parse(const char *buf, size_t len, struct manifest_failure **out,
		   size_t *n, struct err *e);
int failures_dump(const struct manifest_failure *f, size_t n, char **out,
		  size_t *len, struct err *e);
void failures_free(struct manifest_failure *f, size_t n);

/*
 * statcache.json: for each entry of a version, only what change
 * detection needs (path, stat of the scan and of its files, descriptor
 * schema), so that an unchanged tree is recognised without parsing the
 * full manifest.  A cache: valid only when its "version" is HEAD's.
 * statcache_parse fills m->entries (blob digests zero, meta/stats NULL)
 * and *version; statcache_dump writes m's entries under version.  The
 * schema is the one the entry was last described with, whether that gave
 * descriptors or found the scan undescribable: it is written from
 * desc.schema, else undesc.schema, and read back into desc.schema.
 */
int statcache_parse(const char *buf, size_t len, uint64_t *version,
		    struct manifest *m, struct err *e);
int statcache_dump(const struct manifest *m, uint64_t version, char **out,
		   size_t *len, struct err *e);

/* ---- HEAD ---------------------------------------------------------- */

struct head {
	uint64_t version;     /* current version, 0 = no version yet */
	size_t n_versions;
	uint64_t *versions;   /* live versions, ascending; last == version */
	size_t n_volumes;
	uint64_t *volumes;    /* live volume ids, ascending */
	uint64_t next_volume; /* id for the next volume written, > all ids */
};

void head_init(struct head *h);
void head_release(struct head *h);
int head_parse(const char *buf, size_t len, struct head *h, struct err *e);
/* Serialise into a NUL-terminated buffer freed with xfree(). */
int head_dump(const struct head *h, char **out, size_t *len, struct err *e);
bool head_has_version(const struct head *h, uint64_t v);
/* Deep copy (dst is overwritten, not released).  0 or ERR_NOMEM. */
int head_copy(struct head *dst, const struct head *src, struct err *e);
/* Insert v / id keeping the list ascending.  0 or ERR_NOMEM. */
int head_add_version(struct head *h, uint64_t v, struct err *e);
int head_add_volume(struct head *h, uint64_t id, struct err *e);
bool head_has_volume(const struct head *h, uint64_t id);

/* ---- volume index -------------------------------------------------- */

struct volidx_blob {
	unsigned char digest[SHA256_LEN];
	uint64_t size;     /* uncompressed bytes */
};

struct volidx {
	uint64_t volume;   /* id */
	uint64_t size;     /* bytes of the .tar.zst file */
	unsigned char sha256[SHA256_LEN]; /* of the .tar.zst file */
	uint64_t n_unlisted; /* tar entries deliberately not listed */
	size_t n_blobs;
	struct volidx_blob *blobs; /* sorted by digest, unique */
};

void volidx_init(struct volidx *v);
void volidx_release(struct volidx *v);
int volidx_parse(const char *buf, size_t len, struct volidx *v, struct err *e);
int volidx_dump(const struct volidx *v, char **out, size_t *len, struct err *e);

#endif
