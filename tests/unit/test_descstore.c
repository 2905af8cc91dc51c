/*
 * test_descstore.c - descriptors in the archive and the per-version
 * search index (indexer/descstore.c, query/vindex.c) through index_run()
 * on generated scans: ids stable across versions, unchanged scans keep
 * their descriptors, the FAISS part finds every stored vector, an old
 * version opens after newer commits, scans too thin to describe are
 * stored but not indexed, and the table reader refuses every truncated
 * or damaged file cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "formats/formats.h"
#include "formats/image.h"
#include "formats/scan.h"
#include "indexer/archive.h"
#include "indexer/describe.h"
#include "indexer/descstore.h"
#include "indexer/index.h"
#include "query/knn.h"
#include "query/vindex.h"
#include "tests/lib/gen.h"

static char tmpdir[256];

/* A generated scan written as lib/<rel> (binary PLY). */
static void put_scan(const char *rel, enum gen_form form, enum gen_material mat, uint64_t seed)
{
	struct gen_params p;
	struct scan s;
	struct err e;
	char path[512], cmd[600];
	gen_params_init(&p);
	p.form = form;
	p.material = mat;
	p.seed = seed;
	p.triangles = 1500;
	p.size_mm = 40;
	err_init(&e);
	snprintf(path, sizeof(path), "%s/lib/%s", tmpdir, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(gen_scan(&p, &s, NULL, &e), 0);
	assert_int_equal(gen_write(path, GEN_FMT_PLY, &s, NULL, &e), 0);
	scan_release(&s);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/refscan-test-descstore-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	setenv("REFSCAN_NOW", "1700000000", 1);
	descstore_set_builder(vindex_build);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * Index tmpdir/dir into archive with the real hooks: it must commit
 * want_version and fail nothing.  The caller releases *r.
 */
static void index_dir(const char *archive, const char *dir, uint64_t want_version,
		      struct index_result *r)
{
	struct index_options o;
	struct descstore_cache c;
	struct index_hooks h;
	struct err e;
	char src[300];
	char *srcs[1] = { src };
	snprintf(src, sizeof(src), "%s/%s", tmpdir, dir);
	index_options_init(&o);
	o.archive = archive;
	o.sources = srcs;
	o.n_sources = 1;
	err_init(&e);
	descstore_cache_init(&c);
	descstore_hooks(&h, &c);
	int rc = index_run(&o, &h, r, &e);
	if (rc < 0)
		fprintf(stderr, "index_run: %s\n", e.msg);
	assert_int_equal(rc, 0);
	assert_int_equal(r->n_failed, 0);
	assert_true(r->committed);
	assert_int_equal(r->version, want_version);
	descstore_cache_release(&c);
}

static void index_lib(const char *archive, uint64_t want_version)
{
	struct index_result r;
	index_dir(archive, "lib", want_version, &r);
	index_result_release(&r);
}

static void read_table(struct archive_dir *a, uint64_t v, struct descstore_table *t)
{
	char path[ERR_PATH_MAX];
	struct err e;
	err_init(&e);
	archive_dir_version_path(a, v, ".index", path, sizeof(path));
	assert_int_equal(descstore_table_read(path, describe_record_dim(), t, &e), 0);
}

static const struct manifest_entry *entry(const struct manifest *m, const char *path)
{
	const struct manifest_entry *en = manifest_find(m, path);
	assert_non_null(en);
	return en;
}

static void test_ids_are_stable_across_versions(void **state)
{
	(void)state;
	char archive[300];
	struct archive_dir a;
	struct manifest m1, m2;
	struct descstore_table t1, t2;
	struct err e;
	/* a row holds the scan's record: its own vector, then its views' */
	size_t dim = describe_record_dim(), own = describe_dim();

	snprintf(archive, sizeof(archive), "%s/archive", tmpdir);
	put_scan("tile.ply", GEN_FORM_TILE, GEN_MAT_STONE, 1);
	put_scan("blob.ply", GEN_FORM_BLOB, GEN_MAT_BARK, 2);
	put_scan("sub/torus.ply", GEN_FORM_TORUS, GEN_MAT_SKIN, 3);
	put_scan("sub/limb.ply", GEN_FORM_LIMB, GEN_MAT_WOOD, 4);
	index_lib(archive, 1);
	/* version 2: one changed, one removed, one added, one unchanged */
	put_scan("blob.ply", GEN_FORM_BLOB, GEN_MAT_BARK, 22);
	char p[400];
	snprintf(p, sizeof(p), "%s/lib/sub/limb.ply", tmpdir);
	assert_int_equal(unlink(p), 0);
	put_scan("sub/box.ply", GEN_FORM_BOX, GEN_MAT_KNIT, 5);
	index_lib(archive, 2);

	err_init(&e);
	manifest_init(&m1);
	manifest_init(&m2);
	assert_int_equal(archive_dir_open(&a, archive, 0, &e), 0);
	assert_int_equal(archive_dir_load_manifest(&a, 1, &m1, &e), 0);
	assert_int_equal(archive_dir_load_manifest(&a, 2, &m2, &e), 0);
	read_table(&a, 1, &t1);
	read_table(&a, 2, &t2);
	assert_int_equal(t1.n, 4);
	assert_int_equal(t2.n, 4);
	assert_int_equal(t1.dim, dim);
	assert_string_equal(t2.schema, DESC_SCHEMA);
	assert_int_equal(t1.kind, DESCSTORE_EXACT);
	for (size_t i = 0; i < t2.n; i++) {
		assert_true(t2.ids[i] >= 0 && t2.ids[i] < ((int64_t)1 << DESCSTORE_ID_BITS));
		if (i)
			assert_true(t2.ids[i] > t2.ids[i - 1]);
	}

	/* every id is the hash of its path, in both versions */
	const char *paths1[] = { "lib/tile.ply", "lib/blob.ply", "lib/sub/torus.ply", "lib/sub/limb.ply" };
	const char *paths2[] = { "lib/tile.ply", "lib/blob.ply", "lib/sub/torus.ply", "lib/sub/box.ply" };
	for (size_t i = 0; i < 4; i++) {
		assert_int_not_equal(descstore_table_find(&t1, descstore_id(paths1[i])), SIZE_MAX);
		assert_int_not_equal(descstore_table_find(&t2, descstore_id(paths2[i])), SIZE_MAX);
	}
	assert_int_equal(descstore_table_find(&t2, descstore_id("lib/sub/limb.ply")), SIZE_MAX);
	assert_int_equal(descstore_table_find(&t1, descstore_id("lib/sub/box.ply")), SIZE_MAX);

	/* unchanged scans: same id, same descriptor blob, same vector */
	for (size_t k = 0; k < 2; k++) {
		const char *path = k ? "lib/sub/torus.ply" : "lib/tile.ply";
		int64_t id = descstore_id(path);
		size_t r1 = descstore_table_find(&t1, id), r2 = descstore_table_find(&t2, id);
		assert_memory_equal(t1.digests[r1], t2.digests[r2], SHA256_LEN);
		assert_memory_equal(t1.vecs + r1 * dim, t2.vecs + r2 * dim, dim * sizeof(float));
		assert_memory_equal(entry(&m1, path)->desc.blob, t1.digests[r1], SHA256_LEN);
		assert_memory_equal(entry(&m2, path)->desc.blob, t2.digests[r2], SHA256_LEN);
	}
	/* the changed scan keeps its id, with a new descriptor */
	int64_t bid = descstore_id("lib/blob.ply");
	size_t b1 = descstore_table_find(&t1, bid), b2 = descstore_table_find(&t2, bid);
	assert_memory_not_equal(t1.digests[b1], t2.digests[b2], SHA256_LEN);
	assert_memory_equal(entry(&m2, "lib/blob.ply")->desc.blob, t2.digests[b2], SHA256_LEN);

	/* a row's vector hashes to its descriptor blob digest */
	unsigned char *blob = xmalloc(descstore_blob_size()), got[SHA256_LEN];
	assert_non_null(blob);
	for (size_t i = 0; i < t2.n; i++) {
		descstore_encode(t2.vecs + i * dim, blob);
		assert_int_equal(sha256_buffer(blob, descstore_blob_size(), got, &e), 0);
		assert_memory_equal(got, t2.digests[i], SHA256_LEN);
	}
	xfree(blob);

	/*
	 * Every view was described.  A closed form shows only part of
	 * itself from any side, so none of its views is the whole; an open
	 * tile seen square-on from either side shows all of itself.
	 */
	for (size_t k = 0; k < 4; k++) {
		const struct manifest_entry *en = entry(&m2, paths2[k]);
		json_t *views = json_object_get(json_object_get(en->stats, "descriptor"), "views");
		assert_int_equal(json_integer_value(views), DESC_VIEWS);
		size_t r = descstore_table_find(&t2, descstore_id(paths2[k])), same = 0;
		for (size_t v = 1; v <= DESC_VIEWS; v++)
			same += !memcmp(t2.vecs + r * dim, t2.vecs + r * dim + v * own,
					own * sizeof(float));
		if (strstr(paths2[k], "tile")) {
			/* the four views within 60 degrees of square-on; grazing ones lose relief */
			assert_int_equal(same, 4);
		} else {
			assert_int_equal(same, 0);
		}
	}

	/* the FAISS part holds the same ids: each scan's own vector finds itself */
	struct knn k;
	char ipath[ERR_PATH_MAX];
	archive_dir_version_path(&a, 2, ".index", ipath, sizeof(ipath));
	assert_int_equal(knn_read(&k, ipath, own, 0, &e), 0);
	assert_int_equal(k.n, 4);
	for (size_t i = 0; i < t2.n; i++) {
		float d, q[4096];
		int64_t id;
		assert_true(own <= 4096);
		/* the carried noise level is never compared: the index holds 0 */
		memcpy(q, t2.vecs + i * dim, own * sizeof(float));
		float level = q[describe_noise_offset()];
		assert_int_equal(knn_search_faiss(&k, 1, q, 1, &d, &id, &e), 0);
		assert_int_equal(id, t2.ids[i]);
		assert_true(fabsf(d - level * level) < 1e-6f + 1e-4f * level * level);
		q[describe_noise_offset()] = 0;
		assert_int_equal(knn_search_faiss(&k, 1, q, 1, &d, &id, &e), 0);
		assert_int_equal(id, t2.ids[i]);
		assert_true(d < 1e-6f);
	}
	knn_release(&k);

	/* version 1 still opens for queries after version 2, with its entries */
	struct vindex vx;
	assert_int_equal(vindex_open(&vx, &a, 1, &e), 0);
	assert_int_equal(vx.refs.n, 4);
	size_t r = descstore_table_find(&vx.t, descstore_id("lib/sub/limb.ply"));
	assert_int_not_equal(r, SIZE_MAX);
	assert_string_equal(vindex_entry(&vx, r)->path, "lib/sub/limb.ply");
	assert_true(fabsf(vx.size_mm[r] - 40.0f) < 4.0f);
	vindex_release(&vx);

	int64_t ids[4];
	assert_int_equal(descstore_ids(&m2, ids, &e), 0);
	for (size_t i = 0; i < m2.n_entries; i++)
		assert_int_equal(ids[i], descstore_id(m2.entries[i].path));

	descstore_table_release(&t1);
	descstore_table_release(&t2);
	manifest_release(&m1);
	manifest_release(&m2);
	archive_dir_release(&a);
}

static void test_scans_too_thin_to_describe_are_stored_but_not_indexed(void **state)
{
	(void)state;
	char archive[300], src[300];
	struct index_result r;
	struct archive_dir a;
	struct manifest m;
	struct err e;

	/* the hook itself: no blob, the reason without decoration */
	struct scan s;
	scan_init(&s);
	err_init(&e);
	assert_int_equal(scan_read_buffer((const unsigned char *)"1 2 3\n4 5 6\n7 8 9\n", 18, "dots.xyz", NULL, &s, &e), 0);
	struct manifest_entry en;
	memset(&en, 0, sizeof(en));
	en.stats = json_pack("{s:[]}", "warnings");
	unsigned char sentinel = 0, *blob = &sentinel; /* must be cleared */
	size_t len = 99;
	assert_int_equal(descstore_describe(NULL, &s, &en, &blob, &len, &e), ERR_UNDESCRIBABLE);
	assert_null(blob);
	assert_int_equal(len, 0);
	assert_string_equal(e.msg, "3 usable points, a descriptor needs 16");
	assert_null(json_object_get(en.stats, "descriptor"));
	json_decref(en.stats);
	scan_release(&s);

	/* through index_run and the search index */
	snprintf(archive, sizeof(archive), "%s/thin-archive", tmpdir);
	snprintf(src, sizeof(src), "%s/thin", tmpdir);
	put_scan("../thin/tile.ply", GEN_FORM_TILE, GEN_MAT_STONE, 1);
	put_scan("../thin/blob.ply", GEN_FORM_BLOB, GEN_MAT_BARK, 2);
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/odd' && printf '0 0 0\\n1 0 0\\n0 1 0\\n0 0 1\\n1 1 1\\n' >'%s/odd/dots.xyz' && "
		 "printf 'solid empty\\nendsolid empty\\n' >'%s/odd/empty.stl'", src, src, src);
	assert_int_equal(system(cmd), 0);
	index_dir(archive, "thin", 1, &r);
	assert_int_equal(r.added, 4);
	assert_int_equal(r.n_warnings, 2);
	assert_string_equal(r.warnings[0].archive_path, "thin/odd/dots.xyz");
	assert_string_equal(r.warnings[0].message, "not searchable: 5 usable points, a descriptor needs 16");
	assert_string_equal(r.warnings[1].archive_path, "thin/odd/empty.stl");
	assert_string_equal(r.warnings[1].message, "not searchable: 0 usable points, a descriptor needs 16");
	index_result_release(&r);

	assert_int_equal(archive_dir_open(&a, archive, 0, &e), 0);
	assert_int_equal(archive_dir_load_manifest(&a, 1, &m, &e), 0);
	assert_int_equal(m.n_entries, 4);
	const struct manifest_entry *d = entry(&m, "thin/odd/dots.xyz");
	assert_null(d->desc.schema);
	assert_string_equal(d->undesc.schema, DESC_SCHEMA);
	assert_false(descstore_has_desc(d));
	int64_t ids[4];
	assert_int_equal(descstore_ids(&m, ids, &e), 0);
	assert_int_equal(ids[0], descstore_id("thin/blob.ply"));
	assert_int_equal(ids[1], -1);
	assert_int_equal(ids[2], -1);
	/* two references; the two thin scans are neither searched nor "stale" */
	struct descstore_table t;
	read_table(&a, 1, &t);
	assert_int_equal(t.n, 2);
	descstore_table_release(&t);
	struct vindex vx;
	assert_int_equal(vindex_open(&vx, &a, 1, &e), 0);
	assert_int_equal(vx.refs.n, 2);
	assert_int_equal(vx.n_undescribable, 2);
	assert_int_equal(vx.n_skipped, 0);
	vindex_release(&vx);
	manifest_release(&m);
	archive_dir_release(&a);
}

/* Copy the first n bytes of src to dst. */
static void copy_prefix(const unsigned char *buf, size_t n, const char *dst)
{
	FILE *f = fopen(dst, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, n, f), n);
	fclose(f);
}

