/* SPDX-License-Identifier: MIT */
/* leaktrace-report as a program: exit status 0 for complete and truncated
 * traces (with the warning line), 2 with one clear line for corrupt,
 * foreign and unknown-version files and for bad usage; --version; how a
 * Python program's leaks read. The binary's path comes from LT_REPORT
 * (set by meson). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "fx_python.h"
#include "leaktrace/format.h"
#include "pylinetable_311.h"
#include "tracebuilder.h"

struct result {
	int status;
	char out[65536];
	char err[4096];
};

/* Runs leaktrace-report with args (a shell-quoted string). */
static void run(struct result *r, const char *args)
{
	const char *bin = getenv("LT_REPORT");
	cr_assert_not_null(bin, "LT_REPORT is not set");
	char errpath[] = "/tmp/lt-cli-err-XXXXXX";
	int efd = mkstemp(errpath);
	cr_assert_geq(efd, 0);
	char *cmd;
	cr_assert(asprintf(&cmd, "'%s' %s 2>'%s'", bin, args, errpath) > 0);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	size_t n = fread(r->out, 1, sizeof r->out - 1, p);
	r->out[n] = '\0';
	int st = pclose(p);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	n = (size_t)read(efd, r->err, sizeof r->err - 1);
	r->err[n > sizeof r->err ? 0 : n] = '\0';
	close(efd);
	unlink(errpath);
	free(cmd);
}

static char *write_tb(tb_t *tb, size_t len)
{
	char *path = strdup("/tmp/lt-cli-XXXXXX");
	int fd = mkstemp(path);
	size_t total;
	const uint8_t *d = tb_data(tb, &total);
	if (len > total)
		len = total;
	cr_assert_eq(write(fd, d, len), (ssize_t)len);
	close(fd);
	return path;
}

/* Flushes tb's last block and writes the trace to a temporary file. */
static char *trace_file(tb_t *tb, int codec)
{
	tb_flush(tb, codec);
	return write_tb(tb, SIZE_MAX);
}

/* Removes the trace file and frees both. */
static void trace_done(tb_t *tb, char *path)
{
	unlink(path);
	free(path);
	tb_free(tb);
}

/* Three stacks of `depth` frames each (frames: 3 x depth, row by row),
 * one allocation of 100, 200 and 300 bytes from each, left live. */
static tb_t *three_sites_trace(unsigned depth, const uint64_t *frames)
{
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	for (uint64_t s = 0; s < 3; s++)
		tb_stack(tb, s + 1, depth, frames + s * depth);
	tb_at(tb, 1, 1);
	for (uint64_t s = 0; s < 3; s++)
		tb_alloc(tb, s + 1, 100 * (s + 1), 0x100000 * (s + 1));
	tb_end(tb, LT_EXIT_NORMAL, 0);
	return tb;
}

static tb_t *small_trace(void)
{
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	tb_flush(tb, LT_CODEC_RAW);
	tb_at(tb, 1, 1);
	tb_alloc(tb, 1, 64, 0x1000);
	tb_flush(tb, LT_CODEC_ZSTD);
	tb_alloc(tb, 1, 32, 0x2000);
	tb_end(tb, LT_EXIT_NORMAL, 0);
	tb_flush(tb, LT_CODEC_ZSTD);
	return tb;
}

Test(cli, complete_trace_exits_0)
{
	tb_t *tb = small_trace();
	char *path = write_tb(tb, SIZE_MAX);
	struct result r;
	char args[256];
	snprintf(args, sizeof args, "--no-color '%s'", path);
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "in use at exit: 96 bytes in 2 blocks"), "%s", r.out);
	cr_assert_str_eq(r.err, "");
	trace_done(tb, path);
}

Test(cli, truncated_trace_exits_0_with_warning)
{
	tb_t *tb = small_trace();
	size_t len;
	tb_data(tb, &len);
	char *path = write_tb(tb, len - 3);
	struct result r;
	char args[256];
	snprintf(args, sizeof args, "--format=json '%s'", path);
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.err, "trace is incomplete: ends at byte "), "%s", r.err);
	cr_assert(strstr(r.err, "(the program was probably killed)"), "%s", r.err);
	cr_assert(strstr(r.out, "\"truncated\": true"), "%s", r.out);
	trace_done(tb, path);
}

static void expect_2(const char *args, const char *msg)
{
	struct result r;
	run(&r, args);
	cr_assert_eq(r.status, 2, "status %d for %s", r.status, args);
	cr_assert(strstr(r.err, msg), "stderr '%s' lacks '%s'", r.err, msg);
	/* One line. */
	char *nl = strchr(r.err, '\n');
	cr_assert(nl && nl[1] == '\0', "not one line: '%s'", r.err);
}

Test(cli, corrupt_foreign_version_usage_exit_2)
{
	tb_t *tb = small_trace();
	size_t len;
	tb_data(tb, &len);
	char *path = write_tb(tb, SIZE_MAX);
	FILE *f = fopen(path, "r+b");
	fseek(f, LT_FILE_HEADER_LEN + LT_BLOCK_HEADER_LEN + 3, SEEK_SET);
	fputc(0x55, f);
	fclose(f);
	char args[256];
	snprintf(args, sizeof args, "'%s'", path);
	expect_2(args, "corrupt trace: checksum mismatch in block at byte 16");
	snprintf(args, sizeof args, "--dump '%s'", path);
	expect_2(args, "corrupt trace");

	tb_t *v2 = tb_new_version(2, 0);
	char *vpath = write_tb(v2, SIZE_MAX);
	snprintf(args, sizeof args, "'%s'", vpath);
	expect_2(args, "trace format version 2.0 is not supported");

	expect_2("/etc/hostname", "not a leaktrace trace");
	expect_2("/nonexistent/trace.bin", "No such file or directory");
	expect_2("--format=xml x.bin", "unknown format 'xml'");
	expect_2("--top=-1 x.bin", "--top wants a number");
	expect_2("", "no trace file given");
	unlink(path);
	unlink(vpath);
	free(path);
	free(vpath);
	tb_free(tb);
	tb_free(v2);
}

Test(cli, version_and_help)
{
	struct result r;
	run(&r, "--version");
	cr_assert_eq(r.status, 0);
	cr_assert(strncmp(r.out, "leaktrace-report ", 17) == 0, "%s", r.out);
	run(&r, "--help");
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "--skip-function"));
}

