/* SPDX-License-Identifier: MIT */
/* The varint and address-field helpers of include/leaktrace/codec.h, which
 * the shim's encoder and the analyzer's decoder share. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "leaktrace/codec.h"

Test(codec, varint_roundtrip_at_the_edges)
{
	const uint64_t values[] = {0, 1, 127, 128, 16383, 16384, (1ull << 32) - 1,
				   1ull << 32, (1ull << 63) - 1, 1ull << 63, UINT64_MAX};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		uint8_t buf[LT_UV_MAX];
		uint8_t *end = lt_put_uv(buf, values[i]);
		cr_assert_leq(end - buf, LT_UV_MAX);
		const uint8_t *p = buf;
		uint64_t got;
		cr_assert_eq(lt_get_uv(&p, end, &got), 0);
		cr_assert_eq(got, values[i]);
		cr_assert_eq(p, end);
		/* One byte short must fail, not read past the end. */
		p = buf;
		cr_assert_eq(lt_get_uv(&p, end - 1, &got), -1);
	}
}

Test(codec, varint_rejects_overlong)
{
	uint8_t buf[11];
	for (int i = 0; i < 10; i++)
		buf[i] = 0xff;
	buf[10] = 0x01;
	const uint8_t *p = buf;
	uint64_t got;
	cr_assert_eq(lt_get_uv(&p, buf + sizeof buf, &got), -1);
}

Test(codec, zigzag_roundtrip)
{
	const int64_t values[] = {0, 1, -1, 63, -64, INT64_MAX, INT64_MIN};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
		cr_assert_eq(lt_unzigzag(lt_zigzag(values[i])), values[i]);
	cr_assert_eq(lt_zigzag(-1), 1u);
	cr_assert_eq(lt_zigzag(1), 2u);
}

Test(codec, address_fields_roundtrip)
{
	const uint64_t addrs[] = {0x55d0c0de0010, 0x55d0c0de0020, 0x7f0000001000,
				  0x55d0c0de0013, 0x10, 0, UINT64_MAX - 15, 0x55d0c0de0000};
	uint64_t prev = 0;
	for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
		uint64_t field = lt_addr_field(addrs[i], prev);
		cr_assert_eq(lt_addr_from_field(field, prev), addrs[i], "addr %zu", i);
		prev = addrs[i];
	}
	/* Neighbouring 16-aligned blocks cost one byte. */
	uint8_t buf[LT_UV_MAX];
	cr_assert_eq(lt_put_uv(buf, lt_addr_field(0x1000, 0x1040)) - buf, 1);
}
