/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes through the decoder (as --dump reads
 * them) and through decode -> merge -> replay, and the Python frames'
 * code objects through the line table reader. Any crash, hang or
 * sanitizer report is a bug; each one found becomes a regression test in
 * tests/analyzer/test_fuzz_regressions.c. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "analysis.h"
#include "dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Looks up the line of every Python frame the replay kept (the reports
 * would), whatever its code object's line table holds. */
static void python_lines(lt__analysis_t *a)
{
	if (!a->replay)
		return;
	const lt__agg_t *agg = lt__replay_agg(a->replay);
	for (uint32_t i = 0; i < agg->nsites; i++)
		for (uint32_t j = 0; j < agg->sites[i]->npyframes; j++) {
			const lt__pyframe_t *f = &agg->sites[i]->pyframes[j];
			if (f->code)
				(void)lt__pycode_line(f->code, lt__pyframe_instruction(f));
		}
}

static FILE *open_bytes(const uint8_t *data, size_t size)
{
	if (size == 0)
		return fmemopen((void *)"", 1, "rb"); /* glibc refuses size 0 */
	return fmemopen((void *)data, size, "rb");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	if (!devnull)
		devnull = fopen("/dev/null", "w");

	lt__decode_opts_t dopts = {.emit_blocks = true, .follow_parent = false};
	lt__decoder_t *d;
	FILE *f = open_bytes(data, size);
	if (!f)
		return 0;
	if (lt__decoder_open_stream(&d, f, "fuzz", "/nonexistent", &dopts) == 0)
		lt__dump_trace(d, devnull);
	lt__decoder_close(d);

	f = open_bytes(data, size);
	if (!f)
		return 0;
	lt__analysis_t a;
	lt__merge_opts_t mopts = {.max_buffered = 4096};
	if (lt__analysis_open(&a, "fuzz", f, &mopts) == 0 && lt__analysis_run(&a, NULL, NULL) == 0)
		python_lines(&a);
	lt__analysis_close(&a);
	return 0;
}
