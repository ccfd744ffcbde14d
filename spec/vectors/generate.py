#!/usr/bin/python3
"""Generate the golden vectors in spec/vectors/ by running Twisted itself.

Every byte string that a vector says an implementation must produce comes out
of Twisted's own code (Box.serialize, Argument.toString, a live AMP protocol
object); every "twisted" field records what Twisted's own parser did with the
bytes. Nothing here is typed by hand except the inputs.

    /usr/bin/python3 spec/vectors/generate.py            # rewrite the files
    /usr/bin/python3 spec/vectors/generate.py --check    # fail on any drift
"""
import argparse
import datetime
import decimal
import json
import os
import random
import struct
import sys

import twisted
from twisted.internet.testing import StringTransport
from twisted.protocols import amp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "interop-tests", "python"))
from amp_structured import Structured  # noqa: E402

import msgpack  # noqa: E402

HEADER = {
    "generator": "spec/vectors/generate.py",
    "twisted": twisted.__version__,
    "encoding": "every byte string is lowercase hex",
}


def hx(b):
    return bytes(b).hex()


def pair_bytes(k, v):
    return struct.pack("!H", len(k)) + k + struct.pack("!H", len(v)) + v


def raw_box(pairs):
    """Wire bytes of pairs in the given order (for orders Twisted never sends)."""
    return b"".join(pair_bytes(k, v) for k, v in pairs) + b"\x00\x00"


# ---------------------------------------------------------------- live Twisted
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
    fatalErrors = {Fatal: b"FATAL"}


class Explode(amp.Command):
    arguments = []


class Nope(amp.Command):
    """Served by nobody."""

    arguments = []


class Notify(amp.Command):
    arguments = [(b"text", amp.Unicode())]
    requiresAnswer = False


class Server(amp.AMP):
    @Sum.responder
    def sum(self, a, b):
        return {"total": a + b}

    @Fail.responder
    def fail(self):
        raise Oops("it went wrong")

    @Explode.responder
    def explode(self):
        raise RuntimeError("boom")

    @Notify.responder
    def notify(self, text):
        return {}


def exchange(make_calls):
    client = amp.AMP()
    ctr = StringTransport()
    client.makeConnection(ctr)
    make_calls(client)
    calls = ctr.value()
    server = Server()
    st = StringTransport()
    server.makeConnection(st)
    server.dataReceived(calls)
    return calls, st.value(), bool(st.disconnecting)


def sum_exchange():
    return exchange(lambda c: c.callRemote(Sum, a=13, b=81).addErrback(lambda f: None))


# ---------------------------------------------------------------- framing
class Collector:
    """A box receiver for Twisted's BinaryBoxProtocol: framing only."""

    def __init__(self):
        self.boxes = []

    def startReceivingBoxes(self, sender):
        pass

    def ampBoxReceived(self, box):
        self.boxes.append(box)

    def stopReceivingBoxes(self, reason):
        pass


def twisted_framing(data, chunk=None):
    """Feed data to Twisted's framing layer; report boxes and disconnection."""
    rec = Collector()
    proto = amp.BinaryBoxProtocol(rec)
    tr = StringTransport()
    proto.makeConnection(tr)
    if chunk:
        for i in range(0, len(data), chunk):
            proto.dataReceived(data[i : i + chunk])
    else:
        proto.dataReceived(data)
    return rec.boxes, tr.disconnecting


def twisted_amp(data):
    """Feed data to a full Twisted AMP protocol with no responders."""
    proto = amp.AMP()
    tr = StringTransport()
    proto.makeConnection(tr)
    try:
        proto.dataReceived(data)
    except Exception as e:
        # raised out of dataReceived: a real transport closes the connection
        return {"raised": type(e).__name__}
    return {"disconnects": bool(tr.disconnecting), "wrote": hx(tr.value())}


def box_record(pairs_in_order):
    return [[hx(k), hx(v)] for k, v in pairs_in_order]


