/*
 * test_textscan.c - the bounded number and line scanners in
 * formats/textscan.c, checked against the C library on many inputs.
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

#include "formats/textscan.h"

static const char *parse_d(const char *s, double *v)
{
	return ts_parse_double(s, s + strlen(s), v);
}

static void test_parse_double_matches_strtod_on_plain_decimals(void **state)
{
	(void)state;
	static const char *cases[] = {
		"0", "-0", "1", "-1", "0.5", ".5", "5.", "-.25", "+3.75",
		"123456789", "0.1", "0.2", "0.3", "1e10", "1E-5", "2.5e+3",
		"-1.7976931348623157e308", "4.9e-324", "1e-400", "1e400",
		"3.14159265358979323846264338327950288",
		"123456789012345678901234567890", "0.000000000000000000000123",
		"9007199254740993", "1.00000000000000011102230246251565404236316680908203125",
		"6.02214076e23", "-0.000001", "1e22", "1e23", "8.5e-23",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double got = -42, want = strtod(cases[i], NULL);
		const char *end = parse_d(cases[i], &got);
		assert_non_null(end);
		assert_int_equal(end - cases[i], strlen(cases[i]));
		assert_memory_equal(&got, &want, sizeof(double));
	}
}

static void test_parse_double_is_exact_on_random_numbers(void **state)
{
	(void)state;
	char buf[64];
	unsigned long long x = 88172645463325252ULL;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int digits = (int)(x % 12) + 1;
		int exp = (int)((x >> 8) % 60) - 30;
		long long mant = (long long)((x >> 16) % 1000000000000ULL);
		int form = (int)((x >> 3) % 3);
		if (form == 0)
			snprintf(buf, sizeof(buf), "%.*g", digits, (double)mant * pow(10, exp));
		else if (form == 1)
			snprintf(buf, sizeof(buf), "%lld.%03d", mant % 100000, (int)(x % 1000));
		else
			snprintf(buf, sizeof(buf), "-%llde%d", mant, exp);
		double got, want = strtod(buf, NULL);
		const char *end = parse_d(buf, &got);
		assert_non_null(end);
		assert_int_equal(*end, '\0');
		if (memcmp(&got, &want, sizeof(double))) {
			fprintf(stderr, "mismatch on '%s': %.17g vs %.17g\n", buf, got, want);
			fail();
		}
	}
}

static void test_parse_double_reads_specials(void **state)
{
	(void)state;
	double v;
	assert_non_null(parse_d("nan", &v));
	assert_true(isnan(v));
	assert_non_null(parse_d("-inf", &v));
	assert_true(isinf(v) && v < 0);
	assert_non_null(parse_d("Infinity", &v));
	assert_true(isinf(v) && v > 0);
	assert_non_null(parse_d("NaN(123)", &v));
	assert_true(isnan(v));
}

static void test_parse_double_rejects_non_numbers(void **state)
{
	(void)state;
	double v;
	assert_null(parse_d("", &v));
	assert_null(parse_d("-", &v));
	assert_null(parse_d(".", &v));
	assert_null(parse_d("abc", &v));
	assert_null(parse_d("e5", &v));
	assert_null(parse_d("+-1", &v));
}

static void test_parse_double_stops_at_end_pointer(void **state)
{
	(void)state;
	const char s[] = "12345";
	double v;
	/* only "12" is inside the bounds */
	const char *end = ts_parse_double(s, s + 2, &v);
	assert_ptr_equal(end, s + 2);
	assert_true(v == 12.0);
	/* the exponent marker at the very end is not consumed */
	const char t[] = "7e";
	end = ts_parse_double(t, t + 2, &v);
	assert_ptr_equal(end, t + 1);
	assert_true(v == 7.0);
}

static void test_parse_integers_detect_overflow(void **state)
{
	(void)state;
	const char *s;
	int64_t i;
	uint64_t u;
	s = "9223372036854775807";
	assert_non_null(ts_parse_i64(s, s + strlen(s), &i));
	assert_true(i == INT64_MAX);
	s = "-9223372036854775808";
	assert_non_null(ts_parse_i64(s, s + strlen(s), &i));
	assert_true(i == INT64_MIN);
	s = "9223372036854775808";
	assert_null(ts_parse_i64(s, s + strlen(s), &i));
	s = "18446744073709551615";
	assert_non_null(ts_parse_u64(s, s + strlen(s), &u));
	assert_true(u == UINT64_MAX);
	s = "18446744073709551616";
	assert_null(ts_parse_u64(s, s + strlen(s), &u));
	s = "-1";
	assert_null(ts_parse_u64(s, s + strlen(s), &u));
	s = "+-1";
	assert_null(ts_parse_i64(s, s + strlen(s), &i));
	s = "42abc";
	assert_ptr_equal(ts_parse_i64(s, s + strlen(s), &i), s + 2);
	assert_int_equal(i, 42);
}

static void test_lines_strip_crlf_and_count(void **state)
{
	(void)state;
	const char buf[] = "a b\r\n\nlast";
	struct tcur c;
	const char *ls, *le;
	tcur_init(&c, buf, sizeof(buf) - 1);
	assert_true(tcur_next_line(&c, &ls, &le));
	assert_true(ts_eq(ls, le, "a b"));
	assert_int_equal(c.line, 2);
	assert_true(tcur_next_line(&c, &ls, &le));
	assert_int_equal(le - ls, 0);
	assert_true(tcur_next_line(&c, &ls, &le));
	assert_true(ts_eq(ls, le, "last"));
	assert_false(tcur_next_line(&c, &ls, &le));
}

static void test_ieq_is_case_insensitive_and_length_exact(void **state)
{
	(void)state;
	const char *s = "Binary_Little_Endian";
	assert_true(ts_ieq(s, s + strlen(s), "binary_little_endian"));
	assert_false(ts_ieq(s, s + 6, "binary_"));
	assert_false(ts_eq(s, s + strlen(s), "binary_little_endian"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_double_matches_strtod_on_plain_decimals),
		cmocka_unit_test(test_parse_double_is_exact_on_random_numbers),
		cmocka_unit_test(test_parse_double_reads_specials),
		cmocka_unit_test(test_parse_double_rejects_non_numbers),
		cmocka_unit_test(test_parse_double_stops_at_end_pointer),
		cmocka_unit_test(test_parse_integers_detect_overflow),
		cmocka_unit_test(test_lines_strip_crlf_and_count),
		cmocka_unit_test(test_ieq_is_case_insensitive_and_length_exact),
	};
	return cmocka_run_group_tests_name("textscan", tests, NULL, NULL);
}
