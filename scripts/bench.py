#!/usr/bin/python3
"""The benchmark: every scenario and mode for guests of 1 and 4 GiB, and
idle guests of 16 and 64 GiB, each at two links (tcp loopback at
max-bandwidth 10 GiB/s, and 1250 MB/s, a 10 GbE link), 3 repetitions each,
medians.  Writes docs/benchmark.md (tables), docs/benchmark.json (every
run) and docs/benchmark-*.png (MB sent per scenario and mode) from its own
results.  Bytes sent are the primary figure (they are stable); times are
medians at the stated link.

--scenarios runs some scenarios only (e.g. ballooned): their runs replace
the same size, link, scenario and mode's in docs/benchmark.json, and
docs/benchmark.md is written again from all the runs there.
"""

import argparse
import dataclasses
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo                                       # noqa: E402
import guestrun                                   # noqa: E402
import report                                     # noqa: E402
from guestrun import progress                     # noqa: E402

DOCS = os.path.join(guestrun.TOP, 'docs')

LOOPBACK_MIB = 10240
# 1250 MB/s: what a 10 GbE link carries
TEN_GBE_MIB = round(1250e6 / (1 << 20), 2)
# Big guests hold what the 4 GiB guest holds (a sixteenth of it), so that
# they differ from it in size only.
BIG_HOLD_MIB = 256
# The big guests are compared with this one
REF_MIB = 4096
BIG_SCENARIO = 'idle'


def link_name(bandwidth_mib):
    if abs(bandwidth_mib - TEN_GBE_MIB) < 1:
        return 'max-bandwidth 1250 MB/s (a 10 GbE link)'
    return 'max-bandwidth %g MiB/s' % bandwidth_mib


def link_short(bandwidth_mib):
    return '10GbE' if link_tag(bandwidth_mib) else 'loopback'


def link_tag(bandwidth_mib):
    """The link in file names: '' for loopback, as before there were two."""
    return '-10gbe' if abs(bandwidth_mib - TEN_GBE_MIB) < 1 else ''


def kept_section(title, end):
    """A section of docs/benchmark.md that this does not write, from its
    @title to its @end marker (or to the end), which this keeps."""
    try:
        text = open(os.path.join(DOCS, 'benchmark.md')).read()
    except OSError:
        return ''
    start = text.find(title)
    if start < 0:
        return ''
    stop = text.find(end, start)
    return text[start:] if stop < 0 else text[start:stop + len(end)] + '\n'


def inflate_section():
    """The section scripts/inflate-speed.py wrote."""
    return kept_section('## Inflate speed', '<!-- end of inflate speed -->')


def time_section():
    """The section "Where the time goes", written by hand from
    scripts/profile-migration.py's runs, not this script's."""
    return kept_section('## Where the time goes',
                        '<!-- end of where the time goes -->')


def host_mem_mib():
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemTotal:'):
                return int(line.split()[1]) // 1024
    return 0


def guest_cost(rows):
    """The guest driver's own report: time to build the bitmap and the
    longest zone lock hold, per guest size."""
    out = []
    for r in rows:
        m = re.search(r'(\d+) free pages, (\d+) chunks, (\d+) us, longest '
                      r'zone lock (\d+) us', r.guest_bitmap_report or '')
        if m and r.mode == 'bitmap':
            out.append((r.guest_mib, r.scenario, int(m.group(1)),
                        int(m.group(2)), int(m.group(3)), int(m.group(4))))
    return out


BALLOONED_TEXT = """The guest writes 3/4 of its RAM (less its live data)
and frees it, then the host sets the balloon to a quarter of guest RAM (QMP
`balloon`; "RAM MiB" is what `query-balloon` reached) and migrates.  "cpu
ms" is the CPU time of the source's migration thread (utime + stime, read
in ns from its schedstat), "pages scanned" the pages it read (ram `normal`
+ `duplicate`), "balloon skipped" the ballooned pages it skipped unread
(`balloon-skipped-pages`; '-' when QEMU has no ballooned-page bitmap).
`fph-off` is qemu-fph's guest kernel with hints off, `off-nobpb` is `off`
with `ballooned-page-bitmap=off`: migration reads the balloon's pages, as
stock QEMU does.

"Never ballooned" is the same guest kernel in the same mode, with the same
RAM size and the same live data, migrated idle (the `unballooned` runs):
what a ballooned guest should cost to migrate, if its ballooned pages are
as cheap as pages the guest never touched.  A guest
booted with only the RAM left after ballooning would not do: its kernel's
page array and tables are a quarter the size (16 MiB against 4 MiB of
`struct page` for 1 GiB), so the comparison would measure the guest size,
not the balloon.  That reference is loose on CPU for the hints-off and
stock modes, which read every untouched page of the never-ballooned guest
(a zero check each); "pages scanned" shows what the migration thread read
either way.  The goal: ballooned pages are never read, and bytes and CPU
time are within 1.1x of the never-ballooned run ("x MB, x cpu").
"""


