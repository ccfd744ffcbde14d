"""The broker under bad input and hostile peers: each case asserts the
outcome and that the broker still serves others afterwards."""
import hashlib
import json
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
from test_broker import (BROKER, Proc, broker, cli, decode_amplist, http_get, provider, raw_box,
                         read_box, rss_kb, stats)
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
    b = start(files, login_timeout=0.7)  # the timeout is what this test is about
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


# ---- state a peer controls: caps, and what is freed when it leaves --------------


class Boxes:
    """Boxes from a raw socket, parsed in place (fast enough for thousands)."""

    def __init__(self, sock):
        self.s, self.buf, self.i = sock, b"", 0

    def _need(self, n):
        while len(self.buf) - self.i < n:
            chunk = self.s.recv(1 << 20)
            assert chunk, "connection closed"
            self.buf = self.buf[self.i:] + chunk
            self.i = 0

    def next(self):
        pairs = []
        while True:
            self._need(2)
            (kl,) = struct.unpack_from("!H", self.buf, self.i)
            self.i += 2
            if kl == 0:
                return dict(pairs)
            self._need(kl + 2)
            k = self.buf[self.i:self.i + kl]
            (vl,) = struct.unpack_from("!H", self.buf, self.i + kl)
            self.i += kl + 2
            self._need(vl)
            pairs.append((k, self.buf[self.i:self.i + vl]))
            self.i += vl


def calls(command, key, values, first_tag=1):
    return b"".join(raw_box([(b"_ask", str(first_tag + i).encode()), (b"_command", command),
                             (key, v)]) for i, v in enumerate(values))


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(30)
    return s


