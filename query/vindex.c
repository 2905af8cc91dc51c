/*
 * vindex.c - build a version's search index at commit time, and open a
 * version for queries (see vindex.h; file layout in
 * docs/archive-format.md).
 *
 * Invariants: the table's rows and the FAISS index hold the same ids
 * (descstore_id of the entry paths), and every row names exactly one
 * entry of the version's manifest; a version's index file is never
 * changed after its commit, so any live version can be queried.
 */
#include "vindex.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "../formats/scan.h"
#include "../indexer/archive.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/banned.h"

#define CALIBRATION_SEED 0x726566736361ull

int vindex_build(void *ctx, struct archive_dir *a, const struct manifest *m,
		 const char *tmp_path, const char **schema, struct err *e)
{
	struct descstore_table prev, t;
	struct knn k;
	size_t skipped = 0;
	float *wholes = NULL;
	int rc;

	knn_init(&k);
	descstore_table_read_version(a, m->parent, &prev);
	rc = descstore_collect(a, m, ctx, prev.n ? &prev : NULL, &t, &skipped, e);
	descstore_table_release(&prev);
	if (rc < 0)
		return rc;
	if (!t.n) {
		descstore_table_release(&t);
		return 1;
	}
	struct knn_opts ko;
	knn_opts_init(&ko);
	/* tests only: force the approximate index on a small archive */
	const char *em = getenv("REFSCAN_EXACT_MAX");
	if (em && *em) {
		char *end;
		unsigned long long v = strtoull(em, &end, 10);
		if (!*end && v > 0)
			ko.exact_max = (size_t)v;
	}
	/* the index holds the scans' own vectors; views are ranked exactly */
	size_t dim = describe_dim(), stride = t.dim;
	wholes = alloc_array(t.n, dim * sizeof(float));
	if (!wholes) {
		rc = err_set(e, ERR_NOMEM, "out of memory for %zu descriptors", t.n);
		goto out;
	}
	for (size_t r = 0; r < t.n; r++) {
		float *w = wholes + r * dim;
		memcpy(w, t.vecs + r * stride, dim * sizeof(float));
		for (size_t i = dim - DESC_CARRIED; i < dim; i++)
			w[i] = 0.0f; /* carried, not compared (rank.h) */
	}
	if ((rc = knn_build(&k, dim, t.n, wholes, t.ids, &ko, e)) < 0)
		goto out;
	t.kind = k.kind == KNN_EXACT ? DESCSTORE_EXACT : DESCSTORE_ANN;
	if ((rc = knn_write(&k, tmp_path, e)) < 0 ||
	    (rc = descstore_table_append(tmp_path, &t, e)) < 0)
		goto out;
	*schema = VINDEX_SCHEMA;
out:
	xfree(wholes);
	knn_release(&k);
	descstore_table_release(&t);
	return rc;
}

/* ---- opening a version ------------------------------------------------ */

/* Found too thin to describe by this refscan's schema: never a reference. */
static bool undescribable(const struct manifest_entry *en)
{
	return !en->desc.schema && en->undesc.schema && !strcmp(en->undesc.schema, DESC_SCHEMA);
}

const struct manifest_entry *vindex_entry(const struct vindex *vx, size_t row)
{
	return &vx->m.entries[vx->entry[row]];
}

const char *vindex_rel_path(const struct manifest_entry *en)
{
	const char *s = strchr(en->path, '/');
	return s ? s + 1 : en->path;
}

/* A JSON scalar as text in buf (NULL for objects, arrays, null). */
static const char *scalar_text(const json_t *j, char *buf, size_t n)
{
	if (json_is_string(j))
		return json_string_value(j);
	if (json_is_integer(j)) {
		snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		return buf;
	}
	if (json_is_real(j)) {
		snprintf(buf, n, "%.17g", json_real_value(j));
		return buf;
	}
	if (json_is_boolean(j))
		return json_is_true(j) ? "true" : "false";
	return NULL;
}

/*
 * rank's metadata callback.  A list value ("tags": [...]) answers with
 * the element that equals the filter's value for this key when there is
 * one, so `--where tags=cast` matches any scan tagged "cast".
 */
static const char *meta_value(void *ctx, size_t row, const char *key)
{
	struct vindex *vx = ctx;
	const struct manifest_entry *en = vindex_entry(vx, row);
	const json_t *j = en->meta ? json_object_get(en->meta, key) : NULL;
	if (!j)
		return NULL;
	if (!json_is_array(j))
		return scalar_text(j, vx->metabuf, sizeof(vx->metabuf));
	const char *first = NULL;
	for (size_t i = 0; i < json_array_size(j); i++) {
		const char *v = scalar_text(json_array_get(j, i), vx->metabuf, sizeof(vx->metabuf));
		if (!v)
			continue;
		for (size_t f = 0; f < vx->n_filters; f++)
			if (!strcmp(vx->filters[f].key, key) && !strcmp(vx->filters[f].value, v))
				return v;
		if (!first)
			first = json_string_value(json_array_get(j, i));
	}
	return first;
}

