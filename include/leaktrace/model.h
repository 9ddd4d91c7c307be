/* SPDX-License-Identifier: MIT */
/* The heap model behind the columnar block codec (format.h, "Columnar
 * blocks"): the shim's writer and the analyzer's decoder each run this
 * same code over the same event sequence, so a free can be written as the
 * small slot number of its block and most allocations as "the k-th most
 * recently freed address of this size class" instead of full addresses. */
#ifndef LEAKTRACE_MODEL_H
#define LEAKTRACE_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LT_MODEL_BINS 4096 /* size classes: glibc chunk sizes / 16 */
#define LT_MODEL_MRU 16 /* recently freed addresses kept per class (a power of two) */
#define LT_MODEL_MAX_LIVE (1u << 16) /* blocks modelled (a table that stays in cache); more fall back to addresses */
#define LT_MODEL_MIN_CAP (1u << 12)

/* Memory for the model, from the caller: the shim maps it, the analyzer
 * uses calloc. Must return zeroed memory or NULL; release may be NULL. */
typedef void *(*lt_model_alloc_fn)(size_t bytes);
typedef void (*lt_model_release_fn)(void *p, size_t bytes);

struct lt_model_entry {
	uint64_t addr; /* 0 = empty */
	uint32_t home; /* lt_model_hash(addr, cap): kept, not recomputed */
	uint16_t slot; /* < LT_MODEL_MAX_LIVE */
	uint16_t bin; /* lt_model_bin() of the block's size */
};

_Static_assert(LT_MODEL_MAX_LIVE <= 65536 && LT_MODEL_BINS <= 65536,
	       "slots and bins are 16-bit in a table entry");

typedef struct lt_model_s {
	struct lt_model_entry *table; /* open addressing, linear probing */
	uint32_t cap; /* power of two */
	uint32_t live;
	uint64_t *slot_addr; /* slot -> address, LT_MODEL_MAX_LIVE entries */
	uint32_t *free_slots; /* a stack of released slots */
	uint32_t nfree;
	uint32_t next_slot;
	/* Per size class, the last LT_MODEL_MRU freed addresses, newest
	 * first; an address handed out again leaves its list. Each list is a
	 * ring: its k-th newest entry is mru[bin][(mru_head[bin] + k) %
	 * LT_MODEL_MRU], so a push moves nothing. */
	uint64_t mru[LT_MODEL_BINS][LT_MODEL_MRU];
	uint8_t mru_head[LT_MODEL_BINS];
	lt_model_alloc_fn alloc;
	lt_model_release_fn release;
} lt_model_t;

/* The size class of a request: glibc's chunk size in 16-byte units, which
 * is what its bins reuse by; other allocators just predict less often. */
static inline uint32_t lt_model_bin(uint64_t size)
{
	uint64_t b = (size + 8 + 15) >> 4;
	if (b < 2)
		b = 2;
	return b >= LT_MODEL_BINS ? LT_MODEL_BINS - 1 : (uint32_t)b;
}

/* A full 64-bit mix (the murmur3 finaliser): heap addresses come in
 * arithmetic progressions, which a bare multiply maps onto clusters. */
static inline uint32_t lt_model_hash(uint64_t addr, uint32_t cap)
{
	addr ^= addr >> 33;
	addr *= 0xff51afd7ed558ccdull;
	addr ^= addr >> 33;
	addr *= 0xc4ceb9fe1a85ec53ull;
	addr ^= addr >> 33;
	return (uint32_t)addr & (cap - 1);
}

/* Sets m up empty. 0, or -1 when memory is short. */
static inline int lt_model_init(lt_model_t *m, lt_model_alloc_fn alloc,
				lt_model_release_fn release)
{
	memset(m, 0, sizeof *m);
	m->alloc = alloc;
	m->release = release;
	m->cap = LT_MODEL_MIN_CAP;
	m->table = alloc(sizeof *m->table * m->cap);
	m->slot_addr = alloc(sizeof *m->slot_addr * LT_MODEL_MAX_LIVE);
	m->free_slots = alloc(sizeof *m->free_slots * LT_MODEL_MAX_LIVE);
	return m->table && m->slot_addr && m->free_slots ? 0 : -1;
}