def wait_for(cond, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_command_table_shrinks_when_providers_leave(tmp_path, monkeypatch):
    """Ten rounds of "register 400 names of 60 kB, disconnect": each entry
    goes with its last provider, and its memory is reused (the unfixed
    broker grew by 230 MiB and kept it)."""
    # freed memory must be reusable at once under ASan too
    monkeypatch.setenv("ASAN_OPTIONS", "exitcode=86:quarantine_size_mb=1")
    b = broker(config="[broker]\nmax_command_name = 65535\n", tmp_path=tmp_path)
    try:
        before = rss_kb(b.proc.pid)
        for rnd in range(10):
            s = connect(b.port)
            names = [b"%d.%d." % (rnd, i) + b"n" * 60000 for i in range(400)]
            s.sendall(calls(b"amp.Register", b"command", names))
            got = Boxes(s)
            for _ in names:
                assert b"_answer" in got.next()
            s.close()
        assert wait_for(lambda: stats(b.endpoint)["connections"] == 1)
        st = stats(b.endpoint)
        assert st["commands"] == 0, st
        grown = rss_kb(b.proc.pid) - before
        assert grown < 100 * 1024, "grew by %d KiB" % grown
        assert b"UNHANDLED" in cli(b.endpoint, "0.0." + "n" * 60000, check=False).stderr
    finally:
        b.stop()


def test_registrations_per_connection_and_name_length_are_capped():
    b = broker()  # defaults: max_registrations 1000, max_command_name 256
    try:
        s = connect(b.port)
        s.sendall(calls(b"amp.Register", b"command", [b"c%d" % i for i in range(1001)]))
        got = Boxes(s)
        answers = [got.next() for _ in range(1001)]
        assert all(b"_answer" in a for a in answers[:1000])
        assert answers[1000][b"_error_code"] == b"LIMIT_EXCEEDED", answers[1000]
        assert b"max_registrations" in answers[1000][b"_error_description"]
        # registering again what it serves is still harmless
        s.sendall(calls(b"amp.Register", b"command", [b"c7"], 2000))
        assert b"_answer" in got.next()
        other = connect(b.port)
        other.sendall(calls(b"amp.Register", b"command", [b"x" * 256, b"y" * 257]))
        got2 = Boxes(other)
        assert b"_answer" in got2.next()
        refused = got2.next()
        assert refused[b"_error_code"] == b"LIMIT_EXCEEDED", refused
        assert b"max_command_name" in refused[b"_error_description"]
        st = stats(b.endpoint)
        assert st["registrations_refused"] == 2 and st["commands"] == 1001, st
        # unregister, close: the entries go
        s.sendall(calls(b"amp.Unregister", b"command", [b"c0"], 3000))
        assert b"_answer" in got.next()
        assert stats(b.endpoint)["commands"] == 1000
        s.close()
        other.close()
        assert wait_for(lambda: stats(b.endpoint)["commands"] == 0)
    finally:
        b.stop()


def test_the_command_table_is_capped(tmp_path):
    """max_commands bounds the distinct commands of all connections together;
    more providers for a command already served are still welcome."""
    b = broker(config="[broker]\nmax_commands = 50\n", tmp_path=tmp_path)
    try:
        conns = [connect(b.port) for _ in range(3)]
        answers = [Boxes(s) for s in conns]
        got = []
        for k, s in enumerate(conns):  # one after the other: the third gets 10 of 20
            s.sendall(calls(b"amp.Register", b"command", [b"k%d.%d" % (k, i) for i in range(20)]))
            got += [answers[k].next() for _ in range(20)]
        assert sum(b"_answer" in g for g in got) == 50, got
        refused = [g for g in got if b"_error_code" in g]
        assert all(g[b"_error_code"] == b"LIMIT_EXCEEDED" and b"max_commands" in
                   g[b"_error_description"] for g in refused), refused
        conns[2].sendall(calls(b"amp.Register", b"command", [b"k0.1"], 100))
        assert b"_answer" in answers[2].next()  # a second provider of a served command
        st = stats(b.endpoint)
        assert st["commands"] == 50 and st["registrations_refused"] == 10, st
        conns[0].close()
        assert wait_for(lambda: stats(b.endpoint)["commands"] == 31)  # k0.1 stays
        for s in conns[1:]:
            s.close()
    finally:
        b.stop()


def test_subscriptions_per_connection_are_capped():
    b = broker()  # max_subscriptions 1000
    try:
        s = connect(b.port)
        s.sendall(calls(b"amp.Subscribe", b"pattern", [b"t.%d" % i for i in range(1001)]))
        got = Boxes(s)
        answers = [got.next() for _ in range(1001)]
        assert all(b"_answer" in a for a in answers[:1000])
        assert answers[1000][b"_error_code"] == b"LIMIT_EXCEEDED", answers[1000]
        assert b"max_subscriptions" in answers[1000][b"_error_description"]
        # a duplicate is harmless and takes no room; one out makes room for one
        s.sendall(calls(b"amp.Subscribe", b"pattern", [b"t.1"], 2000) +
                  calls(b"amp.Unsubscribe", b"pattern", [b"t.0"], 2001) +
                  calls(b"amp.Subscribe", b"pattern", [b"t.new"], 2002) +
                  calls(b"amp.Unsubscribe", b"pattern", [b"t.0"], 2003))
        assert [b"_answer" in got.next() for _ in range(3)] == [True, True, True]
        assert got.next()[b"_error_code"] == b"NOT_SUBSCRIBED"
        other = connect(b.port)
        other.sendall(calls(b"amp.Subscribe", b"pattern", [b"p" * 257]))
        assert Boxes(other).next()[b"_error_code"] == b"LIMIT_EXCEEDED"
        st = stats(b.endpoint)
        assert st["subscriptions"] == 1000 and st["subscriptions_refused"] == 2, st
        # events still arrive
        run([AMP_CLI, "call", "--no-answer", b.endpoint, "t.new", "x=1"])
        assert got.next() == {b"_command": b"t.new", b"x": b"1"}
        s.close()
        assert wait_for(lambda: stats(b.endpoint)["subscriptions"] == 0)
    finally:
        b.stop()


def test_an_event_reaches_a_connection_once():
    """A connection whose patterns overlap gets each event once (it carries
    no subscription: more copies would be identical; the unfixed broker sent
    one per matching pattern)."""
    b = broker()
    try:
        many, one = connect(b.port), connect(b.port)
        many.sendall(calls(b"amp.Subscribe", b"pattern", [b"a.*", b"a.>", b"*.b", b"a.b",
                                                          b"end"]))
        one.sendall(calls(b"amp.Subscribe", b"pattern", [b"a.>", b"end"]))
        got_many, got_one = Boxes(many), Boxes(one)
        assert all(b"_answer" in got_many.next() for _ in range(5))
        assert all(b"_answer" in got_one.next() for _ in range(2))
        pub = connect(b.port)
        pub.sendall(raw_box([(b"_command", b"a.b"), (b"n", b"1")]) +
                    raw_box([(b"_command", b"a.c.d"), (b"n", b"2")]) +
                    raw_box([(b"_command", b"end")]))
        # in order: the marker comes after every copy of the events before it
        assert got_many.next() == {b"_command": b"a.b", b"n": b"1"}
        assert got_many.next() == {b"_command": b"a.c.d", b"n": b"2"}
        assert got_many.next() == {b"_command": b"end"}
        assert got_one.next() == {b"_command": b"a.b", b"n": b"1"}
        assert got_one.next() == {b"_command": b"a.c.d", b"n": b"2"}
        assert got_one.next() == {b"_command": b"end"}
        st = stats(b.endpoint)
        assert st["events_published"] == 3 and st["events_delivered"] == 6, st
        assert st["events_dropped"] == 0, st
    finally:
        b.stop()


def test_subscriptions_are_capped_across_connections(tmp_path):
    """max_subscriptions_total bounds the subscriptions of all connections
    together: LIMIT_EXCEEDED, counted; a connection that leaves makes room."""
    b = broker(config="[broker]\nmax_subscriptions = 20\nmax_subscriptions_total = 50\n",
               tmp_path=tmp_path)
    try:
        conns = [connect(b.port) for _ in range(3)]
        answers = [Boxes(s) for s in conns]
        got = []
        for k, s in enumerate(conns):  # one after the other: the third is refused
            s.sendall(calls(b"amp.Subscribe", b"pattern", [b"s%d.%d" % (k, i) for i in range(20)]))
            got += [answers[k].next() for _ in range(20)]
        assert [b"_answer" in g for g in got] == [True] * 50 + [False] * 10, got
        assert all(g[b"_error_code"] == b"LIMIT_EXCEEDED" and b"max_subscriptions_total" in
                   g[b"_error_description"] for g in got[50:]), got[50:]
        # a duplicate is no new subscription: still accepted at the cap
        conns[0].sendall(calls(b"amp.Subscribe", b"pattern", [b"s0.3"], 100))
        assert b"_answer" in answers[0].next()
        st = stats(b.endpoint)
        assert st["subscriptions"] == 50 and st["subscriptions_refused"] == 10, st
        conns[0].close()
        assert wait_for(lambda: stats(b.endpoint)["subscriptions"] == 30)
        conns[2].sendall(calls(b"amp.Subscribe", b"pattern", [b"s2.new"], 200))
        assert b"_answer" in answers[2].next()
        # events still reach what is left
        run([AMP_CLI, "call", "--no-answer", b.endpoint, "s1.7", "x=1"])
        assert answers[1].next() == {b"_command": b"s1.7", b"x": b"1"}
        for s in conns[1:]:
            s.close()
    finally:
        b.stop()


def test_pattern_tokens_are_capped(tmp_path):
    """A pattern has at most max_pattern_tokens tokens (16 by default): each
    can be a node of the subscription index. Names are not capped: a name
    far longer than any pattern still reaches a '>' subscriber."""
    b = broker()
    try:
        s = connect(b.port)
        ok, over = b".".join([b"t"] * 15 + [b">"]), b".".join([b"*"] * 17)
        s.sendall(calls(b"amp.Subscribe", b"pattern", [ok, over]))
        got = Boxes(s)
        assert b"_answer" in got.next()
        refused = got.next()
        assert refused[b"_error_code"] == b"LIMIT_EXCEEDED", refused
        assert b"max_pattern_tokens" in refused[b"_error_description"], refused
        assert stats(b.endpoint)["subscriptions_refused"] == 1
        name = b".".join([b"t"] * 2000)
        pub = connect(b.port)
        pub.sendall(raw_box([(b"_command", name)]))
        assert got.next() == {b"_command": name}
    finally:
        b.stop()
    b = broker(config="[broker]\nmax_pattern_tokens = 3\n", tmp_path=tmp_path)
    try:
        s = connect(b.port)
        s.sendall(calls(b"amp.Subscribe", b"pattern", [b"a.*.>", b"a.b.c.d"]))
        got = Boxes(s)
        assert b"_answer" in got.next()
        assert got.next()[b"_error_code"] == b"LIMIT_EXCEEDED"
    finally:
        b.stop()
    # past what the index allows (256): the broker does not start
    bad = tmp_path / "bad.conf"
    bad.write_text("[broker]\nmax_pattern_tokens = 257\n")
    r = run([BROKER, "--listen", "tcp:0:interface=127.0.0.1", "--config", str(bad)], check=False)
    assert r.returncode != 0 and b"max_pattern_tokens" in r.stderr, r


def test_unhandled_description_is_bounded():
    """A call for a 60,000-byte command name: UNHANDLED with a description
    (Twisted's words, the name cut with a marker), a well-formed error box."""
    b = broker()
    try:
        s = connect(b.port)
        s.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"\x01" * 60000)]))
        got = Boxes(s).next()
        assert got[b"_error"] == b"1" and got[b"_error_code"] == b"UNHANDLED", got.keys()
        d = got[b"_error_description"]
        assert d.startswith(b"Unhandled Command: b'\\x01\\x01") and d.endswith(b"(60000 bytes)")
        assert len(d) < 8192
        # the connection is still good
        s.sendall(raw_box([(b"_ask", b"2"), (b"_command", b"Nope")]))
        assert Boxes(s).next()[b"_error_description"] == b"Unhandled Command: b'Nope'"
    finally:
        b.stop()


