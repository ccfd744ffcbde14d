#!/usr/bin/python3
"""The reference peer for interop tests: real Twisted AMP over real sockets.

    twisted_peer.py serve ENDPOINT [--cert C --key K --ca CA]
        serve the interop commands; prints "port N" when listening
    twisted_peer.py check ENDPOINT [--unix PATH] [--ca CA] [--cert C --key K] [--bus]
    twisted_peer.py provide BROKER [--policy P] [--name N] [COMMAND...]
        connect to an amp-broker, register COMMANDs (default: Sum, Delay, Fail
        and every Echo),
        serve them; prints "ready" once registered. Sum answers include
        "served_by" = N so tests can see which provider answered
    twisted_peer.py subscribe BROKER PATTERN...
        subscribe and print every event as one JSON line
        call every interop scenario against a server (C or Twisted); exits 0
        when all pass, 1 otherwise, with one line per scenario

The commands (the C peer in interop-tests/c/peer.c serves the same set):
Sum, Echo<Type> for every argument type, Fail (declared error OOPS), Die
(declared fatal error FATAL), Explode (undeclared: UNKNOWN), Delay (answers
after `ms`), Notify (no answer) and Count, ReadFd (a Descriptor: returns the
file's first bytes), StartTLS.
"""
import datetime
import decimal
import json
import os
import random
import struct
import sys

from twisted.internet import defer, reactor, ssl, task
from twisted.internet import endpoints
from twisted.internet.protocol import Factory
from twisted.protocols import amp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from amp_structured import Structured  # noqa: E402

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "spec", "vectors")


class Sum(amp.Command):
    arguments = [(b"a", amp.Integer()), (b"b", amp.Integer())]
    response = [(b"total", amp.Integer())]


class Oops(Exception):
    pass


class Fatal(Exception):
    pass


class Fail(amp.Command):
    arguments = []
    errors = {Oops: b"OOPS"}


class Die(amp.Command):
    arguments = []
    fatalErrors = {Fatal: b"FATAL"}


class Explode(amp.Command):
    arguments = []


class Delay(amp.Command):
    arguments = [(b"ms", amp.Integer()), (b"n", amp.Integer())]
    response = [(b"n", amp.Integer())]


class Notify(amp.Command):
    arguments = [(b"text", amp.Unicode())]
    requiresAnswer = False


class Count(amp.Command):
    arguments = []
    response = [(b"count", amp.Integer())]


class ReadFd(amp.Command):
    arguments = [(b"fd", amp.Descriptor())]
    response = [(b"data", amp.String())]


class Nope(amp.Command):
    arguments = []


def echo(name, arg):
    return type("Echo" + name, (amp.Command,), {
        "commandName": ("Echo" + name).encode(),
        "arguments": [(b"value", arg)],
        "response": [(b"value", arg)],
    })


AMPLIST_FIELDS = [(b"a", amp.Integer()), (b"b", amp.Unicode(optional=True))]
ECHO = {
    "Integer": echo("Integer", amp.Integer()),
    "String": echo("String", amp.String()),
    "Unicode": echo("Unicode", amp.Unicode()),
    "Float": echo("Float", amp.Float()),
    "Boolean": echo("Boolean", amp.Boolean()),
    "Decimal": echo("Decimal", amp.Decimal()),
    "DateTime": echo("DateTime", amp.DateTime()),
    "ListOfInteger": echo("ListOfInteger", amp.ListOf(amp.Integer())),
    "ListOfListOfUnicode": echo("ListOfListOfUnicode", amp.ListOf(amp.ListOf(amp.Unicode()))),
    "AmpList": echo("AmpList", amp.AmpList(AMPLIST_FIELDS)),
    "Structured": echo("Structured", Structured()),
}


