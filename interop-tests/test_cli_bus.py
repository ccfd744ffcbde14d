"""amp-cli on the bus: connection settings (--server, AMP_URL), login,
sub and pub, the real binary against a real amp-broker."""
import os
import signal
import socket
import subprocess
import time


from conftest import run
from test_auth import files, start  # noqa: F401
from test_broker import broker, raw_box
from test_twisted_interop import AMP_CLI, HERE, TWISTED_PEER

LOGIN_REFUSED = 7
TIMED_OUT = 6


def env(**extra):
    e = dict(os.environ)
    for k in ("AMP_URL", "AMP_PASSWORD", "AMP_TOKEN"):
        e.pop(k, None)
    e.update(extra)
    e.setdefault("ASAN_OPTIONS", "exitcode=86")
    return e


def cli(*argv, check=True, **extra):
    p = subprocess.run([AMP_CLI, *argv], capture_output=True, env=env(**extra), timeout=60)
    assert b"Sanitizer" not in p.stderr, p.stderr.decode(errors="replace")
    if check:
        assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p


class Sub:
    """amp-cli sub, started; ready once its subscriptions are answered."""

    def __init__(self, *argv, **extra):
        self.proc = subprocess.Popen([AMP_CLI, "sub", *argv], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env(**extra))

    def ready(self):
        """Wait for the line saying every subscription is in place."""
        line = self.proc.stderr.readline().decode()
        assert line.startswith("amp-cli sub: subscribed"), line

    def finish(self, timeout=30):
        out, err = self.proc.communicate(timeout=timeout)
        assert b"Sanitizer" not in err, err.decode(errors="replace")
        return self.proc.returncode, out.decode(), err.decode()


def test_call_takes_its_endpoint_from_amp_url_or_server():
    b = broker()
    try:
        for argv, extra in ((["call", "amp.Stats"], {"AMP_URL": b.endpoint}),
                            (["call", "--server", b.endpoint, "amp.Stats"], {}),
                            (["call", b.endpoint, "amp.Stats"], {}),
                            # a positional endpoint wins over AMP_URL
                            (["call", b.endpoint, "amp.Stats"], {"AMP_URL": "tcp:127.0.0.1:1"})):
            p = cli(*argv, **extra)
            assert p.stdout.startswith(b'{"connections":"'), (argv, p.stdout)
        p = cli("call", "amp.Stats", check=False)
        assert p.returncode == 2 and b"usage" in p.stderr
        p = cli("sub", "x.*", check=False)
        assert p.returncode == 2 and b"give --server ENDPOINT or set AMP_URL" in p.stderr
    finally:
        b.stop()


def test_login_with_password_file_environment_and_token(files, tmp_path):  # noqa: F811
    b = start(files)
    ep = "tcp:127.0.0.1:%d" % b.port
    (tmp_path / "pw").write_text("wonderland\n")
    (tmp_path / "token").write_text("s3cret-token\n")
    (tmp_path / "bad").write_text("wrong\n")
    try:
        # without a login the broker refuses
        p = cli("call", "--server", ep, "amp.Stats", check=False)
        assert p.returncode == 4 and p.stderr.startswith(b"AUTH_REQUIRED"), p.stderr
        p = cli("call", "--server", ep, "--user", "alice", "--password-file",
                str(tmp_path / "pw"), "amp.Stats")
        assert p.stdout.startswith(b'{"connections":"')
        p = cli("call", "--user", "alice", "amp.Stats", AMP_URL=ep, AMP_PASSWORD="wonderland")
        assert p.stdout.startswith(b'{"connections":"')
        # bob (a token) may publish news.>, alice may subscribe news.*
        sub = Sub("--server", ep, "--user", "alice", "--password-file", str(tmp_path / "pw"),
                  "--count", "2", "news.*")
        sub.ready()
        cli("pub", "--server", ep, "--token-file", str(tmp_path / "token"), "news.a", "n=1")
        cli("pub", "--server", ep, "news.b", "n=2", AMP_TOKEN="s3cret-token")
        status, out, err = sub.finish()
        assert status == 0, err
        assert out.splitlines()[-2:] == ['{"_command":"news.a","n":"1"}',
                                         '{"_command":"news.b","n":"2"}'], out
        # a wrong password: its own exit status and the broker's code
        p = cli("call", "--server", ep, "--user", "alice", "--password-file",
                str(tmp_path / "bad"), "amp.Stats", check=False)
        assert p.returncode == LOGIN_REFUSED, p.stderr
        assert p.stderr.startswith(b"amp-cli call: login as alice refused: AUTH_FAILED"), p.stderr
        p = cli("sub", "--server", ep, "news.*", check=False, AMP_TOKEN="not-it")
        assert p.returncode == LOGIN_REFUSED and b"AUTH_FAILED" in p.stderr, p.stderr
        # a user without a password, a password file without a user
        p = cli("call", "--server", ep, "--user", "alice", "amp.Stats", check=False)
        assert p.returncode == 2 and b"AMP_PASSWORD" in p.stderr
        p = cli("call", "--server", ep, "--password-file", str(tmp_path / "pw"), "amp.Stats",
                check=False)
        assert p.returncode == 2 and b"--user" in p.stderr
        # secrets are not options
        p = cli("call", "--server", ep, "--password", "wonderland", "amp.Stats", check=False)
        assert p.returncode == 2
    finally:
        b.stop()