# ---- authentication helpers: token users, a custom ACL, extra settings -------------


def token_broker(tmp_path, users, acl, broker_extra="", log=None):
    """users: {name: roles}; each logs in with the token "<name>-token"."""
    lines = ["%s:%s:%s\n" % (u, roles, hashlib.sha256(("%s-token" % u).encode()).hexdigest())
             for u, roles in users.items()]
    (tmp_path / "tokens").write_text("".join(lines))
    (tmp_path / "acl").write_text(acl)
    conf = tmp_path / "auth.conf"
    conf.write_text("[broker]\nlisten = tcp:0:interface=127.0.0.1\n%s[auth]\ntokens_file = %s\n"
                    "acl_file = %s\n" % (broker_extra, tmp_path / "tokens", tmp_path / "acl"))
    if log is None:
        b = Proc([BROKER, "--config", str(conf)], r"\(port (\d+)\)", stream="stderr")
        b.port = int(b.match.group(1))
        return b
    return LoggedBroker([BROKER, "--config", str(conf)], log)


class LoggedBroker:
    """A broker whose log goes to a file (it may write more than a pipe holds)."""

    def __init__(self, argv, path):
        self.path = path
        self.log = open(path, "wb")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log)
        assert wait_for(lambda: re.search(rb"\(port (\d+)\)", path.read_bytes()), 20)
        self.port = int(re.search(rb"\(port (\d+)\)", path.read_bytes()).group(1))
        self.endpoint = "tcp:127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        text = self.path.read_bytes()
        for marker in (b"AddressSanitizer", b"runtime error:", b"LeakSanitizer"):
            assert marker not in text, text[-4000:].decode(errors="replace")
        return text


