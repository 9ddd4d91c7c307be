/* SPDX-License-Identifier: MIT */
/* The human report: summary (tracemalloc's current/peak and memcheck's
 * HEAP SUMMARY lines), leaks by call site, peak contributors, hot
 * allocators and temporary allocations, with symbolized stacks. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "format_util.h"
#include "leaktrace/format.h"
#include "report.h"

#define LT__LEAK_FRAMES 12 /* frames shown per leak */
#define LT__OTHER_FRAMES 4 /* frames shown in the other sections */

/* How the report looks: colours (empty strings without), and whether C++
 * names keep their template arguments. */
struct style {
	const char *bold, *red, *yellow, *cyan, *dim, *reset;
	bool full_names;
};

static const struct style plain = {"", "", "", "", "", "", false};
static const struct style ansi = {"\033[1m", "\033[31m", "\033[33m", "\033[36m",
				  "\033[2m", "\033[0m", false};

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static void frame_line(FILE *out, const struct style *st, const char *verb,
		       const lt__frame_t *f)
{
	char buf[512], shortened[512];
	const char *label = lt__frame_label(f, buf, sizeof buf);
	/* Python's names have brackets of their own ("<module>",
	 * "f.<locals>.<listcomp>"): no template arguments to cut. */
	if (!st->full_names && !f->python)
		label = lt__short_name(label, shortened, sizeof shortened);
	fprintf(out, "       %s %s%s%s", verb, st->cyan, label, st->reset);
	if (f->file && f->line)
		fprintf(out, " (%s:%u)", f->file, f->line);
	else if (f->file)
		fprintf(out, " (%s)", f->file);
	else if (f->function && f->module[0])
		fprintf(out, " %s(%s)%s", st->dim, f->module, st->reset);
	if (f->inlined)
		fprintf(out, " %s[inlined]%s", st->dim, st->reset);
	fputc('\n', out);
}

static void stack_lines(FILE *out, const struct style *st, const lt__callsite_t *c,
			size_t max)
{
	if (c->nframes == 0) {
		fprintf(out, "       %s(no stack recorded)%s\n", st->dim, st->reset);
		return;
	}
	for (size_t i = 0; i < c->nframes && i < max; i++)
		frame_line(out, st, i == 0 ? "at" : "by", c->frames[i]);
	if (c->nframes > max)
		fprintf(out, "       %s... %zu more %s%s\n", st->dim, c->nframes - max,
			plural(c->nframes - max, "frame", "frames"), st->reset);
}

static void section(FILE *out, const struct style *st, const char *title, const char *what)
{
	fprintf(out, "\n%s%s%s  %s%s%s\n", st->bold, title, st->reset, st->dim, what, st->reset);
}

