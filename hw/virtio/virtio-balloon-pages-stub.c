/*
 * Temporary stand-in for the ballooned-page bitmap (virtio-balloon-pages.c,
 * landing separately): the bulk path already reports to its interface.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "hw/virtio/virtio-balloon-pages.h"

void virtio_balloon_pages_discarded(VirtIOBalloon *s, uint64_t gpa,
                                    uint64_t len)
{
}

void virtio_balloon_pages_returned(VirtIOBalloon *s, uint64_t gpa,
                                   uint64_t len)
{
}
