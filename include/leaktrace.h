/* SPDX-License-Identifier: MIT */
/* The application-side API of leaktrace: named snapshot markers. A program
 * that uses it runs unchanged when the shim is not preloaded: the calls
 * become no-ops, and there is no link-time dependency on libleaktrace. */
#ifndef LEAKTRACE_H
#define LEAKTRACE_H

#include <stddef.h>

/*
 * leaktrace_snapshot("after-warmup") puts a marker with that name into the
 * trace at this point of the calling thread; `leaktrace-report snapshot
 * --at after-warmup` then shows the live memory at that moment. Returns 0
 * when the marker was recorded, -1 when the shim is not loaded.
 *
 * How it works without a link dependency: the shim exports the function
 * lt_snapshot_marker(). This inline wrapper finds it at run time with a
 * weak reference, so a program linked without the shim still links and
 * the call does nothing.
 */
#ifdef __cplusplus
extern "C" {
#endif

int lt_snapshot_marker(const char *name) __attribute__((weak));

static inline int leaktrace_snapshot(const char *name)
{
	if (lt_snapshot_marker)
		return lt_snapshot_marker(name);
	return -1;
}

#ifdef __cplusplus
}
#endif

#endif /* LEAKTRACE_H */
