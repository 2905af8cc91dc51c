/*
 * verify.c - `refscan verify`: re-read every blob of the chosen versions,
 * check each against its SHA-256 and each volume against its recorded
 * size and digest, and name every damaged volume and every scan that a
 * damaged or missing blob affects.
 *
 * A reader: no lock.  Volumes are read whole and in order; a zstd or tar
 * error stops the reading of that volume, and every blob it did not
 * reach counts as unreadable.  A volume index that cannot be read makes
 * its blobs unlocatable, which shows as "in no readable volume".
 */
#include "archive.h"
#include "../common/alloc.h"
#include "../common/commands.h"
#include "../common/err.h"
#include "../common/exitcodes.h"
#include "../common/out.h"
#include "../common/progress.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/banned.h"

static const char verify_usage[] =
	"usage: refscan verify [--archive DIR] [--version V | --all] [--json]\n"
	"\n"
	"Re-read every blob the chosen versions use (default: HEAD; --all: every\n"
	"version and every volume), check each against its SHA-256 and each\n"
	"manifest and volume index against the format, and name each damaged\n"
	"volume and every scan it affects.\n"
	"\n"
	"  -a, --archive DIR   archive directory (default: $REFSCAN_ARCHIVE)\n"
	"  -V, --version V     check version V (N, HEAD or HEAD~K)\n"
	"      --all           check every version and every volume\n"
	"      --json          one summary object on stdout\n"
	"  -q, --quiet         print only problems\n"
	"  -h, --help          show this help\n"
	"\n"
	"exit status: 0 no damage; 65 damage found; 66 no archive.\n";

enum { OPT_ALL = 256, OPT_JSON };

static const struct option verify_options[] = {
	{ "archive", required_argument, NULL, 'a' },
	{ "version", required_argument, NULL, 'V' },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* One use of a blob by a version. */
struct need {
	unsigned char digest[SHA256_LEN];
	uint64_t version;
	const char *entry;   /* scan path, borrowed from the manifest */
	const char *file;    /* the MTL/texture/sidecar path, or NULL */
	const char *role;    /* "scan", "mtl", "texture", "sidecar", "descriptors" */
};

enum blob_state { B_UNSEEN = 0, B_OK, B_BAD };

struct vol {
	uint64_t id;
	bool idx_ok;
	struct volidx idx;
	unsigned char *state;  /* enum blob_state per idx blob */
	bool read;             /* chosen for reading */
	bool damaged;
	char why[ERR_PATH_MAX + 600]; /* first problem found */
	uint64_t n_bad;
};

struct verify {
	struct archive_dir *a;
	size_t n_man;
	struct manifest *man;
	size_t n_needs, cap_needs;
	struct need *needs;
	size_t n_vols;
	struct vol *vols;
	json_t *problems;       /* manifest / index-file problems */
	uint64_t blobs_checked, bytes_checked;
	bool all, json, quiet, progress;
};

static void damage(struct vol *v, const char *fmt, const char *a, const char *b)
{
	if (!v->damaged)
		snprintf(v->why, sizeof(v->why), fmt, a, b);
	v->damaged = true;
}

static int add_need(struct verify *vf, const unsigned char d[SHA256_LEN],
		    uint64_t version, const char *entry, const char *file,
		    const char *role)
{
	if (alloc_grow((void **)&vf->needs, &vf->cap_needs, vf->n_needs + 1,
		       sizeof(*vf->needs)) < 0)
		return ERR_NOMEM;
	struct need *n = &vf->needs[vf->n_needs++];
	memcpy(n->digest, d, SHA256_LEN);
	n->version = version;
	n->entry = entry;
	n->file = file;
	n->role = role;
	return 0;
}

static int collect_needs(struct verify *vf, const struct manifest *m)
{
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct manifest_entry *en = &m->entries[i];
		if (add_need(vf, en->blob, m->version, en->path, NULL, "scan") < 0)
			return ERR_NOMEM;
		for (size_t k = 0; k < en->n_files; k++) {
			const struct manifest_file *f = &en->files[k];
			if (!f->missing && add_need(vf, f->blob, m->version, en->path, f->path,
						    manifest_role_name(f->role)) < 0)
				return ERR_NOMEM;
		}
		if (en->desc.schema &&
		    add_need(vf, en->desc.blob, m->version, en->path, NULL, "descriptors") < 0)
			return ERR_NOMEM;
	}
	return 0;
}

