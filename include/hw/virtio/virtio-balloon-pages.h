/*
 * virtio-balloon ballooned-page bitmap (qemu-fph): which guest pages are
 * in the balloon, so that migration neither reads nor sends them and the
 * destination knows them too.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef HW_VIRTIO_BALLOON_PAGES_H
#define HW_VIRTIO_BALLOON_PAGES_H

#include "migration/free-page-hint.h"

/* Balloon pages are 4 KiB whatever the target's page size. */
#define BALLOON_PAGES_SHIFT 12

typedef struct VirtIOBalloonPages {
    bool enabled;               /* the ballooned-page-bitmap property */
    /* Bit n: the guest page at n << BALLOON_PAGES_SHIFT is discarded. */
    unsigned long *bitmap;
    uint64_t nr_bits;           /* allocated; grows with the highest page */
    uint64_t count;             /* bits set */
    FreePageHintSource hint;    /* its skipped_pages is the counter */
} VirtIOBalloonPages;

typedef struct VirtIOBalloon VirtIOBalloon;

/*
 * The balloon discarded [gpa, gpa + len) of guest RAM on the host: call
 * only after the discard succeeded, so that a set bit always means the
 * host holds nothing there.  Both 4 KiB aligned.
 */
void virtio_balloon_pages_discarded(VirtIOBalloon *s, uint64_t gpa,
                                    uint64_t len);
/* The guest took [gpa, gpa + len) back out of the balloon. */
void virtio_balloon_pages_returned(VirtIOBalloon *s, uint64_t gpa,
                                   uint64_t len);

/* Hooks called by virtio-balloon.c */
void virtio_balloon_pages_realize(VirtIOBalloon *s);
void virtio_balloon_pages_unrealize(VirtIOBalloon *s);
void virtio_balloon_pages_reset(VirtIOBalloon *s);
void virtio_balloon_pages_instance_init(VirtIOBalloon *s);
extern const VMStateDescription vmstate_virtio_balloon_pages;

#endif
