/* SPDX-License-Identifier: MIT */
/* The diff command: tracemalloc's Snapshot.compare_to() between two
 * snapshots (files, traces, or two points of one trace), sorted by the
 * absolute size difference, with thresholds that make it a CI gate and
 * outputs for people (text), pull requests (Markdown), machines (JSON)
 * and CI test views (JUnit XML). */
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
#include "snapshot.h"

#define LT__DIFF_SCHEMA "leaktrace-diff/1"

enum diff_format { DIFF_TEXT, DIFF_JSON, DIFF_MARKDOWN, DIFF_JUNIT };

struct diff {
	const lt__snapshot_t *old, *new;
	lt__groups_t groups;
	size_t top; /* groups shown; 0 = all (failed groups are always shown) */
	bool have_size, have_pct;
	uint64_t max_growth; /* --fail-on-growth */
	double max_pct;      /* --fail-on-growth-pct, of the old total */
	bool total_failed;
	size_t nfailed; /* groups over a threshold */
	bool full_names; /* --full-names: C++ template arguments in text (JSON has them) */
};

static int64_t diff_of(uint64_t new, uint64_t old)
{
	if (new >= old)
		return new - old > INT64_MAX ? INT64_MAX : (int64_t)(new - old);
	return old - new > INT64_MAX ? -INT64_MAX : -(int64_t)(old - new);
}

/* Whether a growth of `growth` bytes breaks a threshold. */
static bool over(const struct diff *d, int64_t growth)
{
	if (growth <= 0)
		return false;
	if (d->have_size && (uint64_t)growth > d->max_growth)
		return true;
	if (d->have_pct) {
		double limit = d->max_pct / 100.0 * (double)d->groups.old_size;
		if ((double)growth > limit)
			return true;
	}
	return false;
}

static void judge(struct diff *d)
{
	d->total_failed = over(d, diff_of(d->groups.size, d->groups.old_size));
	for (size_t i = 0; i < d->groups.n; i++) {
		lt__group_t *g = d->groups.v[i];
		g->failed = over(d, diff_of(g->size, g->old_size));
		d->nfailed += g->failed;
	}
}

static bool failed(const struct diff *d)
{
	return d->total_failed || d->nfailed;
}

/* Whether group i is shown: within --top, or over a threshold. */
static bool shown(const struct diff *d, size_t i)
{
	return !d->top || i < d->top || d->groups.v[i]->failed;
}

/* "+1.5 MiB", "-512 B", "0 B". */
static const char *signed_size(int64_t v, char *buf, size_t len)
{
	return lt__signed_size(v, buf, len);
}

/* "+1,234", "-153,361" or "0": a count difference, grouped like every
 * other count. diff_of() keeps v above INT64_MIN, so -v is defined. */
static const char *signed_count(int64_t v, char *buf, size_t len)
{
	char t[32];
	lt__thousands(v < 0 ? (uint64_t)(-v) : (uint64_t)v, t, sizeof t);
	snprintf(buf, len, "%s%s", v > 0 ? "+" : v < 0 ? "-" : "", t);
	return buf;
}

static void thresholds_text(const struct diff *d, char *buf, size_t len)
{
	char a[48];
	buf[0] = '\0';
	if (d->have_size)
		snprintf(buf, len, "--fail-on-growth %s",
		         lt__human_size(d->max_growth, a, sizeof a));
	if (d->have_pct) {
		size_t l = strlen(buf);
		snprintf(buf + l, len - l, "%s--fail-on-growth-pct %g", l ? ", " : "", d->max_pct);
	}
}

static void describe(FILE *out, const lt__snapshot_t *s)
{
	fprintf(out, "%s", s->source);
	if (s->point) {
		fprintf(out, " (%s", s->point);
		if (s->time_s >= 0)
			fprintf(out, " at %.3f s", s->time_s);
		fputc(')', out);
	}
}

/* ---- text -------------------------------------------------------------- */