def framing_vectors(rng):
    boxes = []

    def serialized(name, d, note=None):
        box = amp.Box(d)
        data = box.serialize()
        parsed, dropped = twisted_framing(data)
        assert not dropped and len(parsed) == 1 and dict(parsed[0]) == d, name
        # Twisted serializes keys sorted bytewise; record that order
        assert data == raw_box(sorted(d.items())), name
        rec = {"name": name, "pairs": box_record(sorted(d.items())), "hex": hx(data)}
        if note:
            rec["note"] = note
        boxes.append(rec)

    # The reference examples, through Twisted's real Command machinery.
    calls, answers, _ = sum_exchange()
    for name, data in (("Sum a=13 b=81 call, tag 1", calls), ("Sum answer", answers)):
        parsed, _ = twisted_framing(data)
        boxes.append({"name": name, "pairs": box_record(sorted(parsed[0].items())),
                      "hex": hx(data)})

    serialized("one pair", {b"k": b"v"})
    serialized("empty value", {b"k": b""})
    serialized("1-byte key", {b"x": b"1"})
    serialized("255-byte key", {b"K" * 255: b"v"})
    serialized("65535-byte value", {b"v": bytes(rng.randrange(256) for _ in range(65535))})
    serialized("binary key and value", {bytes(range(1, 256)): bytes(range(256))})
    serialized("many keys", {("k%03d" % i).encode(): str(i).encode() for i in range(100)})
    serialized("keys sorted bytewise", {b"_ask": b"1", b"_command": b"X", b"Z": b"", b"a": b"1"},
               note="Twisted emits keys sorted bytewise: _ask precedes _command")

    # Orders and duplicates Twisted never sends but must accept.
    decode_only = []
    for name, pairs in (
        ("unsorted keys", [(b"b", b"2"), (b"a", b"1"), (b"_command", b"X"), (b"_ask", b"9")]),
        ("duplicate keys: last one wins", [(b"a", b"1"), (b"b", b"x"), (b"a", b"2")]),
    ):
        data = raw_box(pairs)
        parsed, dropped = twisted_framing(data)
        decode_only.append({
            "name": name, "pairs": box_record(pairs), "hex": hx(data),
            "twisted_parse": {hx(k): hx(v) for k, v in sorted(parsed[0].items())},
        })

    # A stream of random boxes for whole / byte-at-a-time / random-split feeds.
    stream_boxes = []
    for i in range(40):
        d = {}
        for _ in range(rng.randrange(1, 8)):
            klen = rng.choice([1, 2, 5, 17, 255])
            vlen = rng.choice([0, 0, 1, 3, 100, 1000, 4096])
            d[bytes(rng.randrange(256) for _ in range(klen))] = bytes(
                rng.randrange(256) for _ in range(vlen))
        stream_boxes.append(d)
    stream = b"".join(amp.Box(d).serialize() for d in stream_boxes)
    for chunk in (None, 1, 7):
        parsed, dropped = twisted_framing(stream, chunk)
        assert not dropped and [dict(b) for b in parsed] == stream_boxes
    streams = [{
        "name": "40 random boxes",
        "hex": hx(stream),
        "boxes": [box_record(sorted(d.items())) for d in stream_boxes],
    }]

    # Must-reject byte strings, with what Twisted itself does with them.
    reject = []

    def rej(name, data, error, offset, limits=None, note=None):
        parsed, dropped = twisted_framing(data)
        rec = {"name": name, "hex": hx(data), "error": error, "offset": offset,
               "boxes_before": 0,
               "twisted": {"boxes": len(parsed), "disconnects": bool(dropped)}}
        if limits:
            rec["limits"] = limits
        if note:
            rec["note"] = note
        reject.append(rec)
        return rec

    ok = amp.Box({b"k": b"v"}).serialize()
    rej("empty box", b"\x00\x00", "empty-box", 0,
        note="Twisted's framing passes an empty box up; its AMP layer then drops the "
             "connection (NoEmptyBoxes)")
    r = rej("empty box after a good box", ok + b"\x00\x00", "empty-box", len(ok))
    r["boxes_before"] = 1
    rej("key length 256 on the first key", b"\x01\x00" + b"K" * 256 + b"\x00\x01v\x00\x00",
        "key-too-long", 0)
    rej("key length 0xffff", b"\xff\xff", "key-too-long", 0)
    d = pair_bytes(b"a", b"1") + b"\x01\x00" + b"K" * 256 + b"\x00\x00"
    rej("key length 256 on a later key", d, "key-too-long", 6)
    r = rej("key length 256 in a later box", ok + b"\x01\x00" + b"K" * 256, "key-too-long",
            len(ok))
    r["boxes_before"] = 1
    four = raw_box([(b"a", b""), (b"b", b""), (b"c", b""), (b"d", b"")])
    five = raw_box([(b"a", b""), (b"b", b""), (b"c", b""), (b"d", b""), (b"e", b"")])
    boxes_at_limit = {"name": "4 keys with max_keys 4", "hex": hx(four),
                      "pairs": box_record([(b"a", b""), (b"b", b""), (b"c", b""), (b"d", b"")]),
                      "limits": {"max_keys": 4}}
    rej("5 keys with max_keys 4", five, "too-many-keys", 20, limits={"max_keys": 4},
        note="Twisted has no cap on keys per box")
    big = raw_box([(b"k", b"x" * 100)])  # 2+1+2+100+2 = 107 bytes
    boxes_at_size = {"name": "107-byte box with max_box_bytes 107", "hex": hx(big),
                     "pairs": box_record([(b"k", b"x" * 100)]),
                     "limits": {"max_box_bytes": 107}}
    rej("107-byte box with max_box_bytes 106", big, "box-too-large", 3,
        limits={"max_box_bytes": 106},
        note="refused when the value length is read, before the value arrives")

    truncated = []
    sample = amp.Box({b"_ask": b"1", b"_command": b"Sum", b"a": b"13"}).serialize()
    for cut in range(1, len(sample)):
        parsed, dropped = twisted_framing(sample[:cut])
        assert parsed == [] and not dropped
    truncated.append({
        "name": "every proper prefix of a box is truncated",
        "hex": hx(sample), "error": "truncated", "offset": 0,
        "twisted": "waits for more bytes (no box, no disconnect) at every cut",
    })

    empty_ok = {
        "name": "empty boxes inside an AmpList value",
        "hex": hx(b"\x00\x00" + ok + b"\x00\x00"),
        "limits": {"allow_empty_box": True},
        "boxes": [[], box_record([(b"k", b"v")]), []],
        "twisted_parse": [
            {hx(k): hx(v) for k, v in b.items()}
            for b in amp._ParserHelper.parseString(b"\x00\x00" + ok + b"\x00\x00")
        ],
    }

    return {
        **HEADER,
        "description": "Box framing. 'boxes' decode to 'pairs' (wire order) and 'pairs' "
                       "encode to 'hex'. 'decode_only' must decode (duplicates kept in wire "
                       "order; lookups take the last). 'streams' must decode identically "
                       "however they are split. 'reject' must fail with 'error' at stream "
                       "byte 'offset' after 'boxes_before' good boxes. 'limits' gives "
                       "non-default decoder caps for one vector.",
        "boxes": boxes + [boxes_at_limit, boxes_at_size],
        "decode_only": decode_only + [empty_ok],
        "streams": streams,
        "reject": reject,
        "truncated": truncated,
    }


