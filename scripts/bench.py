#!/usr/bin/python3
"""The benchmark: every scenario and mode for guests of 1, 4 and 8 GiB
(those that fit), 3 repetitions each, medians.  Writes docs/benchmark.md
(tables), docs/benchmark.json (every run) and docs/benchmark-SIZE.png
(MB sent per scenario and mode) from its own results.  Bytes sent are the
primary figure (they are stable); times are medians at the stated link.

--scenarios runs some scenarios only (e.g. ballooned): their runs replace
the same size, scenario and mode's in docs/benchmark.json, and
docs/benchmark.md is written again from all the runs there.
"""

import argparse
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


def load_runs(path):
    """The runs and meta of an earlier docs/benchmark.json, if any."""
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError):
        return [], {}
    return [guestrun.RunResult.from_dict(r) for r in d['runs']], d['meta']


def merge_runs(old, new):
    """@old's runs less those of any (size, scenario, mode) that @new
    has, then @new's."""
    fresh = {(r.guest_mib, r.scenario, r.mode) for r in new}
    return [r for r in old
            if (r.guest_mib, r.scenario, r.mode) not in fresh] + new


def write_markdown(path, runs, meta):
    """docs/benchmark.md from all the runs: the main scenarios' tables per
    size, the ballooned section, the guest's cost of building bitmaps."""
    medians = report.median_rows(runs)
    sizes = sorted({r.guest_mib for r in runs})
    kept = inflate_section()
    profile = time_section()
    with open(path, 'w') as f:
        f.write('# Benchmark results\n\nWritten by `make bench` '
                '(scripts/bench.py) from its own runs: %s, tcp loopback, '
                'max-bandwidth %d MiB/s, medians of %d.  MB sent is the '
                'primary figure; "limit" is what the same guest kernel sends '
                'idle after boot with hints off, plus the live data; "cpu '
                'ms" the CPU time of the source\'s migration thread (\'-\' '
                'in runs from before it was measured).\n\n' %
                (meta['accel'], meta['bandwidth_mib'], meta['repetitions']))
        # BENCH_SCENARIOS runs some scenarios again, so the sections may
        # come from different days.
        dates = meta.get('run_dates', {})
        if dates:
            f.write('Runs of %s.\n\n' % '; '.join(
                '%s: %s' % (', '.join(sorted(
                    sc for sc in dates if dates[sc] == d)), d)
                for d in sorted(set(dates.values()))))
        for mem in sizes:
            main = [m for m in medians if m.guest_mib == mem and
                    m.scenario not in guestrun.BALLOONED + ('unballooned',)]
            if main:
                f.write('## %d MiB guest\n\n```\n%s\n```\n\n'
                        '![](benchmark-%d.png)\n\n' %
                        (mem, report.format_table(main), mem))
        ballooned = [m for m in medians if m.scenario in guestrun.BALLOONED]
        if ballooned:
            refs = report.never_ballooned(medians, guestrun.unballooned_mode)
            f.write('## Ballooned\n\n' + BALLOONED_TEXT)
            for mem in sizes:
                rows = [m for m in ballooned if m.guest_mib == mem]
                if rows:
                    f.write('\n### %d MiB guest\n\n```\n%s\n```\n' %
                            (mem, report.ballooned_table(rows, refs)))
            f.write('\n')
        cost = sorted(guest_cost(runs), key=lambda c: c[0])
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='1024,4096,8192')
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--scenarios', default=','.join(demo.SCENARIOS),
                        help='comma-separated; the ballooned scenario runs '
                        'in its own modes, with never-ballooned runs of '
                        'each (default: all)')
    parser.add_argument('--modes', default=','.join(demo.MODES))
    parser.add_argument('--bandwidth', type=int, default=10240)
    parser.add_argument('--markdown-only', action='store_true',
                        help='run nothing: write docs/benchmark.md again '
                        'from docs/benchmark.json')
    args = parser.parse_args()

    json_path = os.path.join(DOCS, 'benchmark.json')
    md = os.path.join(DOCS, 'benchmark.md')
    if args.markdown_only:
        runs, meta = load_runs(json_path)
        write_markdown(md, runs, meta)
        return 0

    scenarios = args.scenarios.split(',')
    modes = args.modes.split(',')
    guestrun.build_guests({'stock', 'fph'})
    accel, why = guestrun.pick_accel()
    # Two guests run at once; leave the host a quarter of its memory.
    sizes = [int(s) for s in args.sizes.split(',')
             if 2 * int(s) <= host_mem_mib() * 3 // 4]
    progress('benchmark: sizes %s MiB, scenarios %s, %s (%s)' %
             (sizes, ','.join(scenarios), accel, why))

    # Only the main scenarios' tables have a limit.
    need_limit = any(sc not in guestrun.BALLOONED for sc in scenarios)
    runs, baselines_all = [], {}
    for mem in sizes:
        setup = guestrun.Setup(accel, mem, args.bandwidth)

        def label(sc, mode, mem=mem):
            return '%d MiB / %s / %s' % (mem, sc, mode)

        baselines = {}
        if need_limit:
            baselines = guestrun.idle_baselines(setup, {'stock', 'fph'},
                                                args.reps)
            baselines_all[str(mem)] = baselines
        plan = demo.plan_runs(scenarios, modes, label)
        # The ballooned section's references are runs of its own, so that
        # it stands alone when it runs alone.
        plan += [(label('unballooned', m), 'unballooned', m)
                 for m in dict.fromkeys(
                     guestrun.unballooned_mode(mode) for _, sc, mode in plan
                     if sc in guestrun.BALLOONED)]
        plan = [(l + ' / %d' % (rep + 1), sc, mode) for l, sc, mode in plan
                for rep in range(args.reps)]
        size_runs = list(guestrun.run_loop(setup, plan, baselines or None))
        runs += size_runs
        main_runs = [r for r in size_runs if r.scenario not in
                     guestrun.BALLOONED + ('unballooned',)]
        try:
            if main_runs:
                report.write_chart(report.median_rows(main_runs),
                                   os.path.join(DOCS, 'benchmark-%d.png' %
                                                mem),
                                   'MB sent (median of %d), %d MiB guest, '
                                   '%s, max-bandwidth %d MiB/s' %
                                   (args.reps, mem, accel, args.bandwidth))
        except ImportError:
            pass

    old_runs, old_meta = load_runs(json_path)
    all_runs = merge_runs(old_runs, runs)
    today = time.strftime('%Y-%m-%d')
    meta = {'accel': accel, 'bandwidth_mib': args.bandwidth,
            'repetitions': args.reps,
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
