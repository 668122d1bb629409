/*
 * A sorted table of guest-physical ranges of guest RAM, and the arithmetic
 * of splitting a reported range across them (qemu-fph).  Pure logic, so
 * the unit tests run it without QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef MIGRATION_GUEST_RAM_MAP_H
#define MIGRATION_GUEST_RAM_MAP_H

typedef struct GuestRamRange {
    uint64_t gpa;
    uint64_t size;
    void *block;            /* the RAM block; NULL when it does not migrate */
    uint64_t offset;        /* where gpa sits in the block */
    void *region;           /* the memory region, for its reference */
} GuestRamRange;

/* The range of @map (sorted by gpa, not overlapping) holding @gpa, or NULL */
const GuestRamRange *guest_ram_find(const GuestRamRange *map, size_t n,
                                    uint64_t gpa);

/* Is every byte of [@gpa, @gpa + @len) in a range of @map? */
bool guest_ram_covers(const GuestRamRange *map, size_t n, uint64_t gpa,
                      uint64_t len);

/* Called for each piece of a range that falls in one range of the map */
typedef void GuestRamPieceFunc(const GuestRamRange *r, uint64_t offset,
                               uint64_t len, void *opaque);

/*
 * Split [@gpa, @gpa + @len) at the boundaries of @map and call @fn for
 * each piece inside a range, with the offset in that range's block; parts
 * outside the map are passed over.
 */
void guest_ram_for_each_piece(const GuestRamRange *map, size_t n,
                              uint64_t gpa, uint64_t len,
                              GuestRamPieceFunc *fn, void *opaque);

/*
 * Clear from @dst (a host bitmap, as QEMU's bitmap.h keeps them) the bits
 * [@dst_start, @dst_start + @nbits) whose counterparts in @src, a bitmap
 * of little-endian 64-bit words, bits [@src_start, @src_start + @nbits),
 * are set.  Returns how many bits of @dst were set and are now clear.
 * Word by word: a bitmap of one-page runs costs no more than a full one.
 */
uint64_t guest_ram_clear_bits(unsigned long *dst, uint64_t dst_start,
                              const uint8_t *src, uint64_t src_start,
                              uint64_t nbits);

#endif
