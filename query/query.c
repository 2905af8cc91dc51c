/*
 * query.c - `refscan query`: find the archived references closest to one
 * or more sculpts by shape and surface texture (docs/search.md,
 * docs/commands-query.md).
 *
 * Pipeline: open the version (vindex_open) -> read and describe every
 * sculpt, in parallel (OpenMP, one sculpt per thread) -> rank: for an ANN
 * index, one batched FAISS search over all sculpts fetches candidates,
 * which are filtered and re-ranked exactly with the stored descriptors
 * (falling back to the exact scan when filters leave fewer than k); for
 * an exact index the whole table is scanned -> report (table or JSON
 * lines), optionally restore the matches (--extract).
 *
 * A sculpt that cannot be read or described is reported on its own line
 * and the others are still answered.
 */
#include "knn.h"
#include "rank.h"
#include "vindex.h"
#include "../common/alloc.h"
#include "../common/commands.h"
#include "../common/err.h"
#include "../common/exitcodes.h"
#include "../common/out.h"
#include "../formats/formats.h"
#include "../formats/image.h"
#include "../formats/scan.h"
#include "../indexer/archive.h"
#include "../indexer/extract.h"
#include "sheet.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/banned.h"

#define DEFAULT_K 5u
#define MAX_FILTERS 32u

static const char query_usage[] =
	"usage: refscan query [--archive DIR] [--version V] [-k K] [--surface]\n"
	"                     [--weights W] [--where KEY=VALUE]... [--size-mm MIN:MAX]\n"
	"                     [--exact]\n"
	"                     [--units U] [--explain] [--json] [--extract DIR]\n"
	"                     [--sheet FILE.png] SCULPT...\n"
	"\n"
	"Find the archived scans closest to each SCULPT (any scan format refscan\n"
	"reads) by shape and surface texture.  Several sculpts are described in\n"
	"parallel and searched together.  Every reference is matched whole and\n"
	"as seen from 8 sides, so a sculpt or scan of one side finds the whole.\n"
	"\n"
	"  -a, --archive DIR   archive directory (default: $REFSCAN_ARCHIVE,\n"
	"                      else $XDG_DATA_HOME/refscan/archive)\n"
	"  -V, --version V     version to search: N, HEAD or HEAD~K (default HEAD)\n"
	"  -k K                results per sculpt (default 5, at most 10000)\n"
	"  -s, --surface       the surface texture on any form: relief (and colour)\n"
	"                      only, the form left out (default: this object,\n"
	"                      however scanned)\n"
	"  -w, --weights W     block weights as multipliers of the indexed ones,\n"
	"                      e.g. shape=2,colour=0 (blocks: shape local relief\n"
	"                      relief_mm colour size; relief sets relief_mm too)\n"
	"  -W, --where K=V     keep references whose metadata K equals V (a list\n"
	"                      such as tags matches when one element does);\n"
	"                      repeat for AND\n"
	"      --size-mm A:B   keep references whose largest extent is A..B mm\n"
	"                      (either side may be empty)\n"
	"      --exact         scan every reference even with an ANN index\n"
	"      --units U       units of sculpts that do not say (default:\n"
	"                      $REFSCAN_DEFAULT_UNITS, else mm)\n"
	"  -e, --explain       per-block distances: what made each match close,\n"
	"                      and the side (view) it was matched from\n"
	"      --json          one JSON object per sculpt per line\n"
	"  -x, --extract DIR   restore each match under DIR/<rank>-<name>/\n"
	"                      (DIR/<sculpt>/<rank>-<name>/ for several sculpts)\n"
	"      --sheet FILE    draw each sculpt and its matches, a row per sculpt,\n"
	"                      into the PNG FILE, a bar under each match for its\n"
	"                      score\n"
	"  -h, --help          show this help\n"
	"\n"
	"exit status: 0 every sculpt answered; 1 some sculpts (or extracted\n"
	"files, or drawings) failed, the rest answered; 64 usage; 65 every sculpt is bad\n"
	"data; 66 no archive, version or index, or no sculpt could be opened;\n"
	"74 I/O error.\n";

enum { OPT_JSON = 256, OPT_SIZE, OPT_EXACT, OPT_UNITS, OPT_SHEET };

