/*
 * libFuzzer target: the bulk inflate and deflate message parser and
 * bulk_whole_pages() (hw/virtio/bulk-balloon.c).  Every result is checked
 * against a plain reference written from the specification
 * (include/hw/virtio/bulk-balloon.h, docs/free-page-hinting.rst), not just
 * for crashes.
 *
 * Input: one byte for the top of guest RAM (bit 7: a le64 follows, else
 * an entry of ram_tops[]), one mode byte (bits 0-5: log2 of the page size
 * for bulk_whole_pages(), bit 6: a generated message, see gen_message()),
 * then the message exactly as a guest sends it.
 * tests/fuzz/make-corpus.py writes the seeds.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "hw/virtio/bulk-balloon.h"
#include "fuzz-util.h"

#define MODE_GENERATED 0x40

typedef unsigned __int128 u128;

/* A range as the message has it, at index @i */
static BulkRange raw_range(const uint8_t *buf, uint32_t i)
{
    const uint8_t *p = buf + BULK_HEADER_SIZE + (size_t)i * BULK_RANGE_SIZE;

    return (BulkRange) { .gpa = ldq_le_p(p), .len = ldq_le_p(p + 8) };
}

static bool same_range(const BulkRange *a, const BulkRange *b)
{
    return a->gpa == b->gpa && a->len == b->len;
}

/* One range on its own, the classes in the header's order */
static BulkError ref_range(const BulkRange *r, uint64_t ram_top)
{
    uint64_t end;

    if (r->len == 0) {
        return BULK_ERR_EMPTY;
    }
    if (r->gpa % BULK_PAGE_SIZE || r->len % BULK_PAGE_SIZE) {
        return BULK_ERR_UNALIGNED;
    }
    /* An end of exactly 2^64 wraps to 0 as well. */
    if (__builtin_add_overflow(r->gpa, r->len, &end)) {
        return BULK_ERR_OVERFLOW;
    }
    return end > ram_top ? BULK_ERR_OUT_OF_RANGE : BULK_OK;
}

/* By address; ties by length, though any order of them would do */
static int ref_cmp(const void *a, const void *b)
{
    const BulkRange *x = a, *y = b;

    if (x->gpa != y->gpa) {
        return x->gpa < y->gpa ? -1 : 1;
    }
    return x->len < y->len ? -1 : x->len > y->len;
}

/*
 * What bulk_parse_header() and then bulk_parse_ranges() must answer.  The
 * header's checks come in the order of the header; the header does not say
 * which bad range wins, the code takes the first in the message, whatever
 * its class, and looks for overlaps only once every range passed.
 * *@first_bad is the index of that first bad range.
 */
static BulkError ref_parse(const uint8_t *buf, size_t len, uint64_t ram_top,
                           uint32_t *first_bad)
{
    uint32_t type, n, i;
    BulkRange *sorted;
    BulkError err;
    uint64_t end = 0;

    if (len < BULK_HEADER_SIZE) {
        return BULK_ERR_SHORT;
    }
    type = ldl_le_p(buf);
    n = ldl_le_p(buf + 4);
    if (type != BULK_TYPE_RANGES) {
        return BULK_ERR_TYPE;
    }
    if (n == 0 || n > BULK_MAX_RANGES) {
        return BULK_ERR_COUNT;
    }
    if ((u128)len != BULK_HEADER_SIZE + (u128)n * BULK_RANGE_SIZE) {
        return BULK_ERR_LENGTH;
    }
    for (i = 0; i < n; i++) {
        BulkRange r = raw_range(buf, i);

        err = ref_range(&r, ram_top);
        if (err != BULK_OK) {
            *first_bad = i;
            return err;
        }
    }
    /*
     * Sorted by address, a range overlaps one before it if it starts
     * before the furthest end so far.
     */
    sorted = malloc(n * sizeof(*sorted));
    for (i = 0; i < n; i++) {
        sorted[i] = raw_range(buf, i);
    }
    qsort(sorted, n, sizeof(*sorted), ref_cmp);
    err = BULK_OK;
    for (i = 0; i < n && err == BULK_OK; i++) {
        if (i && sorted[i].gpa < end) {
            err = BULK_ERR_OVERLAP;
        }
        end = MAX(end, sorted[i].gpa + sorted[i].len);
    }
    free(sorted);
    return err;
}

