/* SPDX-License-Identifier: MIT */
/* Call sites as the reports show them: the per-stack aggregates merged by
 * their symbolized, visible stack, so that stacks differing only in hidden
 * frames or return addresses within one source line count as one. */
#ifndef LT_ANALYZER_CALLSITES_H
#define LT_ANALYZER_CALLSITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "aggregate.h"
#include "symbolize.h"

typedef struct lt__callsite_s {
	const lt__frame_t **frames; /* visible frames, innermost first */
	size_t nframes;
	uint64_t allocations, bytes_allocated, frees, temporary;
	uint64_t live_blocks, live_bytes; /* at the end: leaks */
	uint64_t peak_blocks, peak_bytes; /* at the global peak */
	uint64_t stacks; /* recorded stacks merged into this site */
	bool runtime; /* the C++ runtime's own start-up (lt__frames_runtime_init) */
	char *key;
	size_t key_len;
	UT_hash_handle hh;
} lt__callsite_t;

typedef struct lt__callsites_s {
	lt__callsite_t **v;
	size_t n;
	lt__callsite_t *by_key;
} lt__callsites_t;

enum lt__metric {
	LT__BY_LEAKED, /* live_bytes at the end */
	LT__BY_PEAK, /* bytes at the peak */
	LT__BY_ALLOCATED, /* bytes_allocated */
	LT__BY_COUNT, /* allocations */
	LT__BY_TEMPORARY, /* temporary */
};

/* True when the visible frames (innermost first) are libstdc++'s own
 * initialisation: one or more frames in libstdc++.so, called directly by
 * the dynamic loader (which only calls into a library to run its
 * constructors and destructors). That is where libstdc++ allocates its
 * emergency exception-handling pool (72,704 bytes with GCC 12), once, and
 * keeps it to the end; valgrind (--run-cxx-freeres=yes, its default) and
 * heaptrack leave it out of their leak lists. Reports list such sites
 * apart from the leaks; every total still counts them. */
bool lt__frames_runtime_init(const lt__frame_t *const *frames, size_t n);

/* The two tests of lt__frames_runtime_init, on a module path or basename
 * (NULL: false), for stacks kept in other shapes (snapshots). */
bool lt__module_is_libstdcxx(const char *module);
bool lt__module_is_loader(const char *module);

/* Builds the call sites of every stack that allocated. Returns 0 or a
 * negative errno. */
int lt__callsites_build(lt__callsites_t *cs, const lt__agg_t *agg, lt__sym_t *sym);

/* The value of metric for c. */
uint64_t lt__callsite_metric(const lt__callsite_t *c, enum lt__metric metric);

/* Sorts by metric, largest first; ties in a fixed order. */
void lt__callsites_sort(lt__callsites_t *cs, enum lt__metric metric);

void lt__callsites_free(lt__callsites_t *cs);

#endif
