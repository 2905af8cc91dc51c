/*
 * walk.c - source tree walk (see walk.h).
 *
 * Directories are read with openat/fdopendir relative to their parent's
 * descriptor, so deep trees need no long path strings for system calls
 * and a directory renamed mid-walk cannot redirect it.  The d_type of
 * readdir avoids a stat for every non-scan file.
 */
#include "walk.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/banned.h"

#define WALK_MAX_DEPTH 256

struct dir_id {
	dev_t dev;
	ino_t ino;
};

struct walker {
	const struct walk_options *o;
	struct walk_result *r;
	size_t cap_files, cap_notes;
	struct dir_id stack[WALK_MAX_DEPTH]; /* directories being walked */
	size_t depth;
	struct err *e;
};

static int note(struct walker *w, const char *rel, bool unreadable,
		const char *fmt, const char *arg)
{
	char msg[512];
	snprintf(msg, sizeof(msg), fmt, arg);
	if (alloc_grow((void **)&w->r->notes, &w->cap_notes, w->r->n_notes + 1,
		       sizeof(*w->r->notes)) < 0)
		return err_set(w->e, ERR_NOMEM, "out of memory");
	struct walk_note *n = &w->r->notes[w->r->n_notes];
	n->rel = xstrdup(rel);
	n->msg = xstrdup(msg);
	n->unreadable = unreadable;
	if (!n->rel || !n->msg) {
		xfree(n->rel);
		xfree(n->msg);
		return err_set(w->e, ERR_NOMEM, "out of memory");
	}
	w->r->n_notes++;
	return 0;
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int add_file(struct walker *w, const char *rel, const struct stat *st)
{
	if (alloc_grow((void **)&w->r->files, &w->cap_files, w->r->n_files + 1,
		       sizeof(*w->r->files)) < 0)
		return err_set(w->e, ERR_NOMEM, "out of memory");
	struct walk_file *f = &w->r->files[w->r->n_files];
	f->rel = xstrdup(rel);
	if (!f->rel)
		return err_set(w->e, ERR_NOMEM, "out of memory");
	f->size = (uint64_t)st->st_size;
	f->mtime_ns = mtime_ns(st);
	f->inode = (uint64_t)st->st_ino;
	f->mode = (uint32_t)(st->st_mode & 07777);
	w->r->n_files++;
	return 0;
}

static bool on_stack(const struct walker *w, const struct stat *st)
{
	for (size_t i = 0; i < w->depth; i++)
		if (w->stack[i].dev == st->st_dev && w->stack[i].ino == st->st_ino)
			return true;
	return false;
}

static int walk_dir(struct walker *w, int fd, const char *rel);

/* Path of a child for messages and for walk_inside(). */
static void join(char *buf, size_t n, const char *a, const char *b)
{
	if (*a)
		snprintf(buf, n, "%s/%s", a, b);
	else
		snprintf(buf, n, "%s", b);
}

static int enter(struct walker *w, int parent, const char *name,
		 const char *rel, const struct stat *st)
{
	if (w->o->have_skip && st->st_dev == w->o->skip_dev && st->st_ino == w->o->skip_ino)
		return 0;
	if (on_stack(w, st))
		return note(w, rel, false, "%s", "directory cycle through a symlink; not entered again");
	if (w->depth >= WALK_MAX_DEPTH)
		return note(w, rel, true, "directory nesting deeper than %s levels; not entered", "256");
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "cannot open directory: %s", strerror(errno));
		return note(w, rel, true, "%s", msg);
	}
	return walk_dir(w, fd, rel);
}

