"""amp-cli serve's guards against hostile peers: what waiting calls may hold
(--max-queue-bytes), answers and error objects from a child checked against
AMP's limits before they are sent, and arguments checked against the
command's signature before any child runs. A real amp-broker in between."""
import json
import os
import socket
import subprocess

from test_broker import broker, raw_box, read_box, rss_kb
from test_cli_bus import env
from test_cli_serve import Serve, call, error_of, script, wait_for
from test_twisted_interop import AMP_CLI


def test_max_queue_bytes_refuses_big_waiting_calls_and_memory_stays_bounded(tmp_path):
    """With one child running, calls of 2.4 MB of control bytes (each about
    six times that as JSON) wait only while the waiting calls hold at most
    --max-queue-bytes; beyond it they get OVERLOADED at once, small calls
    still wait, and serve's memory stays near the cap whatever is sent."""
    b = broker()
    cmd = script(tmp_path, "gate.sh", (
        'read -r line\n'
        'touch %(d)s/started.$$\n'
        'while [ ! -e %(d)s/release ]; do sleep 0.02; done\n'
        'echo "{\\"len\\": ${#line}}"\n') % {"d": tmp_path})
    cap = 4 * 1024 * 1024
    # freed boxes must not sit in ASan's quarantine (it would count as ours)
    asan = os.environ.get("ASAN_OPTIONS", "exitcode=86") + ":quarantine_size_mb=1"
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, "--exec-timeout", "300",
                  "--max-concurrent", "1", "--max-queue-bytes", str(cap), "Gate",
                  ASAN_OPTIONS=asan)
        first = subprocess.Popen([AMP_CLI, "call", "--server", b.endpoint, "--timeout", "300",
                                  "Gate", "n=1"], stdout=subprocess.PIPE, env=env())
        wait_for(lambda: any(p.name.startswith("started") for p in tmp_path.iterdir()),
                 "the first call's child")
        base_kb = rss_kb(s.proc.pid)
        big = [(b"k%d" % i, b"\x01" * 60000) for i in range(40)]  # 2.4 MB
        sock = socket.create_connection(("127.0.0.1", b.port))
        sock.settimeout(300)

        def send(tag, pairs):
            sock.sendall(raw_box([(b"_ask", tag), (b"_command", b"Gate")] + pairs))

        send(b"2", [(b"n", b"2")])  # waits
        send(b"3", big)             # waits: 2.4 MB of the 4 MiB
        send(b"4", big)             # would hold 4.8 MB: refused
        send(b"5", [(b"n", b"5")])  # small: still waits
        for i in range(6, 36):      # 72 MB more, all refused
            send(b"%d" % i, big)
        buf, refused = b"", {}
        for _ in range(31):
            got, buf = read_box(sock, buf)
            d = dict(got)
            assert d.get(b"_error_code") == b"OVERLOADED", got
            assert b"--max-queue-bytes" in d[b"_error_description"], got
            refused[d[b"_error"]] = d[b"_error_description"]
        assert sorted(refused) == sorted([b"4"] + [b"%d" % i for i in range(6, 36)])
        # the 4 MiB the waiting calls hold, with room for buffers and the
        # allocator; without the cap this is over 500 MB
        assert rss_kb(s.proc.pid) - base_kb < (cap + 48 * 1024 * 1024) // 1024
        (tmp_path / "release").touch()
        answers = {}
        for _ in range(3):
            got, buf = read_box(sock, buf)
            d = dict(got)
            answers[d[b"_answer"]] = int(d[b"len"])
        # the child got the big call as JSON: each byte as \u0001
        assert set(answers) == {b"2", b"3", b"5"}
        assert answers[b"3"] > 40 * 60000 * 6
        out, _ = first.communicate(timeout=300)
        assert "len" in json.loads(out)
        sock.close()
        status, _, err = s.stop()
        assert status == 0, err
    finally:
        b.stop()


def test_max_queue_bytes_usage():
    for bad in ("-1", "1.5", "x", "1e20"):
        p = subprocess.run([AMP_CLI, "serve", "--max-queue-bytes", bad, "--exec", "cat", "X"],
                           capture_output=True, env=env(AMP_URL="tcp:127.0.0.1:1"), timeout=60)
        assert p.returncode == 2, (bad, p.stderr)
        assert b"--max-queue-bytes" in p.stderr, (bad, p.stderr)
    p = subprocess.run([AMP_CLI, "serve", "--help"], capture_output=True, env=env(), timeout=60)
    assert b"--max-queue-bytes N" in p.stdout and b"BAD_ARGUMENTS" in p.stdout