static void print_text(FILE *out, const struct diff *d)
{
	const lt__groups_t *g = &d->groups;
	char a[64], b[64], label[1200], th[128];
	fputs("diff ", out);
	describe(out, d->old);
	fputs("\n  -> ", out);
	describe(out, d->new);
	fprintf(out, "\n  by %s%s, sorted by |size_diff|\n\n", lt__group_by_name(g->by),
	        g->cumulative ? " (cumulative)" : "");
	fprintf(out, "%12s %12s %10s %11s  %s\n", "size", "size_diff", "count", "count_diff",
	        "site");
	size_t hidden = 0;
	for (size_t i = 0; i < g->n; i++) {
		const lt__group_t *gr = g->v[i];
		if (!shown(d, i)) {
			hidden++;
			continue;
		}
		char n[32], cd[48];
		fprintf(out, "%12s %12s %10s %11s  %s%s\n", lt__human_size(gr->size, a, sizeof a),
		        signed_size(diff_of(gr->size, gr->old_size), b, sizeof b),
		        lt__thousands(gr->count, n, sizeof n),
		        signed_count(diff_of(gr->count, gr->old_count), cd, sizeof cd),
		        lt__group_label(g, gr, d->full_names, label, sizeof label),
		        gr->failed ? "  [FAIL]" : "");
		/* Under the site column: 12 + 1 + 12 + 1 + 10 + 1 + 11 + 2. */
		if (g->by == LT__BY_TRACEBACK)
			lt__group_traceback_text(out, gr, d->full_names, 50);
	}
	if (hidden)
		fprintf(out, "%12s ... %s more %s (--top 0 shows all)\n", "",
		        lt__thousands(hidden, a, sizeof a), hidden == 1 ? "group" : "groups");
	char n[32], cd[48];
	fprintf(out, "total: %s (%s), count=%s (%s)\n", lt__human_size(g->size, a, sizeof a),
	        signed_size(diff_of(g->size, g->old_size), b, sizeof b),
	        lt__thousands(g->count, n, sizeof n),
	        signed_count(diff_of(g->count, g->old_count), cd, sizeof cd));
	thresholds_text(d, th, sizeof th);
	if (!d->have_size && !d->have_pct)
		return;
	if (!failed(d)) {
		fprintf(out, "OK: memory growth within %s\n", th);
		return;
	}
	fprintf(out, "FAIL: memory grew beyond %s:\n", th);
	if (d->total_failed)
		fprintf(out, "  total grew by %s\n",
		        signed_size(diff_of(g->size, g->old_size), b, sizeof b));
	for (size_t i = 0; i < g->n; i++)
		if (g->v[i]->failed)
			fprintf(
			    out, "  %s grew by %s\n",
			    lt__group_label(g, g->v[i], d->full_names, label, sizeof label),
			    signed_size(diff_of(g->v[i]->size, g->v[i]->old_size), b, sizeof b));
}

/* ---- Markdown ---------------------------------------------------------- */

/* Writes s as a code span in a Markdown table cell: '|' escaped, '`' and
 * newlines replaced (a code span needs no other escaping). */
static void md_cell(FILE *out, const char *s)
{
	fputc('`', out);
	for (; *s; s++) {
		if (*s == '|')
			fputc('\\', out);
		fputc(*s == '`' ? '\'' : *s == '\n' ? ' ' : *s, out);
	}
	fputc('`', out);
}

