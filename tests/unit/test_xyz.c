/*
 * test_xyz.c - the XYZ/PTS/TXT point list reader: column layouts and how
 * they are detected, CSV, PTS count lines, comments, errors naming the
 * line, limits, the weak probe that must not steal other formats, an
 * out-of-memory sweep, fuzz fixtures, and the real point sets when
 * REFSCAN_SHARED_DATA is present.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/mapfile.h"
#include "formats/formats.h"

static int read_text(const char *text, struct scan *s, struct err *e)
{
	err_init(e);
	return xyz_read((const unsigned char *)text, strlen(text), NULL, s, e);
}

static void expect_error(const char *text, int code, long line, const char *needle)
{
	struct scan s;
	struct err e;
	int rc = read_text(text, &s, &e);
	if (rc != code || e.line != line || !strstr(e.msg, needle))
		fail_msg("got rc %d line %ld '%s', want rc %d line %ld '%s'",
			 rc, e.line, e.msg, code, line, needle);
	assert_int_equal(s.n_vertices, 0);
	assert_null(s.positions);
}

static void test_xyz_three_columns_are_positions(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_text("1 2 3\n-4.5 5e2 .25\n7\t8\t9", &s, &e), 0);
	assert_string_equal(s.format, "xyz");
	assert_int_equal(s.n_vertices, 3);
	assert_int_equal(s.n_faces, 0);
	const float want[9] = { 1, 2, 3, -4.5f, 500, 0.25f, 7, 8, 9 };
	assert_memory_equal(s.positions, want, sizeof(want));
	assert_null(s.normals);
	assert_null(s.colors);
	assert_string_equal(scan_meta_get(&s, "columns"), "x y z");
	assert_float_equal(s.bbox_max[1], 500, 0);
	scan_release(&s);
}

static void test_xyz_six_unit_columns_are_normals(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_text("0 0 0 0 0 1\n1 1 1 0.6 0.8 0\n2 2 2 0 0 0\n", &s, &e), 0);
	assert_non_null(s.normals);
	assert_null(s.colors);
	assert_float_equal(s.normals[2], 1, 0);
	assert_float_equal(s.normals[4], 0.8f, 0);
	assert_string_equal(scan_meta_get(&s, "columns"), "x y z nx ny nz");
	scan_release(&s);
}

static void test_xyz_six_columns_in_byte_range_are_colours(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	/* the first line would pass as a normal; the second cannot */
	assert_int_equal(read_text("0 0 0 0 0 1\n1 1 1 255 128 7\n", &s, &e), 0);
	assert_null(s.normals);
	assert_non_null(s.colors);
	const uint8_t want[8] = { 0, 0, 1, 255, 255, 128, 7, 255 };
	assert_memory_equal(s.colors, want, 8);
	assert_string_equal(scan_meta_get(&s, "columns"), "x y z r g b");
	scan_release(&s);
}

static void test_xyz_float_colours_in_unit_range_are_scaled(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_text("0 0 0 0.5 1.0 0\n1 1 1 0.2 0.2 0.2\n", &s, &e), 0);
	assert_non_null(s.colors);
	const uint8_t want[8] = { 128, 255, 0, 255, 51, 51, 51, 255 };
	assert_memory_equal(s.colors, want, 8);
	scan_release(&s);
}

static void test_xyz_unknown_six_columns_keep_positions_with_warning(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_text("0 0 0 -5 300 2\n1 1 1 -5 300 2\n", &s, &e), 0);
	assert_int_equal(s.n_vertices, 2);
	assert_null(s.normals);
	assert_null(s.colors);
	assert_string_equal(scan_meta_get(&s, "columns"), "x y z and 3 ignored");
	assert_int_equal(s.n_warnings, 1);
	assert_non_null(strstr(s.warnings[0], "6 columns do not match a known layout"));
	scan_release(&s);
}

