"""The broker under bad input and hostile peers: each case asserts the
outcome and that the broker still serves others afterwards."""
import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import run
from test_auth import Peer, files, start  # noqa: F401
from test_broker import BROKER, Proc, broker, cli, provider, raw_box, rss_kb, stats
from test_twisted_interop import AMP_CLI, pki  # noqa: F401


def still_serves(endpoint):
    r = cli(endpoint, "amp.Stats", check=False)
    return r.returncode == 0 or b"PERMISSION_DENIED" in r.stderr or b"AUTH_REQUIRED" in r.stderr


def closed_soon(sock, seconds=5):
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except (socket.timeout, ConnectionResetError) as e:
        return isinstance(e, ConnectionResetError)


def test_huge_length_claims_on_many_sockets(files):
    """14 sockets each start a box that claims more and more 65535-byte values
    and push 20 MB: before login a box may hold 4096 bytes, so each is cut
    off at once and the broker's memory does not grow."""
    b = start(files)
    try:
        before = rss_kb(b.proc.pid)
        chunk = struct.pack("!H", 1) + b"k" + struct.pack("!H", 65535) + b"x" * 65535
        socks = [socket.create_connection(("127.0.0.1", b.port)) for _ in range(14)]
        for s in socks:
            s.settimeout(5)
            try:
                for _ in range(320):  # about 20 MB
                    s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                pass
        grown = rss_kb(b.proc.pid) - before
        assert grown < 8 * 1024, "grew by %d KiB" % grown
        for s in socks:
            assert closed_soon(s)
            s.close()
        assert still_serves("tcp:127.0.0.1:%d" % b.port)
        p = Peer(b.port)
        assert b"_answer" in p.call("amp.Login", token="s3cret-token")
    finally:
        b.stop()


def test_oversize_keys_and_key_counts_are_counted(tmp_path):
    b = broker(config="[broker]\nmax_keys = 8\nmax_box_bytes = 10000\n", tmp_path=tmp_path)
    try:
        cases = [
            raw_box([(b"K" * 255, b"")])[:-2] + struct.pack("!H", 256) + b"K" * 256,
            raw_box([(("k%d" % i).encode(), b"") for i in range(9)]),
            raw_box([(b"v", b"x" * 20000)]),
        ]
        for data in cases:
            s = socket.create_connection(("127.0.0.1", b.port))
            s.sendall(data)
            assert closed_soon(s)
            s.close()
        assert still_serves(b.endpoint)
        errors = cli(b.endpoint, "amp.Stats").stdout
        for name in (b"key-too-long", b"too-many-keys", b"box-too-large"):
            assert name in errors, errors
        assert stats(b.endpoint)["protocol_errors"] == 3
    finally:
        b.stop()


def test_slowloris_plain_port_is_closed_at_the_login_timeout(files):
    b = start(files)
    try:
        s = socket.create_connection(("127.0.0.1", b.port))
        login = raw_box([(b"_ask", b"1"), (b"_command", b"amp.Login"), (b"token", b"x")])
        t0 = time.time()
        closed = False
        for byte in login[:-1]:  # never finishes the box
            try:
                s.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.05)
            if time.time() - t0 > 3:
                break
        assert closed or closed_soon(s, 3)
        assert time.time() - t0 < 4
        assert still_serves("tcp:127.0.0.1:%d" % b.port)
    finally:
        b.stop()


def test_plaintext_on_the_tls_port(pki, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[broker]\nlisten = ssl:0:privateKey=%s:certKey=%s\n" % (
        pki / "server.key", pki / "server.pem"))
    b = Proc([BROKER, "--config", str(conf)], r"\(port (\d+)\)", stream="stderr")
    try:
        port = int(b.match.group(1))
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Stats")]))
        assert closed_soon(s)
        r = run([AMP_CLI, "call", "ssl:host=localhost:port=%d:caCerts=%s" % (port, pki / "ca.pem"),
                 "amp.Stats"])
        assert b"connections" in r.stdout
    finally:
        b.stop()


