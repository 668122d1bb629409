/*
 * Unit tests for the free page bitmap message parser and range arithmetic.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "hw/virtio/free-page-bitmap.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdlib.h>
#include <cmocka.h>

#define PAGE 4096u
#define GiB (1ULL << 30)

/* A guest like q35 with 6 GiB: 2 GiB below the 4 GiB hole, 4 GiB above. */
static const FpbRamRange q35_ranges[] = {
    { .gpa = 0, .size = 2 * GiB, .offset = 0 },
    { .gpa = 4 * GiB, .size = 4 * GiB, .offset = 2 * GiB },
};

typedef struct Runs {
    uint64_t offset[16];
    uint64_t len[16];
    int n;
} Runs;

static void record_run(uint64_t offset, uint64_t len, void *opaque)
{
    Runs *runs = opaque;

    assert_true(runs->n < 16);
    runs->offset[runs->n] = offset;
    runs->len[runs->n] = len;
    runs->n++;
}

/* Build a chunk with @nr_bits bits, the listed bits set; caller frees. */
static uint8_t *make_chunk(size_t *len, uint32_t cmd_id, uint32_t flags,
                           uint64_t first_pfn, uint32_t page_size,
                           uint32_t nr_bits, const uint32_t *set, int nr_set)
{
    uint8_t *buf;
    int i;

    *len = FPB_CHUNK_HEADER_SIZE + nr_bits / 8;
    buf = calloc(1, *len);
    stl_le_p(buf, cmd_id);
    stl_le_p(buf + 4, flags);
    stq_le_p(buf + 8, first_pfn);
    stl_le_p(buf + 16, page_size);
    stl_le_p(buf + 20, nr_bits);
    for (i = 0; i < nr_set; i++) {
        buf[FPB_CHUNK_HEADER_SIZE + set[i] / 8] |= 1u << (set[i] % 8);
    }
    return buf;
}

static void test_parse_fields(void **state)
{
    static const uint32_t set[] = { 0 };
    FpbChunk chunk;
    size_t len;
    uint8_t *buf = make_chunk(&len, 7, FPB_CHUNK_F_LAST, 0x123456, PAGE,
                              128, set, 1);

    assert_int_equal(fpb_parse_chunk(buf, len, PAGE, &chunk), FPB_OK);
    assert_int_equal(chunk.cmd_id, 7);
    assert_int_equal(chunk.flags, FPB_CHUNK_F_LAST);
    assert_int_equal(chunk.first_pfn, 0x123456);
    assert_int_equal(chunk.page_size, PAGE);
    assert_int_equal(chunk.nr_bits, 128);
    assert_ptr_equal(chunk.bitmap, buf + FPB_CHUNK_HEADER_SIZE);
    free(buf);
}

static void test_parse_short(void **state)
{
    uint8_t buf[FPB_CHUNK_HEADER_SIZE] = { 0 };
    FpbChunk chunk;

    assert_int_equal(fpb_parse_chunk(buf, 0, PAGE, &chunk), FPB_ERR_SHORT);
    assert_int_equal(fpb_parse_chunk(buf, FPB_CHUNK_HEADER_SIZE - 1, PAGE,
                                     &chunk), FPB_ERR_SHORT);
}

static void test_parse_flags(void **state)
{
    FpbChunk chunk;
    size_t len;
    uint8_t *buf = make_chunk(&len, 1, 1u << 1, 0, PAGE, 64, NULL, 0);

    assert_int_equal(fpb_parse_chunk(buf, len, PAGE, &chunk), FPB_ERR_FLAGS);
    free(buf);
}

static void test_parse_page_size(void **state)
{
    static const struct {
        uint32_t page_size;
        FpbError err;
    } cases[] = {
        { 0, FPB_ERR_PAGE_SIZE },
        { 2048, FPB_ERR_PAGE_SIZE },
        { 4097, FPB_ERR_PAGE_SIZE },
        { 3 * PAGE, FPB_ERR_PAGE_SIZE },
        { 0x80000001u, FPB_ERR_PAGE_SIZE },
        { PAGE, FPB_OK },
        { 2u << 20, FPB_OK },
        { 1u << 31, FPB_OK },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        FpbChunk chunk;
        size_t len;
        uint8_t *buf = make_chunk(&len, 1, 0, 0, cases[i].page_size, 64,
                                  NULL, 0);

        assert_int_equal(fpb_parse_chunk(buf, len, PAGE, &chunk),
                         cases[i].err);
        free(buf);
    }
}

