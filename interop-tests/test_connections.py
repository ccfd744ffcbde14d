"""libamp's connection layer against hostile or unlucky peers, process to process:
descriptors a peer pushes over a UNIX socket, StartTLS against a certificate for
another name.

Set AMP_CLI to run these against another amp-cli build.
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


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA; a certificate for localhost and 127.0.0.1, one for other.example."""
    d = tmp_path_factory.mktemp("pki")

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=amp conn test CA")
    for name, san in (("good", "DNS:localhost,IP:127.0.0.1"), ("other", "DNS:other.example")):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
             name + ".csr", "-subj", "/CN=" + san.split(",")[0][4:])
        (d / (name + ".ext")).write_text("subjectAltName=%s\n" % san)
        ossl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext")
    return d


def starttls_server(amp_cli, pki, name):
    return Proc([amp_cli, "listen", "--starttls-cert", str(pki / (name + ".pem")),
                 "--starttls-key", str(pki / (name + ".key")), "tcp:0:interface=127.0.0.1"],
                r"\(port (\d+)\)", stream="stderr")


def call(amp_cli, *argv):
    return run([amp_cli, "call", "--timeout", "10", *argv, "Sum", "a:int=1"], check=False)


def test_starttls_refuses_a_certificate_for_another_name(amp_cli, pki):
    srv = starttls_server(amp_cli, pki, "other")
    port = srv.match.group(1)
    ca = str(pki / "ca.pem")
    try:
        for host in ("127.0.0.1", "localhost"):
            p = call(amp_cli, "--starttls", "--ca", ca, "tcp:%s:%s" % (host, port))
            assert p.returncode == 5, p
            assert b"certificate verification failed" in p.stderr, p.stderr
        # the name the certificate carries, asked for explicitly
        p = call(amp_cli, "--starttls", "--ca", ca, "--hostname", "other.example",
                 "tcp:127.0.0.1:" + port)
        assert p.returncode == 0, p.stderr
        # no verification only when asked for, and loudly
        p = call(amp_cli, "--starttls", "--insecure", "tcp:127.0.0.1:" + port)
        assert p.returncode == 0, p.stderr
        assert b"WARNING: --insecure" in p.stderr, p.stderr
    finally:
        srv.stop()


def test_starttls_verifies_by_default(amp_cli, pki):
    srv = starttls_server(amp_cli, pki, "good")
    port = srv.match.group(1)
    try:
        for host in ("127.0.0.1", "localhost"):  # an IP address entry, a DNS name
            p = call(amp_cli, "--starttls", "--ca", str(pki / "ca.pem"),
                     "tcp:%s:%s" % (host, port))
            assert p.returncode == 0, p.stderr
            assert p.stdout == b"{}\n"
        # without --ca the system's CAs apply, which do not know this one
        p = call(amp_cli, "--starttls", "tcp:127.0.0.1:" + port)
        assert p.returncode == 5 and b"certificate verification failed" in p.stderr, p.stderr
    finally:
        srv.stop()


def test_ssl_endpoint_insecure_only_on_request(amp_cli, pki):
    ep = "ssl:0:privateKey=%s:certKey=%s:interface=127.0.0.1" % (pki / "other.key",
                                                                 pki / "other.pem")
    srv = Proc([amp_cli, "listen", ep], r"\(port (\d+)\)", stream="stderr")
    port = srv.match.group(1)
    try:
        p = call(amp_cli, "ssl:host=127.0.0.1:port=%s:caCerts=%s" % (port, pki / "ca.pem"))
        assert p.returncode == 5 and b"verification failed" in p.stderr, p.stderr
        p = call(amp_cli, "--insecure", "ssl:host=127.0.0.1:port=" + port)
        assert p.returncode == 0 and b"WARNING" in p.stderr, p.stderr
    finally:
        srv.stop()


def test_amp_cli_call_over_ssl_ends_with_close_notify(amp_cli, pki):
    """An orderly close sends TLS's close_notify: the server reads a clean
    end of the stream, not a connection cut short."""
    import ssl
    import threading

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki / "good.pem"), str(pki / "good.key"))
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Python's default hides a missing one
    lsock = socket.create_server(("127.0.0.1", 0))
    seen = {}

    def serve():
        raw, _ = lsock.accept()
        raw.settimeout(10)
        # suppress_ragged_eofs off: an EOF without close_notify raises
        s = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
        data = b""
        while not data.endswith(b"\0\0"):
            data += s.recv(4096)
        pairs, i = {}, 0
        while data[i:i + 2] != b"\0\0":
            (kl,) = struct.unpack(">H", data[i:i + 2])
            (vl,) = struct.unpack(">H", data[i + 2 + kl:i + 4 + kl])
            pairs[data[i + 2:i + 2 + kl]] = data[i + 4 + kl:i + 4 + kl + vl]
            i += 4 + kl + vl
        s.sendall(box((b"_answer", pairs[b"_ask"]), (b"total", b"1")))
        try:
            seen["rest"] = s.recv(4096)
        except ssl.SSLEOFError as e:
            seen["error"] = e
        raw.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        # --no-signature: this peer answers one box, the call itself
        p = call(amp_cli, "--no-signature", "ssl:host=127.0.0.1:port=%d:caCerts=%s"
                 % (lsock.getsockname()[1], pki / "ca.pem"))
        assert p.returncode == 0 and p.stdout == b'{"total":"1"}\n', p
    finally:
        t.join(20)
        lsock.close()
    assert seen == {"rest": b""}, seen
