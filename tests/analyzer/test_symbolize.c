/* SPDX-License-Identifier: MIT */
/* Symbolization tests against this test program itself: its module map is
 * read with dl_iterate_phdr, its own functions must come back with name,
 * file and line, the shim's and the allocator's frames are hidden, and
 * Python frames take the place of CPython's interpreter loop. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fx_inline_chain.h"
#include "fx_python.h"
#include "leaktrace/format.h"
#include "modules.h"
#include "pycode.h"
#include "pylinetable_311.h"
#include "symbolize.h"

static void modmap_of_self(lt__modmaps_t *mm, struct lt_fx_module *self, const char *path)
{
	cr_assert_eq(lt_fx_self_module(self), 0);
	lt__module_rec_t rec = {
		.path = {path ? path : self->path, strlen(path ? path : self->path)},
		.load_bias = self->bias, .lo = self->lo, .hi = self->hi,
		.build_id = self->build_id, .build_id_len = self->build_id_len,
	};
	lt__record_t r = {.u.modules = {.generation = 1, .count = 1, .modules = &rec}};
	cr_assert_eq(lt__modmaps_add(mm, &r), 0);
}

__attribute__((noinline)) static void *known_function(void)
{
	return __builtin_return_address(0);
}

static uint64_t call_site_line;

__attribute__((noinline)) static uint64_t calls_known(void)
{
	call_site_line = __LINE__ + 1;
	void *ret = known_function();
	__asm__ volatile("" ::: "memory"); /* no tail call */
	return (uint64_t)(uintptr_t)ret + call_site_line * 0;
}

Test(symbolize, own_function_file_and_line)
{
	lt__modmaps_t mm = {0};
	struct lt_fx_module self;
	modmap_of_self(&mm, &self, NULL);
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &mm, NULL), 0);

	const lt__frame_t *f;
	size_t n;
	cr_assert_eq(lt__sym_addr(s, 0, (uint64_t)(uintptr_t)known_function, false, &f, &n), 0);
	cr_assert_geq(n, 1);
	cr_assert_str_eq(f[0].function, "known_function");
	cr_assert_not_null(f[0].file);
	cr_assert(strstr(f[0].file, "test_symbolize.c"), "%s", f[0].file);

	uint64_t ret = calls_known();
	cr_assert_eq(lt__sym_addr(s, 0, ret, true, &f, &n), 0);
	cr_assert_str_eq(f[n - 1].function, "calls_known");
	cr_assert_eq(f[n - 1].line, call_site_line);
	cr_assert_eq(f[n - 1].offset, ret - self.bias);

	/* Cached: the same frames come back. */
	const lt__frame_t *again;
	cr_assert_eq(lt__sym_addr(s, 0, ret, true, &again, &n), 0);
	cr_assert_eq(again, f);
	lt__sym_free(s);
	lt__modmaps_free(&mm);
}

Test(symbolize, wrong_build_id_falls_back_to_module_offset)
{
	lt__modmaps_t mm = {0};
	struct lt_fx_module self;
	modmap_of_self(&mm, &self, NULL);
	mm.maps[0].modules[0].build_id[0] ^= 0xff;
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &mm, NULL), 0);
	const lt__frame_t *f;
	size_t n;
	uint64_t a = (uint64_t)(uintptr_t)known_function;
	cr_assert_eq(lt__sym_addr(s, 0, a, false, &f, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_null(f[0].function);
	char buf[4200], want[4200];
	const char *base = strrchr(self.path, '/') + 1;
	snprintf(want, sizeof want, "%s+0x%lx", base, (unsigned long)(a - self.bias));
	cr_assert_str_eq(lt__frame_label(&f[0], buf, sizeof buf), want);
	lt__sym_free(s);
	lt__modmaps_free(&mm);
}

Test(symbolize, sysroot_prefixes_module_paths)
{
	lt__modmaps_t mm = {0};
	struct lt_fx_module self;
	modmap_of_self(&mm, &self, NULL);
	/* Recorded as /exe-dir/..., found under a sysroot of "/" + path. */
	lt__sym_opts_t o = {.sysroot = "/nonexistent-root"};
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &mm, &o), 0);
	const lt__frame_t *f;
	size_t n;
	cr_assert_eq(lt__sym_addr(s, 0, (uint64_t)(uintptr_t)known_function, false, &f, &n), 0);
	cr_assert_null(f[0].function, "the binary is not under the sysroot");
	lt__sym_free(s);
	lt__modmaps_free(&mm);
}