# ---------------------------------------------------------------- types
def stable_repr(v):
    if isinstance(v, datetime.datetime):
        # the offset's own name: Twisted builds offsets it cannot later use
        return "datetime %s %s" % (v.replace(tzinfo=None).isoformat(), v.tzinfo.name)
    return repr(v)


def twisted_from(arg, data):
    try:
        v = arg.fromString(data)
    except Exception as e:
        return {"accepts": False, "raises": type(e).__name__}
    return {"accepts": True, "value": stable_repr(v)}


def float_bits(f):
    return "%016x" % struct.unpack("!Q", struct.pack("!d", f))[0]


def dec_value(d):
    t = d.as_tuple()
    kind = {"F": "infinity", "n": "nan", "N": "snan"}.get(t.exponent, "finite")
    out = {"negative": bool(t.sign), "kind": kind,
           "digits": "".join(map(str, t.digits)) if kind != "infinity" else ""}
    if kind == "finite":
        out["exponent"] = t.exponent
    elif kind in ("nan", "snan") and out["digits"] == "0":
        out["digits"] = ""
    return out


def dt_value(d):
    off = d.utcoffset()
    return {"year": d.year, "month": d.month, "day": d.day, "hour": d.hour,
            "minute": d.minute, "second": d.second, "microsecond": d.microsecond,
            "offset_minutes": (off.days * 86400 + off.seconds) // 60}


def neutral(tname, v):
    """Language-neutral JSON form of a Python value of an AMP type."""
    if tname in ("Integer", "Descriptor"):
        return str(v)
    if tname == "String":
        return hx(v)
    if tname == "Unicode":
        return v
    if tname == "Float":
        return {"bits": float_bits(v), "repr": repr(v)}
    if tname == "Boolean":
        return v
    if tname == "Decimal":
        return dec_value(v)
    if tname == "DateTime":
        return dt_value(v)
    raise KeyError(tname)


ARGS = {
    "Integer": amp.Integer(), "String": amp.String(), "Unicode": amp.Unicode(),
    "Float": amp.Float(), "Boolean": amp.Boolean(), "Decimal": amp.Decimal(),
    "DateTime": amp.DateTime(),
}


def type_vectors(rng):
    out = {**HEADER,
           "description": "Argument types. 'encode': 'value' (language-neutral form) must "
                          "encode to 'hex' and 'hex' must decode to 'value'. 'reject': "
                          "'hex' must fail to decode with 'error'; 'twisted' records what "
                          "Twisted's fromString does with the same bytes.",
           "types": {}}
    T = out["types"]

    def enc(tname, values, arg=None):
        arg = arg or ARGS[tname]
        cases = []
        for v in values:
            data = arg.toString(v)
            back = arg.fromString(data)
            cases.append({"value": neutral(tname, v), "hex": hx(data)})
            if tname == "Float" and v != v:
                assert back != back
            else:
                assert (str(back) == str(v)) if tname == "Decimal" else back == v, (tname, v)
        return cases

    def rejects(tname, items, arg=None):
        arg = arg or ARGS[tname]
        return [{"hex": hx(b), "error": err, "twisted": twisted_from(arg, b)}
                for b, err in items]

    ints = [0, 1, -1, 7, 10, 13, 81, 94, 2**31 - 1, -2**31, 2**53, 2**63 - 1, -2**63]
    big = [2**63, -2**63 - 1, 2**64, 10**40, -(10**40), 3**200]
    T["Integer"] = {
        "encode": enc("Integer", ints) + [
            dict(c, int64=False) for c in enc("Integer", big)],
        "note": "cases marked int64:false are valid but outside int64 (AMP_E_RANGE in the "
                "fast path, accepted as arbitrary precision)",
        "reject": rejects("Integer", [
            (b"", "bad-value"), (b" 7 ", "bad-value"), (b"+5", "bad-value"),
            (b"007", "bad-value"), (b"-0", "bad-value"), (b"1_000", "bad-value"),
            (b"0x10", "bad-value"), (b"1.0", "bad-value"), (b"-", "bad-value"),
            (b"1e3", "bad-value"), (b"\xd9\xa3", "bad-value"),
        ]),
    }
    T["String"] = {"encode": enc("String", [b"", b"a", bytes(range(256)), b"\x00" * 10,
                                            b"x" * 65535])}
    T["Unicode"] = {
        "encode": enc("Unicode", ["", "hello", "h\u00e9llo", "\u20ac", "\U0001f600",
                                  "\u0000", "\uffff", "\U0010ffff", "\u00e9" * 32767]),
        "reject": rejects("Unicode", [
            (b"\xff", "utf8"), (b"\xc0\x80", "utf8"), (b"\xed\xa0\x80", "utf8"),
            (b"\xe2\x82", "utf8"), (b"\xf4\x90\x80\x80", "utf8"), (b"a\x80", "utf8"),
            (b"\xf8\x88\x80\x80\x80", "utf8"), (b"\xe0\x80\xaf", "utf8"),
        ]),
    }
    floats = [0.0, -0.0, 1.0, -1.0, 1.5, 0.1, 0.2, 0.1 + 0.2, 1 / 3, 1.234, 100.0,
              1e15, 1e16, 123456789012345678.0, 1e-4, 1e-5, 0.0001234, 1e22, 1e23,
              5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 2.0**-1022 * 3,
              float("inf"), float("-inf"), float("nan"), 2.0**63, 9007199254740993.0,
              7.120236347223045e-307, 3.14159, -2.5e-300]
    floats += [struct.unpack("!d", struct.pack("!Q", rng.getrandbits(64)))[0]
               for _ in range(40)]
    T["Float"] = {
        "encode": enc("Float", floats),
        "note": "value.bits is the IEEE 754 binary64 bit pattern; repr is Python's",
        "reject": rejects("Float", [
            (b"", "bad-value"), (b" 1.0", "bad-value"), (b"1.0 ", "bad-value"),
            (b"+1.0", "bad-value"), (b"1.", "bad-value"), (b".5", "bad-value"),
            (b"NaN", "bad-value"), (b"-nan", "bad-value"), (b"Infinity", "bad-value"),
            (b"1_0.0", "bad-value"), (b"0x1p3", "bad-value"), (b"1e", "bad-value"),
            (b"infinity", "bad-value"),
        ]),
        "decode_only": [
            {"hex": hx(b), "value": {"bits": float_bits(float(b)), "repr": repr(float(b))}}
            for b in (b"1e5", b"1E5", b"1.50", b"0.000001", b"2e-7", b"1e400", b"-1e400",
                      b"00.5", b"1e+016")
        ],
        "decode_only_note": "not what Python's repr prints, but plain decimal forms that "
                            "other languages print; accepted",
    }
    T["Boolean"] = {
        "encode": enc("Boolean", [True, False]),
        "reject": rejects("Boolean", [(b"true", "bad-value"), (b"1", "bad-value"),
                                      (b"", "bad-value"), (b"TRUE", "bad-value"),
                                      (b"True ", "bad-value")]),
    }
    D = decimal.Decimal
    decs = ["0", "-0", "1", "-1", "1.1", "1.0", "10", "1E+2", "1.5E-9", "0E+6", "0E-7",
            "0.00", "-0E+2", "123.456", "0.000001", "1E-7", "1.23E+7", "Infinity",
            "-Infinity", "NaN", "-NaN", "sNaN", "-sNaN", "NaN123", "-sNaN7",
            "12345678901234567890123456789012345678901234567890", "1E+999999",
            "-1.000000000000000000001E-999999", "100", "1.00E+5"]
    T["Decimal"] = {
        "encode": enc("Decimal", [D(s) for s in decs]),
        "decode_only": [
            {"hex": hx(b), "value": dec_value(D(b.decode())), "canonical": hx(str(D(b.decode())).encode())}
            for b in (b"+1", b"1.", b".5", b"1e5", b"inf", b"-INF", b"infinity", b"nan",
                      b"SNAN", b"NaN0", b"NaN00123", b"0001.10", b"1E+0000005", b"-.0e-3")
        ],
        "decode_only_note": "other spellings of the General Decimal Arithmetic syntax: "
                            "accepted; 'canonical' is what Twisted re-encodes them to",
        "reject": rejects("Decimal", [
            (b"", "bad-value"), (b" 1", "bad-value"), (b"1 ", "bad-value"),
            (b"1_000", "bad-value"), (b".", "bad-value"), (b"e5", "bad-value"),
            (b"1e", "bad-value"), (b"NaNx", "bad-value"), (b"Infinit", "bad-value"),
            (b"1.2.3", "bad-value"), (b"--1", "bad-value"), (b"0x10", "bad-value"),
            (b"1e9999999999999999999", "range"), (b"19e999999999999999999", "range"),
        ]),
    }
    utc = amp.utc
    tz = amp._FixedOffsetTZInfo.fromSignHoursMinutes
    dts = [
        datetime.datetime(2012, 1, 23, 12, 34, 56, 54321, tzinfo=utc),
        datetime.datetime(1, 1, 1, 0, 0, 0, 0, tzinfo=utc),
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=utc),
        datetime.datetime(2000, 2, 29, 1, 2, 3, 4, tzinfo=tz("+", 5, 30)),
        datetime.datetime(2024, 6, 1, 12, 0, 0, 0, tzinfo=tz("-", 8, 0)),
        datetime.datetime(2024, 6, 1, 12, 0, 0, 0, tzinfo=tz("+", 23, 59)),
        datetime.datetime(2024, 6, 1, 12, 0, 0, 0, tzinfo=tz("-", 23, 59)),
        datetime.datetime(2024, 6, 1, 12, 0, 0, 0, tzinfo=tz("-", 0, 30)),
    ]
    T["DateTime"] = {
        "encode": enc("DateTime", dts),
        "note": "UTC is written -00:00: Twisted writes '+' only for offsets > 0",
        "decode_only": [{
            "hex": hx(b"2012-01-23T12:34:56.054321+00:00"),
            "value": dt_value(ARGS["DateTime"].fromString(b"2012-01-23T12:34:56.054321+00:00")),
            "canonical": hx(b"2012-01-23T12:34:56.054321-00:00"),
        }],
        "reject": rejects("DateTime", [
            (b"2012-01-23T12:34:56.054321Z", "bad-value"),
            (b"2012-01-23T12:34:56.054321", "bad-value"),
            (b"2012-01-23T12:34:56+00:00", "bad-value"),
            (b"2012-01-23 12:34:56.054321+00:00", "bad-value"),
            (b"2012/01/23T12:34:56.054321+00:00", "bad-value"),
            (b"2012-01-23T12:34:56.054321*00:00", "bad-value"),
            (b" 012-01-23T12:34:56.054321+00:00", "bad-value"),
            (b"+012-01-23T12:34:56.054321+00:00", "bad-value"),
            (b"2012-13-23T12:34:56.054321+00:00", "range"),
            (b"2012-02-30T12:34:56.054321+00:00", "range"),
            (b"2011-02-29T12:34:56.054321+00:00", "range"),
            (b"0000-01-01T00:00:00.000000+00:00", "range"),
            (b"2012-01-23T24:00:00.000000+00:00", "range"),
            (b"2012-01-23T12:60:00.000000+00:00", "range"),
            (b"2012-01-23T12:34:60.000000+00:00", "range"),
            (b"2012-01-23T12:34:56.054321+24:00", "range"),
            (b"2012-01-23T12:34:56.054321+00:60", "range"),
        ]),
    }

    # ListOf, nested, through Twisted's ListOf.
    lists = []
    for spec, value in (
        (["Integer"], [1, 20, 500]),
        (["Integer"], []),
        (["Integer"], [0, -1, 2**70]),
        (["Unicode"], ["a", "", "\u20ac"]),
        (["String"], [b"", b"\x00\xff", b"x" * 300]),
        (["Boolean"], [True, False, True]),
        (["Float"], [1.5, float("inf"), -0.0]),
        (["Decimal"], [D("1.1"), D("-Infinity"), D("NaN")]),
        (["DateTime"], [dts[0], dts[3]]),
        (["ListOf", "Integer"], [[1, 2], []]),
        (["ListOf", "ListOf", "Unicode"], [[["a"], []], [], [["b", "c"]]]),
    ):
        arg = ARGS[spec[-1]]
        for _ in spec[:-1]:
            arg = amp.ListOf(arg)
        arg = amp.ListOf(arg)
        data = arg.toString(value)

        def neu(depth, v):
            if depth == len(spec) - 1:
                return neutral(spec[-1], v)
            return [neu(depth + 1, x) for x in v]

        assert (arg.fromString(data) == value) or spec[-1] in ("Float", "Decimal")
        lists.append({"element": spec, "value": [neu(0, x) for x in value], "hex": hx(data)})
    list_arg = amp.ListOf(amp.Integer())
    T["ListOf"] = {
        "encode": lists,
        "note": "'element' is the element type, outermost first: [\"ListOf\", \"Integer\"] "
                "is ListOf(ListOf(Integer)) as a whole",
        "reject": [
            {"element": ["Integer"], "hex": hx(b), "error": "truncated",
             "twisted": twisted_from(list_arg, b)}
            for b in (b"\x00", b"\x00\x01", b"\x00\x011\x00", b"\x00\x02" + b"1",
                      b"\x00\x0131\x00\x05" + b"12")
        ] + [
            {"element": ["Integer"], "hex": hx(b"\x00\x01x"), "error": "bad-value",
             "twisted": twisted_from(list_arg, b"\x00\x01x")},
        ],
    }

    # AmpList through Twisted's AmpList.
    fields = [(b"a", amp.Integer()), (b"b", amp.Unicode(optional=True))]
    al = amp.AmpList(fields)
    ampl = []
    for value in ([{"a": 7, "b": "hello"}, {"a": 9, "b": "goodbye"}], [], [{"a": 1}],
                  [{"a": 1, "b": ""}] * 3):
        data = al.toStringProto(value, None)
        back = al.fromStringProto(data, None)
        assert [{k: v for k, v in d.items() if v is not None} for d in back] == value
        ampl.append({"fields": [["a", "Integer"], ["b", "Unicode", "optional"]],
                     "value": [{k: neutral("Integer" if k == "a" else "Unicode", v)
                                for k, v in d.items()} for d in value],
                     "hex": hx(data)})
    T["AmpList"] = {
        "encode": ampl,
        "reject": [
            {"hex": hx(b), "error": err,
             "twisted": twisted_from_proto(al, b)}
            for b, err in ((b"\x00\x01a\x00\x017\x00", "truncated"),
                           (b"\x00\x01a\x00\x017", "truncated"),
                           (b"\x01\x00", "key-too-long"))
        ],
    }

    # Descriptor: an ordinal, unique per connection, from Twisted's own code.
    class FakeProto:
        def __init__(self):
            self.n = 0

        def _sendFileDescriptor(self, fd):
            self.n += 1
            return self.n - 1

    dp = FakeProto()
    desc = amp.Descriptor()
    T["Descriptor"] = {
        "encode": [{"value": str(o), "hex": hx(desc.toStringProto(fd, dp))}
                   for o, fd in enumerate((5, 9, 5))],
        "note": "the fd travels by SCM_RIGHTS; the value is the ordinal of the descriptor "
                "on the connection, counting from 0",
        "reject": [{"hex": hx(b"-1"), "error": "range"}, {"hex": hx(b"x"), "error": "bad-value"}],
    }

    # Structured (project extension) through the reference Twisted argument.
    st = Structured()
    svals = [None, True, False, 0, 1, -1, 127, 128, -32, -33, 255, 65536, 2**32, 2**64 - 1,
             -2**63, 1.5, -0.0, "", "hi", "\u20ac", b"", b"\x00\xff", [], [1, [2, [3]]], {},
             {"a": 1, "b": [True, None]}, {"k": {"n": b"raw"}}, {1: "int key"},
             "x" * 40, list(range(20)), {str(i): i for i in range(20)}]
    deep = []
    cur = deep
    for _ in range(31):
        nxt = []
        cur.append(nxt)
        cur = nxt
    svals.append(deep)
    senc = []
    for v in svals:
        data = st.toString(v)
        senc.append({"hex": hx(data), "json": to_json_neutral(v)})
    too_deep = [[]]
    cur = too_deep[0]
    for _ in range(31):
        nxt = []
        cur.append(nxt)
        cur = nxt
    T["Structured"] = {
        "encode": senc,
        "note": "project extension; 'json' is the value with bytes as {\"bin\": hex} and "
                "map keys that are not strings as [key, value] pairs under {\"map\": ...}; "
                "the deepest case nests 32 containers, the limit",
        "reject": [
            {"hex": hx(b), "error": err, "twisted": twisted_from(st, b)}
            for b, err in (
                (b"", "bad-value"), (b"\xc1", "bad-value"), (b"\xd4\x01\x00", "bad-value"),
                (b"\xc7\x01\x05x", "bad-value"), (b"\x91", "truncated"),
                (b"\xdd\xff\xff\xff\xff", "truncated"), (b"\xdf\xff\xff\xff\xff", "truncated"),
                (b"\xdb\xff\xff\xff\xff", "truncated"), (b"\xa2\xff\xfe", "utf8"),
                (b"\x01\x02", "bad-value"), (b"\xcb\x00", "truncated"),
                (msgpack.packb(too_deep), "too-deep"),
            )
        ],
    }
    return out


