/*
 * readertest.h - shared checks for the scan reader unit tests: fixture
 * replay against tests/data/<fmt>/expected.tsv, truncation sweeps, and
 * allocation-failure sweeps.  Each helper asserts with cmocka, so it must
 * be called from inside a cmocka test.
 */
#ifndef REFSCAN_READERTEST_H
#define REFSCAN_READERTEST_H

#include <stddef.h>

#include "formats/formats.h"

/* Repository root: $REFSCAN_TOP, or "." (make test runs from the root). */
const char *readertest_top(void);

/*
 * Read a whole file into a malloc'd buffer (*buf, *len); the caller
 * frees it with free().  Returns 0, or -1 when it cannot be read.
 */
int readertest_load(const char *path, unsigned char **buf, size_t *len);

/*
 * Replay tests/data/<fmt>/: every file under good/ and bad/ must be listed
 * in expected.tsv (`path <TAB> ok|format|limit|unsupported <TAB>
 * vertices <TAB> faces <TAB> polygons`, counts only for ok) and read as
 * listed; every file under fuzz/ (inputs that once crashed or hung a
 * fuzzer) must read or fail cleanly with a message.  Returns the number
 * of files checked.
 */
size_t readertest_replay(const char *fmt, format_read_fn read);

/*
 * Every proper prefix of buf (each in a fresh allocation of exactly that
 * size, so ASan sees any over-read) must fail with a message; the whole
 * buffer must read.  Returns how many prefixes were tried.
 */
size_t readertest_truncation_sweep(format_read_fn read, const unsigned char *buf,
				   size_t len);

/*
 * Fail the Nth allocation for N = 0, 1, ... until the read succeeds:
 * each failure must be ERR_NOMEM with an empty scan and nothing leaked
 * (ASan).  Returns the number of allocations the successful read made.
 */
long readertest_oom_sweep(format_read_fn read, const unsigned char *buf, size_t len);

#endif
