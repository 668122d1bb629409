/*
 * Which pages of guest RAM the host proves hold no data (qemu-fph), so
 * that migration can skip them without reading them: a ballooned page
 * the guest has not touched since QEMU discarded it.  Only system calls,
 * no QEMU state, so the unit tests run it on memory of their own.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef MIGRATION_HOST_MEM_HOLES_H
#define MIGRATION_HOST_MEM_HOLES_H

/* How a RAM block's memory is provided on the host */
typedef struct HostMem {
    uint8_t *host;          /* where it is mapped */
    int fd;                 /* its file, or -1 for anonymous memory */
    bool shared;            /* mapped MAP_SHARED */
    size_t page_size;       /* the host page size of the mapping */
} HostMem;

/* Pages one call looks at, at most: one read of the page map */
#define HOST_MEM_HOLES_MAX 512

/*
 * Set bit i of @holes for each page i of [@offset, @offset + @npages
 * pages) of @m that holds no data.  @holes has @npages bits, cleared by
 * the caller, laid out as free page bitmaps are (little-endian 64-bit
 * words: bit i is bit i % 8 of byte i / 8).  No data means:
 *  - anonymous private memory: neither present nor swapped out, per
 *    /proc/self/pagemap;
 *  - memory shared with a regular file of tmpfs (memfd, /dev/shm): a
 *    hole of the file, per SEEK_DATA.  The file offset is the offset in
 *    the block, as QEMU 7.2 maps it.
 * Nothing else is looked at: a private mapping of a file (its holes may
 * hide a private copy), a disk file system (a hole may be under a page
 * cached for a read), a device (it may not answer SEEK_DATA).
 * Returns false, with some holes perhaps unmarked, when it cannot tell;
 * a marked hole is always one.
 */
bool host_mem_find_holes(const HostMem *m, uint64_t offset, uint64_t npages,
                         uint8_t *holes);

#endif
