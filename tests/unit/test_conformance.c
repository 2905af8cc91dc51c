/*
 * test_conformance.c - every scan in ../shared/data/conformance (real
 * files written by other people's tools) through scan_read_file.
 *
 * For each file: no crash and no hang (alarm); a valid file must give the
 * counts its own header or structure declares, found here by small
 * independent counters (PLY `element` lines, OFF header counts, binary
 * STL triangle count, `v` lines in OBJ, PCD POINTS, XYZ data lines); a file
 * listed in tests/data/conformance-expected.tsv as `fail` must be rejected
 * with a one-line error.  Prints a table and the agreement rate.
 * Skipped, with the reason printed, when the data folder is absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/mapfile.h"
#include "formats/formats.h"

#define MAX_EXPECT 512

struct expect {
	char path[1024]; /* relative to the conformance folder */
	char kind[16];   /* "fail" */
	char reason[256];
	int used;
};

static struct expect expects[MAX_EXPECT];
static size_t n_expects;
static char root[4096];
static size_t n_files, n_agree, n_disagree;

struct declared {
	long long vertices;  /* -1 when not declared */
	long long polygons;  /* faces as declared, -1 when unknown */
	long long triangles; /* -1 when unknown */
};

static void load_expectations(const char *path)
{
	FILE *fp = fopen(path, "r");
	char line[1024];
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char *t1 = strchr(line, '\t');
		if (!t1)
			continue;
		*t1++ = '\0';
		char *t2 = strchr(t1, '\t');
		if (t2)
			*t2++ = '\0';
		assert_true(n_expects < MAX_EXPECT);
		struct expect *x = &expects[n_expects++];
		snprintf(x->path, sizeof(x->path), "%s", line);
		snprintf(x->kind, sizeof(x->kind), "%s", t1);
		snprintf(x->reason, sizeof(x->reason), "%s", t2 ? t2 : "");
		x->reason[strcspn(x->reason, "\n")] = '\0';
		x->kind[strcspn(x->kind, "\n")] = '\0';
	}
	fclose(fp);
}

static struct expect *find_expect(const char *rel)
{
	for (size_t i = 0; i < n_expects; i++)
		if (!strcmp(expects[i].path, rel))
			return &expects[i];
	return NULL;
}

static const char *ext_of(const char *p)
{
	const char *s = strrchr(p, '/');
	const char *d = strrchr(s ? s : p, '.');
	return d ? d + 1 : "";
}

/* Next whitespace-separated token in [*p, end) skipping '#' comments. */
static int next_token(const char **p, const char *end, char *tok, size_t n)
{
	const char *q = *p;
	for (;;) {
		while (q < end && isspace((unsigned char)*q))
			q++;
		if (q < end && *q == '#') {
			while (q < end && *q != '\n')
				q++;
			continue;
		}
		break;
	}
	if (q >= end)
		return 0;
	size_t i = 0;
	while (q < end && !isspace((unsigned char)*q) && *q != '#') {
		if (i + 1 < n)
			tok[i++] = *q;
		q++;
	}
	tok[i] = '\0';
	*p = q;
	return 1;
}

static void declared_ply(const unsigned char *b, size_t len, struct declared *d)
{
	const char *p = (const char *)b, *end = p + len;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		long long n;
		if (sscanf(p, "element vertex %lld", &n) == 1)
			d->vertices = n;
		else if (sscanf(p, "element face %lld", &n) == 1)
			d->polygons = n;
		if (!strncmp(p, "end_header", 10))
			break;
		p = e + 1;
	}
}

static void declared_off(const unsigned char *b, size_t len, struct declared *d)
{
	const char *p = (const char *)b, *end = p + len;
	char tok[64];
	if (!next_token(&p, end, tok, sizeof(tok)))
		return;
	/* keyword, possibly glued to the first count ("OFF8") */
	const char *k = tok + strlen(tok);
	while (k > tok && isdigit((unsigned char)k[-1]))
		k--;
	long long v[2];
	int got = 0;
	if (*k && strstr(tok, "OFF") && k > tok) {
		v[got++] = atoll(k);
	} else if (!strstr(tok, "OFF")) {
		v[got++] = atoll(tok);
	}
	if (strstr(tok, "nOFF") && next_token(&p, end, tok, sizeof(tok)) &&
	    strcmp(tok, "3"))
		return;
	while (got < 2 && next_token(&p, end, tok, sizeof(tok)))
		v[got++] = atoll(tok);
	if (got == 2) {
		d->vertices = v[0];
		d->polygons = v[1];
	}
}