/* Regression: after the first inlined frame, libdw's dwarf_getscopes goes
 * on with the inlined function's abstract definition, so the frames that
 * contain it (outer inlines and the real function) were lost, and an
 * inlined function was shown with its caller's line. */
Test(symbolize, inlined_chain_keeps_every_caller)
{
	lt__modmaps_t mm = {0};
	struct lt_fx_module self;
	modmap_of_self(&mm, &self, NULL);
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &mm, NULL), 0);
	uint64_t ret = (uint64_t)(uintptr_t)lt_fx_outer(2);
	const lt__frame_t *f;
	size_t n;
	cr_assert_eq(lt__sym_addr(s, 0, ret, true, &f, &n), 0);
	static const char *const names[] = {"inner", "middle", "lt_fx_outer"};
	cr_assert_eq(n, 3, "%zu frames, the first %s", n, f[0].function);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_str_eq(f[i].function, names[i], "frame %zu", i);
		cr_assert_not_null(f[i].file, "frame %zu", i);
		cr_assert(strstr(f[i].file, "fx_inline_chain.c"), "frame %zu: %s", i, f[i].file);
		cr_assert_eq(f[i].line, lt_fx_chain_lines[i], "frame %zu: line %u, not %u", i,
			     f[i].line, lt_fx_chain_lines[i]);
		cr_assert_eq(f[i].inlined, i < 2, "frame %zu", i);
		cr_assert_eq(f[i].offset, ret - self.bias);
	}
	lt__sym_free(s);
	lt__modmaps_free(&mm);
}

/* Regression: every recorded frame, the first included, is a return
 * address (format.h, STACK); the first was looked up at the address
 * itself, which is past the call and often in the caller's inline scope. */
Test(symbolize, first_frame_is_a_return_address)
{
	lt__modmaps_t mm = {0};
	struct lt_fx_module self;
	modmap_of_self(&mm, &self, NULL);
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &mm, NULL), 0);
	uint64_t stack[] = {(uint64_t)(uintptr_t)lt_fx_outer(1), calls_known()};
	const lt__frame_t *f;
	size_t n;
	cr_assert_eq(lt__sym_addr(s, 0, stack[0], true, &f, &n), 0);
	const lt__frame_t **v;
	size_t nv;
	cr_assert_eq(lt__sym_stack(s, 0, stack, 2, NULL, 0, &v, &nv), 0);
	cr_assert_geq(nv, n + 1);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(v[i], &f[i], "frame %zu is not the lookup at address - 1", i);
	cr_assert_str_eq(v[n]->function, "calls_known");
	free(v);
	lt__sym_free(s);
	lt__modmaps_free(&mm);
}

/* Regression: an address after the end of a unit's code (_start after
 * main) took the unit's last line row, e.g. "_start (unique_ptr.h:395)". */
Test(symbolize, code_past_a_unit_has_no_line)
{
	lt__modmaps_t mm = {0};
	struct lt_fx_module self;
	modmap_of_self(&mm, &self, NULL);
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &mm, NULL), 0);
	const lt__frame_t *f;
	size_t n;
	/* + 2: a return address after the second nop. */
	uint64_t a = (uint64_t)(uintptr_t)lt_fx_nodebug + 2;
	cr_assert_eq(lt__sym_addr(s, 0, a, true, &f, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(f[0].function, "lt_fx_nodebug");
	cr_assert_null(f[0].file, "%s:%u", f[0].file, f[0].line);
	cr_assert_eq(f[0].line, 0);
	lt__sym_free(s);
	lt__modmaps_free(&mm);
}

/* Makes every directory of path (like mkdir -p). */
static void mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(path, 0700);
		*p = '/';
	}
	mkdir(path, 0700);
}