static void print_markdown(FILE *out, const struct diff *d)
{
	const lt__groups_t *g = &d->groups;
	char a[64], b[64], label[1200], th[128];
	fprintf(out, "### leaktrace: live memory by %s\n\n", lt__group_by_name(g->by));
	thresholds_text(d, th, sizeof th);
	int64_t total = diff_of(g->size, g->old_size);
	if (d->have_size || d->have_pct) {
		if (failed(d))
			fprintf(out, "**FAIL**: memory grew by %s; beyond %s (%zu %s over).\n\n",
			        signed_size(total, a, sizeof a), th, d->nfailed,
			        d->nfailed == 1 ? "call site" : "call sites");
		else
			fprintf(out, "**OK**: memory changed by %s, within %s.\n\n",
			        signed_size(total, a, sizeof a), th);
	}
	fputs("| size | size diff | count | count diff | call site |\n"
	      "|---:|---:|---:|---:|:---|\n",
	      out);
	char n[32], cd[48];
	size_t hidden = 0;
	for (size_t i = 0; i < g->n; i++) {
		const lt__group_t *gr = g->v[i];
		if (!shown(d, i)) {
			hidden++;
			continue;
		}
		fprintf(out, "| %s | %s | %s | %s | ", lt__human_size(gr->size, a, sizeof a),
		        signed_size(diff_of(gr->size, gr->old_size), b, sizeof b),
		        lt__thousands(gr->count, n, sizeof n),
		        signed_count(diff_of(gr->count, gr->old_count), cd, sizeof cd));
		md_cell(out, lt__group_label(g, gr, d->full_names, label, sizeof label));
		fputs(gr->failed ? " **(over threshold)** |\n" : " |\n", out);
	}
	if (hidden)
		fprintf(out, "| | | | | %s more call %s (`--top 0` shows all) |\n",
		        lt__thousands(hidden, a, sizeof a), hidden == 1 ? "site" : "sites");
	fprintf(out, "| **%s** | **%s** | **%s** | **%s** | **total** |\n",
	        lt__human_size(g->size, a, sizeof a), signed_size(total, b, sizeof b),
	        lt__thousands(g->count, n, sizeof n),
	        signed_count(diff_of(g->count, g->old_count), cd, sizeof cd));
}

/* ---- JUnit XML --------------------------------------------------------- */

static void xml_text(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '&':
			fputs("&amp;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		default:
			/* XML 1.0 has no place for most control characters. */
			fputc((unsigned char)*s < 0x20 && *s != '\t' ? '?' : *s, out);
		}
	}
}

static void junit_case(FILE *out, const struct diff *d, const char *name, uint64_t size,
                       int64_t growth, bool fail)
{
	char a[64], b[64], th[128];
	fputs("    <testcase classname=\"leaktrace.memory\" name=\"", out);
	xml_text(out, name);
	fputs("\">", out);
	if (fail) {
		thresholds_text(d, th, sizeof th);
		fprintf(out, "\n      <failure message=\"grew by %s to %s, beyond ",
		        signed_size(growth, a, sizeof a), lt__human_size(size, b, sizeof b));
		xml_text(out, th);
		fputs("\" type=\"memory-growth\"/>\n    ", out);
	}
	fputs("</testcase>\n", out);
}

static void print_junit(FILE *out, const struct diff *d)
{
	const lt__groups_t *g = &d->groups;
	char label[1200];
	size_t tests = 1, failures = d->total_failed;
	for (size_t i = 0; i < g->n; i++)
		if (shown(d, i)) {
			tests++;
			failures += g->v[i]->failed;
		}
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n", out);
	fprintf(out,
	        "  <testsuite name=\"leaktrace memory diff by %s\" tests=\"%zu\" "
	        "failures=\"%zu\" errors=\"0\">\n",
	        lt__group_by_name(g->by), tests, failures);
	junit_case(out, d, "total", g->size, diff_of(g->size, g->old_size), d->total_failed);
	for (size_t i = 0; i < g->n; i++)
		if (shown(d, i))
			junit_case(out, d,
			           lt__group_label(g, g->v[i], d->full_names, label, sizeof label),
			           g->v[i]->size, diff_of(g->v[i]->size, g->v[i]->old_size),
			           g->v[i]->failed);
	fputs("  </testsuite>\n</testsuites>\n", out);
}

/* ---- JSON -------------------------------------------------------------- */

