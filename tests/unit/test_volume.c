/*
 * test_volume.c - formats/volume.c: deterministic pax tar + zstd volumes,
 * reading them back, files that change while being copied, truncated
 * volumes, and the secure extraction helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/sha256.h"
#include "formats/volume.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/refscan-test-volume-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

struct blob {
	const char *data;
	unsigned char d[SHA256_LEN];
};

static struct blob blobs[3] = {
	{ "ply\nformat ascii 1.0\nend_header\n", { 0 } },
	{ "a texture, pretend", { 0 } },
	{ "{\"material\":\"skin\"}\n", { 0 } },
};

static int cmp_blob(const void *a, const void *b)
{
	return memcmp(((const struct blob *)a)->d, ((const struct blob *)b)->d, SHA256_LEN);
}

/* Write the three blobs, in digest order, to path. */
static void write_volume(const char *path, struct volume_info *info)
{
	struct volume_writer *w;
	struct err e;
	err_init(&e);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(sha256_buffer(blobs[i].data, strlen(blobs[i].data), blobs[i].d, &e), 0);
	qsort(blobs, 3, sizeof(blobs[0]), cmp_blob);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(volume_writer_open(&w, fd, NULL, &e), 0);
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(blobs[i].data);
		assert_int_equal(volume_writer_begin(w, blobs[i].d, n, &e), 0);
		assert_int_equal(volume_writer_write(w, blobs[i].data, n, &e), 0);
		assert_int_equal(volume_writer_end(w, &e), 0);
	}
	assert_int_equal(volume_writer_finish(w, info, &e), 0);
	volume_writer_free(&w);
	assert_null(w);
	close(fd);
}