PAGECACHE_TEXT = """In the pagecache scenario the guest reads a disk of random
data as large as a quarter of its RAM (a raw image, read-only on both hosts)
into its page cache, keeps it open and idles.  The cache is clean, so it is
not live data: the limit is the idle guest's.  The scenario runs in its own
modes: `bitmap-dropcache` is `bitmap` with `free-page-hint-drop-cache` on,
whose guest drops its clean page cache before it builds the bitmap, so that
the cache is skipped as free, not sent.  The destination reads the whole
disk again and checks its MD5.

"""


def load_runs(path):
    """The runs and meta of an earlier docs/benchmark.json, if any."""
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError):
        return [], {}
    runs = [guestrun.RunResult.from_dict(r) for r in d['runs']]
    for r in runs:
        # The big guests ran on sparse RAM before runs said so
        if is_big(r) and r.sparse_ram is None:
            r.sparse_ram = True
    return runs, d['meta']


def run_key(r):
    return (r.guest_mib, round(r.bandwidth_mib), r.scenario, r.mode,
            bool(r.sparse_ram))


def merge_runs(old, new):
    """@old's runs less those of any (size, link, scenario, mode, sparse
    or not) that @new has, then @new's."""
    fresh = {run_key(r) for r in new}
    return [r for r in old if run_key(r) not in fresh] + new


def ratio(a, b):
    return a / b if a and b else None


def fmt(x, spec='%.2f'):
    return '-' if x is None else spec % x


TIME_TEXT = """Each scenario's bitmap runs (`bitmap`, and `bitmap-dropcache`
where it runs) against its hints-off run (`off`) at the same size and
link, medians: the bytes ratio, the time ratio, and the time ratio over
the bytes ratio, which the goal wants at most 1.3 (time follows bytes);
downtimes side by side.
"""


# The modes the time-against-bytes table holds against hints off
FAST_MODES = ('bitmap', 'bitmap-dropcache')


def is_big_ref(r):
    """A run of the big section's own 4 GiB guest"""
    return r.sparse_ram and not is_big(r)


def time_vs_bytes(medians):
    """The time-against-bytes table: each bitmap row against hints off."""
    by = {(m.guest_mib, round(m.bandwidth_mib), m.scenario, m.mode): m
          for m in medians if not is_big_ref(m)}
    order = {sc: i for i, sc in enumerate(demo.SCENARIOS)}
    rows = []
    for key in sorted(by, key=lambda k: (k[0], -k[1], order.get(k[2], 99),
                                         k[3])):
        mem, bw, sc, mode = key
        m, off = by[key], by.get((mem, bw, sc, 'off'))
        if mode not in FAST_MODES or not off or sc == 'unballooned':
            continue
        b, t = ratio(m.mb_sent, off.mb_sent), ratio(m.total_ms, off.total_ms)
        rows.append([mem, link_short(m.bandwidth_mib), sc, mode,
                     fmt(b), fmt(t), fmt(ratio(t, b)),
                     '%s / %s' % (off.downtime_ms, m.downtime_ms),
                     'yes' if t and b and t / b <= 1.3 else 'no'])
    return report.text_table(['guest MiB', 'link', 'scenario', 'mode',
                              'x MB', 'x time', 'time/bytes',
                              'downtime off / mode', 'goal'], rows)


BIG_TEXT = """Idle guests of 16 and 64 GiB on `memory-backend-ram` with
`reserve=off` (a plain `-m 64G` exceeds this host's overcommit heuristic),
each holding %d MiB of live data, as the 4 GiB guest here does, so that
they differ from it in size only.  That guest runs on the same backend, its
runs between theirs (for each repetition: 4 GiB, 16 GiB, 64 GiB, each in
every mode), because this host's cost of filling fresh memory drifts over
minutes.  "RSS MiB" is the source QEMU's resident
memory before migrating, "peak MiB" its peak while migrating (VmHWM, reset
through `clear_refs` when the migration starts); the goal is a peak under
2x the RSS, and for qemu-fph (`bitmap`, and `unbacked` for a guest without
our driver) a 64 GiB guest within 1.2x the bytes and 1.5x the time of the
4 GiB one.  A bigger guest's kernel holds more live data of its own, though:
its page array (`struct page`, 64 bytes for each 4 KiB page, 1/64 of RAM:
1 GiB at 64 GiB) is written at boot and must be sent.  "x 4 GiB" gives the
bytes ratio as sent and less that growth, the time ratio, and the source
migration thread's CPU time per MB sent against the 4 GiB guest's.  Times here
follow what the destination fills more than what the source reads: each
first touch of a fresh 2 MiB of guest RAM on the destination costs a huge
page fault, which on this host (itself a VM) varies several fold between
runs ("Where the time goes"); bytes are the stable figure.  The `stock`
rows' peak is the guest's doing: Debian's kernel allocates the free pages
it hints, and with `init_on_alloc` (its default) zeroes each one, which
makes the host back them while the guest hints.
""" % BIG_HOLD_MIB


