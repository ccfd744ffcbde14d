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