/*
 * Largest extent in mm: the principal extent the describe step recorded,
 * else the bounding box's largest side in the entry's units.
 */
static float entry_size_mm(const struct manifest_entry *en)
{
	const json_t *d = en->stats ? json_object_get(en->stats, "descriptor") : NULL;
	const json_t *ext = d ? json_object_get(d, "extent_mm") : NULL;
	if (json_is_array(ext) && json_is_number(json_array_get(ext, 0)))
		return (float)json_number_value(json_array_get(ext, 0));
	const json_t *lo = en->stats ? json_object_get(en->stats, "bbox_min") : NULL;
	const json_t *hi = en->stats ? json_object_get(en->stats, "bbox_max") : NULL;
	enum scan_units u = en->units ? scan_units_parse(en->units, strlen(en->units)) : UNITS_UNKNOWN;
	if (!json_is_array(lo) || !json_is_array(hi) || u == UNITS_UNKNOWN)
		return NAN;
	double best = 0;
	for (size_t i = 0; i < 3; i++) {
		double s = json_number_value(json_array_get(hi, i)) - json_number_value(json_array_get(lo, i));
		if (s > best)
			best = s;
	}
	return (float)(best * scan_units_mm(u));
}

static bool entry_colour(const struct manifest_entry *en)
{
	const json_t *d = en->stats ? json_object_get(en->stats, "descriptor") : NULL;
	const json_t *f = d ? json_object_get(d, "flags") : NULL;
	for (size_t i = 0; json_is_array(f) && i < json_array_size(f); i++)
		if (json_is_string(json_array_get(f, i)) &&
		    !strcmp(json_string_value(json_array_get(f, i)), "colour"))
			return true;
	return false;
}

void vindex_release(struct vindex *vx)
{
	manifest_release(&vx->m);
	descstore_table_release(&vx->t);
	knn_release(&vx->knn);
	xfree(vx->entry);
	xfree(vx->size_mm);
	xfree(vx->colour);
	xfree(vx->mean);
	memset(vx, 0, sizeof(*vx));
}

int vindex_open(struct vindex *vx, struct archive_dir *a, uint64_t v,
		struct err *e)
{
	char path[ERR_PATH_MAX];
	size_t dim = describe_dim();
	int64_t *ids = NULL;
	int rc;

