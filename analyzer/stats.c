/* SPDX-License-Identifier: MIT */
/* The snapshot and stats commands: write a snapshot of a trace to a file,
 * and print a snapshot's statistics grouped like tracemalloc's
 * Snapshot.statistics('lineno' | 'filename' | 'function' | 'traceback'). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "format_util.h"
#include "snapshot.h"

/* ---- snapshot ---------------------------------------------------------- */

static void snapshot_usage(FILE *out)
{
	fputs("usage: leaktrace-report snapshot TRACE [--at POINT] [-o FILE] [options]\n"
	      "\n"
	      "Writes the live allocations of TRACE at one point, grouped by symbolized\n"
	      "stack, as a JSON snapshot that stats and diff read (also across runs,\n"
	      "builds and machines: call sites are keyed by module, function, file, line).\n"
	      "\n"
	      "  --at=POINT               end (default), peak, a marker NAME (NAME#K: its\n"
	      "                           K-th occurrence; marker:NAME for any name), or\n"
	      "                           a time since the start: 1.5, 1.5s, 250ms\n"
	      "  -o, --output=FILE        write there instead of standard output ('-' is\n"
	      "                           standard output)\n" LT__COMMON_USAGE
	          LT__EXIT_STATUS("written"),
	      out);
}

/* Drops the traces the filters reject; the totals follow. */
static void apply_filters(lt__snapshot_t *s, const lt__filters_t *f)
{
	size_t kept = 0;
	s->total_size = s->total_count = 0;
	for (size_t i = 0; i < s->ntraces; i++) {
		lt__snap_trace_t t = s->traces[i];
		if (!lt__filters_keep(f, &t)) {
			for (size_t k = 0; k < t.nframes; k++) {
				free(t.frames[k].module);
				free(t.frames[k].function);
				free(t.frames[k].file);
			}
			free(t.frames);
			continue;
		}
		s->total_size += t.size;
		s->total_count += t.count;
		s->traces[kept++] = t;
	}
	s->ntraces = kept;
}

int lt__cmd_snapshot(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"at", required_argument, NULL, 'a'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    LT__COMMON_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	lt__common_opts_t common = {0};
	lt__point_t at = {.kind = LT__AT_END};
	const char *output = NULL;
	char err[LT__ERR_LEN];
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (lt__point_parse(optarg, &at, err, sizeof err))
				return lt__fail("%s", err);
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			snapshot_usage(stdout);
			return 0;
		default: {
			int rc = lt__common_opt(&common, c, optarg);
			if (rc == 1)
				return lt__bad_option(c, argv, longopts, "snapshot");
			if (rc)
				return rc;
		}
		}
	}
	if (optind != argc - 1)
		return lt__fail("snapshot wants one trace file (see snapshot --help)");
	lt__snapshot_t *s;
	int status = lt__snapshot_take(argv[optind], &at, 1, &common.sym, &s);
	if (status)
		return status;
	apply_filters(s, &common.filters);
	if (output && strcmp(output, "-") == 0)
		output = NULL; /* "-o -": standard output, as tools have it */
	FILE *out = output ? fopen(output, "w") : stdout;
	if (!out) {
		lt__snapshot_free(s);
		return lt__fail("%s: %s", output, strerror(errno));
	}
	int rc = lt__snapshot_write(out, s);
	if ((output ? fclose(out) : fflush(out)) != 0)
		rc = -EIO;
	if (rc)
		status = lt__fail("%s: %s", output ? output : "standard output", strerror(-rc));
	lt__snapshot_free(s);
	return status;
}

/* ---- stats ------------------------------------------------------------- */

static void stats_usage(FILE *out)
{
	fputs("usage: leaktrace-report stats SNAPSHOT|TRACE [--by KEY] [options]\n"
	      "\n"
	      "Prints a snapshot's live memory grouped by KEY, largest first, like\n"
	      "tracemalloc's Snapshot.statistics(). A trace is snapshotted first.\n"
	      "\n"
	      "  --by=KEY                 lineno (default: the first frame of the program's\n"
	      "                           own, after allocator and --skip-function frames),\n"
	      "                           filename, function or traceback (whole stack)\n"
	      "  --cumulative             count each block in every frame of its stack\n"
	      "  -n, --top=N              groups shown (default 10, 0 = all)\n"
	      "  -f, --format=FMT         text (default) or json\n"
	      "  --at=POINT               for a trace: as snapshot --at (default end)\n"
	      "  --full-names             C++ names with their template arguments (JSON\n"
	      "                           has them always)\n" LT__COMMON_USAGE LT__EXIT_STATUS("printed"),
	      out);
}

