/*
 * virtio-balloon bulk inflate and deflate (qemu-fph): the driver describes
 * the pages it balloons as ranges, and the device discards each range with
 * one call per RAM block it covers.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef HW_VIRTIO_BALLOON_BULK_H
#define HW_VIRTIO_BALLOON_BULK_H

#include "hw/virtio/bulk-balloon.h"
#include "hw/virtio/virtio.h"

/*
 * Feature bit: next to the free page bitmap's 16, for the same reasons
 * (see virtio-balloon-fpb.h and docs/free-page-hinting.rst).
 */
#define VIRTIO_BALLOON_F_BULK_BALLOON 17

typedef struct VirtIOBalloonBulk {
    /* Counters, also QOM properties of the device */
    uint64_t messages;          /* bulk messages received */
    uint64_t bad_input;         /* ... of them ignored as malformed */
    uint64_t discarded_pages;   /* 4 KiB pages discarded on inflate */
    uint64_t returned_pages;    /* 4 KiB pages deflated */
    uint64_t inflate_us;        /* on the inflate queue, either protocol */
    uint64_t deflate_us;        /* on the deflate queue, either protocol */
    uint32_t bad_reported[BULK_ERR__MAX];
} VirtIOBalloonBulk;

typedef struct VirtIOBalloon VirtIOBalloon;

/*
 * Hooks called by virtio-balloon.c.  handle_output takes the inflate or
 * deflate queue's buffers when the feature is negotiated and returns true;
 * otherwise the stock handler runs and then accounts its time from
 * @start_us (QEMU_CLOCK_REALTIME).  @inhibited: no discard may happen now.
 */
bool virtio_balloon_bulk_handle_output(VirtIOBalloon *s, VirtQueue *vq,
                                       bool inhibited);
void virtio_balloon_bulk_account(VirtIOBalloon *s, VirtQueue *vq,
                                 int64_t start_us);
void virtio_balloon_bulk_instance_init(VirtIOBalloon *s);

#endif