def twisted_from_proto(arg, data):
    try:
        v = arg.fromStringProto(data, None)
    except Exception as e:
        return {"accepts": False, "raises": type(e).__name__}
    return {"accepts": True, "value": repr(v)}


def to_json_neutral(v):
    if isinstance(v, bytes):
        return {"bin": hx(v)}
    if isinstance(v, float):
        return {"float": float_bits(v)}
    if isinstance(v, list):
        return [to_json_neutral(x) for x in v]
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {k: to_json_neutral(x) for k, x in v.items()}
        return {"map": [[to_json_neutral(k), to_json_neutral(x)] for k, x in v.items()]}
    if isinstance(v, int) and not isinstance(v, bool):
        return {"int": str(v)}
    return v


# ---------------------------------------------------------------- conversation
def conversation_vectors():
    cases = []

    def classify(name, data):
        boxes, _ = twisted_framing(data)
        for b in boxes:
            if b"_answer" in b:
                kind, tag = "answer", b[b"_answer"]
            elif b"_error" in b:
                kind, tag = "error", b[b"_error"]
            elif b"_command" in b:
                kind, tag = "call", b.get(b"_ask")
            rec = {"name": name, "hex": hx(amp.Box(b).serialize()), "kind": kind,
                   "tag": hx(tag) if tag is not None else None}
            if kind == "call":
                rec["command"] = hx(b[b"_command"])
            if kind == "error":
                rec["error_code"] = hx(b[b"_error_code"])
                rec["error_description"] = hx(b[b"_error_description"])
            cases.append(rec)

    calls, answers, dropped = sum_exchange()
    classify("Sum call", calls)
    classify("Sum answer", answers)
    calls, answers, dropped = exchange(lambda c: c.callRemote(Fail).addErrback(lambda f: None))
    classify("call of a command raising a declared error", calls)
    classify("declared error", answers)
    calls, answers, dropped = exchange(lambda c: c.callRemote(Nope).addErrback(lambda f: None))
    classify("UNHANDLED error for an unknown command", answers)
    assert not dropped
    calls, answers, dropped = exchange(lambda c: c.callRemote(Explode).addErrback(lambda f: None))
    classify("UNKNOWN error for an undeclared exception", answers)
    assert dropped
    calls, answers, dropped = exchange(lambda c: c.callRemote(Notify, text="hi"))
    classify("call without _ask (requiresAnswer=False)", calls)
    assert answers == b""
    # Twisted's precedence: _answer, then _error, then _command.
    for name, pairs in (
        ("_answer wins over _error and _command",
         {b"_answer": b"1", b"_error": b"2", b"_command": b"X", b"_error_code": b"C",
          b"_error_description": b"d"}),
        ("_error wins over _command",
         {b"_error": b"2", b"_command": b"X", b"_ask": b"3", b"_error_code": b"C",
          b"_error_description": b"d"}),
    ):
        classify(name, amp.Box(pairs).serialize())

    reject = []
    for name, d, err in (
        ("a box with only _ask", {b"_ask": b"1"}, "no-role"),
        ("a box with no reserved key", {b"a": b"1"}, "no-role"),
        ("_error without _error_code", {b"_error": b"1", b"_error_description": b"x"},
         "bad-error-box"),
        ("_error without _error_description", {b"_error": b"1", b"_error_code": b"X"},
         "bad-error-box"),
    ):
        data = amp.Box(d).serialize()
        reject.append({"name": name, "hex": hx(data), "error": err, "twisted": twisted_amp(data)})
    # An answer whose tag was never issued: Twisted drops the connection.
    data = amp.Box({b"_answer": b"99", b"total": b"1"}).serialize()
    unknown_tag = {"name": "an answer with a tag never issued", "hex": hx(data),
                   "twisted": twisted_amp(data),
                   "rule": "a protocol error for the conversation layer: the connection "
                           "is closed"}
    # UNHANDLED descriptions for awkward command names, from a live Twisted AMP.
    # Twisted raises (and so drops the connection) for non-ASCII names; this
    # project answers them with UNHANDLED too, written the same way.
    unhandled = []
    for name in (b"Nope", b"it's", b"say \"hi\"", b"both ' and \"", b"back\\slash",
                 b"tab\tnl\ncr\r\x01\x7e\x7f", b"\x80\xff", "caf\u00e9".encode()):
        proto = amp.AMP()
        tr = StringTransport()
        proto.makeConnection(tr)
        rec = {"command": hx(name), "error_description": hx(b"Unhandled Command: " + repr(name).encode())}
        try:
            proto.dataReceived(amp.Box({b"_ask": b"1", b"_command": name}).serialize())
        except UnicodeDecodeError as e:
            rec["twisted"] = "raises %s: the connection is dropped" % type(e).__name__
        else:
            box = twisted_framing(tr.value())[0][0]
            assert box[b"_error_code"] == b"UNHANDLED" and not tr.disconnecting
            assert box[b"_error_description"] == bytes.fromhex(rec["error_description"])
            rec["twisted"] = "sends this description"
        unhandled.append(rec)

    return {
        **HEADER,
        "unhandled": unhandled,
        "description": "Conversation classification with Twisted's precedence. 'cases' were "
                       "produced by live Twisted AMP protocol objects talking to each other.",
        "cases": cases,
        "reject": reject,
        "unknown_tag": unknown_tag,
    }


