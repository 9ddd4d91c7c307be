/* SPDX-License-Identifier: MIT */
/* Offline symbolization with elfutils libdwfl: one Dwfl per module map
 * (built on first use), each module's file found by path (under
 * --sysroot) or by build-id (under --debug-dir and /usr/lib/debug) and
 * reported at its recorded load bias; results cached per address. */
#define _GNU_SOURCE
#include "symbolize.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

/* libstdc++'s demangler; the analyzer links libstdc++ for it. */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

#define LT__MAX_INLINE 32 /* inlined frames expanded per address */

struct lt__cache_key {
	long map;
	uint64_t addr;
	int is_return;
	int name_only; /* the ELF symbol's name only (sym_addr_name) */
};

struct lt__cache_entry {
	struct lt__cache_key key;
	lt__frame_t *frames;
	size_t n;
	UT_hash_handle hh;
};

/* A Python frame as shown: one per code object and instruction. */
struct lt__py_key {
	uint64_t code_key;
	uint64_t instruction;
	int known; /* a PYCODE record named the code */
};

struct lt__py_entry {
	struct lt__py_key key;
	lt__frame_t frame;
	UT_hash_handle hh;
};

struct lt__intern {
	UT_hash_handle hh;
	char s[]; /* the key */
};

struct lt__dwmap {
	Dwfl *dwfl;
	bool tried;
};

struct lt__sym_s {
	const lt__modmaps_t *mm;
	lt__sym_opts_t opts;
	char *debuginfo_path;
	Dwfl_Callbacks callbacks;
	struct lt__dwmap *maps;
	size_t nmaps;
	struct lt__cache_entry *cache;
	struct lt__py_entry *py_cache;
	struct lt__intern *strings;
};

/* Returns a copy of str owned by s (one copy per distinct string), or NULL
 * on out-of-memory. */
static const char *intern(lt__sym_t *s, const char *str)
{
	struct lt__intern *e;
	size_t len = strlen(str);
	HASH_FIND(hh, s->strings, str, len, e);
	if (e)
		return e->s;
	e = malloc(sizeof *e + len + 1);
	if (!e)
		return NULL;
	memcpy(e->s, str, len + 1);
	HASH_ADD_KEYPTR(hh, s->strings, e->s, len, e);
	return e->s;
}

static const char *intern_demangled(lt__sym_t *s, const char *name)
{
	if (!name)
		return NULL;
	if (name[0] == '_' && name[1] == 'Z') {
		int status = 0;
		char *d = __cxa_demangle(name, NULL, NULL, &status);
		if (d && status == 0) {
			const char *r = intern(s, d);
			free(d);
			return r;
		}
		free(d);
	}
	return intern(s, name);
}

/* ---- finding module files -------------------------------------------- */

/* Whether the file at path is the ELF file with the given GNU build-id
 * (any ELF file when no build-id was recorded): LT__FILE_MATCHES, else
 * LT__FILE_DIFFERS for an ELF file with another build-id (the program was
 * rebuilt since it was traced), else LT__FILE_NONE. */
enum lt__file_match { LT__FILE_NONE, LT__FILE_DIFFERS, LT__FILE_MATCHES };

