#!/usr/bin/python3
"""Write the seed corpora in tools/fuzz/corpus/ from spec/vectors."""
import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
VEC = os.path.join(HERE, "..", "..", "spec", "vectors")


def write(kind, data):
    d = os.path.join(HERE, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


framing = json.load(open(os.path.join(VEC, "framing.json")))
for section in ("boxes", "decode_only", "reject", "truncated"):
    for v in framing[section]:
        data = bytes.fromhex(v["hex"])
        if len(data) <= 4096:
            write("decoder", b"\x00" + data)
            write("decoder", b"\x4b" + data)  # small limits, empty boxes allowed
conv = json.load(open(os.path.join(VEC, "conversation.json")))
answers = b"".join(bytes.fromhex(v["hex"]) for v in conv["cases"])
for v in conv["cases"] + conv["reject"]:
    write("session", bytes.fromhex(v["hex"]))
write("session", answers)
for v in framing["boxes"][:2]:
    write("session", bytes.fromhex(v["hex"]))
types = json.load(open(os.path.join(VEC, "types.json")))["types"]
for t in types.values():
    for section in ("encode", "reject", "decode_only"):
        for v in t.get(section, []):
            data = bytes.fromhex(v["hex"])
            if len(data) <= 4096:
                write("values", data)


# command signatures (fuzz_signature.c): mode byte, then values
def amp_box(pairs):
    return b"".join(len(k).to_bytes(2, "big") + k + len(v).to_bytes(2, "big") + v
                    for k, v in pairs) + b"\0\0"


def list_of(items):
    return b"".join(len(i).to_bytes(2, "big") + i for i in items)


for t in (b"Integer", b"ListOf(Unicode)", b"AmpList(a: Integer, b: ListOf(Float))",
          b"AmpList(x:Path,y:  ListOf(AmpList(z: Structured)))",
          b"ListOf(ListOf(ListOf(ListOf(Boolean))))", b"Integr", b"AmpList()"):
    write("signature", b"\x80" + t)
args = amp_box([(b"name", b"a"), (b"type", b"Integer")]) + \
    amp_box([(b"name", b"b"), (b"type", b"DateTime"), (b"optional", b"True")])
resp = amp_box([(b"name", b"total"), (b"type", b"AmpList(n: Decimal, d: Descriptor)")])
errs = list_of([b"ZERO_DIVISION", b"OVERFLOW"])
for mode in range(8):
    write("signature", bytes([mode]) + len(args).to_bytes(2, "big") +
          len(resp).to_bytes(2, "big") + args + resp + errs)
