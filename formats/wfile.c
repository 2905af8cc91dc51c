/*
 * wfile.c - atomic output files: temporary file, fsync, rename (see
 * writers.h).
 *
 * The temporary name is "<path>.tmp.<pid>.<n>" created with O_EXCL, so two
 * writers never share one and the file gets the usual umask-derived mode
 * (mkstemp would force 0600).  rename() within one folder is atomic on
 * POSIX file systems; the folder is fsynced afterwards so the new name
 * survives a crash as well as the data.
 */
#include "writers.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/banned.h"

static atomic_uint tmp_counter;

static void wfile_reset(struct wfile *w)
{
	w->fp = NULL;
	w->tmp = NULL;
	w->path = NULL;
}

int wfile_open(struct wfile *w, const char *path, struct err *e)
{
	struct stat st;
	int fd = -1, rc = 0;

	wfile_reset(w);
	err_set_path(e, path);
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return err_set(e, ERR_IO, "cannot write: not a regular file");
	size_t n = strlen(path) + 64;
	w->path = xstrdup(path);
	w->tmp = xmalloc(n);
	if (!w->path || !w->tmp) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (int tries = 0; tries < 100; tries++) {
		snprintf(w->tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(),
			 atomic_fetch_add(&tmp_counter, 1u));
		fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		rc = err_set_errno(e, ERR_IO, "cannot create");
		goto fail;
	}
	w->fp = fdopen(fd, "wb");
	if (!w->fp) {
		rc = err_set_errno(e, ERR_IO, "cannot open '%s'", w->tmp);
		close(fd);
		unlink(w->tmp);
		goto fail;
	}
	/* large writes: scans are tens to hundreds of MB */
	setvbuf(w->fp, NULL, _IOFBF, (size_t)1 << 20);
	return 0;
fail:
	xfree(w->tmp);
	xfree(w->path);
	wfile_reset(w);
	return rc;
}

void wfile_abort(struct wfile *w)
{
	if (w->fp) {
		fclose(w->fp);
		if (w->tmp)
			unlink(w->tmp);
	}
	xfree(w->tmp);
	xfree(w->path);
	wfile_reset(w);
}

/* fsync the folder holding path so the rename itself is durable. */
static void sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[ERR_PATH_MAX];
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	/* some file systems refuse fsync on folders (EINVAL): nothing to do */
	(void)fsync(fd);
	close(fd);
}

int wfile_commit(struct wfile *w, struct err *e)
{
	int rc = 0;
	if (!w->fp) {
		rc = err_set(e, ERR_INTERNAL, "commit of a file that is not open");
		goto out;
	}
	err_set_path(e, w->path);
	if (fflush(w->fp) != 0 || ferror(w->fp)) {
		rc = err_set_errno(e, ERR_IO, "cannot write '%s'", w->tmp);
		goto out;
	}
	if (fsync(fileno(w->fp)) != 0) {
		rc = err_set_errno(e, ERR_IO, "cannot sync '%s'", w->tmp);
		goto out;
	}
	FILE *fp = w->fp;
	w->fp = NULL;
	if (fclose(fp) != 0) {
		rc = err_set_errno(e, ERR_IO, "cannot close '%s'", w->tmp);
		unlink(w->tmp);
		goto out;
	}
	if (rename(w->tmp, w->path) != 0) {
		rc = err_set_errno(e, ERR_IO, "cannot rename '%s' into place", w->tmp);
		unlink(w->tmp);
		goto out;
	}
	sync_dir(w->path);
out:
	wfile_abort(w);
	return rc;
}