static void test_table_reader_refuses_truncated_and_damaged_files(void **state)
{
	(void)state;
	char archive[300], path[ERR_PATH_MAX], tmp[400];
	struct archive_dir a;
	struct descstore_table t;
	struct err e;

	snprintf(archive, sizeof(archive), "%s/archive", tmpdir);
	err_init(&e);
	assert_int_equal(archive_dir_open(&a, archive, 0, &e), 0);
	archive_dir_version_path(&a, a.head.version, ".index", path, sizeof(path));
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	size_t len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *buf = xmalloc(len);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, len, f), len);
	fclose(f);
	snprintf(tmp, sizeof(tmp), "%s/cut.index", tmpdir);

	/* every prefix near the end, and a sample of the rest */
	for (size_t n = 0; n < len; n += n + 2000 < len ? 97 : 1) {
		copy_prefix(buf, n, tmp);
		err_init(&e);
		int rc = descstore_table_read(tmp, 0, &t, &e);
		assert_int_equal(rc, ERR_FORMAT);
		assert_null(t.ids);
	}
	copy_prefix(buf, len, tmp);
	assert_int_equal(descstore_table_read(tmp, 0, &t, &e), 0);
	descstore_table_release(&t);
	/* the wrong dimension, a newer table format, rows out of order */
	assert_int_equal(descstore_table_read(tmp, describe_record_dim() + 1, &t, &e), ERR_FORMAT);
	buf[len - 64 + 8] = 2;
	copy_prefix(buf, len, tmp);
	assert_int_equal(descstore_table_read(tmp, 0, &t, &e), ERR_VERSION);
	buf[len - 64 + 8] = 1;
	uint64_t off = 0;
	for (int i = 7; i >= 0; i--)
		off = (off << 8) | buf[len - 64 + 32 + i];
	size_t row = 40 + 4 * describe_record_dim();
	unsigned char first[8];
	memcpy(first, buf + off, 8);
	memcpy(buf + off, buf + off + row, 8);
	memcpy(buf + off + row, first, 8);
	copy_prefix(buf, len, tmp);
	assert_int_equal(descstore_table_read(tmp, 0, &t, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "out of order"));
	/* a trailing byte breaks the sizes */
	FILE *g = fopen(tmp, "ab");
	assert_non_null(g);
	fputc(0, g);
	fclose(g);
	assert_int_equal(descstore_table_read(tmp, 0, &t, &e), ERR_FORMAT);
	xfree(buf);
	archive_dir_release(&a);
}