static void test_parse_nr_bits(void **state)
{
    static const uint32_t bad[] = { 0, 1, 63, 65, 100,
                                    FPB_MAX_CHUNK_BITS + 64, 0xffffffc0u };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        uint8_t buf[FPB_CHUNK_HEADER_SIZE + 16] = { 0 };
        FpbChunk chunk;

        stl_le_p(buf + 16, PAGE);
        stl_le_p(buf + 20, bad[i]);
        assert_int_equal(fpb_parse_chunk(buf, sizeof(buf), PAGE, &chunk),
                         FPB_ERR_NR_BITS);
    }
}

static void test_parse_length(void **state)
{
    FpbChunk chunk;
    size_t len;
    uint8_t *buf = make_chunk(&len, 1, 0, 0, PAGE, 128, NULL, 0);

    assert_int_equal(fpb_parse_chunk(buf, len - 1, PAGE, &chunk),
                     FPB_ERR_LENGTH);
    assert_int_equal(fpb_parse_chunk(buf, len - 8, PAGE, &chunk),
                     FPB_ERR_LENGTH);
    assert_int_equal(fpb_parse_chunk(buf, FPB_CHUNK_HEADER_SIZE, PAGE,
                                     &chunk), FPB_ERR_LENGTH);
    free(buf);
    /* One byte more than the header promises is wrong too. */
    buf = make_chunk(&len, 1, 0, 0, PAGE, 64, NULL, 0);
    buf = realloc(buf, len + 1);
    assert_int_equal(fpb_parse_chunk(buf, len + 1, PAGE, &chunk),
                     FPB_ERR_LENGTH);
    free(buf);
}

static void test_parse_overflow(void **state)
{
    static const struct {
        uint64_t first_pfn;
        uint32_t page_size;
        FpbError err;
    } cases[] = {
        { UINT64_MAX - 10, PAGE, FPB_ERR_OVERFLOW },   /* pfn wraps */
        { UINT64_MAX / PAGE, PAGE, FPB_ERR_OVERFLOW },
        { UINT64_MAX / PAGE - 64, PAGE, FPB_OK },      /* ends just below 2^64 */
        { UINT64_MAX / PAGE - 63, PAGE, FPB_ERR_OVERFLOW },
        { 1ULL << 33, 1u << 31, FPB_ERR_OVERFLOW },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        FpbChunk chunk;
        size_t len;
        uint8_t *buf = make_chunk(&len, 1, 0, cases[i].first_pfn,
                                  cases[i].page_size, 64, NULL, 0);

        assert_int_equal(fpb_parse_chunk(buf, len, PAGE, &chunk),
                         cases[i].err);
        free(buf);
    }
}

static FpbError runs_of(uint64_t first_pfn, uint32_t page_size,
                        uint32_t nr_bits, const uint32_t *set, int nr_set,
                        Runs *runs, uint64_t *free_bytes)
{
    FpbChunk chunk;
    size_t len;
    FpbError err;
    uint8_t *buf = make_chunk(&len, 1, 0, first_pfn, page_size, nr_bits,
                              set, nr_set);

    assert_int_equal(fpb_parse_chunk(buf, len, PAGE, &chunk), FPB_OK);
    memset(runs, 0, sizeof(*runs));
    err = fpb_for_each_free_run(&chunk, q35_ranges,
                                ARRAY_SIZE(q35_ranges), record_run, runs,
                                free_bytes);
    free(buf);
    return err;
}

static void test_runs_merge_across_words(void **state)
{
    static const uint32_t set[] = { 1, 62, 63, 64, 65, 127 };
    uint64_t bytes;
    Runs runs;

    assert_int_equal(runs_of(16, PAGE, 128, set, 6, &runs, &bytes), FPB_OK);
    assert_int_equal(runs.n, 3);
    assert_int_equal(runs.offset[0], 17 * PAGE);
    assert_int_equal(runs.len[0], PAGE);
    assert_int_equal(runs.offset[1], (16 + 62) * PAGE);
    assert_int_equal(runs.len[1], 4 * PAGE);
    assert_int_equal(runs.offset[2], (16 + 127) * PAGE);
    assert_int_equal(runs.len[2], PAGE);
    assert_int_equal(bytes, 6 * PAGE);
}

