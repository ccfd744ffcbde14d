"""amp-cli shell: the interactive prompt under a pseudo-terminal (pexpect)
against a real amp-broker and a Twisted provider; and the plain mode with
stdin a pipe."""
import os
import signal
import stat
import subprocess

import pexpect

from conftest import SANITIZER_MARKERS, Proc
from test_auth import files, start  # noqa: F401
from test_broker import broker, provider
from test_cli_bus import Sub, cli, env
from test_twisted_interop import AMP_CLI

CONN_LOST = 5
# a Twisted provider of Sum registered with the signature below
SIGNED_SUM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python",
                          "amp_signature.py")
SUM_SIGNATURE = ("Sum(a: Integer, b: Integer?, tags: ListOf(Unicode)?) -> "
                 "(total: Integer, parts: AmpList(name: String, value: Float)) "
                 "! ZERO_DIVISION, OVERFLOW")
UP = "\x1b[A"
CTRL_A, CTRL_E, CTRL_D, BACKSPACE = "\x01", "\x05", "\x04", "\x7f"


def signed_provider(endpoint):
    return Proc(["/usr/bin/python3", SIGNED_SUM, "provide", endpoint], r"^ready")


class Shell:
    """amp-cli shell on a pseudo-terminal, its history in tmp_path."""

    def __init__(self, tmp_path, *argv, **extra):
        self.history = tmp_path / "history"
        e = env(TERM="xterm", HOME=str(tmp_path), AMP_HISTORY=str(self.history), **extra)
        self.child = pexpect.spawn(AMP_CLI, ["shell", *argv], env=e, encoding="utf-8",
                                   timeout=30, dimensions=(24, 200))
        self.transcript = []
        self.child.logfile_read = self

    # pexpect's log: everything the terminal showed
    def write(self, s):
        self.transcript.append(s)

    def flush(self):
        pass

    def prompt(self):
        self.child.expect_exact("amp> ")

    def line(self, text):
        """Type a line and wait for the next prompt; what came between."""
        self.child.send(text + "\r")
        self.prompt()
        return self.child.before

    def finish(self):
        """Wait for the end; the exit status."""
        self.child.expect(pexpect.EOF)
        self.child.close()
        shown = "".join(self.transcript)
        for marker in SANITIZER_MARKERS:
            assert marker not in shown, shown
        return self.child.exitstatus


def test_shell_calls_with_signatures_and_keeps_going_after_an_error(tmp_path):
    b = broker()
    p = signed_provider(b.endpoint)
    try:
        sh = Shell(tmp_path, b.endpoint)
        sh.prompt()
        # name=value takes the declared type; the answer readable on a terminal
        out = sh.line("Sum a=13 b=81")
        assert "total = 94\r\n" in out and 'parts = [{"name":"a","value":13.0}]' in out, out
        out = sh.line("call Sum a=1")
        assert "total = 1\r\n" in out, out
        # a line's errors on stderr, and the shell goes on
        out = sh.line("Nope x=1")
        assert "UNHANDLED" in out, out
        out = sh.line("Sum 'a=1")
        assert "amp-cli shell: unterminated '" in out, out
        out = sh.line("Sum a=x")
        assert "amp-cli shell: argument 'a=x': 'x' is not an integer" in out, out
        out = sh.line("Sum b=1")
        assert "amp-cli shell: missing argument 'a' (declared: %s)" % SUM_SIGNATURE in out, out
        out = sh.line("Sum a=1 c=2")
        assert "amp-cli shell: unknown argument 'c' (declared: Sum(" in out, out
        assert "total = " not in out, out
        assert "total = 2\r\n" in sh.line("Sum a=1 b=1")
        sh.child.send(CTRL_D)
        assert sh.finish() == 0
        # --json: typed JSON lines even on a terminal
        sh = Shell(tmp_path, "--json", b.endpoint)
        sh.prompt()
        out = sh.line("Sum a=2 b=3")
        assert '{"parts":[{"name":"a","value":2.0}],"total":5}\r\n' in out, out
        sh.child.send(CTRL_D)
        assert sh.finish() == 0
    finally:
        p.stop()
        b.stop()