static unsigned char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	unsigned char *buf = malloc(1 << 20);
	*n = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static void test_volume_blob_name_round_trips_and_rejects_lookalikes(void **state)
{
	(void)state;
	unsigned char d[SHA256_LEN], back[SHA256_LEN];
	char name[VOLUME_BLOB_NAME_LEN];
	struct err e;
	err_init(&e);
	assert_int_equal(sha256_buffer("x", 1, d, &e), 0);
	volume_blob_name(d, name);
	assert_string_equal(name, "blobs/2d/2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
	assert_true(volume_parse_blob_name(name, back));
	assert_memory_equal(d, back, SHA256_LEN);
	static const char *bad[] = {
		"blobs/2e/2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
		"blobs/2D/2D711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
		"blobs/2d/2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a488",
		"blobs/2d/2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a48811",
		"../blobs/2d/2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
		"/blobs/2d/2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
		"blobs/2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
		"blobs/", "", "../evil.txt",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(volume_parse_blob_name(bad[i], back));
	assert_false(volume_parse_blob_name(NULL, back));
}

static void test_volume_path_safe_rejects_escapes(void **state)
{
	(void)state;
	static const char *good[] = { "a", "lib/skin/hand.ply", "a/b.c/d", ".hidden/x", "a..b/c" };
	static const char *bad[] = { "", "/abs", "../x", "a/../../x", "a/..", "..", ".", "./a",
				     "a//b", "a/./b", "a/", "a\\..\\b", "c:\\x\\..\\y" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(volume_path_safe(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(volume_path_safe(bad[i]));
	char longp[5000];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_false(volume_path_safe(longp));
	assert_false(volume_path_safe(NULL));
}

static void test_volume_writer_is_deterministic(void **state)
{
	(void)state;
	char p1[300], p2[300];
	struct volume_info i1, i2;
	size_t n1, n2;
	snprintf(p1, sizeof(p1), "%s/a.tar.zst", tmpdir);
	snprintf(p2, sizeof(p2), "%s/b.tar.zst", tmpdir);
	write_volume(p1, &i1);
	write_volume(p2, &i2);
	unsigned char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	assert_int_equal(i1.size, n1);
	assert_int_equal(i1.n_blobs, 3);
	assert_int_equal(i1.blob_bytes, strlen(blobs[0].data) + strlen(blobs[1].data) + strlen(blobs[2].data));
	/* the digest the writer computed on the fly is the file's */
	unsigned char d[SHA256_LEN];
	struct err e;
	err_init(&e);
	assert_int_equal(sha256_buffer(b1, n1, d, &e), 0);
	assert_memory_equal(d, i1.sha256, SHA256_LEN);
	/* a zstd frame, no padding after it */
	assert_int_equal(b1[0], 0x28);
	assert_int_equal(b1[1], 0xb5);
	free(b1);
	free(b2);
}

static void test_volume_writer_rejects_unsorted_and_repeated_blobs(void **state)
{
	(void)state;
	char p[300];
	struct volume_writer *w;
	struct err e;
	unsigned char lo[SHA256_LEN] = { 1 }, hi[SHA256_LEN] = { 2 };
	err_init(&e);
	snprintf(p, sizeof(p), "%s/order.tar.zst", tmpdir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(volume_writer_open(&w, fd, NULL, &e), 0);
	assert_int_equal(volume_writer_begin(w, hi, 1, &e), 0);
	assert_int_equal(volume_writer_write(w, "x", 1, &e), 0);
	assert_int_equal(volume_writer_write(w, "y", 1, &e), ERR_INTERNAL); /* past its size */
	assert_int_equal(volume_writer_end(w, &e), 0);
	assert_int_equal(volume_writer_begin(w, lo, 1, &e), ERR_INTERNAL);
	assert_int_equal(volume_writer_begin(w, hi, 1, &e), ERR_INTERNAL);
	assert_non_null(strstr(e.msg, "out of order or repeated"));
	volume_writer_free(&w);
	close(fd);
}

static void test_volume_reader_returns_every_blob_with_its_digest(void **state)
{
	(void)state;
	char p[300];
	struct volume_info info;
	struct volume_reader *r;
	struct volume_entry ent;
	struct err e;
	err_init(&e);
	snprintf(p, sizeof(p), "%s/read.tar.zst", tmpdir);
	write_volume(p, &info);
	assert_int_equal(volume_reader_open(&r, p, &e), 0);
	size_t n = 0;
	int rc;
	while ((rc = volume_reader_next(r, &ent, &e)) > 0) {
		unsigned char got[SHA256_LEN];
		uint64_t size;
		assert_true(ent.is_blob);
		assert_int_equal(ent.index, n);
		assert_memory_equal(ent.digest, blobs[n].d, SHA256_LEN);
		assert_int_equal(ent.size, strlen(blobs[n].data));
		assert_int_equal(volume_reader_hash(r, got, &size, &e), 0);
		assert_memory_equal(got, blobs[n].d, SHA256_LEN);
		assert_int_equal(size, ent.size);
		n++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(n, 3);
	volume_reader_free(&r);
	assert_null(r);
	assert_int_equal(volume_reader_open(&r, "/nonexistent/v.tar.zst", &e), ERR_NOTFOUND);
}

static void test_volume_reader_fails_cleanly_on_every_truncation(void **state)
{
	(void)state;
	char p[300], q[300];
	struct volume_info info;
	size_t len;
	snprintf(p, sizeof(p), "%s/full.tar.zst", tmpdir);
	snprintf(q, sizeof(q), "%s/prefix.tar.zst", tmpdir);
	write_volume(p, &info);
	unsigned char *full = slurp(p, &len);
	for (size_t cut = 0; cut <= len; cut++) {
		FILE *f = fopen(q, "wb");
		assert_int_equal(fwrite(full, 1, cut, f), cut);
		fclose(f);
		struct volume_reader *r;
		struct volume_entry ent;
		struct err e;
		err_init(&e);
		size_t good = 0;
		int rc = volume_reader_open(&r, q, &e);
		while (rc >= 0 && (rc = volume_reader_next(r, &ent, &e)) > 0) {
			unsigned char got[SHA256_LEN];
			uint64_t n;
			if ((rc = volume_reader_hash(r, got, &n, &e)) < 0)
				break;
			if (ent.is_blob && !memcmp(got, ent.digest, SHA256_LEN) && n == ent.size)
				good++;
		}
		volume_reader_free(&r);
		if (cut == len) {
			assert_int_equal(rc, 0);
			assert_int_equal(good, 3);
		} else {
			/* a prefix never yields all blobs intact without an error */
			assert_true(rc < 0 || good < 3);
			if (rc < 0)
				assert_true(e.msg[0] != '\0');
		}
	}
	free(full);
}

static void test_volume_add_fd_reports_a_file_that_changed(void **state)
{
	(void)state;
	char src[300], p[300];
	struct volume_writer *w;
	struct volume_info info;
	struct err e;
	unsigned char want[SHA256_LEN], got[SHA256_LEN], d2[SHA256_LEN];
	err_init(&e);
	snprintf(src, sizeof(src), "%s/src.bin", tmpdir);
	snprintf(p, sizeof(p), "%s/fd.tar.zst", tmpdir);
	FILE *f = fopen(src, "wb");
	fputs("0123456789", f);
	fclose(f);
	assert_int_equal(sha256_buffer("0123456789", 10, want, &e), 0);
	memset(d2, 0xff, sizeof(d2));
	int out = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(volume_writer_open(&w, out, NULL, &e), 0);
	/* the same file, announced 15 bytes long: it "shrank" */
	int in = open(src, O_RDONLY);
	assert_int_equal(volume_writer_add_fd(w, want, 15, in, got, &e), 0);
	assert_memory_not_equal(got, want, SHA256_LEN);
	close(in);
	/* announced 4 bytes long: it "grew" */
	in = open(src, O_RDONLY);
	assert_int_equal(volume_writer_add_fd(w, d2, 4, in, got, &e), 0);
	assert_memory_not_equal(got, d2, SHA256_LEN);
	close(in);
	assert_int_equal(volume_writer_finish(w, &info, &e), 0);
	volume_writer_free(&w);
	close(out);
	/* the tar stays well-formed: both entries read back at their sizes */
	struct volume_reader *r;
	struct volume_entry ent;
	assert_int_equal(volume_reader_open(&r, p, &e), 0);
	assert_int_equal(volume_reader_next(r, &ent, &e), 1);
	assert_int_equal(ent.size, 15);
	assert_int_equal(volume_reader_next(r, &ent, &e), 1);
	assert_int_equal(ent.size, 4);
	assert_int_equal(volume_reader_next(r, &ent, &e), 0);
	volume_reader_free(&r);
}

static void test_volume_disk_refuses_paths_leaving_the_destination(void **state)
{
	(void)state;
	char dest[300], outside[300], cwd[4096];
	struct volume_disk *d;
	struct err e;
	err_init(&e);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(dest, sizeof(dest), "%s/dest", tmpdir);
	snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
	assert_int_equal(mkdir(dest, 0755), 0);
	assert_int_equal(mkdir(outside, 0755), 0);
	assert_int_equal(chdir(dest), 0);
	assert_int_equal(symlink(outside, "link"), 0);
	assert_int_equal(volume_disk_open(&d, &e), 0);

	assert_int_equal(volume_disk_begin(d, "../escape.txt", 1, 0644, 0, &e), ERR_FORMAT);
	assert_int_equal(volume_disk_begin(d, outside, 1, 0644, 0, &e), ERR_FORMAT);
	assert_int_equal(volume_disk_begin(d, "a/../../escape.txt", 1, 0644, 0, &e), ERR_FORMAT);
	/* not our check: libarchive's ARCHIVE_EXTRACT_SECURE_SYMLINKS */
	assert_true(volume_path_safe("link/through.txt"));
	assert_int_equal(volume_disk_begin(d, "link/through.txt", 1, 0644, 0, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "refused"));

	int64_t mtime = (int64_t)1000000000 * 1000000000 + 5;
	assert_int_equal(volume_disk_begin(d, "ok/dir/file.txt", 5, 0640, mtime, &e), 0);
	assert_int_equal(volume_disk_write(d, "hello", 5, &e), 0);
	assert_int_equal(volume_disk_end(d, &e), 0);
	volume_disk_free(&d);
	assert_int_equal(chdir(cwd), 0);

	char path[400];
	struct stat st;
	snprintf(path, sizeof(path), "%s/ok/dir/file.txt", dest);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 5);
	assert_int_equal(st.st_mtim.tv_sec, 1000000000);
	snprintf(path, sizeof(path), "%s/through.txt", outside);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/escape.txt", tmpdir);
	assert_int_equal(stat(path, &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_volume_blob_name_round_trips_and_rejects_lookalikes),
		cmocka_unit_test(test_volume_path_safe_rejects_escapes),
		cmocka_unit_test(test_volume_writer_is_deterministic),
		cmocka_unit_test(test_volume_writer_rejects_unsorted_and_repeated_blobs),
		cmocka_unit_test(test_volume_reader_returns_every_blob_with_its_digest),
		cmocka_unit_test(test_volume_reader_fails_cleanly_on_every_truncation),
		cmocka_unit_test(test_volume_add_fd_reports_a_file_that_changed),
		cmocka_unit_test(test_volume_disk_refuses_paths_leaving_the_destination),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
