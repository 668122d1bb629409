/*
 * Stand-in for QEMU's qemu/host-utils.h: the bit helpers the pure-logic
 * files use.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FAKE_QEMU_HOST_UTILS_H
#define FAKE_QEMU_HOST_UTILS_H

static inline int ctz64(uint64_t val)
{
    return val ? __builtin_ctzll(val) : 64;
}

static inline int clz64(uint64_t val)
{
    return val ? __builtin_clzll(val) : 64;
}

static inline int ctpop64(uint64_t val)
{
    return __builtin_popcountll(val);
}

#endif
