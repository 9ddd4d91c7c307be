/* SPDX-License-Identifier: MIT */
/* Replay of merged events into the live-block table and the totals. The
 * table is a custom open-addressing hash (linear probing, backward-shift
 * deletion) because millions of live blocks must not cost a malloc each. */
#define _GNU_SOURCE
#include "replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#define LT__TIME_RING 256 /* recent TIME records kept for epoch -> ns */
#define LT__PREFETCH_MIN_SLOTS (1u << 11) /* 64 KiB: smaller tables stay in L1 */
#define LT__SMALL_THREADS 256 /* thread indexes found without hashing */
#define LT__DEBT_EPOCHS 64 /* a debt older than this is not a reordering */

/* Per-thread state for heaptrack's "temporary allocation": the address the
 * thread allocated last, until its next free. */
struct lt__rthread {
	uint64_t index;
	uint64_t last_alloc;
	bool last_valid;
	UT_hash_handle hh;
};

/* When the merge had to force an event, the replay order around that
 * address was wrong, not the program. Two repairs keep the counts exact
 * once the missing event shows up:
 *  - an allocation over a live block frees that block now (its free is
 *    late in another thread's stream) and leaves a debt: the next free of
 *    the address that finds nothing live is that late free, absorbed;
 *  - a free of an address that is not live (and owes nothing) leaves a
 *    credit: the next allocation at that address is its block, allocated
 *    and freed at once. Credits left at the end are the unmatched frees.
 * Freeing early rather than keeping both blocks keeps the live table the
 * program's at every step, so one misordering does not cascade. */
struct lt__credit {
	uint64_t addr;
	uint64_t count;
	uint64_t epoch; /* of the last one added (debts) */
	UT_hash_handle hh;
};

struct lt__time_point {
	uint64_t epoch, ns;
};

struct lt__replay_s {
	/* Live table: slots with addr == 0 are empty; a live block at
	 * address 0 (only in hostile input) lives in zero_block. */
	lt__live_t *slots;
	uint64_t mask, used;
	unsigned shift; /* 64 - log2(mask + 1), for home_slot() */
	lt__live_t zero_block;
	bool zero_live;

	lt__agg_t agg;
	lt__totals_t totals;
	lt__modmaps_t modmaps;
	lt__pycodes_t pycodes; /* Python code objects the stacks' frames point at */
	lt__process_t process;
	lt__end_t end;
	lt__child_t *children;
	size_t nchildren, children_cap;

	struct lt__credit *credits, *debts;

	struct lt__rthread *threads, *cur_thread;
	/* Threads by index, for the first LT__SMALL_THREADS: the merge
	 * interleaves threads event by event, and the hash is slow. */
	struct lt__rthread *by_small_index[LT__SMALL_THREADS];
	uint64_t nthreads;

	struct lt__time_point times[LT__TIME_RING];
	uint64_t ntimes; /* total seen; ring index = n % LT__TIME_RING */
	bool peak_ns_known;
	uint64_t peak_ns, max_ns;
	int segments; /* fork parent prefixes read */
};

/* ---- live table -------------------------------------------------------- */

/* The home slot of addr in a table of 2^(64 - shift) slots: Fibonacci
 * hashing, whose top bits spread arithmetic progressions (what heap
 * addresses come in) evenly, at the cost of one multiply. */
static inline uint64_t home_slot(uint64_t addr, unsigned shift)
{
	return (addr * 0x9e3779b97f4a7c15ull) >> shift;
}

static int live_grow(lt__replay_t *r)
{
	uint64_t ncap = r->slots ? (r->mask + 1) * 2 : 1024;
	unsigned nshift = r->slots ? r->shift - 1 : 64 - 10;
	lt__live_t *n = calloc(ncap, sizeof *n);
	if (!n)
		return -ENOMEM;
	for (uint64_t i = 0; r->slots && i <= r->mask; i++) {
		if (!r->slots[i].addr)
			continue;
		uint64_t j = home_slot(r->slots[i].addr, nshift);
		while (n[j].addr)
			j = (j + 1) & (ncap - 1);
		n[j] = r->slots[i];
	}
	free(r->slots);
	r->slots = n;
	r->mask = ncap - 1;
	r->shift = nshift;
	return 0;
}

