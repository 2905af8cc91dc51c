/*
 * archive.c - the archive directory and its crash-safe writes (see
 * archive.h and docs/archive-format.md, "Commit protocol").
 *
 * Every file that becomes part of the archive is first written whole
 * under tmp/, fsync'd, renamed into place and its directory fsync'd;
 * only then may HEAD name it.  HEAD is switched the same way, last.
 * Cleanup removes whatever HEAD does not name, so an interrupted run
 * costs disk space only until the next writer runs.
 */
#include "archive.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "../common/exitcodes.h"
#include "../common/fault.h"
#include "../common/out.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/banned.h"

/* HEAD, manifests and indexes are small next to this; volumes are streamed */
#define MAX_JSON_BYTES ((uint64_t)1 << 32)

char *archive_dir_default(const char *opt)
{
	char buf[4096];
	if (opt && *opt)
		return xstrdup(opt);
	const char *env = getenv("REFSCAN_ARCHIVE");
	if (env && *env)
		return xstrdup(env);
	const char *xdg = getenv("XDG_DATA_HOME");
	if (xdg && xdg[0] == '/') {
		snprintf(buf, sizeof(buf), "%s/refscan/archive", xdg);
		return xstrdup(buf);
	}
	const char *home = getenv("HOME");
	if (!home || !*home)
		return NULL;
	snprintf(buf, sizeof(buf), "%s/.local/share/refscan/archive", home);
	return xstrdup(buf);
}

/* Read a whole file relative to dirfd into a NUL-terminated buffer. */
static int read_at(int dirfd, const char *rel, const char *shown, char **out,
		   size_t *len, struct err *e)
{
	struct stat st;
	int fd, rc = 0;
	char *buf = NULL;

	*out = NULL;
	*len = 0;
	err_set_path(e, shown);
	fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "cannot open");
	if (fstat(fd, &st) < 0) {
		rc = err_set_errno(e, ERR_IO, "cannot stat");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = err_set(e, ERR_FORMAT, "not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size > MAX_JSON_BYTES) {
		rc = err_set(e, ERR_LIMIT, "%lld bytes is too large", (long long)st.st_size);
		goto out;
	}
	size_t n = (size_t)st.st_size, got = 0;
	buf = xmalloc(n + 1);
	if (!buf) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	while (got < n) {
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = err_set_errno(e, ERR_IO, "cannot read");
			goto out;
		}
		if (k == 0)
			break; /* shrank: parse what is there, it will not validate */
		got += (size_t)k;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
out:
	xfree(buf);
	close(fd);
	return rc;
}

static int fsync_dir_at(int dirfd, const char *sub, struct err *e)
{
	int fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set_errno(e, ERR_IO, "cannot open directory '%s'", sub);
	int rc = 0;
	if (fsync(fd) < 0 && errno != EINVAL)
		rc = err_set_errno(e, ERR_IO, "cannot fsync directory '%s'", sub);
	close(fd);
	return rc;
}

static int load_head(struct archive_dir *a, struct err *e)
{
	char *buf;
	size_t len;
	char shown[4200];
	int rc;

	head_release(&a->head);
	a->have_head = false;
	snprintf(shown, sizeof(shown), "%s/HEAD", a->path);
	rc = read_at(a->dirfd, "HEAD", shown, &buf, &len, e);
	if (rc == ERR_NOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	rc = head_parse(buf, len, &a->head, e);
	xfree(buf);
	if (rc < 0) {
		err_set_path(e, shown);
		return rc;
	}
	a->have_head = true;
	return 0;
}

static void drop_blobs(struct archive_dir *a)
{
	xfree(a->blobs);
	a->blobs = NULL;
	a->n_blobs = 0;
	for (size_t i = 0; i < a->n_vols; i++)
		volidx_release(&a->vols[i]);
	xfree(a->vols);
	a->vols = NULL;
	a->n_vols = 0;
	a->blobs_loaded = false;
}

static int mkdir_p(const char *path, struct err *e)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n >= sizeof(buf))
		return err_set(e, ERR_LIMIT, "archive path too long");
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST) {
			err_set_path(e, buf);
			return err_set_errno(e, ERR_IO, "cannot create directory");
		}
		buf[i] = c;
	}
	return 0;
}

