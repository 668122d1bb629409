/*
 * Bulk inflate and deflate messages of the virtio-balloon device: parsing
 * and validation, independent of the device and of QEMU's memory map, so
 * the unit tests can run them without QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "hw/virtio/bulk-balloon.h"

static const char *const bulk_error_names[BULK_ERR__MAX] = {
    [BULK_OK] = "no error",
    [BULK_ERR_SHORT] = "shorter than a message header",
    [BULK_ERR_TYPE] = "unknown message type",
    [BULK_ERR_COUNT] = "no range or too many ranges",
    [BULK_ERR_LENGTH] = "message length does not match its number of ranges",
    [BULK_ERR_EMPTY] = "a range of no pages",
    [BULK_ERR_UNALIGNED] = "a range not aligned to 4 KiB pages",
    [BULK_ERR_OVERFLOW] = "a range wraps around the address space",
    [BULK_ERR_OUT_OF_RANGE] = "a range beyond the end of guest RAM",
    [BULK_ERR_OVERLAP] = "two ranges overlap",
    [BULK_ERR_NOT_RAM] = "a range outside guest RAM",
    [BULK_ERR_DIRECTION] = "a buffer the device could write to",
};

const char *bulk_error_str(BulkError err)
{
    return err < BULK_ERR__MAX ? bulk_error_names[err] : "unknown error";
}

BulkError bulk_parse_header(const void *buf, size_t len, BulkHeader *hdr)
{
    const uint8_t *p = buf;

    if (len < BULK_HEADER_SIZE) {
        return BULK_ERR_SHORT;
    }
    hdr->type = ldl_le_p(p);
    hdr->nr_ranges = ldl_le_p(p + 4);
    if (hdr->type != BULK_TYPE_RANGES) {
        return BULK_ERR_TYPE;
    }
    if (!hdr->nr_ranges || hdr->nr_ranges > BULK_MAX_RANGES) {
        return BULK_ERR_COUNT;
    }
    /* nr_ranges is bounded above: no overflow on any host */
    if (len != BULK_HEADER_SIZE + (size_t)hdr->nr_ranges * BULK_RANGE_SIZE) {
        return BULK_ERR_LENGTH;
    }
    return BULK_OK;
}

static int bulk_range_cmp(const void *a, const void *b)
{
    const BulkRange *ra = a, *rb = b;

    return ra->gpa < rb->gpa ? -1 : ra->gpa > rb->gpa;
}

/* One range on its own: everything but overlaps. */
static BulkError bulk_check_range(const BulkRange *r, uint64_t ram_top)
{
    if (!r->len) {
        return BULK_ERR_EMPTY;
    }
    if ((r->gpa | r->len) & (BULK_PAGE_SIZE - 1)) {
        return BULK_ERR_UNALIGNED;
    }
    if (r->gpa + r->len < r->gpa) {
        return BULK_ERR_OVERFLOW;
    }
    if (r->gpa + r->len > ram_top) {
        return BULK_ERR_OUT_OF_RANGE;
    }
    return BULK_OK;
}

BulkError bulk_parse_ranges(const void *buf, const BulkHeader *hdr,
                            uint64_t ram_top, BulkRange *ranges,
                            uint32_t *nr, BulkRange *bad)
{
    const uint8_t *p = (const uint8_t *)buf + BULK_HEADER_SIZE;
    uint32_t i, out;
    BulkError err;

    for (i = 0; i < hdr->nr_ranges; i++, p += BULK_RANGE_SIZE) {
        ranges[i].gpa = ldq_le_p(p);
        ranges[i].len = ldq_le_p(p + 8);
        err = bulk_check_range(&ranges[i], ram_top);
        if (err != BULK_OK) {
            *bad = ranges[i];
            return err;
        }
    }
    /*
     * A driver that named a page twice in one message has lost track of
     * its balloon; sorted, an overlap is a range starting inside the
     * previous one.
     */
    qsort(ranges, hdr->nr_ranges, sizeof(*ranges), bulk_range_cmp);
    for (i = 1, out = 0; i < hdr->nr_ranges; i++) {
        BulkRange *last = &ranges[out];

        if (ranges[i].gpa < last->gpa + last->len) {
            *bad = ranges[i];
            return BULK_ERR_OVERLAP;
        }
        if (ranges[i].gpa == last->gpa + last->len) {
            last->len += ranges[i].len;
        } else {
            ranges[++out] = ranges[i];
        }
    }
    *nr = out + 1;
    return BULK_OK;
}

void bulk_build_header(void *buf, uint32_t type, uint32_t nr_ranges)
{
    stl_le_p(buf, type);
    stl_le_p((uint8_t *)buf + 4, nr_ranges);
}

void bulk_build_range(void *buf, uint32_t i, uint64_t gpa, uint64_t len)
{
    uint8_t *p = (uint8_t *)buf + BULK_HEADER_SIZE + i * BULK_RANGE_SIZE;

    stq_le_p(p, gpa);
    stq_le_p(p + 8, len);
}

bool bulk_whole_pages(uint64_t offset, uint64_t len, uint64_t page_size,
                      uint64_t *start, uint64_t *size)
{
    /* The bytes before the first page boundary at or above @offset */
    uint64_t head = -offset & (page_size - 1);
    uint64_t whole;

    /*
     * Sizes, not ends: a range may end at exactly 2^64, where its end
     * would read as 0.  One that ends beyond wraps and has no pages.
     */
    if (len <= head || len - 1 > UINT64_MAX - offset) {
        return false;
    }
    whole = (len - head) & ~(page_size - 1);
    if (!whole) {
        return false;
    }
    *start = offset + head;
    *size = whole;
    return true;
}
