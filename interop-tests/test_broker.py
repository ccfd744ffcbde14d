"""amp-broker with real peers over loopback: C and Twisted callers, providers
and subscribers, in every direction."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import Proc, run
from test_twisted_interop import AMP_CLI, BUILD, C_PEER, TWISTED_PEER, pki  # noqa: F401

# AMP_BROKER runs the suite against another build (the unfixed one, say)
BROKER = os.environ.get("AMP_BROKER") or os.path.join(BUILD, "broker", "amp-broker")


def broker(*extra, config=None, tmp_path=None):
    argv = [BROKER, "--listen", "tcp:0:interface=127.0.0.1"]
    if config is not None:
        path = tmp_path / "broker.conf"
        path.write_text(config)
        argv += ["--config", str(path)]
    b = Proc(argv + list(extra), r"\(port (\d+)\)", stream="stderr")
    b.endpoint = "tcp:127.0.0.1:%s" % b.match.group(1)
    b.port = int(b.match.group(1))
    return b


def provider(kind, endpoint, *extra):
    argv = [*TWISTED_PEER, "provide", endpoint, *extra] if kind == "twisted" else \
        [C_PEER, "provide", endpoint, *extra]
    return Proc(argv, r"^ready")


def subscriber(kind, endpoint, *patterns):
    argv = [*TWISTED_PEER, "subscribe", endpoint, *patterns] if kind == "twisted" else \
        [C_PEER, "subscribe", endpoint, *patterns]
    return Proc(argv, r"^ready")


def cli(endpoint, *args, check=True):
    return run([AMP_CLI, "call", endpoint, *args], check=check)


def stats(endpoint):
    raw = json.loads(cli(endpoint, "amp.Stats").stdout)
    return {k: int(v) if v.isdigit() else v for k, v in raw.items()}


@pytest.mark.parametrize("caller,prov", [("twisted", "c"), ("c", "twisted"),
                                         ("twisted", "twisted"), ("c", "c")])
def test_routing_between_c_and_twisted(caller, prov):
    b = broker()
    p = provider(prov, b.endpoint)
    try:
        argv = [*TWISTED_PEER, "check", b.endpoint, "--bus"] if caller == "twisted" else \
            [C_PEER, "check", b.endpoint, "--bus"]
        r = run(argv, check=False)
        out = r.stdout.decode()
        assert r.returncode == 0 and "FAIL" not in out, out + r.stderr.decode()
        assert out.count("PASS") >= 17, out
        s = stats(b.endpoint)
        assert s["calls_routed"] > 200 and s["calls_answered"] > 200, s
    finally:
        p.stop()
        b.stop()


def test_amp_cli_through_the_broker_and_unhandled():
    b = broker()
    p = provider("twisted", b.endpoint, "--name", "tw")
    try:
        assert cli(b.endpoint, "Sum", "a:int=13", "b:int=81").stdout == \
            b'{"served_by":"tw","total":"94"}\n'
        r = cli(b.endpoint, "Nope", check=False)
        assert r.returncode == 4 and r.stderr == b"UNHANDLED: Unhandled Command: b'Nope'\n"
        r = cli(b.endpoint, "amp.Nope", check=False)
        assert r.returncode == 4 and b"UNHANDLED" in r.stderr
    finally:
        p.stop()
    # the provider is gone: its registration went with it
    r = cli(b.endpoint, "Sum", "a:int=1", "b:int=2", check=False)
    assert r.returncode == 4 and b"UNHANDLED" in r.stderr
    b.stop()


def served_by(endpoint, n):
    counts = {}
    for _ in range(n):
        name = json.loads(cli(endpoint, "Sum", "a:int=1", "b:int=1").stdout)["served_by"]
        counts[name] = counts.get(name, 0) + 1
    return counts


@pytest.mark.parametrize("policy", ["roundrobin", "random", "first", "least-busy"])
def test_policies(policy):
    b = broker()
    ps = [provider("c" if i % 2 else "twisted", b.endpoint, "--name", "p%d" % i,
                   "--policy", policy, "Sum") for i in range(3)]
    try:
        counts = served_by(b.endpoint, 30)
        if policy == "roundrobin":
            assert counts == {"p0": 10, "p1": 10, "p2": 10}, counts
        elif policy == "random":
            assert len(counts) >= 2 and sum(counts.values()) == 30, counts
        else:  # first; least-busy with sequential calls: all idle, earliest wins
            assert counts == {"p0": 30}, counts
        if policy == "first":  # hot standby: the next one takes over
            ps[0].stop(signal.SIGKILL)
            time.sleep(0.3)
            assert served_by(b.endpoint, 5) == {"p1": 5}
        # a registration that disagrees on the policy is refused
        other = "first" if policy != "first" else "random"
        r = cli(b.endpoint, "amp.Register", "command=Sum", "policy=" + other, check=False)
        assert r.returncode == 4 and b"POLICY_CONFLICT" in r.stderr
        listing = cli(b.endpoint, "amp.Commands").stdout
        assert policy.encode() in listing
    finally:
        for p in ps:
            p.stop()
        b.stop()


def test_least_busy_avoids_a_busy_provider():
    b = broker()
    p0 = provider("c", b.endpoint, "--name", "p0", "--policy", "least-busy", "Sum", "Delay")
    p1 = provider("c", b.endpoint, "--name", "p1", "--policy", "least-busy", "Sum")
    slow = []
    try:
        # p0 alone serves Delay: five slow calls keep it busy
        for i in range(5):
            slow.append(subprocess.Popen([AMP_CLI, "call", b.endpoint, "Delay", "ms:int=3000",
                                          "n:int=%d" % i], stdout=subprocess.DEVNULL))
        time.sleep(0.5)
        assert served_by(b.endpoint, 10) == {"p1": 10}
        for proc in slow:
            assert proc.wait(timeout=30) == 0
        # both idle again: ties go to the earliest registration
        assert served_by(b.endpoint, 4) == {"p0": 4}
    finally:
        for proc in slow:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        p0.stop()
        p1.stop()
        b.stop()


@pytest.mark.parametrize("prov", ["twisted", "c"])
def test_provider_killed_under_load_every_call_answered_once(prov):
    b = broker()
    p = provider(prov, b.endpoint)
    n = 400
    load = Proc([C_PEER, "load", b.endpoint, str(n), "400"], r"^sent")
    try:
        time.sleep(0.15)
        p.stop(signal.SIGKILL)
        out = load.readline()
        m = re.match(r"completed (\d+) answered (\d+) errors (\d+) each-once (\d)", out)
        assert m, out
        completed, answered, errors, once = map(int, m.groups())
        assert completed == n and once == 1 and answered + errors == n, out
        assert errors > 0, "the provider was killed before answering everything"
        assert load.proc.wait(timeout=10) == 0
        s = stats(b.endpoint)
        codes = {e["code"]: e["count"] for e in decode_amplist(s["errors"])}
        assert codes.get("PROVIDER_LOST") == errors, (codes, errors)
    finally:
        load.stop()
        b.stop()


def decode_amplist(value):
    data = value.encode("utf-8", "surrogateescape")
    out, cur, i = [], {}, 0
    while i < len(data):
        (kl,) = struct.unpack("!H", data[i:i + 2])
        i += 2
        if kl == 0:
            out.append(cur)
            cur = {}
            continue
        k = data[i:i + kl].decode()
        i += kl
        (vl,) = struct.unpack("!H", data[i:i + 2])
        i += 2
        v = data[i:i + vl].decode()
        i += vl
        cur[k] = int(v) if v.isdigit() else v
    return out


def test_timeouts_and_vanished_callers():
    b = broker()
    p = provider("c", b.endpoint)
    try:
        r = cli(b.endpoint, "Delay", "ms:int=1500", "n:int=1", "_timeout:int=200", check=False)
        assert r.returncode == 4 and r.stderr.startswith(b"TIMEOUT:"), r.stderr
        # a caller that gives up and disconnects before the answer
        r = run([AMP_CLI, "call", "--timeout", "0.2", b.endpoint, "Delay", "ms:int=600",
                 "n:int=2"], check=False)
        assert r.returncode == 6
        time.sleep(2.0)
        s = stats(b.endpoint)
        assert s["late_answers_dropped"] == 1, s
        assert s["answers_to_gone_callers"] == 1, s
        r = cli(b.endpoint, "Delay", "ms:int=1", "n:int=3", "_timeout=x", check=False)
        assert r.returncode == 4 and b"BAD_REQUEST" in r.stderr
    finally:
        p.stop()
        b.stop()


def test_events_fan_out_with_patterns():
    b = broker()
    subs = [subscriber("twisted", b.endpoint, "chat.*"), subscriber("c", b.endpoint, "chat.>"),
            subscriber("c", b.endpoint, "news.sports")]
    try:
        run([AMP_CLI, "call", "--no-answer", b.endpoint, "chat.room1", "text=hello"])
        run([AMP_CLI, "call", "--no-answer", b.endpoint, "chat.room1.thread", "text=deep"])
        run([AMP_CLI, "call", "--no-answer", b.endpoint, "other", "text=nobody"])
        assert json.loads(subs[0].readline()) == {"_command": "chat.room1", "text": "hello"}
        assert json.loads(subs[1].readline()) == {"_command": "chat.room1", "text": "hello"}
        assert json.loads(subs[1].readline()) == {"_command": "chat.room1.thread",
                                                  "text": "deep"}
        time.sleep(0.3)
        s = stats(b.endpoint)
        assert s["events_published"] == 3 and s["events_delivered"] == 3, s
        r = cli(b.endpoint, "amp.Subscribe", "pattern=a..b", check=False)
        assert r.returncode == 4 and b"BAD_REQUEST" in r.stderr
    finally:
        for sub in subs:
            sub.stop()
        b.stop()


def raw_box(pairs):
    return b"".join(struct.pack("!H", len(k)) + k + struct.pack("!H", len(v)) + v
                    for k, v in pairs) + b"\0\0"


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_slow_subscriber_does_not_slow_the_publisher(tmp_path):
    b = broker(config="[broker]\nevent_queue_bytes = 262144\noutput_soft_cap = 131072\n",
               tmp_path=tmp_path)
    slow = socket.create_connection(("127.0.0.1", b.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Subscribe"),
                          (b"pattern", b"flood")]))
    time.sleep(0.2)
    fast = subscriber("c", b.endpoint, "flood")
    before = rss_kb(b.proc.pid)
    try:
        n, payload = 20000, b"x" * 1000
        pub = socket.create_connection(("127.0.0.1", b.port))
        box = raw_box([(b"_command", b"flood"), (b"data", payload)])
        t0 = time.time()
        pub.sendall(box * n)
        # the publisher is never refused or blocked: a call afterwards answers
        pub.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Stats")]))
        pub.settimeout(30)
        got = b""
        while not got.endswith(b"\0\0") or b"_answer" not in got:
            got += pub.recv(65536)
        elapsed = time.time() - t0
        s = stats(b.endpoint)
        assert s["events_published"] == n, s
        assert s["events_dropped"] > 0, s
        assert s["events_delivered"] + s["events_dropped"] == 2 * n, s
        grown = rss_kb(b.proc.pid) - before
        assert grown < 32 * 1024, "broker grew by %d KiB" % grown
        assert elapsed < 30
        pub.close()
    finally:
        slow.close()
        fast.stop()
        b.stop()


def test_malformed_bytes_close_only_that_connection():
    b = broker()
    p = provider("c", b.endpoint, "--name", "c1")
    try:
        for garbage in (b"\xff\xff" + b"x" * 10, b"\x00\x00", raw_box([(b"_answer", b"77")]),
                        raw_box([(b"_error", b"5"), (b"_error_code", b"X"),
                                 (b"_error_description", b"never asked")]),
                        raw_box([(b"_ask", b"1")]), raw_box([(b"_error", b"1")])):
            s = socket.create_connection(("127.0.0.1", b.port))
            s.sendall(garbage)
            s.settimeout(5)
            assert s.recv(100) == b""  # closed by the broker
            s.close()
        assert json.loads(cli(b.endpoint, "Sum", "a:int=2", "b:int=3").stdout)["total"] == "5"
    finally:
        p.stop()
        b.stop()


def test_bad_settings_name_their_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[broker]\ncall_timeout = 30\nslow_consumer = sometimes\n")
    r = run([BROKER, "--config", str(conf)], check=False)
    assert r.returncode == 2, r.stderr
    assert b"bad.conf:3: bad setting: slow_consumer is drop or disconnect" in r.stderr, r.stderr
    # a line that is no setting at all
    conf.write_text("[broker]\ncall_timeout 30\n")
    r = run([BROKER, "--config", str(conf)], check=False)
    assert r.returncode == 2 and b"bad.conf:2: bad setting: not NAME = VALUE" in r.stderr


SECONDS = "must be a number of seconds above 0, at most 86400"


@pytest.mark.parametrize("section,line,why", [
    # not a number of seconds: NaN never times out, 1e400 is infinite
    ("broker", "call_timeout = nan", "call_timeout " + SECONDS),
    ("broker", "call_timeout = inf", "call_timeout " + SECONDS),
    ("broker", "call_timeout = 1e400", "call_timeout " + SECONDS),
    ("broker", "call_timeout = -1", "call_timeout " + SECONDS),
    ("broker", "call_timeout =", "call_timeout " + SECONDS),
    ("broker", "call_timeout = 0x10", "call_timeout " + SECONDS),
    ("broker", "call_timeout = 90000", "call_timeout " + SECONDS),
    ("broker", "max_call_timeout = nan", "max_call_timeout " + SECONDS),
    ("broker", "output_soft_seconds = inf", "output_soft_seconds " + SECONDS),
    ("broker", "box_timeout = 0", "box_timeout " + SECONDS),
    ("broker", "handshake_timeout = -0.5", "handshake_timeout " + SECONDS),
    ("broker", "drain_timeout = nan",
     "drain_timeout must be a number of seconds from 0 (exit at once) to 86400"),
    ("broker", "keepalive = 0.5", "keepalive must be whole seconds from 0 (off) to 32767"),
    ("auth", "login_timeout = nan", "login_timeout " + SECONDS),
    ("auth", "login_timeout = 0", "login_timeout " + SECONDS),
    ("auth", "login_throttle_max = inf",
     "login_throttle_max must be a number of seconds from 0 (off) to 86400"),
    # counts: no sign (-1 is not 2^64 - 1), not empty, 0 only where it means off
    ("broker", "max_calls_in_flight =",
     "max_calls_in_flight must be a whole number from 1 to 100000000"),
    ("broker", "max_calls_in_flight = 0",
     "max_calls_in_flight must be a whole number from 1 to 100000000"),
    ("broker", "max_calls_in_flight = -1",
     "max_calls_in_flight must be a whole number from 1 to 100000000"),
    ("broker", "max_connections = -5", "max_connections must be a whole number from 1 to"),
    ("broker", "event_queue_bytes = -1",
     "event_queue_bytes must be a whole number from 1 to 1099511627776"),
    ("broker", "max_keys = 1.5", "max_keys must be a whole number from 1 to"),
    ("broker", "output_soft_cap = +5", "output_soft_cap must be a whole number from 0 to"),
    ("broker", "max_box_bytes = 1", "max_box_bytes must be a whole number from 2 to"),
    ("broker", "login_max_box_bytes = -4096",
     "login_max_box_bytes must be a whole number from 2 to"),
    ("broker", "log_level = loud", "log_level is error, warn, info or debug"),
    ("broker", "no_such_thing = 1", "unknown setting 'no_such_thing'"),
])
def test_bad_numbers_are_refused_naming_the_setting(tmp_path, section, line, why):
    """Every bad value stops the broker at start with a message naming the
    setting and what it allows; none is read as something else (NaN, an
    infinity, 2^64 - 1 for -1, 0 for empty)."""
    conf = tmp_path / "bad.conf"
    conf.write_text("[%s]\n%s\n" % (section, line))
    try:
        r = subprocess.run([BROKER, "--config", str(conf), "--listen",
                            "tcp:0:interface=127.0.0.1"], capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the broker started with %r" % line)
    want = "bad.conf:2: bad setting: %s" % why
    assert r.returncode == 2 and want.encode() in r.stderr, r.stderr
    assert b"18446744073709551615" not in r.stderr


def test_zero_where_it_means_off_and_fractions_of_seconds_are_taken(tmp_path):
    conf = tmp_path / "ok.conf"
    conf.write_text("[broker]\nkeepalive = 0\noutput_soft_cap = 0\ndrain_timeout = 0\n"
                    "call_timeout = 0.25\nbox_timeout = 1e1\n")
    b = Proc([BROKER, "--config", str(conf), "--listen", "tcp:0:interface=127.0.0.1"],
             r"\(port (\d+)\)", stream="stderr")
    b.stop()


def test_default_configuration_and_help():
    r = run([BROKER, "--help"])
    assert b"usage: amp-broker" in r.stdout
    assert run([BROKER, "--version"]).stdout.startswith(b"amp-broker ")
    assert b"--hash-password" in r.stdout.split(b"\n\n")[0]  # in the usage lines
    r = run([BROKER, "--listen", "tcp:nope"], check=False)
    assert r.returncode == 2 and b"port 'nope'" in r.stderr
    r = run([BROKER, "--log-level", "loud"], check=False)
    assert r.returncode == 2
    # the commented example configuration is valid
    example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "broker",
                           "amp-broker.conf")
    b = Proc([BROKER, "--config", example, "--listen", "tcp:0:interface=127.0.0.1"],
             r"\(port (\d+)\)", stream="stderr")
    b.stop()
    r = run([BROKER, "--config", "/nonexistent.conf"], check=False)
    assert r.returncode == 2 and b"cannot read" in r.stderr
    # with no arguments: loopback TCP on the documented port, 7760
    try:
        b = Proc([BROKER], r"listening on (\S+) \(port (\d+)\)", stream="stderr")
    except RuntimeError as e:
        if "Address already in use" in str(e):
            pytest.skip("port 7760 is taken on this machine")
        raise
    ep = "tcp:127.0.0.1:7760"
    try:
        assert b.match.group(1) == "tcp:7760:interface=127.0.0.1"
        assert b.match.group(2) == "7760"
        # a Twisted caller to a C provider, and a C caller to a Twisted provider
        p = provider("c", ep, "--name", "c-provider", "Sum")
        script = (
            "import sys\n"
            "sys.path.insert(0, %r)\n"
            "from twisted.internet import reactor, endpoints\n"
            "from twisted.protocols import amp\n"
            "from twisted_peer import NamedSum\n"
            "def go():\n"
            "    d = endpoints.connectProtocol(endpoints.clientFromString(reactor, %r),"
            " amp.AMP())\n"
            "    d.addCallback(lambda p: p.callRemote(NamedSum, a=13, b=81))\n"
            "    d.addCallback(lambda r: print(r['total'], r['served_by']))\n"
            "    d.addBoth(lambda _: reactor.stop())\n"
            "reactor.callWhenRunning(go)\n"
            "reactor.run()\n" % (os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             "python"), ep))
        assert run([TWISTED_PEER[0], "-c", script]).stdout == b"94 c-provider\n"
        p.stop()
        p = provider("twisted", ep, "--name", "twisted-provider", "Sum")
        assert json.loads(cli(ep, "Sum", "a:int=13", "b:int=81").stdout) == {
            "served_by": "twisted-provider", "total": "94"}
        p.stop()
    finally:
        b.stop()


def test_malformed_endpoints_are_a_bad_command_line_unusable_ones_exit_1(tmp_path):
    """A malformed endpoint string exits 2 before anything starts (even
    after a good one); a well-formed one that cannot be bound exits 1."""
    for argv in (["--listen", "tcp:host"],
                 ["--listen", "tcp:0:interface=127.0.0.1", "--listen", "ssl:0"],
                 ["--listen", "unix:"]):
        r = run([BROKER, *argv], check=False)
        assert r.returncode == 2 and b"endpoint" in r.stderr, (argv, r.stderr)
        assert b"listening on" not in r.stderr, r.stderr
    conf = tmp_path / "bad.conf"
    for setting, why in (("listen = tcp:host", b"endpoint 'tcp:host'"),
                         ("metrics_listen = tcp:nope", b"metrics_listen: endpoint 'tcp:nope'"),
                         ("metrics_listen = unix:/tmp/m.sock",
                          b"metrics_listen must be a tcp: endpoint")):
        conf.write_text("[broker]\n%s\n" % setting)
        r = run([BROKER, "--config", str(conf)], check=False)
        assert r.returncode == 2 and why in r.stderr, (setting, r.stderr)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        r = run([BROKER, "--listen", "tcp:%d:interface=127.0.0.1" % taken.getsockname()[1]],
                check=False)
        assert r.returncode == 1 and b"Address already in use" in r.stderr, r.stderr
    finally:
        taken.close()


def test_hash_password_refuses_an_empty_password():
    for data in (b"\n", b"", b"\r\n"):
        r = run([BROKER, "--hash-password"], data, check=False)
        assert r.returncode == 2 and b"password" in r.stderr and not r.stdout, (data, r)
    r = run([BROKER, "--hash-password"], b"x" * 5000 + b"\n", check=False)
    assert r.returncode == 2 and b"longer than" in r.stderr and not r.stdout
    r = run([BROKER, "--hash-password"], b"secret\n")
    assert re.fullmatch(rb"pbkdf2-sha256\$200000\$[0-9a-f]{32}\$[0-9a-f]{64}\n", r.stdout)


def read_box(sock, buf):
    """One box from a raw socket: (pairs in wire order, rest of the buffer)."""
    while True:
        pairs, i = [], 0
        try:
            while True:
                (kl,) = struct.unpack("!H", buf[i:i + 2])
                i += 2
                if kl == 0:
                    return pairs, buf[i:]
                k = buf[i:i + kl]
                (vl,) = struct.unpack("!H", buf[i + kl:i + kl + 2])
                v = buf[i + kl + 2:i + kl + 2 + vl]
                if len(v) < vl:
                    raise struct.error
                pairs.append((k, v))
                i += kl + 2 + vl
        except struct.error:
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            buf += chunk


def test_routed_keys_are_untouched_byte_for_byte():
    b = broker()
    try:
        prov = socket.create_connection(("127.0.0.1", b.port))
        prov.settimeout(10)
        prov.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Register"),
                              (b"command", b"Raw")]))
        pairs, pbuf = read_box(prov, b"")
        assert pairs == [(b"_answer", b"1")]
        caller = socket.create_connection(("127.0.0.1", b.port))
        caller.settimeout(10)
        args = [(b"z", b"\x00\xff\x00"), (b"_custom", b"kept"), (b"a", b""),
                (b"\xc3\xa9", b"x" * 65535), (b"dup", b"1"), (b"dup", b"2")]
        caller.sendall(raw_box([(b"_command", b"Raw"), (b"_ask", b"tag-from-caller")] + args))
        fwd, pbuf = read_box(prov, pbuf)
        assert fwd[0][0] == b"_ask" and fwd[0][1] != b"tag-from-caller"
        assert fwd[1] == (b"_command", b"Raw")
        assert fwd[2:] == args  # order, duplicates, bytes: untouched
        answer = [(b"\x01", b"\xfe"), (b"_extra", b"yes"), (b"total", b"94")]
        prov.sendall(raw_box([(b"_answer", fwd[0][1])] + answer))
        got, _ = read_box(caller, b"")
        assert got == [(b"_answer", b"tag-from-caller")] + answer
        # an error is relayed with its exact bytes
        caller.sendall(raw_box([(b"_ask", b"2"), (b"_command", b"Raw")]))
        fwd, pbuf = read_box(prov, pbuf)
        prov.sendall(raw_box([(b"_error", fwd[0][1]), (b"_error_code", b"MY\xffCODE"),
                              (b"_error_description", b"d\xe9j\xe0")]))
        got, _ = read_box(caller, b"")
        assert got == [(b"_error", b"2"), (b"_error_code", b"MY\xffCODE"),
                       (b"_error_description", b"d\xe9j\xe0")]
        caller.close()
        prov.close()
    finally:
        b.stop()


@pytest.mark.parametrize("extra", [0, 100])  # 100: more pairs than the broker keeps on its stack
def test_reserved_keys_stay_with_the_broker(extra):
    """_timeout and the protocol's keys are the broker's: never forwarded in a
    call, an answer or an event; every other key is, in order."""
    b = broker()
    try:
        prov = socket.create_connection(("127.0.0.1", b.port))
        prov.settimeout(10)
        prov.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Register"),
                              (b"command", b"Raw")]))
        sub = socket.create_connection(("127.0.0.1", b.port))
        sub.settimeout(10)
        sub.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Subscribe"),
                             (b"pattern", b"ev.>")]))
        assert read_box(prov, b"")[0] == [(b"_answer", b"1")]
        assert read_box(sub, b"")[0] == [(b"_answer", b"1")]
        args = [(b"k%d" % i, b"v%d" % i) for i in range(extra)] + [(b"_timeoutx", b"kept")]
        caller = socket.create_connection(("127.0.0.1", b.port))
        caller.settimeout(10)
        caller.sendall(raw_box([(b"_command", b"Raw"), (b"_ask", b"c1"),
                                (b"_timeout", b"5000")] + args))
        fwd, _ = read_box(prov, b"")
        assert [k for k, _ in fwd[:2]] == [b"_ask", b"_command"] and fwd[2:] == args
        answer = args + [(b"_timeout", b"1")]
        prov.sendall(raw_box([(b"_answer", fwd[0][1])] + answer))
        got, _ = read_box(caller, b"")
        assert got == [(b"_answer", b"c1")] + args
        caller.sendall(raw_box([(b"_command", b"ev.x"), (b"_timeout", b"7")] + args))
        got, _ = read_box(sub, b"")
        assert got == [(b"_command", b"ev.x")] + args
        for s in (caller, prov, sub):
            s.close()
    finally:
        b.stop()


def http_get(port, path):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path.encode())
    s.settimeout(10)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body.decode()


def test_metrics_endpoint(tmp_path):
    b = broker(config="[broker]\nmetrics_listen = tcp:0:interface=127.0.0.1\n",
               tmp_path=tmp_path)
    try:
        line = b.proc.stderr.readline().decode()
        while "metrics on" not in line:
            line = b.proc.stderr.readline().decode()
        # a URL to paste, not the endpoint string
        url = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics \(port (\d+)\)", line)
        assert url and url.group(1) == url.group(2), line
        port = int(url.group(1))
        cli(b.endpoint, "Nope", check=False)
        status, body = http_get(port, "/metrics")
        assert status == b"HTTP/1.0 200 OK"
        assert "# TYPE amp_broker_connections gauge" in body
        assert re.search(r"^amp_broker_connections_total \d+$", body, re.M)
        assert 'amp_broker_errors{code="UNHANDLED"} 1' in body
        # the same counters as amp.Stats
        s = stats(b.endpoint)
        for name in s:
            if name != "errors":
                assert "amp_broker_%s " % name in body, name
        assert http_get(port, "/")[0] == b"HTTP/1.0 404 Not Found"
    finally:
        b.stop()


def test_metrics_url_of_an_ipv6_listener_has_brackets(tmp_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("::1 cannot be bound on this machine")
    b = broker(config="[broker]\nmetrics_listen = tcp:0:interface=\\:\\:1\n",
               tmp_path=tmp_path)
    try:
        line = b.proc.stderr.readline().decode()
        while "metrics on" not in line:
            line = b.proc.stderr.readline().decode()
        url = re.search(r"metrics on http://\[::1\]:(\d+)/metrics ", line)
        assert url, line
        s = socket.create_connection(("::1", int(url.group(1))), timeout=10)
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.0 200 OK")
        s.close()
    finally:
        b.stop()


def test_sigterm_drains(tmp_path):
    b = broker(config="[broker]\ndrain_timeout = 5\n", tmp_path=tmp_path)
    p = provider("c", b.endpoint)
    try:
        inflight = subprocess.Popen([AMP_CLI, "call", b.endpoint, "Delay", "ms:int=800",
                                     "n:int=7"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        caller = socket.create_connection(("127.0.0.1", b.port))
        caller.settimeout(10)
        time.sleep(0.3)
        os.kill(b.proc.pid, signal.SIGTERM)
        time.sleep(0.2)
        # a new call on an open connection: SHUTTING_DOWN
        caller.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"Sum"), (b"a", b"1"),
                                (b"b", b"2")]))
        got, _ = read_box(caller, b"")
        assert (b"_error_code", b"SHUTTING_DOWN") in got
        # new connections are refused
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", b.port), timeout=2)
        # the call in flight finishes normally
        out, err = inflight.communicate(timeout=10)
        assert inflight.returncode == 0 and json.loads(out) == {"n": "7"}, err
        assert b.proc.wait(timeout=10) == 0
    finally:
        p.stop()
        b.stop()


def test_max_connections_refuse_then_recover(tmp_path):
    b = broker(config="[broker]\nmax_connections = 2\n", tmp_path=tmp_path)
    held = [socket.create_connection(("127.0.0.1", b.port)) for _ in range(2)]
    try:
        time.sleep(0.2)
        r = cli(b.endpoint, "amp.Stats", check=False)
        assert r.returncode == 5, r
        held.pop().close()
        time.sleep(0.2)
        s = stats(b.endpoint)
        assert s["connections_refused"] >= 1 and s["connections"] == 2, s
    finally:
        for h in held:
            h.close()
        b.stop()


def test_tls_handshake_timeout(tmp_path, pki):
    conf = "[broker]\nhandshake_timeout = 0.5\nlisten = ssl:0:privateKey=%s:certKey=%s:" \
           "interface=127.0.0.1\n" % (pki / "server.key", pki / "server.pem")
    path = tmp_path / "tls.conf"
    path.write_text(conf)
    b = Proc([BROKER, "--config", str(path)], r"\(port (\d+)\)", stream="stderr")
    try:
        port = int(b.match.group(1))
        silent = socket.create_connection(("127.0.0.1", port))
        silent.settimeout(5)
        t0 = time.time()
        assert silent.recv(100) == b""  # closed by the broker
        assert time.time() - t0 < 3
        r = run([AMP_CLI, "call", "ssl:host=localhost:port=%d:caCerts=%s" % (port, pki / "ca.pem"),
                 "amp.Stats"])
        assert b"connections" in r.stdout
    finally:
        b.stop()


def test_tls_peers_leaving_log_no_tls_error(tmp_path, pki):
    """amp-cli call over ssl: closes with close_notify, and a peer that just
    drops the connection after its call is an ordinary close too: neither
    leaves a 'TLS error' line in the broker's log."""
    import ssl

    conf = tmp_path / "tls.conf"
    conf.write_text("[broker]\nlisten = ssl:0:privateKey=%s:certKey=%s:interface=127.0.0.1\n"
                    % (pki / "server.key", pki / "server.pem"))
    b = Proc([BROKER, "--config", str(conf)], r"\(port (\d+)\)", stream="stderr")
    port = int(b.match.group(1))
    try:
        for _ in range(3):
            r = run([AMP_CLI, "call", "ssl:host=localhost:port=%d:caCerts=%s"
                     % (port, pki / "ca.pem"), "amp.Stats"])
            assert b"connections" in r.stdout
        ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                            server_hostname="localhost")
        s.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Stats")]))
        got, _ = read_box(s, b"")
        assert (b"_answer", b"1") in got
        s.close()  # no unwrap(): no close_notify
        time.sleep(0.5)
    finally:
        err = b.stop()
    assert "TLS error" not in err, err
    assert "gone" not in err, err  # ordinary closes are logged at debug level
