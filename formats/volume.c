/*
 * volume.c - pax tar + zstd volumes of content-addressed blobs, through
 * libarchive (see volume.h and docs/archive-format.md).
 *
 * Invariants of a written volume: entries in strictly increasing digest
 * order, each a regular file "blobs/xx/<hex>" with fixed metadata, so
 * the bytes depend only on the blobs.  The writer hashes the compressed
 * stream as it leaves libarchive, so the volume's own SHA-256 costs no
 * second read.
 */
#include "volume.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/banned.h"

#define COPY_CHUNK ((size_t)1 << 20)

void volume_blob_name(const unsigned char digest[SHA256_LEN],
		      char name[VOLUME_BLOB_NAME_LEN])
{
	char hex[SHA256_HEX_LEN + 1];
	sha256_to_hex(digest, hex);
	snprintf(name, VOLUME_BLOB_NAME_LEN, "blobs/%c%c/%s", hex[0], hex[1], hex);
}

bool volume_parse_blob_name(const char *name, unsigned char digest[SHA256_LEN])
{
	if (!name || strncmp(name, "blobs/", 6) != 0)
		return false;
	const char *p = name + 6;
	if (!p[0] || !p[1] || p[2] != '/')
		return false;
	const char *hex = p + 3;
	if (!sha256_hex_valid(hex))
		return false;
	if (hex[0] != p[0] || hex[1] != p[1])
		return false;
	return sha256_from_hex(hex, SHA256_HEX_LEN, digest);
}

/* libarchive's message for handle a, or a fallback. */
static const char *aerr(struct archive *a)
{
	const char *s = a ? archive_error_string(a) : NULL;
	return s ? s : "unknown libarchive error";
}

static int aerr_code(struct archive *a)
{
	int n = archive_errno(a);
	if (n == ENOMEM)
		return ERR_NOMEM;
	if (n == EIO || n == ENOSPC || n == EDQUOT || n == EBADF || n == EROFS)
		return ERR_IO;
	return ERR_CORRUPT;
}

/* ---- writing ------------------------------------------------------- */

struct volume_writer {
	struct archive *a;
	int fd;
	struct sha256 vol_hash;        /* of the compressed bytes */
	uint64_t vol_size;             /* compressed bytes written */
	int write_errno;               /* errno of a failed write(2), 0 if none */
	bool in_entry;
	uint64_t entry_size, entry_done;
	bool have_last;
	unsigned char last[SHA256_LEN]; /* digest of the previous entry */
	uint64_t n_blobs, blob_bytes;
	unsigned char *buf;            /* COPY_CHUNK scratch for add_fd */
};

static la_ssize_t write_cb(struct archive *a, void *ctx, const void *buf,
			   size_t n)
{
	struct volume_writer *w = ctx;
	const unsigned char *p = buf;
	size_t left = n;
	while (left) {
		ssize_t k = write(w->fd, p, left);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			w->write_errno = errno;
			archive_set_error(a, errno, "cannot write volume: %s",
					  strerror(errno));
			return -1;
		}
		p += k;
		left -= (size_t)k;
	}
	if (sha256_update(&w->vol_hash, buf, n, NULL) < 0) {
		archive_set_error(a, EINVAL, "sha-256 update failed");
		return -1;
	}
	w->vol_size += n;
	return (la_ssize_t)n;
}