Test(symbolize, sysroot_finds_the_binary_under_it)
{
	lt__modmaps_t mm = {0};
	struct lt_fx_module self;
	modmap_of_self(&mm, &self, NULL);
	char root[] = "/tmp/lt-sysroot-XXXXXX";
	cr_assert(mkdtemp(root));
	char dir[8192], link[8192];
	snprintf(dir, sizeof dir, "%s%s", root, self.path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	snprintf(link, sizeof link, "%s%s", root, self.path);
	cr_assert_eq(symlink(self.path, link), 0);
	lt__sym_opts_t o = {.sysroot = root};
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &mm, &o), 0);
	const lt__frame_t *f;
	size_t n;
	cr_assert_eq(lt__sym_addr(s, 0, (uint64_t)(uintptr_t)known_function, false, &f, &n), 0);
	cr_assert_str_eq(f[0].function, "known_function");
	lt__sym_free(s);
	lt__modmaps_free(&mm);
	unlink(link);
}

Test(symbolize, debug_dir_finds_the_file_by_build_id)
{
	lt__modmaps_t mm = {0};
	struct lt_fx_module self;
	/* Recorded under a path that does not exist on this machine. */
	modmap_of_self(&mm, &self, "/elsewhere/bin/app");
	cr_assert_geq(self.build_id_len, 2, "the test binary has no build-id");
	char root[] = "/tmp/lt-debugdir-XXXXXX";
	cr_assert(mkdtemp(root));
	char hex[129] = {0}, dir[512], link[1024];
	for (size_t i = 0; i < self.build_id_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", self.build_id[i]);
	snprintf(dir, sizeof dir, "%s/.build-id/%.2s", root, hex);
	mkdirs(dir);
	snprintf(link, sizeof link, "%s/%s.debug", dir, hex + 2);
	cr_assert_eq(symlink(self.path, link), 0);
	lt__sym_opts_t o = {.debug_dir = root};
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &mm, &o), 0);
	const lt__frame_t *f;
	size_t n;
	cr_assert_eq(lt__sym_addr(s, 0, (uint64_t)(uintptr_t)known_function, false, &f, &n), 0);
	cr_assert_str_eq(f[0].function, "known_function");
	cr_assert_str_eq(f[0].module, "/elsewhere/bin/app");
	lt__sym_free(s);
	lt__modmaps_free(&mm);
	unlink(link);
}

/* Regression: a library dlopen()ed as "./libplug.so" was recorded under
 * that relative name by older shims, and only absolute paths were
 * opened. A relative path is tried in the current directory and under
 * --sysroot, and used only when the build-id matches. */
Test(symbolize, relative_module_path_from_cwd_or_sysroot)
{
	lt__modmaps_t mm = {0};
	struct lt_fx_module self;
	modmap_of_self(&mm, &self, "./sub/app");
	char root[] = "/tmp/lt-relpath-XXXXXX";
	cr_assert(mkdtemp(root));
	char dir[512], link[600];
	snprintf(dir, sizeof dir, "%s/sub", root);
	mkdirs(dir);
	snprintf(link, sizeof link, "%s/app", dir);
	cr_assert_eq(symlink(self.path, link), 0);
	uint64_t a = (uint64_t)(uintptr_t)known_function;
	const lt__frame_t *f;
	size_t n;
	lt__sym_t *s;

	/* Elsewhere, without a sysroot: not found. */
	cr_assert_eq(chdir("/"), 0);
	cr_assert_eq(lt__sym_new(&s, &mm, NULL), 0);
	cr_assert_eq(lt__sym_addr(s, 0, a, false, &f, &n), 0);
	cr_assert_null(f[0].function);
	lt__sym_free(s);

	/* Under the sysroot. */
	lt__sym_opts_t o = {.sysroot = root};
	cr_assert_eq(lt__sym_new(&s, &mm, &o), 0);
	cr_assert_eq(lt__sym_addr(s, 0, a, false, &f, &n), 0);
	cr_assert_str_eq(f[0].function, "known_function");
	cr_assert_str_eq(f[0].module, "./sub/app");
	lt__sym_free(s);

	/* In the current directory. */
	cr_assert_eq(chdir(root), 0);
	cr_assert_eq(lt__sym_new(&s, &mm, NULL), 0);
	cr_assert_eq(lt__sym_addr(s, 0, a, false, &f, &n), 0);
	cr_assert_str_eq(f[0].function, "known_function");
	lt__sym_free(s);

	/* Another file at that path (its build-id differs): not used. */
	mm.maps[0].modules[0].build_id[0] ^= 0xff;
	cr_assert_eq(lt__sym_new(&s, &mm, NULL), 0);
	cr_assert_eq(lt__sym_addr(s, 0, a, false, &f, &n), 0);
	cr_assert_null(f[0].function);
	lt__sym_free(s);

	lt__modmaps_free(&mm);
	unlink(link);
	rmdir(dir);
	rmdir(root);
}

