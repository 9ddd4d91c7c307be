/* SPDX-License-Identifier: MIT */
/* Offline symbolization of recorded stacks against the trace's module maps
 * with elfutils libdwfl: function (demangled), file, line and inlined
 * frames, module+offset when there is no debug information, and hiding of
 * the shim's and the allocator's own frames. */
#ifndef LT_ANALYZER_SYMBOLIZE_H
#define LT_ANALYZER_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modules.h"

/* One source-level frame. Strings belong to the symbolizer and live as
 * long as it does. */
typedef struct lt__frame_s {
	const char *function; /* NULL when unknown */
	const char *file; /* NULL when unknown */
	unsigned line; /* 0 when unknown */
	const char *module; /* module path, "" when outside every module */
	uint64_t address; /* the recorded address */
	uint64_t offset; /* address - load bias (file-relative) */
	bool inlined; /* an inlined call inside the next frame */
} lt__frame_t;

typedef struct lt__sym_opts_s {
	const char *sysroot; /* prefix for module paths, or NULL */
	const char *debug_dir; /* extra debuginfo directory, or NULL */
	const char *const *skip_functions; /* globs of wrappers to hide */
	size_t nskip;
	bool show_hidden; /* keep the shim's and the allocator's frames */
} lt__sym_opts_t;

typedef struct lt__sym_s lt__sym_t;

/* Creates a symbolizer over mm (which must outlive it). opts is copied
 * (the strings it points to must outlive the symbolizer). Returns 0 or
 * -ENOMEM. */
int lt__sym_new(lt__sym_t **out, const lt__modmaps_t *mm, const lt__sym_opts_t *opts);

/* The source frames of one recorded address (several when inlined),
 * innermost first: the innermost function with the address's line, each
 * caller with the line of its call, as addr2line -i -f shows them.
 * is_return: the address is a return address (every frame of a recorded
 * stack is one) and is looked up at addr - 1. Results are cached. Returns
 * 0 or -ENOMEM. */
int lt__sym_addr(lt__sym_t *s, long modmap, uint64_t addr, bool is_return,
		 const lt__frame_t **frames, size_t *n);

/* The visible frames of a stack: all frames symbolized as return
 * addresses; then, unless show_hidden, the leading (innermost) ones that
 * belong to the shim, the allocator or a --skip-function wrapper dropped,
 * and the shim's frames dropped wherever they are (all kept when nothing
 * would be left). *out is a malloc'ed array of pointers to frames owned
 * by s; free it. Returns 0 or -ENOMEM. */
int lt__sym_stack(lt__sym_t *s, long modmap, const uint64_t *addrs, uint32_t depth,
		  const lt__frame_t ***out, size_t *n);

/* The name shown for a frame: its function, else "module+0xoffset", else
 * its address. buf must hold at least 64 bytes plus the module path. */
const char *lt__frame_label(const lt__frame_t *f, char *buf, size_t len);

void lt__sym_free(lt__sym_t *s);

#endif