def test_shell_tab_completes_commands_then_argument_names(tmp_path):
    b = broker()
    p = signed_provider(b.endpoint)
    try:
        sh = Shell(tmp_path, b.endpoint)
        sh.prompt()
        # 'Su' -> 'Sum ', 't' -> 'tags=', then a Tab on an empty word: the
        # only argument not given yet -> 'b='
        out = sh.line("Su\tt\t'[\"x\"]' a=1 \t2")
        assert "total = 3\r\n" in out, out
        # several candidates: listed, the line kept
        sh.child.send("Sum \t")
        sh.child.expect(r"a=\s+b=\s+tags=")
        sh.prompt()  # drawn again below the list, with the line
        out = sh.line("a=4")
        assert "total = 4\r\n" in out, out
        # a keyword, and the command after 'help'
        out = sh.line("hel\tSu\t")
        assert SUM_SIGNATURE in out, out
        # a command registered after the cache was filled is found
        other = provider("twisted", b.endpoint, "--name", "tw", "Delay")
        try:
            out = sh.line("Del\tms:int=1 n:int=9")
            assert "n = 9\r\n" in out, out
        finally:
            other.stop()
        sh.child.send(CTRL_D)
        assert sh.finish() == 0
    finally:
        p.stop()
        b.stop()


def test_shell_history_recall_editing_and_persistence(tmp_path):
    b = broker()
    p = provider("twisted", b.endpoint, "--name", "tw")
    try:
        sh = Shell(tmp_path, b.endpoint)
        sh.prompt()
        assert "total = 3\r\n" in sh.line("Sum a:int=1 b:int=2")
        # up-arrow recalls it; Ctrl-A, Ctrl-E, backspace edit it
        out = sh.line(UP + CTRL_E + BACKSPACE + "5")
        assert 'total = 6\r\n' in out, out
        out = sh.line(UP + CTRL_A + "call ")
        assert 'total = 6\r\n' in out, out
        sh.child.send("quit\r")
        assert sh.finish() == 0
        assert stat.S_IMODE(os.stat(sh.history).st_mode) == 0o600
        # a second session recalls the first one's lines
        sh = Shell(tmp_path, "--server", b.endpoint)
        sh.prompt()
        out = sh.line(UP + UP)
        assert 'total = 6\r\n' in out, out
        sh.child.send("exit\r")
        assert sh.finish() == 0
        text = sh.history.read_text()
        assert "Sum\\040a:int=1\\040b:int=5" in text, text
        assert stat.S_IMODE(os.stat(sh.history).st_mode) == 0o600
    finally:
        p.stop()
        b.stop()


def test_shell_ctrl_c_drops_the_line_or_stops_waiting(tmp_path):
    b = broker()
    p = provider("twisted", b.endpoint, "--name", "tw")
    try:
        sh = Shell(tmp_path, b.endpoint)
        sh.prompt()
        sh.child.send("Sum a:int=100 b:int=100")
        sh.child.expect_exact("b:int=100")
        sh.child.sendintr()
        sh.prompt()
        out = sh.line("Sum a:int=2 b:int=2")
        assert 'total = 4\r\n' in out and 'total = 200' not in out, out
        # a call that would take 60 s: Ctrl-C gives the prompt back
        sh.child.send("Delay ms:int=60000 n:int=1\r")
        sh.child.expect_exact("Delay ms:int=60000 n:int=1")
        sh.child.sendintr()
        sh.child.expect_exact("amp-cli shell: Delay: the call was cancelled")
        sh.prompt()
        out = sh.line("Sum a:int=3 b:int=3")
        assert 'total = 6\r\n' in out, out
        sh.child.send(CTRL_D)
        assert sh.finish() == 0
        # the dropped line is not in the history
        assert "100" not in sh.history.read_text()
    finally:
        p.stop()
        b.stop()