/* Parses --top's argument. Returns 0 or prints an error and returns 2. */
static int parse_top(const char *arg, size_t *top)
{
	if (lt__parse_count(arg, top))
		return lt__fail("--top wants a number, not '%s'", arg);
	return 0;
}

static void describe(FILE *out, const lt__snapshot_t *s)
{
	fprintf(out, "%s", s->source);
	if (s->point)
		fprintf(out, " (%s", s->point);
	if (s->point && s->time_s >= 0)
		fprintf(out, " at %.3f s", s->time_s);
	if (s->point)
		fputc(')', out);
	if (s->truncated)
		fputs(" [truncated trace]", out);
}

static void print_stats_text(FILE *out, const lt__snapshot_t *s, const lt__groups_t *g, size_t top,
                             bool full_names)
{
	char a[64], b[64], c[64], label[1200];
	fputs("snapshot ", out);
	describe(out, s);
	fprintf(out, ": %s in %s blocks, by %s%s\n", lt__human_size(g->size, a, sizeof a),
	        lt__thousands(g->count, b, sizeof b), lt__group_by_name(g->by),
	        g->cumulative ? " (cumulative)" : "");
	size_t shown = 0;
	for (size_t i = 0; i < g->n && (!top || shown < top); i++, shown++) {
		const lt__group_t *gr = g->v[i];
		fprintf(out, "#%zu: %s: size=%s, count=%s, average=%s\n", i + 1,
		        lt__group_label(g, gr, full_names, label, sizeof label),
		        lt__human_size(gr->size, a, sizeof a),
		        lt__thousands(gr->count, b, sizeof b),
		        lt__human_size(gr->count ? gr->size / gr->count : 0, c, sizeof c));
		if (g->by == LT__BY_TRACEBACK)
			lt__group_traceback_text(out, gr, full_names, 6);
	}
	if (shown < g->n && g->cumulative) {
		/* A block counts in every group of its stack: the sizes of the
		 * groups not shown add up to nothing meaningful. */
		fprintf(out, "... %s more %s (--top 0 shows all)\n",
		        lt__thousands(g->n - shown, a, sizeof a),
		        g->n - shown == 1 ? "group" : "groups");
	} else if (shown < g->n) {
		uint64_t size = 0, count = 0;
		for (size_t i = shown; i < g->n; i++) {
			size += g->v[i]->size;
			count += g->v[i]->count;
		}
		fprintf(out, "%s other: size=%s, count=%s\n", lt__thousands(g->n - shown, c, sizeof c),
		        lt__human_size(size, a, sizeof a), lt__thousands(count, b, sizeof b));
	}
	if (g->runtime_count)
		fprintf(out,
		        "not listed: %s bytes in %s %s that the C++ runtime allocates once at "
		        "start-up and keeps (libstdc++'s exception-handling pool); the total "
		        "includes %s; --show-hidden lists %s\n",
		        lt__thousands(g->runtime_size, a, sizeof a),
		        lt__thousands(g->runtime_count, b, sizeof b),
		        g->runtime_count == 1 ? "block" : "blocks",
		        g->runtime_count == 1 ? "it" : "them", g->runtime_count == 1 ? "it" : "them");
	fprintf(out, "Total allocated size: %s (%s bytes in %s blocks)\n",
	        lt__human_size(g->size, a, sizeof a), lt__thousands(g->size, b, sizeof b),
	        lt__thousands(g->count, c, sizeof c));
}

