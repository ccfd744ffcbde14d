"""amp-cli never writes a peer's control bytes raw to a person's terminal.

A hostile provider (raw socket, through a real amp-broker) registers a
command whose name carries terminal escapes, answers with keys and values
that carry them, fails with an error code and description that carry them,
and publishes an event named with them: ESC sequences (window title, clear
screen, colours), BEL, CR, C1 controls as lone bytes and as UTF-8, bytes that
are not UTF-8. Readable output (under a pseudo-terminal) shows them as
visible escapes (\\x1b, \\n, \\u009b, \\xff); JSON output keeps the exact
bytes (lone surrogates for the bytes that are not UTF-8). Where only a broker
could send the hostile text (refusals of amp.Register and amp.Login, the
stats table), a fake broker on a raw socket sends it."""
import json
import re
import socket
import threading

import pexpect

from test_broker import broker, raw_box, read_box
from test_cli_bus import cli, env
from test_cli_shell import Shell
from test_twisted_interop import AMP_CLI

REMOTE, AUTH = 4, 7
# what a peer would love a terminal to act on
HOSTILE = b"\x1b]0;pwned\x07\x1b[2J\x1b[31mred\rfake\x9b1m\xc2\x9b2m\xff\xc2\x85end"
NAME = b"Evil" + HOSTILE  # a name only a hostile server lists: the broker refuses it
KEY = b"k\x1b[5m\x07"
ERROR_CODE = b"OOPS\x1b[2J\x9b"
ERROR_DESCRIPTION = b"desc" + HOSTILE + b"\nfake: line"
EVENT = b"ev.x\x1b[2J\x9b\xff"


def raw_control(data):
    """The terminal-acting bytes in data (bytes as a terminal got them, the
    pty's own \\r\\n line ends left out): C0 but \\r\\n, DEL, lone C1 and
    invalid UTF-8, C1 as UTF-8."""
    text = data.replace(b"\r\n", b"\n")
    found = [c for c in text if (c < 0x20 and c != 0x0A) or c == 0x7F]
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as e:
        return found + ["not UTF-8: %r" % e]
    return found + [c for c in decoded if 0x80 <= ord(c) <= 0x9F]


def as_bytes(s):
    """A JSON string of amp-cli back to the bytes it stands for."""
    return s.encode("utf-8", "surrogateescape")


class HostileProvider:
    """Registers Evil and Evident through the broker and answers each call:
    'Evident' with hostile keys and values, Evil with a hostile error. (A
    hostile command name itself is refused by the broker: see
    listed_by_a_hostile_server for one that lists it.)"""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(30)
        self.buf = b""
        for i, name in enumerate((b"Evil", b"Evident")):
            self.sock.sendall(raw_box([(b"_ask", b"r%d" % i), (b"_command", b"amp.Register"),
                                       (b"command", name)]))
            pairs, self.buf = read_box(self.sock, self.buf)
            assert pairs == [(b"_answer", b"r%d" % i)], pairs
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            while True:
                pairs, self.buf = read_box(self.sock, self.buf)
                box = dict(pairs)
                if box.get(b"_command") == b"Evil":
                    self.sock.sendall(raw_box([(b"_error", box[b"_ask"]),
                                               (b"_error_code", ERROR_CODE),
                                               (b"_error_description", ERROR_DESCRIPTION)]))
                elif b"_ask" in box:
                    self.sock.sendall(raw_box([(b"_answer", box[b"_ask"]), (b"v", HOSTILE),
                                               (KEY, b"x"), (b"ok", b"plain")]))
        except (OSError, AssertionError):
            return  # closed at the end of the test

    def publish(self):
        self.sock.sendall(raw_box([(b"_command", EVENT), (KEY, HOSTILE)]))

    def close(self):
        self.sock.close()