static enum lt__file_match file_matches(const char *path, const uint8_t *bid, size_t bid_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return LT__FILE_NONE;
	enum lt__file_match m = LT__FILE_NONE;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_kind(elf) == ELF_K_ELF) {
		if (!bid_len) {
			m = LT__FILE_MATCHES;
		} else {
			const void *fbid;
			ssize_t n = dwelf_elf_gnu_build_id(elf, &fbid);
			bool same =
			    n > 0 && (size_t)n == bid_len && memcmp(fbid, bid, bid_len) == 0;
			m = same ? LT__FILE_MATCHES : LT__FILE_DIFFERS;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return m;
}

/* dir/.build-id/xx/rest.debug for a build-id. */
static char *build_id_path(const char *dir, const uint8_t *bid, size_t len)
{
	if (!dir || len < 2)
		return NULL;
	char hex[2 * 64 + 1];
	if (len > 64)
		return NULL;
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", bid[i]);
	char *p;
	if (asprintf(&p, "%s/.build-id/%.2s/%s.debug", dir, hex, hex + 2) < 0)
		return NULL;
	return p;
}

/* path when it is the ELF file with build-id bid (file_matches), else
 * NULL; path is freed either way. When it is an ELF file with another
 * build-id and *differs is NULL, *differs gets a copy of path (for the
 * warning of dwfl_for). */
static char *take_if_matches(char *path, const uint8_t *bid, size_t bid_len, char **differs)
{
	enum lt__file_match m = path ? file_matches(path, bid, bid_len) : LT__FILE_NONE;
	if (m == LT__FILE_MATCHES)
		return path;
	if (m == LT__FILE_DIFFERS && differs && !*differs)
		*differs = strdup(path);
	free(path);
	return NULL;
}

/* The file to read for module m, or NULL when none matches its build-id.
 *
 * An absolute path is looked for under --sysroot. A relative one ("./libplug.so"
 * from dlopen("./libplug.so"): older shims recorded dlopen's argument as
 * given) is relative to the program's working directory, which the trace
 * does not record; it is looked for under --sysroot and then in the
 * analyzer's current directory, and taken only when the module has a
 * build-id and the file has the same, as the guess may well be wrong.
 * Last come the build-id directories (--debug-dir, /usr/lib/debug).
 * When no file is found but the one at the module's absolute path has
 * another build-id, *differs gets a malloc'ed copy of its path (else
 * stays NULL). */
static char *find_module_file(const lt__sym_t *s, const lt__module_t *m, char **differs)
{
	const uint8_t *bid = m->build_id;
	size_t bid_len = m->build_id_len;
	const char *root = s->opts.sysroot ? s->opts.sysroot : "";
	char *p, *found = NULL;
	if (m->path[0] == '/') {
		if (asprintf(&p, "%s%s", root, m->path) >= 0)
			found = take_if_matches(p, bid, bid_len, differs);
	} else if (m->path[0] && bid_len) {
		/* A guess: another build-id there may be another file. */
		if (s->opts.sysroot && asprintf(&p, "%s/%s", root, m->path) >= 0)
			found = take_if_matches(p, bid, bid_len, NULL);
		char *cwd = found ? NULL : getcwd(NULL, 0);
		if (cwd && asprintf(&p, "%s/%s", cwd, m->path) >= 0)
			found = take_if_matches(p, bid, bid_len, NULL);
		free(cwd);
	}
	const char *dirs[] = {s->opts.debug_dir, "/usr/lib/debug"};
	for (size_t i = 0; !found && i < 2; i++)
		found = take_if_matches(build_id_path(dirs[i], bid, bid_len), bid, bid_len, NULL);
	if (found) {
		free(*differs);
		*differs = NULL;
	}
	return found;
}

/* Module files already warned about, in this process: one warning per
 * file per run, however many module maps (dlopen) or traces (diff of two
 * traces) name it. Kept to the end of the process, like a run's output. */
struct lt__warned {
	UT_hash_handle hh;
	char path[]; /* the key */
};
static struct lt__warned *warned_files;

/* Says once per file that the module file at path is not the traced one:
 * without the warning a rebuilt program (the usual edit, build, trace
 * loop gone stale) just shows raw addresses, and nothing says why. */
static void warn_differs(const char *path)
{
	struct lt__warned *w;
	size_t len = strlen(path);
	HASH_FIND(hh, warned_files, path, len, w);
	if (w)
		return;
	w = malloc(sizeof *w + len + 1);
	if (w) {
		memcpy(w->path, path, len + 1);
		HASH_ADD_KEYPTR(hh, warned_files, w->path, len, w);
	}
	fprintf(stderr,
		"leaktrace-report: warning: %s: its build-id differs from the traced one "
		"(rebuilt since?); its frames are shown as module+offset (--sysroot/--debug-dir "
		"can give the right file)\n",
		path);
}

static Dwfl *dwfl_for(lt__sym_t *s, long map)
{
	if (map < 0 || (size_t)map >= s->mm->count)
		return NULL;
	if ((size_t)map >= s->nmaps) {
		size_t n = s->mm->count;
		struct lt__dwmap *v = realloc(s->maps, n * sizeof *v);
		if (!v)
			return NULL;
		memset(v + s->nmaps, 0, (n - s->nmaps) * sizeof *v);
		s->maps = v;
		s->nmaps = n;
	}
	struct lt__dwmap *dm = &s->maps[map];
	if (dm->tried)
		return dm->dwfl;
	dm->tried = true;
	Dwfl *dwfl = dwfl_begin(&s->callbacks);
	if (!dwfl)
		return NULL;
	dwfl_report_begin(dwfl);
	const lt__modmap_t *mm = &s->mm->maps[map];
	for (size_t i = 0; i < mm->count; i++) {
		const lt__module_t *m = &mm->modules[i];
		char *differs = NULL;
		char *file = find_module_file(s, m, &differs);
		if (differs)
			warn_differs(differs);
		free(differs);
		if (!file)
			continue;
		/* add_p_vaddr = false: base is the load bias itself. */
		dwfl_report_elf(dwfl, m->path, file, -1, m->load_bias, false);
		free(file);
	}
	dwfl_report_end(dwfl, NULL, NULL);
	dm->dwfl = dwfl;
	return dwfl;
}

/* ---- DWARF ------------------------------------------------------------- */

static const char *die_name(lt__sym_t *s, Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name = NULL;
	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
		name = dwarf_formstring(&attr);
	if (!name && dwarf_attr_integrate(die, DW_AT_name, &attr))
		name = dwarf_formstring(&attr);
	return intern_demangled(s, name);
}

/* The file and line where the inlined subroutine inl was called (its
 * DW_AT_call_file and DW_AT_call_line, in the file table of its own unit);
 * NULL and 0 where unknown. */
static const char *call_site(lt__sym_t *s, Dwarf_Die *inl, unsigned *line)
{
	Dwarf_Attribute attr;
	Dwarf_Word v;
	*line = 0;
	if (dwarf_attr(inl, DW_AT_call_line, &attr) && dwarf_formudata(&attr, &v) == 0)
		*line = (unsigned)v;
	Dwarf_Die cudie;
	Dwarf_Files *files;
	size_t nfiles;
	if (!dwarf_attr(inl, DW_AT_call_file, &attr) || dwarf_formudata(&attr, &v) != 0 ||
	    !dwarf_diecu(inl, &cudie, NULL, NULL) ||
	    dwarf_getsrcfiles(&cudie, &files, &nfiles) != 0 || v >= nfiles)
		return NULL;
	const char *f = dwarf_filesrc(files, v, NULL, NULL);
	return f ? intern(s, f) : NULL;
}

/* The concrete scopes containing pc (a CU-relative address), innermost
 * first and up to the unit: a malloc'ed array in *chain, its length
 * returned (0 when pc is in no scope).
 *
 * dwarf_getscopes alone is not enough: once it reaches the innermost
 * DW_TAG_inlined_subroutine it continues with the scopes of that inline's
 * abstract definition (where the function was written), not with the
 * function it was inlined into. The innermost scope it returns is always
 * concrete, though, so the path from the unit down to that DIE
 * (dwarf_getscopes_die) is the real chain: each inlined_subroutine's
 * parent scopes lead to its caller, up to the DW_TAG_subprogram that was
 * compiled out of line. */
static int concrete_scopes(Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die **chain)
{
	Dwarf_Die *scopes = NULL;
	*chain = NULL;
	int n = dwarf_getscopes(cudie, pc, &scopes);
	if (n <= 0) {
		free(scopes);
		return 0;
	}
	int m = dwarf_getscopes_die(&scopes[0], chain);
	if (m > 0) {
		free(scopes);
		return m;
	}
	/* No path found (should not happen): keep what dwarf_getscopes gave
	 * up to its first inline, which is right as far as it goes. */
	free(*chain);
	*chain = scopes;
	for (int i = 0; i < n; i++)
		if (dwarf_tag(&scopes[i]) == DW_TAG_inlined_subroutine)
			return i + 1;
	return n;
}

/* False when the unit that libdwfl picked for pc (a CU-relative address)
 * says which addresses it covers and pc is not one of them. libdwfl picks
 * the unit whose address range starts last at or before pc, so code
 * without debug information right after a unit (_start after main) would
 * otherwise take that unit's last line row ("_start (unique_ptr.h:395)"
 * where addr2line says ??). A unit that gives no range is trusted. */
static bool unit_has_pc(Dwarf_Die *cudie, Dwarf_Addr pc)
{
	if (!dwarf_hasattr(cudie, DW_AT_ranges) && !dwarf_hasattr(cudie, DW_AT_low_pc))
		return true;
	return dwarf_haspc(cudie, pc) != 0;
}

/* Fills frames[] for pc in mod, innermost first; returns how many (at
 * least 1, at most LT__MAX_INLINE).
 *
 * For pc inside inlined calls the frames are, as addr2line -i shows them:
 * the innermost inlined function with pc's own file and line; then each
 * caller with the place it made the call, which is the DW_AT_call_file
 * and DW_AT_call_line of the inlined_subroutine one level in; last the
 * out-of-line function, with the call site of the outermost inline. */
static size_t symbolize_in(lt__sym_t *s, Dwfl_Module *mod, uint64_t pc,
			   lt__frame_t *frames)
{
	const char *file = NULL;
	unsigned line = 0;
	Dwarf_Addr bias;
	Dwarf_Die *cudie = dwfl_module_addrdie(mod, pc, &bias);
	if (cudie && !unit_has_pc(cudie, pc - bias))
		cudie = NULL;
	Dwfl_Line *l = cudie ? dwfl_module_getsrc(mod, pc) : NULL;
	if (l) {
		int ln = 0;
		const char *f = dwfl_lineinfo(l, NULL, &ln, NULL, NULL, NULL);
		if (f) {
			file = intern(s, f);
			line = ln > 0 ? (unsigned)ln : 0;
		}
	}
	size_t n = 0;
	Dwarf_Die *scopes = NULL;
	int nscopes = cudie ? concrete_scopes(cudie, pc - bias, &scopes) : 0;
	for (int i = 0; i < nscopes && n < LT__MAX_INLINE; i++) {
		int tag = dwarf_tag(&scopes[i]);
		if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine)
			continue; /* lexical blocks and the like */
		lt__frame_t *f = &frames[n++];
		f->function = die_name(s, &scopes[i]);
		f->file = file;
		f->line = line;
		f->inlined = tag == DW_TAG_inlined_subroutine;
		if (tag == DW_TAG_subprogram)
			break;
		/* The next frame out is shown where it called this one. */
		file = call_site(s, &scopes[i], &line);
	}
	free(scopes);
	if (n == 0 || !frames[n - 1].function) {
		/* No DWARF scope: the ELF symbol table names the function. */
		const char *sym = dwfl_module_addrname(mod, pc);
		if (n == 0) {
			frames[0].file = file;
			frames[0].line = line;
			frames[0].inlined = false;
			n = 1;
		}
		frames[n - 1].function = intern_demangled(s, sym);
	}
	return n;
}

