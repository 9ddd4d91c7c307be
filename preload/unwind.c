/* SPDX-License-Identifier: MIT */
/* A fast x86-64 stack walker for the allocation path: each return address
 * is looked up in a shared cache of "frame recipes" (where the caller's
 * frame starts and where the return address and saved rbp sit), derived
 * once per address from the module's .eh_frame call-frame information.
 * Anything it does not understand (signal frames, DWARF expressions, code
 * without CFI) makes it give up, and the caller falls back to libunwind. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "shim.h"
#include "sys.h"

#if defined(__x86_64__)

/*
 * A recipe, packed in 64 bits:
 *   bits  0..31  CFA offset (signed) from rsp or rbp
 *   bits 32..47  offset of the saved rbp from the CFA (signed), if saved
 *   bits 48..55  offset of the return address from the CFA / 8 (signed)
 *   bit  56      the CFA is based on rbp (else rsp)
 *   bit  57      rbp is saved in this frame
 *   bit  58      the return address is undefined: outermost frame
 *   bit  62      unsupported: walk with libunwind instead
 *   bit  63      valid (so that 0 means "not computed")
 */
#define R_CFA_RBP (1ull << 56)
#define R_RBP_SAVED (1ull << 57)
#define R_OUTERMOST (1ull << 58)
#define R_UNSUPPORTED (1ull << 62)
#define R_VALID (1ull << 63)

static inline uint64_t recipe_pack(int64_t cfa_off, int64_t rbp_off, int64_t ra_off, uint64_t flags)
{
	return (uint64_t)(uint32_t)(int32_t)cfa_off | (uint64_t)(uint16_t)(int16_t)rbp_off << 32 |
	       (uint64_t)(uint8_t)(int8_t)(ra_off / 8) << 48 | flags | R_VALID;
}

/*
 * The recipe cache: insert-only open addressing keyed by code address,
 * shared by all threads, never locked. An inserter claims an empty slot by
 * CAS-ing its key from 0 to ip|PENDING, stores the recipe, then stores the
 * key ip with release; readers load the key with acquire (pairing with
 * that store) and read the recipe only when the key is exactly ip. A
 * reader that finds ip|PENDING computes the recipe itself. When the table
 * is full, new addresses are computed every time (slow, never wrong).
 */
#define PENDING (1ull << 63) /* user-space code addresses are below 2^47 */
#define CACHE_SLOTS (1u << 18) /* 4 MiB of address space, touched as used */
#define CACHE_MAX (3u << 16) /* stop inserting at 75% */

struct cache_entry {
	_Atomic uint64_t ip;
	_Atomic uint64_t recipe;
};

static struct cache_entry *cache;
static _Atomic uint32_t cache_used; /* relaxed: a fill counter */

int lt__unwind_init(void)
{
	cache = lt__sys_map(sizeof *cache * CACHE_SLOTS);
	return cache ? 0 : -ENOMEM;
}

/* ---- DWARF call-frame information ---- */

enum {
	DW_EH_PE_absptr = 0x00,
	DW_EH_PE_uleb128 = 0x01,
	DW_EH_PE_udata2 = 0x02,
	DW_EH_PE_udata4 = 0x03,
	DW_EH_PE_udata8 = 0x04,
	DW_EH_PE_sleb128 = 0x09,
	DW_EH_PE_sdata2 = 0x0a,
	DW_EH_PE_sdata4 = 0x0b,
	DW_EH_PE_sdata8 = 0x0c,
	DW_EH_PE_pcrel = 0x10,
	DW_EH_PE_datarel = 0x30,
	DW_EH_PE_indirect = 0x80,
	DW_EH_PE_omit = 0xff,
};

struct reader {
	const uint8_t *p, *end;
	int bad;
};

static uint64_t rd_uleb(struct reader *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			break;
		uint8_t b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = 1;
	return 0;
}

