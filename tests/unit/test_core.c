/*
 * test_core.c - the shared core: error records, checked allocation,
 * the scan model (finalize, metadata, materials) and safe resolution of
 * referenced files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/exitcodes.h"
#include "formats/formats.h"
#include "formats/scan.h"

static void test_err_format_names_path_and_position(void **state)
{
	(void)state;
	struct err e;
	char buf[ERR_PATH_MAX + 300];
	err_init(&e);
	err_set_path(&e, "a/b.obj");
	assert_int_equal(err_set_line(&e, ERR_FORMAT, 12, "bad number near '%s'", "x1"),
			 ERR_FORMAT);
	assert_string_equal(err_format(&e, buf, sizeof(buf)),
			    "a/b.obj: line 12: bad number near 'x1'");
	err_set_offset(&e, ERR_FORMAT, 84, "truncated");
	assert_string_equal(err_format(&e, buf, sizeof(buf)), "a/b.obj: offset 84: truncated");
	assert_int_equal(err_exit_status(ERR_FORMAT), EXIT_DATAERR);
	assert_int_equal(err_exit_status(ERR_NOTFOUND), EXIT_NOINPUT);
	assert_int_equal(err_exit_status(ERR_BUSY), EXIT_TEMPFAIL);
	assert_string_equal(err_code_name(ERR_LIMIT), "limit");
	/* a scan too thin to describe is bad data for describe and query */
	assert_int_equal(err_exit_status(ERR_UNDESCRIBABLE), EXIT_DATAERR);
	assert_string_equal(err_code_name(ERR_UNDESCRIBABLE), "undescribable");
	/* every code has its own name, so failures.json round-trips them */
	for (int c = ERR_NOMEM; c > ERR_LAST; c--)
		for (int d = c - 1; d >= ERR_LAST; d--)
			assert_string_not_equal(err_code_name(c), err_code_name(d));
}

static void test_err_errno_keeps_strerror(void **state)
{
	(void)state;
	struct err e;
	err_init(&e);
	errno = ENOENT;
	err_set_errno(&e, ERR_IO, "cannot open");
	assert_non_null(strstr(e.msg, "cannot open: No such file"));
}

static void test_alloc_array_rejects_overflowing_counts(void **state)
{
	(void)state;
	assert_null(alloc_array(SIZE_MAX / 2, 3));
	assert_null(alloc_array_zero((size_t)1 << 62, 8));
	void *p = alloc_array(10, 4);
	assert_non_null(p);
	assert_null(realloc_array(p, SIZE_MAX, 2));
	xfree(p);
}

static void test_alloc_failure_injection_fails_the_nth_allocation(void **state)
{
	(void)state;
	alloc_fail_after(2);
	void *a = xmalloc(8), *b = xmalloc(8), *c = xmalloc(8);
	alloc_fail_after(-1);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(c);
	xfree(a);
	xfree(b);
}

static void test_alloc_grow_doubles_and_keeps_contents(void **state)
{
	(void)state;
	int *v = NULL;
	size_t cap = 0;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(alloc_grow((void **)&v, &cap, (size_t)i + 1, sizeof(int)), 0);
		v[i] = i;
	}
	assert_true(cap >= 1000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(v[i], i);
	xfree(v);
}

static void make_triangle(struct scan *s)
{
	struct err e;
	scan_init(s);
	assert_int_equal(scan_alloc(s, 4, 1, 0, &e), 0);
	const float p[] = { 0, 0, 0, 2, 0, 0, 0, 3, -1, NAN, 0, 0 };
	memcpy(s->positions, p, sizeof(p));
	s->n_vertices = 4;
	s->indices[0] = 0;
	s->indices[1] = 1;
	s->indices[2] = 2;
	s->n_faces = 1;
}

static void test_finalize_bbox_skips_nonfinite_vertices(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	make_triangle(&s);
	assert_int_equal(scan_finalize(&s, &e), 0);
	assert_int_equal(s.n_nonfinite, 1);
	assert_true(s.bbox_min[0] == 0 && s.bbox_min[1] == 0 && s.bbox_min[2] == -1);
	assert_true(s.bbox_max[0] == 2 && s.bbox_max[1] == 3 && s.bbox_max[2] == 0);
	assert_int_equal(s.n_warnings, 1);
	assert_non_null(strstr(s.warnings[0], "non-finite"));
	scan_release(&s);
}

