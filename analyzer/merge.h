/* SPDX-License-Identifier: MIT */
/* Merges the per-thread event streams of a trace into one replay order:
 * by epoch, corrected by the causal rule on addresses (format.h). */
#ifndef LT_ANALYZER_MERGE_H
#define LT_ANALYZER_MERGE_H

#include <stdbool.h>
#include <stdint.h>

#include "decode.h"

/* One positioned record of a thread's stream: an allocation event or a
 * MARKER, FORK, EXEC, THREAD_START, THREAD_END. Which fields mean what:
 *   ALLOC    stack_id, size, addr          FREE      addr
 *   REALLOC  stack_id, size, addr, old_addr
 *   MARKER   str (name)                    EXEC      str (path)
 *   FORK     addr = child pid, size = fork_seq
 *   THREAD_START  addr = thread, size = os tid, old_addr = creator+1
 *   THREAD_END    addr = thread */
typedef struct lt__event_s {
	uint64_t thread, epoch;
	uint64_t seq; /* position in the file, for ties and tests */
	uint64_t stack_id, size, addr, old_addr;
	uint64_t after_thread, after_free; /* see format.h, AFTER; 0 = none */
	char *str; /* NUL-terminated; owned by the merge, valid until next call */
	/* FREE, REALLOC: the thread's count of them so far, modulo 2^32
	 * (AFTER records name them modulo 2^24). */
	uint32_t free_no;
	uint32_t run_index; /* its place among its thread's events of this epoch */
	uint32_t plan_id; /* in the epoch's per-address plan (order.h) */
	uint8_t type; /* enum lt_record_type */
	bool forced; /* emitted although the causal rule said wait */
	/* 96 bytes: a lone thread's queue of 512 events is 48 KiB. */
} lt__event_t;

/* What lt__merge_next() yields: an event in replay order, or a metadata
 * record (PROCESS, STACK, MODULES, TIME, RSS, END, segment) in file order,
 * passed through as soon as it is read (STACK and MODULES precede the
 * events that need them, so that is early enough). */
typedef struct lt__merged_s {
	bool is_event;
	lt__event_t ev;
	lt__record_t rec; /* when !is_event; pointers valid until next call */
} lt__merged_t;

/* Tells whether addr is live in the replay that consumes the merge's
 * output. The merge asks it for every event it considers. */
typedef bool (*lt__is_live_fn)(void *ctx, uint64_t addr);

/* A hint that the replay will look addr up soon: it may start loading
 * what the lookup touches. Must not change anything the replay reports. */
typedef void (*lt__prefetch_fn)(void *ctx, uint64_t addr);

typedef struct lt__merge_opts_s {
	uint64_t window; /* epochs a blocked event waits for others (2) */
	double slack; /* epochs other heads may pass a blocked one (window);
		       * less forces sooner: a peak closer to real time */
	uint64_t max_buffered; /* events buffered before forcing (1<<20) */
} lt__merge_opts_t;

typedef struct lt__merge_stats_s {
	uint64_t forced; /* events emitted while blocked */
	uint64_t taken_ahead; /* events emitted before others of their thread */
	uint64_t unplanned; /* addresses no per-address order could explain */
	uint64_t checked_separate; /* epochs emitted by a check, without a plan */
	uint64_t max_buffered; /* most events held at once */
	uint64_t threads; /* distinct thread indexes seen */
} lt__merge_stats_t;

typedef struct lt__merge_s lt__merge_t;

/* Creates a merge reading from d (not owned) and asking is_live(ctx, addr)
 * about the replay state. opts may be NULL for defaults. Returns 0 or
 * -ENOMEM. */
int lt__merge_new(lt__merge_t **out, lt__decoder_t *d, lt__is_live_fn is_live,
		  void *ctx, const lt__merge_opts_t *opts);

/* Has the merge call prefetch(ctx, addr) (ctx as given to lt__merge_new)
 * for the addresses of events a few places before they are emitted. */
void lt__merge_set_prefetch(lt__merge_t *m, lt__prefetch_fn prefetch);

/* Yields the next item. The caller must apply an event to its replay
 * before calling again (the causal rule asks about the replay's state).
 * Returns 1 with *out filled, 0 at the end of the trace, or the decoder's
 * negative errno. */
int lt__merge_next(lt__merge_t *m, lt__merged_t *out);

/* A faster lt__merge_next() for the common case, a thread running alone:
 * when the next k > 0 items would all be that thread's plain ALLOC, FREE
 * and REALLOC events (lt__plain_t), sets *events to them and returns k,
 * else 0. The caller applies them as lt__merge_next() would have yielded
 * them, in order, then calls lt__merge_plain_done() with the same events
 * and k. Nothing else may be called between. The LT__PLAIN_AFTER records
 * after the run are readable too (for prefetching; they may be anything). */
#define LT__PLAIN_AFTER 16
size_t lt__merge_plain_run(lt__merge_t *m, const lt__plain_t **events);
void lt__merge_plain_done(lt__merge_t *m, const lt__plain_t *events, size_t k);

void lt__merge_stats(const lt__merge_t *m, lt__merge_stats_t *stats);
void lt__merge_free(lt__merge_t *m);

#endif /* LT_ANALYZER_MERGE_H */