static const struct option query_options[] = {
	{ "archive", required_argument, NULL, 'a' },
	{ "version", required_argument, NULL, 'V' },
	{ "weights", required_argument, NULL, 'w' },
	{ "surface", no_argument, NULL, 's' },
	{ "where", required_argument, NULL, 'W' },
	{ "size-mm", required_argument, NULL, OPT_SIZE },
	{ "exact", no_argument, NULL, OPT_EXACT },
	{ "units", required_argument, NULL, OPT_UNITS },
	{ "explain", no_argument, NULL, 'e' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "extract", required_argument, NULL, 'x' },
	{ "sheet", required_argument, NULL, OPT_SHEET },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* One sculpt: its descriptor, then its answer. */
struct sculpt {
	const char *path;
	float *vec;
	struct desc_info info;
	struct err err;
	int rc;                  /* describing */
	struct rank_hit *hits;
	struct rank_result res;
	float w[RANK_MAX_BLOCKS];    /* effective weights (rank_weights) */
	float mult[RANK_MAX_BLOCKS]; /* --weights, 0 for blocks the sculpt lacks */
};

struct qopts {
	size_t k;
	float weights[RANK_MAX_BLOCKS];
	bool reweighted;
	enum desc_preset preset;     /* --surface */
	struct rank_filter filters[MAX_FILTERS];
	size_t n_filters;
	double size_min, size_max;
	bool exact, explain, json;
	const char *extract;
	const char *sheet;       /* --sheet: PNG path */
	double mm_per_unit;      /* for sculpts without units */
};

/* ---- options ------------------------------------------------------------ */

static int parse_weights(char *s, float *w, bool *changed)
{
	for (size_t b = 0; b < DESC_N_BLOCKS; b++)
		w[b] = NAN; /* not named: the preset's */
	for (char *tok = s, *next; tok && *tok; tok = next) {
		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		char *eq = strchr(tok, '=');
		if (!eq) {
			out_error("--weights: '%s' is not NAME=WEIGHT", tok);
			return -1;
		}
		*eq = '\0';
		char *end;
		errno = 0;
		double v = strtod(eq + 1, &end);
		if (end == eq + 1 || *end || errno == ERANGE || !isfinite(v) || v < 0 || v > 1e6) {
			out_error("--weights: '%s' wants a number from 0 to 1e6, not '%s'", tok, eq + 1);
			return -1;
		}
		const char *name = !strcmp(tok, "color") ? "colour" : tok;
		int id = describe_block_find(name);
		if (id < 0) {
			out_error("--weights: unknown block '%s' (shape local relief relief_mm colour size)", tok);
			return -1;
		}
		w[id] = (float)v;
		if (id == DESC_RELIEF)
			w[DESC_RELIEF_MM] = (float)v;
		*changed = true;
	}
	return 0;
}

static int parse_size(const char *s, double *lo, double *hi)
{
	const char *colon = strchr(s, ':');
	*lo = *hi = NAN;
	if (!colon)
		return -1;
	char *end;
	if (colon != s) {
		errno = 0;
		*lo = strtod(s, &end);
		if (end != colon || errno == ERANGE || !isfinite(*lo) || *lo < 0)
			return -1;
	}
	if (colon[1]) {
		errno = 0;
		*hi = strtod(colon + 1, &end);
		if (*end || errno == ERANGE || !isfinite(*hi) || *hi < 0)
			return -1;
	}
	if (!isnan(*lo) && !isnan(*hi) && *lo > *hi)
		return -1;
	return 0;
}

/* ---- describing ------------------------------------------------------- */

/*
 * Read and describe one sculpt in its own units, else mm_per_unit.  One
 * read; textures decoded for colour.  Fills sc->vec, sc->info, sc->err.
 */
static int describe_sculpt(struct sculpt *sc, double mm_per_unit, int threads)
{
	struct scan s;
	struct image *tex = NULL;
	struct describe_opts o;
	size_t n_failed = 0;
	int rc;

	scan_init(&s);
	if ((rc = scan_read_file(sc->path, NULL, &s, &sc->err)) < 0)
		goto out;
	if ((rc = describe_load_textures(&s, NULL, &tex, &n_failed, &sc->err)) < 0)
		goto out;
	describe_opts_init(&o);
	o.mm_per_unit = s.units != UNITS_UNKNOWN ? 0 : mm_per_unit;
	o.textures = tex;
	o.n_textures = tex ? s.n_textures : 0;
	o.threads = threads;
	rc = describe_scan(&s, &o, sc->vec, &sc->info, &sc->err);
out:
	if (rc < 0 && !sc->err.path[0])
		err_set_path(&sc->err, sc->path);
	describe_textures_free(&tex, s.n_textures);
	scan_release(&s);
	return rc;
}

/* ---- ranking -------------------------------------------------------------- */

static void query_init(struct rank_query *q, const struct qopts *qo,
		       const struct sculpt *sc)
{
	rank_query_init(q, sc->vec, qo->k);
	q->weights = sc->mult;
	q->filters = qo->filters;
	q->n_filters = qo->n_filters;
	q->size_min_mm = qo->size_min;
	q->size_max_mm = qo->size_max;
	q->keep = describe_preset_keep(qo->preset);
	if (!(sc->info.flags & DESC_HAS_COLOUR))
		q->flags |= RANK_NO_COLOUR;
	if (qo->exact)
		q->flags |= RANK_EXACT;
}

/*
 * ANN path for every good sculpt at once: one knn_search() fetching
 * candidates for all, then an exact re-rank per sculpt over its
 * candidates (rank_candidates); a sculpt left with fewer than k hits
 * after the filters is ranked over the whole table instead.
 */
static int rank_ann(struct vindex *vx, const struct qopts *qo,
		    struct sculpt *sc, size_t n_sc, struct err *e)
{
	size_t dim = vx->refs.dim, nq = 0, nrows = 0, *qi = NULL, *row0 = NULL, *nr = NULL;
	int filtered = qo->n_filters || !isnan(qo->size_min) || !isnan(qo->size_max);
	size_t fetch = rank_fetch(qo->k, 1, filtered);
	size_t cap = (n_sc ? n_sc : 1) * RANK_MAX_ANN_ROWS;
	float *qv = NULL, *dist = NULL;
	int64_t *ids = NULL;
	int rc = 0;

	if (fetch > vx->refs.n)
		fetch = vx->refs.n;
	qi = alloc_array(n_sc ? n_sc : 1, sizeof(*qi));
	row0 = alloc_array(n_sc ? n_sc : 1, sizeof(*row0));
	nr = alloc_array(n_sc ? n_sc : 1, sizeof(*nr));
	qv = alloc_array(cap, dim * sizeof(float));
	dist = alloc_array(cap, fetch * sizeof(float));
	ids = alloc_array(cap, fetch * sizeof(int64_t));
	if (!qi || !row0 || !nr || !qv || !dist || !ids) {
		rc = err_set(e, ERR_NOMEM, "out of memory for %zu candidates", fetch);
		goto out;
	}
	for (size_t i = 0; i < n_sc; i++) {
		struct rank_query q;
		float w[RANK_MAX_BLOCKS];
		if (sc[i].rc < 0)
			continue;
		query_init(&q, qo, &sc[i]);
		if ((rc = rank_weights(&vx->layout, &q, w, e)) < 0)
			goto out;
		/* the index's rows for this sculpt (rank_ann_rows) */
		row0[nq] = nrows;
		nr[nq] = rank_ann_rows(&vx->refs, &vx->layout, w, sc[i].vec, qv + nrows * dim);
		nrows += nr[nq];
		qi[nq++] = i;
	}
	if (!nq)
		goto out;
	if ((rc = knn_search(&vx->knn, nrows, qv, fetch, dist, ids, e)) < 0)
		goto out;
	for (size_t j = 0; j < nq; j++) {
		struct sculpt *s = &sc[qi[j]];
		struct rank_query q;
		int64_t *cand = ids + row0[j] * fetch;
		size_t seen = rank_merge_ids(cand, nr[j] * fetch);
		query_init(&q, qo, s);
		if ((rc = rank_candidates(&vx->refs, &vx->layout, &q, cand, seen,
					  s->hits, &s->res, e)) < 0)
			goto out;
		s->res.n_fetched = fetch;
		if (s->res.n_hits < qo->k && seen < vx->refs.n) {
			/* the filters left too few: rank every reference */
			q.flags |= RANK_EXACT;
			if ((rc = rank_search(&vx->refs, &vx->layout, NULL, &q, s->hits, &s->res, e)) < 0)
				goto out;
		}
	}
out:
	xfree(ids);
	xfree(dist);
	xfree(qv);
	xfree(nr);
	xfree(row0);
	xfree(qi);
	return rc;
}

/* ---- output ---------------------------------------------------------------- */

static const char *meta_str(const struct manifest_entry *en, const char *key)
{
	const json_t *j = en->meta ? json_object_get(en->meta, key) : NULL;
	return json_is_string(j) ? json_string_value(j) : NULL;
}

/* "skin (cast, left)" from material and tags; buf returned. */
static const char *material_tags(const struct manifest_entry *en, char *buf, size_t n)
{
	const char *mat = meta_str(en, "material");
	const json_t *tags = en->meta ? json_object_get(en->meta, "tags") : NULL;
	size_t len = (size_t)snprintf(buf, n, "%s", mat ? mat : "-");
	bool open = false;
	for (size_t i = 0; json_is_array(tags) && i < json_array_size(tags) && len < n; i++) {
		const char *t = json_string_value(json_array_get(tags, i));
		if (!t || (mat && !strcmp(t, mat)))
			continue;
		len += (size_t)snprintf(buf + len, n - len, "%s%s", open ? "," : " [", t);
		open = true;
	}
	if (open && len < n)
		snprintf(buf + len, n - len, "]");
	return buf;
}

/* How close block b is on its own: 100 = identical, ~5 unrelated. */
static float block_score(const struct vindex *vx, const struct rank_hit *h,
			 const float *w, size_t b)
{
	if (w[b] <= 0 || !vx->refs.block_scale || vx->refs.block_scale[b] <= 0)
		return NAN;
	return rank_score(h->part[b], w[b] * vx->refs.block_scale[b]);
}

/*
 * The block that made a match close: the one whose distance saves the
 * most against an unrelated pair (w_b s_b - part_b), so a block that is
 * zero everywhere in the archive never gets the credit.  SIZE_MAX if none.
 */
static size_t closest_block(const struct vindex *vx, const struct rank_hit *h,
			    const float *w)
{
	size_t best = SIZE_MAX;
	double best_gain = 0;
	for (size_t b = 0; vx->refs.block_scale && b < vx->layout.n_blocks; b++) {
		double gain = w[b] * vx->refs.block_scale[b] - h->part[b];
		if (w[b] > 0 && gain > best_gain) {
			best_gain = gain;
			best = b;
		}
	}
	return best;
}

/*
 * Said when a quarter of the references or more are of unlike noise
 * (rank.h, Noise): the sculpt's fine local radius is not compared with
 * theirs.
 */
#define NOISE_NOTE_SHARE 0.25
static void noise_note(const struct sculpt *sc, char *buf, size_t size)
{
	snprintf(buf, size, "the sculpt's noise level (%.3g) is unlike that of "
		 "%.0f%% of the references: their fine local radius is not compared",
		 sc->info.noise, 100 * sc->res.unlike);
}

static void print_text(struct vindex *vx, const struct qopts *qo,
		       const struct sculpt *sc, size_t n_sc)
{
	printf("%s: version %" PRIu64 ", %zu references, %s%s%s\n", sc->path, vx->version,
	       vx->refs.n, sc->res.exact ? "exact scan" : "ANN + exact re-rank",
	       qo->preset == DESC_PRESET_SURFACE ? ", surface texture on any form" : "",
	       sc->info.flags & DESC_HAS_COLOUR ? "" : ", colour ignored (sculpt has none)");
	(void)n_sc;
	if (sc->res.unlike >= NOISE_NOTE_SHARE) {
		char nb[160];
		noise_note(sc, nb, sizeof(nb));
		printf("  %s\n", nb);
	}
	if (!sc->res.n_hits) {
		printf("  no reference matches the filters\n");
		return;
	}
	int mw = 15;
	for (size_t i = 0; i < sc->res.n_hits; i++) {
		char mt[256];
		int len = (int)strlen(material_tags(vindex_entry(vx, sc->hits[i].row), mt, sizeof(mt)));
		mw = len > mw ? len : mw;
	}
	printf("  %4s  %5s  %9s  %8s  %-*s  %s\n", "rank", "score", "match", "size mm", mw,
	       "material [tags]", "path");
	for (size_t i = 0; i < sc->res.n_hits; i++) {
		const struct rank_hit *h = &sc->hits[i];
		const struct manifest_entry *en = vindex_entry(vx, h->row);
		char mt[256], size[32];
		float mm = vx->size_mm[h->row];
		if (isnan(mm))
			snprintf(size, sizeof(size), "-");
		else
			snprintf(size, sizeof(size), "%.1f", (double)mm);
		printf("  %4zu  %5.1f  %9.5f  %8s  %-*s  %s\n", i + 1, (double)h->score,
		       (double)h->match, size, mw, material_tags(en, mt, sizeof(mt)), vindex_rel_path(en));
		if (!qo->explain)
			continue;
		printf("        ");
		for (size_t b = 0; b < vx->layout.n_blocks; b++) {
			float bs = block_score(vx, h, sc->w, b);
			if (sc->w[b] <= 0)
				printf(" %s off", vx->blocks[b].name);
			else if (isnan(bs)) /* no spread in the archive: no scale */
				printf(" %s %.4f (-)", vx->blocks[b].name, (double)h->part[b]);
			else
				printf(" %s %.4f (%.0f)", vx->blocks[b].name, (double)h->part[b], (double)bs);
		}
		size_t best = closest_block(vx, h, sc->w);
		if (best != SIZE_MAX)
			printf("; closest by %s", vx->blocks[best].name);
		const char *sep = "; matched on ";
		for (size_t c = 0; c < vx->layout.n_cues; c++)
			if (h->kept & ((uint32_t)1 << c)) {
				printf("%s%s", sep, vx->cues[c].name);
				sep = ", ";
			}
		if (h->view) {
			double d[3];
			describe_view_direction((int)h->view - 1, d);
			printf("; as seen from view %u (along %.2f %.2f %.2f)", h->view, d[0], d[1], d[2]);
		}
		putchar('\n');
	}
}

static json_t *hit_json(struct vindex *vx, const struct qopts *qo,
			const struct sculpt *sc, size_t i)
{
	const struct rank_hit *h = &sc->hits[i];
	const struct manifest_entry *en = vindex_entry(vx, h->row);
	float mm = vx->size_mm[h->row];
	json_t *meta = en->meta ? json_incref(en->meta) : json_object();
	json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:f, s:f, s:f, s:o, s:s, s:o}",
			      "rank", (json_int_t)(i + 1), "path", vindex_rel_path(en),
			      "archive_path", en->path, "id", (json_int_t)h->id,
			      "score", (double)h->score, "match", (double)h->match,
			      "distance", (double)h->dist,
			      "size_mm", isnan(mm) ? json_null() : json_real((double)mm),
			      "format", en->format ? en->format : "",
			      "meta", meta);
	if (o)
		json_object_set_new(o, "view", json_integer((json_int_t)h->view));
	if (o && qo->explain) {
		json_t *blocks = json_object();
		for (size_t b = 0; blocks && b < vx->layout.n_blocks; b++) {
			float bs = block_score(vx, h, sc->w, b);
			json_object_set_new(blocks, vx->blocks[b].name,
					    json_pack("{s:f, s:f, s:o}", "distance", (double)h->part[b],
						      "weight", (double)sc->w[b],
						      "score", isnan(bs) ? json_null() : json_real((double)bs)));
		}
		json_object_set_new(o, "blocks", blocks);
		json_t *on = json_array();
		for (size_t c = 0; on && c < vx->layout.n_cues; c++)
			if (h->kept & ((uint32_t)1 << c))
				json_array_append_new(on, json_string(vx->cues[c].name));
		json_object_set_new(o, "matched_on", on ? on : json_array());
	}
	return o;
}

