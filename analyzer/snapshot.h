/* SPDX-License-Identifier: MIT */
/* tracemalloc-style snapshots of a trace: the live blocks at one point
 * (a marker, a time, the peak or the end) grouped by symbolized stack,
 * keyed symbolically so that snapshots of two runs or two builds can be
 * compared; their JSON files; filters; grouping for stats and diff. */
#ifndef LT_ANALYZER_SNAPSHOT_H
#define LT_ANALYZER_SNAPSHOT_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uthash.h>

#include "analysis.h"
#include "symbolize.h"

#define LT__SNAPSHOT_SCHEMA  "leaktrace-snapshot"
#define LT__SNAPSHOT_VERSION 1   /* bump when a field changes meaning */
#define LT__MAX_SKIP         64  /* --skip-function patterns */
#define LT__MAX_FILTERS      64  /* --include / --exclude patterns */
#define LT__ERR_LEN          512 /* one-line error messages */

/*
 * SNAPSHOT FILE (version 1), one JSON object:
 *
 *   {"schema": "leaktrace-snapshot", "version": 1,
 *    "source": "trace.bin", "point": "end" | "peak" | "marker NAME" |
 *              "time 1.5s", "time_s": 1.5 | null, "exe": "...", "pid": N,
 *    "truncated": false,
 *    "summary": {"size": N, "count": N, "peak_bytes": N,
 *                "allocations": N, "frees": N},
 *    "traces": [{"size": N, "count": N,
 *                "frames": [{"function": "...", "file": "..." | null,
 *                            "line": N | null, "module": "basename"}]}]}
 *
 * traces: one per distinct visible stack (frames innermost first), live
 * bytes and blocks at the point, largest first. Readers need only schema,
 * version and traces; a version they do not know is refused.
 */

/* One source frame of a snapshot: what identifies a call site across runs
 * and builds. Never an address. */
typedef struct lt__snap_frame_s {
	char *module;   /* module basename, "" when outside every module */
	char *function; /* function, or "module+0xoffset" without symbols */
	char *file;     /* NULL when unknown */
	unsigned line;  /* 0 when unknown */
} lt__snap_frame_t;

/* The live blocks of one visible stack (tracemalloc's Statistic of a
 * Traceback): frames innermost first. */
typedef struct lt__snap_trace_s {
	lt__snap_frame_t *frames;
	size_t nframes;
	uint64_t size, count;
} lt__snap_trace_t;

typedef struct lt__snapshot_s {
	char *source;  /* trace or snapshot file it came from */
	char *point;   /* "end", "peak", "marker NAME", "time 1.5s" */
	double time_s; /* seconds since process start, < 0 when unknown */
	char *exe;     /* may be NULL */
	uint64_t pid;
	uint64_t allocations, frees;      /* so far */
	uint64_t peak_bytes;              /* the trace's peak so far */
	bool truncated;                   /* the trace was cut short */
	uint64_t total_size, total_count; /* sums over traces */
	lt__snap_trace_t *traces;         /* sorted by size, largest first */
	size_t ntraces, cap;
} lt__snapshot_t;

/* Where in a trace to take a snapshot. */
enum lt__point_kind { LT__AT_END, LT__AT_PEAK, LT__AT_MARKER, LT__AT_TIME };

typedef struct lt__point_s {
	enum lt__point_kind kind;
	const char *marker; /* LT__AT_MARKER: its name (marker_len bytes) */
	size_t marker_len;
	uint64_t occurrence; /* LT__AT_MARKER: 1 = first marker of that name */
	uint64_t ns;         /* LT__AT_TIME: nanoseconds since the process start */
} lt__point_t;

/* Parses "end", "peak", "SECONDS" (1.5, 1.5s, 250ms), "NAME" or "NAME#K"
 * (the K-th marker of that name) or "marker:NAME" (a marker named like a
 * keyword or a number). Returns 0, or -EINVAL with a message in err. */
int lt__point_parse(const char *s, lt__point_t *p, char *err, size_t errlen);

/* Whether a MARKER named name (NUL-terminated) carries the name of the
 * marker point p (any occurrence). */
bool lt__point_names(const lt__point_t *p, const char *name);

/* A tracemalloc Filter: include or exclude traces whose frame (the first
 * visible frame, or any frame with all_frames) has a module basename or a
 * file matching the glob. */
typedef struct lt__filter_s {
	bool include;
	const char *glob;
} lt__filter_t;

typedef struct lt__filters_s {
	lt__filter_t v[LT__MAX_FILTERS];
	size_t n;
	bool all_frames;
} lt__filters_t;

/* tracemalloc's rule: a trace is kept when no exclude filter matches it
 * and, if there are include filters, at least one matches. */
