/* SPDX-License-Identifier: MIT */
/* Merge of per-thread streams into replay order. Each thread's events are
 * queued in program order; the next event is the oldest (by epoch, then
 * file position) that the causal rule lets through, and events that can
 * never be resolved are forced out so the replay always progresses. */
#define _GNU_SOURCE
#include "merge.h"
#include "order.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#define LT__DEFAULT_WINDOW 2 /* epochs (~ms): the writer's drain skew */
#define LT__DEFAULT_MAX_BUFFERED (1u << 20) /* ~80 MiB of queued events */
#define LT__STARVE_BATCH 256 /* events read ahead when every head is blocked */
#define LT__STALE_EPOCHS 32 /* a thread this many epochs behind is idle, not late */
#define LT__IDLE_RECORDS 65536 /* a thread silent for this many records is idle */
#define LT__LONE_LOOKAHEAD 512 /* events read ahead of a thread running alone */
#define LT__LONE_SCAN 1024 /* records checked at once for lone_next() */
#define LT__LONE_RETRY 256 /* records read before asking again whether the others are idle */
#define LT__REPLAN_AFTER 64 /* events by the causal rule after a plan stalls */
#define LT__MAX_STALLS 4 /* stalls in one epoch before the rest of it goes unplanned */
#define LT__BATCH_MAX (1u << 20) /* events of one thread in one plan (an epoch is less) */
#define LT__GATE_EVERY 64 /* records read between recomputations of the gate */
#define LT__CHECK_BACKOFF_MAX 64 /* epochs planned without a check after failed ones */
#define LT__PREFETCH_AHEAD 16 /* queued events between a prefetch and its use:
			       * about a memory latency of replay work */

/* A run: a thread's queued events of one epoch. */
struct lt__run {
	uint64_t epoch;
	uint32_t len;
};

/* An event taken out of the middle of a queue (take_ahead) leaves this type
 * behind; dequeue skips it. */
#define LT__EV_TAKEN 0

/* One thread's stream: a ring of queued events, free-running indexes
 * (count = tail - head, slot = index & (cap - 1)).
 *
 * Within one epoch (about a millisecond) a busy thread has thousands of
 * events and the file does not say how they interleave with other
 * threads'. Spreading each thread's events of an epoch evenly over it
 * approximates real time far better than taking one thread's run after
 * another: an event's place is epoch + run_index / run length. runs holds
 * the lengths of the runs (events of one epoch) that have queued events,
 * oldest first; the last one is open while events of its epoch arrive. */
struct lt__mthread {
	uint64_t index; /* the thread index of the trace */
	lt__event_t *q;
	uint64_t head, tail, cap;
	struct lt__run *runs;
	uint32_t runs_head, runs_tail, runs_cap; /* same ring discipline */
	uint64_t frees_enqueued; /* FREE and REALLOC events queued so far */
	uint64_t open_epoch; /* epoch of the last run */
	uint64_t last_read; /* m->reads when its last record was read */
	bool has_events; /* only threads with events hold others back */
	long heap_pos; /* position in the merge's heap, -1 when empty */
	uint64_t frontier; /* epoch of its last record read from the file */
	long active_pos; /* position in the merge's active list, -1 if ended */
	uint64_t frees_done; /* FREE and REALLOC events of it emitted so far */
	UT_hash_handle hh;
};

struct lt__merge_s {
	lt__decoder_t *dec;
	lt__is_live_fn is_live;
	lt__prefetch_fn prefetch; /* NULL: none */
	void *ctx;
	lt__merge_opts_t opts;

	struct lt__mthread *threads; /* uthash by index */
	struct lt__mthread *cur; /* thread of the last decoded record */
	uint64_t cur_index;

	/* Min-heap of threads with queued events, by (head epoch, head seq). */
	struct lt__mthread **heap;
	size_t nheap, heap_cap;
	struct lt__mthread **popped; /* scratch for pick() */

	/* Threads that have not ended. The gate is the smallest frontier
	 * among those that have events and are not idle: an event at an epoch
	 * below the gate cannot be preceded by one not yet read (epochs only
	 * grow per thread). The head's own thread counts too: reading it one
	 * epoch ahead is what lets threads that appear late in the file (a
	 * new thread drained after a busy one) take their place. gate is a
	 * lower bound, recomputed when it holds an event back. */
	struct lt__mthread **active;
	size_t nactive, active_cap;
	uint64_t gate, reads_since_gate;
	size_t ngating; /* active threads that have had events */
	double slack; /* epochs other heads may run ahead of a blocked one:
		       * more finds more orders, less keeps the replay's live
		       * bytes closer to real time (the peak) */

	uint64_t buffered, max_seen, seq, starve_until, reads;
	bool eof, barrier;
	lt__record_t segment; /* the SEGMENT record held during a barrier */
	char *last_str; /* string of the last emitted event, freed next call */

	/* The epoch being emitted by per-address plan (order.h): every queued
	 * event of batch_epoch when the batch started; batch_left of them are
	 * still to go. No event of a later epoch goes before they have. */
	lt__order_t *order;
	bool batch_active;
	uint64_t batch_epoch, batch_left;
	/* Every event of the batch planned and every address one thread's:
	 * the oldest head is always at its turn (next_of_batch). */
	bool batch_separate;
	uint64_t emitted, plan_after; /* events out; no new plan before plan_after */
	uint64_t plan_epoch; /* nor for an epoch before this (one that stalled) */
	uint64_t stalls; /* of plans for batch_epoch */
	/* Epochs to plan before the next separation check, and how many to
	 * skip after the next failure (doubling). */
	uint32_t check_skip, check_backoff;
	/* Where each planned event sits: no event is queued while a batch
	 * runs, so these stay valid until it ends. */
	lt__event_t **plan_slot;
	struct lt__mthread **plan_thread;
	uint32_t plan_cap;
	/* Lone fast path (lone_next): lone_run records from the decoder's
	 * position on are lone_thread's; lone_stop says the record after
	 * them is not (so scanning again is useless until the position
	 * moves). read_record() resets them. */
	uint64_t lone_thread;
	size_t lone_run;
	bool lone_stop;
	bool others_idle; /* every other thread with events is idle */
	uint64_t lone_retry; /* reads before others_idle is asked again */
	lt__merge_stats_t stats;
};