def test_shell_ctrl_z_stops_it_and_fg_gives_the_line_back(tmp_path):
    """Under an interactive bash (job control): Ctrl-Z gives bash the
    terminal back, 'fg' the prompt and the line being typed, still editable."""
    b = broker()
    p = provider("twisted", b.endpoint, "--name", "tw")
    try:
        e = env(TERM="xterm", HOME=str(tmp_path), AMP_HISTORY=str(tmp_path / "history"),
                PS1="bash$ ")
        bash = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], env=e, encoding="utf-8",
                             timeout=30, dimensions=(24, 200))
        transcript = []
        bash.logfile_read = type("Log", (), {"write": lambda self, s: transcript.append(s),
                                             "flush": lambda self: None})()
        bash.expect_exact("bash$ ")
        bash.send("%s shell %s\r" % (AMP_CLI, b.endpoint))
        bash.expect_exact("amp> ")
        bash.send("Sum a:int=1 b:int=")
        bash.expect_exact("b:int=")
        bash.send("\x1a")
        bash.expect("Stopped +%s shell" % AMP_CLI)
        bash.expect_exact("bash$ ")
        bash.send("fg\r")
        bash.expect_exact("amp> Sum a:int=1 b:int=")
        bash.send("2" + CTRL_A + "call \r")
        bash.expect_exact("total = 3\r\n")
        bash.expect_exact("amp> ")
        bash.send(CTRL_D)
        bash.expect_exact("bash$ ")
        bash.send("echo status=$?\r")
        bash.expect_exact("status=0")
        bash.send("exit\r")
        bash.expect(pexpect.EOF)
        shown = "".join(transcript)
        for marker in SANITIZER_MARKERS:
            assert marker not in shown, shown
    finally:
        p.stop()
        b.stop()


def test_shell_history_is_capped(tmp_path):
    b = broker()
    try:
        # a history of 1005 lines, as libedit writes one; then two lines more
        (tmp_path / "history").write_text(
            "_HiStOrY_V2_\n" + "".join("#\\040line\\040%d\n" % i for i in range(1005)))
        sh = Shell(tmp_path, AMP_URL=b.endpoint)
        sh.prompt()
        sh.line("# new")
        sh.child.send("quit\r")
        assert sh.finish() == 0
        lines = sh.history.read_text().splitlines()
        # the format's header, then the last 1000 lines
        assert len(lines) == 1 + 1000, len(lines)
        assert lines[1] == "#\\040line\\0407" and lines[-2:] == ["#\\040new", "quit"], lines
    finally:
        b.stop()


def test_shell_sub_prints_events_while_a_line_is_typed_and_pub(tmp_path):
    b = broker()
    p = provider("twisted", b.endpoint, "--name", "tw")
    try:
        sh = Shell(tmp_path, b.endpoint)
        sh.prompt()
        assert "amp-cli shell: subscribed to news.*" in sh.line("sub news.*")
        assert "news.*" in sh.line("sub")
        sh.child.send("Sum a:i")
        sh.child.expect_exact("Sum a:i")
        cli("pub", "--server", b.endpoint, "news.a", "text=hello")
        # readable on a terminal: NAME  key=value ...
        sh.child.expect_exact("news.a  text=hello\r\n")
        # the line being typed is drawn again below the event, and still whole
        sh.child.expect_exact("amp> Sum a:i")
        out = sh.line("nt=3 b:int=4")
        assert 'total = 7\r\n' in out, out
        # pub: another subscriber gets it
        other = Sub("--server", b.endpoint, "--count", "1", "chat.*")
        other.ready()
        sh.line("pub chat.room 'text=two words' n:int=7")
        status, out, err = other.finish()
        assert status == 0 and out == '{"_command":"chat.room","text":"two words","n":"7"}\n', err
        sh.line("sub after.*")
        sh.line("unsub news.*")
        cli("pub", "--server", b.endpoint, "news.b", "text=unseen")
        # events come in order: once this one is shown, news.b would have been
        cli("pub", "--server", b.endpoint, "after.x", "text=marker")
        sh.child.expect_exact("marker")
        sh.prompt()  # drawn again below the event
        out = sh.line("sub")
        assert "after.*" in out and "news" not in out, out
        sh.child.send(CTRL_D)
        assert sh.finish() == 0
        assert "unseen" not in "".join(sh.transcript)
    finally:
        p.stop()
        b.stop()


