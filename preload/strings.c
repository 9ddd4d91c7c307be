/* SPDX-License-Identifier: MIT */
/* An append-only arena for the few strings events carry (snapshot marker
 * names, exec paths): the ring holds a pointer, the string lives here. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <string.h>

#include "shim.h"
#include "sys.h"

#define LT_STRING_ARENA (64u << 20) /* reserved address space, touched as used */
#define LT_STRING_MAX 4095 /* longer names are cut */

static unsigned char *arena;
static _Atomic uint64_t top; /* relaxed: a bump pointer, no data published */
static _Atomic int mapped; /* 0 none, 1 mapping, 2 ready */

/* Returns a stable copy of s, or NULL when the arena is exhausted. Never
 * calls malloc. The copy is published to the writer by the ring's release
 * of the event that points at it. */
const char *lt__string_save(const char *s)
{
	int st = atomic_load_explicit(&mapped, memory_order_acquire);
	if (st != 2) {
		int expected = 0;
		/* Acquire/release pair: the arena pointer is set before the
		 * state says ready. */
		if (atomic_compare_exchange_strong_explicit(&mapped, &expected, 1,
							    memory_order_acquire,
							    memory_order_relaxed)) {
			arena = lt__sys_map(LT_STRING_ARENA);
			atomic_store_explicit(&mapped, 2, memory_order_release);
		}
		while (atomic_load_explicit(&mapped, memory_order_acquire) != 2)
			;
	}
	if (!arena)
		return NULL;
	size_t n = strnlen(s, LT_STRING_MAX);
	uint64_t off = atomic_fetch_add_explicit(&top, n + 1, memory_order_relaxed);
	if (off + n + 1 > LT_STRING_ARENA)
		return NULL;
	memcpy(arena + off, s, n);
	arena[off + n] = 0;
	return (const char *)arena + off;
}