static void test_runs_empty(void **state)
{
    uint64_t bytes = 1;
    Runs runs;

    assert_int_equal(runs_of(0, PAGE, 256, NULL, 0, &runs, &bytes), FPB_OK);
    assert_int_equal(runs.n, 0);
    assert_int_equal(bytes, 0);
}

static void test_runs_above_4g_hole(void **state)
{
    /* Pages 4 GiB and 4 GiB + 1 page sit at 2 GiB in the RAM block. */
    static const uint32_t set[] = { 0, 1 };
    Runs runs;

    assert_int_equal(runs_of((4 * GiB) / PAGE, PAGE, 64, set, 2, &runs,
                             NULL), FPB_OK);
    assert_int_equal(runs.n, 1);
    assert_int_equal(runs.offset[0], 2 * GiB);
    assert_int_equal(runs.len[0], 2 * PAGE);
}

static void test_runs_last_page_below_hole(void **state)
{
    static const uint32_t last[] = { 63 };
    static const uint32_t past[] = { 63, 64 };
    uint64_t first = (2 * GiB) / PAGE - 64;
    Runs runs;

    assert_int_equal(runs_of(first, PAGE, 64, last, 1, &runs, NULL), FPB_OK);
    assert_int_equal(runs.n, 1);
    assert_int_equal(runs.offset[0], 2 * GiB - PAGE);
    /* One page further is the hole: the whole chunk is refused. */
    assert_int_equal(runs_of(first, PAGE, 128, past, 2, &runs, NULL),
                     FPB_ERR_OUTSIDE_RAM);
    assert_int_equal(runs.n, 0);
}

static void test_runs_clear_bits_in_hole_are_fine(void **state)
{
    /* A chunk may span the hole as long as no set bit is in it. */
    static const uint32_t set[] = { 0 };
    uint64_t first = (2 * GiB) / PAGE - 64;
    uint32_t nr_bits = (uint32_t)((2 * GiB) / PAGE) + 128;
    uint32_t set_above[] = { 0, nr_bits - 1 };
    Runs runs;

    assert_int_equal(runs_of(first, PAGE, nr_bits, set, 1, &runs, NULL),
                     FPB_OK);
    assert_int_equal(runs.n, 1);
    assert_int_equal(runs_of(first, PAGE, nr_bits, set_above, 2, &runs,
                             NULL), FPB_OK);
    assert_int_equal(runs.n, 2);
    assert_int_equal(runs.offset[1], 2 * GiB + 63 * PAGE);
}

static void test_runs_beyond_ram(void **state)
{
    static const uint32_t set[] = { 5 };
    Runs runs;

    assert_int_equal(runs_of((8 * GiB) / PAGE, PAGE, 64, set, 1, &runs,
                             NULL), FPB_ERR_OUTSIDE_RAM);
    assert_int_equal(runs.n, 0);
}

static void test_runs_huge_page_size(void **state)
{
    /* 2 MiB per bit: bit 1023 is the last 2 MiB below 2 GiB. */
    static const uint32_t set[] = { 1, 1023 };
    uint64_t bytes;
    Runs runs;

    assert_int_equal(runs_of(0, 2u << 20, 1024, set, 2, &runs, &bytes),
                     FPB_OK);
    assert_int_equal(runs.n, 2);
    assert_int_equal(runs.offset[0], 2u << 20);
    assert_int_equal(runs.len[1], 2u << 20);
    assert_int_equal(runs.offset[1], 2 * GiB - (2u << 20));
    assert_int_equal(bytes, 4u << 20);
}