static int64_t rd_sleb(struct reader *r)
{
	int64_t v = 0;
	unsigned shift = 0;
	uint8_t b = 0x80;
	while (shift < 64 && r->p < r->end) {
		b = *r->p++;
		v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	if (b & 0x80) {
		r->bad = 1;
		return 0;
	}
	if (shift < 64 && (b & 0x40))
		v |= -(int64_t)((uint64_t)1 << shift);
	return v;
}

static uint64_t rd_fixed(struct reader *r, size_t n)
{
	if ((size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return 0;
	}
	uint64_t v = 0;
	memcpy(&v, r->p, n); /* little-endian host */
	r->p += n;
	return v;
}

/* Reads a pointer with the given DW_EH_PE encoding; data_base serves
 * datarel. Indirect pointers are not followed (never needed here). */
static uint64_t rd_ptr(struct reader *r, uint8_t enc, uint64_t data_base)
{
	if (enc == DW_EH_PE_omit)
		return 0;
	uint64_t at = (uint64_t)(uintptr_t)r->p, v;
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr: v = rd_fixed(r, 8); break;
	case DW_EH_PE_uleb128: v = rd_uleb(r); break;
	case DW_EH_PE_udata2: v = rd_fixed(r, 2); break;
	case DW_EH_PE_udata4: v = rd_fixed(r, 4); break;
	case DW_EH_PE_udata8: v = rd_fixed(r, 8); break;
	case DW_EH_PE_sleb128: v = (uint64_t)rd_sleb(r); break;
	case DW_EH_PE_sdata2: v = (uint64_t)(int64_t)(int16_t)rd_fixed(r, 2); break;
	case DW_EH_PE_sdata4: v = (uint64_t)(int64_t)(int32_t)rd_fixed(r, 4); break;
	case DW_EH_PE_sdata8: v = rd_fixed(r, 8); break;
	default: r->bad = 1; return 0;
	}
	switch (enc & 0x70) {
	case 0: break;
	case DW_EH_PE_pcrel: v += at; break;
	case DW_EH_PE_datarel: v += data_base; break;
	default: r->bad = 1; return 0;
	}
	if (enc & DW_EH_PE_indirect)
		r->bad = 1;
	return v;
}

/* The register rules the walker needs, as CFA instructions leave them. */
struct cfa_state {
	int cfa_reg; /* DWARF register: 7 = rsp, 6 = rbp */
	int64_t cfa_off;
	int rbp_saved;
	int64_t rbp_off;
	int ra_undefined;
	int64_t ra_off;
	int unsupported;
};

#define DW_REG_RBP 6
#define DW_REG_RSP 7
#define DW_REG_RA 16

static void set_reg_offset(struct cfa_state *s, uint64_t reg, int64_t off)
{
	if (reg == DW_REG_RBP) {
		s->rbp_saved = 1;
		s->rbp_off = off;
	} else if (reg == DW_REG_RA) {
		s->ra_off = off;
		s->ra_undefined = 0;
	}
}

/* Runs CFA instructions [p, end) while the location stays <= target.
 * init holds the CIE's initial rules (for DW_CFA_restore). */
static void run_cfa(struct cfa_state *s, const struct cfa_state *init, const uint8_t *p,
		    const uint8_t *end, uint64_t loc, uint64_t target, uint64_t code_align,
		    int64_t data_align)
{
	struct cfa_state stack[8];
	int depth = 0;
	struct reader r = {p, end, 0};
	while (r.p < r.end && !r.bad && !s->unsupported) {
		uint8_t op = *r.p++;
		uint8_t hi = op & 0xc0, lo = op & 0x3f;
		if (hi == 0x40) { /* advance_loc */
			loc += lo * code_align;
			if (loc > target)
				return;
			continue;
		}
		if (hi == 0x80) { /* offset */
			set_reg_offset(s, lo, (int64_t)rd_uleb(&r) * data_align);
			continue;
		}
		if (hi == 0xc0) { /* restore */
			if (lo == DW_REG_RBP) {
				s->rbp_saved = init->rbp_saved;
				s->rbp_off = init->rbp_off;
			}
			continue;
		}
		uint64_t reg;
		switch (op) {
		case 0x00: /* nop */
			break;
		case 0x02: /* advance_loc1 */
			loc += rd_fixed(&r, 1) * code_align;
			if (loc > target)
				return;
			break;
		case 0x03: /* advance_loc2 */
			loc += rd_fixed(&r, 2) * code_align;
			if (loc > target)
				return;
			break;
		case 0x04: /* advance_loc4 */
			loc += rd_fixed(&r, 4) * code_align;
			if (loc > target)
				return;
			break;
		case 0x05: /* offset_extended */
			reg = rd_uleb(&r);
			set_reg_offset(s, reg, (int64_t)rd_uleb(&r) * data_align);
			break;
		case 0x06: /* restore_extended */
			reg = rd_uleb(&r);
			if (reg == DW_REG_RBP) {
				s->rbp_saved = init->rbp_saved;
				s->rbp_off = init->rbp_off;
			}
			break;
		case 0x07: /* undefined */
			reg = rd_uleb(&r);
			if (reg == DW_REG_RA)
				s->ra_undefined = 1;
			else if (reg == DW_REG_RBP)
				s->rbp_saved = 0;
			break;
		case 0x08: /* same_value */
			reg = rd_uleb(&r);
			if (reg == DW_REG_RBP)
				s->rbp_saved = 0;
			break;
		case 0x09: /* register */
			reg = rd_uleb(&r);
			rd_uleb(&r);
			if (reg == DW_REG_RBP || reg == DW_REG_RA || reg == DW_REG_RSP)
				s->unsupported = 1;
			break;
		case 0x0a: /* remember_state */
			if (depth == 8)
				s->unsupported = 1;
			else
				stack[depth++] = *s;
			break;
		case 0x0b: /* restore_state */
			if (depth == 0)
				s->unsupported = 1;
			else
				*s = stack[--depth];
			break;
		case 0x0c: /* def_cfa */
			s->cfa_reg = (int)rd_uleb(&r);
			s->cfa_off = (int64_t)rd_uleb(&r);
			break;
		case 0x0d: /* def_cfa_register */
			s->cfa_reg = (int)rd_uleb(&r);
			break;
		case 0x0e: /* def_cfa_offset */
			s->cfa_off = (int64_t)rd_uleb(&r);
			break;
		case 0x11: /* offset_extended_sf */
			reg = rd_uleb(&r);
			set_reg_offset(s, reg, rd_sleb(&r) * data_align);
			break;
		case 0x12: /* def_cfa_sf */
			s->cfa_reg = (int)rd_uleb(&r);
			s->cfa_off = rd_sleb(&r) * data_align;
			break;
		case 0x13: /* def_cfa_offset_sf */
			s->cfa_off = rd_sleb(&r) * data_align;
			break;
		case 0x2e: /* GNU_args_size */
			rd_uleb(&r);
			break;
		case 0x2f: /* GNU_negative_offset_extended */
			reg = rd_uleb(&r);
			set_reg_offset(s, reg, -(int64_t)rd_uleb(&r) * data_align);
			break;
		case 0x01: /* set_loc: needs the FDE's pointer encoding */
		default: /* expressions (0x0f, 0x10, 0x14, 0x15, 0x16), vendor ops */
			s->unsupported = 1;
			break;
		}
	}
	if (r.bad)
		s->unsupported = 1;
}

/* Parses the CIE at cie and the FDE at fde and computes the rules at ip.
 * Returns 0 or -1 for anything unexpected. */
static int eval_fde(const uint8_t *fde, const uint8_t *fde_end, const uint8_t *cie,
		    const uint8_t *cie_end, uint64_t ip, uint64_t data_base, struct cfa_state *out)
{
	struct reader r = {cie, cie_end, 0};
	uint8_t version = (uint8_t)rd_fixed(&r, 1);
	const char *aug = (const char *)r.p;
	size_t aug_len = strnlen(aug, (size_t)(r.end - r.p));
	if (aug_len == (size_t)(r.end - r.p) || (version != 1 && version != 3))
		return -1;
	r.p += aug_len + 1;
	if (aug[0] == 'e' && aug[1] == 'h')
		return -1; /* ancient GCC layout */
	uint64_t code_align = rd_uleb(&r);
	int64_t data_align = rd_sleb(&r);
	uint64_t ra_reg = version == 1 ? rd_fixed(&r, 1) : rd_uleb(&r);
	uint8_t fde_enc = DW_EH_PE_absptr;
	if (aug[0] == 'z') {
		uint64_t len = rd_uleb(&r);
		const uint8_t *aug_end = r.p + len;
		if (len > (uint64_t)(r.end - r.p))
			return -1;
		for (size_t i = 1; i < aug_len; i++) {
			switch (aug[i]) {
			case 'R': fde_enc = (uint8_t)rd_fixed(&r, 1); break;
			case 'L': rd_fixed(&r, 1); break;
			case 'P': /* personality routine: skipped, never followed */
				rd_ptr(&r, (uint8_t)rd_fixed(&r, 1) & 0x7f, data_base);
				break;
			case 'S': return -1; /* a signal frame: libunwind's job */
			default: return -1;
			}
		}
		r.p = aug_end;
	} else if (aug[0] != 0) {
		return -1;
	}
	if (r.bad || ra_reg != DW_REG_RA)
		return -1;

	struct cfa_state init = {.cfa_reg = -1, .ra_off = 0, .ra_undefined = 1};
	run_cfa(&init, &init, r.p, cie_end, 0, UINT64_MAX, code_align, data_align);
	if (init.unsupported)
		return -1;

	struct reader f = {fde, fde_end, 0};
	uint64_t pc_begin = rd_ptr(&f, fde_enc, data_base);
	uint64_t pc_range = rd_ptr(&f, fde_enc & 0x0f, data_base);
	if (f.bad || ip < pc_begin || ip >= pc_begin + pc_range)
		return -1;
	if (aug[0] == 'z') {
		uint64_t len = rd_uleb(&f);
		if (len > (uint64_t)(f.end - f.p))
			return -1;
		f.p += len;
	}
	*out = init;
	run_cfa(out, &init, f.p, fde_end, pc_begin, ip, code_align, data_align);
	if (out->unsupported || f.bad)
		return -1;
	if (out->cfa_reg != DW_REG_RSP && out->cfa_reg != DW_REG_RBP)
		return -1;
	return 0;
}

/* Reads a CIE/FDE length header: returns the start of its body and sets
 * *end, or NULL. */
static const uint8_t *entry_body(const uint8_t *p, const uint8_t **end)
{
	uint32_t len32;
	memcpy(&len32, p, 4);
	if (len32 == 0 || len32 == 0xffffffffu)
		return NULL; /* terminator or 64-bit DWARF: not produced by GCC/clang here */
	*end = p + 4 + len32;
	return p + 4;
}

struct find_ctx {
	uint64_t ip;
	uint64_t recipe;
	int found_module;
};

/* dl_iterate_phdr callback: finds the module holding ip, binary-searches
 * its .eh_frame_hdr table and computes the recipe. */
static int find_in_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct find_ctx *c = arg;
	const ElfW(Phdr) *hdr = NULL;
	int inside = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t a = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && c->ip >= a && c->ip < a + ph->p_memsz)
			inside = 1;
		else if (ph->p_type == PT_GNU_EH_FRAME)
			hdr = ph;
	}
	if (!inside)
		return 0;
	c->found_module = 1;
	if (!hdr)
		return 1;
	const uint8_t *h = (const uint8_t *)(info->dlpi_addr + hdr->p_vaddr);
	uint64_t hdr_base = (uint64_t)(uintptr_t)h;
	struct reader r = {h, h + hdr->p_memsz, 0};
	uint8_t version = (uint8_t)rd_fixed(&r, 1);
	uint8_t ptr_enc = (uint8_t)rd_fixed(&r, 1);
	uint8_t count_enc = (uint8_t)rd_fixed(&r, 1);
	uint8_t table_enc = (uint8_t)rd_fixed(&r, 1);
	if (version != 1 || table_enc != (DW_EH_PE_datarel | DW_EH_PE_sdata4))
		return 1;
	rd_ptr(&r, ptr_enc, hdr_base);
	uint64_t count = rd_ptr(&r, count_enc, hdr_base);
	if (r.bad || count == 0 || count > (uint64_t)(r.end - r.p) / 8)
		return 1;
	const int32_t *table = (const int32_t *)(const void *)r.p;
	/* The last entry whose initial location is <= ip. */
	uint64_t lo = 0, hi = count;
	while (hi - lo > 1) {
		uint64_t mid = (lo + hi) / 2;
		if (hdr_base + (uint64_t)(int64_t)table[2 * mid] <= c->ip)
			lo = mid;
		else
			hi = mid;
	}
	if (hdr_base + (uint64_t)(int64_t)table[2 * lo] > c->ip)
		return 1;
	const uint8_t *fde = (const uint8_t *)(uintptr_t)(hdr_base + (uint64_t)(int64_t)table[2 * lo + 1]);
	const uint8_t *fde_end, *fde_body = entry_body(fde, &fde_end);
	if (!fde_body)
		return 1;
	uint32_t cie_off;
	memcpy(&cie_off, fde_body, 4);
	const uint8_t *cie = fde_body - cie_off;
	const uint8_t *cie_end, *cie_body = entry_body(cie, &cie_end);
	if (!cie_body)
		return 1;
	uint32_t cie_id;
	memcpy(&cie_id, cie_body, 4);
	if (cie_id != 0)
		return 1;
	struct cfa_state s;
	if (eval_fde(fde_body + 4, fde_end, cie_body + 4, cie_end, c->ip, hdr_base, &s))
		return 1;
	if (s.cfa_off < INT32_MIN || s.cfa_off > INT32_MAX || s.rbp_off < INT16_MIN ||
	    s.rbp_off > INT16_MAX || (s.ra_off & 7) || s.ra_off < -1024 || s.ra_off > 1016)
		return 1;
	uint64_t flags = (s.cfa_reg == DW_REG_RBP ? R_CFA_RBP : 0) |
			 (s.rbp_saved ? R_RBP_SAVED : 0) | (s.ra_undefined ? R_OUTERMOST : 0);
	c->recipe = recipe_pack(s.cfa_off, s.rbp_off, s.ra_off, flags);
	return 1;
}

