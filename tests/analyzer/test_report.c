/* SPDX-License-Identifier: MIT */
/* Report tests: the golden trace tests/golden/mt-leaks.bin (see the README
 * there) against its expected text, JSON and folded reports, and the JSON
 * contract of DESIGN.md checked field by field. LT_GOLDEN_UPDATE=1
 * rewrites the expected files instead of comparing. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "callsites.h"
#include "format_util.h"
#include "report.h"
#include "symbolize.h"

enum fmt { TEXT, JSON, FOLDED };

static char *golden_path(const char *name)
{
	const char *dir = getenv("LT_GOLDEN_DIR");
	char *p;
	cr_assert(asprintf(&p, "%s/%s", dir ? dir : "tests/golden", name) > 0);
	return p;
}

/* The report of the golden trace, as a malloc'ed string. */
static char *render(enum fmt fmt, enum lt__metric metric)
{
	char *trace = golden_path("mt-leaks.bin");
	lt__analysis_t a;
	cr_assert_eq(lt__analysis_open(&a, trace, NULL, NULL), 0, "%s", trace);
	cr_assert_eq(lt__analysis_run(&a, NULL, NULL), 0);
	lt__sym_t *sym;
	lt__callsites_t sites;
	cr_assert_eq(lt__sym_new(&sym, lt__replay_modmaps(a.replay), NULL), 0);
	cr_assert_eq(lt__callsites_build(&sites, lt__replay_agg(a.replay), sym), 0);
	lt__report_t r = {.trace_path = "mt-leaks.bin", .replay = a.replay, .sites = &sites,
			  .top = 10, .metric = metric, .warnings = ""};
	char *buf;
	size_t len;
	FILE *out = open_memstream(&buf, &len);
	int rc = fmt == TEXT ? lt__report_text(out, &r)
		 : fmt == JSON ? lt__report_json(out, &r) : lt__report_folded(out, &r);
	cr_assert_eq(rc, 0);
	fclose(out);
	lt__callsites_free(&sites);
	lt__sym_free(sym);
	lt__analysis_close(&a);
	free(trace);
	return buf;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s is missing (LT_GOLDEN_UPDATE=1 writes it)", path);
	char *buf;
	size_t len;
	FILE *out = open_memstream(&buf, &len);
	int c;
	while ((c = fgetc(f)) != EOF)
		fputc(c, out);
	fclose(f);
	fclose(out);
	return buf;
}

static void check_golden(const char *name, char *got)
{
	char *path = golden_path(name);
	if (getenv("LT_GOLDEN_UPDATE")) {
		FILE *f = fopen(path, "wb");
		cr_assert_not_null(f);
		fputs(got, f);
		fclose(f);
	} else {
		char *want = slurp(path);
		cr_assert_str_eq(got, want, "%s differs:\n--- got ---\n%s", name, got);
		free(want);
	}
	free(path);
	free(got);
}

Test(report, golden_text) { check_golden("mt-leaks.txt", render(TEXT, LT__BY_LEAKED)); }
Test(report, golden_json) { check_golden("mt-leaks.json", render(JSON, LT__BY_LEAKED)); }
Test(report, golden_folded_leaked) { check_golden("mt-leaks.leaked.folded", render(FOLDED, LT__BY_LEAKED)); }
Test(report, golden_folded_peak) { check_golden("mt-leaks.peak.folded", render(FOLDED, LT__BY_PEAK)); }