def memmap_mb(guest_mib):
    """The guest kernel's struct page array, MB: 64 bytes a 4 KiB page."""
    return guest_mib / 64 * 1.048576

BIG_COLUMNS = ['guest MiB', 'mode', 'total ms', 'downtime ms', 'cpu ms',
               'MB sent', 'skipped free/unbacked/zero', 'RSS MiB',
               'peak MiB', 'x 4 GiB: MB, less memmap, time, cpu/MB',
               'data check']


def big_table(rows, refs):
    """@rows: idle runs of big guests and the 4 GiB reference, each
    against @refs[mode], the 4 GiB guest's."""
    body = []
    for r in sorted(rows, key=lambda r: (r.guest_mib, r.mode)):
        c = report.table_row(r)
        ref = refs.get(r.mode)
        body.append([r.guest_mib, r.mode, r.total_ms, r.downtime_ms,
                     c['cpu_ms'], r.mb_sent, c['skipped'],
                     report.dash(r.src_rss_mib),
                     report.dash(r.src_peak_rss_mib),
                     '-' if ref is None or ref is r else
                     '%s, %s, %s, %s' % (
                         fmt(ratio(r.mb_sent, ref.mb_sent)),
                         fmt(ratio(r.mb_sent - memmap_mb(r.guest_mib) +
                                   memmap_mb(ref.guest_mib), ref.mb_sent)),
                         fmt(ratio(r.total_ms, ref.total_ms)),
                         fmt(ratio(ratio(r.migration_cpu_ms, r.mb_sent),
                                   ratio(ref.migration_cpu_ms,
                                         ref.mb_sent)))),
                     c['check']])
    return report.text_table(BIG_COLUMNS, body)


def is_big(r):
    return r.guest_mib > 8192


def big_section(medians):
    """The big guests' medians and their 4 GiB references: the sparse
    4 GiB runs of their own section, or the main section's before those
    existed."""
    idle = [m for m in medians if m.scenario == BIG_SCENARIO]
    refs = [m for m in idle if m.guest_mib == REF_MIB and m.sparse_ram]
    if not refs:
        refs = [m for m in idle if m.guest_mib == REF_MIB]
    return refs + [m for m in idle if is_big(m)]


def repetitions(runs):
    """How many runs each row's median is of, per guest size, in words."""
    count = {}
    for r in runs:
        key = (r.guest_mib, r.bandwidth_mib, r.scenario, r.mode,
               bool(r.sparse_ram))
        count[key] = count.get(key, 0) + 1
    per_size = {}
    for (mem, *_), n in count.items():
        per_size.setdefault(mem, set()).add(n)
    return ', '.join('%s at %d MiB' % (
        '-'.join(map(str, sorted({min(n), max(n)}))), mem)
        for mem, n in sorted(per_size.items()))


