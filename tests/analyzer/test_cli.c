/* SPDX-License-Identifier: MIT */
/* leaktrace-report as a program: exit status 0 for complete and truncated
 * traces (with the warning line), 2 with one clear line for corrupt,
 * foreign and unknown-version files and for bad usage; --version. The
 * binary's path comes from LT_REPORT (set by meson). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "leaktrace/format.h"
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
	unlink(path);
	free(path);
	tb_free(tb);
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
	unlink(path);
	free(path);
	tb_free(tb);
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
	unlink(path);
	free(path);
	tb_free(tb);
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
