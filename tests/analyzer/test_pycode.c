/* SPDX-License-Identifier: MIT */
/* Python code objects: the CPython 3.11 location table reader against
 * tables CPython itself wrote (pylinetable_311.h: every code unit's line as
 * co_lines() gives it), malformed and cut tables, and the code table. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "leaktrace/format.h"
#include "pycode.h"
#include "pylinetable_311.h"

#define NCASES (sizeof pylt_cases / sizeof pylt_cases[0])

/* A heap copy of exactly n bytes, so that a sanitizer build sees any read
 * past the table. */
static uint8_t *exact_copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	cr_assert_not_null(c);
	memcpy(c, p, n);
	return c;
}

static const struct pylt_case *find_case(const char *qualname)
{
	for (size_t i = 0; i < NCASES; i++)
		if (strcmp(pylt_cases[i].qualname, qualname) == 0)
			return &pylt_cases[i];
	cr_assert_fail("no case %s in pylinetable_311.h", qualname);
	return NULL;
}

Test(pycode, linetable_311_lines_are_those_of_co_lines)
{
	for (size_t i = 0; i < NCASES; i++) {
		const struct pylt_case *c = &pylt_cases[i];
		uint8_t *t = exact_copy(c->table, c->table_len);
		size_t len = c->table_len;
		for (size_t u = 0; u < c->units; u++) {
			unsigned got = lt__pylinetable_311_line(t, len, c->firstlineno, 2 * u);
			cr_assert_eq(got, c->lines[u], "%s: byte offset %zu: line %u, co_lines: %u",
				     c->qualname, 2 * u, got, c->lines[u]);
			/* An odd offset is inside the same code unit. */
			got = lt__pylinetable_311_line(t, len, c->firstlineno, 2 * u + 1);
			cr_assert_eq(got, c->lines[u], "%s: byte offset %zu", c->qualname,
				     2 * u + 1);
		}
		cr_assert_eq(lt__pylinetable_311_line(t, len, c->firstlineno, 2 * c->units), 0,
			     "%s: past the code", c->qualname);
		cr_assert_eq(lt__pylinetable_311_line(t, len, c->firstlineno, UINT64_MAX), 0);
		free(t);
	}
}

/* The data covers what it means to: each entry form, a line with no
 * location, and a code object whose jumps are long (past 256 code units,
 * so EXTENDED_ARG). */
Test(pycode, linetable_311_data_covers_every_form)
{
	bool code_seen[16] = {false}, none_seen = false, long_code = false;
	for (size_t i = 0; i < NCASES; i++) {
		const struct pylt_case *c = &pylt_cases[i];
		for (size_t k = 0; k < c->table_len; k++)
			if (c->table[k] & 0x80)
				code_seen[(c->table[k] >> 3) & 15] = true;
		for (size_t u = 0; u < c->units; u++)
			none_seen |= c->lines[u] == 0;
		long_code |= c->units > 256;
	}
	for (int code = 0; code < 16; code++)
		cr_assert(code_seen[code], "no entry of code %d in the data", code);
	cr_assert(none_seen);
	cr_assert(long_code);
}

/* Cut anywhere, a table yields either the right line or 0, and never
 * reads past its end. */
Test(pycode, linetable_311_cut_tables_give_the_line_or_unknown)
{
	const struct pylt_case *c = find_case("multi");
	for (size_t len = 0; len < c->table_len; len++) {
		uint8_t *t = exact_copy(c->table, len);
		for (size_t u = 0; u < c->units; u++) {
			unsigned got = lt__pylinetable_311_line(t, len, c->firstlineno, 2 * u);
			cr_assert(got == c->lines[u] || got == 0, "cut at %zu, unit %zu: %u", len,
				  u, got);
		}
		free(t);
	}
	/* The last unit needs the whole table. */
	cr_assert_eq(lt__pylinetable_311_line(c->table, c->table_len - 1, c->firstlineno,
					      2 * (c->units - 1)),
		     0);
}

Test(pycode, linetable_311_malformed_tables_are_unknown)
{
	/* Out of step: the table does not start with an entry's byte. */
	static const uint8_t no_entry[] = {0x01, 0x80, 0x00};
	cr_assert_eq(lt__pylinetable_311_line(no_entry, sizeof no_entry, 10, 0), 0);
	/* A long-form varint running into the next entry. */
	static const uint8_t cut_varint[] = {0xf0, 0x42, 0x80, 0x00};
	cr_assert_eq(lt__pylinetable_311_line(cut_varint, sizeof cut_varint, 10, 0), 0);
	/* A line delta no CPython line can have. */
	static const uint8_t huge[] = {0xe8, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x3f};
	cr_assert_eq(lt__pylinetable_311_line(huge, sizeof huge, 10, 0), 0);
	/* A line that falls to 0 or below. */
	static const uint8_t down[] = {0xe8, 0x19}; /* no columns, delta -12 */
	cr_assert_eq(lt__pylinetable_311_line(down, sizeof down, 10, 0), 0);
	cr_assert_eq(lt__pylinetable_311_line(down, sizeof down, 13, 0), 1);
	/* A first line past what CPython can have. */
	static const uint8_t same[] = {0x80, 0x00};
	cr_assert_eq(lt__pylinetable_311_line(same, sizeof same, 1ull << 40, 0), 0);
	cr_assert_eq(lt__pylinetable_311_line(NULL, 0, 10, 0), 0);
}

/* A PYCODE record as the decoder hands it over. */
static lt__record_t pycode_record(uint64_t key, uint64_t format, const char *file,
				  const char *name, const struct pylt_case *c)
{
	lt__record_t r;
	memset(&r, 0, sizeof r);
	r.type = LT_REC_PYCODE;
	r.u.pycode.code_key = key;
	r.u.pycode.format = format;
	r.u.pycode.filename = (lt__str_t){file, strlen(file)};
	r.u.pycode.qualname = (lt__str_t){name, strlen(name)};
	r.u.pycode.firstlineno = c->firstlineno;
	r.u.pycode.linetable = (lt__str_t){(const char *)c->table, c->table_len};
	return r;
}

Test(pycode, table_keeps_code_objects_by_key)
{
	const struct pylt_case *c = find_case("loop");
	lt__pycodes_t t = {0};
	lt__record_t r = pycode_record(0x7f00aa, LT_PYCODE_311, "/tmp/x.py", "loop", c);
	cr_assert_eq(lt__pycodes_add(&t, &r), 0);
	r = pycode_record(0x7f00bb, 0x030c, "/tmp/y.py", "later", c);
	cr_assert_eq(lt__pycodes_add(&t, &r), 0);
	/* The same key again: the first record stays. */
	r = pycode_record(0x7f00aa, LT_PYCODE_311, "/tmp/z.py", "other", c);
	cr_assert_eq(lt__pycodes_add(&t, &r), 0);

	const lt__pycode_t *loop = lt__pycodes_find(&t, 0x7f00aa);
	cr_assert_not_null(loop);
	cr_assert_str_eq(loop->qualname, "loop");
	cr_assert_str_eq(loop->filename, "/tmp/x.py");
	for (size_t u = 0; u < c->units; u++)
		cr_assert_eq(lt__pycode_line(loop, u), c->lines[u], "unit %zu", u);
	/* A format this reader does not know: no lines. */
	const lt__pycode_t *later = lt__pycodes_find(&t, 0x7f00bb);
	cr_assert_not_null(later);
	cr_assert_eq(lt__pycode_line(later, 1), 0);
	cr_assert_null(lt__pycodes_find(&t, 0x7f00cc));
	lt__pycodes_free(&t);
}
