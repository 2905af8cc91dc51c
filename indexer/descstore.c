/*
 * descstore.c - descriptors in the archive (see descstore.h and
 * docs/archive-format.md, "Descriptors and the per-version index").
 *
 * Table layout, appended after the FAISS index (all little-endian):
 *
 *   row * n      int64 id | 32-byte descriptor blob digest | dim float32
 *                (dim: a descriptor record, describe_record_dim())
 *   footer (64)  "RSDTAB01" | u32 table format (1) | u32 kind |
 *                u64 n | u32 dim | u32 0 | u64 offset of the first row |
 *                24 bytes schema, NUL-padded
 *
 * Invariants: rows are sorted by id, ids are distinct; a row's vector
 * hashes (as a descriptor blob) to its digest; the footer's sizes add up
 * to the file's length exactly.
 */
#include "descstore.h"
#include "archive.h"
#include "describe.h"
#include "index.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "../formats/scan.h"
#include "../formats/image.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/banned.h"

#define TABLE_FORMAT 1u
#define ID_SALT "refscan-ref"

struct descstore_cached {
	unsigned char digest[SHA256_LEN];
	float *vec;
};

static int (*builder)(void *ctx, struct archive_dir *a, const struct manifest *m,
		      const char *tmp_path, const char **schema, struct err *e);

/* ---- little-endian helpers ------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void put_f32(unsigned char *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	put_u32(p, u);
}

static float get_f32(const unsigned char *p)
{
	uint32_t u = get_u32(p);
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* ---- ids ----------------------------------------------------------------- */

/* h(path, probe): the top DESCSTORE_ID_BITS bits of SHA-256(salt path [probe]). */
static int64_t id_hash(const char *path, uint32_t probe)
{
	unsigned char d[SHA256_LEN], pb[4];
	struct sha256 h;
	struct err e;
	int ok;

	err_init(&e);
	put_u32(pb, probe);
	ok = sha256_init(&h, &e) == 0;
	ok = ok && sha256_update(&h, ID_SALT, sizeof(ID_SALT), &e) == 0; /* with its NUL */
	ok = ok && sha256_update(&h, path, strlen(path), &e) == 0;
	ok = ok && (!probe || sha256_update(&h, pb, sizeof(pb), &e) == 0);
	ok = ok && sha256_final(&h, d, &e) == 0;
	sha256_release(&h);
	if (!ok) {
		/*
		 * No digest engine (out of memory): FNV-1a keeps the id a pure
		 * function of the path; collisions are resolved below anyway.
		 */
		uint64_t f = 0xcbf29ce484222325u;
		for (const char *c = path; *c; c++)
			f = (f ^ (unsigned char)*c) * 0x100000001b3u;
		f = (f ^ probe) * 0x100000001b3u;
		return (int64_t)(f >> (64 - DESCSTORE_ID_BITS));
	}
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | d[i];
	return (int64_t)(v >> (64 - DESCSTORE_ID_BITS));
}

int64_t descstore_id(const char *path)
{
	return id_hash(path, 0);
}

bool descstore_has_desc(const struct manifest_entry *en)
{
	return en->desc.schema && !strcmp(en->desc.schema, DESC_SCHEMA) &&
	       en->desc.size == descstore_blob_size();
}

struct order {
	int64_t id;
	size_t entry;
	const char *path;
};

static int cmp_order(const void *x, const void *y)
{
	const struct order *a = x, *b = y;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return strcmp(a->path, b->path);
}

static bool id_taken(const struct order *o, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (o[i].id == id)
			return true;
	return false;
}

/*
 * The ids of m's described entries, sorted by id: ord[0..*n).  Two paths
 * with one hash (about one chance in 10^4 at a million scans) are told
 * apart by probing: the path later in byte order takes h(path, 1), 2...
 */
