/* SPDX-License-Identifier: MIT */
/* Stack capture (libunwind, or frame pointers on request) and the shared
 * insert-only table that gives each distinct stack a small id, so a stack
 * is written to the trace once and referred to by id afterwards. */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <string.h>

#include "shim.h"
#include "sys.h"

/*
 * The table. Stacks live in an append-only arena; `slots` is an open-
 * addressing hash index whose entries are stack ids (0 = empty), and
 * `offsets[id]` locates a stack in the arena. Nothing is ever removed, so
 * readers need no lock: an entry, once published in a slot, is immutable.
 *
 * Insertion: reserve arena space and an id (relaxed fetch_add: only
 * uniqueness matters), write the entry and offsets[id], then publish the id
 * with a release CAS on the empty slot. Lookups load slots with acquire,
 * which pairs with that CAS, so the entry is complete when seen. Two threads
 * inserting the same stack at once: one CAS wins, the loser finds the
 * winner's entry equal and uses its id; the loser's arena space and id are
 * wasted, harmlessly (the writer writes only ids that events use).
 */
#define LT_STACK_SLOTS (1u << 22) /* 4M slots, 16 MiB of address space */
#define LT_STACK_MAX_IDS (3u << 20) /* stop inserting at 75% load */
#define LT_STACK_ARENA (2ull << 30) /* at most 2 GiB reserved, touched as used */
#define LT_STACK_ARENA_MIN (16ull << 20) /* ~30k stacks of 64 frames */

struct stack_entry {
	uint64_t hash;
	uint32_t depth;
	uint32_t reserved;
	uint64_t frames[];
};

static _Atomic uint32_t *slots;
static uint64_t *offsets;
static unsigned char *arena;
static uint64_t arena_size; /* bytes reserved at arena */
static _Atomic uint64_t arena_top; /* relaxed: a bump pointer */
static _Atomic uint32_t next_id = 1; /* relaxed: ids only need uniqueness */
static _Atomic uint64_t overflows; /* relaxed: a statistic */

int lt__stacks_init(void)
{
	if (lt__config.depth == 0)
		return 0;
	slots = lt__sys_map(LT_STACK_SLOTS * sizeof *slots);
	offsets = lt__sys_map(LT_STACK_MAX_IDS * sizeof *offsets);
	/* Reserved address space counts against RLIMIT_AS even though it is
	 * never touched: under a limit take at most a sixteenth of it, and
	 * halve the request until the kernel agrees, down to a floor. */
	uint64_t want = LT_STACK_ARENA;
	struct rlimit rl;
	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		while (want > LT_STACK_ARENA_MIN && want > rl.rlim_cur / 16)
			want /= 2;
	for (; want >= LT_STACK_ARENA_MIN && slots && offsets; want /= 2)
		if ((arena = lt__sys_map(want)) != NULL)
			break;
	if (!slots || !offsets || !arena) {
		lt__sys_unmap(slots, LT_STACK_SLOTS * sizeof *slots);
		lt__sys_unmap(offsets, LT_STACK_MAX_IDS * sizeof *offsets);
		slots = NULL;
		offsets = NULL;
		return -ENOMEM;
	}
	arena_size = want;
	if (lt__config.unwinder != LT_UNWIND_FP)
		unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
	return lt__unwind_init();
}

uint64_t lt__stack_overflows(void)
{
	return atomic_load_explicit(&overflows, memory_order_relaxed);
}

const uint64_t *lt__stack_frames(uint32_t id, uint32_t *depth)
{
	const struct stack_entry *e = (const void *)(arena + offsets[id]);
	*depth = e->depth;
	return e->frames;
}

/* Four independent multiply chains, folded at the end: one chain is a
 * latency-bound sequence of multiplies, and a stack with Python frames
 * has a hundred words to hash. */
