/*
 * archive.h - the archive directory: HEAD, lock, versions, volumes, blob
 * lookup, crash-safe commits, and cleanup of an interrupted run's
 * leftovers.  The layout and the commit protocol are specified in
 * docs/archive-format.md; in short:
 *
 *   DIR/HEAD                    current version + live versions/volumes
 *   DIR/lock                    flock(2) target of the single writer
 *   DIR/versions/<V>.json       immutable manifests (8-digit V)
 *   DIR/versions/<V>.index      optional per-version index file
 *   DIR/volumes/<N>.tar.zst     pax tar + zstd blob volumes
 *   DIR/volumes/<N>.idx.json    the blobs each volume holds
 *   DIR/failures.json           cache of scans that failed (not versioned)
 *   DIR/tmp/                    files being written; emptied by writers
 *
 * Nothing outside HEAD's lists is part of the archive.  A writer makes
 * new files under tmp/, fsyncs them, renames them into place, and
 * switches HEAD last (rename + fsync of DIR), so a crash leaves HEAD at
 * the old state or the new one.  Readers never lock: they read HEAD,
 * then only files HEAD names, all of which are complete and immutable.
 *
 * The name prefix is archive_dir_ because libarchive owns struct archive.
 * One struct archive_dir per thread.
 */
#ifndef REFSCAN_ARCHIVE_H
#define REFSCAN_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../formats/manifest.h"
#include "../formats/volume.h"

struct err;

/* A blob's location, from the volume indexes. */
struct archive_blob {
	unsigned char digest[SHA256_LEN];
	uint64_t volume;  /* volume id */
	uint64_t size;    /* uncompressed bytes */
};

struct archive_dir {
	char *path;           /* the archive directory as given */
	int dirfd;            /* O_DIRECTORY descriptor of path */
	int lock_fd;          /* held flock, -1 when not the writer */
	struct head head;     /* as read by archive_dir_open/reload */
	bool have_head;       /* a HEAD file exists */
	size_t n_blobs;       /* catalogue of every live blob, sorted */
	struct archive_blob *blobs;
	bool blobs_loaded;
	size_t n_vols;        /* volume indexes behind the catalogue */
	struct volidx *vols;
	size_t n_published;   /* volumes this writer published, not yet in HEAD */
	uint64_t *published;  /* (in the catalogue, so hooks can read them) */
};

enum archive_dir_flags {
	ARCHIVE_DIR_CREATE = 1 << 0  /* make the directory and its layout */
};

/*
 * Where the archive is: opt (--archive) if given, else $REFSCAN_ARCHIVE,
 * else $XDG_DATA_HOME/refscan/archive, else ~/.local/share/refscan/archive.
 * Returns a string freed with xfree(), or NULL (out of memory or no HOME).
 */
char *archive_dir_default(const char *opt);

/*
 * Open the archive at path and read HEAD.  Without ARCHIVE_DIR_CREATE a
 * missing directory is ERR_NOTFOUND; an archive without HEAD is empty
 * (head.version 0).  A non-empty directory that is not an archive is
 * refused (ERR_FORMAT) so a wrong --archive never scatters files.
 * Release with archive_dir_release().
 */
int archive_dir_open(struct archive_dir *a, const char *path, unsigned flags,
		     struct err *e);
void archive_dir_release(struct archive_dir *a);

/*
 * For reader commands: open the archive named by opt (--archive) or the
 * defaults, printing any error.  Returns EXIT_OK or the exit status.
 */
int archive_dir_open_cli(struct archive_dir *a, const char *opt);

/* Re-read HEAD (and drop the blob catalogue). */
int archive_dir_reload(struct archive_dir *a, struct err *e);

/*
 * Become the single writer: flock(DIR/lock).  Without wait, a held lock
 * is ERR_BUSY at once, naming the holder's pid.  Re-reads HEAD once the
 * lock is held.  The lock is released by archive_dir_release().
 */
int archive_dir_lock(struct archive_dir *a, bool wait, struct err *e);

/*
 * Writer only: delete what an interrupted run left behind (tmp/ files,
 * versions and volumes HEAD does not list).  *n_removed counts them.
 */
int archive_dir_cleanup(struct archive_dir *a, size_t *n_removed,
			struct err *e);

/* Read and parse versions/<v>.json.  ERR_NOTFOUND if it is not there. */
int archive_dir_load_manifest(struct archive_dir *a, uint64_t v,
			      struct manifest *m, struct err *e);

/*
 * Like archive_dir_load_manifest(), for readers that hold no lock: when
 * the manifest has vanished because a prune removed the version meanwhile,
 * HEAD is re-read and the error says the version was pruned.
 */
int archive_dir_load_version(struct archive_dir *a, uint64_t v,
			     struct manifest *m, struct err *e);

/*
 * Parse a version argument: "N", "HEAD" or "HEAD~K" (K live versions
 * before HEAD).  ERR_NOTFOUND when no such live version, ERR_FORMAT for
 * a malformed argument.
 */
int archive_dir_parse_version(const struct archive_dir *a, const char *s,
			      uint64_t *v, struct err *e);