static void declared_stl(const unsigned char *b, size_t len, struct declared *d)
{
	if (len >= 84) {
		uint32_t n = (uint32_t)b[80] | (uint32_t)b[81] << 8 |
			     (uint32_t)b[82] << 16 | (uint32_t)b[83] << 24;
		/* exact size, or binary (a NUL byte) with trailing bytes */
		if (84 + 50 * (uint64_t)n == len ||
		    (memchr(b, 0, len) && 84 + 50 * (uint64_t)n <= len)) {
			d->triangles = n;
			return;
		}
	}
	long long facets = 0;
	const char *p = (const char *)b, *end = p + len;
	char tok[64];
	while (next_token(&p, end, tok, sizeof(tok)))
		if (!strcasecmp(tok, "endfacet"))
			facets++;
	d->triangles = facets;
}

static void declared_obj(const unsigned char *b, size_t len, struct declared *d)
{
	const char *p = (const char *)b, *end = p + len;
	long long v = 0, tris = 0;
	if (len >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF)
		p += 3;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		if (e - p > 2 && p[0] == 'v' && (p[1] == ' ' || p[1] == '\t'))
			v++;
		if (e - p > 2 && p[0] == 'f' && (p[1] == ' ' || p[1] == '\t')) {
			long long k = 0;
			const char *q = p + 1;
			for (;;) {
				int cont = 0;
				while (q < e) {
					while (q < e && isspace((unsigned char)*q))
						q++;
					if (q >= e)
						break;
					cont = *q == '\\';
					if (!cont)
						k++;
					while (q < e && !isspace((unsigned char)*q))
						q++;
				}
				/* a line ending in '\' goes on (Wavefront continuation) */
				if (!cont || e >= end)
					break;
				q = e + 1;
				e = memchr(q, '\n', (size_t)(end - q));
				if (!e)
					e = end;
			}
			if (k >= 3)
				tris += k - 2;
		}
		p = e + 1;
	}
	d->vertices = v;
	d->triangles = tris;
}

static void declared_pcd(const unsigned char *b, size_t len, struct declared *d)
{
	const char *p = (const char *)b, *end = p + len;
	long long w = -1, h = -1;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		long long n;
		if (sscanf(p, "POINTS %lld", &n) == 1)
			d->vertices = n;
		else if (sscanf(p, "WIDTH %lld", &n) == 1)
			w = n;
		else if (sscanf(p, "HEIGHT %lld", &n) == 1)
			h = n;
		if (!strncmp(p, "DATA", 4))
			break;
		p = e + 1;
	}
	if (d->vertices < 0 && w >= 0 && h >= 0)
		d->vertices = w * h;
}

static void declared_xyz(const unsigned char *b, size_t len, struct declared *d)
{
	const char *p = (const char *)b, *end = p + len;
	long long v = 0;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		int numbers = 0;
		const char *q = p;
		while (q < e) {
			while (q < e && (isspace((unsigned char)*q) || *q == ','))
				q++;
			if (q >= e)
				break;
			char *ep;
			strtod(q, &ep);
			if (ep == q)
				break;
			numbers++;
			q = ep;
		}
		if (numbers >= 3)
			v++;
		p = e + 1;
	}
	d->vertices = v;
}

