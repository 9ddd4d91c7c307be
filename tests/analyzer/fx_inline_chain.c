/* SPDX-License-Identifier: MIT */
/* Fixture for test_symbolize, built at -O2: inner is inlined into middle
 * (inside a loop, so a lexical block sits between them), and middle into
 * the out-of-line lt_fx_outer. Each call records its own line, so the test
 * checks frames against the source without hard-coded numbers. */
#include "fx_inline_chain.h"

unsigned lt_fx_chain_lines[3];
void *volatile lt_fx_sink[4]; /* keeps the loop's results alive */

__attribute__((noinline)) void *lt_fx_probe(void)
{
	void *ret = __builtin_return_address(0);
	__asm__ volatile("" : : "r"(ret) : "memory"); /* not folded away */
	return ret;
}

static inline __attribute__((always_inline)) void *inner(void)
{
	return (lt_fx_chain_lines[0] = __LINE__, lt_fx_probe());
}

static inline __attribute__((always_inline)) void *middle(int n)
{
	void *last = 0;
	for (int i = 0; i < n && i < 4; i++) {
		void *got = (lt_fx_chain_lines[1] = __LINE__, inner());
		lt_fx_sink[i] = got;
		last = got;
	}
	return last;
}

__attribute__((noinline)) void *lt_fx_outer(int n)
{
	void *ret = (lt_fx_chain_lines[2] = __LINE__, middle(n));
	__asm__ volatile("" : : "r"(ret) : "memory"); /* no tail call */
	return ret;
}

/* lt_fx_nodebug: code without debug information just past this unit's
 * own, as _start sits after main in many programs. The unit's address
 * lookup tables end before it, its line table has no row for it. */
__asm__(".pushsection .text.lt_fx_nodebug,\"ax\",@progbits\n"
	".globl lt_fx_nodebug\n"
	".type lt_fx_nodebug, @function\n"
	"lt_fx_nodebug:\n"
	"\tnop\n"
	"\tnop\n"
	"\tret\n"
	".size lt_fx_nodebug, .-lt_fx_nodebug\n"
	".popsection\n");