def write_markdown(path, runs, meta):
    """docs/benchmark.md from all the runs: the main scenarios' tables per
    link and size, time against bytes, the big guests, the ballooned
    section, the guest's cost of building bitmaps."""
    medians = report.median_rows(runs)
    links = sorted({r.bandwidth_mib for r in runs}, reverse=True)
    sizes = sorted({r.guest_mib for r in runs if not is_big(r)})
    kept = inflate_section()
    profile = time_section()
    with open(path, 'w') as f:
        f.write('# Benchmark results\n\nWritten by `make bench` '
                '(scripts/bench.py) from its own runs: %s, tcp loopback, '
                '%s; each row the median of runs: %s.  MB sent is the primary '
                'figure; "limit" is what the same guest kernel sends idle '
                'after boot with hints off, plus the live data; "cpu ms" the '
                'CPU time of the source\'s migration thread (\'-\' in runs '
                'from before it was measured).\n\n' %
                (meta['accel'], ' and '.join(link_name(b) for b in links),
                 repetitions(runs)))
        # BENCH_SCENARIOS runs some scenarios again, so the sections may
        # come from different days.
        dates = meta.get('run_dates', {})
        if dates:
            f.write('Runs of %s.\n\n' % '; '.join(
                '%s: %s' % (', '.join(sorted(
                    sc for sc in dates if dates[sc] == d)), d)
                for d in sorted(set(dates.values()))))
        if any(m.scenario in guestrun.PAGECACHE for m in medians):
            f.write(PAGECACHE_TEXT)
        for bw in links:
            for mem in sizes:
                main = [m for m in medians if m.guest_mib == mem and
                        m.bandwidth_mib == bw and not is_big_ref(m) and
                        m.scenario not in
                        guestrun.BALLOONED + ('unballooned',)]
                if main:
                    f.write('## %d MiB guest, %s\n\n```\n%s\n```\n\n'
                            '![](benchmark-%d%s.png)\n\n' %
                            (mem, link_name(bw), report.format_table(main),
                             mem, link_tag(bw)))
        f.write('## Time against bytes\n\n%s\n```\n%s\n```\n\n' %
                (TIME_TEXT, time_vs_bytes(medians)))
        big = big_section(medians)
        if any(is_big(m) for m in big):
            f.write('## Big idle guests\n\n' + BIG_TEXT)
            for bw in links:
                rows = [m for m in big if m.bandwidth_mib == bw]
                refs = {m.mode: m for m in rows if m.guest_mib == REF_MIB}
                f.write('\n### %s\n\n```\n%s\n```\n' %
                        (link_name(bw), big_table(rows, refs)))
            f.write('\n![](benchmark-big.png)\n\n')
        ballooned = [m for m in medians if m.scenario in guestrun.BALLOONED]
        if ballooned:
            refs = report.never_ballooned(medians, guestrun.unballooned_mode)
            f.write('## Ballooned\n\n' + BALLOONED_TEXT)
            for bw in links:
                for mem in sizes:
                    rows = [m for m in ballooned if m.guest_mib == mem and
                            m.bandwidth_mib == bw]
                    if rows:
                        f.write('\n### %d MiB guest, %s\n\n```\n%s\n```\n'
                                % (mem, link_name(bw),
                                   report.ballooned_table(rows, refs)))
            f.write('\n')
        cost = sorted(set(guest_cost(runs)))
        if cost:
            f.write('## Guest cost of building the bitmap\n\n'
                    '| guest MiB | scenario | free pages | chunks | us | '
                    'longest zone lock us |\n|---|---|---|---|---|---|\n')
            for c in cost:
                f.write('| %d | %s | %d | %d | %d | %d |\n' % c)
        if profile:
            f.write('\n' + profile)
        if kept:
            f.write('\n' + kept)