/* ---- heap ------------------------------------------------------------ */

static const lt__event_t *front(const struct lt__mthread *t)
{
	return &t->q[t->head & (t->cap - 1)];
}

static uint64_t front_run_len(const struct lt__mthread *t)
{
	return t->runs[t->runs_head & (t->runs_cap - 1)].len;
}

/* The estimated time of t's head, in epochs: epoch + index / run length. */
static double place(const struct lt__mthread *t)
{
	const lt__event_t *e = front(t);
	return (double)e->epoch + (double)e->run_index / (double)front_run_len(t);
}

/* Order of heads: epoch, then place within the epoch, then file order. */
static bool before(const struct lt__mthread *a, const struct lt__mthread *b)
{
	const lt__event_t *x = front(a), *y = front(b);
	if (x->epoch != y->epoch)
		return x->epoch < y->epoch;
	uint64_t l = (uint64_t)x->run_index * front_run_len(b);
	uint64_t r = (uint64_t)y->run_index * front_run_len(a);
	if (l != r)
		return l < r;
	return x->seq < y->seq;
}

static void heap_set(lt__merge_t *m, size_t i, struct lt__mthread *t)
{
	m->heap[i] = t;
	t->heap_pos = (long)i;
}

static void sift_up(lt__merge_t *m, size_t i)
{
	struct lt__mthread *t = m->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!before(t, m->heap[parent]))
			break;
		heap_set(m, i, m->heap[parent]);
		i = parent;
	}
	heap_set(m, i, t);
}

static void sift_down(lt__merge_t *m, size_t i)
{
	struct lt__mthread *t = m->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		struct lt__mthread *best = t;
		if (l < m->nheap && before(m->heap[l], best)) {
			min = l;
			best = m->heap[l];
		}
		if (r < m->nheap && before(m->heap[r], best)) {
			min = r;
			best = m->heap[r];
		}
		if (min == i)
			break;
		heap_set(m, i, best);
		i = min;
	}
	heap_set(m, i, t);
}

static int heap_push(lt__merge_t *m, struct lt__mthread *t)
{
	if (m->nheap == m->heap_cap) {
		size_t ncap = m->heap_cap ? m->heap_cap * 2 : 16;
		struct lt__mthread **h = realloc(m->heap, ncap * sizeof *h);
		if (!h)
			return -ENOMEM;
		m->heap = h;
		struct lt__mthread **p = realloc(m->popped, ncap * sizeof *p);
		if (!p)
			return -ENOMEM;
		m->popped = p;
		m->heap_cap = ncap;
	}
	m->heap[m->nheap] = t;
	sift_up(m, m->nheap++);
	return 0;
}

static struct lt__mthread *heap_pop(lt__merge_t *m)
{
	struct lt__mthread *top = m->heap[0];
	top->heap_pos = -1;
	if (--m->nheap > 0) {
		m->heap[0] = m->heap[m->nheap];
		sift_down(m, 0);
	}
	return top;
}

/* ---- queues ---------------------------------------------------------- */

static struct lt__mthread *thread_get(lt__merge_t *m, uint64_t index)
{
	if (m->cur && m->cur_index == index)
		return m->cur;
	struct lt__mthread *t;
	HASH_FIND(hh, m->threads, &index, sizeof index, t);
	if (!t) {
		t = calloc(1, sizeof *t);
		if (!t)
			return NULL;
		t->index = index;
		t->heap_pos = -1;
		t->active_pos = -1;
		HASH_ADD(hh, m->threads, index, sizeof t->index, t);
		m->stats.threads++;
		if (m->nactive == m->active_cap) {
			size_t ncap = m->active_cap ? m->active_cap * 2 : 16;
			struct lt__mthread **a = realloc(m->active, ncap * sizeof *a);
			if (!a)
				return NULL;
			m->active = a;
			m->active_cap = ncap;
		}
		t->active_pos = (long)m->nactive;
		m->active[m->nactive++] = t;
	}
	m->cur = t;
	m->cur_index = index;
	return t;
}

/* Makes room for one more event in t's queue and opens a run for epoch
 * when it starts one. Returns the slot to fill (then commit_slot), or NULL
 * when memory is short. */
static lt__event_t *reserve_slot(struct lt__mthread *t, uint64_t epoch)
{
	if (t->tail - t->head == t->cap) {
		uint64_t ncap = t->cap ? t->cap * 2 : 64;
		lt__event_t *q = malloc(ncap * sizeof *q);
		if (!q)
			return NULL;
		for (uint64_t i = t->head; i != t->tail; i++)
			q[i - t->head] = t->q[i & (t->cap - 1)];
		free(t->q);
		t->q = q;
		t->tail -= t->head;
		t->head = 0;
		t->cap = ncap;
	}
	if (t->head == t->tail || epoch != t->open_epoch) {
		if (t->head == t->tail)
			t->runs_head = t->runs_tail; /* no queued event is in them */
		if (t->runs_tail - t->runs_head == t->runs_cap) {
			uint32_t ncap = t->runs_cap ? t->runs_cap * 2 : 8;
			struct lt__run *r = malloc(ncap * sizeof *r);
			if (!r)
				return NULL;
			for (uint32_t i = t->runs_head; i != t->runs_tail; i++)
				r[i - t->runs_head] = t->runs[i & (t->runs_cap - 1)];
			free(t->runs);
			t->runs = r;
			t->runs_tail -= t->runs_head;
			t->runs_head = 0;
			t->runs_cap = ncap;
		}
		struct lt__run *run = &t->runs[t->runs_tail++ & (t->runs_cap - 1)];
		run->epoch = epoch;
		run->len = 0;
		t->open_epoch = epoch;
	}
	return &t->q[t->tail & (t->cap - 1)];
}

/* Appends the event filled in at reserve_slot()'s slot (its type, thread,
 * epoch, seq, payload fields and str) to t's queue. Returns 0, or -ENOMEM
 * with the slot not queued. */
