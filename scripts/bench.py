#!/usr/bin/python3
"""The benchmark: every scenario and mode for guests of 1, 4 and 8 GiB
(those that fit), 3 repetitions each, medians.  Writes docs/benchmark.md
(tables), docs/benchmark.json (every run) and docs/benchmark-SIZE.png
(MB sent per scenario and mode) from its own results.  Bytes sent are the
primary figure (they are stable); times are medians at the stated link.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo                                       # noqa: E402
import guestrun                                   # noqa: E402
import report                                     # noqa: E402
from guestrun import progress                     # noqa: E402

DOCS = os.path.join(guestrun.TOP, 'docs')


def inflate_section():
    """The section scripts/inflate-speed.py wrote, which this keeps."""
    try:
        text = open(os.path.join(DOCS, 'benchmark.md')).read()
    except OSError:
        return ''
    start = text.find('## Inflate speed')
    return text[start:] if start >= 0 else ''


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='1024,4096,8192')
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--scenarios', default=','.join(demo.SCENARIOS))
    parser.add_argument('--modes', default=','.join(demo.MODES))
    parser.add_argument('--bandwidth', type=int, default=10240)
    args = parser.parse_args()

    modes = args.modes.split(',')
    guestrun.build_guests({guestrun.MODES[m].kind for m in modes} |
                          {'stock', 'fph'})
    accel, why = guestrun.pick_accel()
    # Two guests run at once; leave the host a quarter of its memory.
    sizes = [int(s) for s in args.sizes.split(',')
             if 2 * int(s) <= host_mem_mib() * 3 // 4]
    progress('benchmark: sizes %s MiB, %s (%s)' % (sizes, accel, why))

    runs, medians, baselines_all = [], [], {}
    for mem in sizes:
        setup = guestrun.Setup(accel, mem, args.bandwidth)
        baselines = guestrun.idle_baselines(setup, {'stock', 'fph'},
                                            args.reps)
        baselines_all[mem] = baselines
        plan = [('%d MiB / %s / %s / %d' % (mem, sc, mode, rep + 1), sc, mode)
                for sc in args.scenarios.split(',') for mode in modes
                for rep in range(args.reps)]
        size_runs = list(guestrun.run_loop(setup, plan, baselines))
        runs += size_runs
        med = report.median_rows(size_runs)
        medians += med
        try:
            report.write_chart(med, os.path.join(
                DOCS, 'benchmark-%d.png' % mem),
                'MB sent (median of %d), %d MiB guest, %s, max-bandwidth %d '
                'MiB/s' % (args.reps, mem, accel, args.bandwidth))
        except ImportError:
            pass

    meta = {'accel': accel, 'bandwidth_mib': args.bandwidth,
            'repetitions': args.reps, 'baselines_mb': baselines_all}
    report.write_json(runs, os.path.join(DOCS, 'benchmark.json'), meta)
    kept = inflate_section()
    with open(os.path.join(DOCS, 'benchmark.md'), 'w') as f:
        f.write('# Benchmark results\n\nWritten by `make bench` '
                '(scripts/bench.py) from its own runs: %s, tcp loopback, '
                'max-bandwidth %d MiB/s, medians of %d.  MB sent is the '
                'primary figure; "limit" is what the same guest kernel sends '
                'idle after boot with hints off, plus the live data.\n\n' %
                (accel, args.bandwidth, args.reps))
        for mem in sizes:
            f.write('## %d MiB guest\n\n```\n%s\n```\n\n![](benchmark-%d.png)'
                    '\n\n' % (mem, report.format_table(
                        [m for m in medians if m.guest_mib == mem]), mem))
        cost = guest_cost(runs)
        if cost:
            f.write('## Guest cost of building the bitmap\n\n'
                    '| guest MiB | scenario | free pages | chunks | us | '
                    'longest zone lock us |\n|---|---|---|---|---|---|\n')
            for c in cost:
                f.write('| %d | %s | %d | %d | %d | %d |\n' % c)
        if kept:
            f.write('\n' + kept)
    print(open(os.path.join(DOCS, 'benchmark.md')).read())
    bad = [r for r in runs if not r.ok()]
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
