/* SPDX-License-Identifier: MIT */
/* Writes the golden trace tests/golden/mt-leaks.bin with the test trace
 * builder: a three-thread program with known leaks, a realloc chain, a
 * cross-thread free and temporaries. Run it from the source tree:
 *   build/tests/analyzer/gen_golden tests/golden/mt-leaks.bin
 * and regenerate the expected reports with leaktrace-report (see
 * tests/golden/README.md). */
#include <stdio.h>

#include "leaktrace/format.h"
#include "tracebuilder.h"

#define APP 0x555500000000ull

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_golden OUT.bin\n");
		return 2;
	}
	tb_t *tb = tb_new();
	const char *av[] = {"./app", "--golden"};
	tb_process(tb, 4242, 1, "/opt/golden/app", 2, av, 0, "", 0, 0);
	tb_flush(tb, LT_CODEC_RAW);
	const uint8_t bid[] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
	tb_module(tb, 1, "/opt/golden/app", APP, APP + 0x1000, APP + 0x9000, bid, sizeof bid);
	/* Stacks: innermost first; 1 and 2 differ only in the allocator frame
	 * (hidden in neither: the module is not the shim), 3 is a realloc
	 * site, 4 a temporary buffer, 5 the consumer's. */
	uint64_t s1[] = {APP + 0x1100, APP + 0x2200, APP + 0x3300};
	uint64_t s2[] = {APP + 0x1180, APP + 0x2200, APP + 0x3300};
	uint64_t s3[] = {APP + 0x1400, APP + 0x3300};
	uint64_t s4[] = {APP + 0x1500, APP + 0x3300};
	uint64_t s5[] = {APP + 0x1600, APP + 0x3400};
	tb_stack(tb, 1, 3, s1);
	tb_stack(tb, 2, 3, s2);
	tb_stack(tb, 3, 2, s3);
	tb_stack(tb, 4, 2, s4);
	tb_stack(tb, 5, 2, s5);
	tb_time(tb, 0, 0);
	tb_thread_start(tb, 1, 4242, 0);
	tb_at(tb, 1, 0);
	for (int i = 0; i < 10; i++)
		tb_alloc(tb, 1, 100, 0x10000 + 0x100 * (uint64_t)i); /* 10 x 100: leaked */
	tb_alloc(tb, 2, 4000, 0x20000); /* freed by thread 2 */
	tb_alloc(tb, 3, 10, 0x30000);
	tb_realloc(tb, 3, 20, 0x30000, 0x30000);
	tb_realloc(tb, 3, 5000, 0x31000, 0x30000); /* leaked: 5000 */
	for (int i = 0; i < 5; i++) {
		tb_alloc(tb, 4, 64, 0x40000);
		tb_free_ev(tb, 0x40000); /* temporaries */
	}
	tb_marker(tb, "after-setup");
	tb_flush(tb, LT_CODEC_ZSTD);
	tb_time(tb, 1, 1000000);
	tb_time(tb, 2, 2000000);
	tb_thread_start(tb, 2, 4243, 2);
	tb_at(tb, 2, 2);
	tb_free_ev(tb, 0x20000);
	tb_alloc(tb, 5, 1 << 20, 0x50000); /* the peak: 1 MiB, then freed */
	tb_free_ev(tb, 0x50000);
	tb_alloc(tb, 5, 48, 0x60000); /* leaked by thread 2 */
	tb_thread_end(tb, 2);
	tb_at(tb, 1, 2);
	tb_alloc(tb, 1, 100, 0x11000); /* the 11th leak of stack 1 */
	tb_time(tb, 3, 3000000);
	tb_end(tb, LT_EXIT_NORMAL, 0);
	tb_flush(tb, LT_CODEC_ZSTD);
	int rc = tb_write(tb, argv[1]);
	tb_free(tb);
	return rc ? 1 : 0;
}
