/* SPDX-License-Identifier: MIT */
/* leaktrace-report: parses options and wires the analyzer's stages
 * together (decode -> merge -> replay -> symbolize -> report). */
#define _GNU_SOURCE /* strdup */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format_util.h"
#include "analysis.h"
#include "callsites.h"
#include "commands.h"
#include "dump.h"
#include "report.h"
#include "snapshot.h"
#include "symbolize.h"

#define LT__PROGRESS_MIN_BYTES (64u << 20) /* smaller traces read too fast to bother */

enum lt__format { LT__FMT_TEXT, LT__FMT_JSON, LT__FMT_FOLDED };

struct options {
	bool dump;
	enum lt__format format;
	enum lt__metric metric;
	size_t top;
	int color; /* -1 auto, 0 never, 1 always */
	bool full_names;
	lt__sym_opts_t sym;
	const char *skip[LT__MAX_SKIP];
	const char *trace;
};

static void usage(FILE *out)
{
	fputs("usage: leaktrace-report [report] [options] TRACE\n"
	      "       leaktrace-report --dump TRACE\n"
	      "       leaktrace-report snapshot|stats|diff|growth ... (each has --help)\n"
	      "\n"
	      "Replays a leaktrace trace and reports leaks, peak and current memory by\n"
	      "call site.\n"
	      "\n"
	      "options:\n"
	      "  -f, --format=FMT         text (default), json, or folded (flamegraph.pl)\n"
	      "      --metric=M           folded stacks' weight: leaked (default), peak,\n"
	      "                           allocated (bytes) or count (allocations)\n"
	      "  -n, --top=N              call sites per section (default 10, 0 = all;\n"
	      "                           JSON lists every leak, folded every call site)\n"
	      "      --sysroot=DIR        look for the traced binaries under DIR\n"
	      "      --debug-dir=DIR      extra debug info directory (.build-id layout)\n"
	      "      --skip-function=GLOB hide wrapper frames matching GLOB (repeatable)\n"
	      "      --show-hidden        keep the shim's and the allocator's frames (and a\n"
	      "                           Python program's interpreter frames)\n"
	      "      --full-names         C++ names with their template arguments (text\n"
	      "                           and folded show vector<>; JSON has them all)\n"
	      "      --color[=WHEN]       auto (default: on a terminal, unless NO_COLOR\n"
	      "                           is set), always or never\n"
	      "      --no-color           same as --color=never\n"
	      "      --dump               print every record of the trace, one per line\n"
	      "  -h, --help               this text\n"
	      "  -V, --version            the version\n"
	      LT__EXIT_STATUS("report written"),
	      out);
}

/* Prints one error line and returns the exit status for bad input. */
static int die(const char *fmt, const char *arg)
{
	fputs("leaktrace-report: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return 2;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"metric", required_argument, NULL, 'm'},
		{"top", required_argument, NULL, 'n'},
		{"sysroot", required_argument, NULL, 'S'},
		{"debug-dir", required_argument, NULL, 'G'},
		{"skip-function", required_argument, NULL, 'k'},
		{"show-hidden", no_argument, NULL, 'H'},
		{"full-names", no_argument, NULL, 'F'},
		{"color", optional_argument, NULL, 'c'},
		{"colour", optional_argument, NULL, 'c'},
		{"no-color", no_argument, NULL, 'C'},
		{"dump", no_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:n:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "text") == 0)
				o->format = LT__FMT_TEXT;
			else if (strcmp(optarg, "json") == 0)
				o->format = LT__FMT_JSON;
			else if (strcmp(optarg, "folded") == 0)
				o->format = LT__FMT_FOLDED;
			else
				return die("unknown format '%s' (text, json or folded)", optarg);
			break;
		case 'm':
			if (strcmp(optarg, "leaked") == 0)
				o->metric = LT__BY_LEAKED;
			else if (strcmp(optarg, "peak") == 0)
				o->metric = LT__BY_PEAK;
			else if (strcmp(optarg, "allocated") == 0)
				o->metric = LT__BY_ALLOCATED;
			else if (strcmp(optarg, "count") == 0)
				o->metric = LT__BY_COUNT;
			else
				return die("unknown metric '%s' (leaked, peak, allocated or count)",
					   optarg);
			break;
		case 'n':
			if (lt__parse_count(optarg, &o->top))
				return die("--top wants a number, not '%s'", optarg);
			break;
		case 'S':
			o->sym.sysroot = optarg;
			break;
		case 'G':
			o->sym.debug_dir = optarg;
			break;
		case 'k':
			if (o->sym.nskip == LT__MAX_SKIP)
				return die("too many --skip-function patterns (at most %s)", "64");
			o->skip[o->sym.nskip++] = optarg;
			break;
		case 'H':
			o->sym.show_hidden = true;
			break;
		case 'F':
			o->full_names = true;
			break;
		case 'c':
			if (!optarg || strcmp(optarg, "auto") == 0)
				o->color = -1;
			else if (strcmp(optarg, "always") == 0)
				o->color = 1;
			else if (strcmp(optarg, "never") == 0)
				o->color = 0;
			else
				return die("--color wants auto, always or never, not '%s'", optarg);
			break;
		case 'C':
			o->color = 0;
			break;
		case 'D':
			o->dump = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			puts("leaktrace-report " LT_VERSION);
			exit(0);
		default:
			return lt__bad_option(c, argv, longopts, NULL);
		}
	}
	if (optind != argc - 1) {
		if (optind >= argc)
			return die("%s", "no trace file given (see --help)");
		return die("one trace file at a time, not '%s' too", argv[optind + 1]);
	}
	o->trace = argv[optind];
	o->sym.skip_functions = o->skip;
	return 0;
}

