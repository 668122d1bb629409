"""A small synchronous QMP client and QEMU process helper for qemu-fph's
scripts (the demo, benchmarks and soaks): start a QEMU, talk QMP over a
UNIX socket, stop it."""

import json
import os
import socket
import subprocess
import tempfile
import time


class QMPError(Exception):
    pass


class QEMU:
    """One QEMU process with a QMP socket."""

    def __init__(self, binary, args, name, workdir=None, serial=None):
        self.name = name
        self.workdir = workdir or tempfile.mkdtemp(prefix='fph-')
        self.qmp_path = os.path.join(self.workdir, name + '.qmp')
        self.log_path = os.path.join(self.workdir, name + '.log')
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)
        argv = [binary, '-nodefaults', '-display', 'none',
                '-name', name + ',debug-threads=on',
                '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path,
                '-serial', serial or 'none'] + list(args)
        self.argv = argv
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        self.sock = None
        self.buf = b''
        self._connect()

    def _connect(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise QMPError('%s exited (%s): %s' %
                               (self.name, self.proc.returncode,
                                self.log_text()))
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.qmp_path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise QMPError('%s: no QMP socket' % self.name)
                time.sleep(0.05)
        self.sock = s
        self._read_message()                        # greeting
        self.cmd('qmp_capabilities')

    def log_text(self):
        self.log.flush()
        with open(self.log_path, errors='replace') as f:
            return f.read()[-2000:]

    def _read_message(self):
        while b'\n' not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise QMPError('%s: QMP connection closed: %s' %
                               (self.name, self.log_text()))
            self.buf += data
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def cmd(self, command, **arguments):
        msg = {'execute': command}
        if arguments:
            msg['arguments'] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b'\n')
        while True:
            reply = self._read_message()
            if 'event' in reply:
                continue
            if 'error' in reply:
                raise QMPError('%s: %s: %s' % (self.name, command,
                                               reply['error']['desc']))
            return reply['return']

    def hmp(self, command_line):
        return self.cmd('human-monitor-command', **{'command-line':
                                                    command_line})

    def close(self):
        if self.proc.poll() is None:
            try:
                self.cmd('quit')
            except (QMPError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.sock:
            self.sock.close()
        self.log.close()


def kvm_usable():
    try:
        fd = os.open('/dev/kvm', os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True
