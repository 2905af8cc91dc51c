/*
 * extract.c - `refscan extract`: restore scans of a version, with their
 * MTL files, textures and sidecars, byte-identical, under their archive
 * paths below a destination directory.
 *
 * Every file is written through volume_disk_*, i.e. libarchive's disk
 * writer with ARCHIVE_EXTRACT_SECURE_NODOTDOT, _NOABSOLUTEPATHS and
 * _SECURE_SYMLINKS, after our own volume_path_safe() check: a manifest
 * path with "..", an absolute path, or a symlink already in the
 * destination is refused, and nothing is written outside it.  Volume
 * entries are looked up by digest only; their tar names never become
 * paths.  Each file's bytes are hashed while written; a mismatch
 * removes the file and reports the damage.
 */
#include "archive.h"
#include "extract.h"
#include "../common/alloc.h"
#include "../common/commands.h"
#include "../common/err.h"
#include "../common/exitcodes.h"
#include "../common/out.h"
#include "../common/progress.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/banned.h"

#define CHUNK ((size_t)1 << 20)

static const char extract_usage[] =
	"usage: refscan extract [--archive DIR] [--version V] [--to DEST] [--json]\n"
	"                       [PATTERN...]\n"
	"\n"
	"Restore the scans of version V (default: HEAD) whose archive path\n"
	"matches a PATTERN (a shell glob, or a directory prefix; default: all),\n"
	"with their MTL files, textures and sidecars, byte-identical, under\n"
	"their archive paths below DEST (default: the current directory).\n"
	"Paths that would leave DEST ('..', absolute, or through a symlink)\n"
	"are refused.\n"
	"\n"
	"  -a, --archive DIR   archive directory (default: $REFSCAN_ARCHIVE)\n"
	"  -V, --version V     version to restore: N, HEAD or HEAD~K\n"
	"  -C, --to DEST       destination directory (created if missing)\n"
	"      --json          one summary object on stdout\n"
	"  -q, --quiet         no summary\n"
	"  -h, --help          show this help\n"
	"\n"
	"exit status: 0 all restored; 1 some files refused or damaged, the rest\n"
	"restored; 65 nothing restored (damaged archive or every path refused);\n"
	"66 no such archive, version or match; 73 cannot create DEST.\n";

enum { OPT_JSON = 256 };

