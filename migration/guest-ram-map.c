/*
 * A sorted table of guest-physical ranges of guest RAM (qemu-fph).
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "guest-ram-map.h"

const GuestRamRange *guest_ram_find(const GuestRamRange *map, size_t n,
                                    uint64_t gpa)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (gpa < map[mid].gpa) {
            hi = mid;
        } else if (gpa - map[mid].gpa >= map[mid].size) {
            lo = mid + 1;
        } else {
            return &map[mid];
        }
    }
    return NULL;
}

/* The first range that ends after @gpa, or NULL */
static const GuestRamRange *next_range(const GuestRamRange *map, size_t n,
                                       uint64_t gpa)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (gpa - map[mid].gpa < map[mid].size || gpa < map[mid].gpa) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo < n ? &map[lo] : NULL;
}

bool guest_ram_covers(const GuestRamRange *map, size_t n, uint64_t gpa,
                      uint64_t len)
{
    while (len) {
        const GuestRamRange *r = guest_ram_find(map, n, gpa);
        uint64_t piece;

        if (!r) {
            return false;
        }
        piece = MIN(len, r->size - (gpa - r->gpa));
        gpa += piece;
        len -= piece;
    }
    return true;
}

void guest_ram_for_each_piece(const GuestRamRange *map, size_t n,
                              uint64_t gpa, uint64_t len,
                              GuestRamPieceFunc *fn, void *opaque)
{
    uint64_t end = gpa + len;
    const GuestRamRange *r = next_range(map, n, gpa);

    for (; r && r < map + n && r->gpa < end; r++) {
        uint64_t from = MAX(gpa, r->gpa);
        uint64_t to = MIN(end, r->gpa + r->size);

        fn(r, r->offset + (from - r->gpa), to - from, opaque);
    }
}

/* @n (at most 64) bits of @src from bit @pos, reading no word past them */
static uint64_t le_bits(const uint8_t *src, uint64_t pos, unsigned int n)
{
    unsigned int shift = pos % 64;
    uint64_t bits = ldq_le_p(src + pos / 64 * 8) >> shift;

    if (shift && shift + n > 64) {
        bits |= ldq_le_p(src + pos / 64 * 8 + 8) << (64 - shift);
    }
    return n == 64 ? bits : bits & ((1ULL << n) - 1);
}

uint64_t guest_ram_clear_bits(unsigned long *dst, uint64_t dst_start,
                              const uint8_t *src, uint64_t src_start,
                              uint64_t nbits)
{
    const unsigned int word_bits = sizeof(unsigned long) * 8;
    uint64_t cleared = 0;

    while (nbits) {
        unsigned long *word = dst + dst_start / word_bits;
        unsigned int bit = dst_start % word_bits;
        unsigned int n = MIN(nbits, (uint64_t)word_bits - bit);
        unsigned long mask = (unsigned long)le_bits(src, src_start, n) << bit;

        cleared += ctpop64(*word & mask);
        *word &= ~mask;
        dst_start += n;
        src_start += n;
        nbits -= n;
    }
    return cleared;
}
