/*
 * Free page bitmap messages of the virtio-balloon device: parsing and
 * validation, independent of the device and of migration, so the unit
 * tests can run them without QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "hw/virtio/free-page-bitmap.h"

static const char *const fpb_error_names[FPB_ERR__MAX] = {
    [FPB_OK] = "no error",
    [FPB_ERR_SHORT] = "shorter than a chunk header",
    [FPB_ERR_FLAGS] = "unknown flags",
    [FPB_ERR_PAGE_SIZE] = "page size is not a power of two multiple of "
                          "the target page size",
    [FPB_ERR_NR_BITS] = "number of bits is zero, not a multiple of 64 or "
                        "too large",
    [FPB_ERR_LENGTH] = "bitmap length does not match the number of bits",
    [FPB_ERR_OVERFLOW] = "page range overflows the address space",
    [FPB_ERR_OUTSIDE_RAM] = "a free page lies outside guest system RAM",
};

const char *fpb_error_str(FpbError err)
{
    return err < FPB_ERR__MAX ? fpb_error_names[err] : "unknown error";
}

void fpb_build_request(void *buf, uint32_t cmd_id, uint32_t flags)
{
    uint8_t *p = buf;

    stl_le_p(p, cmd_id);
    stl_le_p(p + 4, flags);
}

FpbError fpb_parse_chunk(const void *buf, size_t len,
                         uint32_t target_page_size, FpbChunk *chunk)
{
    const uint8_t *p = buf;
    uint64_t last_pfn;

    if (len < FPB_CHUNK_HEADER_SIZE) {
        return FPB_ERR_SHORT;
    }
    chunk->cmd_id = ldl_le_p(p);
    chunk->flags = ldl_le_p(p + 4);
    chunk->first_pfn = ldq_le_p(p + 8);
    chunk->page_size = ldl_le_p(p + 16);
    chunk->nr_bits = ldl_le_p(p + 20);
    chunk->bitmap = p + FPB_CHUNK_HEADER_SIZE;

    if (chunk->flags & ~FPB_CHUNK_F_ALL) {
        return FPB_ERR_FLAGS;
    }
    if (chunk->page_size < target_page_size ||
        (chunk->page_size & (chunk->page_size - 1))) {
        return FPB_ERR_PAGE_SIZE;
    }
    if (!chunk->nr_bits || chunk->nr_bits % 64 ||
        chunk->nr_bits > FPB_MAX_CHUNK_BITS) {
        return FPB_ERR_NR_BITS;
    }
    if (len - FPB_CHUNK_HEADER_SIZE != chunk->nr_bits / 8) {
        return FPB_ERR_LENGTH;
    }
    /* The byte after the last page must still be addressable. */
    last_pfn = chunk->first_pfn + chunk->nr_bits;
    if (last_pfn < chunk->first_pfn ||
        last_pfn > UINT64_MAX / chunk->page_size) {
        return FPB_ERR_OVERFLOW;
    }
    return FPB_OK;
}

static uint64_t bitmap_word(const FpbChunk *chunk, uint32_t idx)
{
    return ldq_le_p(chunk->bitmap + idx * 8);
}

/*
 * Find the next bit at or after @pos whose value is @set; returns nr_bits
 * when there is none.
 */
static uint32_t find_next(const FpbChunk *chunk, uint32_t pos, bool set)
{
    while (pos < chunk->nr_bits) {
        uint64_t word = bitmap_word(chunk, pos / 64);

        if (!set) {
            word = ~word;
        }
        word &= ~0ULL << (pos % 64);
        if (word) {
            return (pos & ~63u) + ctz64(word);
        }
        pos = (pos & ~63u) + 64;
    }
    return chunk->nr_bits;
}

/* Walk [gpa, gpa + len) through @ranges; false if part of it is outside. */
static bool map_run(uint64_t gpa, uint64_t len,
                    const FpbRamRange *ranges, size_t nr_ranges,
                    FpbRunFunc *fn, void *opaque)
{
    size_t i = 0;

    while (len) {
        const FpbRamRange *r;
        uint64_t piece;

        while (i < nr_ranges && ranges[i].gpa + ranges[i].size <= gpa) {
            i++;
        }
        if (i == nr_ranges || ranges[i].gpa > gpa) {
            return false;
        }
        r = &ranges[i];
        piece = MIN(len, r->gpa + r->size - gpa);
        if (fn) {
            fn(r->offset + (gpa - r->gpa), piece, opaque);
        }
        gpa += piece;
        len -= piece;
    }
    return true;
}

static bool walk_runs(const FpbChunk *chunk,
                      const FpbRamRange *ranges, size_t nr_ranges,
                      FpbRunFunc *fn, void *opaque, uint64_t *free_bytes)
{
    uint32_t start = find_next(chunk, 0, true);
    uint64_t total = 0;

    while (start < chunk->nr_bits) {
        uint32_t end = find_next(chunk, start, false);
        uint64_t gpa = (chunk->first_pfn + start) * chunk->page_size;
        uint64_t len = (uint64_t)(end - start) * chunk->page_size;

        if (!map_run(gpa, len, ranges, nr_ranges, fn, opaque)) {
            return false;
        }
        total += len;
        start = find_next(chunk, end, true);
    }
    if (free_bytes) {
        *free_bytes = total;
    }
    return true;
}

FpbError fpb_for_each_free_run(const FpbChunk *chunk,
                               const FpbRamRange *ranges, size_t nr_ranges,
                               FpbRunFunc *fn, void *opaque,
                               uint64_t *free_bytes)
{
    /* Check every bit before the first callback: all or nothing. */
    if (!walk_runs(chunk, ranges, nr_ranges, NULL, NULL, free_bytes)) {
        return FPB_ERR_OUTSIDE_RAM;
    }
    if (fn) {
        walk_runs(chunk, ranges, nr_ranges, fn, opaque, NULL);
    }
    return FPB_OK;
}
