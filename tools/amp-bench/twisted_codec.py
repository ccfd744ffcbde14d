#!/usr/bin/python3
"""Twisted's side of 'amp-bench codec': time Twisted's own box parser and
serializer on a stream of AMP boxes, fed in the same chunks as libamp.

usage: twisted_codec.py STREAM_FILE CHUNK RUNS
Prints one JSON object: boxes, bytes, and per-run decode/encode seconds.
"""
import json
import sys
import time

from twisted.internet.testing import StringTransport
from twisted.protocols import amp


class Count:
    def __init__(self):
        self.boxes = []

    def startReceivingBoxes(self, sender):
        pass

    def ampBoxReceived(self, box):
        self.boxes.append(box)

    def stopReceivingBoxes(self, reason):
        pass


def decode(data, chunk):
    rec = Count()
    proto = amp.BinaryBoxProtocol(rec)
    proto.makeConnection(StringTransport())
    t0 = time.perf_counter()
    for i in range(0, len(data), chunk):
        proto.dataReceived(data[i : i + chunk])
    return time.perf_counter() - t0, rec.boxes


def encode(boxes):
    t0 = time.perf_counter()
    out = [amp.Box(b).serialize() for b in boxes]
    return time.perf_counter() - t0, b"".join(out)


def main():
    path, chunk, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(path, "rb") as f:
        data = f.read()
    dec, enc, boxes = [], [], None
    for _ in range(runs):
        t, boxes = decode(data, chunk)
        dec.append(t)
        t, again = encode(boxes)
        enc.append(t)
        if again != data:  # the stream is Twisted's own serialization
            sys.exit("Twisted re-encoded the stream differently")
    print(json.dumps({"boxes": len(boxes), "bytes": len(data), "decode": dec, "encode": enc}))


if __name__ == "__main__":
    main()
