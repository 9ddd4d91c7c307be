/* SPDX-License-Identifier: MIT */
/* A known chain of inlined calls, compiled at -O2 for test_symbolize (see
 * fx_inline_chain.c). */
#ifndef LT_TESTS_FX_INLINE_CHAIN_H
#define LT_TESTS_FX_INLINE_CHAIN_H

/* The source lines of the chain's calls, set when lt_fx_outer runs:
 * [0] inner's call of lt_fx_probe, [1] middle's call of inner, [2]
 * lt_fx_outer's call of middle. */
extern unsigned lt_fx_chain_lines[3];

/* Returns the return address of the call of lt_fx_probe made inside
 * inner, inlined into middle, inlined into lt_fx_outer: at that address
 * - 1 the frames are inner, middle and lt_fx_outer, innermost first. */
void *lt_fx_outer(int n);

/* Returns its own return address. */
void *lt_fx_probe(void);

/* A function with no debug information, placed right after the code of
 * this fixture's unit (written in assembly: nop, nop, ret). */
void lt_fx_nodebug(void);

#endif