int volume_writer_open(struct volume_writer **wp, int fd,
		       const struct volume_write_options *o, struct err *e)
{
	struct volume_writer *w;
	char opt[32];
	int rc = 0;

	*wp = NULL;
	w = xcalloc(1, sizeof(*w));
	if (!w)
		return err_set(e, ERR_NOMEM, "out of memory opening a volume");
	w->fd = fd;
	if ((rc = sha256_init(&w->vol_hash, e)) < 0)
		goto out;
	w->buf = xmalloc(COPY_CHUNK);
	w->a = archive_write_new();
	if (!w->buf || !w->a) {
		rc = err_set(e, ERR_NOMEM, "out of memory opening a volume");
		goto out;
	}
	if (archive_write_set_format_pax(w->a) != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(w->a) != ARCHIVE_OK) {
		rc = err_set(e, ERR_INTERNAL, "libarchive cannot write pax + zstd: %s",
			     aerr(w->a));
		goto out;
	}
	snprintf(opt, sizeof(opt), "%d", o && o->level > 0 ? o->level : 3);
	if (archive_write_set_filter_option(w->a, "zstd", "compression-level", opt) != ARCHIVE_OK) {
		rc = err_set(e, ERR_INTERNAL, "zstd level %s refused: %s", opt, aerr(w->a));
		goto out;
	}
	if (o && o->threads > 0) {
		snprintf(opt, sizeof(opt), "%d", o->threads);
		/* older libarchive lacks the option: compress in this thread */
		archive_write_set_filter_option(w->a, "zstd", "threads", opt);
	}
	/*
	 * Hand the file 1 MiB at a time (libarchive's default is 10 KiB, one
	 * system call each), and add no padding after the zstd frame: the
	 * tar inside is padded already.
	 */
	archive_write_set_bytes_per_block(w->a, 1 << 20);
	archive_write_set_bytes_in_last_block(w->a, 1);
	if (archive_write_open2(w->a, w, NULL, write_cb, NULL, NULL) != ARCHIVE_OK) {
		rc = err_set(e, ERR_IO, "cannot start volume: %s", aerr(w->a));
		goto out;
	}
	*wp = w;
out:
	if (rc < 0)
		volume_writer_free(&w);
	return rc;
}

int volume_writer_begin(struct volume_writer *w,
			const unsigned char digest[SHA256_LEN], uint64_t size,
			struct err *e)
{
	char name[VOLUME_BLOB_NAME_LEN];
	struct archive_entry *ent;
	int rc = 0;

	if (w->in_entry)
		return err_set(e, ERR_INTERNAL, "volume entry begun inside another");
	if (w->have_last && memcmp(digest, w->last, SHA256_LEN) <= 0)
		return err_set(e, ERR_INTERNAL, "volume blobs out of order or repeated");
	if (size > (uint64_t)INT64_MAX)
		return err_set(e, ERR_LIMIT, "blob of %llu bytes is too large",
			       (unsigned long long)size);
	volume_blob_name(digest, name);
	ent = archive_entry_new();
	if (!ent)
		return err_set(e, ERR_NOMEM, "out of memory writing a volume entry");
	archive_entry_set_pathname(ent, name);
	archive_entry_set_filetype(ent, AE_IFREG);
	archive_entry_set_perm(ent, 0644);
	archive_entry_set_size(ent, (la_int64_t)size);
	archive_entry_set_mtime(ent, 0, 0);
	archive_entry_set_uid(ent, 0);
	archive_entry_set_gid(ent, 0);
	if (archive_write_header(w->a, ent) != ARCHIVE_OK)
		rc = err_set(e, aerr_code(w->a) == ERR_CORRUPT ? ERR_IO : aerr_code(w->a),
			     "cannot write volume entry '%s': %s", name, aerr(w->a));
	archive_entry_free(ent);
	if (rc < 0)
		return rc;
	memcpy(w->last, digest, SHA256_LEN);
	w->have_last = true;
	w->in_entry = true;
	w->entry_size = size;
	w->entry_done = 0;
	return 0;
}

int volume_writer_write(struct volume_writer *w, const void *buf, size_t n,
			struct err *e)
{
	if (!w->in_entry)
		return err_set(e, ERR_INTERNAL, "volume data written outside an entry");
	if (n > w->entry_size - w->entry_done)
		return err_set(e, ERR_INTERNAL, "volume entry overflows its size");
	const char *p = buf;
	while (n) {
		la_ssize_t k = archive_write_data(w->a, p, n);
		if (k <= 0)
			return err_set(e, ERR_IO, "cannot write volume data: %s", aerr(w->a));
		p += k;
		n -= (size_t)k;
		w->entry_done += (uint64_t)k;
	}
	return 0;
}