def write_charts(runs, accel):
    """One chart per size and link of the main scenarios, one of the big
    guests."""
    medians = report.median_rows(runs)

    def reps(rows):
        n = sorted({m.repetitions for m in rows})
        return '-'.join(map(str, {n[0], n[-1]}))
    for mem, bw in {(r.guest_mib, r.bandwidth_mib) for r in runs
                    if not is_big(r)}:
        main = [m for m in medians if m.guest_mib == mem and
                m.bandwidth_mib == bw and not is_big_ref(m) and
                m.scenario not in guestrun.BALLOONED + ('unballooned',)]
        if main:
            report.write_chart(main, os.path.join(
                DOCS, 'benchmark-%d%s.png' % (mem, link_tag(bw))),
                'MB sent (median of %s), %d MiB guest, %s, %s' %
                (reps(main), mem, accel, link_name(bw)))
    big = [dataclasses.replace(m, scenario='%d GiB' % (m.guest_mib // 1024))
           for m in big_section(medians) if m.bandwidth_mib == LOOPBACK_MIB]
    if any(is_big(m) for m in big):
        report.write_chart(sorted(big, key=lambda m: m.guest_mib),
                           os.path.join(DOCS, 'benchmark-big.png'),
                           'MB sent (median of %s), idle guests holding %d '
                           'MiB, %s, %s' % (reps(big), BIG_HOLD_MIB, accel,
                                            link_name(LOOPBACK_MIB)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='1024,4096')
    parser.add_argument('--big-sizes', default='16384,65536',
                        help='idle guests only, on sparse RAM (default '
                        '16384,65536; "" for none)')
    parser.add_argument('--big-modes', default='off,stock,unbacked,bitmap')
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--scenarios', default=','.join(demo.SCENARIOS),
                        help='comma-separated; the ballooned and pagecache '
                        'scenarios run in their own modes, the ballooned '
                        'one with never-ballooned runs of each (default: '
                        'all)')
    parser.add_argument('--modes', default=','.join(demo.MODES))
    parser.add_argument('--links', default='%d,%s' % (LOOPBACK_MIB,
                                                      TEN_GBE_MIB),
                        help='max-bandwidth of each link, MiB/s (default: '
                        'loopback at 10 GiB/s and 1250 MB/s)')
    parser.add_argument('--markdown-only', action='store_true',
                        help='run nothing: write docs/benchmark.md and its '
                        'charts again from docs/benchmark.json')
    args = parser.parse_args()

    json_path = os.path.join(DOCS, 'benchmark.json')
    md = os.path.join(DOCS, 'benchmark.md')
    if args.markdown_only:
        runs, meta = load_runs(json_path)
        write_markdown(md, runs, meta)
        try:
            write_charts(runs, meta['accel'])
        except ImportError:
            pass
        return 0

    scenarios = args.scenarios.split(',')
    modes = args.modes.split(',')
    links = [float(b) for b in args.links.split(',')]
    guestrun.build_guests({'stock', 'fph'})
    accel, why = guestrun.pick_accel()
    # Two guests run at once; leave the host a quarter of its memory.
    sizes = [int(s) for s in args.sizes.split(',')
             if s and 2 * int(s) <= host_mem_mib() * 3 // 4]
    # Sparse: they touch little more than the 4 GiB guest.
    big_sizes = ([int(s) for s in args.big_sizes.split(',')]
                 if args.big_sizes and BIG_SCENARIO in scenarios else [])
    progress('benchmark: sizes %s MiB, big %s MiB, scenarios %s, links %s, '
             '%s (%s)' % (sizes, big_sizes, ','.join(scenarios),
                          ', '.join(map(link_name, links)), accel, why))

    # Only the main scenarios' tables have a limit.
    need_limit = any(sc not in guestrun.BALLOONED for sc in scenarios)
    runs, baselines_all = [], {}
    for mem in sizes:
        baselines = {}
        if need_limit:
            # Bytes: the same at any link, so measured once.
            baselines = guestrun.idle_baselines(
                guestrun.Setup(accel, mem, links[0]), {'stock', 'fph'},
                args.reps)
            baselines_all[str(mem)] = baselines
        for bw in links:
            setup = guestrun.Setup(accel, mem, bw)

            def label(sc, mode, mem=mem, bw=bw):
                return '%d MiB / %s / %s / %s' % (mem, link_short(bw), sc,
                                                  mode)

            plan = demo.plan_runs(scenarios, modes, label)
            # The ballooned section's references are runs of its own, so
            # that it stands alone when it runs alone.
            plan += [(label('unballooned', m), 'unballooned', m)
                     for m in dict.fromkeys(
                         guestrun.unballooned_mode(mode)
                         for _, sc, mode in plan
                         if sc in guestrun.BALLOONED)]
            plan = [(l + ' / %d' % (rep + 1), sc, mode)
                    for l, sc, mode in plan for rep in range(args.reps)]
            runs += list(guestrun.run_loop(setup, plan, baselines or None))
    # The 4 GiB reference runs here too, on the same backend and between
    # the big guests' runs: this host's cost of filling fresh memory drifts
    # over minutes, and the ratios should not.
    for bw in links if big_sizes else []:
        for rep in range(args.reps):
            for mem in [REF_MIB] + big_sizes:
                setup = guestrun.Setup(accel, mem, bw, hold_mib=BIG_HOLD_MIB,
                                       sparse_ram=True)
                plan = [('%d MiB / %s / %s / %s / %d' % (
                            mem, link_short(bw), BIG_SCENARIO, mode, rep + 1),
                         BIG_SCENARIO, mode)
                        for mode in args.big_modes.split(',')]
                runs += list(guestrun.run_loop(setup, plan))

    old_runs, old_meta = load_runs(json_path)
    all_runs = merge_runs(old_runs, runs)
    try:
        write_charts(all_runs, accel)
    except ImportError:
        pass
    today = time.strftime('%Y-%m-%d')
    meta = {'accel': accel, 'repetitions': args.reps,
            'baselines_mb': dict(old_meta.get('baselines_mb', {}),
                                 **baselines_all),
            'run_dates': dict(old_meta.get('run_dates', {}),
                              **{r.scenario: today for r in runs})}
    report.write_json(all_runs, json_path, meta)
    write_markdown(md, all_runs, meta)
    print(open(md).read())
    bad = [r for r in runs if not r.ok()]
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