def token_login(port, user):
    s = connect(port)
    s.sendall(raw_box([(b"_ask", b"0"), (b"_command", b"amp.Login"),
                       (b"token", ("%s-token" % user).encode())]))
    got = Boxes(s)
    assert b"_answer" in got.next()
    return s, got


def test_error_codes_cannot_be_poisoned(tmp_path):
    """A provider answering with 20 made-up codes cannot fill the per-code
    table: a later failed login is counted as AUTH_FAILED in amp.Stats and
    /metrics, the provider's codes all under "other"."""
    acl = "allow role:p register Bad\nallow role:c call Bad\nallow role:c call amp.Stats\n"
    b = token_broker(tmp_path, {"prov": "p", "caller": "c"}, acl,
                     "metrics_listen = tcp:0:interface=127.0.0.1\n")
    try:
        line = b.proc.stderr.readline().decode()
        while "metrics on" not in line:
            line = b.proc.stderr.readline().decode()
        mport = int(re.search(r"\(port (\d+)\)", line).group(1))
        prov, pgot = token_login(b.port, "prov")
        prov.sendall(calls(b"amp.Register", b"command", [b"Bad"], 1))
        assert b"_answer" in pgot.next()
        caller, cgot = token_login(b.port, "caller")
        for i in range(20):
            caller.sendall(calls(b"Bad", b"n", [b"%d" % i], 10 + i))
            fwd = pgot.next()
            prov.sendall(raw_box([(b"_error", fwd[b"_ask"]), (b"_error_code", b"X%02d" % i),
                                  (b"_error_description", b"made up")]))
            assert cgot.next()[b"_error_code"] == b"X%02d" % i  # relayed untouched
        bad = connect(b.port)
        bad.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Login"), (b"token", b"no")]))
        assert Boxes(bad).next()[b"_error_code"] == b"AUTH_FAILED"
        caller.sendall(raw_box([(b"_ask", b"99"), (b"_command", b"amp.Stats")]))
        st = cgot.next()
        codes = {e["code"]: e["count"] for e in decode_amplist(st[b"errors"].decode(
            "utf-8", "surrogateescape"))}
        assert codes.get("AUTH_FAILED") == 1 and codes.get("other") == 20, codes
        assert not any(c.startswith("X") for c in codes), codes
        status, body = http_get(mport, "/metrics")
        assert 'amp_broker_errors{code="AUTH_FAILED"} 1\n' in body, body
        assert 'amp_broker_errors{code="other"} 20\n' in body
        assert 'code="X' not in body
    finally:
        b.stop()


def test_commands_listing_follows_the_acl(tmp_path):
    """amp.Commands shows a peer what it may call or serve, nothing else."""
    acl = ("allow *            call     amp.Commands\n"
           "allow user:alice   call     Sum\n"
           "allow user:bob     call     Work.>\n"
           "allow role:workers register Sum\n"
           "allow role:workers register Work.*\n"
           "allow role:admin   *        >\n")
    b = token_broker(tmp_path, {"alice": "users", "bob": "users", "worker": "workers",
                                "root": "admin"}, acl)
    try:
        w, wgot = token_login(b.port, "worker")
        w.sendall(calls(b"amp.Register", b"command", [b"Sum", b"Work.a"], 1))
        assert b"_answer" in wgot.next() and b"_answer" in wgot.next()

        def listing(user):
            s, got = token_login(b.port, user)
            s.sendall(raw_box([(b"_ask", b"5"), (b"_command", b"amp.Commands")]))
            entries = decode_amplist(got.next()[b"commands"].decode("utf-8", "surrogateescape"))
            s.close()
            return sorted(e["command"] for e in entries)

        assert listing("alice") == ["Sum"]
        assert listing("bob") == ["Work.a"]
        assert listing("worker") == ["Sum", "Work.a"]
        assert listing("root") == ["Sum", "Work.a"]
    finally:
        b.stop()


# ---- logs: nothing a peer sends can forge a line or flood the log ---------------


def test_log_lines_cannot_be_forged(tmp_path):
    acl = "allow role:p register Job.>\n"
    forged = b"x\n2026-01-01T00:00:00.000Z info  peer 1 (127.0.0.1:1) is admin (password)"
    b = token_broker(tmp_path, {"prov": "p"}, acl, log=tmp_path / "broker.log")
    try:
        s = connect(b.port)
        s.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Login"), (b"username", forged),
                           (b"password", b"pw")]))
        assert Boxes(s).next()[b"_error_code"] == b"AUTH_FAILED"
        prov, got = token_login(b.port, "prov")
        # names with control characters are refused before anything logs them
        prov.sendall(calls(b"amp.Register", b"command", [b"Job.\n" + forged[2:] + b"\x1b[2J"]))
        assert got.next()[b"_error_code"] == b"BAD_REQUEST"
        prov.sendall(calls(b"amp.Register", b"command", [b"Nope\ninfo  peer 2 is admin"], 2))
        assert got.next()[b"_error_code"] == b"BAD_REQUEST"
        # a name the ACL refuses is logged, escaped as a whole
        prov.sendall(calls(b"amp.Register", b"command", [b"Nope info  peer 2 is admin"], 3))
        assert got.next()[b"_error_code"] == b"PERMISSION_DENIED"
    finally:
        log = b.stop()
    for ln in log.split(b"\n")[:-1]:  # every line is the broker's, none a forged one
        assert re.match(rb"^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn |info |debug) ",
                        ln), ln
        assert not ln.startswith(b"2026-01-01T00:00:00.000Z") and b"info  peer 2 is" not in \
            ln.split(b" ", 1)[1][:25], ln
    assert b"\x1b" not in log
    assert b"x\\x0a2026-01-01T00:00:00.000Z info  peer 1" in log, log.decode(errors="replace")


