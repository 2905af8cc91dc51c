/*
 * log.c - `refscan log` (the versions of the archive, newest first) and
 * `refscan diff` (which scans two versions add, change and remove).
 *
 * Both are readers: no lock, only files HEAD names.  An entry counts as
 * changed when its scan bytes, any of its files (MTL, textures, sidecar)
 * or its metadata differ; a rename shows as one removal plus one
 * addition (the bytes are stored once either way).
 */
#include "archive.h"
#include "../common/alloc.h"
#include "../common/commands.h"
#include "../common/err.h"
#include "../common/exitcodes.h"
#include "../common/out.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/banned.h"

static const char log_usage[] =
	"usage: refscan log [--archive DIR] [--json] [-n N]\n"
	"\n"
	"List the versions of the archive, newest first: when each was made,\n"
	"how many scans it added, changed and removed, how many failed, and the\n"
	"new bytes it stored.\n"
	"\n"
	"  -a, --archive DIR   archive directory (default: $REFSCAN_ARCHIVE)\n"
	"      --json          one JSON object per version per line\n"
	"  -n, --max-count N   show at most N versions\n"
	"  -h, --help          show this help\n";

static const struct option log_options[] = {
	{ "archive", required_argument, NULL, 'a' },
	{ "json", no_argument, NULL, 'j' },
	{ "max-count", required_argument, NULL, 'n' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void fmt_time(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(buf, n, "%Y-%m-%d %H:%M:%SZ", &tm))
		snprintf(buf, n, "?");
}

static json_t *version_json(const struct manifest *m, bool is_head)
{
	char when[32];
	time_t tt = (time_t)m->created;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(when, sizeof(when), "?");
	return json_pack("{s:I, s:o, s:s, s:I, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:b}",
			 "version", (json_int_t)m->version,
			 "parent", m->parent ? json_integer((json_int_t)m->parent) : json_null(),
			 "created", when, "created_unix", (json_int_t)m->created,
			 "tool", m->tool,
			 "entries", (json_int_t)m->n_entries,
			 "added", (json_int_t)m->counts.added,
			 "changed", (json_int_t)m->counts.changed,
			 "removed", (json_int_t)m->counts.removed,
			 "unchanged", (json_int_t)m->counts.unchanged,
			 "touched", (json_int_t)m->counts.touched,
			 "failed", (json_int_t)m->counts.failed,
			 "new_blobs", (json_int_t)m->new_blobs,
			 "new_bytes", (json_int_t)m->new_bytes,
			 "volume", m->volume ? json_integer((json_int_t)m->volume) : json_null(),
			 "head", is_head);
}

int cmd_log(int argc, char **argv)
{
	struct archive_dir a;
	const char *aopt = NULL;
	bool json = false;
	long max = -1;
	int c, status;

	optind = 1;
	while ((c = getopt_long(argc, argv, "a:n:h", log_options, NULL)) != -1) {
		switch (c) {
		case 'a':
			aopt = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'n': {
			char *end;
			max = strtol(optarg, &end, 10);
			if (end == optarg || *end || max < 0) {
				out_error("--max-count wants a non-negative number, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		}
		case 'h':
			fputs(log_usage, stdout);
			return EXIT_OK;
		default:
			fputs(log_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fputs(log_usage, stderr);
		return EXIT_USAGE;
	}
	if ((status = archive_dir_open_cli(&a, aopt)) != EXIT_OK)
		return status;
	status = EXIT_OK;
	size_t n = a.head.n_versions;
	for (size_t i = 0; i < n && (max < 0 || (long)i < max); i++) {
		uint64_t v = a.head.versions[n - 1 - i];
		struct manifest m;
		struct err e;
		err_init(&e);
		int rc = archive_dir_load_version(&a, v, &m, &e);
		if (rc == ERR_NOTFOUND)
			continue; /* pruned while we were listing */
		if (rc < 0) {
			out_err(&e);
			status = err_exit_status(rc);
			continue;
		}
		bool is_head = v == a.head.version;
		if (json) {
			out_json_line(version_json(&m, is_head));
		} else {
			char when[32], vol[32] = "";
			fmt_time(m.created, when, sizeof(when));
			if (m.volume)
				snprintf(vol, sizeof(vol), ", volume %08" PRIu64, m.volume);
			printf("version %" PRIu64 "  %s  +%" PRIu64 " ~%" PRIu64 " -%" PRIu64
			       " !%" PRIu64 "  %zu scans, %" PRIu64 " new blobs, %.1f MB%s%s\n",
			       m.version, when, m.counts.added, m.counts.changed, m.counts.removed,
			       m.counts.failed, m.n_entries, m.new_blobs, (double)m.new_bytes / 1e6,
			       vol, is_head ? "  (HEAD)" : "");
		}
		manifest_release(&m);
	}
	archive_dir_release(&a);
	return status;
}

/* ---- diff ------------------------------------------------------------ */

static const char diff_usage[] =
	"usage: refscan diff [--archive DIR] [--json] [V1 [V2]]\n"
	"\n"
	"Show the scans V2 adds (A), changes (M) and removes (D) relative to V1.\n"
	"A version is N, HEAD or HEAD~K.  V2 defaults to HEAD and V1 to the\n"
	"version before V2.  A scan is changed when its bytes, its MTL,\n"
	"textures or sidecar, or its metadata differ.\n"
	"\n"
	"  -a, --archive DIR   archive directory (default: $REFSCAN_ARCHIVE)\n"
	"      --json          one object: {from, to, added, changed, removed}\n"
	"  -h, --help          show this help\n";

static const struct option diff_options[] = {
	{ "archive", required_argument, NULL, 'a' },
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static bool files_equal(const struct manifest_entry *x, const struct manifest_entry *y)
{
	if (x->n_files != y->n_files)
		return false;
	for (size_t i = 0; i < x->n_files; i++) {
		const struct manifest_file *p = &x->files[i], *q = &y->files[i];
		if (p->role != q->role || p->missing != q->missing || strcmp(p->path, q->path) ||
		    (!p->missing && memcmp(p->blob, q->blob, SHA256_LEN)))
			return false;
	}
	return true;
}

static bool entry_changed(const struct manifest_entry *x, const struct manifest_entry *y)
{
	return memcmp(x->blob, y->blob, SHA256_LEN) != 0 || !files_equal(x, y) ||
	       !json_equal(x->meta, y->meta) ||
	       strcmp(x->units ? x->units : "", y->units ? y->units : "") != 0;
}

int cmd_diff(int argc, char **argv)
{
	struct archive_dir a;
	struct manifest m1, m2;
	struct err e;
	const char *aopt = NULL;
	bool json = false, usage = false;
	uint64_t v1 = 0, v2 = 0;
	int c, status, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "a:h", diff_options, NULL)) != -1) {
		switch (c) {
		case 'a':
			aopt = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(diff_usage, stdout);
			return EXIT_OK;
		default:
			fputs(diff_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind > 2) {
		fputs(diff_usage, stderr);
		return EXIT_USAGE;
	}
	if ((status = archive_dir_open_cli(&a, aopt)) != EXIT_OK)
		return status;
	manifest_init(&m1);
	manifest_init(&m2);
	err_init(&e);
	if ((rc = archive_dir_parse_version(&a, argc - optind == 2 ? argv[optind + 1] : "HEAD", &v2, &e)) < 0 ||
	    (argc - optind >= 1 && (rc = archive_dir_parse_version(&a, argv[optind], &v1, &e)) < 0)) {
		usage = rc == ERR_FORMAT;
		goto fail;
	}
	if ((rc = archive_dir_load_version(&a, v2, &m2, &e)) < 0)
		goto fail;
	if (argc - optind == 0)
		v1 = m2.parent && head_has_version(&a.head, m2.parent) ? m2.parent : 0;
	if (v1 && (rc = archive_dir_load_version(&a, v1, &m1, &e)) < 0)
		goto fail;

	json_t *added = json_array(), *changed = json_array(), *removed = json_array();
	size_t i = 0, j = 0;
	while (i < m1.n_entries || j < m2.n_entries) {
		int cmp = i >= m1.n_entries ? 1 : j >= m2.n_entries ? -1
			  : strcmp(m1.entries[i].path, m2.entries[j].path);
		if (cmp < 0) {
			json_array_append_new(removed, json_string(m1.entries[i].path));
			if (!json)
				printf("D\t%s\n", m1.entries[i].path);
			i++;
		} else if (cmp > 0) {
			json_array_append_new(added, json_string(m2.entries[j].path));
			if (!json)
				printf("A\t%s\n", m2.entries[j].path);
			j++;
		} else {
			if (entry_changed(&m1.entries[i], &m2.entries[j])) {
				json_array_append_new(changed, json_string(m2.entries[j].path));
				if (!json)
					printf("M\t%s\n", m2.entries[j].path);
			}
			i++;
			j++;
		}
	}
	if (json)
		out_json_line(json_pack("{s:o, s:I, s:o, s:o, s:o}",
					"from", v1 ? json_integer((json_int_t)v1) : json_null(),
					"to", (json_int_t)v2, "added", added, "changed", changed,
					"removed", removed));
	else {
		json_decref(added);
		json_decref(changed);
		json_decref(removed);
	}
	manifest_release(&m1);
	manifest_release(&m2);
	archive_dir_release(&a);
	return EXIT_OK;
fail:
	out_err(&e);
	manifest_release(&m1);
	manifest_release(&m2);
	archive_dir_release(&a);
	return usage ? EXIT_USAGE : err_exit_status(rc);
}