static int print_json(struct vindex *vx, const struct qopts *qo,
		      const struct sculpt *sc)
{
	json_t *res = json_array();
	for (size_t i = 0; res && i < sc->res.n_hits; i++)
		json_array_append_new(res, hit_json(vx, qo, sc, i));
	json_t *notes = json_array();
	if (notes && !(sc->info.flags & DESC_HAS_COLOUR))
		json_array_append_new(notes, json_string("the sculpt has no colour: colour block dropped"));
	if (notes && (sc->info.flags & DESC_LOCAL_SPARSE) && qo->weights[DESC_LOCAL] > 0)
		json_array_append_new(notes, json_string("the sculpt is a point cloud too sparse for "
							 "local geometry: local block dropped"));
	if (notes && sc->res.unlike >= NOISE_NOTE_SHARE) {
		char nb[160];
		noise_note(sc, nb, sizeof(nb));
		json_array_append_new(notes, json_string(nb));
	}
	json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:b, s:b, s:f, s:I, s:o, s:o}",
			      "query", sc->path, "version", (json_int_t)vx->version,
			      "references", (json_int_t)vx->refs.n,
			      "search", qo->preset == DESC_PRESET_SURFACE ? "surface" : "object",
			      "exact", sc->res.exact != 0,
			      "colour", (sc->info.flags & DESC_HAS_COLOUR) != 0,
			      "noise", sc->info.noise,
			      "candidates", (json_int_t)sc->res.n_candidates,
			      "notes", notes ? notes : json_array(),
			      "results", res ? res : json_array());
	return out_json_line(o);
}

