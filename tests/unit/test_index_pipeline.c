/*
 * test_index_pipeline.c - indexer/index.c through index_run(): the
 * describe and build_index hooks (run in parallel, stored as blobs,
 * redone when the schema changes), failures from a hook, scans too thin
 * to describe (stored without descriptors, warned about once), and
 * output that does not depend on the number of threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "formats/scan.h"
#include "indexer/archive.h"
#include "indexer/index.h"

static char tmpdir[256];

static void put(const char *rel, const char *text)
{
	char path[512], cmd[600];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* An ascii PLY with n_v vertices on a line and one triangle. */
static void put_ply(const char *rel, int n_v, int seed)
{
	char buf[4096];
	int k = snprintf(buf, sizeof(buf),
			 "ply\nformat ascii 1.0\nelement vertex %d\nproperty float x\nproperty float y\n"
			 "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n",
			 n_v);
	for (int i = 0; i < n_v; i++)
		k += snprintf(buf + k, sizeof(buf) - (size_t)k, "%d %d %d\n", i, (i * seed) % 7, i % 2);
	snprintf(buf + k, sizeof(buf) - (size_t)k, "3 0 1 2\n");
	put(rel, buf);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/refscan-test-index-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	put_ply("lib/a.ply", 4, 1);
	put_ply("lib/sub/b.ply", 5, 2);
	put_ply("lib/sub/c.ply", 6, 3);
	put("lib/sub/c.ply.meta.json", "{\"material\":\"stone\"}\n");
	setenv("REFSCAN_NOW", "1700000000", 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- test hooks -------------------------------------------------------- */

struct hook_ctx {
	_Atomic int calls;
	int index_calls;
	const char *fail_substring;
	const char *thin_substring;  /* these scans are too thin to describe */
};

static int describe(void *ctx, struct scan *s, struct manifest_entry *en,
		    unsigned char **out, size_t *len, struct err *e)
{
	struct hook_ctx *c = ctx;
	atomic_fetch_add(&c->calls, 1);
	if (c->fail_substring && strstr(en->path, c->fail_substring))
		return err_set(e, ERR_FORMAT, "degenerate surface: cannot describe");
	if (c->thin_substring && strstr(en->path, c->thin_substring))
		return err_set(e, ERR_UNDESCRIBABLE, "3 usable points, a descriptor needs 16");
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "v=%zu units=%s", s->n_vertices, en->units);
	*out = xmalloc((size_t)n);
	memcpy(*out, buf, (size_t)n);
	*len = (size_t)n;
	return 0;
}

static int build_index(void *ctx, struct archive_dir *a, const struct manifest *m,
		       const char *tmp_path, const char **schema, struct err *e)
{
	struct hook_ctx *c = ctx;
	c->index_calls++;
	FILE *f = fopen(tmp_path, "w");
	if (!f)
		return err_set_errno(e, ERR_IO, "cannot create the index");
	/* every descriptor is readable, including this run's new ones */
	for (size_t i = 0; i < m->n_entries; i++) {
		unsigned char *d;
		size_t n;
		if (!m->entries[i].desc.schema)
			continue; /* too thin to describe: not indexed */
		int rc = archive_dir_read_blob(a, m->entries[i].desc.blob, 1024, &d, &n, e);
		if (rc < 0) {
			fclose(f);
			return rc;
		}
		fprintf(f, "%s %.*s\n", m->entries[i].path, (int)n, (const char *)d);
		xfree(d);
	}
	fclose(f);
	*schema = "test-index-1";
	return 0;
}

static int run_index(const char *archive, int jobs, const struct index_hooks *h,
		     struct index_result *r)
{
	struct index_options o;
	struct err e;
	char src[300];
	char *srcs[1] = { src };
	snprintf(src, sizeof(src), "%s/lib", tmpdir);
	index_options_init(&o);
	o.archive = archive;
	o.sources = srcs;
	o.n_sources = 1;
	o.jobs = jobs;
	err_init(&e);
	int rc = index_run(&o, h, r, &e);
	if (rc < 0)
		fprintf(stderr, "index_run: %s\n", e.msg);
	return rc;
}

static void load_head_manifest(const char *archive, struct archive_dir *a, struct manifest *m)
{
	struct err e;
	err_init(&e);
	assert_int_equal(archive_dir_open(a, archive, 0, &e), 0);
	assert_int_equal(archive_dir_load_manifest(a, a->head.version, m, &e), 0);
}

static void test_describe_runs_per_scan_and_is_stored_as_a_blob(void **state)
{
	(void)state;
	char archive[300];
	struct hook_ctx ctx = { 0 };
	struct index_hooks h = { "test-desc-1", describe, build_index, &ctx };
	struct index_result r;
	snprintf(archive, sizeof(archive), "%s/a1", tmpdir);

	assert_int_equal(run_index(archive, 2, &h, &r), 0);
	assert_true(r.committed);
	assert_int_equal(r.added, 3);
	assert_int_equal(r.n_failed, 0);
	/* 3 scans + 1 sidecar + 3 descriptors */
	assert_int_equal(r.new_blobs, 7);
	index_result_release(&r);
	assert_int_equal(ctx.calls, 3);
	assert_int_equal(ctx.index_calls, 1);

	struct archive_dir a;
	struct manifest m;
	struct err e;
	err_init(&e);
	load_head_manifest(archive, &a, &m);
	assert_int_equal(m.n_entries, 3);
	const struct manifest_entry *c = manifest_find(&m, "lib/sub/c.ply");
	assert_non_null(c);
	assert_string_equal(c->desc.schema, "test-desc-1");
	unsigned char *d;
	size_t n;
	assert_int_equal(archive_dir_read_blob(&a, c->desc.blob, 1024, &d, &n, &e), 0);
	assert_int_equal(n, c->desc.size);
	assert_memory_equal(d, "v=6 units=mm", n);
	xfree(d);
	/* the per-version index file is in place and recorded */
	assert_string_equal(m.index.file, "00000001.index");
	assert_string_equal(m.index.schema, "test-index-1");
	char path[400];
	snprintf(path, sizeof(path), "%s/versions/00000001.index", archive);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[128];
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "lib/a.ply v=4 units=mm\n");
	fclose(f);
	manifest_release(&m);
	archive_dir_release(&a);

	/* unchanged: nothing described again, nothing committed */
	assert_int_equal(run_index(archive, 2, &h, &r), 0);
	assert_false(r.committed);
	assert_int_equal(r.unchanged, 3);
	index_result_release(&r);
	assert_int_equal(ctx.calls, 3);

	/* a new schema: every entry is described again, no scan bytes stored */
	struct index_hooks h2 = { "test-desc-2", describe, build_index, &ctx };
	assert_int_equal(run_index(archive, 2, &h2, &r), 0);
	assert_true(r.committed);
	assert_int_equal(r.redescribed, 3);
	assert_int_equal(r.changed, 0);
	assert_int_equal(r.added, 0);
	assert_int_equal(r.new_blobs, 0); /* same descriptor bytes: already stored */
	index_result_release(&r);
	assert_int_equal(ctx.calls, 6);
	load_head_manifest(archive, &a, &m);
	assert_string_equal(manifest_find(&m, "lib/a.ply")->desc.schema, "test-desc-2");
	manifest_release(&m);
	archive_dir_release(&a);
}

