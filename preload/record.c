/* SPDX-License-Identifier: MIT */
/* The recording core: per-thread rings, lazy initialisation, and the
 * process lifecycle (threads, fork, exec, exit). Linkable into a unit test
 * without LD_PRELOAD; interpose.c is the only caller in the shim. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"
#include "sys.h"

_Atomic int lt__state;
_Atomic uint64_t lt__epoch;
struct lt_config_s lt__config;
pid_t lt__pid;
__thread struct lt_tls_s lt__tls __attribute__((tls_model("initial-exec")));
_Atomic(lt_ring_t *) lt__rings;
_Atomic uint64_t lt__lost_events;

/* Counts an event the shim could not record, saying so on stderr the first
 * time. Relaxed: a statistic, read by the writer when it writes END (after
 * the drain handshake, which orders the producers' earlier increments). */
static void lost_event(const char *why)
{
	if (atomic_fetch_add_explicit(&lt__lost_events, 1, memory_order_relaxed) == 0)
		lt__sys_warn("events lost: ", why,
			     "; the trace counts them (END record) and is incomplete");
}

/*
 * Recent frees: who last freed an address, so that a thread reusing it can
 * say so (format.h, AFTER). Four-way set-associative, one 64-byte line per
 * set: a free overwrites the way that already holds its address, else way
 * (free number mod 4), so an entry is lost only when four other frees hit
 * its set before the reuse (with 16k sets, practically never within the
 * few hundred frees that typically separate a free from its reuse). A free
 * stores `who` then `addr` (release); an allocation loads `addr` (acquire)
 * and then `who`. A torn pair (two frees racing for one way) is caught by
 * the address check folded into the top bits of `who`.
 */
#define RECENT_SLOTS (1u << 16) /* 1 MiB */
#define RECENT_WAYS 4
struct recent_free {
	_Atomic uint64_t addr;
	_Atomic uint64_t who; /* check:8 | epoch:8 | thread index:24 | free number:24 */
};
static struct recent_free *recent; /* mmap: page-aligned, so a set is one line */

static inline uint64_t recent_mix(uint64_t a)
{
	a ^= a >> 31;
	a *= 0x7fb5d329728ea185ull;
	a ^= a >> 27;
	return a;
}

static inline struct recent_free *recent_set(uint64_t mix)
{
	return &recent[(mix & (RECENT_SLOTS / RECENT_WAYS - 1)) * RECENT_WAYS];
}

/* The way of p's set that holds p, or NULL. */
static inline struct recent_free *recent_find(uint64_t mix, uint64_t p)
{
	struct recent_free *set = recent_set(mix);
	for (int w = 0; w < RECENT_WAYS; w++)
		/* Acquire pairs with the release store of addr in note_free():
		 * `who`, read after, is at least as new as that free. */
		if (atomic_load_explicit(&set[w].addr, memory_order_acquire) == p)
			return &set[w];
	return NULL;
}

/* 0 = not started, 1 = running (another thread spins), 2 = done. */
static _Atomic int init_phase;
/* Thread indexes start at 1; 0 is the writer's own pseudo-thread. Relaxed:
 * only uniqueness matters. */
static _Atomic uint32_t next_thread_index = 1;

/* True once a second thread has recorded an event. Until then no AFTER
 * record can be needed (it orders a free in one thread before a reuse in
 * another), and the recent-frees table, a cache miss per event, is left
 * alone. Relaxed: a thread that reads the old value for a moment after
 * the second thread's first event misses at most a hint for a reuse in
 * that same epoch, and the analyzer's causal rule orders the pair anyway:
 * the new thread cannot allocate the address before it is freed. The
 * hint is only needed when a third hand-over follows within the epoch,
 * and by then the free before it was noted. */