static int commit_slot(lt__merge_t *m, struct lt__mthread *t)
{
	lt__event_t *slot = &t->q[t->tail & (t->cap - 1)];
	slot->run_index = t->runs[(t->runs_tail - 1) & (t->runs_cap - 1)].len++;
	slot->plan_id = LT__ORDER_NONE;
	slot->forced = false;
	slot->free_no = 0;
	if (slot->type == LT_REC_FREE || slot->type == LT_REC_REALLOC)
		slot->free_no = (uint32_t)++t->frees_enqueued;
	if (t->tail == t->head) {
		/* Its first queued event: front(t) is the slot already. */
		int rc = heap_push(m, t);
		if (rc)
			return rc;
	}
	t->tail++;
	if (++m->buffered > m->stats.max_buffered)
		m->stats.max_buffered = m->buffered;
	return 0;
}

/* Removes the front event of t (which is in the heap) into *ev. */
static void dequeue(lt__merge_t *m, struct lt__mthread *t, lt__event_t *ev)
{
	*ev = t->q[t->head++ & (t->cap - 1)];
	m->buffered--;
	if (m->prefetch && t->tail - t->head > LT__PREFETCH_AHEAD) {
		/* Most often this is the thread's next event to go after
		 * LT__PREFETCH_AHEAD more of its own. */
		const lt__event_t *soon = &t->q[(t->head + LT__PREFETCH_AHEAD) & (t->cap - 1)];
		m->prefetch(m->ctx, soon->addr);
		if (soon->type == LT_REC_REALLOC)
			m->prefetch(m->ctx, soon->old_addr);
		/* A lone thread's queue (LT__LONE_LOOKAHEAD events) is
		 * larger than L1: bring the whole slot back in, not just the
		 * line with addr. */
		__builtin_prefetch((const char *)soon + sizeof *soon - 1);
		__builtin_prefetch(soon);
	}
	if (ev->type == LT_REC_FREE || ev->type == LT_REC_REALLOC)
		t->frees_done++; /* numbered as AFTER records count them */
	while (t->head != t->tail && front(t)->type == LT__EV_TAKEN)
		t->head++; /* already emitted by take_ahead */
	/* Runs that no queued event belongs to any more go. */
	while (t->head != t->tail && t->runs_tail - t->runs_head > 1 &&
	       t->runs[t->runs_head & (t->runs_cap - 1)].epoch != front(t)->epoch)
		t->runs_head++;
	if (t->head == t->tail) {
		if (t->heap_pos >= 0) {
			size_t i = (size_t)t->heap_pos;
			struct lt__mthread *last = m->heap[--m->nheap];
			t->heap_pos = -1;
			if (last != t) {
				heap_set(m, i, last);
				sift_down(m, i);
				sift_up(m, (size_t)last->heap_pos);
			}
		}
	} else if (t->heap_pos >= 0 && m->nheap > 1) { /* alone, it stays on top */
		sift_down(m, (size_t)t->heap_pos);
	}
}

/* ---- reading --------------------------------------------------------- */

/* Notes that thread index read a record at epoch. Returns 0 or -ENOMEM. */
static int saw(lt__merge_t *m, uint64_t index, uint64_t epoch)
{
	uint64_t before = m->stats.threads;
	struct lt__mthread *t = thread_get(m, index);
	if (!t)
		return -ENOMEM;
	if (epoch > t->frontier || m->stats.threads != before)
		t->frontier = epoch;
	t->last_read = m->reads;
	if (epoch > m->max_seen)
		m->max_seen = epoch;
	return 0;
}

/* A thread's first event: from now on it may hold the others back. */
static void starts_gating(lt__merge_t *m, struct lt__mthread *t)
{
	t->has_events = true;
	if (t->active_pos >= 0)
		m->ngating++;
	if (t->frontier < m->gate)
		m->gate = t->frontier;
}

static void thread_ended(lt__merge_t *m, uint64_t index)
{
	struct lt__mthread *t;
	HASH_FIND(hh, m->threads, &index, sizeof index, t);
	if (!t || t->active_pos < 0)
		return;
	if (t->has_events)
		m->ngating--;
	struct lt__mthread *last = m->active[--m->nactive];
	m->active[t->active_pos] = last;
	last->active_pos = t->active_pos;
	t->active_pos = -1;
}

/* A thread that has not been heard of for a while is idle: it no longer
 * holds the others back. */
static bool is_idle(const lt__merge_t *m, const struct lt__mthread *t)
{
	return m->max_seen - t->frontier > LT__STALE_EPOCHS ||
	       m->reads - t->last_read > LT__IDLE_RECORDS;
}

static void recompute_gate(lt__merge_t *m)
{
	uint64_t gate = UINT64_MAX;
	for (size_t i = 0; i < m->nactive; i++) {
		const struct lt__mthread *t = m->active[i];
		if (is_idle(m, t) || !t->has_events)
			continue;
		if (t->frontier < gate)
			gate = t->frontier;
	}
	m->gate = gate;
	m->reads_since_gate = 0;
}

static char *copy_str(lt__str_t s)
{
	return strndup(s.ptr ? s.ptr : "", s.len);
}

/* The general path read a record: what lone_next() knew of the records
 * ahead no longer holds. */
static void decoder_moved(lt__merge_t *m)
{
	m->lone_run = 0;
	m->lone_stop = false;
	m->others_idle = false;
}

/* Notes a record of thread at epoch (saw()) and opens the slot its event
 * of type goes in, every payload field zero. Returns the slot, or NULL
 * with *rc set. */
static lt__event_t *begin_event(lt__merge_t *m, int type, uint64_t thread, uint64_t epoch,
				int *rc)
{
	*rc = saw(m, thread, epoch);
	if (*rc)
		return NULL;
	lt__event_t *ev = reserve_slot(m->cur, epoch); /* saw() looked it up */
	if (!ev) {
		*rc = -ENOMEM;
		return NULL;
	}
	ev->type = (uint8_t)type;
	ev->thread = thread;
	ev->epoch = epoch;
	ev->str = NULL;
	ev->stack_id = ev->size = ev->addr = ev->old_addr = 0;
	ev->after_thread = ev->after_free = 0;
	return ev;
}

/* Queues the event begin_event() opened. Returns 0 or -ENOMEM (it is then
 * not queued). */
static int end_event(lt__merge_t *m)
{
	struct lt__mthread *t = m->cur;
	t->q[t->tail & (t->cap - 1)].seq = m->seq++;
	int rc = commit_slot(m, t);
	if (rc)
		return rc;
	if (!t->has_events)
		starts_gating(m, t);
	return 0;
}

