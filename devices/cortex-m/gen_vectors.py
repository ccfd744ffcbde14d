#!/usr/bin/env python3
"""Turn the spec/vectors JSON files into C tables (the types of vectors.h), so that a
target without a file system or a JSON parser runs the same golden vectors
as the host tests.

    gen_vectors.py VECTORS_DIR OUT.c [--corrupt GROUP]

--corrupt GROUP flips one bit of the first expected byte string of that group
(framing, reject, types, conversation, unhandled, session): the image built
from it must fail, which shows that the runner can fail at all.
"""
import argparse
import json
import os
import sys

GROUPS = ("framing", "reject", "types", "conversation", "unhandled", "session")
DECIMAL_KINDS = {"finite": 0, "infinity": 1, "nan": 2, "snan": 3}
SCALARS = {"Integer": "VT_INTEGER", "String": "VT_STRING", "Unicode": "VT_UNICODE",
           "Float": "VT_FLOAT", "Boolean": "VT_BOOLEAN", "Decimal": "VT_DECIMAL",
           "DateTime": "VT_DATETIME", "Descriptor": "VT_DESCRIPTOR",
           "Structured": "VT_STRUCTURED"}


def c_string(s):
    out = []
    for b in s.encode("utf-8"):
        if 32 <= b < 127 and chr(b) not in '"\\?':
            out.append(chr(b))
        else:
            out.append("\\%03o" % b)
    return '"' + "".join(out) + '"'


class Writer:
    def __init__(self):
        self.decls = []
        self.blobs = {}
        self.count = 0

    def name(self, prefix):
        self.count += 1
        return "%s%d" % (prefix, self.count)

    def blob(self, data):
        """A vbytes initialiser for `data`; equal byte strings share storage."""
        if not data:
            return "{vec_empty, 0}"  # never NULL: "no bytes" is not "no value"
        sym = self.blobs.get(data)
        if sym is None:
            sym = self.blobs[data] = self.name("b")
            rows = [",".join("0x%02x" % b for b in data[i:i + 24])
                    for i in range(0, len(data), 24)]
            self.decls.append("static const uint8_t %s[%d] = {\n%s};" %
                              (sym, len(data), ",\n".join(rows)))
        return "{%s, %d}" % (sym, len(data))

    def array(self, ctype, items):
        if not items:
            return "0"
        sym = self.name("a")
        self.decls.append("static const %s %s[%d] = {\n  %s};" %
                          (ctype, sym, len(items), ",\n  ".join(items)))
        return sym

    def pairs(self, pairs):
        return self.array("vpair", ["{%s, %s}" % (self.blob(hx(k)), self.blob(hx(v)))
                                    for k, v in pairs])


def hx(s):
    return bytes.fromhex(s)


def limits(v):
    lim = v.get("limits") or {}
    return "{%d, %d, %d}" % (lim.get("max_keys", 0), lim.get("max_box_bytes", 0),
                             1 if lim.get("allow_empty_box") else 0)


def gen_framing(w, framing):
    frames, rejects = [], []
    for v in framing["boxes"]:
        box = "{%s, %d}" % (w.pairs(v["pairs"]), len(v["pairs"]))
        frames.append("{%s, %s, %s, 1, 1, %s, 0, 0}" % (
            c_string(v["name"]), w.blob(hx(v["hex"])), w.array("vbox", [box]), limits(v)))
    for v in framing["decode_only"] + framing["streams"]:
        boxes = [v["pairs"]] if "pairs" in v else v["boxes"]
        items = ["{%s, %d}" % (w.pairs(b), len(b)) for b in boxes]
        parse = v.get("twisted_parse")  # a list for several boxes: those are compared whole
        look = sorted(parse.items()) if isinstance(parse, dict) else []
        frames.append("{%s, %s, %s, %d, 0, %s, %s, %d}" % (
            c_string(v["name"]), w.blob(hx(v["hex"])), w.array("vbox", items), len(items),
            limits(v), w.pairs(look), len(look)))
    for v in framing["reject"]:
        rejects.append("{%s, %s, %s, %d, %d, 0, %s}" % (
            c_string(v["name"]), w.blob(hx(v["hex"])), c_string(v["error"]), v["offset"],
            v["boxes_before"], limits(v)))
    for v in framing["truncated"]:
        rejects.append("{%s, %s, %s, %d, 0, 1, %s}" % (
            c_string(v["name"]), w.blob(hx(v["hex"])), c_string(v["error"]), v["offset"],
            limits(v)))
    return frames, rejects


