/*
 * Stand-in for QEMU's exec/cpu-common.h: which host memory is guest RAM.
 * Used by the libFuzzer harness of the balloon's queue handler
 * (tests/fuzz/fuzz-balloon-queue.c), which builds
 * hw/virtio/virtio-balloon-fpb.c without QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_CPU_COMMON_H
#define FUZZ_FAKE_CPU_COMMON_H

typedef uint64_t ram_addr_t;
typedef struct RAMBlock RAMBlock;

RAMBlock *qemu_ram_block_from_host(void *ptr, bool round_offset,
                                   ram_addr_t *offset);

#endif