static json_t *side_json(const lt__snapshot_t *s, uint64_t size, uint64_t count)
{
	json_t *o = json_object();
	json_object_set_new(o, "source", json_string(s->source));
	json_object_set_new(o, "point", s->point ? json_string(s->point) : json_null());
	json_object_set_new(o, "time_s", s->time_s >= 0 ? json_real(s->time_s) : json_null());
	json_object_set_new(o, "truncated", json_boolean(s->truncated)); /* an incomplete trace */
	json_object_set_new(o, "size", lt__jint(size));
	json_object_set_new(o, "count", lt__jint(count));
	return o;
}

static void set_sizes(json_t *o, uint64_t size, uint64_t old_size, uint64_t count,
                      uint64_t old_count)
{
	json_object_set_new(o, "size", lt__jint(size));
	json_object_set_new(o, "size_diff", json_integer(diff_of(size, old_size)));
	json_object_set_new(o, "count", lt__jint(count));
	json_object_set_new(o, "count_diff", json_integer(diff_of(count, old_count)));
}

static int print_json(FILE *out, const struct diff *d)
{
	const lt__groups_t *g = &d->groups;
	char label[1200];
	json_t *doc = json_object();
	json_object_set_new(doc, "schema", json_string(LT__DIFF_SCHEMA));
	json_object_set_new(doc, "by", json_string(lt__group_by_name(g->by)));
	json_object_set_new(doc, "cumulative", json_boolean(g->cumulative));
	json_object_set_new(doc, "old", side_json(d->old, g->old_size, g->old_count));
	json_object_set_new(doc, "new", side_json(d->new, g->size, g->count));
	json_t *total = json_object();
	set_sizes(total, g->size, g->old_size, g->count, g->old_count);
	json_object_set_new(total, "failed", json_boolean(d->total_failed));
	json_object_set_new(doc, "total", total);
	json_t *th = json_object();
	json_object_set_new(th, "fail_on_growth",
	                    d->have_size ? lt__jint(d->max_growth) : json_null());
	json_object_set_new(th, "fail_on_growth_pct",
	                    d->have_pct ? json_real(d->max_pct) : json_null());
	json_object_set_new(doc, "thresholds", th);
	json_object_set_new(doc, "failed", json_boolean(failed(d)));
	json_t *arr = json_array();
	for (size_t i = 0; i < g->n; i++) {
		const lt__group_t *gr = g->v[i];
		json_t *o = json_object();
		json_object_set_new(o, "site",
		                    json_string(lt__group_label(g, gr, true, label, sizeof label)));
		set_sizes(o, gr->size, gr->old_size, gr->count, gr->old_count);
		json_object_set_new(o, "failed", json_boolean(gr->failed));
		json_object_set_new(o, "frames", lt__snap_frames_json(gr->frames, gr->nframes));
		json_array_append_new(arr, o);
	}
	json_object_set_new(doc, "groups", arr);
	int rc = json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(doc);
	return rc;
}

/* ---- the command ------------------------------------------------------- */

static void diff_usage(FILE *out)
{
	fputs("usage: leaktrace-report diff OLD NEW [options]\n"
	      "       leaktrace-report diff TRACE --from POINT --to POINT [options]\n"
	      "\n"
	      "Compares the live memory of two snapshots (snapshot files, or traces taken\n"
	      "at their end) or of two points of one trace, grouped by call site and\n"
	      "sorted by the absolute size difference, like tracemalloc's compare_to().\n"
	      "\n"
	      "  --by=KEY                 lineno (default), filename, function, traceback\n"
	      "  --cumulative             count each block in every frame of its stack\n"
	      "  --from=POINT, --to=POINT two points of one trace: end, peak, a marker\n"
	      "                           NAME (NAME#K), or seconds (1.5, 250ms)\n"
	      "  --fail-on-growth=SIZE    exit 1 when the total or a group grew by more than\n"
	      "                           SIZE (1000, 512KiB, 1MiB, 10MB, 1.5G)\n"
	      "  --fail-on-growth-pct=N   exit 1 when the total or a group grew by more than\n"
	      "                           N percent of the old total\n"
	      "  -f, --format=FMT         text (default), json, markdown or junit\n"
	      "  -n, --top=N              groups shown (default 10, 0 = all; groups over a\n"
	      "                           threshold are always shown; JSON lists all)\n"
	      "  -o, --output=FILE        write there instead of standard output ('-' is\n"
	      "                           standard output)\n"
	      "  --full-names             C++ names with their template arguments (JSON\n"
	      "                           has them always)\n" LT__COMMON_USAGE
	      "\nexit status: 0 within the thresholds (also for an incomplete trace, with a\n"
	      "warning), 1 memory grew beyond a threshold,\n"
	      "2 bad usage, or a missing, empty, foreign or corrupt input file\n",
	      out);
}