static lt__live_t *live_find(const lt__replay_t *r, uint64_t addr)
{
	if (addr == 0)
		return r->zero_live ? (lt__live_t *)&r->zero_block : NULL;
	if (!r->slots)
		return NULL;
	for (uint64_t j = home_slot(addr, r->shift);; j = (j + 1) & r->mask) {
		if (r->slots[j].addr == addr)
			return &r->slots[j];
		if (!r->slots[j].addr)
			return NULL;
	}
}

/* The slot of a non-zero addr: its live block, or the empty slot that ends
 * its probe chain (where an insert puts it). The table must exist. */
static lt__live_t *live_probe(const lt__replay_t *r, uint64_t addr)
{
	for (uint64_t j = home_slot(addr, r->shift);; j = (j + 1) & r->mask)
		if (r->slots[j].addr == addr || !r->slots[j].addr)
			return &r->slots[j];
}

/* Inserts a block whose address is not live. at, when non-NULL, is
 * live_probe()'s empty slot for it, saving a second probe. Returns 0 or
 * -ENOMEM. */
static int live_insert(lt__replay_t *r, const lt__live_t *b, lt__live_t *at)
{
	if (b->addr == 0) {
		r->zero_block = *b;
		r->zero_live = true;
		return 0;
	}
	if (!r->slots || (r->used + 1) * 2 > r->mask + 1) { /* load <= 1/2: short chains */
		int rc = live_grow(r);
		if (rc)
			return rc;
		at = NULL; /* the table moved */
	}
	if (!at)
		at = live_probe(r, b->addr);
	*at = *b;
	r->used++;
	return 0;
}

/* Removes the live block at slot b (from live_find). */
static void live_remove(lt__replay_t *r, lt__live_t *b)
{
	if (b == &r->zero_block) {
		r->zero_live = false;
		return;
	}
	uint64_t i = (uint64_t)(b - r->slots);
	/* Backward-shift deletion keeps probe chains intact without
	 * tombstones: move later entries of the chain into the hole when
	 * their home slot is not between the hole and them. */
	uint64_t j = i;
	for (;;) {
		j = (j + 1) & r->mask;
		if (!r->slots[j].addr)
			break;
		uint64_t home = home_slot(r->slots[j].addr, r->shift);
		if (((j - home) & r->mask) >= ((j - i) & r->mask)) {
			r->slots[i] = r->slots[j];
			i = j;
		}
	}
	r->slots[i].addr = 0;
	r->used--;
}

static inline void prefetch_slot(const lt__replay_t *r, uint64_t addr)
{
	if (r->mask + 1 >= LT__PREFETCH_MIN_SLOTS)
		__builtin_prefetch(&r->slots[home_slot(addr, r->shift)], 1);
}

void lt__replay_prefetch(void *replay, uint64_t addr)
{
	prefetch_slot(replay, addr);
}

const lt__live_t *lt__replay_find(const lt__replay_t *r, uint64_t addr)
{
	return live_find(r, addr);
}

bool lt__replay_is_live(void *replay, uint64_t addr)
{
	return live_find(replay, addr) != NULL;
}

void lt__replay_drop_live(lt__replay_t *r)
{
	free(r->slots);
	r->slots = NULL;
	r->mask = r->used = 0;
	r->shift = 0;
	r->zero_live = false;
}

void lt__replay_each_live(const lt__replay_t *r,
			  void (*fn)(void *ctx, const lt__live_t *b), void *ctx)
{
	if (r->zero_live)
		fn(ctx, &r->zero_block);
	for (uint64_t i = 0; r->slots && i <= r->mask; i++)
		if (r->slots[i].addr)
			fn(ctx, &r->slots[i]);
}

/* ---- events ------------------------------------------------------------ */

static struct lt__rthread *rthread(lt__replay_t *r, uint64_t index)
{
	if (r->cur_thread && r->cur_thread->index == index)
		return r->cur_thread;
	struct lt__rthread *t = NULL;
	if (index < LT__SMALL_THREADS)
		t = r->by_small_index[index];
	if (t) {
		r->cur_thread = t;
		return t;
	}
	HASH_FIND(hh, r->threads, &index, sizeof index, t);
	if (!t) {
		t = calloc(1, sizeof *t);
		if (!t)
			return NULL;
		t->index = index;
		HASH_ADD(hh, r->threads, index, sizeof t->index, t);
		if (index < LT__SMALL_THREADS)
			r->by_small_index[index] = t;
		/* Index 0 is the writer's own pseudo-thread (markers from a
		 * snapshot signal), not one of the program's. */
		r->nthreads += index != 0;
	}
	r->cur_thread = t;
	return t;
}

