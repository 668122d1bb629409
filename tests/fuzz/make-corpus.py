#!/usr/bin/python3
"""Write the seed corpus of qemu-fph's fuzzers into tests/fuzz/corpus/.

One small file per case: well-formed chunks and one of each class of bad
input, in the input format of each target (see the comment at the top of
tests/fuzz/fuzz-*.c).  Run it again after changing a format; the files are
committed so that a fuzzer run needs nothing but the repository.
"""

import os
import struct

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CORPUS = os.path.join(TOP, 'tests', 'fuzz', 'corpus')

PAGE = 4096
GIB_UNITS = (1 << 30) // PAGE       # RAM table sizes are in 4 KiB units
LAST = 1


def chunk(cmd_id=1, flags=LAST, first_pfn=0, page_size=PAGE, nr_bits=64,
          bits=(), length=None):
    """A chunk as the driver sends it; length cuts or pads the bytes."""
    bitmap = bytearray(max(nr_bits, 0) // 8)
    for b in bits:
        bitmap[b // 8] |= 1 << (b % 8)
    data = struct.pack('<IIQII', cmd_id, flags, first_pfn, page_size,
                       nr_bits) + bytes(bitmap)
    if length is not None:
        data = (data + bytes(max(0, length - len(data))))[:length]
    return data


def ram_map(*ranges):
    """(gap, size, migrates) in 4 KiB units, as fuzz_ram_map() reads them."""
    out = bytes([len(ranges)])
    for gap, size, migrates in ranges:
        out += struct.pack('<QQ', gap, size | (0 if migrates else 1 << 63))
    return out


# q35 with 3 GiB: 2 GiB low, the hole, 1 GiB above 4 GiB, then shared RAM
Q35 = ram_map((0, 2 * GIB_UNITS, True), (2 * GIB_UNITS, GIB_UNITS, True),
              (0, 256, False))
# two NUMA nodes back to back
NUMA = ram_map((0, GIB_UNITS, True), (0, GIB_UNITS, True))


def bitmap_cases():
    top_pfn = (1 << 64) // PAGE - 64
    return {
        'valid-runs-across-words': Q35 + chunk(first_pfn=16,
                                               nr_bits=128,
                                               bits=(1, 62, 63, 64, 65,
                                                     127)),
        'valid-no-bit-set': Q35 + chunk(nr_bits=256),
        'valid-all-free': Q35 + chunk(first_pfn=4096, nr_bits=512,
                                      bits=range(512)),
        'valid-across-numa-nodes': NUMA + chunk(first_pfn=GIB_UNITS - 32,
                                                bits=range(64)),
        'valid-bits-in-hole': Q35 + chunk(first_pfn=2 * GIB_UNITS - 64,
                                          nr_bits=128, bits=(0, 100)),
        'valid-2m-pages': Q35 + chunk(page_size=2 << 20, nr_bits=1024,
                                      bits=(1, 1023)),
        'valid-top-of-address-space': Q35 + chunk(first_pfn=top_pfn,
                                                  bits=(63,)),
        'valid-not-last': Q35 + chunk(flags=0, bits=(5,)),
        'bad-short': chunk()[:10],
        'bad-flags': chunk(flags=2),
        'bad-page-size-small': chunk(page_size=2048),
        'bad-page-size-not-power': chunk(page_size=3 * PAGE),
        'bad-page-size-zero': chunk(page_size=0),
        'bad-nr-bits-zero': chunk(nr_bits=0),
        'bad-nr-bits-65': chunk(nr_bits=65, length=24 + 8),
        'bad-nr-bits-too-many': chunk(nr_bits=(8 << 20) + 64, length=24),
        'bad-length-short': chunk(nr_bits=128)[:-1],
        'bad-length-long': chunk() + b'\0',
        'bad-overflow-pfn': chunk(first_pfn=(1 << 64) - 10),
        'bad-overflow-bytes': chunk(first_pfn=1 << 33, page_size=1 << 31),
    }


# The balloon queue target: a features byte, a RAM table, operations
FEATURES = 0x3b     # stats, free page hint, reporting (offered), bitmap
OP_SLOT, OP_CHUNK, OP_RAW, OP_BIG, OP_KICK, OP_BH, OP_ROUND, OP_SYNC, \
    OP_RESET, OP_FEATURES, OP_LOCK, OP_LOAD, OP_END, OP_SCRIBBLE = range(14)
NO_KICK = 0x40
BUSY = 0x80                     # OP_LOCK's variant: the bitmap is busy


def slot(size=8, mmio=False):
    return bytes([OP_SLOT, size, 2 if mmio else 0])


def q_chunk(last=True, range_idx=0, delta=16, words=2, bits=(),
            shape=0, extra=b'', cmd=0, op=OP_CHUNK):
    """A chunk op: command id choice (0 the last issued, 1 the one before,
    2 the next, 3 the next four bytes), bits set in nr_bits = 64 * words."""
    bitmap = bytearray(8 * words)
    for b in bits:
        bitmap[b // 8] |= 1 << (b % 8)
    how = bytes([cmd & 3]) + (struct.pack('<I', cmd >> 2) if cmd & 3 == 3
                              else b'')
    return (bytes([op]) + how + bytes([shape | (1 if last else 0),
                                       range_idx, 0, delta & 0xff,
                                       words - 1]) +
            bytes(bitmap) + extra + b'\0')


def big_chunk(pattern=0xff, log_bits=17, no_kick=False, longer=0):
    """A chunk of 2^log_bits * 64 bits, all free if @pattern is odd, its
    first and last words @pattern, maybe @longer bytes longer than its
    header says."""
    shape = 1 | (16 if longer else 0)
    return (bytes([OP_BIG | (NO_KICK if no_kick else 0), 0, shape, 0, 0, 0,
                   log_bits, pattern & 1]) + bytes([pattern] * 16) +
            (bytes([longer]) if longer else b'') + b'\0')


def queue_cases():
    start = slot() + bytes([OP_ROUND])
    return {
        'answer-in-one-chunk': start + q_chunk(bits=(0, 1, 70)),
        'answer-in-two-chunks': start + q_chunk(last=False, bits=(3,)) +
        q_chunk(delta=80, bits=(4, 5)),
        'chunk-after-last': start + q_chunk() + q_chunk(bits=(9,)),
        'stale-after-sync': start + bytes([OP_SYNC]) + q_chunk(bits=(1,)),
        'stale-older-id': start + slot() + bytes([OP_ROUND]) +
        q_chunk(cmd=1, bits=(1,)),
        'unknown-id': start + q_chunk(cmd=3 | (0x1234 << 2), bits=(1,)),
        'future-id': start + q_chunk(cmd=2, bits=(1,)),
        'bits-in-hole': slot() + bytes([OP_ROUND]) +
        q_chunk(range_idx=1, delta=-64 & 0xff, bits=(0, 100)),
        'slot-in-mmio': slot(mmio=True) + bytes([OP_ROUND]) + slot(),
        'slot-too-small': slot(size=4) + bytes([OP_ROUND]),
        'slot-replaced': start + slot() + slot(),
        'big-chunks-next-turn': start + big_chunk(no_kick=True) +
        big_chunk(pattern=0x55, no_kick=True) + bytes([OP_KICK, OP_BH]),
        'reset-during-request': start + bytes([OP_RESET]) + q_chunk(),
        'loaded-then-run': start + q_chunk(op=OP_CHUNK | NO_KICK) +
        bytes([OP_LOAD]),
        'ids-wrap': bytes([OP_LOAD | 0x80]) + struct.pack(
            '<IQ', 0xfffffffe, 5) + start + slot() + bytes([OP_ROUND]) +
        slot() + bytes([OP_ROUND]) + q_chunk(cmd=1) + q_chunk(cmd=3),
        'mixed-direction': bytes([OP_RAW | 0x80, 30]) + bytes(30),
        'raw-garbage': bytes([OP_RAW, 10]) + bytes(range(10)),
        'lock-fails': start + bytes([OP_LOCK]) + q_chunk(bits=(1,)),
        # Migration holds its bitmap: the chunk waits, then applies
        'bitmap-busy': start + bytes([OP_LOCK | BUSY]) + q_chunk(bits=(1,)) +
        bytes([OP_KICK, OP_LOCK | BUSY, OP_BH]),
        'bitmap-busy-then-sync': start + bytes([OP_LOCK | BUSY]) +
        q_chunk(last=False, bits=(1,)) + q_chunk(delta=80, bits=(2,)) +
        bytes([OP_SYNC, OP_BH, OP_LOCK | BUSY]),
        'bitmap-busy-then-reset': start + bytes([OP_LOCK | BUSY]) +
        q_chunk(bits=(1,)) + bytes([OP_RESET, OP_LOCK | BUSY, OP_BH]),
        'bad-length': start + q_chunk(shape=16, extra=b'\xff'),
        'bad-page-size': start + q_chunk(shape=4,
                                         extra=struct.pack('<I', 2048)),
        'round-ended-before-slot': bytes([OP_ROUND, OP_SYNC]) + slot(),
        'chunk-too-large': start + big_chunk(longer=8),
        'slot-scribbled': slot() + bytes([OP_SCRIBBLE, OP_ROUND]) +
        q_chunk(bits=(2,)),
    }


# The bulk balloon target: a ram top byte (0: 4 GiB, 9: 2^64 - 4096, 0x80:
# a le64 follows), a mode byte (log2 of bulk_whole_pages()'s page size,
# 0x40: a generated message), then the message
TOP_4G, TOP_ALMOST_ALL = 0, 9
GENERATED = 0x40
GIB = 1 << 30


def bulk(*ranges, msg_type=1, count=None, length=None):
    """A bulk message as the driver sends it; length cuts or pads it."""
    data = struct.pack('<II', msg_type,
                       len(ranges) if count is None else count)
    for gpa, size in ranges:
        data += struct.pack('<QQ', gpa % (1 << 64), size % (1 << 64))
    if length is not None:
        data = (data + bytes(max(0, length - len(data))))[:length]
    return data


def bulk_generated(count, base, stride, size, order=0, delta=0,
                   replace=()):
    """A message of @count ranges (up to 255), range i at base + i *
    stride, in the format of gen_message(); @replace: (index, gpa, len) to
    put instead."""
    return (struct.pack('<BQQQBb', count, base, stride, size, order, delta) +
            b''.join(struct.pack('<IQQ', i, gpa, size)
                     for i, gpa, size in replace))


def bulk_cases():
    top = (1 << 64) - PAGE
    return {
        'valid-sorted-and-merged': bulk((2 * GIB, 4 * PAGE),
                                        (GIB, 1024 * PAGE),
                                        (16 * PAGE, PAGE),
                                        (GIB + 1024 * PAGE, 512 * PAGE)),
        'valid-whole-ram': bulk((0, 4 * GIB)),
        'valid-one-page': bulk((5 * PAGE, PAGE)),
        'bad-short': bulk((0, PAGE))[:7],
        'bad-type-zero': bulk((0, PAGE), msg_type=0),
        'bad-type-two': bulk((0, PAGE), msg_type=2),
        'bad-count-zero': bulk(),
        'bad-count-too-many': bulk((0, PAGE), count=(1 << 16) + 1),
        'bad-length-short': bulk((0, PAGE), (GIB, PAGE))[:-1],
        'bad-length-long': bulk((0, PAGE)) + b'\0',
        'bad-length-header-only': bulk((0, PAGE))[:8],
        'bad-empty': bulk((GIB, PAGE), (2 * GIB, 0)),
        'bad-unaligned-gpa': bulk((GIB, PAGE), (2 * GIB + 512, PAGE)),
        'bad-unaligned-len': bulk((GIB, PAGE), (2 * GIB, PAGE + 1)),
        'bad-overflow': bulk((GIB, PAGE), (-PAGE, 2 * PAGE)),
        'bad-overflow-end-2-64': bulk((GIB, PAGE), (-2 * PAGE, 2 * PAGE)),
        'bad-out-of-range': bulk((GIB, PAGE), (4 * GIB - PAGE, 2 * PAGE)),
        'bad-overlap-same': bulk((GIB, PAGE), (GIB, PAGE)),
        'bad-overlap-inside': bulk((GIB, 8 * PAGE), (GIB + PAGE, PAGE)),
        'bad-overlap-after-merge': bulk((0, 4 * PAGE), (4 * PAGE, 4 * PAGE),
                                        (7 * PAGE, 4 * PAGE)),
        # The first bad range of the message wins, whatever its class
        'bad-first-range-wins': bulk((4 * GIB, PAGE), (GIB, 0)),
        'bad-out-of-range-before-overlap': bulk((GIB, PAGE), (GIB, PAGE),
                                                (8 * GIB, PAGE)),
        'whole-pages-top': bulk((top - 2 * PAGE, 2 * PAGE)),
    }


def write(target, cases):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    for name, data in sorted(cases.items()):
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(data)


def main():
    # Mode byte 0: a 4096-byte target page, walk every run.  A bad chunk
    # needs no RAM table: its table byte is 0 (no ranges).
    cases = {}
    for name, data in bitmap_cases().items():
        if name.startswith('bad-'):
            data = b'\0' + data
        cases[name] = b'\0' + data
    # Target page 0 with page size 0 (the parser divided by zero) and a
    # walk stopped after two runs
    cases['bad-page-size-zero-target-zero'] = bytes([19, 0]) + chunk(
        page_size=0)
    cases['valid-walk-stopped'] = bytes([2 << 5]) + Q35 + chunk(
        bits=(0, 2, 4, 6))
    write('free-page-bitmap', cases)

    cases = {}
    for name, ops in queue_cases().items():
        cases[name] = bytes([FEATURES]) + Q35 + ops
    # The bitmap negotiated without its dependencies; page poisoning on
    cases['features-bitmap-alone'] = bytes([0x10, 0]) + slot() + bytes(
        [OP_ROUND])
    cases['features-page-poison'] = bytes([0x1f]) + Q35 + slot() + bytes(
        [OP_ROUND])
    write('balloon-queue', cases)

    cases = {}
    for name, data in bulk_cases().items():
        cases[name] = bytes([TOP_4G, 12]) + data
    # 2 MiB pages for bulk_whole_pages(), ranges with partial ends
    cases['whole-pages-2m'] = bytes([TOP_4G, 21]) + bulk(
        (PAGE, 3 * (2 << 20)), (GIB + (2 << 20) + PAGE, (2 << 20) - 2 * PAGE))
    # RAM up to the last page below 2^64, and a range ending there
    cases['valid-top-of-address-space'] = bytes([TOP_ALMOST_ALL, 12]) + bulk(
        ((1 << 64) - 3 * PAGE, 2 * PAGE))
    # Any ram top: 4 GiB + 1 byte
    cases['valid-unaligned-top'] = bytes([0x80, 12]) + struct.pack(
        '<Q', 4 * GIB + 1) + bulk((4 * GIB - PAGE, PAGE))
    # Generated messages of 255 ranges: apart and backwards; touching,
    # odd ones first (one range when merged); one bad range deep inside;
    # one overlap deep inside; one byte short
    gen = bytes([TOP_4G, 12 | GENERATED])
    cases['gen-apart-backwards'] = gen + bulk_generated(255, 0, 2 * PAGE,
                                                        PAGE, order=1)
    cases['gen-touching'] = gen + bulk_generated(255, GIB, PAGE, PAGE,
                                                 order=2)
    cases['gen-bad-deep'] = gen + bulk_generated(
        255, 0, 2 * PAGE, PAGE, replace=((200, 512, PAGE),))
    cases['gen-overlap-deep'] = gen + bulk_generated(
        255, 0, 2 * PAGE, PAGE, order=2,
        replace=((250, 100 * 2 * PAGE, PAGE),))
    cases['gen-length-short'] = gen + bulk_generated(255, 0, 2 * PAGE,
                                                     PAGE, delta=-1)
    write('bulk-balloon', cases)


if __name__ == '__main__':
    main()