/* The recipe for code address ip (already adjusted into the call
 * instruction for return addresses). Never fails: unknown means
 * R_UNSUPPORTED. */
static uint64_t recipe_for(uint64_t ip)
{
	uint32_t mask = CACHE_SLOTS - 1;
	uint32_t i = (uint32_t)((ip * 0x9e3779b97f4a7c15ull) >> 40) & mask;
	uint64_t computed = 0;
	for (uint32_t probes = 0; probes < 64; probes++, i = (i + 1) & mask) {
		/* Acquire pairs with the release store of the key below:
		 * the recipe was stored before it. */
		uint64_t k = atomic_load_explicit(&cache[i].ip, memory_order_acquire);
		if (k == ip)
			return atomic_load_explicit(&cache[i].recipe, memory_order_relaxed);
		if (k != 0 && k != (ip | PENDING))
			continue;
		if (!computed) {
			struct find_ctx c = {ip, R_VALID | R_UNSUPPORTED, 0};
			dl_iterate_phdr(find_in_module, &c);
			computed = c.recipe;
		}
		if (k != 0)
			return computed; /* another thread is inserting it */
		/* Relaxed: a fill counter. */
		if (atomic_load_explicit(&cache_used, memory_order_relaxed) >= CACHE_MAX)
			return computed;
		uint64_t expected = 0;
		/* Relaxed: claiming the slot publishes nothing; the recipe
		 * is published by the release store of the final key. */
		if (atomic_compare_exchange_strong_explicit(&cache[i].ip, &expected, ip | PENDING,
							    memory_order_relaxed,
							    memory_order_relaxed)) {
			atomic_fetch_add_explicit(&cache_used, 1, memory_order_relaxed);
			atomic_store_explicit(&cache[i].recipe, computed, memory_order_relaxed);
			/* Release publishes the recipe with the key. */
			atomic_store_explicit(&cache[i].ip, ip, memory_order_release);
			return computed;
		}
		if (expected == ip || expected == (ip | PENDING))
			return computed;
		/* The slot went to another address: probe on. */
	}
	return computed ? computed : (R_VALID | R_UNSUPPORTED);
}

