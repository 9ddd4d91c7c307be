/* SPDX-License-Identifier: MIT */
/* Offline symbolization of recorded stacks against the trace's module maps
 * with elfutils libdwfl: function (demangled), file, line and inlined
 * frames, module+offset when there is no debug information, CPython's
 * Python frames put in place of its interpreter loop, and hiding of the
 * shim's, the allocator's and the interpreter's own frames. */
#ifndef LT_ANALYZER_SYMBOLIZE_H
#define LT_ANALYZER_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modules.h"
#include "pycode.h"

/* One source-level frame. Strings belong to the symbolizer and live as
 * long as it does. A Python frame (python set) has the code object's
 * qualified name, file and line, module LT__PY_MODULE, its code key as
 * address and its bytecode offset as offset. */
typedef struct lt__frame_s {
	const char *function; /* NULL when unknown */
	const char *file; /* NULL when unknown */
	unsigned line; /* 0 when unknown */
	const char *module; /* module path, "" when outside every module */
	uint64_t address; /* the recorded address */
	uint64_t offset; /* address - load bias (file-relative) */
	bool inlined; /* an inlined call inside the next frame */
	bool python; /* a CPython frame (PYFRAMES), not machine code */
} lt__frame_t;

#define LT__PY_MODULE "python" /* the module of Python frames */
#define LT__PY_EVAL "_PyEval_EvalFrameDefault" /* CPython's interpreter loop */

typedef struct lt__sym_opts_s {
	const char *sysroot; /* prefix for module paths, or NULL */
	const char *debug_dir; /* extra debuginfo directory, or NULL */
	const char *const *skip_functions; /* globs of wrappers to hide */
	size_t nskip;
	bool show_hidden; /* keep the shim's, the allocator's and CPython's frames */
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
 * addresses, with the Python frames py[0..npy) (NULL, 0 for a stack of
 * a program that is no CPython) spliced in: each native frame of
 * LT__PY_EVAL, innermost first, is replaced by the Python frames it ran
 * (format.h, PYFRAMES: up to and including the next one with the entry
 * bit), and the Python frames left when the native ones run out go at the
 * end. Then, unless show_hidden, the leading (innermost) frames that
 * belong to the shim, the allocator or a --skip-function wrapper are
 * dropped, and the shim's frames wherever they are; and so are the
 * interpreter's own (the module of the LT__PY_EVAL frames; when none could
 * be named, a module called python* or libpython*) when there are Python
 * frames, so that a leak is shown at the Python line that made it (all
 * kept when nothing would be left). *out is a malloc'ed array of
 * pointers to frames owned by s; free it. Returns 0 or -ENOMEM. */
int lt__sym_stack(lt__sym_t *s, long modmap, const uint64_t *addrs, uint32_t depth,
		  const lt__pyframe_t *py, uint32_t npy, const lt__frame_t ***out, size_t *n);

/* The name shown for a frame: its function, else "module+0xoffset", else
 * its address. buf must hold at least 64 bytes plus the module path. */
const char *lt__frame_label(const lt__frame_t *f, char *buf, size_t len);

void lt__sym_free(lt__sym_t *s);

#endif