Test(symbolize, hides_shim_allocator_and_wrappers)
{
	lt__modmaps_t mm = {0};
	struct lt_fx_module self;
	modmap_of_self(&mm, &self, NULL);
	/* A second map where the test binary pretends to be the shim. */
	lt__module_rec_t rec = {.path = {"/x/libleaktrace.so", 18}, .load_bias = 0,
				.lo = 0x1000, .hi = 0x2000};
	lt__record_t r = {.u.modules = {.generation = 2, .count = 1, .modules = &rec}};
	cr_assert_eq(lt__modmaps_add(&mm, &r), 1);
	mm.maps[1].modules = realloc(mm.maps[1].modules, 2 * sizeof *mm.maps[1].modules);
	mm.maps[1].modules[1] = mm.maps[0].modules[0];
	mm.maps[1].modules[1].path = strdup(mm.maps[0].modules[0].path);
	mm.maps[1].modules[1].build_id = malloc(self.build_id_len ? self.build_id_len : 1);
	memcpy(mm.maps[1].modules[1].build_id, self.build_id, self.build_id_len);
	mm.maps[1].count = 2;

	const char *skip[] = {"calls_*"};
	lt__sym_opts_t o = {.skip_functions = skip, .nskip = 1};
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &mm, &o), 0);
	/* Return addresses are looked up at addr - 1: + 1 lands on entry. */
	uint64_t entry = (uint64_t)(uintptr_t)known_function + 1;
	uint64_t stack[] = {0x1100, entry, calls_known(), entry};
	const lt__frame_t **v;
	size_t n;
	/* shim frame hidden, then known_function is visible */
	cr_assert_eq(lt__sym_stack(s, 1, stack, 4, NULL, 0, &v, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(v[0]->function, "known_function");
	free(v);
	/* shim frame, then a --skip-function wrapper: both hidden */
	uint64_t stack2[] = {0x1100, calls_known(), (uint64_t)(uintptr_t)known_function + 1};
	cr_assert_eq(lt__sym_stack(s, 1, stack2, 3, NULL, 0, &v, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(v[0]->function, "known_function");
	free(v);
	lt__sym_free(s);
	lt__modmaps_free(&mm);
}

/* Regression: the shim's frames were hidden only at the top of a stack,
 * so a stack through an interposed function that calls the C library
 * (the dlopen wrapper: libc -> dlopen in the shim -> main) showed the
 * shim's frame in the middle. --show-hidden keeps it. */
Test(symbolize, hides_shim_frames_inside_the_stack)
{
	lt__modmaps_t mm = {0};
	struct lt_fx_module self;
	modmap_of_self(&mm, &self, NULL);
	lt__module_rec_t rec = {.path = {"/x/libleaktrace.so", 18}, .load_bias = 0,
				.lo = 0x1000, .hi = 0x2000};
	lt__record_t r = {.u.modules = {.generation = 2, .count = 1, .modules = &rec}};
	cr_assert_eq(lt__modmaps_add(&mm, &r), 1);
	mm.maps[1].modules = realloc(mm.maps[1].modules, 2 * sizeof *mm.maps[1].modules);
	mm.maps[1].modules[1] = mm.maps[0].modules[0];
	mm.maps[1].modules[1].path = strdup(mm.maps[0].modules[0].path);
	mm.maps[1].modules[1].build_id = malloc(self.build_id_len ? self.build_id_len : 1);
	memcpy(mm.maps[1].modules[1].build_id, self.build_id, self.build_id_len);
	mm.maps[1].count = 2;

	uint64_t entry = (uint64_t)(uintptr_t)known_function + 1;
	uint64_t stack[] = {entry, 0x1100, 0x1200, calls_known()};
	const lt__frame_t **v;
	size_t n;
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &mm, NULL), 0);
	cr_assert_eq(lt__sym_stack(s, 1, stack, 4, NULL, 0, &v, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(v[0]->function, "known_function");
	cr_assert_str_eq(v[1]->function, "calls_known");
	free(v);
	/* Nothing but the shim: shown rather than an empty stack. */
	cr_assert_eq(lt__sym_stack(s, 1, stack + 1, 2, NULL, 0, &v, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(v[0]->module, "/x/libleaktrace.so");
	free(v);
	lt__sym_free(s);

	lt__sym_opts_t o = {.show_hidden = true};
	cr_assert_eq(lt__sym_new(&s, &mm, &o), 0);
	cr_assert_eq(lt__sym_stack(s, 1, stack, 4, NULL, 0, &v, &n), 0);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(v[1]->module, "/x/libleaktrace.so");
	free(v);
	lt__sym_free(s);
	lt__modmaps_free(&mm);
}

/* ---- Python frames ------------------------------------------------------
 * The test program plays CPython (fx_python.c: _PyEval_EvalFrameDefault
 * and two more interpreter functions), next to a C extension module that
 * is not on disk; the code objects are real CPython 3.11 ones. */

#define PY_EXT_PATH "/opt/fx/_native.so"
#define PY_EXT_FRAME 0x1100 /* a return address in the C extension */
#define PY_STRIPPED_PATH "/opt/fx/python3.11" /* an interpreter not on disk */
#define PY_STRIPPED_FRAME 0x3100

/* Code keys of the code objects, with their CPython data. */
static const struct {
	uint64_t key;
	const char *qualname;
} py_codes[] = {
	{0x7f00000a0, "handle"}, {0x7f00000b0, "loop"},     {0x7f00000c0, "comp"},
	{0x7f00000d0, "multi"},  {0x7f00000e0, "<module>"},
};

struct py_env {
	struct lt_fx_module self;
	lt__modmaps_t mm;
	lt__pycodes_t codes;
};

static const struct pylt_case *py_case(const char *qualname)
{
	for (size_t i = 0; i < sizeof pylt_cases / sizeof pylt_cases[0]; i++)
		if (strcmp(pylt_cases[i].qualname, qualname) == 0)
			return &pylt_cases[i];
	cr_assert_fail("no code object %s", qualname);
	return NULL;
}

/* A module map of the C extension, the test program and an interpreter
 * whose file is missing (index 0), and the code objects of py_codes, all
 * in /tmp/x.py. */
static void py_env_init(struct py_env *e)
{
	memset(e, 0, sizeof *e);
	cr_assert_eq(lt_fx_self_module(&e->self), 0);
	lt__module_rec_t recs[] = {
		{.path = {PY_EXT_PATH, strlen(PY_EXT_PATH)}, .lo = 0x1000, .hi = 0x2000},
		{.path = {e->self.path, strlen(e->self.path)}, .load_bias = e->self.bias,
		 .lo = e->self.lo, .hi = e->self.hi, .build_id = e->self.build_id,
		 .build_id_len = e->self.build_id_len},
		{.path = {PY_STRIPPED_PATH, strlen(PY_STRIPPED_PATH)}, .lo = 0x3000, .hi = 0x4000},
	};
	lt__record_t r = {.u.modules = {.generation = 1, .count = 3, .modules = recs}};
	cr_assert_eq(lt__modmaps_add(&e->mm, &r), 0);
	for (size_t i = 0; i < sizeof py_codes / sizeof py_codes[0]; i++) {
		const struct pylt_case *c = py_case(py_codes[i].qualname);
		lt__record_t code = {.type = LT_REC_PYCODE};
		code.u.pycode.code_key = py_codes[i].key;
		code.u.pycode.format = LT_PYCODE_311;
		code.u.pycode.filename = (lt__str_t){"/tmp/x.py", 9};
		code.u.pycode.qualname = (lt__str_t){c->qualname, strlen(c->qualname)};
		code.u.pycode.firstlineno = c->firstlineno;
		code.u.pycode.linetable = (lt__str_t){(const char *)c->table, c->table_len};
		cr_assert_eq(lt__pycodes_add(&e->codes, &code), 0);
	}
}

static void py_env_free(struct py_env *e)
{
	lt__pycodes_free(&e->codes);
	lt__modmaps_free(&e->mm);
}

/* A Python frame of code `qualname` at the first instruction of `line`. */
static lt__pyframe_t py_at(const struct py_env *e, const char *qualname, unsigned line, int entry)
{
	uint64_t key = 0;
	for (size_t i = 0; i < sizeof py_codes / sizeof py_codes[0]; i++)
		if (strcmp(py_codes[i].qualname, qualname) == 0)
			key = py_codes[i].key;
	const struct pylt_case *c = py_case(qualname);
	size_t unit = 0;
	while (unit < c->units && c->lines[unit] != line)
		unit++;
	cr_assert_lt(unit, c->units, "%s has no line %u", qualname, line);
	lt__pyframe_t f = {.code = lt__pycodes_find(&e->codes, key), .code_key = key,
			   .where = (uint64_t)unit << 1 | (entry ? 1 : 0)};
	cr_assert_not_null(f.code);
	return f;
}

/* What a frame should be: a function name (NULL: none), and for a Python
 * frame its line (a native frame has line 0 here: no debug information). */
struct want {
	const char *function;
	unsigned line;
	bool python;
};

static void check_frames(const lt__frame_t **v, size_t n, const struct want *want,
			 size_t nwant)
{
	for (size_t i = 0; i < n && i < nwant; i++) {
		const char *got = v[i]->function ? v[i]->function : "(none)";
		const char *exp = want[i].function ? want[i].function : "(none)";
		cr_assert_str_eq(got, exp, "frame %zu", i);
		cr_assert_eq(v[i]->python, want[i].python, "frame %zu (%s)", i, got);
		if (want[i].python) {
			cr_assert_eq(v[i]->line, want[i].line, "frame %zu (%s)", i, got);
			cr_assert_str_eq(v[i]->file, "/tmp/x.py", "frame %zu", i);
			cr_assert_str_eq(v[i]->module, LT__PY_MODULE, "frame %zu", i);
		}
	}
	cr_assert_eq(n, nwant, "%zu frames, not %zu", n, nwant);
}

/* C extension <- interpreter <- two native calls of the interpreter loop,
 * innermost first, then the interpreter's start; the loop's first call
 * ran handle and loop (loop is where it was entered), the second comp,
 * and multi and <module> are left over, as when the native stack is cut
 * short. */
static const uint64_t *py_native(uint32_t *depth)
{
	static uint64_t native[6];
	native[0] = PY_EXT_FRAME;
	native[1] = LT_FX_RET(lt_fx_py_call);
	native[2] = LT_FX_RET(lt_fx_py_eval);
	native[3] = LT_FX_RET(lt_fx_py_call);
	native[4] = LT_FX_RET(lt_fx_py_eval);
	native[5] = LT_FX_RET(lt_fx_py_main);
	*depth = 6;
	return native;
}

static void py_frames(const struct py_env *e, lt__pyframe_t py[5])
{
	py[0] = py_at(e, "handle", 6, 0);
	py[1] = py_at(e, "loop", 26, 1);
	py[2] = py_at(e, "comp", 33, 1);
	py[3] = py_at(e, "multi", 15, 0);
	py[4] = py_at(e, "<module>", 144, 1);
}

Test(symbolize, python_frames_replace_the_interpreter_loop_by_entry)
{
	struct py_env e;
	py_env_init(&e);
	lt__sym_opts_t o = {.show_hidden = true};
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &e.mm, &o), 0);
	uint32_t depth;
	const uint64_t *native = py_native(&depth);
	lt__pyframe_t py[5];
	py_frames(&e, py);
	const lt__frame_t **v;
	size_t n;
	cr_assert_eq(lt__sym_stack(s, 0, native, depth, py, 5, &v, &n), 0);
	static const struct want want[] = {
		{NULL, 0, false},          {"lt_fx_py_call", 0, false}, {"handle", 6, true},
		{"loop", 26, true},        {"lt_fx_py_call", 0, false}, {"comp", 33, true},
		{"lt_fx_py_main", 0, false}, {"multi", 15, true},       {"<module>", 144, true},
	};
	check_frames(v, n, want, sizeof want / sizeof want[0]);
	cr_assert_str_eq(v[0]->module, PY_EXT_PATH);
	/* A Python frame says where in its code object it is. */
	cr_assert_eq(v[2]->address, py[0].code_key);
	cr_assert_eq(v[2]->offset, (py[0].where >> 1) * 2);
	free(v);
	lt__sym_free(s);
	py_env_free(&e);
}

Test(symbolize, python_stack_hides_the_interpreter_not_extensions)
{
	struct py_env e;
	py_env_init(&e);
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &e.mm, NULL), 0);
	uint32_t depth;
	const uint64_t *native = py_native(&depth);
	lt__pyframe_t py[5];
	py_frames(&e, py);
	const lt__frame_t **v;
	size_t n;
	cr_assert_eq(lt__sym_stack(s, 0, native, depth, py, 5, &v, &n), 0);
	static const struct want want[] = {
		{NULL, 0, false},   {"handle", 6, true},  {"loop", 26, true},
		{"comp", 33, true}, {"multi", 15, true}, {"<module>", 144, true},
	};
	check_frames(v, n, want, sizeof want / sizeof want[0]);
	cr_assert_str_eq(v[0]->module, PY_EXT_PATH);
	free(v);

	/* Without the extension, the stack starts at the Python line. */
	cr_assert_eq(lt__sym_stack(s, 0, native + 1, depth - 1, py, 5, &v, &n), 0);
	check_frames(v, n, want + 1, sizeof want / sizeof want[0] - 1);
	free(v);
	lt__sym_free(s);
	py_env_free(&e);
}

/* The same native frames without Python frames: a stack as before, the
 * interpreter's frames shown like any program's. */
Test(symbolize, stack_without_python_frames_keeps_the_interpreter)
{
	struct py_env e;
	py_env_init(&e);
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &e.mm, NULL), 0);
	uint32_t depth;
	const uint64_t *native = py_native(&depth);
	const lt__frame_t **v;
	size_t n;
	cr_assert_eq(lt__sym_stack(s, 0, native, depth, NULL, 0, &v, &n), 0);
	static const struct want want[] = {
		{NULL, 0, false},
		{"lt_fx_py_call", 0, false},
		{"_PyEval_EvalFrameDefault", 0, false},
		{"lt_fx_py_call", 0, false},
		{"_PyEval_EvalFrameDefault", 0, false},
		{"lt_fx_py_main", 0, false},
	};
	check_frames(v, n, want, sizeof want / sizeof want[0]);
	free(v);
	lt__sym_free(s);
	py_env_free(&e);
}

