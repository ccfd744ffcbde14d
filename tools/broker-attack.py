#!/usr/bin/python3
"""Measure what hostile peers can make amp-broker hold or spend.

Starts the broker given with --broker (any build: the figures compare one
build with another) on a free loopback port and runs one attack:

  commands   rounds of "register N names, disconnect": broker RSS after them
  subscribe  S subscriptions on one connection (time taken), then the rate of
             events that match none of them
  fanout     C connections of P subscriptions each (100,000 in all), then E
             events: how long the broker takes, what it delivers, and another
             client's amp.Stats latency meanwhile; --shape none: long
             wildcard patterns the events never match; --shape overlap: every
             pattern of every connection matches every event
  readers    R subscribers that never read, two large events: RSS after them
             and after the soft-cap period
  partial    P peers each holding half of a large box: RSS while they hold
             it, and whether they are closed by the box timeout

Each prints one JSON object. Settings for the broker's [broker] section come
with --set NAME=VALUE (repeatable); nothing else is configured, so older
builds that lack a setting can run the same attack without it.

  tools/broker-attack.py --broker build/broker/amp-broker commands
  tools/broker-attack.py --broker build/broker/amp-broker --set max_subscriptions=20000 \\
      subscribe
  tools/broker-attack.py --broker build/broker/amp-broker fanout --shape overlap
"""
import argparse
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time


def box(pairs):
    return b"".join(struct.pack("!H", len(k)) + k + struct.pack("!H", len(v)) + v
                    for k, v in pairs) + b"\0\0"


def calls(command, key, values, first_tag=1):
    return b"".join(box([(b"_ask", b"%d" % (first_tag + i)), (b"_command", command), (key, v)])
                    for i, v in enumerate(values))


class Boxes:
    """Boxes read from a socket, parsed in place."""

    def __init__(self, sock):
        self.s, self.buf, self.i = sock, b"", 0

    def _need(self, n):
        while len(self.buf) - self.i < n:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed by the broker")
            self.buf = self.buf[self.i:] + chunk
            self.i = 0

    def next(self):
        pairs = {}
        while True:
            self._need(2)
            (kl,) = struct.unpack_from("!H", self.buf, self.i)
            self.i += 2
            if kl == 0:
                return pairs
            self._need(kl + 2)
            k = self.buf[self.i:self.i + kl]
            (vl,) = struct.unpack_from("!H", self.buf, self.i + kl)
            self.i += kl + 2
            self._need(vl)
            pairs[k] = self.buf[self.i:self.i + vl]
            self.i += vl