static bool time_at(const lt__replay_t *r, uint64_t epoch, uint64_t *ns)
{
	uint64_t n = r->ntimes < LT__TIME_RING ? r->ntimes : LT__TIME_RING;
	const struct lt__time_point *oldest = NULL;
	for (uint64_t k = 1; k <= n; k++) {
		const struct lt__time_point *p = &r->times[(r->ntimes - k) % LT__TIME_RING];
		if (p->epoch <= epoch) {
			*ns = p->ns;
			return true;
		}
		oldest = p;
	}
	if (oldest && r->ntimes > LT__TIME_RING) {
		*ns = oldest->ns; /* older than the ring: the best we know */
		return true;
	}
	if (epoch == 0) {
		/* The shim's epoch starts at 0 with the process and its first
		 * TIME record is for epoch 1: epoch 0 is the first moments of
		 * the run, and its start (0 ns) the earliest time known. */
		*ns = 0;
		return true;
	}
	return false;
}

/* Adds one to the count of addr in table *tab, at epoch. Returns 0 or
 * -ENOMEM. */
static int tally_add(struct lt__credit **tab, uint64_t addr, uint64_t epoch)
{
	struct lt__credit *c;
	HASH_FIND(hh, *tab, &addr, sizeof addr, c);
	if (!c) {
		c = calloc(1, sizeof *c);
		if (!c)
			return -ENOMEM;
		c->addr = addr;
		HASH_ADD(hh, *tab, addr, sizeof c->addr, c);
	}
	c->count++;
	c->epoch = epoch;
	return 0;
}

/* Takes one from the count of addr, when its last one was added at
 * min_epoch or later; false when it has none (that recent). */
static bool tally_take(struct lt__credit **tab, uint64_t addr, uint64_t min_epoch)
{
	struct lt__credit *c;
	if (!*tab)
		return false;
	HASH_FIND(hh, *tab, &addr, sizeof addr, c);
	if (!c || c->epoch < min_epoch)
		return false;
	if (--c->count == 0) {
		HASH_DEL(*tab, c);
		free(c);
	}
	return true;
}

static int add_credit(lt__replay_t *r, uint64_t addr)
{
	r->totals.unmatched_frees++;
	return tally_add(&r->credits, addr, 0);
}

/* Takes a credit for addr; returns false when there is none. */
static bool take_credit(lt__replay_t *r, uint64_t addr)
{
	if (!tally_take(&r->credits, addr, 0))
		return false;
	r->totals.unmatched_frees--;
	r->totals.early_frees++;
	return true;
}

/* Frees the live block at addr by thread t in epoch; a free of an address
 * that is not live leaves a credit. by_realloc: the free half of a
 * realloc, whose data lives on and so is never a temporary allocation.
 * Returns 0 or -ENOMEM. */
static inline int free_block(lt__replay_t *r, struct lt__rthread *t, uint64_t addr,
			     bool by_realloc, uint64_t epoch)
{
	/* A recent debt at addr: the merge put an allocation there before
	 * the free of the block it replaced, which this most likely is.
	 * Freeing the live (newer) block instead would lose it, a real leak
	 * among them. An old debt is more likely a free the trace never
	 * had (memory freed behind the allocator's back): the live block
	 * goes first then. */
	if (__builtin_expect(r->debts != NULL, 0) &&
	    tally_take(&r->debts, addr, epoch > LT__DEBT_EPOCHS ? epoch - LT__DEBT_EPOCHS : 0)) {
		t->last_valid = false;
		r->totals.late_frees++;
		return 0;
	}
	lt__live_t *b = live_find(r, addr);
	bool temporary = !by_realloc && t->last_valid && t->last_alloc == addr && b &&
			 b->thread == (uint32_t)t->index;
	t->last_valid = false;
	if (!b) {
		if (tally_take(&r->debts, addr, 0)) {
			r->totals.late_frees++; /* counted when its block was dropped */
			return 0;
		}
		return add_credit(r, addr);
	}
	r->totals.frees++;
	r->totals.bytes_freed += b->size;
	r->totals.current_bytes -= b->size;
	r->totals.current_blocks--;
	if (temporary)
		r->totals.temporary++;
	lt__agg_free(&r->agg, b->site, b->size, temporary);
	live_remove(r, b);
	return 0;
}

/* An allocation of size bytes at addr from stack_id by thread t, in
 * epoch. */