/* True when HEAD on disk differs from a->head (a writer committed). */
bool archive_dir_head_changed(struct archive_dir *a);

/* Load the index of every live volume into the blob catalogue (once). */
int archive_dir_load_blobs(struct archive_dir *a, struct err *e);

/* Location of a blob, or NULL.  Needs archive_dir_load_blobs(). */
const struct archive_blob *archive_dir_find_blob(const struct archive_dir *a,
						 const unsigned char d[SHA256_LEN]);

/* The loaded index of volume id, or NULL. */
const struct volidx *archive_dir_volidx(const struct archive_dir *a,
					uint64_t id);

/*
 * Path of a volume file ("DIR/volumes/00000003.tar.zst") or of a version
 * file (suffix ".json" / ".index") in buf.  Returns buf.
 */
char *archive_dir_volume_path(const struct archive_dir *a, uint64_t id,
			      char *buf, size_t n);
char *archive_dir_version_path(const struct archive_dir *a, uint64_t v,
			       const char *suffix, char *buf, size_t n);

/*
 * Read one blob into memory (at most max bytes, ERR_LIMIT otherwise),
 * checking its digest (ERR_CORRUPT).  Streams its volume from the start:
 * meant for small blobs such as descriptors.  *out is freed with xfree().
 */
int archive_dir_read_blob(struct archive_dir *a,
			  const unsigned char d[SHA256_LEN], uint64_t max,
			  unsigned char **out, size_t *len, struct err *e);

/* ---- writing (the lock must be held) -------------------------------- */

/* A new volume being written under tmp/. */
struct archive_volume_out {
	uint64_t id;
	int fd;
	char tmp[64];             /* name under tmp/ */
	struct volume_writer *w;
	struct volidx idx;        /* blobs written and verified so far */
	size_t cap;               /* capacity of idx.blobs */
	struct sha256 hash;       /* of the blob being streamed */
	unsigned char digest[SHA256_LEN]; /* its expected digest */
	uint64_t size;            /* its size */
};

/*
 * Start volume id (normally head.next_volume) under tmp/.  o may be NULL.
 * Discard with archive_dir_volume_discard() unless published.
 */
int archive_dir_volume_create(struct archive_dir *a, uint64_t id,
			      const struct volume_write_options *o,
			      struct archive_volume_out *vo, struct err *e);

/*
 * Copy size bytes from fd as blob d.  *stored is false when the bytes
 * read no longer hash to d (the file changed): the tar entry is then
 * left out of the volume index and must not be referenced.
 */
int archive_dir_volume_add_fd(struct archive_volume_out *vo,
			      const unsigned char d[SHA256_LEN], uint64_t size,
			      int fd, bool *stored, struct err *e);

/* Add a blob from memory (descriptors, blobs copied by prune). */
int archive_dir_volume_add_buffer(struct archive_volume_out *vo,
				  const unsigned char d[SHA256_LEN],
				  const void *buf, size_t len, struct err *e);

/* Stream a blob in pieces: begin, write..., end (digest checked at end). */
int archive_dir_volume_begin(struct archive_volume_out *vo,
			     const unsigned char d[SHA256_LEN], uint64_t size,
			     struct err *e);
int archive_dir_volume_write(struct archive_volume_out *vo, const void *buf,
			     size_t n, struct err *e);
int archive_dir_volume_end(struct archive_volume_out *vo, bool listed,
			   struct err *e);

/*
 * Finish, fsync, write the volume index, rename both into volumes/ and
 * fsync volumes/.  The volume's blobs join this writer's catalogue, but
 * the volume is part of the archive only once a HEAD naming it is
 * written (until then cleanup treats it as a leftover).
 */
int archive_dir_volume_publish(struct archive_dir *a,
			       struct archive_volume_out *vo, struct err *e);

/* Abandon an unpublished volume (removes its temporary file). */
void archive_dir_volume_discard(struct archive_dir *a,
				struct archive_volume_out *vo);

/*
 * Write buf to DIR/<subdir>/<name> crash-safely: tmp/ file, fsync,
 * rename, fsync of the directory.  fault_tag prefixes the fault steps
 * "<tag>-written" and "<tag>-renamed".
 */
int archive_dir_put_file(struct archive_dir *a, const char *subdir,
			 const char *name, const void *buf, size_t len,
			 const char *fault_tag, struct err *e);

/*
 * Move a file the caller wrote under tmp/ (tmp_name) into versions/ as
 * name, fsyncing both.  Used for the per-version index file.
 */
int archive_dir_put_tmp(struct archive_dir *a, const char *tmp_name,
			const char *name, struct err *e);

/* Path of a fresh file under tmp/ for the caller to write into. */
char *archive_dir_tmp_path(const struct archive_dir *a, const char *name,
			   char *buf, size_t n);

/* Write the manifest of version m->version (crash-safe, see put_file). */
int archive_dir_write_manifest(struct archive_dir *a, const struct manifest *m,
			       struct err *e);

/* Switch HEAD to h (crash-safe); a->head becomes a copy of h. */
int archive_dir_write_head(struct archive_dir *a, const struct head *h,
			   struct err *e);

#endif