def test_shell_help(tmp_path):
    b = broker()
    p = signed_provider(b.endpoint)
    q = provider("twisted", b.endpoint, "--name", "tw", "Delay")
    try:
        sh = Shell(tmp_path, b.endpoint)
        sh.prompt()
        out = sh.line("help")
        for text in ("pub NAME [ARG]...", "sub PATTERN...", "help [COMMAND]", "quit",
                     "  " + SUM_SIGNATURE + "\r\n", "  Delay\r\n"):
            assert text in out, out
        out = sh.line("help Sum")
        assert out.endswith("\r\n" + SUM_SIGNATURE + "\r\n"), out
        out = sh.line("help Delay")  # registered without a signature
        assert out.endswith("\r\nDelay\r\n"), out
        out = sh.line("commands")
        assert SUM_SIGNATURE + "\r\n" in out and "Delay\r\n" in out, out
        out = sh.line("help NoSuch")
        assert "amp-cli shell: help: no command 'NoSuch' on the bus" in out, out
        sh.child.send("quit\r")
        assert sh.finish() == 0
    finally:
        q.stop()
        p.stop()
        b.stop()


def test_shell_ends_with_status_5_when_the_broker_goes(tmp_path):
    b = broker()
    sh = Shell(tmp_path, b.endpoint)
    sh.prompt()
    sh.child.send("amp.St")
    sh.child.expect_exact("amp.St")
    b.stop()
    sh.child.expect_exact("amp-cli shell: connection lost")
    assert sh.finish() == CONN_LOST
    assert stat.S_IMODE(os.stat(sh.history).st_mode) == 0o600


def shell_piped(tmp_path, text, *argv):
    hist = tmp_path / "history"
    p = subprocess.run([AMP_CLI, "shell", *argv], input=text.encode(), capture_output=True,
                       env=env(AMP_HISTORY=str(hist)), timeout=60)
    for marker in SANITIZER_MARKERS:
        assert marker.encode() not in p.stderr, p.stderr.decode(errors="replace")
    assert not hist.exists()  # no history from a pipe
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_shell_reads_piped_lines_plainly(tmp_path):
    b = broker()
    p = provider("twisted", b.endpoint, "--name", "tw")
    try:
        other = Sub("--server", b.endpoint, "--count", "1", "ping.*")
        other.ready()
        status, out, err = shell_piped(
            tmp_path,
            "Sum a:int=1 b:int=2\n"
            "# a comment, then a blank line\n"
            "\n"
            "Nope\n"
            "call Sum \"a:int=3\" b:int=4\n"
            "pub ping.x n=one\\ two \"m=say \\\"hi\\\"\" 'o=it'\"'\"'s'",  # no newline at the end
            "--server", b.endpoint)
        assert status == 0, err
        assert out == '{"served_by":"tw","total":"3"}\n{"served_by":"tw","total":"7"}\n', out
        assert "amp> " not in out + err
        assert err.startswith("UNHANDLED"), err
        status, out, err = other.finish()
        assert status == 0 and \
            out == '{"_command":"ping.x","n":"one two","m":"say \\"hi\\"","o":"it\'s"}\n', err
        # the endpoint comes from AMP_URL as well; no endpoint at all is a usage error
        p2 = subprocess.run([AMP_CLI, "shell"], input=b"amp.Stats\n", capture_output=True,
                            env=env(AMP_URL=b.endpoint), timeout=60)
        assert p2.returncode == 0 and p2.stdout.startswith(b'{"connections":"'), p2.stderr
        p2 = subprocess.run([AMP_CLI, "shell"], input=b"", capture_output=True, env=env(),
                            timeout=60)
        assert p2.returncode == 2 and b"give --server ENDPOINT or set AMP_URL" in p2.stderr
    finally:
        p.stop()
        b.stop()


