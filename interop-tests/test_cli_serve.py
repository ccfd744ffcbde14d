"""amp-cli serve: providing commands through a real amp-broker, with fixed
answers (--answer) or a program per call (--exec); callers are amp-cli call,
raw sockets and Twisted."""
import json
import os
import signal
import socket
import subprocess
import time

from conftest import run
from test_auth import files, start  # noqa: F401
from test_broker import broker, raw_box, read_box
from test_cli_bus import cli, env
from test_twisted_interop import AMP_CLI, HERE, TWISTED_PEER

REMOTE_ERROR = 4
CONN_LOST = 5
TIMED_OUT = 6
LOGIN_REFUSED = 7


class Serve:
    """amp-cli serve, started; ready once every registration is answered."""

    def __init__(self, *argv, ready=True, **extra):
        self.proc = subprocess.Popen([AMP_CLI, "serve", *argv], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env(**extra))
        if ready:
            line = self.proc.stderr.readline().decode()
            assert line.startswith("amp-cli serve: serving "), line + self.finish()[2]

    def finish(self, timeout=60):
        out, err = self.proc.communicate(timeout=timeout)
        err = err.decode(errors="replace")
        assert "Sanitizer" not in err, err
        return self.proc.returncode, out.decode(), err

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.finish()

    def children(self):
        """Pids of serve's live or unreaped children."""
        with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
            return f.read().split()


def call(endpoint, *argv, check=True):
    p = cli("call", "--server", endpoint, *argv, check=check)
    return json.loads(p.stdout) if check else p


def error_of(endpoint, *argv):
    """(code, description) of a call answered with an error."""
    p = cli("call", "--server", endpoint, *argv, check=False)
    assert p.returncode == REMOTE_ERROR, (p.returncode, p.stdout, p.stderr)
    code, _, desc = p.stderr.decode().rstrip("\n").partition(": ")
    return code, desc


def script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return "exec sh %s" % path  # the script is the child: its signals are the exit