static inline uint64_t hash_frames(const uint64_t *f, int n)
{
	const uint64_t k = 0xbf58476d1ce4e5b9ull;
	uint64_t h0 = 0x9e3779b97f4a7c15ull ^ (uint64_t)n, h1 = 0x94d049bb133111ebull,
		 h2 = 0x2545f4914f6cdd1dull, h3 = 0xd6e8feb86659fd93ull;
	int i = 0;
	for (; i + 4 <= n; i += 4) {
		h0 = (h0 ^ f[i]) * k;
		h1 = (h1 ^ f[i + 1]) * k;
		h2 = (h2 ^ f[i + 2]) * k;
		h3 = (h3 ^ f[i + 3]) * k;
		h0 ^= h0 >> 31;
		h1 ^= h1 >> 31;
		h2 ^= h2 >> 31;
		h3 ^= h3 >> 31;
	}
	for (; i < n; i++) {
		h0 = (h0 ^ f[i]) * k;
		h0 ^= h0 >> 31;
	}
	uint64_t h = h0 ^ (h1 << 17 | h1 >> 47) ^ (h2 << 31 | h2 >> 33) ^ (h3 << 47 | h3 >> 17);
	h *= k;
	return h ^ h >> 32;
}

/* The top of this thread's stack, found once per thread (the lookup may
 * allocate; we are inside the recursion guard here). Stack walkers never
 * read at or above it. */
static uintptr_t stack_top(void)
{
	uintptr_t hi = lt__tls.stack_hi;
	if (LT_LIKELY(hi))
		return hi;
	pthread_attr_t attr;
	void *addr;
	size_t size;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		if (pthread_attr_getstack(&attr, &addr, &size) == 0)
			hi = (uintptr_t)addr + size;
		pthread_attr_destroy(&attr);
	}
	if (!hi) /* unknown: walk nothing rather than guess (libunwind then) */
		hi = (uintptr_t)__builtin_frame_address(0);
	lt__tls.stack_hi = hi;
	return hi;
}

/* LEAKTRACE_UNWIND=check: walks every stack both ways and counts the
 * stacks on which the fast walker and libunwind disagree (reported on
 * stderr at exit). A diagnostic for the fast walker, not for daily use. */
static _Atomic uint64_t check_stacks, check_fallbacks, check_mismatches;

static void check_against_libunwind(const uint64_t *fast, int n, int max)
{
	uint64_t ref[LT_MAX_DEPTH + 8];
	int m = unw_backtrace((void **)ref, max);
	/* Relaxed: statistics. */
	atomic_fetch_add_explicit(&check_stacks, 1, memory_order_relaxed);
	if (n < 0) {
		atomic_fetch_add_explicit(&check_fallbacks, 1, memory_order_relaxed);
		return;
	}
	/* Both start inside the shim at different depths: compare from the
	 * first frame outside it. */
	int i = 0, j = 0;
	while (i < n && fast[i] >= lt__self_lo && fast[i] < lt__self_hi)
		i++;
	while (j < m && ref[j] >= lt__self_lo && ref[j] < lt__self_hi)
		j++;
	/* Only the frames that are kept count (both walks stop at max,
	 * having started at different depths inside the shim). */
	int keep = lt__config.depth;
	int a = n - i < keep ? n - i : keep, b = m - j < keep ? m - j : keep;
	if (a != b || memcmp(fast + i, ref + j, (size_t)a * 8) != 0)
		atomic_fetch_add_explicit(&check_mismatches, 1, memory_order_relaxed);
}

void lt__unwind_check_report(void)
{
	if (lt__config.unwinder != LT_UNWIND_CHECK)
		return;
	char line[160];
	uint64_t v[3] = {atomic_load(&check_stacks), atomic_load(&check_fallbacks),
			 atomic_load(&check_mismatches)};
	const char *names[3] = {"stacks=", " libunwind_fallbacks=", " mismatches="};
	size_t len = 0;
	for (int k = 0; k < 3; k++) {
		for (const char *q = names[k]; *q; q++)
			line[len++] = *q;
		char d[24];
		int nd = 0;
		uint64_t x = v[k];
		do
			d[nd++] = (char)('0' + x % 10);
		while (x /= 10);
		while (nd)
			line[len++] = d[--nd];
	}
	line[len] = 0;
	lt__sys_warn("unwind check: ", line, NULL);
}

/* Walks the frame-pointer chain. Reads stay between the current stack
 * pointer and the top of this thread's stack, so a program built without
 * frame pointers yields a short or odd stack, never a crash. */
