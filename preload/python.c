/* SPDX-License-Identifier: MIT */
/* CPython's own frames. When the traced program is a CPython 3.11
 * interpreter, each allocation made by a thread that holds the GIL also
 * records the Python frames being run (code object and instruction),
 * and each code object is described once in a PYCODE record (file name,
 * qualified name, first line, line table), so that the analyzer can show
 * "handle (app.py:12)" where it would otherwise show the interpreter loop.
 * See format.h, PYCODE and PYFRAMES.
 *
 * Nothing here calls into Python: the frames are read where CPython 3.11
 * keeps them, at offsets checked against its headers (3.11.2 and 3.11.7
 * agree). Only the thread that holds the GIL reads, and only its own
 * frames, which cannot change while it is inside malloc. The first code
 * object read must have PyCode_Type as its type, else the layout is not
 * the one expected and Python frames are turned off. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "leaktrace/codec.h"
#include "leaktrace/format.h"
#include "shim.h"
#include "sys.h"

/* CPython 3.11 (x86-64, LP64) offsets: PyThreadState, _PyCFrame,
 * _PyInterpreterFrame, PyCodeObject, PyUnicode and PyBytes objects. */
#define TS_CFRAME 56
#define TS_THREAD_ID 152
#define CF_CURRENT_FRAME 8
#define FR_CODE 32
#define FR_PREVIOUS 48
#define FR_PREV_INSTR 56
#define FR_IS_ENTRY 68
#define OB_TYPE 8
#define CO_FIRSTLINENO 72
#define CO_FILENAME 112
#define CO_QUALNAME 128
#define CO_LINETABLE 136
#define CO_CODE 184
#define VAR_SIZE 16
#define BYTES_DATA 32
#define STR_LENGTH 16
#define STR_STATE 32
#define STR_ASCII_DATA 48
#define STR_UTF8_LENGTH 48
#define STR_UTF8 56
#define STR_COMPACT_DATA 72

#define CODE_SLOTS (1u << 18) /* code objects described; more go unnamed */
#define CODE_ARENA (64u << 20) /* reserved, touched as used */
#define NAME_MAX_BYTES 1024
#define LINETABLE_MAX (64u << 10) /* a larger table is left out: lines unknown */

/* Relaxed everywhere: set once by the constructor before the program's
 * threads exist, and only ever turned off afterwards (a stale true costs
 * one more stack with Python frames). */
_Atomic bool lt__py_active;

static void *(*unchecked_get)(void); /* _PyThreadState_UncheckedGet */
static uintptr_t code_type;          /* &PyCode_Type */
static _Atomic int layout_checked;   /* 0 not yet, 1 good */

/* Code objects seen: open addressing, never deleted. state is
 * (generation << 1) | described. */
struct code_slot {
	_Atomic uint64_t addr;
	_Atomic uint64_t state;
};
static struct code_slot *slots;
/* One bit per slot_of() value's low 16 bits, set when a code object is
 * entered: most frees are of other blocks, and this small filter answers
 * for them without touching the table. Relaxed: a bit set late only
 * delays a generation bump that GIL order already makes happen after. */
static _Atomic uint64_t seen_bits[1024];

/* In front of the table, the keys of code objects met lately, one per
 * line (4 KiB, so frames find theirs in cache rather than in the table's
 * megabytes). A key holds its object's address in its low 48 bits, so one
 * 64-bit word says both which object and which key: no torn entries.
 * Relaxed: a stale entry is cleared by lt__py_forget before the address
 * can be handed out again (the free comes first), and a missing one only
 * sends the lookup to the table. */
#define FRONT_LINES 512
#define KEY_ADDR(k) ((k) & ((1ull << 48) - 1))
static _Atomic uint64_t front[FRONT_LINES];

static inline uint32_t front_of(uintptr_t addr)
{
	return (uint32_t)((addr >> 4) ^ (addr >> 13)) & (FRONT_LINES - 1);
}

/* PYCODE records waiting for the writer: a lock-free stack of entries in
 * the arena. */
struct lt_pycode {
	struct lt_pycode *next;
	uint64_t key;
	uint32_t firstlineno, file_len, name_len, table_len;
	unsigned char data[]; /* file, name, table */
};
static unsigned char *arena;
static _Atomic uint64_t arena_top; /* relaxed: a bump pointer */
static _Atomic(struct lt_pycode *) pending;

void lt__py_init(void)
{
	const char *want = getenv("LEAKTRACE_PYTHON");
	if (want && strcmp(want, "0") == 0)
		return;
	bool asked = want && strcmp(want, "1") == 0;
	const char *(*version)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "Py_GetVersion");
	if (!version) {
		if (asked)
			lt__sys_warn("LEAKTRACE_PYTHON=1: ", "the program is not CPython", NULL);
		return;
	}
	const char *v = version();
	if (strncmp(v, "3.11.", 5) != 0) {
		if (asked)
			lt__sys_warn("LEAKTRACE_PYTHON=1: Python frames are recorded for "
				     "CPython 3.11 only, not ",
				     v, NULL);
		return;
	}
	unchecked_get = (void *(*)(void))dlsym(RTLD_DEFAULT, "_PyThreadState_UncheckedGet");
	code_type = (uintptr_t)dlsym(RTLD_DEFAULT, "PyCode_Type");
	slots = lt__sys_map(sizeof *slots * CODE_SLOTS);
	arena = lt__sys_map(CODE_ARENA);
	atomic_store_explicit(&lt__py_active, unchecked_get && code_type && slots && arena,
			      memory_order_relaxed);
}

