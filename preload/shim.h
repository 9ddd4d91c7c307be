/* SPDX-License-Identifier: MIT */
/* Internal interface between the shim's parts: the interposed entry points
 * (interpose.c) call the recording core (record.c), which feeds rings that
 * the writer thread (writer.c) drains into the trace file. */
#ifndef LT_SHIM_H
#define LT_SHIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "leaktrace/format.h"
#include "ring.h"

#define LT_HIDDEN __attribute__((visibility("hidden")))
#define LT_LIKELY(x) __builtin_expect(!!(x), 1)
#define LT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Global tracing state, read on every event. Becoming ACTIVE is a release
 * store that the acquire load on the event path pairs with; other reads
 * are relaxed, where a stale value only delays noticing a state change by
 * one event (transitions that matter for correctness also go through the
 * writer handshake in writer.c). */
enum lt_state {
	LT_STATE_UNINIT = 0, /* nothing set up yet */
	LT_STATE_ACTIVE, /* recording */
	LT_STATE_LAZY, /* fork child: recording starts at its first event */
	LT_STATE_OFF, /* not recording (error, or after the final flush) */
};
extern _Atomic int lt__state LT_HIDDEN;

/* The epoch the writer advances at most every 100 us; producers tag
 * their events with it (see format.h, "Ordering"). */
extern _Atomic uint64_t lt__epoch LT_HIDDEN;

struct lt_config_s {
	int depth; /* frames per stack, 0 = no stacks */
	int unwinder; /* enum lt_unwinder */
	int zstd_level; /* 0 = store raw blocks */
	int snapshot_signal; /* 0 = none */
	char output_pattern[512];
};
extern struct lt_config_s lt__config LT_HIDDEN;

enum lt_unwinder {
	LT_UNWIND_FAST = 0, /* unwind.c, falling back to libunwind */
	LT_UNWIND_LIBUNWIND, /* libunwind only */
	LT_UNWIND_FP, /* frame pointers */
	LT_UNWIND_CHECK, /* fast, compared against libunwind on every stack */
};

/* Process identity, refreshed in a fork child. */
extern pid_t lt__pid LT_HIDDEN;

/* Per-thread state. initial-exec TLS: no allocation, no lock, no call into
 * the dynamic loader when it is first touched. */
struct lt_tls_s {
	int busy; /* recursion guard: >0 while the shim itself runs in this
		   * thread, so allocations made by libunwind, dlsym or the
		   * loader on our behalf are never recorded */
	lt_ring_t *ring;
	uintptr_t stack_hi; /* top of this thread's stack, for fp unwinding */
};
extern __thread struct lt_tls_s lt__tls
	__attribute__((tls_model("initial-exec"))) LT_HIDDEN;

/* record.c: the recording core. */
void lt__init(void) LT_HIDDEN; /* idempotent; called lazily on first event */
void lt__record_alloc(void *p, size_t size) LT_HIDDEN;
void lt__record_free(void *p) LT_HIDDEN;
void lt__record_realloc_begin(void *old, uint64_t epoch) LT_HIDDEN;
void lt__record_realloc(void *old, void *p, size_t size, uint64_t epoch) LT_HIDDEN;
void lt__record_marker(const char *name) LT_HIDDEN;
void lt__modules_changed(void) LT_HIDDEN;
void lt__finish(int exit_kind, int status) LT_HIDDEN; /* final flush */
int lt__exec_prepare(const char *path) LT_HIDDEN; /* flush before exec */
void lt__exec_failed(void) LT_HIDDEN;
void lt__fork_prepare(void) LT_HIDDEN;
void lt__fork_parent(void) LT_HIDDEN;
void lt__fork_child(void) LT_HIDDEN;
void lt__fork_done(pid_t child) LT_HIDDEN; /* from the fork() wrapper */
void lt__fork_untraced(void) LT_HIDDEN; /* in a child that is not traced */

/* stacks.c: stack capture and the shared stack table. */
int lt__stacks_init(void) LT_HIDDEN;
uint32_t lt__stack_capture_id(void) LT_HIDDEN; /* 0 = no stack */
uint32_t lt__stack_intern(const uint64_t *frames, int depth) LT_HIDDEN;
void lt__unwind_check_report(void) LT_HIDDEN;

/* unwind.c: the CFI-cache stack walker. */
struct lt_walk_origin {
	uint64_t ip, rsp, rbp; /* the allocator's caller */
	uint64_t lo; /* lowest stack address the walk may read */
};
int lt__unwind_init(void) LT_HIDDEN;
int lt__unwind_origin(struct lt_walk_origin *o, uintptr_t stack_hi) LT_HIDDEN;
int lt__unwind_fast(uint64_t *out, int max, uintptr_t stack_hi, const struct lt_walk_origin *o,
		    uint64_t *slots, int *nslots) LT_HIDDEN;
const uint64_t *lt__stack_frames(uint32_t id, uint32_t *depth) LT_HIDDEN;
uint64_t lt__stack_overflows(void) LT_HIDDEN;

/* python.c: CPython's frames (format.h, PYCODE and PYFRAMES). In the
 * stack table, a stack with Python frames is its native frames, this
 * mark (never a return address), then (code key, where) pairs. */
#define LT_PYFRAMES_MARK 0
extern _Atomic bool lt__py_active LT_HIDDEN;
struct lt_pycode;
void lt__py_init(void) LT_HIDDEN; /* from the constructor */
/* The Python frames this thread is running, innermost first, as (code
 * key, where) pairs in out[0..2*max); their number (0: none, or this
 * thread does not hold the GIL). */