static inline int threads_share(void)
{
	return atomic_load_explicit(&next_thread_index, memory_order_relaxed) > 2;
}
static pthread_key_t ring_key;
static int ring_key_ok;
static _Atomic uint64_t fork_seq;
static uint64_t child_fork_seq; /* in a fork child: the seq of its fork */
static uint64_t child_prefix; /* in a fork child: parent bytes it continues */
static char parent_path[4096];
static _Atomic int finished;


/* A whole decimal number from lo to hi in variable name's value s: hi
 * for a larger number, dflt for anything else, with one line on stderr
 * ("NAME=VALUE is not a number from LO to HI; using DFLT"). */
static int config_int(const char *name, const char *s, long lo, long hi, int dflt)
{
	if (!s || !*s)
		return dflt;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno == 0 && *end == 0 && v >= lo && v <= hi)
		return (int)v;
	int too_big = (errno == ERANGE || (errno == 0 && *end == 0)) && v > hi;
	int use = too_big ? (int)hi : dflt;
	char what[160], why[96];
	size_t n = lt__text_append(what, 0, sizeof what, name);
	n = lt__text_append(what, n, sizeof what, "=");
	lt__text_append(what, n, sizeof what, s);
	if (too_big) {
		n = lt__text_append(why, 0, sizeof why, " is more than ");
	} else {
		n = lt__text_append(why, 0, sizeof why, " is not a number from ");
		n = lt__text_append_uint(why, n, sizeof why, (uint64_t)lo);
		n = lt__text_append(why, n, sizeof why, " to ");
	}
	n = lt__text_append_uint(why, n, sizeof why, (uint64_t)hi);
	n = lt__text_append(why, n, sizeof why, "; using ");
	lt__text_append_uint(why, n, sizeof why, (uint64_t)use);
	lt__sys_warn(what, why, NULL);
	return use;
}

static void read_config(void)
{
	const char *s = getenv("LEAKTRACE_DEPTH");
	lt__config.depth = config_int("LEAKTRACE_DEPTH", s, 0, LT_MAX_DEPTH, 64);
	s = getenv("LEAKTRACE_UNWIND");
	lt__config.unwinder = LT_UNWIND_FAST;
	if (s && strcmp(s, "fp") == 0)
		lt__config.unwinder = LT_UNWIND_FP;
	else if (s && strcmp(s, "libunwind") == 0)
		lt__config.unwinder = LT_UNWIND_LIBUNWIND;
	else if (s && strcmp(s, "check") == 0)
		lt__config.unwinder = LT_UNWIND_CHECK;
	else if (s && *s && strcmp(s, "fast") != 0)
		lt__sys_warn("LEAKTRACE_UNWIND=", s,
			     " is not one of fast, fp, libunwind, check; using fast");
	s = getenv("LEAKTRACE_COMPRESS");
	lt__config.zstd_level = config_int("LEAKTRACE_COMPRESS", s, 0, 19, 1);
	s = getenv("LEAKTRACE_OUTPUT");
	if (!s || !*s)
		s = "leaktrace.%e.%p.bin";
	size_t n = strlen(s);
	if (n >= sizeof lt__config.output_pattern)
		n = sizeof lt__config.output_pattern - 1;
	memcpy(lt__config.output_pattern, s, n);
	lt__config.output_pattern[n] = 0;

	s = getenv("LEAKTRACE_SNAPSHOT_SIGNAL");
	lt__config.snapshot_signal = 0;
	if (s && *s) {
		if (strncmp(s, "SIG", 3) == 0)
			s += 3;
		static const struct {
			const char *name;
			int sig;
		} names[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP},
			     {"PROF", SIGPROF}, {"WINCH", SIGWINCH}};
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strcmp(s, names[i].name) == 0)
				lt__config.snapshot_signal = names[i].sig;
		if (!lt__config.snapshot_signal) {
			long v = strtol(s, NULL, 10);
			if (v > 0 && v < NSIG && v != SIGKILL && v != SIGSTOP)
				lt__config.snapshot_signal = (int)v;
		}
	}
}

