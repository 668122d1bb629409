/*
 * Helpers shared by qemu-fph's libFuzzer targets: reading the fuzzer's
 * input, a guest RAM table decoded from it, and the checks that abort the
 * run when an invariant breaks.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FPH_FUZZ_UTIL_H
#define FPH_FUZZ_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include "qemu/bswap.h"
#include "guest-ram-map.h"

/* libFuzzer calls it for each input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort (libFuzzer saves the input) when an invariant does not hold. */
#define FUZZ_CHECK(cond)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,    \
                    __LINE__, #cond);                                     \
            abort();                                                      \
        }                                                                 \
    } while (0)

/* The fuzzer's input, read front to back; zeros once it runs out. */
typedef struct FuzzInput {
    const uint8_t *p;
    size_t left;
} FuzzInput;

static inline void fuzz_take(FuzzInput *in, void *dst, size_t n)
{
    size_t have = MIN(n, in->left);

    memcpy(dst, in->p, have);
    memset((uint8_t *)dst + have, 0, n - have);
    in->p += have;
    in->left -= have;
}

static inline uint8_t fuzz_u8(FuzzInput *in)
{
    uint8_t v;

    fuzz_take(in, &v, 1);
    return v;
}

static inline uint32_t fuzz_u32(FuzzInput *in)
{
    uint8_t b[4];

    fuzz_take(in, b, sizeof(b));
    return ldl_le_p(b);
}

static inline uint64_t fuzz_u64(FuzzInput *in)
{
    uint8_t b[8];

    fuzz_take(in, b, sizeof(b));
    return ldq_le_p(b);
}

/*
 * @len bytes of @p in a block of their own size, so that AddressSanitizer
 * catches a read past them (the fuzzer's own buffer may be larger)
 */
static inline uint8_t *fuzz_dup(const void *p, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);

    memcpy(copy, p, len);
    return copy;
}

#define FUZZ_MAX_RANGES 7
#define FUZZ_RAM_UNIT   4096ULL

/* A table of guest RAM as migration/free-page-hint.c snapshots it. */
typedef struct FuzzRamMap {
    GuestRamRange r[FUZZ_MAX_RANGES];
    size_t n;
    int blocks[FUZZ_MAX_RANGES];    /* what r[i].block points to */
} FuzzRamMap;

/*
 * One byte, the number of ranges (0 to 7), then two le64 per range: the
 * gap after the previous range and the size, in 4 KiB units.  Ranges are
 * sorted, do not overlap, are never empty and end below 2^64, as the
 * memory map's are.  A range whose size has bit 63 set stands for RAM that
 * does not migrate (block NULL).  Decoding stops at the first range that
 * would not fit.
 */
static inline void fuzz_ram_map(FuzzInput *in, FuzzRamMap *map)
{
    unsigned int want = fuzz_u8(in) % (FUZZ_MAX_RANGES + 1);
    uint64_t end = 0;
    unsigned int i;

    map->n = 0;
    for (i = 0; i < want; i++) {
        uint64_t gap = fuzz_u64(in), size = fuzz_u64(in);
        bool shared = size >> 63;
        uint64_t gpa;
        GuestRamRange *r = &map->r[map->n];

        size &= ~(1ULL << 63);
        if (!size || gap > (UINT64_MAX - end) / FUZZ_RAM_UNIT ||
            size > (UINT64_MAX - end - gap * FUZZ_RAM_UNIT) /
                   FUZZ_RAM_UNIT) {
            break;
        }
        gpa = end + gap * FUZZ_RAM_UNIT;
        *r = (GuestRamRange) {
            .gpa = gpa,
            .size = size * FUZZ_RAM_UNIT,
            .block = shared ? NULL : &map->blocks[map->n],
            .offset = (i & 1) * FUZZ_RAM_UNIT * 3,
        };
        end = r->gpa + r->size;
        map->n++;
    }
}

/* How many bytes of [@gpa, @gpa + @len) the table covers, range by range */
static inline uint64_t fuzz_ram_covered(const FuzzRamMap *map, uint64_t gpa,
                                        uint64_t len)
{
    uint64_t covered = 0;
    size_t i;

    for (i = 0; i < map->n; i++) {
        uint64_t from = MAX(gpa, map->r[i].gpa);
        uint64_t to = MIN(gpa + len, map->r[i].gpa + map->r[i].size);

        if (from < to) {
            covered += to - from;
        }
    }
    return covered;
}

#endif
