/*
 * Free page bitmap messages of the virtio-balloon device: parsing and
 * validation, independent of the device and of migration.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef HW_VIRTIO_FREE_PAGE_BITMAP_H
#define HW_VIRTIO_FREE_PAGE_BITMAP_H

/*
 * Wire format (all fields little endian); see docs/free-page-hinting.rst.
 *
 * Request, written by the device into a buffer the driver keeps posted:
 *     le32 cmd_id; le32 flags;
 * Chunk, sent by the driver:
 *     le32 cmd_id; le32 flags; le64 first_pfn; le32 page_size; le32 nr_bits;
 *     le64 bitmap[nr_bits / 64];
 * Bit i of the bitmap (bit i % 64 of word i / 64) set means: the page at
 * guest physical address (first_pfn + i) * page_size was free when the
 * driver took its snapshot for cmd_id.
 */
#define FPB_REQ_SIZE            8
#define FPB_CHUNK_HEADER_SIZE   24

/* Request flags */
#define FPB_REQ_F_DROP_CACHE    (1u << 0)
#define FPB_REQ_F_ALL           FPB_REQ_F_DROP_CACHE

/* Chunk flags */
#define FPB_CHUNK_F_LAST        (1u << 0)
#define FPB_CHUNK_F_ALL         FPB_CHUNK_F_LAST

/*
 * 8 Mi bits: a 1 MiB bitmap describing 32 GiB of 4 KiB pages, so a 1 TiB
 * guest needs 32 chunks and no buffer of the driver's is huge.
 */
#define FPB_MAX_CHUNK_BITS      (8u << 20)

typedef struct FpbChunk {
    uint32_t cmd_id;
    uint32_t flags;
    uint64_t first_pfn;
    uint32_t page_size;
    uint32_t nr_bits;
    /* nr_bits / 64 little-endian words, inside the caller's buffer */
    const uint8_t *bitmap;
} FpbChunk;

/* Every way a guest's message can be wrong, one name each */
typedef enum FpbError {
    FPB_OK = 0,
    FPB_ERR_SHORT,          /* shorter than a chunk header */
    FPB_ERR_FLAGS,          /* unknown flag bits */
    FPB_ERR_PAGE_SIZE,      /* not a power of two multiple of the page */
    FPB_ERR_NR_BITS,        /* zero, not a multiple of 64, or too many */
    FPB_ERR_LENGTH,         /* the bitmap is not nr_bits / 8 bytes */
    FPB_ERR_OVERFLOW,       /* the range wraps around 2^64 */
    FPB_ERR_OUTSIDE_RAM,    /* a set bit is not guest RAM */
    FPB_ERR_UNKNOWN_ID,     /* a command id never issued */
    FPB_ERR_AFTER_LAST,     /* a chunk after the last one of its answer */
    FPB_ERR_SLOT,           /* a request buffer too small */
    FPB_ERR_SLOT_NOT_RAM,   /* a request buffer outside guest RAM */
    FPB_ERR_DIRECTION,      /* a buffer both readable and writable */
    FPB_ERR__MAX
} FpbError;

const char *fpb_error_str(FpbError err);

/*
 * Parse and check a chunk's header and length.  @buf holds the whole chunk
 * (header and bitmap), @len its size; @target_page_size is the smallest
 * page size a bit may describe.  On success, @chunk->bitmap points into
 * @buf.
 */
FpbError fpb_parse_chunk(const void *buf, size_t len,
                         uint32_t target_page_size, FpbChunk *chunk);

/* Called for each run of free pages; returning false stops the walk. */
typedef bool FpbRunFunc(uint64_t gpa, uint64_t len, void *opaque);

/*
 * Call @fn for each run of set bits of a parsed chunk, as a guest physical
 * address and length in bytes, in ascending order.  Returns false if @fn
 * stopped the walk.
 */
bool fpb_for_each_free_run(const FpbChunk *chunk, FpbRunFunc *fn,
                           void *opaque);

/*
 * The guest physical range from the first to the end of the last set bit
 * of a parsed chunk; false if no bit is set.
 */
bool fpb_free_span(const FpbChunk *chunk, uint64_t *gpa, uint64_t *len);

/*
 * Is @id one of the last @issued command ids, @last the newest?  Ids count
 * up from 1 and skip 0 when they wrap around.
 */
bool fpb_id_was_issued(uint32_t last, uint64_t issued, uint32_t id);

/* Fill a request message into @buf (FPB_REQ_SIZE bytes), or read one */
void fpb_build_request(void *buf, uint32_t cmd_id, uint32_t flags);
void fpb_parse_request(const void *buf, uint32_t *cmd_id, uint32_t *flags);

/*
 * The driver's side, for tests: fill a chunk header into @buf, whose
 * nr_bits / 8 bytes after FPB_CHUNK_HEADER_SIZE are the bitmap, and set
 * bit @bit of a chunk's bitmap.
 */
void fpb_build_chunk_header(void *buf, uint32_t cmd_id, uint32_t flags,
                            uint64_t first_pfn, uint32_t page_size,
                            uint32_t nr_bits);
void fpb_chunk_set_bit(void *buf, uint32_t bit);

#endif
