/* SPDX-License-Identifier: MIT */
/* The heap model of columnar blocks (include/leaktrace/model.h): it must
 * agree with a plain reference map through any mix of operations, and two
 * models fed the same events (the writer's and the decoder's) must make
 * the same predictions. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "leaktrace/model.h"

static void *zalloc(size_t n)
{
	return calloc(1, n);
}

static void zfree(void *p, size_t n)
{
	(void)n;
	free(p);
}

#define ADDRS 5000

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

Test(model, matches_a_reference_map_and_a_twin)
{
	static lt_model_t a, b;
	cr_assert_eq(lt_model_init(&a, zalloc, zfree), 0);
	cr_assert_eq(lt_model_init(&b, zalloc, zfree), 0);
	static uint64_t live_size[ADDRS]; /* 0 = not live */
	static uint32_t slot_of[ADDRS];
	uint32_t live = 0;
	for (int step = 0; step < 400000; step++) {
		uint64_t r = next_random();
		uint32_t i = (uint32_t)(r % ADDRS);
		uint64_t addr = 0x7f0000000000ull + (uint64_t)i * 48;
		if (live_size[i]) {
			uint32_t sa, sb;
			cr_assert_eq(lt_model_free(&a, addr, &sa), 1, "step %d: live block unknown", step);
			cr_assert_eq(lt_model_free(&b, addr, &sb), 1);
			cr_assert_eq(sa, slot_of[i]);
			cr_assert_eq(sa, sb);
			live_size[i] = 0;
			live--;
		} else {
			uint64_t size = 1 + (r >> 40) % 600;
			int ka = lt_model_alloc(&a, addr, size);
			/* The decoder's path: a hit is resolved from the model. */
			if (ka >= 0)
				cr_assert_eq(lt_model_predicted(&b, size, (unsigned)ka), addr);
			cr_assert_eq(lt_model_alloc(&b, addr, size), ka);
			live_size[i] = size;
			live++;
			struct lt_model_entry *e = lt_model_find(&a, addr);
			cr_assert_not_null(e);
			slot_of[i] = e->slot;
			cr_assert_eq(lt_model_slot_addr(&b, e->slot), addr);
		}
		cr_assert_eq(a.live, live);
	}
	/* Nothing else is in the table. */
	uint32_t seen = 0;
	for (uint32_t k = 0; k < a.cap; k++)
		seen += a.table[k].addr != 0;
	cr_assert_eq(seen, live);
	lt_model_destroy(&a);
	lt_model_destroy(&b);
}

Test(model, predicts_the_most_recent_free_of_a_class)
{
	static lt_model_t m;
	cr_assert_eq(lt_model_init(&m, zalloc, zfree), 0);
	uint32_t slot;
	cr_assert_eq(lt_model_alloc(&m, 0x1000, 40), -1);
	cr_assert_eq(lt_model_alloc(&m, 0x2000, 40), -1);
	cr_assert_eq(lt_model_free(&m, 0x1000, &slot), 1);
	cr_assert_eq(lt_model_free(&m, 0x2000, &slot), 1);
	/* Newest first; a size of the same class (glibc chunk) also hits. */
	cr_assert_eq(lt_model_alloc(&m, 0x2000, 36), 0);
	cr_assert_eq(lt_model_alloc(&m, 0x1000, 40), 0);
	cr_assert_eq(lt_model_alloc(&m, 0x3000, 40), -1);
	cr_assert_eq(lt_model_free(&m, 0x4000, &slot), 0, "unknown blocks are not live");
	/* Re-allocating a live address (its free not seen yet) replaces it. */
	cr_assert_eq(lt_model_alloc(&m, 0x3000, 100), -1);
	cr_assert_eq(m.live, 3);
	lt_model_destroy(&m);
}