# ---------------------------------------------------------------- main
def build():
    rng = random.Random(20261122)
    return {
        "framing.json": framing_vectors(rng),
        "types.json": type_vectors(rng),
        "conversation.json": conversation_vectors(),
    }


def dump(obj):
    return json.dumps(obj, indent=1, sort_keys=False, ensure_ascii=True) + "\n"


def quiet_twisted_logs():
    """Responders that raise on purpose make Twisted log the error; the
    outcome is recorded in the vectors, so the log is noise here."""
    from twisted.logger import globalLogBeginner

    globalLogBeginner.beginLoggingTo([lambda event: None], discardBuffer=True,
                                     redirectStandardIO=False)


def main():
    quiet_twisted_logs()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="regenerate in memory and fail if any file differs")
    ap.add_argument("--out", default=HERE, help="directory to write (default: here)")
    args = ap.parse_args()
    files = build()
    drift = []
    for name, obj in files.items():
        path = os.path.join(args.out, name)
        text = dump(obj)
        if args.check:
            try:
                with open(path) as f:
                    old = f.read()
            except FileNotFoundError:
                old = None
            if old != text:
                drift.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
    if drift:
        print("vectors drifted from what Twisted produces: " + ", ".join(drift), file=sys.stderr)
        print("regenerate with: /usr/bin/python3 spec/vectors/generate.py", file=sys.stderr)
        return 1
    if args.check:
        print("vectors match Twisted %s (%d files)" % (twisted.__version__, len(files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