/* lt__sym_addr, or with name_only the one frame the ELF symbol table
 * names, without DWARF: no file, line or inlined callees. */
static int sym_addr(lt__sym_t *s, long modmap, uint64_t addr, bool is_return, bool name_only,
		    const lt__frame_t **frames, size_t *n)
{
	struct lt__cache_key key;
	memset(&key, 0, sizeof key);
	key.map = modmap;
	key.addr = addr;
	key.is_return = is_return;
	key.name_only = name_only;
	struct lt__cache_entry *e;
	HASH_FIND(hh, s->cache, &key, sizeof key, e);
	if (e) {
		*frames = e->frames;
		*n = e->n;
		return 0;
	}
	lt__frame_t tmp[LT__MAX_INLINE];
	memset(tmp, 0, sizeof tmp);
	uint64_t pc = is_return && addr ? addr - 1 : addr;
	/* The map in force when the stack was written; a frame outside it is
	 * looked up in earlier maps, newest first (a library opened and
	 * closed between two of the writer's passes has its map written
	 * before the next one), then in later ones (format.h, STACK). */
	long use = modmap;
	const lt__module_t *m = lt__modmap_find(s->mm, use, pc);
	for (long g = modmap - 1; !m && g >= 0; g--)
		if ((m = lt__modmap_find(s->mm, g, pc)))
			use = g;
	for (long g = modmap + 1; !m && g <= lt__modmaps_current(s->mm); g++)
		if ((m = lt__modmap_find(s->mm, g, pc)))
			use = g;
	size_t count = 1;
	Dwfl *dwfl = m ? dwfl_for(s, use) : NULL;
	Dwfl_Module *mod = dwfl ? dwfl_addrmodule(dwfl, pc) : NULL;
	if (mod && !name_only)
		count = symbolize_in(s, mod, pc, tmp);
	else if (mod)
		tmp[0].function = intern_demangled(s, dwfl_module_addrname(mod, pc));
	const char *module = intern(s, m ? m->path : "");
	for (size_t i = 0; i < count; i++) {
		tmp[i].module = module;
		tmp[i].address = addr;
		tmp[i].offset = m ? addr - m->load_bias : addr;
	}
	e = calloc(1, sizeof *e);
	lt__frame_t *copy = malloc(count * sizeof *copy);
	if (!e || !copy || !module) {
		free(e);
		free(copy);
		return -ENOMEM;
	}
	memcpy(copy, tmp, count * sizeof *copy);
	e->key = key;
	e->frames = copy;
	e->n = count;
	HASH_ADD(hh, s->cache, key, sizeof key, e);
	*frames = copy;
	*n = count;
	return 0;
}