static void snapshot_signal_handler(int sig)
{
	(void)sig;
	int saved = errno;
	/* Relaxed: the writer only needs to see the count grow; it emits
	 * the markers in its own pseudo-thread at its next pass. */
	atomic_fetch_add_explicit(&lt__signal_markers, 1, memory_order_relaxed);
	lt__writer_wake();
	errno = saved;
}

void lt__snapshot_signal_check(int sig, const struct sigaction *act)
{
	static _Atomic int warned;
	if (!act || sig != lt__config.snapshot_signal || sig == 0 ||
	    act->sa_handler == snapshot_signal_handler)
		return;
	/* Relaxed: only one line, whichever thread says it. */
	if (atomic_exchange_explicit(&warned, 1, memory_order_relaxed))
		return;
	lt__sys_warn("the program sets its own handler for LEAKTRACE_SNAPSHOT_SIGNAL's signal; "
		     "snapshot markers by signal stop here (choose another signal)",
		     NULL, NULL);
}

static void ring_thread_exit(void *v)
{
	lt_ring_t *r = v;
	/* Relaxed: the writer only uses EXITING as a hint to probe whether
	 * the thread is gone; events the thread still pushes (TLS
	 * destructors of other libraries) go into this same ring. */
	atomic_store_explicit(&r->state, LT_RING_EXITING, memory_order_relaxed);
}

/* Runs at exit (see lt__init) with the status that exit() got, also when
 * main returns: on_exit handlers see it, atexit handlers do not. */
static void final_flush(int status, void *unused)
{
	(void)unused;
	lt__finish(LT_EXIT_NORMAL, status);
}

/* quick_exit() runs at_quick_exit handlers, not atexit ones: the status
 * comes from the interposed quick_exit (interpose.c). Relaxed: the same
 * thread stores it and then runs this handler. */
_Atomic int lt__quick_exit_status;

static void quick_exit_flush(void)
{
	lt__finish(LT_EXIT_NORMAL, atomic_load_explicit(&lt__quick_exit_status,
							memory_order_relaxed));
}

static void fork_prepare(void)
{
	lt__fork_prepare();
}
static void fork_parent(void)
{
	lt__fork_parent();
}
static void fork_child(void)
{
	lt__fork_child();
}