/* Names an archive directory may hold besides HEAD. */
static bool archive_name(const char *n)
{
	static const char *const names[] = { "versions", "volumes", "tmp", "lock",
					     "failures.json", "statcache.json", "HEAD", NULL };
	for (size_t i = 0; names[i]; i++)
		if (!strcmp(n, names[i]))
			return true;
	return false;
}

/* ERR_FORMAT when dirfd holds anything an archive would not. */
static int check_layout(struct archive_dir *a, struct err *e)
{
	int fd = dup(a->dirfd);
	if (fd < 0)
		return err_set_errno(e, ERR_IO, "cannot read directory");
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return err_set_errno(e, ERR_IO, "cannot read directory");
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!archive_name(de->d_name)) {
			err_set_path(e, a->path);
			rc = err_set(e, ERR_FORMAT,
				     "not a refscan archive (holds '%s' but no HEAD); choose an empty or new directory",
				     de->d_name);
			break;
		}
	}
	closedir(d);
	return rc;
}

int archive_dir_open(struct archive_dir *a, const char *path, unsigned flags,
		     struct err *e)
{
	int rc;

	memset(a, 0, sizeof(*a));
	a->dirfd = -1;
	a->lock_fd = -1;
	head_init(&a->head);
	a->path = xstrdup(path);
	if (!a->path)
		return err_set(e, ERR_NOMEM, "out of memory");
	err_set_path(e, path);
	if ((flags & ARCHIVE_DIR_CREATE) && (rc = mkdir_p(path, e)) < 0)
		goto out;
	a->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->dirfd < 0) {
		err_set_path(e, path);
		rc = errno == ENOENT ? err_set(e, ERR_NOTFOUND, "no archive here (run 'refscan index' first)")
				     : err_set_errno(e, ERR_IO, "cannot open archive");
		goto out;
	}
	/* absolute from here on: extract changes the working directory */
	char *real = realpath(path, NULL);
	if (real) {
		char *p = xstrdup(real);
		free(real);
		if (!p) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		xfree(a->path);
		a->path = p;
	}
	if ((rc = load_head(a, e)) < 0)
		goto out;
	if (!a->have_head && (rc = check_layout(a, e)) < 0)
		goto out;
	if (flags & ARCHIVE_DIR_CREATE) {
		static const char *const subs[] = { "versions", "volumes", "tmp" };
		for (size_t i = 0; i < 3; i++)
			if (mkdirat(a->dirfd, subs[i], 0755) < 0 && errno != EEXIST) {
				err_set_path(e, path);
				rc = err_set_errno(e, ERR_IO, "cannot create '%s'", subs[i]);
				goto out;
			}
	}
	return 0;
out:
	archive_dir_release(a);
	return rc;
}

int archive_dir_open_cli(struct archive_dir *a, const char *opt)
{
	struct err e;
	char *path = archive_dir_default(opt);
	if (!path) {
		out_error("no archive: pass --archive DIR or set REFSCAN_ARCHIVE");
		return EXIT_USAGE;
	}
	err_init(&e);
	int rc = archive_dir_open(a, path, 0, &e);
	xfree(path);
	if (rc < 0) {
		out_err(&e);
		return err_exit_status(rc);
	}
	return EXIT_OK;
}

void archive_dir_release(struct archive_dir *a)
{
	drop_blobs(a);
	xfree(a->published);
	head_release(&a->head);
	if (a->lock_fd >= 0)
		close(a->lock_fd); /* releases the flock */
	if (a->dirfd >= 0)
		close(a->dirfd);
	xfree(a->path);
	memset(a, 0, sizeof(*a));
	a->dirfd = -1;
	a->lock_fd = -1;
}

int archive_dir_reload(struct archive_dir *a, struct err *e)
{
	drop_blobs(a);
	return load_head(a, e);
}

/*
 * The pid of the writer holding the lock, for the busy message, or "".
 * The holder writes its pid just after taking the flock, so a writer that
 * loses the race by microseconds may read the previous holder's pid or
 * nothing: retry briefly until the pid names a live process.
 */