bool lt__filters_keep(const lt__filters_t *f, const lt__snap_trace_t *t);

/* Options shared by the snapshot, stats, diff and growth commands. */
typedef struct lt__common_opts_s {
	lt__sym_opts_t sym;
	const char *skip[LT__MAX_SKIP];
	lt__filters_t filters;
} lt__common_opts_t;

/* getopt_long entries of the shared options; each command appends them
 * to its own table and hands their codes to lt__common_opt(). */
#define LT__COMMON_LONGOPTS                                                                        \
	{"skip-function", required_argument, NULL, 0x100},                                         \
	    {"sysroot", required_argument, NULL, 0x101},                                           \
	    {"debug-dir", required_argument, NULL, 0x102},                                         \
	    {"show-hidden", no_argument, NULL, 0x103},                                             \
	    {"include", required_argument, NULL, 0x104},                                           \
	    {"exclude", required_argument, NULL, 0x105},                                           \
	{                                                                                          \
		"all-frames", no_argument, NULL, 0x106                                             \
	}
#define LT__COMMON_USAGE                                                                           \
	"  --include=GLOB / --exclude=GLOB  keep / drop blocks allocated in a module\n"            \
	"                           (basename) or source file matching GLOB\n"                     \
	"  --all-frames             filters look at every frame, not only the first\n"             \
	"  --skip-function=GLOB     hide wrapper frames matching GLOB (repeatable)\n"              \
	"  --show-hidden            keep the shim's and the allocator's frames (and a\n"           \
	"                           Python program's interpreter frames)\n"                        \
	"  --sysroot=DIR, --debug-dir=DIR  where to find binaries and debug info\n"

/* Handles one shared option code (0x100..0x1ff). Returns 0 when handled,
 * 1 when c is not a shared option, 2 after printing an error. */
int lt__common_opt(lt__common_opts_t *o, int c, const char *arg);

/* Prints "leaktrace-report: MESSAGE" on stderr and returns 2. */
int lt__fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses a byte count: "1000", "512KiB", "1MiB", "10MB", "1.5G", "4k".
 * K/M/G/T and KiB/MiB/... are powers of 1024, KB/MB/GB/TB of 1000.
 * Returns 0 or -EINVAL. */
int lt__parse_size(const char *s, uint64_t *out);

/* The end of every command's --help but diff's (which has a status 1 as
 * well): the exit statuses. ok says what status 0 means ("printed"). */
#define LT__EXIT_STATUS(ok)                                                                        \
	"\nexit status: 0 " ok " (also for an incomplete trace, with a warning),\n"                \
	"2 bad usage, or a missing, empty, foreign or corrupt input file\n"

/* Prints the one line for an option getopt_long() refused and returns 2.
 * c is what getopt_long() returned ('?', or ':' when the option string
 * starts with ':'), with opterr set to 0 so that getopt itself printed
 * nothing; cmd is the subcommand for "(see CMD --help)", NULL for the
 * report. Example: "leaktrace-report: unknown option --bogus (see --help)". */
int lt__bad_option(int c, char *const argv[], const struct option *longopts, const char *cmd);

/* What an input file holds, as its first bytes tell. */
enum lt__input_kind {
	LT__INPUT_TRACE = 1,    /* the trace magic, or a prefix of it (cut short) */
	LT__INPUT_SNAPSHOT = 2, /* a JSON document (parsed and checked later) */
};

/* Looks at path before anything reads it: a missing or unreadable file, a
 * directory, an empty file, or content that is none of the kinds in want
 * (a mask of enum lt__input_kind) gets one line "leaktrace-report: PATH:
 * PROBLEM" on stderr and 0 is returned; otherwise the kind. A pipe or
 * another stream is not looked into (that would consume it): it counts
 * as a trace when want allows one. */
int lt__input_check(const char *path, unsigned want);

/* Opens a trace for the analysis pipeline, after lt__input_check(); on
 * failure prints the error and returns 2 (the analysis is closed then). */
int lt__trace_open(lt__analysis_t *a, const char *path);

/* Whether the trace d has read to its end stopped short, and at which
 * byte: a block or the header cut by the end of the file, or a file that
 * holds nothing after its header (the program was killed before its first
 * block was written). When it did, prints the warning line naming path. */
bool lt__trace_incomplete(const lt__decoder_t *d, const char *path, uint64_t *at);

/* After the last step: prints the decoder's warnings and, for a truncated
 * trace, the warning that it is incomplete. rc is the last step's result;
 * returns 0, or 2 after printing the error of a failed read. */
int lt__trace_finish(lt__analysis_t *a, const char *path, int rc, bool *truncated);

/* Takes a snapshot at each of the npoints points of one trace, in one
 * pass. out[i] receives a new snapshot (free with lt__snapshot_free).
 * Returns 0, or 2 after printing an error. */
