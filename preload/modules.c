/* SPDX-License-Identifier: MIT */
/* The module map: every loaded object with its load bias, address range
 * and build-id, captured with dl_iterate_phdr by the thread that changed
 * it (never by the writer, which must not take the loader's lock) and
 * handed to the writer, which copies it into the trace. */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "leaktrace/codec.h"
#include "shim.h"
#include "sys.h"

#define LT_MAX_RANGES 4096

struct lt_modules_s {
	struct lt_modules_s *next; /* the pending list, newest first */
	size_t map_len; /* bytes mapped for this object */
	size_t used; /* bytes of payload in data[] */
	unsigned char data[]; /* a MODULES record payload, see format.h */
};

uintptr_t lt__self_lo, lt__self_hi;

/* Address ranges of the newest map, read by lt__modules_contains() without
 * a lock. Relaxed everywhere: a stale or torn view only makes a caller
 * refresh the map once more, or once too few (then a frame symbolizes as
 * unknown), never corrupts anything. */
static _Atomic uint64_t range_lo[LT_MAX_RANGES], range_hi[LT_MAX_RANGES];
static _Atomic uint32_t range_count;

/* Maps waiting for the writer: a push-only list (Treiber stack) that the
 * writer takes whole and writes oldest first, so no map is ever lost, not
 * even one that lived only between a dlopen and a dlclose. A producer
 * pushes with a release CAS (the map's contents are written before); the
 * writer takes the list with an acquire exchange. */
static _Atomic(struct lt_modules_s *) pending;
static _Atomic uint64_t generation; /* relaxed: a counter */
static _Atomic int snapshot_busy; /* a trylock; see lt__modules_snapshot */
static char exe_path[4096];

struct build_ctx {
	struct lt_modules_s *m;
	size_t cap;
	uint32_t count;
	int overflow;
	uint32_t nranges;
};

static size_t build_id_of(const struct dl_phdr_info *info, const unsigned char **out)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		const unsigned char *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const void *)p;
			size_t name_len = (nh->n_namesz + 3) & ~3u;
			size_t desc_len = (nh->n_descsz + 3) & ~3u;
			const unsigned char *name = p + sizeof *nh;
			const unsigned char *desc = name + name_len;
			if (desc + desc_len > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    memcmp(name, "GNU", 4) == 0) {
				*out = desc;
				return nh->n_descsz;
			}
			p = desc + desc_len;
		}
	}
	return 0;
}

static uint64_t parse_hex(const char **s)
{
	uint64_t v = 0;
	for (;; (*s)++) {
		char c = **s;
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return v;
	}
}

/* The path of the file mapped at addr, from /proc/self/maps (the kernel's
 * absolute, symlink-free name), into out. 0, or -1 when not found. Reads
 * with a stack buffer: no malloc, no stdio. */
static int mapped_path(uint64_t addr, char *out, size_t cap)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[8192];
	size_t have = 0;
	int found = -1;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = 0;
		char *line = buf, *nl;
		while (found && (nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
			*nl = 0;
			/* "start-end perms offset dev inode   path" */
			const char *s = line;
			uint64_t lo = parse_hex(&s);
			uint64_t hi = *s == '-' ? (s++, parse_hex(&s)) : 0;
			if (addr >= lo && addr < hi) {
				for (int field = 0; field < 4 && *s; field++) {
					while (*s == ' ')
						s++;
					while (*s && *s != ' ')
						s++;
				}
				while (*s == ' ')
					s++;
				size_t l = strlen(s);
				static const char deleted[] = " (deleted)";
				if (l >= sizeof deleted - 1 &&
				    strcmp(s + l - (sizeof deleted - 1), deleted) == 0)
					l -= sizeof deleted - 1;
				if (*s == '/' && l < cap) {
					memcpy(out, s, l);
					out[l] = 0;
					found = 0;
				}
				break;
			}
			line = nl + 1;
		}
		if (!found)
			break;
		/* Keep the partial last line; a line longer than the buffer
		 * (it cannot be: paths are shorter) would be dropped. */
		size_t rest = have - (size_t)(line - buf);
		if (rest == sizeof buf - 1)
			rest = 0;
		memmove(buf, line, rest);
		have = rest;
	}
	close(fd);
	return found;
}

/* An absolute name for a module the loader knows by a relative one
 * (dlopen("./libplug.so"), LD_LIBRARY_PATH=.): the file mapped at its
 * first segment, else the current directory joined with the name. */
static const char *absolute_path(const char *name, uint64_t lo, char *out, size_t cap)
{
	if (mapped_path(lo, out, cap) == 0)
		return out;
	size_t n = lt__text_cwd(out, cap);
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	if (n == 0 || n + strlen(name) + 1 > cap)
		return name;
	lt__text_append(out, n, cap, name);
	return out;
}