def on_pty(*argv):
    """amp-cli with stdout and stderr on a pseudo-terminal: (status, bytes)."""
    child = pexpect.spawn(AMP_CLI, list(argv), env=env(), timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


def hostile_bus():
    b = broker()
    return b, HostileProvider(b.port)


def test_call_answer_keys_and_values_are_escaped_on_a_terminal():
    b, prov = hostile_bus()
    try:
        status, out = on_pty("call", "--server", b.endpoint, "Evident")
        assert status == 0, out
        assert raw_control(out) == [], out
        assert (b"v = \\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred\\rfake\\x9b1m\\u009b2m\\xff"
                b"\\u0085end\r\n") in out, out
        assert b"k\\x1b[5m\\x07 = x\r\n" in out, out
        assert b"ok = plain\r\n" in out, out  # plain text passes unchanged
        # JSON: the exact bytes, also on a terminal
        status, out = on_pty("call", "--json", "--server", b.endpoint, "Evident")
        assert raw_control(out) == [], out
        answer = json.loads(out.decode())
        assert [(as_bytes(k), as_bytes(v)) for k, v in answer.items()] == \
            [(b"v", HOSTILE), (KEY, b"x"), (b"ok", b"plain")]
        p = cli("call", "--server", b.endpoint, "Evident")  # stdout a pipe: JSON
        assert {as_bytes(k): as_bytes(v) for k, v in json.loads(p.stdout).items()}[b"v"] \
            == HOSTILE
    finally:
        prov.close()
        b.stop()


def test_call_error_code_and_description_are_escaped():
    b, prov = hostile_bus()
    try:
        name = "Evil"
        p = cli("call", "--server", b.endpoint, name, check=False)
        assert p.returncode == REMOTE, p
        assert raw_control(p.stderr) == [], p.stderr
        assert p.stderr == (b"OOPS\\x1b[2J\\x9b: desc\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred"
                            b"\\rfake\\x9b1m\\u009b2m\\xff\\u0085end\\nfake: line\n"), p.stderr
        status, out = on_pty("call", "--server", b.endpoint, name)
        assert status == REMOTE and raw_control(out) == [], out
    finally:
        prov.close()
        b.stop()


def listed_by_a_hostile_server():
    """A fake broker whose amp.Commands lists NAME and Evident (a real broker
    refuses to register NAME) and that answers other calls as Evident does."""
    listing = b"".join(raw_box([(b"command", n), (b"policy", b"roundrobin"),
                                (b"providers", b"1")]) for n in (NAME, b"Evident"))

    def answer(box):
        if box.get(b"_command") == b"amp.Commands":
            return [(b"_answer", box[b"_ask"]), (b"commands", listing)]
        return [(b"_answer", box[b"_ask"]), (b"v", HOSTILE), (KEY, b"x"), (b"ok", b"plain")]
    return FakeBroker(answer)


def test_the_broker_refuses_a_hostile_command_name():
    b = broker()
    sock = socket.create_connection(("127.0.0.1", b.port))
    try:
        sock.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Register"), (b"command", NAME)]))
        pairs, _ = read_box(sock, b"")
        assert dict(pairs)[b"_error_code"] == b"BAD_REQUEST", pairs
    finally:
        sock.close()
        b.stop()


def test_commands_table_escapes_names_and_keeps_columns_aligned():
    fake = listed_by_a_hostile_server()
    try:
        status, out = on_pty("commands", "--server", fake.endpoint)
        assert status == 0, out
        assert raw_control(out) == [], out
        lines = out.decode().split("\r\n")
        evil = [ln for ln in lines if ln.startswith("Evil")]
        assert evil == [next(ln for ln in lines if ln.startswith("Evil\\x1b]0;pwned\\x07"))]
        # the POLICY column starts at the same place on every row
        header = lines[0]
        col = header.index("POLICY")
        for ln in lines[1:]:
            if ln:
                assert re.match(r"\S+ {2,}$", ln[:col]) and ln[col] != " ", (ln, col)
    finally:
        fake.close()
    fake = listed_by_a_hostile_server()
    try:
        # JSON: the name's exact bytes, once
        p = cli("commands", "--server", fake.endpoint)
        names = [as_bytes(json.loads(ln)["command"]) for ln in p.stdout.splitlines()]
        assert sorted(names) == sorted([NAME, b"Evident"])
    finally:
        fake.close()


def test_sub_event_names_keys_and_values_are_escaped_on_a_terminal():
    b, prov = hostile_bus()
    try:
        child = pexpect.spawn(AMP_CLI, ["sub", "--count", "1", "--server", b.endpoint, "ev.>"],
                              env=env(), timeout=60)
        child.expect_exact(b"amp-cli sub: subscribed")
        prov.publish()
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert raw_control(child.before) == [], child.before
        assert b"ev.x\\x1b[2J\\x9b\\xff  k\\x1b[5m\\x07=\\x1b]0;pwned" in child.before
        # JSON lines keep the bytes
        sub = pexpect.spawn(AMP_CLI, ["sub", "--json", "--count", "1", "--server", b.endpoint,
                                      "ev.>"], env=env(), timeout=60)
        sub.expect_exact(b"amp-cli sub: subscribed")
        prov.publish()
        sub.expect(b"(\\{.*\\})\r\n")
        event = json.loads(sub.match.group(1).decode())
        assert [(as_bytes(k), as_bytes(v)) for k, v in event.items()] == \
            [(b"_command", EVENT), (KEY, HOSTILE)]
        sub.expect(pexpect.EOF)
    finally:
        prov.close()
        b.stop()


def test_shell_escapes_answers_events_and_listings_and_never_completes_a_hostile_name(
        tmp_path):
    b, prov = hostile_bus()
    try:
        sh = Shell(tmp_path, b.endpoint)
        sh.prompt()
        out = sh.line("Evident")
        assert "ok = plain" in out, out
        out = sh.line("sub ev.>")
        prov.publish()
        sh.child.expect_exact("ev.x\\x1b[2J\\x9b\\xff  k\\x1b[5m\\x07=")
        sh.child.send("\x04")
        assert sh.finish() == 0
        shown = "".join(sh.transcript).encode("utf-8", "surrogateescape")
        # the editor's own escapes (cursor moves, clearing a line) are CSI
        # sequences amp-cli writes itself; none of the peer's bytes is there
        assert b"pwned\x07" not in shown and b"\x9b" not in shown, shown
        assert b"\xc2\x9b" not in shown and b"\x1b]0;" not in shown, shown
    finally:
        prov.close()
        b.stop()
    fake = listed_by_a_hostile_server()
    try:
        sh = Shell(tmp_path, fake.endpoint)
        sh.prompt()
        # 'Evi' + Tab: only Evident is offered (the hostile name is left out),
        # so it completes at once
        out = sh.line("Evi\t")
        assert "ok = plain" in out, out
        out = sh.line("commands")
        assert "Evil\\x1b]0;pwned\\x07" in out, out
        sh.child.send("\x04")
        assert sh.finish() == 0
        shown = "".join(sh.transcript).encode("utf-8", "surrogateescape")
        assert b"pwned\x07" not in shown and b"\x1b]0;" not in shown, shown
    finally:
        fake.close()


class FakeBroker:
    """A listening raw socket answering every call of one connection with
    `answer(box)` (box: the call's pairs as a dict; returns a list of pairs):
    stands in for a broker that says what a test needs. The calls are kept in
    .calls."""

    def __init__(self, answer):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.endpoint = "tcp:127.0.0.1:%d" % self.listener.getsockname()[1]
        self.answer = answer
        self.calls = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(30)
            buf = b""
            while True:
                pairs, buf = read_box(conn, buf)
                box = dict(pairs)
                self.calls.append(box)
                conn.sendall(raw_box(self.answer(box)))
        except (OSError, AssertionError, KeyError):
            return

    def close(self):
        self.listener.close()


def refuse(tag):
    return [(b"_error", tag), (b"_error_code", ERROR_CODE),
            (b"_error_description", ERROR_DESCRIPTION)]


ESCAPED_ERROR = (b"OOPS\\x1b[2J\\x9b: desc\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred\\rfake"
                 b"\\x9b1m\\u009b2m\\xff\\u0085end\\nfake: line\n")


def test_login_refusal_is_escaped(tmp_path):
    fake = FakeBroker(lambda box: refuse(box[b"_ask"]))
    try:
        secret = tmp_path / "pw"
        secret.write_text("pw\n")
        p = cli("stats", "--server", fake.endpoint, "--user", "me", "--password-file",
                str(secret), check=False)
        assert p.returncode == AUTH, p
        assert p.stderr == b"amp-cli stats: login as me refused: " + ESCAPED_ERROR, p.stderr
    finally:
        fake.close()


def test_serve_registration_refusal_is_escaped():
    fake = FakeBroker(lambda box: refuse(box[b"_ask"]))
    try:
        p = cli("serve", "--server", fake.endpoint, "Sum", "--answer", "x=1", check=False)
        assert p.returncode == REMOTE, p
        assert p.stderr == b"amp-cli serve: registering Sum refused: " + ESCAPED_ERROR, p.stderr
    finally:
        fake.close()


def test_stats_table_escapes_keys_and_values():
    fake = FakeBroker(lambda box: [(b"_answer", box[b"_ask"]), (b"calls\x1b[2J", HOSTILE),
                                   (b"connections", b"3")])
    try:
        status, out = on_pty("stats", "--server", fake.endpoint)
        assert status == 0, out
        assert raw_control(out) == [], out
        assert b"calls\\x1b[2J  \\x1b]0;pwned\\x07" in out, out
    finally:
        fake.close()
