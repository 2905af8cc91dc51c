/*
 * reindex.c - `refscan reindex`: describe the archived scans again and
 * commit a version with the new descriptors and search index.
 *
 * Needed when the descriptor schema (DESC_SCHEMA) changes, so that a new
 * refscan can search an archive whose sources are gone; --force
 * re-describes everything.  The scans are restored from the volumes
 * (extract_files, byte-identical and digest-checked) into a private
 * temporary directory, read, described with the same hook `refscan
 * index` uses, and the new version differs from HEAD only in the
 * entries' "descriptors", their stats' "descriptor" and the index file.
 *
 * A scan too thin to describe (ERR_UNDESCRIBABLE) is no failure: its
 * entry loses any old descriptors, is marked undescribable with this
 * schema, and a warning names it; it stays out of the search index.
 *
 * Invariants: scans, files, metadata and "since" are carried over
 * unchanged; the commit follows the same protocol as index (new volume
 * of descriptor blobs published, index file, manifest, HEAD last), so a
 * crash leaves HEAD at the old version or the new one.
 */
#include "archive.h"
#include "describe.h"
#include "descstore.h"
#include "extract.h"
#include "index.h"
#include "../common/alloc.h"
#include "../common/commands.h"
#include "../common/exitcodes.h"
#include "../common/fault.h"
#include "../common/out.h"
#include "../common/version.h"
#include "../formats/formats.h"
#include "../formats/scan.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/banned.h"

static const char reindex_usage[] =
	"usage: refscan reindex [--archive DIR] [--force] [--jobs N] [--wait]\n"
	"                       [--json] [--quiet]\n"
	"\n"
	"Describe the archived scans again (from the archive, not the sources)\n"
	"and commit a new version with the new descriptors and search index;\n"
	"its scans are unchanged.  Without --force only scans whose\n"
	"descriptors use another schema than this refscan's (" DESC_SCHEMA ")\n"
	"are described, and nothing is committed when there are none.  A scan\n"
	"too thin to describe is kept without descriptors, out of the search\n"
	"index, with a warning.\n"
	"\n"
	"  -a, --archive DIR   archive directory (default: $REFSCAN_ARCHIVE)\n"
	"  -f, --force         describe every scan and commit a new version\n"
	"  -j, --jobs N        describe with N threads (default: all cores)\n"
	"      --wait          wait for another writer instead of exiting 75\n"
	"      --json          one summary object on stdout\n"
	"  -q, --quiet         no summary\n"
	"  -h, --help          show this help\n"
	"\n"
	"exit status: 0 done (or nothing to do); 1 some scans failed to be\n"
	"described and keep their old descriptors; 65 damaged archive; 66 no\n"
	"archive or no version; 74 I/O error; 75 the archive is locked.\n";

enum { OPT_JSON = 256, OPT_WAIT };

