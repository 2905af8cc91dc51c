/*
 * index.c - `refscan index`: the ingest pipeline (see index.h) and its
 * command line.
 *
 * Invariants:
 * - at most one version per run, and none when nothing changed;
 * - a scan reaches a version only after scan_read_file() accepted it and
 *   every blob it names is stored and re-verified while being packed;
 * - a scan that fails never removes what the archive already holds of
 *   it, and a directory that cannot be read (or a source that turned up
 *   empty) never counts as "everything in it was deleted";
 * - the manifest and the volume depend only on the sources and the
 *   previous version, not on thread count or timing (bar "created").
 */
#include "index.h"
#include "archive.h"
#include "descstore.h"
#include "walk.h"
#include "../common/alloc.h"
#include "../common/commands.h"
#include "../common/exitcodes.h"
#include "../common/fault.h"
#include "../common/out.h"
#include "../common/progress.h"
#include "../common/version.h"
#include "../formats/formats.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/banned.h"

/* a sidecar bigger than this is stored but not parsed */
#define SIDECAR_MAX_BYTES ((size_t)1 << 20)
#define SIDECAR_SUFFIX ".meta.json"

static const struct index_hooks no_hooks = { NULL, NULL, NULL, NULL };

void index_options_init(struct index_options *o)
{
	memset(o, 0, sizeof(*o));
	o->default_units = "mm";
}

void index_result_release(struct index_result *r)
{
	for (size_t i = 0; i < r->n_failed; i++) {
		xfree(r->failed[i].path);
		xfree(r->failed[i].archive_path);
	}
	xfree(r->failed);
	for (size_t i = 0; i < r->n_warnings; i++) {
		xfree(r->warnings[i].path);
		xfree(r->warnings[i].archive_path);
		xfree(r->warnings[i].message);
	}
	xfree(r->warnings);
	for (size_t i = 0; i < r->n_notes; i++)
		xfree(r->notes[i]);
	xfree(r->notes);
	memset(r, 0, sizeof(*r));
}

/* ---- run state ------------------------------------------------------ */

struct root {
	const char *arg;          /* as given on the command line */
	char *label;              /* basename of its real path */
	struct walk_result walk;
	bool protect;             /* keep all archived entries (see walk_roots) */
};

enum item_kind { K_UNCHANGED, K_CHECK, K_READ, K_KNOWN_FAIL };
enum item_status { S_UNCHANGED, S_TOUCHED, S_NEW, S_FAILED };

struct item {
	struct root *root;
	const struct walk_file *wf;
	char *path;               /* archive path: label/rel */
	char *source;             /* absolute: root_real/rel */
	char *shown;              /* as the user names it: arg/rel */
	const struct manifest_entry *prev;     /* in HEAD's manifest, or NULL */
	const struct manifest_failure *known;  /* in failures.json, or NULL */
	enum item_kind kind;
	enum item_status status;
	bool redescribe;          /* re-read only for new descriptors */
	struct manifest_entry entry; /* S_NEW / S_TOUCHED */
	char **file_src;          /* per file of the entry: absolute path, NULL if missing */
	size_t n_file_src;
	unsigned char *desc;      /* descriptor bytes to store */
	size_t desc_len;
	struct err err;           /* S_FAILED */
};

/* A blob this run has to store. */
struct pending {
	unsigned char digest[SHA256_LEN];
	uint64_t size;
	const char *source;       /* file to copy, or NULL: buf */
	const unsigned char *buf;
	bool bad;                 /* changed while being packed */
};

struct run {
	const struct index_options *o;
	const struct index_hooks *h;
	struct archive_dir a;
	bool have_archive;        /* the archive exists (dry runs may lack it) */
	struct manifest prev;     /* HEAD's manifest, empty when none */
	bool *prev_seen;          /* per prev entry: a walked file has its path */
	struct manifest_failure *fcache; /* failures.json */
	size_t n_fcache;
	char *fcache_raw;
	size_t n_roots;
	struct root *roots;
	size_t n_items;
	struct item *items;
	size_t n_pending;
	struct pending *pending;
	uint64_t version;         /* the version this run would commit */
	int64_t now;
	struct index_result *r;
};

static int64_t now_unix(void)
{
	/* REFSCAN_NOW fixes the clock for tests of --keep-days */
	const char *s = getenv("REFSCAN_NOW");
	if (s && *s) {
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (!*end && errno != ERANGE && v >= 0)
			return (int64_t)v;
	}
	return (int64_t)time(NULL);
}

static int64_t stat_mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int add_note(struct index_result *r, const char *fmt, const char *a,
		    const char *b)
{
	char buf[ERR_PATH_MAX + 600];
	snprintf(buf, sizeof(buf), fmt, a, b);
	char **n = realloc_array(r->notes, r->n_notes + 1, sizeof(*n));
	if (!n)
		return ERR_NOMEM;
	r->notes = n;
	if (!(n[r->n_notes] = xstrdup(buf)))
		return ERR_NOMEM;
	r->n_notes++;
	return 0;
}

static int add_failure(struct index_result *r, const char *shown,
		       const char *apath, const struct err *er, bool known)
{
	struct index_failure *f = realloc_array(r->failed, r->n_failed + 1, sizeof(*f));
	if (!f)
		return ERR_NOMEM;
	r->failed = f;
	f = &r->failed[r->n_failed];
	memset(f, 0, sizeof(*f));
	f->path = xstrdup(shown);
	f->archive_path = apath ? xstrdup(apath) : NULL;
	f->err = *er;
	f->known = known;
	if (!f->path || (apath && !f->archive_path)) {
		xfree(f->path);
		xfree(f->archive_path);
		return ERR_NOMEM;
	}
	r->n_failed++;
	return 0;
}

static int add_warning(struct index_result *r, const char *shown,
		       const char *apath, int code, const char *what, const char *why)
{
	struct index_warning *w = realloc_array(r->warnings, r->n_warnings + 1, sizeof(*w));
	if (!w)
		return ERR_NOMEM;
	r->warnings = w;
	w = &r->warnings[r->n_warnings];
	size_t n = strlen(what) + strlen(why) + 3;
	w->path = xstrdup(shown);
	w->archive_path = xstrdup(apath);
	w->code = code;
	w->message = xmalloc(n);
	if (!w->path || !w->archive_path || !w->message) {
		xfree(w->path);
		xfree(w->archive_path);
		xfree(w->message);
		return ERR_NOMEM;
	}
	snprintf(w->message, n, "%s: %s", what, why);
	r->n_warnings++;
	return 0;
}

/* "a" + "/" + "b" in a new string. */
static char *join2(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = xmalloc(n);
	if (s)
		snprintf(s, n, "%s/%s", a, b);
	return s;
}

static char *concat(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 1;
	char *s = xmalloc(n);
	if (s)
		snprintf(s, n, "%s%s", a, b);
	return s;
}

/* ---- step 2: walk ---------------------------------------------------- */

static bool want_scan(const char *name)
{
	return format_is_scan_name(name) != 0;
}

static int prefix_entries(const struct manifest *m, const char *label)
{
	size_t n = strlen(label);
	for (size_t i = 0; i < m->n_entries; i++)
		if (!strncmp(m->entries[i].path, label, n) && m->entries[i].path[n] == '/')
			return 1;
	return 0;
}