class Peer(amp.AMP):
    tls_cert = None
    tls_ca = None
    notified = 0

    @Sum.responder
    def sum(self, a, b):
        return {"total": a + b}

    @Fail.responder
    def fail(self):
        raise Oops("it went wrong")

    @Die.responder
    def die(self):
        raise Fatal("bye")

    @Explode.responder
    def explode(self):
        raise RuntimeError("boom")

    @Delay.responder
    def delay(self, ms, n):
        return task.deferLater(reactor, ms / 1000.0, lambda: {"n": n})

    @Notify.responder
    def notify(self, text):
        self.notified += 1
        return {}

    @Count.responder
    def count(self):
        return {"count": self.notified}

    @ReadFd.responder
    def read_fd(self, fd):
        data = os.pread(fd, 64, 0)
        os.close(fd)
        return {"data": data}

    # responders must exist when the class is created: Twisted's locator
    # collects them then
    for _name, _cmd in ECHO.items():
        locals()["echo_" + _name] = _cmd.responder(lambda self, value: {"value": value})
    del _name, _cmd

    @amp.StartTLS.responder
    def start_tls(self):
        out = {"tls_localCertificate": self.tls_cert}
        if self.tls_ca:
            out["tls_verifyAuthorities"] = [self.tls_ca]
        return out




def load_cert(cert, key):
    with open(cert) as f1, open(key) as f2:
        return ssl.PrivateCertificate.loadPEM(f1.read() + f2.read())


def load_ca(path):
    with open(path) as f:
        return ssl.Certificate.loadPEM(f.read())


