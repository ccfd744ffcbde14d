"""amp-cli lists the broker's commands page by page (amp.Commands `after`,
answered with `more` while more remain): `amp-cli commands` and the shell's
command cache (completion, help, commands). Against a real broker with more
signatures than one answer holds; against fake brokers (raw sockets) for
what a real one does rarely: OVERLOADED, a broker without paging, pages that
do not advance, more pages than the cap."""
import json
import socket

from test_broker import broker, raw_box, read_box
from test_cli_bus import cli
from test_cli_escapes import FakeBroker, on_pty
from test_cli_shell import Shell

BAD_INPUT, REMOTE = 1, 4


def amplist(items):
    """An AmpList value: each item a list of (key, value) pairs."""
    return b"".join(raw_box(item) for item in items)


def item(name, providers=b"1"):
    return [(b"command", name), (b"policy", b"roundrobin"), (b"providers", providers)]


def paging_broker(names, per_page, repeat_last=False):
    """A fake broker with `names` (sorted), `per_page` to an answer. With
    repeat_last a page also starts with the previous page's last name (which
    amp-cli must not list twice)."""
    names = sorted(names)

    def answer(box):
        if box.get(b"_command") != b"amp.Commands":
            return [(b"_answer", box[b"_ask"])]
        after = box.get(b"after")
        if after is None:  # a listing without paging: all of it
            return [(b"_answer", box[b"_ask"]), (b"commands", amplist(map(item, names)))]
        rest = [n for n in names if n > after]
        page = rest[:per_page]
        if repeat_last and after:
            page = [after] + page
        more = b"True" if len(rest) > per_page else b"False"
        return [(b"_answer", box[b"_ask"]), (b"commands", amplist(map(item, page))),
                (b"more", more)]
    return FakeBroker(answer)


def listed(stdout):
    return [json.loads(line)["command"] for line in stdout.splitlines()]


def test_commands_asks_page_after_page_and_lists_each_once():
    names = [b"N%03d" % i for i in range(25)]
    fake = paging_broker(names, 10, repeat_last=True)
    try:
        p = cli("commands", "--server", fake.endpoint)
        assert listed(p.stdout) == [n.decode() for n in names]
        assert p.stderr == b""
        assert [c.get(b"after") for c in fake.calls] == [b"", b"N009", b"N019"]
    finally:
        fake.close()


def test_commands_from_a_broker_without_paging_is_one_answer():
    """A broker that does not know `after` ignores it and answers without
    `more`: the answer is the whole list."""
    names = [b"Old%d" % i for i in range(5)]

    def answer(box):
        return [(b"_answer", box[b"_ask"]), (b"commands", amplist(map(item, names)))]
    fake = FakeBroker(answer)
    try:
        p = cli("commands", "--server", fake.endpoint)
        assert listed(p.stdout) == [n.decode() for n in names]
        assert len(fake.calls) == 1
    finally:
        fake.close()


def test_commands_overloaded_says_so_and_exits_4():
    fake = FakeBroker(lambda box: [(b"_error", box[b"_ask"]), (b"_error_code", b"OVERLOADED"),
                                   (b"_error_description", b"listing budget spent")])
    try:
        p = cli("commands", "--server", fake.endpoint, check=False)
        assert p.returncode == REMOTE, p
        assert p.stdout == b""
        assert p.stderr == (b"OVERLOADED: the broker is too busy to list its commands now "
                            b"(listing budget spent); try again later\n"), p.stderr
    finally:
        fake.close()


def test_commands_refuses_pages_that_do_not_advance():
    """`more` with nothing new would page forever: a malformed answer."""
    fake = FakeBroker(lambda box: [(b"_answer", box[b"_ask"]),
                                   (b"commands", amplist([item(b"Same")])), (b"more", b"True")])
    try:
        p = cli("commands", "--server", fake.endpoint, check=False)
        assert p.returncode == BAD_INPUT, p
        assert b"nothing new" in p.stderr, p.stderr
        assert len(fake.calls) == 2  # the second page repeated the first
    finally:
        fake.close()


def test_commands_stops_at_the_page_cap_and_says_the_list_is_cut():
    """A broker that always has one more: amp-cli reads 1,000 pages at most."""
    def answer(box):
        n = len(fake.calls)
        return [(b"_answer", box[b"_ask"]), (b"commands", amplist([item(b"C%07d" % n)])),
                (b"more", b"True")]
    fake = FakeBroker(answer)
    try:
        p = cli("commands", "--server", fake.endpoint)
        assert len(listed(p.stdout)) == 1000
        assert len(fake.calls) == 1000
        assert p.stderr == (b"amp-cli commands: the list is cut after 1000 commands in 1000 "
                            b"pages (the broker has more; a PATTERN without wildcards asks "
                            b"for one)\n"), p.stderr
    finally:
        fake.close()