static void holder_pid(int fd, char *pid, size_t n)
{
	for (int attempt = 0; attempt < 20; attempt++) {
		ssize_t k = pread(fd, pid, n - 1, 0);
		pid[k > 0 ? k : 0] = '\0';
		pid[strcspn(pid, " \n")] = '\0';
		char *end;
		long v = strtol(pid, &end, 10);
		if (*pid && !*end && v > 0 && v != (long)getpid() &&
		    (kill((pid_t)v, 0) == 0 || errno == EPERM))
			return;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	pid[0] = '\0';
}

int archive_dir_lock(struct archive_dir *a, bool wait, struct err *e)
{
	char pid[32];
	int fd;

	if (a->lock_fd >= 0)
		return 0;
	err_set_path(e, a->path);
	fd = openat(a->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set_errno(e, ERR_IO, "cannot open the lock file");
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR)
			continue;
		int saved = errno;
		if (saved == EWOULDBLOCK) {
			holder_pid(fd, pid, sizeof(pid));
			close(fd);
			return err_set(e, ERR_BUSY,
				       "archive is locked by another writer%s%s%s; try again later or pass --wait",
				       *pid ? " (pid " : "", pid, *pid ? ")" : "");
		}
		close(fd);
		errno = saved;
		return err_set_errno(e, ERR_IO, "cannot lock the archive");
	}
	/*
	 * The pid is only for the message above; the flock is the lock.  One
	 * fixed-width pwrite, so a reader sees the old pid or the new one,
	 * never a half-written or empty file.
	 */
	int n = snprintf(pid, sizeof(pid), "%-20ld\n", (long)getpid());
	if (n > 0 && pwrite(fd, pid, (size_t)n, 0) < 0) {
		/* the message would just lack the pid */
	}
	a->lock_fd = fd;
	int rc = archive_dir_reload(a, e);
	if (rc < 0) {
		close(fd);
		a->lock_fd = -1;
	}
	return rc;
}

/* "00000012" + suffix: the id, or 0 when name is something else. */
static uint64_t parse_numbered(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	if (n != 8 + s || strcmp(name + 8, suffix) != 0)
		return 0;
	uint64_t v = 0;
	for (size_t i = 0; i < 8; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	return v;
}

/*
 * Remove files of sub that keep() rejects.  Names refscan does not
 * recognise are left alone (they are not ours to delete).
 */
static int sweep(struct archive_dir *a, const char *sub,
		 int (*keep)(const struct archive_dir *, const char *),
		 size_t *n_removed, struct err *e)
{
	int fd = openat(a->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		err_set_path(e, a->path);
		return err_set_errno(e, ERR_IO, "cannot open '%s'", sub);
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		err_set_path(e, a->path);
		return err_set_errno(e, ERR_IO, "cannot read '%s'", sub);
	}
	int rc = 0;
	bool removed = false;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")))
			continue;
		if (keep(a, de->d_name))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
			err_set_path(e, a->path);
			rc = err_set_errno(e, ERR_IO, "cannot remove '%s/%s'", sub, de->d_name);
			break;
		}
		removed = true;
		(*n_removed)++;
	}
	if (!rc && removed && fsync(dirfd(d)) < 0 && errno != EINVAL) {
		err_set_path(e, a->path);
		rc = err_set_errno(e, ERR_IO, "cannot fsync '%s'", sub);
	}
	closedir(d);
	return rc;
}

static int keep_nothing(const struct archive_dir *a, const char *name)
{
	(void)a;
	(void)name;
	return 0;
}

static int keep_version_file(const struct archive_dir *a, const char *name)
{
	uint64_t v = parse_numbered(name, ".json");
	if (!v)
		v = parse_numbered(name, ".index");
	if (!v)
		return 1; /* not ours */
	return head_has_version(&a->head, v);
}

static int keep_volume_file(const struct archive_dir *a, const char *name)
{
	uint64_t id = parse_numbered(name, ".tar.zst");
	if (!id)
		id = parse_numbered(name, ".idx.json");
	if (!id)
		return 1;
	return head_has_volume(&a->head, id);
}

int archive_dir_cleanup(struct archive_dir *a, size_t *n_removed,
			struct err *e)
{
	size_t n = 0;
	int rc;