int lt__sym_addr(lt__sym_t *s, long modmap, uint64_t addr, bool is_return,
		 const lt__frame_t **frames, size_t *n)
{
	return sym_addr(s, modmap, addr, is_return, false, frames, n);
}

/* ---- hiding ------------------------------------------------------------ */

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

static bool is_allocator(const char *fn)
{
	static const char *const names[] = {
		"malloc", "calloc", "realloc", "free", "reallocarray",
		"posix_memalign", "aligned_alloc", "memalign", "valloc",
		"pvalloc", "__libc_malloc", "__libc_calloc", "__libc_realloc",
		"__libc_memalign", "__libc_valloc", "__libc_pvalloc",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(fn, names[i]) == 0)
			return true;
	/* C++ operator new / new[] in all their overloads. */
	return strncmp(fn, "operator new", 12) == 0 || strncmp(fn, "_Znw", 4) == 0 ||
	       strncmp(fn, "_Zna", 4) == 0;
}

/* True for a frame inside the shim (libleaktrace.so, whatever its
 * version suffix). */
static bool in_shim(const lt__frame_t *f)
{
	return strncmp(base_name(f->module), "libleaktrace", 12) == 0;
}

/* True for a frame hidden at the top of a stack: the shim, the allocator
 * or a --skip-function wrapper (which may be Python code too). */