def wait_for(predicate, what, seconds=60):
    """Poll a condition; the limit is only there to end a broken run."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "gave up waiting for " + what
        time.sleep(0.02)


def test_answer_fixed_values_to_every_command():
    b = broker()
    try:
        s = Serve("--server", b.endpoint, "--answer", "total:int=3", "--answer", "note=hi",
                  "Sum", "Other")
        assert call(b.endpoint, "Sum", "a=1") == {"total": "3", "note": "hi"}
        assert call(b.endpoint, "Other") == {"total": "3", "note": "hi"}
        # a Twisted caller reads the Integer as an Integer
        out = run([TWISTED_PEER[0], "-c", (
            "import sys\n"
            "sys.path.insert(0, %r)\n"
            "from twisted.internet import reactor, endpoints\n"
            "from twisted.protocols import amp\n"
            "class Sum(amp.Command):\n"
            "    arguments = [(b'a', amp.Integer())]\n"
            "    response = [(b'total', amp.Integer()), (b'note', amp.Unicode())]\n"
            "def go(p):\n"
            "    return p.callRemote(Sum, a=1)\n"
            "def done(r):\n"
            "    print(repr(r))\n"
            "    reactor.stop()\n"
            "d = endpoints.connectProtocol(endpoints.clientFromString(reactor, %r), amp.AMP())\n"
            "d.addCallback(go).addBoth(done)\n"
            "reactor.run()\n") % (os.path.join(HERE, "python"), b.endpoint)]).stdout
        assert out == b"{'total': 3, 'note': 'hi'}\n", out
        # nothing to answer with: an empty answer
        s2 = Serve("--server", b.endpoint, "Empty")
        assert call(b.endpoint, "Empty") == {}
        for proc in (s, s2):
            status, _, err = proc.stop(signal.SIGINT)
            assert status == 0, err
    finally:
        b.stop()


def test_exec_gets_the_call_on_stdin_and_answers_from_stdout(tmp_path):
    b = broker()
    seen = tmp_path / "seen"
    cmd = script(tmp_path, "sum.sh",
                 'cat > %s.$$\n'
                 'echo "$AMP_COMMAND" >> %s.$$\n'
                 'mv %s.$$ %s\n'
                 'echo \'{"total": 3, "ok": true, "ratio": 0.5, "text": "d\\u00e9j\\u00e0"}\'\n'
                 'echo \'{"a second line": "is ignored"}\'\n' % (seen, seen, seen, seen))
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, "Sum")
        got = call(b.endpoint, "Sum", "a=1", "b:int=2", "name=x y")
        assert got == {"total": "3", "ok": "True", "ratio": "0.5", "text": "d\u00e9j\u00e0"}
        first, name = seen.read_text().splitlines()
        assert json.loads(first) == {"command": "Sum",
                                     "arguments": {"a": "1", "b": "2", "name": "x y"}}
        assert name == "Sum"
        status, _, err = s.stop()
        assert status == 0, err
    finally:
        b.stop()


SUM = "Sum(a: Integer, b: Integer?) -> (total: Integer, ok: Boolean) ! ZERO_DIVISION"


def twisted_sum(endpoint, **args):
    """A Twisted caller declaring Sum as the signature above: its answer."""
    return run([TWISTED_PEER[0], "-c", (
        "import sys\n"
        "sys.path.insert(0, %r)\n"
        "from twisted.internet import reactor, endpoints\n"
        "from twisted.protocols import amp\n"
        "class Sum(amp.Command):\n"
        "    arguments = [(b'a', amp.Integer()), (b'b', amp.Integer(optional=True))]\n"
        "    response = [(b'total', amp.Integer()), (b'ok', amp.Boolean())]\n"
        "    errors = {Exception: b'ZERO_DIVISION'}\n"
        "def go(p):\n"
        "    return p.callRemote(Sum, **%r)\n"
        "def done(r):\n"
        "    print(repr(r))\n"
        "    reactor.stop()\n"
        "d = endpoints.connectProtocol(endpoints.clientFromString(reactor, %r), amp.AMP())\n"
        "d.addCallback(go).addBoth(done)\n"
        "reactor.run()\n") % (os.path.join(HERE, "python"), args, endpoint)]).stdout.decode()


def test_signature_types_the_answers_and_the_exec_protocol(tmp_path):
    b = broker()
    seen = tmp_path / "seen"
    cmd = script(tmp_path, "sum.sh", (
        'read line\n'
        'echo "$line" > %s.$$; mv %s.$$ %s\n'
        'case "$line" in\n'
        '*\\"a\\":0*) echo \'{"error": "ZERO_DIVISION", "description": "a is 0"}\';;\n'
        '*\\"a\\":7*) echo \'{"total": "seven", "ok": true}\';;\n'
        '*\\"a\\":8*) echo \'{"ok": true}\';;\n'
        '*) echo \'{"total": 123456789012345678901234567890, "ok": false, "note": 1.5}\';;\n'
        'esac\n') % (seen, seen, seen))
    try:
        # fixed answers typed by the declared response
        s = Serve("--server", b.endpoint, "--answer", "total=3", "--answer", "ok=true", SUM)
        # the broker keeps the signature registered with the command
        listed = json.loads(cli("commands", "--server", b.endpoint, "--json").stdout)
        assert listed["command"] == "Sum" and listed["signature"]["notation"] == SUM, listed
        assert twisted_sum(b.endpoint, a=1, b=2) == "{'total': 3, 'ok': True}\n"
        assert call(b.endpoint, "Sum", "a=1") == {"total": 3, "ok": True}
        # another signature for the same command is refused
        p = cli("serve", "--server", b.endpoint, "--answer", "total=1",
                "Sum(a: Unicode) -> (total: Integer)", check=False)
        assert p.returncode == REMOTE_ERROR, p.stderr
        assert b"registering Sum refused: SIGNATURE_CONFLICT" in p.stderr, p.stderr
        status, _, err = s.stop()
        assert status == 0, err
        # --exec: typed JSON in, typed values out
        s = Serve("--server", b.endpoint, "--exec", cmd, SUM)
        got = call(b.endpoint, "Sum", "a=1", "b=2")
        assert got == {"total": 123456789012345678901234567890, "ok": False, "note": "1.5"}
        assert json.loads(seen.read_text()) == {"command": "Sum", "arguments": {"a": 1, "b": 2}}
        assert twisted_sum(b.endpoint, a=4) == \
            "{'total': 123456789012345678901234567890, 'ok': False}\n"
        assert error_of(b.endpoint, "Sum", "a=0") == ("ZERO_DIVISION", "a is 0")
        code, desc = error_of(b.endpoint, "Sum", "a=7")
        assert code == "EXEC_BAD_OUTPUT" and "'total'" in desc, desc
        code, desc = error_of(b.endpoint, "Sum", "a=8")
        assert code == "EXEC_BAD_OUTPUT", desc
        assert "the answer has no 'total' (Integer), which Sum's response declares" in desc
        status, _, err = s.stop()
        assert status == 0, err
    finally:
        b.stop()


def test_signature_lists_and_answer_errors(tmp_path):
    b = broker()
    cmd = script(tmp_path, "stats.sh", (
        'read line\n'
        'echo "$line" > %s/seen\n'
        'echo \'{"mean": 2.0, "names": ["x", "y"], "worst": "nan"}\'\n') % tmp_path)
    sig = "Stats(xs: ListOf(Integer)) -> (mean: Float, names: ListOf(Unicode), worst: Float)"
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, sig)
        got = call(b.endpoint, "Stats", "xs=[1, 2, 3]")
        assert got == {"mean": 2.0, "names": ["x", "y"], "worst": "nan"}
        assert json.loads((tmp_path / "seen").read_text()) == \
            {"command": "Stats", "arguments": {"xs": [1, 2, 3]}}
        status, _, err = s.stop()
        assert status == 0, err
    finally:
        b.stop()
    # mistakes on the command line are found before connecting
    for argv, why in ((["--answer", "ok=true", SUM], b"Sum's response declares 'total'"),
                      (["--answer", "total=abc", "--answer", "ok=true", SUM], b"total=abc"),
                      (["Sum(a: Integr)"], b"Integr"),
                      (["Sum(a: Integer) ->"], b"")):
        p = cli("serve", "--server", "tcp:127.0.0.1:1", *argv, check=False)
        assert p.returncode == 2 and why in p.stderr, (argv, p.stderr)


def test_exec_input_larger_than_a_pipe_and_input_left_unread(tmp_path):
    """The call's line is written without blocking the loop, however large;
    a child that does not read it still answers."""
    b = broker()
    cmd = script(tmp_path, "size.sh", (
        'case "$AMP_COMMAND" in\n'
        'Size) echo "{\\"bytes\\": $(wc -c)}";;\n'
        'Deaf) echo \'{"heard": "nothing"}\';;\n'
        'esac\n'))
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, "Size", "Deaf")
        args = ["x%d=%s" % (i, "y" * 60000) for i in range(4)]
        line = json.dumps({"command": "Size",
                           "arguments": {"x%d" % i: "y" * 60000 for i in range(4)}},
                          separators=(",", ":"))
        assert call(b.endpoint, "Size", *args) == {"bytes": str(len(line) + 1)}
        assert call(b.endpoint, "Deaf", *args) == {"heard": "nothing"}
        status, _, err = s.stop()
        assert status == 0, err
    finally:
        b.stop()


def test_exec_error_object_exit_status_signal_and_bad_output(tmp_path):
    b = broker()
    cmd = script(tmp_path, "many.sh", (
        'read line\n'
        'case "$AMP_COMMAND" in\n'
        'Err) echo \'{"error": "ZERO_DIVISION", "description": "b is 0"}\'; exit 1;;\n'
        'Fail) echo "first problem" >&2; echo "second" >&2; exit 3;;\n'
        'Quiet) exit 2;;\n'
        'Killed) kill -9 $$;;\n'
        'NotJson) echo "hello";;\n'
        'Array) echo \'[1, 2]\';;\n'
        'Nested) echo \'{"x": {"y": 1}}\';;\n'
        'Reserved) echo \'{"_answer": "1"}\';;\n'
        'Nothing) ;;\n'
        'Huge) head -c 1100000 /dev/zero | tr "\\0" x;;\n'
        'Noisy) head -c 10000 /dev/zero | tr "\\0" e >&2; echo \'{}\';;\n'
        'esac\n'))
    names = ["Err", "Fail", "Quiet", "Killed", "NotJson", "Array", "Nested", "Reserved",
             "Nothing", "Huge", "Noisy"]
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, *names)
        assert error_of(b.endpoint, "Err") == ("ZERO_DIVISION", "b is 0")
        assert error_of(b.endpoint, "Fail") == ("EXEC_FAILED", "exit status 3: first problem")
        assert error_of(b.endpoint, "Quiet") == ("EXEC_FAILED", "exit status 2")
        assert error_of(b.endpoint, "Killed") == ("EXEC_FAILED", "killed by signal 9")
        code, desc = error_of(b.endpoint, "NotJson")
        assert code == "EXEC_BAD_OUTPUT" and "not one JSON object" in desc, desc
        code, desc = error_of(b.endpoint, "Array")
        assert code == "EXEC_BAD_OUTPUT" and "not an object" in desc, desc
        code, desc = error_of(b.endpoint, "Nested")
        assert code == "EXEC_BAD_OUTPUT" and "key 'x': an undeclared key needs a string" in desc, desc
        code, desc = error_of(b.endpoint, "Reserved")
        assert code == "EXEC_BAD_OUTPUT" and "'_answer' is not allowed" in desc, desc
        code, desc = error_of(b.endpoint, "Nothing")
        assert code == "EXEC_BAD_OUTPUT" and "no answer" in desc, desc
        code, desc = error_of(b.endpoint, "Huge")
        assert code == "EXEC_BAD_OUTPUT" and "more than 1048576 bytes" in desc, desc
        assert call(b.endpoint, "Noisy") == {}
        status, _, err = s.stop()
        assert status == 0, err
        # stderr passes through, capped per call
        assert "first problem\nsecond\n" in err
        assert "e" * 4096 + "\n... (truncated)\n" in err and "e" * 4097 not in err
    finally:
        b.stop()


def test_exec_timeout_kills_the_process_group(tmp_path):
    b = broker()
    pidfile = tmp_path / "bg.pid"
    cmd = script(tmp_path, "slow.sh", "sleep 1000 &\necho $! > %s.tmp\nmv %s.tmp %s\nwait\n"
                 % (pidfile, pidfile, pidfile))
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, "--exec-timeout", "0.5", "Slow")
        code, desc = error_of(b.endpoint, "Slow")
        assert code == "TIMEOUT" and "longer than 0.5 s" in desc, desc
        # the shell's background child was in its group: gone too
        bg = int(pidfile.read_text())
        wait_for(lambda: not os.path.exists("/proc/%d" % bg), "the background sleep to die")
        assert s.children() == []
        status, _, err = s.stop()
        assert status == 0, err
    finally:
        b.stop()


def test_calls_run_concurrently(tmp_path):
    """The first call's script waits until the second one's has run: served
    one after the other, the first would never end."""
    b = broker()
    cmd = script(tmp_path, "pair.sh", (
        'read line\n'
        'case "$line" in\n'
        '*first*) touch %(d)s/started; while [ ! -e %(d)s/second ]; do sleep 0.02; done;'
        ' echo \'{"who": "first"}\';;\n'
        '*) touch %(d)s/second; echo \'{"who": "second"}\';;\n'
        'esac\n') % {"d": tmp_path})
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, "--exec-timeout", "120", "Pair")
        first = subprocess.Popen([AMP_CLI, "call", "--server", b.endpoint, "--timeout", "120",
                                  "Pair", "n=first"], stdout=subprocess.PIPE, env=env())
        wait_for(lambda: (tmp_path / "started").exists(), "the first script to start")
        assert call(b.endpoint, "Pair", "n=second") == {"who": "second"}
        out, _ = first.communicate(timeout=120)
        assert json.loads(out) == {"who": "first"}
        status, _, err = s.stop()
        assert status == 0, err
    finally:
        b.stop()


def test_max_concurrent_and_max_queue_answer_overloaded(tmp_path):
    b = broker()
    cmd = script(tmp_path, "gate.sh", (
        'read line\n'
        'touch %(d)s/started.$$\n'
        'while [ ! -e %(d)s/release ]; do sleep 0.02; done\n'
        'echo "{\\"n\\": $(echo "$line" | tr -dc 0-9)}"\n') % {"d": tmp_path})
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, "--exec-timeout", "120",
                  "--max-concurrent", "1", "--max-queue", "1", "Gate")
        first = subprocess.Popen([AMP_CLI, "call", "--server", b.endpoint, "--timeout", "120",
                                  "Gate", "n=1"], stdout=subprocess.PIPE, env=env())
        wait_for(lambda: any(p.name.startswith("started") for p in tmp_path.iterdir()),
                 "the first call's child")
        # one connection, two calls in order: the first waits in the queue,
        # the second finds it full
        sock = socket.create_connection(("127.0.0.1", b.port))
        sock.settimeout(120)
        sock.sendall(raw_box([(b"_ask", b"2"), (b"_command", b"Gate"), (b"n", b"2")]) +
                     raw_box([(b"_ask", b"3"), (b"_command", b"Gate"), (b"n", b"3")]))
        got, buf = read_box(sock, b"")
        assert dict(got)[b"_error"] == b"3", got
        assert dict(got)[b"_error_code"] == b"OVERLOADED", got
        assert b"1 calls running and 1 waiting" in dict(got)[b"_error_description"]
        (tmp_path / "release").touch()
        got, buf = read_box(sock, buf)
        assert dict(got)[b"_answer"] == b"2", got
        assert dict(got)[b"n"] == b"2", got
        out, _ = first.communicate(timeout=120)
        assert json.loads(out) == {"n": "1"}
        sock.close()
        status, _, err = s.stop()
        assert status == 0, err
    finally:
        b.stop()


def test_queued_calls_all_run_when_children_finish(tmp_path):
    b = broker()
    cmd = script(tmp_path, "echo.sh", 'read line\n'
                 'echo "{\\"n\\": \\"$(echo "$line" | tr -dc 0-9)\\"}"\n')
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, "--max-concurrent", "3",
                  "--max-queue", "100", "Echo")
        sock = socket.create_connection(("127.0.0.1", b.port))
        sock.settimeout(120)
        sock.sendall(b"".join(raw_box([(b"_ask", b"%d" % i), (b"_command", b"Echo"),
                                       (b"n", b"%d" % i)]) for i in range(40)))
        buf, answers = b"", {}
        for _ in range(40):
            got, buf = read_box(sock, buf)
            answers[dict(got)[b"_answer"]] = dict(got)[b"n"]
        assert answers == {b"%d" % i: b"%d" % i for i in range(40)}
        sock.close()
        assert s.children() == []
        status, _, err = s.stop()
        assert status == 0, err
    finally:
        b.stop()


def test_policy_conflict_and_two_servers_sharing_a_command():
    b = broker()
    try:
        one = Serve("--server", b.endpoint, "--policy", "roundrobin", "--answer", "who=one",
                    "Shared")
        two = Serve("--server", b.endpoint, "--answer", "who=two", "Shared")
        got = [call(b.endpoint, "Shared")["who"] for _ in range(4)]
        assert got == ["one", "two", "one", "two"], got
        # a registration naming another policy is refused
        p = cli("serve", "--server", b.endpoint, "--policy", "first", "Shared", check=False)
        assert p.returncode == REMOTE_ERROR, p.stderr
        assert b"registering Shared refused: POLICY_CONFLICT" in p.stderr, p.stderr
        # --policy reaches the broker: 'first' sends every call to the first
        first_a = Serve("--server", b.endpoint, "--policy", "first", "--answer", "who=a", "Hot")
        first_b = Serve("--server", b.endpoint, "--answer", "who=b", "Hot")
        assert [call(b.endpoint, "Hot")["who"] for _ in range(3)] == ["a"] * 3
        listed = [json.loads(line) for line in
                  cli("commands", "--server", b.endpoint, "--json").stdout.splitlines()]
        assert {c["command"]: (c["policy"], c["providers"]) for c in listed} == \
            {"Shared": ("roundrobin", 2), "Hot": ("first", 2)}, listed
        for proc in (one, two, first_a, first_b):
            status, _, err = proc.stop()
            assert status == 0, err
    finally:
        b.stop()


def test_count_exits_after_n_answers():
    b = broker()
    try:
        s = Serve("--server", b.endpoint, "--count", "2", "--answer", "x=1", "Counted")
        call(b.endpoint, "Counted")
        call(b.endpoint, "Counted")
        status, _, err = s.finish()
        assert status == 0, err
        # gone with its registration
        code, _ = error_of(b.endpoint, "Counted")
        assert code == "UNHANDLED"
    finally:
        b.stop()


def test_sigint_lets_a_running_child_finish_then_exits_0(tmp_path):
    b = broker()
    cmd = script(tmp_path, "gate.sh", (
        'read line\n'
        'touch %(d)s/started\n'
        'while [ ! -e %(d)s/release ]; do sleep 0.02; done\n'
        'echo \'{"done": "yes"}\'\n') % {"d": tmp_path})
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, "Gate")
        running = subprocess.Popen([AMP_CLI, "call", "--server", b.endpoint, "Gate"],
                                   stdout=subprocess.PIPE, env=env())
        wait_for(lambda: (tmp_path / "started").exists(), "the child to start")
        os.kill(s.proc.pid, signal.SIGINT)
        (tmp_path / "release").touch()
        out, _ = running.communicate(timeout=60)
        assert json.loads(out) == {"done": "yes"}
        status, _, err = s.finish()
        assert status == 0, err
        # idle: exits at once
        s = Serve("--server", b.endpoint, "--answer", "x=1", "Idle")
        status, _, err = s.stop(signal.SIGINT)
        assert status == 0, err
    finally:
        b.stop()


def test_second_signal_kills_the_children_and_their_calls_get_shutting_down(tmp_path):
    b = broker()
    pidfile = tmp_path / "child.pid"
    cmd = script(tmp_path, "stuck.sh", "read line\necho $$ > %s.tmp\nmv %s.tmp %s\n"
                 "sleep 1000\n" % (pidfile, pidfile, pidfile))
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, "Stuck")
        stuck = subprocess.Popen([AMP_CLI, "call", "--server", b.endpoint, "Stuck"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
        wait_for(pidfile.exists, "the child to start")
        child = int(pidfile.read_text())
        os.kill(s.proc.pid, signal.SIGINT)
        # a new call meanwhile is not started (SHUTTING_DOWN, or UNHANDLED once
        # the broker has taken the unregistration)
        code, _ = error_of(b.endpoint, "Stuck")
        assert code in ("SHUTTING_DOWN", "UNHANDLED"), code
        os.kill(s.proc.pid, signal.SIGTERM)
        _, err = stuck.communicate(timeout=60)
        assert stuck.returncode == REMOTE_ERROR, err
        assert err.startswith(b"SHUTTING_DOWN: amp-cli serve is stopping"), err
        status, _, err = s.finish()
        assert status == 0, err
        assert not os.path.exists("/proc/%d" % child)
    finally:
        b.stop()


def test_broker_lost_exits_5():
    b = broker()
    s = Serve("--server", b.endpoint, "--answer", "x=1", "Lost")
    b.stop(signal.SIGKILL)
    status, _, err = s.finish()
    assert status == CONN_LOST and "connection lost" in err, (status, err)


def test_children_are_reaped_and_get_only_stdio(tmp_path):
    b = broker()
    # the descriptors open in the child, probed one by one (listing a
    # directory would open one more)
    probe = script(tmp_path, "fds.py", (
        "import json, os\n"
        "def is_open(fd):\n"
        "    try:\n"
        "        os.fstat(fd)\n"
        "        return True\n"
        "    except OSError:\n"
        "        return False\n"
        "print(json.dumps({'fds': ' '.join(str(fd) for fd in range(1024) if is_open(fd))}))\n"))
    cmd = 'if [ "$AMP_COMMAND" = Bad ]; then kill -9 $$; fi; %s' % probe.replace(
        "exec sh", "exec %s" % TWISTED_PEER[0])
    try:
        s = Serve("--server", b.endpoint, "--exec", cmd, "Fds", "Bad")
        assert call(b.endpoint, "Fds") == {"fds": "0 1 2"}
        open_fds = sorted(os.listdir("/proc/%d/fd" % s.proc.pid))
        for _ in range(5):
            assert error_of(b.endpoint, "Bad")[0] == "EXEC_FAILED"
            call(b.endpoint, "Fds")
        # every child was reaped before its call was answered, and serve
        # closed every pipe it made
        assert s.children() == []
        assert sorted(os.listdir("/proc/%d/fd" % s.proc.pid)) == open_fds
        status, _, err = s.stop()
        assert status == 0, err
    finally:
        b.stop()


def test_login_with_user_and_password_file(files, tmp_path):  # noqa: F811
    b = start(files)
    ep = "tcp:127.0.0.1:%d" % b.port
    (tmp_path / "wpw").write_text("w0rk\n")
    (tmp_path / "apw").write_text("wonderland\n")
    cmd = script(tmp_path, "env.sh", 'read line\n'
                 'echo "{\\"secret\\": \\"${AMP_PASSWORD:-none}\\"}"\n')
    try:
        s = Serve("--server", ep, "--user", "worker", "--password-file", str(tmp_path / "wpw"),
                  "--exec", cmd, "Sum")
        got = call(ep, "--user", "alice", "--password-file", str(tmp_path / "apw"), "Sum")
        assert got == {"secret": "none"}
        status, _, err = s.stop()
        assert status == 0, err
        # the password from the environment: the child does not see it
        s = Serve("--server", ep, "--user", "worker", "--exec", cmd, "Sum", AMP_PASSWORD="w0rk")
        got = call(ep, "--user", "alice", "--password-file", str(tmp_path / "apw"), "Sum")
        assert got == {"secret": "none"}
        s.stop()
        # the ACL lets worker register Sum only; a wrong password is refused
        p = cli("serve", "--server", ep, "--user", "worker", "--password-file",
                str(tmp_path / "wpw"), "Other", check=False)
        assert p.returncode == REMOTE_ERROR and b"PERMISSION_DENIED" in p.stderr, p.stderr
        p = cli("serve", "--server", ep, "--user", "worker", "--password-file",
                str(tmp_path / "apw"), "Sum", check=False)
        assert p.returncode == LOGIN_REFUSED and b"AUTH_FAILED" in p.stderr, p.stderr
    finally:
        b.stop()


def test_usage_errors_and_help():
    p = cli("serve", "--help")
    assert b"usage: amp-cli serve" in p.stdout and b"exit status:" in p.stdout
    for argv in (["--server", "tcp:127.0.0.1:1"],
                 ["--server", "tcp:127.0.0.1:1", "--answer", "x=1", "--exec", "true", "X"],
                 ["--server", "tcp:127.0.0.1:1", "--max-concurrent", "0", "X"],
                 ["--server", "tcp:127.0.0.1:1", "--exec-timeout", "soon", "X"],
                 ["--server", "tcp:127.0.0.1:1", "--answer", "novalue", "X"],
                 ["X"]):
        p = cli("serve", *argv, check=False)
        assert p.returncode == 2, (argv, p.stderr)
    p = cli("serve", "--server", "tcp:127.0.0.1:1", "X", check=False)
    assert p.returncode == CONN_LOST, p.stderr
    # a peer that never answers amp.Register: --timeout ends the wait
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        p = cli("serve", "--server", "tcp:127.0.0.1:%d" % silent.getsockname()[1],
                "--timeout", "0.5", "X", check=False)
        assert p.returncode == TIMED_OUT and b"registering X timed out" in p.stderr, p.stderr
    finally:
        silent.close()


def test_options_may_follow_the_commands_and_arguments(tmp_path):
    """As in most tools, options go before or after the operands:
    'serve SIG --exec CMD', 'call Sum a=1 --json', 'sub P --count 1',
    'pub NAME k=v --count 1'; '--' ends the options."""
    b = broker()
    (tmp_path / "sum.py").write_text("import json, sys\n"
                                     "a = json.loads(sys.stdin.readline())['arguments']\n"
                                     "print(json.dumps({'total': a['a'] + a['b']}))\n")
    prog = "exec python3 %s" % (tmp_path / "sum.py")
    s = Serve("Sum(a: Integer, b: Integer) -> (total: Integer)", "--exec", prog,
              "--server", b.endpoint)
    try:
        p = cli("call", "Sum", "a=2", "b=40", "--server", b.endpoint, "--json")
        assert json.loads(p.stdout) == {"total": 42}
        sub = subprocess.Popen([AMP_CLI, "sub", "news.*", "--count", "1", "--server", b.endpoint],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
        assert sub.stderr.readline().startswith(b"amp-cli sub: subscribed")
        cli("pub", "news.a", "n=1", "--count", "1", "--server", b.endpoint)
        out, _ = sub.communicate(timeout=60)
        assert sub.returncode == 0 and json.loads(out) == {"_command": "news.a", "n": "1"}
        # after '--' a word that starts with '-' is an operand
        p = cli("call", "--server", b.endpoint, "--", "-x", check=False)
        assert p.returncode == REMOTE_ERROR and p.stderr.startswith(b"UNHANDLED"), p.stderr
    finally:
        s.stop()
        b.stop()
