/* SPDX-License-Identifier: MIT */
/* Unit tests of the snapshot work's pure parts: the trend statistics and
 * verdicts on synthetic series, the size and point parsers, filters and
 * grouping (tracemalloc's statistics and cumulative rules). */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "snapshot.h"
#include "trend.h"

static const lt__trend_opts_t opts = {.min_bytes = LT__TREND_MIN_BYTES, .z_crit = LT__TREND_Z_CRIT};

#define N 20

static void times(double *t)
{
	for (int i = 0; i < N; i++)
		t[i] = 0.1 * (i + 1);
}

static lt__trend_t fit(const uint64_t *y)
{
	double t[N];
	times(t);
	lt__trend_t tr;
	lt__trend_fit(t, y, N, &opts, &tr);
	return tr;
}

Test(trend, steady_growth_is_growing_with_its_rate)
{
	uint64_t y[N];
	for (int i = 0; i < N; i++)
		y[i] = 100000 + 327680 * (uint64_t)(i + 1); /* 3,276,800 B/s */
	lt__trend_t tr = fit(y);
	cr_assert_eq(tr.verdict, LT__GROWING);
	cr_assert_float_eq(tr.slope, 3276800.0, 1.0);
	cr_assert_float_eq(tr.r2, 1.0, 1e-9);
	cr_assert(tr.mk_z > 6.0, "z = %f", tr.mk_z);
	cr_assert_eq(tr.mk_s, N * (N - 1) / 2);
}

Test(trend, staircase_growth_is_growing)
{
	uint64_t y[N];
	for (int i = 0; i < N; i++)
		y[i] = 65536 * (uint64_t)(i / 2); /* a step every other window */
	cr_assert_eq(fit(y).verdict, LT__GROWING);
}

Test(trend, bounded_cache_is_a_plateau)
{
	uint64_t y[N];
	for (int i = 0; i < N; i++)
		y[i] = i < 2 ? 409600 * (uint64_t)(i + 1) : 819200;
	lt__trend_t tr = fit(y);
	cr_assert_eq(tr.verdict, LT__PLATEAU);
	cr_assert(tr.final_slope == 0);
}

Test(trend, growth_that_levels_off_is_a_plateau)
{
	uint64_t y[N];
	for (int i = 0; i < N; i++)
		y[i] = (uint64_t)(1e6 * (1 - exp(-i / 2.0)));
	cr_assert_eq(fit(y).verdict, LT__PLATEAU);
}

Test(trend, peak_back_to_baseline_is_transient)
{
	uint64_t y[N];
	for (int i = 0; i < N; i++)
		y[i] = 65536 + (i >= 8 && i < 11 ? 33554432u : 0);
	lt__trend_t tr = fit(y);
	cr_assert_eq(tr.verdict, LT__TRANSIENT);
	cr_assert_eq(tr.max, 65536 + 33554432u);
	cr_assert_eq(tr.argmax, 8);
}

Test(trend, flat_and_small_changes_are_stable)
{
	uint64_t y[N];
	for (int i = 0; i < N; i++)
		y[i] = 1 << 20;
	lt__trend_t tr = fit(y);
	cr_assert_eq(tr.verdict, LT__STABLE);
	cr_assert_eq(tr.slope, 0);
	for (int i = 0; i < N; i++)
		y[i] = (1 << 20) + (uint64_t)i * 100; /* 2 KiB over the run: noise */
	cr_assert_eq(fit(y).verdict, LT__STABLE);
}

Test(trend, late_leak_is_growing)
{
	uint64_t y[N];
	for (int i = 0; i < N; i++)
		y[i] = i < 10 ? 4096 : 4096 + 100000 * (uint64_t)(i - 9);
	cr_assert_eq(fit(y).verdict, LT__GROWING);
}

Test(trend, short_series_are_stable)
{
	double t[2] = {0.1, 0.2};
	uint64_t y[2] = {0, 1 << 30};
	lt__trend_t tr;
	lt__trend_fit(t, y, 2, &opts, &tr);
	cr_assert_eq(tr.verdict, LT__STABLE);
	cr_assert_str_eq(lt__verdict_name(LT__PLATEAU), "plateau");
}