static bool hidden(const lt__sym_t *s, const lt__frame_t *f)
{
	if (in_shim(f))
		return true;
	if (!f->function)
		return false;
	if (!f->python && is_allocator(f->function))
		return true;
	for (size_t i = 0; i < s->opts.nskip; i++)
		if (fnmatch(s->opts.skip_functions[i], f->function, 0) == 0)
			return true;
	return false;
}

/* ---- Python frames ------------------------------------------------------ */

/* True for a native frame of CPython's interpreter loop. GCC may split
 * it ("_PyEval_EvalFrameDefault.cold"): the part is the same frame. */
static bool is_eval_loop(const lt__frame_t *f)
{
	size_t n = strlen(LT__PY_EVAL);
	return !f->python && f->function && strncmp(f->function, LT__PY_EVAL, n) == 0 &&
	       (f->function[n] == '\0' || f->function[n] == '.');
}

/* The frame shown for one Python frame, cached per code object and
 * instruction; NULL when memory is short. */
static const lt__frame_t *py_frame(lt__sym_t *s, const lt__pyframe_t *pf)
{
	struct lt__py_key key;
	memset(&key, 0, sizeof key);
	key.code_key = pf->code_key;
	key.instruction = lt__pyframe_instruction(pf);
	key.known = pf->code != NULL;
	struct lt__py_entry *e;
	HASH_FIND(hh, s->py_cache, &key, sizeof key, e);
	if (e)
		return &e->frame;
	e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->key = key;
	const lt__pycode_t *c = pf->code;
	lt__frame_t *f = &e->frame;
	f->function = intern(s, c && c->qualname[0] ? c->qualname : "<unknown Python code>");
	f->file = c && c->filename[0] ? intern(s, c->filename) : NULL;
	/* Instructions without a location are the function's prologue
	 * (cells for its closures, copies of free variables): they belong
	 * to the def line. */
	f->line = c ? lt__pycode_line(c, key.instruction) : 0;
	if (c && !f->line)
		f->line = (unsigned)c->firstlineno;
	f->module = intern(s, LT__PY_MODULE);
	f->address = pf->code_key;
	f->offset = 2 * key.instruction; /* where >> 1 < 2^63: no overflow */
	f->python = true;
	if (!f->function || !f->module || (c && c->filename[0] && !f->file)) {
		free(e);
		return NULL;
	}
	HASH_ADD(hh, s->py_cache, key, sizeof key, e);
	return f;
}