static inline void lt_model_destroy(lt_model_t *m)
{
	if (m->release) {
		m->release(m->table, sizeof *m->table * m->cap);
		m->release(m->slot_addr, sizeof *m->slot_addr * LT_MODEL_MAX_LIVE);
		m->release(m->free_slots, sizeof *m->free_slots * LT_MODEL_MAX_LIVE);
	}
	m->table = NULL;
}

static inline struct lt_model_entry *lt_model_find(const lt_model_t *m, uint64_t addr)
{
	for (uint32_t i = lt_model_hash(addr, m->cap);; i = (i + 1) & (m->cap - 1)) {
		struct lt_model_entry *e = &m->table[i];
		if (e->addr == addr)
			return e;
		if (e->addr == 0)
			return NULL;
	}
}

/* Removes the entry at e, keeping every probe chain intact (backward-shift
 * deletion: no tombstones, so lookups stay short). */
static inline void lt_model_erase(lt_model_t *m, struct lt_model_entry *e)
{
	uint32_t mask = m->cap - 1;
	uint32_t i = (uint32_t)(e - m->table);
	for (uint32_t j = (i + 1) & mask;; j = (j + 1) & mask) {
		struct lt_model_entry *n = &m->table[j];
		if (n->addr == 0)
			break;
		/* n may move to i when its home is not in (i, j]. */
		if (((j - n->home) & mask) >= ((j - i) & mask)) {
			m->table[i] = *n;
			i = j;
		}
	}
	m->table[i].addr = 0;
	m->live--;
}

static inline int lt_model_grow(lt_model_t *m)
{
	uint32_t cap = m->cap * 2;
	struct lt_model_entry *t = m->alloc(sizeof *t * cap);
	if (!t)
		return -1;
	for (uint32_t i = 0; i < m->cap; i++) {
		if (!m->table[i].addr)
			continue;
		uint32_t j = lt_model_hash(m->table[i].addr, cap);
		uint32_t home = j;
		while (t[j].addr)
			j = (j + 1) & (cap - 1);
		t[j] = m->table[i];
		t[j].home = home;
	}
	if (m->release)
		m->release(m->table, sizeof *m->table * m->cap);
	m->table = t;
	m->cap = cap;
	return 0;
}

static inline void lt_model_mru_push(lt_model_t *m, uint64_t addr, uint32_t bin)
{
	/* The oldest entry sits just before the head: it is overwritten. */
	uint8_t h = (uint8_t)((m->mru_head[bin] - 1u) & (LT_MODEL_MRU - 1));
	m->mru[bin][h] = addr;
	m->mru_head[bin] = h;
}

/* Takes the k-th newest entry out of bin's list: the k newer ones move
 * one place older, and the list ends with an empty entry. */
static inline void lt_model_mru_take(lt_model_t *m, uint32_t bin, unsigned k)
{
	uint64_t *r = m->mru[bin];
	unsigned h = m->mru_head[bin];
	for (unsigned j = k; j > 0; j--)
		r[(h + j) & (LT_MODEL_MRU - 1)] = r[(h + j - 1) & (LT_MODEL_MRU - 1)];
	r[h] = 0; /* the slot of the new oldest entry */
	m->mru_head[bin] = (uint8_t)((h + 1) & (LT_MODEL_MRU - 1));
}

/* A free of addr. Returns 1 and the block's slot when the model knows the
 * block (it is then forgotten, its address becomes the most recently freed
 * of its class and its slot the next to be reused), 0 when it does not. */