/* Reads one record from the decoder. Metadata is handed to the caller
 * (returns 1 with *out filled); events and positioned records are queued
 * (returns 0). Returns 0 at EOF too (setting m->eof), or a negative
 * errno. */
static int read_record(lt__merge_t *m, lt__merged_t *out)
{
	const lt__record_t *r;
	int rc = lt__decoder_next_ref(m->dec, &r);
	decoder_moved(m);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		m->eof = true;
		return 0;
	}
	m->reads_since_gate++;
	m->reads++;
	switch (r->type) {
	case LT_REC_ALLOC:
	case LT_REC_FREE:
	case LT_REC_REALLOC:
	case LT_REC_MARKER:
	case LT_REC_EXEC:
	case LT_REC_FORK:
	case LT_REC_THREAD_START:
		break;
	case LT_REC_THREAD_END:
		thread_ended(m, r->u.thread_end.thread);
		break;
	case LT_REC_AFTER:
		return 0; /* carried by the allocation that follows */
	case LT_REC_THREAD:
	case LT_REC_EPOCH:
		return saw(m, r->thread, r->epoch);
	case LT__REC_BLOCK:
		return 0;
	case LT__REC_SEGMENT:
		/* Everything before the switch happened before everything
		 * after it: drain the queues first (see lt__merge_next). */
		m->barrier = true;
		m->segment = *r;
		return 0;
	default:
		out->is_event = false;
		out->rec = *r;
		return 1;
	}
	lt__event_t *ev = begin_event(m, r->type, r->thread, r->epoch, &rc);
	if (!ev)
		return rc;
	switch (r->type) {
	case LT_REC_ALLOC:
	case LT_REC_FREE:
	case LT_REC_REALLOC:
		ev->stack_id = r->u.ev.stack_id;
		ev->size = r->u.ev.size;
		ev->addr = r->u.ev.addr;
		ev->old_addr = r->u.ev.old_addr;
		ev->after_thread = r->u.ev.after_thread;
		ev->after_free = r->u.ev.after_free;
		break;
	case LT_REC_MARKER:
	case LT_REC_EXEC:
		ev->str = copy_str(r->type == LT_REC_MARKER ? r->u.marker : r->u.exec);
		if (!ev->str)
			return -ENOMEM;
		break;
	case LT_REC_FORK:
		ev->addr = r->u.fork.child_pid;
		ev->size = r->u.fork.fork_seq;
		break;
	case LT_REC_THREAD_START:
		ev->addr = r->u.thread_start.thread;
		ev->size = r->u.thread_start.os_tid;
		ev->old_addr = r->u.thread_start.creator_plus1;
		break;
	case LT_REC_THREAD_END:
		ev->addr = r->u.thread_end.thread;
		break;
	default:
		break;
	}
	rc = end_event(m);
	if (rc)
		free(ev->str); /* the slot is not queued: its string is nobody's */
	return rc;
}

/* Queues the plain event p, the decoder's next record (lt__decoder_peek),
 * as read_record() would: without making a record of it first. Returns 0
 * or -ENOMEM. */
static int queue_plain(lt__merge_t *m, const lt__plain_t *p)
{
	decoder_moved(m);
	m->reads_since_gate++;
	m->reads++;
	int rc;
	lt__event_t *ev = begin_event(m, p->type, p->thread, p->epoch, &rc);
	if (!ev)
		return rc;
	ev->stack_id = p->stack_id;
	ev->size = p->size;
	ev->addr = p->addr;
	ev->old_addr = p->old_addr;
	rc = end_event(m);
	if (!rc)
		lt__decoder_skip(m->dec, 1);
	return rc;
}

/* read_record(), straight from the read-ahead's batch when it can. */
static int read_next(lt__merge_t *m, lt__merged_t *out)
{
	const lt__plain_t *p;
	if (lt__decoder_peek(m->dec, &p) && p->type >= 0)
		return queue_plain(m, p);
	return read_record(m, out);
}

/* ---- choosing -------------------------------------------------------- */

/* True when ev names a free (format.h, AFTER) that has not been emitted
 * yet. Free numbers are modulo 2^24: "not yet" is "ahead by less than
 * half the range". */
static bool waits_for_free(const lt__merge_t *m, const lt__event_t *ev)
{
	struct lt__mthread *t;
	HASH_FIND(hh, m->threads, &ev->after_thread, sizeof ev->after_thread, t);
	if (!t)
		return true; /* that thread has not shown up yet */
	uint64_t ahead = (ev->after_free - t->frees_done) & 0xffffff;
	return ahead != 0 && ahead < (1u << 23);
}

/* True when the causal rule says ev must wait for another thread. */
static bool blocked(const lt__merge_t *m, const lt__event_t *ev)
{
	if (ev->after_free && waits_for_free(m, ev))
		return true;
	switch (ev->type) {
	case LT_REC_ALLOC:
		return m->is_live(m->ctx, ev->addr);
	case LT_REC_FREE:
		return !m->is_live(m->ctx, ev->addr);
	case LT_REC_REALLOC:
		if (!m->is_live(m->ctx, ev->old_addr))
			return true;
		return ev->addr != ev->old_addr && m->is_live(m->ctx, ev->addr);
	default:
		return false;
	}
}

#define LT__CONFLICT_SCAN 64 /* heads compared for a same-address conflict */
#define LT__OWN_FREE_SCAN 1024 /* queued events searched for an own free */

/* True when t's queue, after its head, frees addr before allocating it
 * again: t allocates the block for itself and releases it. */
static bool frees_own(const struct lt__mthread *t, uint64_t addr)
{
	uint64_t n = t->tail - t->head;
	if (n > LT__OWN_FREE_SCAN)
		n = LT__OWN_FREE_SCAN;
	for (uint64_t i = 1; i < n; i++) {
		const lt__event_t *e = &t->q[(t->head + i) & (t->cap - 1)];
		if (e->type == LT__EV_TAKEN)
			continue;
		if ((e->type == LT_REC_FREE && e->addr == addr) ||
		    (e->type == LT_REC_REALLOC && e->old_addr == addr))
			return true;
		if ((e->type == LT_REC_ALLOC || e->type == LT_REC_REALLOC) &&
		    e->addr == addr)
			return false;
	}
	return false;
}

