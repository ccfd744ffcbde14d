"""libamp's connection layer against hostile or unlucky peers, process to process:
descriptors a peer pushes over a UNIX socket, StartTLS against a certificate for
another name.
"""
import array
import os
import socket
import struct
import subprocess

import pytest

from conftest import Proc, run


def box(*pairs):
    out = b""
    for k, v in pairs:
        out += struct.pack(">H", len(k)) + k + struct.pack(">H", len(v)) + v
    return out + b"\0\0"


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_descriptors_to_a_connection_that_did_not_opt_in_are_closed(amp_cli, tmp_path):
    """1000 descriptors pushed at amp-cli listen (which takes none): its
    descriptor table does not grow, and the call they rode with is answered."""
    sock = str(tmp_path / "listen.sock")
    srv = Proc([amp_cli, "listen", "unix:" + sock], r"listening", stream="stderr")
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(sock)
        data = box((b"_command", b"Echo"), (b"_ask", b"1"), (b"a", b"x" * 1000))
        # a first complete call: the connection is up and idle
        c.sendall(box((b"_command", b"Echo"), (b"_ask", b"0"), (b"a", b"")))
        assert srv.readline().startswith("{")
        c.recv(4096)
        before = open_fds(srv.proc.pid)
        fd = os.open("/dev/null", os.O_RDONLY)
        fds = array.array("i", [fd])
        for i in range(1000):  # one descriptor with each byte, as Twisted sends them
            c.sendmsg([data[i:i + 1]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        c.sendall(data[1000:])
        assert '"_ask":"1"' in srv.readline()
        c.settimeout(20)
        assert b"_answer" in c.recv(4096)
        after = open_fds(srv.proc.pid)
        os.close(fd)
        c.close()
        assert after <= before + 2, "descriptors held by amp-cli listen: %d -> %d" % (
            before, after)
    finally:
        srv.stop()
