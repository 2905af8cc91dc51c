/*
 * test_manifest.c - formats/manifest.c: manifests, HEAD, volume indexes
 * and the failure cache round-trip byte for byte; readers refuse newer
 * major versions, hostile paths, bad digests, unsorted entries, every
 * truncation, and fail cleanly on every allocation failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "formats/manifest.h"

/* A manifest with two entries: files, metadata, stats and descriptors. */
static void build(struct manifest *m)
{
	struct err e;
	err_init(&e);
	manifest_init(m);
	m->version = 3;
	m->parent = 2;
	m->created = 1700000000;
	m->tool = xstrdup("refscan 0.1.0");
	m->default_units = xstrdup("mm");
	m->n_roots = 1;
	m->roots = xcalloc(1, sizeof(*m->roots));
	m->roots[0].label = xstrdup("lib");
	m->roots[0].source = xstrdup("/studio/lib");
	m->counts.added = 1;
	m->counts.changed = 1;
	m->volume = 3;
	m->new_blobs = 2;
	m->new_bytes = 1234;
	m->n_entries = 2;
	m->entries = xcalloc(2, sizeof(*m->entries));
	for (size_t i = 0; i < 2; i++) {
		struct manifest_entry *en = &m->entries[i];
		en->path = xstrdup(i ? "lib/stone/granite.ply" : "lib/skin/hand.obj");
		en->source = xstrdup(i ? "/studio/lib/stone/granite.ply" : "/studio/lib/skin/hand.obj");
		en->format = xstrdup(i ? "ply" : "obj");
		memset(en->blob, 0x10 + (int)i, SHA256_LEN);
		en->size = 1000 + i;
		en->mtime_ns = 1700000000123456789LL;
		en->inode = 42 + i;
		en->mode = 0644;
		en->since = 2 + i;
		en->units = xstrdup("mm");
		en->units_source = xstrdup(i ? "default" : "sidecar");
		en->meta = json_pack("{s:s, s:[s,s]}", "material", "skin", "tags", "cast", "left");
		en->stats = json_pack("{s:i, s:i, s:[f,f,f]}", "vertices", 4, "faces", 2,
				      "bbox_min", 0.0, -1.5, 2.25);
	}
	struct manifest_entry *en = &m->entries[0];
	en->n_files = 3;
	en->files = xcalloc(3, sizeof(*en->files));
	en->files[0].path = xstrdup("lib/skin/hand.mtl");
	en->files[0].role = MANIFEST_ROLE_MTL;
	memset(en->files[0].blob, 0xab, SHA256_LEN);
	en->files[0].size = 77;
	en->files[1].path = xstrdup("lib/skin/tex/missing.png");
	en->files[1].role = MANIFEST_ROLE_TEXTURE;
	en->files[1].missing = true;
	en->files[2].path = xstrdup("lib/skin/hand.obj.meta.json");
	en->files[2].role = MANIFEST_ROLE_SIDECAR;
	memset(en->files[2].blob, 0xcd, SHA256_LEN);
	en->files[2].size = 20;
	/* a scan that reads but cannot be described: no descriptors */
	en->undesc.schema = xstrdup("test-desc-1");
	en->undesc.reason = xstrdup("3 usable points, a descriptor needs 16");
	m->entries[1].desc.schema = xstrdup("test-desc-1");
	memset(m->entries[1].desc.blob, 0xee, SHA256_LEN);
	m->entries[1].desc.size = 512;
	m->n_failed = 1;
	m->failed = xcalloc(1, sizeof(*m->failed));
	m->failed[0].path = xstrdup("lib/broken/bad.ply");
	m->failed[0].code = xstrdup("format");
	m->failed[0].message = xstrdup("lib/broken/bad.ply: line 2: unexpected end of file");
	m->index.file = xstrdup("00000003.index");
	m->index.schema = xstrdup("faiss-flat-1");
	memset(m->index.sha256, 0x77, SHA256_LEN);
	m->index.size = 4096;
}

static char *dump(const struct manifest *m, size_t *len)
{
	char *out;
	struct err e;
	err_init(&e);
	assert_int_equal(manifest_dump(m, &out, len, &e), 0);
	return out;
}