def arg(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


def serve(endpoint, argv):
    if arg(argv, "--cert"):
        Peer.tls_cert = load_cert(arg(argv, "--cert"), arg(argv, "--key"))
    if arg(argv, "--ca"):
        Peer.tls_ca = load_ca(arg(argv, "--ca"))
    ep = endpoints.serverFromString(reactor, endpoint)

    def listening(port):
        host = port.getHost()
        print("port %s" % getattr(host, "port", -1), flush=True)

    ep.listen(Factory.forProtocol(Peer)).addCallbacks(listening, lambda f: (
        print(f.getErrorMessage(), file=sys.stderr), reactor.stop()))
    reactor.run()


# ---------------------------------------------------------------- bus peers
class Register(amp.Command):
    commandName = b"amp.Register"
    arguments = [(b"command", amp.Unicode()), (b"policy", amp.Unicode(optional=True))]


class Subscribe(amp.Command):
    commandName = b"amp.Subscribe"
    arguments = [(b"pattern", amp.Unicode())]


class NamedSum(amp.Command):
    commandName = b"Sum"
    arguments = [(b"a", amp.Integer()), (b"b", amp.Integer())]
    response = [(b"total", amp.Integer()), (b"served_by", amp.Unicode())]


def provide(endpoint, argv):
    name = arg(argv, "--name") or "twisted"
    policy = arg(argv, "--policy")
    skip = {"--name", "--policy", name, policy}
    commands = [a for a in argv if a not in skip] or (
        ["Sum", "Delay", "Fail"] + ["Echo" + n for n in ECHO])

    class Provider(Peer):
        @NamedSum.responder
        def named_sum(self, a, b):
            return {"total": a + b, "served_by": name}

    @defer.inlineCallbacks
    def go():
        p = yield endpoints.connectProtocol(endpoints.clientFromString(reactor, endpoint),
                                            Provider())
        for c in commands:
            kw = {"command": c}
            if policy:
                kw["policy"] = policy
            yield p.callRemote(Register, **kw)
        print("ready", flush=True)

    reactor.callWhenRunning(lambda: go().addErrback(lambda f: (
        print(f.getErrorMessage(), file=sys.stderr), reactor.stop())))
    reactor.run()


class Listener(amp.AMP):
    def locateResponder(self, name):
        def show(box):
            print(json.dumps({k.decode(): v.decode("utf-8", "surrogateescape")
                              for k, v in sorted(box.items())}), flush=True)
            return defer.succeed(amp.AmpBox())
        return show


def subscribe(endpoint, patterns):
    @defer.inlineCallbacks
    def go():
        p = yield endpoints.connectProtocol(endpoints.clientFromString(reactor, endpoint),
                                            Listener())
        for pat in patterns:
            yield p.callRemote(Subscribe, pattern=pat)
        print("ready", flush=True)

    reactor.callWhenRunning(go)
    reactor.run()


# ---------------------------------------------------------------- check
def neutral_values():
    """Python values of every type at its edges, from the golden vectors."""
    with open(os.path.join(VECTORS, "types.json")) as f:
        T = json.load(f)["types"]

    def dec(v):
        if v["kind"] == "infinity":
            return decimal.Decimal("-Infinity" if v["negative"] else "Infinity")
        if v["kind"] in ("nan", "snan"):
            s = ("-" if v["negative"] else "") + ("NaN" if v["kind"] == "nan" else "sNaN")
            return decimal.Decimal(s + v["digits"])
        return decimal.Decimal((int(v["negative"]), tuple(int(d) for d in v["digits"]),
                                v["exponent"]))

    def dt(v):
        tz = datetime.timezone(datetime.timedelta(minutes=v["offset_minutes"]))
        return datetime.datetime(v["year"], v["month"], v["day"], v["hour"], v["minute"],
                                 v["second"], v["microsecond"], tzinfo=tz)

    def flt(v):
        return struct.unpack("!d", bytes.fromhex(v["bits"]))[0]

    conv = {"Integer": int, "String": bytes.fromhex, "Unicode": str, "Float": flt,
            "Boolean": bool, "Decimal": dec, "DateTime": dt}
    out = {}
    for name, f in conv.items():
        out[name] = [f(c["value"]) for c in T[name]["encode"]]
    out["ListOfInteger"] = [[int(x) for x in c["value"]] for c in T["ListOf"]["encode"]
                            if c["element"] == ["Integer"]]
    out["ListOfListOfUnicode"] = [[["a"], []], [], [["b", "\u20ac"]], [[""]]]
    out["AmpList"] = [[{"a": int(e["a"]), **({"b": e["b"]} if "b" in e else {})}
                       for e in c["value"]] for c in T["AmpList"]["encode"]]
    out["Structured"] = [None, True, 0, -1, 2**64 - 1, -2**63, 1.5, "", "\u20ac", b"\x00\xff",
                         [], [1, [2, [3]]], {"a": 1, "b": [True, None]}, {1: "x"}]
    return out


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("!d", a) == struct.pack("!d", b) or (a != a and b != b)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b and type(a) == type(b)


class Report:
    def __init__(self):
        self.failed = 0

    def ok(self, name, cond, detail=""):
        print("%s %s%s" % ("PASS" if cond else "FAIL", name, (": " + detail) if detail and not cond else ""),
              flush=True)
        if not cond:
            self.failed += 1


def connect(endpoint):
    return endpoints.connectProtocol(endpoints.clientFromString(reactor, endpoint), amp.AMP())


@defer.inlineCallbacks
def expect_error(proto, cmd, **kw):
    try:
        yield proto.callRemote(cmd, **kw)
    except amp.UnhandledCommand as e:
        return ("UNHANDLED", str(e))
    except amp.RemoteAmpError as e:
        return (e.errorCode.decode() if isinstance(e.errorCode, bytes) else e.errorCode,
                e.description)
    except Exception as e:  # Oops / Fatal are not declared on the client side
        return (type(e).__name__, str(e))
    return None


@defer.inlineCallbacks
def check(endpoint, argv):
    r = Report()
    p = yield connect(endpoint)
    res = yield p.callRemote(Sum, a=13, b=81)
    r.ok("Sum", res["total"] == 94, repr(res))

    values = neutral_values()
    for name, cmd in ECHO.items():
        bad = []
        for v in values[name]:
            try:
                got = (yield p.callRemote(cmd, value=v))["value"]
            except Exception as e:
                bad.append("%r -> %s" % (v, e))
                continue
            if name == "AmpList":
                got = [{k: x for k, x in d.items() if x is not None} for d in got]
            if not same(v, got):
                bad.append("%r -> %r" % (v, got))
        r.ok("Echo%s (%d values)" % (name, len(values[name])), not bad, "; ".join(bad[:3]))

    err = yield expect_error(p, Nope)
    r.ok("unknown command gives UNHANDLED", err is not None and err[0] == "UNHANDLED", repr(err))
    res = yield p.callRemote(Sum, a=1, b=2)
    r.ok("connection stays open after UNHANDLED", res["total"] == 3)

    class FailClient(amp.Command):
        commandName = b"Fail"
        arguments = []
        errors = {Oops: b"OOPS"}

    try:
        yield p.callRemote(FailClient)
        r.ok("declared error", False, "no error")
    except Oops as e:
        r.ok("declared error", str(e) == "it went wrong", str(e))
    res = yield p.callRemote(Sum, a=2, b=2)
    r.ok("connection stays open after a declared error", res["total"] == 4)

    bus = "--bus" in argv  # through a broker: no _ask means an event
    if not bus:
        for i in range(3):
            p.callRemote(Notify, text="n%d" % i)
        res = yield p.callRemote(Count)
        r.ok("calls without _ask run and get no answer", res["count"] == 3, repr(res))

    rng = random.Random(5)
    n = 200
    ds = [p.callRemote(Delay, ms=rng.randrange(0, 60), n=i) for i in range(n)]
    got = yield defer.gatherResults(ds)
    r.ok("%d pipelined calls answered out of order" % n, [g["n"] for g in got] == list(range(n)))

    if bus:  # the rest would close the provider's connection to the broker
        return r.failed

    class DieClient(amp.Command):
        commandName = b"Die"
        arguments = []
        fatalErrors = {Fatal: b"FATAL"}

    lost = defer.Deferred()
    orig = p.connectionLost

    def connection_lost(reason):
        orig(reason)
        if not lost.called:
            lost.callback(None)

    p.connectionLost = connection_lost
    try:
        yield p.callRemote(DieClient)
        r.ok("fatal error", False, "no error")
    except Fatal:
        r.ok("fatal error", True)
    timeout = reactor.callLater(5, lambda: lost.called or lost.errback(Exception("still open")))
    try:
        yield lost
        r.ok("connection closed after a fatal error", True)
    except Exception as e:
        r.ok("connection closed after a fatal error", False, str(e))
    if timeout.active():
        timeout.cancel()

    p = yield connect(endpoint)
    err = yield expect_error(p, Explode)
    r.ok("undeclared exception gives UNKNOWN", err is not None and "UNKNOWN" in err[0] + err[1]
         or (err is not None and err[0] == "UnknownRemoteError"), repr(err))

    if arg(argv, "--ca"):
        p = yield connect(endpoint)
        ca = load_ca(arg(argv, "--ca"))
        kw = {"tls_verifyAuthorities": [ca]}
        if arg(argv, "--cert"):
            kw["tls_localCertificate"] = load_cert(arg(argv, "--cert"), arg(argv, "--key"))
        first = p.callRemote(Sum, a=5, b=5)  # sent before StartTLS: plaintext
        yield p.callRemote(amp.StartTLS, **kw)
        res = yield p.callRemote(Sum, a=40, b=2)
        yield first
        tls = p.transport.getHandle().__class__.__name__
        r.ok("StartTLS then more calls", res["total"] == 42, repr(res))
        r.ok("the transport is TLS after StartTLS",
             hasattr(p.transport, "getPeerCertificate") or "TLS" in tls or "SSL" in tls)

    if arg(argv, "--unix"):
        p = yield connect("unix:path=" + arg(argv, "--unix"))
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "amp-interop-fd-%d" % os.getpid())
        with open(path, "wb") as f:
            f.write(b"descriptor payload")
        fd = os.open(path, os.O_RDONLY)
        res = yield p.callRemote(ReadFd, fd=fd)
        os.close(fd)
        os.unlink(path)
        r.ok("Descriptor passed over a UNIX socket", res["data"] == b"descriptor payload",
             repr(res))
    return r.failed


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    mode, endpoint, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == "serve":
        serve(endpoint, rest)
        return
    if mode == "provide":
        provide(endpoint, rest)
        return
    if mode == "subscribe":
        subscribe(endpoint, rest)
        return
    status = []

    def done(failed):
        status.append(failed)
        reactor.stop()

    def crashed(f):
        print("FAIL check crashed: %s" % f.getTraceback(), flush=True)
        status.append(1)
        reactor.stop()

    reactor.callWhenRunning(lambda: check(endpoint, rest).addCallbacks(done, crashed))
    reactor.callLater(120, lambda: (print("FAIL check timed out"), status.append(1),
                                    reactor.stop()))
    reactor.run()
    sys.exit(1 if status and status[0] else 0)


if __name__ == "__main__":
    main()