/* ---- --extract ------------------------------------------------------------- */

/* Stem of a path's last component ("a/b/hand01.obj" -> "hand01"). */
static void stem_of(const char *path, char *buf, size_t n)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
	snprintf(buf, n, "%.*s", (int)len, base);
	/* a name from a user's file name: keep it one safe path component */
	for (char *p = buf; *p; p++)
		if (*p == '/' || (p == buf && *p == '.'))
			*p = '_';
}

/* Length of the directory all of en's files lie in ("" -> 0). */
static size_t common_dir(const struct manifest_entry *en)
{
	const char *slash = strrchr(en->path, '/');
	size_t len = slash ? (size_t)(slash - en->path) : 0;
	for (size_t i = 0; i < en->n_files; i++) {
		const char *p = en->files[i].path;
		while (len && (strncmp(p, en->path, len) != 0 || p[len] != '/')) {
			while (len && en->path[len - 1] != '/')
				len--;
			if (len)
				len--;
		}
	}
	return len;
}

static int add_file(struct extract_file **f, size_t *n, size_t *cap, char ***names,
		    const char *prefix, const char *path, size_t cut,
		    const unsigned char *digest, uint64_t size, uint32_t mode, int64_t mtime)
{
	if (alloc_grow((void **)f, cap, *n + 1, sizeof(**f)) < 0)
		return ERR_NOMEM;
	char **nn = realloc_array(*names, *n + 1, sizeof(**names));
	if (!nn)
		return ERR_NOMEM;
	*names = nn;
	size_t len = strlen(prefix) + strlen(path) + 2;
	char *dest = xmalloc(len);
	if (!dest)
		return ERR_NOMEM;
	snprintf(dest, len, "%s/%s", prefix, path + (cut ? cut + 1 : 0));
	nn[*n] = dest;
	struct extract_file *x = &(*f)[*n];
	memcpy(x->digest, digest, SHA256_LEN);
	x->size = size;
	x->path = dest;
	x->mode = mode;
	x->mtime_ns = mtime;
	(*n)++;
	return 0;
}