static void test_manifest_round_trips_byte_for_byte(void **state)
{
	(void)state;
	struct manifest m, back;
	struct err e;
	size_t n1, n2;
	err_init(&e);
	build(&m);
	char *j1 = dump(&m, &n1);
	assert_int_equal(manifest_parse(j1, n1, &back, &e), 0);
	char *j2 = dump(&back, &n2);
	assert_int_equal(n1, n2);
	assert_string_equal(j1, j2);
	assert_int_equal(back.version, 3);
	assert_int_equal(back.parent, 2);
	assert_int_equal(back.n_entries, 2);
	assert_int_equal(back.entries[0].n_files, 3);
	assert_true(back.entries[0].files[1].missing);
	assert_int_equal(back.entries[0].files[2].role, MANIFEST_ROLE_SIDECAR);
	assert_int_equal(back.entries[1].mtime_ns, 1700000000123456789LL);
	assert_string_equal(back.entries[1].desc.schema, "test-desc-1");
	assert_null(back.entries[1].undesc.schema);
	assert_null(back.entries[0].desc.schema);
	assert_string_equal(back.entries[0].undesc.schema, "test-desc-1");
	assert_string_equal(back.entries[0].undesc.reason, "3 usable points, a descriptor needs 16");
	assert_non_null(strstr(j1, "\"descriptors\":null,\"undescribable\":{\"schema\":\"test-desc-1\","
				   "\"reason\":\"3 usable points, a descriptor needs 16\"}"));
	assert_non_null(strstr(j1, "\"format_version\":\"1.1\""));
	assert_string_equal(json_string_value(json_object_get(back.entries[0].meta, "material")), "skin");
	assert_string_equal(back.index.file, "00000003.index");
	assert_string_equal(back.failed[0].code, "format");
	assert_non_null(strstr(j1, "\"created\":\"2023-11-14T22:13:20Z\""));
	const struct manifest_entry *f = manifest_find(&back, "lib/stone/granite.ply");
	assert_non_null(f);
	assert_int_equal(f->inode, 43);
	assert_null(manifest_find(&back, "lib/stone"));
	/* a deep copy is independent of its source */
	struct manifest_entry c;
	assert_int_equal(manifest_entry_copy(&c, &back.entries[0], &e), 0);
	manifest_release(&back);
	assert_string_equal(c.files[0].path, "lib/skin/hand.mtl");
	assert_string_equal(c.undesc.reason, "3 usable points, a descriptor needs 16");
	manifest_entry_release(&c);
	xfree(j1);
	xfree(j2);
	manifest_release(&m);
}