int volume_writer_end(struct volume_writer *w, struct err *e)
{
	if (!w->in_entry)
		return err_set(e, ERR_INTERNAL, "volume entry ended twice");
	if (w->entry_done != w->entry_size)
		return err_set(e, ERR_INTERNAL, "volume entry short by %llu bytes",
			       (unsigned long long)(w->entry_size - w->entry_done));
	if (archive_write_finish_entry(w->a) != ARCHIVE_OK)
		return err_set(e, ERR_IO, "cannot finish volume entry: %s", aerr(w->a));
	w->in_entry = false;
	w->n_blobs++;
	w->blob_bytes += w->entry_size;
	return 0;
}

int volume_writer_add_fd(struct volume_writer *w,
			 const unsigned char digest[SHA256_LEN], uint64_t size,
			 int fd, unsigned char got[SHA256_LEN], struct err *e)
{
	struct sha256 h = { NULL };
	uint64_t left = size;
	int rc;

	if ((rc = volume_writer_begin(w, digest, size, e)) < 0)
		return rc;
	if ((rc = sha256_init(&h, e)) < 0)
		return rc;
	while (left) {
		size_t want = left < COPY_CHUNK ? (size_t)left : COPY_CHUNK;
		ssize_t k = read(fd, w->buf, want);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			rc = err_set_errno(e, ERR_IO, "cannot read");
			goto out;
		}
		if (k == 0) {
			/* the file shrank: pad so the tar stays well-formed */
			memset(w->buf, 0, want);
			k = (ssize_t)want;
		}
		if ((rc = sha256_update(&h, w->buf, (size_t)k, e)) < 0 ||
		    (rc = volume_writer_write(w, w->buf, (size_t)k, e)) < 0)
			goto out;
		left -= (uint64_t)k;
	}
	/* one more byte means the file grew: make the digest differ */
	unsigned char extra;
	ssize_t k;
	do
		k = read(fd, &extra, 1);
	while (k < 0 && errno == EINTR);
	if (k > 0 && (rc = sha256_update(&h, &extra, 1, e)) < 0)
		goto out;
	if ((rc = sha256_final(&h, got, e)) < 0)
		goto out;
	rc = volume_writer_end(w, e);
out:
	sha256_release(&h);
	return rc;
}

int volume_writer_finish(struct volume_writer *w, struct volume_info *info,
			 struct err *e)
{
	if (w->in_entry)
		return err_set(e, ERR_INTERNAL, "volume finished inside an entry");
	if (archive_write_close(w->a) != ARCHIVE_OK)
		return err_set(e, ERR_IO, "cannot finish volume: %s", aerr(w->a));
	if (w->write_errno)
		return err_set(e, ERR_IO, "cannot write volume: %s", strerror(w->write_errno));
	info->size = w->vol_size;
	info->n_blobs = w->n_blobs;
	info->blob_bytes = w->blob_bytes;
	return sha256_final(&w->vol_hash, info->sha256, e);
}

void volume_writer_free(struct volume_writer **wp)
{
	struct volume_writer *w = wp ? *wp : NULL;
	if (!w)
		return;
	if (w->a)
		archive_write_free(w->a);
	sha256_release(&w->vol_hash);
	xfree(w->buf);
	xfree(w);
	*wp = NULL;
}

/* ---- reading ------------------------------------------------------- */

struct volume_reader {
	struct archive *a;
	int fd;
	char *path;
	uint64_t next_index;
	bool in_entry;
	unsigned char *buf;
};

int volume_reader_open(struct volume_reader **rp, const char *path,
		       struct err *e)
{
	struct volume_reader *r;
	int rc = 0;