static void test_xyz_nine_columns_normals_then_colours(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_text("1 2 3 0 1 0 10 20 30\n4 5 6 1 0 0 40 50 60\n", &s, &e), 0);
	assert_float_equal(s.normals[1], 1, 0);
	assert_float_equal(s.normals[3], 1, 0);
	assert_int_equal(s.colors[4], 40);
	assert_int_equal(s.colors[6], 60);
	assert_string_equal(scan_meta_get(&s, "columns"), "x y z nx ny nz r g b");
	scan_release(&s);
	/* CloudCompare's order: colours first */
	assert_int_equal(read_text("1 2 3 10 20 30 0 1 0\n4 5 6 40 50 60 1 0 0\n", &s, &e), 0);
	assert_float_equal(s.normals[1], 1, 0);
	assert_int_equal(s.colors[4], 40);
	assert_string_equal(scan_meta_get(&s, "columns"), "x y z r g b nx ny nz");
	scan_release(&s);
}

static void test_xyz_seven_columns_rgba_or_pts_intensity(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	/* alpha always 255: CloudCompare RGBA */
	assert_int_equal(read_text("1 2 3 117.0 73.0 49.0 255.0\n4 5 6 1 2 3 255\n", &s, &e), 0);
	assert_string_equal(scan_meta_get(&s, "columns"), "x y z r g b a");
	const uint8_t want[8] = { 117, 73, 49, 255, 1, 2, 3, 255 };
	assert_memory_equal(s.colors, want, 8);
	scan_release(&s);
	/* a varying fourth column: PTS intensity then colour */
	assert_int_equal(read_text("1 2 3 -1200 10 20 30\n4 5 6 900 40 50 255\n", &s, &e), 0);
	assert_string_equal(scan_meta_get(&s, "columns"), "x y z intensity r g b");
	const uint8_t want2[8] = { 10, 20, 30, 255, 40, 50, 255, 255 };
	assert_memory_equal(s.colors, want2, 8);
	scan_release(&s);
}

static void test_xyz_four_columns_are_intensity(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_text("1 2 3 0.7\n4 5 6 0.1\n", &s, &e), 0);
	assert_int_equal(s.n_vertices, 2);
	assert_null(s.colors);
	assert_string_equal(scan_meta_get(&s, "columns"), "x y z intensity");
	scan_release(&s);
}

static void test_pts_count_line_and_blocks(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	const char *pts = "3\n"
			  "1 2 3 -100 255 0 0\n"
			  "4 5 6 -50 0 255 0\n"
			  "7 8 9 0 0 0 255\n"
			  "1\n"
			  "10 11 12 7 1 2 3\n";
	assert_int_equal(read_text(pts, &s, &e), 0);
	assert_int_equal(s.n_vertices, 4);
	assert_float_equal(s.positions[9], 10, 0);
	assert_int_equal(s.colors[5], 255);
	assert_int_equal(s.colors[12], 1);
	assert_string_equal(scan_meta_get(&s, "columns"), "x y z intensity r g b");
	scan_release(&s);
}

static void test_pts_counts_must_match_their_blocks(void **state)
{
	(void)state;
	expect_error("3\n1 2 3\n4 5 6\n", ERR_FORMAT, 1,
		     "count line declares 3 points, the block has 2");
	expect_error("1\n1 2 3\n4 5 6\n", ERR_FORMAT, 3, "point beyond the 1 declared on line 1");
	expect_error("2\n1 2 3\n1\n4 5 6\n7 8 9\n", ERR_FORMAT, 1,
		     "count line declares 2 points, the block has 1");
	expect_error("0\n", ERR_FORMAT, 0, "no points after the count line");
	/* a single number is only a count in a PTS file */
	expect_error("1 2 3\n5\n", ERR_FORMAT, 2, "1 columns, expected 3 like line 1");
}