struct diff_args {
	lt__common_opts_t common;
	enum diff_format format;
	const char *output;
	const char *from, *to;
	const char *paths[2];
	size_t npaths;
};

static int parse_diff_args(int argc, char **argv, struct diff *d, struct diff_args *o)
{
	static const struct option longopts[] = {
	    {"by", required_argument, NULL, 'b'},
	    {"cumulative", no_argument, NULL, 'c'},
	    {"from", required_argument, NULL, 'F'},
	    {"to", required_argument, NULL, 'T'},
	    {"fail-on-growth", required_argument, NULL, 'g'},
	    {"fail-on-growth-pct", required_argument, NULL, 'p'},
	    {"format", required_argument, NULL, 'f'},
	    {"top", required_argument, NULL, 'n'},
	    {"output", required_argument, NULL, 'o'},
	    {"full-names", no_argument, NULL, 'N'},
	    {"help", no_argument, NULL, 'h'},
	    LT__COMMON_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	static const char *const formats[] = {"text", "json", "markdown", "junit"};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:n:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (lt__group_by_parse(optarg, &d->groups.by))
				return lt__fail("--by wants lineno, filename, function or "
				                "traceback, not '%s'",
				                optarg);
			break;
		case 'c':
			d->groups.cumulative = true;
			break;
		case 'F':
			o->from = optarg;
			break;
		case 'T':
			o->to = optarg;
			break;
		case 'g':
			if (lt__parse_size(optarg, &d->max_growth))
				return lt__fail("--fail-on-growth wants a size like 1MiB, 512KiB, "
				                "10MB or 1000, not '%s'",
				                optarg);
			d->have_size = true;
			break;
		case 'p': {
			char *end;
			errno = 0;
			d->max_pct = strtod(optarg, &end);
			if (errno || end == optarg || (*end && strcmp(end, "%")) ||
			    !isfinite(d->max_pct) || d->max_pct < 0)
				return lt__fail("--fail-on-growth-pct wants a percentage like 10, "
				                "not '%s'",
				                optarg);
			d->have_pct = true;
			break;
		}
		case 'f': {
			size_t i = 0;
			while (i < 4 && strcmp(optarg, formats[i]))
				i++;
			if (i == 4)
				return lt__fail(
				    "diff --format wants text, json, markdown or junit, "
				    "not '%s'",
				    optarg);
			o->format = (enum diff_format)i;
			break;
		}
		case 'n':
			if (lt__parse_count(optarg, &d->top))
				return lt__fail("--top wants a number, not '%s'", optarg);
			break;
		case 'o':
			/* "-o -": standard output, as tools have it. */
			o->output = strcmp(optarg, "-") == 0 ? NULL : optarg;
			break;
		case 'N':
			d->full_names = true;
			break;
		case 'h':
			diff_usage(stdout);
			exit(0);
		default: {
			int rc = lt__common_opt(&o->common, c, optarg);
			if (rc == 1)
				return lt__bad_option(c, argv, longopts, "diff");
			if (rc)
				return rc;
		}
		}
	}
	for (; optind < argc; optind++) {
		if (o->npaths == 2)
			return lt__fail(
			    "diff compares two snapshots, not '%s' too (see diff --help)",
			    argv[optind]);
		o->paths[o->npaths++] = argv[optind];
	}
	if (d->groups.cumulative && d->groups.by == LT__BY_TRACEBACK)
		return lt__fail("--cumulative does not apply to --by traceback");
	if (o->npaths == 1 && !(o->from && o->to)) {
		/* What the one file is decides what is missing. */
		int kind = lt__input_check(o->paths[0], LT__INPUT_TRACE | LT__INPUT_SNAPSHOT);
		if (!kind)
			return 2;
		if (kind == LT__INPUT_SNAPSHOT)
			return lt__fail("%s: diff needs a second snapshot (or one trace with "
			                "--from and --to)",
			                o->paths[0]);
		return lt__fail("%s: diff of one trace needs --from and --to (or give two "
		                "snapshots)",
		                o->paths[0]);
	}
	if (o->npaths == 2 && (o->from || o->to))
		return lt__fail("--from/--to take two points of one trace; give one trace");
	if (o->npaths == 0)
		return lt__fail("diff wants two snapshots, or one trace with --from and --to");
	return 0;
}