static inline uintptr_t word(uintptr_t at)
{
	return *(const uintptr_t *)at;
}

static inline uint32_t slot_of(uintptr_t addr)
{
	uint64_t h = (uint64_t)addr * 0x9e3779b97f4a7c15ull;
	return (uint32_t)(h >> 40) & (CODE_SLOTS - 1);
}

/* The UTF-8 bytes of a str object (NULL, 0 for what is not a plain
 * compact string: the name is then left empty). */
static const char *str_bytes(uintptr_t s, size_t *len)
{
	*len = 0;
	if (!s)
		return NULL;
	uint32_t state = *(const uint32_t *)(s + STR_STATE);
	bool compact = state & (1u << 5), ascii = state & (1u << 6);
	if (compact && ascii) {
		*len = word(s + STR_LENGTH);
		return (const char *)(s + STR_ASCII_DATA);
	}
	if (compact && word(s + STR_UTF8)) {
		*len = word(s + STR_UTF8_LENGTH);
		return (const char *)word(s + STR_UTF8);
	}
	return NULL;
}

/* Copies the description of code object `code` into the arena and hands
 * it to the writer. false when the arena is full. */
static bool describe(uintptr_t code, uint64_t key)
{
	size_t file_len, name_len;
	const char *file = str_bytes(word(code + CO_FILENAME), &file_len);
	const char *name = str_bytes(word(code + CO_QUALNAME), &name_len);
	file_len = file_len < NAME_MAX_BYTES ? file_len : NAME_MAX_BYTES;
	name_len = name_len < NAME_MAX_BYTES ? name_len : NAME_MAX_BYTES;
	uintptr_t table = word(code + CO_LINETABLE);
	size_t table_len = table ? word(table + VAR_SIZE) : 0;
	if (table_len > LINETABLE_MAX)
		table_len = 0;
	size_t bytes = (sizeof(struct lt_pycode) + file_len + name_len + table_len + 7) & ~(size_t)7;
	uint64_t off = atomic_fetch_add_explicit(&arena_top, bytes, memory_order_relaxed);
	if (off + bytes > CODE_ARENA)
		return false;
	struct lt_pycode *e = (void *)(arena + off);
	e->key = key;
	e->firstlineno = (uint32_t)*(const int *)(code + CO_FIRSTLINENO);
	e->file_len = (uint32_t)file_len;
	e->name_len = (uint32_t)name_len;
	e->table_len = (uint32_t)table_len;
	if (file_len)
		memcpy(e->data, file, file_len);
	if (name_len)
		memcpy(e->data + file_len, name, name_len);
	if (table_len)
		memcpy(e->data + file_len + name_len, (const void *)(table + BYTES_DATA), table_len);
	struct lt_pycode *head = atomic_load_explicit(&pending, memory_order_relaxed);
	do
		e->next = head;
	/* Release publishes the entry to the writer's acquire exchange. */
	while (!atomic_compare_exchange_weak_explicit(&pending, &head, e, memory_order_release,
						      memory_order_relaxed));
	return true;
}

static uint64_t code_key_slow(uintptr_t code);

/* The key of code object `code`, describing it first if it is new (or
 * new at this address). 0 when it cannot be described. */
static uint64_t code_key(uintptr_t code)
{
	_Atomic uint64_t *line = &front[front_of(code)];
	uint64_t k = atomic_load_explicit(line, memory_order_relaxed);
	if (LT_LIKELY(k && KEY_ADDR(k) == code))
		return k;
	k = code_key_slow(code);
	if (k)
		atomic_store_explicit(line, k, memory_order_relaxed);
	return k;
}

/* code_key's lookup in the table. */
static uint64_t code_key_slow(uintptr_t code)
{
	for (uint32_t i = slot_of(code), probes = 0; probes < 64;
	     i = (i + 1) & (CODE_SLOTS - 1), probes++) {
		struct code_slot *s = &slots[i];
		/* Acquire pairs with the release CAS that claimed the slot;
		 * only the address is published through it. */
		uint64_t a = atomic_load_explicit(&s->addr, memory_order_acquire);
		if (a == 0) {
			if (!atomic_compare_exchange_strong_explicit(&s->addr, &a, code,
								     memory_order_acq_rel,
								     memory_order_acquire) &&
			    a != code)
				continue;
			uint32_t b = slot_of(code) & 0xffff;
			atomic_fetch_or_explicit(&seen_bits[b >> 6], 1ull << (b & 63),
						 memory_order_relaxed);
		} else if (a != code) {
			continue;
		}
		/* Relaxed: only GIL holders describe code objects, and the
		 * GIL orders them; a free that bumps the generation
		 * concurrently can only be of another object's address. */
		uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
		uint64_t key = (uint64_t)code + ((st >> 1) << 48);
		if (st & 1)
			return key;
		if (!describe(code, key))
			return 0;
		atomic_store_explicit(&s->state, st | 1, memory_order_relaxed);
		return key;
	}
	return 0;
}