def test_log_volume_per_peer_is_bounded(tmp_path):
    """20,000 registrations of 2,000-byte names write a bounded log: each
    name is cut, and lines past a peer's rate are counted, not written."""
    conf = tmp_path / "b.conf"
    conf.write_text("[broker]\nlisten = tcp:0:interface=127.0.0.1\nmax_command_name = 65535\n"
                    "max_registrations = 100000\nmax_commands = 100000\n")
    b = LoggedBroker([BROKER, "--config", str(conf)], tmp_path / "broker.log")
    try:
        s = connect(b.port)
        names = [b"%05d-" % i + b"n" * 2000 for i in range(20000)]
        s.sendall(calls(b"amp.Register", b"command", names))
        got = Boxes(s)
        for _ in names:
            assert b"_answer" in got.next()
        st = stats(b.endpoint)
        assert st["log_lines_suppressed"] > 19000, st
        s.close()
        assert wait_for(lambda: stats(b.endpoint)["connections"] == 1)
    finally:
        log = b.stop()
    assert len(log) < 256 * 1024, len(log)
    assert re.search(rb"peer 1: \d+ log lines suppressed", log), log[-2000:]


def test_log_volume_from_connection_churn_is_bounded(tmp_path):
    """Each connection that goes away for a bad byte would write a line: the
    lines about connections share one rate limit, so 2,000 short-lived
    connections write a few hundred lines and a summary, not 2,000."""
    conf = tmp_path / "b.conf"
    conf.write_text("[broker]\nlisten = tcp:0:interface=127.0.0.1\n")
    b = LoggedBroker([BROKER, "--config", str(conf)], tmp_path / "broker.log")
    try:
        for _ in range(2000):
            s = connect(b.port)
            s.sendall(b"\x00\x01a\x00\x011\xff\xff")  # a key longer than 255 bytes
            closed_soon(s)
            s.close()
        st = stats(b.endpoint)
        assert st["log_lines_suppressed"] > 1000, st
    finally:
        log = b.stop()
    gone = log.count(b" gone: ")
    assert 100 <= gone < 1000, gone
    assert re.search(rb"connections: \d+ log lines suppressed", log), log[-2000:]


def anonymous_broker(tmp_path, broker_extra=""):
    """Auth on, with anonymous peers (role guests) and the user bob."""
    (tmp_path / "tokens").write_text(
        "bob:users:%s\n" % hashlib.sha256(b"bob-token").hexdigest())
    (tmp_path / "acl").write_text("allow * subscribe,publish,register,call >\n")
    conf = tmp_path / "anon.conf"
    conf.write_text("[broker]\nlisten = tcp:0:interface=127.0.0.1\n%s[auth]\n"
                    "tokens_file = %s\nacl_file = %s\nanonymous = guests\n"
                    % (broker_extra, tmp_path / "tokens", tmp_path / "acl"))
    b = Proc([BROKER, "--config", str(conf)], r"\(port (\d+)\)", stream="stderr")
    b.port = int(b.match.group(1))
    b.endpoint = "tcp:127.0.0.1:%d" % b.port
    return b


def test_one_address_cannot_take_the_broker_wide_caps(tmp_path):
    """Anonymous connections from one address share that address's quota
    (max_subscriptions_per_user, max_registrations_per_user): they cannot
    use up max_subscriptions_total or max_commands for everyone."""
    b = anonymous_broker(tmp_path, "max_subscriptions_per_user = 2500\n"
                                   "max_subscriptions_total = 4000\n"
                                   "max_registrations_per_user = 300\nmax_commands = 500\n")
    crowd = []
    try:
        refused = 0
        for k in range(5):  # 5 x 1000 patterns from 127.0.0.1
            s = connect(b.port)
            crowd.append(s)
            s.sendall(calls(b"amp.Subscribe", b"pattern", [b"p%d.%d" % (k, i) for i in range(1000)]))
            got = Boxes(s)
            for _ in range(1000):
                g = got.next()
                if b"_error_code" in g:
                    assert g[b"_error_code"] == b"LIMIT_EXCEEDED", g
                    assert b"max_subscriptions_per_user" in g[b"_error_description"], g
                    refused += 1
        assert refused == 2500
        r = connect(b.port)
        crowd.append(r)
        r.sendall(calls(b"amp.Register", b"command", [b"c%d" % i for i in range(400)]))
        got = Boxes(r)
        regs = [got.next() for _ in range(400)]
        assert sum(b"_answer" in g for g in regs) == 300, regs[-1]
        assert b"max_registrations_per_user" in regs[-1][b"_error_description"], regs[-1]
        # bob still gets his share of both
        bob, got = token_login(b.port, "bob")
        bob.sendall(calls(b"amp.Subscribe", b"pattern", [b"news.%d" % i for i in range(100)], 10))
        bob.sendall(calls(b"amp.Register", b"command", [b"bob.%d" % i for i in range(100)], 200))
        answers = [got.next() for _ in range(200)]
        assert all(b"_answer" in g for g in answers), [g for g in answers if b"_error" in g][:1]
        # closing the crowd gives the address its quota back
        for s in crowd:
            s.close()
        crowd = []
        assert wait_for(lambda: stats(b.endpoint)["subscriptions"] == 100)
        s = connect(b.port)
        crowd.append(s)
        s.sendall(calls(b"amp.Subscribe", b"pattern", [b"again"]))
        assert b"_answer" in Boxes(s).next()
        bob.close()
    finally:
        for s in crowd:
            s.close()
        b.stop()