/* Loads the two sides. Returns 0, or 2 after printing an error. */
static int load_sides(const struct diff_args *o, lt__snapshot_t *s[2])
{
	char err[LT__ERR_LEN];
	s[0] = s[1] = NULL;
	if (o->npaths == 2) {
		int rc = lt__snapshot_load(o->paths[0], NULL, &o->common.sym, &s[0]);
		if (rc == 0)
			rc = lt__snapshot_load(o->paths[1], NULL, &o->common.sym, &s[1]);
		return rc;
	}
	if (!lt__input_check(o->paths[0], LT__INPUT_TRACE))
		return 2;
	lt__point_t points[2];
	if (lt__point_parse(o->from, &points[0], err, sizeof err) ||
	    lt__point_parse(o->to, &points[1], err, sizeof err))
		return lt__fail("%s", err);
	return lt__snapshot_take(o->paths[0], points, 2, &o->common.sym, s);
}

int lt__cmd_diff(int argc, char **argv)
{
	struct diff d = {.groups = {.by = LT__BY_LINENO}, .top = 10};
	struct diff_args o = {.format = DIFF_TEXT};
	int status = parse_diff_args(argc, argv, &d, &o);
	if (status)
		return status;
	lt__snapshot_t *s[2];
	status = load_sides(&o, s);
	if (status) {
		lt__snapshot_free(s[0]);
		lt__snapshot_free(s[1]);
		return status;
	}
	d.old = s[0];
	d.new = s[1];
	FILE *out = stdout;
	if (lt__groups_add(&d.groups, s[0], &o.common.filters, true) ||
	    lt__groups_add(&d.groups, s[1], &o.common.filters, false)) {
		status = lt__fail("%s", strerror(ENOMEM));
	} else if (o.output && !(out = fopen(o.output, "w"))) {
		status = lt__fail("%s: %s", o.output, strerror(errno));
		out = stdout;
	} else {
		lt__groups_sort(&d.groups, true);
		judge(&d);
		switch (o.format) {
		case DIFF_JSON:
			if (print_json(out, &d))
				status = 2;
			break;
		case DIFF_MARKDOWN:
			print_markdown(out, &d);
			break;
		case DIFF_JUNIT:
			print_junit(out, &d);
			break;
		default:
			print_text(out, &d);
			break;
		}
		if ((out == stdout ? fflush(out) : fclose(out)) != 0)
			status = lt__fail("%s: %s", o.output ? o.output : "standard output",
			                  strerror(errno));
		if (status == 0 && failed(&d))
			status = 1;
	}
	lt__groups_free(&d.groups);
	lt__snapshot_free(s[0]);
	lt__snapshot_free(s[1]);
	return status;
}