static int print_stats_json(FILE *out, const lt__snapshot_t *s, const lt__groups_t *g, size_t top)
{
	json_t *doc = json_object();
	json_object_set_new(doc, "schema", json_string("leaktrace-stats/1"));
	json_object_set_new(doc, "snapshot", json_string(s->source));
	json_object_set_new(doc, "point", s->point ? json_string(s->point) : json_null());
	json_object_set_new(doc, "truncated", json_boolean(s->truncated)); /* an incomplete trace */
	json_object_set_new(doc, "by", json_string(lt__group_by_name(g->by)));
	json_object_set_new(doc, "cumulative", json_boolean(g->cumulative));
	json_object_set_new(doc, "size", lt__jint(g->size));
	json_object_set_new(doc, "count", lt__jint(g->count));
	/* In size and count, but in no group (--show-hidden lists it). */
	json_t *rt = json_object();
	json_object_set_new(rt, "size", lt__jint(g->runtime_size));
	json_object_set_new(rt, "count", lt__jint(g->runtime_count));
	json_object_set_new(doc, "runtime_not_listed", rt);
	json_t *arr = json_array();
	for (size_t i = 0; i < g->n && (!top || i < top); i++) {
		json_t *o = json_object();
		json_object_set_new(o, "size", lt__jint(g->v[i]->size));
		json_object_set_new(o, "count", lt__jint(g->v[i]->count));
		json_object_set_new(o, "frames",
		                    lt__snap_frames_json(g->v[i]->frames, g->v[i]->nframes));
		json_array_append_new(arr, o);
	}
	json_object_set_new(doc, "statistics", arr);
	int rc = json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(doc);
	return rc;
}

int lt__cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"by", required_argument, NULL, 'b'},
	    {"cumulative", no_argument, NULL, 'c'},
	    {"top", required_argument, NULL, 'n'},
	    {"format", required_argument, NULL, 'f'},
	    {"at", required_argument, NULL, 'a'},
	    {"full-names", no_argument, NULL, 'N'},
	    {"help", no_argument, NULL, 'h'},
	    LT__COMMON_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	lt__common_opts_t common = {0};
	lt__groups_t g = {.by = LT__BY_LINENO};
	lt__point_t at = {.kind = LT__AT_END};
	size_t top = 10;
	bool json = false, have_at = false, full_names = false;
	char err[LT__ERR_LEN];
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (lt__group_by_parse(optarg, &g.by))
				return lt__fail("--by wants lineno, filename, function or "
				                "traceback, not '%s'",
				                optarg);
			break;
		case 'c':
			g.cumulative = true;
			break;
		case 'n':
			if (parse_top(optarg, &top))
				return 2;
			break;
		case 'f':
			if (strcmp(optarg, "json") && strcmp(optarg, "text"))
				return lt__fail("stats --format wants text or json, not '%s'",
				                optarg);
			json = strcmp(optarg, "json") == 0;
			break;
		case 'a':
			have_at = true;
			if (lt__point_parse(optarg, &at, err, sizeof err))
				return lt__fail("%s", err);
			break;
		case 'N':
			full_names = true;
			break;
		case 'h':
			stats_usage(stdout);
			return 0;
		default: {
			int rc = lt__common_opt(&common, c, optarg);
			if (rc == 1)
				return lt__bad_option(c, argv, longopts, "stats");
			if (rc)
				return rc;
		}
		}
	}
	if (optind != argc - 1)
		return lt__fail("stats wants one snapshot or trace file (see stats --help)");
	if (g.cumulative && g.by == LT__BY_TRACEBACK)
		return lt__fail("--cumulative does not apply to --by traceback");
	lt__snapshot_t *s;
	int kind = lt__input_check(argv[optind], LT__INPUT_TRACE | LT__INPUT_SNAPSHOT);
	if (!kind)
		return 2;
	if (have_at && kind != LT__INPUT_TRACE)
		return lt__fail("%s: --at takes a point of a trace, and this is not one",
		                argv[optind]);
	int status = lt__snapshot_load(argv[optind], &at, &common.sym, &s);
	if (status)
		return status;
	/* As the report's LEAKS: libstdc++'s pool is not the program's. */
	g.hide_runtime = !common.sym.show_hidden;
	if (lt__groups_add(&g, s, &common.filters, false) == 0) {
		lt__groups_sort(&g, false);
		if (json)
			status = print_stats_json(stdout, s, &g, top) ? 2 : 0;
		else
			print_stats_text(stdout, s, &g, top, full_names);
	} else {
		status = lt__fail("%s", strerror(ENOMEM));
	}
	if (fflush(stdout) != 0 && !status)
		status = lt__fail("standard output: %s", strerror(errno));
	lt__groups_free(&g);
	lt__snapshot_free(s);
	return status;
}