static void test_runs_adjacent_ranges_join(void **state)
{
    /* A run crossing two ranges that touch is split, not refused. */
    static const FpbRamRange split[] = {
        { .gpa = 0, .size = 64 * PAGE, .offset = 1000 * PAGE },
        { .gpa = 64 * PAGE, .size = 64 * PAGE, .offset = 0 },
    };
    static const uint32_t set[] = { 63, 64 };
    FpbChunk chunk;
    size_t len;
    Runs runs = { 0 };
    uint8_t *buf = make_chunk(&len, 1, 0, 0, PAGE, 128, set, 2);

    assert_int_equal(fpb_parse_chunk(buf, len, PAGE, &chunk), FPB_OK);
    assert_int_equal(fpb_for_each_free_run(&chunk, split, 2, record_run,
                                           &runs, NULL), FPB_OK);
    assert_int_equal(runs.n, 2);
    assert_int_equal(runs.offset[0], 1063 * PAGE);
    assert_int_equal(runs.offset[1], 0);
    free(buf);
}

static void test_runs_max_chunk_all_free(void **state)
{
    FpbChunk chunk;
    size_t len = FPB_CHUNK_HEADER_SIZE + FPB_MAX_CHUNK_BITS / 8;
    uint8_t *buf = calloc(1, len);
    uint64_t bytes;
    Runs runs = { 0 };

    stl_le_p(buf + 16, PAGE);
    stl_le_p(buf + 20, FPB_MAX_CHUNK_BITS);
    memset(buf + FPB_CHUNK_HEADER_SIZE, 0xff, FPB_MAX_CHUNK_BITS / 8);
    stq_le_p(buf + 8, (4 * GiB) / PAGE);
    assert_int_equal(fpb_parse_chunk(buf, len, PAGE, &chunk), FPB_OK);
    /* 32 GiB of free pages, but the guest only has 4 GiB above the hole. */
    assert_int_equal(fpb_for_each_free_run(&chunk, q35_ranges, 2,
                                           record_run, &runs, &bytes),
                     FPB_ERR_OUTSIDE_RAM);
    assert_int_equal(runs.n, 0);
    /* Only the first 4 GiB of bits set: accepted, one run. */
    memset(buf + FPB_CHUNK_HEADER_SIZE + (4 * GiB) / PAGE / 8, 0,
           FPB_MAX_CHUNK_BITS / 8 - (4 * GiB) / PAGE / 8);
    assert_int_equal(fpb_for_each_free_run(&chunk, q35_ranges, 2,
                                           record_run, &runs, &bytes),
                     FPB_OK);
    assert_int_equal(runs.n, 1);
    assert_int_equal(runs.offset[0], 2 * GiB);
    assert_int_equal(runs.len[0], 4 * GiB);
    assert_int_equal(bytes, 4 * GiB);
    free(buf);
}

static void test_build_request(void **state)
{
    uint8_t buf[FPB_REQ_SIZE];

    fpb_build_request(buf, 0x01020304, FPB_REQ_F_DROP_CACHE);
    assert_int_equal(buf[0], 0x04);
    assert_int_equal(buf[3], 0x01);
    assert_int_equal(ldl_le_p(buf + 4), FPB_REQ_F_DROP_CACHE);
}

static void test_error_strings(void **state)
{
    int i;

    for (i = 0; i < FPB_ERR__MAX; i++) {
        assert_non_null(fpb_error_str(i));
    }
    assert_string_equal(fpb_error_str(FPB_ERR__MAX), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_short),
        cmocka_unit_test(test_parse_flags),
        cmocka_unit_test(test_parse_page_size),
        cmocka_unit_test(test_parse_nr_bits),
        cmocka_unit_test(test_parse_length),
        cmocka_unit_test(test_parse_overflow),
        cmocka_unit_test(test_runs_merge_across_words),
        cmocka_unit_test(test_runs_empty),
        cmocka_unit_test(test_runs_above_4g_hole),
        cmocka_unit_test(test_runs_last_page_below_hole),
        cmocka_unit_test(test_runs_clear_bits_in_hole_are_fine),
        cmocka_unit_test(test_runs_beyond_ram),
        cmocka_unit_test(test_runs_huge_page_size),
        cmocka_unit_test(test_runs_adjacent_ranges_join),
        cmocka_unit_test(test_runs_max_chunk_all_free),
        cmocka_unit_test(test_build_request),
        cmocka_unit_test(test_error_strings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
