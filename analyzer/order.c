/* SPDX-License-Identifier: MIT */
/* Per-address ordering of one epoch's events (see order.h). A realloc is a
 * free of its old address and an allocation of its new one, planned in the
 * two addresses' orders separately (in place: one "both" part). The search
 * is a depth-first search over the threads' queues of one address, tried in
 * estimated time order, memoized on queue positions, and bounded. */
#include "order.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "leaktrace/format.h"

#define LT__ORDER_MAX_STATES 20000 /* search states per address before giving up */
#define LT__ORDER_AFTER_SCAN 4096 /* AFTER constraints resolved in groups this small */
#define LT__ORDER_PREFETCH_AHEAD 16 /* parts between a prefetch and its lookup */
#define LT__CHECK_MIN_CAP (1u << 12) /* addresses table of the separation check */
#define LT__CHECK_MAX_CAP (1u << 18) /* bigger epochs are planned, not checked */

enum { PART_FREE = 0, PART_ALLOC = 1, PART_BOTH = 2 };

struct part {
	uint64_t addr;
	uint64_t thread_index; /* the trace's, for AFTER */
	uint64_t after_thread, after_free; /* allocation parts; 0 = none */
	uint64_t free_no; /* free parts: the thread's free number */
	double place;
	uint32_t thread; /* slot, for grouping */
	uint32_t seq; /* order of addition: thread order within a slot */
	uint32_t group;
	uint32_t event; /* its plan id */
	uint32_t rank; /* place in its address's order */
	int32_t need; /* index (in the group) of the free an AFTER names, -1 */
	uint8_t kind;
};

struct plan_event {
	uint32_t part[2];
	uint8_t nparts;
};

struct group {
	uint64_t addr;
	uint32_t first, n; /* range in o->sorted */
	uint32_t next; /* rank whose turn it is */
	bool solved;
};

/* An address the separation check has seen in the current epoch: valid
 * when stamp is the check's; who is its thread slot << 1 | its liveness
 * after the thread's parts so far. */
struct check_entry {
	uint64_t addr;
	uint32_t stamp;
	uint32_t who;
};

struct sort_key {
	uint64_t addr;
	uint32_t part;
};

struct lt__order_s {
	struct part *parts;
	uint32_t nparts, parts_cap;
	struct plan_event *events;
	uint32_t nevents, events_cap;
	uint32_t *sorted; /* part indexes by (addr, seq) */
	uint32_t sorted_cap;
	uint32_t *by_rank; /* group's first + rank -> part index */
	uint32_t by_rank_cap;
	struct group *groups;
	uint32_t ngroups, groups_cap;
	/* search scratch */
	uint32_t *qstart, *qlen, *qpos, *order, *choice;
	uint32_t scratch_cap; /* of qstart */
	uint32_t others_cap; /* of qlen, qpos, order and choice */
	/* sort scratch: (address, part index) pairs, twice */
	struct sort_key *keys, *keys_tmp;
	uint32_t keys_cap;
	uint64_t *seen;
	uint32_t seen_cap; /* the table in use (allocated may be larger) */
	bool one_thread_each; /* every address solved so far is one thread's */
	lt__order_prefetch_fn prefetch; /* NULL: none */
	uint8_t *placed; /* greedy()'s: which parts of the group went */
	uint32_t placed_cap;
	/* The separation check (lt__order_check): an open-addressing table
	 * of the epoch's addresses, emptied by moving to a new stamp. */
	struct check_entry *check;
	uint32_t check_cap, check_used, check_stamp;
	uint32_t check_want; /* capacity for the next check (grown on overflow) */
};