static int walk_roots(struct run *run, struct err *e)
{
	const struct index_options *o = run->o;
	struct walk_options wo = { .follow_symlinks = o->follow_symlinks, .want = want_scan };
	struct stat ast;
	int rc;

	if (run->have_archive && fstat(run->a.dirfd, &ast) == 0) {
		wo.have_skip = true;
		wo.skip_dev = ast.st_dev;
		wo.skip_ino = ast.st_ino;
	}
	run->roots = alloc_array_zero(o->n_sources ? o->n_sources : 1, sizeof(*run->roots));
	if (!run->roots)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < o->n_sources; i++) {
		struct root *rt = &run->roots[i];
		run->n_roots = i + 1;
		rt->arg = o->sources[i];
		if ((rc = walk_tree(rt->arg, &wo, &rt->walk, e)) < 0)
			return rc;
		const char *base = strrchr(rt->walk.root_real, '/');
		base = base ? base + 1 : rt->walk.root_real;
		if (!*base || !volume_path_safe(base)) {
			err_set_path(e, rt->arg);
			return err_set(e, ERR_NOTFOUND, "cannot index this directory: its name cannot label archive paths");
		}
		if (!(rt->label = xstrdup(base)))
			return err_set(e, ERR_NOMEM, "out of memory");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(run->roots[j].label, rt->label)) {
				err_set_path(e, rt->arg);
				return err_set(e, ERR_FORMAT, "two sources are both named '%s'; archive paths would clash",
					       rt->label);
			}
		for (size_t k = 0; k < rt->walk.n_notes; k++) {
			const struct walk_note *n = &rt->walk.notes[k];
			char shown[ERR_PATH_MAX];
			snprintf(shown, sizeof(shown), "%s%s%s", rt->arg, *n->rel ? "/" : "", n->rel);
			if (n->unreadable) {
				struct err fe;
				err_init(&fe);
				err_set_path(&fe, shown);
				err_set(&fe, ERR_IO, "%s; what the archive holds from here is kept", n->msg);
				if (add_failure(run->r, shown, NULL, &fe, false) < 0)
					return err_set(e, ERR_NOMEM, "out of memory");
			} else if (add_note(run->r, "%s: %s", shown, n->msg) < 0) {
				return err_set(e, ERR_NOMEM, "out of memory");
			}
		}
	}
	return 0;
}

/*
 * A source that now holds no scan at all while the archive has some from
 * it is far more often an unmounted disk than a deliberate deletion:
 * keep its entries and say so.  Needs run->prev.
 */
static int check_empty_roots(struct run *run, struct err *e)
{
	for (size_t i = 0; i < run->n_roots; i++) {
		struct root *rt = &run->roots[i];
		if (rt->walk.n_files || !prefix_entries(&run->prev, rt->label))
			continue;
		struct err fe;
		err_init(&fe);
		err_set_path(&fe, rt->arg);
		err_set(&fe, ERR_NOTFOUND,
			"no scans found, but the archive holds scans from '%s'; keeping them (is the disk mounted?)",
			rt->label);
		rt->protect = true;
		if (add_failure(run->r, rt->arg, NULL, &fe, false) < 0)
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	return 0;
}

static const struct manifest_failure *find_failure(const struct run *run,
						   const char *path)
{
	size_t lo = 0, hi = run->n_fcache;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(run->fcache[mid].path, path);
		if (!c)
			return &run->fcache[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int make_items(struct run *run, struct err *e)
{
	size_t total = 0;
	for (size_t i = 0; i < run->n_roots; i++)
		total += run->roots[i].walk.n_files;
	run->items = alloc_array_zero(total ? total : 1, sizeof(*run->items));
	if (!run->items)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < run->n_roots; i++) {
		struct root *rt = &run->roots[i];
		for (size_t j = 0; j < rt->walk.n_files; j++) {
			struct item *it = &run->items[run->n_items++];
			it->root = rt;
			it->wf = &rt->walk.files[j];
			err_init(&it->err);
			it->path = join2(rt->label, it->wf->rel);
			it->source = join2(rt->walk.root_real, it->wf->rel);
			it->shown = join2(rt->arg, it->wf->rel);
			if (!it->path || !it->source || !it->shown)
				return err_set(e, ERR_NOMEM, "out of memory");
			it->known = find_failure(run, it->path);
		}
	}
	return 0;
}

/* Point each item at its entry in run->prev (again, when prev changed). */
static int bind_prev(struct run *run, struct err *e)
{
	xfree(run->prev_seen);
	run->prev_seen = alloc_array_zero(run->prev.n_entries ? run->prev.n_entries : 1, sizeof(bool));
	if (!run->prev_seen)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < run->n_items; i++) {
		struct item *it = &run->items[i];
		it->prev = manifest_find(&run->prev, it->path);
		it->redescribe = false;
		if (it->prev)
			run->prev_seen[it->prev - run->prev.entries] = true;
	}
	return 0;
}

/* ---- step 3: classify ------------------------------------------------ */

/* Absolute source path of an archive path of this root. */
static char *source_of(const struct root *rt, const char *apath)
{
	size_t n = strlen(rt->label);
	if (strncmp(apath, rt->label, n) != 0 || apath[n] != '/')
		return NULL;
	return join2(rt->walk.root_real, apath + n + 1);
}

static bool stat_matches(const struct stat *st, uint64_t size, int64_t mtime,
			 uint64_t inode)
{
	return (uint64_t)st->st_size == size && stat_mtime_ns(st) == mtime &&
	       (uint64_t)st->st_ino == inode;
}

/*
 * The sidecar of a scan: "<file>.meta.json" ("hand.ply.meta.json"), else
 * "<stem>.meta.json" ("hand.meta.json").  Returns a new string, or NULL
 * when neither is a regular file (or out of memory).
 */
static char *find_sidecar(const char *source)
{
	struct stat st;
	char *p = concat(source, SIDECAR_SUFFIX);
	if (!p || (stat(p, &st) == 0 && S_ISREG(st.st_mode)))
		return p;
	xfree(p);
	const char *slash = strrchr(source, '/');
	const char *dot = strrchr(slash ? slash + 1 : source, '.');
	if (!dot || dot == (slash ? slash + 1 : source))
		return NULL;
	size_t stem = (size_t)(dot - source);
	p = xmalloc(stem + sizeof(SIDECAR_SUFFIX));
	if (!p)
		return NULL;
	memcpy(p, source, stem);
	memcpy(p + stem, SIDECAR_SUFFIX, sizeof(SIDECAR_SUFFIX));
	if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
		return p;
	xfree(p);
	return NULL;
}

static const struct manifest_file *role_file(const struct manifest_entry *en,
					    enum manifest_role r)
{
	for (size_t i = 0; i < en->n_files; i++)
		if (en->files[i].role == r)
			return &en->files[i];
	return NULL;
}

/* The sidecar found now is the one the entry records (or both absent). */
static bool same_sidecar(const struct item *it, const struct manifest_entry *p)
{
	const struct manifest_file *f = role_file(p, MANIFEST_ROLE_SIDECAR);
	char *now = find_sidecar(it->source);
	char *was = f ? source_of(it->root, f->path) : NULL;
	bool same = (!now && !f) || (now && was && !strcmp(now, was));
	xfree(now);
	xfree(was);
	return same;
}

/* Every file of the entry has the stat recorded (missing ones still missing). */
static bool files_unchanged(const struct item *it)
{
	const struct manifest_entry *p = it->prev;
	for (size_t i = 0; i < p->n_files; i++) {
		const struct manifest_file *f = &p->files[i];
		char *src = source_of(it->root, f->path);
		struct stat st;
		bool ok = src && stat(src, &st) == 0 && S_ISREG(st.st_mode);
		xfree(src);
		if (f->missing ? ok : !ok)
			return false;
		if (!f->missing && !stat_matches(&st, f->size, f->mtime_ns, f->inode))
			return false;
	}
	return same_sidecar(it, p);
}

/*
 * The entry was not described with this run's schema: neither its
 * descriptors nor its being undescribable are current.
 */
static bool needs_describe(const struct run *run, const struct manifest_entry *en)
{
	if (!run->h->describe || !run->h->desc_schema)
		return false;
	const char *with = en->desc.schema ? en->desc.schema : en->undesc.schema;
	return !with || strcmp(with, run->h->desc_schema) != 0;
}

static void classify(const struct run *run, struct item *it)
{
	const struct walk_file *wf = it->wf;
	if (it->known && it->known->size == wf->size && it->known->mtime_ns == wf->mtime_ns &&
	    it->known->inode == wf->inode) {
		it->kind = K_KNOWN_FAIL;
		return;
	}
	if (!it->prev) {
		it->kind = K_READ;
		return;
	}
	if (needs_describe(run, it->prev)) {
		it->kind = K_READ;
		it->redescribe = true;
		return;
	}
	if (it->prev->size == wf->size && it->prev->mtime_ns == wf->mtime_ns &&
	    it->prev->inode == wf->inode && files_unchanged(it))
		it->kind = K_UNCHANGED;
	else
		it->kind = K_CHECK;
}

/* ---- step 4: hash, read, validate ----------------------------------- */

/* Hash a file, recording its stat.  Returns 0 or ERR_*. */
static int hash_file(const char *path, unsigned char d[SHA256_LEN], struct stat *st,
		     uint64_t *size, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	err_set_path(e, path);
	if (fd < 0)
		return err_set_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "cannot open");
	int rc = 0;
	if (fstat(fd, st) < 0)
		rc = err_set_errno(e, ERR_IO, "cannot stat");
	else if (!S_ISREG(st->st_mode))
		rc = err_set(e, ERR_IO, "not a regular file");
	else
		rc = sha256_fd(fd, d, size, e);
	close(fd);
	return rc;
}