/* Restore every match of every answered sculpt; returns the exit status. */
static int extract_matches(struct archive_dir *a, struct vindex *vx,
			   const struct qopts *qo, struct sculpt *sc, size_t n_sc)
{
	struct extract_file *f = NULL;
	char **names = NULL;
	size_t n = 0, cap = 0, n_ok = 0, n_bad = 0;
	int status = EXIT_OK, rc = 0;
	struct err e;

	err_init(&e);
	for (size_t s = 0; s < n_sc && !rc; s++) {
		if (sc[s].rc < 0)
			continue;
		char sdir[256];
		stem_of(sc[s].path, sdir, sizeof(sdir));
		for (size_t i = 0; i < sc[s].res.n_hits && !rc; i++) {
			const struct manifest_entry *en = vindex_entry(vx, sc[s].hits[i].row);
			char stem[256], prefix[600];
			stem_of(en->path, stem, sizeof(stem));
			if (n_sc > 1)
				snprintf(prefix, sizeof(prefix), "%s/%zu-%s", sdir, i + 1, stem);
			else
				snprintf(prefix, sizeof(prefix), "%zu-%s", i + 1, stem);
			size_t cut = common_dir(en);
			rc = add_file(&f, &n, &cap, &names, prefix, en->path, cut, en->blob, en->size,
				      en->mode, en->mtime_ns);
			for (size_t k = 0; k < en->n_files && !rc; k++) {
				const struct manifest_file *mf = &en->files[k];
				if (!mf->missing)
					rc = add_file(&f, &n, &cap, &names, prefix, mf->path, cut, mf->blob,
						      mf->size, mf->mode, mf->mtime_ns);
			}
		}
	}
	if (rc < 0) {
		out_error("out of memory");
		status = EXIT_SOFTWARE;
		goto out;
	}
	if (n) {
		if ((rc = extract_files(a, f, n, qo->extract, &n_ok, &n_bad, &e)) < 0) {
			out_err(&e);
			status = err_exit_status(rc);
			goto out;
		}
	}
	if (!qo->json)
		fprintf(stderr, "refscan: restored %zu files into %s%s\n", n_ok, qo->extract,
			n_bad ? "; some files failed" : "");
	if (n_bad)
		status = EXIT_PARTIAL;
out:
	for (size_t i = 0; i < n; i++)
		xfree(names[i]);
	xfree(names);
	xfree(f);
	return status;
}

/* ---- --sheet --------------------------------------------------------------- */

/*
 * Read and draw one cell, in its colours when its textures decode (a
 * texture that does not is drawn without, silently: the query already
 * warned of the sculpt's, and a reference's was warned of at indexing).
 * *bad set when it could not be drawn.
 */
static int sheet_one(struct sheet *sh, uint32_t row, uint32_t col, enum sheet_kind kind,
		     const char *path, const char *label, const double *dir, double score,
		     bool *bad)
{
	struct scan s;
	struct image *tex = NULL;
	size_t n_failed = 0;
	struct err e;
	int rc;
	scan_init(&s);
	err_init(&e);
	if ((rc = scan_read_file(path, NULL, &s, &e)) < 0) {
		if (rc != ERR_NOTFOUND) /* not restored: extract_files said why */
			fprintf(stderr, "refscan: %s: cannot draw it: %s\n", label, e.msg);
		rc = sheet_cell(sh, row, col, SHEET_MISSING, NULL, NULL, 0, NULL, score, &e);
		*bad = true;
	} else if ((rc = describe_load_textures(&s, NULL, &tex, &n_failed, &e)) == 0 &&
		   (rc = sheet_cell(sh, row, col, kind, &s, tex, tex ? s.n_textures : 0, dir, score,
				    &e)) == ERR_UNDESCRIBABLE) {
		fprintf(stderr, "refscan: %s: cannot draw it: %s\n", label, e.msg);
		*bad = true;
		rc = 0;
	}
	describe_textures_free(&tex, s.n_textures);
	scan_release(&s);
	return rc;
}

/*
 * Add a file to restore unless one of that path is listed (a texture two
 * scans share, a match of two sculpts).  Returns 0 added, 1 listed
 * already, or ERR_NOMEM.
 */
