/* SPDX-License-Identifier: MIT */
/* Trend statistics and growth verdicts (see trend.h). */
#include "trend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *lt__verdict_name(lt__verdict_t v)
{
	static const char *const names[] = {"growing", "plateau", "transient", "stable"};
	return names[v];
}

/* Least-squares line through (t[i], y[i]); *se is the slope's standard
 * error (0 on a perfect fit), *r2 the coefficient of determination. */
static void least_squares(const double *t, const uint64_t *y, size_t n, double *slope,
                          double *intercept, double *se, double *r2)
{
	double mt = 0, my = 0;
	for (size_t i = 0; i < n; i++) {
		mt += t[i];
		my += (double)y[i];
	}
	mt /= (double)n;
	my /= (double)n;
	double sxx = 0, sxy = 0, syy = 0;
	for (size_t i = 0; i < n; i++) {
		double dt = t[i] - mt, dy = (double)y[i] - my;
		sxx += dt * dt;
		sxy += dt * dy;
		syy += dy * dy;
	}
	*slope = sxx > 0 ? sxy / sxx : 0;
	*intercept = my - *slope * mt;
	double sse = syy - *slope * sxy;
	if (sse < 0)
		sse = 0; /* rounding on a perfect line */
	*r2 = syy > 0 ? 1 - sse / syy : 0;
	*se = n > 2 && sxx > 0 ? sqrt(sse / (double)(n - 2) / sxx) : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Mann-Kendall: S counts rising minus falling pairs; its variance under
 * "no trend" is corrected for ties (flat stretches are common here). */
static void mann_kendall(const uint64_t *y, size_t n, double *s_out, double *z, double *p)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			s += (y[j] > y[i]) - (y[j] < y[i]);
	double nn = (double)n;
	double var = nn * (nn - 1) * (2 * nn + 5);
	uint64_t *sorted = malloc(n * sizeof *sorted);
	if (sorted) {
		memcpy(sorted, y, n * sizeof *sorted);
		qsort(sorted, n, sizeof *sorted, cmp_u64);
		for (size_t i = 0; i < n;) {
			size_t k = i;
			while (k < n && sorted[k] == sorted[i])
				k++;
			double tg = (double)(k - i);
			var -= tg * (tg - 1) * (2 * tg + 5);
			i = k;
		}
		free(sorted);
	}
	var /= 18;
	*s_out = s;
	if (var <= 0) {
		*z = 0;
		*p = 1;
		return;
	}
	/* Continuity correction: S moves in steps of 2. */
	*z = s > 0 ? (s - 1) / sqrt(var) : s < 0 ? (s + 1) / sqrt(var) : 0;
	*p = erfc(fabs(*z) / sqrt(2.0));
}

void lt__trend_fit(const double *t, const uint64_t *y, size_t n, const lt__trend_opts_t *o,
                   lt__trend_t *out)
{
	memset(out, 0, sizeof *out);
	out->mk_p = 1;
	out->verdict = LT__STABLE;
	if (n == 0)
		return;
	out->first = y[0];
	out->last = y[n - 1];
	out->min = out->max = y[0];
	for (size_t i = 1; i < n; i++) {
		if (y[i] > out->max) {
			out->max = y[i];
			out->argmax = i;
		}
		if (y[i] < out->min)
			out->min = y[i];
	}
	if (n < 3)
		return;
	double se, r2, ignored;
	least_squares(t, y, n, &out->slope, &out->intercept, &se, &r2);
	out->r2 = r2;
	out->slope_t = se > 0 ? out->slope / se : out->slope != 0 ? INFINITY : 0;
	size_t k = n / 3 < 3 ? 3 : n / 3;
	least_squares(t + (n - k), y + (n - k), k, &out->final_slope, &ignored, &ignored, &ignored);
	mann_kendall(y, n, &out->mk_s, &out->mk_z, &out->mk_p);

	uint64_t range = out->max - out->min;
	if (range < o->min_bytes)
		return; /* stable */
	/* Where the series ends within its range: 0 at the bottom, 1 at the
	 * top. */
	double end_level = (double)(out->last - out->min) / (double)range;
	if (out->argmax < n - 1 && end_level <= LT__TREND_LOW_END) {
		out->verdict = LT__TRANSIENT;
		return;
	}
	if (out->slope > 0 && out->mk_z >= o->z_crit &&
	    out->final_slope >= LT__TREND_END_RATIO * out->slope &&
	    end_level >= 1 - LT__TREND_LOW_END) {
		out->verdict = LT__GROWING;
		return;
	}
	/* Not growing through the end, but ending well above where it
	 * began: it rose, then levelled off. */
	if (out->last > out->first && out->last - out->first > range / 4)
		out->verdict = LT__PLATEAU;
}
