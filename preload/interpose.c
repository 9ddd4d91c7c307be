/* SPDX-License-Identifier: MIT */
/* The interposed symbols and the dlsym bootstrap, nothing else: each entry
 * point calls the real function found with dlsym(RTLD_NEXT) and tells the
 * recording core (record.c) what happened. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

#define LT_EXPORT __attribute__((visibility("default")))

static struct {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*reallocarray)(void *, size_t, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	size_t (*malloc_usable_size)(void *);
	void *(*dlopen)(const char *, int);
	void *(*dlmopen)(Lmid_t, const char *, int);
	int (*dlclose)(void *);
	pid_t (*fork)(void);
	pid_t (*_Fork)(void);
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execv)(const char *, char *const[]);
	int (*execvp)(const char *, char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*fexecve)(int, char *const[], char *const[]);
	void (*_exit)(int) __attribute__((noreturn));
	void (*_Exit)(int) __attribute__((noreturn));
	void (*abort)(void) __attribute__((noreturn));
	void (*quick_exit)(int) __attribute__((noreturn));
	int (*close)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*pipe2)(int[2], int);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	sighandler_t (*signal)(int, sighandler_t);
} real;

/*
 * The bootstrap arena. dlsym() itself may call malloc or calloc before we
 * know where the real ones are; those calls are served from this static
 * buffer. Each arena block starts with a 16-byte header holding its size,
 * so free() can recognise it (and ignore it: arena memory is never reused)
 * and realloc() can copy out of it. These allocations are the shim's own
 * and are not recorded.
 */
#define LT_ARENA_SIZE (64 * 1024)
static _Alignas(16) unsigned char arena[LT_ARENA_SIZE];
static _Atomic size_t arena_used; /* relaxed: bump pointer, no data published */
static _Atomic int resolving; /* relaxed: set only by the resolving thread */

static int in_arena(const void *p)
{
	return (const unsigned char *)p >= arena &&
	       (const unsigned char *)p < arena + LT_ARENA_SIZE;
}

static void *arena_alloc(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	size_t need = (size + 15) & ~(size_t)15;
	size_t off = atomic_load_explicit(&arena_used, memory_order_relaxed);
	for (;;) {
		size_t start = ((off + 16 + align - 1) & ~(align - 1));
		if (start + need > LT_ARENA_SIZE || size > LT_ARENA_SIZE)
			return NULL;
		if (atomic_compare_exchange_weak_explicit(&arena_used, &off, start + need,
							  memory_order_relaxed,
							  memory_order_relaxed)) {
			*(size_t *)(arena + start - 16) = size;
			return arena + start; /* static storage: already zero */
		}
	}
}

static size_t arena_size(const void *p)
{
	return *(const size_t *)((const unsigned char *)p - 16);
}

#define RESOLVE(name) real.name = (__typeof__(real.name))dlsym(RTLD_NEXT, #name)

/* Looks up every real function once. Allocations dlsym makes meanwhile
 * come from the arena (the `resolving` flag). */
static void resolve(void)
{
	int saved = errno;
	atomic_store_explicit(&resolving, 1, memory_order_relaxed);
	RESOLVE(free);
	RESOLVE(calloc);
	RESOLVE(realloc);
	RESOLVE(reallocarray);
	RESOLVE(posix_memalign);
	RESOLVE(aligned_alloc);
	RESOLVE(memalign);
	RESOLVE(valloc);
	RESOLVE(pvalloc);
	RESOLVE(malloc_usable_size);
	RESOLVE(dlopen);
	RESOLVE(dlmopen);
	RESOLVE(dlclose);
	RESOLVE(fork);
	RESOLVE(_Fork);
	RESOLVE(execve);
	RESOLVE(execv);
	RESOLVE(execvp);
	RESOLVE(execvpe);
	RESOLVE(fexecve);
	RESOLVE(_exit);
	RESOLVE(_Exit);
	RESOLVE(abort);
	RESOLVE(quick_exit);
	RESOLVE(close);
	RESOLVE(dup2);
	RESOLVE(dup3);
	RESOLVE(pipe2);
	RESOLVE(sigaction);
	RESOLVE(signal);
	RESOLVE(malloc); /* last: a non-NULL real.malloc means all are set */
	atomic_store_explicit(&resolving, 0, memory_order_relaxed);
	errno = saved;
}

