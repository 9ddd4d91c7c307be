/* SPDX-License-Identifier: MIT */
/* The operating-system calls the shim makes, behind one header: none of
 * them allocates with malloc or takes a lock an allocating thread may hold,
 * so any of them may be called from inside an interposed malloc. */
#ifndef LT_SYS_H
#define LT_SYS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/futex.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Fresh zeroed memory from the kernel; NULL on failure. Reserving with
 * MAP_NORESERVE lets large tables cost only the pages they touch. */
static inline void *lt__sys_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static inline void lt__sys_unmap(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

static inline pid_t lt__sys_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* 0 if thread tid of process pid exists, -ESRCH if it has exited. */
static inline int lt__sys_thread_alive(pid_t pid, pid_t tid)
{
	if (syscall(SYS_tgkill, pid, tid, 0) == 0)
		return 0;
	return errno == ESRCH ? -ESRCH : 0;
}

/* Waits while *word == expected, at most timeout_ns (0 = forever). */
static inline void lt__sys_futex_wait(const void *word, uint32_t expected,
				      uint64_t timeout_ns)
{
	struct timespec ts = {(time_t)(timeout_ns / 1000000000u),
			      (long)(timeout_ns % 1000000000u)};
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected,
		timeout_ns ? &ts : NULL, NULL, 0);
}

static inline void lt__sys_futex_wake(const void *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static inline uint64_t lt__sys_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t lt__sys_unix_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* write(2) all of buf, retrying on EINTR and short writes. 0 or -errno. */
static inline int lt__sys_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One line on stderr, built without stdio (stdio locks and allocates),
 * and only while descriptor 2 is the file lt__sys_stderr_note() saw. */
void lt__sys_warn(const char *a, const char *b, const char *c);
void lt__sys_stderr_note(void);

/* Text without stdio, into out[0..cap) after its first n bytes, always
 * NUL-terminated and cut to fit; each returns the new length. */
size_t lt__text_append(char *out, size_t n, size_t cap, const char *s);
size_t lt__text_append_uint(char *out, size_t n, size_t cap, uint64_t v);
/* The working directory with a trailing '/' (its length), or "" (0). */
size_t lt__text_cwd(char *out, size_t cap);

#endif /* LT_SYS_H */
