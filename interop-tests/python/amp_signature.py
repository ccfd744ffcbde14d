#!/usr/bin/python3
"""Command signatures (spec/amp.md 6b.7) for Twisted AMP peers.

A Twisted provider derives the signature of a command from its own
amp.Command class and registers with it:

    proto.callRemote(Register, command="Sum", **signature_of(Sum))

`signature_of` gives the three values of amp.Register (`arguments`,
`response`, `errors`) in the form Twisted's AmpList/ListOf arguments of
`Register` below take; `Commands` reads them back from amp.Commands.

`BoxClient` is a blocking client for tests: real sockets, every box built
and parsed by Twisted's own code (Command.makeArguments, AmpBox.serialize,
amp.parseString, Command.parseResponse), no reactor needed.

    amp_signature.py provide BROKER
        a Twisted provider (reactor) that registers Sum (derived signature)
        and serves it; prints "ready" once registered
"""
import os
import socket
import struct
import sys

from twisted.protocols import amp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from amp_structured import Structured  # noqa: E402

# exact classes: Path is a Unicode and Descriptor an Integer to Python
SIMPLE_TYPES = {
    amp.Integer: "Integer", amp.String: "String", amp.Unicode: "Unicode", amp.Path: "Path",
    amp.Float: "Float", amp.Boolean: "Boolean", amp.Decimal: "Decimal",
    amp.DateTime: "DateTime", amp.Descriptor: "Descriptor", Structured: "Structured",
}


def type_string(arg):
    """The canonical type string of a Twisted argument object."""
    if isinstance(arg, amp.ListOf):
        return "ListOf(%s)" % type_string(arg.elementType)
    if isinstance(arg, amp.AmpList):
        return "AmpList(%s)" % ", ".join("%s: %s" % (name.decode(), type_string(sub))
                                         for name, sub in arg.subargs)
    name = SIMPLE_TYPES.get(type(arg))
    if name is None:
        raise ValueError("no signature type for %r" % (arg,))
    return name


def signature_of(command):
    """amp.Register's `arguments`, `response` and `errors` for an amp.Command
    class: keyword arguments for callRemote(Register, ...)."""
    arguments = []
    for name, arg in command.arguments:
        item = {"name": name, "type": type_string(arg)}
        if arg.optional:
            item["optional"] = True
        arguments.append(item)
    response = [{"name": name, "type": type_string(arg)} for name, arg in command.response]
    errors = []
    for code in list(command.errors.values()) + list(command.fatalErrors.values()):
        if code.decode() not in errors:  # two exceptions may share a code
            errors.append(code.decode())
    return {"arguments": arguments, "response": response, "errors": errors}


ARGUMENT_FIELDS = [(b"name", amp.String()), (b"type", amp.Unicode()),
                   (b"optional", amp.Boolean(optional=True))]
RESPONSE_FIELDS = [(b"name", amp.String()), (b"type", amp.Unicode())]


class Register(amp.Command):
    commandName = b"amp.Register"
    arguments = [(b"command", amp.Unicode()), (b"policy", amp.Unicode(optional=True)),
                 (b"arguments", amp.AmpList(ARGUMENT_FIELDS, optional=True)),
                 (b"response", amp.AmpList(RESPONSE_FIELDS, optional=True)),
                 (b"errors", amp.ListOf(amp.Unicode(), optional=True))]
    response = []


class Commands(amp.Command):
    """amp.Commands as a signature-aware caller declares it."""
    commandName = b"amp.Commands"
    arguments = [(b"command", amp.Unicode(optional=True))]
    response = [(b"commands", amp.AmpList([
        (b"command", amp.Unicode()), (b"policy", amp.Unicode()),
        (b"providers", amp.Integer()),
        (b"arguments", amp.AmpList(ARGUMENT_FIELDS, optional=True)),
        (b"response", amp.AmpList(RESPONSE_FIELDS, optional=True)),
        (b"errors", amp.ListOf(amp.Unicode(), optional=True))]))]


class OldCommands(amp.Command):
    """amp.Commands as callers declared it before signatures."""
    commandName = b"amp.Commands"
    arguments = []
    response = [(b"commands", amp.AmpList([
        (b"command", amp.Unicode()), (b"policy", amp.Unicode()),
        (b"providers", amp.Integer())]))]


class RemoteError(Exception):
    def __init__(self, code, description):
        super().__init__("%s: %s" % (code, description))
        self.code = code
        self.description = description


class BoxClient:
    """One blocking connection to a broker; Twisted encodes and parses."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.tag = 0

    def close(self):
        self.sock.close()

    def _read_box(self):
        while True:
            end = _box_end(self.buf)
            if end:
                box, self.buf = self.buf[:end], self.buf[end:]
                return amp.parseString(box)[0]
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the broker closed the connection")
            self.buf += data

    def call_box(self, box):
        """Send an AmpBox as a call; the answer box, or RemoteError."""
        self.tag += 1
        box[b"_ask"] = b"%d" % self.tag
        self.sock.sendall(box.serialize())
        answer = self._read_box()
        if b"_error" in answer:
            raise RemoteError(answer[b"_error_code"].decode(),
                              answer[b"_error_description"].decode())
        return answer

    def call(self, cmd_class, **kw):
        box = cmd_class.makeArguments(kw, None)
        box[b"_command"] = cmd_class.commandName
        return cmd_class.parseResponse(self.call_box(box), None)


def _box_end(buf):
    """The length of the first complete box in buf, or 0."""
    pos = 0
    while len(buf) >= pos + 2:
        (klen,) = struct.unpack_from(">H", buf, pos)
        if klen == 0:
            return pos + 2
        if len(buf) < pos + 2 + klen + 2:
            return 0
        (vlen,) = struct.unpack_from(">H", buf, pos + 2 + klen)
        pos += 4 + klen + vlen
    return 0


# ---- a provider under the reactor ---------------------------------------------

class Overflow(Exception):
    pass


class Sum(amp.Command):
    """A command with every part of a signature."""
    arguments = [(b"a", amp.Integer()), (b"b", amp.Integer(optional=True)),
                 (b"tags", amp.ListOf(amp.Unicode(), optional=True))]
    response = [(b"total", amp.Integer()),
                (b"parts", amp.AmpList([(b"name", amp.String()), (b"value", amp.Float())]))]
    errors = {ZeroDivisionError: b"ZERO_DIVISION", Overflow: b"OVERFLOW"}


class Provider(amp.AMP):
    @Sum.responder
    def sum(self, a, b=None, tags=None):
        total = a + (b or 0)
        return {"total": total, "parts": [{"name": b"a", "value": float(a)}]}


def provide(endpoint):
    from twisted.internet import endpoints, reactor

    def registered(_):
        print("ready", flush=True)

    def failed(f):
        print("failed %s" % f.getErrorMessage(), flush=True)
        reactor.stop()

    def connected(proto):
        d = proto.callRemote(Register, command="Sum", **signature_of(Sum))
        d.addCallbacks(registered, failed)

    ep = endpoints.clientFromString(reactor, endpoint)
    endpoints.connectProtocol(ep, Provider()).addCallbacks(connected, failed)
    reactor.run()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "provide":
        provide(sys.argv[2])
    else:
        sys.exit(__doc__)
