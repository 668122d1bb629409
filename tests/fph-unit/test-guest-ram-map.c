/*
 * Unit tests for the guest RAM map: which guest-physical ranges are guest
 * RAM, and how a reported range splits across RAM blocks.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "guest-ram-map.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdlib.h>
#include <cmocka.h>

#define PAGE 4096u
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static int node0, node1, dimm, shared;

/*
 * A q35 guest with two NUMA nodes of 1 GiB each, split by the 4 GiB hole
 * at 2 GiB (the second node's top half above 4 GiB), a DIMM right after
 * it, then a shared block that does not migrate.
 */
static const GuestRamRange numa_guest[] = {
    { .gpa = 0, .size = 1 * GiB, .block = &node0, .offset = 0 },
    { .gpa = 1 * GiB, .size = 1 * GiB, .block = &node1, .offset = 0 },
    { .gpa = 4 * GiB, .size = 1 * GiB, .block = &node1, .offset = 1 * GiB },
    { .gpa = 5 * GiB, .size = 512 * MiB, .block = &dimm, .offset = 0 },
    { .gpa = 6 * GiB, .size = 256 * MiB, .block = NULL, .offset = 0,
      .region = &shared },
};
#define N ARRAY_SIZE(numa_guest)

typedef struct Pieces {
    const GuestRamRange *range[8];
    uint64_t offset[8];
    uint64_t len[8];
    int n;
} Pieces;

static void record_piece(const GuestRamRange *r, uint64_t offset,
                         uint64_t len, void *opaque)
{
    Pieces *p = opaque;

    assert_true(p->n < 8);
    p->range[p->n] = r;
    p->offset[p->n] = offset;
    p->len[p->n] = len;
    p->n++;
}

static Pieces pieces_of(uint64_t gpa, uint64_t len)
{
    Pieces p = { .n = 0 };

    guest_ram_for_each_piece(numa_guest, N, gpa, len, record_piece, &p);
    return p;
}

static void test_find(void **state)
{
    assert_ptr_equal(guest_ram_find(numa_guest, N, 0), &numa_guest[0]);
    assert_ptr_equal(guest_ram_find(numa_guest, N, 1 * GiB - 1),
                     &numa_guest[0]);
    assert_ptr_equal(guest_ram_find(numa_guest, N, 1 * GiB),
                     &numa_guest[1]);
    assert_null(guest_ram_find(numa_guest, N, 2 * GiB));
    assert_null(guest_ram_find(numa_guest, N, 3 * GiB + 5));
    assert_ptr_equal(guest_ram_find(numa_guest, N, 4 * GiB),
                     &numa_guest[2]);
    assert_null(guest_ram_find(numa_guest, N, 5 * GiB + 512 * MiB));
    assert_ptr_equal(guest_ram_find(numa_guest, N, 6 * GiB + PAGE),
                     &numa_guest[4]);
    assert_null(guest_ram_find(numa_guest, N, UINT64_MAX));
    assert_null(guest_ram_find(numa_guest, 0, 0));
}

static void test_covers(void **state)
{
    /* Across the boundary of two nodes: both are guest RAM. */
    assert_true(guest_ram_covers(numa_guest, N, 1 * GiB - PAGE, 2 * PAGE));
    /* Node 1's top half and the DIMM touch. */
    assert_true(guest_ram_covers(numa_guest, N, 5 * GiB - PAGE, 2 * PAGE));
    /* One page into the hole, or past the DIMM. */
    assert_false(guest_ram_covers(numa_guest, N, 2 * GiB - PAGE,
                                  2 * PAGE));
    assert_false(guest_ram_covers(numa_guest, N, 5 * GiB + 512 * MiB - PAGE,
                                  2 * PAGE));
    /* RAM that does not migrate is still guest RAM. */
    assert_true(guest_ram_covers(numa_guest, N, 6 * GiB, 256 * MiB));
    assert_true(guest_ram_covers(numa_guest, N, 0, 0));
}

static void test_split_across_nodes(void **state)
{
    Pieces p = pieces_of(1 * GiB - 2 * PAGE, 5 * PAGE);

    assert_int_equal(p.n, 2);
    assert_ptr_equal(p.range[0], &numa_guest[0]);
    assert_int_equal(p.offset[0], 1 * GiB - 2 * PAGE);
    assert_int_equal(p.len[0], 2 * PAGE);
    assert_ptr_equal(p.range[1], &numa_guest[1]);
    assert_int_equal(p.offset[1], 0);
    assert_int_equal(p.len[1], 3 * PAGE);
}

