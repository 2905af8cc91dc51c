/*
 * out.c - shared output helpers (see out.h).
 */
#include "out.h"
#include "err.h"
#include "exitcodes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

static int color_mode = -1;

void out_error(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("refscan: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void out_warning(const char *fmt, ...)
{
	va_list ap;
	fputs("refscan: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void out_err(const struct err *e)
{
	char buf[ERR_PATH_MAX + 512];
	fflush(stdout);
	fprintf(stderr, "refscan: %s\n", err_format(e, buf, sizeof(buf)));
}

int out_json_line(json_t *obj)
{
	int rc = json_dumpf(obj, stdout, JSON_COMPACT | JSON_ENSURE_ASCII |
				     JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
	json_decref(obj);
	if (rc < 0 || fputc('\n', stdout) == EOF)
		return -1;
	return 0;
}

json_t *out_json_error(const struct err *e)
{
	char buf[ERR_PATH_MAX + 512];
	return json_pack("{s:s, s:s}", "code", err_code_name(e->code),
			 "message", err_format(e, buf, sizeof(buf)));
}

int out_finish(int status)
{
	int bad = ferror(stdout);
	if (fclose(stdout) != 0)
		bad = 1;
	if (bad) {
		fprintf(stderr, "refscan: error: cannot write to standard output: %s\n",
			strerror(errno ? errno : EIO));
		return EXIT_IOERR;
	}
	return status;
}

void out_set_color(int mode)
{
	color_mode = mode;
}

bool out_use_color(int fd)
{
	if (color_mode >= 0)
		return color_mode == 1;
	const char *nc = getenv("NO_COLOR");
	if (nc && *nc)
		return false;
	if (getenv("REFSCAN_FORCE_TTY"))
		return true;
	return isatty(fd);
}