int lt__py_frames(uint64_t *out, int max) LT_HIDDEN;
void lt__py_forget(uintptr_t addr) LT_HIDDEN; /* addr was freed */
struct lt_pycode *lt__py_take(void) LT_HIDDEN; /* writer: all pending, oldest first */
struct lt_pycode *lt__py_next(const struct lt_pycode *e) LT_HIDDEN;
size_t lt__py_size(const struct lt_pycode *e) LT_HIDDEN; /* encoded, at most */
size_t lt__py_encode(const struct lt_pycode *e, uint8_t *out, size_t cap) LT_HIDDEN;

/* modules.c: the module map. */
struct lt_modules_s;
int lt__modules_snapshot(void) LT_HIDDEN; /* rebuild and publish; -errno */
int lt__modules_contains(uint64_t addr) LT_HIDDEN;
struct lt_modules_s *lt__modules_take(void) LT_HIDDEN; /* writer: all pending, oldest first */
struct lt_modules_s *lt__modules_next(const struct lt_modules_s *m) LT_HIDDEN;
size_t lt__modules_encode(struct lt_modules_s *m, uint8_t *out, size_t cap) LT_HIDDEN;
void lt__modules_release(struct lt_modules_s *m) LT_HIDDEN;
size_t lt__modules_size(const struct lt_modules_s *m) LT_HIDDEN;
extern uintptr_t lt__self_lo LT_HIDDEN, lt__self_hi LT_HIDDEN;

/* strings.c: an append-only arena for marker names and exec paths. */
const char *lt__string_save(const char *s) LT_HIDDEN;

/* writer.c: the writer thread and the file. */
int lt__writer_open(int fork_child, const char *parent, uint64_t prefix,
		    uint64_t fork_seq) LT_HIDDEN;
int lt__writer_start(void) LT_HIDDEN;
void lt__writer_wake(void) LT_HIDDEN;
/* Asks the writer to drain every ring, flush, optionally write END, and
 * stay paused until lt__writer_resume(). Returns the file size then. */
uint64_t lt__writer_pause(int drain, int end_kind, int status) LT_HIDDEN;
void lt__writer_resume(void) LT_HIDDEN;
void lt__writer_stop(int end_kind, int status) LT_HIDDEN;
void lt__writer_after_fork_child(void) LT_HIDDEN;
const char *lt__writer_path(void) LT_HIDDEN;
extern _Atomic uint64_t lt__signal_markers LT_HIDDEN; /* snapshot signals received */
/* Events that could not be recorded because the shim could not get
 * memory (a new thread's ring under an address-space limit): counted in
 * the END record, never dropped silently. */
extern _Atomic uint64_t lt__lost_events LT_HIDDEN;

/* fdguard.c: the shim's own descriptors, at high numbers, which the
 * interposed close/close_range/closefrom/dup2/dup3 keep the program from
 * closing or replacing. */
enum { LT_FD_TRACE = 0, LT_FD_STATM = 1, LT_FD_SLOTS = 2 };
/* Moves fd to a high number and guards it in slot; returns the number. */
int lt__fd_adopt(int slot, int fd) LT_HIDDEN;
extern _Atomic int lt__quick_exit_status LT_HIDDEN; /* quick_exit()'s status */
/* Called before the program's sigaction/signal for sig takes effect: says
 * once on stderr when it replaces the snapshot signal's handler. */
struct sigaction;
void lt__snapshot_signal_check(int sig, const struct sigaction *act) LT_HIDDEN;
/* A copy of fd at a high number (close-on-exec), fd closed; fd itself when
 * none is free. For the shim's helpers' descriptors (libunwind's pipe). */
int lt__fd_move_high(int fd) LT_HIDDEN;
/* The slot's descriptor (-1 if none) for one system call, then put. */
int lt__fd_get(int slot) LT_HIDDEN;
void lt__fd_put(void) LT_HIDDEN;
void lt__fd_release(int slot) LT_HIDDEN; /* stop guarding and close */
void lt__fd_forget(int slot) LT_HIDDEN; /* stop guarding, do not close */
void lt__fd_after_fork_child(void) LT_HIDDEN;
/* 1 if fd is one of the shim's (in this process, not a vfork child). */
int lt__fd_protects(int fd) LT_HIDDEN;
/* The guarded descriptors within [first, last], ascending; their count. */
int lt__fd_guarded_in(unsigned first, unsigned last, int out[LT_FD_SLOTS]) LT_HIDDEN;
/* Before the program puts another file at number fd: if fd is ours, move
 * ours elsewhere first (the program then sees fd as a free number). */
void lt__fd_evict(int fd) LT_HIDDEN;

/* crash.c: flushing on fatal signals. */
struct sigaction;
typedef int (*lt_sigaction_fn)(int, const struct sigaction *, struct sigaction *);
/* Installs the shim's handler for the fatal signals left at SIG_DFL;
 * real is libc's sigaction. */
void lt__crash_install(lt_sigaction_fn real) LT_HIDDEN;
/* The interposed sigaction(): real is libc's. */
int lt__crash_sigaction(int sig, const struct sigaction *act, struct sigaction *old,
			lt_sigaction_fn real) LT_HIDDEN;
int lt__crash_managed(int sig) LT_HIDDEN; /* 1: sig goes through the above */
/* record.c, from the handler: drain and flush everything recorded so far
 * (async-signal-safe; gives up after a bounded wait). */
void lt__crash_flush(int sig) LT_HIDDEN;
/* writer.c: the same, as a pause that never resumes. 0 or -ETIMEDOUT. */
int lt__writer_crash_flush(int end_kind, int status) LT_HIDDEN;

/* The registry of rings: a push-only linked list the writer walks. */
extern _Atomic(lt_ring_t *) lt__rings LT_HIDDEN;
lt_ring_t *lt__ring_acquire(void) LT_HIDDEN;

#endif /* LT_SHIM_H */
