/*
 * progress.h - a one-line progress bar on stderr for long commands.
 *
 * Shown only when stderr is a terminal (or REFSCAN_FORCE_TTY=1), never
 * with --json or --quiet (the caller passes that in), and only once the
 * work has lasted about a second (REFSCAN_PROGRESS_DELAY=SECONDS changes
 * the delay; tests use 0).  The line is redrawn in place with '\r' at
 * most ten times a second:
 *
 *   reading scans: 120/500 files, 512.3/1024.0 MB, 85.2 MB/s, ETA 0:06
 *
 * and ends with a newline when the bar was shown.  progress_add() is
 * thread-safe (atomic counters; one thread draws at a time), so OpenMP
 * workers call it directly.
 */
#ifndef REFSCAN_PROGRESS_H
#define REFSCAN_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress;

/* True when a bar may be shown: stderr is a TTY or REFSCAN_FORCE_TTY=1. */
bool progress_wanted(void);

/*
 * Start a bar titled title (a static string) over total_files items and
 * total_bytes bytes (0 when unknown).  Returns NULL when !enabled or out
 * of memory: every other function accepts NULL and does nothing.
 * Stop with progress_stop().
 */
struct progress *progress_start(bool enabled, const char *title,
				uint64_t total_files, uint64_t total_bytes);

/* Count files and bytes done; redraws when due.  Thread-safe. */
void progress_add(struct progress *p, uint64_t files, uint64_t bytes);

/* Draw the final state (if shown), end the line, free, set *pp NULL. */
void progress_stop(struct progress **pp);

#endif
