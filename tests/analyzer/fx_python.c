/* SPDX-License-Identifier: MIT */
/* Fake CPython interpreter functions for the Python frame tests: real code
 * in the test program that the analyzer symbolizes from its symbol table,
 * under the names CPython's own have. Written in assembly so that no debug
 * information names them otherwise (and no C identifier has to begin with
 * an underscore and a capital). */
#define _GNU_SOURCE
#include "fx_python.h"

#include <elf.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

#define LT_FX_FUNCTION(name)                                                                       \
	".pushsection .text." name ",\"ax\",@progbits\n"                                           \
	".globl " name "\n"                                                                        \
	".type " name ", @function\n" name ":\n"                                                   \
	"\tnop\n"                                                                                  \
	"\tnop\n"                                                                                  \
	"\tret\n"                                                                                  \
	".size " name ", .-" name "\n"                                                             \
	".popsection\n"

__asm__(LT_FX_FUNCTION("_PyEval_EvalFrameDefault"));
__asm__(LT_FX_FUNCTION("lt_fx_py_call"));
__asm__(LT_FX_FUNCTION("lt_fx_py_main"));
/* Not CPython's: a C++ template member, by its mangled name, for the
 * tests of how C++ names are shortened. */
__asm__(LT_FX_FUNCTION("_ZNSt6vectorIiSaIiEE9push_backERKi"));

static void note_build_id(struct lt_fx_module *m, const uint8_t *p, const uint8_t *end)
{
	while (p + sizeof(ElfW(Nhdr)) <= end) {
		const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
		const uint8_t *name = p + sizeof *n;
		const uint8_t *desc = name + ((n->n_namesz + 3) & ~3u);
		if (n->n_type == NT_GNU_BUILD_ID && n->n_descsz <= sizeof m->build_id) {
			memcpy(m->build_id, desc, n->n_descsz);
			m->build_id_len = n->n_descsz;
		}
		p = desc + ((n->n_descsz + 3) & ~3u);
	}
}

static int find_self(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size;
	struct lt_fx_module *m = ctx;
	if (info->dlpi_name[0] != '\0')
		return 0; /* the main program comes first with an empty name */
	m->bias = info->dlpi_addr;
	m->lo = UINT64_MAX;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD) {
			if (lo < m->lo)
				m->lo = lo;
			if (lo + ph->p_memsz > m->hi)
				m->hi = lo + ph->p_memsz;
		} else if (ph->p_type == PT_NOTE) {
			const uint8_t *p = (const uint8_t *)(uintptr_t)lo;
			note_build_id(m, p, p + ph->p_memsz);
		}
	}
	return 1;
}

int lt_fx_self_module(struct lt_fx_module *m)
{
	memset(m, 0, sizeof *m);
	if (!realpath("/proc/self/exe", m->path))
		return -1;
	return dl_iterate_phdr(find_self, m) == 1 && m->lo < m->hi ? 0 : -1;
}
