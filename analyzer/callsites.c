/* SPDX-License-Identifier: MIT */
/* Call sites: per-stack aggregates merged by visible symbolized stack. */
#include "callsites.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The identity of a visible frame in a call site key: the interned
 * strings' addresses identify them; offset only matters without a name. */
struct lt__key_frame {
	const char *function, *file, *module;
	uint64_t line;
	uint64_t offset;
};

static int make_key(const lt__frame_t **frames, size_t n, char **key, size_t *len)
{
	*len = n * sizeof(struct lt__key_frame);
	*key = malloc(*len ? *len : 1);
	if (!*key)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct lt__key_frame k;
		memset(&k, 0, sizeof k);
		k.function = frames[i]->function;
		k.file = frames[i]->file;
		k.module = frames[i]->module;
		k.line = frames[i]->line;
		k.offset = frames[i]->function ? 0 : frames[i]->offset;
		memcpy(*key + i * sizeof k, &k, sizeof k);
	}
	return 0;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool lt__module_is_libstdcxx(const char *module)
{
	return module && starts_with(base_name(module), "libstdc++.so");
}

/* The dynamic loader: glibc's ld-linux*.so / ld.so, musl's ld-musl-*. */
bool lt__module_is_loader(const char *module)
{
	if (!module)
		return false;
	const char *b = base_name(module);
	return starts_with(b, "ld-linux") || starts_with(b, "ld.so") || starts_with(b, "ld64.so") ||
	       starts_with(b, "ld-musl");
}

bool lt__frames_runtime_init(const lt__frame_t *const *frames, size_t n)
{
	size_t i = 0;
	while (i < n && lt__module_is_libstdcxx(frames[i]->module))
		i++;
	return i > 0 && i < n && lt__module_is_loader(frames[i]->module);
}

int lt__callsites_build(lt__callsites_t *cs, const lt__agg_t *agg, lt__sym_t *sym)
{
	memset(cs, 0, sizeof *cs);
	cs->v = malloc((agg->nsites ? agg->nsites : 1) * sizeof *cs->v);
	if (!cs->v)
		return -ENOMEM;
	for (uint32_t i = 0; i < agg->nsites; i++) {
		const lt__site_t *s = agg->sites[i];
		if (!s->allocations)
			continue;
		const lt__frame_t **frames;
		size_t n;
		int rc = lt__sym_stack(sym, s->modmap, s->frames, s->depth, s->pyframes,
				       s->npyframes, &frames, &n);
		if (rc)
			return rc;
		char *key;
		size_t key_len;
		if (make_key(frames, n, &key, &key_len)) {
			free(frames);
			return -ENOMEM;
		}
		lt__callsite_t *c;
		HASH_FIND(hh, cs->by_key, key, key_len, c);
		if (c) {
			free(key);
			free(frames);
		} else {
			c = calloc(1, sizeof *c);
			if (!c) {
				free(key);
				free(frames);
				return -ENOMEM;
			}
			c->frames = frames;
			c->nframes = n;
			c->runtime = lt__frames_runtime_init(frames, n);
			c->key = key;
			c->key_len = key_len;
			HASH_ADD_KEYPTR(hh, cs->by_key, c->key, c->key_len, c);
			cs->v[cs->n++] = c;
		}
		uint64_t pb, pn;
		lt__agg_at_peak(agg, s, &pb, &pn);
		c->allocations += s->allocations;
		c->bytes_allocated += s->bytes_allocated;
		c->frees += s->frees;
		c->temporary += s->temporary;
		c->live_blocks += s->live_blocks;
		c->live_bytes += s->live_bytes;
		c->peak_bytes += pb;
		c->peak_blocks += pn;
		c->stacks++;
	}
	return 0;
}

uint64_t lt__callsite_metric(const lt__callsite_t *c, enum lt__metric metric)
{
	switch (metric) {
	case LT__BY_LEAKED:
		return c->live_bytes;
	case LT__BY_PEAK:
		return c->peak_bytes;
	case LT__BY_ALLOCATED:
		return c->bytes_allocated;
	case LT__BY_COUNT:
		return c->allocations;
	case LT__BY_TEMPORARY:
		return c->temporary;
	}
	return 0;
}

static enum lt__metric sort_metric;

static int cmp(const void *a, const void *b)
{
	const lt__callsite_t *x = *(const lt__callsite_t *const *)a;
	const lt__callsite_t *y = *(const lt__callsite_t *const *)b;
	uint64_t mx = lt__callsite_metric(x, sort_metric);
	uint64_t my = lt__callsite_metric(y, sort_metric);
	if (mx != my)
		return mx > my ? -1 : 1;
	/* Ties: more blocks/allocations first, then a stable content order. */
	if (x->live_blocks != y->live_blocks)
		return x->live_blocks > y->live_blocks ? -1 : 1;
	if (x->allocations != y->allocations)
		return x->allocations > y->allocations ? -1 : 1;
	size_t n = x->nframes < y->nframes ? x->nframes : y->nframes;
	for (size_t i = 0; i < n; i++) {
		const lt__frame_t *f = x->frames[i], *g = y->frames[i];
		int c = strcmp(f->function ? f->function : "", g->function ? g->function : "");
		if (c)
			return c;
		if (f->line != g->line)
			return f->line < g->line ? -1 : 1;
		if (f->address != g->address)
			return f->address < g->address ? -1 : 1;
	}
	return x->nframes < y->nframes ? -1 : x->nframes > y->nframes;
}

void lt__callsites_sort(lt__callsites_t *cs, enum lt__metric metric)
{
	/* qsort has no context argument in C11; the analyzer sorts from one
	 * thread only. */
	sort_metric = metric;
	qsort(cs->v, cs->n, sizeof *cs->v, cmp);
}

void lt__callsites_free(lt__callsites_t *cs)
{
	HASH_CLEAR(hh, cs->by_key);
	for (size_t i = 0; i < cs->n; i++) {
		free(cs->v[i]->frames);
		free(cs->v[i]->key);
		free(cs->v[i]);
	}
	free(cs->v);
	memset(cs, 0, sizeof *cs);
}