def test_the_budget_sheds_the_owner_holding_the_most_first(tmp_path):
    """A crowd of small connections from one address fills max_queued_bytes;
    a logged-in client then holds more than any one of them: the crowd's
    connections are closed, the client is not."""
    b = anonymous_broker(tmp_path, "max_queued_bytes = 16777216\nbox_timeout = 120\n")
    crowd = []
    try:
        bob, bob_got = token_login(b.port, "bob")
        bob.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Subscribe"),
                             (b"pattern", b"x")]))
        assert b"_answer" in bob_got.next()
        part = raw_box([(b"k", b"x" * 60000)])[:-100]  # 60 KB of a box, never finished
        for _ in range(270):  # about 16 MB in all, each well under bob's 1 MB
            s = connect(b.port)
            s.sendall(part)
            crowd.append(s)
        # bob's 1 MB box arrives in pieces, as from a slower link
        big = raw_box([(b"_command", b"x")] + [(b"k%02d" % i, b"y" * 60000) for i in range(17)])
        for i in range(0, len(big), 131072):
            bob.sendall(big[i:i + 131072])
            time.sleep(0.02)
        assert wait_for(lambda: stats(b.endpoint)["budget_connections_closed"] > 0)
        st = stats(b.endpoint)
        bob.sendall(raw_box([(b"_ask", b"2"), (b"_command", b"amp.Unsubscribe"),
                             (b"pattern", b"x")]))
        got = bob_got.next()
        if got.get(b"_command") == b"x":  # his own event came back first
            got = bob_got.next()
        assert got.get(b"_answer") == b"2", (got, st)  # bob is still connected
    finally:
        for s in crowd:
            s.close()
        b.stop()


# ---- memory held for peers: slow subscribers, half-sent boxes, the budget ----------


