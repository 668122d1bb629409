/*
 * Unit tests for the bulk inflate and deflate message parser.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "hw/virtio/bulk-balloon.h"

#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>

#define PAGE 4096ULL
#define GiB (1ULL << 30)
#define RAM_TOP (4 * GiB)

typedef struct Msg {
    uint8_t buf[BULK_HEADER_SIZE + 8 * BULK_RANGE_SIZE];
    size_t len;
    uint32_t n;
} Msg;

static void msg_init(Msg *m, uint32_t n)
{
    memset(m, 0, sizeof(*m));
    m->n = n;
    m->len = BULK_HEADER_SIZE + n * BULK_RANGE_SIZE;
    bulk_build_header(m->buf, BULK_TYPE_RANGES, n);
}

/* Parse a whole message as the device does; the ranges into @out. */
static BulkError parse(const Msg *m, BulkRange *out, uint32_t *nr,
                       BulkRange *bad)
{
    BulkHeader hdr;
    BulkError err = bulk_parse_header(m->buf, m->len, &hdr);

    if (err != BULK_OK) {
        return err;
    }
    assert_int_equal(hdr.nr_ranges, m->n);
    return bulk_parse_ranges(m->buf, &hdr, RAM_TOP, out, nr, bad);
}

static void test_sorted_and_merged(void **state)
{
    BulkRange out[8], bad;
    uint32_t nr;
    Msg m;

    msg_init(&m, 4);
    /* Out of order; the second and fourth touch end to start. */
    bulk_build_range(m.buf, 0, 2 * GiB, 4 * PAGE);
    bulk_build_range(m.buf, 1, 1 * GiB, 1024 * PAGE);
    bulk_build_range(m.buf, 2, 16 * PAGE, PAGE);
    bulk_build_range(m.buf, 3, 1 * GiB + 1024 * PAGE, 512 * PAGE);
    assert_int_equal(parse(&m, out, &nr, &bad), BULK_OK);
    assert_int_equal(nr, 3);
    assert_int_equal(out[0].gpa, 16 * PAGE);
    assert_int_equal(out[0].len, PAGE);
    assert_int_equal(out[1].gpa, 1 * GiB);
    assert_int_equal(out[1].len, 1536 * PAGE);
    assert_int_equal(out[2].gpa, 2 * GiB);
    assert_int_equal(out[2].len, 4 * PAGE);
}

static void test_whole_ram(void **state)
{
    BulkRange out[1], bad;
    uint32_t nr;
    Msg m;

    msg_init(&m, 1);
    bulk_build_range(m.buf, 0, 0, RAM_TOP);
    assert_int_equal(parse(&m, out, &nr, &bad), BULK_OK);
    assert_int_equal(nr, 1);
    assert_int_equal(out[0].len, RAM_TOP);
}

static void test_short(void **state)
{
    BulkHeader hdr;
    Msg m;

    msg_init(&m, 1);
    assert_int_equal(bulk_parse_header(m.buf, 0, &hdr), BULK_ERR_SHORT);
    assert_int_equal(bulk_parse_header(m.buf, BULK_HEADER_SIZE - 1, &hdr),
                     BULK_ERR_SHORT);
}

static void test_type(void **state)
{
    BulkHeader hdr;
    Msg m;

    msg_init(&m, 1);
    bulk_build_header(m.buf, 0, 1);
    assert_int_equal(bulk_parse_header(m.buf, m.len, &hdr), BULK_ERR_TYPE);
    bulk_build_header(m.buf, 2, 1);
    assert_int_equal(bulk_parse_header(m.buf, m.len, &hdr), BULK_ERR_TYPE);
}

static void test_count(void **state)
{
    BulkHeader hdr;
    Msg m;

    msg_init(&m, 0);
    assert_int_equal(bulk_parse_header(m.buf, m.len, &hdr), BULK_ERR_COUNT);
    /* A count the length could not hold is a count error first. */
    bulk_build_header(m.buf, BULK_TYPE_RANGES, BULK_MAX_RANGES + 1);
    assert_int_equal(bulk_parse_header(m.buf, m.len, &hdr), BULK_ERR_COUNT);
    bulk_build_header(m.buf, BULK_TYPE_RANGES, UINT32_MAX);
    assert_int_equal(bulk_parse_header(m.buf, m.len, &hdr), BULK_ERR_COUNT);
}

