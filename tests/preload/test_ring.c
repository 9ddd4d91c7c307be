/* SPDX-License-Identifier: MIT */
/* The per-thread SPSC ring (preload/ring.h): wrap-around, the full
 * condition, and a two-thread stress run that also runs under TSan. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "ring.h"

#if defined(__SANITIZE_THREAD__)
#define STRESS_EVENTS 200000u /* TSan is ~10x slower */
#else
#define STRESS_EVENTS 5000000u
#endif

static lt_ring_t *new_ring(void)
{
	lt_ring_t *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(r != MAP_FAILED);
	return r;
}

/* The consumer side, as the writer does it. */
static uint64_t drain(lt_ring_t *r, uint64_t *expect)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
	for (uint64_t i = h; i != t; i++) {
		const lt_event_t *e = &r->slots[i & (LT_RING_CAP - 1)];
		cr_assert_eq(e->addr, *expect, "slot %llu holds %llu, expected %llu",
			     (unsigned long long)i, (unsigned long long)e->addr,
			     (unsigned long long)*expect);
		cr_assert_eq(e->size, *expect * 3);
		(*expect)++;
	}
	atomic_store_explicit(&r->head, t, memory_order_release);
	return t - h;
}

Test(ring, wraps_around)
{
	lt_ring_t *r = new_ring();
	uint64_t next = 0, expect = 0;
	for (int round = 0; round < 7; round++) {
		for (unsigned k = 0; k < LT_RING_CAP / 2 + 17; k++) {
			lt_event_t *e = lt__ring_slot(r);
			cr_assert_not_null(e);
			e->addr = next;
			e->size = next * 3;
			next++;
			lt__ring_publish(r);
		}
		drain(r, &expect);
	}
	cr_assert_eq(expect, next);
	cr_assert_gt(next, 3 * LT_RING_CAP, "the test must wrap several times");
	munmap(r, sizeof *r);
}

Test(ring, full_returns_null_until_drained)
{
	lt_ring_t *r = new_ring();
	for (unsigned k = 0; k < LT_RING_CAP; k++) {
		lt_event_t *e = lt__ring_slot(r);
		cr_assert_not_null(e, "slot %u of %u", k, LT_RING_CAP);
		e->addr = k;
		e->size = k * 3ull;
		lt__ring_publish(r);
	}
	cr_assert_null(lt__ring_slot(r), "a full ring hands out no slot");
	uint64_t expect = 0;
	cr_assert_eq(drain(r, &expect), LT_RING_CAP);
	cr_assert_not_null(lt__ring_slot(r));
	munmap(r, sizeof *r);
}

static void *producer(void *arg)
{
	lt_ring_t *r = arg;
	for (uint64_t n = 0; n < STRESS_EVENTS; n++) {
		lt_event_t *e;
		while ((e = lt__ring_slot(r)) == NULL)
			sched_yield();
		e->addr = n;
		e->size = n * 3;
		lt__ring_publish(r);
	}
	return NULL;
}

Test(ring, spsc_stress_keeps_order_and_contents)
{
	lt_ring_t *r = new_ring();
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, producer, r), 0);
	uint64_t expect = 0;
	while (expect < STRESS_EVENTS)
		if (drain(r, &expect) == 0)
			sched_yield();
	pthread_join(t, NULL);
	cr_assert_eq(expect, STRESS_EVENTS);
	munmap(r, sizeof *r);
}