int lt__snapshot_take(const char *trace, const lt__point_t *points, size_t npoints,
                      const lt__sym_opts_t *sym, lt__snapshot_t **out);

/* Reads a snapshot file, or takes the snapshot at `at` (NULL: the end)
 * when path is a trace. Returns 0, or 2 after printing an error. */
int lt__snapshot_load(const char *path, const lt__point_t *at, const lt__sym_opts_t *sym,
                      lt__snapshot_t **out);

/* Writes the snapshot as JSON. Returns 0 or -EIO. */
int lt__snapshot_write(FILE *out, const lt__snapshot_t *s);

void lt__snapshot_free(lt__snapshot_t *s);

/* ---- grouping (Snapshot.statistics / compare_to) --------------------- */

enum lt__group_by { LT__BY_LINENO, LT__BY_FILENAME, LT__BY_FUNCTION, LT__BY_TRACEBACK };

/* Parses "lineno", "filename", "function" or "traceback". Returns 0 or
 * -EINVAL. */
int lt__group_by_parse(const char *s, enum lt__group_by *by);
const char *lt__group_by_name(enum lt__group_by by);

/* One group: its frames (one frame, or the whole stack for traceback,
 * pointing into a snapshot that must outlive the groups) and its sizes in
 * the old and the new snapshot of a diff (stats uses only the new). */
typedef struct lt__group_s {
	char *key;
	const lt__snap_frame_t *frames;
	size_t nframes;
	uint64_t size, count, old_size, old_count;
	bool failed; /* over a diff threshold */
	UT_hash_handle hh;
} lt__group_t;

typedef struct lt__groups_s {
	enum lt__group_by by;
	bool cumulative;
	/* Leave the C++ runtime's start-up block (lt__snap_runtime_init) out
	 * of the groups; the totals still count it, in runtime_size/count. */
	bool hide_runtime;
	uint64_t runtime_size, runtime_count;
	lt__group_t **v;
	size_t n, cap;
	lt__group_t *by_key;
	uint64_t size, count, old_size, old_count; /* totals (not cumulative) */
} lt__groups_t;

/* Adds the traces of s that the filters keep to the groups, as the old or
 * the new side. Returns 0 or -ENOMEM. */
int lt__groups_add(lt__groups_t *g, const lt__snapshot_t *s, const lt__filters_t *f, bool old);

/* Whether t's stack is the C++ runtime's own start-up (libstdc++'s
 * exception-handling pool), as lt__frames_runtime_init tells for the
 * report's call sites. */
bool lt__snap_runtime_init(const lt__snap_trace_t *t);

/* Sorts by size (stats), or by |size - old_size| then size (diff). */
void lt__groups_sort(lt__groups_t *g, bool by_diff);

/* "function (file:line)" or the like for a group's heading; buf >= 1024.
 * C++ names lose their template arguments unless full_names (text
 * outputs shorten, JSON keeps them whole: lt__snap_function). */
const char *lt__group_label(const lt__groups_t *g, const lt__group_t *gr, bool full_names,
                            char *buf, size_t len);

/* The function name of f as the text outputs show it: a C++ name without
 * its template arguments ("std::vector<>::push_back(int const&)", as the
 * report and heaptrack show them) unless full_names, a Python name as it
 * is. Returns f->function or buf. Snapshot files keep full names, since
 * they are what diff matches; only printing shortens. */
const char *lt__snap_function(const lt__snap_frame_t *f, bool full_names, char *buf,
                              size_t len);

#define LT__TRACEBACK_FRAMES 8 /* frames shown per group with --by traceback */

/* The callers of a --by traceback group under its row, as the report's
 * LEAKS show a stack: one "by FUNCTION (FILE:LINE)" line per frame after
 * the first (which the row's label names), indented by indent spaces, up
 * to LT__TRACEBACK_FRAMES frames and "... N more frames". Without them,
 * groups that part below their first frame print as identical rows. */
void lt__group_traceback_text(FILE *out, const lt__group_t *gr, bool full_names, int indent);

void lt__groups_free(lt__groups_t *g);

/* The symbolic key of frames[0..n) (module, function, file and line of
 * each) as a malloc'ed string. Returns 0 or -ENOMEM. */
int lt__snap_frames_key(const lt__snap_frame_t *frames, size_t n, char **key);

/* A JSON integer for a count or size (clamped to INT64_MAX, which only
 * hostile input reaches). */
struct json_t *lt__jint(uint64_t v);

/* Snapshot frames as JSON array (jansson), for the JSON outputs. */
struct json_t;
struct json_t *lt__snap_frames_json(const lt__snap_frame_t *frames, size_t n);

#endif