static int run_dump(const struct options *o)
{
	lt__decode_opts_t dopts = {.emit_blocks = true, .follow_parent = true};
	lt__decoder_t *d;
	if (!lt__input_check(o->trace, LT__INPUT_TRACE))
		return 2;
	int rc = lt__decoder_open(&d, o->trace, &dopts);
	if (rc == 0)
		rc = lt__dump_trace(d, stdout);
	fflush(stdout);
	fputs(lt__decoder_warnings(d), stderr);
	if (rc < 0) {
		fprintf(stderr, "leaktrace-report: %s\n", lt__decoder_error(d));
		lt__decoder_close(d);
		return 2;
	}
	uint64_t at;
	lt__trace_incomplete(d, o->trace, &at);
	lt__decoder_close(d);
	return ferror(stdout) ? 2 : 0;
}

static void progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	if (total >= LT__PROGRESS_MIN_BYTES)
		fprintf(stderr, "\rleaktrace-report: reading %3d%%",
			(int)(100.0 * (double)done / (double)total));
}

static int run_report(const struct options *o)
{
	lt__analysis_t a;
	int status = 2;
	if (!lt__input_check(o->trace, LT__INPUT_TRACE))
		return 2;
	int rc = lt__analysis_open(&a, o->trace, NULL, NULL);
	bool show_progress = isatty(STDERR_FILENO);
	if (rc == 0)
		rc = lt__analysis_run(&a, show_progress ? progress : NULL, NULL);
	if (show_progress)
		fputs("\r\033[K", stderr);
	if (a.dec)
		fputs(lt__decoder_warnings(a.dec), stderr);
	if (rc < 0) {
		fprintf(stderr, "leaktrace-report: %s\n",
			a.dec && lt__decoder_error(a.dec)[0] ? lt__decoder_error(a.dec)
							     : strerror(-rc));
		lt__analysis_close(&a);
		return 2;
	}

	lt__report_t r = {.trace_path = o->trace, .replay = a.replay, .top = o->top, .show_hidden = o->sym.show_hidden,
			  .full_names = o->full_names,
			  .metric = o->metric, .warnings = lt__decoder_warnings(a.dec)};
	r.truncated = lt__trace_incomplete(a.dec, o->trace, &r.truncated_at);
	lt__merge_stats(a.merge, &r.merge);
	/* What the report needs from the input is copied: the decoder, the
	 * merge and the live blocks go before symbolization, which is the
	 * other big user of memory (libdw's debug information). */
	char *warnings = strdup(r.warnings);
	if (!warnings) {
		fprintf(stderr, "leaktrace-report: %s\n", strerror(ENOMEM));
		lt__analysis_close(&a);
		return 2;
	}
	r.warnings = warnings;
	lt__analysis_drop_input(&a);
	lt__replay_drop_live(a.replay);
	if (o->color >= 0)
		r.color = o->color;
	else
		r.color = isatty(STDOUT_FILENO) && !(getenv("NO_COLOR") && getenv("NO_COLOR")[0]);

	lt__sym_t *sym = NULL;
	lt__callsites_t sites = {0};
	lt__child_trace_t *children = NULL;
	size_t nchildren = 0;
	rc = lt__sym_new(&sym, lt__replay_modmaps(a.replay), &o->sym);
	if (rc == 0)
		rc = lt__callsites_build(&sites, lt__replay_agg(a.replay), sym);
	const lt__child_t *kids;
	size_t nkids;
	lt__replay_children(a.replay, &kids, &nkids);
	const lt__process_t *p = lt__replay_process(a.replay);
	if (rc == 0 && nkids && p->known)
		rc = lt__children_find(o->trace, p->pid, p->start_unix_ns, &children, &nchildren);
	if (rc == 0) {
		r.sites = &sites;
		r.children = children;
		r.nchildren = nchildren;
		switch (o->format) {
		case LT__FMT_JSON:
			rc = lt__report_json(stdout, &r);
			break;
		case LT__FMT_FOLDED:
			rc = lt__report_folded(stdout, &r);
			break;
		default:
			rc = lt__report_text(stdout, &r);
			break;
		}
	}
	if (fflush(stdout) != 0 && rc == 0)
		rc = -EIO;
	if (rc == 0)
		status = 0;
	else
		fprintf(stderr, "leaktrace-report: %s\n", strerror(-rc));
	lt__children_free(children, nchildren);
	lt__callsites_free(&sites);
	lt__sym_free(sym);
	lt__analysis_close(&a);
	free(warnings);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = {.format = LT__FMT_TEXT, .metric = LT__BY_LEAKED, .top = 10,
			    .color = -1};
	/* A subcommand may come first; "report" is the default. */
	if (argc > 1 && argv[1][0] != '-') {
		static const struct {
			const char *name;
			int (*run)(int argc, char **argv);
		} commands[] = {{"snapshot", lt__cmd_snapshot}, {"stats", lt__cmd_stats},
				{"diff", lt__cmd_diff}, {"growth", lt__cmd_growth}};
		for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
			if (strcmp(argv[1], commands[i].name) == 0)
				return commands[i].run(argc - 1, argv + 1);
		if (strcmp(argv[1], "report") == 0) {
			argv[1] = argv[0];
			argv++;
			argc--;
		}
	}
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;
	return o.dump ? run_dump(&o) : run_report(&o);
}