def test_sub_prints_events_from_pub_and_from_twisted():
    b = broker()
    try:
        sub = Sub("--server", b.endpoint, "--count", "4", "chat.*", "alerts.>")
        sub.ready()
        cli("pub", "--server", b.endpoint, "--count", "2", "chat.room1", "text=hello",
            "n:int=7")
        cli("pub", "--server", b.endpoint, "other.x", "text=not for us")
        script = (
            "import sys\n"
            "sys.path.insert(0, %r)\n"
            "from twisted.internet import reactor, endpoints\n"
            "from twisted.protocols import amp\n"
            "class Alert(amp.Command):\n"
            "    commandName = b'alerts.disk.full'\n"
            "    arguments = [(b'pct', amp.Integer())]\n"
            "    requiresAnswer = False\n"
            "def go(p):\n"
            "    p.callRemote(Alert, pct=97)\n"
            "    p.transport.loseConnection()\n"
            "    reactor.callLater(0.2, reactor.stop)\n"
            "d = endpoints.connectProtocol(endpoints.clientFromString(reactor, %r), amp.AMP())\n"
            "d.addCallback(go)\n"
            "reactor.run()\n" % (os.path.join(HERE, "python"), b.endpoint))
        run([TWISTED_PEER[0], "-c", script])
        cli("pub", "--server", b.endpoint, "chat.room2", "text=last")
        cli("pub", "--server", b.endpoint, "chat.room2", "text=one too many")
        status, out, err = sub.finish()
        assert status == 0, err
        lines = out.splitlines()
        # in the order sent; 'other.x' and the event after --count not printed
        assert lines == ['{"_command":"chat.room1","text":"hello","n":"7"}',
                             '{"_command":"chat.room1","text":"hello","n":"7"}',
                             '{"_command":"alerts.disk.full","pct":"97"}',
                             '{"_command":"chat.room2","text":"last"}'], out
    finally:
        b.stop()


def test_sub_timeout_and_signals():
    b = broker()
    try:
        # nothing arrives: the timeout's exit status
        p = cli("sub", "--server", b.endpoint, "--timeout", "0.3", "quiet.*", check=False)
        assert p.returncode == TIMED_OUT and p.stdout == b"", p.stderr
        assert b"0 event(s) in 0.3 s" in p.stderr
        # too few for --count: the same, after printing what came
        sub = Sub("--server", b.endpoint, "--count", "3", "--timeout", "3", "few.*")
        sub.ready()
        cli("pub", "--server", b.endpoint, "few.probe", "probe=1")
        status, out, err = sub.finish()
        assert status == TIMED_OUT and out == '{"_command":"few.probe","probe":"1"}\n', err
        # some events and no --count: the timeout ends it, successfully
        sub = Sub("--server", b.endpoint, "--timeout", "2", "some.*")
        sub.ready()
        cli("pub", "--server", b.endpoint, "some.probe", "probe=1")
        status, out, err = sub.finish()
        assert status == 0 and out == '{"_command":"some.probe","probe":"1"}\n', err
        # SIGINT and SIGTERM end a subscription cleanly
        for sig in (signal.SIGINT, signal.SIGTERM):
            sub = Sub("--server", b.endpoint, "sig.*")
            sub.ready()
            cli("pub", "--server", b.endpoint, "sig.probe", "probe=1")
            os.kill(sub.proc.pid, sig)
            status, out, err = sub.finish()
            assert status == 0 and out == '{"_command":"sig.probe","probe":"1"}\n', (sig, err)
    finally:
        b.stop()


