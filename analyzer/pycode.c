/* SPDX-License-Identifier: MIT */
/* CPython code objects by code key, and a reader of CPython 3.11's
 * location tables (co_linetable) that turns a bytecode offset into a
 * source line, so Python frames can be shown as file:line. */
#include "pycode.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "leaktrace/format.h"

/* CPython keeps line numbers in a C int, so no sane delta needs more. */
#define LT__PY_MAX_DELTA ((uint64_t)INT_MAX)

/* A copy of s with a NUL after it (a NUL inside ends it early). */
static char *dup_str(lt__str_t s)
{
	char *c = malloc(s.len + 1);
	if (!c)
		return NULL;
	if (s.len)
		memcpy(c, s.ptr, s.len);
	c[s.len] = '\0';
	return c;
}

static void pycode_free(lt__pycode_t *c)
{
	free(c->filename);
	free(c->qualname);
	free(c->linetable);
	free(c);
}

int lt__pycodes_add(lt__pycodes_t *t, const lt__record_t *rec)
{
	uint64_t key = rec->u.pycode.code_key;
	if (lt__pycodes_find(t, key))
		return 0;
	lt__pycode_t *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->key = key;
	c->format = rec->u.pycode.format;
	c->firstlineno = rec->u.pycode.firstlineno;
	c->filename = dup_str(rec->u.pycode.filename);
	c->qualname = dup_str(rec->u.pycode.qualname);
	c->linetable_len = rec->u.pycode.linetable.len;
	c->linetable = malloc(c->linetable_len ? c->linetable_len : 1);
	if (!c->filename || !c->qualname || !c->linetable) {
		pycode_free(c);
		return -ENOMEM;
	}
	if (c->linetable_len)
		memcpy(c->linetable, rec->u.pycode.linetable.ptr, c->linetable_len);
	HASH_ADD(hh, t->by_key, key, sizeof c->key, c);
	return 0;
}

const lt__pycode_t *lt__pycodes_find(const lt__pycodes_t *t, uint64_t key)
{
	lt__pycode_t *c;
	HASH_FIND(hh, t->by_key, &key, sizeof key, c);
	return c;
}

unsigned lt__pycode_line(const lt__pycode_t *c, uint64_t instruction)
{
	if (c->format != LT_PYCODE_311 || instruction > UINT64_MAX / 2)
		return 0;
	return lt__pylinetable_311_line(c->linetable, c->linetable_len, c->firstlineno,
					2 * instruction);
}

/* ---- CPython 3.11 location tables ---------------------------------------
 *
 * The table is a run of entries, each covering 1 to 8 code units (16-bit)
 * of the bytecode in order. An entry starts with a byte whose top bit is
 * set: bits 6..3 are its code, bits 2..0 its length in units minus one.
 * By code:
 *   0-9    short form: the line of the entry before; one byte of columns
 *   10-12  one-line form: line + (code - 10); two bytes of columns
 *   13     no columns: line + signed varint
 *   14     long form: line + signed varint, then three varints (end line
 *          delta, column + 1, end column + 1)
 *   15     no location: these units have no line; the line is unchanged
 * The line starts at the code's first line. Varints are 6-bit chunks,
 * least significant first, 0x40 set on all but the last; a signed varint
 * v stands for v >> 1, negated when v & 1. */

/* Reads one varint. Returns 0, or -1 when the table ends inside it, it
 * runs into the next entry or its value is no line delta. */
static int lt311_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift <= 36; shift += 6) {
		if (*p >= end || (**p & 0x80))
			return -1;
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x3f) << shift;
		if (!(b & 0x40)) {
			if (v > 2 * LT__PY_MAX_DELTA + 1)
				return -1;
			*out = v;
			return 0;
		}
	}
	return -1;
}

static int lt311_signed(const uint8_t **p, const uint8_t *end, int64_t *out)
{
	uint64_t v;
	if (lt311_varint(p, end, &v))
		return -1;
	*out = (v & 1) ? -(int64_t)(v >> 1) : (int64_t)(v >> 1);
	return 0;
}

/* Skips n column bytes. Returns 0 or -1 when the table ends first. */
static int lt311_skip(const uint8_t **p, const uint8_t *end, size_t n)
{
	if ((size_t)(end - *p) < n)
		return -1;
	*p += n;
	return 0;
}

/* Reads the entry at *p (a byte with the top bit set): its length in
 * units and how it moves *line; *located is false for code 15. Returns 0
 * or -1 when the entry is malformed. */
static int lt311_entry(const uint8_t **p, const uint8_t *end, int64_t *line, unsigned *units,
		       bool *located)
{
	uint8_t first = *(*p)++;
	if (!(first & 0x80))
		return -1; /* not where an entry starts: the table is out of step */
	unsigned code = (first >> 3) & 15;
	int64_t delta = 0;
	uint64_t ignored;
	*units = (first & 7) + 1;
	*located = code != 15;
	switch (code) {
	case 15:
		return 0;
	case 14:
		if (lt311_signed(p, end, &delta) || lt311_varint(p, end, &ignored) ||
		    lt311_varint(p, end, &ignored) || lt311_varint(p, end, &ignored))
			return -1;
		break;
	case 13:
		if (lt311_signed(p, end, &delta))
			return -1;
		break;
	case 10:
	case 11:
	case 12:
		delta = code - 10;
		if (lt311_skip(p, end, 2))
			return -1;
		break;
	default:
		if (lt311_skip(p, end, 1))
			return -1;
		break;
	}
	/* Bounded deltas over a bounded table: no overflow of *line. */
	*line += delta;
	return 0;
}

unsigned lt__pylinetable_311_line(const uint8_t *table, size_t len, uint64_t firstlineno,
				  uint64_t offset)
{
	if (firstlineno > LT__PY_MAX_DELTA || len > LT_BLOCK_MAX_RAW)
		return 0;
	const uint8_t *p = table, *end = table + len;
	uint64_t unit = offset / 2, start = 0;
	int64_t line = (int64_t)firstlineno;
	while (p < end) {
		unsigned units;
		bool located;
		if (lt311_entry(&p, end, &line, &units, &located))
			return 0;
		if (unit < start + units) {
			bool known = located && line > 0 && line <= (int64_t)UINT_MAX;
			return known ? (unsigned)line : 0;
		}
		start += units;
	}
	return 0;
}

void lt__pycodes_free(lt__pycodes_t *t)
{
	lt__pycode_t *c, *tmp;
	HASH_ITER(hh, t->by_key, c, tmp)
	{
		HASH_DEL(t->by_key, c);
		pycode_free(c);
	}
}
