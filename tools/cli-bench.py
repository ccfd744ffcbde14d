#!/usr/bin/python3
"""amp-cli beside Twisted, measured in one run on one broker.

  tools/cli-bench.py [BUILD_DIR] [--rounds N]

1. One call from a fresh process (what a script pays per 'amp-cli call'):
   amp-cli call with its signature lookup, amp-cli call --no-signature, and
   the same call from a minimal Twisted client process.
2. Calls answered per second by a provider behind the broker, one call at a
   time from the same raw-socket caller: a Twisted provider, amp-cli serve
   --answer, amp-cli serve --exec running a shell one-liner and a python3
   script per call; and the python3 one with 8 calls waiting at a time
   (serve runs children side by side).
Prints medians of the rounds and the ratios to Twisted. Loopback only.
"""
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SIG = "Add(a: Integer, b: Integer) -> (total: Integer)"

TWISTED_PROVIDER = r"""
import sys
from twisted.internet import endpoints, reactor
from twisted.protocols import amp
class Add(amp.Command):
    arguments = [(b'a', amp.Integer()), (b'b', amp.Integer())]
    response = [(b'total', amp.Integer())]
class Register(amp.Command):
    commandName = b'amp.Register'
    arguments = [(b'command', amp.Unicode())]
class P(amp.AMP):
    @Add.responder
    def add(self, a, b):
        return {'total': a + b}
def go(p):
    p.callRemote(Register, command='Add').addCallback(lambda _: print('ready', flush=True))
endpoints.connectProtocol(endpoints.clientFromString(reactor, sys.argv[1]), P()).addCallback(go)
reactor.run()
"""

TWISTED_CALL = r"""
import sys
from twisted.internet import endpoints, reactor
from twisted.protocols import amp
class Add(amp.Command):
    arguments = [(b'a', amp.Integer()), (b'b', amp.Integer())]
    response = [(b'total', amp.Integer())]
def go(p):
    d = p.callRemote(Add, a=1, b=2)
    d.addCallback(lambda r: print('{"total": %d}' % r['total']))
    d.addBoth(lambda _: reactor.stop())
endpoints.connectProtocol(endpoints.clientFromString(reactor, sys.argv[1]), amp.AMP()).addCallback(go)
reactor.run()
"""

EXEC_PY = "import json,sys\na=json.loads(sys.stdin.readline())['arguments']\n" \
          "print(json.dumps({'total': a['a'] + a['b']}))\n"


def box(pairs):
    return b"".join(struct.pack("!H", len(k)) + k + struct.pack("!H", len(v)) + v
                    for k, v in pairs) + b"\0\0"


def read_box(sock, buf):
    while True:
        pos, pairs = 0, []
        while pos + 2 <= len(buf):
            (kl,) = struct.unpack_from("!H", buf, pos)
            if kl == 0:
                return pairs, buf[pos + 2:]
            if pos + 4 + kl > len(buf):
                break
            (vl,) = struct.unpack_from("!H", buf, pos + 2 + kl)
            if pos + 4 + kl + vl > len(buf):
                break
            pairs.append((buf[pos + 2:pos + 2 + kl], buf[pos + 4 + kl:pos + 4 + kl + vl]))
            pos += 4 + kl + vl
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf += data


def calls_per_second(port, n, window=1):
    """n Add calls through the broker, at most `window` waiting at a time;
    calls per second."""
    s = socket.create_connection(("127.0.0.1", port))
    buf = b""

    def send(i):
        s.sendall(box([(b"_ask", b"%d" % i), (b"_command", b"Add"), (b"a", b"1"), (b"b", b"2")]))
    start = time.monotonic()
    for i in range(min(window, n)):
        send(i)
    for i in range(n):
        pairs, buf = read_box(s, buf)
        assert dict(pairs).get(b"total") == b"3", pairs
        if i + window < n:
            send(i + window)
    elapsed = time.monotonic() - start
    s.close()
    return n / elapsed


def wait_line(proc, stream, pattern):
    while True:
        line = stream.readline().decode()
        if not line:
            raise RuntimeError("exited before %r" % pattern)
        m = re.search(pattern, line)
        if m:
            return m


