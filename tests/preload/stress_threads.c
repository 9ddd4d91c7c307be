/* SPDX-License-Identifier: MIT */
/* A standalone multithreaded stress test of the recording core, written to
 * run under ThreadSanitizer (criterion's forking runner does not start
 * under TSan): the SPSC ring with one producer and one consumer, racing
 * inserts into the stack table, and several threads recording events while
 * the real writer thread drains them into a trace file. Exit 0 = pass. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

#if defined(__SANITIZE_THREAD__)
#define EVENTS 100000u
#else
#define EVENTS 2000000u
#endif
#define THREADS 4

static int failures;

#define CHECK(cond, ...)                                         \
	do {                                                     \
		if (!(cond)) {                                   \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);            \
			fputc('\n', stderr);                     \
			failures++;                              \
		}                                                \
	} while (0)

static void *ring_producer(void *arg)
{
	lt_ring_t *r = arg;
	for (uint64_t n = 0; n < EVENTS; n++) {
		lt_event_t *e;
		while ((e = lt__ring_slot(r)) == NULL)
			sched_yield();
		e->addr = n;
		e->size = ~n;
		lt__ring_publish(r);
	}
	return NULL;
}

static void ring_stress(void)
{
	lt_ring_t *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t t;
	pthread_create(&t, NULL, ring_producer, r);
	uint64_t expect = 0;
	while (expect < EVENTS) {
		uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
		uint64_t tl = atomic_load_explicit(&r->tail, memory_order_acquire);
		for (uint64_t i = h; i != tl; i++, expect++) {
			const lt_event_t *e = &r->slots[i & (LT_RING_CAP - 1)];
			if (e->addr != expect || e->size != ~expect) {
				CHECK(0, "ring slot %llu: got %llu", (unsigned long long)i,
				      (unsigned long long)e->addr);
				expect = EVENTS;
				break;
			}
		}
		atomic_store_explicit(&r->head, tl, memory_order_release);
		if (h == tl)
			sched_yield();
	}
	pthread_join(t, NULL);
	munmap(r, sizeof *r);
}

static uint32_t stack_ids[THREADS][1000];

static void *stack_racer(void *arg)
{
	int t = (int)(intptr_t)arg;
	for (int n = 0; n < 1000; n++) {
		int i = (n * 7 + t * 331) % 1000;
		uint64_t f[6];
		for (int k = 0; k < 6; k++)
			f[k] = 0x10000u + (uint64_t)i * 64u + (uint64_t)k;
		stack_ids[t][i] = lt__stack_intern(f, 6);
	}
	return NULL;
}

static void stack_stress(void)
{
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, stack_racer, (void *)(intptr_t)t);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < 1000; i++)
		for (int t = 1; t < THREADS; t++)
			CHECK(stack_ids[t][i] == stack_ids[0][i] && stack_ids[0][i] != 0,
			      "stack %d: ids differ between threads", i);
}

/* Fake heap addresses: thread t owns [base_t, base_t + 1 MiB). */
static void *recorder(void *arg)
{
	uint64_t base = 0x100000000ull * (1 + (uint64_t)(intptr_t)arg);
	for (uint64_t n = 0; n < EVENTS / THREADS; n++) {
		void *p = (void *)(uintptr_t)(base + (n % 4096) * 256);
		lt__record_alloc(p, 16 + n % 200);
		lt__record_free(p);
	}
	lt__record_marker("recorder-done");
	return NULL;
}

static void writer_stress(const char *dir)
{
	char pattern[600];
	snprintf(pattern, sizeof pattern, "%s/stress.%%p.bin", dir);
	setenv("LEAKTRACE_OUTPUT", pattern, 1);
	setenv("LEAKTRACE_DEPTH", "8", 1);
#if defined(__SANITIZE_THREAD__)
	/* libunwind's per-thread cache destructor crashes inside TSan's
	 * runtime at thread exit (an uninstrumented library locking during
	 * TSan's own thread teardown); the frame-pointer unwinder has no
	 * per-thread state and exercises the same recording paths. */
	setenv("LEAKTRACE_UNWIND", "fp", 1);
#endif
	lt__init();
	CHECK(atomic_load(&lt__state) == LT_STATE_ACTIVE, "tracing did not start");
	lt__writer_start();
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, recorder, (void *)(intptr_t)t);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	lt__finish(LT_EXIT_NORMAL, 0);
	char path[700];
	snprintf(path, sizeof path, "%s/stress.%d.bin", dir, (int)getpid());
	struct stat st;
	CHECK(stat(path, &st) == 0 && st.st_size > 100, "no trace at %s", path);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/lt-stress-XXXXXX";
	const char *out = argc > 1 ? argv[1] : mkdtemp(dir);
	writer_stress(out); /* first: it initialises the core */
	ring_stress();
	stack_stress();
	if (failures)
		return 1;
	printf("stress: ok (%u events per part)\n", EVENTS);
	return 0;
}