static inline int bootstrapping(void)
{
	if (LT_LIKELY(real.malloc != NULL))
		return 0;
	if (atomic_load_explicit(&resolving, memory_order_relaxed))
		return 1;
	resolve();
	return real.malloc == NULL; /* no allocator below us: arena only */
}

LT_EXPORT void *malloc(size_t size)
{
	if (LT_UNLIKELY(bootstrapping()))
		return arena_alloc(size, 16);
	void *p = real.malloc(size);
	if (LT_LIKELY(p != NULL))
		lt__record_alloc(p, size);
	return p;
}

LT_EXPORT void free(void *p)
{
	if (LT_UNLIKELY(p == NULL || in_arena(p)))
		return;
	if (LT_UNLIKELY(bootstrapping()))
		return;
	/* Recorded before the real free: once the block is back in the
	 * allocator another thread may get the address (format.h). */
	lt__record_free(p);
	real.free(p);
}

LT_EXPORT void *calloc(size_t n, size_t size)
{
	if (LT_UNLIKELY(bootstrapping())) {
		size_t total;
		if (__builtin_mul_overflow(n, size, &total))
			return NULL;
		return arena_alloc(total, 16);
	}
	void *p = real.calloc(n, size);
	if (LT_LIKELY(p != NULL))
		lt__record_alloc(p, n * size);
	return p;
}

LT_EXPORT void *realloc(void *old, size_t size)
{
	if (LT_UNLIKELY(old != NULL && in_arena(old))) {
		void *p = malloc(size);
		if (p) {
			size_t n = arena_size(old);
			memcpy(p, old, n < size ? n : size);
		}
		return p;
	}
	if (LT_UNLIKELY(bootstrapping()))
		return arena_alloc(size, 16);
	if (old == NULL) {
		void *p = real.realloc(NULL, size);
		if (p)
			lt__record_alloc(p, size);
		return p;
	}
	if (size == 0) {
		/* realloc(p, 0) frees p (glibc returns NULL; other allocators
		 * may hand back a minimal block, which is a new allocation). */
		lt__record_free(old);
		void *p = real.realloc(old, 0);
		if (p)
			lt__record_alloc(p, 0);
		return p;
	}
	/* The epoch is read before the real call: the old block may be
	 * handed to another thread before this call returns. */
	uint64_t epoch = atomic_load_explicit(&lt__epoch, memory_order_relaxed);
	lt__record_realloc_begin(old, epoch);
	void *p = real.realloc(old, size);
	if (p)
		lt__record_realloc(old, p, size, epoch);
	return p;
}

LT_EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	/* glibc's reallocarray is realloc after the overflow check; going
	 * through our realloc keeps one definition of the conventions. */
	return realloc(old, total);
}

LT_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	if (LT_UNLIKELY(bootstrapping())) {
		*out = arena_alloc(size, align);
		return *out ? 0 : ENOMEM;
	}
	int rc = real.posix_memalign(out, align, size);
	if (rc == 0)
		lt__record_alloc(*out, size);
	return rc;
}

LT_EXPORT void *aligned_alloc(size_t align, size_t size)
{
	if (LT_UNLIKELY(bootstrapping()))
		return arena_alloc(size, align);
	void *p = real.aligned_alloc(align, size);
	if (p)
		lt__record_alloc(p, size);
	return p;
}

LT_EXPORT void *memalign(size_t align, size_t size)
{
	if (LT_UNLIKELY(bootstrapping()))
		return arena_alloc(size, align);
	void *p = real.memalign(align, size);
	if (p)
		lt__record_alloc(p, size);
	return p;
}

LT_EXPORT void *valloc(size_t size)
{
	if (LT_UNLIKELY(bootstrapping()))
		return arena_alloc(size, 4096);
	void *p = real.valloc(size);
	if (p)
		lt__record_alloc(p, size);
	return p;
}

LT_EXPORT void *pvalloc(size_t size)
{
	if (LT_UNLIKELY(bootstrapping()))
		return arena_alloc(size, 4096);
	void *p = real.pvalloc(size);
	if (p) {
		/* pvalloc hands out whole pages; valgrind counts them so. */
		size_t page = (size_t)sysconf(_SC_PAGESIZE);
		size_t rounded = size ? (size + page - 1) & ~(page - 1) : page;
		lt__record_alloc(p, rounded);
	}
	return p;
}

