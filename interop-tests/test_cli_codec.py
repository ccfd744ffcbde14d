"""amp-cli decode / encode against Twisted's own framing, over many random boxes."""
import json
import random

from twisted.protocols import amp

from conftest import run


def random_boxes(rng, count):
    boxes = []
    for _ in range(count):
        d = {}
        for _ in range(rng.randrange(1, 9)):
            klen = rng.choice([1, 1, 2, 8, 40, 254, 255])
            vlen = rng.choice([0, 0, 1, 2, 10, 300, 5000, 65535])
            if vlen == 65535 and rng.random() < 0.8:
                vlen = 65534 if rng.random() < 0.5 else 0
            key = bytes(rng.randrange(256) for _ in range(klen))
            if rng.random() < 0.5:  # plenty of valid UTF-8 too
                key = "".join(rng.choice("ab_ké€😀") for _ in range(klen))[:klen].encode()[:255]
                key = key.decode("utf-8", "ignore").encode() or b"k"
            d[key] = rng.randbytes(vlen) if rng.random() < 0.5 else (
                "".join(rng.choice("xyz \"\\\n\t\x00é€😀") for _ in range(vlen // 4))
                .encode()[:65535].decode("utf-8", "ignore").encode())
        boxes.append(d)
    return boxes


def twisted_parse(data):
    return [dict(b) for b in amp._ParserHelper.parseString(data)]


def json_to_box(line):
    """Turn one amp-cli JSON line into (ordered pairs) of bytes."""
    pairs = json.loads(line, object_pairs_hook=list)
    return [(k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
            for k, v in pairs]


def test_random_stream_decodes_as_twisted_parses_and_encodes_back(amp_cli):
    rng = random.Random(1122)
    boxes = random_boxes(rng, 3000)
    stream = b"".join(amp.Box(d).serialize() for d in boxes)
    parsed = twisted_parse(stream)
    assert parsed == boxes

    out = run([amp_cli, "decode"], stream).stdout
    lines = out.decode("utf-8").split("\n")[:-1]  # not splitlines(): U+2028 is text
    assert len(lines) == len(boxes)
    for line, want in zip(lines, parsed):
        pairs = json_to_box(line)
        # wire order is Twisted's sorted order, and the content is identical
        assert pairs == sorted(want.items())

    again = run([amp_cli, "encode"], out).stdout
    assert again == stream

    stats = json.loads(run([amp_cli, "decode", "--stats"], stream).stdout)
    assert stats == {"boxes": len(boxes), "bytes": len(stream)}


def test_duplicate_and_unsorted_keys_round_trip(amp_cli):
    lines = b'{"b":"2","a":"1","a":"3"}\n{"\\udcff\\udc80":"\\u00e9\\ud83d\\ude00"}\n'
    data = run([amp_cli, "encode"], lines).stdout
    assert data == (b"\x00\x01b\x00\x012\x00\x01a\x00\x011\x00\x01a\x00\x013\x00\x00"
                    b"\x00\x02\xff\x80\x00\x06\xc3\xa9\xf0\x9f\x98\x80\x00\x00")
    # Twisted agrees on what these bytes mean (last duplicate wins)
    assert twisted_parse(data) == [{b"b": b"2", b"a": b"3"},
                                   {b"\xff\x80": "é😀".encode()}]
    back = run([amp_cli, "decode"], data).stdout
    assert run([amp_cli, "encode"], back).stdout == data


def test_malformed_streams_fail_cleanly(amp_cli):
    good = amp.Box({b"_ask": b"1", b"_command": b"Sum", b"a": b"13"}).serialize()
    cases = [
        (good[:-1], "truncated", 0),
        (good + b"\x00\x00", "empty-box", len(good)),
        (good + b"\x01\x00" + b"K" * 300, "key-too-long", len(good)),
        (b"\x00", "truncated", 0),
    ] + [(good[:cut], "truncated", 0) for cut in range(1, len(good))]
    for data, reason, offset in cases:
        p = run([amp_cli, "decode"], data, check=False)
        assert p.returncode == 1, (data, p.stderr)
        err = p.stderr.decode()
        assert "(%s)" % reason in err and "offset %d:" % offset in err, err
        # the good boxes before the fault are printed
        assert p.stdout.count(b"\n") == (1 if offset else 0)


def test_random_garbage_never_crashes(amp_cli):
    rng = random.Random(7)
    for _ in range(200):
        data = rng.randbytes(rng.randrange(0, 400))
        p = run([amp_cli, "decode"], data, check=False)
        assert p.returncode in (0, 1), p.stderr
        if p.returncode:
            assert b"offset" in p.stderr


def test_limits_from_the_command_line(amp_cli):
    box = amp.Box({b"a": b"1", b"b": b"2", b"c": b"3"}).serialize()
    assert run([amp_cli, "decode", "--max-keys", "3"], box).returncode == 0
    p = run([amp_cli, "decode", "--max-keys", "2"], box, check=False)
    assert p.returncode == 1 and b"too-many-keys" in p.stderr
    p = run([amp_cli, "decode", "--max-box-bytes", str(len(box) - 1)], box, check=False)
    assert p.returncode == 1 and b"box-too-large" in p.stderr


def test_bad_json_lines_fail_with_line_numbers(amp_cli):
    for text, why in ((b'{"a":"1"}\n{"a":1}\n', b"line 2"), (b"[1]\n", b"line 1"),
                      (b'{"a":"1"\n', b"line 1"), (b"{}\n", b"empty-box"),
                      (b'{"":"x"}\n', b"empty-key"), (b'{"a":"\\udc00"}\n', b"surrogate"),
                      (b'{"' + b"k" * 256 + b'":""}\n', b"key-too-long")):
        p = run([amp_cli, "encode"], text, check=False)
        assert p.returncode == 1, text
        assert why in p.stderr, (text, p.stderr)


def test_help_and_usage(amp_cli):
    for verb in ("decode", "encode"):
        p = run([amp_cli, verb, "--help"])
        assert b"usage: amp-cli " + verb.encode() in p.stdout
    assert run([amp_cli, "--help"]).stdout.startswith(b"usage: amp-cli")
    assert run([amp_cli, "nope"], check=False).returncode == 2
    assert run([amp_cli, "decode", "/nonexistent/x"], check=False).returncode == 3