static json_int_t int_field(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	cr_assert(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

/* DESIGN.md's contract, with the figures the golden program implies. */
Test(report, json_contract)
{
	char *text = render(JSON, LT__BY_LEAKED);
	json_error_t err;
	json_t *doc = json_loads(text, 0, &err);
	cr_assert_not_null(doc, "invalid JSON: %s", err.text);
	json_t *s = json_object_get(doc, "summary");
	cr_assert(json_is_object(s));
	cr_assert_eq(int_field(s, "allocations"), 22);
	cr_assert_eq(int_field(s, "frees"), 9);
	cr_assert_eq(int_field(s, "bytes_allocated"), 1100 + 4000 + 10 + 20 + 5000 + 320 + 1048576 + 48);
	cr_assert_eq(int_field(s, "peak_bytes"), 1000 + 5000 + 100 + 1048576);
	cr_assert_eq(int_field(s, "current_bytes"), 6148);
	cr_assert_eq(int_field(s, "leaked_blocks"), 13);
	cr_assert_eq(int_field(s, "leaked_bytes"), 6148);
	cr_assert(json_is_true(json_object_get(s, "clean_end")));
	cr_assert(json_is_false(json_object_get(s, "truncated")));

	json_t *leaks = json_object_get(doc, "leaks");
	cr_assert(json_is_array(leaks));
	cr_assert_eq(json_array_size(leaks), 3);
	json_int_t prev = INT64_MAX;
	size_t i;
	json_t *leak;
	json_array_foreach(leaks, i, leak) {
		json_int_t bytes = int_field(leak, "bytes");
		cr_assert_leq(bytes, prev, "leaks are sorted by bytes, largest first");
		prev = bytes;
		int_field(leak, "blocks");
		json_t *frames = json_object_get(leak, "frames");
		cr_assert(json_is_array(frames) && json_array_size(frames) > 0);
		size_t j;
		json_t *f;
		json_array_foreach(frames, j, f) {
			cr_assert(json_is_string(json_object_get(f, "function")));
			json_t *file = json_object_get(f, "file"), *line = json_object_get(f, "line");
			cr_assert(json_is_string(file) || json_is_null(file));
			cr_assert(json_is_integer(line) || json_is_null(line));
			cr_assert(json_is_string(json_object_get(f, "module")));
			const char *addr = json_string_value(json_object_get(f, "address"));
			cr_assert(addr && strncmp(addr, "0x", 2) == 0);
		}
	}
	cr_assert_eq(int_field(json_array_get(leaks, 0), "bytes"), 5000);
	cr_assert_eq(int_field(json_array_get(leaks, 1), "bytes"), 1100);
	cr_assert_eq(int_field(json_array_get(leaks, 1), "blocks"), 11);
	/* Stacks 1 and 2 differ in their innermost frame: two call sites. */
	const char *fn = json_string_value(json_object_get(
		json_array_get(json_object_get(json_array_get(leaks, 2), "frames"), 0), "function"));
	cr_assert_str_eq(fn, "app+0x1600");
	json_decref(doc);
	free(text);
}

/* The text report's short C++ names: template argument lists emptied,
 * the brackets of operators kept, anything unbalanced left alone. */
Test(report, short_cxx_names)
{
	char buf[256];
	static const char *const cases[][2] = {
		{"std::vector<int, std::allocator<int> >::push_back(int const&)",
		 "std::vector<>::push_back(int const&)"},
		{"std::_Rb_tree_node<std::pair<int const, int> >* std::_Rb_tree<int, "
		 "std::pair<int const, int> >::_M_create_node<int&>(int&)",
		 "std::_Rb_tree_node<>* std::_Rb_tree<>::_M_create_node<>(int&)"},
		{"bool std::operator< <char>(std::basic_string<char> const&, char const*)",
		 "bool std::operator< <>(std::basic_string<> const&, char const*)"},
		{"std::ostream::operator<<(int)", "std::ostream::operator<<(int)"},
		{"foo::operator<=>(foo const&) const", "foo::operator<=>(foo const&) const"},
		{"std::less<void>::operator()<int&, int&>(int&, int&) const",
		 "std::less<>::operator()<>(int&, int&) const"},
		{"x::operator->()", "x::operator->()"},
		{"plain_c_function", "plain_c_function"},
		{"broken<name", "broken<name"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_assert_str_eq(lt__short_name(cases[i][0], buf, sizeof buf), cases[i][1],
				 "case %zu", i);
	/* Too long for the buffer: cut, and says so. */
	char small[12];
	cr_assert_str_eq(lt__short_name("abcdefghijklmn<int>", small, sizeof small),
			 "abcdefgh...");
}