/*
 * lt__unwind_origin() finds where the walk starts: the allocator's caller
 * (its return address, stack pointer and frame pointer). lt__unwind_fast()
 * walks from there: it returns the number of return addresses stored in
 * out, innermost first, or -1 when some frame is beyond it (the caller
 * then uses libunwind). It also lists in slots the stack words it read
 * (at most 2 per frame): the walk is a function of the origin and those
 * words alone, which is what makes a cached result checkable.
 */
__attribute__((noinline)) int lt__unwind_origin(struct lt_walk_origin *o, uintptr_t stack_hi)
{
	uint64_t rsp, rbp;
	__asm__ volatile("movq %%rsp, %0\n\t"
			 "movq %%rbp, %1"
			 : "=r"(rsp), "=r"(rbp));
	o->lo = rsp;
	/* The shim's own frames all keep frame pointers (it is built with
	 * -fno-omit-frame-pointer): follow that chain to the first return
	 * address outside the shim, the allocator's caller. Its stack
	 * pointer is just above the last shim frame's return address. */
	for (uint64_t fp = rbp;;) {
		/* Bounds checks are written so that wild values cannot wrap. */
		if (fp < rsp || fp >= stack_hi || stack_hi - fp < 16 || (fp & 7))
			return -1;
		uint64_t saved = ((const uint64_t *)(uintptr_t)fp)[0];
		uint64_t ra = ((const uint64_t *)(uintptr_t)fp)[1];
		if (ra < lt__self_lo || ra >= lt__self_hi) {
			o->rsp = fp + 16;
			o->rbp = saved;
			o->ip = ra;
			return 0;
		}
		if (saved <= fp)
			return -1;
		fp = saved;
	}
}