LT_EXPORT size_t malloc_usable_size(void *p)
{
	if (p && in_arena(p))
		return arena_size(p);
	if (LT_UNLIKELY(bootstrapping()) || !real.malloc_usable_size)
		return 0;
	return real.malloc_usable_size(p);
}

/* ---- the module map follows dlopen and dlclose ---- */

LT_EXPORT void *dlopen(const char *file, int mode)
{
	if (LT_UNLIKELY(bootstrapping()) || !real.dlopen)
		return NULL;
	void *h = real.dlopen(file, mode);
	if (h)
		lt__modules_changed();
	return h;
}

LT_EXPORT void *dlmopen(Lmid_t lmid, const char *file, int mode)
{
	if (LT_UNLIKELY(bootstrapping()) || !real.dlmopen)
		return NULL;
	void *h = real.dlmopen(lmid, file, mode);
	if (h)
		lt__modules_changed();
	return h;
}

LT_EXPORT int dlclose(void *h)
{
	if (LT_UNLIKELY(bootstrapping()) || !real.dlclose)
		return -1;
	int rc = real.dlclose(h);
	lt__modules_changed();
	return rc;
}

/* ---- processes: fork, exec, exit ---- */

/* _Fork (glibc 2.34) forks without running pthread_atfork handlers, so
 * the shim's are called here. It is async-signal-safe and may be called
 * from a handler that interrupted the shim itself: then the child is not
 * traced (its trace could not be made safely) rather than hung. */
LT_EXPORT pid_t _Fork(void)
{
	if (LT_UNLIKELY(bootstrapping()) || !real._Fork) {
		errno = ENOSYS;
		return -1;
	}
	if (lt__tls.busy) {
		pid_t pid = real._Fork();
		if (pid == 0)
			lt__fork_untraced();
		return pid;
	}
	lt__fork_prepare();
	pid_t pid = real._Fork();
	int saved = errno;
	if (pid == 0) {
		lt__fork_child();
	} else {
		lt__fork_parent();
		if (pid > 0)
			lt__fork_done(pid);
	}
	errno = saved;
	return pid;
}

LT_EXPORT pid_t fork(void)
{
	if (LT_UNLIKELY(bootstrapping()) || !real.fork) {
		errno = ENOSYS;
		return -1;
	}
	/* pthread_atfork handlers (record.c) do the work around the fork;
	 * here we only learn the child's pid for the parent's trace. */
	pid_t pid = real.fork();
	if (pid > 0)
		lt__fork_done(pid);
	return pid;
}

/* Flushes the trace before the image is replaced; restores recording if
 * exec fails. errno is the exec's own. */
#define EXEC_WRAP(call)                           \
	do {                                      \
		int prepared = lt__exec_prepare(path); \
		int rc = (call);                  \
		int saved = errno;                \
		if (prepared)                     \
			lt__exec_failed();        \
		errno = saved;                    \
		return rc;                        \
	} while (0)

LT_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	if (LT_UNLIKELY(bootstrapping()) || !real.execve) {
		errno = ENOSYS;
		return -1;
	}
	EXEC_WRAP(real.execve(path, argv, envp));
}

LT_EXPORT int execv(const char *path, char *const argv[])
{
	if (LT_UNLIKELY(bootstrapping()) || !real.execv) {
		errno = ENOSYS;
		return -1;
	}
	EXEC_WRAP(real.execv(path, argv));
}

LT_EXPORT int execvp(const char *path, char *const argv[])
{
	if (LT_UNLIKELY(bootstrapping()) || !real.execvp) {
		errno = ENOSYS;
		return -1;
	}
	EXEC_WRAP(real.execvp(path, argv));
}

LT_EXPORT int execvpe(const char *path, char *const argv[], char *const envp[])
{
	if (LT_UNLIKELY(bootstrapping()) || !real.execvpe) {
		errno = ENOSYS;
		return -1;
	}
	EXEC_WRAP(real.execvpe(path, argv, envp));
}

LT_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	if (LT_UNLIKELY(bootstrapping()) || !real.fexecve) {
		errno = ENOSYS;
		return -1;
	}
	const char *path = "(fexecve)";
	EXEC_WRAP(real.fexecve(fd, argv, envp));
}

/* execl and friends take their arguments inline; collect them into an
 * array on the stack (never malloc) and go through the v-variants. */
