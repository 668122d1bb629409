#!/usr/bin/python3
"""The package install test of make check, as TAP: build qemu-fph's .deb,
install it with dpkg into a throwaway root, boot qemu-fph's guest from the
installed binary (its firmware from Debian's packages through the
installed links), purge it and check nothing is left; then the same for
make install's tree (scripts/install.sh) with DESTDIR.

The throwaway root's dpkg database holds only the packages the .deb
depends on, copied from this machine's, so dpkg checks the Depends line
against what is really installed here, and the installed links resolve to
this machine's firmware.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestrun                                   # noqa: E402

TOP = guestrun.TOP
PACKAGE = 'qemu-fph-system-x86'
BIN = 'usr/bin/qemu-fph-system-x86_64'
FIRMWARE_PACKAGES = ('seabios', 'ipxe-qemu', 'qemu-system-data')
# A NIC makes QEMU load iPXE's option ROM; -kernel loads linuxboot_dma.bin
# (qemu-system-data), the machine bios-256k.bin (seabios).
FIRMWARE_MODE = guestrun.Mode('installed', 'fph', 'free-page-hint=on',
                              extra=('-device', 'virtio-net-pci'))
VERSION_RE = r'^7\.2[^:]*\+fph\d+$'


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=''):
        self.n += 1
        if not cond:
            self.failed += 1
            for line in detail.strip().splitlines()[-20:]:
                print('# ' + line)
        print('%s %d - %s' % ('ok' if cond else 'not ok', self.n, name),
              flush=True)
        return cond


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def dep_names(depends):
    """Package names of a Depends field (the first of alternatives)."""
    return [re.match(r'\s*([^\s(|]+)', d).group(1)
            for d in depends.split(',')]


def make_root(root, names):
    """A dpkg database in @root with this machine's entries of @names."""
    admin = os.path.join(root, 'var', 'lib', 'dpkg')
    for sub in ('info', 'updates', 'triggers'):
        os.makedirs(os.path.join(admin, sub))
    with open(os.path.join(admin, 'status'), 'w') as status:
        for name in names:
            entry = sh(['dpkg-query', '-s', name])
            if entry.returncode:
                return '%s is not installed on this machine' % name
            status.write(entry.stdout.rstrip('\n') + '\n\n')
            # An empty file list per package: dpkg reads them all.
            arch_name = sh(['dpkg-query', '-W', '-f=${binary:Package}',
                            name]).stdout
            open(os.path.join(admin, 'info', arch_name + '.list'),
                 'w').close()
    return None


def leftovers(root, keep, empty_dirs=True):
    """Paths under @root but @keep, its parents and what it holds; with
    @empty_dirs False, empty folders (say /usr/local/lib) do not count."""
    parents = set()
    p = keep
    while p:
        parents.add(p)
        p = os.path.dirname(p)
    out = []
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            rel = os.path.relpath(os.path.join(d, name), root)
            if rel in parents or rel.startswith(keep + os.sep):
                continue
            path = os.path.join(d, name)
            if (empty_dirs or not os.path.isdir(path) or
                    os.path.islink(path) or 'qemu-fph' in rel):
                out.append(rel)
    return out


def boot_installed(tap, binary, what):
    """Boot the qemu-fph guest with @binary under TCG: its firmware is
    found, its balloon is qemu-fph's, its shell answers."""
    tap.ok(guestrun.device_has_property(binary, 'virtio-balloon-pci',
                                        'ballooned-page-bitmap'),
           '%s: the balloon is qemu-fph\'s' % what)
    rundir = tempfile.mkdtemp(prefix='fph-pkg-boot-')
    try:
        g = guestrun.boot('installed', FIRMWARE_MODE,
                          guestrun.Setup('tcg', 256, qemu=binary), rundir)
        try:
            roms = g.cmd('human-monitor-command',
                         **{'command-line': 'info roms'})
            status, out = g.console.run('echo al""ive', timeout=60)
        finally:
            g.close()
        tap.ok('bios-256k.bin' in roms and 'linuxboot_dma.bin' in roms,
               '%s: firmware found (seabios, qemu-system-data, iPXE ROM)'
               % what, roms)
        tap.ok(status == 0 and 'alive' in out,
               '%s: the guest booted and its shell answers' % what, out)
    except guestrun.RUN_ERRORS as e:
        tap.ok(False, '%s: boot the qemu-fph guest' % what, str(e))
    finally:
        shutil.rmtree(rundir, ignore_errors=True)


