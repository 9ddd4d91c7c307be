/* SPDX-License-Identifier: MIT */
/* The CPython code objects of a trace (PYCODE records) by code key, the
 * Python frames of a stack (PYFRAMES), and the source line of a bytecode
 * offset read from a code object's location table. */
#ifndef LT_ANALYZER_PYCODE_H
#define LT_ANALYZER_PYCODE_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "decode.h"

typedef struct lt__pycode_s {
	uint64_t key; /* code_key: the object's address + generation << 48 */
	uint64_t format; /* linetable_format: LT_PYCODE_311 or one we do not know */
	char *filename, *qualname; /* NUL-terminated copies (cut at a NUL) */
	uint64_t firstlineno;
	uint8_t *linetable;
	size_t linetable_len;
	UT_hash_handle hh;
} lt__pycode_t;

typedef struct lt__pycodes_s {
	lt__pycode_t *by_key; /* uthash by key */
} lt__pycodes_t;

/* One Python frame of a recorded stack, innermost first like the native
 * ones. code is NULL when no PYCODE record named code_key before the
 * PYFRAMES record did. */
typedef struct lt__pyframe_s {
	const lt__pycode_t *code;
	uint64_t code_key;
	uint64_t where; /* (instruction << 1) | entry, as recorded */
} lt__pyframe_t;

/* The instruction of a frame (its index in 16-bit code units) and whether
 * it is the first Python frame a native call of the interpreter loop ran
 * (format.h, PYFRAMES). */
static inline uint64_t lt__pyframe_instruction(const lt__pyframe_t *f)
{
	return f->where >> 1;
}

static inline int lt__pyframe_entry(const lt__pyframe_t *f)
{
	return (int)(f->where & 1);
}

/* Copies a PYCODE record into the table. A key already there keeps its
 * first record: a key names one code object for the whole trace, and the
 * entries must not move while stacks point at them. Returns 0 or -ENOMEM. */
int lt__pycodes_add(lt__pycodes_t *t, const lt__record_t *rec);

/* The code object of key, or NULL. */
const lt__pycode_t *lt__pycodes_find(const lt__pycodes_t *t, uint64_t key);

/* The source line of the code unit at instruction (16-bit units from the
 * start of the code), or 0 when it is unknown: a linetable format this
 * reader does not know, an instruction the table does not cover or gives
 * no location, or a malformed table. */
unsigned lt__pycode_line(const lt__pycode_t *c, uint64_t instruction);

/* The line of byte offset `offset` in CPython 3.11's location table
 * (co_linetable; Objects/locations.md) of a code object whose first line
 * is firstlineno, or 0 when unknown as above. Reads only table[0..len). */
unsigned lt__pylinetable_311_line(const uint8_t *table, size_t len, uint64_t firstlineno,
				  uint64_t offset);

void lt__pycodes_free(lt__pycodes_t *t);

#endif
