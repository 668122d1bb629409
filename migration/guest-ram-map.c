/*
 * A sorted table of guest-physical ranges of guest RAM (qemu-fph).
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
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