def scalar(w, vtype, v):
    """A vvalue initialiser for a scalar in the neutral form."""
    f = {"type": vtype, "flag": 0, "kind": 0, "bytes": "{0, 0}", "bits": 0, "exponent": 0,
         "dt": "0", "items": "0", "keys": "0", "nitems": 0}
    if vtype in ("VT_INTEGER", "VT_DESCRIPTOR"):
        f["bytes"] = w.blob(v.encode())
    elif vtype == "VT_STRING":
        f["bytes"] = w.blob(hx(v))
    elif vtype == "VT_UNICODE":
        f["bytes"] = w.blob(v.encode("utf-8", "surrogatepass"))
    elif vtype == "VT_FLOAT":
        f["bits"] = "0x%sULL" % v["bits"]
    elif vtype == "VT_BOOLEAN":
        f["flag"] = 1 if v else 0
    elif vtype == "VT_DECIMAL":
        f["flag"] = 1 if v["negative"] else 0
        f["kind"] = DECIMAL_KINDS[v["kind"]]
        f["bytes"] = w.blob(v["digits"].encode())
        f["exponent"] = "%dLL" % v.get("exponent", 0)
    elif vtype == "VT_DATETIME":
        fields = [v[k] for k in ("year", "month", "day", "hour", "minute", "second",
                                 "microsecond", "offset_minutes")]
        f["dt"] = w.array("int32_t", [str(x) for x in fields])
    return value_init(f)


def value_init(f):
    return "{%(type)s, %(flag)s, %(kind)s, %(bytes)s, %(bits)s, %(exponent)s, %(dt)s, " \
           "%(items)s, %(keys)s, %(nitems)s}" % f


def list_value(w, element, depth, v):
    """ListOf: `element` is the type path, outermost first."""
    inner = element[depth]
    if inner == "ListOf":
        items = [list_value(w, element, depth + 1, e) for e in v]
    else:
        items = [scalar(w, SCALARS[inner], e) for e in v]
    return value_init({"type": "VT_LIST", "flag": 0, "kind": 0, "bytes": "{0, 0}", "bits": 0,
                       "exponent": 0, "dt": "0", "items": w.array("vvalue", items),
                       "keys": "0", "nitems": len(items)})


def amplist_value(w, fields, v):
    boxes = []
    for el in v:
        keys, items = [], []
        for f in fields:  # in the declared order, as Twisted writes them
            if f[0] in el:
                keys.append(w.blob(f[0].encode()))
                items.append(scalar(w, SCALARS[f[1]], el[f[0]]))
        boxes.append(value_init({"type": "VT_BOX", "flag": 0, "kind": 0, "bytes": "{0, 0}",
                                 "bits": 0, "exponent": 0, "dt": "0",
                                 "items": w.array("vvalue", items),
                                 "keys": w.array("vbytes", keys), "nitems": len(items)}))
    return value_init({"type": "VT_AMPLIST", "flag": 0, "kind": 0, "bytes": "{0, 0}", "bits": 0,
                       "exponent": 0, "dt": "0", "items": w.array("vvalue", boxes),
                       "keys": "0", "nitems": len(boxes)})


def gen_types(w, types):
    cases = []
    for tname, groups in types["types"].items():
        for mode, cmode in (("encode", "VM_ENCODE"), ("decode_only", "VM_DECODE_ONLY"),
                            ("reject", "VM_REJECT")):
            for c in groups.get(mode, []):
                value, vtype, element = "0", SCALARS.get(tname, "VT_LIST"), "VT_INTEGER"
                if tname == "ListOf":
                    path = c["element"]
                    element = SCALARS[path[-1]]
                    if mode != "reject":
                        value = list_value(w, path, 0, c["value"])
                elif tname == "AmpList":
                    vtype = "VT_AMPLIST"
                    if mode != "reject":
                        value = amplist_value(w, c["fields"], c["value"])
                elif tname == "Structured":
                    pass  # checked, not decoded: the JSON form is for other hosts
                elif mode != "reject":
                    value = scalar(w, vtype, c["value"])
                if value != "0":
                    value = w.array("vvalue", [value])
                canon = c.get("canonical")
                cases.append("{%s, %s, %s, %s, %d, %s, %s, %s, %s}" % (
                    c_string(tname), cmode, vtype, element, 1 if canon is not None else 0,
                    w.blob(hx(c["hex"])), value, w.blob(hx(canon or "")),
                    c_string(c["error"]) if "error" in c else "0"))
    return cases