def start(argv, ready, stream="stderr", **kw):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    m = wait_line(p, getattr(p, stream), ready)
    return p, m


def stop(p):
    p.terminate()
    p.communicate(timeout=30)


def timed(argv, expect):
    t = time.monotonic()
    out = subprocess.run(argv, capture_output=True, check=True).stdout
    elapsed = time.monotonic() - t
    assert expect in out, out
    return elapsed


def main():
    args = sys.argv[1:]
    rounds = 5
    if "--rounds" in args:
        i = args.index("--rounds")
        rounds = int(args[i + 1])
        del args[i:i + 2]
    build = args[0] if args else os.path.join(HERE, "..", "build")
    cli = os.path.join(build, "tools", "amp-cli", "amp-cli")
    broker_bin = os.path.join(build, "broker", "amp-broker")
    workdir = "/tmp/cli-bench.%d" % os.getpid()
    os.makedirs(workdir)
    script = os.path.join(workdir, "add.py")
    with open(script, "w") as f:
        f.write(EXEC_PY)
    broker, m = start([broker_bin, "--listen", "tcp:0:interface=127.0.0.1"], r"\(port (\d+)\)")
    port = int(m.group(1))
    ep = "tcp:127.0.0.1:%d" % port
    env = dict(os.environ, AMP_URL=ep)
    try:
        # 1. one call from a fresh process, a provider with a signature
        serve, _ = start([cli, "serve", SIG, "--answer", "total=3"], r"serving", env=env)
        one = {"amp-cli call": [], "amp-cli call --no-signature": [], "Twisted client": []}
        for _ in range(rounds):
            for _ in range(5):
                one["amp-cli call"].append(timed([cli, "call", "--server", ep, "Add", "a=1", "b=2"], b'"total":3'))
                one["amp-cli call --no-signature"].append(
                    timed([cli, "call", "--server", ep, "--no-signature", "Add", "a:int=1", "b:int=2"],
                          b'"3"'))
                one["Twisted client"].append(
                    timed([sys.executable, "-c", TWISTED_CALL, ep], b'"total": 3'))
        stop(serve)
        # 2. calls per second behind the broker
        providers = [
            ("Twisted provider", [sys.executable, "-c", TWISTED_PROVIDER, ep], "ready", "stdout",
             2000, 1),
            ("amp-cli serve --answer", [cli, "serve", SIG, "--answer", "total=3"], "serving",
             "stderr", 2000, 1),
            ("amp-cli serve --exec (sh)", [cli, "serve", SIG, "--exec", "echo '{\"total\": 3}'"],
             "serving", "stderr", 200, 1),
            ("amp-cli serve --exec (python3)", [cli, "serve", SIG, "--exec",
                                                "exec python3 " + script], "serving", "stderr",
             100, 1),
            ("  the same, 8 calls at a time", [cli, "serve", SIG, "--exec",
                                              "exec python3 " + script], "serving", "stderr",
             200, 8),
        ]
        rate = {name: [] for name, *_ in providers}
        for _ in range(rounds):
            for name, argv, ready, stream, n, window in providers:
                p, _ = start(argv, ready, stream=stream, env=env)
                rate[name].append(calls_per_second(port, n, window))
                stop(p)
    finally:
        stop(broker)
        for f in os.listdir(workdir):
            os.unlink(os.path.join(workdir, f))
        os.rmdir(workdir)
    print("one call from a fresh process (median of %d, ms):" % (rounds * 5))
    ref = statistics.median(one["Twisted client"])
    for name, v in one.items():
        med = statistics.median(v)
        print("  %-34s %8.1f ms   %.3gx Twisted's time" % (name, med * 1e3, med / ref))
    print("calls answered per second behind the broker (median of %d):" % rounds)
    ref = statistics.median(rate["Twisted provider"])
    for name, v in rate.items():
        med = statistics.median(v)
        print("  %-34s %8.0f /s   %.3gx Twisted's rate" % (name, med, med / ref))


if __name__ == "__main__":
    main()