static inline int alloc_at(lt__replay_t *r, struct lt__rthread *t, uint64_t addr,
			   uint64_t size, uint64_t stack_id, uint64_t epoch)
{
	long site = lt__agg_site(&r->agg, stack_id);
	if (site < 0)
		return (int)site;
	r->totals.allocations++;
	r->totals.bytes_allocated += size;
	if (take_credit(r, addr)) {
		/* Its free was replayed already: allocated and freed now. */
		t->last_valid = false;
		lt__agg_alloc(&r->agg, (uint32_t)site, size);
		lt__agg_free(&r->agg, (uint32_t)site, size, false);
		r->totals.frees++;
		r->totals.bytes_freed += size;
		return 0;
	}
	lt__live_t *at = addr && r->slots ? live_probe(r, addr) : NULL;
	lt__live_t *old = at ? (at->addr ? at : NULL) : live_find(r, addr);
	if (old) {
		at = NULL; /* the removal below shifts the chain */
		/* The merge could not find the free of the block that was
		 * here in time: free it now, and absorb that free when it
		 * comes (a debt). */
		r->totals.overlapping_allocs++;
		r->totals.frees++;
		r->totals.bytes_freed += old->size;
		r->totals.current_bytes -= old->size;
		r->totals.current_blocks--;
		lt__agg_free(&r->agg, old->site, old->size, false);
		live_remove(r, old);
		int rc = tally_add(&r->debts, addr, epoch);
		if (rc)
			return rc;
	}
	lt__live_t b = {.addr = addr, .size = size,
			.site = (uint32_t)site, .thread = (uint32_t)t->index};
	int rc = live_insert(r, &b, at);
	if (rc)
		return rc;
	r->totals.current_bytes += size;
	r->totals.current_blocks++;
	lt__agg_alloc(&r->agg, (uint32_t)site, size);
	t->last_alloc = addr;
	t->last_valid = true;
	if (r->totals.current_bytes > r->totals.peak_bytes) {
		r->totals.peak_bytes = r->totals.current_bytes;
		r->totals.peak_blocks = r->totals.current_blocks;
		r->totals.peak_epoch = epoch;
		r->peak_ns_known = time_at(r, epoch, &r->peak_ns);
		lt__agg_new_peak(&r->agg);
	}
	return 0;
}

/* An ALLOC, FREE or REALLOC of thread t (type, and the fields of
 * lt__event_t and lt__plain_t that type uses). */
static inline int alloc_event(lt__replay_t *r, struct lt__rthread *t, int type, uint64_t addr,
			      uint64_t old_addr, uint64_t size, uint64_t stack_id,
			      uint64_t epoch)
{
	if (type == LT_REC_FREE)
		return free_block(r, t, addr, false, epoch);
	if (type == LT_REC_REALLOC) {
		/* One free of the old block plus one allocation (memcheck's
		 * count); realloc in place frees and reallocates the address. */
		int rc = free_block(r, t, old_addr, true, epoch);
		if (rc)
			return rc;
	}
	return alloc_at(r, t, addr, size, stack_id, epoch);
}

static int add_child(lt__replay_t *r, const lt__event_t *ev)
{
	if (r->nchildren == r->children_cap) {
		size_t ncap = r->children_cap ? r->children_cap * 2 : 8;
		lt__child_t *c = realloc(r->children, ncap * sizeof *c);
		if (!c)
			return -ENOMEM;
		r->children = c;
		r->children_cap = ncap;
	}
	lt__child_t *c = &r->children[r->nchildren];
	memset(c, 0, sizeof *c);
	if (ev->type == LT_REC_FORK) {
		c->pid = ev->addr;
		c->fork_seq = ev->size;
	} else {
		c->exec_path = strdup(ev->str ? ev->str : "");
		if (!c->exec_path)
			return -ENOMEM;
	}
	r->nchildren++;
	return 0;
}