	memset(vx, 0, sizeof(*vx));
	manifest_init(&vx->m);
	descstore_table_init(&vx->t);
	knn_init(&vx->knn);
	if (!v)
		v = a->head.version;
	if (!v) {
		err_set_path(e, a->path);
		return err_set(e, ERR_NOTFOUND,
			       "the archive has no version yet; run 'refscan index --archive %s SRC' first",
			       a->path);
	}
	vx->version = v;
	if ((rc = archive_dir_load_version(a, v, &vx->m, e)) < 0)
		goto out;
	for (size_t i = 0; i < vx->m.n_entries; i++)
		if (undescribable(&vx->m.entries[i]))
			vx->n_undescribable++;
	if (!vx->m.index.file && vx->n_undescribable && vx->n_undescribable == vx->m.n_entries) {
		err_set_path(e, a->path);
		rc = err_set(e, ERR_NOTFOUND,
			     "version %" PRIu64 " has nothing to search: its %zu scan%s cannot be described",
			     v, vx->n_undescribable, vx->n_undescribable == 1 ? "" : "s");
		goto out;
	}
	if (!vx->m.index.file) {
		err_set_path(e, a->path);
		rc = err_set(e, ERR_NOTFOUND,
			     "version %" PRIu64 " has no search index; run 'refscan reindex --archive %s'",
			     v, a->path);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/versions/%s", a->path, vx->m.index.file);
	if ((rc = descstore_table_read(path, 0, &vx->t, e)) < 0)
		goto out;
	if (strcmp(vx->t.schema, DESC_SCHEMA) != 0 || vx->t.dim != describe_record_dim()) {
		err_set_path(e, path);
		rc = err_set(e, ERR_VERSION,
			     "descriptors are '%s' (%zu floats), this refscan describes with '%s' (%zu); run 'refscan reindex'",
			     vx->t.schema, vx->t.dim, DESC_SCHEMA, describe_record_dim());
		goto out;
	}
	if (vx->t.kind == DESCSTORE_ANN) {
		/*
		 * FAISS trusts what it reads (knn.h): the file must be the one
		 * the manifest committed before FAISS sees it.
		 */
		unsigned char d[SHA256_LEN];
		uint64_t size;
		if ((rc = sha256_file(path, d, &size, e)) < 0)
			goto out;
		if (size != vx->m.index.size || memcmp(d, vx->m.index.sha256, SHA256_LEN) != 0) {
			err_set_path(e, path);
			rc = err_set(e, ERR_CORRUPT, "index file does not match its manifest (run 'refscan verify')");
			goto out;
		}
		if ((rc = knn_read(&vx->knn, path, dim, KNN_READ_MMAP, e)) < 0)
			goto out;
		if (vx->knn.n != vx->t.n) {
			err_set_path(e, path);
			rc = err_set(e, ERR_CORRUPT, "index holds %zu vectors, its table %zu", vx->knn.n, vx->t.n);
			goto out;
		}
	}
	size_t n = vx->t.n;
	vx->entry = alloc_array(n ? n : 1, sizeof(*vx->entry));
	vx->size_mm = alloc_array(n ? n : 1, sizeof(*vx->size_mm));
	vx->colour = alloc_array_zero(n ? n : 1, sizeof(*vx->colour));
	vx->mean = alloc_array(dim, sizeof(*vx->mean));
	if (!vx->entry || !vx->size_mm || !vx->colour || !vx->mean) {
		rc = err_set(e, ERR_NOMEM, "out of memory for %zu references", n);
		goto out;
	}
	for (size_t r = 0; r < n; r++)
		vx->entry[r] = SIZE_MAX;
	ids = alloc_array(vx->m.n_entries ? vx->m.n_entries : 1, sizeof(*ids));
	if (!ids) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = descstore_ids(&vx->m, ids, e)) < 0)
		goto out;
	for (size_t i = 0; i < vx->m.n_entries; i++) {
		const struct manifest_entry *en = &vx->m.entries[i];
		size_t r = ids[i] < 0 ? SIZE_MAX : descstore_table_find(&vx->t, ids[i]);
		if (r == SIZE_MAX) {
			if (!undescribable(en))
				vx->n_skipped++;
			continue;
		}
		if (en->desc.schema && !memcmp(en->desc.blob, vx->t.digests[r], SHA256_LEN)) {
			vx->entry[r] = i;
			vx->size_mm[r] = entry_size_mm(en);
			vx->colour[r] = entry_colour(en);
		}
	}
	for (size_t r = 0; r < n; r++)
		if (vx->entry[r] == SIZE_MAX) {
			err_set_path(e, path);
			rc = err_set(e, ERR_CORRUPT, "index row %zu (id %" PRId64 ") matches no entry of version %" PRIu64,
				     r, vx->t.ids[r], v);
			goto out;
		}

	const struct desc_block *b = describe_blocks();
	for (size_t i = 0; i < DESC_N_BLOCKS; i++) {
		vx->blocks[i].name = b[i].name;
		vx->blocks[i].offset = b[i].offset;
		vx->blocks[i].len = b[i].length;
	}
	vx->layout.schema_id = 1;
	vx->layout.dim = dim;
	vx->layout.n_blocks = DESC_N_BLOCKS;
	vx->layout.blocks = vx->blocks;
	size_t n_cues;
	const struct desc_cue *cue = describe_cues(&n_cues);
	for (size_t i = 0; i < n_cues && i < RANK_MAX_CUES; i++) {
		vx->cues[i].name = cue[i].name;
		vx->cues[i].block = (size_t)cue[i].block;
		vx->cues[i].offset = cue[i].offset;
		vx->cues[i].len = cue[i].length;
		vx->cues[i].fine = cue[i].fine;
	}
	vx->layout.n_cues = n_cues < RANK_MAX_CUES ? n_cues : RANK_MAX_CUES;
	vx->layout.cues = vx->cues;
	vx->layout.carried = DESC_CARRIED;
	vx->layout.fine_tolerance = describe_fine_tolerance;
	vx->refs.n = n;
	vx->refs.dim = dim;
	vx->refs.views = DESC_VIEWS;
	vx->refs.ids = vx->t.ids;
	vx->refs.vecs = vx->t.vecs;
	vx->refs.size_mm = vx->size_mm;
	vx->refs.meta = meta_value;
	vx->refs.ctx = vx;
	if ((rc = rank_layout_check(&vx->layout, e)) < 0 ||
	    (rc = rank_table_check(&vx->refs, &vx->layout, e)) < 0)
		goto out;
	if (n >= 2) {
		if ((rc = rank_calibrate(&vx->refs, &vx->layout, 0, CALIBRATION_SEED, vx->scale,
					 vx->mean, e)) < 0)
			goto out;
		vx->refs.block_scale = vx->scale;
		vx->refs.block_mean = vx->mean;
	}
out:
	xfree(ids);
	if (rc < 0)
		vindex_release(vx);
	return rc;
}
