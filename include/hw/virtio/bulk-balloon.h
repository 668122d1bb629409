/*
 * Bulk inflate and deflate messages of the virtio-balloon device: parsing
 * and validation, independent of the device and of QEMU's memory map.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef HW_VIRTIO_BULK_BALLOON_H
#define HW_VIRTIO_BULK_BALLOON_H

/*
 * Wire format (all fields little endian); see docs/free-page-hinting.rst.
 * With VIRTIO_BALLOON_F_BULK_BALLOON, each buffer on the inflate and the
 * deflate queue is one message:
 *     le32 type; le32 nr_ranges;
 *     { le64 gpa; le64 len; } ranges[nr_ranges];
 * Each range is guest physical memory in bytes, both fields multiples of
 * BULK_PAGE_SIZE.
 */
#define BULK_HEADER_SIZE        8
#define BULK_RANGE_SIZE         16

/* Message types; 0 and the others are reserved. */
#define BULK_TYPE_RANGES        1

/* Balloon pages are 4 KiB whatever the target's page size. */
#define BULK_PAGE_SIZE          4096u

/*
 * 65536 ranges: a message of 1 MiB at most.  A driver that allocates
 * 4 MiB blocks describes 256 GiB in one message.
 */
#define BULK_MAX_RANGES         (1u << 16)

typedef struct BulkRange {
    uint64_t gpa;
    uint64_t len;
} BulkRange;

typedef struct BulkHeader {
    uint32_t type;
    uint32_t nr_ranges;
} BulkHeader;

/* Every way a guest's message can be wrong, one name each */
typedef enum BulkError {
    BULK_OK = 0,
    BULK_ERR_SHORT,         /* shorter than the header */
    BULK_ERR_TYPE,          /* not a known message type */
    BULK_ERR_COUNT,         /* no range, or more than BULK_MAX_RANGES */
    BULK_ERR_LENGTH,        /* the buffer is not exactly the ranges */
    BULK_ERR_EMPTY,         /* a range of no bytes */
    BULK_ERR_UNALIGNED,     /* address or length not a balloon page multiple */
    BULK_ERR_OVERFLOW,      /* a range wraps around 2^64 */
    BULK_ERR_OUT_OF_RANGE,  /* a range ends above the top of guest RAM */
    BULK_ERR_OVERLAP,       /* two ranges of the message overlap */
    BULK_ERR_NOT_RAM,       /* a range covers something else than RAM */
    BULK_ERR_DIRECTION,     /* a buffer the device could write */
    BULK_ERR__MAX
} BulkError;

const char *bulk_error_str(BulkError err);

/*
 * Check a message's header and length: @len is the size of the whole
 * message at @buf.
 */
BulkError bulk_parse_header(const void *buf, size_t len, BulkHeader *hdr);

/*
 * Check every range of a message whose header passed and fill @ranges
 * (room for hdr->nr_ranges) with them sorted by address, adjacent ones
 * merged; *@nr is how many are left.  @ram_top is the end of the highest
 * guest RAM.  On error, *@bad is the range at fault (for an overlap, the
 * one that starts inside the other) and *@nr is left alone.  Ranges are
 * checked one by one in message order, so the first bad range decides the
 * error; overlaps are looked for only once every range passed.
 */
BulkError bulk_parse_ranges(const void *buf, const BulkHeader *hdr,
                            uint64_t ram_top, BulkRange *ranges,
                            uint32_t *nr, BulkRange *bad);

/*
 * The driver's side, for tests: the header into @buf, then range @i
 * (@buf has BULK_HEADER_SIZE + nr_ranges * BULK_RANGE_SIZE bytes).
 */
void bulk_build_header(void *buf, uint32_t type, uint32_t nr_ranges);
void bulk_build_range(void *buf, uint32_t i, uint64_t gpa, uint64_t len);

/*
 * The part of [@offset, @offset + @len) made of whole pages of
 * @page_size (a power of two, pages starting at 0): false if none, or if
 * the range ends beyond 2^64 (it may end at exactly 2^64).
 */
bool bulk_whole_pages(uint64_t offset, uint64_t len, uint64_t page_size,
                      uint64_t *start, uint64_t *size);

#endif
