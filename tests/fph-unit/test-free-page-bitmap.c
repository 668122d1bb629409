/*
 * Unit tests for the free page bitmap message parser and run walker.
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

typedef struct Runs {
    uint64_t gpa[16];
    uint64_t len[16];
    int n;
    int stop_after;             /* stop the walk after this many runs */
} Runs;

static bool record_run(uint64_t gpa, uint64_t len, void *opaque)
{
    Runs *runs = opaque;

    assert_true(runs->n < 16);
    runs->gpa[runs->n] = gpa;
    runs->len[runs->n] = len;
    runs->n++;
    return runs->n != runs->stop_after;
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
    fpb_build_chunk_header(buf, cmd_id, flags, first_pfn, page_size,
                           nr_bits);
    for (i = 0; i < nr_set; i++) {
        fpb_chunk_set_bit(buf, set[i]);
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

/*
 * Found by the fuzzer (docs/fuzzing.rst, finding 1): with a target page
 * size of 0, a page size of 0 passed as a power of two, and the overflow
 * check divided by it.
 */
static void test_parse_page_size_zero(void **state)
{
    FpbChunk chunk;
    size_t len;
    uint8_t *buf = make_chunk(&len, 1, 0, 0, 0, 64, NULL, 0);

    assert_int_equal(fpb_parse_chunk(buf, len, 0, &chunk),
                     FPB_ERR_PAGE_SIZE);
    assert_int_equal(fpb_parse_chunk(buf, len, 1, &chunk),
                     FPB_ERR_PAGE_SIZE);
    free(buf);
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
        { UINT64_MAX / PAGE - 64, PAGE, FPB_OK },  /* ends just below 2^64 */
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

/* The runs of a chunk at @first_pfn with the listed bits set */
static bool runs_of(uint64_t first_pfn, uint32_t page_size,
                    uint32_t nr_bits, const uint32_t *set, int nr_set,
                    Runs *runs)
{
    FpbChunk chunk;
    size_t len;
    bool done;
    uint8_t *buf = make_chunk(&len, 1, 0, first_pfn, page_size, nr_bits,
                              set, nr_set);

    assert_int_equal(fpb_parse_chunk(buf, len, PAGE, &chunk), FPB_OK);
    done = fpb_for_each_free_run(&chunk, record_run, runs);
    free(buf);
    return done;
}

static void test_runs_merge_across_words(void **state)
{
    static const uint32_t set[] = { 1, 62, 63, 64, 65, 127 };
    Runs runs = { 0 };

    assert_true(runs_of(16, PAGE, 128, set, 6, &runs));
    assert_int_equal(runs.n, 3);
    assert_int_equal(runs.gpa[0], 17 * PAGE);
    assert_int_equal(runs.len[0], PAGE);
    assert_int_equal(runs.gpa[1], (16 + 62) * PAGE);
    assert_int_equal(runs.len[1], 4 * PAGE);
    assert_int_equal(runs.gpa[2], (16 + 127) * PAGE);
    assert_int_equal(runs.len[2], PAGE);
}

static void test_runs_empty(void **state)
{
    Runs runs = { 0 };

    assert_true(runs_of(0, PAGE, 256, NULL, 0, &runs));
    assert_int_equal(runs.n, 0);
}

static void test_runs_first_and_last_bit(void **state)
{
    static const uint32_t set[] = { 0, 255 };
    Runs runs = { 0 };

    assert_true(runs_of(1000, PAGE, 256, set, 2, &runs));
    assert_int_equal(runs.n, 2);
    assert_int_equal(runs.gpa[0], 1000 * PAGE);
    assert_int_equal(runs.gpa[1], (1000 + 255) * PAGE);
    assert_int_equal(runs.len[1], PAGE);
}

static void test_runs_stop(void **state)
{
    static const uint32_t set[] = { 0, 2, 4 };
    Runs runs = { .stop_after = 2 };

    assert_false(runs_of(0, PAGE, 64, set, 3, &runs));
    assert_int_equal(runs.n, 2);
}

static void test_runs_huge_page_size(void **state)
{
    /* 2 MiB per bit */
    static const uint32_t set[] = { 1, 1023 };
    Runs runs = { 0 };

    assert_true(runs_of(0, 2u << 20, 1024, set, 2, &runs));
    assert_int_equal(runs.n, 2);
    assert_int_equal(runs.gpa[0], 2u << 20);
    assert_int_equal(runs.len[1], 2u << 20);
    assert_int_equal(runs.gpa[1], 2 * GiB - (2u << 20));
}

static void test_runs_max_chunk_all_free(void **state)
{
    FpbChunk chunk;
    size_t len = FPB_CHUNK_HEADER_SIZE + FPB_MAX_CHUNK_BITS / 8;
    uint8_t *buf = calloc(1, len);
    Runs runs = { 0 };

    fpb_build_chunk_header(buf, 1, 0, (4 * GiB) / PAGE, PAGE,
                           FPB_MAX_CHUNK_BITS);
    memset(buf + FPB_CHUNK_HEADER_SIZE, 0xff, FPB_MAX_CHUNK_BITS / 8);
    assert_int_equal(fpb_parse_chunk(buf, len, PAGE, &chunk), FPB_OK);
    /* 32 GiB of free pages in one run */
    assert_true(fpb_for_each_free_run(&chunk, record_run, &runs));
    assert_int_equal(runs.n, 1);
    assert_int_equal(runs.gpa[0], 4 * GiB);
    assert_int_equal(runs.len[0], 32 * GiB);
    free(buf);
}

static void test_free_span(void **state)
{
    static const uint32_t set[] = { 3, 64, 130 };
    FpbChunk chunk;
    size_t len;
    uint64_t gpa, span;
    uint8_t *buf = make_chunk(&len, 1, 0, 100, PAGE, 256, set, 3);

    assert_int_equal(fpb_parse_chunk(buf, len, PAGE, &chunk), FPB_OK);
    assert_true(fpb_free_span(&chunk, &gpa, &span));
    assert_int_equal(gpa, 103 * PAGE);
    assert_int_equal(span, 128 * PAGE);
    free(buf);

    buf = make_chunk(&len, 1, 0, 0, PAGE, 128, NULL, 0);
    assert_int_equal(fpb_parse_chunk(buf, len, PAGE, &chunk), FPB_OK);
    assert_false(fpb_free_span(&chunk, &gpa, &span));
    /* The very last bit of the bitmap */
    fpb_chunk_set_bit(buf, 127);
    assert_true(fpb_free_span(&chunk, &gpa, &span));
    assert_int_equal(gpa, 127 * PAGE);
    assert_int_equal(span, PAGE);
    free(buf);
}

static void test_id_was_issued(void **state)
{
    /* Nothing issued yet; 0 is never an id. */
    assert_false(fpb_id_was_issued(0, 0, 1));
    assert_false(fpb_id_was_issued(5, 5, 0));
    /* Ids 1 to 5 */
    assert_true(fpb_id_was_issued(5, 5, 1));
    assert_true(fpb_id_was_issued(5, 5, 5));
    assert_false(fpb_id_was_issued(5, 5, 6));
    /* Ten ids across the wrap: 0xfffffff9 to 0xffffffff, then 1 to 3 */
    assert_true(fpb_id_was_issued(3, 10, 0xfffffff9));
    assert_true(fpb_id_was_issued(3, 10, 0xffffffff));
    assert_false(fpb_id_was_issued(3, 10, 0xfffffff8));
    assert_false(fpb_id_was_issued(3, 10, 4));
    /* Every id ever issued */
    assert_true(fpb_id_was_issued(3, 1ULL << 40, 4));
}

static void test_build_request(void **state)
{
    uint32_t cmd_id, flags;
    uint8_t buf[FPB_REQ_SIZE];

    fpb_build_request(buf, 0x01020304, FPB_REQ_F_DROP_CACHE);
    assert_int_equal(buf[0], 0x04);
    assert_int_equal(buf[3], 0x01);
    assert_int_equal(ldl_le_p(buf + 4), FPB_REQ_F_DROP_CACHE);
    fpb_parse_request(buf, &cmd_id, &flags);
    assert_int_equal(cmd_id, 0x01020304);
    assert_int_equal(flags, FPB_REQ_F_DROP_CACHE);
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
        cmocka_unit_test(test_parse_page_size_zero),
        cmocka_unit_test(test_parse_nr_bits),
        cmocka_unit_test(test_parse_length),
        cmocka_unit_test(test_parse_overflow),
        cmocka_unit_test(test_runs_merge_across_words),
        cmocka_unit_test(test_runs_empty),
        cmocka_unit_test(test_runs_first_and_last_bit),
        cmocka_unit_test(test_runs_stop),
        cmocka_unit_test(test_runs_huge_page_size),
        cmocka_unit_test(test_runs_max_chunk_all_free),
        cmocka_unit_test(test_free_span),
        cmocka_unit_test(test_id_was_issued),
        cmocka_unit_test(test_build_request),
        cmocka_unit_test(test_error_strings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