static int assign_ids(const struct manifest *m, struct order **out, size_t *n_out,
		      struct err *e)
{
	size_t n = 0;
	struct order *ord = alloc_array(m->n_entries ? m->n_entries : 1, sizeof(*ord));
	*out = NULL;
	*n_out = 0;
	if (!ord)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct manifest_entry *en = &m->entries[i];
		if (!descstore_has_desc(en))
			continue;
		ord[n].id = descstore_id(en->path);
		ord[n].entry = i;
		ord[n].path = en->path;
		n++;
	}
	qsort(ord, n, sizeof(*ord), cmp_order);
	bool moved = false;
	for (size_t i = 1; i < n; i++) {
		if (ord[i].id != ord[i - 1].id)
			continue;
		uint32_t probe = 1;
		int64_t id;
		do
			id = id_hash(ord[i].path, probe++);
		while (id_taken(ord, n, id) && probe < 1000);
		ord[i].id = id;
		moved = true;
	}
	if (moved)
		qsort(ord, n, sizeof(*ord), cmp_order);
	for (size_t i = 1; i < n; i++)
		if (ord[i].id == ord[i - 1].id) {
			xfree(ord);
			return err_set(e, ERR_INTERNAL, "no free reference id for '%s'", ord[i].path);
		}
	*out = ord;
	*n_out = n;
	return 0;
}

int descstore_ids(const struct manifest *m, int64_t *ids, struct err *e)
{
	struct order *ord;
	size_t n;
	int rc = assign_ids(m, &ord, &n, e);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < m->n_entries; i++)
		ids[i] = -1;
	for (size_t i = 0; i < n; i++)
		ids[ord[i].entry] = ord[i].id;
	xfree(ord);
	return 0;
}

/* ---- blobs --------------------------------------------------------------- */

size_t descstore_blob_size(void)
{
	return describe_record_dim() * 4;
}

void descstore_encode(const float *v, unsigned char *out)
{
	size_t dim = describe_record_dim();
	for (size_t i = 0; i < dim; i++)
		put_f32(out + 4 * i, v[i]);
}

int descstore_decode(const unsigned char *buf, size_t len, float *v,
		     struct err *e)
{
	size_t dim = describe_record_dim();
	if (len != 4 * dim)
		return err_set(e, ERR_FORMAT, "descriptor has %zu bytes, schema %s has %zu",
			       len, DESC_SCHEMA, 4 * dim);
	for (size_t i = 0; i < dim; i++) {
		v[i] = get_f32(buf + 4 * i);
		if (!isfinite(v[i]))
			return err_set(e, ERR_FORMAT, "descriptor component %zu is not finite", i);
	}
	return 0;
}

/* ---- table --------------------------------------------------------------- */

void descstore_table_init(struct descstore_table *t)
{
	memset(t, 0, sizeof(*t));
}

void descstore_table_release(struct descstore_table *t)
{
	xfree(t->ids);
	xfree(t->digests);
	xfree(t->vecs);
	descstore_table_init(t);
}

size_t descstore_table_find(const struct descstore_table *t, int64_t id)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->ids[mid] == id)
			return mid;
		if (t->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int descstore_table_append(const char *path, const struct descstore_table *t,
			   struct err *e)
{
	size_t row = 40 + 4 * t->dim, cap = 0, fill = 0;
	unsigned char *buf = NULL, foot[DESCSTORE_FOOTER_LEN];
	struct stat st;
	int fd, rc = 0;

	for (size_t i = 1; i < t->n; i++)
		if (t->ids[i] <= t->ids[i - 1])
			return err_set(e, ERR_INTERNAL, "descriptor table: ids not ascending at row %zu", i);
	err_set_path(e, path);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set_errno(e, ERR_IO, "cannot open the index file");
	if (fstat(fd, &st) < 0) {
		rc = err_set_errno(e, ERR_IO, "cannot stat the index file");
		goto out;
	}
	/* 1 MiB of rows at a time */
	cap = row * (((size_t)1 << 20) / row + 1);
	if (!(buf = xmalloc(cap))) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < t->n; i++) {
		unsigned char *p = buf + fill;
		put_u64(p, (uint64_t)t->ids[i]);
		memcpy(p + 8, t->digests[i], SHA256_LEN);
		for (size_t c = 0; c < t->dim; c++)
			put_f32(p + 40 + 4 * c, t->vecs[i * t->dim + c]);
		fill += row;
		if (fill + row > cap || i + 1 == t->n) {
			if (write_all(fd, buf, fill) < 0) {
				rc = err_set_errno(e, ERR_IO, "cannot write the descriptor table");
				goto out;
			}
			fill = 0;
		}
	}
	memset(foot, 0, sizeof(foot));
	memcpy(foot, DESCSTORE_MAGIC, 8);
	put_u32(foot + 8, TABLE_FORMAT);
	put_u32(foot + 12, t->kind);
	put_u64(foot + 16, t->n);
	put_u32(foot + 24, (uint32_t)t->dim);
	put_u64(foot + 32, (uint64_t)st.st_size);
	memcpy(foot + 40, t->schema, strnlen(t->schema, DESCSTORE_SCHEMA_MAX));
	if (write_all(fd, foot, sizeof(foot)) < 0) {
		rc = err_set_errno(e, ERR_IO, "cannot write the descriptor table");
		goto out;
	}
	if (fsync(fd) < 0)
		rc = err_set_errno(e, ERR_IO, "cannot fsync the index file");
out:
	xfree(buf);
	if (close(fd) < 0 && !rc)
		rc = err_set_errno(e, ERR_IO, "cannot close the index file");
	if (!rc)
		err_set_path(e, "");
	return rc;
}