/* The module of the interpreter when no frame of its loop could be named
 * (a stripped python3.11 or libpython3.11.so that was not found): its
 * file name tells. */
static bool interpreter_by_name(const lt__frame_t *f)
{
	const char *b = base_name(f->module);
	return strncmp(b, "python", 6) == 0 || strncmp(b, "libpython", 9) == 0;
}

/* True for a native frame of the interpreter itself, interp being the
 * module of its loop's frames (NULL when none was named). */
static bool in_interpreter(const lt__frame_t *f, const char *interp)
{
	if (f->python)
		return false;
	return interp ? strcmp(f->module, interp) == 0 : interpreter_by_name(f);
}

/* ---- stacks ------------------------------------------------------------ */

struct frame_list {
	const lt__frame_t **v;
	size_t n, cap;
};

static int push(struct frame_list *l, const lt__frame_t *f)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		const lt__frame_t **v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = f;
	return 0;
}

/* Appends the Python frames py[*next..] that one native call of the
 * interpreter loop ran: up to and including the first with the entry bit,
 * or all that are left when none has it. Returns 0 or -ENOMEM. */
static int push_python_run(lt__sym_t *s, struct frame_list *l, const lt__pyframe_t *py,
			   uint32_t npy, uint32_t *next)
{
	while (*next < npy) {
		const lt__pyframe_t *pf = &py[(*next)++];
		const lt__frame_t *f = py_frame(s, pf);
		if (!f || push(l, f))
			return -ENOMEM;
		if (lt__pyframe_entry(pf))
			break;
	}
	return 0;
}