/*
 * The scan's bytes are unchanged: is everything it refers to unchanged
 * too?  Fills a copy of the previous entry with the new stats when so.
 */
static int try_touch(struct item *it, const unsigned char d[SHA256_LEN],
		     const struct stat *st, uint64_t size, bool *same)
{
	const struct manifest_entry *p = it->prev;
	struct manifest_entry c;
	int rc;

	*same = false;
	if (memcmp(d, p->blob, SHA256_LEN) != 0 || size != p->size)
		return 0;
	if (!same_sidecar(it, p))
		return 0;
	if ((rc = manifest_entry_copy(&c, p, &it->err)) < 0)
		return rc;
	c.mtime_ns = stat_mtime_ns(st);
	c.inode = (uint64_t)st->st_ino;
	c.mode = (uint32_t)(st->st_mode & 07777);
	for (size_t i = 0; i < c.n_files; i++) {
		struct manifest_file *f = &c.files[i];
		char *src = source_of(it->root, f->path);
		struct stat fst;
		unsigned char fd_[SHA256_LEN];
		uint64_t fsize;
		struct err fe;
		if (!src) {
			manifest_entry_release(&c);
			return 0;
		}
		if (f->missing) {
			bool there = stat(src, &fst) == 0;
			xfree(src);
			if (there) {
				manifest_entry_release(&c);
				return 0;
			}
			continue;
		}
		err_init(&fe);
		rc = hash_file(src, fd_, &fst, &fsize, &fe);
		xfree(src);
		if (rc < 0 || memcmp(fd_, f->blob, SHA256_LEN) != 0 || fsize != f->size) {
			manifest_entry_release(&c);
			return 0; /* a full read will report or fix it */
		}
		f->mtime_ns = stat_mtime_ns(&fst);
		f->inode = (uint64_t)fst.st_ino;
		f->mode = (uint32_t)(fst.st_mode & 07777);
	}
	it->entry = c;
	*same = true;
	return 0;
}

/* Archive path of a resolved reference below the root, or NULL. */
static char *ref_archive_path(const struct item *it, const char *resolved)
{
	const char *rr = it->root->walk.root_real;
	size_t n = strlen(rr), len;
	if (strncmp(resolved, rr, n) != 0 || resolved[n] != '/')
		return NULL;
	const char *p = resolved + n + 1;
	len = strlen(it->root->label) + strlen(p) + 2;
	char *out = xmalloc(len), *q = out;
	if (!out)
		return NULL;
	q += snprintf(q, len, "%s", it->root->label);
	/* drop empty and "." components that resolution may leave */
	while (*p) {
		const char *s = strchr(p, '/');
		size_t k = s ? (size_t)(s - p) : strlen(p);
		if (k == 2 && p[0] == '.' && p[1] == '.') {
			xfree(out);
			return NULL;
		}
		if (k && !(k == 1 && p[0] == '.')) {
			*q++ = '/';
			memcpy(q, p, k);
			q += k;
		}
		p += k;
		if (*p == '/')
			p++;
	}
	*q = '\0';
	if (!volume_path_safe(out)) {
		xfree(out);
		return NULL;
	}
	return out;
}

/* Collects the files of one scan while it is being read. */
struct refs {
	size_t n, cap;
	struct manifest_file *files;
	char **src;
};

static void refs_release(struct refs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		xfree(r->files[i].path);
		xfree(r->src[i]);
	}
	xfree(r->files);
	xfree(r->src);
	memset(r, 0, sizeof(*r));
}

/*
 * Record the file at resolved (absolute) in role; warns into s when it
 * is missing or outside the tree.  Returns 0 or ERR_NOMEM/ERR_IO.
 */
static int add_ref(const struct run *run, const struct item *it, struct refs *r,
		   struct scan *s, enum manifest_role role, const char *declared,
		   const char *resolved, struct err *e)
{
	char *apath = ref_archive_path(it, resolved);
	struct stat st;
	int rc = 0;

	if (!apath)
		return scan_warn(s, "%s '%s' is outside the source tree; not stored",
				 manifest_role_name(role), declared) ? err_set(e, ERR_NOMEM, "out of memory") : 0;
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->files[i].path, apath)) {
			xfree(apath);
			return 0;
		}
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 4;
		struct manifest_file *nf = realloc_array(r->files, cap, sizeof(*nf));
		if (nf)
			r->files = nf;
		char **ns = realloc_array(r->src, cap, sizeof(*ns));
		if (ns)
			r->src = ns;
		if (!nf || !ns) {
			xfree(apath);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		r->cap = cap;
	}
	struct manifest_file *f = &r->files[r->n];
	memset(f, 0, sizeof(*f));
	f->path = apath;
	f->role = role;
	r->src[r->n] = NULL;
	r->n++;
	bool there = stat(resolved, &st) == 0 && S_ISREG(st.st_mode);
	if (there && !run->o->follow_symlinks && !walk_inside(it->root->walk.root_real, resolved)) {
		/* a symlink out of the tree: same policy as the walk */
		f->missing = true;
		return scan_warn(s, "%s '%s' is a symlink leading outside the source tree; not stored",
				 manifest_role_name(role), declared) ? err_set(e, ERR_NOMEM, "out of memory") : 0;
	}
	if (!there) {
		f->missing = true;
		return 0;
	}
	uint64_t size;
	struct err he;
	err_init(&he);
	if ((rc = hash_file(resolved, f->blob, &st, &size, &he)) < 0) {
		/* unreadable texture: the scan fails, it would be incomplete */
		*e = he;
		return rc;
	}
	f->size = size;
	f->mtime_ns = stat_mtime_ns(&st);
	f->inode = (uint64_t)st.st_ino;
	f->mode = (uint32_t)(st.st_mode & 07777);
	if (!(r->src[r->n - 1] = xstrdup(resolved)))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

/* Parse the sidecar (if small enough) into an object; warnings into s. */
static int read_sidecar(const char *path, struct scan *s, json_t **meta,
			struct err *e)
{
	json_error_t je;
	struct stat st;

	*meta = NULL;
	if (stat(path, &st) < 0)
		return 0;
	if ((uint64_t)st.st_size > SIDECAR_MAX_BYTES)
		return scan_warn(s, "sidecar is larger than %zu bytes; stored but not read",
				 SIDECAR_MAX_BYTES) ? err_set(e, ERR_NOMEM, "out of memory") : 0;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return scan_warn(s, "sidecar %s: line %d: %s; stored but not used",
				 path, je.line, j ? "not a JSON object" : je.text)
			       ? err_set(e, ERR_NOMEM, "out of memory") : 0;
	}
	*meta = j;
	return 0;
}

static json_t *float3(const float v[3])
{
	return json_pack("[f,f,f]", (double)v[0], (double)v[1], (double)v[2]);
}