static const struct option reindex_options[] = {
	{ "archive", required_argument, NULL, 'a' },
	{ "force", no_argument, NULL, 'f' },
	{ "jobs", required_argument, NULL, 'j' },
	{ "wait", no_argument, NULL, OPT_WAIT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* One entry being described again. */
struct job {
	struct manifest_entry *en;
	unsigned char *blob;      /* new descriptor blob */
	size_t len;
	unsigned char digest[SHA256_LEN];
	struct err err;
	int rc;
};

/* Describe one restored scan; the entry gets its new descriptor fields. */
static void describe_job(struct job *j, const char *root, struct descstore_cache *c)
{
	char path[ERR_PATH_MAX];
	struct scan s;

	scan_init(&s);
	snprintf(path, sizeof(path), "%s/%s", root, j->en->path);
	if ((j->rc = scan_read_file(path, NULL, &s, &j->err)) < 0)
		goto out;
	if ((j->rc = descstore_describe(c, &s, j->en, &j->blob, &j->len, &j->err)) < 0)
		goto out;
	j->rc = sha256_buffer(j->blob, j->len, j->digest, &j->err);
out:
	err_set_path(&j->err, j->en->path);
	scan_release(&s);
}

static int cmp_job_digest(const void *x, const void *y)
{
	const struct job *a = *(struct job *const *)x, *b = *(struct job *const *)y;
	return memcmp(a->digest, b->digest, SHA256_LEN);
}

struct reindex_result {
	uint64_t version;      /* committed, or HEAD when nothing was done */
	bool committed;
	size_t described, changed, failed;
	size_t undescribable;  /* described and found too thin: warned, not indexed */
	json_t *warnings;      /* one {"path","code","message"} for each of those */
	uint64_t new_blobs, new_bytes;
};

/*
 * A restored scan too thin to describe: drop any old descriptors, mark
 * the entry, warn on stderr and add the warning to *warnings (a JSON
 * array).  Returns 1 when the entry changed, 0 when it was already so,
 * ERR_NOMEM (in j->err).
 */
static int mark_undescribable(struct job *j, json_t *warnings)
{
	struct manifest_entry *en = j->en;
	const char *why = j->err.msg;
	bool same = !en->desc.schema && en->undesc.schema && !strcmp(en->undesc.schema, DESC_SCHEMA) &&
		    en->undesc.reason && !strcmp(en->undesc.reason, why);

	fprintf(stderr, "refscan: %s: warning: not searchable: %s\n", en->path, why);
	if (json_array_append_new(warnings, json_pack("{s:s, s:s, s:s+}", "path", en->path, "code",
						      err_code_name(ERR_UNDESCRIBABLE), "message",
						      "not searchable: ", why)) < 0)
		return err_set(&j->err, ERR_NOMEM, "out of memory");
	if (same)
		return 0;
	xfree(en->desc.schema);
	memset(&en->desc, 0, sizeof(en->desc));
	xfree(en->undesc.schema);
	xfree(en->undesc.reason);
	en->undesc.schema = xstrdup(DESC_SCHEMA);
	en->undesc.reason = xstrdup(why);
	if (!en->undesc.schema || !en->undesc.reason)
		return err_set(&j->err, ERR_NOMEM, "out of memory");
	return 1;
}

static int reindex_run(struct archive_dir *a, bool force, int jobs, bool wait,
		       struct reindex_result *res, struct err *e)
{
	struct descstore_cache cache;
	struct index_hooks h;
	struct manifest m;
	struct head nh;
	struct archive_volume_out vo;
	struct extract_file *files = NULL;
	struct job *job = NULL, **order = NULL;
	char tmpl[ERR_PATH_MAX] = "";
	size_t n_job = 0, n_files = 0, cap = 0;
	bool have_vol = false, have_tmp = false, have_head = false;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!(res->warnings = json_array()))
		return err_set(e, ERR_NOMEM, "out of memory");
	memset(&vo, 0, sizeof(vo));
	vo.fd = -1;
	manifest_init(&m);
	descstore_cache_init(&cache);
	descstore_hooks(&h, &cache);
	if ((rc = archive_dir_lock(a, wait, e)) < 0 ||
	    (rc = archive_dir_cleanup(a, NULL, e)) < 0)
		goto out;
	res->version = a->head.version;
	if (!a->head.version) {
		err_set_path(e, a->path);
		rc = err_set(e, ERR_NOTFOUND, "the archive has no version yet; run 'refscan index --archive %s SRC' first",
			     a->path);
		goto out;
	}
	if ((rc = archive_dir_load_manifest(a, a->head.version, &m, e)) < 0)
		goto out;

	job = alloc_array_zero(m.n_entries ? m.n_entries : 1, sizeof(*job));
	if (!job) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	bool any_desc = false;
	for (size_t i = 0; i < m.n_entries; i++) {
		struct manifest_entry *en = &m.entries[i];
		const char *with = en->desc.schema ? en->desc.schema : en->undesc.schema;
		any_desc |= en->desc.schema != NULL;
		if (!force && with && !strcmp(with, DESC_SCHEMA))
			continue;
		job[n_job].en = en;
		err_init(&job[n_job].err);
		n_job++;
	}
	/* current: nothing to do (no index is right when nothing has descriptors) */
	if (!n_job && !force && (m.index.file || !any_desc))
		goto out;

	/* restore the scans to describe, with their MTL files and textures */
	if ((rc = extract_tmpdir("reindex", tmpl, sizeof(tmpl), e)) < 0)
		goto out;
	have_tmp = true;
	for (size_t k = 0; k < n_job; k++) {
		const struct manifest_entry *en = job[k].en;
		if (alloc_grow((void **)&files, &cap, n_files + en->n_files + 1, sizeof(*files)) < 0) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		struct extract_file *f = &files[n_files++];
		memcpy(f->digest, en->blob, SHA256_LEN);
		f->size = en->size;
		f->path = en->path;
		f->mode = 0644;
		f->mtime_ns = en->mtime_ns;
		for (size_t i = 0; i < en->n_files; i++) {
			const struct manifest_file *mf = &en->files[i];
			if (mf->missing || mf->role == MANIFEST_ROLE_SIDECAR)
				continue;
			f = &files[n_files++];
			memcpy(f->digest, mf->blob, SHA256_LEN);
			f->size = mf->size;
			f->path = mf->path;
			f->mode = 0644;
			f->mtime_ns = mf->mtime_ns;
		}
	}
	size_t n_ok = 0, n_bad = 0;
	if (n_files && (rc = extract_files(a, files, n_files, tmpl, &n_ok, &n_bad, e)) < 0)
		goto out;

	#pragma omp parallel for schedule(dynamic, 1) num_threads(jobs > 0 ? jobs : omp_get_max_threads())
	for (size_t k = 0; k < n_job; k++)
		describe_job(&job[k], tmpl, &cache);

	/* new descriptor blobs into one volume, in digest order */
	order = alloc_array(n_job ? n_job : 1, sizeof(*order));
	if (!order) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	size_t n_new = 0;
	if ((rc = archive_dir_load_blobs(a, e)) < 0)
		goto out;
	for (size_t k = 0; k < n_job; k++) {
		struct job *j = &job[k];
		res->described++;
		if (j->rc == ERR_UNDESCRIBABLE) {
			if ((rc = mark_undescribable(j, res->warnings)) < 0) {
				*e = j->err;
				goto out;
			}
			res->undescribable++;
			res->changed += rc;
			rc = 0;
			continue;
		}
		if (j->rc < 0) {
			res->failed++;
			out_err(&j->err);
			continue;
		}
		struct manifest_entry *en = j->en;
		xfree(en->undesc.schema);
		xfree(en->undesc.reason);
		en->undesc.schema = en->undesc.reason = NULL;
		if (!en->desc.schema || strcmp(en->desc.schema, DESC_SCHEMA) != 0 ||
		    memcmp(en->desc.blob, j->digest, SHA256_LEN) != 0)
			res->changed++;
		xfree(en->desc.schema);
		if (!(en->desc.schema = xstrdup(DESC_SCHEMA))) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		memcpy(en->desc.blob, j->digest, SHA256_LEN);
		en->desc.size = j->len;
		if (!archive_dir_find_blob(a, j->digest))
			order[n_new++] = j;
	}
	if (n_new) {
		qsort(order, n_new, sizeof(*order), cmp_job_digest);
		struct volume_write_options vw = { 0, 0 };
		if ((rc = archive_dir_volume_create(a, a->head.next_volume, &vw, &vo, e)) < 0)
			goto out;
		have_vol = true;
		for (size_t k = 0; k < n_new; k++) {
			if (k && !memcmp(order[k]->digest, order[k - 1]->digest, SHA256_LEN))
				continue;
			if ((rc = archive_dir_volume_add_buffer(&vo, order[k]->digest, order[k]->blob,
								order[k]->len, e)) < 0)
				goto out;
		}
	}

	/* the new version: HEAD's entries with their new descriptors */
	if ((rc = head_copy(&nh, &a->head, e)) < 0)
		goto out;
	have_head = true;
	m.parent = a->head.version;
	m.version = a->head.version + 1;
	m.created = (int64_t)time(NULL);
	xfree(m.tool);
	m.tool = xstrdup("refscan " REFSCAN_VERSION);
	for (size_t i = 0; i < m.n_failed; i++)
		manifest_failure_release(&m.failed[i]);
	m.n_failed = 0;
	memset(&m.counts, 0, sizeof(m.counts));
	m.counts.changed = res->changed;
	m.counts.unchanged = m.n_entries - res->changed;
	m.volume = 0;
	m.new_blobs = m.new_bytes = 0;
	xfree(m.index.file);
	xfree(m.index.schema);
	memset(&m.index, 0, sizeof(m.index));
	if (!m.tool) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (have_vol && vo.idx.n_blobs) {
		m.volume = vo.id;
		m.new_blobs = vo.idx.n_blobs;
		for (size_t i = 0; i < vo.idx.n_blobs; i++)
			m.new_bytes += vo.idx.blobs[i].size;
		if ((rc = archive_dir_volume_publish(a, &vo, e)) < 0 ||
		    (rc = head_add_volume(&nh, m.volume, e)) < 0)
			goto out;
		nh.next_volume = m.volume + 1;
	}
	if ((rc = index_put_search_index(a, &h, &m, e)) < 0 ||
	    (rc = archive_dir_write_manifest(a, &m, e)) < 0 ||
	    (rc = head_add_version(&nh, m.version, e)) < 0)
		goto out;
	nh.version = m.version;
	if ((rc = archive_dir_write_head(a, &nh, e)) < 0)
		goto out;
	fault_point("committed");
	res->committed = true;
	res->version = m.version;
	res->new_blobs = m.new_blobs;
	res->new_bytes = m.new_bytes;
out:
	if (have_vol)
		archive_dir_volume_discard(a, &vo);
	if (have_head)
		head_release(&nh);
	if (have_tmp)
		extract_tmpdir_remove(tmpl);
	for (size_t k = 0; job && k < n_job; k++)
		xfree(job[k].blob);
	xfree(order);
	xfree(job);
	xfree(files);
	manifest_release(&m);
	descstore_cache_release(&cache);
	return rc;
}

int cmd_reindex(int argc, char **argv)
{
	struct archive_dir a;
	struct reindex_result r;
	struct err e;
	const char *aopt = NULL;
	bool force = false, wait = false, json = false, quiet = false;
	int c, jobs = 0, status;

	optind = 1;
	while ((c = getopt_long(argc, argv, "a:fj:qh", reindex_options, NULL)) != -1) {
		switch (c) {
		case 'a':
			aopt = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'j': {
			char *end;
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (end == optarg || *end || errno == ERANGE || v < 1 || v > 1024) {
				out_error("--jobs wants a number from 1 to 1024, not '%s'", optarg);
				return EXIT_USAGE;
			}
			jobs = (int)v;
			break;
		}
		case OPT_WAIT:
			wait = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			fputs(reindex_usage, stdout);
			return EXIT_OK;
		default:
			fputs(reindex_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		out_error("unexpected argument '%s'", argv[optind]);
		fputs(reindex_usage, stderr);
		return EXIT_USAGE;
	}
	if ((status = archive_dir_open_cli(&a, aopt)) != EXIT_OK)
		return status;
	err_init(&e);
	int rc = reindex_run(&a, force, jobs, wait, &r, &e);
	if (rc < 0) {
		out_err(&e);
		if (json)
			out_json_line(json_pack("{s:b, s:o}", "committed", 0, "error", out_json_error(&e)));
		json_decref(r.warnings);
		archive_dir_release(&a);
		return err_exit_status(rc);
	}
	if (json)
		out_json_line(json_pack("{s:I, s:b, s:s, s:I, s:I, s:I, s:O, s:I, s:I}",
					"version", (json_int_t)r.version, "committed", r.committed,
					"schema", DESC_SCHEMA, "described", (json_int_t)r.described,
					"changed", (json_int_t)r.changed, "failed", (json_int_t)r.failed,
					"warnings", r.warnings,
					"new_blobs", (json_int_t)r.new_blobs,
					"new_bytes", (json_int_t)r.new_bytes));
	else if (!quiet && r.committed) {
		printf("version %" PRIu64 ": %zu scans described again (%s), %zu descriptors changed, %zu failed",
		       r.version, r.described, DESC_SCHEMA, r.changed, r.failed);
		if (r.undescribable)
			printf(", %zu not searchable", r.undescribable);
		putchar('\n');
	} else if (!quiet)
		printf("descriptors are current (%s); version %" PRIu64 " is unchanged\n", DESC_SCHEMA,
		       r.version);
	json_decref(r.warnings);
	archive_dir_release(&a);
	return r.failed ? EXIT_PARTIAL : EXIT_OK;
}
