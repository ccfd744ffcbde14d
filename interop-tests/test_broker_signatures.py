"""Command signatures in amp-broker (spec/amp.md 6b.7): amp.Register's
optional `arguments`, `response` and `errors`, checked, stored in canonical
form and listed by amp.Commands. Real broker, real sockets; the peers are
Twisted's codec (amp_signature.BoxClient) and a Twisted provider under the
reactor."""
import os
import struct
import sys
import time

import pytest
from twisted.protocols import amp

from conftest import Proc
from test_broker import broker
from test_twisted_interop import TWISTED_PEER  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))
from amp_signature import (BoxClient, Commands, OldCommands, Register,  # noqa: E402
                           RemoteError, Sum, signature_of, type_string)

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python", "amp_signature.py")

SUM_ARGUMENTS = [
    {"name": b"a", "type": "Integer"},
    {"name": b"b", "type": "Integer", "optional": True},
    {"name": b"tags", "type": "ListOf(Unicode)", "optional": True},
]
SUM_RESPONSE = [{"name": b"total", "type": "Integer"},
                {"name": b"parts", "type": "AmpList(name: String, value: Float)"}]


@pytest.fixture
def bus():
    b = broker()
    clients = []

    def client():
        c = BoxClient(b.port)
        clients.append(c)
        return c
    b.client = client
    yield b
    for c in clients:
        c.close()
    b.stop()


def listing(c, command=None, cls=Commands):
    kw = {} if command is None else {"command": command}
    return c.call(cls, **kw)["commands"]


def wait_for(condition, timeout=20):
    """Another connection's close reaches the broker in its own time."""
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "condition not met in %ss" % timeout
        time.sleep(0.02)


def refused(c, code, **kw):
    with pytest.raises(RemoteError) as e:
        c.call(Register, **kw)
    assert e.value.code == code, e.value
    return e.value.description


def as_listed(item):
    """A listed item's signature, optionals as Twisted parses them."""
    args = [{k: v for k, v in a.items() if v is not None} for a in item["arguments"]]
    return args, item["response"], item["errors"]


def test_signature_derived_from_a_twisted_command_class():
    sig = signature_of(Sum)
    assert sig["arguments"] == SUM_ARGUMENTS
    assert sig["response"] == SUM_RESPONSE
    assert sig["errors"] == ["ZERO_DIVISION", "OVERFLOW"]
    assert type_string(amp.ListOf(amp.AmpList([(b"x", amp.Path())]))) == \
        "ListOf(AmpList(x: Path))"


def test_twisted_provider_registers_its_signature_and_callers_read_it(bus):
    p = Proc(["/usr/bin/python3", HELPER, "provide", bus.endpoint],
             r"^ready")
    try:
        c = bus.client()
        for items in (listing(c), listing(c, "Sum")):
            assert len(items) == 1
            item = items[0]
            assert (item["command"], item["policy"], item["providers"]) == \
                ("Sum", "roundrobin", 1)
            assert as_listed(item) == (SUM_ARGUMENTS, SUM_RESPONSE,
                                       ["ZERO_DIVISION", "OVERFLOW"])
        # the provider serves what it declared, through the broker
        assert c.call(Sum, a=2, b=3)["total"] == 5
        # a caller that declares only the three old fields still parses the list
        assert listing(c, cls=OldCommands) == [
            {"command": "Sum", "policy": "roundrobin", "providers": 1}]
        # the filter: a command nobody serves is an empty list
        assert listing(c, "Nope") == []
    finally:
        p.stop()


def test_registration_without_signature_unchanged(bus):
    c = bus.client()
    assert c.call(Register, command="Plain") == {}
    item, = listing(c)
    assert item == {"command": "Plain", "policy": "roundrobin", "providers": 1,
                    "arguments": None, "response": None, "errors": None}
    # the raw answer carries exactly the three old keys
    raw = c.call_box(amp.AmpBox(_command=b"amp.Commands"))
    assert amp.parseString(raw[b"commands"])[0].keys() == {b"command", b"policy", b"providers"}


