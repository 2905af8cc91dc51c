/*
 * volume.h - the archive's volumes: pax tar + zstd files of
 * content-addressed blobs (docs/archive-format.md, "Volumes").
 *
 * A volume is an ordinary tar archive (POSIX.1-2001 pax interchange
 * format, https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html)
 * compressed as one zstd stream (RFC 8878), so `tar --zstd -tf` lists it
 * and `tar --zstd -xf` unpacks it.  Every entry is a regular file named
 *
 *     blobs/<first two hex digits>/<64 hex digits of its SHA-256>
 *
 * with mode 0644, mtime 0, uid/gid 0 and no user or group names, written
 * in strictly increasing digest order: the same blobs always give the
 * same bytes.  pax extended headers appear only when an entry needs one
 * (a blob of 8 GiB or more).
 *
 * This file is the only place in refscan that talks to libarchive: the
 * writer, the reader, and secure extraction to disk.
 */
#ifndef REFSCAN_VOLUME_H
#define REFSCAN_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/sha256.h"

struct err;

/* "blobs/ab/<64 hex>" + NUL */
#define VOLUME_BLOB_NAME_LEN (6 + 3 + SHA256_HEX_LEN + 1)

/* Write the tar entry name of a blob into name[VOLUME_BLOB_NAME_LEN]. */
void volume_blob_name(const unsigned char digest[SHA256_LEN],
		      char name[VOLUME_BLOB_NAME_LEN]);

/*
 * Parse a tar entry name as a blob name.  True (digest filled) only for
 * exactly "blobs/xx/<64 lower-case hex>" whose xx repeats the first two
 * digits.  Safe on untrusted input.
 */
bool volume_parse_blob_name(const char *name, unsigned char digest[SHA256_LEN]);

/* ---- writing ------------------------------------------------------- */

struct volume_writer;

struct volume_write_options {
	int level;   /* zstd level 1..19; 0 = default (3) */
	int threads; /* zstd worker threads; 0 = compress in the caller.  Any
		      * value >= 1 gives the same bytes (zstd's multi-threaded
		      * format does not depend on the worker count); 0 differs */
};

/* What a finished volume is: filled by volume_writer_finish(). */
struct volume_info {
	uint64_t size;                   /* compressed bytes written */
	unsigned char sha256[SHA256_LEN]; /* of those bytes */
	uint64_t n_blobs;
	uint64_t blob_bytes;             /* uncompressed payload */
};

/*
 * Start a volume on fd (an empty file opened for writing, owned by the
 * caller, who fsyncs and closes it after volume_writer_finish()).  o may
 * be NULL for defaults.  Returns 0 or ERR_NOMEM/ERR_IO.  Free with
 * volume_writer_free().  Not thread-safe: one writer, one thread.
 */
int volume_writer_open(struct volume_writer **wp, int fd,
		       const struct volume_write_options *o, struct err *e);

/*
 * Begin a blob entry of size bytes.  Digests must come in strictly
 * increasing order (ERR_INTERNAL otherwise: it keeps volumes
 * deterministic and free of duplicates).
 */
int volume_writer_begin(struct volume_writer *w,
			const unsigned char digest[SHA256_LEN], uint64_t size,
			struct err *e);
/* Append payload to the current entry (never more than its size). */
int volume_writer_write(struct volume_writer *w, const void *buf, size_t n,
			struct err *e);
/* End the entry; ERR_INTERNAL if fewer bytes than its size were written. */
int volume_writer_end(struct volume_writer *w, struct err *e);

/*
 * Copy exactly size bytes from fd as the blob named digest, hashing what
 * is copied into got.  A file that shrank is padded with zeros and one
 * that grew is cut at size, so the tar stays valid; either way got then
 * differs from digest and the caller must not list the blob (see
 * docs/archive-format.md, "Files that change while being archived").
 * Returns 0 or ERR_IO/ERR_NOMEM (the volume is then unusable).
 */
int volume_writer_add_fd(struct volume_writer *w,
			 const unsigned char digest[SHA256_LEN], uint64_t size,
			 int fd, unsigned char got[SHA256_LEN], struct err *e);

/* Flush the tar end and the zstd frame; fill *info.  fd stays open. */
int volume_writer_finish(struct volume_writer *w, struct volume_info *info,
			 struct err *e);

/* Free (after finish, or to abandon a half-written volume).  NULL-safe. */
void volume_writer_free(struct volume_writer **wp);

/* ---- reading ------------------------------------------------------- */

struct volume_reader;

struct volume_entry {
	const char *name;  /* tar entry name; valid until the next call */
	bool is_blob;      /* regular file with a well-formed blob name */
	unsigned char digest[SHA256_LEN]; /* from the name when is_blob */
	uint64_t size;     /* declared payload size */
	uint64_t index;    /* 0-based position of the entry in the volume */
};

/*
 * Open a volume for sequential reading.  Returns 0, ERR_NOTFOUND, ERR_IO
 * or ERR_FORMAT (not a zstd-compressed tar).  Safe on untrusted input.
 * Free with volume_reader_free().
 */
int volume_reader_open(struct volume_reader **rp, const char *path,
		       struct err *e);

/*
 * Move to the next entry (skipping unread payload).  Returns 1 with *ent
 * filled, 0 at the end of the volume, or ERR_CORRUPT/ERR_IO when the
 * volume is damaged (e names the volume and the entry position).
 */
int volume_reader_next(struct volume_reader *r, struct volume_entry *ent,
		       struct err *e);

/*
 * Read up to n payload bytes of the current entry; *got = 0 at its end.
 * Returns 0 or ERR_CORRUPT/ERR_IO.
 */
int volume_reader_read(struct volume_reader *r, void *buf, size_t n,
		       size_t *got, struct err *e);

/*
 * Read the rest of the current entry, hashing it into got and counting
 * its bytes into *n_read.  Returns 0 or ERR_CORRUPT/ERR_IO.
 */
int volume_reader_hash(struct volume_reader *r, unsigned char got[SHA256_LEN],
		       uint64_t *n_read, struct err *e);

void volume_reader_free(struct volume_reader **rp);

/* ---- secure extraction --------------------------------------------- */

/*
 * True when path may be written below a destination directory: relative,
 * non-empty, at most 4095 bytes, '/'-separated components that are not
 * empty, "." or "..", and no NUL or backslash.  Safe on untrusted input.
 */
bool volume_path_safe(const char *path);

struct volume_disk;

/*
 * Write files below the current working directory through libarchive's
 * disk writer with ARCHIVE_EXTRACT_SECURE_NODOTDOT,
 * ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS and ARCHIVE_EXTRACT_SECURE_SYMLINKS
 * (never through a symlink already on disk), plus volume_path_safe().
 * Missing parent directories are created.  Free with volume_disk_free().
 */
int volume_disk_open(struct volume_disk **dp, struct err *e);

/*
 * Begin the regular file relpath (replacing a file already there) with
 * size bytes, permission bits mode & 0777 (less the umask) and the given
 * modification time.  ERR_FORMAT when relpath is unsafe or libarchive
 * refuses it (e.g. a symlink on the way).
 */
int volume_disk_begin(struct volume_disk *d, const char *relpath,
		      uint64_t size, unsigned mode, int64_t mtime_ns,
		      struct err *e);
int volume_disk_write(struct volume_disk *d, const void *buf, size_t n,
		      struct err *e);
/* Finish the file (sets its time).  Returns 0 or ERR_IO. */
int volume_disk_end(struct volume_disk *d, struct err *e);

void volume_disk_free(struct volume_disk **dp);

#endif
