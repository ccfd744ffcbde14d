"""The project's Structured argument type for Twisted AMP peers.

A Structured value is one MessagePack document (spec/amp.md, "Structured").
Use it in a Command's arguments or response like any Twisted argument:

    class Store(amp.Command):
        arguments = [(b"doc", Structured())]
"""
import msgpack
from twisted.protocols import amp

MAX_DEPTH = 32


def _check(obj, depth=0):
    if isinstance(obj, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise ValueError("Structured value nested deeper than %d" % MAX_DEPTH)
        for item in obj:
            _check(item, depth + 1)
    elif isinstance(obj, dict):
        if depth >= MAX_DEPTH:
            raise ValueError("Structured value nested deeper than %d" % MAX_DEPTH)
        for k, v in obj.items():
            _check(k, depth + 1)
            _check(v, depth + 1)
    elif isinstance(obj, msgpack.ExtType):
        raise ValueError("Structured values carry no MessagePack ext types")


class Structured(amp.Argument):
    """A MessagePack document: maps, arrays, nil, booleans, numbers, str, bin."""

    def toString(self, obj):
        _check(obj)
        return msgpack.packb(obj, use_bin_type=True)

    def fromString(self, data):
        def no_ext(code, payload):
            raise ValueError("Structured values carry no MessagePack ext types")

        obj = msgpack.unpackb(
            data, raw=False, strict_map_key=False, ext_hook=no_ext, use_list=True
        )
        _check(obj)
        return obj
