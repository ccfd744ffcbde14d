"""amp-cli call with command signatures, commands and stats, against a real
amp-broker with a Twisted provider that registers Sum with its signature
(python/amp_signature.py). JSON when stdout is a pipe; the readable form
under a pseudo-terminal (pexpect)."""
import json
import os

import pexpect
import pytest

from conftest import Proc
from test_broker import broker, provider
from test_cli_bus import cli, env
from test_twisted_interop import AMP_CLI, HERE, twisted_server

HELPER = os.path.join(HERE, "python", "amp_signature.py")
SUM = ("Sum(a: Integer, b: Integer?, tags: ListOf(Unicode)?) -> "
       "(total: Integer, parts: AmpList(name: String, value: Float)) ! ZERO_DIVISION, OVERFLOW")
BAD_INPUT, USAGE, REMOTE, CONN = 1, 2, 4, 5


@pytest.fixture
def bus():
    """A broker and the Twisted provider of Sum, registered with its signature."""
    b = broker()
    p = Proc(["/usr/bin/python3", HELPER, "provide", b.endpoint], r"^ready")
    yield b
    p.stop()
    b.stop()


def on_tty(*argv, **extra):
    """Run amp-cli with stdout on a pseudo-terminal: (exit status, text)."""
    child = pexpect.spawn(AMP_CLI, list(argv), env=env(**extra), encoding="utf-8", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before.replace("\r\n", "\n")


def routed(b):
    return json.loads(cli("stats", "--server", b.endpoint).stdout)["calls_routed"]


def test_call_converts_by_signature_and_prints_typed_json(bus):
    p = cli("call", "--server", bus.endpoint, "Sum", "a=1", "b=2", 'tags=["x","y"]')
    assert json.loads(p.stdout) == {"total": 3, "parts": [{"name": "a", "value": 1.0}]}
    # Integers of any size, their digits verbatim
    p = cli("call", "--server", bus.endpoint, "Sum", "a=123456789012345678901234567890", "b=1")
    assert b'"total":123456789012345678901234567891' in p.stdout
    assert json.loads(p.stdout)["total"] == 123456789012345678901234567891
    # an explicit type wins over the declared one: hex 31 is the digit 1
    p = cli("call", "--server", bus.endpoint, "Sum", "a:hex=31", "b=5")
    assert json.loads(p.stdout)["total"] == 6


def test_call_refuses_unknown_missing_and_mistyped_arguments_locally(bus):
    before = routed(bus)
    for args, why in ((["a=1", "c=2"], "unknown argument 'c'"),
                      (["b=2"], "missing argument 'a'"),
                      (["a=x"], "argument 'a=x': 'x' is not an integer"),
                      (["a=1", "tags=[1"], "bad JSON")):
        p = cli("call", "--server", bus.endpoint, "Sum", *args, check=False)
        assert p.returncode == BAD_INPUT, p
        assert p.stdout == b""
        assert why in p.stderr.decode(), p.stderr
        if "unknown" in why or "missing" in why:
            assert "(declared: %s)" % SUM in p.stderr.decode(), p.stderr
    assert routed(bus) == before  # nothing reached the provider


def test_call_without_signature_keeps_strings(bus):
    # --no-signature: nothing asked, values as typed on the command line
    p = cli("call", "--no-signature", "--server", bus.endpoint, "Sum", "a:int=4")
    assert json.loads(p.stdout)["total"] == "4"
    # ... and no local check: an undeclared key goes to the peer (Twisted ignores it)
    p = cli("call", "--no-signature", "--server", bus.endpoint, "Sum", "a=4", "c=1")
    assert json.loads(p.stdout)["total"] == "4"
    # a command registered without a signature (Twisted's own provider)
    b = broker()
    prov = provider("twisted", b.endpoint)
    try:
        p = cli("call", "--server", b.endpoint, "Sum", "a:int=13", "b:int=81", "c=anything")
        assert json.loads(p.stdout)["total"] == "94"
    finally:
        prov.stop()
        b.stop()


def test_call_reads_as_key_value_lines_on_a_terminal(bus):
    status, out = on_tty("call", "--server", bus.endpoint, "Sum", "a=1", "b=2")
    assert status == 0
    assert out == 'parts = [{"name":"a","value":1.0}]\ntotal = 3\n' or \
        out == 'total = 3\nparts = [{"name":"a","value":1.0}]\n', out
    status, out = on_tty("call", "--json", "--server", bus.endpoint, "Sum", "a=1")
    assert status == 0 and json.loads(out)["total"] == 1


def test_commands_lists_signatures_as_json_lines(bus):
    b = bus
    prov = Proc(["/usr/bin/python3", HELPER, "provide", b.endpoint], r"^ready")  # a second one
    try:
        p = cli("commands", "--server", b.endpoint)
        items = [json.loads(line) for line in p.stdout.splitlines()]
        assert len(items) == 1
        item = items[0]
        assert item["command"] == "Sum" and item["policy"] == "roundrobin"
        assert item["providers"] == 2
        sig = item["signature"]
        assert sig["notation"] == SUM
        assert sig["arguments"] == [
            {"name": "a", "type": "Integer", "optional": False},
            {"name": "b", "type": "Integer", "optional": True},
            {"name": "tags", "type": "ListOf(Unicode)", "optional": True}]
        assert sig["response"] == [{"name": "total", "type": "Integer"},
                                   {"name": "parts", "type": "AmpList(name: String, value: Float)"}]
        assert sig["errors"] == ["ZERO_DIVISION", "OVERFLOW"]
    finally:
        prov.stop()


def test_commands_pattern_and_commands_without_signature(bus):
    prov = provider("twisted", bus.endpoint, "chat.Echo")  # no signature
    try:
        names = lambda *a: [json.loads(l)["command"]  # noqa: E731
                            for l in cli("commands", "--json", "--server", bus.endpoint,
                                         *a).stdout.splitlines()]
        assert sorted(names()) == ["Sum", "chat.Echo"]
        assert names("chat.*") == ["chat.Echo"]
        assert names("S?m") == ["Sum"]
        assert names("Sum") == ["Sum"]  # a plain name: the broker's filter
        assert names("Nothing") == [] and names("x*") == []
        item = json.loads(cli("commands", "--server", bus.endpoint, "chat.Echo").stdout)
        assert item["signature"] is None and item["providers"] == 1
    finally:
        prov.stop()


def test_commands_is_a_table_on_a_terminal(bus):
    status, out = on_tty("commands", "--server", bus.endpoint)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["COMMAND", "POLICY", "PROVIDERS", "SIGNATURE"]
    assert lines[1].startswith("Sum      roundrobin  1          (a: Integer, b: Integer?"), lines
    assert lines[1].endswith(SUM[len("Sum"):]), lines
    # the columns line up: each header starts where its values do
    assert lines[0].index("SIGNATURE") == lines[1].index("(a: Integer")
    status, out = on_tty("commands", "--json", "--server", bus.endpoint)
    assert status == 0 and json.loads(out)["signature"]["notation"] == SUM
    # nothing to list: a sentence, not a bare header
    status, out = on_tty("commands", "--server", bus.endpoint, "Nothing*")
    assert status == 0 and out.strip() == "no command matches 'Nothing*' (or none you may see)"
    empty = broker()
    try:
        status, out = on_tty("commands", "--server", empty.endpoint)
        assert status == 0 and out.strip() == "no commands on the bus (or none you may see)"
    finally:
        empty.stop()


def test_stats_json_has_numbers_and_errors_by_code(bus):
    cli("call", "--server", bus.endpoint, "Nope", check=False)  # UNHANDLED, counted
    p = cli("stats", "--server", bus.endpoint)
    stats = json.loads(p.stdout)
    assert p.stdout.count(b"\n") == 1
    assert isinstance(stats["connections"], int) and stats["connections"] >= 2
    assert stats["commands"] == 1
    assert all(isinstance(v, int) for k, v in stats.items() if k != "errors")
    assert stats["errors"]["UNHANDLED"] >= 1
    assert all(isinstance(v, int) for v in stats["errors"].values())


def test_stats_is_a_table_on_a_terminal(bus):
    cli("call", "--server", bus.endpoint, "Nope", check=False)
    status, out = on_tty("stats", "--server", bus.endpoint)
    assert status == 0
    counters, errors = out.split("\n\n")
    rows = [line.split() for line in counters.splitlines()]
    assert rows[0] == ["COUNTER", "VALUE"]
    table = dict(rows[1:])
    assert table["commands"] == "1" and int(table["uptime_seconds"]) >= 0
    widths = {line.index(line.split()[1]) for line in counters.splitlines()}
    assert len(widths) == 1  # one value column
    erows = [line.split() for line in errors.splitlines()]
    assert erows[0] == ["ERROR", "COUNT"] and ["UNHANDLED", "1"] in erows
    status, out = on_tty("stats", "--json", "--server", bus.endpoint)
    assert status == 0 and isinstance(json.loads(out)["connections"], int)


def test_sub_reads_as_name_and_key_values_on_a_terminal(bus):
    child = pexpect.spawn(AMP_CLI, ["sub", "--count", "1", "--server", bus.endpoint, "chat.>"],
                          env=env(), encoding="utf-8", timeout=60)
    child.expect_exact("amp-cli sub: subscribed")
    cli("pub", "--server", bus.endpoint, "chat.room1", "text=hi there", "n:int=7")
    child.expect_exact("chat.room1  text=hi there n=7\r\n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    child = pexpect.spawn(AMP_CLI, ["sub", "--json", "--count", "1", "--server",
                                    bus.endpoint, "chat.>"],
                          env=env(), encoding="utf-8", timeout=60)
    child.expect_exact("amp-cli sub: subscribed")
    cli("pub", "--server", bus.endpoint, "chat.room1", "text=hi")
    child.expect_exact('{"_command":"chat.room1","text":"hi"}\r\n')
    child.expect(pexpect.EOF)


