/*
 * err.c - the caller-owned error record (see err.h).
 */
#include "err.h"
#include "exitcodes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

void err_init(struct err *e)
{
	if (!e)
		return;
	e->code = 0;
	e->path[0] = '\0';
	e->line = 0;
	e->offset = -1;
	e->msg[0] = '\0';
}

static int vset(struct err *e, int code, const char *fmt, va_list ap)
{
	if (e) {
		e->code = code;
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	}
	return code;
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	return code;
}

int err_set_line(struct err *e, int code, long line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	if (e) {
		e->line = line;
		e->offset = -1;
	}
	return code;
}

int err_set_offset(struct err *e, int code, int64_t offset, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	if (e) {
		e->offset = offset;
		e->line = 0;
	}
	return code;
}

int err_set_errno(struct err *e, int code, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	if (e) {
		size_t n = strlen(e->msg);
		snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(saved));
	}
	errno = saved;
	return code;
}

void err_set_path(struct err *e, const char *path)
{
	if (!e)
		return;
	snprintf(e->path, sizeof(e->path), "%s", path ? path : "");
}

char *err_format(const struct err *e, char *buf, size_t n)
{
	if (!n)
		return buf;
	if (!e->path[0])
		snprintf(buf, n, "%s", e->msg);
	else if (e->line > 0)
		snprintf(buf, n, "%s: line %ld: %s", e->path, e->line, e->msg);
	else if (e->offset >= 0)
		snprintf(buf, n, "%s: offset %lld: %s", e->path,
			 (long long)e->offset, e->msg);
	else
		snprintf(buf, n, "%s: %s", e->path, e->msg);
	return buf;
}

const char *err_code_name(int code)
{
	switch (code) {
	case ERR_OK: return "ok";
	case ERR_NOMEM: return "nomem";
	case ERR_IO: return "io";
	case ERR_FORMAT: return "format";
	case ERR_LIMIT: return "limit";
	case ERR_VERSION: return "version";
	case ERR_FAISS: return "faiss";
	case ERR_UNSUPPORTED: return "unsupported";
	case ERR_NOTFOUND: return "notfound";
	case ERR_BUSY: return "busy";
	case ERR_CORRUPT: return "corrupt";
	case ERR_UNDESCRIBABLE: return "undescribable";
	default: return "internal";
	}
}

int err_exit_status(int code)
{
	switch (code) {
	case ERR_OK: return EXIT_OK;
	case ERR_FORMAT: case ERR_LIMIT: case ERR_VERSION:
	case ERR_UNSUPPORTED: case ERR_CORRUPT: case ERR_UNDESCRIBABLE:
		return EXIT_DATAERR;
	case ERR_NOTFOUND: return EXIT_NOINPUT;
	case ERR_IO: return EXIT_IOERR;
	case ERR_BUSY: return EXIT_TEMPFAIL;
	default: return EXIT_SOFTWARE;
	}
}