static inline int lt_model_free(lt_model_t *m, uint64_t addr, uint32_t *slot)
{
	struct lt_model_entry *e = addr ? lt_model_find(m, addr) : NULL;
	if (!e)
		return 0;
	*slot = e->slot;
	lt_model_mru_push(m, addr, e->bin);
	m->slot_addr[e->slot] = 0;
	m->free_slots[m->nfree++] = e->slot;
	lt_model_erase(m, e);
	return 1;
}

/* The address of a live slot, or 0 when the slot is not live (corrupt
 * input on the decoder's side). */
static inline uint64_t lt_model_slot_addr(const lt_model_t *m, uint64_t slot)
{
	return slot < m->next_slot ? m->slot_addr[slot] : 0;
}

/* The k-th most recently freed address of size's class (0 = none). */
static inline uint64_t lt_model_predicted(const lt_model_t *m, uint64_t size, unsigned k)
{
	if (k >= LT_MODEL_MRU)
		return 0;
	uint32_t bin = lt_model_bin(size);
	return m->mru[bin][(m->mru_head[bin] + k) & (LT_MODEL_MRU - 1)];
}

/* Where addr is in bin's list of recently freed addresses: its index k
 * (newest first), or -1. */
static inline int lt_model_mru_find(const lt_model_t *m, uint32_t bin, uint64_t addr)
{
	const uint64_t *r = m->mru[bin];
	unsigned h = m->mru_head[bin];
	for (unsigned k = 0; k < LT_MODEL_MRU; k++)
		if (r[(h + k) & (LT_MODEL_MRU - 1)] == addr)
			return (int)k;
	return -1;
}

/* The second half of lt_model_alloc(), once addr has left its class's list
 * (when it was there): remembers the block (bin: its size class), unless
 * LT_MODEL_MAX_LIVE blocks are; a block already remembered at addr (its
 * free was not seen yet) is replaced. */
static inline void lt_model_insert(lt_model_t *m, uint64_t addr, uint32_t bin)
{
	if (!addr)
		return;
	/* One probe finds the address or the empty entry it would go in. */
	uint32_t home = lt_model_hash(addr, m->cap), i = home;
	while (m->table[i].addr && m->table[i].addr != addr)
		i = (i + 1) & (m->cap - 1);
	if (m->table[i].addr) {
		uint32_t old; /* rare: replaced, and the probe is done again */
		lt_model_free(m, addr, &old);
		i = UINT32_MAX;
	}
	if (m->live >= LT_MODEL_MAX_LIVE)
		return;
	if (m->live + 1 > m->cap / 2) {
		if (lt_model_grow(m))
			return;
		i = UINT32_MAX;
	}
	if (i == UINT32_MAX) {
		home = lt_model_hash(addr, m->cap);
		for (i = home; m->table[i].addr; i = (i + 1) & (m->cap - 1))
			;
	}
	uint32_t slot = m->nfree ? m->free_slots[--m->nfree] : m->next_slot++;
	m->table[i].addr = addr;
	m->table[i].home = home;
	m->table[i].bin = (uint16_t)bin;
	m->table[i].slot = (uint16_t)slot;
	m->slot_addr[slot] = addr;
	m->live++;
}

/* An allocation of size bytes at addr. Returns k when addr was the k-th
 * most recently freed address of its class (it leaves that list), -1
 * otherwise; then lt_model_insert(). The writer codes the result in the
 * op (format.h), so a decoder knows it without the search: it calls
 * lt_model_mru_take() itself on a hit, then lt_model_insert(). */
static inline int lt_model_alloc(lt_model_t *m, uint64_t addr, uint64_t size)
{
	if (!addr)
		return -1;
	uint32_t bin = lt_model_bin(size);
	int hit = lt_model_mru_find(m, bin, addr);
	if (hit >= 0)
		lt_model_mru_take(m, bin, (unsigned)hit);
	lt_model_insert(m, addr, bin);
	return hit;
}

#endif /* LEAKTRACE_MODEL_H */