def test_canonical_form_stored_and_compared(bus):
    a, b = bus.client(), bus.client()
    a.call(Register, command="Sum", arguments=[
        {"name": b"p", "type": "AmpList(x:Integer,  y:  ListOf(Unicode))", "optional": False},
        {"name": b"q", "type": "String", "optional": True}])
    item, = listing(a, "Sum")
    # optional False is dropped, the type string re-spaced, absent values empty
    assert as_listed(item) == ([{"name": b"p", "type": "AmpList(x: Integer, y: ListOf(Unicode))"},
                                {"name": b"q", "type": "String", "optional": True}], [], [])
    # the same signature written another way joins
    b.call(Register, command="Sum", arguments=[
        {"name": b"p", "type": "AmpList(x: Integer, y: ListOf(Unicode))"},
        {"name": b"q", "type": "String", "optional": True}], response=[], errors=[])
    assert listing(a, "Sum")[0]["providers"] == 2


def test_conflict_join_and_first_signature_after_providers_without(bus):
    plain, first, same, other, late = (bus.client() for _ in range(5))
    # providers without a signature: the first one that carries one sets it
    plain.call(Register, command="Sum")
    first.call(Register, command="Sum", **signature_of(Sum))
    item, = listing(plain, "Sum")
    assert item["providers"] == 2
    assert as_listed(item) == (SUM_ARGUMENTS, SUM_RESPONSE, ["ZERO_DIVISION", "OVERFLOW"])
    # the same signature joins; a different one is refused
    same.call(Register, command="Sum", **signature_of(Sum))
    desc = refused(other, "SIGNATURE_CONFLICT", command="Sum",
                   arguments=[{"name": b"a", "type": "Float"}])
    assert "signature" in desc
    # errors in another order are another signature: canonical forms compare
    sig = signature_of(Sum)
    sig["errors"].reverse()
    refused(other, "SIGNATURE_CONFLICT", command="Sum", **sig)
    # one carrying none joins under the command's signature
    late.call(Register, command="Sum")
    item, = listing(plain, "Sum")
    assert item["providers"] == 4 and item["errors"] == ["ZERO_DIVISION", "OVERFLOW"]
    # the refused one serves nothing
    assert other.call(Commands)["commands"][0]["providers"] == 4


def test_signature_forgotten_with_the_last_provider_that_declared_it(bus):
    a, same, plain, watcher = bus.client(), bus.client(), bus.client(), bus.client()
    a.call(Register, command="Sum", **signature_of(Sum))
    same.call(Register, command="Sum", **signature_of(Sum))
    plain.call(Register, command="Sum")
    a.close()  # one that declared it goes: another that declared it still serves
    wait_for(lambda: listing(watcher, "Sum")[0]["providers"] == 2)
    assert listing(watcher, "Sum")[0]["errors"] == ["ZERO_DIVISION", "OVERFLOW"]
    # the last one that declared it goes: forgotten, though `plain` still serves
    same.call_box(amp.AmpBox(_command=b"amp.Unregister", command=b"Sum"))
    item, = listing(watcher, "Sum")
    assert item["providers"] == 1 and item["arguments"] is None and item["errors"] is None
    # then the next registration carrying a signature sets it
    watcher.call(Register, command="Sum", arguments=[{"name": b"x", "type": "Float"}])
    item, = listing(watcher, "Sum")
    assert item["providers"] == 2 and as_listed(item) == ([{"name": b"x", "type": "Float"}], [], [])
    plain.call_box(amp.AmpBox(_command=b"amp.Unregister", command=b"Sum"))
    assert listing(watcher, "Sum")[0]["errors"] == []  # its declarer still serves
    watcher.call_box(amp.AmpBox(_command=b"amp.Unregister", command=b"Sum"))
    assert listing(watcher, "Sum") == []


BOGUS = {"arguments": [{"name": b"a", "type": "ListOf(Integer)"}, {"name": b"b", "type": "Boolean"}],
         "response": [{"name": b"total", "type": "Boolean"}]}


