/* SPDX-License-Identifier: MIT */
/* Grouping of snapshot traces by line, file, function or whole stack, as
 * tracemalloc's Snapshot.statistics() and compare_to() do. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "callsites.h"
#include "format_util.h"
#include "snapshot.h"

int lt__group_by_parse(const char *s, enum lt__group_by *by)
{
	static const char *const names[] = {"lineno", "filename", "function", "traceback"};
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*by = (enum lt__group_by)i;
			return 0;
		}
	return -EINVAL;
}

const char *lt__group_by_name(enum lt__group_by by)
{
	static const char *const names[] = {"lineno", "filename", "function", "traceback"};
	return names[by];
}

/* The group key of frame f alone, for the by-frame groupings. */
static int frame_group_key(enum lt__group_by by, const lt__snap_frame_t *f, char **key)
{
	lt__snap_frame_t k = {.module = f->module, .function = "", .file = NULL, .line = 0};
	switch (by) {
	case LT__BY_FILENAME:
		/* Without a source file, the module stands for it. */
		if (f->file)
			k = (lt__snap_frame_t){.module = "", .function = "", .file = f->file};
		break;
	case LT__BY_FUNCTION:
		k.function = f->function;
		break;
	default:
		k = *f;
		break;
	}
	return lt__snap_frames_key(&k, 1, key);
}

static int add_to(lt__groups_t *g, char *key, const lt__snap_frame_t *frames, size_t n,
                  uint64_t size, uint64_t count, bool old)
{
	lt__group_t *gr;
	HASH_FIND_STR(g->by_key, key, gr);
	if (gr) {
		free(key);
	} else {
		if (g->n == g->cap) {
			size_t ncap = g->cap ? g->cap * 2 : 64;
			lt__group_t **v = realloc(g->v, ncap * sizeof *v);
			if (!v) {
				free(key);
				return -ENOMEM;
			}
			g->v = v;
			g->cap = ncap;
		}
		gr = calloc(1, sizeof *gr);
		if (!gr) {
			free(key);
			return -ENOMEM;
		}
		gr->key = key;
		gr->frames = frames;
		gr->nframes = n;
		HASH_ADD_KEYPTR(hh, g->by_key, gr->key, strlen(gr->key), gr);
		g->v[g->n++] = gr;
	}
	if (old) {
		gr->old_size += size;
		gr->old_count += count;
	} else {
		gr->size += size;
		gr->count += count;
	}
	return 0;
}

bool lt__snap_runtime_init(const lt__snap_trace_t *t)
{
	size_t i = 0;
	while (i < t->nframes && lt__module_is_libstdcxx(t->frames[i].module))
		i++;
	return i > 0 && i < t->nframes && lt__module_is_loader(t->frames[i].module);
}

int lt__groups_add(lt__groups_t *g, const lt__snapshot_t *s, const lt__filters_t *f, bool old)
{
	for (size_t i = 0; i < s->ntraces; i++) {
		const lt__snap_trace_t *t = &s->traces[i];
		if (!lt__filters_keep(f, t))
			continue;
		if (old) {
			g->old_size += t->size;
			g->old_count += t->count;
		} else {
			g->size += t->size;
			g->count += t->count;
		}
		if (g->hide_runtime && lt__snap_runtime_init(t)) {
			/* Counted in the totals, as memcheck's summary does, but
			 * no group: it is not the program's. */
			g->runtime_size += t->size;
			g->runtime_count += t->count;
			continue;
		}
		char *key;
		if (g->by == LT__BY_TRACEBACK || t->nframes == 0) {
			size_t n = g->by == LT__BY_TRACEBACK ? t->nframes : 0;
			if (lt__snap_frames_key(t->frames, n, &key) ||
			    add_to(g, key, t->frames, n, t->size, t->count, old))
				return -ENOMEM;
			continue;
		}
		/* Cumulative: each distinct group along the stack counts the
		 * trace once; otherwise only the first visible frame does. */
		size_t depth = g->cumulative ? t->nframes : 1;
		for (size_t k = 0; k < depth; k++) {
			if (frame_group_key(g->by, &t->frames[k], &key))
				return -ENOMEM;
			bool seen = false;
			for (size_t j = 0; j < k && !seen; j++) {
				char *other;
				if (frame_group_key(g->by, &t->frames[j], &other)) {
					free(key);
					return -ENOMEM;
				}
				seen = strcmp(key, other) == 0;
				free(other);
			}
			if (seen) {
				free(key);
				continue;
			}
			if (add_to(g, key, &t->frames[k], 1, t->size, t->count, old))
				return -ENOMEM;
		}
	}
	return 0;
}