static void test_a_failing_describe_fails_only_that_scan(void **state)
{
	(void)state;
	char archive[300];
	struct hook_ctx ctx = { .fail_substring = "sub/b.ply" };
	struct index_hooks h = { "test-desc-1", describe, NULL, &ctx };
	struct index_result r;
	snprintf(archive, sizeof(archive), "%s/a2", tmpdir);
	assert_int_equal(run_index(archive, 2, &h, &r), 0);
	assert_true(r.committed);
	assert_int_equal(r.added, 2);
	assert_int_equal(r.n_failed, 1);
	assert_string_equal(r.failed[0].archive_path, "lib/sub/b.ply");
	assert_non_null(strstr(r.failed[0].err.msg, "cannot describe"));
	index_result_release(&r);
	struct archive_dir a;
	struct manifest m;
	load_head_manifest(archive, &a, &m);
	assert_int_equal(m.n_entries, 2);
	assert_null(manifest_find(&m, "lib/sub/b.ply"));
	assert_int_equal(m.n_failed, 1);
	manifest_release(&m);
	archive_dir_release(&a);
}

/* The lines of the test index file of the archive's version v. */
static int index_lines(const char *archive, int v)
{
	char path[400], line[128];
	int n = 0;
	snprintf(path, sizeof(path), "%s/versions/%08d.index", archive, v);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

/* Run index with h: it must finish, commit or not, fail nothing, warn n times. */
static void run_expect(const char *archive, const struct index_hooks *h, bool committed,
		       size_t n_warnings, struct index_result *r)
{
	assert_int_equal(run_index(archive, 2, h, r), 0);
	assert_int_equal(r->committed, committed);
	assert_int_equal(r->n_failed, 0);
	assert_int_equal(r->n_warnings, n_warnings);
}

/*
 * How HEAD's entry for path is described, in buf: "descriptors SCHEMA",
 * "undescribable SCHEMA: REASON" or "none".
 */
static const char *described(const char *archive, const char *path, char *buf, size_t n)
{
	struct archive_dir a;
	struct manifest m;
	load_head_manifest(archive, &a, &m);
	const struct manifest_entry *en = manifest_find(&m, path);
	assert_non_null(en);
	if (en->desc.schema)
		snprintf(buf, n, "descriptors %s", en->desc.schema);
	else if (en->undesc.schema)
		snprintf(buf, n, "undescribable %s: %s", en->undesc.schema, en->undesc.reason);
	else
		snprintf(buf, n, "none");
	manifest_release(&m);
	archive_dir_release(&a);
	return buf;
}

static void test_a_scan_too_thin_to_describe_is_stored_without_descriptors(void **state)
{
	(void)state;
	char archive[300], path[400], buf[200];
	struct hook_ctx ctx = { .thin_substring = "sub/b.ply" };
	struct index_hooks h = { "test-desc-1", describe, build_index, &ctx };
	struct index_result r;
	snprintf(archive, sizeof(archive), "%s/a3", tmpdir);

	/* stored and counted like any other scan, not a failure, said once */
	run_expect(archive, &h, true, 1, &r);
	assert_int_equal(r.added, 3);
	assert_int_equal(r.new_blobs, 6); /* 3 scans + 1 sidecar + 2 descriptors */
	assert_string_equal(r.warnings[0].archive_path, "lib/sub/b.ply");
	snprintf(path, sizeof(path), "%s/lib/sub/b.ply", tmpdir);
	assert_string_equal(r.warnings[0].path, path);
	assert_int_equal(r.warnings[0].code, ERR_UNDESCRIBABLE);
	assert_string_equal(r.warnings[0].message, "not searchable: 3 usable points, a descriptor needs 16");
	index_result_release(&r);
	assert_int_equal(ctx.calls, 3);
	assert_string_equal(described(archive, "lib/sub/b.ply", buf, sizeof(buf)),
			    "undescribable test-desc-1: 3 usable points, a descriptor needs 16");
	assert_string_equal(described(archive, "lib/a.ply", buf, sizeof(buf)), "descriptors test-desc-1");
	/* its bytes are stored; it is left out of the index */
	struct archive_dir a;
	struct manifest m;
	struct err e;
	unsigned char *d;
	size_t n;
	err_init(&e);
	load_head_manifest(archive, &a, &m);
	assert_int_equal(m.counts.added, 3);
	const struct manifest_entry *b = manifest_find(&m, "lib/sub/b.ply");
	assert_int_equal(archive_dir_read_blob(&a, b->blob, 1 << 20, &d, &n, &e), 0);
	assert_int_equal(n, b->size);
	xfree(d);
	manifest_release(&m);
	archive_dir_release(&a);
	assert_int_equal(index_lines(archive, 1), 2);

	/* unchanged: not described again, no warning, no version */
	run_expect(archive, &h, false, 0, &r);
	assert_int_equal(r.unchanged, 3);
	index_result_release(&r);
	/* the same from the full manifest, without the stat cache */
	snprintf(path, sizeof(path), "%s/statcache.json", archive);
	assert_int_equal(unlink(path), 0);
	run_expect(archive, &h, false, 0, &r);
	assert_int_equal(r.unchanged, 3);
	index_result_release(&r);
	/* same bytes, new mtime: touched, still marked, not described again */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "touch -d '2001-02-03 04:05:06' '%s/lib/sub/b.ply'", tmpdir);
	assert_int_equal(system(cmd), 0);
	run_expect(archive, &h, true, 0, &r);
	assert_int_equal(r.touched, 1);
	index_result_release(&r);
	assert_int_equal(ctx.calls, 3);
	assert_string_equal(described(archive, "lib/sub/b.ply", buf, sizeof(buf)),
			    "undescribable test-desc-1: 3 usable points, a descriptor needs 16");

	/* a new schema may describe it: it is tried again, and warned about again */
	struct index_hooks h2 = { "test-desc-2", describe, build_index, &ctx };
	run_expect(archive, &h2, true, 1, &r);
	assert_int_equal(r.redescribed, 3);
	index_result_release(&r);
	assert_int_equal(ctx.calls, 6);
	assert_string_equal(described(archive, "lib/sub/b.ply", buf, sizeof(buf)),
			    "undescribable test-desc-2: 3 usable points, a descriptor needs 16");

	/* when it can be described after all, it gains descriptors */
	ctx.thin_substring = NULL;
	struct index_hooks h3 = { "test-desc-3", describe, build_index, &ctx };
	run_expect(archive, &h3, true, 0, &r);
	index_result_release(&r);
	assert_string_equal(described(archive, "lib/sub/b.ply", buf, sizeof(buf)), "descriptors test-desc-3");
	assert_int_equal(index_lines(archive, 4), 3);
}

