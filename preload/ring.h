/* SPDX-License-Identifier: MIT */
/* The per-thread event ring: how an allocating thread hands its events to
 * the writer thread without a lock. Header-only so the hot path inlines. */
#ifndef LT_RING_H
#define LT_RING_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Single producer (the thread that owns the ring), single consumer (the
 * writer thread). The producer writes slots and `tail`; the consumer reads
 * slots and writes `head`. Both indexes run freely (never wrap to zero);
 * the slot of index i is i & (LT_RING_CAP - 1). Invariant:
 *
 *     0 <= tail - head <= LT_RING_CAP
 *
 * The producer publishes a slot with a release store of tail, which pairs
 * with the consumer's acquire load of tail: the consumer sees the slot's
 * contents once it sees the new tail. The consumer frees slots with a
 * release store of head, which pairs with the producer's acquire load of
 * head: the producer never overwrites a slot the consumer is still reading.
 */

#define LT_RING_CAP 8192u /* 256 KiB of events per thread: ~1 ms of heavy churn */

enum lt_event_kind {
	LT_EV_ALLOC = 1,
	LT_EV_FREE,
	LT_EV_REALLOC,
	LT_EV_EPOCH, /* size = the epoch this thread now reads */
	LT_EV_THREAD_START, /* size = os tid */
	LT_EV_MARKER, /* addr = const char * name in the string arena */
	LT_EV_FORK, /* addr = child pid, size = fork sequence */
	LT_EV_EXEC, /* addr = const char * path in the string arena */
	LT_EV_AFTER, /* addr = thread index, size = free number: the next
		      * allocation reuses a block that thread freed */
};

typedef struct lt_event_s {
	uint64_t addr;
	uint64_t size;
	uint64_t old_addr;
	uint32_t stack_id;
	uint32_t kind;
} lt_event_t;

enum lt_ring_state {
	LT_RING_FREE = 0, /* on the registry list, owned by nobody */
	LT_RING_OWNED, /* a live thread produces into it */
	LT_RING_EXITING, /* its thread ran its TLS destructor */
	LT_RING_DEAD, /* its thread is gone; the writer drains it once more */
};

/* A stack the thread walked recently, with every stack word the walk
 * read: while the allocator's caller has the same ip, sp and fp and those
 * words are unchanged, a new walk would give the same stack (unwind.c).
 * Producer-private. */
#define LT_MEMO_WAYS 32
#define LT_PY_MEMO_WAYS 64
#define LT_MEMO_SLOTS 144 /* two per frame for 72 frames */
struct lt_stack_memo {
	uint64_t ip, rsp, rbp;
	uint32_t stack_id;
	int depth; /* lt__config.depth when it was made */
	int nslots;
	uint64_t slot[LT_MEMO_SLOTS];
	uint64_t value[LT_MEMO_SLOTS];
};

typedef struct lt_ring_s {
	/* Producer's cache line: tail plus the producer's private view of
	 * head, refreshed only when the ring looks full. */
	_Alignas(64) _Atomic uint64_t tail;
	uint64_t head_cache;
	uint64_t epoch_seen; /* producer-private: last epoch it pushed */
	uint64_t frees; /* producer-private: FREE events pushed so far */

	/* Consumer's cache line. */
	_Alignas(64) _Atomic uint64_t head;

	/* Registry fields, written rarely. */
	_Alignas(64) _Atomic uint32_t state;
	uint32_t thread_index;
	pid_t tid;
	struct lt_ring_s *next; /* registry list; immutable once linked */
	uint64_t idle_passes; /* writer-private: passes with nothing drained */
	uint64_t snap_tail; /* writer-private: tail read at the pass start */
	uint64_t w_epoch; /* writer-private: the thread's epoch so far */
	uint64_t enc_epoch; /* writer-private: epoch written in this block */
	uint64_t enc_block; /* writer-private: block that enc_epoch is for */
	uint64_t after_thread, after_free; /* writer-private: pending AFTER */

	struct lt_stack_memo memo[LT_MEMO_WAYS]; /* producer-private */
	/* Producer-private: stacks with Python frames made lately, by their
	 * native stack and a hash of their Python frames (stacks.c). */
	struct lt_py_memo {
		uint64_t py_hash;
		uint32_t native_id, id; /* id 0: empty */
	} py_memo[LT_PY_MEMO_WAYS];
	lt_event_t slots[LT_RING_CAP];
} lt_ring_t;

/* Producer: a slot to fill, or NULL when the ring is full. Does not
 * publish; call lt__ring_publish() after filling the slot. */
static inline lt_event_t *lt__ring_slot(lt_ring_t *r)
{
	/* Relaxed: only this thread writes tail. */
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (t - r->head_cache >= LT_RING_CAP) {
		/* Acquire pairs with the consumer's release store of head:
		 * the consumer is done with the slots before head. */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (t - r->head_cache >= LT_RING_CAP)
			return NULL;
	}
	return &r->slots[t & (LT_RING_CAP - 1)];
}

/* Producer: makes the slot returned by lt__ring_slot() visible. */
static inline void lt__ring_publish(lt_ring_t *r)
{
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	/* Release pairs with the consumer's acquire load of tail: the slot's
	 * contents are visible before the new tail is. */
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
}

#endif /* LT_RING_H */