def gen_conversation(w, conv):
    cases = []

    def opt(c, key):
        return w.blob(hx(c[key])) if c.get(key) else "{0, 0}"

    for c in conv["cases"]:
        cases.append("{%s, %s, %s, 0, %d, %s, %s, %s, %s}" % (
            c_string(c["name"]), w.blob(hx(c["hex"])), c_string(c["kind"]),
            1 if c.get("tag") is not None else 0, opt(c, "tag"), opt(c, "command"),
            opt(c, "error_code"), opt(c, "error_description")))
    for c in conv["reject"]:
        cases.append("{%s, %s, 0, %s, 0, {0, 0}, {0, 0}, {0, 0}, {0, 0}}" % (
            c_string(c["name"]), w.blob(hx(c["hex"])), c_string(c["error"])))
    unhandled = ["{%s, %s}" % (w.blob(hx(u["command"])), w.blob(hx(u["error_description"])))
                 for u in conv["unhandled"]]
    return cases, unhandled


def corrupt(data, group):
    """Flip the lowest bit of one expected byte string of `group`."""
    def flip(s):
        b = bytearray(hx(s))
        b[-1] ^= 1
        return b.hex()

    f, t, c = data["framing"], data["types"], data["conversation"]
    if group == "framing":
        f["boxes"][0]["hex"] = flip(f["boxes"][0]["hex"])
    elif group == "reject":
        f["reject"][0]["offset"] += 1
    elif group == "types":
        case = t["types"]["Integer"]["encode"][1]
        case["hex"] = flip(case["hex"])
    elif group == "conversation":
        c["cases"][0]["command"] = flip(c["cases"][0]["command"])
    elif group == "unhandled":
        u = c["unhandled"][0]
        u["error_description"] = flip(u["error_description"])
    elif group == "session":
        # "Sum answer" is what the device's session must write for "Sum call"
        case = next(x for x in c["cases"] if x["name"] == "Sum answer")
        case["hex"] = flip(case["hex"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vectors_dir")
    ap.add_argument("out")
    ap.add_argument("--corrupt", choices=GROUPS, default="")
    args = ap.parse_args()
    data = {}
    for name in ("framing", "types", "conversation"):
        with open(os.path.join(args.vectors_dir, name + ".json"), encoding="utf-8") as fh:
            data[name] = json.load(fh)
    if args.corrupt:
        corrupt(data, args.corrupt)
    w = Writer()
    frames, rejects = gen_framing(w, data["framing"])
    types = gen_types(w, data["types"])
    convs, unhandled = gen_conversation(w, data["conversation"])
    unknown = w.blob(hx(data["conversation"]["unknown_tag"]["hex"]))
    out = ["/* Generated by devices/cortex-m/gen_vectors.py from spec/vectors: do not edit. */",
           '#include "vectors.h"', "", "static const uint8_t vec_empty[1];"]
    out += w.decls
    for ctype, sym, items in (("vframe", "vec_frames", frames),
                              ("vreject", "vec_rejects", rejects),
                              ("vtypecase", "vec_types", types),
                              ("vconv", "vec_convs", convs),
                              ("vunhandled", "vec_unhandled", unhandled)):
        out.append("const %s %s[] = {\n  %s};" % (ctype, sym, ",\n  ".join(items)))
        out.append("const uint32_t %s = %d;" % (sym.replace("vec_", "vec_n"), len(items)))
    out.append("const vbytes vec_unknown_tag = %s;" % unknown)
    out.append("const char vec_corrupted[] = %s;" % c_string(args.corrupt))
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