static void test_output_does_not_depend_on_thread_count(void **state)
{
	(void)state;
	char a1[300], a2[300], cmd[2048];
	struct hook_ctx ctx = { 0 };
	struct index_hooks h = { "test-desc-1", describe, NULL, &ctx };
	struct index_result r;
	snprintf(a1, sizeof(a1), "%s/t1", tmpdir);
	snprintf(a2, sizeof(a2), "%s/t4", tmpdir);
	assert_int_equal(run_index(a1, 1, &h, &r), 0);
	index_result_release(&r);
	assert_int_equal(run_index(a2, 4, &h, &r), 0);
	index_result_release(&r);
	snprintf(cmd, sizeof(cmd),
		 "cmp -s '%s/versions/00000001.json' '%s/versions/00000001.json' && "
		 "cmp -s '%s/volumes/00000001.tar.zst' '%s/volumes/00000001.tar.zst' && "
		 "cmp -s '%s/HEAD' '%s/HEAD'",
		 a1, a2, a1, a2, a1, a2);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe_runs_per_scan_and_is_stored_as_a_blob),
		cmocka_unit_test(test_a_failing_describe_fails_only_that_scan),
		cmocka_unit_test(test_a_scan_too_thin_to_describe_is_stored_without_descriptors),
		cmocka_unit_test(test_output_does_not_depend_on_thread_count),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
