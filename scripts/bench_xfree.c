// SPDX-License-Identifier: MIT
/* Benchmark workload c): cross-thread free. Producer threads malloc blocks
 * and hand them to consumer threads, which free them, so nearly every free
 * happens in another thread than its allocation (the case a tracer must
 * order correctly). Not a test: scripts/bench times it.
 *
 *   bench_xfree [-p PRODUCERS] [-c CONSUMERS] [-n POINTERS] [-S SEED]
 *
 * Each producer owns one single-producer/single-consumer ring per consumer
 * and deals its blocks to them in turn, so every consumer frees blocks of
 * every producer. POINTERS (default 5,000,000) is the total. With more
 * threads than cores a thread that finds its ring full or empty yields.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define BARRIER() __asm__ volatile("" ::: "memory")
#define RING_CAPACITY 4096 /* power of two; ~one ring-full per yield slice */
#define MAX_THREADS 64

/* Single producer, single consumer. The producer writes tail, the consumer
 * writes head; 0 <= tail - head <= RING_CAPACITY; slot = index & mask.
 * Each index sits on its own cache line so the two sides do not share one. */
struct xfree_ring_s {
	_Alignas(64) _Atomic uint64_t tail;
	_Alignas(64) _Atomic uint64_t head;
	_Alignas(64) void *slot[RING_CAPACITY];
};

static struct xfree_ring_s *rings; /* [producer * nconsumers + consumer] */
static unsigned nproducers = 2, nconsumers = 2;
static uint64_t npointers = 5000000;
static uint64_t seed = 0x5eed;

NOINLINE static void *alloc4(size_t size)
{
	void *p = malloc(size);
	BARRIER();
	return p;
}
NOINLINE static void *alloc3(size_t size) { void *p = alloc4(size); BARRIER(); return p; }
NOINLINE static void *alloc2(size_t size) { void *p = alloc3(size); BARRIER(); return p; }
NOINLINE static void *alloc1(size_t size) { void *p = alloc2(size); BARRIER(); return p; }
NOINLINE static void free4(void *p)
{
	free(p);
	BARRIER();
}
NOINLINE static void free3(void *p) { free4(p); BARRIER(); }
NOINLINE static void free2(void *p) { free3(p); BARRIER(); }
NOINLINE static void free1(void *p) { free2(p); BARRIER(); }

static uint64_t share(uint64_t total, unsigned parts, unsigned i)
{
	return total / parts + (i < total % parts);
}

NOINLINE static void *producer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t state = seed * 0x9E3779B97F4A7C15ULL + id + 1;
	uint64_t n = share(npointers, nproducers, id);
	for (uint64_t i = 0; i < n; i++) {
		/* Deal block i to consumer i % nconsumers: the counts per ring
		 * are then what consumer() expects. */
		struct xfree_ring_s *r = &rings[id * nconsumers + i % nconsumers];
		state ^= state >> 12;
		state ^= state << 25;
		state ^= state >> 27;
		size_t size = 16 + (size_t)((state * 0x2545F4914F6CDD1DULL) >> 40) % 497;
		unsigned char *p = alloc1(size);
		if (!p) {
			perror("malloc");
			exit(1);
		}
		p[0] = (unsigned char)i;
		/* relaxed: only this thread writes tail. */
		uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
		/* acquire: pairs with the consumer's release of head, so the
		 * slot it vacated is not overwritten before it was read. */
		while (tail - atomic_load_explicit(&r->head, memory_order_acquire) == RING_CAPACITY)
			sched_yield();
		r->slot[tail & (RING_CAPACITY - 1)] = p;
		/* release: publishes the slot write to the consumer. */
		atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	}
	return NULL;
}

NOINLINE static void *consumer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t left = 0;
	for (unsigned p = 0; p < nproducers; p++) {
		uint64_t n = share(npointers, nproducers, p);
		left += n / nconsumers + (id < n % nconsumers);
	}
	while (left) {
		int got = 0;
		for (unsigned p = 0; p < nproducers; p++) {
			struct xfree_ring_s *r = &rings[p * nconsumers + id];
			uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
			/* acquire: pairs with the producer's release of tail. */
			uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
			for (; head != tail; head++, got++)
				free1(r->slot[head & (RING_CAPACITY - 1)]);
			/* release: hands the emptied slots back to the producer. */
			atomic_store_explicit(&r->head, head, memory_order_release);
		}
		if (!got)
			sched_yield();
		left -= (uint64_t)got;
	}
	return NULL;
}

static uint64_t parse_count(const char *s, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < 1) {
		fprintf(stderr, "bench_xfree: bad %s '%s'\n", what, s);
		exit(2);
	}
	return (uint64_t)v;
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "p:c:n:S:")) != -1) {
		switch (opt) {
		case 'p': nproducers = (unsigned)parse_count(optarg, "producer count"); break;
		case 'c': nconsumers = (unsigned)parse_count(optarg, "consumer count"); break;
		case 'n': npointers = parse_count(optarg, "pointer count"); break;
		case 'S': seed = parse_count(optarg, "seed"); break;
		default:
			fprintf(stderr, "usage: bench_xfree [-p PRODUCERS] [-c CONSUMERS] "
					"[-n POINTERS] [-S SEED]\n");
			return 2;
		}
	}
	if (nproducers > MAX_THREADS || nconsumers > MAX_THREADS) {
		fprintf(stderr, "bench_xfree: at most %d producers and consumers\n", MAX_THREADS);
		return 2;
	}
	rings = aligned_alloc(64, sizeof *rings * nproducers * nconsumers);
	if (!rings)
		return 1;
	for (unsigned i = 0; i < nproducers * nconsumers; i++) {
		atomic_init(&rings[i].tail, 0);
		atomic_init(&rings[i].head, 0);
	}
	pthread_t th[2 * MAX_THREADS];
	unsigned n = 0;
	for (unsigned i = 0; i < nconsumers; i++)
		if (pthread_create(&th[n++], NULL, consumer, (void *)(uintptr_t)i))
			return 1;
	for (unsigned i = 0; i < nproducers; i++)
		if (pthread_create(&th[n++], NULL, producer, (void *)(uintptr_t)i))
			return 1;
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	free(rings);
	return 0;
}
