/* SPDX-License-Identifier: MIT */
/* Per-call-site aggregates: one site per recorded stack, with its frames
 * and its counters (allocations, bytes, live, peak-time live, temporary). */
#ifndef LT_ANALYZER_AGGREGATE_H
#define LT_ANALYZER_AGGREGATE_H

#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

typedef struct lt__site_s {
	uint64_t stack_id;
	uint32_t index; /* in lt__agg_t.sites */
	uint32_t depth; /* 0 when no STACK record named it */
	uint64_t *frames; /* innermost first */
	long modmap; /* modules map index the stack was recorded under, -1 none */

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

/* The index of the site for stack_id, created empty on first use.
 * Returns the index (>= 0) or -ENOMEM. */
long lt__agg_site(lt__agg_t *agg, uint64_t stack_id);

/* Records the frames of stack_id (a STACK record) and its modules map. */
int lt__agg_set_stack(lt__agg_t *agg, uint64_t stack_id, uint32_t depth,
		      const uint64_t *frames, long modmap);

void lt__agg_alloc(lt__agg_t *agg, uint32_t site, uint64_t size);
void lt__agg_free(lt__agg_t *agg, uint32_t site, uint64_t size, bool temporary);
/* Drops a live block without counting a free (an overlapping alloc). */
void lt__agg_drop(lt__agg_t *agg, uint32_t site, uint64_t size);

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