static void print_summary(FILE *out, const struct style *st, const lt__report_t *r)
{
	const lt__totals_t *t = lt__replay_totals(r->replay);
	const lt__process_t *p = lt__replay_process(r->replay);
	const lt__end_t *e = lt__replay_end(r->replay);
	char a[64], b[64], c[64];

	fprintf(out, "%sleaktrace report%s for %s\n", st->bold, st->reset, r->trace_path);
	if (p->known) {
		fprintf(out, "process   %" PRIu64 " (parent %" PRIu64 "): %s", p->pid, p->ppid,
			p->exe);
		for (uint64_t i = 1; i < p->argc; i++)
			fprintf(out, " %s", p->argv[i]);
		fputc('\n', out);
		if (p->flags & LT_PROC_FORK_CHILD)
			fprintf(out, "          forked child%s\n",
				p->inherited ? ", includes what it inherited from its parent"
					     : ", without its parent's part (parent trace not read)");
	}
	double secs = (double)lt__replay_duration_ns(r->replay) / 1e9;
	uint64_t threads = lt__replay_threads(r->replay);
	if (threads)
		fprintf(out, "duration  %.3f s, %" PRIu64 " %s, ", secs, threads,
			plural(threads, "thread", "threads"));
	else /* no thread recorded an allocation event */
		fprintf(out, "duration  %.3f s, no allocation events, ", secs);
	if (r->truncated)
		fprintf(out, "%strace is incomplete: ends at byte %" PRIu64 "%s\n", st->yellow,
			r->truncated_at, st->reset);
	else if (e->seen && e->exit_kind == LT_EXIT_SIGNAL)
		fprintf(out, "%skilled by %s (status %" PRIu64 ")%s\n", st->yellow,
			lt__signal_name(e->exit_status), e->exit_status, st->reset);
	else if (e->seen)
		fprintf(out, "ended by %s (status %" PRIu64 ")\n", lt__exit_kind_name(e->exit_kind),
			e->exit_status);
	else
		fprintf(out, "%sno end record (the program did not exit normally)%s\n", st->yellow,
			st->reset);

	section(out, st, "SUMMARY", "tracemalloc's current/peak and memcheck's heap summary");
	fprintf(out, "  current       %10s  (%s bytes in %s %s)\n",
		lt__human_size(t->current_bytes, a, sizeof a),
		lt__thousands(t->current_bytes, b, sizeof b),
		lt__thousands(t->current_blocks, c, sizeof c),
		plural(t->current_blocks, "block", "blocks"));
	fprintf(out, "  peak          %10s  (%s bytes in %s %s)",
		lt__human_size(t->peak_bytes, a, sizeof a),
		lt__thousands(t->peak_bytes, b, sizeof b),
		lt__thousands(t->peak_blocks, c, sizeof c),
		plural(t->peak_blocks, "block", "blocks"));
	uint64_t ns;
	if (t->peak_bytes && lt__replay_peak_ns(r->replay, &ns))
		fprintf(out, " at %.3f s", (double)ns / 1e9);
	fputc('\n', out);
	fprintf(out, "  in use at exit: %s bytes in %s %s\n",
		lt__thousands(t->current_bytes, a, sizeof a),
		lt__thousands(t->current_blocks, b, sizeof b),
		plural(t->current_blocks, "block", "blocks"));
	fprintf(out, "  total heap usage: %s allocs, %s frees, ",
		lt__thousands(t->allocations, a, sizeof a), lt__thousands(t->frees, b, sizeof b));
	fprintf(out, "%s bytes allocated\n", lt__thousands(t->bytes_allocated, c, sizeof c));
	if (t->allocations)
		fprintf(out, "  temporary allocations: %s (%.1f%%)\n",
			lt__thousands(t->temporary, a, sizeof a),
			100.0 * (double)t->temporary / (double)t->allocations);
	if (t->unmatched_frees)
		fprintf(out, "  %snote:%s %s frees of blocks the trace never allocated\n",
			st->yellow, st->reset, lt__thousands(t->unmatched_frees, a, sizeof a));
	if (t->overlapping_allocs)
		fprintf(out, "  %snote:%s %s allocations at an address still live in the "
			     "replay (reordered)\n",
			st->yellow, st->reset, lt__thousands(t->overlapping_allocs, a, sizeof a));
	if (e->seen && e->lost_events)
		fprintf(out, "  %swarning:%s %s events were lost: the shim could not get memory to "
			     "record them (an address-space limit?); totals are short\n",
			st->yellow, st->reset, lt__thousands(e->lost_events, a, sizeof a));
	if (e->seen && e->stack_overflows)
		fprintf(out, "  %snote:%s %" PRIu64 " stacks were cut at the depth limit\n",
			st->yellow, st->reset, e->stack_overflows);
}

static void print_leaks(FILE *out, const struct style *st, const lt__report_t *r)
{
	lt__callsites_t *cs = r->sites;
	lt__callsites_sort(cs, LT__BY_LEAKED);
	size_t nleaks = 0;
	uint64_t bytes = 0, blocks = 0, rt_bytes = 0, rt_blocks = 0;
	for (size_t i = 0; i < cs->n; i++) {
		if (!cs->v[i]->live_blocks)
			continue;
		if (cs->v[i]->runtime && !r->show_hidden) {
			/* Not the program's: listed apart (below). */
			rt_bytes += cs->v[i]->live_bytes;
			rt_blocks += cs->v[i]->live_blocks;
			continue;
		}
		nleaks++;
		bytes += cs->v[i]->live_bytes;
		blocks += cs->v[i]->live_blocks;
	}
	char a[64], b[64], c[64];
	char what[160];
	snprintf(what, sizeof what, "blocks still live at the end: %s in %s %s from %zu call %s",
		 lt__human_size(bytes, a, sizeof a), lt__thousands(blocks, b, sizeof b),
		 plural(blocks, "block", "blocks"), nleaks, plural(nleaks, "site", "sites"));
	section(out, st, "LEAKS", what);
	if (nleaks == 0)
		fprintf(out, "  no leaks: %s\n",
			rt_blocks ? "every block of the program's own was freed" : "every block was freed");
	for (size_t i = 0, shown = 0; i < cs->n && (!r->top || shown < r->top); i++) {
		const lt__callsite_t *s = cs->v[i];
		if (!s->live_blocks || (s->runtime && !r->show_hidden))
			continue;
		shown++;
		fprintf(out, "  %s#%-3zu%s %s%10s%s  (%s bytes in %s %s, %s %s here)\n", st->bold,
			shown, st->reset, st->red, lt__human_size(s->live_bytes, a, sizeof a),
			st->reset, lt__thousands(s->live_bytes, b, sizeof b),
			lt__thousands(s->live_blocks, c, sizeof c),
			plural(s->live_blocks, "block", "blocks"),
			lt__thousands(s->allocations, what, sizeof what),
			plural(s->allocations, "allocation", "allocations"));
		stack_lines(out, st, s, LT__LEAK_FRAMES);
	}
	if (r->top && nleaks > r->top)
		fprintf(out, "  %s... %s more call %s (--top N shows more)%s\n", st->dim,
			lt__thousands(nleaks - r->top, a, sizeof a),
			plural(nleaks - r->top, "site", "sites"), st->reset);
	if (rt_blocks)
		fprintf(out, "  %snot listed: %s bytes in %s %s that the C++ runtime allocates once "
			     "at start-up and keeps (libstdc++'s exception-handling pool; valgrind "
			     "frees it at exit); --show-hidden lists %s%s\n",
			st->dim, lt__thousands(rt_bytes, a, sizeof a),
			lt__thousands(rt_blocks, b, sizeof b), plural(rt_blocks, "block", "blocks"),
			plural(rt_blocks, "it", "them"), st->reset);
}