static int restore_add(struct extract_file **f, size_t *n, size_t *cap, const char *path,
		       const unsigned char *digest, uint64_t size, int64_t mtime_ns)
{
	for (size_t j = 0; j < *n; j++)
		if (!strcmp((*f)[j].path, path))
			return 1;
	if (alloc_grow((void **)f, cap, *n + 1, sizeof(**f)) < 0)
		return ERR_NOMEM;
	struct extract_file *x = &(*f)[(*n)++];
	memcpy(x->digest, digest, SHA256_LEN);
	x->size = size;
	x->path = path;
	x->mode = 0600;
	x->mtime_ns = mtime_ns;
	return 0;
}

/*
 * Draw each answered sculpt and its matches into qo->sheet.  The matches'
 * scans are restored into a temporary directory first.  Returns the exit
 * status: EXIT_PARTIAL when some cell could not be drawn.
 */
static int draw_sheet(struct archive_dir *a, struct vindex *vx, const struct qopts *qo,
		      struct sculpt *sc, size_t n_sc)
{
	struct extract_file *f = NULL;
	char tmpl[ERR_PATH_MAX] = "";
	size_t n = 0, cap = 0, n_ok = 0, n_bad = 0, cols = 1, rows = 0;
	size_t *row_of_sc = NULL;
	int status = EXIT_OK, rc = 0;
	struct sheet sh;
	struct err e;

	err_init(&e);
	memset(&sh, 0, sizeof(sh));
	for (size_t s = 0; s < n_sc; s++)
		if (sc[s].rc >= 0) {
			rows++;
			if (1 + sc[s].res.n_hits > cols)
				cols = 1 + sc[s].res.n_hits;
		}
	if (cols > SHEET_MAX_COLS)
		cols = SHEET_MAX_COLS; /* the first matches of a long list */
	if (rows > SHEET_MAX_ROWS) {
		out_error("--sheet: %zu sculpts, at most %u fit on one sheet", rows, SHEET_MAX_ROWS);
		return EXIT_PARTIAL;
	}
	if ((rc = extract_tmpdir("sheet", tmpl, sizeof(tmpl), &e)) < 0) {
		out_err(&e);
		return err_exit_status(rc);
	}
	/* every matched scan once, under its archive path (unique, checked safe) */
	for (size_t s = 0; s < n_sc && !rc; s++) {
		if (sc[s].rc < 0)
			continue;
		for (size_t i = 0; i < sc[s].res.n_hits && i + 1 < cols && !rc; i++) {
			const struct manifest_entry *en = vindex_entry(vx, sc[s].hits[i].row);
			rc = restore_add(&f, &n, &cap, en->path, en->blob, en->size, en->mtime_ns);
			if (rc) {
				rc = rc < 0 ? rc : 0; /* already listed: its files too */
				continue;
			}
			/* its MTL files and textures, where the scan finds them */
			for (size_t k = 0; k < en->n_files && rc >= 0; k++) {
				const struct manifest_file *mf = &en->files[k];
				if (!mf->missing && mf->role != MANIFEST_ROLE_SIDECAR)
					rc = restore_add(&f, &n, &cap, mf->path, mf->blob, mf->size,
							 mf->mtime_ns);
			}
			rc = rc < 0 ? rc : 0;
		}
	}
	if (rc < 0) {
		out_error("out of memory");
		status = EXIT_SOFTWARE;
		goto out;
	}
	if (n && (rc = extract_files(a, f, n, tmpl, &n_ok, &n_bad, &e)) < 0) {
		out_err(&e);
		status = err_exit_status(rc);
		goto out;
	}
	if ((rc = sheet_init(&sh, (uint32_t)rows, (uint32_t)cols, &e)) < 0 ||
	    !(row_of_sc = alloc_array(rows, sizeof(*row_of_sc)))) {
		out_error("out of memory for the sheet");
		status = EXIT_SOFTWARE;
		goto out;
	}
	for (size_t s = 0, r = 0; s < n_sc; s++)
		if (sc[s].rc >= 0)
			row_of_sc[r++] = s;
	/* the cells, in parallel: (sculpt row r, column c) */
	bool bad = false;
	int fail = 0;
	#pragma omp parallel for schedule(dynamic, 1) reduction(|:fail)
	for (size_t cell = 0; cell < rows * cols; cell++) {
		size_t r = cell / cols, c = cell % cols;
		const struct sculpt *q = &sc[row_of_sc[r]];
		bool my_bad = false;
		int x = 0;
		if (c == 0) {
			x = sheet_one(&sh, (uint32_t)r, 0, SHEET_SCULPT, q->path, q->path, NULL, -1,
				      &my_bad);
		} else if (c - 1 < q->res.n_hits) {
			const struct rank_hit *h = &q->hits[c - 1];
			const struct manifest_entry *en = vindex_entry(vx, h->row);
			char path[2 * ERR_PATH_MAX];
			snprintf(path, sizeof(path), "%s/%s", tmpl, en->path);
			double d[3], *dir = NULL;
			if (h->view) {
				describe_view_direction((int)h->view - 1, d);
				dir = d;
			}
			x = sheet_one(&sh, (uint32_t)r, (uint32_t)c, SHEET_MATCH, path, en->path, dir,
				      h->score, &my_bad);
		}
		if (my_bad) {
			#pragma omp atomic write
			bad = true;
		}
		fail |= x < 0;
	}
	if (fail) {
		out_error("out of memory drawing the sheet");
		status = EXIT_SOFTWARE;
		goto out;
	}
	if ((rc = sheet_write(&sh, qo->sheet, &e)) < 0) {
		out_err(&e);
		status = err_exit_status(rc);
		goto out;
	}
	if (!qo->json)
		fprintf(stderr, "refscan: drew %zu sculpt%s and %s matches into %s%s\n", rows,
			rows == 1 ? "" : "s", rows == 1 ? "its" : "their", qo->sheet,
			bad ? "; some could not be drawn (crossed out)" : "");
	if (bad || n_bad)
		status = EXIT_PARTIAL;
out:
	xfree(row_of_sc);
	sheet_release(&sh);
	extract_tmpdir_remove(tmpl);
	xfree(f);
	return status;
}