static json_t *scan_stats(const struct scan *s)
{
	json_t *w = json_array();
	for (size_t i = 0; w && i < s->n_warnings; i++)
		json_array_append_new(w, json_string(s->warnings[i]));
	return json_pack("{s:s, s:I, s:I, s:I, s:b, s:b, s:b, s:I, s:o, s:o, s:I, s:o}",
			 "encoding", s->encoding,
			 "vertices", (json_int_t)s->n_vertices,
			 "faces", (json_int_t)s->n_faces,
			 "polygons", (json_int_t)s->n_polygons,
			 "normals", s->normals != NULL,
			 "colors", s->colors || s->face_colors,
			 "uvs", s->uvs || s->corner_uvs,
			 "textures", (json_int_t)s->n_textures,
			 "bbox_min", float3(s->bbox_min),
			 "bbox_max", float3(s->bbox_max),
			 "nonfinite", (json_int_t)s->n_nonfinite,
			 "warnings", w);
}

static int read_full(const struct run *run, struct item *it,
		     const unsigned char d[SHA256_LEN], const struct stat *st,
		     uint64_t size)
{
	struct manifest_entry *en = &it->entry;
	struct err *e = &it->err;
	struct refs r = { 0 };
	struct scan s;
	json_t *side = NULL;
	char *sidecar = NULL;
	int rc;

	memset(en, 0, sizeof(*en));
	if ((rc = scan_read_file(it->source, NULL, &s, e)) < 0) {
		err_set_path(e, it->shown);
		return rc;
	}
	err_set_path(e, it->shown);
	if (!(en->path = xstrdup(it->path)) || !(en->source = xstrdup(it->source)) ||
	    !(en->format = xstrdup(s.format))) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(en->blob, d, SHA256_LEN);
	en->size = size;
	en->mtime_ns = stat_mtime_ns(st);
	en->inode = (uint64_t)st->st_ino;
	en->mode = (uint32_t)(st->st_mode & 07777);
	en->since = run->version;

	/* the files that make the scan whole: MTL, textures, sidecar */
	for (size_t i = 0; i < s.n_libraries; i++) {
		char *res = format_resolve_ref(it->source, s.libraries[i], strlen(s.libraries[i]));
		if (!res)
			continue; /* unsafe: the reader already warned */
		rc = add_ref(run, it, &r, &s, MANIFEST_ROLE_MTL, s.libraries[i], res, e);
		xfree(res);
		if (rc < 0)
			goto out;
	}
	for (size_t i = 0; i < s.n_textures; i++) {
		const struct scan_texture *t = &s.textures[i];
		if (!t->resolved)
			continue;
		if ((rc = add_ref(run, it, &r, &s, MANIFEST_ROLE_TEXTURE, t->declared, t->resolved, e)) < 0)
			goto out;
	}
	if ((sidecar = find_sidecar(it->source))) {
		if ((rc = add_ref(run, it, &r, &s, MANIFEST_ROLE_SIDECAR, sidecar, sidecar, e)) < 0 ||
		    (rc = read_sidecar(sidecar, &s, &side, e)) < 0)
			goto out;
	}

	/* metadata: file comments, then the sidecar on top */
	en->meta = json_object();
	if (!en->meta) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < s.n_meta; i++)
		json_object_set_new(en->meta, s.meta[i].key, json_string(s.meta[i].value));
	if (side)
		json_object_update(en->meta, side);
	const char *units = NULL, *usrc = NULL;
	json_t *su = side ? json_object_get(side, "units") : NULL;
	if (json_is_string(su)) {
		enum scan_units u = scan_units_parse(json_string_value(su), json_string_length(su));
		if (u != UNITS_UNKNOWN) {
			units = scan_units_name(u);
			usrc = "sidecar";
		} else if (scan_warn(&s, "sidecar units '%s' not understood; ignored",
				     json_string_value(su))) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if (!units && s.units != UNITS_UNKNOWN) {
		units = scan_units_name(s.units);
		usrc = "file";
	}
	if (!units) {
		units = run->o->default_units;
		usrc = "default";
	}
	if (!(en->units = xstrdup(units)) || !(en->units_source = xstrdup(usrc)) ||
	    !(en->stats = scan_stats(&s))) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	en->files = r.files;
	en->n_files = r.n;
	it->file_src = r.src;
	it->n_file_src = r.n;
	memset(&r, 0, sizeof(r));

	if (run->h->describe) {
		unsigned char *buf = NULL;
		size_t len = 0;
		rc = run->h->describe(run->h->ctx, &s, en, &buf, &len, e);
		if (rc == ERR_UNDESCRIBABLE && run->h->desc_schema) {
			/* a valid scan, too thin to describe: stored, not searchable */
			xfree(buf);
			if (!(en->undesc.schema = xstrdup(run->h->desc_schema)) ||
			    !(en->undesc.reason = xstrdup(e->msg))) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				goto out;
			}
			err_init(e);
		} else if (rc < 0) {
			if (!e->path[0])
				err_set_path(e, it->shown);
			xfree(buf);
			goto out;
		} else if (buf && run->h->desc_schema) {
			if (!(en->desc.schema = xstrdup(run->h->desc_schema)) ||
			    (rc = sha256_buffer(buf, len, en->desc.blob, e)) < 0) {
				xfree(buf);
				rc = rc < 0 ? rc : err_set(e, ERR_NOMEM, "out of memory");
				goto out;
			}
			en->desc.size = len;
			it->desc = buf;
			it->desc_len = len;
		} else {
			xfree(buf);
		}
	}
	rc = 0;
out:
	json_decref(side);
	xfree(sidecar);
	refs_release(&r);
	scan_release(&s);
	return rc;
}

static void process(const struct run *run, struct item *it)
{
	unsigned char d[SHA256_LEN];
	struct stat st;
	uint64_t size;
	bool same = false;
	int rc;

	if ((rc = hash_file(it->source, d, &st, &size, &it->err)) < 0)
		goto fail;
	if (it->kind == K_CHECK && (rc = try_touch(it, d, &st, size, &same)) < 0)
		goto fail;
	if (same) {
		it->status = S_TOUCHED;
		return;
	}
	if ((rc = read_full(run, it, d, &st, size)) < 0)
		goto fail;
	it->status = S_NEW;
	return;
fail:
	err_set_path(&it->err, it->shown);
	manifest_entry_release(&it->entry);
	it->status = S_FAILED;
}

static void classify_items(struct run *run)
{
	size_t n = run->n_items;
	int jobs = run->o->jobs > 0 ? run->o->jobs : omp_get_max_threads();

	#pragma omp parallel for schedule(dynamic, 16) num_threads(jobs)
	for (size_t i = 0; i < n; i++)
		classify(run, &run->items[i]);
}

static int process_items(struct run *run)
{
	size_t n = run->n_items, n_work = 0;
	uint64_t bytes = 0;
	int jobs = run->o->jobs > 0 ? run->o->jobs : omp_get_max_threads();

	size_t *work = alloc_array(n ? n : 1, sizeof(*work));
	if (!work)
		return ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct item *it = &run->items[i];
		if (it->kind == K_UNCHANGED)
			it->status = S_UNCHANGED;
		else if (it->kind == K_KNOWN_FAIL)
			it->status = S_FAILED;
		else {
			work[n_work++] = i;
			bytes += it->wf->size;
		}
	}
	struct progress *p = progress_start(run->o->progress, "reading scans", n_work, bytes);
	#pragma omp parallel for schedule(dynamic, 1) num_threads(jobs)
	for (size_t k = 0; k < n_work; k++) {
		struct item *it = &run->items[work[k]];
		process(run, it);
		progress_add(p, 1, it->wf->size);
	}
	progress_stop(&p);
	xfree(work);
	return 0;
}

/* ---- step 5: pack ---------------------------------------------------- */

static int cmp_pending(const void *x, const void *y)
{
	const struct pending *a = x, *b = y;
	return memcmp(a->digest, b->digest, SHA256_LEN);
}

static int push_pending(struct run *run, size_t *cap, const unsigned char d[SHA256_LEN],
			uint64_t size, const char *source, const unsigned char *buf)
{
	if (alloc_grow((void **)&run->pending, cap, run->n_pending + 1, sizeof(*run->pending)) < 0)
		return ERR_NOMEM;
	struct pending *p = &run->pending[run->n_pending++];
	memcpy(p->digest, d, SHA256_LEN);
	p->size = size;
	p->source = source;
	p->buf = buf;
	p->bad = false;
	return 0;
}