int lt__unwind_fast(uint64_t *out, int max, uintptr_t stack_hi, const struct lt_walk_origin *o,
		    uint64_t *slots, int *nslots)
{
	uint64_t rsp = o->rsp, rbp = o->rbp, ip = o->ip, lo = o->lo;
	int ns = 0;
	*nslots = 0;
	if (max <= 0)
		return 0;
	int n = 0;
	out[n++] = ip;
	while (n < max) {
		/* ip is a return address: look up the call instruction. */
		uint64_t recipe = recipe_for(ip - 1);
		if (recipe & R_UNSUPPORTED)
			return -1;
		if (recipe & R_OUTERMOST)
			break;
		int64_t cfa_off = (int32_t)(uint32_t)recipe;
		int64_t rbp_off = (int16_t)(uint16_t)(recipe >> 32);
		int64_t ra_off = (int64_t)(int8_t)(uint8_t)(recipe >> 48) * 8;
		uint64_t cfa = ((recipe & R_CFA_RBP) ? rbp : rsp) + (uint64_t)cfa_off;
		uint64_t ra_at = cfa + (uint64_t)ra_off;
		if (cfa <= rsp || ra_at < lo || ra_at >= stack_hi || stack_hi - ra_at < 8 ||
		    (ra_at & 7))
			break; /* left the stack: the end, or an unusual frame */
		uint64_t ra = *(const uint64_t *)(uintptr_t)ra_at;
		/* The memo holds LT_MEMO_SLOTS: a deeper walk is not memoized
		 * (ns goes past the end and says so). */
		if (ns < LT_MEMO_SLOTS)
			slots[ns] = ra_at;
		ns++;
		if (recipe & R_RBP_SAVED) {
			uint64_t at = cfa + (uint64_t)rbp_off;
			if (at < lo || at >= stack_hi || stack_hi - at < 8 || (at & 7))
				return -1;
			rbp = *(const uint64_t *)(uintptr_t)at;
			if (ns < LT_MEMO_SLOTS)
				slots[ns] = at;
			ns++;
		}
		if (ra < 4096)
			break; /* the outermost frame's return address is 0 */
		out[n++] = ra;
		rsp = cfa;
		ip = ra;
	}
	*nslots = ns;
	return n;
}

#else /* not x86-64 */

int lt__unwind_init(void)
{
	return 0;
}

int lt__unwind_origin(struct lt_walk_origin *o, uintptr_t stack_hi)
{
	(void)o;
	(void)stack_hi;
	return -1;
}

int lt__unwind_fast(uint64_t *out, int max, uintptr_t stack_hi, const struct lt_walk_origin *o,
		    uint64_t *slots, int *nslots)
{
	(void)out;
	(void)max;
	(void)stack_hi;
	(void)o;
	(void)slots;
	*nslots = 0;
	return -1;
}

#endif
