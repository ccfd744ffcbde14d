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


def test_signature_forgotten_with_the_last_provider(bus):
    a, b, watcher = bus.client(), bus.client(), bus.client()
    a.call(Register, command="Sum", **signature_of(Sum))
    b.call(Register, command="Sum")
    a.close()  # the provider that set the signature goes: the command keeps it
    wait_for(lambda: listing(watcher, "Sum")[0]["providers"] == 1)
    item, = listing(watcher, "Sum")
    assert item["providers"] == 1 and item["errors"] == ["ZERO_DIVISION", "OVERFLOW"]
    b.call_box(amp.AmpBox(_command=b"amp.Unregister", command=b"Sum"))
    assert listing(watcher, "Sum") == []
    # registered again, the command starts without a signature or with a new one
    watcher.call(Register, command="Sum", arguments=[{"name": b"x", "type": "Float"}])
    item, = listing(watcher, "Sum")
    assert as_listed(item) == ([{"name": b"x", "type": "Float"}], [], [])