/* The blobs of new entries the archive does not hold yet, sorted, unique. */
static int collect_pending(struct run *run, struct err *e)
{
	size_t cap = 0, n = 0;
	int rc;
	for (size_t i = 0; i < run->n_items; i++) {
		struct item *it = &run->items[i];
		if (it->status != S_NEW)
			continue;
		struct manifest_entry *en = &it->entry;
		if (push_pending(run, &cap, en->blob, en->size, it->source, NULL) < 0)
			return err_set(e, ERR_NOMEM, "out of memory");
		for (size_t k = 0; k < en->n_files; k++)
			if (!en->files[k].missing &&
			    push_pending(run, &cap, en->files[k].blob, en->files[k].size,
					 it->file_src[k], NULL) < 0)
				return err_set(e, ERR_NOMEM, "out of memory");
		if (it->desc && push_pending(run, &cap, en->desc.blob, it->desc_len, NULL, it->desc) < 0)
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	if (!run->n_pending)
		return 0;
	if (run->have_archive && (rc = archive_dir_load_blobs(&run->a, e)) < 0)
		return rc;
	qsort(run->pending, run->n_pending, sizeof(*run->pending), cmp_pending);
	for (size_t i = 0; i < run->n_pending; i++) {
		struct pending *p = &run->pending[i];
		if (n && !memcmp(run->pending[n - 1].digest, p->digest, SHA256_LEN))
			continue;
		if (run->have_archive && archive_dir_find_blob(&run->a, p->digest))
			continue;
		run->pending[n++] = *p;
	}
	run->n_pending = n;
	return 0;
}

static const struct pending *find_pending(const struct run *run,
					  const unsigned char d[SHA256_LEN])
{
	size_t lo = 0, hi = run->n_pending;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(run->pending[mid].digest, d, SHA256_LEN);
		if (!c)
			return &run->pending[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool blob_bad(const struct run *run, const unsigned char d[SHA256_LEN])
{
	const struct pending *p = find_pending(run, d);
	return p && p->bad;
}

/*
 * Write every pending blob to vo, re-hashing as it copies.  A file that
 * changed since it was read is left unlisted and its scan fails.
 */
static int pack(struct run *run, struct archive_volume_out *vo, struct err *e)
{
	uint64_t bytes = 0;
	int rc = 0;

	for (size_t i = 0; i < run->n_pending; i++)
		bytes += run->pending[i].size;
	struct progress *p = progress_start(run->o->progress, "writing volume",
					    run->n_pending, bytes);
	for (size_t i = 0; i < run->n_pending; i++) {
		struct pending *pd = &run->pending[i];
		bool stored = true;
		if (pd->buf) {
			rc = archive_dir_volume_add_buffer(vo, pd->digest, pd->buf, (size_t)pd->size, e);
		} else {
			int fd = open(pd->source, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				stored = false; /* gone since it was read */
			} else {
				rc = archive_dir_volume_add_fd(vo, pd->digest, pd->size, fd, &stored, e);
				close(fd);
				if (rc < 0)
					err_set_path(e, pd->source);
			}
		}
		if (rc < 0)
			break;
		pd->bad = !stored;
		progress_add(p, 1, pd->size);
	}
	progress_stop(&p);
	if (rc < 0)
		return rc;
	/* fail the scans whose bytes moved under us; the next run retries */
	for (size_t i = 0; i < run->n_items; i++) {
		struct item *it = &run->items[i];
		if (it->status != S_NEW)
			continue;
		bool bad = blob_bad(run, it->entry.blob);
		for (size_t k = 0; !bad && k < it->entry.n_files; k++)
			bad = !it->entry.files[k].missing && blob_bad(run, it->entry.files[k].blob);
		if (!bad)
			continue;
		manifest_entry_release(&it->entry);
		err_init(&it->err);
		err_set_path(&it->err, it->shown);
		err_set(&it->err, ERR_IO, "changed while being archived; it will be read again next run");
		it->status = S_FAILED;
	}
	return 0;
}

/* ---- compose the new manifest ---------------------------------------- */

static bool protected_path(const struct run *run, const char *path)
{
	for (size_t i = 0; i < run->n_roots; i++) {
		const struct root *rt = &run->roots[i];
		size_t n = strlen(rt->label);
		if (strncmp(path, rt->label, n) != 0 || path[n] != '/')
			continue;
		if (rt->protect)
			return true;
		const char *rel = path + n + 1;
		for (size_t k = 0; k < rt->walk.n_notes; k++) {
			const struct walk_note *wn = &rt->walk.notes[k];
			size_t m = strlen(wn->rel);
			if (wn->unreadable && (!m || (!strncmp(rel, wn->rel, m) && rel[m] == '/')))
				return true;
		}
		return false;
	}
	return true; /* a label not walked in this run: keep */
}

static int cmp_entry(const void *x, const void *y)
{
	const struct manifest_entry *a = x, *b = y;
	return strcmp(a->path, b->path);
}

static int cmp_mfail(const void *x, const void *y)
{
	const struct manifest_failure *a = x, *b = y;
	return strcmp(a->path, b->path);
}

static int code_of_name(const char *name)
{
	for (int c = ERR_NOMEM; c >= ERR_LAST; c--)
		if (!strcmp(err_code_name(c), name))
			return c;
	return ERR_INTERNAL;
}

/* The error to report for a scan that failed before and is unchanged. */
static void known_err(const struct item *it, struct err *ke)
{
	/* the message already names the file */
	err_init(ke);
	err_set(ke, code_of_name(it->known->code), "%s", it->known->message);
}

static int fill_failure(struct manifest_failure *f, const struct item *it,
			const struct err *er)
{
	char buf[ERR_PATH_MAX + 512];
	memset(f, 0, sizeof(f[0]));
	f->path = xstrdup(it->path);
	f->source = xstrdup(it->source);
	f->code = xstrdup(err_code_name(er->code));
	f->message = xstrdup(err_format(er, buf, sizeof(buf)));
	f->size = it->wf->size;
	f->mtime_ns = it->wf->mtime_ns;
	f->inode = it->wf->inode;
	return f->path && f->source && f->code && f->message ? 0 : ERR_NOMEM;
}

/*
 * Build m from the items and the previous manifest (whose entries are
 * moved, not copied).  Counts go to run->r.
 */
static int compose(struct run *run, struct manifest *m, struct err *e)
{
	struct index_result *r = run->r;
	size_t cap = run->n_items + run->prev.n_entries;

	manifest_init(m);
	m->version = run->version;
	m->parent = run->a.head.version;
	m->created = run->now;
	m->entries = alloc_array_zero(cap ? cap : 1, sizeof(*m->entries));
	m->failed = alloc_array_zero(run->n_items ? run->n_items : 1, sizeof(*m->failed));
	if (!m->entries || !m->failed)
		return err_set(e, ERR_NOMEM, "out of memory");

	for (size_t i = 0; i < run->n_items; i++) {
		struct item *it = &run->items[i];
		struct manifest_entry *dst = &m->entries[m->n_entries];
		switch (it->status) {
		case S_UNCHANGED:
			*dst = *it->prev;
			memset((void *)it->prev, 0, sizeof(*it->prev));
			m->n_entries++;
			r->unchanged++;
			break;
		case S_TOUCHED:
			*dst = it->entry;
			memset(&it->entry, 0, sizeof(it->entry));
			m->n_entries++;
			r->touched++;
			break;
		case S_NEW:
			*dst = it->entry;
			memset(&it->entry, 0, sizeof(it->entry));
			m->n_entries++;
			if (dst->undesc.schema &&
			    add_warning(r, it->shown, it->path, ERR_UNDESCRIBABLE, "not searchable",
					dst->undesc.reason) < 0)
				return err_set(e, ERR_NOMEM, "out of memory");
			if (!it->prev)
				r->added++;
			else if (it->redescribe && !memcmp(dst->blob, it->prev->blob, SHA256_LEN))
				r->redescribed++;
			else
				r->changed++;
			break;
		case S_FAILED: {
			const struct err *er = &it->err;
			struct err ke;
			int frc;
			if (it->kind == K_KNOWN_FAIL) {
				known_err(it, &ke);
				er = &ke;
			}
			frc = fill_failure(&m->failed[m->n_failed], it, er);
			m->n_failed++;
			if (frc < 0)
				return err_set(e, ERR_NOMEM, "out of memory");
			if (add_failure(r, it->shown, it->path, er, it->kind == K_KNOWN_FAIL) < 0)
				return err_set(e, ERR_NOMEM, "out of memory");
			if (it->prev) {
				/* keep the good copy the archive already has */
				*dst = *it->prev;
				memset((void *)it->prev, 0, sizeof(*it->prev));
				m->n_entries++;
			}
			break;
		}
		}
	}
	for (size_t j = 0; j < run->prev.n_entries; j++) {
		struct manifest_entry *pe = &run->prev.entries[j];
		if (run->prev_seen[j] || !pe->path)
			continue;
		if (!protected_path(run, pe->path)) {
			r->removed++;
			continue;
		}
		m->entries[m->n_entries++] = *pe;
		memset(pe, 0, sizeof(*pe));
		r->unchanged++;
	}
	qsort(m->entries, m->n_entries, sizeof(*m->entries), cmp_entry);
	qsort(m->failed, m->n_failed, sizeof(*m->failed), cmp_mfail);
	m->counts.added = r->added;
	m->counts.changed = r->changed + r->redescribed;
	m->counts.removed = r->removed;
	m->counts.unchanged = r->unchanged;
	m->counts.touched = r->touched;
	m->counts.failed = r->n_failed;
	return 0;
}

/* Roots of the new version: those walked now, then older ones kept. */
static int compose_roots(struct run *run, struct manifest *m, struct err *e)
{
	size_t cap = run->n_roots + run->prev.n_roots;
	m->roots = alloc_array_zero(cap ? cap : 1, sizeof(*m->roots));
	if (!m->roots)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < run->n_roots; i++) {
		struct manifest_root *mr = &m->roots[m->n_roots++];
		mr->label = xstrdup(run->roots[i].label);
		mr->source = xstrdup(run->roots[i].walk.root_real);
		if (!mr->label || !mr->source)
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < run->prev.n_roots; i++) {
		bool dup = false;
		for (size_t k = 0; k < run->n_roots; k++)
			dup |= !strcmp(run->prev.roots[i].label, run->roots[k].label);
		if (dup || !prefix_entries(m, run->prev.roots[i].label))
			continue;
		m->roots[m->n_roots++] = run->prev.roots[i];
		memset(&run->prev.roots[i], 0, sizeof(run->prev.roots[i]));
	}
	return 0;
}

/* ---- the run --------------------------------------------------------- */

/*
 * Read DIR/name whole into a NUL-terminated buffer (xfree), or NULL when
 * it does not exist.  Returns 0 or ERR_NOMEM.
 */
static int read_cache(const struct run *run, const char *name, char **out, size_t *len)
{
	char path[ERR_PATH_MAX];
	size_t cap = 0, n = 0;
	char *buf = NULL;
	FILE *f;

	*out = NULL;
	*len = 0;
	snprintf(path, sizeof(path), "%s/%s", run->a.path, name);
	if (!(f = fopen(path, "rb")))
		return 0;
	for (;;) {
		if (alloc_grow((void **)&buf, &cap, n + 65536, 1) < 0) {
			fclose(f);
			xfree(buf);
			return ERR_NOMEM;
		}
		size_t k = fread(buf + n, 1, cap - n - 1, f);
		n += k;
		if (k == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int load_failure_cache(struct run *run)
{
	struct err fe;
	size_t n;
	int rc = read_cache(run, "failures.json", &run->fcache_raw, &n);
	if (rc < 0 || !run->fcache_raw)
		return rc;
	err_init(&fe);
	/* a damaged cache is only a cache: ignore it, files get re-read */
	if (failures_parse(run->fcache_raw, n, &run->fcache, &run->n_fcache, &fe) < 0) {
		run->fcache = NULL;
		run->n_fcache = 0;
	}
	return 0;
}

/*
 * Load statcache.json into run->prev when it describes HEAD.  Returns
 * true when it did; a missing, stale or damaged cache is just ignored.
 */
static bool load_statcache(struct run *run)
{
	char *buf;
	size_t n;
	uint64_t v;
	struct err fe;
	bool ok = false;

	if (read_cache(run, "statcache.json", &buf, &n) < 0 || !buf)
		return false;
	err_init(&fe);
	if (statcache_parse(buf, n, &v, &run->prev, &fe) == 0) {
		ok = v == run->a.head.version;
		if (!ok)
			manifest_release(&run->prev);
	}
	xfree(buf);
	return ok;
}

static int save_statcache(struct run *run, const struct manifest *m,
			  uint64_t version, struct err *e)
{
	char *json;
	size_t len;
	int rc = statcache_dump(m, version, &json, &len, e);
	if (rc < 0)
		return rc;
	rc = archive_dir_put_file(&run->a, ".", "statcache.json", json, len, "statcache", e);
	xfree(json);
	return rc;
}

/*
 * With only the stat cache loaded: when nothing at all changed, report
 * that and set *quick; otherwise the full manifest is needed.
 */
static int quick_unchanged(struct run *run, bool *quick, struct err *e)
{
	struct index_result *r = run->r;
	*quick = false;
	for (size_t i = 0; i < run->n_items; i++)
		if (run->items[i].kind != K_UNCHANGED && run->items[i].kind != K_KNOWN_FAIL)
			return 0;
	size_t carried = 0;
	for (size_t j = 0; j < run->prev.n_entries; j++) {
		if (run->prev_seen[j])
			continue;
		if (!protected_path(run, run->prev.entries[j].path))
			return 0; /* a removal */
		carried++;
	}
	for (size_t i = 0; i < run->n_items; i++) {
		struct item *it = &run->items[i];
		if (it->kind == K_UNCHANGED) {
			r->unchanged++;
			continue;
		}
		struct err ke;
		known_err(it, &ke);
		if (add_failure(r, it->shown, it->path, &ke, true) < 0)
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	r->unchanged += carried;
	*quick = true;
	return 0;
}

static int save_failure_cache(struct run *run, const struct manifest *m,
			      struct err *e)
{
	char *json;
	size_t len;
	int rc;

	if (!m->n_failed && !run->fcache_raw)
		return 0;
	if ((rc = failures_dump(m->failed, m->n_failed, &json, &len, e)) < 0)
		return rc;
	if (!run->fcache_raw || strcmp(run->fcache_raw, json) != 0)
		rc = archive_dir_put_file(&run->a, ".", "failures.json", json, len, "failures", e);
	xfree(json);
	return rc;
}

static void run_release(struct run *run)
{
	for (size_t i = 0; i < run->n_items; i++) {
		struct item *it = &run->items[i];
		xfree(it->path);
		xfree(it->source);
		xfree(it->shown);
		for (size_t k = 0; k < it->n_file_src; k++)
			xfree(it->file_src[k]);
		xfree(it->file_src);
		manifest_entry_release(&it->entry);
		xfree(it->desc);
	}
	xfree(run->items);
	xfree(run->pending);
	xfree(run->prev_seen);
	for (size_t i = 0; i < run->n_roots; i++) {
		xfree(run->roots[i].label);
		walk_result_release(&run->roots[i].walk);
	}
	xfree(run->roots);
	failures_free(run->fcache, run->n_fcache);
	xfree(run->fcache_raw);
	manifest_release(&run->prev);
	if (run->have_archive)
		archive_dir_release(&run->a);
}

int index_put_search_index(struct archive_dir *a, const struct index_hooks *h,
			   struct manifest *m, struct err *e)
{
	char tmp_name[64], tmp_path[ERR_PATH_MAX], name[64];
	const char *schema = NULL;
	unsigned char d[SHA256_LEN];
	uint64_t size;
	int rc;

	if (!h->build_index)
		return 0;
	snprintf(tmp_name, sizeof(tmp_name), "%08" PRIu64 ".index", m->version);
	archive_dir_tmp_path(a, tmp_name, tmp_path, sizeof(tmp_path));
	rc = h->build_index(h->ctx, a, m, tmp_path, &schema, e);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return 0;
	if ((rc = sha256_file(tmp_path, d, &size, e)) < 0)
		return rc;
	snprintf(name, sizeof(name), "%08" PRIu64 ".index", m->version);
	if ((rc = archive_dir_put_tmp(a, tmp_name, name, e)) < 0)
		return rc;
	m->index.file = xstrdup(name);
	m->index.schema = xstrdup(schema ? schema : "unknown");
	if (!m->index.file || !m->index.schema)
		return err_set(e, ERR_NOMEM, "out of memory");
	memcpy(m->index.sha256, d, SHA256_LEN);
	m->index.size = size;
	fault_point("index-written");
	return 0;
}

static int commit(struct run *run, struct manifest *m,
		  struct archive_volume_out *vo, bool have_vol, struct err *e)
{
	struct head h;
	int rc;

	if ((rc = head_copy(&h, &run->a.head, e)) < 0)
		return rc;
	if (have_vol && vo->idx.n_blobs) {
		m->volume = vo->id;
		m->new_blobs = vo->idx.n_blobs;
		for (size_t i = 0; i < vo->idx.n_blobs; i++)
			m->new_bytes += vo->idx.blobs[i].size;
		if ((rc = archive_dir_volume_publish(&run->a, vo, e)) < 0)
			goto out;
		if ((rc = head_add_volume(&h, m->volume, e)) < 0)
			goto out;
		h.next_volume = m->volume + 1;
	}
	if ((rc = index_put_search_index(&run->a, run->h, m, e)) < 0 ||
	    (rc = archive_dir_write_manifest(&run->a, m, e)) < 0 ||
	    (rc = head_add_version(&h, m->version, e)) < 0)
		goto out;
	h.version = m->version;
	if ((rc = archive_dir_write_head(&run->a, &h, e)) < 0)
		goto out;
	fault_point("committed");
out:
	head_release(&h);
	return rc;
}

int index_run(const struct index_options *o, const struct index_hooks *h,
	      struct index_result *r, struct err *e)
{
	struct run run;
	struct manifest nm;
	struct archive_volume_out vo;
	bool have_vol = false;
	int rc;

	memset(&run, 0, sizeof(run));
	memset(r, 0, sizeof(*r));
	manifest_init(&nm);
	manifest_init(&run.prev);
	memset(&vo, 0, sizeof(vo));
	vo.fd = -1;
	run.o = o;
	run.h = h ? h : &no_hooks;
	run.r = r;
	run.now = now_unix();

	rc = archive_dir_open(&run.a, o->archive, o->dry_run ? 0 : ARCHIVE_DIR_CREATE, e);
	if (rc == ERR_NOTFOUND && o->dry_run) {
		rc = 0; /* a dry run against a new archive: everything is new */
	} else if (rc < 0) {
		goto out;
	} else {
		run.have_archive = true;
	}
	if (!o->dry_run) {
		if ((rc = archive_dir_lock(&run.a, o->wait, e)) < 0 ||
		    (rc = archive_dir_cleanup(&run.a, &r->n_cleaned, e)) < 0)
			goto out;
	}
	if (run.have_archive && (rc = load_failure_cache(&run)) < 0) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	run.version = run.a.head.version + 1;
	r->version = run.a.head.version;
	if ((rc = walk_roots(&run, e)) < 0 || (rc = make_items(&run, e)) < 0)
		goto out;

	/*
	 * An unchanged tree is recognised from the small stat cache alone;
	 * the full manifest is parsed only when something changed.
	 */
	bool have_cache = run.have_archive && run.a.head.version && load_statcache(&run);
	if (have_cache) {
		bool quick;
		if ((rc = check_empty_roots(&run, e)) < 0 || (rc = bind_prev(&run, e)) < 0)
			goto out;
		classify_items(&run);
		if ((rc = quick_unchanged(&run, &quick, e)) < 0)
			goto out;
		if (quick)
			goto out;
		/* the cache lists the same paths: empty roots stay as found */
		manifest_release(&run.prev);
	}
	if (run.have_archive && run.a.head.version &&
	    (rc = archive_dir_load_manifest(&run.a, run.a.head.version, &run.prev, e)) < 0)
		goto out;
	if ((!have_cache && (rc = check_empty_roots(&run, e)) < 0) || (rc = bind_prev(&run, e)) < 0)
		goto out;
	classify_items(&run);
	if ((rc = process_items(&run)) < 0) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = collect_pending(&run, e)) < 0)
		goto out;

	bool any_new = false;
	for (size_t i = 0; i < run.n_items; i++)
		any_new |= run.items[i].status == S_NEW || run.items[i].status == S_TOUCHED;
	if (!o->dry_run && any_new && run.n_pending) {
		/*
		 * zstd compresses in worker threads while this one reads and
		 * hashes; its output is the same for any number >= 1 of workers,
		 * so volumes do not depend on --jobs.
		 */
		struct volume_write_options vw = { o->level, o->jobs > 0 ? o->jobs : omp_get_max_threads() };
		if ((rc = archive_dir_volume_create(&run.a, run.a.head.next_volume, &vw, &vo, e)) < 0)
			goto out;
		have_vol = true;
		if ((rc = pack(&run, &vo, e)) < 0)
			goto out;
	}
	if ((rc = compose(&run, &nm, e)) < 0 || (rc = compose_roots(&run, &nm, e)) < 0)
		goto out;
	if (!(nm.tool = xstrdup("refscan " REFSCAN_VERSION)) ||
	    !(nm.default_units = xstrdup(o->default_units))) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	bool changes = r->added || r->changed || r->removed || r->touched || r->redescribed;
	if (o->dry_run) {
		r->new_blobs = run.n_pending;
		for (size_t i = 0; i < run.n_pending; i++)
			r->new_bytes += run.pending[i].size;
		if (changes)
			r->version = run.version;
		goto out;
	}
	if (changes) {
		if ((rc = commit(&run, &nm, &vo, have_vol, e)) < 0)
			goto out;
		r->committed = true;
		r->version = nm.version;
		r->volume = nm.volume;
		r->new_blobs = nm.new_blobs;
		r->new_bytes = nm.new_bytes;
	}
	if ((rc = save_failure_cache(&run, &nm, e)) < 0)
		goto out;
	if ((r->committed || (!have_cache && run.a.head.version)) &&
	    (rc = save_statcache(&run, &nm, run.a.head.version, e)) < 0)
		goto out;
out:
	if (have_vol && run.have_archive)
		archive_dir_volume_discard(&run.a, &vo);
	manifest_release(&nm);
	run_release(&run);
	if (rc < 0) {
		r->committed = false;
	}
	return rc;
}

/* ---- command line ---------------------------------------------------- */

static const char index_usage[] =
	"usage: refscan index [--archive DIR] [--jobs N] [--json] [--dry-run]\n"
	"                     [--wait] [--follow-symlinks] [--units U] [--quiet] SRC...\n"
	"\n"
	"Bring the archive up to date with the scans under each SRC directory:\n"
	"store new and changed scans with their MTL files, textures and\n"
	"sidecars (<scan>.meta.json or <stem>.meta.json), and commit one new\n"
	"version (none when nothing changed).  Broken scans are reported and\n"
	"skipped; the archive keeps any earlier good copy.  A scan too thin to\n"
	"describe (fewer than 16 usable points) is stored without descriptors,\n"
	"so it is never a query result, and named once in a warning.\n"
	"\n"
	"  -a, --archive DIR   archive directory (default: $REFSCAN_ARCHIVE,\n"
	"                      else $XDG_DATA_HOME/refscan/archive)\n"
	"  -j, --jobs N        read scans with N threads (default: all cores)\n"
	"      --json          one summary object on stdout\n"
	"  -n, --dry-run       report what would be committed; write nothing\n"
	"      --wait          wait for another writer instead of exiting 75\n"
	"      --follow-symlinks  also follow symlinks that leave SRC\n"
	"      --units U       units of scans that do not say (default:\n"
	"                      $REFSCAN_DEFAULT_UNITS, else mm)\n"
	"      --level N       zstd compression level 1-19 (default: 3)\n"
	"  -q, --quiet         no summary and no progress bar\n"
	"  -h, --help          show this help\n"
	"\n"
	"exit status: 0 every scan is in the archive; 1 some scans failed, the\n"
	"rest were committed; 2 some scans failed and nothing was committed;\n"
	"66 a SRC is missing; 74 I/O error; 75 the archive is locked.\n";

enum { OPT_JSON = 256, OPT_WAIT, OPT_FOLLOW, OPT_UNITS, OPT_LEVEL };

static const struct option index_options[] = {
	{ "archive", required_argument, NULL, 'a' },
	{ "jobs", required_argument, NULL, 'j' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "wait", no_argument, NULL, OPT_WAIT },
	{ "follow-symlinks", no_argument, NULL, OPT_FOLLOW },
	{ "units", required_argument, NULL, OPT_UNITS },
	{ "level", required_argument, NULL, OPT_LEVEL },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno == ERANGE || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static json_t *failure_json(const struct index_failure *f)
{
	return json_pack("{s:s, s:s?, s:o, s:b}", "path", f->path,
			 "archive_path", f->archive_path,
			 "error", out_json_error(&f->err), "known", f->known);
}

static json_t *warning_json(const struct index_warning *w)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "path", w->path, "archive_path", w->archive_path,
			 "code", err_code_name(w->code), "message", w->message);
}

static void print_summary(const struct index_result *r, bool dry_run)
{
	char vol[32] = "";
	if (r->volume)
		snprintf(vol, sizeof(vol), " in volume %08" PRIu64, r->volume);
	if (dry_run && r->version && (r->added || r->changed || r->removed || r->touched || r->redescribed))
		printf("dry run: would commit version %" PRIu64 ": ", r->version);
	else if (r->committed)
		printf("version %" PRIu64 ": ", r->version);
	else if (r->version)
		printf("no changes; version %" PRIu64 " is current: ", r->version);
	else
		printf("nothing to commit; the archive is empty: ");
	printf("%" PRIu64 " added, %" PRIu64 " changed, %" PRIu64 " removed, %" PRIu64
	       " unchanged, %zu failed",
	       r->added, r->changed + r->redescribed, r->removed, r->unchanged + r->touched,
	       r->n_failed);
	if (r->committed || dry_run)
		printf("; %" PRIu64 " new blobs, %.1f MB%s", r->new_blobs,
		       (double)r->new_bytes / 1e6, vol);
	putchar('\n');
}

int cmd_index(int argc, char **argv)
{
	struct index_options o;
	struct index_result r;
	struct err e;
	bool json = false, quiet = false, units_given = false;
	char *archive = NULL;
	const char *aopt = NULL;
	long v;
	int c, status;

	index_options_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "a:j:nqh", index_options, NULL)) != -1) {
		switch (c) {
		case 'a':
			aopt = optarg;
			break;
		case 'j':
			if (parse_int(optarg, 1, 1024, &v) < 0) {
				out_error("--jobs wants a number from 1 to 1024, not '%s'", optarg);
				return EXIT_USAGE;
			}
			o.jobs = (int)v;
			break;
		case OPT_JSON:
			json = true;
			break;
		case 'n':
			o.dry_run = true;
			break;
		case OPT_WAIT:
			o.wait = true;
			break;
		case OPT_FOLLOW:
			o.follow_symlinks = true;
			break;
		case OPT_UNITS: {
			enum scan_units u = scan_units_parse(optarg, strlen(optarg));
			if (u == UNITS_UNKNOWN) {
				out_error("--units: unknown unit '%s' (mm, cm, m, in, um)", optarg);
				return EXIT_USAGE;
			}
			o.default_units = scan_units_name(u);
			units_given = true;
			break;
		}
		case OPT_LEVEL:
			if (parse_int(optarg, 1, 19, &v) < 0) {
				out_error("--level wants a number from 1 to 19, not '%s'", optarg);
				return EXIT_USAGE;
			}
			o.level = (int)v;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			fputs(index_usage, stdout);
			return EXIT_OK;
		default:
			fputs(index_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		out_error("no source directory given");
		fputs(index_usage, stderr);
		return EXIT_USAGE;
	}
	if (!units_given) {
		const char *env = getenv("REFSCAN_DEFAULT_UNITS");
		enum scan_units u = env && *env ? scan_units_parse(env, strlen(env)) : UNITS_UNKNOWN;
		if (env && *env && u == UNITS_UNKNOWN) {
			out_error("REFSCAN_DEFAULT_UNITS: unknown unit '%s' (mm, cm, m, in, um)", env);
			return EXIT_USAGE;
		}
		if (u != UNITS_UNKNOWN)
			o.default_units = scan_units_name(u);
	}
	archive = archive_dir_default(aopt);
	if (!archive) {
		out_error("no archive: pass --archive DIR or set REFSCAN_ARCHIVE");
		return EXIT_USAGE;
	}
	o.archive = archive;
	o.sources = argv + optind;
	o.n_sources = (size_t)(argc - optind);
	o.progress = !json && !quiet && progress_wanted();

	struct descstore_cache cache;
	struct index_hooks hooks;
	descstore_cache_init(&cache);
	descstore_hooks(&hooks, &cache);
	err_init(&e);
	int rc = index_run(&o, &hooks, &r, &e);
	descstore_cache_release(&cache);
	if (rc < 0) {
		out_err(&e);
		if (json) {
			json_t *obj = json_pack("{s:b, s:o}", "committed", 0, "error", out_json_error(&e));
			out_json_line(obj);
		}
		xfree(archive);
		return err_exit_status(rc);
	}
	if (r.n_cleaned)
		out_warning("removed %zu leftover file%s of an interrupted run", r.n_cleaned,
			    r.n_cleaned == 1 ? "" : "s");
	for (size_t i = 0; i < r.n_notes; i++)
		fprintf(stderr, "refscan: %s\n", r.notes[i]);
	for (size_t i = 0; i < r.n_warnings; i++)
		fprintf(stderr, "refscan: %s: warning: %s\n", r.warnings[i].path, r.warnings[i].message);
	for (size_t i = 0; i < r.n_failed; i++) {
		char buf[ERR_PATH_MAX + 512];
		fprintf(stderr, "refscan: %s%s\n", err_format(&r.failed[i].err, buf, sizeof(buf)),
			r.failed[i].known ? " (unchanged since it failed)" : "");
	}
	if (json) {
		json_t *failed = json_array(), *warnings = json_array();
		for (size_t i = 0; i < r.n_failed; i++)
			json_array_append_new(failed, failure_json(&r.failed[i]));
		for (size_t i = 0; i < r.n_warnings; i++)
			json_array_append_new(warnings, warning_json(&r.warnings[i]));
		json_t *obj = json_pack("{s:o, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:o, s:I}",
					"version", r.version ? json_integer((json_int_t)r.version) : json_null(),
					"committed", r.committed, "dry_run", o.dry_run,
					"added", (json_int_t)r.added,
					"changed", (json_int_t)(r.changed + r.redescribed),
					"removed", (json_int_t)r.removed,
					"unchanged", (json_int_t)r.unchanged,
					"touched", (json_int_t)r.touched,
					"failed", failed,
					"warnings", warnings,
					"new_blobs", (json_int_t)r.new_blobs,
					"new_bytes", (json_int_t)r.new_bytes,
					"volume", r.volume ? json_integer((json_int_t)r.volume) : json_null(),
					"cleaned", (json_int_t)r.n_cleaned);
		out_json_line(obj);
	} else if (!quiet) {
		print_summary(&r, o.dry_run);
	}
	if (!r.n_failed)
		status = EXIT_OK;
	else
		status = r.committed ? EXIT_PARTIAL : EXIT_NOCOMMIT;
	index_result_release(&r);
	xfree(archive);
	return status;
}