static void test_length(void **state)
{
    BulkHeader hdr;
    Msg m;

    msg_init(&m, 2);
    assert_int_equal(bulk_parse_header(m.buf, m.len, &hdr), BULK_OK);
    assert_int_equal(bulk_parse_header(m.buf, m.len - 1, &hdr),
                     BULK_ERR_LENGTH);
    assert_int_equal(bulk_parse_header(m.buf, m.len + 1, &hdr),
                     BULK_ERR_LENGTH);
    assert_int_equal(bulk_parse_header(m.buf, m.len + BULK_RANGE_SIZE, &hdr),
                     BULK_ERR_LENGTH);
    assert_int_equal(bulk_parse_header(m.buf, BULK_HEADER_SIZE, &hdr),
                     BULK_ERR_LENGTH);
}

/*
 * A message of a good range at 1 GiB and a bad one fails with @want and
 * names the range at @bad_gpa.
 */
static void expect_bad_at(uint64_t gpa, uint64_t len, BulkError want,
                          uint64_t bad_gpa)
{
    BulkRange out[2], bad = { 0, 0 };
    uint32_t nr = 0;
    Msg m;

    msg_init(&m, 2);
    bulk_build_range(m.buf, 0, 1 * GiB, PAGE);
    bulk_build_range(m.buf, 1, gpa, len);
    assert_int_equal(parse(&m, out, &nr, &bad), want);
    assert_int_equal(bad.gpa, bad_gpa);
    assert_int_equal(nr, 0);
}

static void expect_bad(uint64_t gpa, uint64_t len, BulkError want)
{
    expect_bad_at(gpa, len, want, gpa);
}

static void test_empty(void **state)
{
    expect_bad(2 * GiB, 0, BULK_ERR_EMPTY);
}

static void test_unaligned(void **state)
{
    expect_bad(2 * GiB + 512, PAGE, BULK_ERR_UNALIGNED);
    expect_bad(2 * GiB, PAGE + 1, BULK_ERR_UNALIGNED);
    expect_bad(1, 1, BULK_ERR_UNALIGNED);
}

static void test_overflow(void **state)
{
    expect_bad(UINT64_MAX - PAGE + 1, 2 * PAGE, BULK_ERR_OVERFLOW);
    expect_bad(PAGE, UINT64_MAX - PAGE + 1, BULK_ERR_OVERFLOW);
}

static void test_out_of_range(void **state)
{
    expect_bad(RAM_TOP, PAGE, BULK_ERR_OUT_OF_RANGE);
    expect_bad(RAM_TOP - PAGE, 2 * PAGE, BULK_ERR_OUT_OF_RANGE);
    expect_bad(1ULL << 63, PAGE, BULK_ERR_OUT_OF_RANGE);
}

static void test_overlap(void **state)
{
    /*
     * The same range again, one starting inside the good one, and two
     * that the good one starts inside.
     */
    expect_bad(1 * GiB, PAGE, BULK_ERR_OVERLAP);
    expect_bad_at(1 * GiB, 2 * PAGE, BULK_ERR_OVERLAP, 1 * GiB);
    expect_bad_at(1 * GiB - PAGE, 2 * PAGE, BULK_ERR_OVERLAP, 1 * GiB);
    expect_bad_at(1 * GiB - 4 * PAGE, 8 * PAGE, BULK_ERR_OVERLAP, 1 * GiB);
}