Test(cli, dump_lines)
{
	tb_t *tb = small_trace();
	char *path = write_tb(tb, SIZE_MAX);
	struct result r;
	char args[256];
	snprintf(args, sizeof args, "--dump '%s'", path);
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	const char *want = "block 16 stored=";
	cr_assert(strncmp(r.out, want, strlen(want)) == 0, "%s", r.out);
	cr_assert(strstr(r.out, "\nprocess pid=1 ppid=0 exe=/bin/x argc=0 flags=0 parent= prefix=0 fork_seq=0\n"), "%s", r.out);
	cr_assert(strstr(r.out, "\nalloc 1 1 stack=1 size=64 addr=0x1000\n"), "%s", r.out);
	cr_assert(strstr(r.out, "\nend kind=normal status=0 "), "%s", r.out);
	trace_done(tb, path);
}

/* ---- bad input, the same for every subcommand ---------------------------
 * Every command that reads an input file refuses a missing, empty, foreign
 * or mistaken one with exit status 2 and exactly one line on stderr that
 * names the file and the problem; a trace cut right after its header
 * (the program was killed at start) is reported with exit status 0 and
 * exactly one warning line. */

/* The ways to run a command on one input file, %s standing for it. */
static const char *const trace_commands[] = {
    "'%s'",          "report '%s'", "--dump '%s'",
    "snapshot '%s'", "growth '%s'", "diff '%s' --from end --to end",
};
static const char *const any_commands[] = {"stats '%s'", "diff '%s' '%s'"};

/* Runs fmt with path in place of every %s (at most two) and checks the
 * exit status and that stderr is exactly want. */
static void expect_exact(const char *fmt, const char *path, int status, const char *want)
{
	char args[1024];
	snprintf(args, sizeof args, fmt, path, path);
	struct result r;
	run(&r, args);
	cr_assert_eq(r.status, status, "status %d for %s (stderr '%s')", r.status, args, r.err);
	cr_assert_str_eq(r.err, want, "stderr for %s", args);
}

/* Both tables, with the same expected line. */
static void expect_all(const char *path, int status, const char *want)
{
	for (size_t i = 0; i < sizeof trace_commands / sizeof trace_commands[0]; i++)
		expect_exact(trace_commands[i], path, status, want);
	for (size_t i = 0; i < sizeof any_commands / sizeof any_commands[0]; i++)
		expect_exact(any_commands[i], path, status, want);
}

static char *write_bytes(const void *bytes, size_t n)
{
	char *path = strdup("/tmp/lt-cli-XXXXXX");
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, bytes, n), (ssize_t)n);
	close(fd);
	return path;
}

Test(cli, empty_file_is_one_line_exit_2)
{
	char *path = write_bytes("", 0);
	char want[256];
	snprintf(want, sizeof want, "leaktrace-report: %s: empty file (no trace header)\n", path);
	expect_all(path, 2, want);
	/* diff with one file and no --from/--to says what is wrong with it. */
	expect_exact("diff '%s'", path, 2, want);
	unlink(path);
	free(path);
}

Test(cli, directory_is_one_line_exit_2)
{
	expect_all("/tmp", 2, "leaktrace-report: /tmp: Is a directory\n");
}

Test(cli, missing_file_is_one_line_exit_2)
{
	const char *want = "leaktrace-report: /nonexistent/t.bin: No such file or directory\n";
	expect_all("/nonexistent/t.bin", 2, want);
	expect_exact("diff '%s'", "/nonexistent/t.bin", 2, want);
}

Test(cli, random_bytes_are_one_line_exit_2)
{
	unsigned char bytes[4096];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof bytes; i++) {
		x = x * 1103515245u + 12345u;
		bytes[i] = (unsigned char)(x >> 16);
	}
	bytes[0] = 0x9c; /* neither the trace magic nor JSON */
	char *path = write_bytes(bytes, sizeof bytes);
	char want[256];
	snprintf(want, sizeof want,
	         "leaktrace-report: %s: not a leaktrace trace (bad file magic)\n", path);
	for (size_t i = 0; i < sizeof trace_commands / sizeof trace_commands[0]; i++)
		expect_exact(trace_commands[i], path, 2, want);
	snprintf(want, sizeof want,
	         "leaktrace-report: %s: neither a leaktrace trace nor a snapshot (no trace "
	         "magic, not JSON)\n",
	         path);
	for (size_t i = 0; i < sizeof any_commands / sizeof any_commands[0]; i++)
		expect_exact(any_commands[i], path, 2, want);
	unlink(path);
	free(path);
}

Test(cli, json_where_a_trace_is_needed_is_one_line_exit_2)
{
	/* A snapshot, written by the snapshot command from a real trace. */
	tb_t *tb = small_trace();
	char *trace = write_tb(tb, SIZE_MAX);
	char *snap = strdup("/tmp/lt-cli-XXXXXX");
	close(mkstemp(snap));
	char args[512];
	snprintf(args, sizeof args, "snapshot '%s' -o '%s'", trace, snap);
	struct result r;
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	char want[512];
	snprintf(want, sizeof want,
	         "leaktrace-report: %s: not a leaktrace trace but a snapshot (this needs the "
	         "trace file)\n",
	         snap);
	for (size_t i = 0; i < sizeof trace_commands / sizeof trace_commands[0]; i++)
		expect_exact(trace_commands[i], snap, 2, want);
	/* stats reads it; diff wants a second one. */
	expect_exact("stats '%s'", snap, 0, "");
	snprintf(want, sizeof want,
	         "leaktrace-report: %s: diff needs a second snapshot (or one trace with --from "
	         "and --to)\n",
	         snap);
	expect_exact("diff '%s'", snap, 2, want);

	/* A JSON report where a snapshot is read, and where a trace is. */
	static const char report[] = "{\"schema\": \"leaktrace-report/1\", \"summary\": {}}\n";
	char *rep = write_bytes(report, sizeof report - 1);
	snprintf(want, sizeof want,
	         "leaktrace-report: %s: not a leaktrace snapshot but a \"leaktrace-report/1\" "
	         "document\n",
	         rep);
	for (size_t i = 0; i < sizeof any_commands / sizeof any_commands[0]; i++)
		expect_exact(any_commands[i], rep, 2, want);
	snprintf(want, sizeof want,
	         "leaktrace-report: %s: not a leaktrace trace but a JSON document of schema "
	         "\"leaktrace-report/1\" (this needs the trace file)\n",
	         rep);
	expect_exact("growth '%s'", rep, 2, want);

	/* stats and diff take a trace as well (its end). */
	expect_exact("stats '%s'", trace, 0, "");
	expect_exact("diff '%s' '%s'", trace, 0, "");
	unlink(trace);
	unlink(snap);
	unlink(rep);
	free(trace);
	free(snap);
	free(rep);
	tb_free(tb);
}