int lt__py_frames(uint64_t *out, int max)
{
	uintptr_t ts = (uintptr_t)unchecked_get();
	/* The GIL holder's thread state: ours only if we hold the GIL. */
	if (!ts || word(ts + TS_THREAD_ID) != (uintptr_t)pthread_self())
		return 0;
	uintptr_t cf = word(ts + TS_CFRAME);
	uintptr_t f = cf ? word(cf + CF_CURRENT_FRAME) : 0;
	int n = 0;
	for (; f && n < max; f = word(f + FR_PREVIOUS)) {
		uintptr_t code = word(f + FR_CODE);
		if (!code)
			break;
		/* Acquire/release: a cheap once-only flag. */
		if (LT_UNLIKELY(!atomic_load_explicit(&layout_checked, memory_order_acquire))) {
			if (word(code + OB_TYPE) != code_type) {
				atomic_store_explicit(&lt__py_active, false, memory_order_relaxed);
				lt__sys_warn("this CPython's frames are not laid out as in 3.11; "
					     "recording without Python frames",
					     NULL, NULL);
				return 0;
			}
			atomic_store_explicit(&layout_checked, 1, memory_order_release);
		}
		uintptr_t prev = word(f + FR_PREV_INSTR), start = code + CO_CODE;
		/* A frame that has not started yet points before its code. */
		uint64_t instr = prev >= start ? (prev - start) / 2 : 0;
		out[2 * n] = code_key(code);
		out[2 * n + 1] = instr << 1 | (*(const uint8_t *)(f + FR_IS_ENTRY) ? 1 : 0);
		n++;
	}
	return n;
}

void lt__py_forget(uintptr_t addr)
{
	_Atomic uint64_t *line = &front[front_of(addr)];
	uint64_t k = atomic_load_explicit(line, memory_order_relaxed);
	if (k && KEY_ADDR(k) == addr)
		atomic_compare_exchange_strong_explicit(line, &k, 0, memory_order_relaxed,
							memory_order_relaxed);
	uint32_t b = slot_of(addr) & 0xffff;
	if (!(atomic_load_explicit(&seen_bits[b >> 6], memory_order_relaxed) & (1ull << (b & 63))))
		return;
	for (uint32_t i = slot_of(addr), probes = 0; probes < 64;
	     i = (i + 1) & (CODE_SLOTS - 1), probes++) {
		/* Relaxed: an address in the table stays there; see code_key
		 * for why the state needs no stronger ordering. */
		uint64_t a = atomic_load_explicit(&slots[i].addr, memory_order_relaxed);
		if (a == 0)
			return;
		if (a == addr) {
			uint64_t st = atomic_load_explicit(&slots[i].state, memory_order_relaxed);
			/* A new object at this address gets a new key. */
			if (st & 1)
				atomic_store_explicit(&slots[i].state, ((st >> 1) + 1) << 1,
						      memory_order_relaxed);
			return;
		}
	}
}

struct lt_pycode *lt__py_take(void)
{
	if (!atomic_load_explicit(&pending, memory_order_relaxed))
		return NULL;
	/* Acquire pairs with the release CAS in describe(). */
	struct lt_pycode *e = atomic_exchange_explicit(&pending, NULL, memory_order_acquire);
	struct lt_pycode *fifo = NULL;
	while (e) {
		struct lt_pycode *next = e->next;
		e->next = fifo;
		fifo = e;
		e = next;
	}
	return fifo;
}

struct lt_pycode *lt__py_next(const struct lt_pycode *e)
{
	return e->next;
}

size_t lt__py_encode(const struct lt_pycode *e, uint8_t *p, size_t cap)
{
	if (cap < lt__py_size(e))
		return 0;
	uint8_t *s = p;
	p = lt_put_uv(p, e->key);
	p = lt_put_uv(p, LT_PYCODE_311);
	p = lt_put_uv(p, e->file_len);
	memcpy(p, e->data, e->file_len);
	p += e->file_len;
	p = lt_put_uv(p, e->name_len);
	memcpy(p, e->data + e->file_len, e->name_len);
	p += e->name_len;
	p = lt_put_uv(p, e->firstlineno);
	p = lt_put_uv(p, e->table_len);
	memcpy(p, e->data + e->file_len + e->name_len, e->table_len);
	p += e->table_len;
	return (size_t)(p - s);
}

size_t lt__py_size(const struct lt_pycode *e)
{
	return 7 * LT_UV_MAX + e->file_len + e->name_len + e->table_len;
}
