/* SPDX-License-Identifier: MIT */
/* The growth command: each call site's live bytes sampled over the trace's
 * time in windows, the growth rate (bytes per second, per marker interval)
 * and a verdict with the statistic behind it (trend.h): steady growth,
 * plateau, transient peak or stable. Works on truncated traces. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "format_util.h"
#include "leaktrace/format.h"
#include "report.h"
#include "snapshot.h"
#include "trend.h"

#define LT__GROWTH_WINDOWS     20 /* default --windows */
#define LT__GROWTH_MAX_WINDOWS 1000
#define LT__RAW_PER_WINDOW     4        /* raw windows kept per final window, at most */
#define LT__RAW_MIN_NS         1000000u /* the epoch clock ticks about once a ms */

/*
 * Sampling without knowing the trace's length in advance: time is cut into
 * raw windows of interval_ns from the process start, and each site's
 * highest live bytes in each raw window are kept. When the raw buffer is
 * full, neighbouring raw windows are merged (max of the two) and the
 * interval doubles, so the buffer always spans the whole trace with
 * between cap/2 and cap raw windows; at the end they are folded into the
 * requested number of windows. The maximum, not the value at the window's
 * end, is what a window shows: a peak is never missed, and a program's
 * cleanup at exit does not hide the growth before it.
 */
struct sampler {
	uint64_t interval_ns, next_end;
	size_t nraw, cap;
	double *raw_end_s;          /* end of each raw window, seconds */
	uint64_t **series;          /* per aggregate site: cap raw maxima, NULL = none yet */
	uint64_t *window_max;       /* per aggregate site: max in the open window */
	size_t nsites;              /* sites the arrays cover */
	uint64_t *total, total_max; /* the whole heap likewise */
	/* Markers: live bytes per site at the first and the last marker. */
	uint64_t nmarkers;
	uint64_t *at_first, *at_last;
	size_t first_sites, last_sites; /* sites at_first, at_last cover */
};

/* Makes the per-site arrays cover n sites. Returns 0 or -ENOMEM. */
static int sampler_sites(struct sampler *s, size_t n)
{
	if (n <= s->nsites)
		return 0;
	size_t ncap = s->nsites ? s->nsites : 256;
	while (ncap < n)
		ncap *= 2;
	uint64_t **series = realloc(s->series, ncap * sizeof *series);
	if (!series)
		return -ENOMEM;
	s->series = series;
	uint64_t *wm = realloc(s->window_max, ncap * sizeof *wm);
	if (!wm)
		return -ENOMEM;
	s->window_max = wm;
	for (size_t i = s->nsites; i < ncap; i++) {
		s->series[i] = NULL;
		s->window_max[i] = 0;
	}
	s->nsites = ncap;
	return 0;
}

/* Merges raw windows pairwise and doubles the interval. */
static void sampler_compact(struct sampler *s)
{
	size_t half = s->nraw / 2;
	for (size_t j = 0; j < half; j++) {
		s->raw_end_s[j] = s->raw_end_s[2 * j + 1];
		s->total[j] =
		    s->total[2 * j] > s->total[2 * j + 1] ? s->total[2 * j] : s->total[2 * j + 1];
	}
	for (size_t i = 0; i < s->nsites; i++) {
		uint64_t *v = s->series[i];
		if (!v)
			continue;
		for (size_t j = 0; j < half; j++)
			v[j] = v[2 * j] > v[2 * j + 1] ? v[2 * j] : v[2 * j + 1];
	}
	s->nraw = half;
	s->interval_ns *= 2;
}

/* Closes the open raw window at end_ns. Returns 0 or -ENOMEM. */
static int sampler_close(struct sampler *s, const lt__replay_t *r, uint64_t end_ns)
{
	lt__agg_t *agg = lt__replay_agg((lt__replay_t *)r);
	if (sampler_sites(s, agg->nsites))
		return -ENOMEM;
	for (uint32_t i = 0; i < agg->nsites; i++) {
		const lt__site_t *site = agg->sites[i];
		if (!s->series[i]) {
			if (!site->allocations)
				continue;
			s->series[i] = calloc(s->cap, sizeof **s->series);
			if (!s->series[i])
				return -ENOMEM;
		}
		s->series[i][s->nraw] = s->window_max[i];
		s->window_max[i] = site->live_bytes;
	}
	s->total[s->nraw] = s->total_max;
	s->total_max = lt__replay_totals(r)->current_bytes;
	s->raw_end_s[s->nraw] = (double)end_ns / 1e9;
	s->nraw++;
	if (s->nraw == s->cap)
		sampler_compact(s);
	s->next_end = (s->nraw + 1) * s->interval_ns;
	return 0;
}

