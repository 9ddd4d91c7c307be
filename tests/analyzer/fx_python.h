/* SPDX-License-Identifier: MIT */
/* Stand-ins for a CPython interpreter's native frames, in the test program
 * itself (see fx_python.c), and the test program's own module, so that a
 * hand-built trace can name them. */
#ifndef LT_TESTS_FX_PYTHON_H
#define LT_TESTS_FX_PYTHON_H

#include <stddef.h>
#include <stdint.h>

/* CPython's interpreter loop: the function is named
 * _PyEval_EvalFrameDefault in the symbol table (no debug information),
 * and this is its address. */
void lt_fx_py_eval(void) __asm__("_PyEval_EvalFrameDefault");

/* Two more functions of the "interpreter", with no debug information:
 * what calls a Python function (_PyFunction_Vectorcall and the like) and
 * what starts the interpreter (Py_BytesMain). */
void lt_fx_py_call(void);
void lt_fx_py_main(void);

/* A C++ function with template arguments, named from the symbol table:
 * std::vector<int, std::allocator<int> >::push_back(int const&). */
void lt_fx_cxx_push_back(void) __asm__("_ZNSt6vectorIiSaIiEE9push_backERKi");

/* A return address inside f (looked up at the address - 1, at its first
 * instruction). */
#define LT_FX_RET(f) ((uint64_t)(uintptr_t)(f) + 1)

/* The running test program as a MODULES entry. */
struct lt_fx_module {
	char path[4096]; /* absolute */
	uint64_t bias, lo, hi;
	uint8_t build_id[64];
	size_t build_id_len;
};

/* Fills m for the test program. Returns 0, or -1 when it cannot be told. */
int lt_fx_self_module(struct lt_fx_module *m);

#endif