def check_deb(tap, tmp):
    built = sh([os.path.join(TOP, 'scripts', 'make-deb.sh'), TOP,
                guestrun.BUILD])
    if not tap.ok(built.returncode == 0, 'make deb', built.stderr):
        return
    deb = built.stdout.split()[-1]
    fields = {f: sh(['dpkg-deb', '-f', deb, f]).stdout.strip()
              for f in ('Package', 'Version', 'Depends')}
    tap.ok(fields['Package'] == PACKAGE and
           re.match(VERSION_RE, fields['Version']),
           'package %s %s' % (fields['Package'], fields['Version']))
    names = dep_names(fields['Depends'])
    tap.ok(all(p in names for p in FIRMWARE_PACKAGES),
           'depends on the firmware packages ' + ', '.join(FIRMWARE_PACKAGES),
           fields['Depends'])
    # Every file and link of the package, none of them another installed
    # package's (Debian's qemu-system-x86 among them, where installed).
    files = [line.split()[5][1:] for line in
             sh(['dpkg-deb', '-c', deb]).stdout.splitlines()
             if not line.startswith('d')]
    owned = [f for f in files if sh(['dpkg', '-S', f]).returncode == 0]
    tap.ok('/' + BIN in files and not owned,
           'installs beside Debian\'s packages (no file of theirs)',
           'owned elsewhere: %s' % owned)

    root = os.path.join(tmp, 'root')
    err = make_root(root, names)
    if not tap.ok(err is None, 'throwaway root with the dependencies',
                  err or ''):
        return
    dpkg = ['dpkg', '--root=' + root, '--log=/dev/null']
    inst = sh(dpkg + ['-i', deb])
    if not tap.ok(inst.returncode == 0, 'dpkg --root -i',
                  inst.stdout + inst.stderr):
        return
    boot_installed(tap, os.path.join(root, BIN), 'dpkg-installed')
    purge = sh(dpkg + ['--purge', PACKAGE])
    tap.ok(purge.returncode == 0, 'dpkg --root --purge',
           purge.stdout + purge.stderr)
    left = leftovers(root, os.path.join('var', 'lib', 'dpkg'))
    tap.ok(not left, 'nothing left after the purge', '\n'.join(left))


def check_install_tree(tap, tmp):
    """make install DESTDIR=... PREFIX=/usr/local, then uninstall."""
    dest = os.path.join(tmp, 'destdir')
    script = os.path.join(TOP, 'scripts', 'install.sh')
    qemu = os.path.join(guestrun.BUILD, 'qemu', 'qemu-system-x86_64')
    inst = sh([script, 'install', qemu, dest, '/usr/local'])
    binary = os.path.join(dest, 'usr/local/bin/qemu-fph-system-x86_64')
    if not tap.ok(inst.returncode == 0 and os.path.exists(binary),
                  'install.sh DESTDIR PREFIX=/usr/local',
                  inst.stdout + inst.stderr):
        return
    boot_installed(tap, binary, 'make install tree')
    sh([script, 'uninstall', dest, '/usr/local'])
    left = leftovers(dest, 'usr/local/bin', empty_dirs=False)
    left += os.listdir(os.path.join(dest, 'usr/local/bin'))
    tap.ok(not left, 'nothing left after uninstall', '\n'.join(left))


def main():
    tap = Tap()
    kernel, initrd = guestrun.guest_files('fph')
    if not (os.path.exists(kernel) and os.path.exists(initrd)):
        guestrun.build_guests(['fph'])
    tmp = tempfile.mkdtemp(prefix='fph-pkg-check-')
    try:
        check_deb(tap, tmp)
        check_install_tree(tap, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('1..%d' % tap.n)
    return 1 if tap.failed else 0


if __name__ == '__main__':
    sys.exit(main())