/* chosen's head allocates addr. When another head of the same epoch
 * allocates the same address too, only one of them can go first without a
 * dead end: prefer the thread that frees the block itself later (it cannot
 * be waiting for anyone), else keep chosen. A later epoch never goes
 * first: epochs are the ordering the trace is sure of. */
static struct lt__mthread *resolve_alloc_conflict(lt__merge_t *m,
						  struct lt__mthread *chosen)
{
	uint64_t addr = front(chosen)->addr;
	size_t n = m->nheap < LT__CONFLICT_SCAN ? m->nheap : LT__CONFLICT_SCAN;
	bool own_checked = false;
	for (size_t i = 0; i < n; i++) {
		struct lt__mthread *o = m->heap[i];
		const lt__event_t *h = front(o);
		if (o == chosen || h->addr != addr || h->epoch != front(chosen)->epoch ||
		    (h->type != LT_REC_ALLOC && h->type != LT_REC_REALLOC) ||
		    blocked(m, h))
			continue;
		/* A conflict (rare): only now is scanning queues worth it. */
		if (!own_checked) {
			if (frees_own(chosen, addr))
				return chosen;
			own_checked = true;
		}
		if (frees_own(o, addr))
			return o;
	}
	return chosen;
}

/* The first thread, in (epoch, seq) order among heads within the window
 * of the oldest head, whose head is not blocked; NULL if there is none. */
static struct lt__mthread *pick(lt__merge_t *m)
{
	/* One thread alone: nobody else can unblock its head, so asking is
	 * wasted (a free of a dead block is the replay's to repair). */
	if (m->nheap == 1 && m->ngating <= 1)
		return m->heap[0];
	/* Whole epochs of slack (the default) compare without division. */
	bool whole = m->slack == (double)(uint64_t)m->slack;
	uint64_t elimit = front(m->heap[0])->epoch + (uint64_t)m->slack;
	double limit = whole ? 0 : place(m->heap[0]) + m->slack;
	struct lt__mthread *chosen = NULL;
	size_t npopped = 0;
	while (m->nheap > 0 && (whole ? front(m->heap[0])->epoch <= elimit
				      : place(m->heap[0]) <= limit)) {
		if (!blocked(m, front(m->heap[0]))) {
			chosen = m->heap[0];
			break;
		}
		m->popped[npopped++] = heap_pop(m);
	}
	/* Pushing back cannot fail: the heap had room for them. */
	for (size_t i = 0; i < npopped; i++) {
		m->heap[m->nheap] = m->popped[i];
		sift_up(m, m->nheap++);
	}
	if (chosen && m->nheap > 1 &&
	    (front(chosen)->type == LT_REC_ALLOC || front(chosen)->type == LT_REC_REALLOC))
		chosen = resolve_alloc_conflict(m, chosen);
	return chosen;
}

/* ---- per-address plans -------------------------------------------- */

static bool is_event(int type)
{
	return type == LT_REC_ALLOC || type == LT_REC_FREE || type == LT_REC_REALLOC;
}

/* Whether every queued event of epoch e, from every thread, passes the
 * order's separation check (order.h): then the epoch is separate without
 * a plan. Sets batch_left as start_batch() counts it. */
static bool batch_checks_separate(lt__merge_t *m, uint64_t e)
{
	if (lt__order_check_start(m->order))
		return false;
	uint64_t left = 0;
	for (size_t h = 0; h < m->nheap; h++) {
		struct lt__mthread *t = m->heap[h];
		uint64_t k = 0;
		for (uint64_t i = t->head; i != t->tail && k < LT__BATCH_MAX; i++) {
			const lt__event_t *ev = &t->q[i & (t->cap - 1)];
			if (ev->type == LT__EV_TAKEN)
				continue;
			if (ev->epoch != e)
				break;
			/* The check asks is_live about addresses it has not
			 * seen: start loading them early. */
			if (m->prefetch && t->tail - i > LT__PREFETCH_AHEAD)
				m->prefetch(m->ctx,
					    t->q[(i + LT__PREFETCH_AHEAD) & (t->cap - 1)].addr);
			if (!lt__order_check(m->order, (uint32_t)h, ev, m->is_live, m->ctx))
				return false;
			k++;
			left++;
		}
	}
	m->batch_left = left;
	return true;
}

/* Plans the oldest epoch among the heads: every queued event of it, from
 * every thread. Returns 0 or -ENOMEM. */
static void start_batch(lt__merge_t *m)
{
	uint64_t e = front(m->heap[0])->epoch;
	if (e != m->batch_epoch)
		m->stalls = 0;
	m->batch_epoch = e;
	/* Most epochs of threads that keep to their own blocks check as
	 * separate, and a plan would say only that. Where the check keeps
	 * failing (threads freeing each other's blocks), it is tried less
	 * often: a failed check is pure cost. */
	if (m->check_skip > 0) {
		m->check_skip--;
	} else if (batch_checks_separate(m, e)) {
		m->check_backoff = 0;
		m->stats.checked_separate++;
		m->batch_separate = true;
		m->batch_active = m->batch_left > 0;
		return;
	} else {
		m->check_backoff = m->check_backoff ? m->check_backoff * 2 : 1;
		if (m->check_backoff > LT__CHECK_BACKOFF_MAX)
			m->check_backoff = LT__CHECK_BACKOFF_MAX;
		m->check_skip = m->check_backoff;
	}
	lt__order_reset(m->order);
	m->batch_left = 0;
	bool all_planned = true;
	for (size_t h = 0; h < m->nheap; h++) {
		struct lt__mthread *t = m->heap[h];
		/* One pass over the queue (it is big: whole epochs): each
		 * event is added at place k, and the thread's places are
		 * divided by their count at the end. */
		uint32_t mark = lt__order_mark(m->order);
		uint64_t k = 0;
		for (uint64_t i = t->head; i != t->tail && k < LT__BATCH_MAX; i++) {
			lt__event_t *ev = &t->q[i & (t->cap - 1)];
			if (ev->type == LT__EV_TAKEN)
				continue;
			if (ev->epoch != e)
				break;
			ev->plan_id = lt__order_add(m->order, (uint32_t)h, ev, (double)k++,
						    ev->free_no);
			m->batch_left++;
			if (ev->plan_id == LT__ORDER_NONE) {
				all_planned &= !is_event(ev->type);
				continue;
			}
			if (ev->plan_id >= m->plan_cap) {
				uint32_t ncap = m->plan_cap ? m->plan_cap * 2 : 1024;
				while (ncap <= ev->plan_id)
					ncap *= 2;
				lt__event_t **ps = realloc(m->plan_slot, ncap * sizeof *ps);
				if (ps)
					m->plan_slot = ps;
				struct lt__mthread **pt = realloc(m->plan_thread, ncap * sizeof *pt);
				if (pt)
					m->plan_thread = pt;
				if (!ps || !pt) {
					ev->plan_id = LT__ORDER_NONE; /* no room: causal rule */
					all_planned = false;
					continue;
				}
				m->plan_cap = ncap;
			}
			m->plan_slot[ev->plan_id] = ev;
			m->plan_thread[ev->plan_id] = t;
		}
		lt__order_scale_places(m->order, mark, k);
	}
	uint64_t unplanned = lt__order_solve(m->order, m->is_live, m->ctx);
	m->stats.unplanned += unplanned;
	m->batch_separate = all_planned && unplanned == 0 && lt__order_separate(m->order);
	m->batch_active = m->batch_left > 0;
}