static int grow(void **v, uint32_t *cap, uint32_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	uint32_t ncap = *cap ? *cap : 64;
	while (ncap < need) {
		if (ncap > UINT32_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	void *n = realloc(*v, (size_t)ncap * size);
	if (!n)
		return -ENOMEM;
	*v = n;
	*cap = ncap;
	return 0;
}

int lt__order_new(lt__order_t **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : -ENOMEM;
}

void lt__order_free(lt__order_t *o)
{
	if (!o)
		return;
	free(o->parts);
	free(o->events);
	free(o->sorted);
	free(o->by_rank);
	free(o->groups);
	free(o->qstart);
	free(o->qlen);
	free(o->qpos);
	free(o->order);
	free(o->choice);
	free(o->seen);
	free(o->placed);
	free(o->check);
	free(o->keys);
	free(o->keys_tmp);
	free(o);
}

void lt__order_reset(lt__order_t *o)
{
	o->nparts = o->nevents = o->ngroups = 0;
}

static uint32_t add_part(lt__order_t *o, uint32_t thread, const lt__event_t *ev,
			 uint64_t addr, uint8_t kind, double place, uint64_t free_no)
{
	if (grow((void **)&o->parts, &o->parts_cap, o->nparts + 1, sizeof *o->parts))
		return LT__ORDER_NONE;
	struct part *p = &o->parts[o->nparts];
	memset(p, 0, sizeof *p);
	p->addr = addr;
	p->thread_index = ev->thread;
	p->thread = thread;
	p->seq = o->nparts;
	p->kind = kind;
	p->place = place;
	p->need = -1;
	p->event = o->nevents;
	if (kind != PART_FREE) {
		p->after_thread = ev->after_thread;
		p->after_free = ev->after_free;
	}
	if (kind != PART_ALLOC)
		p->free_no = free_no;
	return o->nparts++;
}

uint32_t lt__order_add(lt__order_t *o, uint32_t thread, const lt__event_t *ev,
		       double place, uint64_t free_no)
{
	if (grow((void **)&o->events, &o->events_cap, o->nevents + 1, sizeof *o->events))
		return LT__ORDER_NONE;
	struct plan_event *pe = &o->events[o->nevents];
	pe->nparts = 0;
	uint32_t a = LT__ORDER_NONE, b = LT__ORDER_NONE;
	switch (ev->type) {
	case LT_REC_ALLOC:
		a = add_part(o, thread, ev, ev->addr, PART_ALLOC, place, 0);
		break;
	case LT_REC_FREE:
		a = add_part(o, thread, ev, ev->addr, PART_FREE, place, free_no);
		break;
	case LT_REC_REALLOC:
		if (ev->addr == ev->old_addr) {
			a = add_part(o, thread, ev, ev->addr, PART_BOTH, place, free_no);
		} else {
			a = add_part(o, thread, ev, ev->old_addr, PART_FREE, place, free_no);
			b = add_part(o, thread, ev, ev->addr, PART_ALLOC, place, 0);
			if (b == LT__ORDER_NONE)
				return LT__ORDER_NONE;
		}
		break;
	default:
		return LT__ORDER_NONE;
	}
	if (a == LT__ORDER_NONE)
		return LT__ORDER_NONE;
	pe->part[pe->nparts++] = a;
	if (b != LT__ORDER_NONE)
		pe->part[pe->nparts++] = b;
	return o->nevents++;
}

/* Fills o->sorted with the part indexes ordered by (addr, seq). A part's
 * seq is its index, so this is a stable sort by address of 0..nparts-1:
 * an LSD radix sort, byte by byte, skipping the bytes in which no two
 * addresses differ (an epoch's addresses share their high bytes). Returns
 * 0 or -ENOMEM. */
static int sort_by_addr(lt__order_t *o)
{
	uint32_t n = o->nparts;
	if (o->keys_cap < n) {
		struct sort_key *k = realloc(o->keys, (size_t)n * sizeof *k);
		if (!k)
			return -ENOMEM;
		o->keys = k;
		k = realloc(o->keys_tmp, (size_t)n * sizeof *k);
		if (!k)
			return -ENOMEM;
		o->keys_tmp = k;
		o->keys_cap = n;
	}
	struct sort_key *src = o->keys, *dst = o->keys_tmp;
	uint64_t differ = 0;
	for (uint32_t i = 0; i < n; i++) {
		src[i].addr = o->parts[i].addr;
		src[i].part = i;
		differ |= src[i].addr ^ src[0].addr;
	}
	for (unsigned shift = 0; shift < 64; shift += 8) {
		if (!((differ >> shift) & 0xff))
			continue; /* every key has the same byte here */
		uint32_t count[256] = {0};
		for (uint32_t i = 0; i < n; i++)
			count[(src[i].addr >> shift) & 0xff]++;
		uint32_t at = 0;
		for (unsigned b = 0; b < 256; b++) {
			uint32_t c = count[b];
			count[b] = at;
			at += c;
		}
		for (uint32_t i = 0; i < n; i++)
			dst[count[(src[i].addr >> shift) & 0xff]++] = src[i];
		struct sort_key *t = src;
		src = dst;
		dst = t;
	}
	for (uint32_t i = 0; i < n; i++)
		o->sorted[i] = src[i].part;
	return 0;
}

/* Applies part p to the state live; false when the machine refuses it. */
static bool step(const struct part *p, bool *live)
{
	switch (p->kind) {
	case PART_FREE:
		if (!*live)
			return false;
		*live = false;
		return true;
	case PART_ALLOC:
		if (*live)
			return false;
		*live = true;
		return true;
	default:
		return *live;
	}
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

/* Inserts h into the seen set; false when it was there. */
static bool seen_insert(lt__order_t *o, uint64_t h, uint32_t *used)
{
	uint32_t mask = o->seen_cap - 1;
	h |= 1; /* 0 marks empty */
	for (uint32_t i = (uint32_t)(h >> 32) & mask;; i = (i + 1) & mask) {
		if (o->seen[i] == h)
			return false;
		if (o->seen[i] == 0) {
			o->seen[i] = h;
			(*used)++;
			return true;
		}
	}
}

/* The search's first descent (always the valid head with the earliest
 * place), without its memo table: most groups, a block one thread
 * allocates and another frees, need no more. On success sets every
 * part's rank, as the search would, and returns true. */
static bool greedy(lt__order_t *o, const uint32_t *idx, uint32_t n, uint32_t k, bool live)
{
	if (grow((void **)&o->placed, &o->placed_cap, n, sizeof *o->placed))
		return false;
	memset(o->placed, 0, n * sizeof *o->placed);
	uint32_t kk = k < 64 ? k : 64;
	for (uint32_t q = 0; q < k; q++)
		o->qpos[q] = 0;
	for (uint32_t d = 0; d < n; d++) {
		double best = 0;
		uint32_t bq = UINT32_MAX;
		for (uint32_t q = 0; q < kk; q++) {
			if (o->qpos[q] == o->qlen[q])
				continue;
			const struct part *p = &o->parts[idx[o->qstart[q] + o->qpos[q]]];
			bool l = live;
			if (!step(p, &l))
				continue;
			if (p->need >= 0 && !o->placed[p->need])
				continue;
			if (bq == UINT32_MAX || p->place < best) {
				best = p->place;
				bq = q;
			}
		}
		if (bq == UINT32_MAX)
			return false;
		uint32_t i = o->qstart[bq] + o->qpos[bq]++;
		step(&o->parts[idx[i]], &live);
		o->placed[i] = 1;
		o->parts[idx[i]].rank = d;
	}
	return true;
}

/* Finds an order for group g starting from live. Returns true and sets
 * every part's rank, or false. */
static bool solve_group(lt__order_t *o, struct group *g, bool live)
{
	uint32_t *idx = o->sorted + g->first;
	uint32_t n = g->n;
	/* The group's parts are sorted by seq, so each thread's parts are in
	 * its order; queues are the threads' subsequences. */
	if (grow((void **)&o->qstart, &o->scratch_cap, n + 1, sizeof *o->qstart))
		return false;
	uint32_t cap = o->scratch_cap;
	if (o->others_cap < cap) { /* rarely: most groups are small */
		uint32_t **arrays[] = {&o->qlen, &o->qpos, &o->order, &o->choice};
		for (size_t a = 0; a < sizeof arrays / sizeof *arrays; a++) {
			uint32_t *nv = realloc(*arrays[a], cap * sizeof *nv);
			if (!nv)
				return false;
			*arrays[a] = nv;
		}
		o->others_cap = cap;
	}

	/* Queues: parts of one thread slot, as index lists into idx. Built by
	 * a stable pass: threads appear in seq order, so a thread's parts are
	 * contiguous only if added thread by thread, which the merge does. */
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (i == 0 || o->parts[idx[i]].thread != o->parts[idx[i - 1]].thread) {
			o->qstart[k] = i;
			o->qlen[k] = 0;
			k++;
		}
		o->qlen[k - 1]++;
	}
	/* AFTER constraints: the part index (in idx) of the named free. */
	if (n <= LT__ORDER_AFTER_SCAN) {
		for (uint32_t i = 0; i < n; i++) {
			struct part *p = &o->parts[idx[i]];
			if (p->kind == PART_FREE || !p->after_free)
				continue;
			for (uint32_t j = 0; j < n; j++) {
				const struct part *f = &o->parts[idx[j]];
				if (f->kind != PART_ALLOC && f->thread_index == p->after_thread &&
				    (f->free_no & 0xffffff) == (p->after_free & 0xffffff)) {
					p->need = (int32_t)j;
					break;
				}
			}
		}
	}
	if (k > 1)
		o->one_thread_each = false;
	if (k == 1) {
		/* One thread: its own order, if the machine accepts it. */
		for (uint32_t i = 0; i < n; i++) {
			if (!step(&o->parts[idx[i]], &live))
				return false;
			o->parts[idx[i]].rank = i;
		}
		return true;
	}

	if (greedy(o, idx, n, k, live))
		return true;

	/* Depth-first search. choice[d] is how many candidates were tried at
	 * depth d; candidates are the valid queue heads by estimated place. */
	/* The memo table is sized by the group, not the bound: most groups
	 * are a handful of events. */
	uint32_t limit = n < LT__ORDER_MAX_STATES / 64 ? 64 * n + 64 : LT__ORDER_MAX_STATES;
	uint32_t seen_need = 1;
	while (seen_need < 2 * limit)
		seen_need *= 2;
	if (o->seen_cap < seen_need) {
		uint64_t *s = realloc(o->seen, seen_need * sizeof *s);
		if (!s)
			return false;
		o->seen = s;
	}
	o->seen_cap = seen_need;
	memset(o->seen, 0, seen_need * sizeof *o->seen);
	uint32_t used = 0;
	for (uint32_t q = 0; q < k; q++)
		o->qpos[q] = 0;
	uint32_t depth = 0;
	bool *placed = calloc(n, sizeof *placed);
	bool *live_at = malloc((n + 1) * sizeof *live_at);
	if (!placed || !live_at) {
		free(placed);
		free(live_at);
		return false;
	}
	live_at[0] = live;
	o->choice[0] = 0;
	bool ok = false;
	for (;;) {
		if (depth == n) {
			ok = true;
			break;
		}
		/* Memo: positions and state (only on first arrival). */
		if (o->choice[depth] == 0) {
			uint64_t h = live_at[depth];
			for (uint32_t q = 0; q < k; q++)
				h = mix(h, o->qpos[q]);
			if (used >= limit)
				break;
			if (!seen_insert(o, h, &used))
				goto backtrack;
		}
		/* The choice[depth]-th valid head in place order. */
		uint32_t want = o->choice[depth], found = UINT32_MAX, rankno = 0;
		bool taken[64];
		uint32_t kk = k < 64 ? k : 64;
		memset(taken, 0, sizeof taken);
		for (uint32_t c = 0; c <= want; c++) {
			double best = 0;
			uint32_t bq = UINT32_MAX;
			for (uint32_t q = 0; q < kk; q++) {
				if (taken[q] || o->qpos[q] == o->qlen[q])
					continue;
				const struct part *p = &o->parts[idx[o->qstart[q] + o->qpos[q]]];
				bool l = live_at[depth];
				if (!step(p, &l))
					continue;
				if (p->need >= 0 && !placed[p->need])
					continue;
				if (bq == UINT32_MAX || p->place < best) {
					best = p->place;
					bq = q;
				}
			}
			if (bq == UINT32_MAX)
				break;
			taken[bq] = true;
			if (c == want)
				found = bq;
		}
		(void)rankno;
		if (found == UINT32_MAX)
			goto backtrack;
		{
			uint32_t i = o->qstart[found] + o->qpos[found];
			bool l = live_at[depth];
			step(&o->parts[idx[i]], &l);
			o->order[depth] = found;
			placed[i] = true;
			o->qpos[found]++;
			depth++;
			live_at[depth] = l;
			o->choice[depth] = 0;
			continue;
		}
backtrack:
		if (depth == 0)
			break;
		depth--;
		{
			uint32_t q = o->order[depth];
			o->qpos[q]--;
			placed[o->qstart[q] + o->qpos[q]] = false;
		}
		o->choice[depth]++;
	}
	if (ok) {
		/* order[d] is the queue chosen at step d: replay it for ranks. */
		for (uint32_t q = 0; q < k; q++)
			o->qpos[q] = 0;
		for (uint32_t d = 0; d < n; d++) {
			uint32_t q = o->order[d];
			o->parts[idx[o->qstart[q] + o->qpos[q]++]].rank = d;
		}
	}
	free(placed);
	free(live_at);
	return ok;
}

uint64_t lt__order_solve(lt__order_t *o, lt__order_live_fn is_live, void *ctx)
{
	uint64_t failed = 0;
	o->ngroups = 0;
	o->one_thread_each = true;
	if (o->nparts == 0)
		return 0; /* only positioned records this epoch */
	if (grow((void **)&o->sorted, &o->sorted_cap, o->nparts, sizeof *o->sorted) ||
	    grow((void **)&o->by_rank, &o->by_rank_cap, o->nparts, sizeof *o->by_rank))
		return o->nparts;
	if (sort_by_addr(o))
		return o->nparts;
	o->ngroups = 0;
	for (uint32_t i = 0; i < o->nparts;) {
		uint32_t j = i;
		uint64_t addr = o->parts[o->sorted[i]].addr;
		/* is_live() below looks each address up in a table bigger than
		 * the caches: a few groups ahead, start loading. */
		if (o->prefetch && i + LT__ORDER_PREFETCH_AHEAD < o->nparts)
			o->prefetch(ctx, o->parts[o->sorted[i + LT__ORDER_PREFETCH_AHEAD]].addr);
		while (j < o->nparts && o->parts[o->sorted[j]].addr == addr)
			j++;
		if (grow((void **)&o->groups, &o->groups_cap, o->ngroups + 1, sizeof *o->groups))
			return o->nparts;
		struct group *g = &o->groups[o->ngroups];
		g->addr = addr;
		g->first = i;
		g->n = j - i;
		g->next = 0;
		for (uint32_t x = i; x < j; x++)
			o->parts[o->sorted[x]].group = o->ngroups;
		/* A block the replay holds live may really be gone (a forced
		 * event elsewhere): an order that starts by allocating is
		 * still the program's, and the replay frees the stale block
		 * then (a debt). The other way round, a free with no block
		 * may be waiting for an allocation stamped a later epoch:
		 * that is the causal rule's, across the window. */
		bool live = is_live(ctx, addr);
		g->solved = solve_group(o, g, live) || (live && solve_group(o, g, false));
		failed += !g->solved;
		if (g->solved)
			for (uint32_t x = i; x < j; x++)
				o->by_rank[i + o->parts[o->sorted[x]].rank] = o->sorted[x];
		o->ngroups++;
		i = j;
	}
	return failed;
}

/* ---- separation check ---------------------------------------------- */

int lt__order_check_start(lt__order_t *o)
{
	if (!o->check_want)
		o->check_want = LT__CHECK_MIN_CAP;
	if (o->check_cap < o->check_want) {
		struct check_entry *t = calloc(o->check_want, sizeof *t);
		if (!t)
			return -ENOMEM;
		free(o->check);
		o->check = t;
		o->check_cap = o->check_want;
		o->check_stamp = 0;
	}
	if (++o->check_stamp == 0) { /* wrapped: old stamps would match */
		memset(o->check, 0, (size_t)o->check_cap * sizeof *o->check);
		o->check_stamp = 1;
	}
	o->check_used = 0;
	return 0;
}

/* One part of thread slot `thread` at addr (kind as for a plan). False
 * when the address is another thread's this epoch, when the thread's own
 * order cannot be replayed from the replay's state (solve_group's rules
 * for a group of one thread), or when the table is full. */
static bool check_part(lt__order_t *o, uint32_t thread, uint64_t addr, uint8_t kind,
		       lt__order_live_fn is_live, void *ctx)
{
	uint32_t mask = o->check_cap - 1;
	/* Fibonacci hashing: the top bits of the product, spread well enough
	 * for one epoch's heap addresses. */
	uint32_t i = (uint32_t)((addr * 0x9e3779b97f4a7c15ull) >> 40) & mask;
	struct check_entry *e;
	for (;; i = (i + 1) & mask) {
		e = &o->check[i];
		if (e->stamp != o->check_stamp)
			break;
		if (e->addr == addr) {
			if (e->who >> 1 != thread)
				return false; /* two threads: it needs a plan */
			bool live = e->who & 1;
			if (!step(&(struct part){.kind = kind}, &live))
				return false; /* the thread's own order is refused */
			e->who = thread << 1 | live;
			return true;
		}
	}
	if (++o->check_used > o->check_cap / 2) {
		if (o->check_want < LT__CHECK_MAX_CAP)
			o->check_want = o->check_cap * 2;
		return false;
	}
	/* First part of addr this epoch: lt__order_solve() would start its
	 * group from the replay's state, and a live block whose group starts
	 * by allocating is solved from "not live" instead. */
	bool live = is_live(ctx, addr);
	if (live && kind == PART_ALLOC)
		live = false;
	if (!step(&(struct part){.kind = kind}, &live))
		return false;
	e->addr = addr;
	e->stamp = o->check_stamp;
	e->who = thread << 1 | live;
	return true;
}

bool lt__order_check(lt__order_t *o, uint32_t thread, const lt__event_t *ev,
		     lt__order_live_fn is_live, void *ctx)
{
	if (thread > UINT32_MAX >> 1)
		return false;
	switch (ev->type) {
	case LT_REC_ALLOC:
		return check_part(o, thread, ev->addr, PART_ALLOC, is_live, ctx);
	case LT_REC_FREE:
		return check_part(o, thread, ev->addr, PART_FREE, is_live, ctx);
	case LT_REC_REALLOC:
		if (ev->addr == ev->old_addr)
			return check_part(o, thread, ev->addr, PART_BOTH, is_live, ctx);
		return check_part(o, thread, ev->old_addr, PART_FREE, is_live, ctx) &&
		       check_part(o, thread, ev->addr, PART_ALLOC, is_live, ctx);
	default:
		return true; /* positioned records have no address */
	}
}

void lt__order_set_prefetch(lt__order_t *o, lt__order_prefetch_fn prefetch)
{
	o->prefetch = prefetch;
}

uint32_t lt__order_mark(const lt__order_t *o)
{
	return o->nparts;
}

void lt__order_scale_places(lt__order_t *o, uint32_t mark, uint64_t len)
{
	for (uint32_t i = mark; i < o->nparts; i++)
		o->parts[i].place /= (double)len;
}

bool lt__order_separate(const lt__order_t *o)
{
	return o->one_thread_each;
}

int lt__order_ready(const lt__order_t *o, uint32_t id)
{
	if (id == LT__ORDER_NONE || id >= o->nevents)
		return -1;
	const struct plan_event *pe = &o->events[id];
	for (uint8_t i = 0; i < pe->nparts; i++) {
		const struct part *p = &o->parts[pe->part[i]];
		const struct group *g = &o->groups[p->group];
		if (!g->solved)
			return -1;
		if (p->rank != g->next)
			return 0;
	}
	return 1;
}

void lt__order_emitted(lt__order_t *o, uint32_t id)
{
	if (id == LT__ORDER_NONE || id >= o->nevents)
		return;
	const struct plan_event *pe = &o->events[id];
	for (uint8_t i = 0; i < pe->nparts; i++) {
		const struct part *p = &o->parts[pe->part[i]];
		struct group *g = &o->groups[p->group];
		if (p->rank == g->next)
			g->next++;
		else
			g->solved = false; /* forced out of turn: plan broken */
	}
}

uint32_t lt__order_blocker(const lt__order_t *o, uint32_t id)
{
	if (id == LT__ORDER_NONE || id >= o->nevents)
		return LT__ORDER_NONE;
	const struct plan_event *pe = &o->events[id];
	for (uint8_t i = 0; i < pe->nparts; i++) {
		const struct part *p = &o->parts[pe->part[i]];
		const struct group *g = &o->groups[p->group];
		if (!g->solved || p->rank == g->next || g->next >= g->n)
			continue;
		return o->parts[o->by_rank[g->first + g->next]].event;
	}
	return LT__ORDER_NONE;
}
