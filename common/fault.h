/*
 * fault.h - a test-only crash hook for the archive's crash-safety tests.
 *
 * Writers call fault_point("step") at each step of a commit or prune.
 * When the environment variable REFSCAN_FAULT names that step, the
 * process sends itself SIGKILL: no cleanup handler, atexit or buffered
 * output runs, exactly like a power cut from the archive's point of view
 * (minus the page cache).  Unset in normal use; costs one getenv per step.
 * The step names are listed in docs/archive-format.md.
 */
#ifndef REFSCAN_FAULT_H
#define REFSCAN_FAULT_H

void fault_point(const char *step);

#endif