/* Parse buf after replacing the first `from` with `to`; return the code. */
static int parse_edited(const char *json, const char *from, const char *to, struct err *e)
{
	const char *at = strstr(json, from);
	assert_non_null(at);
	size_t n = strlen(json) - strlen(from) + strlen(to);
	char *buf = xmalloc(n + 1);
	snprintf(buf, n + 1, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
	struct manifest m;
	err_init(e);
	int rc = manifest_parse(buf, n, &m, e);
	if (!rc)
		manifest_release(&m);
	xfree(buf);
	return rc;
}

static void test_manifest_refuses_a_newer_major_version(void **state)
{
	(void)state;
	struct manifest m;
	struct err e;
	size_t n;
	build(&m);
	char *j = dump(&m, &n);
	manifest_release(&m);
	assert_int_equal(parse_edited(j, "\"format_version\":\"1.1\"", "\"format_version\":\"2.0\"", &e),
			 ERR_VERSION);
	assert_non_null(strstr(e.msg, "newer than this refscan reads"));
	/* a newer minor version with keys we do not know is read */
	assert_int_equal(parse_edited(j, "\"format_version\":\"1.1\"",
				      "\"format_version\":\"1.4\",\"future\":{\"x\":1}", &e), 0);
	assert_int_equal(parse_edited(j, "\"format_version\":\"1.1\"", "\"format_version\":\"1\"", &e),
			 ERR_FORMAT);
	assert_int_equal(parse_edited(j, "\"format_version\":\"1.1\"", "\"format_version\":\"0.9\"", &e),
			 ERR_VERSION);
	assert_int_equal(parse_edited(j, "\"refscan-manifest\"", "\"refscan-head\"", &e), ERR_FORMAT);
	/* a 1.0 manifest (no entry can be undescribable) is read as before */
	assert_int_equal(parse_edited(j, "\"format_version\":\"1.1\"", "\"format_version\":\"1.0\"", &e), 0);
	xfree(j);
}

static void test_manifest_rejects_hostile_and_malformed_fields(void **state)
{
	(void)state;
	struct manifest m;
	struct err e;
	size_t n;
	build(&m);
	char *j = dump(&m, &n);
	manifest_release(&m);
	static const char *paths[] = { "../escape.ply", "/etc/passwd", "lib/../../up.ply", "lib//x.ply",
				       "lib/./x.ply", "lib\\\\..\\\\x.ply", "" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char to[128];
		snprintf(to, sizeof(to), "\"path\":\"%s\"", paths[i]);
		assert_int_equal(parse_edited(j, "\"path\":\"lib/skin/hand.obj\"", to, &e), ERR_FORMAT);
		assert_non_null(strstr(e.msg, "entry 0"));
	}
	assert_int_equal(parse_edited(j, "\"path\":\"lib/skin/hand.mtl\"", "\"path\":\"../x.mtl\"", &e),
			 ERR_FORMAT);
	assert_non_null(strstr(e.msg, "entry 0 file 0"));
	/* digests: 64 lower-case hex digits only */
	assert_int_equal(parse_edited(j, "\"blob\":\"1010", "\"blob\":\"10", &e), ERR_FORMAT);
	assert_int_equal(parse_edited(j, "\"blob\":\"1010", "\"blob\":\"AB10", &e), ERR_FORMAT);
	assert_int_equal(parse_edited(j, "\"blob\":\"1010", "\"blob\":\"zz10", &e), ERR_FORMAT);
	/* types and ranges */
	assert_int_equal(parse_edited(j, "\"size\":1000", "\"size\":-1", &e), ERR_FORMAT);
	assert_int_equal(parse_edited(j, "\"size\":1000", "\"size\":\"1000\"", &e), ERR_FORMAT);
	assert_int_equal(parse_edited(j, "\"version\":3", "\"version\":0", &e), ERR_FORMAT);
	assert_int_equal(parse_edited(j, "\"parent\":2", "\"parent\":3", &e), ERR_FORMAT);
	assert_int_equal(parse_edited(j, "\"role\":\"mtl\"", "\"role\":\"exe\"", &e), ERR_FORMAT);
	assert_int_equal(parse_edited(j, "\"meta\":{", "\"meta\":[1],\"x\":{", &e), ERR_FORMAT);
	assert_int_equal(parse_edited(j, "\"file\":\"00000003.index\"", "\"file\":\"a/b.index\"", &e),
			 ERR_FORMAT);
	/* entries sorted and unique */
	assert_int_equal(parse_edited(j, "lib/stone/granite.ply\",\"format", "lib/skin/hand.obj\",\"format", &e),
			 ERR_FORMAT);
	assert_non_null(strstr(e.msg, "out of order or repeated"));
	assert_int_equal(parse_edited(j, "lib/stone/granite.ply\",\"format", "lib/a.ply\",\"format", &e),
			 ERR_FORMAT);
	/* "undescribable": an object with a schema and a reason, never beside descriptors */
	assert_int_equal(parse_edited(j, "\"undescribable\":{", "\"undescribable\":[],\"x\":{", &e),
			 ERR_FORMAT);
	assert_non_null(strstr(e.msg, "entry 0: \"undescribable\" is not an object"));
	assert_int_equal(parse_edited(j, "\"reason\":\"3 usable", "\"why\":\"3 usable", &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "missing \"reason\""));
	assert_int_equal(parse_edited(j, "\"undescribable\":{\"schema\":\"test-desc-1\"",
				      "\"undescribable\":{\"schema\":7", &e), ERR_FORMAT);
	assert_int_equal(parse_edited(j, "\"descriptors\":null,",
				      "\"descriptors\":{\"schema\":\"s\",\"blob\":\"" 
				      "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\",\"size\":4},", &e),
			 ERR_FORMAT);
	assert_non_null(strstr(e.msg, "has both"));
	/* duplicate keys are refused by the JSON layer */
	assert_int_equal(parse_edited(j, "\"version\":3", "\"version\":3,\"version\":4", &e), ERR_FORMAT);
	xfree(j);
}

static void test_manifest_fails_cleanly_on_every_truncation(void **state)
{
	(void)state;
	struct manifest m;
	struct err e;
	size_t n;
	build(&m);
	char *j = dump(&m, &n);
	manifest_release(&m);
	for (size_t cut = 0; cut < n - 1; cut++) {
		char *p = xmalloc(cut ? cut : 1);
		memcpy(p, j, cut);
		err_init(&e);
		assert_int_equal(manifest_parse(p, cut, &m, &e), ERR_FORMAT);
		assert_int_equal(m.n_entries, 0);
		xfree(p);
	}
	/* the trailing newline is optional, trailing garbage is not */
	assert_int_equal(manifest_parse(j, n - 1, &m, &e), 0);
	manifest_release(&m);
	assert_int_equal(parse_edited(j, "}\n", "}x\n", &e), ERR_FORMAT);
	xfree(j);
}

static void test_manifest_parse_survives_every_allocation_failure(void **state)
{
	(void)state;
	struct manifest m;
	struct err e;
	size_t n;
	build(&m);
	char *j = dump(&m, &n);
	manifest_release(&m);
	int rc = ERR_NOMEM;
	long k;
	for (k = 0; rc == ERR_NOMEM && k < 10000; k++) {
		err_init(&e);
		alloc_fail_after(k);
		rc = manifest_parse(j, n, &m, &e);
		alloc_fail_after(-1);
		assert_true(rc == 0 || rc == ERR_NOMEM);
		if (rc == ERR_NOMEM)
			assert_int_equal(m.n_entries, 0);
	}
	assert_int_equal(rc, 0);
	assert_true(k > 10);
	manifest_release(&m);
	/* and the writer */
	build(&m);
	rc = ERR_NOMEM;
	for (k = 0; rc == ERR_NOMEM && k < 10000; k++) {
		char *out = NULL;
		size_t len;
		alloc_fail_after(k);
		rc = manifest_dump(&m, &out, &len, &e);
		alloc_fail_after(-1);
		assert_true(rc == 0 || rc == ERR_NOMEM);
		assert_true(rc == 0 ? out != NULL : out == NULL);
		xfree(out);
	}
	assert_int_equal(rc, 0);
	manifest_release(&m);
	xfree(j);
}

static void test_head_checks_its_invariants(void **state)
{
	(void)state;
	struct head h, back;
	struct err e;
	char *j;
	size_t n;
	err_init(&e);
	head_init(&h);
	assert_int_equal(head_add_version(&h, 5, &e), 0);
	assert_int_equal(head_add_version(&h, 2, &e), 0);
	assert_int_equal(head_add_version(&h, 9, &e), 0);
	assert_int_equal(head_add_version(&h, 5, &e), 0);
	assert_int_equal(head_add_volume(&h, 3, &e), 0);
	assert_int_equal(head_add_volume(&h, 1, &e), 0);
	h.version = 9;
	h.next_volume = 4;
	assert_int_equal(h.n_versions, 3);
	assert_int_equal(h.versions[0], 2);
	assert_int_equal(h.versions[2], 9);
	assert_int_equal(head_dump(&h, &j, &n, &e), 0);
	assert_string_equal(j, "{\"format\":\"refscan-head\",\"format_version\":\"1.0\",\"version\":9,"
			       "\"versions\":[2,5,9],\"volumes\":[1,3],\"next_volume\":4}\n");
	assert_int_equal(head_parse(j, n, &back, &e), 0);
	assert_true(head_has_version(&back, 5));
	assert_false(head_has_version(&back, 4));
	assert_true(head_has_volume(&back, 3));
	head_release(&back);
	xfree(j);
	static const char *bad[] = {
		"{\"format\":\"refscan-head\",\"format_version\":\"1.0\",\"version\":5,\"versions\":[2,9],\"volumes\":[],\"next_volume\":1}",
		"{\"format\":\"refscan-head\",\"format_version\":\"1.0\",\"version\":9,\"versions\":[9,2,9],\"volumes\":[],\"next_volume\":1}",
		"{\"format\":\"refscan-head\",\"format_version\":\"1.0\",\"version\":9,\"versions\":[9],\"volumes\":[3],\"next_volume\":3}",
		"{\"format\":\"refscan-head\",\"format_version\":\"1.0\",\"version\":0,\"versions\":[1],\"volumes\":[],\"next_volume\":1}",
		"{\"format\":\"refscan-head\",\"format_version\":\"1.0\",\"version\":1,\"versions\":[0,1],\"volumes\":[],\"next_volume\":1}",
		"{\"format\":\"refscan-head\",\"format_version\":\"1.0\",\"version\":1,\"versions\":[1],\"volumes\":{},\"next_volume\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_init(&e);
		assert_int_equal(head_parse(bad[i], strlen(bad[i]), &back, &e), ERR_FORMAT);
		assert_int_equal(back.n_versions, 0);
	}
	head_release(&h);
}

static void test_volume_index_and_failures_round_trip(void **state)
{
	(void)state;
	struct volidx v, back;
	struct err e;
	char *j, *j2;
	size_t n, n2;
	err_init(&e);
	volidx_init(&v);
	v.volume = 7;
	v.size = 999;
	memset(v.sha256, 0x42, SHA256_LEN);
	v.n_unlisted = 1;
	v.n_blobs = 2;
	v.blobs = xcalloc(2, sizeof(*v.blobs));
	memset(v.blobs[0].digest, 0x01, SHA256_LEN);
	memset(v.blobs[1].digest, 0x02, SHA256_LEN);
	v.blobs[1].size = 5;
	assert_int_equal(volidx_dump(&v, &j, &n, &e), 0);
	assert_int_equal(volidx_parse(j, n, &back, &e), 0);
	assert_int_equal(volidx_dump(&back, &j2, &n2, &e), 0);
	assert_string_equal(j, j2);
	assert_int_equal(back.n_unlisted, 1);
	volidx_release(&back);
	/* blobs out of order */
	memset(v.blobs[1].digest, 0x00, SHA256_LEN);
	xfree(j);
	assert_int_equal(volidx_dump(&v, &j, &n, &e), 0);
	assert_int_equal(volidx_parse(j, n, &back, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "out of order"));
	xfree(j);
	xfree(j2);
	volidx_release(&v);

	struct manifest m;
	struct manifest_failure *f;
	size_t nf;
	build(&m);
	assert_int_equal(failures_dump(m.failed, m.n_failed, &j, &n, &e), 0);
	assert_int_equal(failures_parse(j, n, &f, &nf, &e), 0);
	assert_int_equal(nf, 1);
	assert_string_equal(f[0].message, "lib/broken/bad.ply: line 2: unexpected end of file");
	failures_free(f, nf);
	static const char newer[] =
		"{\"format\":\"refscan-failures\",\"format_version\":\"3.0\",\"failed\":[]}";
	assert_int_equal(failures_parse(newer, strlen(newer), &f, &nf, &e), ERR_VERSION);
	/*
	 * a 1.0 cache may hold scans refused only for want of a descriptor,
	 * which are stored now: it is dropped, so they are read again
	 */
	assert_non_null(strstr(j, "\"format_version\":\"1.1\""));
	memcpy(strstr(j, "\"1.1\"") + 3, "0", 1);
	assert_int_equal(failures_parse(j, n, &f, &nf, &e), 0);
	assert_int_equal(nf, 0);
	assert_null(f);
	xfree(j);
	manifest_release(&m);
}

static void test_statcache_keeps_the_schema_of_undescribable_entries(void **state)
{
	(void)state;
	struct manifest m, back;
	struct err e;
	uint64_t ver;
	char *j;
	size_t n;
	err_init(&e);
	build(&m);
	assert_int_equal(statcache_dump(&m, 3, &j, &n, &e), 0);
	assert_int_equal(statcache_parse(j, n, &ver, &back, &e), 0);
	assert_int_equal(ver, 3);
	/* both were described with test-desc-1: one has descriptors, one cannot */
	assert_string_equal(back.entries[0].desc.schema, "test-desc-1");
	assert_string_equal(back.entries[1].desc.schema, "test-desc-1");
	/* and an entry never described has none */
	manifest_release(&back);
	xfree(j);
	xfree(m.entries[0].undesc.schema);
	m.entries[0].undesc.schema = NULL;
	assert_int_equal(statcache_dump(&m, 3, &j, &n, &e), 0);
	assert_int_equal(statcache_parse(j, n, &ver, &back, &e), 0);
	assert_null(back.entries[0].desc.schema);
	manifest_release(&back);
	xfree(j);
	manifest_release(&m);
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = xmalloc(1 << 20);
	*n = fread(buf, 1, (1 << 20) - 1, f);
	buf[*n] = '\0';
	fclose(f);
	return buf;
}

/* The fuzzing seeds are real documents written by refscan index. */
static void test_seed_documents_from_a_real_archive_parse(void **state)
{
	(void)state;
	struct err e;
	size_t n = 0;
	char *b;
	err_init(&e);
	b = slurp("tests/data/manifest/manifest.json", &n);
	if (!b)
		skip(); /* not run from the repository top */
	struct manifest m;
	assert_int_equal(manifest_parse(b, n, &m, &e), 0);
	assert_int_equal(m.n_entries, 2);
	assert_string_equal(m.entries[1].path, "lib/sub/a.ply");
	assert_string_equal(m.entries[1].units, "cm");
	assert_string_equal(m.entries[1].files[0].path, "lib/sub/a.meta.json");
	assert_string_equal(m.entries[1].desc.schema, "refscan-desc-2");
	assert_int_equal(m.n_failed, 1);
	/* a point-only OBJ: stored, without descriptors */
	assert_string_equal(m.entries[0].path, "lib/b.obj");
	assert_null(m.entries[0].desc.schema);
	assert_string_equal(m.entries[0].undesc.schema, "refscan-desc-2");
	assert_string_equal(m.entries[0].undesc.reason, "5 usable points, a descriptor needs 16");
	manifest_release(&m);
	xfree(b);

	struct head h;
	b = slurp("tests/data/manifest/HEAD.json", &n);
	assert_int_equal(head_parse(b, n, &h, &e), 0);
	assert_int_equal(h.version, 1);
	head_release(&h);
	xfree(b);

	struct volidx v;
	b = slurp("tests/data/manifest/volume-index.json", &n);
	assert_int_equal(volidx_parse(b, n, &v, &e), 0);
	assert_int_equal(v.n_blobs, 2); /* two identical scans, one sidecar: 2 blobs */
	volidx_release(&v);
	xfree(b);

	struct manifest_failure *f;
	size_t nf;
	b = slurp("tests/data/manifest/failures.json", &n);
	assert_int_equal(failures_parse(b, n, &f, &nf, &e), 0);
	assert_int_equal(nf, 1);
	assert_string_equal(f[0].path, "lib/c.ply");
	failures_free(f, nf);
	xfree(b);
	/* one written before 1.1 is dropped (see failures_parse) */
	b = slurp("tests/data/manifest/failures-1.0.json", &n);
	assert_int_equal(failures_parse(b, n, &f, &nf, &e), 0);
	assert_int_equal(nf, 0);
	xfree(b);
	/* a manifest written before 1.1 reads as before */
	b = slurp("tests/data/manifest/manifest-1.0.json", &n);
	assert_int_equal(manifest_parse(b, n, &m, &e), 0);
	assert_int_equal(m.n_entries, 2);
	assert_null(m.entries[0].undesc.schema);
	manifest_release(&m);
	xfree(b);

	uint64_t ver;
	b = slurp("tests/data/manifest/statcache.json", &n);
	assert_int_equal(statcache_parse(b, n, &ver, &m, &e), 0);
	assert_int_equal(ver, 1);
	assert_int_equal(m.n_entries, 2);
	assert_int_equal(m.entries[1].files[0].role, MANIFEST_ROLE_SIDECAR);
	manifest_release(&m);
	xfree(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_round_trips_byte_for_byte),
		cmocka_unit_test(test_manifest_refuses_a_newer_major_version),
		cmocka_unit_test(test_manifest_rejects_hostile_and_malformed_fields),
		cmocka_unit_test(test_manifest_fails_cleanly_on_every_truncation),
		cmocka_unit_test(test_manifest_parse_survives_every_allocation_failure),
		cmocka_unit_test(test_head_checks_its_invariants),
		cmocka_unit_test(test_volume_index_and_failures_round_trip),
		cmocka_unit_test(test_statcache_keeps_the_schema_of_undescribable_entries),
		cmocka_unit_test(test_seed_documents_from_a_real_archive_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