/* Symbolizes the native frames with the Python frames spliced in (see
 * lt__sym_stack). *interp is set to the module of the interpreter loop's
 * frames, NULL when there were none. Returns 0 or -ENOMEM. */
static int splice_python(lt__sym_t *s, long modmap, const uint64_t *addrs, uint32_t depth,
		  const lt__pyframe_t *py, uint32_t npy, struct frame_list *l,
		  const char **interp)
{
	uint32_t next_py = 0;
	*interp = NULL;
	/* The interpreter's frames are hidden in a stack with Python frames,
	 * so they need no DWARF lookup, the costly part (tens of seconds for
	 * a Python built with debug information): the symbol table names the
	 * loop's frames, and tells which module the interpreter is. */
	const char *loop_module = NULL;
	for (uint32_t i = 0; npy && !s->opts.show_hidden && !loop_module && i < depth; i++) {
		const lt__frame_t *fr;
		size_t k;
		int rc = sym_addr(s, modmap, addrs[i], true, true, &fr, &k);
		if (rc)
			return rc;
		if (is_eval_loop(&fr[0]))
			loop_module = fr[0].module;
	}
	for (uint32_t i = 0; i < depth; i++) {
		const lt__frame_t *fr;
		size_t k;
		/* Every recorded frame, the first included, is a return address
		 * (format.h, STACK): the shim drops its own frames, so the
		 * first is where the program called the allocator. */
		int rc = sym_addr(s, modmap, addrs[i], true, loop_module != NULL, &fr, &k);
		if (rc == 0 && loop_module && strcmp(fr[0].module, loop_module) != 0)
			rc = sym_addr(s, modmap, addrs[i], true, false, &fr, &k);
		if (rc)
			return rc;
		for (size_t j = 0; j < k; j++) {
			if (npy && is_eval_loop(&fr[j])) {
				*interp = fr[j].module;
				/* Once the Python frames are used up (the shim
				 * keeps LT_MAX_PYDEPTH), the native frame stays. */
				if (next_py < npy) {
					if (push_python_run(s, l, py, npy, &next_py))
						return -ENOMEM;
					continue;
				}
			}
			if (push(l, &fr[j]))
				return -ENOMEM;
		}
	}
	/* The native stack was cut short: the outer Python frames remain. */
	while (next_py < npy) {
		const lt__frame_t *f = py_frame(s, &py[next_py++]);
		if (!f || push(l, f))
			return -ENOMEM;
	}
	return 0;
}

/* True for the C library's code that calls main, at the outer end of
 * every stack of the main thread. */
static bool below_main(const lt__frame_t *f)
{
	static const char *const names[] = {"__libc_start_call_main", "__libc_start_main_impl",
					    "__libc_start_main", "_start"};
	if (f->python || !f->function)
		return false;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(f->function, names[i]) == 0)
			return true;
	return false;
}

/* True for a frame dropped wherever it is in a stack (unless
 * show_hidden): the shim's, and the interpreter's when the stack has
 * Python frames. */
static bool dropped(const lt__frame_t *f, uint32_t npy, const char *interp)
{
	return in_shim(f) || (npy && in_interpreter(f, interp));
}

