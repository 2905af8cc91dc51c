/*
 * out.h - shared output helpers for commands: JSON lines on stdout,
 * errors on stderr, and the final stdout check.
 */
#ifndef REFSCAN_OUT_H
#define REFSCAN_OUT_H

#include <jansson.h>
#include <stdbool.h>

struct err;

/* "refscan: error: " + formatted message + newline, to stderr. */
void out_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "refscan: warning: " + ... */
void out_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "refscan: " + err_format(e) + newline, to stderr. */
void out_err(const struct err *e);

/*
 * Print obj as one compact JSON line on stdout (sorted keys off: key
 * order is insertion order, which is the documented order) and decref it.
 * Returns 0 or -1 on a write error.
 */
int out_json_line(json_t *obj);

/* {"code": "...", "message": "..."} for an error record (new reference). */
json_t *out_json_error(const struct err *e);

/*
 * Flush and close stdout; on failure print an error and return
 * EXIT_IOERR, else return status unchanged.  Call as the last thing.
 */
int out_finish(int status);

/* True when colour should be used on fd (TTY, NO_COLOR unset, --color). */
bool out_use_color(int fd);
/* Set by --color=always|never|auto: 1, 0, -1. */
void out_set_color(int mode);

#endif