static int fp_backtrace(uint64_t *out, int max)
{
	uintptr_t lo = (uintptr_t)__builtin_frame_address(0);
	uintptr_t hi = stack_top();
	int n = 0;
	const uintptr_t *fp = __builtin_frame_address(0);
	while (n < max) {
		uintptr_t f = (uintptr_t)fp;
		/* Written so that a wild pointer near 2^64 cannot wrap. */
		if (f < lo || f >= hi || hi - f < 16 || (f & 7))
			break;
		uintptr_t ret = fp[1];
		if (ret < 4096)
			break;
		out[n++] = ret;
		const uintptr_t *next = (const uintptr_t *)fp[0];
		if ((uintptr_t)next <= f)
			break;
		fp = next;
	}
	return n;
}

/* Finds or inserts the stack; 0 when the table is full (counted). */
uint32_t lt__stack_intern(const uint64_t *frames, int depth)
{
	uint64_t h = hash_frames(frames, depth);
	uint32_t mask = LT_STACK_SLOTS - 1;
	uint32_t mine = 0; /* our reserved id, once we built an entry */
	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		/* Acquire pairs with the release CAS that published the id:
		 * offsets[id] and the entry it points at are complete. */
		uint32_t id = atomic_load_explicit(&slots[i], memory_order_acquire);
		while (id == 0) {
			if (!mine) {
				mine = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
				size_t bytes = sizeof(struct stack_entry) + (size_t)depth * 8;
				uint64_t off = atomic_fetch_add_explicit(&arena_top, bytes,
									 memory_order_relaxed);
				if (mine >= LT_STACK_MAX_IDS || off + bytes > arena_size) {
					atomic_fetch_add_explicit(&overflows, 1, memory_order_relaxed);
					return 0;
				}
				struct stack_entry *e = (void *)(arena + off);
				e->hash = h;
				e->depth = (uint32_t)depth;
				memcpy(e->frames, frames, (size_t)depth * 8);
				offsets[mine] = off;
			}
			/* Release publishes the entry and offsets[mine]. */
			if (atomic_compare_exchange_strong_explicit(&slots[i], &id, mine,
								    memory_order_release,
								    memory_order_acquire)) {
				/* Up to the Python frames' mark (python.c). */
				for (int k = 0; k < depth && frames[k] != LT_PYFRAMES_MARK; k++)
					if (!lt__modules_contains(frames[k])) {
						/* Code from a module loaded behind
						 * dlopen's back (the loader's own
						 * dlopen, for instance). */
						lt__modules_snapshot();
						break;
					}
				return mine;
			}
			/* Lost the race for this slot: id now holds the winner. */
		}
		const struct stack_entry *e = (const void *)(arena + offsets[id]);
		if (e->hash == h && e->depth == (uint32_t)depth &&
		    memcmp(e->frames, frames, (size_t)depth * 8) == 0)
			return id;
	}
}

/* The fast walker behind a per-thread memo (ring.h, lt_stack_memo).
 * Returns the stack id, or -1 when the walker gave up (use libunwind). */
static int64_t fast_stack_id(int max, uint64_t *frames, int *nframes)
{
	lt_ring_t *ring = lt__tls.ring;
	uintptr_t hi = stack_top();
	struct lt_walk_origin o;
	if (!ring || lt__unwind_origin(&o, hi))
		return -1;
	struct lt_stack_memo *m = &ring->memo[(o.ip ^ (o.rsp >> 4)) & (LT_MEMO_WAYS - 1)];
	if (m->ip == o.ip && m->rsp == o.rsp && m->rbp == o.rbp && m->depth == max) {
		int i = 0;
		while (i < m->nslots && *(const uint64_t *)(uintptr_t)m->slot[i] == m->value[i])
			i++;
		if (i == m->nslots) {
			*nframes = -1; /* frames not filled: the memo answered */
			return m->stack_id;
		}
	}
	uint64_t slots[LT_MEMO_SLOTS];
	int nslots;
	int lim = max < LT_MEMO_SLOTS / 2 ? max : LT_MEMO_SLOTS / 2;
	int n = lt__unwind_fast(frames, max, hi, &o, slots, &nslots);
	*nframes = n;
	if (n < 0)
		return -1;
	uint32_t id = n ? lt__stack_intern(frames, n) : 0;
	if (n <= lim && nslots <= LT_MEMO_SLOTS) {
		m->ip = o.ip;
		m->rsp = o.rsp;
		m->rbp = o.rbp;
		m->depth = max;
		m->stack_id = id;
		m->nslots = nslots;
		for (int i = 0; i < nslots; i++) {
			m->slot[i] = slots[i];
			/* Read again now: our callers' frames cannot change
			 * while we run, so these are the values the walk saw. */
			m->value[i] = *(const uint64_t *)(uintptr_t)slots[i];
		}
	}
	return id;
}

