/* SPDX-License-Identifier: MIT */
/* The shared stack table (preload/stacks.c): one id per distinct stack,
 * frames stored intact, and consistent ids when threads race to insert. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "shim.h"

#if defined(__SANITIZE_THREAD__)
#define STACKS 500
#else
#define STACKS 5000
#endif
#define THREADS 4
#define DEPTH 12

static void setup(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	lt__config.depth = 64;
	cr_assert_eq(lt__stacks_init(), 0);
}

static void make_stack(int i, uint64_t *f)
{
	for (int k = 0; k < DEPTH; k++)
		f[k] = 0x400000u + (uint64_t)i * 4096u + (uint64_t)k * 8u;
}

Test(stacks, same_stack_same_id, .init = setup)
{
	uint64_t a[DEPTH], b[DEPTH];
	make_stack(1000001, a);
	memcpy(b, a, sizeof a);
	uint32_t ia = lt__stack_intern(a, DEPTH), ib = lt__stack_intern(b, DEPTH);
	cr_assert_neq(ia, 0);
	cr_assert_eq(ia, ib);
	b[DEPTH - 1]++;
	uint32_t ic = lt__stack_intern(b, DEPTH);
	cr_assert_neq(ic, 0);
	cr_assert_neq(ic, ia, "a different outermost frame is a different stack");
	cr_assert_neq(lt__stack_intern(a, DEPTH - 1), ia, "a prefix is a different stack");
	uint32_t depth;
	const uint64_t *f = lt__stack_frames(ia, &depth);
	cr_assert_eq(depth, DEPTH);
	cr_assert_arr_eq(f, a, sizeof a);
}

static uint32_t ids[THREADS][STACKS];

static void *racer(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t f[DEPTH];
	for (int n = 0; n < STACKS; n++) {
		int i = (n * 7 + t * 1013) % STACKS; /* each thread its own order */
		make_stack(i, f);
		ids[t][i] = lt__stack_intern(f, DEPTH);
	}
	return NULL;
}

Test(stacks, racing_inserts_agree, .init = setup)
{
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, racer, (void *)(intptr_t)t), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < STACKS; i++) {
		cr_assert_neq(ids[0][i], 0);
		for (int t = 1; t < THREADS; t++)
			cr_assert_eq(ids[t][i], ids[0][i], "stack %d: thread %d got id %u, thread 0 got %u",
				     i, t, ids[t][i], ids[0][i]);
		uint64_t f[DEPTH];
		make_stack(i, f);
		uint32_t depth;
		const uint64_t *got = lt__stack_frames(ids[0][i], &depth);
		cr_assert_eq(depth, DEPTH);
		cr_assert_arr_eq(got, f, sizeof f);
	}
	/* Distinct stacks have distinct ids. */
	for (int i = 1; i < STACKS; i++)
		cr_assert_neq(ids[0][i], ids[0][i - 1]);
}