Test(cli, header_only_trace_warns_and_exits_0)
{
	tb_t *tb = small_trace();
	char *path = write_tb(tb, LT_FILE_HEADER_LEN);
	char want[256];
	snprintf(want, sizeof want,
	         "leaktrace-report: %s: trace is incomplete: ends at byte 16 (the program was "
	         "probably killed)\n",
	         path);
	for (size_t i = 0; i < sizeof trace_commands / sizeof trace_commands[0] - 1; i++)
		expect_exact(trace_commands[i], path, 0, want);
	expect_exact("stats '%s'", path, 0, want);

	/* The JSON report says so too. */
	char args[256];
	snprintf(args, sizeof args, "--format=json '%s'", path);
	struct result r;
	run(&r, args);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "\"truncated\": true"), "%s", r.out);
	cr_assert(strstr(r.out, "\"truncated_at\": 16"), "%s", r.out);
	unlink(path);
	free(path);

	/* A few bytes of the header: the readable trace ends at byte 0. */
	path = write_tb(tb, 5);
	snprintf(want, sizeof want,
	         "leaktrace-report: %s: trace is incomplete: ends at byte 0 (the program was "
	         "probably killed)\n",
	         path);
	expect_exact("'%s'", path, 0, want);
	expect_exact("growth '%s'", path, 0, want);
	trace_done(tb, path);
}

/* An unknown option, or one missing its value, is one line naming it and
 * exit status 2 for every subcommand, not the whole --help. */
Test(cli, unknown_option_is_one_line_exit_2)
{
	static const struct {
		const char *args, *want;
	} cases[] = {
	    {"--bogus x.bin", "unknown option --bogus (see --help)"},
	    {"report --bogus=1 x.bin", "unknown option --bogus (see --help)"},
	    {"-Q x.bin", "unknown option -Q (see --help)"},
	    {"x.bin --top", "option --top needs a value (see --help)"},
	    {"x.bin -n", "option -n needs a value (see --help)"},
	    {"--dump=yes x.bin", "option --dump takes no value (see --help)"},
	    {"--s x.bin", "ambiguous option --s (see --help)"},
	    {"snapshot --bogus x.bin", "unknown option --bogus (see snapshot --help)"},
	    {"stats --bogus x.bin", "unknown option --bogus (see stats --help)"},
	    {"stats x.bin --by", "option --by needs a value (see stats --help)"},
	    {"growth --bogus x.bin", "unknown option --bogus (see growth --help)"},
	    {"growth -Q x.bin", "unknown option -Q (see growth --help)"},
	    {"diff --bogus a b", "unknown option --bogus (see diff --help)"},
	    {"diff a b --show-hidden=1", "option --show-hidden takes no value (see diff --help)"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char want[256];
		snprintf(want, sizeof want, "leaktrace-report: %s\n", cases[i].want);
		struct result r;
		run(&r, cases[i].args);
		cr_assert_eq(r.status, 2, "status %d for %s", r.status, cases[i].args);
		cr_assert_str_eq(r.err, want, "stderr for %s", cases[i].args);
		cr_assert_str_eq(r.out, "", "stdout for %s", cases[i].args);
	}
}

Test(cli, help_documents_exit_status_2)
{
	static const char *const commands[] = {"--help", "snapshot --help", "stats --help",
	                                       "growth --help", "diff --help"};
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		struct result r;
		run(&r, commands[i]);
		cr_assert_eq(r.status, 0);
		cr_assert(strstr(r.out, "also for an incomplete trace, with a"), "%s", r.out);
		cr_assert(strstr(r.out, "2 bad usage, or a missing, empty, foreign or corrupt "
		                        "input file\n"),
		          "%s", r.out);
	}
}

/* ---- wording ------------------------------------------------------------ */

Test(cli, no_events_is_not_0_threads)
{
	tb_t *tb = small_trace();
	char *path = write_tb(tb, LT_FILE_HEADER_LEN);
	char args[256];
	snprintf(args, sizeof args, "--no-color '%s'", path);
	struct result r;
	run(&r, args);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "\nduration  0.000 s, no allocation events, trace is incomplete: "
	                        "ends at byte 16\n"),
	          "%s", r.out);
	trace_done(tb, path);
}

Test(cli, one_more_frame_is_singular)
{
	/* LT__LEAK_FRAMES (12) frames are shown per leak: 13 leave one. */
	uint64_t frames[13];
	for (size_t i = 0; i < 13; i++)
		frames[i] = 0x5000 + 16 * i;
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	tb_stack(tb, 1, 13, frames);
	tb_at(tb, 1, 1);
	tb_alloc(tb, 1, 64, 0x1000);
	tb_end(tb, LT_EXIT_NORMAL, 0);
	char *path = trace_file(tb, LT_CODEC_RAW);
	char args[256];
	snprintf(args, sizeof args, "--no-color '%s'", path);
	struct result r;
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "... 1 more frame\n"), "%s", r.out);
	cr_assert_null(strstr(r.out, "1 more frames"), "%s", r.out);
	trace_done(tb, path);
}

Test(cli, diff_counts_have_thousands_separators)
{
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	tb_at(tb, 1, 1);
	tb_marker(tb, "before");
	for (uint64_t i = 0; i < 1500; i++)
		tb_alloc(tb, 1, 16, 0x100000 + 32 * i);
	tb_marker(tb, "after");
	tb_end(tb, LT_EXIT_NORMAL, 0);
	char *path = trace_file(tb, LT_CODEC_ZSTD);
	char args[256];
	snprintf(args, sizeof args, "diff '%s' --from before --to after", path);
	struct result r;
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "      1,500      +1,500  "), "%s", r.out);
	cr_assert(strstr(r.out, "count=1,500 (+1,500)\n"), "%s", r.out);
	snprintf(args, sizeof args, "diff '%s' --from after --to before", path);
	run(&r, args);
	cr_assert(strstr(r.out, "count=0 (-1,500)\n"), "%s", r.out);
	trace_done(tb, path);
}

