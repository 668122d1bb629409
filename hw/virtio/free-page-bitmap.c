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
    [FPB_ERR_OUTSIDE_RAM] = "a free page lies outside guest RAM",
    [FPB_ERR_UNKNOWN_ID] = "command id never issued",
    [FPB_ERR_AFTER_LAST] = "chunk after the last one",
    [FPB_ERR_SLOT] = "request buffer too small",
    [FPB_ERR_SLOT_NOT_RAM] = "request buffer not in guest RAM",
    [FPB_ERR_DIRECTION] = "buffer both readable and writable",
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

void fpb_parse_request(const void *buf, uint32_t *cmd_id, uint32_t *flags)
{
    const uint8_t *p = buf;

    *cmd_id = ldl_le_p(p);
    *flags = ldl_le_p(p + 4);
}

void fpb_build_chunk_header(void *buf, uint32_t cmd_id, uint32_t flags,
                            uint64_t first_pfn, uint32_t page_size,
                            uint32_t nr_bits)
{
    uint8_t *p = buf;

    stl_le_p(p, cmd_id);
    stl_le_p(p + 4, flags);
    stq_le_p(p + 8, first_pfn);
    stl_le_p(p + 16, page_size);
    stl_le_p(p + 20, nr_bits);
}

void fpb_chunk_set_bit(void *buf, uint32_t bit)
{
    uint8_t *bitmap = (uint8_t *)buf + FPB_CHUNK_HEADER_SIZE;

    /* Little-endian 64-bit words: bit i is bit i % 8 of byte i / 8. */
    bitmap[bit / 8] |= 1u << (bit % 8);
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
    /* Not a power of two: 0 too, whatever the target page size says */
    if (!chunk->page_size || chunk->page_size < target_page_size ||
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

bool fpb_for_each_free_run(const FpbChunk *chunk, FpbRunFunc *fn,
                           void *opaque)
{
    uint32_t start = find_next(chunk, 0, true);

    while (start < chunk->nr_bits) {
        uint32_t end = find_next(chunk, start, false);

        if (!fn((chunk->first_pfn + start) * chunk->page_size,
                (uint64_t)(end - start) * chunk->page_size, opaque)) {
            return false;
        }
        start = find_next(chunk, end, true);
    }
    return true;
}

bool fpb_free_span(const FpbChunk *chunk, uint64_t *gpa, uint64_t *len)
{
    uint32_t first = find_next(chunk, 0, true);
    uint32_t word = chunk->nr_bits / 64;
    uint32_t end;

    if (first == chunk->nr_bits) {
        return false;
    }
    while (!bitmap_word(chunk, word - 1)) {
        word--;
    }
    end = (word - 1) * 64 + 64 - clz64(bitmap_word(chunk, word - 1));
    *gpa = (chunk->first_pfn + first) * chunk->page_size;
    *len = (uint64_t)(end - first) * chunk->page_size;
    return true;
}

bool fpb_id_was_issued(uint32_t last, uint64_t issued, uint32_t id)
{
    uint32_t back = last - id;

    if (!id || !issued) {
        return false;
    }
    if (id > last) {
        back--;                 /* the ids skipped 0 in between */
    }
    return back < MIN(issued, UINT32_MAX);
}
