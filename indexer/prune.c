/*
 * prune.c - `refscan prune`: drop old versions and the bytes only they
 * used, crash-safely.
 *
 * Protocol (docs/archive-format.md, "Prune"): under the writer lock,
 * work out the blobs the kept versions use; a volume none of whose blobs
 * are used is dropped, a volume with some unused blobs is rewritten into
 * a new volume holding only the used ones (each blob re-verified while
 * copied), and one HEAD switch makes the new set of versions and volumes
 * current.  Only then are the dropped files deleted; a crash before the
 * switch leaves the old archive intact plus leftovers, after it the new
 * one plus leftovers, and the next writer deletes the leftovers.
 */
#include "archive.h"
#include "../common/alloc.h"
#include "../common/commands.h"
#include "../common/err.h"
#include "../common/exitcodes.h"
#include "../common/fault.h"
#include "../common/out.h"
#include "../common/progress.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/banned.h"

#define CHUNK ((size_t)1 << 20)

static const char prune_usage[] =
	"usage: refscan prune [--archive DIR] (--keep-last N | --keep-days D)\n"
	"                     [--dry-run] [--wait] [--json]\n"
	"\n"
	"Drop old versions, keeping the last N and/or those made in the last D\n"
	"days (HEAD is always kept), then delete the volumes no kept version\n"
	"uses and rewrite those that are only partly used.  Crash-safe like a\n"
	"commit: an interrupted prune leaves the archive as it was or as pruned.\n"
	"\n"
	"  -a, --archive DIR   archive directory (default: $REFSCAN_ARCHIVE)\n"
	"      --keep-last N   keep the N newest versions (N >= 1)\n"
	"      --keep-days D   keep the versions of the last D days\n"
	"  -n, --dry-run       say what would be dropped; change nothing\n"
	"      --wait          wait for another writer instead of exiting 75\n"
	"      --json          one summary object on stdout\n"
	"  -h, --help          show this help\n"
	"\n"
	"exit status: 0 done (or nothing to prune); 65 a volume to rewrite is\n"
	"damaged (nothing pruned); 75 the archive is locked.\n";

enum { OPT_KEEP_LAST = 256, OPT_KEEP_DAYS, OPT_WAIT, OPT_JSON };

static const struct option prune_options[] = {
	{ "archive", required_argument, NULL, 'a' },
	{ "keep-last", required_argument, NULL, OPT_KEEP_LAST },
	{ "keep-days", required_argument, NULL, OPT_KEEP_DAYS },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "wait", no_argument, NULL, OPT_WAIT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct digests {
	size_t n, cap;
	unsigned char (*d)[SHA256_LEN];
};

static int push_digest(struct digests *s, const unsigned char d[SHA256_LEN])
{
	if (alloc_grow((void **)&s->d, &s->cap, s->n + 1, SHA256_LEN) < 0)
		return ERR_NOMEM;
	memcpy(s->d[s->n++], d, SHA256_LEN);
	return 0;
}

static int cmp_digest(const void *a, const void *b)
{
	return memcmp(a, b, SHA256_LEN);
}

static bool has_digest(const struct digests *s, const unsigned char d[SHA256_LEN])
{
	return s->n && bsearch(d, s->d, s->n, SHA256_LEN, cmp_digest) != NULL;
}

static int used_blobs(const struct manifest *m, struct digests *s)
{
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct manifest_entry *en = &m->entries[i];
		if (push_digest(s, en->blob) < 0)
			return ERR_NOMEM;
		for (size_t k = 0; k < en->n_files; k++)
			if (!en->files[k].missing && push_digest(s, en->files[k].blob) < 0)
				return ERR_NOMEM;
		if (en->desc.schema && push_digest(s, en->desc.blob) < 0)
			return ERR_NOMEM;
	}
	return 0;
}

enum vol_fate { V_KEEP, V_DROP, V_REWRITE };

/*
 * Copy the used blobs of volume id into vo, verifying each.  ERR_CORRUPT
 * names the volume when a blob does not match: nothing must be pruned
 * from a damaged archive.
 */