@pytest.mark.parametrize("shift,why", [("-30d", b"expired"), ("+30d", b"not yet valid")])
def test_expired_and_not_yet_valid_certificates(pki, tmp_path, shift, why):
    d = tmp_path
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "s.key",
                    "-out", "s.csr", "-subj", "/CN=localhost"], cwd=d, check=True,
                   capture_output=True)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    subprocess.run(["faketime", "-f", shift, "openssl", "x509", "-req", "-in", "s.csr", "-CA",
                    str(pki / "ca.pem"), "-CAkey", str(pki / "ca.key"), "-CAcreateserial",
                    "-out", "s.pem", "-days", "2", "-extfile", "san.ext"], cwd=d, check=True,
                   capture_output=True)
    conf = d / "c.conf"
    conf.write_text("[broker]\nlisten = ssl:0:privateKey=%s:certKey=%s\n" % (d / "s.key",
                                                                           d / "s.pem"))
    b = Proc([BROKER, "--config", str(conf)], r"\(port (\d+)\)", stream="stderr")
    try:
        port = int(b.match.group(1))
        r = run([AMP_CLI, "call", "ssl:host=localhost:port=%d:caCerts=%s" % (port, pki / "ca.pem"),
                 "amp.Stats"], check=False)
        assert r.returncode == 5 and why in r.stderr, r.stderr
    finally:
        b.stop()


def test_calls_in_flight_per_connection(tmp_path):
    b = broker(config="[broker]\nmax_calls_in_flight = 5\n", tmp_path=tmp_path)
    p = provider("c", b.endpoint)
    try:
        s = socket.create_connection(("127.0.0.1", b.port))
        s.settimeout(10)
        s.sendall(b"".join(raw_box([(b"_ask", str(i).encode()), (b"_command", b"Delay"),
                                    (b"ms", b"300"), (b"n", str(i).encode())])
                           for i in range(1, 11)))
        from test_broker import read_box
        buf, answers, refused = b"", 0, 0
        for _ in range(10):
            got, buf = read_box(s, buf)
            got = dict(got)
            if b"_answer" in got:
                answers += 1
            elif got.get(b"_error_code") == b"OVERLOADED":
                refused += 1
        assert (answers, refused) == (5, 5)
        assert stats(b.endpoint)["calls_refused"] == 5
        s.close()
    finally:
        p.stop()
        b.stop()


def test_output_held_over_the_soft_cap_closes_the_reader(tmp_path):
    b = broker(config="[broker]\nevent_queue_bytes = 67108864\noutput_soft_cap = 1048576\n"
                      "output_soft_seconds = 0.5\n", tmp_path=tmp_path)
    try:
        slow = socket.create_connection(("127.0.0.1", b.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Subscribe"),
                              (b"pattern", b"flood")]))
        time.sleep(0.2)
        pub = socket.create_connection(("127.0.0.1", b.port))
        pub.sendall(raw_box([(b"_command", b"flood"), (b"data", b"x" * 1000)]) * 20000)
        deadline = time.time() + 10
        while time.time() < deadline and stats(b.endpoint)["slow_connections_closed"] < 1:
            time.sleep(0.2)
        s = stats(b.endpoint)
        assert s["slow_connections_closed"] == 1, s
        assert s["connections"] == 2, s  # the publisher and this stats call stay
        pub.close()
        slow.close()
    finally:
        b.stop()


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, check=check)


def test_half_open_peer_found_by_keepalive(tmp_path):
    """A peer whose link goes dead without a FIN: TCP keepalive probes go
    unanswered and the broker closes the connection within idle + 3 probes."""
    ns = "ampho%d" % os.getpid()
    if sh("ip", "netns", "add", ns, check=False).returncode:
        pytest.skip("cannot create a network namespace here")
    try:
        sh("ip", "link", "add", ns + "a", "type", "veth", "peer", "name", ns + "b")
        sh("ip", "link", "set", ns + "b", "netns", ns)
        sh("ip", "addr", "add", "10.77.0.1/24", "dev", ns + "a")
        sh("ip", "link", "set", ns + "a", "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", "10.77.0.2/24", "dev", ns + "b")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ns + "b", "up")
        conf = tmp_path / "k.conf"
        conf.write_text("[broker]\nkeepalive = 1\nlisten = tcp:0:interface=127.0.0.1\n")
        b = Proc([BROKER, "--config", str(conf), "--listen", "tcp:0:interface=127.0.0.1",
                  "--listen", "tcp:7761:interface=10.77.0.1"], r"tcp:7761.*\(port 7761\)",
                 stream="stderr")
        local = "tcp:127.0.0.1:" + re.search(r"\(port (\d+)\)", "".join(b.lines)).group(1)
        client = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c",
                                   "import socket,time\n"
                                   "s=socket.create_connection(('10.77.0.1',7761))\n"
                                   "print('connected',flush=True)\ntime.sleep(60)\n"],
                                  stdout=subprocess.PIPE)
        try:
            assert client.stdout.readline() == b"connected\n"
            time.sleep(0.3)
            assert stats(local)["connections"] == 2  # the client and this call
            sh("ip", "netns", "exec", ns, "ip", "link", "set", ns + "b", "down")
            t0 = time.time()
            while time.time() - t0 < 15 and stats(local)["connections"] > 1:
                time.sleep(0.5)
            assert stats(local)["connections"] == 1, "the half-open connection is still there"
            assert time.time() - t0 < 10
        finally:
            os.kill(client.pid, signal.SIGKILL)
            client.wait()
            b.stop()
    finally:
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", ns + "a", check=False)


