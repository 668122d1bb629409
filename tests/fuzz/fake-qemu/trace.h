/*
 * Stand-in for the device's trace events (patches/0007): they trace nothing
 * here. Used by the libFuzzer harness of the balloon's queue handler
 * (tests/fuzz/fuzz-balloon-queue.c), which builds
 * hw/virtio/virtio-balloon-fpb.c without QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_TRACE_H
#define FUZZ_FAKE_TRACE_H

static inline void trace_virtio_balloon_fpb_request(uint32_t cmd_id,
                                                    uint64_t round,
                                                    uint32_t flags)
{
}

static inline void trace_virtio_balloon_fpb_chunk(uint32_t cmd_id,
                                                  uint64_t first_pfn,
                                                  uint32_t nr_bits,
                                                  uint64_t free_bytes)
{
}

static inline void trace_virtio_balloon_fpb_answered(uint32_t cmd_id,
                                                     uint64_t latency_us)
{
}

static inline void trace_virtio_balloon_fpb_stale(uint32_t cmd_id,
                                                  uint32_t current)
{
}

static inline void trace_virtio_balloon_fpb_bad_input(const char *what,
                                                      uint32_t cmd_id)
{
}

#endif