static void test_xyz_csv_and_mixed_separators(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_text("1,2,3,255,0,0\n4, 5, 6, 0, 255, 0\n7 ,8 ,9 ,0 ,0 ,255,\n",
				   &s, &e), 0);
	assert_int_equal(s.n_vertices, 3);
	assert_float_equal(s.positions[4], 5, 0);
	assert_int_equal(s.colors[10], 255);
	scan_release(&s);
	expect_error("1,,2,3\n", ERR_FORMAT, 1, "bad number near ',2'");
}

static void test_xyz_comments_blank_lines_and_crlf_are_skipped(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	const char *t = "# exported by a scanner\r\n"
			"//X,Y,Z\r\n"
			"\r\n"
			"   \t\r\n"
			"1 2 3\r\n"
			"  # a comment between points\r\n"
			"4 5 6\r\n";
	assert_int_equal(read_text(t, &s, &e), 0);
	assert_int_equal(s.n_vertices, 2);
	assert_float_equal(s.positions[5], 6, 0);
	scan_release(&s);
	/* line numbers count the skipped lines */
	expect_error("# c\n\n1 2 3\n// c\n4 5 6 7\n", ERR_FORMAT, 5,
		     "4 columns, expected 3 like line 3");
}

static void test_xyz_errors_name_the_line(void **state)
{
	(void)state;
	expect_error("1 2 3\n4 5 6\n7 8\n", ERR_FORMAT, 3, "2 columns, expected 3 like line 1");
	expect_error("1 2 3\n4 five 6\n", ERR_FORMAT, 2, "bad number near 'five'");
	expect_error("1 2\n3 4\n", ERR_FORMAT, 1, "2 columns: a point needs at least x y z");
	/* in the sample a 300 means "not colours"; after it, an error */
	size_t cap = 1002 * 20 + 64, n = 0;
	char *big = malloc(cap);
	assert_non_null(big);
	for (int i = 0; i < 1001; i++)
		n += (size_t)snprintf(big + n, cap - n, "%d 0 0 1 2 3\n", i);
	snprintf(big + n, cap - n, "1 2 3 10 20 300\n");
	expect_error(big, ERR_FORMAT, 1002, "colour value 300 out of range 0..255");
	free(big);
	expect_error("1 2 3x\n", ERR_FORMAT, 1, "bad number near '3x'");
	expect_error("", ERR_FORMAT, 0, "no points");
	expect_error("# only a comment\n\n", ERR_FORMAT, 0, "no points");
}

static void test_xyz_nan_points_are_kept_and_counted(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	assert_int_equal(read_text("nan nan nan\n1 2 3\ninf 0 0\n", &s, &e), 0);
	assert_int_equal(s.n_vertices, 3);
	assert_int_equal(s.n_nonfinite, 2);
	assert_float_equal(s.bbox_min[0], 1, 0);
	scan_release(&s);
}

static void test_xyz_limits_on_points_and_line_length(void **state)
{
	(void)state;
	struct limits lim;
	struct scan s;
	struct err e;
	const char *t = "1 2 3\n4 5 6\n7 8 9\n";
	limits_init(&lim);
	lim.max_vertices = 2;
	err_init(&e);
	assert_int_equal(xyz_read((const unsigned char *)t, strlen(t), &lim, &s, &e), ERR_LIMIT);
	assert_int_equal(e.line, 3);
	assert_non_null(strstr(e.msg, "more than 2 points"));
	limits_init(&lim);
	lim.max_line_length = 4;
	assert_int_equal(xyz_read((const unsigned char *)t, strlen(t), &lim, &s, &e), ERR_LIMIT);
	assert_int_equal(e.line, 1);
	char wide[64 * 3 + 64] = "";
	for (int i = 0; i < 65; i++)
		strncat(wide, "1 ", sizeof(wide) - strlen(wide) - 1);
	expect_error(wide, ERR_LIMIT, 1, "more than 64 columns");
}

static int probe(const char *t)
{
	return xyz_probe((const unsigned char *)t, strlen(t));
}