void lt__init(void)
{
	int expected = 0;
	if (!atomic_compare_exchange_strong_explicit(&init_phase, &expected, 1,
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		/* Acquire pairs with the release store of phase 2 below:
		 * everything init set up is visible once we see 2. */
		while (atomic_load_explicit(&init_phase, memory_order_acquire) != 2)
			sched_yield();
		return;
	}
	lt__tls.busy++;
	int saved = errno;
	lt__sys_stderr_note();
	read_config();
	lt__pid = getpid();
	recent = lt__sys_map(sizeof *recent * RECENT_SLOTS);
	if (lt__stacks_init() != 0) {
		/* Not enough address space for the stack table (RLIMIT_AS):
		 * the allocations matter more than their stacks. */
		lt__sys_warn("no address space for the stack table (ENOMEM); "
			     "recording without stacks", NULL, NULL);
		lt__config.depth = 0;
	}
	lt__modules_snapshot();
	int ok = lt__writer_open(0, NULL, 0, 0) == 0;
	if (ok) {
		ring_key_ok = pthread_key_create(&ring_key, ring_thread_exit) == 0;
		/* This thread's ring now, while memory is certainly to be had:
		 * a program that later lowers RLIMIT_AS keeps its main
		 * thread's events. */
		if (!lt__tls.ring)
			lt__ring_acquire();
		pthread_atfork(fork_prepare, fork_parent, fork_child);
		/* Registered with no DSO handle while the loader is still
		 * running constructors, i.e. before libc registers the
		 * loader's own destructor pass: exit handlers run in
		 * reverse order, so this one runs after every library's
		 * destructors and sees their frees. */
		on_exit(final_flush, NULL);
		at_quick_exit(quick_exit_flush);
		if (lt__config.snapshot_signal) {
			struct sigaction sa;
			memset(&sa, 0, sizeof sa);
			sa.sa_handler = snapshot_signal_handler;
			sa.sa_flags = SA_RESTART;
			sigemptyset(&sa.sa_mask);
			sigaction(lt__config.snapshot_signal, &sa, NULL);
		}
	}
	/* Release pairs with the acquire load in enter(): a thread that sees
	 * ACTIVE sees the tables, the file and our own address range set. */
	atomic_store_explicit(&lt__state, ok ? LT_STATE_ACTIVE : LT_STATE_OFF,
			      memory_order_release);
	atomic_store_explicit(&init_phase, 2, memory_order_release);
	errno = saved;
	lt__tls.busy--;
}

lt_ring_t *lt__ring_acquire(void)
{
	lt_ring_t *r;
	/* Acquire pairs with the release CAS that links a ring, so its
	 * fields are initialised when we walk to it. */
	for (r = atomic_load_explicit(&lt__rings, memory_order_acquire); r; r = r->next) {
		uint32_t st = LT_RING_FREE;
		/* Acquire pairs with the writer's release store of FREE after
		 * its last drain: head == tail and the slots are done with. */
		if (atomic_load_explicit(&r->state, memory_order_relaxed) == LT_RING_FREE &&
		    atomic_compare_exchange_strong_explicit(&r->state, &st, LT_RING_OWNED,
							    memory_order_acquire,
							    memory_order_relaxed))
			break;
	}
	if (!r) {
		r = lt__sys_map(sizeof *r);
		if (!r)
			return NULL;
		atomic_store_explicit(&r->state, LT_RING_OWNED, memory_order_relaxed);
		lt_ring_t *head = atomic_load_explicit(&lt__rings, memory_order_relaxed);
		do
			r->next = head;
		/* Release publishes the ring's fields with the link. */
		while (!atomic_compare_exchange_weak_explicit(&lt__rings, &head, r,
							      memory_order_release,
							      memory_order_relaxed));
	}
	/* Relaxed: thread indexes only need to be unique. */
	r->thread_index = atomic_fetch_add_explicit(&next_thread_index, 1, memory_order_relaxed);
	r->tid = lt__sys_gettid();
	r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
	r->epoch_seen = 0;
	r->frees = 0;
	lt__tls.ring = r;
	if (ring_key_ok)
		pthread_setspecific(ring_key, r);
	lt_event_t *e = lt__ring_slot(r); /* a fresh ring always has room */
	e->kind = LT_EV_THREAD_START;
	e->size = (uint64_t)r->tid;
	lt__ring_publish(r);
	return r;
}

/* Slow path when the ring is full: wake the writer and wait for it
 * (back-pressure: a lost free would be a false leak). Returns NULL only
 * when recording has stopped, in which case the event is not needed. */
static lt_event_t *wait_for_space(lt_ring_t *r)
{
	for (unsigned spins = 0;; spins++) {
		if (atomic_load_explicit(&lt__state, memory_order_relaxed) != LT_STATE_ACTIVE)
			return NULL;
		lt__writer_start(); /* no-op once running */
		lt__writer_wake();
		if (spins < 64) {
			sched_yield();
		} else if (spins == 64 && getpid() != lt__pid) {
			/* A process made by clone() or a raw system call, not by
			 * fork(): it has our rings but no writer, and nothing
			 * will ever drain them. It goes untraced. (A child that
			 * shares our memory, CLONE_VM, cannot get here: the
			 * writer drains the shared ring.) */
			lt__fork_untraced();
			lt__sys_warn("a process made by clone(), not fork(), is not traced", NULL,
				     NULL);
			return NULL;
		} else {
			struct timespec ts = {0, 50000};
			nanosleep(&ts, NULL);
		}
		lt_event_t *e = lt__ring_slot(r);
		if (e)
			return e;
	}
}

static inline lt_event_t *reserve(lt_ring_t *r)
{
	lt_event_t *e = lt__ring_slot(r);
	return LT_LIKELY(e != NULL) ? e : wait_for_space(r);
}

/* Every quarter ring, look at the real fill level and ring the writer's
 * doorbell if we are past half: it sleeps up to a millisecond otherwise. */
static inline void publish(lt_ring_t *r)
{
	lt__ring_publish(r);
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (LT_UNLIKELY((t & (LT_RING_CAP / 4 - 1)) == 0)) {
		/* Acquire pairs with the writer's release of head. */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (t - r->head_cache >= LT_RING_CAP / 2)
			lt__writer_wake();
	}
}

/* Tags what follows with the epoch read at the time of the event. */
static inline int push_epoch(lt_ring_t *r, uint64_t epoch)
{
	if (LT_LIKELY(epoch <= r->epoch_seen))
		return 0;
	lt_event_t *e = reserve(r);
	if (!e)
		return -1;
	e->kind = LT_EV_EPOCH;
	e->size = epoch;
	r->epoch_seen = epoch;
	publish(r);
	return 0;
}

/* Enters the recording section: returns the thread's ring, or NULL when
 * this event is not to be recorded (shim's own allocation, tracing off). */
static lt_ring_t *enter(void)
{
	if (LT_UNLIKELY(lt__tls.busy))
		return NULL;
	/* Acquire pairs with the release store that made the state ACTIVE
	 * (free on x86: a plain load). */
	int st = atomic_load_explicit(&lt__state, memory_order_acquire);
	if (LT_UNLIKELY(st != LT_STATE_ACTIVE)) {
		if (st == LT_STATE_UNINIT) {
			lt__init();
		} else if (st == LT_STATE_LAZY) {
			lt__tls.busy++;
			int saved = errno;
			/* A fork child's first event: open its own trace. */
			if (lt__writer_open(1, parent_path, child_prefix, child_fork_seq) == 0) {
				atomic_store_explicit(&lt__state, LT_STATE_ACTIVE,
						      memory_order_release);
				lt__writer_start();
			} else {
				atomic_store_explicit(&lt__state, LT_STATE_OFF,
						      memory_order_relaxed);
			}
			errno = saved;
			lt__tls.busy--;
		}
		if (atomic_load_explicit(&lt__state, memory_order_relaxed) != LT_STATE_ACTIVE)
			return NULL;
	}
	lt__tls.busy++;
	lt_ring_t *r = lt__tls.ring;
	if (LT_UNLIKELY(r == NULL)) {
		int saved = errno;
		r = lt__ring_acquire();
		if (!r) {
			lost_event("cannot map a ring for a new thread (ENOMEM)");
			lt__tls.busy--;
		}
		errno = saved;
	}
	return r;
}

static inline void leave(void)
{
	lt__tls.busy--;
}

/* If another thread was the last to free p and the table still says so,
 * pushes an AFTER event naming that free. 0, or -1 when recording stopped. */
static inline int push_after(lt_ring_t *r, uint64_t p)
{
	if (LT_UNLIKELY(!recent) || !threads_share())
		return 0;
	uint64_t mix = recent_mix(p);
	struct recent_free *slot = recent_find(mix, p);
	if (!slot)
		return 0;
	uint64_t who = atomic_load_explicit(&slot->who, memory_order_relaxed);
	uint32_t thread = (uint32_t)(who >> 24) & 0xffffff;
	if ((who >> 56) != (mix >> 56) || thread == r->thread_index)
		return 0; /* torn, or our own free: program order suffices */
	/* A free in an earlier epoch is ordered by the epochs already; only
	 * one in this very epoch needs the hint. */
	if (((who >> 48) & 0xff) != (r->epoch_seen & 0xff))
		return 0;
	lt_event_t *e = reserve(r);
	if (!e)
		return -1;
	e->kind = LT_EV_AFTER;
	e->addr = thread;
	e->size = who & 0xffffff;
	publish(r);
	return 0;
}

/* Remembers that this thread frees p in its n-th FREE or REALLOC record
 * (format.h, AFTER). Free numbers wrap at 2^24; the reader matches them
 * modulo that, within its window of a few epochs. Must run before the
 * real free: that is what orders it before any reuse of p. */
static inline void note_free(lt_ring_t *r, uint64_t p, uint64_t n, uint64_t epoch)
{
	if (LT_UNLIKELY(recent == NULL) || r->thread_index >= (1u << 24) || !threads_share())
		return;
	uint64_t mix = recent_mix(p);
	struct recent_free *set = recent_set(mix);
	struct recent_free *slot = &set[n & (RECENT_WAYS - 1)];
	for (int w = 0; w < RECENT_WAYS; w++)
		/* Relaxed: only this thread can be freeing p right now. */
		if (atomic_load_explicit(&set[w].addr, memory_order_relaxed) == p)
			slot = &set[w];
	/* Relaxed: published by the release store of addr. */
	atomic_store_explicit(&slot->who,
			      (mix >> 56) << 56 | (epoch & 0xff) << 48 |
				      (uint64_t)r->thread_index << 24 | (n & 0xffffff),
			      memory_order_relaxed);
	/* Release pairs with the acquire in push_after(). */
	atomic_store_explicit(&slot->addr, p, memory_order_release);
}

/* True when the recent-frees table says another thread freed p at an
 * epoch other than `epoch` (in practice: later, during a realloc that
 * started at `epoch`). A lost table entry reads as false. */
static bool freed_elsewhere_since(uint64_t p, uint64_t epoch)
{
	lt_ring_t *r = lt__tls.ring;
	if (!recent || !r)
		return false;
	uint64_t mix = recent_mix(p);
	struct recent_free *slot = recent_find(mix, p);
	if (!slot)
		return false;
	uint64_t who = atomic_load_explicit(&slot->who, memory_order_relaxed);
	return (who >> 56) == (mix >> 56) && ((who >> 24) & 0xffffff) != r->thread_index &&
	       ((who >> 48) & 0xff) != (epoch & 0xff);
}

void lt__record_realloc_begin(void *old, uint64_t epoch)
{
	/* Only the table entry: the REALLOC record itself follows the real
	 * call. If the call fails, old stays live and its next free rewrites
	 * the entry before anyone else could get the address. enter() also
	 * gives a thread whose first call this is its ring (and number). */
	lt_ring_t *r = enter();
	if (!r)
		return;
	note_free(r, (uintptr_t)old, r->frees + 1, epoch);
	leave();
}

/* Pushes one event (its epoch already pushed). 0, or -1 when recording
 * has stopped. */
static inline int push_event(lt_ring_t *r, uint32_t kind, uint64_t addr, uint64_t size,
			     uint64_t old_addr, uint32_t stack_id)
{
	lt_event_t *e = reserve(r);
	if (!e)
		return -1;
	e->kind = kind;
	e->addr = addr;
	e->size = size;
	e->old_addr = old_addr;
	e->stack_id = stack_id;
	publish(r);
	return 0;
}

/* An allocation (old == NULL) or a realloc that moved or resized old. */
static void record_allocation(uint32_t kind, void *old, void *p, size_t size, uint64_t epoch)
{
	lt_ring_t *r = enter();
	if (!r)
		return;
	int saved = errno;
	uint32_t stack_id = lt__stack_capture_id();
	if (push_epoch(r, epoch) == 0 && (p == old || push_after(r, (uintptr_t)p) == 0) &&
	    push_event(r, kind, (uintptr_t)p, size, (uintptr_t)old, stack_id) == 0 &&
	    kind == LT_EV_REALLOC)
		r->frees++; /* numbered like FREE records, see note_free() */
	errno = saved;
	leave();
}

void lt__record_alloc(void *p, size_t size)
{
	record_allocation(LT_EV_ALLOC, NULL, p, size,
			  atomic_load_explicit(&lt__epoch, memory_order_relaxed));
}

void lt__record_realloc(void *old, void *p, size_t size, uint64_t epoch)
{
	uint64_t now = atomic_load_explicit(&lt__epoch, memory_order_relaxed);
	if (LT_LIKELY(now == epoch) || !freed_elsewhere_since((uintptr_t)p, epoch)) {
		record_allocation(LT_EV_REALLOC, old, p, size, epoch);
		return;
	}
	/* The epoch moved during the call and another thread freed the new
	 * address after it started. The old block was freed at the earlier
	 * epoch, the new address must come after that other free: one record
	 * cannot carry both, so write the free and the allocation separately
	 * (the same counts: one of each). */
	lt_ring_t *r = enter();
	if (!r)
		return;
	int saved = errno;
	if (push_epoch(r, epoch) == 0 && push_event(r, LT_EV_FREE, (uintptr_t)old, 0, 0, 0) == 0)
		r->frees++; /* the number note_free() gave it before the call */
	errno = saved;
	leave();
	record_allocation(LT_EV_ALLOC, NULL, p, size, now);
}

void lt__record_free(void *p)
{
	lt_ring_t *r = enter();
	if (!r)
		return;
	/* Relaxed: see python.c. */
	if (LT_UNLIKELY(atomic_load_explicit(&lt__py_active, memory_order_relaxed)))
		lt__py_forget((uintptr_t)p);
	int saved = errno;
	if (push_epoch(r, atomic_load_explicit(&lt__epoch, memory_order_relaxed)) == 0 &&
	    push_event(r, LT_EV_FREE, (uintptr_t)p, 0, 0, 0) == 0)
		note_free(r, (uintptr_t)p, ++r->frees, r->epoch_seen);
	errno = saved;
	leave();
}

/* Pushes a positioned record whose payload lives in the string arena or
 * in the event itself. */
static void record_positioned(uint32_t kind, uint64_t addr, uint64_t size)
{
	lt_ring_t *r = enter();
	if (!r)
		return;
	int saved = errno;
	if (push_epoch(r, atomic_load_explicit(&lt__epoch, memory_order_relaxed)) == 0)
		push_event(r, kind, addr, size, 0, 0);
	errno = saved;
	leave();
}

void lt__record_marker(const char *name)
{
	if (lt__tls.busy)
		return;
	lt__tls.busy++;
	const char *saved_name = lt__string_save(name);
	lt__tls.busy--;
	if (saved_name)
		record_positioned(LT_EV_MARKER, (uintptr_t)saved_name, 0);
	else if (atomic_load_explicit(&lt__state, memory_order_relaxed) == LT_STATE_ACTIVE)
		lost_event("no memory for a marker name");
}

void lt__modules_changed(void)
{
	if (lt__tls.busy ||
	    atomic_load_explicit(&lt__state, memory_order_relaxed) != LT_STATE_ACTIVE)
		return;
	lt__tls.busy++;
	int saved = errno;
	lt__modules_snapshot();
	errno = saved;
	lt__tls.busy--;
}

void lt__finish(int exit_kind, int status)
{
	/* A vfork child (or a raw clone) shares our memory but is not us:
	 * it must not touch the writer. */
	if (getpid() != lt__pid)
		return;
	if (atomic_exchange_explicit(&finished, 1, memory_order_acq_rel))
		return;
	int st = atomic_load_explicit(&lt__state, memory_order_relaxed);
	if (st != LT_STATE_ACTIVE) {
		atomic_store_explicit(&lt__state, LT_STATE_OFF, memory_order_relaxed);
		return;
	}
	lt__tls.busy++;
	int saved = errno;
	lt__unwind_check_report();
	lt__writer_stop(exit_kind, status);
	atomic_store_explicit(&lt__state, LT_STATE_OFF, memory_order_relaxed);
	errno = saved;
	lt__tls.busy--;
}

void lt__crash_flush(int sig)
{
	/* getpid: a vfork child that crashes is not us. */
	if (getpid() != lt__pid || atomic_exchange_explicit(&finished, 1, memory_order_acq_rel))
		return;
	if (atomic_load_explicit(&lt__state, memory_order_relaxed) != LT_STATE_ACTIVE)
		return;
	/* SIGABRT ends like abort() does (assert() reaches it without going
	 * through the interposed abort); any other says which signal. */
	if (sig == SIGABRT)
		lt__writer_crash_flush(LT_EXIT_ABORT, 128 + SIGABRT);
	else
		lt__writer_crash_flush(LT_EXIT_SIGNAL, 128 + sig);
	atomic_store_explicit(&lt__state, LT_STATE_OFF, memory_order_relaxed);
}

int lt__exec_prepare(const char *path)
{
	if (getpid() != lt__pid || lt__tls.busy ||
	    atomic_load_explicit(&lt__state, memory_order_relaxed) != LT_STATE_ACTIVE)
		return 0;
	lt__tls.busy++;
	const char *saved_path = lt__string_save(path ? path : "");
	lt__tls.busy--;
	record_positioned(LT_EV_EXEC, (uintptr_t)saved_path, 0);
	lt__tls.busy++;
	int saved = errno;
	lt__writer_pause(1, LT_EXIT_EXEC, 0);
	errno = saved;
	return 1; /* busy stays raised until the exec fails */
}

void lt__exec_failed(void)
{
	int saved = errno;
	lt__writer_resume();
	errno = saved;
	lt__tls.busy--;
}

static uint64_t prepared_prefix;
static int fork_prepared;

void lt__fork_prepare(void)
{
	fork_prepared = 0;
	if (getpid() != lt__pid ||
	    atomic_load_explicit(&lt__state, memory_order_relaxed) != LT_STATE_ACTIVE)
		return;
	lt__tls.busy++;
	/* Relaxed: the sequence only has to be unique per parent. */
	child_fork_seq = atomic_fetch_add_explicit(&fork_seq, 1, memory_order_relaxed) + 1;
	prepared_prefix = lt__writer_pause(0, -1, 0);
	fork_prepared = 1;
}

void lt__fork_parent(void)
{
	if (!fork_prepared)
		return;
	lt__writer_resume();
	lt__tls.busy--;
}

void lt__fork_child(void)
{
	if (!fork_prepared)
		return;
	lt__pid = getpid();
	/* Only this thread exists in the child; the other rings hold what
	 * their threads published before the fork, which the child's trace
	 * needs, so they are drained once and then freed. */
	for (lt_ring_t *r = atomic_load_explicit(&lt__rings, memory_order_acquire); r; r = r->next) {
		if (r == lt__tls.ring)
			r->tid = lt__sys_gettid();
		else if (atomic_load_explicit(&r->state, memory_order_relaxed) != LT_RING_FREE)
			atomic_store_explicit(&r->state, LT_RING_DEAD, memory_order_relaxed);
	}
	size_t n = strlen(lt__writer_path());
	if (n >= sizeof parent_path)
		n = sizeof parent_path - 1;
	memcpy(parent_path, lt__writer_path(), n);
	parent_path[n] = 0;
	child_prefix = prepared_prefix;
	lt__writer_after_fork_child();
	atomic_store_explicit(&finished, 0, memory_order_relaxed);
	atomic_store_explicit(&lt__state, LT_STATE_LAZY, memory_order_relaxed);
	lt__tls.busy--;
}

void lt__fork_untraced(void)
{
	/* The child's copy of the state only: the parent's is untouched. */
	atomic_store_explicit(&lt__state, LT_STATE_OFF, memory_order_relaxed);
}

void lt__fork_done(pid_t child)
{
	uint64_t seq = child_fork_seq;
	record_positioned(LT_EV_FORK, (uint64_t)child, seq);
}
