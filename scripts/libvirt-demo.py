#!/usr/bin/python3
"""qemu-fph as hosts run it: installed from its .deb, started by libvirt
from docs/libvirt-domain.xml, moved with virsh save, restore and migrate
--live between two libvirt daemons on this one machine, with free page
hints off and on; the guest checks its live data after every move.  Prints
a table; JSON and a chart go to build/libvirt-demo/.

The two daemons are Debian's libvirtd, each in a mount namespace of its own
(unshare) where this script's folders stand in for /etc/libvirt, /run,
/var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt: their own
configuration (a host_uuid each, so that libvirt allows migrating between
them), sockets, state and logs, and nothing of the machine's libvirt
touched.  Everything is stopped and removed at the end, the package too
when this script installed it.  docs/libvirt.rst says more.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestrun                                   # noqa: E402
import report                                     # noqa: E402
from guestrun import progress                     # noqa: E402

TOP = guestrun.TOP
DOMAIN_XML = os.path.join(TOP, 'docs', 'libvirt-domain.xml')
PACKAGE = 'qemu-fph-system-x86'
EMULATOR = '/usr/bin/qemu-fph-system-x86_64'
LIBVIRT_PACKAGES = ['libvirt-daemon-system', 'libvirt-clients']
QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0'
# What each daemon's private namespace gets from its folder.
BINDS = [('etc', '/etc/libvirt'), ('run', '/run'),
         ('lib', '/var/lib/libvirt'), ('cache', '/var/cache/libvirt'),
         ('log', '/var/log/libvirt')]

QEMU_CONF = '''# Written by scripts/libvirt-demo.py for its own daemon.
# QEMU runs as root with no confinement: the demo's guest files stay where
# the build left them, and a container may have no cgroup or namespace
# rights for libvirt to use.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
# QEMU's output goes straight to log/qemu/, without virtlogd.
stdio_handler = "file"
'''


class DemoError(Exception):
    """What stops the demo, said to the user."""


def run(argv, timeout=600, check=True):
    p = subprocess.run(argv, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise DemoError('%s failed: %s' % (' '.join(argv[:4]),
                                           (p.stderr or p.stdout).strip()))
    return p


def installed_version(pkg):
    p = subprocess.run(['dpkg-query', '-W', '-f=${Status} ${Version}', pkg],
                       capture_output=True, text=True)
    m = re.match(r'install ok installed (\S+)', p.stdout)
    return m.group(1) if m else None


def ensure_libvirt():
    """Debian's libvirt, installed with one apt-get line when missing."""
    missing = [p for p in LIBVIRT_PACKAGES if not installed_version(p)]
    if not missing:
        return
    line = ['apt-get', 'install', '-y', '--no-install-recommends'] + \
        LIBVIRT_PACKAGES
    progress('installing %s: %s' % (', '.join(missing), ' '.join(line)))
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    # As ./configure does: the package lists may be older than the archive.
    subprocess.run(['apt-get', 'update', '-qq'], env=env)
    if subprocess.run(line, env=env, stdout=subprocess.DEVNULL).returncode:
        raise DemoError('%s failed' % ' '.join(line))


class Package:
    """qemu-fph's .deb on this machine for the demo's time: built, then
    installed unless this very version already is; removed at the end
    only if this script installed it."""

    def __init__(self):
        out = run([os.path.join(TOP, 'scripts', 'make-deb.sh'), TOP,
                   guestrun.BUILD]).stdout.split()
        self.deb = out[-1]
        self.version = run(['dpkg-deb', '-f', self.deb,
                            'Version']).stdout.strip()
        self.before = installed_version(PACKAGE)
        self.installed_here = False
        if self.before == self.version:
            progress('%s %s is installed already' % (PACKAGE, self.version))
            return
        progress('dpkg -i %s' % os.path.basename(self.deb))
        run(['dpkg', '-i', self.deb])
        self.installed_here = True

    def remove(self):
        if not self.installed_here:
            return
        if self.before:
            progress('%s %s stays installed (%s was before)' %
                     (PACKAGE, self.version, self.before))
            return
        progress('dpkg -r %s' % PACKAGE)
        run(['dpkg', '-r', PACKAGE], check=False)