Test(parse, sizes)
{
	uint64_t v;
	cr_assert_eq(lt__parse_size("1000", &v), 0);
	cr_assert_eq(v, 1000);
	cr_assert_eq(lt__parse_size("1MiB", &v), 0);
	cr_assert_eq(v, 1048576);
	cr_assert_eq(lt__parse_size("512KiB", &v), 0);
	cr_assert_eq(v, 524288);
	cr_assert_eq(lt__parse_size("10MB", &v), 0);
	cr_assert_eq(v, 10000000);
	cr_assert_eq(lt__parse_size("1.5G", &v), 0);
	cr_assert_eq(v, 1610612736);
	cr_assert_eq(lt__parse_size("4k", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(lt__parse_size("2 MiB", &v), 0);
	cr_assert_eq(v, 2097152);
	cr_assert_eq(lt__parse_size("", &v), -EINVAL);
	cr_assert_eq(lt__parse_size("-1", &v), -EINVAL);
	cr_assert_eq(lt__parse_size("1XB", &v), -EINVAL);
	cr_assert_eq(lt__parse_size("MiB", &v), -EINVAL);
	cr_assert_eq(lt__parse_size("1e30", &v), -EINVAL);
	cr_assert_eq(lt__parse_size("nan", &v), -EINVAL);
}

Test(parse, points)
{
	lt__point_t p;
	char err[LT__ERR_LEN];
	cr_assert_eq(lt__point_parse("end", &p, err, sizeof err), 0);
	cr_assert_eq(p.kind, LT__AT_END);
	cr_assert_eq(lt__point_parse("peak", &p, err, sizeof err), 0);
	cr_assert_eq(p.kind, LT__AT_PEAK);
	cr_assert_eq(lt__point_parse("1.5", &p, err, sizeof err), 0);
	cr_assert_eq(p.kind, LT__AT_TIME);
	cr_assert_eq(p.ns, 1500000000u);
	cr_assert_eq(lt__point_parse("250ms", &p, err, sizeof err), 0);
	cr_assert_eq(p.ns, 250000000u);
	cr_assert_eq(lt__point_parse("2s", &p, err, sizeof err), 0);
	cr_assert_eq(p.ns, 2000000000u);
	cr_assert_eq(lt__point_parse("after-warmup", &p, err, sizeof err), 0);
	cr_assert_eq(p.kind, LT__AT_MARKER);
	cr_assert_eq(p.occurrence, 1);
	cr_assert_eq(p.marker_len, strlen("after-warmup"));
	cr_assert_eq(lt__point_parse("tick#3", &p, err, sizeof err), 0);
	cr_assert_eq(p.occurrence, 3);
	cr_assert_eq(p.marker_len, 4);
	cr_assert_eq(lt__point_parse("marker:end", &p, err, sizeof err), 0);
	cr_assert_eq(p.kind, LT__AT_MARKER);
	cr_assert_eq(strncmp(p.marker, "end", p.marker_len), 0);
	cr_assert_eq(lt__point_parse("a#b", &p, err, sizeof err), 0);
	cr_assert_eq(p.marker_len, 3);
	cr_assert_eq(lt__point_parse("1.5x", &p, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "marker:1.5x"));
	cr_assert_eq(lt__point_parse("", &p, err, sizeof err), -EINVAL);
	cr_assert_eq(lt__point_parse("marker:", &p, err, sizeof err), -EINVAL);
}

/* A snapshot of three traces: two from app.c (one through a wrapper in
 * util.c), one from libfoo.so without debug information. */
static lt__snapshot_t *example(void)
{
	static lt__snap_frame_t t0[] = {{"app", "load", "/src/app.c", 20},
	                                {"app", "main", "/src/app.c", 10}};
	static lt__snap_frame_t t1[] = {{"app", "xdup", "/src/util.c", 5},
	                                {"app", "load", "/src/app.c", 21},
	                                {"app", "main", "/src/app.c", 10}};
	static lt__snap_frame_t t2[] = {{"libfoo.so", "libfoo.so+0x1234", NULL, 0},
	                                {"app", "main", "/src/app.c", 11}};
	static lt__snap_trace_t traces[] = {{t0, 2, 1000, 10}, {t1, 3, 300, 3}, {t2, 2, 50, 1}};
	static lt__snapshot_t s = {
	    .traces = traces, .ntraces = 3, .total_size = 1350, .total_count = 14};
	return &s;
}

static const lt__group_t *find(const lt__groups_t *g, const char *function, const char *file)
{
	for (size_t i = 0; i < g->n; i++) {
		const lt__snap_frame_t *f = &g->v[i]->frames[0];
		if ((!function || strcmp(f->function, function) == 0) &&
		    (!file || (f->file && strcmp(f->file, file) == 0)))
			return g->v[i];
	}
	return NULL;
}

Test(groups, by_lineno_filename_function)
{
	lt__groups_t g = {.by = LT__BY_LINENO};
	cr_assert_eq(lt__groups_add(&g, example(), NULL, false), 0);
	lt__groups_sort(&g, false);
	cr_assert_eq(g.n, 3);
	cr_assert_str_eq(g.v[0]->frames[0].function, "load");
	cr_assert_eq(g.v[0]->size, 1000);
	cr_assert_eq(g.size, 1350);
	cr_assert_eq(g.count, 14);
	lt__groups_free(&g);

	g = (lt__groups_t){.by = LT__BY_FILENAME};
	cr_assert_eq(lt__groups_add(&g, example(), NULL, false), 0);
	cr_assert_eq(g.n, 3); /* app.c, util.c, and libfoo.so standing for its file */
	cr_assert_eq(find(&g, NULL, "/src/app.c")->size, 1000);
	lt__groups_free(&g);

	g = (lt__groups_t){.by = LT__BY_FUNCTION, .cumulative = true};
	cr_assert_eq(lt__groups_add(&g, example(), NULL, false), 0);
	/* main is in every stack: cumulative, it holds everything. */
	cr_assert_eq(find(&g, "main", NULL)->size, 1350);
	cr_assert_eq(find(&g, "load", NULL)->size, 1300);
	cr_assert_eq(find(&g, "xdup", NULL)->size, 300);
	cr_assert_eq(g.size, 1350); /* totals never count twice */
	lt__groups_free(&g);
}

Test(groups, diff_sorted_by_absolute_difference)
{
	static lt__snap_frame_t a[] = {{"app", "a", "/a.c", 1}};
	static lt__snap_frame_t b[] = {{"app", "b", "/b.c", 2}};
	static lt__snap_trace_t old_t[] = {{a, 1, 1000, 1}, {b, 1, 500, 5}};
	static lt__snap_trace_t new_t[] = {{a, 1, 1100, 2}, {b, 1, 100, 1}};
	lt__snapshot_t old = {.traces = old_t, .ntraces = 2};
	lt__snapshot_t new = {.traces = new_t, .ntraces = 2};
	lt__groups_t g = {.by = LT__BY_LINENO};
	cr_assert_eq(lt__groups_add(&g, &old, NULL, true), 0);
	cr_assert_eq(lt__groups_add(&g, &new, NULL, false), 0);
	lt__groups_sort(&g, true);
	cr_assert_str_eq(g.v[0]->frames[0].function, "b"); /* -400 before +100 */
	cr_assert_eq(g.v[0]->old_size, 500);
	cr_assert_eq(g.v[0]->size, 100);
	cr_assert_eq(g.old_size, 1500);
	cr_assert_eq(g.size, 1200);
	lt__groups_free(&g);
}

Test(filters, include_exclude_like_tracemalloc)
{
	lt__snapshot_t *s = example();
	lt__filters_t f = {.n = 1, .v = {{.include = true, .glob = "*/app.c"}}};
	cr_assert(lt__filters_keep(&f, &s->traces[0]));
	cr_assert(!lt__filters_keep(&f, &s->traces[1])); /* first frame in util.c */
	f.all_frames = true;
	cr_assert(lt__filters_keep(&f, &s->traces[1]));
	lt__filters_t ex = {.n = 1, .v = {{.include = false, .glob = "libfoo*"}}};
	cr_assert(!lt__filters_keep(&ex, &s->traces[2])); /* by module */
	cr_assert(lt__filters_keep(&ex, &s->traces[0]));
	lt__filters_t both = {
	    .n = 2,
	    .v = {{.include = true, .glob = "app"}, {.include = false, .glob = "*/util.c"}}};
	cr_assert(lt__filters_keep(&both, &s->traces[0]));
	cr_assert(!lt__filters_keep(&both, &s->traces[1]));
}
