// SPDX-License-Identifier: MIT
/* Benchmark workloads a) and b): malloc/free churn at call depth ~8 with a
 * fixed live set, in one or several threads. Not a test: scripts/bench
 * times it natively, under leaktrace and under heaptrack.
 *
 *   bench_churn [-t THREADS] [-n PAIRS] [-s SLOTS] [-r] [-S SEED]
 *
 * PAIRS (default 10,000,000) is the total over all threads; each thread
 * owns SLOTS/THREADS slots (default 10,000 in all), so the total work and
 * the total live set do not depend on the thread count. Every iteration
 * picks a pseudo-random slot, frees the block in it and mallocs a new one
 * of a pseudo-random size in [16, 512] (rounded up to a multiple of 16
 * with -r: heaptrack's interpreter only copes with that variant). The
 * malloc and the free are each made from the bottom of a chain of
 * noinline functions, so a tracer unwinds about 8 frames per event. All
 * blocks are freed before exit, so the program leaks nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

struct churn_thread_s {
	pthread_t thread;
	uint64_t seed;
	uint64_t pairs;
	size_t nslots;
	int round16;
	void **slots;
	uint64_t checksum; /* keeps the stores to the blocks observable */
};

/* xorshift64*: a fast deterministic generator; the seed must be nonzero. */
static inline uint64_t next_random(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* The call chain: level1 .. level6 each call the next one, level7 makes the
 * real call. An asm barrier after each call keeps it from becoming a tail
 * call, so every level stays on the stack when malloc/free runs. */
#define BARRIER() __asm__ volatile("" ::: "memory")

NOINLINE static void *alloc7(size_t size)
{
	void *p = malloc(size);
	BARRIER();
	return p;
}
NOINLINE static void *alloc6(size_t size) { void *p = alloc7(size); BARRIER(); return p; }
NOINLINE static void *alloc5(size_t size) { void *p = alloc6(size); BARRIER(); return p; }
NOINLINE static void *alloc4(size_t size) { void *p = alloc5(size); BARRIER(); return p; }
NOINLINE static void *alloc3(size_t size) { void *p = alloc4(size); BARRIER(); return p; }
NOINLINE static void *alloc2(size_t size) { void *p = alloc3(size); BARRIER(); return p; }
NOINLINE static void *alloc1(size_t size) { void *p = alloc2(size); BARRIER(); return p; }

NOINLINE static void free7(void *p)
{
	free(p);
	BARRIER();
}
NOINLINE static void free6(void *p) { free7(p); BARRIER(); }
NOINLINE static void free5(void *p) { free6(p); BARRIER(); }
NOINLINE static void free4(void *p) { free5(p); BARRIER(); }
NOINLINE static void free3(void *p) { free4(p); BARRIER(); }
NOINLINE static void free2(void *p) { free3(p); BARRIER(); }
NOINLINE static void free1(void *p) { free2(p); BARRIER(); }

NOINLINE static void *churn_thread(void *arg)
{
	struct churn_thread_s *t = arg;
	uint64_t state = t->seed;
	for (uint64_t i = 0; i < t->pairs; i++) {
		uint64_t r = next_random(&state);
		size_t slot = (size_t)(r >> 32) % t->nslots;
		size_t size = 16 + (size_t)(r & 0xffff) % 497; /* 16..512 */
		if (t->round16)
			size = (size + 15) & ~(size_t)15;
		free1(t->slots[slot]); /* free(NULL) on the first pass */
		unsigned char *p = alloc1(size);
		if (!p) {
			perror("malloc");
			exit(1);
		}
		p[0] = (unsigned char)i; /* touch the block as a program would */
		t->checksum += p[0];
		t->slots[slot] = p;
	}
	for (size_t s = 0; s < t->nslots; s++) {
		free1(t->slots[s]);
		t->slots[s] = NULL;
	}
	return NULL;
}

static uint64_t parse_count(const char *s, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end); /* accepts 1e7 as well as 10000000 */
	if (errno || end == s || *end || v < 1) {
		fprintf(stderr, "bench_churn: bad %s '%s'\n", what, s);
		exit(2);
	}
	return (uint64_t)v;
}

int main(int argc, char **argv)
{
	uint64_t pairs = 10000000, slots = 10000, seed = 0x5eed, nthreads = 1;
	int round16 = 0, opt;
	while ((opt = getopt(argc, argv, "t:n:s:rS:")) != -1) {
		switch (opt) {
		case 't': nthreads = parse_count(optarg, "thread count"); break;
		case 'n': pairs = parse_count(optarg, "pair count"); break;
		case 's': slots = parse_count(optarg, "slot count"); break;
		case 'r': round16 = 1; break;
		case 'S': seed = parse_count(optarg, "seed"); break;
		default:
			fprintf(stderr, "usage: bench_churn [-t THREADS] [-n PAIRS] "
					"[-s SLOTS] [-r] [-S SEED]\n");
			return 2;
		}
	}
	if (nthreads > 256 || slots < nthreads) {
		fprintf(stderr, "bench_churn: need 1..256 threads and slots >= threads\n");
		return 2;
	}
	/* The bookkeeping comes from calloc before any timing matters; it is
	 * a handful of events against millions. */
	struct churn_thread_s *threads = calloc(nthreads, sizeof *threads);
	if (!threads)
		return 1;
	for (uint64_t i = 0; i < nthreads; i++) {
		struct churn_thread_s *t = &threads[i];
		t->seed = seed * 0x9E3779B97F4A7C15ULL + i + 1;
		t->pairs = pairs / nthreads + (i < pairs % nthreads);
		t->nslots = slots / nthreads;
		t->round16 = round16;
		t->slots = calloc(t->nslots, sizeof *t->slots);
		if (!t->slots)
			return 1;
	}
	uint64_t checksum = 0;
	if (nthreads == 1) {
		churn_thread(&threads[0]); /* a) runs in the main thread */
		checksum = threads[0].checksum;
	} else {
		for (uint64_t i = 0; i < nthreads; i++)
			if (pthread_create(&threads[i].thread, NULL, churn_thread, &threads[i])) {
				fprintf(stderr, "bench_churn: pthread_create failed\n");
				return 1;
			}
		for (uint64_t i = 0; i < nthreads; i++) {
			pthread_join(threads[i].thread, NULL);
			checksum += threads[i].checksum;
		}
	}
	for (uint64_t i = 0; i < nthreads; i++)
		free(threads[i].slots);
	free(threads);
	if (getenv("BENCH_VERBOSE"))
		printf("checksum %llu\n", (unsigned long long)checksum);
	return 0;
}