/* growth's one-line site label: frames without a line (no debug
 * information) are followed by their callers, up to three, so that sites
 * sharing their first frame (a program's own xmalloc) can be told apart. */
Test(cli, growth_labels_name_callers_of_frames_without_lines)
{
	uint64_t one[] = {0x5000, 0x6000, 0x7000, 0x8000};
	uint64_t two[] = {0x5000, 0x6100, 0x7100, 0x8000};
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	tb_stack(tb, 1, 4, one);
	tb_stack(tb, 2, 4, two);
	for (uint64_t e = 1; e <= 40; e++) {
		tb_time(tb, e, e * 1000000);
		tb_at(tb, 1, e);
		tb_alloc(tb, 1, 1000, 0x100000 + 64 * e);
		tb_alloc(tb, 2, 500, 0x200000 + 64 * e);
	}
	tb_end(tb, LT_EXIT_NORMAL, 0);
	char *path = trace_file(tb, LT_CODEC_RAW);
	char args[256];
	snprintf(args, sizeof args, "growth --all '%s'", path);
	struct result r;
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "0x5000 < 0x6000 < 0x7000\n"), "%s", r.out);
	cr_assert(strstr(r.out, "0x5000 < 0x6100 < 0x7100\n"), "%s", r.out);
	trace_done(tb, path);
}

/* Rows of growth that would read the same name more callers, until they
 * differ (up to eight frames); rows alike even then keep the short label,
 * numbered. */
Test(cli, growth_rows_that_read_the_same_are_told_apart)
{
	uint64_t st[4][10];
	for (int s = 0; s < 4; s++)
		for (int i = 0; i < 10; i++)
			st[s][i] = 0x5000 + 0x1000 * (uint64_t)i;
	st[1][3] = 0x8100; /* 1 parts from 0 at the fourth frame */
	for (int i = 0; i < 10; i++)
		st[2][i] = st[3][i] = 0x15000 + 0x1000 * (uint64_t)i;
	st[3][9] = 0x1e100; /* 3 parts from 2 past the eighth frame */
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	for (int s = 0; s < 4; s++)
		tb_stack(tb, (uint64_t)s + 1, 10, st[s]);
	for (uint64_t e = 1; e <= 40; e++) {
		tb_time(tb, e, e * 1000000);
		tb_at(tb, 1, e);
		for (uint64_t s = 0; s < 4; s++)
			tb_alloc(tb, s + 1, 1000 + 100 * s, 0x100000 * (s + 1) + 64 * e);
	}
	tb_end(tb, LT_EXIT_NORMAL, 0);
	char *path = trace_file(tb, LT_CODEC_RAW);
	char args[256];
	snprintf(args, sizeof args, "growth --all '%s'", path);
	struct result r;
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "0x5000 < 0x6000 < 0x7000 < 0x8000\n"), "%s", r.out);
	cr_assert(strstr(r.out, "0x5000 < 0x6000 < 0x7000 < 0x8100\n"), "%s", r.out);
	cr_assert(strstr(r.out, "0x15000 < 0x16000 < 0x17000 [stack 1/2]\n"), "%s", r.out);
	cr_assert(strstr(r.out, "0x15000 < 0x16000 < 0x17000 [stack 2/2]\n"), "%s", r.out);
	trace_done(tb, path);
}

/* ---- Python programs ----------------------------------------------------
 * A trace of "CPython": this test program is the interpreter
 * (fx_python.c), the code objects are real CPython 3.11 ones. */

#define PY_HANDLE 0x7f0000a000ull /* code keys */
#define PY_MODULE ((1ull << 48) | 0x7f0000b000ull)

static const struct pylt_case *py_case(const char *qualname)
{
	for (size_t i = 0; i < sizeof pylt_cases / sizeof pylt_cases[0]; i++)
		if (strcmp(pylt_cases[i].qualname, qualname) == 0)
			return &pylt_cases[i];
	cr_assert_fail("no code object %s", qualname);
	return NULL;
}

/* where of the first instruction of line in code object qualname. */
static uint64_t py_where(const char *qualname, unsigned line, int entry)
{
	const struct pylt_case *c = py_case(qualname);
	size_t unit = 0;
	while (unit < c->units && c->lines[unit] != line)
		unit++;
	cr_assert_lt(unit, c->units, "%s has no line %u", qualname, line);
	return TB_WHERE(unit, entry);
}

static void py_code(tb_t *tb, uint64_t key, const char *qualname)
{
	const struct pylt_case *c = py_case(qualname);
	tb_pycode(tb, key, LT_PYCODE_311, "/tmp/x.py", qualname, c->firstlineno, c->table,
		  c->table_len);
}

/* handle() (line 6) called by the module (line 144) leaks two 64-byte
 * blocks through the interpreter's own functions; the interpreter itself
 * leaks 32 bytes with no Python code running (stack 2). */
static tb_t *python_trace(void)
{
	struct lt_fx_module self;
	cr_assert_eq(lt_fx_self_module(&self), 0);
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/usr/bin/python3.11", 0, NULL, 0, "", 0, 0);
	tb_module(tb, 1, self.path, self.bias, self.lo, self.hi, self.build_id,
		  self.build_id_len);
	py_code(tb, PY_HANDLE, "handle");
	py_code(tb, PY_MODULE, "<module>");
	uint64_t native[] = {LT_FX_RET(lt_fx_py_call), LT_FX_RET(lt_fx_py_eval),
			     LT_FX_RET(lt_fx_py_call), LT_FX_RET(lt_fx_py_eval),
			     LT_FX_RET(lt_fx_py_main)};
	uint64_t keys[] = {PY_HANDLE, PY_MODULE};
	uint64_t wheres[] = {py_where("handle", 6, 1), py_where("<module>", 144, 1)};
	tb_stack(tb, 1, 5, native);
	tb_pyframes(tb, 1, 2, keys, wheres);
	uint64_t interp[] = {LT_FX_RET(lt_fx_py_call), LT_FX_RET(lt_fx_py_main)};
	tb_stack(tb, 2, 2, interp);
	tb_at(tb, 1, 1);
	tb_alloc(tb, 1, 64, 0x1000);
	tb_alloc(tb, 1, 64, 0x2000);
	tb_alloc(tb, 2, 32, 0x3000);
	tb_end(tb, LT_EXIT_NORMAL, 0);
	tb_flush(tb, LT_CODEC_ZSTD);
	return tb;
}