static uint32_t native_stack_id(void);

/* The stack of native stack `id` with the Python frames this thread is
 * running: the native frames, LT_PYFRAMES_MARK, then (code key, where)
 * pairs. `id` itself when there are none. */
static uint32_t with_python_frames(uint32_t id)
{
	uint64_t frames[LT_MAX_DEPTH + 1 + 2 * LT_MAX_DEPTH];
	uint32_t depth = 0;
	const uint64_t *native = id ? lt__stack_frames(id, &depth) : NULL;
	if (depth > LT_MAX_DEPTH)
		return id;
	uint64_t *py = frames + depth + 1;
	int n = lt__py_frames(py, lt__config.depth);
	if (n <= 0)
		return id;
	/* The memo: the same native stack with the same Python frames as a
	 * stack made lately. Checked against that stack's own Python frames,
	 * so a hash collision costs a lookup, never a wrong stack. Cheaper
	 * than interning the whole, a hundred words or so. */
	lt_ring_t *ring = lt__tls.ring;
	uint64_t ph = hash_frames(py, 2 * n);
	struct lt_py_memo *m =
	    ring ? &ring->py_memo[(ph ^ id * 0x9e3779b97f4a7c15ull) >> 58] : NULL;
	_Static_assert(LT_PY_MEMO_WAYS == 1 << (64 - 58), "py_memo index bits");
	if (m && m->id && m->native_id == id && m->py_hash == ph) {
		uint32_t have;
		const uint64_t *f = lt__stack_frames(m->id, &have);
		if (have == depth + 1 + 2 * (uint32_t)n &&
		    memcmp(f + depth + 1, py, (size_t)n * 16) == 0)
			return m->id;
	}
	if (depth)
		memcpy(frames, native, depth * 8);
	frames[depth] = LT_PYFRAMES_MARK;
	uint32_t both = lt__stack_intern(frames, (int)depth + 1 + 2 * n);
	if (!both)
		return id;
	if (m) {
		m->py_hash = ph;
		m->native_id = id;
		m->id = both;
	}
	return both;
}

uint32_t lt__stack_capture_id(void)
{
	uint32_t id = native_stack_id();
	/* Relaxed: see python.c. */
	if (LT_UNLIKELY(atomic_load_explicit(&lt__py_active, memory_order_relaxed)) &&
	    lt__config.depth)
		id = with_python_frames(id);
	return id;
}

static uint32_t native_stack_id(void)
{
	int max = lt__config.depth;
	if (max == 0)
		return 0;
	uint64_t frames[LT_MAX_DEPTH + 8];
	int n = -1;
	if (lt__config.unwinder == LT_UNWIND_FAST || lt__config.unwinder == LT_UNWIND_CHECK) {
		int64_t id = fast_stack_id(max, frames, &n);
		if (LT_UNLIKELY(lt__config.unwinder == LT_UNWIND_CHECK)) {
			if (id >= 0 && n < 0) { /* a memo hit: check its frames */
				uint32_t depth = 0;
				const uint64_t *f = id ? lt__stack_frames((uint32_t)id, &depth) : frames;
				memcpy(frames, f, depth * 8);
				n = (int)depth;
			}
			check_against_libunwind(frames, id >= 0 ? n : -1, max + 8);
		}
		if (id >= 0)
			return (uint32_t)id;
		n = unw_backtrace((void **)frames, max + 8);
	} else if (lt__config.unwinder == LT_UNWIND_FP) {
		n = fp_backtrace(frames, max + 8);
	} else {
		n = unw_backtrace((void **)frames, max + 8);
	}
	/* Drop the shim's own frames (capture, record, the interposed
	 * function): the first frame kept is the allocator's caller. */
	int skip = 0;
	while (skip < n && frames[skip] >= lt__self_lo && frames[skip] < lt__self_hi)
		skip++;
	n -= skip;
	if (n > max)
		n = max;
	if (n <= 0)
		return 0;
	return lt__stack_intern(frames + skip, n);
}