static const struct option extract_options[] = {
	{ "archive", required_argument, NULL, 'a' },
	{ "version", required_argument, NULL, 'V' },
	{ "to", required_argument, NULL, 'C' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* One file to restore. */
struct want {
	unsigned char digest[SHA256_LEN];
	uint64_t size;
	const char *path;    /* archive path = path below DEST (borrowed) */
	uint32_t mode;
	int64_t mtime_ns;
	uint64_t volume;
	bool done;
};

struct extract {
	struct archive_dir *a;
	struct manifest m;
	size_t n_want, cap_want;
	struct want *want;
	size_t n_scans;
	size_t n_restored;
	uint64_t bytes;
	json_t *failed;
	bool json;
	unsigned char *buf;
};

static void fail(struct extract *x, const struct err *e)
{
	out_err(e);
	json_array_append_new(x->failed, json_pack("{s:s, s:o}", "path", e->path,
						   "error", out_json_error(e)));
}

/* mkdir -p: 0 or -1 with errno. */
static int mkdir_parents(const char *path)
{
	char buf[ERR_PATH_MAX];
	size_t n = strlen(path);
	if (n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		buf[i] = c;
	}
	return 0;
}

static bool matches(const char *path, char **pats, size_t n)
{
	if (!n)
		return true;
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(pats[i]);
		while (k > 1 && pats[i][k - 1] == '/')
			k--;
		if (!fnmatch(pats[i], path, 0))
			return true;
		if (!strncmp(path, pats[i], k) && (path[k] == '/' || path[k] == '\0'))
			return true;
	}
	return false;
}

static int add_want(struct extract *x, const unsigned char d[SHA256_LEN],
		    uint64_t size, const char *path, uint32_t mode, int64_t mtime)
{
	for (size_t i = 0; i < x->n_want; i++)
		if (!strcmp(x->want[i].path, path))
			return 0; /* a texture shared by two scans */
	if (alloc_grow((void **)&x->want, &x->cap_want, x->n_want + 1, sizeof(*x->want)) < 0)
		return ERR_NOMEM;
	struct want *w = &x->want[x->n_want++];
	memcpy(w->digest, d, SHA256_LEN);
	w->size = size;
	w->path = path;
	w->mode = mode;
	w->mtime_ns = mtime;
	w->volume = 0;
	w->done = false;
	return 0;
}

static int cmp_want(const void *p, const void *q)
{
	const struct want *a = p, *b = q;
	if (a->volume != b->volume)
		return a->volume < b->volume ? -1 : 1;
	int c = memcmp(a->digest, b->digest, SHA256_LEN);
	return c ? c : strcmp(a->path, b->path);
}

/* Write one file from the volume stream, hashing it; removes it on damage. */
static int write_from_stream(struct extract *x, struct volume_disk *disk,
			     struct volume_reader *r, const struct want *w,
			     bool *reader_failed, struct err *e)
{
	struct sha256 h;
	unsigned char got[SHA256_LEN];
	uint64_t total = 0;
	size_t k;
	int rc;

	if ((rc = volume_disk_begin(disk, w->path, w->size, w->mode, w->mtime_ns, e)) < 0)
		return rc;
	if ((rc = sha256_init(&h, e)) < 0)
		return rc;
	for (;;) {
		if ((rc = volume_reader_read(r, x->buf, CHUNK, &k, e)) < 0) {
			*reader_failed = true;
			break;
		}
		if (!k)
			break;
		if (total + k > w->size) {
			rc = err_set(e, ERR_CORRUPT, "blob longer than recorded");
			break;
		}
		if ((rc = sha256_update(&h, x->buf, k, e)) < 0 ||
		    (rc = volume_disk_write(disk, x->buf, k, e)) < 0)
			break;
		total += k;
	}
	if (rc == 0)
		rc = sha256_final(&h, got, e);
	sha256_release(&h);
	struct err de;
	err_init(&de);
	int erc = volume_disk_end(disk, &de);
	if (rc == 0 && (total != w->size || memcmp(got, w->digest, SHA256_LEN) != 0))
		rc = err_set(e, ERR_CORRUPT, "stored bytes are damaged (sha-256 mismatch); file removed");
	if (rc < 0) {
		unlink(w->path);
		err_set_path(e, w->path);
		return rc;
	}
	if (erc < 0) {
		*e = de;
		return erc;
	}
	return 0;
}

/* Copy an already restored file (same blob) to another path. */
static int copy_file(struct extract *x, struct volume_disk *disk,
		     const struct want *from, const struct want *w, struct err *e)
{
	int fd = open(from->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc;
	err_set_path(e, from->path);
	if (fd < 0)
		return err_set_errno(e, ERR_IO, "cannot reopen");
	if ((rc = volume_disk_begin(disk, w->path, w->size, w->mode, w->mtime_ns, e)) < 0) {
		close(fd);
		return rc;
	}
	for (;;) {
		ssize_t k = read(fd, x->buf, CHUNK);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = err_set_errno(e, ERR_IO, "cannot read");
			break;
		}
		if (!k)
			break;
		if ((rc = volume_disk_write(disk, x->buf, (size_t)k, e)) < 0)
			break;
	}
	close(fd);
	int erc = volume_disk_end(disk, e);
	return rc < 0 ? rc : erc;
}

/* Restore every want of one volume (x->want[from, to)). */
static int restore_volume(struct extract *x, struct volume_disk *disk,
			  size_t from, size_t to, struct progress *p)
{
	struct volume_reader *r = NULL;
	struct volume_entry ent;
	char path[ERR_PATH_MAX];
	struct err e;
	size_t i = from;
	int rc;

	err_init(&e);
	archive_dir_volume_path(x->a, x->want[from].volume, path, sizeof(path));
	if ((rc = volume_reader_open(&r, path, &e)) < 0 && rc == ERR_NOTFOUND &&
	    archive_dir_head_changed(x->a))
		return 1; /* pruned meanwhile: the caller retries */
	while (rc >= 0 && i < to && (rc = volume_reader_next(r, &ent, &e)) > 0) {
		if (!ent.is_blob) {
			out_warning("%s: entry %" PRIu64 " '%s' is not a blob; ignored", path,
				    ent.index, ent.name);
			continue;
		}
		int c = memcmp(ent.digest, x->want[i].digest, SHA256_LEN);
		while (c > 0 && i < to) {
			/* volumes are in digest order: we passed it, it is missing */
			struct err me;
			err_init(&me);
			err_set_path(&me, x->want[i].path);
			err_set(&me, ERR_CORRUPT, "missing from volume %08" PRIu64, x->want[i].volume);
			fail(x, &me);
			x->want[i].done = true;
			i++;
			c = i < to ? memcmp(ent.digest, x->want[i].digest, SHA256_LEN) : -1;
		}
		if (c < 0 || i >= to)
			continue;
		/* the first path of this blob from the stream, the rest copied */
		size_t first = i;
		struct err we;
		bool dead = false;
		err_init(&we);
		int wrc = write_from_stream(x, disk, r, &x->want[first], &dead, &we);
		while (i < to && !memcmp(x->want[i].digest, ent.digest, SHA256_LEN)) {
			struct want *w = &x->want[i];
			if (wrc < 0) {
				err_set_path(&we, w->path);
				fail(x, &we);
			} else if (i != first && (wrc = copy_file(x, disk, &x->want[first], w, &we)) < 0) {
				fail(x, &we);
			} else {
				x->n_restored++;
				x->bytes += w->size;
				progress_add(p, 1, w->size);
			}
			w->done = true;
			i++;
		}
		if (dead) {
			rc = ERR_CORRUPT; /* the rest of this volume is unreadable */
			break;
		}
	}
	/* what is left cannot be restored: name each file and the reason */
	for (; i < to; i++) {
		if (x->want[i].done)
			continue;
		struct err me;
		err_init(&me);
		err_set_path(&me, x->want[i].path);
		if (rc < 0)
			err_set(&me, ERR_CORRUPT, "cannot restore: volume %08" PRIu64 " is damaged: %s",
				x->want[i].volume, e.code ? e.msg : "read error");
		else
			err_set(&me, ERR_CORRUPT, "missing from volume %08" PRIu64, x->want[i].volume);
		fail(x, &me);
		x->want[i].done = true;
	}
	volume_reader_free(&r);
	return 0;
}

int cmd_extract(int argc, char **argv)
{
	struct archive_dir a;
	struct extract x;
	struct volume_disk *disk = NULL;
	struct err e;
	const char *aopt = NULL, *version = "HEAD", *dest = ".";
	bool quiet = false, usage = false;
	uint64_t v;
	int c, status, rc, cwd = -1;

	memset(&x, 0, sizeof(x));
	optind = 1;
	while ((c = getopt_long(argc, argv, "a:V:C:qh", extract_options, NULL)) != -1) {
		switch (c) {
		case 'a':
			aopt = optarg;
			break;
		case 'V':
			version = optarg;
			break;
		case 'C':
			dest = optarg;
			break;
		case OPT_JSON:
			x.json = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			fputs(extract_usage, stdout);
			return EXIT_OK;
		default:
			fputs(extract_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if ((status = archive_dir_open_cli(&a, aopt)) != EXIT_OK)
		return status;
	x.a = &a;
	manifest_init(&x.m);
	err_init(&e);
	x.failed = json_array();
	x.buf = xmalloc(CHUNK);
	if (!x.failed || !x.buf) {
		out_error("out of memory");
		status = EXIT_SOFTWARE;
		goto out;
	}
	char **pats = argv + optind;
	size_t n_pats = (size_t)(argc - optind);

	for (int attempt = 0;; attempt++) {
		if ((rc = archive_dir_parse_version(&a, version, &v, &e)) < 0)
			usage = rc == ERR_FORMAT;
		if (rc < 0 || (rc = archive_dir_load_version(&a, v, &x.m, &e)) < 0 ||
		    (rc = archive_dir_load_blobs(&a, &e)) < 0) {
			out_err(&e);
			status = usage ? EXIT_USAGE : err_exit_status(rc);
			goto out;
		}
		/* choose the files */
		x.n_want = 0;
		x.n_scans = 0;
		for (size_t i = 0; i < x.m.n_entries; i++) {
			const struct manifest_entry *en = &x.m.entries[i];
			if (!matches(en->path, pats, n_pats))
				continue;
			x.n_scans++;
			if (add_want(&x, en->blob, en->size, en->path, en->mode, en->mtime_ns) < 0)
				goto nomem;
			for (size_t k = 0; k < en->n_files; k++) {
				const struct manifest_file *f = &en->files[k];
				if (!f->missing && add_want(&x, f->blob, f->size, f->path, f->mode, f->mtime_ns) < 0)
					goto nomem;
			}
		}
		if (!x.n_scans) {
			out_error("no scan of version %" PRIu64 " matches", v);
			status = EXIT_NOINPUT;
			goto out;
		}
		uint64_t total = 0;
		size_t n_ok = 0;
		for (size_t i = 0; i < x.n_want; i++) {
			struct want *w = &x.want[i];
			const struct archive_blob *b = archive_dir_find_blob(&a, w->digest);
			struct err we;
			err_init(&we);
			err_set_path(&we, w->path);
			if (!volume_path_safe(w->path)) {
				err_set(&we, ERR_FORMAT, "refused: the path would leave the destination");
				fail(&x, &we);
				w->done = true;
			} else if (!b) {
				err_set(&we, ERR_CORRUPT, "its bytes are in no volume of the archive");
				fail(&x, &we);
				w->done = true;
			} else {
				w->volume = b->volume;
				total += w->size;
			}
			if (!w->done)
				x.want[n_ok++] = *w;
		}
		x.n_want = n_ok;
		if (x.n_want)
			qsort(x.want, x.n_want, sizeof(*x.want), cmp_want);

		/* into DEST; libarchive writes relative to the working directory */
		if (cwd < 0) {
			if (mkdir_parents(dest) < 0) {
				err_set_path(&e, dest);
				err_set_errno(&e, ERR_IO, "cannot create the destination");
				out_err(&e);
				status = EXIT_CANTCREAT;
				goto out;
			}
			cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (cwd < 0 || chdir(dest) < 0) {
				err_set_path(&e, dest);
				err_set_errno(&e, ERR_IO, "cannot enter the destination");
				out_err(&e);
				status = EXIT_CANTCREAT;
				goto out;
			}
			if ((rc = volume_disk_open(&disk, &e)) < 0) {
				out_err(&e);
				status = err_exit_status(rc);
				goto out;
			}
		}
		struct progress *p = progress_start(!x.json && !quiet && progress_wanted(),
						    "restoring", x.n_want, total);
		int again = 0;
		for (size_t i = 0; i < x.n_want && !again;) {
			size_t j = i;
			while (j < x.n_want && x.want[j].volume == x.want[i].volume)
				j++;
			again = restore_volume(&x, disk, i, j, p);
			i = j;
		}
		progress_stop(&p);
		if (!again)
			break;
		manifest_release(&x.m);
		if (attempt >= 3 || archive_dir_reload(&a, &e) < 0) {
			out_error("the archive keeps changing under extract; try again");
			status = EXIT_TEMPFAIL;
			goto out;
		}
	}
	size_t n_failed = json_array_size(x.failed);
	if (x.json)
		out_json_line(json_pack("{s:I, s:s, s:I, s:I, s:I, s:O}", "version", (json_int_t)v,
					"to", dest, "scans", (json_int_t)x.n_scans,
					"files", (json_int_t)x.n_restored, "bytes", (json_int_t)x.bytes,
					"failed", x.failed));
	else if (!quiet)
		printf("restored %zu files (%.1f MB) of %zu scans from version %" PRIu64 " into %s%s\n",
		       x.n_restored, (double)x.bytes / 1e6, x.n_scans, v, dest,
		       n_failed ? "; some files failed" : "");
	status = !n_failed ? EXIT_OK : x.n_restored ? EXIT_PARTIAL : EXIT_DATAERR;
	goto out;
nomem:
	out_error("out of memory");
	status = EXIT_SOFTWARE;
out:
	volume_disk_free(&disk);
	if (cwd >= 0) {
		if (fchdir(cwd) < 0) {
			/* nothing more is written after this point */
		}
		close(cwd);
	}
	manifest_release(&x.m);
	xfree(x.want);
	xfree(x.buf);
	json_decref(x.failed);
	archive_dir_release(&a);
	return status;
}

int extract_files(struct archive_dir *a, const struct extract_file *files,
		  size_t n, const char *dest, size_t *n_restored,
		  size_t *n_failed, struct err *e)
{
	struct extract x;
	struct volume_disk *disk = NULL;
	size_t n_ok = 0;
	int rc = 0, cwd = -1;

	memset(&x, 0, sizeof(x));
	x.a = a;
	manifest_init(&x.m);
	*n_restored = 0;
	*n_failed = 0;
	x.failed = json_array();
	x.buf = xmalloc(CHUNK);
	if (!x.failed || !x.buf) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = archive_dir_load_blobs(a, e)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (add_want(&x, files[i].digest, files[i].size, files[i].path, files[i].mode,
			     files[i].mtime_ns) < 0) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
	for (size_t i = 0; i < x.n_want; i++) {
		struct want *w = &x.want[i];
		const struct archive_blob *b = archive_dir_find_blob(a, w->digest);
		struct err we;
		err_init(&we);
		err_set_path(&we, w->path);
		if (!volume_path_safe(w->path)) {
			err_set(&we, ERR_FORMAT, "refused: the path would leave the destination");
			fail(&x, &we);
		} else if (!b) {
			err_set(&we, ERR_CORRUPT, "its bytes are in no volume of the archive");
			fail(&x, &we);
		} else {
			w->volume = b->volume;
			x.want[n_ok++] = *w;
		}
	}
	x.n_want = n_ok;
	if (x.n_want)
		qsort(x.want, x.n_want, sizeof(*x.want), cmp_want);
	if (mkdir_parents(dest) < 0) {
		err_set_path(e, dest);
		rc = err_set_errno(e, ERR_IO, "cannot create the destination");
		goto out;
	}
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0 || chdir(dest) < 0) {
		err_set_path(e, dest);
		rc = err_set_errno(e, ERR_IO, "cannot enter the destination");
		goto out;
	}
	if ((rc = volume_disk_open(&disk, e)) < 0)
		goto out;
	for (size_t i = 0; i < x.n_want;) {
		size_t j = i;
		while (j < x.n_want && x.want[j].volume == x.want[i].volume)
			j++;
		if (restore_volume(&x, disk, i, j, NULL)) {
			rc = err_set(e, ERR_NOTFOUND, "the archive was pruned while restoring; try again");
			goto out;
		}
		i = j;
	}
out:
	volume_disk_free(&disk);
	if (cwd >= 0) {
		if (fchdir(cwd) < 0 && !rc)
			rc = err_set_errno(e, ERR_IO, "cannot return to the working directory");
		close(cwd);
	}
	*n_restored = x.n_restored;
	*n_failed = x.failed ? json_array_size(x.failed) : 0;
	manifest_release(&x.m);
	xfree(x.want);
	xfree(x.buf);
	json_decref(x.failed);
	return rc;
}

int extract_tmpdir(const char *what, char *path, size_t n, struct err *e)
{
	const char *tdir = getenv("TMPDIR");
	snprintf(path, n, "%s/refscan-%s.XXXXXX", tdir && *tdir ? tdir : "/tmp", what);
	if (!mkdtemp(path)) {
		err_set_path(e, path);
		return err_set_errno(e, ERR_IO, "cannot create a temporary directory");
	}
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void extract_tmpdir_remove(const char *path)
{
	if (path && *path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