class Broker:
    def __init__(self, path, settings):
        self.dir = tempfile.mkdtemp(prefix="broker-attack-")
        conf = os.path.join(self.dir, "broker.conf")
        with open(conf, "w") as f:
            f.write("[broker]\nlisten = tcp:0:interface=127.0.0.1\n")
            for s in settings:
                f.write(s.replace("=", " = ", 1) + "\n")
        self.log = open(os.path.join(self.dir, "broker.log"), "w+b")
        self.proc = subprocess.Popen([path, "--config", conf], stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        deadline = time.time() + 10
        while time.time() < deadline:
            self.log.seek(0)
            m = re.search(rb"\(port (\d+)\)", self.log.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.log.seek(0)
        sys.exit("the broker did not start:\n" + self.log.read().decode(errors="replace"))

    def connect(self, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect(("127.0.0.1", self.port))
        s.settimeout(120)
        return s

    def rss_mib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def stats(self):
        s = self.connect()
        s.sendall(box([(b"_ask", b"1"), (b"_command", b"amp.Stats")]))
        got = Boxes(s).next()
        s.close()
        return {k.decode(): int(v) for k, v in got.items() if v.isdigit()}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def wait_connections(b, n, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline and b.stats().get("connections", 0) > n:
        time.sleep(0.1)


def attack_commands(b, a):
    rounds = []
    refused = 0
    for r in range(a.rounds):
        s = b.connect()
        names = [(b"%d.%d." % (r, i)).ljust(a.name_bytes, b"n") for i in range(a.names)]
        s.sendall(calls(b"amp.Register", b"command", names))
        got = Boxes(s)
        for _ in names:
            refused += b"_error_code" in got.next()
        s.close()
        wait_connections(b, 1)
        rounds.append(b.rss_mib())
    st = b.stats()
    return {"rss_mib_start": a.rss0, "rss_mib_after_each_round": rounds,
            "registrations_refused": refused, "commands_left": st.get("commands")}


def attack_subscribe(b, a):
    s = b.connect()
    t0 = time.time()
    s.sendall(calls(b"amp.Subscribe", b"pattern", [b"sub.%d.x" % i for i in range(a.subs)]))
    got = Boxes(s)
    accepted = sum(b"_answer" in got.next() for _ in range(a.subs))
    subscribe_s = time.time() - t0
    # events that match no pattern, then a call: its answer comes after all
    pub = b.connect()
    events = box([(b"_command", b"nobody.home"), (b"n", b"1")]) * a.events
    t0 = time.time()
    pub.sendall(events + box([(b"_ask", b"1"), (b"_command", b"amp.Stats")]))
    Boxes(pub).next()
    elapsed = time.time() - t0
    return {"subscriptions_asked": a.subs, "subscriptions_accepted": accepted,
            "subscribe_seconds": round(subscribe_s, 3), "events": a.events,
            "events_per_second": round(a.events / elapsed)}


def fanout_patterns(a, c):
    """Connection c's patterns and the events' name for --shape."""
    if a.shape == "none":  # the name walks each pattern's '*'s, then fails
        stars = ".*" * (a.tokens - 2)
        return ([b"p%s.c%dx%d" % (stars.encode(), c, j) for j in range(a.patterns)],
                b"p" + b".a" * (a.tokens - 2) + b".nomatch")
    import itertools  # each token literal or '*': all match the name
    toks = [b"t%d" % i for i in range(min(a.tokens - 1, 10))]
    pats = [b".".join([b"o"] + [b"*" if m else t for m, t in zip(mask, toks)])
            for mask in itertools.product([0, 1], repeat=len(toks))]
    return pats[:a.patterns], b".".join([b"o"] + toks)


def attack_fanout(b, a):
    held, accepted = [], 0
    for c in range(a.conns):
        s = b.connect()
        pats, name = fanout_patterns(a, c)
        s.sendall(calls(b"amp.Subscribe", b"pattern", pats))
        got = Boxes(s)
        accepted += sum(b"_answer" in got.next() for _ in pats)
        held.append(s)
    sink = os.fork() if a.shape == "overlap" else 0
    if sink == 0 and a.shape == "overlap":  # read what the subscribers get
        import select
        while held:
            for s in select.select(held, [], [])[0]:
                if not s.recv(1 << 20):
                    held.remove(s)
        os._exit(0)
    rss = b.rss_mib()
    import threading
    probe, lat, done = b.connect(), [], threading.Event()

    def prober():
        got = Boxes(probe)
        while not done.is_set():
            t = time.time()
            probe.sendall(box([(b"_ask", b"1"), (b"_command", b"amp.Stats")]))
            got.next()
            lat.append((time.time() - t) * 1000)
            time.sleep(0.01)

    th = threading.Thread(target=prober)
    pub = b.connect()
    th.start()
    t0 = time.time()
    pub.sendall(box([(b"_command", name)]) * a.events +
                box([(b"_ask", b"1"), (b"_command", b"amp.Stats")]))
    st = {k.decode(): int(v) for k, v in Boxes(pub).next().items() if v.isdigit()}
    elapsed = time.time() - t0
    done.set()
    th.join()
    if sink:
        os.kill(sink, signal.SIGKILL)
        os.waitpid(sink, 0)
    lat.sort()
    return {"shape": a.shape, "connections": a.conns, "subscriptions": accepted,
            "rss_mib": rss, "events": a.events, "seconds": round(elapsed, 3),
            "events_per_second": round(a.events / elapsed),
            "events_delivered": st.get("events_delivered"),
            "probes": len(lat), "probe_ms_median": round(lat[len(lat) // 2], 2) if lat else None,
            "probe_ms_max": round(lat[-1], 2) if lat else None}


def big_event(n_bytes):
    values = n_bytes // 65000
    return box([(b"_command", b"big.ev")] + [(b"k%03d" % i, b"x" * 65000) for i in range(values)])


def attack_readers(b, a):
    subs = []
    for _ in range(a.readers):
        s = b.connect(rcvbuf=4096)
        s.sendall(box([(b"_ask", b"1"), (b"_command", b"amp.Subscribe"), (b"pattern", b"big.>")]))
        Boxes(s).next()
        subs.append(s)
    pub = b.connect()
    pub.sendall(big_event(a.event_bytes) * 2 + box([(b"_ask", b"1"), (b"_command", b"amp.Stats")]))
    Boxes(pub).next()
    time.sleep(1)
    after = b.rss_mib()
    time.sleep(a.wait)
    st = b.stats()
    out = {"rss_mib_start": a.rss0, "rss_mib_1s_after": after,
           "rss_mib_%gs_after" % (a.wait + 1): b.rss_mib(),
           "subscribers_left": st.get("connections", 0) - 2}
    for k in ("events_delivered", "events_dropped", "slow_connections_closed",
              "budget_events_dropped", "budget_connections_closed", "queued_bytes"):
        if k in st:
            out[k] = st[k]
    for s in subs:
        s.close()
    return out


def attack_partial(b, a):
    socks = []
    n = a.box_bytes // 65540
    half = box([(b"k%03d" % i, b"x" * 65535) for i in range(n)])[:a.box_bytes // 2]
    for _ in range(a.peers):
        s = b.connect()
        s.sendall(half)
        socks.append(s)
    time.sleep(1)
    held = b.rss_mib()
    st = b.stats()
    out = {"rss_mib_start": a.rss0, "rss_mib_holding": held,
           "connections_holding": st.get("connections", 0) - 1}
    if a.wait:
        time.sleep(a.wait)
        st = b.stats()
        out["rss_mib_%gs_later" % a.wait] = b.rss_mib()
        out["connections_left_%gs_later" % a.wait] = st.get("connections", 0) - 1
        if "box_timeouts" in st:
            out["box_timeouts"] = st["box_timeouts"]
    for s in socks:
        s.close()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", required=True, help="the amp-broker binary")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a [broker] setting (repeatable)")
    sub = p.add_subparsers(dest="attack", required=True)
    c = sub.add_parser("commands")
    c.add_argument("--rounds", type=int, default=10)
    c.add_argument("--names", type=int, default=400)
    c.add_argument("--name-bytes", type=int, default=60000)
    s = sub.add_parser("subscribe")
    s.add_argument("--subs", type=int, default=20000)
    s.add_argument("--events", type=int, default=50000)
    f = sub.add_parser("fanout")
    f.add_argument("--conns", type=int, default=100)
    f.add_argument("--patterns", type=int, default=1000, help="per connection")
    f.add_argument("--tokens", type=int, default=16, help="of each pattern (at least 3)")
    f.add_argument("--shape", choices=["none", "overlap"], default="none")
    f.add_argument("--events", type=int, default=200)
    r = sub.add_parser("readers")
    r.add_argument("--readers", type=int, default=120)
    r.add_argument("--event-bytes", type=int, default=3900000)
    r.add_argument("--wait", type=float, default=12, help="seconds before the second RSS")
    q = sub.add_parser("partial")
    q.add_argument("--peers", type=int, default=50)
    q.add_argument("--box-bytes", type=int, default=4 << 20)
    q.add_argument("--wait", type=float, default=0, help="seconds before looking again")
    a = p.parse_args()
    b = Broker(a.broker, a.set)
    try:
        time.sleep(0.2)
        a.rss0 = b.rss_mib()
        result = globals()["attack_" + a.attack](b, a)
    finally:
        b.stop()
    print(json.dumps(dict({"attack": a.attack, "broker": a.broker, "settings": a.set},
                          **result)))


if __name__ == "__main__":
    main()