/* More native calls of the interpreter loop than Python frames (the shim
 * keeps at most LT_MAX_PYDEPTH): the outer calls stay native frames,
 * hidden with the interpreter's. */
Test(symbolize, interpreter_loop_frames_past_the_python_frames_stay)
{
	struct py_env e;
	py_env_init(&e);
	uint32_t depth;
	const uint64_t *native = py_native(&depth);
	lt__pyframe_t py = py_at(&e, "handle", 5, 1);
	const lt__frame_t **v;
	size_t n;
	lt__sym_t *s;
	lt__sym_opts_t o = {.show_hidden = true};
	cr_assert_eq(lt__sym_new(&s, &e.mm, &o), 0);
	cr_assert_eq(lt__sym_stack(s, 0, native + 1, depth - 1, &py, 1, &v, &n), 0);
	static const struct want shown[] = {
		{"lt_fx_py_call", 0, false},
		{"handle", 5, true},
		{"lt_fx_py_call", 0, false},
		{"_PyEval_EvalFrameDefault", 0, false},
		{"lt_fx_py_main", 0, false},
	};
	check_frames(v, n, shown, sizeof shown / sizeof shown[0]);
	free(v);
	lt__sym_free(s);

	cr_assert_eq(lt__sym_new(&s, &e.mm, NULL), 0);
	cr_assert_eq(lt__sym_stack(s, 0, native + 1, depth - 1, &py, 1, &v, &n), 0);
	check_frames(v, n, shown + 1, 1);
	free(v);
	lt__sym_free(s);
	py_env_free(&e);
}