def nonreader(port, pattern=b"ev.>"):
    """A subscriber that never reads after its subscription is answered."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.settimeout(10)
    s.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Subscribe"), (b"pattern", pattern)]))
    assert b"_answer" in Boxes(s).next()
    return s


# 200 events of 64 kB: more than event_queue_bytes for each subscriber
EVENTS = b"".join(raw_box([(b"_command", b"ev.%d" % i), (b"data", b"x" * 65000)])
                  for i in range(200))


def test_subscribers_that_do_not_read_are_closed(tmp_path):
    """With the default caps (output_soft_cap 4 MiB below event_queue_bytes
    8 MiB) a subscriber that never reads fills its queue past the soft cap
    and is closed after output_soft_seconds, its memory released. (Before,
    the 8 MiB queue sat below a 16 MiB soft cap: never closed.)"""
    b = broker(config="[broker]\noutput_soft_seconds = 0.5\n", tmp_path=tmp_path)
    subs = [nonreader(b.port) for _ in range(10)]
    try:
        pub = connect(b.port)
        pub.sendall(EVENTS)
        assert wait_for(lambda: stats(b.endpoint)["slow_connections_closed"] == 10, 15), \
            stats(b.endpoint)
        st = stats(b.endpoint)
        assert st["events_dropped"] > 0 and st["queued_bytes"] < 1 << 20, st
        for s in subs:
            assert closed_soon(s)
    finally:
        for s in subs:
            s.close()
        b.stop()


def test_inconsistent_output_caps_refuse_to_start(tmp_path):
    for conf, why in (("output_soft_cap = 16777216\n", b"below event_queue_bytes"),
                      ("max_queued_bytes = 4194304\n", b"max_queued_bytes"),
                      ("box_timeout = 0\n", b"bad setting"),
                      ("max_registrations = -1\n", b"bad setting"),
                      ("max_command_name = 65536\n", b"bad setting")):
        path = tmp_path / "bad.conf"
        path.write_text("[broker]\n" + conf)
        r = run([BROKER, "--config", str(path)], check=False)
        assert r.returncode == 2 and why in r.stderr, (conf, r.stderr)


def test_queued_output_budget_across_connections(tmp_path, monkeypatch):
    """20 subscribers that never read would hold 8 MiB each; a 32 MiB budget
    (max_queued_bytes) holds: events past it are dropped, the connections
    holding the most are closed, the total stays under it."""
    monkeypatch.setenv("ASAN_OPTIONS", "exitcode=86:quarantine_size_mb=1")  # reuse freed memory
    b = broker(config="[broker]\nmax_queued_bytes = 33554432\noutput_soft_seconds = 60\n",
               tmp_path=tmp_path)
    subs = [nonreader(b.port) for _ in range(20)]
    try:
        before = rss_kb(b.proc.pid)
        pub = connect(b.port)
        pub.sendall(EVENTS)
        pub.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Stats")]))
        Boxes(pub).next()  # every event has been handled
        st = stats(b.endpoint)
        assert st["budget_events_dropped"] > 0, st
        assert st["budget_connections_closed"] >= 1, st
        assert st["queued_bytes"] <= (32 << 20) + 1024, st
        assert rss_kb(b.proc.pid) - before < 64 * 1024
        assert still_serves(b.endpoint)
    finally:
        for s in subs:
            s.close()
        b.stop()


def half_box(port, size=4 << 20):
    """A connection that sends the first half of a box of `size` bytes."""
    s = connect(port)
    n = size // 65540
    s.sendall(raw_box([(b"k%03d" % i, b"x" * 65535) for i in range(n)])[:-2][:size // 2])
    return s


def test_half_sent_boxes_time_out(tmp_path):
    """Twenty peers each holding half of a 4 MiB box: the bytes are counted
    (queued_bytes) and each connection is closed at box_timeout."""
    b = broker(config="[broker]\nbox_timeout = 4\n", tmp_path=tmp_path)
    socks = []
    try:
        socks = [half_box(b.port) for _ in range(20)]
        assert wait_for(lambda: stats(b.endpoint)["queued_bytes"] >= 20 * (2 << 20) * 9 // 10,
                        3), stats(b.endpoint)
        assert wait_for(lambda: stats(b.endpoint)["box_timeouts"] == 20, 15), stats(b.endpoint)
        for s in socks:
            assert closed_soon(s)
        st = stats(b.endpoint)
        assert st["queued_bytes"] < 1 << 20 and st["connections"] == 1, st
        codes = {e["code"]: e["count"] for e in decode_amplist(st["errors"])}
        assert codes.get("timeout") == 20, codes
    finally:
        for s in socks:
            s.close()
        b.stop()


def test_half_sent_boxes_count_against_the_budget(tmp_path):
    """Partial input is held memory too: twenty 2 MiB halves against a 16 MiB
    budget close the connections holding them."""
    b = broker(config="[broker]\nmax_queued_bytes = 16777216\n", tmp_path=tmp_path)
    socks = []
    try:
        for _ in range(20):
            try:
                socks.append(half_box(b.port))
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed while it was still sending
        assert wait_for(lambda: stats(b.endpoint)["budget_connections_closed"] >= 4), \
            stats(b.endpoint)
        # the amp.Stats call itself is held while it is answered
        assert stats(b.endpoint)["queued_bytes"] <= (16 << 20) + 1024
        assert still_serves(b.endpoint)
    finally:
        for s in socks:
            s.close()
        b.stop()


def test_long_tags_are_refused_and_unanswered_calls_count_against_the_budget(tmp_path):
    """The broker keeps the tag of every call it has not answered yet: a tag
    over 255 bytes closes the connection (tag-too-long), and the calls waiting
    on a provider that never answers are counted in queued_bytes, so a
    caller piling them up is closed by max_queued_bytes."""
    b = broker(config="[broker]\nmax_queued_bytes = 16777216\ncall_timeout = 300\n"
               "max_calls_in_flight = 100000\n", tmp_path=tmp_path)
    prov, caller, long_tag = connect(b.port), connect(b.port), connect(b.port)
    try:
        prov.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Register"),
                              (b"command", b"Hold")]))
        assert b"_answer" in dict(Boxes(prov).next())
        long_tag.sendall(raw_box([(b"_ask", b"t" * 256), (b"_command", b"Hold")]))
        assert closed_soon(long_tag)
        codes = {e["code"]: e["count"] for e in decode_amplist(stats(b.endpoint)["errors"])}
        assert codes.get("tag-too-long") == 1, codes
        # 255-byte tags are fine, and each waiting call is counted
        tag = b"%0255d"
        caller.sendall(b"".join(raw_box([(b"_ask", tag % i), (b"_command", b"Hold")])
                                for i in range(1000)))
        assert wait_for(lambda: stats(b.endpoint)["queued_bytes"] >= 1000 * 255), \
            stats(b.endpoint)
        # keep calling: the held tags alone go over 16 MiB and the caller is closed
        try:
            for k in range(1, 80):
                caller.sendall(b"".join(raw_box([(b"_ask", tag % (k * 1000 + i)),
                                                 (b"_command", b"Hold")])
                                        for i in range(1000)))
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed_soon(caller, 20)
        st = stats(b.endpoint)
        assert st["budget_connections_closed"] >= 1, st
        assert st["queued_bytes"] <= (16 << 20) + 1024, st
        assert still_serves(b.endpoint)
    finally:
        for s in (prov, caller, long_tag):
            s.close()
        b.stop()


def test_many_small_holders_are_shed_too(tmp_path):
    """Budget evasion: many connections, each holding less than any one
    limit, together over max_queued_bytes: they are closed as well."""
    b = broker(config="[broker]\nmax_queued_bytes = 8388608\n", tmp_path=tmp_path)
    socks = []
    try:
        box = raw_box([(b"k", b"x" * 65000)])[:-100]  # 64 KB of a box, never finished
        for _ in range(200):
            try:
                s = connect(b.port)
                s.sendall(box)
                socks.append(s)
            except (BrokenPipeError, ConnectionResetError):
                pass
        assert wait_for(lambda: stats(b.endpoint)["budget_connections_closed"] >= 60), \
            stats(b.endpoint)
        assert stats(b.endpoint)["queued_bytes"] <= (8 << 20) + 1024
        assert still_serves(b.endpoint)
    finally:
        for s in socks:
            s.close()
        b.stop()


def test_descriptors_pushed_at_the_broker_are_closed(files, tmp_path):
    """A peer on the broker's UNIX listener pushes 1,000 descriptors before it
    logs in (the broker takes none): the broker's descriptor table does not
    grow, and the login that rode with them is still answered."""
    import array
    sock = str(tmp_path / "b.sock")
    conf = files / "unix.conf"
    conf.write_text("[broker]\nlisten = unix:%s\n[auth]\npassword_file = %s\n"
                    "tokens_file = %s\nacl_file = %s\n"
                    % (sock, files / "passwd", files / "tokens", files / "acl"))
    b = Proc([BROKER, "--config", str(conf)], r"listening on unix", stream="stderr")
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(sock)
        c.settimeout(20)
        before = len(os.listdir("/proc/%d/fd" % b.proc.pid))
        login = raw_box([(b"_ask", b"1"), (b"_command", b"amp.Login"),
                         (b"token", b"s3cret-token")])
        fd = os.open("/dev/null", os.O_RDONLY)
        fds = array.array("i", [fd])
        pad = raw_box([(b"_command", b"x"), (b"p", b"y" * 900)])  # an event: no answer
        data = pad + login
        for i in range(1000):  # one descriptor with each byte
            c.sendmsg([data[i:i + 1]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        c.sendall(data[1000:])
        got = Boxes(c).next()
        after = len(os.listdir("/proc/%d/fd" % b.proc.pid))
        os.close(fd)
        c.close()
        assert got.get(b"_answer") == b"1" and got[b"identity"] == b"bob", got
        assert after <= before + 1, "descriptors held by the broker: %d -> %d" % (before, after)
    finally:
        b.stop()


# ---- descriptors: max_connections from RLIMIT_NOFILE, the metrics listener -------------


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_descriptor_limit_connection_flood_and_metrics(tmp_path):
    """Under 64 open files: max_connections is fitted to the limit (a larger
    setting is lowered, with a warning), a flood of connections is refused,
    the metrics endpoint still answers, and with the descriptor table full
    the metrics listener does not spin."""
    conf = tmp_path / "fd.conf"
    conf.write_text("[broker]\nlisten = tcp:0:interface=127.0.0.1\nmax_connections = 1000\n"
                    "metrics_listen = tcp:0:interface=127.0.0.1\n")
    b = Proc(["prlimit", "--nofile=64:64", BROKER, "--config", str(conf)],
             r"metrics on .*\(port (\d+)\)", stream="stderr")
    flood, mflood = [], []
    try:
        log = "".join(b.lines)
        assert "max_connections = 1000 is more than the open files limit allows" in log, log
        assert "max_connections 48 (open files limit 64, 16 kept in reserve)" in log, log
        port = int(re.search(r"listening on .*\(port (\d+)\)", log).group(1))
        mport = int(b.match.group(1))
        for _ in range(100):
            flood.append(socket.create_connection(("127.0.0.1", port)))

        def metric(name):  # None while the endpoint sheds connections
            try:
                status, body = http_get(mport, "/metrics")
            except (ConnectionResetError, socket.timeout):
                return None
            assert status == b"HTTP/1.0 200 OK"
            return int(re.search(r"^amp_broker_%s (\d+)$" % name, body, re.M).group(1))

        assert wait_for(lambda: metric("connections_refused") == 52), metric("connections")
        assert metric("connections") == 48
        # now fill the descriptor table with idle metrics clients
        for _ in range(40):
            mflood.append(socket.create_connection(("127.0.0.1", mport)))
        time.sleep(0.5)
        cpu0, t0 = cpu_seconds(b.proc.pid), time.time()
        time.sleep(2)
        busy = (cpu_seconds(b.proc.pid) - cpu0) / (time.time() - t0)
        assert busy < 0.5, "the broker used %.0f%% CPU with nothing to do" % (busy * 100)
        # the table is full: the AMP listener sheds newcomers (closed, not left waiting)
        late = socket.create_connection(("127.0.0.1", port))
        late.settimeout(5)
        assert late.recv(1) == b""
        late.close()
        for s in mflood:
            s.close()
        mflood = []
        assert wait_for(lambda: metric("connections") == 48, 10)
        assert metric("metrics_refused") > 0  # busy, or shed for want of descriptors
        assert metric("connections_shed") > 0
        for s in flood:
            s.close()
        flood = []
        assert wait_for(lambda: still_serves("tcp:127.0.0.1:%d" % port))
    finally:
        for s in flood + mflood:
            s.close()
        b.stop()
