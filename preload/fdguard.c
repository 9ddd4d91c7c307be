/* SPDX-License-Identifier: MIT */
/* The shim's own file descriptors (the trace file, /proc/self/statm), kept
 * at high numbers and guarded: a daemon that closes every descriptor, or
 * dup2()s over one, must neither lose the trace nor receive trace data in
 * a file of its own that happens to get the same number. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "sys.h"

/*
 * guarded[slot] is the descriptor number the shim uses for that slot, or
 * -1. `users` counts threads between lt__fd_get() and lt__fd_put(), i.e.
 * inside a system call on a guarded descriptor. Moving a descriptor away
 * (lt__fd_evict) is Dekker's pattern, all seq_cst: the mover stores the
 * new number, then loads `users`; a user increments `users`, then loads
 * the number. In the single total order either the mover sees the user
 * (and waits for its put before closing the old number) or the user sees
 * the new number. Either way no system call of the shim ever reaches the
 * old number once the program can reuse it.
 */
static _Atomic int guarded[LT_FD_SLOTS] = {-1, -1};
static _Atomic int users;

static void raw_close(int fd)
{
	/* Not through close(): ours is interposed and would refuse. */
	syscall(SYS_close, fd);
}

/* The lowest number the shim's descriptors are moved to: well above what
 * programs normally use, below the soft limit (the kernel refuses higher
 * numbers) and at most a few thousand (the kernel sizes each process's
 * descriptor table to its highest open number). */
static int high_floor(void)
{
	struct rlimit rl;
	rlim_t soft = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		soft = rl.rlim_cur;
	if (soft == RLIM_INFINITY || soft > 4096)
		soft = 4096;
	if (soft >= 256)
		return (int)soft - 32; /* 992 under the usual limit of 1024 */
	return (int)soft / 2;
}

/* Returns a copy of fd at a high number (close-on-exec) and closes fd, or
 * fd itself when no high number is free. Never fails. */
static int move_high(int fd)
{
	int floor = high_floor();
	if (fd >= floor)
		return fd;
	for (int want = floor; want > fd && want >= 16; want /= 2) {
		int n = fcntl(fd, F_DUPFD_CLOEXEC, want);
		if (n >= 0) {
			raw_close(fd);
			return n;
		}
	}
	return fd;
}

int lt__fd_move_high(int fd)
{
	if (fd < 0)
		return fd;
	int saved = errno;
	fd = move_high(fd);
	errno = saved;
	return fd;
}

int lt__fd_adopt(int slot, int fd)
{
	if (fd < 0)
		return fd;
	int saved = errno;
	fd = move_high(fd);
	errno = saved;
	/* Seq_cst: see the comment on `guarded`. */
	atomic_store(&guarded[slot], fd);
	return fd;
}

int lt__fd_get(int slot)
{
	/* Seq_cst increment then seq_cst load: see `guarded`. */
	atomic_fetch_add(&users, 1);
	return atomic_load(&guarded[slot]);
}

void lt__fd_put(void)
{
	/* Release: our system call on the descriptor is done before a mover
	 * that sees the count drop closes it. */
	atomic_fetch_sub_explicit(&users, 1, memory_order_release);
}

static void wait_for_users(void)
{
	/* Acquire pairs with the release in lt__fd_put(). */
	while (atomic_load_explicit(&users, memory_order_acquire) != 0)
		sched_yield();
}

void lt__fd_release(int slot)
{
	/* Seq_cst: see `guarded`. */
	int fd = atomic_exchange(&guarded[slot], -1);
	if (fd < 0)
		return;
	wait_for_users();
	raw_close(fd);
}

void lt__fd_forget(int slot)
{
	/* Relaxed: the number no longer names our file (the program replaced
	 * it behind our back); only the writer, the one user, reads it. */
	atomic_store_explicit(&guarded[slot], -1, memory_order_relaxed);
}

void lt__fd_after_fork_child(void)
{
	/* Only this thread exists: no system call of the shim is in flight,
	 * whatever count was copied from the parent. Relaxed: single thread. */
	atomic_store_explicit(&users, 0, memory_order_relaxed);
}

int lt__fd_protects(int fd)
{
	if (LT_LIKELY(fd < 0))
		return 0;
	for (int s = 0; s < LT_FD_SLOTS; s++)
		/* Relaxed: a program closing a descriptor it does not own
		 * while the shim opens it is racing with itself anyway. */
		if (atomic_load_explicit(&guarded[s], memory_order_relaxed) == fd)
			/* A vfork child shares our memory but has its own
			 * descriptor table: there the close is its own. */
			return getpid() == lt__pid;
	return 0;
}

int lt__fd_guarded_in(unsigned first, unsigned last, int out[LT_FD_SLOTS])
{
	int n = 0;
	if (getpid() != lt__pid)
		return 0;
	for (int s = 0; s < LT_FD_SLOTS; s++) {
		/* Relaxed: as in lt__fd_protects(). */
		int fd = atomic_load_explicit(&guarded[s], memory_order_relaxed);
		if (fd >= 0 && (unsigned)fd >= first && (unsigned)fd <= last)
			out[n++] = fd;
	}
	if (n == 2 && out[0] > out[1]) {
		int t = out[0];
		out[0] = out[1];
		out[1] = t;
	}
	return n;
}

void lt__fd_evict(int fd)
{
	for (int s = 0; s < LT_FD_SLOTS; s++) {
		/* Relaxed: the loop only finds the slot; the store below is
		 * the one that orders (see `guarded`). */
		if (atomic_load_explicit(&guarded[s], memory_order_relaxed) != fd)
			continue;
		int saved = errno;
		int to = fcntl(fd, F_DUPFD_CLOEXEC, high_floor());
		/* Seq_cst: see `guarded`. -1 when no number was free: the
		 * writer then reopens the file by its path. */
		atomic_store(&guarded[s], to);
		wait_for_users();
		raw_close(fd);
		errno = saved;
		return;
	}
}