static void test_finalize_rejects_out_of_range_index(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	err_init(&e);
	make_triangle(&s);
	s.indices[2] = 4;
	assert_int_equal(scan_finalize(&s, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "face 0: vertex index 4 out of range (have 4)");
	scan_release(&s);
}

static void test_materials_and_textures_are_interned(void **state)
{
	(void)state;
	struct scan s;
	scan_init(&s);
	assert_int_equal(scan_material_intern(&s, "skin", 4), 0);
	assert_int_equal(scan_material_intern(&s, "bark", 4), 1);
	assert_int_equal(scan_material_intern(&s, "skin", 4), 0);
	assert_int_equal(s.n_materials, 2);
	assert_true(s.materials[1].texture == -1);
	assert_int_equal(scan_texture_add(&s, "t/a.png", 7), 0);
	assert_int_equal(scan_texture_add(&s, "t/a.png", 7), 0);
	assert_int_equal(s.n_textures, 1);
	assert_int_equal(scan_meta_add(&s, "units", 5, "mm", 2), 0);
	assert_string_equal(scan_meta_get(&s, "units"), "mm");
	assert_null(scan_meta_get(&s, "scanner"));
	scan_release(&s);
	assert_int_equal(s.n_materials, 0);
	assert_null(s.materials);
}

static void test_warnings_are_capped(void **state)
{
	(void)state;
	struct scan s;
	scan_init(&s);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(scan_warn(&s, "warning %d", i), 0);
	assert_int_equal(s.n_warnings, 64);
	assert_string_equal(s.warnings[63], "more warnings not shown");
	scan_release(&s);
}

static void test_units_parse_common_spellings(void **state)
{
	(void)state;
	assert_int_equal(scan_units_parse("Millimeters", 11), UNITS_MM);
	assert_int_equal(scan_units_parse("m", 1), UNITS_M);
	assert_int_equal(scan_units_parse("inch", 4), UNITS_IN);
	assert_int_equal(scan_units_parse("furlong", 7), UNITS_UNKNOWN);
	assert_true(scan_units_mm(UNITS_CM) == 10.0);
}

static void test_resolve_ref_stays_inside_scan_folder(void **state)
{
	(void)state;
	char *r;
	r = format_resolve_ref("scans/head.obj", "tex/skin.png", 12);
	assert_string_equal(r, "scans/tex/skin.png");
	xfree(r);
	r = format_resolve_ref("head.obj", "\"my skin.png\" ", 14);
	assert_string_equal(r, "my skin.png");
	xfree(r);
	r = format_resolve_ref("a/head.obj", "tex\\skin.png", 12);
	assert_string_equal(r, "a/tex/skin.png");
	xfree(r);
	assert_null(format_resolve_ref("a/head.obj", "../x.png", 8));
	assert_null(format_resolve_ref("a/head.obj", "t/../../x.png", 13));
	assert_null(format_resolve_ref("a/head.obj", "t\\..\\x.png", 10));
	assert_null(format_resolve_ref("a/head.obj", "/etc/passwd", 11));
	assert_null(format_resolve_ref("a/head.obj", "C:\\tex\\a.png", 12));
	assert_null(format_resolve_ref("a/head.obj", "", 0));
	/* a name that merely starts with dots is fine */
	r = format_resolve_ref("a/head.obj", "..skin.png", 10);
	assert_string_equal(r, "a/..skin.png");
	xfree(r);
}

static void test_read_buffer_rejects_empty_and_utf16(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	err_init(&e);
	assert_int_equal(scan_read_buffer((const unsigned char *)"", 0, "x.obj", NULL, &s, &e),
			 ERR_FORMAT);
	assert_string_equal(e.msg, "empty file");
	const unsigned char utf16[] = { 0xFF, 0xFE, 'v', 0, ' ', 0 };
	assert_int_equal(scan_read_buffer(utf16, sizeof(utf16), "x.obj", NULL, &s, &e),
			 ERR_UNSUPPORTED);
	assert_non_null(strstr(e.msg, "UTF-16"));
	const unsigned char junk[] = { 0x00, 0x01, 0x02, 0x03, 0xFA, 0x11 };
	assert_true(scan_read_buffer(junk, sizeof(junk), "x.bin", NULL, &s, &e) < 0);
	scan_release(&s);
}

static void test_scan_name_detection_by_extension(void **state)
{
	(void)state;
	assert_true(format_is_scan_name("a/b/skin.PLY"));
	assert_true(format_is_scan_name("x.obj"));
	assert_true(format_is_scan_name("x.stl"));
	assert_true(format_is_scan_name("x.off"));
	assert_true(format_is_scan_name("x.pcd"));
	assert_true(format_is_scan_name("x.xyz"));
	assert_false(format_is_scan_name("x.mtl"));
	assert_false(format_is_scan_name("x.png"));
	assert_false(format_is_scan_name("notes.txt"));
	assert_false(format_is_scan_name("Makefile"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_format_names_path_and_position),
		cmocka_unit_test(test_err_errno_keeps_strerror),
		cmocka_unit_test(test_alloc_array_rejects_overflowing_counts),
		cmocka_unit_test(test_alloc_failure_injection_fails_the_nth_allocation),
		cmocka_unit_test(test_alloc_grow_doubles_and_keeps_contents),
		cmocka_unit_test(test_finalize_bbox_skips_nonfinite_vertices),
		cmocka_unit_test(test_finalize_rejects_out_of_range_index),
		cmocka_unit_test(test_materials_and_textures_are_interned),
		cmocka_unit_test(test_warnings_are_capped),
		cmocka_unit_test(test_units_parse_common_spellings),
		cmocka_unit_test(test_resolve_ref_stays_inside_scan_folder),
		cmocka_unit_test(test_read_buffer_rejects_empty_and_utf16),
		cmocka_unit_test(test_scan_name_detection_by_extension),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