/* Whether ev may go now: its turn at every address it touches, or for an
 * event without a plan, the causal rule. */
static bool batch_ready(const lt__merge_t *m, const lt__event_t *ev)
{
	if (!is_event(ev->type))
		return true;
	int r = lt__order_ready(m->order, ev->plan_id);
	return r < 0 ? !blocked(m, ev) : r == 1;
}

/* The head of the batch epoch whose turn it is, oldest place first. */
static struct lt__mthread *pick_batch(lt__merge_t *m)
{
	struct lt__mthread *chosen = NULL;
	size_t npopped = 0;
	while (m->nheap > 0 && front(m->heap[0])->epoch == m->batch_epoch) {
		if (batch_ready(m, front(m->heap[0]))) {
			chosen = m->heap[0];
			break;
		}
		m->popped[npopped++] = heap_pop(m);
	}
	for (size_t i = 0; i < npopped; i++) {
		m->heap[m->nheap] = m->popped[i];
		sift_up(m, m->nheap++);
	}
	return chosen;
}

#define LT__BLOCKER_CHAIN 64 /* blockers followed from the oldest head */

/* When no head's turn has come, the event that has to go first is found by
 * following blockers from the oldest head: the event whose turn it is at
 * the address the head waits on, then the one that event waits on... The
 * plan keeps each thread's order for one address, so the event found may
 * pass others of its thread (other addresses), but never a positioned
 * record. Returns true with *ev taken out of its queue. */
static bool take_ahead(lt__merge_t *m, lt__event_t *ev)
{
	uint32_t id = front(m->heap[0])->plan_id;
	for (int depth = 0; depth < LT__BLOCKER_CHAIN; depth++) {
		id = lt__order_blocker(m->order, id);
		if (id == LT__ORDER_NONE)
			return false;
		if (lt__order_ready(m->order, id) != 1)
			continue;
		struct lt__mthread *t = m->plan_thread[id];
		lt__event_t *e = m->plan_slot[id];
		if (e == front(t)) {
			dequeue(m, t, ev);
			return true;
		}
		for (uint64_t i = t->head; &t->q[i & (t->cap - 1)] != e; i++)
			if (!is_event(t->q[i & (t->cap - 1)].type) &&
			    t->q[i & (t->cap - 1)].type != LT__EV_TAKEN)
				return false; /* behind a marker: it cannot pass */
		*ev = *e;
		e->type = LT__EV_TAKEN;
		e->str = NULL;
		m->buffered--;
		if (ev->type != LT_REC_ALLOC)
			t->frees_done++;
		m->stats.taken_ahead++;
		return true;
	}
	return false;
}

/* Emits the next event of the batch into *ev and returns true. Returns
 * false when it stalls on an event without a plan: the address has no
 * order within this epoch (an event drained late, or stamped with a later
 * epoch than it happened in), which the causal rule across the window may
 * still sort out. */
static bool next_of_batch(lt__merge_t *m, lt__event_t *ev)
{
	if (m->batch_separate) {
		/* pick_batch() would find the oldest head ready, and nothing
		 * reads the plan's turns afterwards: skip asking. */
		dequeue(m, m->heap[0], ev);
		ev->forced = false;
		if (--m->batch_left == 0 || m->nheap == 0 ||
		    front(m->heap[0])->epoch != m->batch_epoch)
			m->batch_active = false;
		return true;
	}
	struct lt__mthread *t = pick_batch(m);
	if (t) {
		dequeue(m, t, ev);
		ev->forced = false;
	} else if (take_ahead(m, ev)) {
		ev->forced = false;
	} else if (lt__order_ready(m->order, front(m->heap[0])->plan_id) < 0) {
		/* The oldest head has no plan: let the causal rule handle it. */
		return false;
	} else {
		/* A cycle (a realloc's two addresses planned apart): the
		 * oldest head goes out of turn, the replay repairs. */
		dequeue(m, m->heap[0], ev);
		ev->forced = true;
		m->stats.forced++;
	}
	lt__order_emitted(m->order, ev->plan_id);
	if (--m->batch_left == 0 || m->nheap == 0 ||
	    front(m->heap[0])->epoch != m->batch_epoch)
		m->batch_active = false;
	return true;
}

/* ---- a thread alone ------------------------------------------------- */

/* Notes k plain events of t at epoch read from the read-ahead and emitted
 * at once, frees of them FREEs or REALLOCs: what saw(), commit_slot() and
 * dequeue() would have counted had they been queued. */
static void count_plain(lt__merge_t *m, struct lt__mthread *t, uint64_t epoch, size_t k,
			uint64_t frees)
{
	t->frees_enqueued += frees;
	t->frees_done += frees;
	m->seq += k;
	m->reads += k;
	m->reads_since_gate += k;
	if (epoch > t->frontier)
		t->frontier = epoch;
	t->last_read = m->reads;
	if (epoch > m->max_seen)
		m->max_seen = epoch;
	m->emitted += k;
	m->lone_run -= k;
	lt__decoder_skip(m->dec, k);
}