	if (a->lock_fd < 0)
		return err_set(e, ERR_INTERNAL, "cleanup without the archive lock");
	if ((rc = sweep(a, "tmp", keep_nothing, &n, e)) < 0 ||
	    (rc = sweep(a, "versions", keep_version_file, &n, e)) < 0 ||
	    (rc = sweep(a, "volumes", keep_volume_file, &n, e)) < 0)
		return rc;
	if (n_removed)
		*n_removed = n;
	return 0;
}

char *archive_dir_volume_path(const struct archive_dir *a, uint64_t id,
			      char *buf, size_t n)
{
	snprintf(buf, n, "%s/volumes/%08" PRIu64 ".tar.zst", a->path, id);
	return buf;
}

char *archive_dir_version_path(const struct archive_dir *a, uint64_t v,
			       const char *suffix, char *buf, size_t n)
{
	snprintf(buf, n, "%s/versions/%08" PRIu64 "%s", a->path, v, suffix);
	return buf;
}

char *archive_dir_tmp_path(const struct archive_dir *a, const char *name,
			   char *buf, size_t n)
{
	snprintf(buf, n, "%s/tmp/%s", a->path, name);
	return buf;
}

int archive_dir_load_manifest(struct archive_dir *a, uint64_t v,
			      struct manifest *m, struct err *e)
{
	char rel[64], shown[4200], *buf;
	size_t len;
	int rc;

	manifest_init(m);
	snprintf(rel, sizeof(rel), "versions/%08" PRIu64 ".json", v);
	archive_dir_version_path(a, v, ".json", shown, sizeof(shown));
	if ((rc = read_at(a->dirfd, rel, shown, &buf, &len, e)) < 0)
		return rc;
	rc = manifest_parse(buf, len, m, e);
	xfree(buf);
	err_set_path(e, shown);
	if (rc == 0 && m->version != v) {
		rc = err_set(e, ERR_CORRUPT, "holds version %" PRIu64 ", not %" PRIu64,
			     m->version, v);
		manifest_release(m);
	}
	return rc;
}

int archive_dir_load_version(struct archive_dir *a, uint64_t v,
			     struct manifest *m, struct err *e)
{
	int rc = archive_dir_load_manifest(a, v, m, e);
	if (rc != ERR_NOTFOUND)
		return rc;
	struct err re;
	err_init(&re);
	if (archive_dir_reload(a, &re) == 0 && !head_has_version(&a->head, v))
		return err_set(e, ERR_NOTFOUND, "version %" PRIu64 " was pruned meanwhile", v);
	if (head_has_version(&a->head, v))
		return err_set(e, ERR_CORRUPT, "version %" PRIu64 " is listed in HEAD but its manifest is missing", v);
	return rc;
}

int archive_dir_parse_version(const struct archive_dir *a, const char *s,
			      uint64_t *v, struct err *e)
{
	const struct head *h = &a->head;
	char *end;
	unsigned long long n;

	err_set_path(e, a->path);
	if (!h->version)
		return err_set(e, ERR_NOTFOUND, "the archive has no versions yet");
	if (!strncmp(s, "HEAD", 4)) {
		unsigned long long back = 0;
		if (s[4] == '~') {
			errno = 0;
			back = strtoull(s + 5, &end, 10);
			if (end == s + 5 || *end || errno == ERANGE)
				return err_set(e, ERR_FORMAT, "bad version '%s' (N, HEAD or HEAD~K)", s);
		} else if (s[4]) {
			return err_set(e, ERR_FORMAT, "bad version '%s' (N, HEAD or HEAD~K)", s);
		}
		if (back >= h->n_versions)
			return err_set(e, ERR_NOTFOUND, "no version '%s': the archive keeps %zu", s, h->n_versions);
		*v = h->versions[h->n_versions - 1 - back];
		return 0;
	}
	errno = 0;
	n = strtoull(s, &end, 10);
	if (end == s || *end || errno == ERANGE || !n)
		return err_set(e, ERR_FORMAT, "bad version '%s' (N, HEAD or HEAD~K)", s);
	if (!head_has_version(h, n))
		return err_set(e, ERR_NOTFOUND, "no version %llu (it was never made or has been pruned)", n);
	*v = n;
	return 0;
}