static int is_off_name(const char *path, const unsigned char *b, size_t len)
{
	const char *x = ext_of(path);
	if (!strcasecmp(x, "off"))
		return 1;
	if (*x)
		return 0;
	/* Geomview keeps OFF files without an extension */
	size_t n = len < 8 ? len : 8;
	return memmem(b, n, "OFF", 3) != NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "conformance: a reader hung (alarm)\n";
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(2);
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type != FTW_F)
		return 0;
	const char *rel = path + strlen(root) + 1;
	const char *x = ext_of(path);
	struct mapfile m;
	struct err e;
	err_init(&e);
	if (mapfile_open(&m, path, &e) < 0)
		return 0;
	struct declared d = { -1, -1, -1 };
	int known = 1;
	if (!strcasecmp(x, "ply"))
		declared_ply(m.data, m.len, &d);
	else if (!strcasecmp(x, "obj"))
		declared_obj(m.data, m.len, &d);
	else if (!strcasecmp(x, "stl"))
		declared_stl(m.data, m.len, &d);
	else if (!strcasecmp(x, "pcd"))
		declared_pcd(m.data, m.len, &d);
	else if (!strcasecmp(x, "xyz") || !strcasecmp(x, "pts"))
		declared_xyz(m.data, m.len, &d);
	else if (is_off_name(path, m.data, m.len))
		declared_off(m.data, m.len, &d);
	else
		known = 0;
	mapfile_release(&m);
	if (!known)
		return 0;

	n_files++;
	struct expect *x_ = find_expect(rel);
	if (x_)
		x_->used = 1;
	int want_fail = x_ && !strcmp(x_->kind, "fail");
	struct scan s;
	alarm(30);
	int rc = scan_read_file(path, NULL, &s, &e);
	alarm(0);
	char why[512] = "";
	int agree;
	if (rc < 0) {
		char buf[ERR_PATH_MAX + 300];
		err_format(&e, buf, sizeof(buf));
		/* a clear error: one line, names the file, says something */
		int clear = e.msg[0] && !strchr(buf, '\n') && strstr(buf, path);
		agree = want_fail && clear;
		snprintf(why, sizeof(why), "error: %s", e.msg);
	} else if (want_fail) {
		agree = 0;
		snprintf(why, sizeof(why), "read (%zu vertices) but expected an error: %s",
			 s.n_vertices, x_->reason);
	} else {
		agree = 1;
		if (d.vertices >= 0 && (long long)s.n_vertices != d.vertices)
			agree = 0;
		if (d.polygons >= 0 && (long long)s.n_polygons != d.polygons)
			agree = 0;
		if (d.triangles >= 0 && (long long)s.n_faces != d.triangles)
			agree = 0;
		snprintf(why, sizeof(why),
			 "vertices %zu/%lld polygons %zu/%lld triangles %zu/%lld (read/declared)",
			 s.n_vertices, d.vertices, s.n_polygons, d.polygons,
			 s.n_faces, d.triangles);
	}
	scan_release(&s);
	if (agree)
		n_agree++;
	else
		n_disagree++;
	printf("%-8s %s  %s\n", agree ? "agree" : "DISAGREE", rel, why);
	return 0;
}

static void test_conformance_files_read_as_declared(void **state)
{
	(void)state;
	const char *data = getenv("REFSCAN_SHARED_DATA");
	const char *top = getenv("REFSCAN_TOP");
	char exp_path[4096];
	snprintf(root, sizeof(root), "%s/conformance", data ? data : "../shared/data");
	if (access(root, R_OK) != 0) {
		printf("conformance: skipped: %s is not present\n", root);
		skip();
	}
	snprintf(exp_path, sizeof(exp_path), "%s/tests/data/conformance-expected.tsv",
		 top ? top : ".");
	load_expectations(exp_path);
	signal(SIGALRM, on_alarm);
	assert_int_equal(nftw(root, visit, 16, FTW_PHYS), 0);
	printf("conformance: %zu files, %zu agree, %zu disagree, agreement %.1f%%\n",
	       n_files, n_agree, n_disagree,
	       n_files ? 100.0 * (double)n_agree / (double)n_files : 0.0);
	for (size_t i = 0; i < n_expects; i++)
		if (!expects[i].used)
			printf("conformance: note: expectation for missing file %s\n",
			       expects[i].path);
	assert_true(n_files > 0);
	assert_int_equal(n_disagree, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conformance_files_read_as_declared),
	};
	return cmocka_run_group_tests_name("conformance", tests, NULL, NULL);
}
