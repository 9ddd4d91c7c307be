/* SPDX-License-Identifier: MIT */
/* Test helpers: run a built trace through decode -> merge -> replay. */
#ifndef LT_TESTS_HELPERS_H
#define LT_TESTS_HELPERS_H

#include <criterion/criterion.h>
#include <stdint.h>

#include "analysis.h"
#include "tracebuilder.h"

/* Analyzes tb with merge options (window, max_buffered; 0 = defaults);
 * asserts that the run succeeds. Close *a with lt__analysis_close(). */
static inline void run_tb(const tb_t *tb, lt__analysis_t *a, uint64_t window,
			  uint64_t max_buffered)
{
	lt__merge_opts_t o = {.window = window, .max_buffered = max_buffered};
	int rc = lt__analysis_open(a, "mem", tb_open(tb, SIZE_MAX), &o);
	cr_assert_eq(rc, 0, "open: %s", lt__decoder_error(a->dec));
	rc = lt__analysis_run(a, NULL, NULL);
	cr_assert_eq(rc, 0, "run: %s", lt__decoder_error(a->dec));
}

#endif
