"""Shared fixtures: where the built tools are."""
import os
import re
import signal
import subprocess
import time

import pytest

SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


def _tool(name):
    path = os.environ.get(name.upper().replace("-", "_"))
    if not path:
        path = os.path.join(os.environ.get("AMP_BUILD_DIR", "build"), "tools", name, name)
    if not os.access(path, os.X_OK):
        pytest.fail("%s not built at %s (set AMP_BUILD_DIR)" % (name, path))
    return path


@pytest.fixture(scope="session")
def amp_cli():
    return _tool("amp-cli")


def run(argv, data=b"", check=True):
    env = dict(os.environ)
    # a sanitizer report must not look like an ordinary "bad input" exit
    env.setdefault("ASAN_OPTIONS", "exitcode=86:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:exitcode=87:print_stacktrace=1")
    p = subprocess.run(argv, input=data, capture_output=True, env=env, timeout=120)
    for marker in SANITIZER_MARKERS:
        assert marker.encode() not in p.stderr, p.stderr.decode(errors="replace")
    if check:
        assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p


class Proc:
    """A process that prints a line when it is ready; stopped by its pid."""

    def __init__(self, argv, ready, stream="stdout"):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "exitcode=86")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env)
        self.lines = []
        pipe = getattr(self.proc, stream)
        deadline = time.time() + 20
        while time.time() < deadline:
            line = pipe.readline().decode()
            if not line:
                break
            self.lines.append(line)
            m = re.search(ready, line)
            if m:
                self.match = m
                return
        self.stop()
        raise RuntimeError("%s not ready: %r" % (argv, self.lines))

    def readline(self):
        return self.proc.stdout.readline().decode()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        err = self.proc.stderr.read().decode(errors="replace")
        for marker in SANITIZER_MARKERS:
            assert marker not in err, err
        return err
