/* SPDX-License-Identifier: MIT */
/* Per-address plans (order.c): every address's events are found and kept
 * in each thread's order, whatever bytes the addresses differ in (the
 * plan sorts them by address with a radix sort), and the plan lets each
 * event go only at its turn. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "order.h"

static bool nothing_live(void *ctx, uint64_t addr)
{
	(void)ctx;
	(void)addr;
	return false;
}

static uint64_t next_random(uint64_t *state)
{
	*state = *state * 6364136223846793005ull + 1442695040888963407ull; /* fixed seed */
	return *state >> 11;
}

static uint32_t add(lt__order_t *o, uint32_t slot, int type, uint64_t addr,
		    uint64_t free_no)
{
	lt__event_t ev = {.type = (uint8_t)type, .thread = slot, .addr = addr};
	uint32_t id = lt__order_add(o, slot, &ev, 0.5, free_no);
	cr_assert_neq(id, LT__ORDER_NONE);
	return id;
}

Test(order, allocations_go_before_other_threads_frees_of_any_address)
{
	enum { N = 3000 };
	static uint64_t addr[N];
	static uint32_t alloc_id[N], free_id[N];
	uint64_t seed = 42;
	for (int i = 0; i < N; i++) {
		/* Addresses that differ in low, middle and high bytes. */
		addr[i] = (next_random(&seed) << (16 * (i % 3))) | 0x10;
		for (int j = 0; j < i; j++)
			if (addr[j] == addr[i])
				addr[i] += 0x100000;
	}
	lt__order_t *o;
	cr_assert_eq(lt__order_new(&o), 0);
	lt__order_reset(o);
	/* Thread 1 (slot 0) frees what thread 0 (slot 1) allocates: added
	 * thread by thread, frees first, as the merge would add them. */
	for (int i = 0; i < N; i++)
		free_id[i] = add(o, 0, LT_REC_FREE, addr[i], (uint64_t)i + 1);
	for (int i = 0; i < N; i++)
		alloc_id[i] = add(o, 1, LT_REC_ALLOC, addr[i], 0);
	cr_assert_eq(lt__order_solve(o, nothing_live, NULL), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(lt__order_ready(o, alloc_id[i]), 1, "address %d", i);
		cr_assert_eq(lt__order_ready(o, free_id[i]), 0, "address %d", i);
	}
	for (int i = 0; i < N; i++) {
		lt__order_emitted(o, alloc_id[i]);
		cr_assert_eq(lt__order_ready(o, free_id[i]), 1, "address %d", i);
	}
	lt__order_free(o);
}

Test(order, one_threads_reuse_of_an_address_keeps_its_order)
{
	lt__order_t *o;
	cr_assert_eq(lt__order_new(&o), 0);
	lt__order_reset(o);
	uint32_t ids[6];
	/* Two addresses interleaved, each allocated, freed, allocated. */
	for (int k = 0; k < 6; k++)
		ids[k] = add(o, 0, k / 2 == 1 ? LT_REC_FREE : LT_REC_ALLOC,
			     k % 2 ? 0x7f0000001000ull : 0x1000ull, (uint64_t)k + 1);
	cr_assert_eq(lt__order_solve(o, nothing_live, NULL), 0);
	for (int k = 0; k < 6; k++) {
		cr_assert_eq(lt__order_ready(o, ids[k]), 1, "event %d", k);
		if (k + 2 < 6)
			cr_assert_eq(lt__order_ready(o, ids[k + 2]), 0, "event %d", k + 2);
		lt__order_emitted(o, ids[k]);
	}
	lt__order_free(o);
}

/* The separation check (lt__order_check) against the plan it stands in
 * for, on random small epochs: a few threads, a few addresses (so that
 * threads share them and orders are refused), some live beforehand. The
 * check must say "separate" exactly when planning would: solved with
 * every address one thread's. */
static uint64_t live_mask;

static bool live_in_mask(void *ctx, uint64_t addr)
{
	(void)ctx;
	return (live_mask >> (addr >> 4 & 63)) & 1;
}

Test(order, separation_check_agrees_with_the_plan)
{
	lt__order_t *plan, *check;
	cr_assert_eq(lt__order_new(&plan), 0);
	cr_assert_eq(lt__order_new(&check), 0);
	uint64_t seed = 7;
	int agreed_separate = 0, agreed_not = 0;
	for (int trial = 0; trial < 20000; trial++) {
		int nthreads = 1 + (int)(next_random(&seed) % 3);
		int naddr = 1 + (int)(next_random(&seed) % 6);
		live_mask = next_random(&seed);
		lt__event_t evs[3][6];
		int n[3];
		for (int t = 0; t < nthreads; t++) {
			n[t] = (int)(next_random(&seed) % 7);
			for (int i = 0; i < n[t]; i++) {
				uint64_t r = next_random(&seed);
				int type = r % 5 == 0 ? LT_REC_REALLOC
					   : r % 5 < 3 ? LT_REC_ALLOC : LT_REC_FREE;
				evs[t][i] = (lt__event_t){
					.type = (uint8_t)type,
					.thread = (uint64_t)t,
					.addr = 0x10 * (1 + (r >> 8) % (uint64_t)naddr),
					.old_addr = 0x10 * (1 + (r >> 16) % (uint64_t)naddr),
				};
			}
		}
		lt__order_reset(plan);
		cr_assert_eq(lt__order_check_start(check), 0);
		bool passed = true;
		for (int t = 0; t < nthreads; t++)
			for (int i = 0; i < n[t]; i++) {
				lt__order_add(plan, (uint32_t)t, &evs[t][i], 0.5, (uint64_t)i + 1);
				if (passed)
					passed = lt__order_check(check, (uint32_t)t, &evs[t][i],
								 live_in_mask, NULL);
			}
		bool separate = lt__order_solve(plan, live_in_mask, NULL) == 0 &&
				lt__order_separate(plan);
		cr_assert_eq(passed, separate, "trial %d", trial);
		agreed_separate += separate;
		agreed_not += !separate;
	}
	/* Both answers came up often: the test sees both sides. */
	cr_assert_gt(agreed_separate, 2000);
	cr_assert_gt(agreed_not, 2000);
	lt__order_free(plan);
	lt__order_free(check);
}

Test(order, separation_check_grows_its_table_after_a_big_epoch)
{
	lt__order_t *o;
	cr_assert_eq(lt__order_new(&o), 0);
	enum { N = 5000 }; /* more addresses than the first two tables hold */
	bool passed = true;
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(lt__order_check_start(o), 0);
		passed = true;
		for (uint64_t i = 0; i < N && passed; i++) {
			lt__event_t ev = {.type = LT_REC_ALLOC, .addr = 0x1000 + 16 * i};
			passed = lt__order_check(o, 0, &ev, nothing_live, NULL);
		}
		if (passed)
			break;
	}
	cr_assert(passed, "the third epoch's check has room for %d addresses", N);
	lt__order_free(o);
}
