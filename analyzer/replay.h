/* SPDX-License-Identifier: MIT */
/* Replay of merged events: the live-block table, the summary totals under
 * DESIGN.md's counting conventions (valgrind memcheck's), per-site
 * aggregates, and what the metadata says about the process. */
#ifndef LT_ANALYZER_REPLAY_H
#define LT_ANALYZER_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregate.h"
#include "merge.h"
#include "modules.h"

/* One live block. The table is open addressing on addr; 24 bytes a block. */
typedef struct lt__live_s {
	uint64_t addr;
	uint64_t size;
	uint32_t site; /* index in lt__agg_t.sites */
	uint32_t thread; /* allocating thread (low 32 bits of its index) */
} lt__live_t;

typedef struct lt__totals_s {
	uint64_t allocations, frees, bytes_allocated, bytes_freed;
	uint64_t current_bytes, current_blocks;
	uint64_t peak_bytes, peak_blocks, peak_epoch;
	uint64_t temporary; /* freed by its thread before its next allocation */
	uint64_t unmatched_frees; /* frees never paired with an allocation */
	uint64_t overlapping_allocs; /* allocations over a live block */
	uint64_t early_frees; /* frees replayed before their allocation */
	uint64_t late_frees; /* frees replayed after their block was dropped */
	uint64_t forced; /* events the merge had to force */
	uint64_t last_epoch;
	uint64_t markers;
} lt__totals_t;

/* A process the trace's parent forked or exec'd (from FORK/EXEC records). */
typedef struct lt__child_s {
	uint64_t pid; /* 0 for an exec */
	uint64_t fork_seq;
	char *exec_path; /* NULL for a fork */
} lt__child_t;

typedef struct lt__process_s {
	bool known;
	uint64_t pid, ppid, start_unix_ns, flags, fork_seq;
	char *exe;
	char **argv;
	uint64_t argc;
	char *parent_trace;
	bool inherited; /* a fork child whose parent prefix was read */
} lt__process_t;

typedef struct lt__end_s {
	bool seen;
	uint64_t exit_kind, exit_status, events, allocs, frees, stacks;
	uint64_t stack_overflows, ns, bytes_written;
	uint64_t lost_events; /* the shim could not record them (no memory) */
} lt__end_t;

typedef struct lt__replay_s lt__replay_t;

/* Creates an empty replay. Returns 0 or -ENOMEM. */
int lt__replay_new(lt__replay_t **out);

/* Applies one merged item (event or metadata). Returns 0 or -ENOMEM. */
int lt__replay_apply(lt__replay_t *r, const lt__merged_t *item);

/* Applies n plain events (lt__merge_plain_run: one thread's, all of one
 * epoch; the LT__PLAIN_AFTER records after them must be readable too).
 * Returns 0 or -ENOMEM. */
int lt__replay_plain(lt__replay_t *r, const lt__plain_t *ev, size_t n);

/* The lt__is_live_fn for lt__merge_new(), ctx being the replay. */
bool lt__replay_is_live(void *replay, uint64_t addr);

/* The lt__prefetch_fn for lt__merge_set_prefetch(): loads the live-table
 * slot where addr would be, so that the event's lookup does not wait for
 * memory (the table outgrows the caches with a few 100k live blocks). */
void lt__replay_prefetch(void *replay, uint64_t addr);

/* Finds a live block; NULL when addr is not live. */
const lt__live_t *lt__replay_find(const lt__replay_t *r, uint64_t addr);

/* Frees the live-block table (for a report, which needs only the
 * per-site counts): afterwards no block is live, and events must no
 * longer be applied. */
void lt__replay_drop_live(lt__replay_t *r);

/* Calls fn on every live block, in no particular order. */
void lt__replay_each_live(const lt__replay_t *r,
			  void (*fn)(void *ctx, const lt__live_t *b), void *ctx);

const lt__totals_t *lt__replay_totals(const lt__replay_t *r);
lt__agg_t *lt__replay_agg(lt__replay_t *r);
const lt__modmaps_t *lt__replay_modmaps(const lt__replay_t *r);
const lt__process_t *lt__replay_process(const lt__replay_t *r);
const lt__end_t *lt__replay_end(const lt__replay_t *r);
void lt__replay_children(const lt__replay_t *r, const lt__child_t **children,
			 size_t *count);
/* Distinct threads that had events. */
uint64_t lt__replay_threads(const lt__replay_t *r);

/* Nanoseconds since the process start at epoch, from the TIME records
 * seen so far (the last one at or before epoch); epoch 0, which no TIME
 * record opens, is the start (0). Returns false when nothing could tell. */
bool lt__replay_epoch_ns(const lt__replay_t *r, uint64_t epoch, uint64_t *ns);
/* The time of the peak (false when unknown) and the trace's duration (the
 * latest time any record reported: END, TIME or RSS). */
bool lt__replay_peak_ns(const lt__replay_t *r, uint64_t *ns);
uint64_t lt__replay_duration_ns(const lt__replay_t *r);

void lt__replay_free(lt__replay_t *r);

#endif