def test_listen_reads_as_name_and_key_values_on_a_terminal():
    # --count 1: the look-up is shown but only the call counts
    child = pexpect.spawn(AMP_CLI, ["listen", "--count", "1", "tcp:0:interface=127.0.0.1"],
                          env=env(), encoding="utf-8", timeout=60)
    child.expect(r"\(port (\d+)\)")
    ep = "tcp:127.0.0.1:%s" % child.match.group(1)
    cli("call", ep, "Sum", "a:int=13")  # the signature look-up, then the call
    child.expect_exact("amp.Commands  command=Sum\r\n")
    child.expect_exact("Sum  a=13\r\n")
    child.expect(pexpect.EOF)


def test_exit_statuses_of_commands_and_stats(bus):
    for verb in ("commands", "stats"):
        p = cli(verb, "--server", "tcp:127.0.0.1:1", check=False)
        assert p.returncode == CONN and p.stderr.startswith(b"amp-cli %s: " % verb.encode())
        p = cli(verb, check=False)  # no endpoint at all
        assert p.returncode == USAGE and b"no endpoint" in p.stderr, p
        p = cli(verb, "--timeout", "0", "--server", bus.endpoint, check=False)
        assert p.returncode == USAGE and b"--timeout needs a positive number" in p.stderr
        p = cli(verb, "--bogus", check=False)
        assert p.returncode == USAGE
        p = cli(verb, "--help")
        assert b"--json" in p.stdout
    p = cli("stats", "--server", bus.endpoint, "extra", check=False)
    assert p.returncode == USAGE
    p = cli("commands", "--server", bus.endpoint, "a", "b", check=False)
    assert p.returncode == USAGE
    # a peer that is not a broker (Twisted's AMP server) has no amp.Commands
    srv = twisted_server("tcp:0:interface=127.0.0.1")
    try:
        ep = "tcp:127.0.0.1:%d" % srv.port
        p = cli("commands", "--server", ep, check=False)
        assert p.returncode == REMOTE and p.stderr.startswith(b"UNHANDLED: "), p
        p = cli("stats", "--server", ep, check=False)
        assert p.returncode == REMOTE and p.stderr.startswith(b"UNHANDLED: "), p
        # and call still works with it, without a signature
        p = cli("call", ep, "Sum", "a:int=1", "b:int=2")
        assert p.stdout == b'{"total":"3"}\n'
    finally:
        srv.stop()