/* Runs leaktrace-report with options opts on the Python trace. */
static void run_python(struct result *r, const char *opts)
{
	tb_t *tb = python_trace();
	char *path = write_tb(tb, SIZE_MAX);
	char args[512];
	snprintf(args, sizeof args, "%s '%s'", opts, path);
	run(r, args);
	cr_assert_eq(r->status, 0, "%s: %s", args, r->err);
	trace_done(tb, path);
}

Test(cli, python_leak_is_shown_at_its_python_line)
{
	struct result r;
	run_python(&r, "--no-color");
	cr_assert(strstr(r.out, "(128 bytes in 2 blocks, 2 allocations here)\n"
				"       at handle (/tmp/x.py:6)\n"
				"       by <module> (/tmp/x.py:144)\n  #2 "),
		  "%s", r.out);
	/* No Python code ran there: the interpreter's frames are the stack. */
	cr_assert(strstr(r.out, "\n       at lt_fx_py_call "), "%s", r.out);
	cr_assert_null(strstr(r.out, "_PyEval_EvalFrameDefault"), "%s", r.out);

	run_python(&r, "--no-color --show-hidden");
	cr_assert(strstr(r.out, "\n       at lt_fx_py_call ")
		  && strstr(r.out, "\n       by handle (/tmp/x.py:6)\n"
				   "       by lt_fx_py_call "),
		  "%s", r.out);
	cr_assert(strstr(r.out, "\n       by <module> (/tmp/x.py:144)\n"
				"       by lt_fx_py_main "),
		  "%s", r.out);

	run_python(&r, "--format=folded");
	cr_assert(strstr(r.out, "<module>;handle 128\n"), "%s", r.out);
}

Test(cli, python_leak_in_json)
{
	struct result r;
	run_python(&r, "--format=json");
	json_error_t err;
	json_t *root = json_loads(r.out, 0, &err);
	cr_assert_not_null(root, "%s: %s", err.text, r.out);
	json_t *leaks = json_object_get(root, "leaks");
	cr_assert(json_is_array(leaks), "%s", r.out);
	json_t *leak = json_array_get(leaks, 0);
	cr_assert_eq(json_integer_value(json_object_get(leak, "bytes")), 128, "%s", r.out);
	json_t *frames = json_object_get(leak, "frames");
	cr_assert_eq(json_array_size(frames), 2, "%s", r.out);
	static const struct {
		const char *function;
		int line;
	} want[] = {{"handle", 6}, {"<module>", 144}};
	for (size_t i = 0; i < 2; i++) {
		json_t *f = json_array_get(frames, i);
		const char *function = json_string_value(json_object_get(f, "function"));
		cr_assert_str_eq(function, want[i].function);
		cr_assert_str_eq(json_string_value(json_object_get(f, "file")), "/tmp/x.py");
		cr_assert_eq(json_integer_value(json_object_get(f, "line")), want[i].line);
		cr_assert_str_eq(json_string_value(json_object_get(f, "module")), "python");
	}
	json_decref(root);
}

Test(cli, python_records_in_dump)
{
	struct result r;
	run_python(&r, "--dump");
	char want[256];
	snprintf(want, sizeof want, "\npycode 0x%llx fmt=0x30b file=/tmp/x.py name=handle first=4 "
				    "linetable=%zu\n",
		 PY_HANDLE, py_case("handle")->table_len);
	cr_assert(strstr(r.out, want), "%s not in %s", want, r.out);
	snprintf(want, sizeof want, "\npyframes 1 n=2 0x%llx:%llu 0x%llx:%llu\n", PY_HANDLE,
		 (unsigned long long)py_where("handle", 6, 1), PY_MODULE,
		 (unsigned long long)py_where("<module>", 144, 1));
	cr_assert(strstr(r.out, want), "%s not in %s", want, r.out);
}

/* A program that frees everything on its way out: growth's windows stop
 * at the heap's top, so the leak before it reads as growing, and the
 * report says what the cleanup freed; --until end keeps the cleanup. */
Test(cli, growth_stops_before_the_cleanup_at_exit)
{
	uint64_t st[] = {0x5000};
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	tb_stack(tb, 1, 1, st);
	for (uint64_t e = 1; e <= 100; e++) {
		tb_time(tb, e, e * 1000000);
		tb_at(tb, 1, e);
		tb_alloc(tb, 1, 1000, 0x100000 + 64 * e);
	}
	/* The cleanup: 10 ms of frees at the end. */
	for (uint64_t e = 101; e <= 110; e++) {
		tb_time(tb, e, e * 1000000);
		tb_at(tb, 1, e);
		for (uint64_t k = 10 * (e - 101) + 1; k <= 10 * (e - 100); k++)
			tb_free_ev(tb, 0x100000 + 64 * k);
	}
	tb_end(tb, LT_EXIT_NORMAL, 0);
	char *path = trace_file(tb, LT_CODEC_RAW);
	char args[256];
	struct result r;
	snprintf(args, sizeof args, "growth '%s'", path);
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "the program freed 97.7 KiB on its way out; --until end keeps"),
		  "%s", r.out);
	cr_assert(strstr(r.out, "\ngrowing "), "%s", r.out);
	snprintf(args, sizeof args, "growth --format=json '%s'", path);
	run(&r, args);
	json_error_t jerr;
	json_t *doc = json_loads(r.out, 0, &jerr);
	cr_assert_not_null(doc, "%s", r.out);
	json_t *c = json_object_get(doc, "cleanup_at_exit");
	cr_assert_eq(json_integer_value(json_object_get(c, "freed_bytes")), 100000);
	json_decref(doc);
	snprintf(args, sizeof args, "growth --until end '%s'", path);
	run(&r, args);
	cr_assert_null(strstr(r.out, "on its way out"), "%s", r.out);
	cr_assert_null(strstr(r.out, "\ngrowing "), "%s", r.out);
	trace_done(tb, path);
}

/* A cache that fills fast, then a slow leak: the whole heap's fit levels
 * off (a plateau), but a call site grows, so the heap is called growing,
 * at its final rate. */
