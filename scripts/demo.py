#!/usr/bin/python3
"""qemu-fph's main job: migrate a real Linux guest with hints off, with
stock hinting (Debian's own guest kernel) and with free page bitmaps
(qemu-fph's guest kernel), in several scenarios, and print one table.

Every run ends with the guest checking every page of its live data on the
destination, and with the destination's kernel log scanned for BUG, Oops,
WARNING and panic.  Results also go to build/demo/results.json and a chart
to build/demo/results.png.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestrun                                   # noqa: E402
import report                                     # noqa: E402
from guestrun import progress                     # noqa: E402

SCENARIOS = ['idle', 'freed', 'fragmented', 'churn', 'pagecache', 'ballooned']
MODES = ['off', 'unbacked', 'stock', 'stock-noinit', 'bitmap']


def scenario_modes(scenario, modes):
    """The modes a scenario runs in: the ballooned and pagecache scenarios
    have their own."""
    if scenario in guestrun.BALLOONED:
        return guestrun.BALLOONED_MODES
    if scenario in guestrun.PAGECACHE:
        return guestrun.PAGECACHE_MODES
    return modes


def plan_runs(scenarios, modes, label):
    """(label, scenario, mode) for each scenario in each of its modes that
    this QEMU can run."""
    usable = set(guestrun.usable_modes(
        dict.fromkeys(m for sc in scenarios
                      for m in scenario_modes(sc, modes))))
    return [(label(sc, mode), sc, mode) for sc in scenarios
            for mode in scenario_modes(sc, modes) if mode in usable]


def missing_references(plan, have):
    """Never-ballooned runs that the ballooned runs of @plan compare with
    and that neither @plan's idle runs nor @have (idle runs) provide:
    (scenario 'unballooned', mode) for each."""
    idle = {mode for _, sc, mode in plan if sc == 'idle'}
    idle |= {r.mode for r in have if r.scenario == 'idle'}
    need = dict.fromkeys(guestrun.unballooned_mode(mode)
                         for _, sc, mode in plan
                         if sc in guestrun.BALLOONED)
    return [m for m in need if m not in idle]


def print_ballooned(rows, references):
    """The ballooned section: its own table, against never-ballooned
    runs."""
    ballooned = [r for r in rows if r.scenario in guestrun.BALLOONED]
    if not ballooned:
        return
    print()
    print('Ballooned: the guest writes 3/4 of its RAM and frees it, then '
          'the balloon takes it down to 1/4; "never ballooned" is the same '
          'guest and mode idle, with the same live data')
    print(report.ballooned_table(ballooned, references))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--mem', type=int, default=0,
                        help='guest RAM in MiB (default: 4096 with KVM, '
                        '1024 with TCG)')
    parser.add_argument('--bandwidth', type=int, default=10240,
                        help='max-bandwidth in MiB/s (default 10240)')
    parser.add_argument('--scenarios', default=','.join(SCENARIOS))
    parser.add_argument('--modes', default=','.join(MODES))
    parser.add_argument('--accel', choices=['auto', 'kvm', 'tcg'],
                        default='auto')
    parser.add_argument('--out', default=os.path.join(guestrun.BUILD, 'demo'))
    args = parser.parse_args()

    scenarios = args.scenarios.split(',')
    modes = args.modes.split(',')
    os.makedirs(args.out, exist_ok=True)
    kinds = {guestrun.MODES[m].kind for sc in scenarios
             for m in scenario_modes(sc, modes)} | {'stock'}
    guestrun.build_guests(kinds)

    if args.accel == 'auto':
        accel, why = guestrun.pick_accel()
    else:
        accel, why = args.accel, 'asked for'
    mem = args.mem or (4096 if accel == 'kvm' else 1024)
    progress('accelerator: %s (%s); guest %d MiB' % (accel, why, mem))

    setup = guestrun.Setup(accel, mem, args.bandwidth)
    baseline_rows = []
    baselines = guestrun.idle_baselines(setup, kinds, rows=baseline_rows)

    def label(sc, mode):
        return '%s / %s (%s kernel)' % (sc, mode, guestrun.MODES[mode].kind)

    plan = plan_runs(scenarios, modes, label)
    # The ballooned runs compare with idle runs of the same mode: this
    # plan's, the baselines', or runs of their own.
    plan += [(label('unballooned', m), 'unballooned', m)
             for m in missing_references(plan, baseline_rows)]
    rows = list(guestrun.run_loop(setup, plan, baselines))

    print()
    print('Guest: %d MiB, %s, 2 vCPUs; link: tcp loopback, max-bandwidth %d '
          'MiB/s; limit = idle hints-off MB of the same kernel + live data; '
          'cpu ms = the source migration thread\'s' % (mem, accel,
                                                      args.bandwidth))
    main_rows = [r for r in rows if r.scenario in scenarios and
                 r.scenario not in guestrun.BALLOONED]
    if main_rows:
        print(report.format_table(main_rows))
    print_ballooned(rows, report.never_ballooned(
        rows + baseline_rows, guestrun.unballooned_mode))
    meta = {'accel': accel, 'guest_mib': mem, 'bandwidth_mib': args.bandwidth,
            'baselines_mb': baselines}
    report.write_json(rows + baseline_rows,
                      os.path.join(args.out, 'results.json'), meta)
    chart = '; no chart: no scenario with a limit'
    try:
        if main_rows:
            report.write_chart(main_rows,
                               os.path.join(args.out, 'results.png'),
                               'MB sent, %d MiB guest, %s' % (mem, accel))
            chart = ' and results.png'
    except ImportError:
        chart = '; no chart: python3-matplotlib is missing'
    print('(also in %s/results.json%s)' % (args.out, chart))
    bad = [r for r in rows if not r.ok()]
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
