/*
 * err.h - error codes and the caller-owned error record.
 *
 * Every fallible function returns 0 or a negative enum errc and, on
 * failure, fills a caller-owned struct err with the detail.  Nothing is
 * kept in globals, so OpenMP workers each fill their own record.
 *
 * Message style: lowercase, no trailing period, problem first, the
 * subject in quotes ('face 812: vertex index 9041 out of range (have 9000)').
 */
#ifndef REFSCAN_ERR_H
#define REFSCAN_ERR_H

#include <stddef.h>
#include <stdint.h>

enum errc {
	ERR_OK = 0,
	ERR_NOMEM = -1,       /* allocation failed */
	ERR_IO = -2,          /* a system call failed; msg keeps strerror */
	ERR_FORMAT = -3,      /* the input is malformed */
	ERR_LIMIT = -4,       /* the input exceeds a limit in struct limits */
	ERR_VERSION = -5,     /* a newer or unknown format version */
	ERR_FAISS = -6,       /* the FAISS C API reported an error */
	ERR_UNSUPPORTED = -7, /* a valid but unsupported feature or format */
	ERR_NOTFOUND = -8,    /* a named file, version or entry does not exist */
	ERR_BUSY = -9,        /* a lock is held by another process */
	ERR_CORRUPT = -10,    /* stored data fails its checksum */
	ERR_INTERNAL = -11,   /* a broken invariant (a bug) */
	/*
	 * A scan that reads fine has too little geometry to describe (too
	 * few usable points, no extent): it can be stored, not searched.
	 */
	ERR_UNDESCRIBABLE = -12
};

/* The most negative code, for loops over every code. */
#define ERR_LAST ERR_UNDESCRIBABLE

#define ERR_PATH_MAX 4096

struct err {
	int code;               /* enum errc, 0 when no error */
	char path[ERR_PATH_MAX]; /* file the error is about, "" if none */
	long line;              /* 1-based line for text formats, 0 if unknown */
	int64_t offset;         /* byte offset for binary formats, -1 if unknown */
	char msg[256];          /* one line, no trailing newline */
};

/* Reset to "no error" (code 0, empty path and message, no line/offset). */
void err_init(struct err *e);

/*
 * Record an error and return its code, so a failure is one line:
 *     return err_set(e, ERR_FORMAT, "face %zu: index out of range", i);
 * Keeps e->path; leaves line and offset as they were.  e may be NULL.
 */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Same, with the 1-based line of a text format. */
int err_set_line(struct err *e, int code, long line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Same, with the byte offset of a binary format. */
int err_set_offset(struct err *e, int code, int64_t offset, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Same, appending ": strerror(errno)" for the current errno. */
int err_set_errno(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Set the path the error is about (truncated to ERR_PATH_MAX - 1). */
void err_set_path(struct err *e, const char *path);

/*
 * Format as one line without a newline:
 *   "PATH: line N: msg", "PATH: offset N: msg", "PATH: msg" or "msg".
 * Returns buf.
 */
char *err_format(const struct err *e, char *buf, size_t n);

/* Short stable name of a code ("format", "nomem", ...), for JSON. */
const char *err_code_name(int code);

/* sysexits-style exit status for an error code (65 data, 66 no input...). */
int err_exit_status(int code);

#endif