	*rp = NULL;
	err_set_path(e, path);
	r = xcalloc(1, sizeof(*r));
	if (!r)
		return err_set(e, ERR_NOMEM, "out of memory opening a volume");
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		rc = err_set_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "cannot open");
		goto out;
	}
	r->path = xstrdup(path);
	r->buf = xmalloc(COPY_CHUNK);
	r->a = archive_read_new();
	if (!r->path || !r->buf || !r->a) {
		rc = err_set(e, ERR_NOMEM, "out of memory opening a volume");
		goto out;
	}
	archive_read_support_filter_zstd(r->a);
	archive_read_support_format_tar(r->a);
	if (archive_read_open_fd(r->a, r->fd, 1 << 16) != ARCHIVE_OK) {
		rc = err_set(e, ERR_FORMAT, "not a tar + zstd volume: %s", aerr(r->a));
		goto out;
	}
	*rp = r;
out:
	if (rc < 0)
		volume_reader_free(&r);
	return rc;
}

int volume_reader_next(struct volume_reader *r, struct volume_entry *ent,
		       struct err *e)
{
	struct archive_entry *ae;
	int ar;

	err_set_path(e, r->path);
	r->in_entry = false;
	ar = archive_read_next_header(r->a, &ae);
	if (ar == ARCHIVE_EOF)
		return 0;
	if (ar < ARCHIVE_WARN)
		return err_set(e, aerr_code(r->a), "entry %llu: %s",
			       (unsigned long long)r->next_index, aerr(r->a));
	const char *name = archive_entry_pathname(ae);
	la_int64_t sz = archive_entry_size(ae);
	ent->name = name ? name : "";
	ent->size = sz > 0 ? (uint64_t)sz : 0;
	ent->index = r->next_index++;
	ent->is_blob = archive_entry_filetype(ae) == AE_IFREG &&
		       volume_parse_blob_name(ent->name, ent->digest);
	if (!ent->is_blob)
		memset(ent->digest, 0, SHA256_LEN);
	r->in_entry = true;
	return 1;
}

int volume_reader_read(struct volume_reader *r, void *buf, size_t n,
		       size_t *got, struct err *e)
{
	*got = 0;
	if (!r->in_entry)
		return 0;
	la_ssize_t k = archive_read_data(r->a, buf, n);
	if (k < 0) {
		err_set_path(e, r->path);
		return err_set(e, aerr_code(r->a), "entry %llu: %s",
			       (unsigned long long)(r->next_index - 1), aerr(r->a));
	}
	*got = (size_t)k;
	return 0;
}

int volume_reader_hash(struct volume_reader *r, unsigned char got[SHA256_LEN],
		       uint64_t *n_read, struct err *e)
{
	struct sha256 h;
	uint64_t total = 0;
	size_t k;
	int rc;

	if ((rc = sha256_init(&h, e)) < 0)
		return rc;
	for (;;) {
		if ((rc = volume_reader_read(r, r->buf, COPY_CHUNK, &k, e)) < 0)
			goto out;
		if (!k)
			break;
		if ((rc = sha256_update(&h, r->buf, k, e)) < 0)
			goto out;
		total += k;
	}
	rc = sha256_final(&h, got, e);
	if (n_read)
		*n_read = total;
out:
	sha256_release(&h);
	return rc;
}

void volume_reader_free(struct volume_reader **rp)
{
	struct volume_reader *r = rp ? *rp : NULL;
	if (!r)
		return;
	if (r->a)
		archive_read_free(r->a);
	if (r->fd >= 0)
		close(r->fd);
	xfree(r->path);
	xfree(r->buf);
	xfree(r);
	*rp = NULL;
}

/* ---- secure extraction --------------------------------------------- */