def test_pub_count_delivers_every_event_and_rate_paces():
    b = broker()
    try:
        sub = Sub("--server", b.endpoint, "--count", "1000", "load.*")
        sub.ready()
        cli("pub", "--server", b.endpoint, "--count", "1000", "load.x", "payload=%s" % ("z" * 100))
        status, out, err = sub.finish()
        assert status == 0, err
        assert out.splitlines() == ['{"_command":"load.x","payload":"%s"}' % ("z" * 100)] * 1000
        # --rate: 5 events at 20 per second take at least 4 gaps of 50 ms
        sub = Sub("--server", b.endpoint, "--count", "5", "paced.*")
        sub.ready()
        t = time.monotonic()
        cli("pub", "--server", b.endpoint, "--count", "5", "--rate", "20", "paced.x")
        assert time.monotonic() - t >= 0.2
        status, out, err = sub.finish()
        assert status == 0 and out.splitlines() == ['{"_command":"paced.x"}'] * 5, err
        p = cli("pub", "--server", b.endpoint, "--count", "0", "x", check=False)
        assert p.returncode == 2
    finally:
        b.stop()


def test_numeric_options_are_parsed_whole_and_must_be_positive():
    """Every verb's numbers are checked the same way before connecting:
    trailing text, zero, negatives, nan and absurd sizes are usage errors."""
    cases = [(["pub", "--count", "0", "x"], "--count"), (["pub", "--rate", "5x", "x"], "--rate"),
             (["pub", "--timeout", "-1", "x"], "--timeout"),
             (["sub", "--count", "2.5", "x"], "--count"), (["sub", "--timeout", "nan", "x"], "--timeout"),
             (["call", "--timeout", "1e99", "X"], "--timeout"), (["stats", "--timeout", "abc"], "--timeout"),
             (["commands", "--timeout", "0"], "--timeout"), (["shell", "--timeout", "inf"], "--timeout"),
             (["serve", "--exec-timeout", "3s", "X"], "--exec-timeout")]
    for argv, option in cases:
        p = cli(*argv, check=False, AMP_URL="tcp:127.0.0.1:1")
        assert p.returncode == 2, (argv, p.stderr)
        assert (option + " needs a positive").encode() in p.stderr, (argv, p.stderr)


IO_ERROR = 3


def test_sub_and_listen_exit_3_when_their_reader_goes_away():
    """A reader that closes after one line (as '| head -1' does) ends sub and
    listen with the I/O error status, however much keeps arriving."""
    b = broker()
    try:
        sub = Sub("--server", b.endpoint, "gone.*")
        sub.ready()
        cli("pub", "--server", b.endpoint, "gone.x", "n=1")
        assert sub.proc.stdout.readline() == b'{"_command":"gone.x","n":"1"}\n'
        sub.proc.stdout.close()
        deadline = time.monotonic() + 120  # only ends a broken run
        while sub.proc.poll() is None:
            assert time.monotonic() < deadline, "sub kept running without a reader"
            cli("pub", "--server", b.endpoint, "--count", "100", "gone.x", "n=2")
        err = sub.proc.stderr.read()
        assert sub.proc.returncode == IO_ERROR, err
        assert b"Sanitizer" not in err, err
    finally:
        b.stop()
    proc = subprocess.Popen([AMP_CLI, "listen", "tcp:0:interface=127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    try:
        port = int(proc.stderr.readline().decode().rsplit("port ", 1)[1].rstrip(")\n"))
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(raw_box([(b"_command", b"Ping"), (b"n", b"1")]))
        assert proc.stdout.readline() == b'{"_command":"Ping","n":"1"}\n'
        proc.stdout.close()
        deadline = time.monotonic() + 120
        while proc.poll() is None:
            assert time.monotonic() < deadline, "listen kept running without a reader"
            try:
                sock.sendall(raw_box([(b"_command", b"Ping"), (b"n", b"2")]) * 100)
            except OSError:  # listen went between poll() and here
                pass
            time.sleep(0.01)
        err = proc.stderr.read()
        assert proc.returncode == IO_ERROR, err
        assert b"Sanitizer" not in err, err
        sock.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
