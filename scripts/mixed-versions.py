#!/usr/bin/python3
"""Mixed versions: migrate a guest between Debian's own QEMU 7.2 (stock) and
qemu-fph, both directions, on machine type pc-q35-7.2, with the balloon
configured as a user of each QEMU would write it.  Every combination must
either complete with the guest's data intact (every word of its live data
checked on the destination, whose kernel log must be clean) or fail with a
message that says which property to set while the source guest keeps
running (query-status "running" and a command on its console answers).
Prints the table and writes it, with the messages, to docs/mixed-versions.md.

  scripts/mixed-versions.py [--stock /usr/bin/qemu-system-x86_64] [--mem 1024]

Both QEMUs run with the return-path capability, so that a source learns
from the destination that loading failed and resumes its guest by itself
(without it, precopy reports "completed" and leaves the source paused in
postmigrate until the management resumes it: see the document).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestrun                                   # noqa: E402
import report                                     # noqa: E402
from guestrun import Mode, RunError, progress     # noqa: E402

STOCK_QEMU = '/usr/bin/qemu-system-x86_64'
MACHINE = 'pc-q35-7.2'
SCENARIO = 'churn'
DOC = os.path.join(guestrun.TOP, 'docs', 'mixed-versions.md')
IOTHREAD = ('-object', 'iothread,id=io1')


@dataclass(frozen=True)
class Config:
    """A balloon configuration, as each QEMU spells it."""
    name: str
    fph: str                    # virtio-balloon-pci options on qemu-fph
    stock: str                  # the same on Debian's QEMU
    stock_extra: tuple = ()


CONFIGS = [
    Config('no properties', '', ''),
    Config('hints off', 'free-page-hint=off', 'free-page-hint=off'),
    # Stock 7.2 needs an iothread for free-page-hint=on, qemu-fph does not
    # (it creates an internal one, which is not migrated).
    Config('free-page-hint=on,free-page-bitmap=off,bulk-balloon=off',
           'free-page-hint=on,free-page-bitmap=off,bulk-balloon=off',
           'free-page-hint=on,iothread=io1', IOTHREAD),
    Config('free-page-hint=on (defaults)', 'free-page-hint=on',
           'free-page-hint=on,iothread=io1', IOTHREAD),
]


@dataclass(frozen=True)
class Row:
    kind: str                   # guest kernel
    config: Config
    direction: str              # 'stock -> fph' or 'fph -> stock'
    machine: str = MACHINE
    verbatim: bool = False      # stock gets qemu-fph's options as they are
    ballooned_mib: int = 0      # the balloon takes this much before

    def mode(self, side):
        """The Mode of @side ('stock' or 'fph')."""
        c = self.config
        if side == 'fph' or self.verbatim:
            return Mode('fph', self.kind, c.fph, machine=self.machine)
        return Mode('stock', self.kind, c.stock, extra=c.stock_extra,
                    machine=self.machine)

    def sides(self):
        return self.direction.split(' -> ')

    def balloon(self):
        """The balloon column: its options, and what is in it."""
        return self.config.name + (
            ' (same options on stock)' if self.verbatim else '') + (
            ', %d MiB in the balloon' % self.ballooned_mib
            if self.ballooned_mib else '')

    def label(self):
        return '%s kernel, %s, %s, %s' % (self.kind, self.balloon(),
                                          self.machine, self.direction)


def plan():
    rows = [Row(kind, c, d) for kind in ('stock', 'fph') for c in CONFIGS
            for d in ('stock -> fph', 'fph -> stock')]
    hint = CONFIGS[3]
    # The compat property: an older machine type is the stock device.
    rows += [Row('fph', hint, d, machine='pc-q35-7.1')
             for d in ('fph -> stock', 'stock -> fph')]
    # qemu-fph's command line given to stock QEMU as it is.
    rows += [Row('fph', c, 'fph -> stock', verbatim=True)
             for c in CONFIGS[2:]]
    # Pages in the balloon: qemu-fph sends its bitmap of them, which
    # stock QEMU cannot load, unless the bitmap is off.
    rows += [Row('stock', CONFIGS[0], d, ballooned_mib=BALLOONED_MIB)
             for d in ('fph -> stock', 'stock -> fph')]
    rows.append(Row('stock', BITMAP_OFF, 'fph -> stock',
                    ballooned_mib=BALLOONED_MIB))
    # Control: the same guest and balloon between two stock QEMUs.
    rows.append(Row('stock', CONFIGS[0], 'stock -> stock',
                    ballooned_mib=BALLOONED_MIB))
    # Control: stock hinting between two stock QEMUs.
    rows += [Row(kind, hint, 'stock -> stock') for kind in ('stock', 'fph')]
    return rows


# Taken by the balloon in the ballooned rows: a quarter of the 1 GiB guest,
# which leaves the churn scenario room.
BALLOONED_MIB = 256
BITMAP_OFF = Config('ballooned-page-bitmap=off', 'ballooned-page-bitmap=off',
                    '')


STOCK_BUG = ('stock QEMU\'s own bug on the source (as stock -> stock): '
             'free-page-hint=off on stock QEMU')
STOCK_TCG_BUG = ('stock QEMU\'s own bug on the source (as stock -> stock): '
                 'TCG loses writes after a sync; KVM, or qemu-fph as the '
                 'source')


def blame_stock(outcomes):
    """A stock source with stock hinting that broke the guest on qemu-fph,
    when the same guest breaks from stock to stock too: stock 7.2 loses
    writes after a dirty sync under TCG (qemu-fph's patch 0001), which no
    destination can repair."""
    control = {(o.row.kind, o.row.ballooned_mib): o for o in outcomes
               if o.row.direction == 'stock -> stock'}
    for o in outcomes:
        c = control.get((o.row.kind, o.row.ballooned_mib))
        hinting = 'iothread' in o.row.mode('stock').device
        if (not o.ok and o.result == 'completed' and c and
                o.row.sides()[0] == 'stock' and
                (hinting or o.row.ballooned_mib) and not c.ok):
            o.todo = STOCK_BUG if hinting else STOCK_TCG_BUG
        if o is c and not o.ok:
            o.todo = STOCK_BUG if hinting else STOCK_TCG_BUG


def qemu_messages(text):
    """QEMU's error lines in a log, without the program name."""
    out = []
    for line in (text or '').splitlines():
        m = re.match(r'\S*qemu-system-x86_64: (.*)', line.strip())
        if m and m.group(1) not in out:
            out.append(m.group(1))
    return out


def advice(row, messages):
    """What to set, for a failure this document explains; None for a
    failure it does not."""
    text = ' '.join(messages)
    if 'requires \'iothread\'' in text:
        return 'add iothread= (and -object iothread) on stock QEMU'
    if 'free-page-bitmap' in text and 'not found' in text:
        return ('drop free-page-bitmap= and bulk-balloon= on stock QEMU '
                '(it has neither)')
    if 'deflate the balloon fully' in text:
        return ('deflate the balloon fully before migrating, or '
                'ballooned-page-bitmap=off on the qemu-fph source')
    if (row.kind == 'fph' and row.direction == 'fph -> stock' and
            row.config.fph == 'free-page-hint=on' and
            row.machine == MACHINE):
        return ('free-page-bitmap=off and bulk-balloon=off on the qemu-fph '
                'source (or a pc-q35-7.1 or older machine type), from guest '
                'boot')
    return None


@dataclass
class Outcome:
    row: Row
    result: str = ''            # completed, failed, not started, broken
    check: str = ''             # data check of a completed migration
    source: str = ''            # the source after a failure
    messages: tuple = ()
    todo: str = ''
    ok: bool = False
    seconds: float = 0


def source_state(src):
    """The source after a failed migration: still running, and its guest
    answers on its console and still has its data."""
    status = src.cmd('query-status')['status']
    try:
        rc, out = src.console.run('fph-guest verify', timeout=120)
        m = re.search(r'pages wrong (\d+)', out)
        data = 'data ok' if (rc == 0 and m and m.group(1) == '0') else \
            'verify: ' + out[-60:]
    except TimeoutError:
        return status + ', console silent', False
    return '%s, console answers, %s' % (status, data), (
        status == 'running' and data == 'data ok')


def run_row(setup, row, rundir, stock_qemu):
    qemus = {'stock': stock_qemu, 'fph': guestrun.QEMU_BIN}
    s_side, d_side = row.sides()
    _, live, prep, during = guestrun.scenario_commands(SCENARIO,
                                                       setup.mem_mib)
    o = Outcome(row)
    src = guestrun.boot('source', row.mode(s_side), setup, rundir,
                        qemu=qemus[s_side])
    dst = None
    failed_msgs = []
    try:
        guestrun.run_commands(src, prep)
        if row.ballooned_mib:
            got = guestrun.balloon_down(src, setup.mem_mib -
                                        row.ballooned_mib, timeout=120)
            if got > setup.mem_mib - row.ballooned_mib:
                raise RunError('the balloon took %d MiB of %d' %
                               (setup.mem_mib - got, row.ballooned_mib))
        try:
            dst = guestrun.GuestVM('destination', row.mode(d_side), setup,
                                   rundir, incoming=True,
                                   qemu=qemus[d_side])
        except RunError as e:
            o.result = 'not started'
            failed_msgs = qemu_messages(str(e).replace(': ', '\n', 2)) or \
                [str(e)[:200]]
        if dst:
            caps = [{'capability': 'return-path', 'state': True}]
            src.cmd('migrate-set-capabilities', capabilities=caps)
            dst.cmd('migrate-set-capabilities', capabilities=caps)
            try:
                info, elapsed, cpu_ms = guestrun.migrate(
                    src, dst, setup, row.mode(s_side), during)
            except RunError as e:
                o.result = 'failed'
                msg = str(e)
                if msg.endswith(': '):
                    msg += '(query-migrate has no error-desc)'
                failed_msgs = ['source: ' + msg]
            else:
                o.result = 'completed'
                r = guestrun.new_result(setup, row.mode(d_side), SCENARIO,
                                        live)
                guestrun.record_migration(r, info, elapsed, cpu_ms)
                guestrun.check_destination(dst, r, src.console.text)
                o.check = r.check()
                o.ok = r.ok()
        if o.result != 'completed':
            if dst:
                dst.close()
                failed_msgs = ['destination: ' + m for m in
                               qemu_messages(dst.vm.get_log())] + failed_msgs
            o.messages = tuple(failed_msgs)
            o.source, alive = source_state(src)
            o.todo = advice(row, failed_msgs) or ''
            o.ok = alive and bool(o.todo)
    finally:
        for g in (src, dst):
            if g:
                g.close()
                with open(os.path.join(rundir, g.name + '-console.txt'),
                          'w') as f:
                    f.write(g.console.text)
    return o


def table(outcomes):
    head = ('guest kernel', 'balloon', 'machine', 'direction', 'result',
            'data check / source after failure', 'what to set')
    rows = []
    for o in outcomes:
        r = o.row
        rows.append((r.kind, r.balloon(), r.machine, r.direction, o.result,
                     o.check or o.source, o.todo or '-'))
    return head, rows


def markdown(head, rows):
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    lines += ['| ' + ' | '.join(c.replace('|', '\\|') for c in r) + ' |'
              for r in rows]
    return '\n'.join(lines)


def write_doc(outcomes, head, rows, meta):
    msgs = []
    for o in outcomes:
        if o.messages:
            r = o.row
            msgs.append('* %s:\n\n%s\n' % (
                r.label(), '\n'.join('      ' + m for m in o.messages)))
    with open(DOC, 'w') as f:
        f.write(DOC_TEXT.format(table=markdown(head, rows),
                                messages='\n'.join(msgs), **meta))


DOC_TEXT = '''# Migration between Debian's QEMU 7.2 and qemu-fph

Written by `scripts/mixed-versions.py` from its own run ({date}): stock is
{stock_version}, qemu-fph this tree; {accel}, {mem} MiB guest, machine type
pc-q35-7.2 (rows that say otherwise: pc-q35-7.1), each migration over TCP
loopback with the `return-path` capability on both sides, the guest in the
`churn` scenario (its live data rewritten during the migration, memory
allocated and freed all the time). A completed migration is checked on the
destination: every word of the guest's live data, the guest answers, no BUG,
Oops, WARNING or panic in its kernel log. After a failure the source must
still run its guest (query-status, a command on its console, the data
checked there too). Stock QEMU needs `iothread=` for `free-page-hint=on`,
so its side of a hinting row has `-object iothread,id=io1` and
`iothread=io1`; qemu-fph's side has none (qemu-fph creates an internal
iothread, which is not part of the migration stream).

{table}

## What fails, what the user sees, what to set

Only one configuration of the balloon cannot migrate: **the qemu-fph guest
kernel on qemu-fph with `free-page-hint=on` and `free-page-bitmap` and
`bulk-balloon` at their defaults (on), to stock QEMU.** The guest's driver
negotiated the free page bitmap (feature bit 16) and bulk inflate and
deflate (bit 17), which qemu-fph offers only with `free-page-hint=on`, so
the stream carries the subsection `virtio-balloon-device/free-page-bitmap`
and features stock QEMU cannot offer. Stock QEMU's message (below) names
neither; it comes from stock QEMU and cannot be changed here. What to set:
`free-page-bitmap=off` and `bulk-balloon=off` on the qemu-fph side **when
the guest boots** (the features are negotiated at boot; setting them later
does not take them back), or a machine type pc-q35-7.1 or older, whose
compat properties turn both off (patches 0010 and 0019). Debian's guest
kernel negotiates neither and migrates with every setting.

A user who starts stock QEMU with qemu-fph's options as they are gets a
message from stock QEMU that names the property: `iothread` (stock needs
one for `free-page-hint=on`) or `free-page-bitmap` (stock has neither it
nor `bulk-balloon`).

The source guest keeps running in every failed row: with `return-path` the
source learns that the destination failed and resumes the guest itself.
Without `return-path`, precopy on both QEMUs reports `completed` as soon as
everything is sent and leaves the source paused (`postmigrate`), guest
intact; the management (libvirt does) resumes it with `cont` when the
destination reports the failure.

**Stock hinting on a stock source.** The `stock -> stock` rows are the
control: two Debian QEMUs, stock hinting on. Where a stock source with
`free-page-hint=on` broke the guest on its way to qemu-fph and the control
broke it too, the cause is stock QEMU 7.2 on the source, not the mix: under
TCG it loses guest writes after a dirty bitmap sync (qemu-fph's patch 0001
fixes it; `docs/free-page-hinting.rst`, "Pitfalls of stock hinting"), and
no destination can repair memory that arrived wrong. Such rows say so in
the last column; what to set is `free-page-hint=off` on stock QEMU (or an
upgrade of the source to qemu-fph). Whether a given run hits it is a
matter of timing.

**Pages in the balloon.** In the rows with 256 MiB in the balloon (QMP
`balloon` before the migration), qemu-fph's source sends its bitmap of the
ballooned pages (subsection `virtio-balloon-device/ballooned-pages`,
`docs/free-page-hinting.rst`, "Ballooned pages"), which stock QEMU cannot
load. The migration fails, the source keeps running and says in
`query-migrate`'s `error-desc` what to do: deflate the balloon fully
first (the subsection is sent only while pages are in the balloon), or
boot with `ballooned-page-bitmap=off` (or a pc-q35-7.1 machine type),
which migrates. A stock source sends no bitmap, and qemu-fph loads its
stream as any other. The stock TCG bug above does not need hints: any
stock source under TCG can lose writes after a sync, more likely the
longer the migration runs, and a balloon makes the bulk stage longer.
Repeated here (`--only "in the balloon, pc-q35-7.2, stock ->"`, this
table's run included): `stock -> fph` broke the guest in 4 runs of 8, the
control `stock -> stock` in 4 of 7. When the control of the same run
passed, the table's row cannot blame stock and shows `-`; qemu-fph as
the source never broke it. On KVM the bug does not apply.

Otherwise, going the other way, stock to qemu-fph, works, and the guest
keeps running on qemu-fph with the device it negotiated on stock. After a reboot
on qemu-fph with `free-page-hint=on` and a pc-q35-7.2 machine type, the
qemu-fph guest kernel negotiates the bitmap, and the row above applies to
its next migration back.

## Machine types

`free-page-bitmap` defaults to on (with `free-page-hint=on`); stock 7.2 has
no such feature. Patch 0010 adds `virtio-balloon-device.free-page-bitmap=off`
to `hw_compat_7_1`, so pc-q35-7.1, pc-i440fx-7.1 and every older machine
type offer exactly stock 7.2's features: a guest on them migrates to and
from stock QEMU whatever its kernel (the pc-q35-7.1 rows). pc-q35-7.2 is
the newest machine type of 7.2, stock's as well as ours: there is no older
7.2 type to pin, and keeping it exactly stock would mean turning the bitmap
off by default on every machine type qemu-fph has, which is what qemu-fph
is for. On pc-q35-7.2, a host pool that still runs stock QEMU sets
`free-page-bitmap=off` until every host runs qemu-fph. Other differences
need no compat property: the internal iothread changes no guest-visible
state and nothing in the stream; `free-page-hint-wait`,
`free-page-hint-repeat` and `free-page-hint-drop-cache` are migration
parameters, not device state.

## Messages

{messages}
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--stock', default=STOCK_QEMU,
                        help='Debian\'s qemu-system-x86_64 (apt-get install '
                        'qemu-system-x86)')
    parser.add_argument('--mem', type=int, default=1024)
    parser.add_argument('--only', help='run rows whose text contains this')
    parser.add_argument('--no-doc', action='store_true')
    args = parser.parse_args()
    if not os.access(args.stock, os.X_OK):
        sys.exit('mixed-versions: no %s; apt-get install qemu-system-x86'
                 % args.stock)
    stock_version = subprocess.run([args.stock, '--version'], check=True,
                                   capture_output=True,
                                   text=True).stdout.splitlines()[0]
    guestrun.build_guests({'stock', 'fph'})
    accel, why = guestrun.pick_accel('fph')
    setup = guestrun.Setup(accel, args.mem, timeout=300)
    rows = plan()
    if args.only:
        rows = [r for r in rows if args.only in r.label()]
    progress('mixed versions: %d rows, %s (%s), %s' %
             (len(rows), accel, why, stock_version))
    outcomes = []
    for i, row in enumerate(rows, 1):
        progress('%d/%d: %s' % (i, len(rows), row.label()))
        rundir = tempfile.mkdtemp(prefix='fph-mixed-')
        start = time.monotonic()
        try:
            o = run_row(setup, row, rundir, args.stock)
        except guestrun.RUN_ERRORS as e:
            o = Outcome(row, result='broken', check=str(e)[:120])
        o.seconds = time.monotonic() - start
        if o.ok:
            shutil.rmtree(rundir, ignore_errors=True)
        else:
            progress('   not as required; its QEMU logs are in ' + rundir)
        progress('   %s, %s%s (%.0f s)' % (o.result, o.check or o.source,
                                          ', ' + o.todo if o.todo else '',
                                          o.seconds))
        for m in o.messages:
            print('      ' + m, flush=True)
        outcomes.append(o)
    blame_stock(outcomes)
    head, trows = table(outcomes)
    print(report.text_table(head, trows), flush=True)
    stock_bug = sum(o.todo == STOCK_BUG for o in outcomes)
    bad = sum(not o.ok for o in outcomes) - stock_bug
    if not args.no_doc and not args.only:
        write_doc(outcomes, head, trows, {
            'date': time.strftime('%Y-%m-%d'), 'accel': accel.upper(),
            'mem': args.mem, 'stock_version': stock_version})
        progress('wrote ' + os.path.relpath(DOC, guestrun.TOP))
    print('mixed versions: %d as required, %d broken by stock QEMU\'s own '
          'bug (as stock -> stock), %d not' %
          (len(outcomes) - bad - stock_bug, stock_bug, bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