/* After an allocation: its site's and the heap's window maxima. */
static int sampler_note(struct sampler *s, const lt__replay_t *r, uint64_t addr)
{
	const lt__live_t *b = lt__replay_find(r, addr);
	if (!b)
		return 0;
	if (sampler_sites(s, (size_t)b->site + 1))
		return -ENOMEM;
	const lt__site_t *site = lt__replay_agg((lt__replay_t *)r)->sites[b->site];
	if (site->live_bytes > s->window_max[b->site])
		s->window_max[b->site] = site->live_bytes;
	uint64_t cur = lt__replay_totals(r)->current_bytes;
	if (cur > s->total_max)
		s->total_max = cur;
	return 0;
}

/* Keeps each site's live bytes at the first and at the latest marker. */
static int sampler_marker(struct sampler *s, const lt__replay_t *r)
{
	const lt__agg_t *agg = lt__replay_agg((lt__replay_t *)r);
	if (s->nmarkers++ == 0) {
		s->first_sites = agg->nsites;
		s->at_first = calloc(agg->nsites ? agg->nsites : 1, sizeof *s->at_first);
		if (!s->at_first)
			return -ENOMEM;
		for (uint32_t i = 0; i < agg->nsites; i++)
			s->at_first[i] = agg->sites[i]->live_bytes;
	}
	uint64_t *v = realloc(s->at_last, (agg->nsites ? agg->nsites : 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	s->at_last = v;
	s->last_sites = agg->nsites;
	for (uint32_t i = 0; i < agg->nsites; i++)
		v[i] = agg->sites[i]->live_bytes;
	return 0;
}

static void sampler_free(struct sampler *s)
{
	for (size_t i = 0; i < s->nsites; i++)
		free(s->series[i]);
	free(s->series);
	free(s->window_max);
	free(s->total);
	free(s->raw_end_s);
	free(s->at_first);
	free(s->at_last);
}

/* Where sampling stops: the end of the trace, or --until's marker or time. */
struct until {
	bool set;
	lt__point_t point;
	uint64_t seen; /* markers of its name so far */
	bool reached;
	uint64_t ns; /* when it was reached */
};

/* Replays the trace up to its end or until's point and fills the sampler;
 * *end_ns is where sampling stopped. Returns 0, or 2 after printing an
 * error. */
static int sample_trace(const char *trace, lt__analysis_t *a, struct sampler *s,
                        struct until *until, bool *truncated, uint64_t *end_ns)
{
	if (lt__trace_open(a, trace))
		return 2;
	s->raw_end_s = malloc(s->cap * sizeof *s->raw_end_s);
	s->total = malloc(s->cap * sizeof *s->total);
	s->interval_ns = LT__RAW_MIN_NS;
	s->next_end = s->interval_ns;
	lt__merged_t item;
	int rc = s->raw_end_s && s->total ? 0 : -ENOMEM;
	uint64_t cached_epoch = UINT64_MAX, ns = 0;
	while (rc == 0 && (rc = lt__merge_next(a->merge, &item)) == 1) {
		if (item.is_event && item.ev.epoch != cached_epoch) {
			cached_epoch = item.ev.epoch;
			if (!lt__replay_epoch_ns(a->replay, cached_epoch, &ns))
				ns = 0;
			if (until->set && until->point.kind == LT__AT_TIME &&
			    ns > until->point.ns) {
				until->reached = true;
				until->ns = until->point.ns;
				rc = 0;
				break;
			}
			while (rc >= 0 && ns >= s->next_end)
				rc = sampler_close(s, a->replay, s->next_end);
		}
		if (rc >= 0)
			rc = lt__replay_apply(a->replay, &item);
		if (rc < 0 || !item.is_event)
			continue;
		if (item.ev.type == LT_REC_ALLOC || item.ev.type == LT_REC_REALLOC)
			rc = sampler_note(s, a->replay, item.ev.addr);
		else if (item.ev.type == LT_REC_MARKER)
			rc = sampler_marker(s, a->replay);
		if (rc == 0 && until->set && item.ev.type == LT_REC_MARKER &&
		    until->point.kind == LT__AT_MARKER &&
		    lt__point_names(&until->point, item.ev.str ? item.ev.str : "") &&
		    ++until->seen == until->point.occurrence) {
			until->reached = true;
			until->ns = ns;
			break;
		}
	}
	int status = lt__trace_finish(a, trace, rc, truncated);
	if (status)
		return status;
	/* Close the windows up to the end, the last one partial. */
	uint64_t end = lt__replay_duration_ns(a->replay);
	if (until->reached) {
		end = until->ns;
	} else if (until->set && until->point.kind == LT__AT_TIME) {
		if (until->point.ns > end)
			return lt__fail("%s: the trace ends at %.3f s, before --until %g s", trace,
			                (double)end / 1e9, (double)until->point.ns / 1e9);
		end = until->point.ns;
	} else if (until->set) {
		return lt__fail("%s: --until: no marker '%.*s'%s in the trace", trace,
		                (int)until->point.marker_len, until->point.marker,
		                until->seen ? " that often" : "");
	}
	*end_ns = end;
	while (rc == 0 && s->next_end < end)
		rc = sampler_close(s, a->replay, s->next_end);
	if (rc == 0)
		rc = sampler_close(s, a->replay, end);
	return rc ? lt__fail("%s", strerror(-rc)) : 0;
}

/* ---- call sites -------------------------------------------------------- */

struct gsite {
	char *key;
	const lt__frame_t **frames; /* visible frames of its first stack */
	size_t nframes;
	uint64_t *raw; /* summed raw series */
	uint64_t live_bytes, live_blocks, allocations;
	int64_t marker_growth; /* live bytes at the last marker - first marker */
	uint64_t *y;           /* per final window */
	lt__trend_t trend;
	UT_hash_handle hh;
};

struct growth {
	const char *trace;
	bool truncated;
	bool clean_end;    /* an END record: the program exited normally */
	uint64_t killed_status; /* 128 + the signal that killed it, or 0 */
	const char *until; /* --until's argument when sampling stopped there */
	double cleanup_s;  /* > 0: the windows stop here, before the cleanup at exit */
	uint64_t cleanup_bytes; /* what that cleanup freed */
	size_t growing_sites; /* sites whose verdict is growing */
	double duration_s;
	size_t windows;
	double *t; /* end of each final window, seconds */
	uint64_t *total_y;
	lt__trend_t total_trend;
	struct gsite **v;
	size_t n;
	uint64_t nmarkers;
	lt__trend_opts_t topts;
	bool full_names; /* --full-names: C++ template arguments in text */
};

/* Folds raw series into w windows: window k takes raw j with
 * j * w / nraw == k, and shows their maximum. */
static void fold(const uint64_t *raw, size_t nraw, size_t w, uint64_t *y)
{
	for (size_t k = 0; k < w; k++)
		y[k] = 0;
	for (size_t j = 0; j < nraw; j++) {
		size_t k = j * w / nraw;
		if (raw[j] > y[k])
			y[k] = raw[j];
	}
}

static int cmp_gsite(const void *a, const void *b)
{
	const struct gsite *x = *(const struct gsite *const *)a;
	const struct gsite *y = *(const struct gsite *const *)b;
	if (x->trend.verdict != y->trend.verdict)
		return x->trend.verdict < y->trend.verdict ? -1 : 1;
	if (x->trend.slope != y->trend.slope)
		return x->trend.slope > y->trend.slope ? -1 : 1;
	if (x->trend.max != y->trend.max)
		return x->trend.max > y->trend.max ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* A stack's symbolic identity, for merging stacks into call sites, and
 * whether the filters keep it. Returns 0 or -ENOMEM. */
static int site_key(const lt__frame_t *const *frames, size_t n, const lt__filters_t *filters,
                    char **key, bool *keep)
{
	lt__snap_frame_t *f = calloc(n ? n : 1, sizeof *f);
	char(*labels)[512] = malloc((n ? n : 1) * sizeof *labels);
	if (!f || !labels) {
		free(f);
		free(labels);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *module = frames[i]->module ? frames[i]->module : "";
		const char *slash = strrchr(module, '/');
		f[i].module = (char *)(slash ? slash + 1 : module);
		f[i].function = (char *)lt__frame_label(frames[i], labels[i], sizeof labels[i]);
		f[i].file = (char *)frames[i]->file;
		f[i].line = frames[i]->line;
	}
	lt__snap_trace_t t = {.frames = f, .nframes = n};
	*keep = lt__filters_keep(filters, &t);
	int rc = lt__snap_frames_key(f, n, key);
	free(labels);
	free(f);
	return rc;
}

/* Groups the sampled stacks into call sites and fits each. Returns 0 or
 * -ENOMEM. */
static int build_sites(struct growth *g, lt__analysis_t *a, lt__sym_t *sym, const struct sampler *s,
                       const lt__filters_t *filters)
{
	lt__agg_t *agg = lt__replay_agg(a->replay);
	struct gsite *by_key = NULL;
	int rc = 0;
	g->v = calloc(agg->nsites ? agg->nsites : 1, sizeof *g->v);
	if (!g->v)
		return -ENOMEM;
	for (uint32_t i = 0; i < agg->nsites && rc == 0; i++) {
		const lt__site_t *site = agg->sites[i];
		if (!site->allocations || i >= s->nsites || !s->series[i])
			continue;
		const lt__frame_t **frames;
		size_t n;
		char *key;
		rc = lt__sym_stack(sym, site->modmap, site->frames, site->depth, site->pyframes,
		                   site->npyframes, &frames, &n);
		if (rc)
			break;
		bool keep;
		if ((rc = site_key(frames, n, filters, &key, &keep)) || !keep) {
			if (rc == 0)
				free(key);
			free(frames);
			continue;
		}
		struct gsite *gs;
		HASH_FIND_STR(by_key, key, gs);
		if (gs) {
			free(key);
			free(frames);
		} else {
			gs = calloc(1, sizeof *gs);
			uint64_t *raw = calloc(s->nraw ? s->nraw : 1, sizeof *raw);
			if (!gs || !raw) {
				free(gs);
				free(raw);
				free(key);
				free(frames);
				rc = -ENOMEM;
				break;
			}
			gs->key = key;
			gs->frames = frames;
			gs->nframes = n;
			gs->raw = raw;
			HASH_ADD_KEYPTR(hh, by_key, gs->key, strlen(gs->key), gs);
			g->v[g->n++] = gs;
		}
		for (size_t j = 0; j < s->nraw; j++)
			gs->raw[j] += s->series[i][j];
		gs->live_bytes += site->live_bytes;
		gs->live_blocks += site->live_blocks;
		gs->allocations += site->allocations;
		if (s->nmarkers >= 2) {
			/* A site born after a marker held nothing at it. */
			uint64_t first = i < s->first_sites ? s->at_first[i] : 0;
			uint64_t last = i < s->last_sites ? s->at_last[i] : 0;
			gs->marker_growth += (int64_t)last - (int64_t)first;
		}
	}
	HASH_CLEAR(hh, by_key);
	for (size_t i = 0; i < g->n && rc == 0; i++) {
		struct gsite *gs = g->v[i];
		gs->y = malloc(g->windows * sizeof *gs->y);
		if (!gs->y)
			return -ENOMEM;
		fold(gs->raw, s->nraw, g->windows, gs->y);
		lt__trend_fit(g->t, gs->y, g->windows, &g->topts, &gs->trend);
	}
	if (rc == 0 && g->n)
		qsort(g->v, g->n, sizeof *g->v, cmp_gsite);
	return rc;
}

static void growth_free(struct growth *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->v[i]->key);
		free(g->v[i]->frames);
		free(g->v[i]->raw);
		free(g->v[i]->y);
		free(g->v[i]);
	}
	free(g->v);
	free(g->t);
	free(g->total_y);
}

/* ---- output ------------------------------------------------------------ */

static void sparkline(FILE *out, const uint64_t *y, size_t n)
{
	static const char *const bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
	uint64_t max = 0;
	for (size_t i = 0; i < n; i++)
		if (y[i] > max)
			max = y[i];
	for (size_t i = 0; i < n; i++) {
		if (!y[i] || !max) {
			fputc(' ', out);
			continue;
		}
		size_t level = (size_t)((double)y[i] / (double)max * 7.0 + 0.5);
		fputs(bars[level > 7 ? 7 : level], out);
	}
}

/* "+3.1 MiB/s" style rate into buf. */
static const char *rate(double bytes_per_s, char *buf, size_t len)
{
	char h[48];
	double mag = fabs(bytes_per_s);
	lt__human_size(mag > 1.8e19 ? UINT64_MAX : (uint64_t)(mag + 0.5), h, sizeof h);
	snprintf(buf, len, "%s%s/s", bytes_per_s < 0 ? "-" : "+", h);
	return buf;
}

#define LT__LABEL_FRAMES 3     /* frames a site's one-line label names at first */
#define LT__LABEL_MAX_FRAMES 8 /* ... and at most, to tell rows apart */

/* Frames a site's one-line label names: the first frame; while a frame has
 * no line (a binary without debug information, where many sites share
 * their first frame: perl's Perl_safesysmalloc), its callers too, up to
 * the first with a line. */
static size_t label_depth(const struct gsite *gs)
{
	size_t d = 0;
	while (d < gs->nframes && d < LT__LABEL_FRAMES) {
		const lt__frame_t *f = gs->frames[d++];
		if (f->file && f->line)
			break;
	}
	return d;
}

/* Appends s to buf[0..len) after its first *n bytes, cut to fit. */
static void label_cat(char *buf, size_t len, size_t *n, const char *s)
{
	int k = snprintf(buf + *n, len - *n, "%s", s);
	if (k > 0)
		*n = *n + (size_t)k < len ? *n + (size_t)k : len - 1;
}

/* The label "a (file:line) < b < c (module)" of the first `depth` frames
 * into buf: each frame with a line says where, and the last one says its
 * file or module when it has no line. */
static void site_label(char *buf, size_t len, const struct gsite *gs, size_t depth,
                       bool full_names)
{
	size_t n = 0;
	buf[0] = '\0';
	if (!gs->nframes) {
		label_cat(buf, len, &n, "(no stack recorded)");
		return;
	}
	for (size_t i = 0; i < depth && i < gs->nframes; i++) {
		char name[512], shortened[512], where[600];
		const lt__frame_t *f = gs->frames[i];
		if (i)
			label_cat(buf, len, &n, " < ");
		const char *label = lt__frame_label(f, name, sizeof name);
		/* Python's own brackets ("<module>") are no template list. */
		label_cat(buf, len, &n,
			  f->python || full_names ? label
						  : lt__short_name(label, shortened, sizeof shortened));
		where[0] = '\0';
		if (f->file && f->line)
			snprintf(where, sizeof where, " (%s:%u)", f->file, f->line);
		else if (i + 1 == depth || i + 1 == gs->nframes) {
			if (f->file)
				snprintf(where, sizeof where, " (%s)", f->file);
			else if (f->module && f->module[0])
				snprintf(where, sizeof where, " (%s)", f->module);
		}
		label_cat(buf, len, &n, where);
	}
}

/* Labels for the rows shown, each told apart from the others: rows that
 * would read the same (stacks that part only further up) name more
 * callers, up to LT__LABEL_MAX_FRAMES; rows still alike after that keep
 * the short label, numbered. Returns the labels (LT__ROW_LABEL bytes each) or NULL. */
#define LT__ROW_LABEL 2048
static char *row_labels(struct gsite *const *rows, size_t n, bool full_names)
{
	char *label = malloc((n ? n : 1) * LT__ROW_LABEL);
	size_t *depth = malloc((n ? n : 1) * sizeof *depth);
	if (!label || !depth) {
		free(label);
		free(depth);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		depth[i] = label_depth(rows[i]);
		site_label(label + i * LT__ROW_LABEL, LT__ROW_LABEL, rows[i], depth[i],
			   full_names);
	}
	for (bool again = true; again;) {
		again = false;
		for (size_t i = 0; i < n; i++) {
			bool alike = false;
			for (size_t j = 0; j < n; j++)
				if (j != i && strcmp(label + i * LT__ROW_LABEL,
						     label + j * LT__ROW_LABEL) == 0)
					alike = true;
			if (alike && depth[i] < rows[i]->nframes &&
			    depth[i] < LT__LABEL_MAX_FRAMES) {
				depth[i]++;
				again = true;
			}
		}
		if (again)
			for (size_t i = 0; i < n; i++)
				site_label(label + i * LT__ROW_LABEL, LT__ROW_LABEL, rows[i],
					   depth[i], full_names);
	}
	/* Rows that naming more callers did not tell apart go back to the
	 * short label and are numbered: "[stack 2/3]". */
	bool *alike = calloc(n ? n : 1, sizeof *alike);
	if (!alike) {
		free(label);
		free(depth);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			if (j != i && !strcmp(label + i * LT__ROW_LABEL, label + j * LT__ROW_LABEL))
				alike[i] = true;
	for (size_t i = 0; i < n; i++)
		if (alike[i])
			site_label(label + i * LT__ROW_LABEL, LT__ROW_LABEL, rows[i],
				   label_depth(rows[i]), full_names);
	/* Numbered once all are counted: a label compares unnumbered. */
	size_t *nth = calloc(2 * (n ? n : 1), sizeof *nth), *of = nth + n;
	for (size_t i = 0; nth && i < n; i++)
		for (size_t j = 0; alike[i] && j < n; j++)
			if (alike[j] &&
			    !strcmp(label + i * LT__ROW_LABEL, label + j * LT__ROW_LABEL)) {
				of[i]++;
				nth[i] += j < i;
			}
	for (size_t i = 0; nth && i < n; i++)
		if (of[i] > 1) {
			size_t m = strlen(label + i * LT__ROW_LABEL);
			snprintf(label + i * LT__ROW_LABEL + m, LT__ROW_LABEL - m,
				 " [stack %zu/%zu]", nth[i] + 1, of[i]);
		}
	free(nth);
	free(alike);
	free(depth);
	return label;
}

static void print_text(FILE *out, const struct growth *g, size_t top, bool all)
{
	char a[64], b[64];
	fprintf(out, "growth by call site: %s, %.3f s in %zu windows of %.3f s", g->trace,
	        g->duration_s, g->windows, g->duration_s / (double)g->windows);
	if (g->until)
		fprintf(out, " (until %s)\n", g->until);
	else if (g->cleanup_s > 0)
		fprintf(out, "\n  (up to the heap's top: in the last moments the program freed %s on "
		        "its way out; --until end keeps them)\n",
		        lt__human_size(g->cleanup_bytes, b, sizeof b));
	else if (g->truncated)
		fputs(" (trace incomplete: the program was killed)\n", out);
	else if (g->killed_status)
		fprintf(out, " (killed by %s)\n", lt__signal_name(g->killed_status));
	else if (!g->clean_end)
		fputs(" (no end record: the program did not exit normally)\n", out);
	else
		fputc('\n', out);
	/* A heap that grows by a leak after a cache filled ends less steep
	 * than it began and fits as a plateau, while a call site grows: the
	 * heap is growing then, at its final rate. */
	bool by_sites = g->growing_sites && g->total_trend.verdict != LT__GROWING;
	fprintf(out, "whole heap: %-9s %12s  ",
	        lt__verdict_name(by_sites ? LT__GROWING : g->total_trend.verdict),
	        rate(by_sites ? g->total_trend.final_slope : g->total_trend.slope, a, sizeof a));
	sparkline(out, g->total_y, g->windows);
	fprintf(out, "  %s in the last window\n", lt__human_size(g->total_trend.last, b, sizeof b));
	if (by_sites)
		fprintf(out, "  (%zu call %s growing; the rate is the last third's)\n",
		        g->growing_sites, g->growing_sites == 1 ? "site is" : "sites are");
	fputc('\n', out);
	fprintf(out, "%-9s %13s %6s %7s  %-*s  %10s  %s\n", "verdict", "slope", "R^2", "MK z",
	        (int)g->windows, "live bytes", "peak", "site");
	/* The rows shown, first, so that their labels can be told apart. */
	struct gsite **rows = malloc((g->n ? g->n : 1) * sizeof *rows);
	size_t shown = 0, quiet = 0;
	for (size_t i = 0; rows && i < g->n; i++) {
		if ((!all && g->v[i]->trend.verdict == LT__STABLE) || (top && shown == top))
			quiet++;
		else
			rows[shown++] = g->v[i];
	}
	char *labels = rows ? row_labels(rows, shown, g->full_names) : NULL;
	if (!labels) {
		free(rows);
		fputs("(out of memory)\n", out);
		return;
	}
	for (size_t i = 0; i < shown; i++) {
		const struct gsite *gs = rows[i];
		fprintf(out, "%-9s %13s %6.3f %7.2f  ", lt__verdict_name(gs->trend.verdict),
		        rate(gs->trend.slope, a, sizeof a), gs->trend.r2, gs->trend.mk_z);
		sparkline(out, gs->y, g->windows);
		if (g->windows < 10)
			fprintf(out, "%*s", (int)(10 - g->windows), "");
		fprintf(out, "  %10s  ", lt__human_size(gs->trend.max, b, sizeof b));
		fputs(labels + i * LT__ROW_LABEL, out);
		if (g->nmarkers >= 2)
			fprintf(out, "  [%s per marker interval]",
			        lt__signed_size(llround((double)gs->marker_growth /
			                                (double)(g->nmarkers - 1)),
			                        b, sizeof b));
		fputc('\n', out);
	}
	free(labels);
	free(rows);
	if (!shown)
		fputs("(no call site changed by more than the noise floor)\n", out);
	if (quiet)
		fprintf(out, "... %s more call %s (stable ones: --all; more: --top 0)\n",
		        lt__thousands(quiet, a, sizeof a), quiet == 1 ? "site" : "sites");
}

static json_t *jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *trend_json(json_t *o, const lt__trend_t *t, const uint64_t *y, size_t n)
{
	json_object_set_new(o, "verdict", json_string(lt__verdict_name(t->verdict)));
	json_object_set_new(o, "slope_bytes_per_s", jnum(t->slope));
	json_object_set_new(o, "slope_t", jnum(t->slope_t));
	json_object_set_new(o, "r2", jnum(t->r2));
	json_object_set_new(o, "final_slope_bytes_per_s", jnum(t->final_slope));
	json_object_set_new(o, "mann_kendall_s", jnum(t->mk_s));
	json_object_set_new(o, "mann_kendall_z", jnum(t->mk_z));
	json_object_set_new(o, "p_value", jnum(t->mk_p));
	json_object_set_new(o, "first_bytes", lt__jint(t->first));
	json_object_set_new(o, "last_bytes", lt__jint(t->last));
	json_object_set_new(o, "max_bytes", lt__jint(t->max));
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, lt__jint(y[i]));
	json_object_set_new(o, "samples", arr);
	return o;
}

static int print_json(FILE *out, const struct growth *g)
{
	json_t *doc = json_object();
	json_object_set_new(doc, "schema", json_string("leaktrace-growth/1"));
	json_object_set_new(doc, "trace", json_string(g->trace));
	json_object_set_new(doc, "truncated", json_boolean(g->truncated));
	json_object_set_new(doc, "clean_end", g->until ? json_null() : json_boolean(g->clean_end));
	json_object_set_new(doc, "until", g->until ? json_string(g->until) : json_null());
	json_object_set_new(doc, "duration_s", json_real(g->duration_s));
	json_object_set_new(doc, "windows", lt__jint(g->windows));
	json_t *times = json_array();
	for (size_t i = 0; i < g->windows; i++)
		json_array_append_new(times, json_real(g->t[i]));
	json_object_set_new(doc, "window_end_s", times);
	json_object_set_new(doc, "markers", lt__jint(g->nmarkers));
	json_t *total = trend_json(json_object(), &g->total_trend, g->total_y, g->windows);
	/* verdict stays the fit's; growing_sites says more. */
	json_object_set_new(total, "growing_sites", lt__jint(g->growing_sites));
	json_object_set_new(doc, "total", total);
	json_object_set_new(doc, "cleanup_at_exit",
	                    g->cleanup_s > 0 ? json_pack("{s:f,s:I}", "from_s", g->cleanup_s,
	                                                 "freed_bytes", (json_int_t)g->cleanup_bytes)
	                                     : json_null());
	json_t *sites = json_array();
	for (size_t i = 0; i < g->n; i++) {
		const struct gsite *gs = g->v[i];
		const lt__frame_t *f = gs->nframes ? gs->frames[0] : NULL;
		char buf[512];
		json_t *o = json_object();
		json_object_set_new(o, "function",
		                    f ? json_string(lt__frame_label(f, buf, sizeof buf))
		                      : json_null());
		json_object_set_new(o, "file", f && f->file ? json_string(f->file) : json_null());
		json_object_set_new(o, "line", f && f->line ? json_integer(f->line) : json_null());
		trend_json(o, &gs->trend, gs->y, g->windows);
		json_object_set_new(o, "bytes_per_marker_interval",
		                    g->nmarkers >= 2 ? json_real((double)gs->marker_growth /
		                                                 (double)(g->nmarkers - 1))
		                                     : json_null());
		json_object_set_new(o, "live_bytes", lt__jint(gs->live_bytes));
		json_object_set_new(o, "live_blocks", lt__jint(gs->live_blocks));
		json_object_set_new(o, "allocations", lt__jint(gs->allocations));
		json_object_set_new(o, "frames", lt__frames_json(gs->frames, gs->nframes));
		json_array_append_new(sites, o);
	}
	json_object_set_new(doc, "sites", sites);
	int rc = json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(doc);
	return rc;
}

/* ---- cleanup at exit ---------------------------------------------------- */

#define LT__CLEANUP_SHARE 0.5 /* the heap fell to at most this share of its top */
#define LT__CLEANUP_TIME  0.1 /* within at most this share of the run, at its end */

/* A program that exits cleanly often frees what it holds on the way out
 * (CPython's finalization, C++ static destructors, a server's tidy
 * shutdown): the last moments then make every leak look like a transient
 * peak. When the whole heap fell from its top to at most half of it in
 * the last tenth of the run, the raw windows are cut after the top's, and
 * the report says so. Returns the raw windows to keep (s->nraw: all). */
static size_t cleanup_cut(const struct sampler *s, double duration_s, uint64_t end_bytes)
{
	if (s->nraw < 4 || duration_s <= 0)
		return s->nraw;
	size_t top = 0;
	for (size_t j = 1; j < s->nraw; j++)
		if (s->total[j] > s->total[top])
			top = j;
	/* A fall within the last window does not show in its maximum. */
	if (top + 1 >= s->nraw)
		return s->nraw;
	double last = (double)end_bytes;
	if (last > LT__CLEANUP_SHARE * (double)s->total[top] ||
	    duration_s - s->raw_end_s[top] > LT__CLEANUP_TIME * duration_s)
		return s->nraw;
	return top + 1;
}

/* ---- the command ------------------------------------------------------- */

static void growth_usage(FILE *out)
{
	fputs(
	    "usage: leaktrace-report growth TRACE [options]\n"
	    "\n"
	    "Samples each call site's live bytes in windows across the trace's time and\n"
	    "tells steady growth (a leak suspect) from a plateau (a bounded cache), a\n"
	    "transient peak and a flat line, with the statistics behind the verdict:\n"
	    "least-squares slope (bytes/s), its R^2 and t, and a Mann-Kendall trend test.\n"
	    "Works on the trace of a program that was killed.\n"
	    "\n"
	    "  -w, --windows=N          windows across the trace (default 20, 3..1000)\n"
	    "  --until=POINT            stop at a marker NAME (NAME#K) or a time (1.5,\n"
	    "                           250ms): leaves out, say, a program's cleanup.\n"
	    "                           By default the windows stop before a cleanup\n"
	    "                           at exit (the heap falling to half or less in\n"
	    "                           the last tenth of the run); 'end' keeps it\n"
	    "  --min-bytes=SIZE         changes smaller than SIZE are stable (default 4KiB)\n"
	    "  -n, --top=N              call sites shown (default 10, 0 = all)\n"
	    "  -a, --all                show stable call sites too\n"
	    "  -f, --format=FMT         text (default) or json (every call site)\n"
	    "  --full-names             C++ names with their template arguments (JSON\n"
	    "                           has them always)\n" LT__COMMON_USAGE
	        LT__EXIT_STATUS("printed"),
	    out);
}

int lt__cmd_growth(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"windows", required_argument, NULL, 'w'},
	    {"until", required_argument, NULL, 'u'},
	    {"min-bytes", required_argument, NULL, 'm'},
	    {"top", required_argument, NULL, 'n'},
	    {"all", no_argument, NULL, 'a'},
	    {"format", required_argument, NULL, 'f'},
	    {"full-names", no_argument, NULL, 'N'},
	    {"help", no_argument, NULL, 'h'},
	    LT__COMMON_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	lt__common_opts_t common = {0};
	struct growth g = {.windows = LT__GROWTH_WINDOWS,
	                   .topts = {.min_bytes = LT__TREND_MIN_BYTES, .z_crit = LT__TREND_Z_CRIT}};
	size_t top = 10;
	bool all = false, json = false;
	struct until until = {0};
	const char *until_arg = NULL;
	bool keep_end = false; /* --until end: no cut before a cleanup at exit */
	char err[LT__ERR_LEN];
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":w:n:af:h", longopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'w': {
			errno = 0;
			unsigned long n = strtoul(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || n < 3 ||
			    n > LT__GROWTH_MAX_WINDOWS)
				return lt__fail("--windows wants a number from 3 to %d, not '%s'",
				                LT__GROWTH_MAX_WINDOWS, optarg);
			g.windows = n;
			break;
		}
		case 'u':
			if (strcmp(optarg, "end") == 0) {
				keep_end = true;
				break;
			}
			if (lt__point_parse(optarg, &until.point, err, sizeof err))
				return lt__fail("%s", err);
			if (until.point.kind != LT__AT_MARKER && until.point.kind != LT__AT_TIME)
				return lt__fail("--until takes a marker or a time, not '%s'",
				                optarg);
			until.set = true;
			until_arg = optarg;
			break;
		case 'm':
			if (lt__parse_size(optarg, &g.topts.min_bytes))
				return lt__fail("--min-bytes wants a size like 4KiB, not '%s'",
				                optarg);
			break;
		case 'n':
			if (lt__parse_count(optarg, &top))
				return lt__fail("--top wants a number, not '%s'", optarg);
			break;
		case 'a':
			all = true;
			break;
		case 'f':
			if (strcmp(optarg, "json") && strcmp(optarg, "text"))
				return lt__fail("growth --format wants text or json, not '%s'",
				                optarg);
			json = strcmp(optarg, "json") == 0;
			break;
		case 'N':
			g.full_names = true;
			break;
		case 'h':
			growth_usage(stdout);
			return 0;
		default: {
			int rc = lt__common_opt(&common, c, optarg);
			if (rc == 1)
				return lt__bad_option(c, argv, longopts, "growth");
			if (rc)
				return rc;
		}
		}
	}
	if (optind != argc - 1)
		return lt__fail("growth wants one trace file (see growth --help)");
	g.trace = argv[optind];

	struct sampler s = {.cap = 2 * LT__RAW_PER_WINDOW * g.windows};
	lt__analysis_t a;
	lt__sym_t *sym = NULL;
	uint64_t end_ns = 0;
	int status = sample_trace(g.trace, &a, &s, &until, &g.truncated, &end_ns);
	if (status) {
		sampler_free(&s);
		if (a.dec)
			lt__analysis_close(&a);
		return status;
	}
	g.duration_s = (double)end_ns / 1e9;
	const lt__end_t *e = lt__replay_end(a.replay);
	if (!until.set && !keep_end && e->seen && e->exit_kind != LT_EXIT_SIGNAL && !g.truncated) {
		uint64_t end_bytes = lt__replay_totals(a.replay)->current_bytes;
		size_t keep = cleanup_cut(&s, g.duration_s, end_bytes);
		if (keep < s.nraw) {
			g.cleanup_bytes = s.total[keep - 1] - end_bytes;
			s.nraw = keep;
			g.cleanup_s = g.duration_s = s.raw_end_s[keep - 1];
		}
	}
	/* A trace shorter than the windows asked for gets fewer of them. */
	if (g.windows > s.nraw)
		g.windows = s.nraw;
	g.clean_end = e->seen && e->exit_kind != LT_EXIT_SIGNAL && !g.truncated;
	g.killed_status = e->seen && e->exit_kind == LT_EXIT_SIGNAL ? e->exit_status : 0;
	g.until = until.reached ? until_arg : NULL;
	g.nmarkers = s.nmarkers;
	g.t = calloc(g.windows ? g.windows : 1, sizeof *g.t);
	g.total_y = calloc(g.windows ? g.windows : 1, sizeof *g.total_y);
	int rc = g.t && g.total_y ? 0 : -ENOMEM;
	for (size_t j = 0; rc == 0 && j < s.nraw; j++) {
		size_t k = j * g.windows / s.nraw;
		g.t[k] = s.raw_end_s[j]; /* the window ends with its last raw one */
	}
	if (rc == 0) {
		fold(s.total, s.nraw, g.windows, g.total_y);
		lt__trend_fit(g.t, g.total_y, g.windows, &g.topts, &g.total_trend);
		rc = lt__sym_new(&sym, lt__replay_modmaps(a.replay), &common.sym);
	}
	if (rc == 0)
		rc = build_sites(&g, &a, sym, &s, &common.filters);
	for (size_t i = 0; rc == 0 && i < g.n; i++)
		g.growing_sites += g.v[i]->trend.verdict == LT__GROWING;
	if (rc == 0) {
		if (json)
			rc = print_json(stdout, &g) ? -EIO : 0;
		else
			print_text(stdout, &g, top, all);
		if (fflush(stdout) != 0)
			rc = -EIO;
	}
	if (rc)
		status = lt__fail("%s", strerror(-rc));
	growth_free(&g);
	sampler_free(&s);
	lt__sym_free(sym);
	lt__analysis_close(&a);
	return status;
}
