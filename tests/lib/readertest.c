/*
 * readertest.c - shared checks for the scan reader unit tests (see
 * readertest.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "tests/lib/readertest.h"

const char *readertest_top(void)
{
	const char *t = getenv("REFSCAN_TOP");
	return t && *t ? t : ".";
}

int readertest_load(const char *path, unsigned char **buf, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return -1;
	size_t cap = 4096, n = 0;
	unsigned char *b = malloc(cap);
	for (;;) {
		if (!b) {
			fclose(fp);
			return -1;
		}
		n += fread(b + n, 1, cap - n, fp);
		if (n < cap)
			break;
		cap *= 2;
		unsigned char *nb = realloc(b, cap);
		if (!nb)
			free(b);
		b = nb;
	}
	int bad = ferror(fp);
	fclose(fp);
	if (bad) {
		free(b);
		return -1;
	}
	*buf = b;
	*len = n;
	return 0;
}

static int code_of(const char *name)
{
	if (!strcmp(name, "ok"))
		return 0;
	if (!strcmp(name, "format"))
		return ERR_FORMAT;
	if (!strcmp(name, "limit"))
		return ERR_LIMIT;
	if (!strcmp(name, "unsupported"))
		return ERR_UNSUPPORTED;
	fail_msg("expected.tsv: unknown result '%s'", name);
	return 1;
}

#define MAX_ROWS 256

struct row {
	char path[256];
	int code;
	long long nv, nf, np;
	int seen;
};

static size_t check_dir(const char *dir, const char *sub, struct row *rows, size_t n_rows,
			format_read_fn read)
{
	char path[4096];
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char rel[512], full[4608];
		snprintf(rel, sizeof(rel), "%s/%s", sub, de->d_name);
		snprintf(full, sizeof(full), "%s/%s", dir, rel);
		unsigned char *buf;
		size_t len;
		assert_int_equal(readertest_load(full, &buf, &len), 0);
		struct scan s;
		struct err e;
		err_init(&e);
		int rc = read(buf, len, NULL, &s, &e);
		if (!strcmp(sub, "fuzz")) {
			/* a former crasher: any clean outcome */
			if (rc < 0 && !e.msg[0])
				fail_msg("%s: error %d without a message", rel, rc);
			printf("  replay %-40s %s\n", rel, rc < 0 ? e.msg : "read");
		} else {
			struct row *r = NULL;
			for (size_t i = 0; i < n_rows; i++)
				if (!strcmp(rows[i].path, rel))
					r = &rows[i];
			if (!r)
				fail_msg("%s is not listed in expected.tsv", rel);
			r->seen = 1;
			if (rc != r->code)
				fail_msg("%s: got %d (%s), expected %d", rel, rc, e.msg, r->code);
			if (rc == 0 && ((long long)s.n_vertices != r->nv ||
					(long long)s.n_faces != r->nf ||
					(long long)s.n_polygons != r->np))
				fail_msg("%s: read %zu/%zu/%zu vertices/faces/polygons, expected %lld/%lld/%lld",
					 rel, s.n_vertices, s.n_faces, s.n_polygons, r->nv, r->nf, r->np);
			if (rc < 0 && !e.msg[0])
				fail_msg("%s: error without a message", rel);
		}
		scan_release(&s);
		free(buf);
		n++;
	}
	closedir(d);
	return n;
}

size_t readertest_replay(const char *fmt, format_read_fn read)
{
	static struct row rows[MAX_ROWS];
	char dir[4096], tsv[4200], line[1024];
	size_t n_rows = 0;
	snprintf(dir, sizeof(dir), "%s/tests/data/%s", readertest_top(), fmt);
	snprintf(tsv, sizeof(tsv), "%s/expected.tsv", dir);
	FILE *fp = fopen(tsv, "r");
	if (!fp)
		fail_msg("cannot open %s", tsv);
	while (fgets(line, sizeof(line), fp)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char path[256], code[32];
		long long nv = -1, nf = -1, np = -1;
		int got = sscanf(line, "%255s %31s %lld %lld %lld", path, code, &nv, &nf, &np);
		assert_true(got == 2 || got == 5);
		assert_true(n_rows < MAX_ROWS);
		struct row *r = &rows[n_rows++];
		snprintf(r->path, sizeof(r->path), "%s", path);
		r->code = code_of(code);
		r->nv = nv;
		r->nf = nf;
		r->np = np;
		r->seen = 0;
	}
	fclose(fp);
	size_t n = check_dir(dir, "good", rows, n_rows, read) +
		   check_dir(dir, "bad", rows, n_rows, read) +
		   check_dir(dir, "fuzz", rows, n_rows, read);
	for (size_t i = 0; i < n_rows; i++)
		if (!rows[i].seen)
			fail_msg("expected.tsv lists %s, which does not exist", rows[i].path);
	return n;
}

size_t readertest_truncation_sweep(format_read_fn read, const unsigned char *buf,
				   size_t len)
{
	struct scan s;
	struct err e;
	for (size_t k = 0; k < len; k++) {
		unsigned char *p = malloc(k ? k : 1);
		assert_non_null(p);
		memcpy(p, buf, k);
		err_init(&e);
		int rc = read(p, k, NULL, &s, &e);
		if (rc == 0)
			fail_msg("prefix of %zu of %zu bytes was read as a scan", k, len);
		assert_true(rc < 0);
		assert_true(e.msg[0] != '\0');
		assert_int_equal(s.n_vertices, 0);
		assert_null(s.positions);
		free(p);
	}
	unsigned char *p = malloc(len);
	assert_non_null(p);
	memcpy(p, buf, len);
	err_init(&e);
	int rc = read(p, len, NULL, &s, &e);
	if (rc != 0)
		fail_msg("whole input failed: %s", e.msg);
	scan_release(&s);
	free(p);
	return len;
}

long readertest_oom_sweep(format_read_fn read, const unsigned char *buf, size_t len)
{
	struct scan s;
	struct err e;
	for (long n = 0;; n++) {
		err_init(&e);
		alloc_fail_after(n);
		int rc = read(buf, len, NULL, &s, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			scan_release(&s);
			return n;
		}
		if (rc != ERR_NOMEM)
			fail_msg("allocation %ld failed: got %d (%s), expected ERR_NOMEM", n, rc, e.msg);
		assert_true(e.msg[0] != '\0');
		assert_int_equal(s.n_vertices, 0);
		assert_null(s.positions);
		assert_null(s.indices);
		assert_int_equal(s.n_warnings, 0);
		assert_true(n < 100000);
	}
}
