/* SPDX-License-Identifier: MIT */
/* Per-call-site aggregates: one site per recorded stack, with its frames
 * and its counters (allocations, bytes, live, peak-time live, temporary). */
#ifndef LT_ANALYZER_AGGREGATE_H
#define LT_ANALYZER_AGGREGATE_H

#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

#include "pycode.h"

typedef struct lt__site_s {
	uint64_t stack_id;
	uint32_t index; /* in lt__agg_t.sites */
	uint32_t depth; /* 0 when no STACK record named it */
	uint64_t *frames; /* innermost first */
	long modmap; /* modules map index the stack was recorded under, -1 none */
	lt__pyframe_t *pyframes; /* innermost first; NULL when not a Python stack */
	uint32_t npyframes;

	uint64_t allocations, bytes_allocated, frees, temporary;
	uint64_t live_blocks, live_bytes;
	uint64_t max_live_bytes; /* the site's own high-water mark */

	/* Live bytes/blocks at the global peak, kept lazily: before the site
	 * changes, if a new global peak was reached since its last change
	 * (mod_gen < peak_gen), its live values are what they were at that
	 * peak and are saved. At the end, a site untouched since the last
	 * peak still holds them live. */
	uint64_t saved_peak_bytes, saved_peak_blocks;
	uint64_t mod_gen;
	UT_hash_handle hh;
} lt__site_t;

typedef struct lt__agg_s {
	lt__site_t *by_id; /* uthash by stack_id */
	/* The shim numbers stacks from 1 up, so most ids index this array
	 * directly (site index + 1; 0 = no site yet), sparing the hash on
	 * every allocation; larger ids (hostile input) use by_id. */
	uint32_t *by_small_id;
	uint32_t nsmall;
	lt__site_t **sites; /* dense, by site index */
	uint32_t nsites, cap;
	uint64_t peak_gen;
} lt__agg_t;

/* lt__agg_site() out of line: the hash and the creation of a site. */
long lt__agg_site_slow(lt__agg_t *agg, uint64_t stack_id);

/* The index of the site for stack_id, created empty on first use.
 * Returns the index (>= 0) or -ENOMEM. (Inline, like the counters below:
 * the replay calls them for every event.) */
static inline long lt__agg_site(lt__agg_t *agg, uint64_t stack_id)
{
	if (stack_id < agg->nsmall && agg->by_small_id[stack_id])
		return agg->by_small_id[stack_id] - 1;
	return lt__agg_site_slow(agg, stack_id);
}

/* Records the frames of stack_id (a STACK record) and its modules map. */
int lt__agg_set_stack(lt__agg_t *agg, uint64_t stack_id, uint32_t depth,
		      const uint64_t *frames, long modmap);

/* Records the Python frames of stack_id (a PYFRAMES record, which follows
 * the STACK record; lt__agg_set_stack() drops them again). Returns 0 or
 * -ENOMEM. */
int lt__agg_set_pyframes(lt__agg_t *agg, uint64_t stack_id, uint32_t count,
			 const lt__pyframe_t *frames);

/* Saves the site's live values if a global peak happened since its last
 * change; must precede every change of live_bytes/live_blocks. */
static inline void lt__agg_touch(lt__agg_t *agg, lt__site_t *s)
{
	if (s->mod_gen != agg->peak_gen) {
		s->saved_peak_bytes = s->live_bytes;
		s->saved_peak_blocks = s->live_blocks;
		s->mod_gen = agg->peak_gen;
	}
}

static inline void lt__agg_alloc(lt__agg_t *agg, uint32_t site, uint64_t size)
{
	lt__site_t *s = agg->sites[site];
	lt__agg_touch(agg, s);
	s->allocations++;
	s->bytes_allocated += size;
	s->live_blocks++;
	s->live_bytes += size;
	if (s->live_bytes > s->max_live_bytes)
		s->max_live_bytes = s->live_bytes;
}

/* Drops a live block without counting a free (an overlapping alloc). */
static inline void lt__agg_drop(lt__agg_t *agg, uint32_t site, uint64_t size)
{
	lt__site_t *s = agg->sites[site];
	lt__agg_touch(agg, s);
	s->live_blocks--;
	s->live_bytes -= size;
}

static inline void lt__agg_free(lt__agg_t *agg, uint32_t site, uint64_t size,
				bool temporary)
{
	lt__agg_drop(agg, site, size);
	agg->sites[site]->frees++;
	if (temporary)
		agg->sites[site]->temporary++;
}

/* Called right after the global current bytes exceeded the peak. */
static inline void lt__agg_new_peak(lt__agg_t *agg)
{
	agg->peak_gen++;
}

/* The site's live bytes and blocks at the last global peak. */
void lt__agg_at_peak(const lt__agg_t *agg, const lt__site_t *s,
		     uint64_t *bytes, uint64_t *blocks);

void lt__agg_free_all(lt__agg_t *agg);

#endif