def test_commands_stops_at_the_command_cap():
    """At most 10,000 commands, however many pages they come in."""
    def answer(box):
        base = len(fake.calls) * 600
        page = [item(b"C%07d" % (base + i)) for i in range(600)]
        return [(b"_answer", box[b"_ask"]), (b"commands", amplist(page)), (b"more", b"True")]
    fake = FakeBroker(answer)
    try:
        p = cli("commands", "--server", fake.endpoint)
        assert len(listed(p.stdout)) == 10000
        assert b"the list is cut after 10000 commands in 17 pages" in p.stderr, p.stderr
    finally:
        fake.close()


# a signature of about 8 KiB: 56 optional arguments with 64-byte names
BIG_TYPE = b"ListOf(ListOf(ListOf(ListOf(Structured))))"


def big_arguments(tag):
    return amplist([[(b"name", (b"%s_%d_" % (tag, i)).ljust(64, b"n")), (b"type", BIG_TYPE),
                     (b"optional", b"True")] for i in range(56)])


def register(sock, buf, name, *extra):
    sock.sendall(raw_box([(b"_ask", b"r"), (b"_command", b"amp.Register"),
                          (b"command", name), *extra]))
    pairs, buf = read_box(sock, buf)
    assert pairs == [(b"_answer", b"r")], pairs
    return buf


def test_commands_and_the_shell_page_through_a_real_broker(tmp_path):
    """20 commands with 8 KiB signatures (over 64 KiB in all) and one more
    after them: every one listed once, and the shell completes the last."""
    b = broker()
    provs = []
    try:
        for i in range(20):
            s = socket.create_connection(("127.0.0.1", b.port))
            s.settimeout(30)
            provs.append(s)
            name = b"Big%02d" % i
            register(s, b"", name, (b"arguments", big_arguments(name)))
        register(provs[0], b"", b"Zeta",
                 (b"arguments", amplist([[(b"name", b"xvalue"), (b"type", b"Integer")]])))
        p = cli("commands", "--server", b.endpoint)
        got = [json.loads(line) for line in p.stdout.splitlines()]
        names = [g["command"] for g in got]
        assert names == ["Big%02d" % i for i in range(20)] + ["Zeta"], names
        assert sum(len(g["signature"]["notation"]) for g in got) > 65535
        assert all(len(g["signature"]["arguments"]) == 56 for g in got[:20])
        # the table on a terminal has them all
        status, out = on_pty("commands", "--server", b.endpoint)
        assert status == 0, out
        rows = [ln for ln in out.split(b"\r\n")[1:] if ln]
        assert [r.split()[0] for r in rows] == [n.encode() for n in names]
        # the shell's cache: completion and help find Zeta, listed after the big ones
        sh = Shell(tmp_path, b.endpoint)
        sh.prompt()
        out = sh.line("help Zet\t")
        assert "Zeta(xvalue: Integer)" in out, out
        out = sh.line("commands")
        shown = out.split("\r\n")
        assert sum(ln.startswith("Big") for ln in shown) == 20, shown[:2]
        assert "Zeta(xvalue: Integer)" in shown, shown[-3:]
        sh.child.send("\x04")
        assert sh.finish() == 0
    finally:
        for s in provs:
            s.close()
        b.stop()


def test_shell_completes_from_every_page_and_says_overloaded(tmp_path):
    names = [b"Cmd%03d" % i for i in range(30)] + [b"Zulu"]
    fake = paging_broker(names, 7)
    try:
        sh = Shell(tmp_path, fake.endpoint)
        sh.prompt()
        out = sh.line("help Zu\t")
        assert "Zulu" in out, out
        # Zulu came on the last of 5 pages
        assert [c.get(b"after") for c in fake.calls if c[b"_command"] == b"amp.Commands"] == \
            [b"", b"Cmd006", b"Cmd013", b"Cmd020", b"Cmd027"]
        fake.answer = lambda box: [(b"_error", box[b"_ask"]),
                                   (b"_error_code", b"OVERLOADED"),
                                   (b"_error_description", b"busy")]
        out = sh.line("commands")
        assert ("amp-cli shell: amp.Commands: OVERLOADED: the broker is too busy to list its "
                "commands now (busy); try again later") in out, out
        sh.child.send("\x04")
        assert sh.finish() == 0
    finally:
        fake.close()


def test_old_brokers_too_large_is_the_brokers_error():
    """A broker without paging whose list does not fit answers TOO_LARGE."""
    fake = FakeBroker(lambda box: [(b"_error", box[b"_ask"]), (b"_error_code", b"TOO_LARGE"),
                                   (b"_error_description", b"the command list is over 65535 "
                                    b"bytes")])
    try:
        p = cli("commands", "--server", fake.endpoint, check=False)
        assert p.returncode == REMOTE
        assert p.stderr == b"TOO_LARGE: the command list is over 65535 bytes\n"
    finally:
        fake.close()

