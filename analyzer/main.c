/* SPDX-License-Identifier: MIT */
/* leaktrace-report: option parsing and wiring of the analyzer's stages. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "dump.h"

static void usage(FILE *out)
{
	fputs("usage: leaktrace-report [report] [options] TRACE\n"
	      "       leaktrace-report --dump TRACE\n", out);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dump", no_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int dump = 0, c;
	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'D':
			dump = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			puts("leaktrace-report " LT_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || !dump) {
		usage(stderr);
		return 2;
	}
	lt__decode_opts_t opts = {.emit_blocks = true, .follow_parent = true};
	lt__decoder_t *d;
	int rc = lt__decoder_open(&d, argv[optind], &opts);
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
	if (lt__decoder_truncated(d, &at))
		fprintf(stderr, "leaktrace-report: trace is incomplete: ends at byte %llu "
				"(the program was probably killed)\n",
			(unsigned long long)at);
	lt__decoder_close(d);
	return 0;
}
