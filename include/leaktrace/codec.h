/* SPDX-License-Identifier: MIT */
/* Varint, zigzag and checksum helpers that both the shim's encoder and the
 * analyzer's decoder use, so the two halves cannot disagree on the bytes. */
#ifndef LEAKTRACE_CODEC_H
#define LEAKTRACE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format.h"

/* Longest LEB128 encoding of a 64-bit value. */
#define LT_UV_MAX 10

static inline uint64_t lt_zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t lt_unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Writes v as LEB128 at p (which must have LT_UV_MAX bytes of room) and
 * returns the byte after it. Never fails. */
static inline uint8_t *lt_put_uv(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint8_t *lt_put_sv(uint8_t *p, int64_t v)
{
	return lt_put_uv(p, lt_zigzag(v));
}

/* Reads a LEB128 value from [*p, end). Returns 0 and advances *p, or -1 if
 * the value runs past end or is longer than 64 bits (corrupt input). */
static inline int lt_get_uv(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	const uint8_t *q = *p;
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (q >= end)
			return -1;
		uint8_t b = *q++;
		if (shift == 63 && b > 1)
			return -1; /* would overflow 64 bits */
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*p = q;
			*out = v;
			return 0;
		}
	}
	return -1;
}

static inline int lt_get_sv(const uint8_t **p, const uint8_t *end, int64_t *out)
{
	uint64_t v;
	if (lt_get_uv(p, end, &v))
		return -1;
	*out = lt_unzigzag(v);
	return 0;
}

/* The address field of event records (see format.h): a delta from prev,
 * in 16-byte units when both are 16-aligned, flagged in the low bit. */
static inline uint64_t lt_addr_field(uint64_t addr, uint64_t prev)
{
	if (((addr | prev) & 15) == 0)
		return (lt_zigzag((int64_t)(addr - prev) >> 4) << 1) | 1;
	return lt_zigzag((int64_t)(addr - prev)) << 1;
}

static inline uint64_t lt_addr_from_field(uint64_t field, uint64_t prev)
{
	int64_t d = lt_unzigzag(field >> 1);
	if (field & 1)
		return prev + ((uint64_t)d << 4);
	return prev + (uint64_t)d;
}

static inline void lt_put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t lt_get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* FNV-1a over len bytes: the block checksum of format.h. */
static inline uint32_t lt_checksum(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

static inline uint64_t lt_get_u64le(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline uint64_t lt_rotl64(uint64_t v, unsigned r)
{
	return v << r | v >> (64 - r);
}

/* One lane step of lt_checksum_lanes: xor in a word, multiply, rotate. */
static inline uint64_t lt_checksum_lane(uint64_t lane, uint64_t word)
{
	return lt_rotl64((lane ^ word) * 0x9e3779b97f4a7c15ull, 31);
}

/* The checksum of format 1.1 and later: four independent lanes take every
 * fourth little-endian 64-bit word (so the multiplies overlap: about ten
 * times faster than byte-wise FNV-1a, which a 100 MB trace noticed), the
 * tail bytes are folded in one by one, and a final mix spreads every bit
 * over the low 32. */
static inline uint32_t lt_checksum_lanes(const uint8_t *p, size_t len)
{
	uint64_t a = 0x243f6a8885a308d3ull, b = 0x13198a2e03707344ull;
	uint64_t c = 0xa4093822299f31d0ull, d = 0x082efa98ec4e6c89ull;
	size_t i = 0;
	for (; i + 32 <= len; i += 32) {
		a = lt_checksum_lane(a, lt_get_u64le(p + i));
		b = lt_checksum_lane(b, lt_get_u64le(p + i + 8));
		c = lt_checksum_lane(c, lt_get_u64le(p + i + 16));
		d = lt_checksum_lane(d, lt_get_u64le(p + i + 24));
	}
	uint64_t h = (uint64_t)len ^ a ^ lt_rotl64(b, 17) ^ lt_rotl64(c, 29) ^ lt_rotl64(d, 43);
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h;
}

/* The block checksum of a file of the given minor version (format.h). */
static inline uint32_t lt_block_checksum(unsigned minor, const uint8_t *p, size_t len)
{
	return minor >= 1 ? lt_checksum_lanes(p, len) : lt_checksum(p, len);
}

#endif /* LEAKTRACE_CODEC_H */