static int read_at(int fd, unsigned char *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pread(fd, p, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

int descstore_table_read(const char *path, size_t expect_dim,
			 struct descstore_table *t, struct err *e)
{
	unsigned char foot[DESCSTORE_FOOTER_LEN], *buf = NULL;
	struct stat st;
	size_t row, rows_bytes, chunk;
	int rc = 0;

	descstore_table_init(t);
	err_set_path(e, path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "cannot open the index file");
	if (fstat(fd, &st) < 0) {
		rc = err_set_errno(e, ERR_IO, "cannot stat the index file");
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size;
	if (size < DESCSTORE_FOOTER_LEN || read_at(fd, foot, sizeof(foot), size - DESCSTORE_FOOTER_LEN) < 0 ||
	    memcmp(foot, DESCSTORE_MAGIC, 8) != 0) {
		rc = err_set_offset(e, ERR_FORMAT, (int64_t)(size > DESCSTORE_FOOTER_LEN ? size - DESCSTORE_FOOTER_LEN : 0),
				    "no descriptor table at the end of the index file");
		goto out;
	}
	if (get_u32(foot + 8) != TABLE_FORMAT) {
		rc = err_set(e, ERR_VERSION, "descriptor table format %u is newer than this refscan reads (%u)",
			     get_u32(foot + 8), TABLE_FORMAT);
		goto out;
	}
	uint64_t n = get_u64(foot + 16), off = get_u64(foot + 32);
	uint32_t dim = get_u32(foot + 24), kind = get_u32(foot + 12);
	if (dim == 0 || dim > 65536 || kind > DESCSTORE_ANN) {
		rc = err_set_offset(e, ERR_FORMAT, (int64_t)(size - DESCSTORE_FOOTER_LEN),
				    "descriptor table footer: dimension %u, kind %u out of range", dim, kind);
		goto out;
	}
	if (expect_dim && dim != expect_dim) {
		rc = err_set(e, ERR_FORMAT, "descriptor table has dimension %u, this refscan describes with %zu",
			     dim, expect_dim);
		goto out;
	}
	row = 40 + 4 * (size_t)dim;
	/* the rows must fill the bytes between the FAISS part and the footer exactly */
	if (off > size - DESCSTORE_FOOTER_LEN || n > (size - DESCSTORE_FOOTER_LEN - off) / row ||
	    n * row != size - DESCSTORE_FOOTER_LEN - off) {
		rc = err_set_offset(e, ERR_FORMAT, (int64_t)(size - DESCSTORE_FOOTER_LEN),
				    "descriptor table footer: %" PRIu64 " rows do not fit the file", n);
		goto out;
	}
	t->n = (size_t)n;
	t->dim = dim;
	t->kind = kind;
	t->faiss_bytes = off;
	memcpy(t->schema, foot + 40, DESCSTORE_SCHEMA_MAX);
	t->schema[DESCSTORE_SCHEMA_MAX] = '\0';
	t->ids = alloc_array(n ? (size_t)n : 1, sizeof(*t->ids));
	t->digests = alloc_array(n ? (size_t)n : 1, sizeof(*t->digests));
	t->vecs = alloc_array(n ? (size_t)n : 1, sizeof(float) * dim);
	rows_bytes = (size_t)n * row;
	chunk = row * (((size_t)1 << 20) / row + 1);
	buf = xmalloc(chunk);
	if (!t->ids || !t->digests || !t->vecs || !buf) {
		rc = err_set(e, ERR_NOMEM, "out of memory for %" PRIu64 " descriptors", n);
		goto out;
	}
	for (size_t done = 0; done < rows_bytes;) {
		size_t k = rows_bytes - done < chunk ? rows_bytes - done : chunk;
		if (read_at(fd, buf, k, off + done) < 0) {
			rc = err_set_errno(e, ERR_IO, "cannot read the descriptor table");
			goto out;
		}
		for (size_t p = 0; p < k; p += row) {
			size_t i = (done + p) / row;
			const unsigned char *r = buf + p;
			t->ids[i] = (int64_t)get_u64(r);
			memcpy(t->digests[i], r + 8, SHA256_LEN);
			for (size_t c = 0; c < dim; c++)
				t->vecs[i * dim + c] = get_f32(r + 40 + 4 * c);
			if (t->ids[i] < 0 || (i && t->ids[i] <= t->ids[i - 1])) {
				rc = err_set_offset(e, ERR_FORMAT, (int64_t)(off + done + p),
						    "descriptor table row %zu: id out of order", i);
				goto out;
			}
		}
		done += k;
	}
out:
	xfree(buf);
	close(fd);
	if (rc)
		descstore_table_release(t);
	else
		err_set_path(e, "");
	return rc;
}

void descstore_table_read_version(struct archive_dir *a, uint64_t v,
				  struct descstore_table *t)
{
	char path[ERR_PATH_MAX];
	struct err e;
	err_init(&e);
	descstore_table_init(t);
	if (!v)
		return;
	archive_dir_version_path(a, v, ".index", path, sizeof(path));
	if (descstore_table_read(path, describe_record_dim(), t, &e) < 0 ||
	    strcmp(t->schema, DESC_SCHEMA) != 0)
		descstore_table_release(t);
}

/* ---- cache --------------------------------------------------------------- */

void descstore_cache_init(struct descstore_cache *c)
{
	memset(c, 0, sizeof(*c));
	c->dim = describe_record_dim();
}

void descstore_cache_release(struct descstore_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		xfree(c->items[i].vec);
	xfree(c->items);
	memset(c, 0, sizeof(*c));
}

int descstore_cache_put(struct descstore_cache *c,
			const unsigned char d[SHA256_LEN], const float *v)
{
	float *copy = alloc_array(c->dim, sizeof(*copy));
	int rc = 0;
	if (!copy)
		return ERR_NOMEM;
	memcpy(copy, v, c->dim * sizeof(*copy));
	#pragma omp critical(descstore_cache)
	{
		if (alloc_grow((void **)&c->items, &c->cap, c->n + 1, sizeof(*c->items)) < 0) {
			rc = ERR_NOMEM;
		} else {
			memcpy(c->items[c->n].digest, d, SHA256_LEN);
			c->items[c->n].vec = copy;
			c->n++;
			c->sorted = false;
			copy = NULL;
		}
	}
	xfree(copy);
	return rc;
}

static int cmp_cached(const void *x, const void *y)
{
	const struct descstore_cached *a = x, *b = y;
	return memcmp(a->digest, b->digest, SHA256_LEN);
}

/* Sort for lookups; only once the workers are done putting. */
static void cache_sort(struct descstore_cache *c)
{
	if (c->n > 1)
		qsort(c->items, c->n, sizeof(*c->items), cmp_cached);
	c->sorted = true;
}

bool descstore_cache_get(struct descstore_cache *c,
			 const unsigned char d[SHA256_LEN], float *v)
{
	bool found = false;
	#pragma omp critical(descstore_cache)
	{
		if (c->sorted) {
			size_t lo = 0, hi = c->n;
			while (lo < hi && !found) {
				size_t mid = lo + (hi - lo) / 2;
				int k = memcmp(c->items[mid].digest, d, SHA256_LEN);
				if (!k) {
					memcpy(v, c->items[mid].vec, c->dim * sizeof(*v));
					found = true;
				} else if (k < 0) {
					lo = mid + 1;
				} else {
					hi = mid;
				}
			}
		} else {
			for (size_t i = 0; i < c->n && !found; i++)
				if (!memcmp(c->items[i].digest, d, SHA256_LEN)) {
					memcpy(v, c->items[i].vec, c->dim * sizeof(*v));
					found = true;
				}
		}
	}
	return found;
}

/* ---- describe hook ------------------------------------------------------- */

static json_t *info_json(const struct desc_info *in)
{
	static const char *const names[] = {
		"colour", "units", "point_cloud", "normals_guessed", "texture_missing",
		"colour_uniform", "undersampled", "partial_colour", "local_sparse"
	};
	json_t *flags = json_array();
	for (size_t i = 0; flags && i < sizeof(names) / sizeof(names[0]); i++)
		if (in->flags & (1u << i))
			json_array_append_new(flags, json_string(names[i]));
	bool mm = in->flags & DESC_HAS_UNITS;
	json_t *ext = mm ? json_pack("[f,f,f]", in->extent[0], in->extent[1], in->extent[2]) : json_null();
	return json_pack("{s:s, s:o, s:I, s:I, s:I, s:o, s:o, s:f, s:f}", "schema", DESC_SCHEMA,
			 "flags", flags ? flags : json_array(),
			 "points", (json_int_t)in->n_points, "faces", (json_int_t)in->n_faces,
			 "views", (json_int_t)in->n_views,
			 "extent_mm", ext ? ext : json_null(),
			 "area_mm2", mm ? json_real(in->area) : json_null(),
			 "colour_fraction", in->colour_fraction, "noise", in->noise);
}

/* Append the scan's warnings from w0 on (texture decoding) to en's stats. */
static int add_warnings(struct manifest_entry *en, const struct scan *s, size_t w0)
{
	json_t *w = en->stats ? json_object_get(en->stats, "warnings") : NULL;
	for (size_t i = w0; json_is_array(w) && i < s->n_warnings; i++) {
		bool dup = false; /* described again by reindex */
		for (size_t k = 0; k < json_array_size(w) && !dup; k++)
			dup = json_is_string(json_array_get(w, k)) &&
			      !strcmp(json_string_value(json_array_get(w, k)), s->warnings[i]);
		if (!dup && json_array_append_new(w, json_string(s->warnings[i])) < 0)
			return ERR_NOMEM;
	}
	return 0;
}

int descstore_describe(void *ctx, struct scan *s, struct manifest_entry *en,
		       unsigned char **out, size_t *len, struct err *e)
{
	struct descstore_cache *c = ctx;
	struct describe_opts o;
	struct desc_info info;
	struct image *tex = NULL;
	size_t n_failed = 0, w0 = s->n_warnings, dim = describe_dim(), n_views = 0;
	float *v = NULL;
	unsigned char *blob = NULL;
	int rc;

	*out = NULL;
	*len = 0;
	if ((rc = describe_load_textures(s, NULL, &tex, &n_failed, e)) < 0)
		return rc;
	describe_opts_init(&o);
	if (en->units) {
		enum scan_units u = scan_units_parse(en->units, strlen(en->units));
		if (u != UNITS_UNKNOWN)
			o.mm_per_unit = scan_units_mm(u);
	}
	o.textures = tex;
	o.n_textures = tex ? s->n_textures : 0;
	/* inside the indexer's workers: one thread per scan */
	o.threads = omp_in_parallel() ? 1 : 0;
	v = alloc_array(describe_record_dim(), sizeof(*v));
	blob = xmalloc(descstore_blob_size());
	if (!v || !blob) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = describe_scan(s, &o, v, &info, e);
	if (rc == ERR_UNDESCRIBABLE) {
		/* no descriptor, but the texture warnings still belong to the scan */
		if (add_warnings(en, s, w0) < 0)
			rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (rc < 0) {
		char why[sizeof(e->msg)];
		snprintf(why, sizeof(why), "%s", e->msg);
		err_set(e, rc, "cannot describe: %s", why);
		goto out;
	}
	/* then as seen from DESC_VIEWS sides, for queries scanned from one */
	if ((rc = describe_views(s, &o, v, v + dim, &n_views, e)) < 0) {
		char why[sizeof(e->msg)];
		snprintf(why, sizeof(why), "%s", e->msg);
		err_set(e, rc, "cannot describe its views: %s", why);
		goto out;
	}
	info.n_views = n_views;
	descstore_encode(v, blob);
	if (c) {
		unsigned char d[SHA256_LEN];
		if ((rc = sha256_buffer(blob, descstore_blob_size(), d, e)) < 0)
			goto out;
		if (descstore_cache_put(c, d, v) < 0) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	/* what describing found: texture warnings and the physical figures */
	if (en->stats) {
		if (add_warnings(en, s, w0) < 0) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		json_t *dj = info_json(&info);
		if (!dj) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		json_object_set_new(en->stats, "descriptor", dj);
	}
	*out = blob;
	*len = descstore_blob_size();
	blob = NULL;
	rc = 0;
out:
	xfree(blob);
	xfree(v);
	describe_textures_free(&tex, s->n_textures);
	return rc;
}

/* ---- collect ------------------------------------------------------------- */

struct want {
	size_t row;
	unsigned char digest[SHA256_LEN];
	uint64_t volume;
	bool done;
};

static int cmp_want(const void *x, const void *y)
{
	const struct want *a = x, *b = y;
	if (a->volume != b->volume)
		return a->volume < b->volume ? -1 : 1;
	return memcmp(a->digest, b->digest, SHA256_LEN);
}

/* Stream each volume once, decoding the wanted descriptor blobs. */
static int read_from_volumes(struct archive_dir *a, struct want *w, size_t n,
			     struct descstore_table *t, struct err *e)
{
	size_t bsize = descstore_blob_size();
	unsigned char *buf = NULL, got[SHA256_LEN];
	struct volume_reader *r = NULL;
	int rc;

	if ((rc = archive_dir_load_blobs(a, e)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const struct archive_blob *b = archive_dir_find_blob(a, w[i].digest);
		char hex[SHA256_HEX_LEN + 1];
		if (!b) {
			sha256_to_hex(w[i].digest, hex);
			return err_set(e, ERR_CORRUPT, "descriptor blob %s is in no volume", hex);
		}
		w[i].volume = b->volume;
	}
	qsort(w, n, sizeof(*w), cmp_want);
	if (!(buf = xmalloc(bsize + 1)))
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n && !rc;) {
		char path[ERR_PATH_MAX];
		struct volume_entry ent;
		size_t j = i;
		while (j < n && w[j].volume == w[i].volume)
			j++;
		archive_dir_volume_path(a, w[i].volume, path, sizeof(path));
		if ((rc = volume_reader_open(&r, path, e)) < 0)
			break;
		size_t next = i;
		while (next < j && (rc = volume_reader_next(r, &ent, e)) > 0) {
			rc = 0;
			if (!ent.is_blob || memcmp(ent.digest, w[next].digest, SHA256_LEN) != 0)
				continue;
			size_t have = 0, k;
			for (;;) {
				if ((rc = volume_reader_read(r, buf + have, bsize + 1 - have, &k, e)) < 0)
					break;
				if (!k || (have += k) > bsize)
					break;
			}
			if (rc < 0)
				break;
			if (have != bsize || (rc = sha256_buffer(buf, bsize, got, e)) < 0 ||
			    memcmp(got, ent.digest, SHA256_LEN) != 0) {
				err_set_path(e, path);
				rc = err_set(e, ERR_CORRUPT, "descriptor blob at entry %" PRIu64 " is damaged",
					     ent.index);
				break;
			}
			/* one blob may serve several rows (identical descriptors) */
			for (; next < j && !memcmp(w[next].digest, ent.digest, SHA256_LEN); next++) {
				if ((rc = descstore_decode(buf, bsize, t->vecs + w[next].row * t->dim, e)) < 0)
					break;
				w[next].done = true;
			}
			if (rc < 0)
				break;
		}
		volume_reader_free(&r);
		if (rc < 0)
			break;
		if (next < j) {
			char hex[SHA256_HEX_LEN + 1];
			sha256_to_hex(w[next].digest, hex);
			err_set_path(e, path);
			rc = err_set(e, ERR_CORRUPT, "descriptor blob %s is missing from the volume", hex);
		}
		i = j;
	}
	xfree(buf);
	return rc < 0 ? rc : 0;
}

int descstore_collect(struct archive_dir *a, const struct manifest *m,
		      struct descstore_cache *c,
		      const struct descstore_table *prev,
		      struct descstore_table *t, size_t *n_skipped,
		      struct err *e)
{
	size_t dim = describe_record_dim(), bsize = descstore_blob_size(), n = 0, n_want = 0;
	struct order *ord = NULL;
	struct want *want = NULL;
	unsigned char *blob = NULL;
	int rc = 0;

	descstore_table_init(t);
	if ((rc = assign_ids(m, &ord, &n, e)) < 0)
		return rc;
	if (n_skipped)
		*n_skipped = m->n_entries - n;
	if (c)
		cache_sort(c);
	t->n = n;
	t->dim = dim;
	snprintf(t->schema, sizeof(t->schema), "%s", DESC_SCHEMA);
	t->ids = alloc_array(n ? n : 1, sizeof(*t->ids));
	t->digests = alloc_array(n ? n : 1, sizeof(*t->digests));
	t->vecs = alloc_array(n ? n : 1, dim * sizeof(float));
	want = alloc_array(n ? n : 1, sizeof(*want));
	blob = xmalloc(bsize);
	if (!t->ids || !t->digests || !t->vecs || !want || !blob) {
		rc = err_set(e, ERR_NOMEM, "out of memory for %zu descriptors", n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct manifest_entry *en = &m->entries[ord[i].entry];
		float *v = t->vecs + i * dim;
		t->ids[i] = ord[i].id;
		memcpy(t->digests[i], en->desc.blob, SHA256_LEN);
		if (c && descstore_cache_get(c, en->desc.blob, v))
			continue;
		size_t pr = prev ? descstore_table_find(prev, ord[i].id) : SIZE_MAX;
		if (pr != SIZE_MAX && prev->dim == dim &&
		    !memcmp(prev->digests[pr], en->desc.blob, SHA256_LEN)) {
			unsigned char got[SHA256_LEN];
			/* trust the previous table only as far as its bytes hash right */
			descstore_encode(prev->vecs + pr * dim, blob);
			if ((rc = sha256_buffer(blob, bsize, got, e)) < 0)
				goto out;
			if (!memcmp(got, en->desc.blob, SHA256_LEN)) {
				memcpy(v, prev->vecs + pr * dim, dim * sizeof(*v));
				continue;
			}
		}
		want[n_want].row = i;
		memcpy(want[n_want].digest, en->desc.blob, SHA256_LEN);
		want[n_want].done = false;
		n_want++;
	}
	if (n_want)
		rc = read_from_volumes(a, want, n_want, t, e);
out:
	xfree(blob);
	xfree(want);
	xfree(ord);
	if (rc)
		descstore_table_release(t);
	return rc;
}

/* ---- hooks --------------------------------------------------------------- */

void descstore_set_builder(int (*fn)(void *ctx, struct archive_dir *a,
				     const struct manifest *m,
				     const char *tmp_path, const char **schema,
				     struct err *e))
{
	builder = fn;
}

void descstore_hooks(struct index_hooks *h, struct descstore_cache *c)
{
	memset(h, 0, sizeof(*h));
	h->desc_schema = DESC_SCHEMA;
	h->describe = descstore_describe;
	h->build_index = builder;
	h->ctx = c;
}