#define COLLECT_ARGS(first, ap, argv)                                  \
	size_t argc_ = 1;                                              \
	va_start(ap, first);                                           \
	while (va_arg(ap, const char *) != NULL)                       \
		argc_++;                                               \
	va_end(ap);                                                    \
	const char *argv[argc_ + 1];                                   \
	argv[0] = first;                                               \
	va_start(ap, first);                                           \
	for (size_t i_ = 1; i_ <= argc_; i_++)                         \
		argv[i_] = va_arg(ap, const char *);                   \

LT_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	COLLECT_ARGS(arg, ap, argv)
	va_end(ap);
	return execv(path, (char *const *)argv);
}

LT_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	COLLECT_ARGS(arg, ap, argv)
	va_end(ap);
	return execvp(file, (char *const *)argv);
}

LT_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	COLLECT_ARGS(arg, ap, argv)
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, (char *const *)argv, envp);
}

LT_EXPORT void _exit(int status)
{
	if (!LT_UNLIKELY(bootstrapping()) && real._exit) {
		lt__finish(LT_EXIT_UNDERSCORE, status);
		real._exit(status);
	}
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}

LT_EXPORT void _Exit(int status)
{
	if (!LT_UNLIKELY(bootstrapping()) && real._Exit) {
		lt__finish(LT_EXIT_UNDERSCORE, status);
		real._Exit(status);
	}
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}

/* quick_exit runs the at_quick_exit handlers, the shim's last among them
 * (registered at start-up), which flushes with this status. */
LT_EXPORT void quick_exit(int status)
{
	/* Relaxed: read by this thread, in the handler quick_exit runs. */
	atomic_store_explicit(&lt__quick_exit_status, status, memory_order_relaxed);
	if (!LT_UNLIKELY(bootstrapping()) && real.quick_exit)
		real.quick_exit(status);
	_exit(status);
}

LT_EXPORT void abort(void)
{
	if (!LT_UNLIKELY(bootstrapping()) && real.abort) {
		lt__finish(LT_EXIT_ABORT, 134);
		real.abort();
	}
	syscall(SYS_exit_group, 134);
	__builtin_unreachable();
}

/* ---- the shim's own descriptors (fdguard.c) ----
 *
 * A program that closes "every" descriptor (a daemon's close loop,
 * closefrom, close_range) or dup2()s onto a number the shim holds must
 * neither take the trace file away nor see anything it would not see
 * without the shim: a close of the shim's number fails with EBADF, as it
 * would natively (the number was free), and a dup2 onto it first moves the
 * shim's descriptor elsewhere. The real functions may still be unresolved
 * here (nothing has called malloc yet); the system calls stand in. */

static int real_close(int fd)
{
	return real.close ? real.close(fd) : (int)syscall(SYS_close, fd);
}

LT_EXPORT int close(int fd)
{
	if (LT_UNLIKELY(lt__fd_protects(fd))) {
		errno = EBADF;
		return -1;
	}
	return real_close(fd);
}

/* close_range(2) over [first, last] except the shim's descriptors: one
 * system call per piece. 0, or -1 with errno from the first failure. */
static int close_range_around(unsigned first, unsigned last, int flags)
{
	int ours[LT_FD_SLOTS];
	int n = first <= last ? lt__fd_guarded_in(first, last, ours) : 0;
	if (n == 0)
		return (int)syscall(SYS_close_range, first, last, flags);
	int rc = 0, err = 0;
	unsigned lo = first;
	for (int i = 0; i <= n; i++) {
		unsigned hi;
		if (i < n) {
			if ((unsigned)ours[i] == lo) {
				lo++;
				continue;
			}
			hi = (unsigned)ours[i] - 1;
		} else {
			if (lo > last || (n && (unsigned)ours[n - 1] == UINT32_MAX))
				break;
			hi = last;
		}
		if (syscall(SYS_close_range, lo, hi, flags) != 0 && !rc) {
			rc = -1;
			err = errno;
		}
		if (i < n)
			lo = (unsigned)ours[i] + 1;
	}
	if (rc)
		errno = err;
	return rc;
}

LT_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	return close_range_around(first, last, flags);
}