bool archive_dir_head_changed(struct archive_dir *a)
{
	char *buf;
	size_t len;
	struct head h;
	struct err e;
	bool changed = true;

	err_init(&e);
	if (read_at(a->dirfd, "HEAD", "HEAD", &buf, &len, &e) < 0)
		return a->have_head;
	if (head_parse(buf, len, &h, &e) == 0) {
		changed = h.version != a->head.version || h.n_volumes != a->head.n_volumes ||
			  h.n_versions != a->head.n_versions ||
			  (h.n_volumes && memcmp(h.volumes, a->head.volumes, h.n_volumes * sizeof(uint64_t))) ||
			  (h.n_versions && memcmp(h.versions, a->head.versions, h.n_versions * sizeof(uint64_t)));
		head_release(&h);
	}
	xfree(buf);
	return changed;
}

static int cmp_blob(const void *x, const void *y)
{
	const struct archive_blob *p = x, *q = y;
	return memcmp(p->digest, q->digest, SHA256_LEN);
}

int archive_dir_load_blobs(struct archive_dir *a, struct err *e)
{
	size_t total = 0;
	int rc = 0;

	if (a->blobs_loaded)
		return 0;
	drop_blobs(a);
	size_t n_ids = a->head.n_volumes + a->n_published;
	a->vols = alloc_array_zero(n_ids ? n_ids : 1, sizeof(*a->vols));
	if (!a->vols)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n_ids; i++) {
		char rel[64], shown[4200], *buf;
		size_t len;
		uint64_t id = i < a->head.n_volumes ? a->head.volumes[i]
						    : a->published[i - a->head.n_volumes];
		snprintf(rel, sizeof(rel), "volumes/%08" PRIu64 ".idx.json", id);
		snprintf(shown, sizeof(shown), "%s/%s", a->path, rel);
		if ((rc = read_at(a->dirfd, rel, shown, &buf, &len, e)) < 0)
			goto out;
		rc = volidx_parse(buf, len, &a->vols[i], e);
		xfree(buf);
		if (rc < 0) {
			err_set_path(e, shown);
			goto out;
		}
		a->n_vols = i + 1;
		if (a->vols[i].volume != id) {
			err_set_path(e, shown);
			rc = err_set(e, ERR_CORRUPT, "indexes volume %" PRIu64, a->vols[i].volume);
			goto out;
		}
		if (ckd_add(&total, total, a->vols[i].n_blobs)) {
			rc = err_set(e, ERR_LIMIT, "too many blobs");
			goto out;
		}
	}
	a->blobs = alloc_array(total ? total : 1, sizeof(*a->blobs));
	if (!a->blobs) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < a->n_vols; i++)
		for (size_t j = 0; j < a->vols[i].n_blobs; j++) {
			struct archive_blob *b = &a->blobs[a->n_blobs++];
			memcpy(b->digest, a->vols[i].blobs[j].digest, SHA256_LEN);
			b->volume = a->vols[i].volume;
			b->size = a->vols[i].blobs[j].size;
		}
	qsort(a->blobs, a->n_blobs, sizeof(*a->blobs), cmp_blob);
	a->blobs_loaded = true;
out:
	if (rc < 0)
		drop_blobs(a);
	return rc;
}