def tls_broker(key, cert, tmp_path, extra=""):
    conf = tmp_path / "tls.conf"
    conf.write_text("[broker]\nlisten = ssl:0:privateKey=%s:certKey=%s%s:interface=127.0.0.1\n"
                    % (key, cert, extra))
    b = Proc([BROKER, "--config", str(conf)], r"\(port (\d+)\)", stream="stderr")
    b.port = int(b.match.group(1))
    return b


def test_self_signed_server_certificate_is_refused(pki, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    "self.key", "-out", "self.pem", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], cwd=tmp_path, check=True,
                   capture_output=True)
    b = tls_broker(tmp_path / "self.key", tmp_path / "self.pem", tmp_path)
    try:
        r = run([AMP_CLI, "call", "ssl:host=localhost:port=%d:caCerts=%s" % (b.port,
                 pki / "ca.pem"), "amp.Stats"], check=False)
        assert r.returncode == 5 and b"self-signed" in r.stderr, r.stderr
    finally:
        b.stop()


def test_second_tls_stack_gnutls(pki, tmp_path):
    """GnuTLS completes a handshake with the broker (TLS 1.2 or 1.3, the
    chain verified against the test CA) and refuses TLS 1.1 like OpenSSL."""
    b = tls_broker(pki / "server.key", pki / "server.pem", tmp_path)
    try:
        base = ["gnutls-cli", "--x509cafile", str(pki / "ca.pem"), "-p", str(b.port),
                "localhost"]
        r = subprocess.run(base, input=b"", capture_output=True, timeout=30)
        out = r.stdout.decode(errors="replace")
        assert "Handshake was completed" in out, out + r.stderr.decode(errors="replace")
        assert re.search(r"\(TLS1\.[23]-", out), out
        r = subprocess.run(base + ["--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.1"], input=b"",
                           capture_output=True, timeout=30)
        assert "Handshake was completed" not in r.stdout.decode(errors="replace")
        assert still_serves("ssl:host=localhost:port=%d:caCerts=%s" % (b.port, pki / "ca.pem"))
    finally:
        b.stop()


def test_session_closed_by_its_own_output_cap_disconnects_the_peer(tmp_path):
    """A peer that registers a command, then sends calls whose answers it
    never reads: the answer that does not fit under output_hard_cap closes its
    session, and the broker must then really close the connection (not keep a
    zombie whose registrations stay and whose calls fail)."""
    b = broker(config="[broker]\noutput_hard_cap = 262144\n", tmp_path=tmp_path)
    p = provider("c", b.endpoint)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", b.port))
        s.settimeout(10)
        s.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Register"),
                           (b"command", b"Zombie")]))
        from test_broker import read_box
        pairs, _ = read_box(s, b"")
        assert pairs == [(b"_answer", b"1")]
        assert b"Zombie" in cli(b.endpoint, "amp.Commands").stdout
        big = b"x" * 60000
        try:
            for i in range(2, 202):  # 12 MB of answers, far over the cap
                s.sendall(raw_box([(b"_ask", b"%x" % i), (b"_command", b"EchoString"),
                                   (b"value", big)]))
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: what we want
        deadline = time.time() + 10
        while time.time() < deadline and stats(b.endpoint)["connections"] > 2:
            time.sleep(0.1)
        assert stats(b.endpoint)["connections"] == 2  # the provider and this call
        assert b"Zombie" not in cli(b.endpoint, "amp.Commands").stdout
        r = cli(b.endpoint, "Zombie", check=False)
        assert r.returncode != 0 and b"UNHANDLED" in r.stderr, r.stderr
        assert closed_soon(s)
        s.close()
        assert b"session closed" in b.stop().encode()  # the reason is logged
    finally:
        p.stop()
        b.stop()