static int find_in_idx(const struct volidx *x, const unsigned char d[SHA256_LEN])
{
	size_t lo = 0, hi = x->n_blobs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(x->blobs[mid].digest, d, SHA256_LEN);
		if (!c)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Volume holding d (first readable index that lists it), or NULL. */
static struct vol *locate(struct verify *vf, const unsigned char d[SHA256_LEN], int *pos)
{
	for (size_t i = 0; i < vf->n_vols; i++) {
		struct vol *v = &vf->vols[i];
		if (!v->idx_ok)
			continue;
		int p = find_in_idx(&v->idx, d);
		if (p >= 0) {
			*pos = p;
			return v;
		}
	}
	return NULL;
}

static void load_volume_indexes(struct verify *vf)
{
	struct archive_dir *a = vf->a;
	for (size_t i = 0; i < vf->n_vols; i++) {
		struct vol *v = &vf->vols[i];
		char path[ERR_PATH_MAX], *buf = NULL;
		struct err e;
		err_init(&e);
		snprintf(path, sizeof(path), "%s/volumes/%08" PRIu64 ".idx.json", a->path, v->id);
		FILE *f = fopen(path, "rb");
		if (!f) {
			damage(v, "volume index %s: %s", path, strerror(errno));
			continue;
		}
		size_t cap = 0, n = 0;
		for (;;) {
			if (alloc_grow((void **)&buf, &cap, n + 65536, 1) < 0)
				break;
			size_t k = fread(buf + n, 1, cap - n - 1, f);
			n += k;
			if (!k)
				break;
		}
		fclose(f);
		if (!buf) {
			damage(v, "volume index %s: %s", path, "out of memory");
			continue;
		}
		buf[n] = '\0';
		if (volidx_parse(buf, n, &v->idx, &e) < 0) {
			damage(v, "volume index %s: %s", path, e.msg);
		} else if (v->idx.volume != v->id) {
			damage(v, "volume index %s: %s", path, "indexes another volume");
			volidx_release(&v->idx);
		} else {
			v->idx_ok = true;
			v->state = xcalloc(v->idx.n_blobs ? v->idx.n_blobs : 1, 1);
			if (!v->state) {
				v->idx_ok = false;
				damage(v, "volume index %s: %s", path, "out of memory");
			}
		}
		xfree(buf);
	}
}

/* Hash the whole volume file and compare with its index. */
static void check_file(struct vol *v, const char *path)
{
	unsigned char d[SHA256_LEN];
	uint64_t size;
	struct err e;
	char msg[64];

	err_init(&e);
	if (sha256_file(path, d, &size, &e) < 0) {
		damage(v, "%s: %s", path, e.msg);
		return;
	}
	if (!v->idx_ok)
		return;
	if (size != v->idx.size) {
		snprintf(msg, sizeof(msg), "%" PRIu64 " bytes, index says %" PRIu64, size, v->idx.size);
		damage(v, "%s: %s", path, msg);
	} else if (memcmp(d, v->idx.sha256, SHA256_LEN) != 0) {
		damage(v, "%s: %s", path, "sha-256 of the file does not match its index");
	}
}

static void read_volume(struct verify *vf, struct vol *v, struct progress *p)
{
	struct volume_reader *r = NULL;
	struct volume_entry ent;
	char path[ERR_PATH_MAX], hex[SHA256_HEX_LEN + 1];
	struct err e;
	int rc;

	archive_dir_volume_path(vf->a, v->id, path, sizeof(path));
	check_file(v, path);
	err_init(&e);
	if ((rc = volume_reader_open(&r, path, &e)) < 0) {
		damage(v, "%s: %s", path, e.msg);
		goto out;
	}
	while ((rc = volume_reader_next(r, &ent, &e)) > 0) {
		unsigned char got[SHA256_LEN];
		uint64_t n;
		if (!ent.is_blob) {
			damage(v, "%s: unexpected entry '%s' (not a blob)", path, ent.name);
			continue;
		}
		if ((rc = volume_reader_hash(r, got, &n, &e)) < 0)
			break;
		vf->blobs_checked++;
		vf->bytes_checked += n;
		progress_add(p, 1, n);
		int pos = v->idx_ok ? find_in_idx(&v->idx, ent.digest) : -1;
		bool good = !memcmp(got, ent.digest, SHA256_LEN) &&
			    (pos < 0 || n == v->idx.blobs[pos].size);
		if (pos < 0)
			continue; /* an unlisted entry: left out on purpose when written */
		if (good) {
			if (v->state[pos] != B_BAD)
				v->state[pos] = B_OK;
		} else {
			v->state[pos] = B_BAD;
			sha256_to_hex(ent.digest, hex);
			damage(v, "%s: blob %s does not match its sha-256", path, hex);
		}
	}
	if (rc < 0)
		damage(v, "%s: %s", path, e.msg);
out:
	volume_reader_free(&r);
	if (v->idx_ok)
		for (size_t i = 0; i < v->idx.n_blobs; i++)
			if (v->state[i] != B_OK) {
				if (v->state[i] == B_UNSEEN && !v->damaged)
					damage(v, "%s: %s", path, "blobs listed in its index are missing");
				v->state[i] = B_BAD;
				v->n_bad++;
			}
}

static void check_index_file(struct verify *vf, const struct manifest *m)
{
	unsigned char d[SHA256_LEN];
	uint64_t size;
	struct err e;
	char path[ERR_PATH_MAX];

	if (!m->index.file)
		return;
	err_init(&e);
	snprintf(path, sizeof(path), "%s/versions/%s", vf->a->path, m->index.file);
	const char *why = NULL;
	if (sha256_file(path, d, &size, &e) < 0)
		why = e.msg;
	else if (size != m->index.size || memcmp(d, m->index.sha256, SHA256_LEN))
		why = "does not match the size and sha-256 in its manifest";
	if (why)
		json_array_append_new(vf->problems, json_pack("{s:I, s:s, s:s}", "version",
							      (json_int_t)m->version, "file", path,
							      "error", why));
}

static void release(struct verify *vf)
{
	for (size_t i = 0; i < vf->n_man; i++)
		manifest_release(&vf->man[i]);
	xfree(vf->man);
	xfree(vf->needs);
	for (size_t i = 0; i < vf->n_vols; i++) {
		volidx_release(&vf->vols[i].idx);
		xfree(vf->vols[i].state);
	}
	xfree(vf->vols);
	json_decref(vf->problems);
}

/*
 * One pass over the archive as HEAD names it.  Returns 1 when HEAD
 * changed under us and files vanished (the caller retries), 0 otherwise
 * with the report printed and *status set.
 */
static int verify_once(struct verify *vf, const char *version_arg, int *status)
{
	struct archive_dir *a = vf->a;
	struct err e;
	int rc;

	err_init(&e);
	vf->problems = json_array();
	/* which versions */
	size_t nv = 0;
	uint64_t one = 0;
	const uint64_t *vs;
	if (vf->all) {
		vs = a->head.versions;
		nv = a->head.n_versions;
	} else {
		if ((rc = archive_dir_parse_version(a, version_arg ? version_arg : "HEAD", &one, &e)) < 0) {
			out_err(&e);
			*status = rc == ERR_FORMAT ? EXIT_USAGE : err_exit_status(rc);
			return 0;
		}
		vs = &one;
		nv = 1;
	}
	vf->man = alloc_array_zero(nv ? nv : 1, sizeof(*vf->man));
	vf->vols = alloc_array_zero(a->head.n_volumes ? a->head.n_volumes : 1, sizeof(*vf->vols));
	if (!vf->man || !vf->vols || !vf->problems) {
		out_error("out of memory");
		*status = EXIT_SOFTWARE;
		return 0;
	}
	for (size_t i = 0; i < nv; i++) {
		char buf[ERR_PATH_MAX + 300];
		rc = archive_dir_load_version(a, vs[i], &vf->man[vf->n_man], &e);
		if (rc == ERR_NOTFOUND && archive_dir_head_changed(a))
			return 1;
		if (rc < 0) {
			json_array_append_new(vf->problems, json_pack("{s:I, s:s, s:s}", "version",
								      (json_int_t)vs[i], "file", e.path,
								      "error", err_format(&e, buf, sizeof(buf))));
			continue;
		}
		if (collect_needs(vf, &vf->man[vf->n_man]) < 0) {
			out_error("out of memory");
			*status = EXIT_SOFTWARE;
			return 0;
		}
		check_index_file(vf, &vf->man[vf->n_man]);
		vf->n_man++;
	}

	/* which volumes */
	vf->n_vols = a->head.n_volumes;
	for (size_t i = 0; i < vf->n_vols; i++)
		vf->vols[i].id = a->head.volumes[i];
	load_volume_indexes(vf);
	uint64_t total = 0, nblobs = 0;
	for (size_t i = 0; i < vf->n_vols; i++)
		vf->vols[i].read = vf->all || !vf->vols[i].idx_ok;
	for (size_t i = 0; i < vf->n_needs; i++) {
		int pos;
		struct vol *v = locate(vf, vf->needs[i].digest, &pos);
		if (v)
			v->read = true;
	}
	for (size_t i = 0; i < vf->n_vols; i++)
		if (vf->vols[i].read && vf->vols[i].idx_ok) {
			nblobs += vf->vols[i].idx.n_blobs;
			for (size_t k = 0; k < vf->vols[i].idx.n_blobs; k++)
				total += vf->vols[i].idx.blobs[k].size;
		}
	struct progress *p = progress_start(vf->progress, "verifying", nblobs, total);
	for (size_t i = 0; i < vf->n_vols; i++) {
		if (!vf->vols[i].read)
			continue;
		char path[ERR_PATH_MAX];
		archive_dir_volume_path(a, vf->vols[i].id, path, sizeof(path));
		if (access(path, F_OK) < 0 && errno == ENOENT && archive_dir_head_changed(a)) {
			progress_stop(&p);
			return 1; /* pruned meanwhile */
		}
		read_volume(vf, &vf->vols[i], p);
	}
	progress_stop(&p);

	/* report */
	json_t *vols = json_array(), *affected = json_array();
	size_t n_damaged = 0;
	for (size_t i = 0; i < vf->n_vols; i++) {
		struct vol *v = &vf->vols[i];
		if (!v->damaged)
			continue;
		n_damaged++;
		char file[64];
		snprintf(file, sizeof(file), "volumes/%08" PRIu64 ".tar.zst", v->id);
		json_array_append_new(vols, json_pack("{s:I, s:s, s:s, s:I}", "volume", (json_int_t)v->id,
						      "file", file, "error", v->why,
						      "bad_blobs", (json_int_t)v->n_bad));
		if (!vf->json)
			printf("damaged volume %s: %s (%" PRIu64 " bad blobs)\n", file, v->why, v->n_bad);
	}
	size_t n_affected = 0;
	const char *last_entry = NULL;
	uint64_t last_version = 0;
	for (size_t i = 0; i < vf->n_needs; i++) {
		const struct need *nd = &vf->needs[i];
		int pos;
		struct vol *v = locate(vf, nd->digest, &pos);
		const char *why;
		if (!v)
			why = "in no readable volume";
		else if (v->state[pos] == B_BAD)
			why = "damaged";
		else
			continue;
		char hex[SHA256_HEX_LEN + 1];
		sha256_to_hex(nd->digest, hex);
		json_array_append_new(affected, json_pack("{s:I, s:s, s:s, s:s?, s:s, s:o, s:s}",
			"version", (json_int_t)nd->version, "path", nd->entry, "role", nd->role,
			"file", nd->file, "blob", hex,
			"volume", v ? json_integer((json_int_t)v->id) : json_null(), "problem", why));
		if (!last_entry || last_version != nd->version || strcmp(last_entry, nd->entry)) {
			n_affected++;
			last_entry = nd->entry;
			last_version = nd->version;
		}
		if (!vf->json) {
			char vol[32] = "";
			if (v)
				snprintf(vol, sizeof(vol), " in volume %08" PRIu64, v->id);
			printf("affected: version %" PRIu64 ": %s%s%s%s (%s %s%s)\n", nd->version,
			       nd->entry, nd->file ? " (" : "", nd->file ? nd->file : "",
			       nd->file ? ")" : "", nd->role, why, vol);
		}
	}
	size_t n_problems = json_array_size(vf->problems);
	if (!vf->json)
		for (size_t i = 0; i < n_problems; i++) {
			json_t *pr = json_array_get(vf->problems, i);
			printf("damaged: %s: %s\n", json_string_value(json_object_get(pr, "file")),
			       json_string_value(json_object_get(pr, "error")));
		}
	bool ok = !n_damaged && !json_array_size(affected) && !n_problems;
	if (vf->json) {
		json_t *vlist = json_array();
		for (size_t i = 0; i < vf->n_man; i++)
			json_array_append_new(vlist, json_integer((json_int_t)vf->man[i].version));
		out_json_line(json_pack("{s:b, s:o, s:I, s:I, s:I, s:o, s:o, s:O}",
					"ok", ok, "versions", vlist,
					"volumes_checked", (json_int_t)(vf->n_vols),
					"blobs_checked", (json_int_t)vf->blobs_checked,
					"bytes_checked", (json_int_t)vf->bytes_checked,
					"damaged_volumes", vols, "affected", affected,
					"problems", vf->problems));
	} else {
		json_decref(vols);
		json_decref(affected);
		if (!vf->quiet || !ok)
			printf("verify: %s: %zu version%s, %" PRIu64 " blobs (%.1f MB) checked; %zu damaged volume%s, %zu scan%s affected\n",
			       ok ? "ok" : "DAMAGED", vf->n_man, vf->n_man == 1 ? "" : "s",
			       vf->blobs_checked, (double)vf->bytes_checked / 1e6, n_damaged,
			       n_damaged == 1 ? "" : "s", n_affected, n_affected == 1 ? "" : "s");
	}
	if (!ok) {
		out_error("the archive is damaged: %zu volume%s, %zu scan%s affected", n_damaged,
			  n_damaged == 1 ? "" : "s", n_affected, n_affected == 1 ? "" : "s");
		*status = EXIT_DATAERR;
	} else {
		*status = EXIT_OK;
	}
	return 0;
}

int cmd_verify(int argc, char **argv)
{
	struct archive_dir a;
	struct verify vf;
	const char *aopt = NULL, *version = NULL;
	int c, status;

	memset(&vf, 0, sizeof(vf));
	optind = 1;
	while ((c = getopt_long(argc, argv, "a:V:qh", verify_options, NULL)) != -1) {
		switch (c) {
		case 'a':
			aopt = optarg;
			break;
		case 'V':
			version = optarg;
			break;
		case OPT_ALL:
			vf.all = true;
			break;
		case OPT_JSON:
			vf.json = true;
			break;
		case 'q':
			vf.quiet = true;
			break;
		case 'h':
			fputs(verify_usage, stdout);
			return EXIT_OK;
		default:
			fputs(verify_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc || (vf.all && version)) {
		if (vf.all && version)
			out_error("--version and --all exclude each other");
		fputs(verify_usage, stderr);
		return EXIT_USAGE;
	}
	if ((status = archive_dir_open_cli(&a, aopt)) != EXIT_OK)
		return status;
	vf.a = &a;
	vf.progress = !vf.json && !vf.quiet && progress_wanted();
	if (!a.head.version) {
		if (!vf.json && !vf.quiet)
			printf("verify: ok: the archive is empty\n");
		else if (vf.json)
			out_json_line(json_pack("{s:b, s:[], s:I, s:I, s:I, s:[], s:[], s:[]}", "ok", 1,
						"versions", "volumes_checked", (json_int_t)0,
						"blobs_checked", (json_int_t)0, "bytes_checked", (json_int_t)0,
						"damaged_volumes", "affected", "problems"));
		archive_dir_release(&a);
		return EXIT_OK;
	}
	/* a prune may delete files between our reading HEAD and them: retry */
	for (int attempt = 0;; attempt++) {
		int again = verify_once(&vf, version, &status);
		bool all = vf.all, json = vf.json, quiet = vf.quiet, prog = vf.progress;
		release(&vf);
		memset(&vf, 0, sizeof(vf));
		vf.a = &a;
		vf.all = all;
		vf.json = json;
		vf.quiet = quiet;
		vf.progress = prog;
		if (!again)
			break;
		struct err e;
		err_init(&e);
		if (attempt >= 3 || archive_dir_reload(&a, &e) < 0) {
			out_error("the archive keeps changing under verify; try again");
			status = EXIT_TEMPFAIL;
			break;
		}
	}
	archive_dir_release(&a);
	return status;
}