Test(cli, growth_whole_heap_grows_when_a_site_does)
{
	uint64_t cache[] = {0x5000}, leak[] = {0x6000};
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	tb_stack(tb, 1, 1, cache);
	tb_stack(tb, 2, 1, leak);
	for (uint64_t e = 1; e <= 60; e++) {
		tb_time(tb, e, e * 1000000);
		tb_at(tb, 1, e);
		if (e <= 10)
			tb_alloc(tb, 1, 100000, 0x10000000 + 0x100000 * e);
		tb_alloc(tb, 2, 2000, 0x100000 + 0x1000 * e);
	}
	tb_end(tb, LT_EXIT_UNDERSCORE, 0);
	char *path = trace_file(tb, LT_CODEC_RAW);
	char args[256];
	struct result r;
	snprintf(args, sizeof args, "growth --all '%s'", path);
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "whole heap: growing "), "%s", r.out);
	cr_assert(strstr(r.out, "(1 call site is growing; the rate is the last third's)"), "%s",
		  r.out);
	snprintf(args, sizeof args, "growth --format=json '%s'", path);
	run(&r, args);
	cr_assert(strstr(r.out, "\"growing_sites\": 1"), "%s", r.out);
	trace_done(tb, path);
}

/* ---- a program rebuilt since it was traced ------------------------------ */

/* The trace names this test program with another build-id, in two module
 * maps (as after a dlopen), and a module whose file is gone. */
static tb_t *rebuilt_trace(void)
{
	struct lt_fx_module self;
	cr_assert_eq(lt_fx_self_module(&self), 0);
	cr_assert_gt(self.build_id_len, 0);
	self.build_id[0] ^= 0xff;
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, self.path, 0, NULL, 0, "", 0, 0);
	uint64_t st[] = {LT_FX_RET(lt_fx_py_call), LT_FX_RET(lt_fx_py_main)};
	tb_module(tb, 1, self.path, self.bias, self.lo, self.hi, self.build_id,
		  self.build_id_len);
	tb_module(tb, 1, "/nonexistent/libgone.so", 0x10000000, 0x10000000, 0x10010000,
		  self.build_id, self.build_id_len);
	tb_stack(tb, 1, 2, st);
	tb_module(tb, 2, self.path, self.bias, self.lo, self.hi, self.build_id,
		  self.build_id_len);
	tb_stack(tb, 2, 2, st);
	tb_at(tb, 1, 1);
	tb_alloc(tb, 1, 64, 0x1000);
	tb_alloc(tb, 2, 32, 0x2000);
	tb_end(tb, LT_EXIT_NORMAL, 0);
	tb_flush(tb, LT_CODEC_RAW);
	return tb;
}

/* Counts the lines of err that contain what. */
static int lines_with(const char *err, const char *what)
{
	int n = 0;
	for (const char *p = err; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

Test(cli, rebuilt_program_is_named_once)
{
	tb_t *tb = rebuilt_trace();
	char *path = write_tb(tb, SIZE_MAX);
	struct lt_fx_module self;
	cr_assert_eq(lt_fx_self_module(&self), 0);
	char want[4400];
	snprintf(want, sizeof want,
		 "leaktrace-report: warning: %s: its build-id differs from the traced one "
		 "(rebuilt since?); its frames are shown as module+offset (--sysroot/--debug-dir "
		 "can give the right file)\n",
		 self.path);
	const char *cmds[] = {"--no-color", "stats", "diff --from end --to end"};
	for (size_t i = 0; i < 3; i++) {
		char args[512];
		snprintf(args, sizeof args, "%s '%s'", cmds[i], path);
		struct result r;
		run(&r, args);
		cr_assert_eq(r.status, 0, "%s: %s", args, r.err);
		cr_assert_eq(lines_with(r.err, "build-id differs"), 1, "%s: %s", args, r.err);
		cr_assert(strstr(r.err, want), "%s: %s", args, r.err);
		/* A file that is gone is not "rebuilt". */
		cr_assert_null(strstr(r.err, "libgone"), "%s", r.err);
		cr_assert(strstr(r.out, "+0x"), "%s: %s", args, r.out);
	}
	trace_done(tb, path);
}

/* ---- options ------------------------------------------------------------ */

/* --top 0 means all, as in stats, diff and growth: every leak, and the
 * other sections are not left empty. */
Test(cli, report_top_0_shows_all)
{
	const uint64_t st[3][1] = {{0x5000}, {0x6000}, {0x7000}};
	tb_t *tb = three_sites_trace(1, st[0]);
	char *path = trace_file(tb, LT_CODEC_RAW);
	char args[256];
	snprintf(args, sizeof args, "--no-color --top 0 '%s'", path);
	struct result r;
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "\n  #3 "), "%s", r.out);
	cr_assert_null(strstr(r.out, "more call sites"), "%s", r.out);
	cr_assert(strstr(r.out, "(300 bytes in 1 block at the peak)"), "%s", r.out);
	cr_assert(strstr(r.out, "\n  #3   1 allocation, 300 B allocated\n"), "%s", r.out);
	snprintf(args, sizeof args, "--no-color --top 1 '%s'", path);
	run(&r, args);
	cr_assert(strstr(r.out, "... 2 more call sites (--top N shows more)"), "%s", r.out);
	snprintf(args, sizeof args, "--no-color --top 2 '%s'", path);
	run(&r, args);
	cr_assert(strstr(r.out, "  ... 1 more call site (--top N shows more)\n"), "%s", r.out);
	trace_done(tb, path);
}

/* "-o -" is standard output, not a file named "-". */
Test(cli, output_dash_is_standard_output)
{
	tb_t *tb = small_trace();
	char *path = write_tb(tb, SIZE_MAX);
	const char *cmds[] = {"snapshot -o -", "snapshot --output=-",
			      "diff --from end --to end --format=json -o -"};
	const char *want[] = {"\"schema\": \"leaktrace-snapshot\"", "\"schema\": \"leaktrace-snapshot\"",
			      "\"schema\": \"leaktrace-diff/1\""};
	for (size_t i = 0; i < 3; i++) {
		char args[512];
		snprintf(args, sizeof args, "%s '%s'", cmds[i], path);
		struct result r;
		run(&r, args);
		cr_assert_eq(r.status, 0, "%s: %s", args, r.err);
		bool file = access("-", F_OK) == 0;
		if (file)
			unlink("-");
		cr_assert_not(file, "%s wrote a file named -", args);
		cr_assert(strstr(r.out, want[i]), "%s: '%s'", args, r.out);
	}
	trace_done(tb, path);
}

/* ---- C++ names ---------------------------------------------------------- */