static int visit(struct walker *w, int fd, const char *name, unsigned char type,
		 const char *rel)
{
	struct stat st;
	char full[PATH_MAX * 2];

	if (type == DT_DIR) {
		if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return note(w, rel, true, "cannot stat directory: %s", strerror(errno));
		return enter(w, fd, name, rel, &st);
	}
	if (type == DT_REG) {
		if (!w->o->want(name))
			return 0;
		if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return note(w, rel, false, "cannot stat: %s", strerror(errno));
		if (S_ISREG(st.st_mode))
			return add_file(w, rel, &st);
		type = DT_UNKNOWN; /* replaced since readdir: look again */
	}
	if (type == DT_UNKNOWN) {
		if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return note(w, rel, false, "cannot stat: %s", strerror(errno));
		if (S_ISDIR(st.st_mode))
			return enter(w, fd, name, rel, &st);
		if (S_ISREG(st.st_mode))
			return w->o->want(name) ? add_file(w, rel, &st) : 0;
		if (!S_ISLNK(st.st_mode))
			return 0;
	} else if (type != DT_LNK) {
		return 0; /* fifos, sockets, devices */
	}

	/* a symlink */
	if (fstatat(fd, name, &st, 0) < 0)
		return w->o->want(name) ? note(w, rel, false, "broken symlink: %s", strerror(errno)) : 0;
	if (!S_ISDIR(st.st_mode) && !(S_ISREG(st.st_mode) && w->o->want(name)))
		return 0;
	snprintf(full, sizeof(full), "%s/%s", w->r->root_real, rel);
	if (S_ISDIR(st.st_mode)) {
		if (!w->o->follow_symlinks)
			return note(w, rel, false, "%s", "symlink to a directory not followed (use --follow-symlinks)");
		return enter(w, fd, name, rel, &st);
	}
	if (!w->o->follow_symlinks && !walk_inside(w->r->root_real, full))
		return note(w, rel, false, "%s", "symlink leads outside the source tree; skipped (use --follow-symlinks)");
	return add_file(w, rel, &st);
}

static int walk_dir(struct walker *w, int fd, const char *rel)
{
	struct stat st;
	int rc = 0;

	if (fstat(fd, &st) < 0) {
		close(fd);
		return note(w, rel, true, "cannot stat directory: %s", strerror(errno));
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return note(w, rel, true, "cannot read directory: %s", strerror(errno));
	}
	w->stack[w->depth].dev = st.st_dev;
	w->stack[w->depth].ino = st.st_ino;
	w->depth++;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				rc = note(w, rel, true, "cannot read directory: %s", strerror(errno));
			break;
		}
		if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")))
			continue;
		char child[PATH_MAX];
		join(child, sizeof(child), rel, de->d_name);
		if (strlen(child) >= sizeof(child) - 1) {
			rc = note(w, rel, true, "path below '%s' too long; not entered", rel);
			if (rc < 0)
				break;
			continue;
		}
		if ((rc = visit(w, dirfd(d), de->d_name, de->d_type, child)) < 0)
			break;
	}
	w->depth--;
	closedir(d);
	return rc;
}

static int cmp_file(const void *x, const void *y)
{
	const struct walk_file *a = x, *b = y;
	return strcmp(a->rel, b->rel);
}

int walk_tree(const char *root, const struct walk_options *o,
	      struct walk_result *out, struct err *e)
{
	struct walker w = { .o = o, .r = out, .e = e };
	struct stat st;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	err_set_path(e, root);
	out->root_real = realpath(root, NULL);
	if (!out->root_real)
		return err_set_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
				     "cannot open source directory");
	fd = open(out->root_real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = err_set_errno(e, errno == ENOTDIR ? ERR_NOTFOUND : ERR_IO,
				   "cannot open source directory");
		if (fd >= 0)
			close(fd);
		walk_result_release(out);
		return rc;
	}
	rc = walk_dir(&w, fd, "");
	if (rc < 0) {
		walk_result_release(out);
		return rc;
	}
	if (out->n_files)
		qsort(out->files, out->n_files, sizeof(*out->files), cmp_file);
	return 0;
}

void walk_result_release(struct walk_result *r)
{
	for (size_t i = 0; i < r->n_files; i++)
		xfree(r->files[i].rel);
	xfree(r->files);
	for (size_t i = 0; i < r->n_notes; i++) {
		xfree(r->notes[i].rel);
		xfree(r->notes[i].msg);
	}
	xfree(r->notes);
	free(r->root_real); /* from realpath(3) */
	memset(r, 0, sizeof(*r));
}

bool walk_inside(const char *root_real, const char *path)
{
	char *real = realpath(path, NULL);
	if (!real)
		return false;
	size_t n = strlen(root_real);
	bool in = !strncmp(real, root_real, n) &&
		  (real[n] == '/' || real[n] == '\0' || (n == 1 && root_real[0] == '/'));
	free(real);
	return in;
}