static void test_blob_decode_checks_size_and_values(void **state)
{
	(void)state;
	size_t dim = describe_record_dim(), n = descstore_blob_size();
	float *v = xmalloc(dim * sizeof(float)), *w = xmalloc(dim * sizeof(float));
	unsigned char *b = xmalloc(n);
	struct err e;
	assert_non_null(v);
	assert_non_null(w);
	assert_non_null(b);
	for (size_t i = 0; i < dim; i++)
		v[i] = (float)i * 0.25f - 3.0f;
	descstore_encode(v, b);
	/* little-endian on every host: 1.0f is 00 00 80 3f */
	float one = 1.0f;
	unsigned char ob[4] = { 0, 0, 0x80, 0x3f };
	memcpy(v, &one, sizeof(one));
	descstore_encode(v, b);
	assert_memory_equal(b, ob, 4);
	err_init(&e);
	assert_int_equal(descstore_decode(b, n, w, &e), 0);
	assert_memory_equal(v, w, dim * sizeof(float));
	assert_int_equal(descstore_decode(b, n - 4, w, &e), ERR_FORMAT);
	v[3] = NAN;
	descstore_encode(v, b);
	assert_int_equal(descstore_decode(b, n, w, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "component 3"));
	xfree(v);
	xfree(w);
	xfree(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_are_stable_across_versions),
		cmocka_unit_test(test_scans_too_thin_to_describe_are_stored_but_not_indexed),
		cmocka_unit_test(test_table_reader_refuses_truncated_and_damaged_files),
		cmocka_unit_test(test_blob_decode_checks_size_and_values),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
