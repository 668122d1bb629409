/*
 * libFuzzer target: the free page bitmap chunk parser, the run walker and
 * the free span (hw/virtio/free-page-bitmap.c), and the splitting of the
 * runs over a guest RAM table (migration/guest-ram-map.c).  Every result
 * is checked against a plain reference, not just for crashes.
 *
 * Input: one mode byte (bits 0-4: the target page size, bits 5-7: stop
 * the run walk after that many runs, 0 never), a guest RAM table (see
 * fuzz_ram_map()), then the chunk exactly as a guest would send it.
 * tests/fuzz/make-corpus.py writes the seeds.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "hw/virtio/free-page-bitmap.h"
#include "fuzz-util.h"

/* What fpb_parse_chunk() must answer, written from the specification. */
static FpbError ref_parse(const uint8_t *buf, size_t len, uint32_t tps)
{
    uint64_t first_pfn, last_pfn, end;
    uint32_t page_size, nr_bits;

    if (len < FPB_CHUNK_HEADER_SIZE) {
        return FPB_ERR_SHORT;
    }
    if (ldl_le_p(buf + 4) & ~FPB_CHUNK_F_ALL) {
        return FPB_ERR_FLAGS;
    }
    first_pfn = ldq_le_p(buf + 8);
    page_size = ldl_le_p(buf + 16);
    nr_bits = ldl_le_p(buf + 20);
    if (page_size == 0 || (page_size & (page_size - 1)) ||
        page_size < tps) {
        return FPB_ERR_PAGE_SIZE;
    }
    if (nr_bits == 0 || nr_bits % 64 || nr_bits > FPB_MAX_CHUNK_BITS) {
        return FPB_ERR_NR_BITS;
    }
    if (len != FPB_CHUNK_HEADER_SIZE + (size_t)nr_bits / 8) {
        return FPB_ERR_LENGTH;
    }
    if (__builtin_add_overflow(first_pfn, nr_bits, &last_pfn) ||
        __builtin_mul_overflow(last_pfn, page_size, &end)) {
        return FPB_ERR_OVERFLOW;
    }
    return FPB_OK;
}

static bool bit_is_set(const uint8_t *bitmap, uint32_t bit)
{
    return bitmap[bit / 8] & (1u << (bit % 8));
}

typedef struct Walk {
    const FpbChunk *chunk;
    const FuzzRamMap *map;
    uint8_t *seen;          /* the bitmap rebuilt from the runs */
    uint64_t start;         /* of the chunk's range, in bytes */
    uint64_t end;
    uint64_t next;          /* where the next run may start at the least */
    uint64_t bytes;
    unsigned int runs;
    unsigned int stop_after;
} Walk;

typedef struct Pieces {
    const FuzzRamMap *map;
    uint64_t gpa, len;      /* the range being split */
    uint64_t next;          /* where the next piece may start at the least */
    uint64_t bytes;
    unsigned int n;
} Pieces;

static void check_piece(const GuestRamRange *r, uint64_t offset,
                        uint64_t len, void *opaque)
{
    Pieces *p = opaque;
    uint64_t gpa;

    /* A piece lies in one range of the table, in order, inside the run. */
    FUZZ_CHECK(r >= p->map->r && r < p->map->r + p->map->n);
    FUZZ_CHECK(len > 0);
    FUZZ_CHECK(offset >= r->offset);
    FUZZ_CHECK(offset - r->offset <= r->size &&
               len <= r->size - (offset - r->offset));
    gpa = r->gpa + (offset - r->offset);
    FUZZ_CHECK(gpa >= p->next);
    FUZZ_CHECK(gpa >= p->gpa && len <= p->len - (gpa - p->gpa));
    p->next = gpa + len;
    p->bytes += len;
    p->n++;
}

/* Split [@gpa, @gpa + @len) over the table and check every piece. */
static void check_split(const FuzzRamMap *map, uint64_t gpa, uint64_t len)
{
    Pieces p = { .map = map, .gpa = gpa, .len = len, .next = gpa };
    uint64_t covered = fuzz_ram_covered(map, gpa, len);
    const GuestRamRange *r;
    size_t i;

    guest_ram_for_each_piece(map->r, map->n, gpa, len, check_piece, &p);
    FUZZ_CHECK(p.bytes == covered);
    FUZZ_CHECK(guest_ram_covers(map->r, map->n, gpa, len) ==
               (covered == len));

    /* The first and the last byte are where a linear search says. */
    r = NULL;
    for (i = 0; i < map->n; i++) {
        if (gpa >= map->r[i].gpa && gpa - map->r[i].gpa < map->r[i].size) {
            r = &map->r[i];
        }
    }
    FUZZ_CHECK(guest_ram_find(map->r, map->n, gpa) == r);
    r = NULL;
    for (i = 0; i < map->n; i++) {
        if (gpa + len - 1 >= map->r[i].gpa &&
            gpa + len - 1 - map->r[i].gpa < map->r[i].size) {
            r = &map->r[i];
        }
    }
    FUZZ_CHECK(guest_ram_find(map->r, map->n, gpa + len - 1) == r);
}