static void print_ranked(FILE *out, const struct style *st, const lt__report_t *r,
			 enum lt__metric metric, const char *title, const char *what)
{
	lt__callsites_t *cs = r->sites;
	lt__callsites_sort(cs, metric);
	section(out, st, title, what);
	char a[64], b[64], c[64];
	size_t shown = 0;
	for (size_t i = 0; i < cs->n && (!r->top || shown < r->top); i++) {
		const lt__callsite_t *s = cs->v[i];
		if (!lt__callsite_metric(s, metric))
			break;
		shown++;
		switch (metric) {
		case LT__BY_PEAK:
			fprintf(out, "  %s#%-3zu%s %10s  (%s bytes in %s %s at the peak)\n",
				st->bold, shown, st->reset,
				lt__human_size(s->peak_bytes, a, sizeof a),
				lt__thousands(s->peak_bytes, b, sizeof b),
				lt__thousands(s->peak_blocks, c, sizeof c),
				plural(s->peak_blocks, "block", "blocks"));
			break;
		case LT__BY_COUNT:
			fprintf(out, "  %s#%-3zu%s %s %s, %s allocated\n", st->bold, shown,
				st->reset, lt__thousands(s->allocations, a, sizeof a),
				plural(s->allocations, "allocation", "allocations"),
				lt__human_size(s->bytes_allocated, b, sizeof b));
			break;
		default:
			fprintf(out, "  %s#%-3zu%s %s temporary of %s %s (%.1f%%)\n", st->bold,
				shown, st->reset, lt__thousands(s->temporary, a, sizeof a),
				lt__thousands(s->allocations, b, sizeof b),
				plural(s->allocations, "allocation", "allocations"),
				100.0 * (double)s->temporary / (double)s->allocations);
			break;
		}
		stack_lines(out, st, s, LT__OTHER_FRAMES);
	}
	if (shown == 0)
		fprintf(out, "  none\n");
}

static void print_children(FILE *out, const struct style *st, const lt__report_t *r)
{
	const lt__child_t *kids;
	size_t nkids;
	lt__replay_children(r->replay, &kids, &nkids);
	if (!nkids && !r->nchildren)
		return;
	section(out, st, "CHILDREN", "processes this one forked or exec'd; each has its own trace");
	for (size_t i = 0; i < nkids; i++) {
		if (kids[i].exec_path)
			fprintf(out, "  exec %s\n", kids[i].exec_path);
		else
			fprintf(out, "  fork pid %" PRIu64 "\n", kids[i].pid);
	}
	for (size_t i = 0; i < r->nchildren; i++)
		fprintf(out, "  trace %s (pid %" PRIu64 ", %s%s)\n", r->children[i].path,
			r->children[i].pid, r->children[i].exec ? "exec'd " : "",
			r->children[i].exe);
}

int lt__report_text(FILE *out, const lt__report_t *r)
{
	struct style look = r->color ? ansi : plain;
	look.full_names = r->full_names;
	const struct style *st = &look;
	print_summary(out, st, r);
	print_leaks(out, st, r);
	print_ranked(out, st, r, LT__BY_PEAK, "PEAK", "live memory at the peak, by call site");
	print_ranked(out, st, r, LT__BY_COUNT, "HOT ALLOCATORS", "call sites by number of allocations");
	print_ranked(out, st, r, LT__BY_TEMPORARY, "TEMPORARY ALLOCATIONS",
		     "freed by the allocating thread before its next allocation");
	print_children(out, st, r);
	return ferror(out) ? -EIO : 0;
}