static void test_above_hole_offset(void **state)
{
    /* Node 1 continues above 4 GiB at 1 GiB into its block. */
    Pieces p = pieces_of(4 * GiB + PAGE, PAGE);

    assert_int_equal(p.n, 1);
    assert_ptr_equal(p.range[0]->block, &node1);
    assert_int_equal(p.offset[0], 1 * GiB + PAGE);
}

static void test_hole_passed_over(void **state)
{
    /* From node 1 through the hole into its top half and the DIMM. */
    Pieces p = pieces_of(2 * GiB - PAGE, 3 * GiB + 2 * PAGE);

    assert_int_equal(p.n, 3);
    assert_int_equal(p.len[0], PAGE);
    assert_ptr_equal(p.range[1], &numa_guest[2]);
    assert_int_equal(p.len[1], 1 * GiB);
    assert_ptr_equal(p.range[2], &numa_guest[3]);
    assert_int_equal(p.offset[2], 0);
    assert_int_equal(p.len[2], PAGE);
}

static void test_outside_everything(void **state)
{
    assert_int_equal(pieces_of(3 * GiB, GiB / 2).n, 0);
    assert_int_equal(pieces_of(7 * GiB, PAGE).n, 0);
    assert_int_equal(pieces_of(0, 0).n, 0);
}

static void test_not_migrating_block(void **state)
{
    Pieces p = pieces_of(6 * GiB, PAGE);

    /* Handed over with no block: the caller skips nothing there. */
    assert_int_equal(p.n, 1);
    assert_null(p.range[0]->block);
}

/* Bit @i of a little-endian word bitmap, and of a host bitmap */
static bool le_bit(const uint8_t *src, uint64_t i)
{
    return src[i / 8] >> (i % 8) & 1;
}

static bool host_bit(const unsigned long *b, uint64_t i)
{
    const unsigned int w = sizeof(unsigned long) * 8;

    return b[i / w] >> (i % w) & 1;
}

/* Every offset pair and length against a bit-by-bit reference */
static void test_clear_bits(void **state)
{
    enum { WORDS = 6, BITS = WORDS * 64 };
    uint8_t src[WORDS * 8];
    unsigned long dst[BITS / (sizeof(unsigned long) * 8)];
    unsigned long before[ARRAY_SIZE(dst)];
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    unsigned int i, ds, ss, n;

    for (i = 0; i < sizeof(src); i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        src[i] = seed >> 56;
    }
    for (ds = 0; ds < 130; ds += 7) {
        for (ss = 0; ss < 130; ss += 5) {
            for (n = 0; n + ds <= BITS - 64 && n + ss <= BITS - 64;
                 n += 13) {
                uint64_t want = 0, got;
                uint64_t k;

                for (i = 0; i < ARRAY_SIZE(dst); i++) {
                    seed = seed * 6364136223846793005ULL + 1;
                    dst[i] = before[i] = (unsigned long)(seed >> 7);
                }
                got = guest_ram_clear_bits(dst, ds, src, ss, n);
                for (k = 0; k < BITS; k++) {
                    bool in = k >= ds && k < ds + n;
                    bool hinted = in && le_bit(src, ss + (k - ds));
                    bool was = host_bit(before, k);

                    want += hinted && was;
                    assert_int_equal(host_bit(dst, k), was && !hinted);
                }
                assert_int_equal(got, want);
            }
        }
    }
}

/* The last bits of the source: no word past them is read */
static void test_clear_bits_at_the_end(void **state)
{
    uint64_t *src = malloc(8);
    unsigned long dst[2] = { ~0UL, ~0UL };

    src[0] = 0x8000000000000001ULL;     /* little endian host here */
    assert_int_equal(guest_ram_clear_bits(dst, 3, (uint8_t *)src, 60, 4),
                     1);
    assert_int_equal(dst[0], ~(1UL << 6));
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_covers),
        cmocka_unit_test(test_split_across_nodes),
        cmocka_unit_test(test_above_hole_offset),
        cmocka_unit_test(test_hole_passed_over),
        cmocka_unit_test(test_outside_everything),
        cmocka_unit_test(test_not_migrating_block),
        cmocka_unit_test(test_clear_bits),
        cmocka_unit_test(test_clear_bits_at_the_end),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