def test_answers_beyond_amp_limits_are_bad_output_and_the_connection_stays(tmp_path):
    """A child's answer the broker would refuse (and drop the connection
    with every call on it) is EXEC_BAD_OUTPUT instead; so is an error object
    whose code or description a caller could not safely print."""
    b = broker()
    cmd = script(tmp_path, "hostile.sh", (
        'read -r line\n'
        'case "$AMP_COMMAND" in\n'
        'ManyKeys) awk \'BEGIN{printf "{"; for (i = 0; i < 5001; i++)'
        ' printf "%s\\"k%d\\": \\"v\\"", (i ? "," : ""), i; print "}"}\';;\n'
        'KeysAtLimit) awk \'BEGIN{printf "{"; for (i = 0; i < 1023; i++)'
        ' printf "%s\\"k%d\\": \\"v\\"", (i ? "," : ""), i; print "}"}\';;\n'
        'LongKey) printf \'{"%s": "v"}\\n\' "$(head -c 256 /dev/zero | tr "\\0" k)";;\n'
        'EmptyKey) printf "%s\\n" \'{"": "v"}\';;\n'
        'LongValue) printf \'{"k": "%s"}\\n\' "$(head -c 65536 /dev/zero | tr "\\0" v)";;\n'
        'NulCode) printf "%s\\n" \'{"error": "A\\u0000B"}\';;\n'
        'NewlineCode) printf "%s\\n" \'{"error": "A\\nB"}\';;\n'
        'EscCode) printf "%s\\n" \'{"error": "\\u001b[31mRED"}\';;\n'
        'SpaceCode) printf "%s\\n" \'{"error": "NOT A CODE"}\';;\n'
        'LongCode) printf \'{"error": "%s"}\\n\' "$(head -c 65 /dev/zero | tr "\\0" E)";;\n'
        'EscDescription) printf "%s\\n" \'{"error": "E", "description": "\\u001b]0;title\\u0007"}\';;\n'
        'LongDescription) printf \'{"error": "E", "description": "%s"}\\n\''
        ' "$(head -c 65536 /dev/zero | tr "\\0" d)";;\n'
        'Fine) printf "%s\\n" \'{"error": "E_1", "description": "line one\\n\\tline two"}\';;\n'
        'esac\n'))
    bad = {"ManyKeys": "5001 keys", "LongKey": "key", "EmptyKey": "key",
           "LongValue": "65535", "NulCode": "not a code", "NewlineCode": "not a code",
           "EscCode": "not a code", "SpaceCode": "not a code", "LongCode": "not a code",
           "EscDescription": "control characters", "LongDescription": "65535 bytes"}
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, "KeysAtLimit", "Fine", *bad)
        # a caller with a call in flight on the same serve the whole time
        sock = socket.create_connection(("127.0.0.1", b.port))
        sock.settimeout(120)
        for name, why in bad.items():
            code, desc = error_of(b.endpoint, name)
            assert code == "EXEC_BAD_OUTPUT" and why in desc, (name, desc)
        assert len(call(b.endpoint, "KeysAtLimit")) == 1023
        p = subprocess.run([AMP_CLI, "call", "--server", b.endpoint, "Fine"],
                           capture_output=True, env=env(), timeout=60)
        assert p.returncode == 4 and p.stderr.startswith(b"E_1: line one"), p.stderr
        sock.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"KeysAtLimit")]))
        got, _ = read_box(sock, b"")
        assert dict(got)[b"_answer"] == b"1" and len(got) == 1024, got[:3]
        sock.close()
        assert s.proc.poll() is None  # still connected, still serving
        status, _, err = s.stop()
        assert status == 0, err
    finally:
        b.stop()


def test_arguments_are_checked_against_the_signature(tmp_path):
    """With a signature, a call whose arguments do not match gets
    BAD_ARGUMENTS and no child runs; the child sees only typed JSON of the
    declared arguments."""
    b = broker()
    log = tmp_path / "inputs"
    cmd = script(tmp_path, "sum.sh", 'read -r line\nprintf "%%s\\n" "$line" >> %s\n'
                 'echo \'{"total": 3}\'\n' % log)
    cases = [
        ([(b"a", b'1, "b": 2')], "'a' is not a valid Integer"),
        ([(b"a", b"0x10")], "'a' is not a valid Integer"),
        ([(b"b", b"2")], "'a' (Integer) is missing"),
        ([(b"a", b"1"), (b"a", b"2")], "'a' is given more than once"),
        ([(b"a", b"1"), (b"command", b"Other")], "declares no argument 'command'"),
        ([(b"a", b"1"), (b'k"ey\n\x00\xff', b"v")], "not a name"),
        ([(b"a", b"1"), (b"b", b"x")], "'b' is not a valid Integer"),
    ]
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd,
                  "Sum(a: Integer, b: Integer?) -> (total: Integer)")
        fixed = Serve("--server", b.endpoint, "--answer", "total=3", "Fixed(a: Integer)")
        sock = socket.create_connection(("127.0.0.1", b.port))
        sock.settimeout(120)
        buf = b""
        for i, (pairs, why) in enumerate(cases):
            sock.sendall(raw_box([(b"_ask", b"%d" % i), (b"_command", b"Sum")] + pairs))
            got, buf = read_box(sock, buf)
            d = dict(got)
            assert d.get(b"_error_code") == b"BAD_ARGUMENTS", (pairs, got)
            assert why.encode() in d[b"_error_description"], (pairs, got)
        assert not log.exists()  # no child ran
        sock.sendall(raw_box([(b"_ask", b"x"), (b"_command", b"Fixed"), (b"a", b"one")]))
        got, buf = read_box(sock, buf)
        assert dict(got).get(b"_error_code") == b"BAD_ARGUMENTS", got
        assert call(b.endpoint, "Sum", "a=99999999999999999999999", "b=-2") == {"total": 3}
        assert call(b.endpoint, "Sum", "a=1") == {"total": 3}
        assert [json.loads(line) for line in log.read_text().splitlines()] == [
            {"command": "Sum", "arguments": {"a": 99999999999999999999999, "b": -2}},
            {"command": "Sum", "arguments": {"a": 1}}]
        sock.close()
        for server in (s, fixed):
            status, _, err = server.stop()
            assert status == 0, err
    finally:
        b.stop()
