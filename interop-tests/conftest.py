"""Shared fixtures: where the built tools are."""
import os
import subprocess

import pytest


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
    for marker in (b"AddressSanitizer", b"runtime error:", b"LeakSanitizer"):
        assert marker not in p.stderr, p.stderr.decode(errors="replace")
    if check:
        assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p
