/* SPDX-License-Identifier: MIT */
/* The JSON report: DESIGN.md's contract (summary, leaks sorted by bytes
 * with frames innermost first) plus process, peak, hot, temporary and
 * children sections, under a versioned schema name. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format_util.h"
#include "leaktrace/format.h"
#include "report.h"

#define LT__JSON_SCHEMA "leaktrace-report/1"

/* jansson integers are signed 64-bit; sizes past 2^63 only come from
 * hostile input and are clamped. */
static json_t *jint(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* json_string rejects invalid UTF-8, and paths and names from a trace may
 * be any bytes: those that are not valid UTF-8 become '?'. */
static json_t *jstrn(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	if (j)
		return j;
	char *copy = malloc(len + 1);
	if (!copy)
		return json_null();
	for (size_t i = 0; i < len; i++)
		copy[i] = (s[i] & 0x80) || s[i] == 0 ? '?' : s[i];
	j = json_stringn(copy, len);
	free(copy);
	return j ? j : json_null();
}

static json_t *jstr(const char *s)
{
	return s ? jstrn(s, strlen(s)) : json_null();
}

json_t *lt__frames_json(const lt__frame_t *const *frames, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const lt__frame_t *f = frames[i];
		char label[512], addr[32];
		snprintf(addr, sizeof addr, "0x%" PRIx64, f->address);
		json_t *o = json_object();
		json_object_set_new(o, "function", jstr(lt__frame_label(f, label, sizeof label)));
		json_object_set_new(o, "file", jstr(f->file));
		json_object_set_new(o, "line", f->line ? jint(f->line) : json_null());
		json_object_set_new(o, "module", jstr(f->module));
		json_object_set_new(o, "address", json_string(addr));
		json_object_set_new(o, "offset", jint(f->offset));
		json_object_set_new(o, "inlined", json_boolean(f->inlined));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *frames_json(const lt__callsite_t *c)
{
	return lt__frames_json(c->frames, c->nframes);
}

static json_t *summary_json(const lt__report_t *r)
{
	const lt__totals_t *t = lt__replay_totals(r->replay);
	const lt__end_t *e = lt__replay_end(r->replay);
	json_t *s = json_object();
	json_object_set_new(s, "allocations", jint(t->allocations));
	json_object_set_new(s, "frees", jint(t->frees));
	json_object_set_new(s, "bytes_allocated", jint(t->bytes_allocated));
	json_object_set_new(s, "peak_bytes", jint(t->peak_bytes));
	json_object_set_new(s, "current_bytes", jint(t->current_bytes));
	json_object_set_new(s, "leaked_blocks", jint(t->current_blocks));
	json_object_set_new(s, "leaked_bytes", jint(t->current_bytes));
	json_object_set_new(s, "peak_blocks", jint(t->peak_blocks));
	uint64_t ns;
	json_object_set_new(s, "peak_time_s",
			    t->peak_bytes && lt__replay_peak_ns(r->replay, &ns)
				    ? json_real((double)ns / 1e9)
				    : json_null());
	json_object_set_new(s, "duration_s",
			    json_real((double)lt__replay_duration_ns(r->replay) / 1e9));
	json_object_set_new(s, "threads", jint(lt__replay_threads(r->replay)));
	json_object_set_new(s, "temporary_allocations", jint(t->temporary));
	json_object_set_new(s, "clean_end", json_boolean(e->seen && e->exit_kind != LT_EXIT_SIGNAL &&
							 !r->truncated));
	json_object_set_new(s, "exit_kind", e->seen ? jstr(lt__exit_kind_name(e->exit_kind))
						    : json_null());
	json_object_set_new(s, "exit_status", e->seen ? jint(e->exit_status) : json_null());
	json_object_set_new(s, "truncated", json_boolean(r->truncated));
	json_object_set_new(s, "truncated_at", r->truncated ? jint(r->truncated_at) : json_null());
	json_object_set_new(s, "unmatched_frees", jint(t->unmatched_frees));
	json_object_set_new(s, "overlapping_allocs", jint(t->overlapping_allocs));
	json_object_set_new(s, "markers", jint(t->markers));
	json_object_set_new(s, "stack_overflows", jint(e->seen ? e->stack_overflows : 0));
	json_object_set_new(s, "lost_events", jint(e->seen ? e->lost_events : 0));
	return s;
}

static json_t *process_json(const lt__report_t *r)
{
	const lt__process_t *p = lt__replay_process(r->replay);
	if (!p->known)
		return json_null();
	json_t *o = json_object();
	json_object_set_new(o, "pid", jint(p->pid));
	json_object_set_new(o, "ppid", jint(p->ppid));
	json_object_set_new(o, "exe", jstr(p->exe));
	json_t *argv = json_array();
	for (uint64_t i = 0; i < p->argc; i++)
		json_array_append_new(argv, jstr(p->argv[i]));
	json_object_set_new(o, "argv", argv);
	json_object_set_new(o, "fork_child", json_boolean(p->flags & LT_PROC_FORK_CHILD));
	json_object_set_new(o, "inherited_from_parent", json_boolean(p->inherited));
	json_object_set_new(o, "parent_trace", p->parent_trace[0] ? jstr(p->parent_trace) : json_null());
	return o;
}

/* The call sites with a non-zero metric, largest first; limit 0 = all. */
static json_t *ranked_json(const lt__report_t *r, enum lt__metric metric, size_t limit)
{
	lt__callsites_sort(r->sites, metric);
	json_t *arr = json_array();
	for (size_t i = 0; i < r->sites->n && (!limit || i < limit); i++) {
		const lt__callsite_t *c = r->sites->v[i];
		if (!lt__callsite_metric(c, metric))
			break;
		json_t *o = json_object();
		switch (metric) {
		case LT__BY_LEAKED:
			json_object_set_new(o, "bytes", jint(c->live_bytes));
			json_object_set_new(o, "blocks", jint(c->live_blocks));
			/* The C++ runtime's own start-up block: live, but not a
			 * leak of the program's (the text report lists it apart). */
			json_object_set_new(o, "runtime", json_boolean(c->runtime));
			break;
		case LT__BY_PEAK:
			json_object_set_new(o, "bytes", jint(c->peak_bytes));
			json_object_set_new(o, "blocks", jint(c->peak_blocks));
			break;
		case LT__BY_TEMPORARY:
			json_object_set_new(o, "temporary", jint(c->temporary));
			break;
		default:
			break;
		}
		json_object_set_new(o, "allocations", jint(c->allocations));
		json_object_set_new(o, "bytes_allocated", jint(c->bytes_allocated));
		json_object_set_new(o, "frames", frames_json(c));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *children_json(const lt__report_t *r)
{
	json_t *arr = json_array();
	const lt__child_t *kids;
	size_t nkids;
	lt__replay_children(r->replay, &kids, &nkids);
	for (size_t i = 0; i < nkids; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "kind", json_string(kids[i].exec_path ? "exec" : "fork"));
		json_object_set_new(o, "pid", kids[i].exec_path ? json_null() : jint(kids[i].pid));
		json_object_set_new(o, "exec_path", jstr(kids[i].exec_path));
		const char *trace = NULL;
		for (size_t j = 0; j < r->nchildren; j++)
			if ((kids[i].exec_path && r->children[j].exec) ||
			    (!kids[i].exec_path && r->children[j].pid == kids[i].pid))
				trace = r->children[j].path;
		json_object_set_new(o, "trace", jstr(trace));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *warnings_json(const char *w)
{
	json_t *arr = json_array();
	while (w && *w) {
		const char *nl = strchr(w, '\n');
		size_t len = nl ? (size_t)(nl - w) : strlen(w);
		json_array_append_new(arr, jstrn(w, len));
		w += len + (nl != NULL);
	}
	return arr;
}

int lt__report_json(FILE *out, const lt__report_t *r)
{
	json_t *doc = json_object();
	if (!doc)
		return -ENOMEM;
	json_object_set_new(doc, "schema", json_string(LT__JSON_SCHEMA));
	json_object_set_new(doc, "format_version", jint(1));
	json_object_set_new(doc, "trace", jstr(r->trace_path));
	json_object_set_new(doc, "process", process_json(r));
	json_object_set_new(doc, "summary", summary_json(r));
	json_object_set_new(doc, "leaks", ranked_json(r, LT__BY_LEAKED, 0));
	json_object_set_new(doc, "peak", ranked_json(r, LT__BY_PEAK, r->top));
	json_object_set_new(doc, "hot", ranked_json(r, LT__BY_COUNT, r->top));
	json_object_set_new(doc, "temporary", ranked_json(r, LT__BY_TEMPORARY, r->top));
	json_object_set_new(doc, "children", children_json(r));
	json_object_set_new(doc, "warnings", warnings_json(r->warnings));
	int rc = json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(doc);
	return rc == 0 && !ferror(out) ? 0 : -EIO;
}