static bool check_run(uint64_t gpa, uint64_t len, void *opaque)
{
    Walk *w = opaque;
    const FpbChunk *c = w->chunk;
    uint64_t bit, nr;

    /* Ascending, apart (runs are maximal), inside the chunk, whole pages */
    FUZZ_CHECK(gpa >= w->next);
    FUZZ_CHECK(gpa >= w->start && gpa < w->end);
    FUZZ_CHECK(len > 0 && len <= w->end - gpa);
    FUZZ_CHECK(gpa % c->page_size == 0 && len % c->page_size == 0);
    bit = (gpa - w->start) / c->page_size;
    nr = len / c->page_size;
    /* Maximal: the bits just outside the run are clear. */
    FUZZ_CHECK(bit == 0 || !bit_is_set(c->bitmap, bit - 1));
    FUZZ_CHECK(bit + nr == c->nr_bits || !bit_is_set(c->bitmap, bit + nr));
    for (; nr; nr--, bit++) {
        w->seen[bit / 8] |= 1u << (bit % 8);
    }
    w->next = gpa + len + c->page_size;
    w->bytes += len;
    w->runs++;
    check_split(w->map, gpa, len);
    return w->runs != w->stop_after;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t target_pages[32] = {
        4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096,
        1, 2, 512, 1024, 2048, 8192, 16384, 65536,
        1u << 21, 1u << 30, 1u << 31, 0, 3, 4095, 4097, 6144,
        4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096,
    };
    FuzzInput in = { data, size };
    FuzzRamMap map;
    uint8_t mode = fuzz_u8(&in);
    uint32_t tps = target_pages[mode & 31];
    const uint8_t *buf;
    uint8_t *copy, *rebuilt;
    size_t len;
    FpbChunk chunk;
    FpbError err;
    Walk w = { .map = &map, .stop_after = mode >> 5 };
    uint64_t popcount = 0, span_gpa, span_len;
    bool done, has_span;
    uint32_t i, first = UINT32_MAX, last = 0;

    fuzz_ram_map(&in, &map);
    len = in.left;
    copy = fuzz_dup(in.p, len);
    buf = copy;

    err = fpb_parse_chunk(buf, len, tps, &chunk);
    FUZZ_CHECK(err == ref_parse(buf, len, tps));
    FUZZ_CHECK(fpb_error_str(err) != NULL);
    if (err != FPB_OK) {
        free(copy);
        return 0;
    }
    FUZZ_CHECK(chunk.cmd_id == ldl_le_p(buf) &&
               chunk.flags == ldl_le_p(buf + 4) &&
               chunk.first_pfn == ldq_le_p(buf + 8) &&
               chunk.page_size == ldl_le_p(buf + 16) &&
               chunk.nr_bits == ldl_le_p(buf + 20) &&
               chunk.bitmap == buf + FPB_CHUNK_HEADER_SIZE);

    /* The driver's side builds the very same bytes. */
    rebuilt = calloc(1, len);
    fpb_build_chunk_header(rebuilt, chunk.cmd_id, chunk.flags,
                           chunk.first_pfn, chunk.page_size, chunk.nr_bits);
    for (i = 0; i < chunk.nr_bits; i++) {
        if (bit_is_set(chunk.bitmap, i)) {
            fpb_chunk_set_bit(rebuilt, i);
            popcount++;
            first = MIN(first, i);
            last = i;
        }
    }
    FUZZ_CHECK(memcmp(rebuilt, buf, len) == 0);

    /* The runs are exactly the set bits. */
    w.chunk = &chunk;
    w.start = chunk.first_pfn * chunk.page_size;
    w.end = (chunk.first_pfn + chunk.nr_bits) * chunk.page_size;
    w.next = w.start;
    w.seen = calloc(1, chunk.nr_bits / 8);
    done = fpb_for_each_free_run(&chunk, check_run, &w);
    if (w.stop_after && w.runs == w.stop_after) {
        FUZZ_CHECK(!done);
    } else {
        FUZZ_CHECK(done);
        FUZZ_CHECK(w.bytes == popcount * chunk.page_size);
        FUZZ_CHECK(memcmp(w.seen, chunk.bitmap, chunk.nr_bits / 8) == 0);
    }

    /* The span goes from the first set bit to the end of the last. */
    has_span = fpb_free_span(&chunk, &span_gpa, &span_len);
    FUZZ_CHECK(has_span == (popcount != 0));
    if (has_span) {
        FUZZ_CHECK(span_gpa == (chunk.first_pfn + first) * chunk.page_size);
        FUZZ_CHECK(span_len == (uint64_t)(last + 1 - first) *
                               chunk.page_size);
        check_split(&map, span_gpa, span_len);
    }
    free(w.seen);
    free(rebuilt);
    free(copy);
    return 0;
}
