/*
 * progress.c - stderr progress bar (see progress.h).
 *
 * Counters are atomics; drawing is guarded by a trylock so a worker that
 * finds another one drawing just moves on instead of waiting.
 */
#include "progress.h"
#include "alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

struct progress {
	const char *title;
	uint64_t total_files;
	uint64_t total_bytes;
	_Atomic uint64_t files;
	_Atomic uint64_t bytes;
	double start;         /* seconds, monotonic */
	double delay;         /* seconds before the first draw */
	double last_draw;     /* seconds, monotonic; 0 = never drawn */
	size_t last_len;      /* characters of the last line, to blank leftovers */
	pthread_mutex_t lock; /* one drawer at a time */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool progress_wanted(void)
{
	const char *f = getenv("REFSCAN_FORCE_TTY");
	if (f && !strcmp(f, "1"))
		return true;
	return isatty(STDERR_FILENO);
}

struct progress *progress_start(bool enabled, const char *title,
				uint64_t total_files, uint64_t total_bytes)
{
	if (!enabled)
		return NULL;
	struct progress *p = xcalloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->title = title;
	p->total_files = total_files;
	p->total_bytes = total_bytes;
	p->start = now_s();
	p->delay = 1.0;
	const char *d = getenv("REFSCAN_PROGRESS_DELAY");
	if (d && *d) {
		char *end;
		double v = strtod(d, &end);
		if (*end == '\0' && v >= 0 && v < 3600)
			p->delay = v;
	}
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

static void fmt_eta(char *buf, size_t n, double s)
{
	if (s < 0 || s > 360000) {
		snprintf(buf, n, "--:--");
		return;
	}
	unsigned long t = (unsigned long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, n, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, n, "%lu:%02lu", t / 60, t % 60);
}

/* Caller holds p->lock. */
static void draw(struct progress *p, double t, bool final)
{
	uint64_t files = atomic_load(&p->files), bytes = atomic_load(&p->bytes);
	double el = t - p->start;
	double mb = (double)bytes / 1e6, rate = el > 0 ? mb / el : 0;
	char line[256], eta[32];
	int len;

	if (p->total_bytes && rate > 0)
		fmt_eta(eta, sizeof(eta),
			((double)p->total_bytes / 1e6 - mb) / rate);
	else
		snprintf(eta, sizeof(eta), "--:--");
	if (p->total_files)
		len = snprintf(line, sizeof(line), "%s: %llu/%llu files", p->title,
			       (unsigned long long)files,
			       (unsigned long long)p->total_files);
	else
		len = snprintf(line, sizeof(line), "%s: %llu files", p->title,
			       (unsigned long long)files);
	if (len < 0 || (size_t)len >= sizeof(line))
		return;
	size_t used = (size_t)len;
	if (p->total_bytes)
		len = snprintf(line + used, sizeof(line) - used,
			       ", %.1f/%.1f MB, %.1f MB/s", mb,
			       (double)p->total_bytes / 1e6, rate);
	else
		len = snprintf(line + used, sizeof(line) - used,
			       ", %.1f MB, %.1f MB/s", mb, rate);
	if (len < 0 || (size_t)len >= sizeof(line) - used)
		return;
	used += (size_t)len;
	len = snprintf(line + used, sizeof(line) - used, final ? ", done" : ", ETA %s", eta);
	if (len > 0 && (size_t)len < sizeof(line) - used)
		used += (size_t)len;
	size_t pad = p->last_len > used ? p->last_len - used : 0;
	fprintf(stderr, "\r%s%*s", line, (int)pad, "");
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
	p->last_len = used;
	p->last_draw = t;
}

void progress_add(struct progress *p, uint64_t files, uint64_t bytes)
{
	if (!p)
		return;
	atomic_fetch_add(&p->files, files);
	atomic_fetch_add(&p->bytes, bytes);
	double t = now_s();
	if (t - p->start < p->delay)
		return;
	if (pthread_mutex_trylock(&p->lock) != 0)
		return;
	if (t - p->last_draw >= 0.1)
		draw(p, t, false);
	pthread_mutex_unlock(&p->lock);
}

void progress_stop(struct progress **pp)
{
	struct progress *p = pp ? *pp : NULL;
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	double t = now_s();
	/* a bar already on screen, or work that outlasted the delay */
	if (p->last_draw > 0 || t - p->start >= p->delay)
		draw(p, t, true);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_destroy(&p->lock);
	xfree(p);
	*pp = NULL;
}
