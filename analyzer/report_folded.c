/* SPDX-License-Identifier: MIT */
/* Folded stacks for flamegraph.pl and speedscope: one line per call site,
 * frames outermost first separated by ';', then a space and the weight
 * (leaked bytes, bytes at the peak, bytes allocated or allocations). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "format_util.h"
#include "report.h"

/* Writes a frame label with the folded format's separators replaced; a
 * C++ name without its template arguments unless full_names, as the text
 * report shows it (full ones make frames of a thousand characters). */
static void put_label(FILE *out, const lt__frame_t *f, bool full_names)
{
	char buf[512], shortened[512];
	const char *label = lt__frame_label(f, buf, sizeof buf);
	/* Python's names have brackets of their own ("<module>"). */
	if (!full_names && !f->python)
		label = lt__short_name(label, shortened, sizeof shortened);
	for (const char *p = label; *p; p++)
		fputc(*p == ';' ? ':' : (*p == '\n' ? ' ' : *p), out);
}

int lt__report_folded(FILE *out, const lt__report_t *r)
{
	lt__callsites_sort(r->sites, r->metric);
	for (size_t i = 0; i < r->sites->n; i++) {
		const lt__callsite_t *c = r->sites->v[i];
		uint64_t w = lt__callsite_metric(c, r->metric);
		if (!w)
			break;
		/* Left out of the leaks as the text report's LEAKS does (it
		 * would be the widest frame of many a C++ flame graph); the
		 * other metrics keep it, as the report's other sections do. */
		if (r->metric == LT__BY_LEAKED && c->runtime && !r->show_hidden)
			continue;
		if (c->nframes == 0)
			fputs("[no stack]", out);
		for (size_t j = c->nframes; j-- > 0;) {
			put_label(out, c->frames[j], r->full_names);
			if (j)
				fputc(';', out);
		}
		fprintf(out, " %" PRIu64 "\n", w);
	}
	return ferror(out) ? -EIO : 0;
}