/* A Python function is never taken for the allocator ("free" is a fine
 * name for a method), but --skip-function hides Python wrappers too. A
 * code key no PYCODE record named is shown as such. */
Test(symbolize, python_frames_and_hiding_rules)
{
	struct py_env e;
	py_env_init(&e);
	lt__record_t code = {.type = LT_REC_PYCODE};
	code.u.pycode.code_key = 0x7f0000f00;
	code.u.pycode.format = LT_PYCODE_311;
	code.u.pycode.filename = (lt__str_t){"/tmp/x.py", 9};
	code.u.pycode.qualname = (lt__str_t){"free", 4};
	code.u.pycode.firstlineno = 3;
	code.u.pycode.linetable = (lt__str_t){"\x80\x00", 2};
	cr_assert_eq(lt__pycodes_add(&e.codes, &code), 0);
	uint64_t native[] = {LT_FX_RET(lt_fx_py_call), LT_FX_RET(lt_fx_py_eval)};
	lt__pyframe_t py[] = {
		{.code = lt__pycodes_find(&e.codes, 0x7f0000f00), .code_key = 0x7f0000f00},
		py_at(&e, "handle", 6, 0),
		{.code = NULL, .code_key = 0x7f0000999, .where = 1},
	};
	const lt__frame_t **v;
	size_t n;
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &e.mm, NULL), 0);
	cr_assert_eq(lt__sym_stack(s, 0, native, 2, py, 3, &v, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(v[0]->function, "free");
	cr_assert_eq(v[0]->line, 3);
	cr_assert_str_eq(v[2]->function, "<unknown Python code>");
	cr_assert_null(v[2]->file);
	cr_assert_eq(v[2]->line, 0);
	cr_assert(v[2]->python);
	free(v);
	lt__sym_free(s);

	const char *skip[] = {"fr*"};
	lt__sym_opts_t o = {.skip_functions = skip, .nskip = 1};
	cr_assert_eq(lt__sym_new(&s, &e.mm, &o), 0);
	cr_assert_eq(lt__sym_stack(s, 0, native, 2, py, 3, &v, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(v[0]->function, "handle");
	free(v);
	lt__sym_free(s);
	py_env_free(&e);
}

/* An interpreter whose loop cannot be named (its file is not there): the
 * Python frames all go after the native ones, and the interpreter is
 * known by its file name. */
Test(symbolize, interpreter_without_symbols_is_known_by_name)
{
	struct py_env e;
	py_env_init(&e);
	uint64_t native[] = {PY_EXT_FRAME, PY_STRIPPED_FRAME, PY_STRIPPED_FRAME + 0x10};
	lt__pyframe_t py[] = {py_at(&e, "handle", 6, 1), py_at(&e, "<module>", 144, 1)};
	const lt__frame_t **v;
	size_t n;
	lt__sym_t *s;
	cr_assert_eq(lt__sym_new(&s, &e.mm, NULL), 0);
	cr_assert_eq(lt__sym_stack(s, 0, native, 3, py, 2, &v, &n), 0);
	static const struct want want[] = {
		{NULL, 0, false}, {"handle", 6, true}, {"<module>", 144, true}};
	check_frames(v, n, want, 3);
	cr_assert_str_eq(v[0]->module, PY_EXT_PATH);
	free(v);
	lt__sym_free(s);

	lt__sym_opts_t o = {.show_hidden = true};
	cr_assert_eq(lt__sym_new(&s, &e.mm, &o), 0);
	cr_assert_eq(lt__sym_stack(s, 0, native, 3, py, 2, &v, &n), 0);
	cr_assert_eq(n, 5);
	cr_assert_str_eq(v[1]->module, PY_STRIPPED_PATH);
	cr_assert_str_eq(v[2]->module, PY_STRIPPED_PATH);
	cr_assert_str_eq(v[3]->function, "handle");
	free(v);
	lt__sym_free(s);
	py_env_free(&e);
}