const struct archive_blob *archive_dir_find_blob(const struct archive_dir *a,
						 const unsigned char d[SHA256_LEN])
{
	size_t lo = 0, hi = a->n_blobs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(a->blobs[mid].digest, d, SHA256_LEN);
		if (c == 0)
			return &a->blobs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct volidx *archive_dir_volidx(const struct archive_dir *a, uint64_t id)
{
	for (size_t i = 0; i < a->n_vols; i++)
		if (a->vols[i].volume == id)
			return &a->vols[i];
	return NULL;
}

int archive_dir_read_blob(struct archive_dir *a,
			  const unsigned char d[SHA256_LEN], uint64_t max,
			  unsigned char **out, size_t *len, struct err *e)
{
	struct volume_reader *r = NULL;
	struct volume_entry ent;
	char path[4200], hex[SHA256_HEX_LEN + 1];
	unsigned char *buf = NULL, got[SHA256_LEN];
	int rc;

	*out = NULL;
	*len = 0;
	sha256_to_hex(d, hex);
	if ((rc = archive_dir_load_blobs(a, e)) < 0)
		return rc;
	const struct archive_blob *b = archive_dir_find_blob(a, d);
	if (!b)
		return err_set(e, ERR_NOTFOUND, "blob %s is in no volume", hex);
	if (b->size > max || b->size > SIZE_MAX - 1)
		return err_set(e, ERR_LIMIT, "blob %s has %" PRIu64 " bytes (limit %" PRIu64 ")",
			       hex, b->size, max);
	archive_dir_volume_path(a, b->volume, path, sizeof(path));
	if ((rc = volume_reader_open(&r, path, e)) < 0)
		return rc;
	while ((rc = volume_reader_next(r, &ent, e)) > 0) {
		if (!ent.is_blob || memcmp(ent.digest, d, SHA256_LEN) != 0)
			continue;
		size_t n = (size_t)b->size, have = 0, k;
		buf = xmalloc(n + 1);
		if (!buf) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		for (;;) {
			if ((rc = volume_reader_read(r, buf + have, n + 1 - have, &k, e)) < 0)
				goto out;
			if (!k)
				break;
			have += k;
			if (have > n)
				break;
		}
		if (have != n || (rc = sha256_buffer(buf, n, got, e)) < 0 ||
		    memcmp(got, d, SHA256_LEN) != 0) {
			err_set_path(e, path);
			rc = err_set(e, ERR_CORRUPT, "blob %s is damaged", hex);
			goto out;
		}
		*out = buf;
		*len = n;
		buf = NULL;
		rc = 0;
		goto out;
	}
	if (rc == 0) {
		err_set_path(e, path);
		rc = err_set(e, ERR_CORRUPT, "blob %s is missing from the volume", hex);
	}
out:
	xfree(buf);
	volume_reader_free(&r);
	return rc;
}

/* ---- writing -------------------------------------------------------- */

int archive_dir_volume_create(struct archive_dir *a, uint64_t id,
			      const struct volume_write_options *o,
			      struct archive_volume_out *vo, struct err *e)
{
	char rel[128];
	int rc;

	memset(vo, 0, sizeof(*vo));
	vo->fd = -1;
	vo->id = id;
	volidx_init(&vo->idx);
	vo->idx.volume = id;
	snprintf(vo->tmp, sizeof(vo->tmp), "%08" PRIu64 ".tar.zst", id);
	snprintf(rel, sizeof(rel), "tmp/%s", vo->tmp);
	vo->fd = openat(a->dirfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (vo->fd < 0) {
		err_set_path(e, a->path);
		return err_set_errno(e, ERR_IO, "cannot create '%s'", rel);
	}
	if ((rc = volume_writer_open(&vo->w, vo->fd, o, e)) < 0) {
		archive_dir_volume_discard(a, vo);
		return rc;
	}
	return 0;
}

static int list_blob(struct archive_volume_out *vo,
		     const unsigned char d[SHA256_LEN], uint64_t size,
		     struct err *e)
{
	if (alloc_grow((void **)&vo->idx.blobs, &vo->cap, vo->idx.n_blobs + 1,
		       sizeof(*vo->idx.blobs)) < 0)
		return err_set(e, ERR_NOMEM, "out of memory");
	memcpy(vo->idx.blobs[vo->idx.n_blobs].digest, d, SHA256_LEN);
	vo->idx.blobs[vo->idx.n_blobs].size = size;
	vo->idx.n_blobs++;
	return 0;
}

int archive_dir_volume_add_fd(struct archive_volume_out *vo,
			      const unsigned char d[SHA256_LEN], uint64_t size,
			      int fd, bool *stored, struct err *e)
{
	unsigned char got[SHA256_LEN];
	int rc = volume_writer_add_fd(vo->w, d, size, fd, got, e);
	*stored = false;
	if (rc < 0)
		return rc;
	if (memcmp(got, d, SHA256_LEN) != 0) {
		vo->idx.n_unlisted++;
		return 0;
	}
	*stored = true;
	if ((rc = list_blob(vo, d, size, e)) < 0)
		return rc;
	if (vo->idx.n_blobs == 1)
		fault_point("volume-partial");
	return 0;
}

int archive_dir_volume_begin(struct archive_volume_out *vo,
			     const unsigned char d[SHA256_LEN], uint64_t size,
			     struct err *e)
{
	int rc = volume_writer_begin(vo->w, d, size, e);
	if (rc < 0)
		return rc;
	memcpy(vo->digest, d, SHA256_LEN);
	vo->size = size;
	return sha256_init(&vo->hash, e);
}

int archive_dir_volume_write(struct archive_volume_out *vo, const void *buf,
			     size_t n, struct err *e)
{
	int rc = sha256_update(&vo->hash, buf, n, e);
	return rc < 0 ? rc : volume_writer_write(vo->w, buf, n, e);
}

int archive_dir_volume_end(struct archive_volume_out *vo, bool listed,
			   struct err *e)
{
	unsigned char got[SHA256_LEN];
	int rc = volume_writer_end(vo->w, e);
	if (rc < 0) {
		sha256_release(&vo->hash);
		return rc;
	}
	if ((rc = sha256_final(&vo->hash, got, e)) < 0)
		return rc;
	if (!listed || memcmp(got, vo->digest, SHA256_LEN) != 0) {
		vo->idx.n_unlisted++;
		return listed ? err_set(e, ERR_CORRUPT, "copied blob does not match its digest") : 0;
	}
	if ((rc = list_blob(vo, vo->digest, vo->size, e)) < 0)
		return rc;
	if (vo->idx.n_blobs == 1)
		fault_point("volume-partial");
	return 0;
}

int archive_dir_volume_add_buffer(struct archive_volume_out *vo,
				  const unsigned char d[SHA256_LEN],
				  const void *buf, size_t len, struct err *e)
{
	int rc;
	if ((rc = archive_dir_volume_begin(vo, d, len, e)) < 0)
		return rc;
	if ((rc = archive_dir_volume_write(vo, buf, len, e)) < 0) {
		sha256_release(&vo->hash);
		return rc;
	}
	return archive_dir_volume_end(vo, true, e);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* Write tmp/<tmp_name> whole and fsync it. */
static int write_tmp(struct archive_dir *a, const char *tmp_name,
		     const void *buf, size_t len, struct err *e)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "tmp/%s", tmp_name);
	err_set_path(e, a->path);
	int fd = openat(a->dirfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set_errno(e, ERR_IO, "cannot create '%s'", rel);
	int rc = 0;
	if (write_all(fd, buf, len) < 0)
		rc = err_set_errno(e, ERR_IO, "cannot write '%s'", rel);
	else if (fsync(fd) < 0)
		rc = err_set_errno(e, ERR_IO, "cannot fsync '%s'", rel);
	if (close(fd) < 0 && !rc)
		rc = err_set_errno(e, ERR_IO, "cannot close '%s'", rel);
	return rc;
}

/* rename tmp/<tmp_name> to <subdir>/<name>. */
static int rename_in(struct archive_dir *a, const char *tmp_name,
		     const char *subdir, const char *name, struct err *e)
{
	char from[256], to[256];
	snprintf(from, sizeof(from), "tmp/%s", tmp_name);
	if (!strcmp(subdir, "."))
		snprintf(to, sizeof(to), "%s", name);
	else
		snprintf(to, sizeof(to), "%s/%s", subdir, name);
	if (renameat(a->dirfd, from, a->dirfd, to) < 0) {
		err_set_path(e, a->path);
		return err_set_errno(e, ERR_IO, "cannot rename '%s' to '%s'", from, to);
	}
	return 0;
}

int archive_dir_volume_publish(struct archive_dir *a,
			       struct archive_volume_out *vo, struct err *e)
{
	struct volume_info info;
	char name[64], idxname[64], *json = NULL;
	size_t len;
	int rc;

	if ((rc = volume_writer_finish(vo->w, &info, e)) < 0)
		goto out;
	fault_point("volume-written");
	if (fsync(vo->fd) < 0) {
		err_set_path(e, a->path);
		rc = err_set_errno(e, ERR_IO, "cannot fsync volume '%s'", vo->tmp);
		goto out;
	}
	vo->idx.size = info.size;
	memcpy(vo->idx.sha256, info.sha256, SHA256_LEN);
	snprintf(name, sizeof(name), "%08" PRIu64 ".tar.zst", vo->id);
	snprintf(idxname, sizeof(idxname), "%08" PRIu64 ".idx.json", vo->id);
	if ((rc = volidx_dump(&vo->idx, &json, &len, e)) < 0 ||
	    (rc = write_tmp(a, idxname, json, len, e)) < 0)
		goto out;
	fault_point("volume-synced");
	if ((rc = rename_in(a, vo->tmp, "volumes", name, e)) < 0)
		goto out;
	fault_point("volume-renamed");
	if ((rc = rename_in(a, idxname, "volumes", idxname, e)) < 0 ||
	    (rc = fsync_dir_at(a->dirfd, "volumes", e)) < 0)
		goto out;
	fault_point("volume-published");
	/* the new blobs are findable by this writer from now on */
	uint64_t *np = realloc_array(a->published, a->n_published + 1, sizeof(*np));
	if (!np) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	a->published = np;
	a->published[a->n_published++] = vo->id;
	drop_blobs(a);
	volume_writer_free(&vo->w);
	close(vo->fd);
	vo->fd = -1;
	vo->tmp[0] = '\0';
out:
	xfree(json);
	return rc;
}

void archive_dir_volume_discard(struct archive_dir *a,
				struct archive_volume_out *vo)
{
	volume_writer_free(&vo->w);
	sha256_release(&vo->hash);
	if (vo->fd >= 0)
		close(vo->fd);
	vo->fd = -1;
	if (vo->tmp[0]) {
		char rel[128];
		snprintf(rel, sizeof(rel), "tmp/%s", vo->tmp);
		unlinkat(a->dirfd, rel, 0);
		vo->tmp[0] = '\0';
	}
	volidx_release(&vo->idx);
	vo->cap = 0;
}

int archive_dir_put_file(struct archive_dir *a, const char *subdir,
			 const char *name, const void *buf, size_t len,
			 const char *fault_tag, struct err *e)
{
	char step[64];
	int rc;
	if ((rc = write_tmp(a, name, buf, len, e)) < 0)
		return rc;
	snprintf(step, sizeof(step), "%s-written", fault_tag);
	fault_point(step);
	if ((rc = rename_in(a, name, subdir, name, e)) < 0)
		return rc;
	snprintf(step, sizeof(step), "%s-renamed", fault_tag);
	fault_point(step);
	return fsync_dir_at(a->dirfd, subdir, e);
}

int archive_dir_put_tmp(struct archive_dir *a, const char *tmp_name,
			const char *name, struct err *e)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "tmp/%s", tmp_name);
	int fd = openat(a->dirfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err_set_path(e, a->path);
		return err_set_errno(e, ERR_IO, "cannot open '%s'", rel);
	}
	int rc = 0;
	if (fsync(fd) < 0) {
		err_set_path(e, a->path);
		rc = err_set_errno(e, ERR_IO, "cannot fsync '%s'", rel);
	}
	close(fd);
	if (rc < 0 || (rc = rename_in(a, tmp_name, "versions", name, e)) < 0)
		return rc;
	return fsync_dir_at(a->dirfd, "versions", e);
}