LT_EXPORT void closefrom(int lowfd)
{
	int saved = errno;
	unsigned lo = lowfd < 0 ? 0 : (unsigned)lowfd;
	if (close_range_around(lo, ~0u, 0) != 0 && errno == ENOSYS) {
		/* Kernels before 5.9: close one by one up to the limit. */
		long max = sysconf(_SC_OPEN_MAX);
		if (max < 0 || max > 65536)
			max = 65536;
		for (long fd = lo; fd < max; fd++)
			if (!lt__fd_protects((int)fd))
				syscall(SYS_close, (int)fd);
	}
	errno = saved; /* closefrom reports nothing */
}

/* Before dup2/dup3 from oldfd onto newfd: false (errno EBADF) when oldfd
 * is the shim's, as without the shim (the number is free); moves the
 * shim's descriptor away when newfd is its number. */
static bool dup_allowed(int oldfd, int newfd)
{
	if (LT_UNLIKELY(lt__fd_protects(oldfd))) {
		errno = EBADF;
		return false;
	}
	if (LT_UNLIKELY(lt__fd_protects(newfd)))
		lt__fd_evict(newfd);
	return true;
}

LT_EXPORT int dup2(int oldfd, int newfd)
{
	if (!dup_allowed(oldfd, newfd))
		return -1;
	if (!real.dup2)
		return (int)syscall(SYS_dup2, oldfd, newfd);
	return real.dup2(oldfd, newfd);
}

LT_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (!dup_allowed(oldfd, newfd))
		return -1;
	if (!real.dup3)
		return (int)syscall(SYS_dup3, oldfd, newfd, flags);
	return real.dup3(oldfd, newfd, flags);
}

/* A pipe made while the shim itself is at work on this thread (busy) is
 * not the program's: libunwind opens one to check addresses the first time
 * it unwinds. At the lowest free numbers (3 and 4) it would shift every
 * descriptor the program opens afterwards; it goes high instead. */
LT_EXPORT int pipe2(int fds[2], int flags)
{
	int rc = real.pipe2 ? real.pipe2(fds, flags) : (int)syscall(SYS_pipe2, fds, flags);
	if (rc == 0 && LT_UNLIKELY(lt__tls.busy > 0)) {
		fds[0] = lt__fd_move_high(fds[0]);
		fds[1] = lt__fd_move_high(fds[1]);
	}
	return rc;
}

LT_EXPORT int pipe(int fds[2])
{
	return pipe2(fds, 0);
}

/* ---- fatal signals (crash.c) ---- */

LT_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (LT_UNLIKELY(!real.sigaction)) {
		(void)bootstrapping();
		if (!real.sigaction) {
			errno = ENOSYS;
			return -1;
		}
	}
	lt__snapshot_signal_check(sig, act);
	return lt__crash_sigaction(sig, act, old, real.sigaction);
}

/* signal() with glibc's (BSD) semantics, through our sigaction when the
 * shim manages sig. */
LT_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	if (LT_UNLIKELY(!real.signal)) {
		(void)bootstrapping();
		if (!real.signal) {
			errno = ENOSYS;
			return SIG_ERR;
		}
	}
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	lt__snapshot_signal_check(sig, &sa);
	if (!lt__crash_managed(sig))
		return real.signal(sig, handler);
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, sig);
	sa.sa_flags = SA_RESTART;
	if (lt__crash_sigaction(sig, &sa, &old, real.sigaction) != 0)
		return SIG_ERR;
	return old.sa_handler;
}

/* The public marker API (include/leaktrace.h finds it with a weak
 * reference, which is why this file does not include that header: the
 * definition here must stay a strong one). */
LT_EXPORT int lt_snapshot_marker(const char *name);
LT_EXPORT int lt_snapshot_marker(const char *name)
{
	if (name == NULL)
		name = "";
	lt__record_marker(name);
	return atomic_load_explicit(&lt__state, memory_order_relaxed) == LT_STATE_OFF ? -1 : 0;
}

/* The constructor starts the writer thread once libc is fully up; events
 * recorded before (libraries initialised ahead of us) wait in the rings.
 * It lives here, not in record.c, so a unit test can link the recording
 * core without starting to trace itself. */
__attribute__((constructor)) static void lt_constructor(void)
{
	(void)bootstrapping();
	lt__init();
	if (atomic_load_explicit(&lt__state, memory_order_relaxed) == LT_STATE_ACTIVE) {
		lt__tls.busy++;
		lt__py_init();
		lt__crash_install(real.sigaction);
		lt__writer_start();
		lt__tls.busy--;
	}
}