/* Emits the plain event p (the decoder's next record: ALLOC, FREE or
 * REALLOC) of t, which has nothing queued. */
static void emit_plain(lt__merge_t *m, struct lt__mthread *t, const lt__plain_t *p,
		       lt__event_t *ev)
{
	bool free = p->type != LT_REC_ALLOC;
	ev->type = (uint8_t)p->type;
	ev->thread = p->thread;
	ev->epoch = p->epoch;
	ev->seq = m->seq;
	ev->stack_id = p->stack_id;
	ev->size = p->size;
	ev->addr = p->addr;
	ev->old_addr = p->old_addr;
	ev->after_thread = ev->after_free = 0;
	ev->str = NULL;
	ev->free_no = free ? (uint32_t)(t->frees_enqueued + 1) : 0;
	ev->run_index = 0;
	ev->plan_id = LT__ORDER_NONE;
	ev->forced = false;
	count_plain(m, t, p->epoch, 1, free);
}

/* Extends m->lone_run over the n records at p (lt__decoder_peek) when it
 * is short, by a stretch at a time: records are read soon after they
 * are scanned, while they are still in cache. */
static void lone_scan(lt__merge_t *m, const struct lt__mthread *t, const lt__plain_t *p,
		      size_t n)
{
	if (m->lone_thread != t->index) {
		m->lone_thread = t->index;
		m->lone_run = 0;
		m->lone_stop = false;
	}
	if (m->lone_run > LT__LONE_LOOKAHEAD || m->lone_stop)
		return;
	size_t i = m->lone_run;
	if (i < n) {
		size_t stop = i + LT__LONE_SCAN < n ? i + LT__LONE_SCAN : n;
		while (i < stop && p[i].thread == t->index)
			i++;
		m->lone_run = i;
		m->lone_stop = i < stop;
		if (i < n || i > LT__LONE_LOOKAHEAD)
			return;
	}
	/* The batch ends within the lookahead: the next one, if decoded
	 * already, says whether the records after it are t's too. Without
	 * this, the last LT__LONE_LOOKAHEAD records of every batch would
	 * go through the queue. */
	const lt__plain_t *q;
	size_t nq = lt__decoder_peek_next(m->dec, &q);
	size_t j = i - n, need = LT__LONE_LOOKAHEAD + 1 - n;
	size_t stop = nq < need ? nq : need;
	while (j < stop && q[j].thread == t->index)
		j++;
	m->lone_run = n + j;
	m->lone_stop = j < stop;
}

/* The thread running alone when lone_next() may emit its events straight
 * from the read-ahead, else NULL. Alone: the only one with queued events,
 * and every other thread that has had events is idle (as the gate sees
 * it: a thread that is not is one the general path would wait for). */
static struct lt__mthread *lone_thread(lt__merge_t *m)
{
	struct lt__mthread *t = m->cur;
	if (m->nheap > 1 || m->batch_active || m->barrier || m->eof || !t ||
	    !t->has_events || t->active_pos < 0 || (m->nheap == 1 && m->heap[0] != t))
		return NULL;
	if (m->ngating > 1 && !m->others_idle) {
		/* Idle threads stay idle while only t's records are read;
		 * read_record() asks again after any other. A thread turns
		 * idle only as records are read: after a no, asking again
		 * waits for LT__LONE_RETRY more. */
		if (m->reads < m->lone_retry)
			return NULL;
		for (size_t i = 0; i < m->nactive; i++) {
			const struct lt__mthread *o = m->active[i];
			if (o != t && o->has_events && !is_idle(m, o)) {
				m->lone_retry = m->reads + LT__LONE_RETRY;
				return NULL;
			}
		}
		m->others_idle = true;
	}
	return t;
}

/* While one thread alone has events, the general path reads
 * LT__LONE_LOOKAHEAD records ahead of its next event, in case another
 * thread shows up late in the file, and emits its events in file order.
 * When the read-ahead has decoded the next LT__LONE_LOOKAHEAD records
 * already and they are all that thread's, reading them into its queue
 * first would change nothing: its queued events go out as they are, then
 * its events straight from the read-ahead's batch, and its other records
 * (metadata, epochs) through read_record() as they come. Returns 1 with
 * *out filled, 0 when the general path must run, or a negative errno. */
static int lone_next(lt__merge_t *m, lt__merged_t *out)
{
	for (;;) {
		struct lt__mthread *t = lone_thread(m);
		if (!t)
			return 0;
		const lt__plain_t *p = NULL;
		size_t n = lt__decoder_peek(m->dec, &p);
		lone_scan(m, t, p, n);
		uint64_t queued = t->tail - t->head;
		if (queued) {
			if (queued - 1 + m->lone_run < LT__LONE_LOOKAHEAD)
				return 0;
			dequeue(m, t, &out->ev);
			out->ev.forced = false;
			m->last_str = out->ev.str;
			m->emitted++;
			out->is_event = true;
			return 1;
		}
		if (m->lone_run <= LT__LONE_LOOKAHEAD || n == 0)
			return 0;
		if (p->type >= 0) {
			if (m->prefetch && n > LT__PREFETCH_AHEAD) {
				m->prefetch(m->ctx, p[LT__PREFETCH_AHEAD].addr);
				if (p[LT__PREFETCH_AHEAD].type == LT_REC_REALLOC)
					m->prefetch(m->ctx, p[LT__PREFETCH_AHEAD].old_addr);
			}
			emit_plain(m, t, p, &out->ev);
			out->is_event = true;
			return 1;
		}
		/* Any other record of the thread: as the general path reads
		 * it (metadata goes out at once, a positioned record is
		 * queued). */
		size_t run = m->lone_run - 1;
		bool stop = m->lone_stop, idle = m->others_idle;
		int rc = read_record(m, out);
		if (rc != 0)
			return rc;
		m->lone_run = run;
		m->lone_stop = stop;
		m->others_idle = idle; /* a record of t's wakes nobody */
	}
}