/* ---- command ------------------------------------------------------------- */

static int open_archive(struct archive_dir *a, const char *opt)
{
	struct err e;
	char *path = archive_dir_default(opt);
	if (!path) {
		out_error("no archive: pass --archive DIR or set REFSCAN_ARCHIVE");
		return EXIT_USAGE;
	}
	err_init(&e);
	int rc = archive_dir_open(a, path, 0, &e);
	if (rc == ERR_NOTFOUND)
		out_error("no archive at '%s'; run 'refscan index --archive %s SRC' first", path, path);
	else if (rc < 0)
		out_err(&e);
	xfree(path);
	return rc < 0 ? err_exit_status(rc) : EXIT_OK;
}

int cmd_query(int argc, char **argv)
{
	struct qopts qo;
	struct archive_dir a;
	struct vindex vx;
	struct sculpt *sc = NULL;
	const char *aopt = NULL, *version = "HEAD", *units = NULL;
	char *end;
	bool have_archive = false, have_vx = false;
	int c, status = EXIT_OK, rc;
	struct err e;

	memset(&qo, 0, sizeof(qo));
	memset(&vx, 0, sizeof(vx));
	qo.k = DEFAULT_K;
	qo.size_min = qo.size_max = NAN;
	for (size_t b = 0; b < RANK_MAX_BLOCKS; b++)
		qo.weights[b] = NAN;
	qo.preset = DESC_PRESET_OBJECT;
	optind = 1;
	while ((c = getopt_long(argc, argv, "a:V:k:sw:W:ex:h", query_options, NULL)) != -1) {
		switch (c) {
		case 'a':
			aopt = optarg;
			break;
		case 'V':
			version = optarg;
			break;
		case 'k': {
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (end == optarg || *end || errno == ERANGE || v < 1 || v > (long)RANK_MAX_K) {
				out_error("-k wants a number from 1 to %u, not '%s'", RANK_MAX_K, optarg);
				return EXIT_USAGE;
			}
			qo.k = (size_t)v;
			break;
		}
		case 's':
			qo.preset = DESC_PRESET_SURFACE;
			break;
		case 'w':
			if (parse_weights(optarg, qo.weights, &qo.reweighted) < 0)
				return EXIT_USAGE;
			break;
		case 'W': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				out_error("--where wants KEY=VALUE, not '%s'", optarg);
				return EXIT_USAGE;
			}
			if (qo.n_filters == MAX_FILTERS) {
				out_error("--where: at most %u filters", MAX_FILTERS);
				return EXIT_USAGE;
			}
			*eq = '\0';
			qo.filters[qo.n_filters].key = optarg;
			qo.filters[qo.n_filters].value = eq + 1;
			qo.n_filters++;
			break;
		}
		case OPT_SIZE:
			if (parse_size(optarg, &qo.size_min, &qo.size_max) < 0) {
				out_error("--size-mm wants MIN:MAX in mm (either may be empty), not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_EXACT:
			qo.exact = true;
			break;
		case OPT_UNITS:
			units = optarg;
			break;
		case 'e':
			qo.explain = true;
			break;
		case OPT_JSON:
			qo.json = true;
			break;
		case 'x':
			qo.extract = optarg;
			break;
		case OPT_SHEET:
			qo.sheet = optarg;
			break;
		case 'h':
			fputs(query_usage, stdout);
			return EXIT_OK;
		default:
			fputs(query_usage, stderr);
			return EXIT_USAGE;
		}
	}
	{
		/* the preset's multipliers of the indexed weights, then --weights */
		float pw[DESC_N_BLOCKS], dw[DESC_N_BLOCKS];
		describe_preset_weights(qo.preset, pw);
		describe_default_weights(dw);
		for (size_t b = 0; b < DESC_N_BLOCKS; b++)
			if (isnan(qo.weights[b]))
				qo.weights[b] = dw[b] > 0 ? pw[b] / dw[b] : 0;
		qo.reweighted |= qo.preset != DESC_PRESET_OBJECT;
	}
	if (optind >= argc) {
		out_error("no sculpt given");
		fputs(query_usage, stderr);
		return EXIT_USAGE;
	}
	if (!units || !*units)
		units = getenv("REFSCAN_DEFAULT_UNITS");
	enum scan_units u = units && *units ? scan_units_parse(units, strlen(units)) : UNITS_MM;
	if (u == UNITS_UNKNOWN) {
		out_error("unknown unit '%s' (mm, cm, m, in, um)", units);
		return EXIT_USAGE;
	}
	qo.mm_per_unit = scan_units_mm(u);

	if ((status = open_archive(&a, aopt)) != EXIT_OK)
		return status;
	have_archive = true;
	err_init(&e);
	uint64_t v;
	if ((rc = archive_dir_parse_version(&a, version, &v, &e)) < 0) {
		out_err(&e);
		if (rc == ERR_NOTFOUND && a.head.n_versions)
			fprintf(stderr, "refscan: hint: live versions are %" PRIu64 "..%" PRIu64
				" (%zu of them); see 'refscan log'\n",
				a.head.versions[0], a.head.version, a.head.n_versions);
		else if (rc == ERR_NOTFOUND)
			fprintf(stderr, "refscan: hint: the archive is empty; run 'refscan index --archive %s SRC' first\n",
				a.path);
		status = rc == ERR_FORMAT ? EXIT_USAGE : err_exit_status(rc);
		goto out;
	}
	if ((rc = vindex_open(&vx, &a, v, &e)) < 0) {
		out_err(&e);
		status = err_exit_status(rc);
		goto out;
	}
	have_vx = true;
	if (vx.n_skipped)
		fprintf(stderr, "refscan: note: %zu scan%s of version %" PRIu64 " %s no descriptor of schema %s and %s not searched; run 'refscan reindex'\n",
			vx.n_skipped, vx.n_skipped == 1 ? "" : "s", vx.version, vx.n_skipped == 1 ? "has" : "have",
			DESC_SCHEMA, vx.n_skipped == 1 ? "is" : "are");

	size_t n_sc = (size_t)(argc - optind), dim = describe_dim();
	sc = alloc_array_zero(n_sc, sizeof(*sc));
	if (!sc) {
		out_error("out of memory");
		status = EXIT_SOFTWARE;
		goto out;
	}
	for (size_t i = 0; i < n_sc; i++) {
		sc[i].path = argv[optind + (int)i];
		err_init(&sc[i].err);
		sc[i].vec = alloc_array(dim, sizeof(float));
		sc[i].hits = alloc_array(qo.k, sizeof(*sc[i].hits));
		if (!sc[i].vec || !sc[i].hits) {
			out_error("out of memory");
			status = EXIT_SOFTWARE;
			goto out;
		}
	}
	/* one sculpt per thread; a single sculpt gets every thread */
	int inner = n_sc > 1 ? 1 : 0;
	#pragma omp parallel for schedule(dynamic, 1) if (n_sc > 1)
	for (size_t i = 0; i < n_sc; i++)
		sc[i].rc = describe_sculpt(&sc[i], qo.mm_per_unit, inner);

	size_t n_good = 0;
	for (size_t i = 0; i < n_sc; i++) {
		struct rank_query q;
		if (sc[i].rc < 0)
			continue;
		n_good++;
		/* compare on what the sculpt has (no colour, no units: not held against it) */
		float qw[DESC_N_BLOCKS];
		describe_query_weights(&sc[i].info, NULL, qw);
		for (size_t b = 0; b < DESC_N_BLOCKS; b++)
			sc[i].mult[b] = qw[b] > 0 ? qo.weights[b] : 0;
		query_init(&q, &qo, &sc[i]);
		if ((rc = rank_weights(&vx.layout, &q, sc[i].w, &e)) < 0) {
			out_err(&e);
			out_error("every block weight is 0: give some block a weight above 0");
			status = EXIT_USAGE;
			goto out;
		}
		if (!(sc[i].info.flags & DESC_HAS_COLOUR) && !qo.json)
			fprintf(stderr, "refscan: %s: no colour in the sculpt; ranking without the colour block\n",
				sc[i].path);
		if ((sc[i].info.flags & DESC_LOCAL_SPARSE) && qo.weights[DESC_LOCAL] > 0 && !qo.json)
			fprintf(stderr, "refscan: %s: a point cloud too sparse for local geometry; ranking without the local block\n",
				sc[i].path);
	}
	vx.filters = qo.filters;
	vx.n_filters = qo.n_filters;
	if (n_good && vx.knn.index && !qo.exact) {
		if ((rc = rank_ann(&vx, &qo, sc, n_sc, &e)) < 0) {
			out_err(&e);
			status = err_exit_status(rc);
			goto out;
		}
	} else {
		for (size_t i = 0; i < n_sc; i++) {
			struct rank_query q;
			if (sc[i].rc < 0)
				continue;
			query_init(&q, &qo, &sc[i]);
			if ((rc = rank_search(&vx.refs, &vx.layout, NULL, &q, sc[i].hits, &sc[i].res, &e)) < 0) {
				out_err(&e);
				status = err_exit_status(rc);
				goto out;
			}
		}
	}

	/* report, in the order the sculpts were given */
	int first_bad = 0;
	for (size_t i = 0; i < n_sc; i++) {
		if (sc[i].rc < 0) {
			char buf[ERR_PATH_MAX + 300];
			fprintf(stderr, "refscan: %s\n", err_format(&sc[i].err, buf, sizeof(buf)));
			if (qo.json)
				out_json_line(json_pack("{s:s, s:o}", "query", sc[i].path,
							"error", out_json_error(&sc[i].err)));
			if (!first_bad)
				first_bad = sc[i].rc;
			continue;
		}
		if (qo.json)
			print_json(&vx, &qo, &sc[i]);
		else {
			if (i)
				putchar('\n');
			print_text(&vx, &qo, &sc[i], n_sc);
		}
	}
	if (!n_good)
		status = first_bad == ERR_NOTFOUND || first_bad == ERR_IO ? EXIT_NOINPUT : err_exit_status(first_bad);
	else
		status = n_good < n_sc ? EXIT_PARTIAL : EXIT_OK;
	if (qo.extract && n_good) {
		fflush(stdout);
		int xs = extract_matches(&a, &vx, &qo, sc, n_sc);
		if (xs != EXIT_OK && status == EXIT_OK)
			status = xs;
	}
	if (qo.sheet && n_good) {
		fflush(stdout);
		int ss = draw_sheet(&a, &vx, &qo, sc, n_sc);
		if (ss != EXIT_OK && (status == EXIT_OK || ss > EXIT_PARTIAL))
			status = ss;
	}
out:
	for (size_t i = 0; sc && i < (size_t)(argc - optind); i++) {
		xfree(sc[i].vec);
		xfree(sc[i].hits);
	}
	xfree(sc);
	if (have_vx)
		vindex_release(&vx);
	if (have_archive)
		archive_dir_release(&a);
	return status;
}