static void test_xyz_probe_is_weak_and_claims_only_number_lines(void **state)
{
	(void)state;
	assert_int_equal(probe("1 2 3\n4 5 6\n"), 20);
	assert_int_equal(probe("# comment\n1,2,3\n"), 20);
	assert_int_equal(probe("12\n1 2 3 4 5 6 7\n"), 20);
	assert_int_equal(probe("1 2\n3 4\n"), 0);
	assert_int_equal(probe("1 2 3\n4 5 6 7\n"), 0);
	assert_int_equal(probe("ply\nformat ascii 1.0\n"), 0);
	assert_int_equal(probe("v 1 2 3\nv 4 5 6\n"), 0);
	assert_int_equal(probe("OFF\n3 1 0\n"), 0);
	assert_int_equal(probe("VERSION 0.7\nFIELDS x y z\n"), 0);
	assert_int_equal(probe("solid x\n facet normal 0 0 1\n"), 0);
	assert_int_equal(probe("# nothing\n"), 0);
	assert_int_equal(xyz_probe((const unsigned char *)"1 2 3\0\0\0", 8), 0);
	/* through detection: a PLY is never read as points */
	const char *ply = "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
			  "property float y\nproperty float z\nend_header\n1 2 3\n";
	const struct format *f = format_detect((const unsigned char *)ply, strlen(ply), "xyz");
	assert_true(f == NULL || strcmp(f->name, "xyz") != 0);
	f = format_detect((const unsigned char *)"1 2 3\n", 6, "txt");
	assert_non_null(f);
	assert_string_equal(f->name, "xyz");
}

static void test_xyz_survives_every_allocation_failure(void **state)
{
	(void)state;
	const char *t = "2\n1 2 3 0 0 1 9 8 7\n4 5 6 0 1 0 6 5 4\n";
	int ok = 0;
	long n;
	for (n = 0; n < 200; n++) {
		struct scan s;
		struct err e;
		err_init(&e);
		alloc_fail_after(n);
		int rc = scan_read_buffer((const unsigned char *)t, strlen(t), "a.pts", NULL, &s, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			assert_int_equal(s.n_vertices, 2);
			scan_release(&s);
			ok = 1;
			break;
		}
		if (rc != ERR_NOMEM)
			fail_msg("allocation %ld failed: rc %d '%s'", n, rc, e.msg);
		assert_null(s.positions);
	}
	assert_true(ok);
	assert_true(n >= 4);
}

/* Every byte of an error message is printable: file bytes are quoted safely. */
static void assert_printable(const char *msg, const char *path)
{
	for (const char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			fail_msg("%s: unprintable byte 0x%02x in '%s'", path, (unsigned char)*c, msg);
}

/*
 * Fuzzer inputs kept as fixtures, one per distinct outcome, named after
 * it: names starting "ok" must read, every other one must fail with a
 * clear, printable message (and none may crash or leak).
 */
static void test_xyz_fuzz_fixtures_replay_with_named_outcome(void **state)
{
	(void)state;
	const char *top = getenv("REFSCAN_TOP");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/tests/data/xyz/fuzz", top ? top : ".");
	DIR *d = opendir(dir);
	if (!d) {
		printf("xyz: skipped: no fixture folder %s\n", dir);
		skip();
	}
	int n = 0;
	for (struct dirent *de; (de = readdir(d));) {
		char path[4096 + 260];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct mapfile m;
		struct err e;
		struct scan s;
		err_init(&e);
		assert_int_equal(mapfile_open(&m, path, &e), 0);
		(void)xyz_probe(m.data, m.len);
		int rc = xyz_read(m.data, m.len, NULL, &s, &e);
		mapfile_release(&m);
		int want_ok = !strncmp(de->d_name, "ok", 2);
		if (want_ok != (rc == 0) || (rc < 0 && (!e.msg[0] || rc < ERR_INTERNAL)))
			fail_msg("%s: rc %d '%s'", path, rc, e.msg);
		assert_printable(e.msg, path);
		for (size_t w = 0; w < s.n_warnings; w++)
			assert_printable(s.warnings[w], path);
		scan_release(&s);
		n++;
	}
	closedir(d);
	printf("xyz: %d fuzz fixtures replayed\n", n);
	assert_true(n > 0);
}

/* Data lines by an independent count: lines that are not blank/comment. */
static long long data_lines(const unsigned char *b, size_t len)
{
	long long n = 0;
	const char *p = (const char *)b, *end = p + len;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		const char *q = p;
		while (q < e && isspace((unsigned char)*q))
			q++;
		if (q < e && *q != '#' && !(*q == '/' && q + 1 < e && q[1] == '/'))
			n++;
		p = e + 1;
	}
	return n;
}