#define CXX_FULL "std::vector<int, std::allocator<int> >::push_back(int const&)"
#define CXX_SHORT "std::vector<>::push_back(int const&)"

/* A leak in a C++ template member (stack 1), and one whose caller is one
 * (stack 2). */
static char *cxx_trace(void)
{
	struct lt_fx_module self;
	cr_assert_eq(lt_fx_self_module(&self), 0);
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, self.path, 0, NULL, 0, "", 0, 0);
	tb_module(tb, 1, self.path, self.bias, self.lo, self.hi, self.build_id,
		  self.build_id_len);
	uint64_t one[] = {LT_FX_RET(lt_fx_cxx_push_back), LT_FX_RET(lt_fx_py_main)};
	uint64_t two[] = {LT_FX_RET(lt_fx_py_call), LT_FX_RET(lt_fx_cxx_push_back)};
	tb_stack(tb, 1, 2, one);
	tb_stack(tb, 2, 2, two);
	tb_at(tb, 1, 1);
	tb_alloc(tb, 1, 64, 0x1000);
	tb_alloc(tb, 2, 32, 0x2000);
	tb_end(tb, LT_EXIT_NORMAL, 0);
	char *path = trace_file(tb, LT_CODEC_RAW);
	tb_free(tb);
	return path;
}

/* stats, diff and folded show C++ names as the report and growth do:
 * without template arguments, unless --full-names; JSON has them whole. */
Test(cli, cxx_names_are_short_in_every_text_output)
{
	char *path = cxx_trace();
	const char *short_cmds[] = {"--no-color", "--format=folded", "stats", "stats --by traceback",
				    "diff --from end --to end", "diff --from end --to end -f markdown",
				    "diff --from end --to end -f junit", "growth --all"};
	const char *full_cmds[] = {"--format=folded --full-names", "stats --full-names",
				   "stats --by traceback --full-names",
				   "diff --from end --to end --full-names",
				   "diff --from end --to end -f json",
				   "stats -f json", "snapshot", "growth --all --full-names"};
	for (size_t i = 0; i < 8; i++) {
		char args[512];
		struct result r;
		snprintf(args, sizeof args, "%s '%s'", short_cmds[i], path);
		run(&r, args);
		cr_assert_eq(r.status, 0, "%s: %s", args, r.err);
		/* JUnit's XML escapes the brackets. */
		const char *want = strstr(args, "junit") ? "std::vector&lt;&gt;::push_back(int const&amp;)"
							 : CXX_SHORT;
		cr_assert(strstr(r.out, want), "%s: %s", args, r.out);
		cr_assert_null(strstr(r.out, "allocator"), "%s: %s", args, r.out);
		snprintf(args, sizeof args, "%s '%s'", full_cmds[i], path);
		run(&r, args);
		cr_assert_eq(r.status, 0, "%s: %s", args, r.err);
		cr_assert(strstr(r.out, CXX_FULL), "%s: %s", args, r.out);
	}
	/* stats --by traceback: the caller's name too. */
	char args[512];
	struct result r;
	snprintf(args, sizeof args, "stats --by traceback '%s'", path);
	run(&r, args);
	cr_assert(strstr(r.out, "      by " CXX_SHORT), "%s", r.out);
	unlink(path);
	free(path);
}

/* ---- the C++ runtime's own block ---------------------------------------- */

/* libstdc++'s exception-handling pool (72,704 bytes, allocated by its
 * constructor, called by the dynamic loader) and a 100-byte leak. */
static char *eh_pool_trace(void)
{
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	tb_module(tb, 1, "/nonexistent/libstdc++.so.6", 0x7f0000000000, 0x7f0000000000,
		  0x7f0000100000, NULL, 0);
	tb_module(tb, 1, "/nonexistent/ld-linux-x86-64.so.2", 0x7f0001000000, 0x7f0001000000,
		  0x7f0001100000, NULL, 0);
	uint64_t pool[] = {0x7f00000a57ba, 0x7f0001005000, 0x7f0001006000};
	uint64_t leak[] = {0x5000};
	tb_stack(tb, 1, 3, pool);
	tb_stack(tb, 2, 1, leak);
	tb_at(tb, 1, 1);
	tb_alloc(tb, 1, 72704, 0x100000);
	tb_alloc(tb, 2, 100, 0x200000);
	tb_end(tb, LT_EXIT_NORMAL, 0);
	char *path = trace_file(tb, LT_CODEC_RAW);
	tb_free(tb);
	return path;
}

/* stats and folded (leaked) leave the pool out by default, as LEAKS
 * does; stats says so and keeps it in its total. */
Test(cli, eh_pool_is_hidden_from_stats_and_folded)
{
	char *path = eh_pool_trace();
	char args[512];
	struct result r;
	snprintf(args, sizeof args, "stats '%s'", path);
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "\n#1: 0x5000 (?): size=100 B, count=1"), "%s", r.out);
	cr_assert_null(strstr(r.out, "libstdc++.so.6+"), "%s", r.out);
	cr_assert(strstr(r.out, "\nnot listed: 72,704 bytes in 1 block that the C++ runtime "
				"allocates once at start-up and keeps (libstdc++'s "
				"exception-handling pool); the total includes it; --show-hidden "
				"lists it\n"),
		  "%s", r.out);
	cr_assert(strstr(r.out, "Total allocated size: 71.1 KiB (72,804 bytes in 2 blocks)"),
		  "%s", r.out);
	snprintf(args, sizeof args, "stats --by function --cumulative '%s'", path);
	run(&r, args);
	cr_assert_null(strstr(r.out, "ld-linux"), "%s", r.out);
	snprintf(args, sizeof args, "stats --show-hidden '%s'", path);
	run(&r, args);
	cr_assert(strstr(r.out, "#1: libstdc++.so.6+0xa57ba"), "%s", r.out);
	cr_assert_null(strstr(r.out, "not listed"), "%s", r.out);

	snprintf(args, sizeof args, "--format=folded '%s'", path);
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "0x5000 100\n");
	snprintf(args, sizeof args, "--format=folded --show-hidden '%s'", path);
	run(&r, args);
	cr_assert(strstr(r.out, "libstdc++.so.6+0xa57ba 72704\n"), "%s", r.out);
	snprintf(args, sizeof args, "--format=folded --metric=peak '%s'", path);
	run(&r, args);
	cr_assert(strstr(r.out, "libstdc++.so.6+0xa57ba 72704\n"), "%s", r.out);
	unlink(path);
	free(path);
}