/* The whole pages of [@offset, @offset + @len), computed in 128 bits */
static bool ref_whole_pages(uint64_t offset, uint64_t len, uint64_t ps,
                            uint64_t *start, uint64_t *size)
{
    u128 end = (u128)offset + len;
    u128 first = ((u128)offset + ps - 1) / ps * ps;
    u128 last = end / ps * ps;

    /* A range past 2^64 is no range: nothing of it is discarded. */
    if (end > (u128)UINT64_MAX + 1 || last <= first) {
        return false;
    }
    *start = first;
    *size = last - first;
    return true;
}

static void check_whole_pages(uint64_t offset, uint64_t len, uint64_t ps)
{
    uint64_t start = 0, size = 0, ref_start = 0, ref_size = 0;
    bool ok = bulk_whole_pages(offset, len, ps, &start, &size);

    FUZZ_CHECK(ok == ref_whole_pages(offset, len, ps, &ref_start,
                                     &ref_size));
    if (ok) {
        FUZZ_CHECK(start == ref_start && size == ref_size);
    }
}

/* The range that bulk_parse_ranges() names on error is at fault for it. */
static void check_bad(const uint8_t *buf, uint32_t n, BulkError err,
                      const BulkRange *bad, uint32_t first_bad)
{
    BulkRange first = raw_range(buf, first_bad);
    uint32_t i, copies = 0, around = 0;

    if (err != BULK_ERR_OVERLAP) {
        /* The first bad range of the message: the one the class is of */
        FUZZ_CHECK(same_range(bad, &first));
        return;
    }
    /* One of the message's ranges that starts inside another one */
    for (i = 0; i < n; i++) {
        BulkRange r = raw_range(buf, i);

        if (same_range(&r, bad)) {
            copies++;
        } else if (r.gpa <= bad->gpa && bad->gpa - r.gpa < r.len) {
            around++;
        }
    }
    FUZZ_CHECK(copies >= 1 && (copies >= 2 || around >= 1));
}