int lt__sym_stack(lt__sym_t *s, long modmap, const uint64_t *addrs, uint32_t depth,
		  const lt__pyframe_t *py, uint32_t npy, const lt__frame_t ***out, size_t *n)
{
	struct frame_list l = {.cap = (size_t)depth * 2 + npy + 1};
	l.v = malloc(l.cap * sizeof *l.v);
	if (!l.v)
		return -ENOMEM;
	const char *interp;
	int rc = splice_python(s, modmap, addrs, depth, py, npy, &l, &interp);
	if (rc) {
		free(l.v);
		return rc;
	}
	const lt__frame_t **v = l.v;
	size_t count = l.n, kept = count;
	if (!s->opts.show_hidden) {
		/* The allocator and the wrappers are hidden where the stack
		 * starts (their callers are the call site); the shim wherever it
		 * is: its interposed functions that call back into the C library
		 * (dlopen, for one) sit in the middle of stacks. So is the
		 * interpreter in a stack with Python frames: around and between
		 * them, its frames are the machinery that ran them. */
		size_t skip = 0, visible = 0;
		while (skip < count && (hidden(s, v[skip]) || dropped(v[skip], npy, interp)))
			skip++;
		for (size_t i = skip; i < count; i++)
			visible += !dropped(v[i], npy, interp);
		if (visible) { /* else show it all rather than nothing */
			kept = 0;
			for (size_t i = skip; i < count; i++)
				if (!dropped(v[i], npy, interp))
					v[kept++] = v[i];
			/* The C library's start-up code below main (valgrind
			 * hides it too): every stack of the program ends so. */
			while (kept > 1 && below_main(v[kept - 1]))
				kept--;
		}
	}
	*out = v;
	*n = kept;
	return 0;
}

const char *lt__frame_label(const lt__frame_t *f, char *buf, size_t len)
{
	if (f->function)
		return f->function;
	if (f->module && f->module[0])
		snprintf(buf, len, "%s+0x%" PRIx64, base_name(f->module), f->offset);
	else
		snprintf(buf, len, "0x%" PRIx64, f->address);
	return buf;
}

/* ---- life cycle -------------------------------------------------------- */

int lt__sym_new(lt__sym_t **out, const lt__modmaps_t *mm, const lt__sym_opts_t *opts)
{
	lt__sym_t *s = calloc(1, sizeof *s);
	*out = s;
	if (!s)
		return -ENOMEM;
	s->mm = mm;
	elf_version(EV_CURRENT);
	if (opts)
		s->opts = *opts;
	/* "-" skips CRC checks; absolute entries are also searched by
	 * build-id (dir/.build-id/xx/...). */
	int rc;
	if (s->opts.debug_dir && s->opts.sysroot)
		rc = asprintf(&s->debuginfo_path, "-.debug:%s:%s/usr/lib/debug:/usr/lib/debug",
			      s->opts.debug_dir, s->opts.sysroot);
	else if (s->opts.debug_dir)
		rc = asprintf(&s->debuginfo_path, "-.debug:%s:/usr/lib/debug", s->opts.debug_dir);
	else if (s->opts.sysroot)
		rc = asprintf(&s->debuginfo_path, "-.debug:%s/usr/lib/debug:/usr/lib/debug",
			      s->opts.sysroot);
	else
		rc = asprintf(&s->debuginfo_path, "-.debug:/usr/lib/debug");
	if (rc < 0) {
		s->debuginfo_path = NULL;
		return -ENOMEM;
	}
	s->callbacks.find_elf = dwfl_build_id_find_elf;
	s->callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
	s->callbacks.debuginfo_path = &s->debuginfo_path;
	return 0;
}

void lt__sym_free(lt__sym_t *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nmaps; i++)
		if (s->maps[i].dwfl)
			dwfl_end(s->maps[i].dwfl);
	free(s->maps);
	struct lt__cache_entry *e, *etmp;
	HASH_ITER(hh, s->cache, e, etmp)
	{
		HASH_DEL(s->cache, e);
		free(e->frames);
		free(e);
	}
	struct lt__py_entry *p, *ptmp;
	HASH_ITER(hh, s->py_cache, p, ptmp)
	{
		HASH_DEL(s->py_cache, p);
		free(p);
	}
	struct lt__intern *i, *itmp;
	HASH_ITER(hh, s->strings, i, itmp)
	{
		HASH_DEL(s->strings, i);
		free(i);
	}
	free(s->debuginfo_path);
	free(s);
}