static int add_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct build_ctx *c = arg;
	uint64_t lo = UINT64_MAX, hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t a = info->dlpi_addr + ph->p_vaddr;
		if (a < lo)
			lo = a;
		if (a + ph->p_memsz > hi)
			hi = a + ph->p_memsz;
	}
	if (hi == 0)
		return 0;
	const char *path = info->dlpi_name;
	if (!path || !*path)
		path = c->count == 0 ? exe_path : "";
	char resolved[PATH_MAX];
	if (path[0] && path[0] != '/' && strchr(path, '/'))
		path = absolute_path(path, lo, resolved, sizeof resolved);
	const unsigned char *bid = NULL;
	size_t bid_len = build_id_of(info, &bid);
	size_t path_len = strlen(path);
	size_t need = path_len + bid_len + 6 * LT_UV_MAX;
	if (c->m->used + need > c->cap) {
		c->overflow = 1;
		return 1;
	}
	uint8_t *p = c->m->data + c->m->used;
	p = lt_put_uv(p, path_len);
	memcpy(p, path, path_len);
	p += path_len;
	p = lt_put_uv(p, info->dlpi_addr);
	p = lt_put_uv(p, lo);
	p = lt_put_uv(p, hi);
	p = lt_put_uv(p, bid_len);
	if (bid_len)
		memcpy(p, bid, bid_len);
	p += bid_len;
	c->m->used = (size_t)(p - c->m->data);
	c->count++;
	/* Our own range is set once, by the snapshot lt__init() takes before
	 * tracing starts (published by its release of lt__state). */
	uintptr_t self = (uintptr_t)&lt__modules_snapshot;
	if (!lt__self_hi && self >= lo && self < hi) {
		lt__self_lo = lo;
		lt__self_hi = hi;
	}
	if (c->nranges < LT_MAX_RANGES) {
		atomic_store_explicit(&range_lo[c->nranges], lo, memory_order_relaxed);
		atomic_store_explicit(&range_hi[c->nranges], hi, memory_order_relaxed);
		c->nranges++;
	}
	return 0;
}

int lt__modules_snapshot(void)
{
	int expected = 0;
	/* A trylock, never a wait: the holder may be blocked on the loader
	 * lock held by a thread that is now in malloc, calling us. Acquire
	 * pairs with the release at the end, ordering successive builds. */
	if (!atomic_compare_exchange_strong_explicit(&snapshot_busy, &expected, 1,
						     memory_order_acquire,
						     memory_order_relaxed))
		return -EBUSY;
	if (!exe_path[0]) {
		ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
		exe_path[n > 0 ? n : 0] = 0;
	}
	size_t cap = 256 * 1024;
	struct lt_modules_s *m = NULL;
	struct build_ctx c;
	for (;;) {
		m = lt__sys_map(cap);
		if (!m) {
			atomic_store_explicit(&snapshot_busy, 0, memory_order_release);
			return -ENOMEM;
		}
		m->map_len = cap;
		memset(&c, 0, sizeof c);
		c.m = m;
		c.cap = cap - sizeof *m - 2 * LT_UV_MAX;
		dl_iterate_phdr(add_module, &c);
		if (!c.overflow)
			break;
		lt__sys_unmap(m, cap);
		cap *= 4;
	}
	atomic_store_explicit(&range_count, c.nranges, memory_order_relaxed);
	/* Prefix the payload with generation and count: shift the modules
	 * right by the size of those two varints. */
	uint8_t head[2 * LT_UV_MAX];
	uint64_t gen = atomic_fetch_add_explicit(&generation, 1, memory_order_relaxed) + 1;
	uint8_t *p = lt_put_uv(head, gen);
	p = lt_put_uv(p, c.count);
	size_t hl = (size_t)(p - head);
	memmove(m->data + hl, m->data, m->used);
	memcpy(m->data, head, hl);
	m->used += hl;
	struct lt_modules_s *top = atomic_load_explicit(&pending, memory_order_relaxed);
	do
		m->next = top;
	while (!atomic_compare_exchange_weak_explicit(&pending, &top, m, memory_order_release,
						      memory_order_relaxed));
	atomic_store_explicit(&snapshot_busy, 0, memory_order_release);
	return 0;
}

int lt__modules_contains(uint64_t addr)
{
	uint32_t n = atomic_load_explicit(&range_count, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++)
		if (addr >= atomic_load_explicit(&range_lo[i], memory_order_relaxed) &&
		    addr < atomic_load_explicit(&range_hi[i], memory_order_relaxed))
			return 1;
	return n == 0; /* no map yet: don't trigger a rebuild per stack */
}

struct lt_modules_s *lt__modules_take(void)
{
	struct lt_modules_s *m = atomic_exchange_explicit(&pending, NULL, memory_order_acquire);
	/* Reverse into publication order, oldest first. */
	struct lt_modules_s *ordered = NULL;
	while (m) {
		struct lt_modules_s *next = m->next;
		m->next = ordered;
		ordered = m;
		m = next;
	}
	return ordered;
}

struct lt_modules_s *lt__modules_next(const struct lt_modules_s *m)
{
	return m->next;
}

size_t lt__modules_encode(struct lt_modules_s *m, uint8_t *out, size_t cap)
{
	if (m->used > cap)
		return 0;
	memcpy(out, m->data, m->used);
	return m->used;
}

size_t lt__modules_size(const struct lt_modules_s *m)
{
	return m->used;
}

void lt__modules_release(struct lt_modules_s *m)
{
	if (m)
		lt__sys_unmap(m, m->map_len);
}