class Daemon:
    """A libvirtd of our own: config, sockets, state and logs in
    @top/@name, host_uuid of its own."""

    def __init__(self, top, name):
        self.name = name
        self.dir = os.path.join(top, name)
        for sub, _ in BINDS:
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        os.makedirs(os.path.join(self.dir, 'run', 'libvirt'), exist_ok=True)
        self.host_uuid = str(uuid.uuid4())
        self.log = os.path.join(self.dir, 'log', 'libvirtd.log')
        self.conf = os.path.join(self.dir, 'etc', 'libvirtd.conf')
        with open(self.conf, 'w') as f:
            f.write('# Written by scripts/libvirt-demo.py.\n'
                    '# Distinct from the other daemon\'s, or libvirt '
                    'refuses the migration as one to the same host.\n'
                    'host_uuid = "%s"\n'
                    '# The socket is root\'s alone (0700 under run/).\n'
                    'auth_unix_rw = "none"\nauth_unix_ro = "none"\n'
                    'unix_sock_rw_perms = "0700"\n'
                    'log_outputs = "3:file:%s"\n' % (self.host_uuid,
                                                     self.log))
        with open(os.path.join(self.dir, 'etc', 'qemu.conf'), 'w') as f:
            f.write(QEMU_CONF)
        self.uri = 'qemu+unix:///system?socket=%s' % os.path.join(
            self.dir, 'run', 'libvirt', 'libvirt-sock')
        self.proc = None

    def start(self):
        mounts = ' && '.join('mount --bind %s %s' % (
            os.path.join(self.dir, sub), target) for sub, target in BINDS)
        script = '%s && exec libvirtd -f %s -p %s' % (
            mounts, self.conf, os.path.join(self.dir, 'libvirtd.pid'))
        out = open(os.path.join(self.dir, 'libvirtd.out'), 'w')
        self.proc = subprocess.Popen(
            ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
             script], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                with open(os.path.join(self.dir, 'libvirtd.out')) as f:
                    raise DemoError('libvirtd %s exited: %s' %
                                    (self.name, f.read().strip()[-500:]))
            if self.virsh('version', check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise DemoError('libvirtd %s did not answer in 60 s' % self.name)

    def virsh(self, *args, check=True, timeout=600):
        return run(['virsh', '-q', '-c', self.uri] + list(args),
                   timeout=timeout, check=check)

    def qmp(self, dom, command, **arguments):
        """A QMP command through libvirt (which taints the domain as
        custom-monitor)."""
        out = self.virsh('qemu-monitor-command', dom, json.dumps(
            {'execute': command, 'arguments': arguments})).stdout
        return json.loads(out).get('return')

    def stop(self):
        """Destroy what runs, stop the daemon, kill what it left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            names = self.virsh('list', '--name', check=False,
                               timeout=60).stdout.split()
            for dom in names:
                self.virsh('destroy', dom, check=False, timeout=60)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # A QEMU that outlived its daemon, by the pid file libvirt wrote.
        qemu_run = os.path.join(self.dir, 'run', 'libvirt', 'qemu')
        for f in os.listdir(qemu_run) if os.path.isdir(qemu_run) else []:
            if f.endswith('.pid'):
                try:
                    with open(os.path.join(qemu_run, f)) as p:
                        os.kill(int(p.read().strip()), 9)
                except (OSError, ValueError):
                    pass
        self.proc = None


def domain_xml(name, hints, accel, mem_mib, console_path):
    """docs/libvirt-domain.xml with this run's name, guest files, console
    socket, accelerator and free-page-hint."""
    ET.register_namespace('qemu', QEMU_NS)
    tree = ET.parse(DOMAIN_XML)
    dom = tree.getroot()
    dom.set('type', 'kvm' if accel == 'kvm' else 'qemu')
    dom.find('name').text = name
    for tag in ('memory', 'currentMemory'):
        dom.find(tag).text = str(mem_mib)
        dom.find(tag).set('unit', 'MiB')
    kernel, initrd = guestrun.guest_files('fph')
    dom.find('os/kernel').text = kernel
    dom.find('os/initrd').text = initrd
    dom.find('devices/emulator').text = EMULATOR
    devices = dom.find('devices')
    for tag in ('serial', 'console'):
        for e in devices.findall(tag):
            devices.remove(e)
    serial = ET.SubElement(devices, 'serial', type='unix')
    ET.SubElement(serial, 'source', mode='bind', path=console_path)
    ET.SubElement(serial, 'target', port='0')
    prop = dom.find('{%s}override//{%s}property' % (QEMU_NS, QEMU_NS))
    if prop is None or prop.get('name') != 'free-page-hint':
        raise DemoError('%s has no free-page-hint override' % DOMAIN_XML)
    prop.set('value', 'true' if hints else 'false')
    return ET.tostring(dom, encoding='unicode')


def set_console(xml, path):
    """@xml (a domain) with its serial console on the UNIX socket @path."""
    dom = ET.fromstring(xml)
    for src in dom.findall('devices/serial/source'):
        src.set('path', path)
    ET.register_namespace('qemu', QEMU_NS)
    return ET.tostring(dom, encoding='unicode')


class Guest:
    """The guest's serial console, on the UNIX socket its QEMU listens on;
    what guestrun.check_destination() needs of a machine."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise DemoError('no console socket at %s' % path)
                time.sleep(0.2)
        self.console = guestrun.Console(s)

    def wait_shell(self, timeout=180):
        """The guest's shell answers (its boot message may have gone by
        before we connected)."""
        deadline = time.monotonic() + timeout
        if self.console.wait_for(r'FPH-GUEST-READY', min(timeout, 120)):
            time.sleep(0.5)
            return
        while time.monotonic() < deadline:
            try:
                status, out = self.console.run('echo al""ive', timeout=10)
                if status == 0 and 'alive' in out:
                    return
            except TimeoutError:
                pass
        raise DemoError('the guest did not boot in %d s:\n%s' %
                        (timeout, self.console.text[-1500:]))

    def run(self, command, timeout=600):
        status, out = self.console.run(command, timeout=timeout)
        if status:
            raise DemoError('guest command %r failed: %s' % (command, out))
        return out

    def close(self):
        try:
            self.console.sock.close()
        except OSError:
            pass


def check(guest, row):
    """The guest verifies its data; its kernel log is scanned."""
    r = guestrun.RunResult('fph', row['hints'], row['op'], '', 0, 0)
    guestrun.check_destination(guest, r)
    row['check'] = r.check()
    row['ok'] = r.ok()
    return row


def balloon_to(daemon, dom, mib, timeout=300):
    """virsh setmem, then wait until the balloon has got there or stops."""
    daemon.virsh('setmem', dom, '%dM' % mib, '--live')
    start = last_move = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        out = daemon.virsh('dommemstat', dom).stdout
        actual = int(re.search(r'^actual (\d+)', out, re.M).group(1)) // 1024
        if actual <= mib:
            break
        if actual != last:
            last, last_move = actual, time.monotonic()
        elif time.monotonic() - last_move > guestrun.BALLOON_STALL_S:
            break
        time.sleep(0.5)
    progress('   balloon: guest RAM %d MiB' % actual)
    return actual


def save_restore(daemon, dom, guest, console, rundir, label, managed=False):
    """virsh save and restore (@managed: managedsave and start, the image
    in libvirt's own folder), and the data check; the new Guest."""
    if managed:
        op = 'virsh managedsave/start'
        path = os.path.join(daemon.dir, 'lib', 'qemu', 'save', dom + '.save')
        save, restore = ['managedsave', dom], ['start', dom]
    else:
        op = 'virsh save/restore'
        path = os.path.join(rundir, 'save-%s.img' % dom)
        save, restore = ['save', dom, path], ['restore', path]
    progress('%s (hints %s)' % (op, label))
    t = time.monotonic()
    daemon.virsh(*save)
    save_s = time.monotonic() - t
    guest.close()
    size = os.path.getsize(path)
    t = time.monotonic()
    daemon.virsh(*restore)
    restore_s = time.monotonic() - t
    if os.path.exists(path):
        os.unlink(path)
    guest = Guest(console)
    row = {'op': op, 'hints': label, 'mb': size / 1e6, 'time_s': save_s,
           'other': 'restore %.1f s' % restore_s}
    return guest, check(guest, row)


def domjob(daemon, dom):
    """The completed job's figures (libvirt passes the source's to the
    destination)."""
    out = daemon.virsh('domjobinfo', dom, '--completed', check=False).stdout
    info = {}
    for line in out.splitlines():
        key, _, val = line.partition(':')
        info[key.strip()] = val.strip()
    return info


def figure(info, key, unit):
    m = re.match(r'([\d.]+)\s+(\S+)', info.get(key, ''))
    if not m:
        return None
    scale = {'ms': 1, 'B': 1e-6, 'KiB': 1024 / 1e6, 'MiB': 1048576 / 1e6,
             'GiB': 1073741824 / 1e6}
    v = float(m.group(1)) * scale.get(m.group(2), 1)
    return v if unit != 'ms' else int(v)


def migrate_live(src, dst, dom, guest, rundir, label):
    """virsh migrate --live from @src to @dst over tcp loopback; the data
    check on the destination; the destination's Guest."""
    dst_console = os.path.join(rundir, '%s-%s.console' % (dom, dst.name))
    xml = set_console(src.virsh('dumpxml', '--migratable', dom).stdout,
                      dst_console)
    xml_path = os.path.join(rundir, 'migrate-%s.xml' % dst.name)
    with open(xml_path, 'w') as f:
        f.write(xml)
    progress('virsh migrate --live %s -> %s (%s)' % (src.name, dst.name,
                                                     label))
    t = time.monotonic()
    src.virsh('migrate', '--live', '--xml', xml_path, dom, dst.uri,
              '--migrateuri', 'tcp://127.0.0.1:%d' % guestrun.free_port(),
              timeout=900)
    wall = time.monotonic() - t
    guest.close()
    info = domjob(dst, dom)
    guest = Guest(dst_console)
    row = {'op': 'virsh migrate --live', 'hints': label,
           'mb': figure(info, 'Memory processed', 'MB'),
           'time_s': (figure(info, 'Time elapsed', 'ms') or wall * 1000) /
           1000,
           'other': 'downtime %s ms' % figure(info, 'Total downtime', 'ms'),
           'job': info}
    return guest, check(guest, row)


def hint_params(daemon, dom, hints):
    """With hints on, the migration parameters of the demo's bitmap mode.
    libvirt has no name for them, so they go through the monitor; they
    live in the QEMU process, so every start and restore needs them
    again."""
    if hints:
        daemon.qmp(dom, 'migrate-set-parameters',
                   **guestrun.MODES['bitmap'].params)


def one_guest(src, dst, scenario, hints, accel, mem, rundir):
    """Define and start a guest on @src with free-page-hint @hints,
    prepare @scenario (guestrun's: live data, and for 'freed' 3/4 of RAM
    written and freed), save and restore it, managedsave and start it,
    migrate it live to @dst, then balloon it down to a quarter and save and
    restore it there.  The table rows."""
    label = 'on' if hints else 'off'
    dom = 'qemu-fph-%s-hints-%s' % (scenario, label)
    console = row_console(rundir, dom, src)
    xml_path = os.path.join(rundir, dom + '.xml')
    with open(xml_path, 'w') as f:
        f.write(domain_xml(dom, hints, accel, mem, console))
    _, _, prep, _ = guestrun.scenario_commands(scenario, mem)
    rows = []
    progress('%s: virsh define, start %s (free-page-hint=%s)' % (
        scenario, dom, label))
    src.virsh('define', xml_path)
    guest = None
    try:
        src.virsh('start', dom)
        guest = Guest(console)
        guest.wait_shell()
        for c in prep:
            guest.run(c)
        for managed in (False, True):
            hint_params(src, dom, hints)
            guest, row = save_restore(src, dom, guest, console, rundir,
                                      label, managed=managed)
            rows.append(row)
        hint_params(src, dom, hints)
        guest, row = migrate_live(src, dst, dom, guest, rundir, label)
        rows.append(row)
        hint_params(dst, dom, hints)
        got = balloon_to(dst, dom, mem // 4)
        guest, row = save_restore(dst, dom, guest,
                                  row_console(rundir, dom, dst), rundir,
                                  label + ', ballooned')
        row['other'] += ', at %d MiB' % got
        rows.append(row)
        for r in rows:
            r['scenario'] = scenario
        return rows
    finally:
        if guest:
            guest.close()
        for d in (src, dst):
            d.virsh('destroy', dom, check=False, timeout=60)
        src.virsh('undefine', '--managed-save', dom, check=False, timeout=60)


def row_console(rundir, dom, daemon):
    return os.path.join(rundir, '%s-%s.console' % (dom, daemon.name))


COLUMNS = ['guest', 'operation', 'hints', 'MB (file / sent)', 'time s',
           'then', 'data check']


def print_table(rows):
    body = [[r['scenario'], r['op'], r['hints'], '-' if r['mb'] is None else
             '%.1f' % r['mb'], '%.1f' % r['time_s'], r['other'], r['check']]
            for r in rows]
    print(report.text_table(COLUMNS, body))


SAVE_WHY = (
    'virsh save and managedsave gain nothing from hints: libvirt pauses '
    'the guest\'s vCPUs before it migrates the guest to the image file, '
    'so the guest cannot answer QEMU\'s free page hint request.  What works '
    'with libvirt as it is: balloon the guest down first (virsh setmem, the '
    '"ballooned" rows): qemu-fph writes none of the balloon\'s pages, and '
    'virsh setmem gives the memory back after the restore.')


def explain_saves(rows):
    """Say why saves with hints on are no smaller, when they are not."""
    for r in rows:
        if r['op'] != 'virsh save/restore' or r['hints'] != 'on':
            continue
        off = [o for o in rows if o['op'] == r['op'] and
               o['hints'] == 'off' and o['scenario'] == r['scenario']]
        if off and r['mb'] > 0.9 * off[0]['mb']:
            print(textwrap.fill(SAVE_WHY, 79))
            return


def chart(rows, path, title):
    """The MB bars with report.write_chart: one group per operation."""
    results = []
    for r in rows:
        op = r['op'].split()[1].split('/')[0]     # save, managedsave...
        res = guestrun.RunResult('fph', 'hints ' + r['hints'],
                                 '%s: %s' % (r['scenario'], op), '', 0, 0)
        res.mb_sent = round(r['mb'] or 0, 1)
        results.append(res)
    report.write_chart(results, path, title)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--mem', type=int, default=1024,
                        help='guest RAM in MiB (default 1024)')
    parser.add_argument('--scenarios', default='idle,freed',
                        help='idle, freed (default both)')
    parser.add_argument('--out', default=os.path.join(guestrun.BUILD,
                                                      'libvirt-demo'))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('libvirt-demo: run as root (libvirt\'s system daemons, '
                 'mount namespaces, dpkg -i)')
    os.makedirs(args.out, exist_ok=True)
    try:
        ensure_libvirt()
        guestrun.build_guests(['fph'])
        pkg = Package()
    except DemoError as e:
        sys.exit('libvirt-demo: %s' % e)
    rundir = tempfile.mkdtemp(prefix='fph-libvirt-')
    daemons = []
    rows = []
    failed = None
    try:
        accel, why = guestrun.pick_accel('fph', qemu=EMULATOR)
        progress('accelerator: %s (%s); guest %d MiB' % (accel, why,
                                                         args.mem))
        for name in ('src', 'dst'):
            d = Daemon(rundir, name)
            daemons.append(d)
            d.start()
            progress('libvirtd %s: %s, host_uuid %s' % (name, d.uri,
                                                        d.host_uuid))
        src, dst = daemons
        for scenario in args.scenarios.split(','):
            for hints in (False, True):
                rows += one_guest(src, dst, scenario, hints, accel,
                                  args.mem, rundir)
    except (DemoError, subprocess.TimeoutExpired, OSError,
            TimeoutError) as e:
        failed = str(e)
    finally:
        for d in daemons:
            d.stop()
        pkg.remove()
    if failed:
        print('libvirt-demo: %s' % failed, file=sys.stderr)
        print('libvirt-demo: the daemons\' and QEMU\'s logs are in %s' %
              rundir, file=sys.stderr)
    else:
        shutil.rmtree(rundir, ignore_errors=True)
    if not rows:
        return 1
    print()
    print(textwrap.fill(
        'qemu-fph under libvirt %s: %d MiB guest, %s, 2 vCPUs; live data '
        '%d MiB, checked after every move; "freed": 3/4 of RAM written and '
        'freed first; "ballooned": virsh setmem to a quarter first; MB: the '
        'image file, or what the migration sent (domjobinfo\'s memory '
        'processed)' % (run(['virsh', '--version']).stdout.strip(), args.mem,
                        accel, max(16, args.mem // 16)), 79))
    print_table(rows)
    explain_saves(rows)
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
        json.dump({'meta': {'accel': accel, 'guest_mib': args.mem},
                   'rows': rows}, f, indent=2)
    note = ''
    try:
        chart(rows, os.path.join(args.out, 'results.png'),
              'libvirt: MB written or sent, %d MiB guest, %s' %
              (args.mem, accel))
        note = ' and results.png'
    except ImportError:
        note = '; no chart: python3-matplotlib is missing'
    print('(also in %s/results.json%s)' % (args.out, note))
    return 1 if failed or not all(r['ok'] for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
