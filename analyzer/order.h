/* SPDX-License-Identifier: MIT */
/* Per-address ordering of one epoch's events: for every address the events
 * of all threads touch in that epoch, an interleaving that keeps each
 * thread's order and alternates allocation and free, found by search. The
 * merge then emits the epoch so that every address sees its events in that
 * order: frees pair with the right allocations even where the file cannot
 * say which thread went first. */
#ifndef LT_ANALYZER_ORDER_H
#define LT_ANALYZER_ORDER_H

#include <stdbool.h>
#include <stdint.h>

#include "merge.h"

#define LT__ORDER_NONE UINT32_MAX /* plan id of an event without a plan */

typedef struct lt__order_s lt__order_t;

/* Tells whether addr is live before the epoch (the replay's state). */
typedef bool (*lt__order_live_fn)(void *ctx, uint64_t addr);

/* A hint that is_live(ctx, addr) will be asked soon (lt__prefetch_fn). */
typedef void (*lt__order_prefetch_fn)(void *ctx, uint64_t addr);

int lt__order_new(lt__order_t **out);

/* Has lt__order_solve() call prefetch(ctx, addr) a few addresses before
 * it asks is_live about them. */
void lt__order_set_prefetch(lt__order_t *o, lt__order_prefetch_fn prefetch);
void lt__order_free(lt__order_t *o);

/* Starts a new epoch's plan, forgetting the last one. */
void lt__order_reset(lt__order_t *o);

/* Adds an ALLOC, FREE or REALLOC event of thread slot `thread` (events of
 * one thread must be added in their order) with its estimated place in
 * time and, for a free, its number among the thread's frees (what AFTER
 * records name). Returns the event's plan id (consecutive from 0), or
 * LT__ORDER_NONE when memory is short (it then goes without a plan). */
uint32_t lt__order_add(lt__order_t *o, uint32_t thread, const lt__event_t *ev,
		       double place, uint64_t free_no);

/* Where the parts added next start, for lt__order_scale_places(). */
uint32_t lt__order_mark(const lt__order_t *o);

/* Divides the places of the events added since mark by len: a thread's
 * events may be added with their index k as place, then scaled to k / len
 * once their count is known. */
void lt__order_scale_places(lt__order_t *o, uint32_t mark, uint64_t len);

/* Solves every address. Returns the number of addresses for which no order
 * exists (or the search was too big): their events go unplanned. */
uint64_t lt__order_solve(lt__order_t *o, lt__order_live_fn is_live, void *ctx);

/* True when, in the plan just solved, every address is touched by one
 * thread only: each thread's own order is the plan, and any interleaving
 * of the threads keeps it (the solve's result must have been 0). */
bool lt__order_separate(const lt__order_t *o);

/* The separation check: a cheap way to tell, without planning, that an
 * epoch would be planned as separate. lt__order_check_start() begins one
 * epoch (0 or -ENOMEM), then every event of the epoch goes through
 * lt__order_check() in each thread's order, with the replay's state before
 * the epoch. When every call returns true, lt__order_solve() on the same
 * events would return 0 and lt__order_separate() true: each thread's order
 * is the plan. A false says only "plan it": the address may be two
 * threads', refused, or the check out of room. Independent of the plan:
 * neither disturbs the other. */
int lt__order_check_start(lt__order_t *o);
bool lt__order_check(lt__order_t *o, uint32_t thread, const lt__event_t *ev,
		     lt__order_live_fn is_live, void *ctx);

/* 1 when the event may go now (each address it touches is at its turn),
 * 0 when it must wait, -1 when it has no plan (the caller's causal rule
 * decides). */
int lt__order_ready(const lt__order_t *o, uint32_t id);

/* For an event that must wait: the plan id of the event whose turn it is
 * at an address the event waits on, or LT__ORDER_NONE. Following blockers
 * finds the event that has to go first. */
uint32_t lt__order_blocker(const lt__order_t *o, uint32_t id);

/* The event went (out of turn when forced): its addresses move on; an
 * address whose plan was broken goes unplanned. */
void lt__order_emitted(lt__order_t *o, uint32_t id);

#endif /* LT_ANALYZER_ORDER_H */