int archive_dir_write_manifest(struct archive_dir *a, const struct manifest *m,
			       struct err *e)
{
	char name[64], *json;
	size_t len;
	int rc;

	if ((rc = manifest_dump(m, &json, &len, e)) < 0)
		return rc;
	snprintf(name, sizeof(name), "%08" PRIu64 ".json", m->version);
	rc = archive_dir_put_file(a, "versions", name, json, len, "manifest", e);
	xfree(json);
	return rc;
}

int archive_dir_write_head(struct archive_dir *a, const struct head *h,
			   struct err *e)
{
	struct head copy;
	char *json;
	size_t len;
	int rc;

	if (a->lock_fd < 0)
		return err_set(e, ERR_INTERNAL, "HEAD written without the archive lock");
	if ((rc = head_copy(&copy, h, e)) < 0)
		return rc;
	if ((rc = head_dump(h, &json, &len, e)) < 0) {
		head_release(&copy);
		return rc;
	}
	rc = archive_dir_put_file(a, ".", "HEAD", json, len, "head", e);
	xfree(json);
	if (rc < 0) {
		head_release(&copy);
		return rc;
	}
	head_release(&a->head);
	a->head = copy;
	a->have_head = true;
	/* published volumes are in this HEAD now, or leftovers */
	xfree(a->published);
	a->published = NULL;
	a->n_published = 0;
	drop_blobs(a);
	return 0;
}