@pytest.mark.parametrize("leaves", ["unregisters", "disconnects"])
def test_departed_peer_signature_does_not_squat_the_command(bus, leaves):
    """A provider serves Sum without a signature; another joins with a bogus
    one and leaves: the bogus signature goes with it, and the real provider
    may then declare its own."""
    legit, squatter, viewer = bus.client(), bus.client(), bus.client()
    legit.call(Register, command="Sum")
    squatter.call(Register, command="Sum", **BOGUS)
    assert listing(viewer, "Sum")[0]["arguments"][0]["type"] == "ListOf(Integer)"
    if leaves == "unregisters":
        squatter.call_box(amp.AmpBox(_command=b"amp.Unregister", command=b"Sum"))
    else:
        squatter.close()
    wait_for(lambda: listing(viewer, "Sum")[0]["providers"] == 1)
    item, = listing(viewer, "Sum")
    assert item == {"command": "Sum", "policy": "roundrobin", "providers": 1,
                    "arguments": None, "response": None, "errors": None}
    legit.call(Register, command="Sum", **signature_of(Sum))  # no SIGNATURE_CONFLICT
    item, = listing(viewer, "Sum")
    assert item["providers"] == 1
    assert as_listed(item) == (SUM_ARGUMENTS, SUM_RESPONSE, ["ZERO_DIVISION", "OVERFLOW"])


def test_registering_without_a_signature_again_keeps_the_declaration(bus):
    a, plain, viewer = bus.client(), bus.client(), bus.client()
    a.call(Register, command="Sum", errors=["OOPS"])
    a.call(Register, command="Sum")  # twice is harmless: still its declarer
    plain.call(Register, command="Sum")
    plain.call(Register, command="Sum", errors=["OOPS"])  # now a declarer as well
    a.call_box(amp.AmpBox(_command=b"amp.Unregister", command=b"Sum"))
    item, = listing(viewer, "Sum")
    assert item["providers"] == 1 and item["errors"] == ["OOPS"]


def test_registering_again_with_a_signature_sets_it(bus):
    c = bus.client()
    c.call(Register, command="Sum")
    c.call(Register, command="Sum", errors=["OOPS"])  # twice is harmless, and declares it
    item, = listing(c, "Sum")
    assert item["providers"] == 1 and as_listed(item) == ([], [], ["OOPS"])


def box(**pairs):
    return amp.AmpBox(**pairs).serialize()


def items(*boxes):
    return b"".join(boxes)


class RawRegister(amp.Command):
    """amp.Register with its signature values as raw bytes."""
    commandName = b"amp.Register"
    arguments = [(b"command", amp.Unicode()),
                 (b"arguments", amp.String(optional=True)),
                 (b"response", amp.String(optional=True)),
                 (b"errors", amp.String(optional=True))]
    response = []


INT = {"name": b"a", "type": "Integer"}

BAD = [
    ("unknown type", {"arguments": [INT, {"name": b"b", "type": "Float"},
                                    {"name": b"c", "type": "Integr"}]},
     "arguments[2].type: unknown type 'Integr'"),
    ("unknown type nested", {"response": [{"name": b"r", "type": "ListOf(AmpList(x: Flaot))"}]},
     "response[0].type: unknown type 'Flaot'"),
    ("unclosed", {"arguments": [{"name": b"a", "type": "ListOf(Integer"}]},
     "arguments[0].type: ends where ')' should be"),
    ("space before (", {"arguments": [{"name": b"a", "type": "ListOf (Integer)"}]},
     "arguments[0].type: expected '(' at byte 6"),
    ("trailing space", {"arguments": [{"name": b"a", "type": "Integer "}]},
     "arguments[0].type: expected the end at byte 7"),
    ("empty AmpList", {"arguments": [{"name": b"a", "type": "AmpList()"}]},
     "arguments[0].type: AmpList() without fields"),
    ("bad name", {"arguments": [{"name": b"a b", "type": "Integer"}]},
     "arguments[0].name: 'a b' is not a name"),
    ("empty name", {"response": [{"name": b"", "type": "Integer"}]},
     "response[0].name: '' is an empty name"),
    ("long name", {"arguments": [{"name": b"n" * 65, "type": "Integer"}]},
     "is a name longer than 64 bytes"),
    ("duplicate name", {"arguments": [INT, {"name": b"b", "type": "Float"}, INT]},
     "arguments[2].name: 'a' twice in arguments"),
    ("underscore name", {"arguments": [{"name": b"_ask", "type": "Integer"}]},
     "arguments[0].name: '_ask' is a name starting with '_'"),
    ("underscore field", {"response": [{"name": b"r", "type": "AmpList(_x: Integer)"}]},
     "response[0].type: AmpList field '_x' at byte 8 is a name starting with '_'"),
    ("duplicate field", {"response": [{"name": b"r", "type": "AmpList(x: Integer, x: Float)"}]},
     "response[0].type: AmpList field 'x' twice"),
    ("bad error code", {"errors": ["OK", "Oops"]},
     "errors[1]: 'Oops' is not an error code (A-Z 0-9 _ only)"),
    ("empty error code", {"errors": [""]}, "errors[0]: '' is an empty error code"),
    ("duplicate error code", {"errors": ["OOPS", "OOPS"]}, "errors[1]: 'OOPS' twice"),
    ("depth over 4", {"arguments": [{"name": b"a", "type":
                                     "ListOf(ListOf(AmpList(x: ListOf(ListOf(Integer)))))"}]},
     "arguments[0].type: ListOf/AmpList nested deeper than 4 at byte 32"),
]

