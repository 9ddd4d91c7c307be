/* SPDX-License-Identifier: MIT */
/* Trend statistics of a call site's live bytes sampled over time: a
 * least-squares slope with its t statistic and R², the Mann-Kendall
 * monotonic trend test, and the verdict that separates steady growth
 * (a leak suspect) from a plateau (a bounded cache), a transient peak and
 * a flat line. Pure functions, unit-tested on synthetic series. */
#ifndef LT_ANALYZER_TREND_H
#define LT_ANALYZER_TREND_H

#include <stddef.h>
#include <stdint.h>

typedef enum lt__verdict_e {
	LT__GROWING,   /* significant upward trend that goes on to the end */
	LT__PLATEAU,   /* rose, then flattened out: bounded */
	LT__TRANSIENT, /* rose and came back down */
	LT__STABLE,    /* flat, or changes too small to matter */
} lt__verdict_t;

typedef struct lt__trend_opts_s {
	uint64_t min_bytes; /* a series whose range is smaller is stable */
	double z_crit;      /* Mann-Kendall z a growing series must reach */
} lt__trend_opts_t;

#define LT__TREND_MIN_BYTES 4096  /* below a page of change: noise */
#define LT__TREND_Z_CRIT    2.326 /* one-sided p < 0.01 */
#define LT__TREND_END_RATIO 0.3   /* final-third slope / overall slope of a growth */
#define LT__TREND_LOW_END   0.25  /* a transient ends this low in its range */

typedef struct lt__trend_s {
	double slope;            /* least squares, bytes per second */
	double intercept;        /* bytes at t = 0 */
	double r2;               /* of the fit; 0 for a flat series */
	double slope_t;          /* slope / its standard error; INFINITY on a perfect line */
	double final_slope;      /* least squares over the last third of the samples */
	double mk_s, mk_z, mk_p; /* Mann-Kendall S, z score, two-sided p-value */
	uint64_t first, last, min, max;
	size_t argmax; /* first sample at max */
	lt__verdict_t verdict;
} lt__trend_t;

/* Fits the n samples y at times t (seconds, increasing) and classifies
 * them. Needs n >= 3 for a trend; shorter series are stable. */
void lt__trend_fit(const double *t, const uint64_t *y, size_t n, const lt__trend_opts_t *o,
                   lt__trend_t *out);

const char *lt__verdict_name(lt__verdict_t v);

#endif