/* stats --cumulative counts a block in every frame of its stack: a sum of
 * the groups not shown means nothing, so none is printed. */
Test(cli, stats_cumulative_has_no_other_sum)
{
	const uint64_t st[3][2] = {{0x5000, 0x9000}, {0x6000, 0x9000}, {0x7000, 0x9000}};
	tb_t *tb = three_sites_trace(2, st[0]);
	char *path = trace_file(tb, LT_CODEC_RAW);
	char args[256];
	snprintf(args, sizeof args, "stats --cumulative --top 1 '%s'", path);
	struct result r;
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "#1: 0x9000 (?): size=600 B, count=3"), "%s", r.out);
	cr_assert_null(strstr(r.out, " other: "), "%s", r.out);
	cr_assert(strstr(r.out, "\n... 3 more groups (--top 0 shows all)\n"), "%s", r.out);
	snprintf(args, sizeof args, "stats --top 1 '%s'", path);
	run(&r, args);
	cr_assert(strstr(r.out, "\n2 other: size=300 B, count=2\n"), "%s", r.out);
	trace_done(tb, path);
}

/* ---- numbers ------------------------------------------------------------ */

/* Counts of what is left out have separators and the right plural; a
 * growth per marker interval is a size like every other. */
Test(cli, left_out_counts_and_marker_growth_read_well)
{
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	for (uint64_t s = 0; s < 1011; s++) {
		uint64_t st[] = {0x10000 + 16 * s};
		tb_stack(tb, s + 1, 1, st);
	}
	tb_at(tb, 1, 1);
	tb_marker(tb, "before");
	for (uint64_t s = 0; s < 1011; s++)
		tb_alloc(tb, s + 1, 16, 0x1000000 + 32 * s);
	tb_marker(tb, "after");
	tb_end(tb, LT_EXIT_NORMAL, 0);
	char *path = trace_file(tb, LT_CODEC_ZSTD);
	char args[256];
	struct result r;
	snprintf(args, sizeof args, "diff '%s' --from before --to after", path);
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, " ... 1,001 more groups (--top 0 shows all)\n"), "%s", r.out);
	trace_done(tb, path);

	/* growth: one site grows by 28,416 bytes between markers, a second
	 * one too, and --top 1 leaves that one out. */
	tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	uint64_t one[] = {0x5000}, two[] = {0x6000};
	tb_stack(tb, 1, 1, one);
	tb_stack(tb, 2, 1, two);
	for (uint64_t e = 1; e <= 40; e++) {
		tb_time(tb, e, e * 1000000);
		tb_at(tb, 1, e);
		if (e % 10 == 1)
			tb_marker(tb, "tick");
		tb_alloc(tb, 1, 2841, 0x100000 + 0x10000 * e);
		tb_alloc(tb, 2, 2000, 0x8000000 + 0x10000 * e);
	}
	tb_end(tb, LT_EXIT_NORMAL, 0);
	tb_flush(tb, LT_CODEC_RAW);
	path = write_tb(tb, SIZE_MAX);
	snprintf(args, sizeof args, "growth --top 1 '%s'", path);
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "  [+27.7 KiB per marker interval]\n"), "%s", r.out);
	cr_assert(strstr(r.out, "\n... 1 more call site (stable ones: --all; more: --top 0)\n"),
		  "%s", r.out);
	trace_done(tb, path);
}

/* ---- --by traceback ----------------------------------------------------- */

/* Two stacks that part below their first frame are two groups: diff and
 * stats print each one's callers under its row, so that the rows can be
 * told apart. */
Test(cli, traceback_groups_show_their_callers)
{
	uint64_t one[] = {0x5000, 0x6000, 0x7000}, two[] = {0x5000, 0x6100, 0x7000};
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	tb_stack(tb, 1, 3, one);
	tb_stack(tb, 2, 3, two);
	tb_at(tb, 1, 1);
	tb_marker(tb, "before");
	tb_alloc(tb, 1, 100, 0x100000);
	tb_alloc(tb, 2, 50, 0x200000);
	tb_marker(tb, "after");
	tb_end(tb, LT_EXIT_NORMAL, 0);
	char *path = trace_file(tb, LT_CODEC_RAW);
	char args[256];
	struct result r;
	snprintf(args, sizeof args, "diff '%s' --from before --to after --by traceback", path);
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "+100 B          1          +1  0x5000 (?)\n"
				"                                                  by 0x6000\n"
				"                                                  by 0x7000\n"),
		  "%s", r.out);
	cr_assert(strstr(r.out, "+50 B          1          +1  0x5000 (?)\n"
				"                                                  by 0x6100\n"),
		  "%s", r.out);
	snprintf(args, sizeof args, "stats '%s' --by traceback", path);
	run(&r, args);
	cr_assert(strstr(r.out, "#2: 0x5000 (?): size=50 B, count=1, average=50 B\n"
				"      by 0x6100\n      by 0x7000\n"),
		  "%s", r.out);
	trace_done(tb, path);
}

/* ---- times -------------------------------------------------------------- */

/* A marker in the first moments of the run (epoch 0, before the shim's
 * first TIME record) is at 0.000 s, not at no time at all. */
Test(cli, early_marker_has_a_time)
{
	tb_t *tb = tb_new();
	tb_process(tb, 1, 0, "/bin/x", 0, NULL, 0, "", 0, 0);
	tb_at(tb, 1, 0);
	tb_alloc(tb, 1, 10, 0x1000);
	tb_marker(tb, "early");
	tb_time(tb, 1, 1500000);
	tb_at(tb, 1, 1);
	tb_alloc(tb, 1, 20, 0x2000);
	tb_marker(tb, "late");
	tb_end(tb, LT_EXIT_NORMAL, 0);
	char *path = trace_file(tb, LT_CODEC_RAW);
	char args[256];
	struct result r;
	snprintf(args, sizeof args, "stats '%s' --at early", path);
	run(&r, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "(marker early at 0.000 s)"), "%s", r.out);
	snprintf(args, sizeof args, "diff '%s' --from early --to late", path);
	run(&r, args);
	cr_assert(strstr(r.out, "(marker early at 0.000 s)\n  -> "), "%s", r.out);
	cr_assert(strstr(r.out, "(marker late at 0.002 s)\n"), "%s", r.out);
	trace_done(tb, path);
}