RAW_BAD = [
    ("truncated AmpList", {"arguments": items(box(name=b"a", type=b"Integer"))[:-1]},
     "arguments[0]: malformed AmpList: the value ends inside an item"),
    ("AmpList value past its end", {"arguments": b"\x00\x04name\x00\x09a"},
     "arguments[0]: malformed AmpList: the value ends inside an item"),
    ("AmpList key over 255", {"response": items(box(name=b"r", type=b"Float")) +
                              b"\x01\x00" + b"k" * 256 + b"\x00\x00\x00\x00"},
     "response[1]: malformed AmpList: a key of 256 bytes"),
    ("truncated ListOf", {"errors": b"\x00\x02OK\x00\x05AB"},
     "errors[1]: malformed ListOf: the value ends inside an element"),
    ("unknown key", {"arguments": items(box(name=b"a", type=b"Integer", optinal=b"True"))},
     "arguments[0]: unknown key 'optinal'"),
    ("optional in response", {"response": items(box(name=b"a", type=b"Integer",
                                                    optional=b"True"))},
     "response[0]: unknown key 'optional'"),
    ("repeated key", {"arguments": items(box(name=b"a", type=b"Integer"))[:-2] +
                      b"\x00\x04name\x00\x01b\x00\x00"},
     "arguments[0]: key 'name' twice"),
    ("missing type", {"arguments": items(box(name=b"a"))}, "arguments[0]: no type"),
    ("missing name", {"arguments": items(box(type=b"Integer"))}, "arguments[0]: no name"),
    ("empty item", {"arguments": b"\x00\x00"}, "arguments[0]: no name"),
    ("optional not Boolean", {"arguments": items(box(name=b"a", type=b"Integer",
                                                     optional=b"yes"))},
     "arguments[0].optional: 'yes' is not True or False"),
    ("type not text", {"arguments": items(box(name=b"a", type=b"Integer\xff"))},
     "arguments[0].type: expected the end at byte 7, not '\\xff'"),
]


def assert_no_state(c, stats_client):
    assert listing(c) == []
    assert stats_client.call_box(amp.AmpBox(_command=b"amp.Stats"))[b"commands"] == b"0"


@pytest.mark.parametrize("case,sig,why", BAD, ids=[b[0] for b in BAD])
def test_malformed_signature_is_a_bad_request(bus, case, sig, why):
    c = bus.client()
    desc = refused(c, "BAD_REQUEST", command="Sum", **sig)
    assert why in desc, desc
    assert_no_state(c, c)


@pytest.mark.parametrize("case,sig,why", RAW_BAD, ids=[b[0] for b in RAW_BAD])
def test_malformed_signature_bytes_are_a_bad_request(bus, case, sig, why):
    c = bus.client()
    with pytest.raises(RemoteError) as e:
        c.call(RawRegister, command="Sum", **sig)
    assert e.value.code == "BAD_REQUEST" and why in e.value.description, e.value
    assert_no_state(c, c)


