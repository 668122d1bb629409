/*
 * Stand-in for QEMU's hw/virtio/virtio-balloon.h as patches/0008 leaves it:
 * the balloon with its free page bitmap state. Used by the libFuzzer
 * harness of the balloon's queue handler (tests/fuzz/fuzz-balloon-queue.c),
 * which builds hw/virtio/virtio-balloon-fpb.c without QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_VIRTIO_BALLOON_H
#define FUZZ_FAKE_VIRTIO_BALLOON_H

#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-balloon-fpb.h"

#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON    4
#define VIRTIO_BALLOON_F_REPORTING      5

typedef struct VirtIOBalloon {
    VirtIODevice parent_obj;
    VirtIOBalloonFpb fpb;
} VirtIOBalloon;

#define VIRTIO_BALLOON(obj) ((VirtIOBalloon *)(obj))

#endif