def test_shell_piped_events_typed_answers_and_help(tmp_path):
    b = broker()
    p = signed_provider(b.endpoint)
    try:
        # the broker hands out ev.a before it routes the next line's call, so
        # the event comes before that call's answer on the shell's connection
        status, out, err = shell_piped(
            tmp_path,
            "sub ev.*\n"
            "pub ev.a k=v n:int=1\n"
            "Sum a=2 b=3\n"
            "unsub ev.*\n"
            "pub ev.b k=unseen\n"
            "Sum a=1\n"
            "help Sum\n"
            "sub\n",
            b.endpoint)
        assert status == 0, err
        assert out.splitlines() == [
            '{"_command":"ev.a","k":"v","n":"1"}',
            '{"parts":[{"name":"a","value":2.0}],"total":5}',
            '{"parts":[{"name":"a","value":1.0}],"total":1}',
            SUM_SIGNATURE], out
        assert err == "", err
    finally:
        p.stop()
        b.stop()


def test_shell_ends_cleanly_on_sigterm(tmp_path):
    b = broker()
    try:
        sh = Shell(tmp_path, b.endpoint)
        sh.prompt()
        sh.line("sub x.*")
        sh.child.send("half a li")
        sh.child.expect_exact("half a li")
        sh.child.kill(signal.SIGTERM)
        assert sh.finish() == 0
        assert sh.history.read_text().splitlines()[1:] == ["sub\\040x.*"]
    finally:
        b.stop()


def test_shell_logs_in_and_times_out_a_call(files, tmp_path):  # noqa: F811
    b = start(files)
    ep = "tcp:127.0.0.1:%d" % b.port
    (tmp_path / "pw").write_text("wonderland\n")
    (tmp_path / "token").write_text("s3cret-token\n")
    try:
        status, out, err = shell_piped(tmp_path, "amp.Stats\n", "--server", ep, "--user", "alice",
                                       "--password-file", str(tmp_path / "pw"))
        assert status == 0 and out.startswith('{"connections":"'), err
        # bob's token: logged in as bob, whom the ACL denies amp.Stats
        status, out, err = shell_piped(tmp_path, "amp.Stats\n", "--token-file",
                                       str(tmp_path / "token"), ep)
        assert status == 0 and err == "PERMISSION_DENIED: bob may not call amp.Stats\n", err
        # without a login every line is refused, and the shell goes on
        status, out, err = shell_piped(tmp_path, "amp.Stats\namp.Stats\n", ep)
        assert status == 0 and out == "" and err.count("AUTH_REQUIRED") == 2, err
        (tmp_path / "token").write_text("wrong\n")
        status, out, err = shell_piped(tmp_path, "amp.Stats\n", "--token-file",
                                       str(tmp_path / "token"), ep)
        assert status == 7 and "amp-cli shell: login as the token's user refused: AUTH_FAILED" \
            in err, err
    finally:
        b.stop()
    b = broker()
    p = provider("twisted", b.endpoint, "--name", "tw")
    try:
        # a call that would take 60 s, with --timeout 1: its error, then the next line
        status, out, err = shell_piped(tmp_path, "Delay ms:int=60000 n:int=1\n"
                                       "Sum a:int=1 b:int=1\n", "--timeout", "1", b.endpoint)
        assert status == 0, err
        assert err == "amp-cli shell: Delay timed out after 1 s\n", err
        assert out == '{"served_by":"tw","total":"2"}\n', out
    finally:
        p.stop()
        b.stop()


def test_shell_help_option():
    p = subprocess.run([AMP_CLI, "shell", "--help"], capture_output=True, env=env(), timeout=60)
    assert p.returncode == 0 and p.stdout.startswith(b"usage: amp-cli shell"), p.stderr
    p = subprocess.run([AMP_CLI, "shell", "--no-such"], capture_output=True, env=env(),
                       timeout=60)
    assert p.returncode == 2


def test_shell_history_through_a_symbolic_link_keeps_the_link(tmp_path):
    """A history file kept elsewhere behind a link the user owns (a managed
    dotfile) is written in place: the link stays a link."""
    b = broker()
    try:
        (tmp_path / "dotfiles").mkdir()
        real = tmp_path / "dotfiles" / "amp_history"
        real.write_text("")
        link = tmp_path / "history"
        link.symlink_to(real)
        sh = Shell(tmp_path, b.endpoint)
        sh.prompt()
        sh.line("help")
        sh.child.send("\x04")
        assert sh.finish() == 0
        assert link.is_symlink() and os.readlink(link) == str(real)
        assert "help" in real.read_text()
    finally:
        b.stop()