def test_depth_4_and_every_type_accepted(bus):
    c = bus.client()
    deep = "ListOf(AmpList(x: ListOf(ListOf(Integer)), y: Structured))"
    simple = ["Integer", "String", "Unicode", "Path", "Float", "Boolean", "Decimal",
              "DateTime", "Descriptor", "Structured"]
    args = [{"name": b"a%d" % i, "type": t} for i, t in enumerate(simple + [deep])]
    c.call(Register, command="Sum", arguments=args, response=[{"name": b"n.1-x_", "type": deep}],
           errors=["E_1", "X" * 64])
    item, = listing(c, "Sum")
    assert [a["type"] for a in item["arguments"]] == simple + [deep]


def many(n, **kw):
    return [dict({"name": b"n%d" % i, "type": "Integer"}, **kw) for i in range(n)]


def compact_amplist(names, t="Path"):
    return "AmpList(%s)" % ",".join("%s:%s" % (n, t) for n in names)


def amplist_of_len(length, canonical, k=8):
    """An AmpList type string of k Float fields, `length` bytes long when
    written compact or, with canonical=True, in canonical form."""
    spaces = 2 * k - 1 if canonical else 0  # after each ':' and ','
    names = length - 9 - k * len(":Float") - (k - 1) - spaces
    lens = [names // k + (1 if i < names % k else 0) for i in range(k)]
    fields = ["f%d" % i + "x" * (n - len("f%d" % i)) for i, n in enumerate(lens)]
    t = ("AmpList(%s)" % ", ".join("%s: Float" % f for f in fields)) if canonical \
        else compact_amplist(fields, "Float")
    assert len(t) == length, (len(t), t)
    return t


# a type string of 46 bytes sent, 55 in canonical form: 64 items of it with
# 64-byte names fit in 8192 bytes as sent, not in canonical form
COMPACT = compact_amplist(["aa", "bb", "cc", "d", "e"])
assert len(COMPACT) == 46
LONG_NAMES = [{"name": b"%02d" % i + b"n" * 62, "type": COMPACT} for i in range(64)]

LIMITS = [
    ("65 arguments", {"arguments": many(65)}, "arguments: more than 64 items"),
    ("65 response fields", {"response": many(65)}, "response: more than 64 items"),
    ("33 errors", {"errors": ["E%d" % i for i in range(33)]}, "errors: more than 32 codes"),
    ("type string over 256", {"arguments": [
        INT, {"name": b"b", "type": amplist_of_len(257, canonical=True)}]},
     "arguments[1].type: 257 bytes, over the limit of 256 for a type string"),
    ("canonical type string over 256", {"response": [
        {"name": b"r", "type": amplist_of_len(256, canonical=False)}]},
     "response[0].type: over 256 bytes in canonical form"),
    ("values over 8192", {"arguments": many(64, type=amplist_of_len(128, canonical=True))},
     # each item: 18 bytes of framing and keys, its name, its 128-byte type
     "arguments, response and errors take %d bytes, over the limit of 8192"
     % sum(18 + len(b"n%d" % i) + 128 for i in range(64))),
    ("canonical values over 8192", {"arguments": LONG_NAMES},
     "take over 8192 bytes in canonical form"),
]


@pytest.mark.parametrize("case,sig,why", LIMITS, ids=[b[0] for b in LIMITS])
def test_signature_over_a_cap_is_limit_exceeded(bus, case, sig, why):
    c = bus.client()
    desc = refused(c, "LIMIT_EXCEEDED", command="Sum", **sig)
    assert why in desc, desc
    assert_no_state(c, c)


def test_at_the_caps_accepted(bus):
    c = bus.client()
    c.call(Register, command="A", arguments=many(64, optional=True), response=many(64),
           errors=["E%d" % i for i in range(32)])
    canon = amplist_of_len(256, canonical=True)
    at_256 = canon.replace(": ", ":").replace(", ", ",")
    c.call(Register, command="B", arguments=[{"name": b"a", "type": at_256}])
    # as sent within 8192 bytes, canonical as well
    c.call(Register, command="C", arguments=LONG_NAMES[:59])
    got = {i["command"]: i for i in listing(c)}
    assert len(got["A"]["arguments"]) == 64 and len(got["A"]["errors"]) == 32
    assert got["B"]["arguments"][0]["type"] == canon
    assert got["C"]["arguments"][0]["type"] == \
        "AmpList(aa: Path, bb: Path, cc: Path, d: Path, e: Path)"


def test_refused_registrations_leave_no_state(tmp_path):
    b = broker(config="[broker]\nmax_registrations = 1\n", tmp_path=tmp_path)
    try:
        a, other = BoxClient(b.port), BoxClient(b.port)
        a.call(Register, command="Plain")
        # a malformed signature does not become the command's
        refused(other, "BAD_REQUEST", command="Plain", errors=["bad"])
        refused(other, "LIMIT_EXCEEDED", command="Plain", errors=["E%d" % i for i in range(40)])
        item, = listing(a)
        assert item["providers"] == 1 and item["errors"] is None
        # refused for the connection's limit after the signature was read:
        # neither the command nor its signature stays
        refused(a, "LIMIT_EXCEEDED", command="Sum", **signature_of(Sum))
        assert [i["command"] for i in listing(a)] == ["Plain"]
        other.call(Register, command="Sum")
        item, = listing(a, "Sum")
        assert item["errors"] is None
        a.close()
        other.close()
    finally:
        b.stop()


class Login(amp.Command):
    commandName = b"amp.Login"
    arguments = [(b"username", amp.Unicode()), (b"password", amp.Unicode())]
    response = [(b"identity", amp.Unicode())]


def test_filtered_listing_keeps_the_acl(tmp_path):
    from test_auth import quick_hash
    (tmp_path / "passwd").write_text("alice:users:%s\nworker:workers:%s\n"
                                     % (quick_hash("a1ice"), quick_hash("w0rk")))
    (tmp_path / "acl").write_text(
        "allow user:alice call Sum\nallow user:alice call amp.Commands\n"
        "allow role:workers register Sum\nallow role:workers register Secret\n"
        "allow role:workers call amp.Commands\n")
    b = broker(config="[auth]\npassword_file = %s\nacl_file = %s\nlogin_timeout = 10\n"
               % (tmp_path / "passwd", tmp_path / "acl"), tmp_path=tmp_path)
    try:
        worker, alice = BoxClient(b.port), BoxClient(b.port)
        assert worker.call(Login, username="worker", password="w0rk")["identity"] == "worker"
        assert alice.call(Login, username="alice", password="a1ice")["identity"] == "alice"
        worker.call(Register, command="Sum", **signature_of(Sum))
        worker.call(Register, command="Secret", errors=["HIDDEN"])
        # alice may call Sum, nothing about Secret: filtered or not, she sees Sum only
        assert [i["command"] for i in listing(alice)] == ["Sum"]
        assert listing(alice, "Secret") == []
        item, = listing(alice, "Sum")
        assert as_listed(item) == (SUM_ARGUMENTS, SUM_RESPONSE, ["ZERO_DIVISION", "OVERFLOW"])
        # the worker may register both, so it sees both
        item, = listing(worker, "Secret")
        assert item["errors"] == ["HIDDEN"]
        worker.close()
        alice.close()
    finally:
        b.stop()


# ---- amp.Commands by pages (`after`, `more`) and its budget ------------------


class PagedCommands(amp.Command):
    """amp.Commands as a caller that pages declares it."""
    commandName = b"amp.Commands"
    arguments = [(b"command", amp.Unicode(optional=True)), (b"after", amp.Unicode(optional=True))]
    response = Commands.response + [(b"more", amp.Boolean())]


def pages(c, after=""):
    """Every page from `after` on: [(names, more), ...]."""
    out = []
    while True:
        answer = c.call(PagedCommands, after=after)
        names = [i["command"] for i in answer["commands"]]
        out.append((names, answer["more"]))
        if not answer["more"]:
            return out
        assert names, "more without an item: no progress"
        after = names[-1]


# 59 items of 64-byte names and a 46-byte type: 8,166 bytes listed per
# command (a one-byte name), so 8 whole items to a page of 65,535
BIG = {"arguments": LONG_NAMES[:59]}


def test_twisted_caller_pages_through_big_signatures(bus):
    c, viewer = bus.client(), bus.client()
    # byte order, not registration order: upper case before lower, a prefix first
    names = ["b%02d" % i for i in range(15)] + ["A%02d" % i for i in range(15)] + ["b", "B"]
    for name in reversed(names):
        c.call(Register, command=name, **BIG)
    # the whole list does not fit: TOO_LARGE as before
    with pytest.raises(RemoteError) as e:
        listing(viewer)
    assert e.value.code == "TOO_LARGE"
    got = pages(viewer)
    assert len(got) >= 4 and all(more for _, more in got[:-1]) and not got[-1][1]
    listed = [n for names_, _ in got for n in names_]
    assert listed == sorted(names, key=str.encode)  # each once, in byte order
    # each page as full as whole items allow
    assert all(len(n) == 8 for n, _ in got[:-1])
    # the items carry their signatures
    item = viewer.call(PagedCommands, after="b13")["commands"][0]
    assert item["command"] == "b14" and len(item["arguments"]) == 59
    # `after` need not be a command; the empty string starts at the beginning;
    # past the end: an empty page
    assert pages(viewer, "b0") == [(["b%02d" % i for i in range(8)], True),
                                   (["b%02d" % i for i in range(8, 15)], False)]
    assert pages(viewer, "c") == [([], False)]


def test_small_list_is_one_page(bus):
    c = bus.client()
    assert pages(c) == [([], False)]  # an empty table: one empty page
    for name in ("Sum", "Avg", "Max"):
        c.call(Register, command=name)
    answer = c.call(PagedCommands, after="")
    assert [i["command"] for i in answer["commands"]] == ["Avg", "Max", "Sum"]
    assert answer["more"] is False
    # raw: `more` is False on the wire, and an unpaged answer has no `more`
    raw = c.call_box(amp.AmpBox(_command=b"amp.Commands", after=b"Max"))
    assert raw[b"more"] == b"False" and amp.parseString(raw[b"commands"])[0][b"command"] == b"Sum"
    assert b"more" not in c.call_box(amp.AmpBox(_command=b"amp.Commands"))


def test_command_and_after_together_is_a_bad_request(bus):
    c = bus.client()
    c.call(Register, command="Sum")
    with pytest.raises(RemoteError) as e:
        c.call(PagedCommands, command="Sum", after="")
    assert e.value.code == "BAD_REQUEST" and "command or after" in e.value.description


def test_paging_keeps_the_acl(tmp_path):
    from test_auth import quick_hash
    (tmp_path / "passwd").write_text("alice:users:%s\nworker:workers:%s\n"
                                     % (quick_hash("a1ice"), quick_hash("w0rk")))
    (tmp_path / "acl").write_text(
        "allow user:alice call Pub.x.>\nallow user:alice call amp.Commands\n"
        "deny user:alice call Pub.x.5\n"
        "allow role:workers register >\nallow role:workers call amp.Commands\n")
    b = broker(config="[auth]\npassword_file = %s\nacl_file = %s\nlogin_timeout = 10\n"
               % (tmp_path / "passwd", tmp_path / "acl"), tmp_path=tmp_path)
    try:
        worker, alice = BoxClient(b.port), BoxClient(b.port)
        assert worker.call(Login, username="worker", password="w0rk")["identity"] == "worker"
        assert alice.call(Login, username="alice", password="a1ice")["identity"] == "alice"
        # hidden ones before, between and after the visible ones
        for i in range(10):
            for prefix in ("Ops.x.", "Pub.x.", "Pub.y.", "Secret.x."):
                worker.call(Register, command="%s%d" % (prefix, i), **BIG)
        visible = ["Pub.x.%d" % i for i in range(10) if i != 5]
        got = pages(alice)
        assert [n for names, _ in got for n in names] == visible
        # `more` only while visible ones remain: False on the page with the last
        assert len(got) == 2 and got[0][1] and not got[1][1]
        assert got[0][0] == visible[:8]
        # the worker may register all of them: it sees all 40
        assert len([n for names, _ in pages(worker) for n in names]) == 40
        worker.close()
        alice.close()
    finally:
        b.stop()


def test_listings_over_the_budget_are_overloaded_and_calls_go_on(tmp_path):
    # 15 commands examined a second, 20 in the table: a listing needs a full
    # bucket and leaves a debt that takes 4/3 s to pay back
    b = broker(config="[broker]\ncommands_list_budget = 15\n", tmp_path=tmp_path)
    p = Proc(["/usr/bin/python3", HELPER, "provide", b.endpoint], r"^ready")
    try:
        owner, attacker, bystander = BoxClient(b.port), BoxClient(b.port), BoxClient(b.port)
        for i in range(19):
            owner.call(Register, command="Cmd.%d" % i)
        assert len(listing(owner)) == 20  # with Sum: a full bucket pays for it
        # a flood of listings, whole and paged, sent without reading the answers
        n = 300
        attacker.sock.sendall(b"".join(amp.AmpBox(
            _command=b"amp.Commands", _ask=b"%d" % i, **({"after": b""} if i % 2 else {})
        ).serialize() for i in range(n)))
        # meanwhile another client's routed calls are answered
        for i in range(20):
            assert bystander.call(Sum, a=i, b=1)["total"] == i + 1
        refused = [0, 0]  # whole, paged
        for i in range(n):
            answer = attacker._read_box()
            assert answer.get(b"_answer", answer.get(b"_error")) == b"%d" % i
            if b"_error" in answer:
                assert answer[b"_error_code"] == b"OVERLOADED"
                assert answer[b"_error_description"] == (
                    b"amp.Commands: the broker examines at most 15 commands per second for "
                    b"listings; try again shortly")
                refused[i % 2] += 1
        assert refused[0] and refused[1], refused
        raw = bystander.call_box(amp.AmpBox(_command=b"amp.Stats"))
        errors = {i[b"code"]: int(i[b"count"]) for i in amp.parseString(raw[b"errors"])}
        assert errors[b"OVERLOADED"] == sum(refused)
        # the bucket refills with time: 2.5 s later it is full, and listings work
        time.sleep(2.5)
        assert len(listing(attacker)) == 20
        owner.close()
        attacker.close()
        bystander.close()
    finally:
        p.stop()
        b.stop()


@pytest.mark.parametrize("value", ["0", "-1", "100000001", "1.5", ""])
def test_bad_commands_list_budget_stops_the_broker(tmp_path, value):
    import subprocess
    from test_broker import BROKER
    conf = tmp_path / "bad.conf"
    conf.write_text("[broker]\ncommands_list_budget = %s\n" % value)
    r = subprocess.run([BROKER, "--config", str(conf), "--listen", "tcp:0:interface=127.0.0.1"],
                       capture_output=True, timeout=20)
    assert r.returncode == 2, r.stderr
    assert b"bad.conf:2: bad setting: commands_list_budget must be a whole number from 1 to " \
           b"100000000" in r.stderr, r.stderr


def test_command_names_must_be_text_without_control_characters():
    """Names are shown to people: a control character (C0, DEL, C1) or bytes
    that are not UTF-8 in a registered name are refused, text of any script
    is not."""
    b = broker()
    peer = BoxClient(b.port)
    try:
        for name in (b"x\x1b]0;title\x07", b"Ev\x00il", b"a\nb", b"del\x7f", b"c1\xc2\x9b",
                     b"\xff\xfe"):
            box = amp.AmpBox(_command=b"amp.Register", command=name)
            try:
                peer.call_box(box)
                raise AssertionError("registered %r" % name)
            except RemoteError as e:
                assert e.code == "BAD_REQUEST", name
                assert "UTF-8 text without control characters" in e.description
        for name in ("Sum", "caf\u00e9.r\u00e9sum\u00e9", "\u65e5\u672c.x"):
            peer.call_box(amp.AmpBox(_command=b"amp.Register", command=name.encode()))
    finally:
        peer.close()
        b.stop()