/* The output of an accepted message: exactly its bytes, merged. */
static void check_ranges(const uint8_t *buf, uint32_t n, uint64_t ram_top,
                         const BulkRange *out, uint32_t nr)
{
    uint64_t in_bytes = 0, out_bytes = 0;
    uint32_t i;

    FUZZ_CHECK(nr >= 1 && nr <= n);
    for (i = 0; i < nr; i++) {
        FUZZ_CHECK(out[i].len > 0);
        FUZZ_CHECK(out[i].gpa % BULK_PAGE_SIZE == 0 &&
                   out[i].len % BULK_PAGE_SIZE == 0);
        FUZZ_CHECK(out[i].gpa <= ram_top &&
                   out[i].len <= ram_top - out[i].gpa);
        /* Sorted, apart, and not touching: those would have merged */
        FUZZ_CHECK(i == 0 || out[i].gpa > out[i - 1].gpa + out[i - 1].len);
        out_bytes += out[i].len;
    }
    /*
     * Every input range lies in one output range and they add up to the
     * same bytes: the input ranges do not overlap, nor do the output
     * ones, so the output covers exactly the input's bytes.
     */
    for (i = 0; i < n; i++) {
        BulkRange r = raw_range(buf, i);
        uint32_t lo = 0, hi = nr;

        /* the last output range starting at or below r.gpa */
        while (hi - lo > 1) {
            uint32_t mid = lo + (hi - lo) / 2;

            if (out[mid].gpa <= r.gpa) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        FUZZ_CHECK(out[lo].gpa <= r.gpa &&
                   r.gpa + r.len <= out[lo].gpa + out[lo].len);
        in_bytes += r.len;
    }
    FUZZ_CHECK(in_bytes == out_bytes);
}

/*
 * A message made from a few numbers, for long runs of touching or
 * overlapping ranges that random bytes seldom make: one byte for the
 * number of ranges, le64 base, stride and len of range i at base + i *
 * stride, one byte for the order (0 ascending, 1 descending, 2 odd indices
 * first), one signed byte added to the length, then until the input ends
 * { le32 index, le64 gpa, le64 len } for ranges to replace.  Larger
 * messages (up to BULK_MAX_RANGES) are left to the unit tests: at 20 ms
 * a run, they took most of the fuzzer's time.  Returns the message, *@len
 * its length.
 */
static uint8_t *gen_message(FuzzInput *in, size_t *len)
{
    uint32_t n = fuzz_u8(in), i;
    uint64_t base = fuzz_u64(in), stride = fuzz_u64(in);
    uint64_t rlen = fuzz_u64(in);
    uint8_t order = fuzz_u8(in);
    int8_t delta = (int8_t)fuzz_u8(in);
    size_t full = BULK_HEADER_SIZE + (size_t)n * BULK_RANGE_SIZE;
    uint8_t *buf = calloc(1, full + 128), *msg;

    bulk_build_header(buf, BULK_TYPE_RANGES, n);
    for (i = 0; i < n; i++) {
        uint64_t k = order == 1 ? n - 1 - i :
                     order == 2 ? (i < n / 2 ? 2 * i + 1 : 2 * (i - n / 2)) :
                     i;

        bulk_build_range(buf, i, base + k * stride, rlen);
    }
    while (n && in->left) {
        uint32_t idx = fuzz_u32(in) % n;
        uint64_t gpa = fuzz_u64(in);

        bulk_build_range(buf, idx, gpa, fuzz_u64(in));
    }
    *len = delta < 0 && (size_t)-delta > full ? 0 : full + delta;
    msg = fuzz_dup(buf, *len);
    free(buf);
    return msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t ram_tops[16] = {
        4ULL << 30, 0, 4096, 640 << 10, 2ULL << 30, 5ULL << 30,
        1ULL << 40, 1ULL << 63, UINT64_MAX, UINT64_MAX - 4095,
        (4ULL << 30) + 1, (4ULL << 30) - 1, 1ULL << 52, 1 << 20,
        -(2ULL << 20), 1ULL << 48,
    };
    FuzzInput in = { data, size };
    uint8_t top = fuzz_u8(&in), mode = fuzz_u8(&in);
    uint64_t ram_top = top & 0x80 ? fuzz_u64(&in) : ram_tops[top & 15];
    uint64_t ps = 1ULL << (mode & 63);
    uint32_t first_bad = 0, nr = 0, i, n = 0;
    BulkRange *out = NULL, bad = { 0, 0 };
    BulkHeader hdr;
    BulkError err, ref;
    uint8_t *buf, *rebuilt;
    size_t len;

    if (mode & MODE_GENERATED) {
        buf = gen_message(&in, &len);
    } else {
        len = in.left;
        buf = fuzz_dup(in.p, len);
    }

    /* Every range the message holds, well formed or not */
    for (i = 0; BULK_HEADER_SIZE + ((size_t)i + 1) * BULK_RANGE_SIZE <= len;
         i++) {
        BulkRange r = raw_range(buf, i);

        check_whole_pages(r.gpa, r.len, ps);
    }

    /* As the device calls them */
    ref = ref_parse(buf, len, ram_top, &first_bad);
    err = bulk_parse_header(buf, len, &hdr);
    if (err == BULK_OK) {
        n = hdr.nr_ranges;
        FUZZ_CHECK(hdr.type == ldl_le_p(buf) && n == ldl_le_p(buf + 4));
        out = malloc(n * sizeof(*out));
        err = bulk_parse_ranges(buf, &hdr, ram_top, out, &nr, &bad);
        FUZZ_CHECK(err == ref);
        if (err != BULK_OK) {
            FUZZ_CHECK(ref_range(&bad, ram_top) ==
                       (err == BULK_ERR_OVERLAP ? BULK_OK : err));
            check_bad(buf, n, err, &bad, first_bad);
        }
    }
    FUZZ_CHECK(err == ref);
    FUZZ_CHECK(bulk_error_str(err) != NULL);
    if (err != BULK_OK) {
        free(out);
        free(buf);
        return 0;
    }
    check_ranges(buf, n, ram_top, out, nr);
    for (i = 0; i < nr; i++) {
        check_whole_pages(out[i].gpa, out[i].len, ps);
    }

    /* The driver's side builds the very same bytes. */
    rebuilt = malloc(len);
    bulk_build_header(rebuilt, hdr.type, n);
    for (i = 0; i < n; i++) {
        BulkRange r = raw_range(buf, i);

        bulk_build_range(rebuilt, i, r.gpa, r.len);
    }
    FUZZ_CHECK(memcmp(rebuilt, buf, len) == 0);
    free(rebuilt);
    free(out);
    free(buf);
    return 0;
}