static bool sort_by_diff;

static uint64_t abs_diff(const lt__group_t *g)
{
	return g->size > g->old_size ? g->size - g->old_size : g->old_size - g->size;
}

static int cmp_group(const void *a, const void *b)
{
	const lt__group_t *x = *(const lt__group_t *const *)a;
	const lt__group_t *y = *(const lt__group_t *const *)b;
	if (sort_by_diff && abs_diff(x) != abs_diff(y))
		return abs_diff(x) > abs_diff(y) ? -1 : 1;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->key, y->key);
}

void lt__groups_sort(lt__groups_t *g, bool by_diff)
{
	/* qsort has no context argument in C11; one thread sorts. */
	sort_by_diff = by_diff;
	if (g->n)
		qsort(g->v, g->n, sizeof *g->v, cmp_group);
}

const char *lt__snap_function(const lt__snap_frame_t *f, bool full_names, char *buf,
                              size_t len)
{
	/* Python's names have brackets of their own ("<module>",
	 * "f.<locals>.<listcomp>"): no template arguments to cut. */
	if (full_names || strcmp(f->module, LT__PY_MODULE) == 0)
		return f->function;
	return lt__short_name(f->function, buf, len);
}

const char *lt__group_label(const lt__groups_t *g, const lt__group_t *gr, bool full_names,
                            char *buf, size_t len)
{
	if (gr->nframes == 0)
		return "(no stack recorded)";
	const lt__snap_frame_t *f = &gr->frames[0];
	char shortened[1024];
	const char *fn = lt__snap_function(f, full_names, shortened, sizeof shortened);
	switch (g->by) {
	case LT__BY_FILENAME:
		snprintf(buf, len, "%s", f->file ? f->file : f->module);
		break;
	case LT__BY_FUNCTION:
		snprintf(buf, len, "%s (%s)", fn, f->module[0] ? f->module : "?");
		break;
	default:
		if (f->file && f->line)
			snprintf(buf, len, "%s (%s:%u)", fn, f->file, f->line);
		else if (f->file)
			snprintf(buf, len, "%s (%s)", fn, f->file);
		else
			snprintf(buf, len, "%s (%s)", fn, f->module[0] ? f->module : "?");
		break;
	}
	return buf;
}

void lt__group_traceback_text(FILE *out, const lt__group_t *gr, bool full_names, int indent)
{
	char shortened[1024];
	for (size_t k = 1; k < gr->nframes && k < LT__TRACEBACK_FRAMES; k++) {
		const lt__snap_frame_t *f = &gr->frames[k];
		fprintf(out, "%*sby %s", indent, "",
		        lt__snap_function(f, full_names, shortened, sizeof shortened));
		if (f->file && f->line)
			fprintf(out, " (%s:%u)", f->file, f->line);
		else if (f->module[0])
			fprintf(out, " (%s)", f->module);
		fputc('\n', out);
	}
	if (gr->nframes > LT__TRACEBACK_FRAMES)
		fprintf(out, "%*s... %zu more %s\n", indent, "", gr->nframes - LT__TRACEBACK_FRAMES,
		        gr->nframes - LT__TRACEBACK_FRAMES == 1 ? "frame" : "frames");
}

void lt__groups_free(lt__groups_t *g)
{
	HASH_CLEAR(hh, g->by_key);
	for (size_t i = 0; i < g->n; i++) {
		free(g->v[i]->key);
		free(g->v[i]);
	}
	free(g->v);
	g->v = NULL;
	g->n = g->cap = 0;
}