static int n_files, n_pass;

static int visit(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	const char *dot = strrchr(path, '.');
	if (type != FTW_F || !dot || (strcasecmp(dot, ".xyz") && strcasecmp(dot, ".pts")))
		return 0;
	struct mapfile m;
	struct err e;
	struct scan s;
	err_init(&e);
	if (mapfile_open(&m, path, &e) < 0)
		return 0;
	long long want = data_lines(m.data, m.len);
	mapfile_release(&m);
	int rc = scan_read_file(path, NULL, &s, &e);
	int ok = rc == 0 && (long long)s.n_vertices == want && !strcmp(s.format, "xyz");
	const char *cols = rc ? "-" : scan_meta_get(&s, "columns");
	printf("%-4s %7lld %7zu  %-24s %s%s%s\n", ok ? "pass" : "FAIL", want, s.n_vertices,
	       cols ? cols : "?", path, rc ? "  " : "", rc ? e.msg : "");
	n_files++;
	n_pass += ok;
	scan_release(&s);
	return 0;
}

static void test_xyz_shared_point_sets_read_every_line(void **state)
{
	(void)state;
	const char *data = getenv("REFSCAN_SHARED_DATA");
	char root[4096];
	snprintf(root, sizeof(root), "%s/conformance", data ? data : "../shared/data");
	if (access(root, R_OK) != 0) {
		printf("xyz: skipped shared point sets: %s is not present\n", root);
		skip();
	}
	n_files = n_pass = 0;
	printf("%-4s %7s %7s  %-24s %s\n", "", "lines", "read", "columns", "file");
	assert_int_equal(nftw(root, visit, 16, FTW_PHYS), 0);
	printf("xyz: %d/%d shared point sets read with one point per data line\n",
	       n_pass, n_files);
	assert_true(n_files > 0);
	assert_int_equal(n_pass, n_files);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xyz_three_columns_are_positions),
		cmocka_unit_test(test_xyz_six_unit_columns_are_normals),
		cmocka_unit_test(test_xyz_six_columns_in_byte_range_are_colours),
		cmocka_unit_test(test_xyz_float_colours_in_unit_range_are_scaled),
		cmocka_unit_test(test_xyz_unknown_six_columns_keep_positions_with_warning),
		cmocka_unit_test(test_xyz_nine_columns_normals_then_colours),
		cmocka_unit_test(test_xyz_seven_columns_rgba_or_pts_intensity),
		cmocka_unit_test(test_xyz_four_columns_are_intensity),
		cmocka_unit_test(test_pts_count_line_and_blocks),
		cmocka_unit_test(test_pts_counts_must_match_their_blocks),
		cmocka_unit_test(test_xyz_csv_and_mixed_separators),
		cmocka_unit_test(test_xyz_comments_blank_lines_and_crlf_are_skipped),
		cmocka_unit_test(test_xyz_errors_name_the_line),
		cmocka_unit_test(test_xyz_nan_points_are_kept_and_counted),
		cmocka_unit_test(test_xyz_limits_on_points_and_line_length),
		cmocka_unit_test(test_xyz_probe_is_weak_and_claims_only_number_lines),
		cmocka_unit_test(test_xyz_survives_every_allocation_failure),
		cmocka_unit_test(test_xyz_fuzz_fixtures_replay_with_named_outcome),
		cmocka_unit_test(test_xyz_shared_point_sets_read_every_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
