/* SPDX-License-Identifier: MIT */
/* Per-call-site counters, including each site's share of the global peak
 * kept lazily at O(1) per event (see lt__site_t). */
#include "aggregate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LT__SMALL_IDS_MAX (1u << 20) /* ids indexed directly: 4 MiB at most */

/* Makes by_small_id cover stack_id when it is small enough. Returns 0,
 * or -ENOMEM (the hash alone still works then). */
static int cover_small(lt__agg_t *agg, uint64_t stack_id)
{
	if (stack_id < agg->nsmall || stack_id >= LT__SMALL_IDS_MAX)
		return 0;
	uint32_t n = agg->nsmall ? agg->nsmall : 1024;
	while (n <= stack_id)
		n *= 2;
	uint32_t *v = realloc(agg->by_small_id, (size_t)n * sizeof *v);
	if (!v)
		return -ENOMEM;
	memset(v + agg->nsmall, 0, (size_t)(n - agg->nsmall) * sizeof *v);
	agg->by_small_id = v;
	agg->nsmall = n;
	return 0;
}

long lt__agg_site_slow(lt__agg_t *agg, uint64_t stack_id)
{
	if (stack_id < agg->nsmall && agg->by_small_id[stack_id])
		return agg->by_small_id[stack_id] - 1;
	lt__site_t *s;
	HASH_FIND(hh, agg->by_id, &stack_id, sizeof stack_id, s);
	if (s)
		return s->index;
	if (cover_small(agg, stack_id))
		return -ENOMEM;
	if (agg->nsites == agg->cap) {
		uint32_t ncap = agg->cap ? agg->cap * 2 : 256;
		if (ncap <= agg->cap)
			return -ENOMEM;
		lt__site_t **v = realloc(agg->sites, (size_t)ncap * sizeof *v);
		if (!v)
			return -ENOMEM;
		agg->sites = v;
		agg->cap = ncap;
	}
	s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->stack_id = stack_id;
	s->index = agg->nsites;
	s->modmap = -1;
	s->mod_gen = agg->peak_gen; /* it held nothing at the last peak */
	HASH_ADD(hh, agg->by_id, stack_id, sizeof s->stack_id, s);
	agg->sites[agg->nsites] = s;
	if (stack_id < agg->nsmall)
		agg->by_small_id[stack_id] = agg->nsites + 1;
	return agg->nsites++;
}

int lt__agg_set_stack(lt__agg_t *agg, uint64_t stack_id, uint32_t depth,
		      const uint64_t *frames, long modmap)
{
	long i = lt__agg_site(agg, stack_id);
	if (i < 0)
		return (int)i;
	lt__site_t *s = agg->sites[i];
	uint64_t *f = NULL;
	if (depth) {
		f = malloc(depth * sizeof *f);
		if (!f)
			return -ENOMEM;
		memcpy(f, frames, depth * sizeof *f);
	}
	free(s->frames); /* a stack id written twice: the last one wins */
	s->frames = f;
	s->depth = depth;
	s->modmap = modmap;
	/* Python frames belong to the STACK record they follow. */
	free(s->pyframes);
	s->pyframes = NULL;
	s->npyframes = 0;
	return 0;
}

int lt__agg_set_pyframes(lt__agg_t *agg, uint64_t stack_id, uint32_t count,
			 const lt__pyframe_t *frames)
{
	long i = lt__agg_site(agg, stack_id);
	if (i < 0)
		return (int)i;
	lt__site_t *s = agg->sites[i];
	lt__pyframe_t *f = NULL;
	if (count) {
		f = malloc(count * sizeof *f);
		if (!f)
			return -ENOMEM;
		memcpy(f, frames, count * sizeof *f);
	}
	free(s->pyframes);
	s->pyframes = f;
	s->npyframes = count;
	return 0;
}

void lt__agg_at_peak(const lt__agg_t *agg, const lt__site_t *s,
		     uint64_t *bytes, uint64_t *blocks)
{
	if (s->mod_gen != agg->peak_gen) {
		*bytes = s->live_bytes; /* unchanged since the last peak */
		*blocks = s->live_blocks;
	} else {
		*bytes = s->saved_peak_bytes;
		*blocks = s->saved_peak_blocks;
	}
}

void lt__agg_free_all(lt__agg_t *agg)
{
	HASH_CLEAR(hh, agg->by_id);
	for (uint32_t i = 0; i < agg->nsites; i++) {
		free(agg->sites[i]->frames);
		free(agg->sites[i]->pyframes);
		free(agg->sites[i]);
	}
	free(agg->sites);
	free(agg->by_small_id);
	memset(agg, 0, sizeof *agg);
}