size_t lt__merge_plain_run(lt__merge_t *m, const lt__plain_t **events)
{
	struct lt__mthread *t = lone_thread(m);
	if (!t || t->tail != t->head)
		return 0;
	const lt__plain_t *p = NULL;
	size_t n = lt__decoder_peek(m->dec, &p);
	lone_scan(m, t, p, n);
	if (m->lone_run <= LT__LONE_LOOKAHEAD)
		return 0;
	/* The run ends LT__PLAIN_AFTER records before the batch does. */
	size_t k = 0, max = m->lone_run - LT__LONE_LOOKAHEAD;
	if (max + LT__PLAIN_AFTER > n)
		max = n > LT__PLAIN_AFTER ? n - LT__PLAIN_AFTER : 0;
	while (k < max && p[k].type >= 0)
		k++;
	*events = p;
	return k;
}

void lt__merge_plain_done(lt__merge_t *m, const lt__plain_t *events, size_t k)
{
	/* The run has no record other than these events: all one epoch. */
	uint64_t frees = 0;
	for (size_t i = 0; i < k; i++)
		frees += events[i].type != LT_REC_ALLOC;
	count_plain(m, m->cur, events[k - 1].epoch, k, frees);
}

int lt__merge_next(lt__merge_t *m, lt__merged_t *out)
{
	free(m->last_str);
	m->last_str = NULL;
	int lone = lone_next(m, out);
	if (lone != 0)
		return lone;
	for (;;) {
		bool can_read = !m->eof && !m->barrier;
		if (m->batch_active) {
			if (next_of_batch(m, &out->ev)) {
				m->emitted++;
				out->is_event = true;
				m->last_str = out->ev.str;
				return 1;
			}
			/* Stalled: an address no order of this epoch explains
			 * (an event drained late, or stamped with a later epoch
			 * than it happened in). The causal rule across the
			 * window takes over for a while, then the rest of the
			 * epoch is planned again. */
			m->batch_active = false;
			m->plan_after = m->emitted + LT__REPLAN_AFTER;
			if (++m->stalls > LT__MAX_STALLS)
				m->plan_epoch = m->batch_epoch + 1;
		}
		if (can_read && m->nheap > 0 &&
		    m->gate <= front(m->heap[0])->epoch &&
		    m->reads_since_gate >= LT__GATE_EVERY)
			recompute_gate(m);
		/* A thread running alone is read ahead a little, not a whole
		 * epoch: enough for a thread that appears late in the file, and
		 * its queue stays in cache. */
		size_t ahead = m->ngating <= 1 ? LT__LONE_LOOKAHEAD : m->opts.max_buffered;
		if (can_read &&
		    (m->nheap == 0 || m->buffered < m->starve_until ||
		     (m->gate <= front(m->heap[0])->epoch && m->buffered < ahead &&
		      m->buffered < m->opts.max_buffered))) {
			int rc = read_next(m, out);
			if (rc != 0)
				return rc;
			continue;
		}
		if (m->nheap == 0) {
			if (m->barrier) {
				m->barrier = false;
				out->is_event = false;
				out->rec = m->segment;
				return 1;
			}
			return 0;
		}
		/* Several threads with queued events: emit the oldest epoch by
		 * per-address plan (one queue alone has nobody to wait for). */
		if (m->order && m->nheap > 1 && m->emitted >= m->plan_after &&
		    front(m->heap[0])->epoch >= m->plan_epoch) {
			start_batch(m);
			if (m->batch_active)
				continue;
		}
		struct lt__mthread *t = pick(m);
		if (!t) {
			/* Reading on only helps while some thread may still
			 * have unread events old enough to unblock a head. */
			uint64_t oldest = front(m->heap[0])->epoch;
			if (can_read && m->gate <= oldest + m->opts.window &&
			    m->reads_since_gate >= LT__GATE_EVERY)
				recompute_gate(m);
			if (can_read && m->buffered < m->opts.max_buffered &&
			    m->gate <= oldest + m->opts.window) {
				/* Every head waits: read further, the event that
				 * unblocks one may come later in the file. */
				m->starve_until = m->buffered + LT__STARVE_BATCH;
				if (m->starve_until > m->opts.max_buffered)
					m->starve_until = m->opts.max_buffered;
				int rc = read_next(m, out);
				if (rc != 0)
					return rc;
				continue;
			}
			t = m->heap[0];
			m->stats.forced++;
			dequeue(m, t, &out->ev);
			out->ev.forced = true;
		} else {
			dequeue(m, t, &out->ev);
			out->ev.forced = false;
		}
		m->starve_until = 0;
		m->emitted++;
		out->is_event = true;
		m->last_str = out->ev.str;
		return 1;
	}
}

int lt__merge_new(lt__merge_t **out, lt__decoder_t *d, lt__is_live_fn is_live,
		  void *ctx, const lt__merge_opts_t *opts)
{
	lt__merge_t *m = calloc(1, sizeof *m);
	*out = m;
	if (!m)
		return -ENOMEM;
	m->dec = d;
	m->is_live = is_live;
	m->ctx = ctx;
	if (opts)
		m->opts = *opts;
	if (!m->opts.window)
		m->opts.window = LT__DEFAULT_WINDOW;
	if (!m->opts.max_buffered)
		m->opts.max_buffered = LT__DEFAULT_MAX_BUFFERED;
	m->gate = UINT64_MAX;
	if (lt__order_new(&m->order)) {
		free(m);
		*out = NULL;
		return -ENOMEM;
	}
	m->slack = m->opts.slack > 0 ? m->opts.slack : (double)m->opts.window;
	return 0;
}

void lt__merge_set_prefetch(lt__merge_t *m, lt__prefetch_fn prefetch)
{
	m->prefetch = prefetch;
	lt__order_set_prefetch(m->order, prefetch);
}

void lt__merge_stats(const lt__merge_t *m, lt__merge_stats_t *stats)
{
	*stats = m->stats;
}

void lt__merge_free(lt__merge_t *m)
{
	if (!m)
		return;
	struct lt__mthread *t, *tmp;
	HASH_ITER(hh, m->threads, t, tmp)
	{
		for (uint64_t i = t->head; i != t->tail; i++)
			free(t->q[i & (t->cap - 1)].str);
		HASH_DEL(m->threads, t);
		free(t->q);
		free(t->runs);
		free(t);
	}
	lt__order_free(m->order);
	free(m->plan_slot);
	free(m->plan_thread);
	free(m->heap);
	free(m->popped);
	free(m->active);
	free(m->last_str);
	free(m);
}