static int apply_event(lt__replay_t *r, const lt__event_t *ev)
{
	/* Threads are counted by their allocation events: positioned records
	 * may sit in the stream of the thread that wrote them for another. */
	struct lt__rthread *t = NULL;
	if (ev->type == LT_REC_ALLOC || ev->type == LT_REC_FREE || ev->type == LT_REC_REALLOC) {
		t = rthread(r, ev->thread);
		if (!t)
			return -ENOMEM;
	}
	if (ev->epoch > r->totals.last_epoch)
		r->totals.last_epoch = ev->epoch;
	if (ev->forced)
		r->totals.forced++;
	switch (ev->type) {
	case LT_REC_ALLOC:
	case LT_REC_FREE:
	case LT_REC_REALLOC:
		return alloc_event(r, t, ev->type, ev->addr, ev->old_addr, ev->size, ev->stack_id,
				   ev->epoch);
	case LT_REC_MARKER:
		r->totals.markers++;
		return 0;
	case LT_REC_FORK:
	case LT_REC_EXEC:
		/* In a fork child's replay, the parent prefix's FORK records
		 * are the parent's other children, not this process's. */
		return add_child(r, ev);
	default:
		return 0;
	}
}

int lt__replay_plain(lt__replay_t *r, const lt__plain_t *ev, size_t n)
{
	/* One thread and one epoch (lt__merge_plain_run): as apply_event()
	 * would do for each, once. */
	struct lt__rthread *t = rthread(r, ev[0].thread);
	if (!t)
		return -ENOMEM;
	if (ev[0].epoch > r->totals.last_epoch)
		r->totals.last_epoch = ev[0].epoch;
	for (size_t i = 0; i < n; i++) {
		if (r->slots) { /* LT__PLAIN_AFTER records follow the run */
			const lt__plain_t *soon = &ev[i + LT__PLAIN_AFTER];
			prefetch_slot(r, soon->addr);
			if (soon->type == LT_REC_REALLOC)
				prefetch_slot(r, soon->old_addr);
		}
		int rc = alloc_event(r, t, ev[i].type, ev[i].addr, ev[i].old_addr, ev[i].size,
				     ev[i].stack_id, ev[i].epoch);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- metadata ---------------------------------------------------------- */

static void process_clear(lt__process_t *p)
{
	free(p->exe);
	for (uint64_t i = 0; p->argv && i < p->argc; i++)
		free(p->argv[i]);
	free(p->argv);
	free(p->parent_trace);
	memset(p, 0, sizeof *p);
}

static char *dup_str(lt__str_t s)
{
	return strndup(s.ptr ? s.ptr : "", s.len);
}

static int set_process(lt__replay_t *r, const lt__record_t *rec)
{
	bool inherited = r->segments > 0;
	process_clear(&r->process);
	lt__process_t *p = &r->process;
	p->known = true;
	p->inherited = inherited;
	p->pid = rec->u.process.pid;
	p->ppid = rec->u.process.ppid;
	p->start_unix_ns = rec->u.process.start_unix_ns;
	p->flags = rec->u.process.flags;
	p->fork_seq = rec->u.process.fork_seq;
	p->exe = dup_str(rec->u.process.exe);
	p->parent_trace = dup_str(rec->u.process.parent_trace);
	p->argv = calloc(rec->u.process.argc ? rec->u.process.argc : 1, sizeof *p->argv);
	if (!p->exe || !p->parent_trace || !p->argv)
		return -ENOMEM;
	for (uint64_t i = 0; i < rec->u.process.argc; i++) {
		p->argv[i] = dup_str(rec->u.process.argv[i]);
		if (!p->argv[i])
			return -ENOMEM;
		p->argc = i + 1;
	}
	return 0;
}

static void saw_ns(lt__replay_t *r, uint64_t ns)
{
	if (ns > r->max_ns)
		r->max_ns = ns;
}

/* A PYFRAMES record: the stack's Python frames, each with its code object
 * (written before it, format.h). Returns 0 or -ENOMEM. */
static int set_pyframes(lt__replay_t *r, const lt__record_t *rec)
{
	lt__pyframe_t frames[LT_MAX_PYDEPTH];
	uint32_t n = rec->u.pyframes.count;
	if (n > LT_MAX_PYDEPTH)
		n = LT_MAX_PYDEPTH; /* the decoder refuses more */
	for (uint32_t i = 0; i < n; i++) {
		frames[i].code_key = rec->u.pyframes.frames[i].code_key;
		frames[i].where = rec->u.pyframes.frames[i].where;
		frames[i].code = lt__pycodes_find(&r->pycodes, frames[i].code_key);
	}
	return lt__agg_set_pyframes(&r->agg, rec->u.pyframes.stack_id, n, frames);
}

static int apply_record(lt__replay_t *r, const lt__record_t *rec)
{
	switch (rec->type) {
	case LT_REC_PROCESS:
		return set_process(r, rec);
	case LT_REC_STACK:
		return lt__agg_set_stack(&r->agg, rec->u.stack.stack_id,
					 rec->u.stack.depth, rec->u.stack.frames,
					 lt__modmaps_current(&r->modmaps));
	case LT_REC_MODULES: {
		long rc = lt__modmaps_add(&r->modmaps, rec);
		return rc < 0 ? (int)rc : 0;
	}
	case LT_REC_PYCODE:
		return lt__pycodes_add(&r->pycodes, rec);
	case LT_REC_PYFRAMES:
		return set_pyframes(r, rec);
	case LT_REC_TIME: {
		struct lt__time_point *p = &r->times[r->ntimes++ % LT__TIME_RING];
		p->epoch = rec->u.time.epoch;
		p->ns = rec->u.time.ns;
		saw_ns(r, p->ns);
		return 0;
	}
	case LT_REC_RSS:
		saw_ns(r, rec->u.rss.ns);
		return 0;
	case LT_REC_END:
		r->end.seen = true;
		r->end.exit_kind = rec->u.end.exit_kind;
		r->end.exit_status = rec->u.end.exit_status;
		r->end.events = rec->u.end.events;
		r->end.allocs = rec->u.end.allocs;
		r->end.frees = rec->u.end.frees;
		r->end.stacks = rec->u.end.stacks;
		r->end.stack_overflows = rec->u.end.stack_overflows;
		r->end.ns = rec->u.end.ns;
		r->end.bytes_written = rec->u.end.bytes_written;
		r->end.lost_events = rec->u.end.lost_events;
		saw_ns(r, rec->u.end.ns);
		return 0;
	case LT__REC_SEGMENT:
		if (rec->u.segment.parent) {
			r->segments++;
		} else {
			/* Back in the child: the FORK/EXEC records seen so far
			 * were the parent's. */
			for (size_t i = 0; i < r->nchildren; i++)
				free(r->children[i].exec_path);
			r->nchildren = 0;
			r->end.seen = false;
		}
		return 0;
	default:
		return 0;
	}
}

int lt__replay_apply(lt__replay_t *r, const lt__merged_t *item)
{
	if (item->is_event)
		return apply_event(r, &item->ev);
	return apply_record(r, &item->rec);
}

/* ---- accessors --------------------------------------------------------- */

int lt__replay_new(lt__replay_t **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : -ENOMEM;
}

const lt__totals_t *lt__replay_totals(const lt__replay_t *r)
{
	return &r->totals;
}

lt__agg_t *lt__replay_agg(lt__replay_t *r)
{
	return &r->agg;
}

const lt__modmaps_t *lt__replay_modmaps(const lt__replay_t *r)
{
	return &r->modmaps;
}

const lt__process_t *lt__replay_process(const lt__replay_t *r)
{
	return &r->process;
}

const lt__end_t *lt__replay_end(const lt__replay_t *r)
{
	return &r->end;
}

void lt__replay_children(const lt__replay_t *r, const lt__child_t **children,
			 size_t *count)
{
	*children = r->children;
	*count = r->nchildren;
}

uint64_t lt__replay_threads(const lt__replay_t *r)
{
	return r->nthreads;
}

bool lt__replay_epoch_ns(const lt__replay_t *r, uint64_t epoch, uint64_t *ns)
{
	return time_at(r, epoch, ns);
}

bool lt__replay_peak_ns(const lt__replay_t *r, uint64_t *ns)
{
	*ns = r->peak_ns;
	return r->peak_ns_known;
}

uint64_t lt__replay_duration_ns(const lt__replay_t *r)
{
	return r->max_ns;
}

void lt__replay_free(lt__replay_t *r)
{
	if (!r)
		return;
	free(r->slots);
	lt__agg_free_all(&r->agg);
	lt__pycodes_free(&r->pycodes);
	lt__modmaps_free(&r->modmaps);
	process_clear(&r->process);
	for (size_t i = 0; i < r->nchildren; i++)
		free(r->children[i].exec_path);
	free(r->children);
	struct lt__rthread *t, *tmp;
	HASH_ITER(hh, r->threads, t, tmp)
	{
		HASH_DEL(r->threads, t);
		free(t);
	}
	struct lt__credit *c, *ctmp;
	HASH_ITER(hh, r->credits, c, ctmp)
	{
		HASH_DEL(r->credits, c);
		free(c);
	}
	HASH_ITER(hh, r->debts, c, ctmp)
	{
		HASH_DEL(r->debts, c);
		free(c);
	}
	free(r);
}