bool volume_path_safe(const char *path)
{
	if (!path || !*path || path[0] == '/')
		return false;
	size_t len = strnlen(path, 4096);
	if (len >= 4096)
		return false;
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && path[j] != '/') {
			if (path[j] == '\\')
				return false;
			j++;
		}
		size_t n = j - i;
		if (n == 0 || (n == 1 && path[i] == '.') ||
		    (n == 2 && path[i] == '.' && path[i + 1] == '.'))
			return false;
		i = j + 1;
		if (j < len && i == len)
			return false; /* trailing slash */
	}
	return true;
}

struct volume_disk {
	struct archive *a;
	bool in_entry;
	char path[4096];
};

int volume_disk_open(struct volume_disk **dp, struct err *e)
{
	struct volume_disk *d = xcalloc(1, sizeof(*d));
	*dp = NULL;
	if (!d)
		return err_set(e, ERR_NOMEM, "out of memory opening the disk writer");
	d->a = archive_write_disk_new();
	if (!d->a) {
		xfree(d);
		return err_set(e, ERR_NOMEM, "out of memory opening the disk writer");
	}
	archive_write_disk_set_options(d->a, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
				       ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
				       ARCHIVE_EXTRACT_SECURE_SYMLINKS |
				       ARCHIVE_EXTRACT_TIME);
	*dp = d;
	return 0;
}

int volume_disk_begin(struct volume_disk *d, const char *relpath,
		      uint64_t size, unsigned mode, int64_t mtime_ns,
		      struct err *e)
{
	struct archive_entry *ent;
	int rc = 0;

	err_set_path(e, relpath);
	if (d->in_entry)
		return err_set(e, ERR_INTERNAL, "file begun inside another");
	if (!volume_path_safe(relpath))
		return err_set(e, ERR_FORMAT, "refused: the path would leave the destination");
	if (size > (uint64_t)INT64_MAX)
		return err_set(e, ERR_LIMIT, "file too large");
	ent = archive_entry_new();
	if (!ent)
		return err_set(e, ERR_NOMEM, "out of memory");
	archive_entry_set_pathname(ent, relpath);
	archive_entry_set_filetype(ent, AE_IFREG);
	archive_entry_set_perm(ent, (mode & 0777) ? (mode & 0777) : 0644);
	archive_entry_set_size(ent, (la_int64_t)size);
	int64_t s = mtime_ns / 1000000000, ns = mtime_ns % 1000000000;
	if (ns < 0) {
		ns += 1000000000;
		s--;
	}
	archive_entry_set_mtime(ent, (time_t)s, (long)ns);
	archive_entry_set_atime(ent, (time_t)s, (long)ns);
	int ar = archive_write_header(d->a, ent);
	if (ar < ARCHIVE_WARN) {
		int n = archive_errno(d->a);
		rc = err_set(e, n == ENOSPC || n == EIO || n == EROFS || n == EACCES ? ERR_IO : ERR_FORMAT,
			     "refused: %s", aerr(d->a));
	}
	archive_entry_free(ent);
	if (rc < 0)
		return rc;
	snprintf(d->path, sizeof(d->path), "%s", relpath);
	d->in_entry = true;
	return 0;
}

int volume_disk_write(struct volume_disk *d, const void *buf, size_t n,
		      struct err *e)
{
	const char *p = buf;
	while (n) {
		la_ssize_t k = archive_write_data(d->a, p, n);
		if (k <= 0) {
			err_set_path(e, d->path);
			return err_set(e, ERR_IO, "cannot write: %s", aerr(d->a));
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int volume_disk_end(struct volume_disk *d, struct err *e)
{
	d->in_entry = false;
	if (archive_write_finish_entry(d->a) < ARCHIVE_WARN) {
		err_set_path(e, d->path);
		return err_set(e, ERR_IO, "cannot finish: %s", aerr(d->a));
	}
	return 0;
}

void volume_disk_free(struct volume_disk **dp)
{
	struct volume_disk *d = dp ? *dp : NULL;
	if (!d)
		return;
	archive_write_free(d->a);
	xfree(d);
	*dp = NULL;
}