static void test_overlap_after_merge(void **state)
{
    BulkRange out[3], bad;
    uint32_t nr;
    Msg m;

    /* The third starts inside the merge of the first two. */
    msg_init(&m, 3);
    bulk_build_range(m.buf, 0, 0, 4 * PAGE);
    bulk_build_range(m.buf, 1, 4 * PAGE, 4 * PAGE);
    bulk_build_range(m.buf, 2, 7 * PAGE, 4 * PAGE);
    assert_int_equal(parse(&m, out, &nr, &bad), BULK_ERR_OVERLAP);
    assert_int_equal(bad.gpa, 7 * PAGE);
}

static void test_max_ranges(void **state)
{
    size_t len = BULK_HEADER_SIZE + (size_t)BULK_MAX_RANGES * BULK_RANGE_SIZE;
    uint8_t *buf = calloc(1, len);
    BulkRange *out = calloc(BULK_MAX_RANGES, sizeof(*out));
    BulkRange bad;
    BulkHeader hdr;
    uint32_t i, nr;

    /* Every other page, backwards: nothing merges. */
    bulk_build_header(buf, BULK_TYPE_RANGES, BULK_MAX_RANGES);
    for (i = 0; i < BULK_MAX_RANGES; i++) {
        bulk_build_range(buf, i, (BULK_MAX_RANGES - 1 - i) * 2 * PAGE, PAGE);
    }
    assert_int_equal(bulk_parse_header(buf, len, &hdr), BULK_OK);
    assert_int_equal(bulk_parse_ranges(buf, &hdr, RAM_TOP, out, &nr, &bad),
                     BULK_OK);
    assert_int_equal(nr, BULK_MAX_RANGES);
    for (i = 0; i < nr; i++) {
        assert_int_equal(out[i].gpa, i * 2 * PAGE);
    }
    free(out);
    free(buf);
}

static void test_whole_pages(void **state)
{
    uint64_t start, size;
    const uint64_t huge = 2 << 20;

    assert_true(bulk_whole_pages(0, huge, huge, &start, &size));
    assert_int_equal(start, 0);
    assert_int_equal(size, huge);
    assert_true(bulk_whole_pages(PAGE, 3 * huge, huge, &start, &size));
    assert_int_equal(start, huge);
    assert_int_equal(size, 2 * huge);
    assert_false(bulk_whole_pages(PAGE, huge, huge, &start, &size));
    assert_false(bulk_whole_pages(huge + PAGE, huge - 2 * PAGE, huge,
                                  &start, &size));
    assert_true(bulk_whole_pages(5 * PAGE, PAGE, PAGE, &start, &size));
    assert_int_equal(start, 5 * PAGE);
    assert_int_equal(size, PAGE);
}

/*
 * A range that ends at exactly 2^64 has whole pages too (the fuzzer found
 * them lost: the end read as 0); one that ends beyond has none.
 */
static void test_whole_pages_top(void **state)
{
    uint64_t start, size;
    const uint64_t huge = 2 << 20;

    assert_true(bulk_whole_pages(-2 * PAGE, 2 * PAGE, PAGE, &start, &size));
    assert_int_equal(start, -2 * PAGE);
    assert_int_equal(size, 2 * PAGE);
    assert_true(bulk_whole_pages(-huge - PAGE, huge + PAGE, huge,
                                 &start, &size));
    assert_int_equal(start, -huge);
    assert_int_equal(size, huge);
    assert_false(bulk_whole_pages(-2 * PAGE, 3 * PAGE, PAGE, &start, &size));
    assert_false(bulk_whole_pages(-PAGE + 1, PAGE - 1, PAGE, &start, &size));
}

static void test_error_strings(void **state)
{
    int i;

    for (i = 0; i < BULK_ERR__MAX; i++) {
        assert_non_null(bulk_error_str(i));
        assert_string_not_equal(bulk_error_str(i), "unknown error");
    }
    assert_string_equal(bulk_error_str(BULK_ERR__MAX), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted_and_merged),
        cmocka_unit_test(test_whole_ram),
        cmocka_unit_test(test_short),
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_unaligned),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_overlap_after_merge),
        cmocka_unit_test(test_max_ranges),
        cmocka_unit_test(test_whole_pages),
        cmocka_unit_test(test_whole_pages_top),
        cmocka_unit_test(test_error_strings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