static int rewrite(struct archive_dir *a, uint64_t id, size_t want,
		   const struct digests *used, struct archive_volume_out *vo,
		   unsigned char *buf, struct progress *p, struct err *e)
{
	struct volume_reader *r = NULL;
	struct volume_entry ent;
	char path[ERR_PATH_MAX];
	size_t got = 0;
	int rc;

	archive_dir_volume_path(a, id, path, sizeof(path));
	if ((rc = volume_reader_open(&r, path, e)) < 0)
		return rc;
	while ((rc = volume_reader_next(r, &ent, e)) > 0) {
		if (!ent.is_blob || !has_digest(used, ent.digest))
			continue;
		if ((rc = archive_dir_volume_begin(vo, ent.digest, ent.size, e)) < 0)
			goto out;
		size_t k;
		for (;;) {
			if ((rc = volume_reader_read(r, buf, CHUNK, &k, e)) < 0)
				goto out;
			if (!k)
				break;
			if ((rc = archive_dir_volume_write(vo, buf, k, e)) < 0)
				goto out;
		}
		if ((rc = archive_dir_volume_end(vo, true, e)) < 0) {
			err_set_path(e, path);
			goto out;
		}
		got++;
		progress_add(p, 1, ent.size);
	}
	if (rc == 0 && got != want) {
		err_set_path(e, path);
		rc = err_set(e, ERR_CORRUPT, "%zu of its %zu used blobs are missing", want - got, want);
	}
out:
	if (rc < 0 && rc != ERR_NOMEM && rc != ERR_IO) {
		err_set_path(e, path);
		char msg[sizeof(e->msg)];
		snprintf(msg, sizeof(msg), "%s", e->msg);
		err_set(e, ERR_CORRUPT, "damaged, nothing pruned (run 'refscan verify'): %s", msg);
	}
	volume_reader_free(&r);
	return rc;
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int cmd_prune(int argc, char **argv)
{
	struct archive_dir a;
	struct err e;
	struct head nh;
	struct digests used = { 0 };
	struct archive_volume_out vo;
	const char *aopt = NULL;
	bool dry = false, wait = false, json = false, have_vo = false;
	long keep_last = 0, keep_days = -1;
	enum vol_fate *fate = NULL;
	size_t *n_used = NULL;
	unsigned char *buf = NULL;
	char *path = NULL;
	int c, rc = 0, status = EXIT_OK;

	optind = 1;
	while ((c = getopt_long(argc, argv, "a:nh", prune_options, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'a':
			aopt = optarg;
			break;
		case OPT_KEEP_LAST:
			keep_last = strtol(optarg, &end, 10);
			if (end == optarg || *end || keep_last < 1) {
				out_error("--keep-last wants a number of at least 1, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_KEEP_DAYS:
			keep_days = strtol(optarg, &end, 10);
			if (end == optarg || *end || keep_days < 0 || keep_days > 1000000) {
				out_error("--keep-days wants a number of days, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'n':
			dry = true;
			break;
		case OPT_WAIT:
			wait = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		case 'h':
			fputs(prune_usage, stdout);
			return EXIT_OK;
		default:
			fputs(prune_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc || (!keep_last && keep_days < 0)) {
		if (!keep_last && keep_days < 0)
			out_error("say what to keep: --keep-last N or --keep-days D");
		fputs(prune_usage, stderr);
		return EXIT_USAGE;
	}
	if ((status = archive_dir_open_cli(&a, aopt)) != EXIT_OK)
		return status;
	err_init(&e);
	head_init(&nh);
	memset(&vo, 0, sizeof(vo));
	vo.fd = -1;
	size_t n_cleaned = 0;
	if (!dry && ((rc = archive_dir_lock(&a, wait, &e)) < 0 ||
		     (rc = archive_dir_cleanup(&a, &n_cleaned, &e)) < 0))
		goto fail;
	if (n_cleaned)
		out_warning("removed %zu leftover file%s of an interrupted run", n_cleaned,
			    n_cleaned == 1 ? "" : "s");

	/* which versions stay */
	const struct head *h = &a.head;
	int64_t now = (int64_t)time(NULL);
	const char *fake = getenv("REFSCAN_NOW");
	if (fake && *fake)
		now = strtoll(fake, NULL, 10);
	if ((rc = head_copy(&nh, h, &e)) < 0)
		goto fail;
	nh.n_versions = 0;
	uint64_t dropped = 0;
	for (size_t i = 0; i < h->n_versions; i++) {
		uint64_t v = h->versions[i];
		bool keep = v == h->version || (keep_last && i + (size_t)keep_last >= h->n_versions);
		if (!keep && keep_days >= 0) {
			struct manifest m;
			if ((rc = archive_dir_load_manifest(&a, v, &m, &e)) < 0)
				goto fail;
			keep = m.created >= now - (int64_t)keep_days * 86400;
			manifest_release(&m);
		}
		if (keep)
			nh.versions[nh.n_versions++] = v;
		else
			dropped++;
	}
	if (!dropped) {
		if (json)
			out_json_line(json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "dry_run", dry,
						"versions_dropped", (json_int_t)0, "versions_kept",
						(json_int_t)h->n_versions, "volumes_deleted", (json_int_t)0,
						"volumes_rewritten", (json_int_t)0, "bytes_freed", (json_int_t)0,
						"version", (json_int_t)h->version));
		else
			printf("nothing to prune: %zu version%s kept\n", h->n_versions,
			       h->n_versions == 1 ? "" : "s");
		goto out;
	}

	/* which blobs they use, and what that means for each volume */
	for (size_t i = 0; i < nh.n_versions; i++) {
		struct manifest m;
		if ((rc = archive_dir_load_manifest(&a, nh.versions[i], &m, &e)) < 0)
			goto fail;
		rc = used_blobs(&m, &used);
		manifest_release(&m);
		if (rc < 0)
			goto nomem;
	}
	if (used.n)
		qsort(used.d, used.n, SHA256_LEN, cmp_digest);
	if ((rc = archive_dir_load_blobs(&a, &e)) < 0)
		goto fail;
	fate = alloc_array_zero(h->n_volumes ? h->n_volumes : 1, sizeof(*fate));
	n_used = alloc_array_zero(h->n_volumes ? h->n_volumes : 1, sizeof(*n_used));
	buf = xmalloc(CHUNK);
	path = xmalloc(ERR_PATH_MAX);
	if (!fate || !n_used || !buf || !path)
		goto nomem;
	size_t n_drop = 0, n_rewrite = 0;
	uint64_t freed = 0, copy_blobs = 0, copy_bytes = 0;
	for (size_t i = 0; i < h->n_volumes; i++) {
		const struct volidx *x = archive_dir_volidx(&a, h->volumes[i]);
		uint64_t bytes = 0;
		for (size_t k = 0; k < x->n_blobs; k++)
			if (has_digest(&used, x->blobs[k].digest)) {
				n_used[i]++;
				bytes += x->blobs[k].size;
			}
		fate[i] = !n_used[i] ? V_DROP : n_used[i] < x->n_blobs ? V_REWRITE : V_KEEP;
		if (fate[i] == V_REWRITE)
			copy_bytes += bytes;
		if (fate[i] == V_KEEP)
			continue;
		freed += file_size(archive_dir_volume_path(&a, h->volumes[i], path, ERR_PATH_MAX));
		if (fate[i] == V_DROP)
			n_drop++;
		else {
			n_rewrite++;
			copy_blobs += n_used[i];
		}
	}

	/*
	 * Each partly used volume is copied, used blobs only, into a new
	 * volume: its entries are in digest order, so the copy is too.
	 */
	nh.n_volumes = 0;
	for (size_t i = 0; i < h->n_volumes; i++)
		if (fate[i] == V_KEEP)
			nh.volumes[nh.n_volumes++] = h->volumes[i];
	if (n_rewrite && !dry) {
		struct progress *p = progress_start(!json && progress_wanted(), "rewriting volumes",
						    copy_blobs, copy_bytes);
		uint64_t next = h->next_volume;
		for (size_t i = 0; i < h->n_volumes && rc == 0; i++) {
			if (fate[i] != V_REWRITE)
				continue;
			if ((rc = archive_dir_volume_create(&a, next, NULL, &vo, &e)) < 0)
				break;
			have_vo = true;
			/* publishing drops the catalogue: counts come from above */
			if ((rc = rewrite(&a, h->volumes[i], n_used[i], &used, &vo, buf, p, &e)) < 0 ||
			    (rc = archive_dir_volume_publish(&a, &vo, &e)) < 0 ||
			    (rc = head_add_volume(&nh, next, &e)) < 0)
				break;
			archive_dir_volume_discard(&a, &vo);
			have_vo = false;
			next++;
		}
		progress_stop(&p);
		if (rc < 0)
			goto fail;
		nh.next_volume = next;
		fault_point("prune-volumes-written");
	}
	if (!dry) {
		if ((rc = archive_dir_write_head(&a, &nh, &e)) < 0)
			goto fail;
		fault_point("prune-head-switched");
		/* HEAD no longer names them: deleting is cleanup now */
		if ((rc = archive_dir_cleanup(&a, NULL, &e)) < 0)
			goto fail;
	}
	if (json)
		out_json_line(json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "dry_run", dry,
					"versions_dropped", (json_int_t)dropped,
					"versions_kept", (json_int_t)nh.n_versions,
					"volumes_deleted", (json_int_t)(n_drop + n_rewrite),
					"volumes_rewritten", (json_int_t)n_rewrite,
					"bytes_freed", (json_int_t)freed,
					"version", (json_int_t)h->version));
	else
		printf("%s%" PRIu64 " version%s dropped, %zu kept; %zu volume%s deleted, %zu rewritten (%" PRIu64
		       " blobs copied); up to %.1f MB freed\n",
		       dry ? "dry run: " : "", dropped, dropped == 1 ? "" : "s", nh.n_versions,
		       n_drop, n_drop == 1 ? "" : "s", n_rewrite, copy_blobs, (double)freed / 1e6);
	goto out;
nomem:
	rc = err_set(&e, ERR_NOMEM, "out of memory");
fail:
	out_err(&e);
	status = err_exit_status(rc);
out:
	if (have_vo)
		archive_dir_volume_discard(&a, &vo);
	xfree(used.d);
	xfree(fate);
	xfree(n_used);
	xfree(buf);
	xfree(path);
	head_release(&nh);
	archive_dir_release(&a);
	return status;
}
