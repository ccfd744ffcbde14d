"""amp-broker authentication and ACLs, with the real broker over loopback."""
import hashlib
import os
import pathlib
import shutil
import tempfile
import signal
import socket
import subprocess
import time

import pytest

from conftest import run
from test_broker import BROKER, Proc, raw_box, read_box
from test_twisted_interop import AMP_CLI, pki  # noqa: F401


class Peer:
    """A raw AMP connection: call() returns the answer or error pairs."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.settimeout(10)
        self.buf = b""
        self.tag = 0

    def call(self, name, /, **args):
        self.tag += 1
        pairs = [(b"_ask", str(self.tag).encode()), (b"_command", name.encode())]
        pairs += [(k.encode(), v.encode()) for k, v in args.items()]
        self.s.sendall(raw_box(pairs))
        got, self.buf = read_box(self.s, self.buf)
        return dict(got)

    def closed(self):
        try:
            return self.s.recv(1) == b""
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def hash_password(pw):
    return run([BROKER, "--hash-password"], pw.encode() + b"\n").stdout.decode().strip()


ACL = """
# who            what       pattern
allow user:alice call       Sum
allow user:alice call       amp.Stats
deny  user:alice call       Secret.>
allow user:alice call       Secret.>
allow role:workers register Sum
allow role:workers register Work.*
allow *          subscribe  news.*
deny  user:bob   subscribe  news.private
allow user:bob   publish    news.>
"""


@pytest.fixture()
def files(tmp_path):
    alice = hash_password("wonderland")
    (tmp_path / "passwd").write_text(
        "# user:roles:hash\nalice:users:%s\nworker:workers:%s\n" % (alice, hash_password("w0rk")))
    token = "s3cret-token"
    (tmp_path / "tokens").write_text("bob:users:%s\n" % hashlib.sha256(token.encode()).hexdigest())
    (tmp_path / "acl").write_text(ACL)
    return tmp_path


def start(files, extra=""):
    conf = files / "broker.conf"
    conf.write_text("[broker]\nlisten = tcp:0:interface=127.0.0.1\n[auth]\n"
                    "password_file = %s\ntokens_file = %s\nacl_file = %s\nlogin_timeout = 0.7\n%s"
                    % (files / "passwd", files / "tokens", files / "acl", extra))
    b = Proc([BROKER, "--config", str(conf)], r"\(port (\d+)\)", stream="stderr")
    b.port = int(b.match.group(1))
    return b


def login(port, **creds):
    p = Peer(port)
    got = p.call("amp.Login", **creds)
    assert b"_answer" in got, got
    return p


def test_login_required_and_timeout(files):
    b = start(files)
    try:
        p = Peer(b.port)
        got = p.call("Sum", a="1", b="2")
        assert got[b"_error_code"] == b"AUTH_REQUIRED"
        t0 = time.time()
        assert p.closed()  # login_timeout
        assert time.time() - t0 < 3
        p = Peer(b.port)
        got = p.call("amp.Login", username="alice", password="wrong")
        assert got[b"_error_code"] == b"AUTH_FAILED"
        assert p.closed()
        got = login(b.port, username="alice", password="wonderland").call("amp.Login",
                                                                          token="s3cret-token")
        assert got[b"identity"] == b"bob"
    finally:
        b.stop()


def test_acl_for_calls_registrations_and_subscriptions(files):
    b = start(files)
    try:
        worker = login(b.port, username="worker", password="w0rk")
        assert b"_answer" in worker.call("amp.Register", command="Sum")
        got = worker.call("amp.Register", command="Other")
        assert got[b"_error_code"] == b"PERMISSION_DENIED"
        assert b"worker may not register Other" in got[b"_error_description"]
        alice = login(b.port, username="alice", password="wonderland")
        alice.s.sendall(raw_box([(b"_ask", b"9"), (b"_command", b"Sum"), (b"a", b"1")]))
        fwd, worker.buf = read_box(worker.s, worker.buf)
        worker.s.sendall(raw_box([(b"_answer", dict(fwd)[b"_ask"]), (b"total", b"3")]))
        got, alice.buf = read_box(alice.s, alice.buf)
        assert dict(got) == {b"_answer": b"9", b"total": b"3"}
        # deny wins over a matching allow
        assert alice.call("Secret.x")[b"_error_code"] == b"PERMISSION_DENIED"
        # no rule, no access
        assert alice.call("Other")[b"_error_code"] == b"PERMISSION_DENIED"
        bob = login(b.port, token="s3cret-token")
        assert bob.call("amp.Stats")[b"_error_code"] == b"PERMISSION_DENIED"
        # subscriptions: allow must cover the pattern, a deny that overlaps wins
        assert b"_answer" in alice.call("amp.Subscribe", pattern="news.*")
        assert b"_answer" in alice.call("amp.Subscribe", pattern="news.sports")
        assert alice.call("amp.Subscribe", pattern="news.>")[b"_error_code"] == \
            b"PERMISSION_DENIED"
        assert bob.call("amp.Subscribe", pattern="news.*")[b"_error_code"] == \
            b"PERMISSION_DENIED"
        assert b"_answer" in bob.call("amp.Subscribe", pattern="news.sports")
        # publish: bob may, alice may not (an event has no answer: the denial
        # is an error only when asked; check the counters instead)
        alice.s.sendall(raw_box([(b"_command", b"news.sports"), (b"text", b"from alice")]))
        bob.s.sendall(raw_box([(b"_command", b"news.sports"), (b"text", b"from bob")]))
        time.sleep(0.3)
        # a fresh connection: alice's own now holds the delivered events
        stats = login(b.port, username="alice", password="wonderland").call("amp.Stats")
        assert int(stats[b"events_published"]) == 1
        assert int(stats[b"denials"]) >= 1
    finally:
        b.stop()


def test_reload_revokes_live_rights(files):
    b = start(files)
    try:
        worker = login(b.port, username="worker", password="w0rk")
        assert b"_answer" in worker.call("amp.Register", command="Sum")
        alice = login(b.port, username="alice", password="wonderland")
        assert alice.call("amp.Stats")[b"connections"] == b"2"
        # drop the worker's right to serve Sum, and alice altogether
        (files / "acl").write_text(ACL.replace("allow role:workers register Sum\n", ""))
        (files / "passwd").write_text(
            "\n".join(l for l in (files / "passwd").read_text().splitlines()
                      if not l.startswith("alice:")) + "\n")
        os.kill(b.proc.pid, signal.SIGHUP)
        time.sleep(0.5)
        assert alice.closed()
        bob = login(b.port, token="s3cret-token")
        p = Peer(b.port)
        assert p.call("amp.Login", username="alice", password="wonderland")[b"_error_code"] \
            == b"AUTH_FAILED"
        # a broken ACL on reload keeps the previous one
        (files / "acl").write_text("allow nobody-knows-this\n")
        os.kill(b.proc.pid, signal.SIGHUP)
        time.sleep(0.3)
        assert b"_answer" in login(b.port, token="s3cret-token").call("amp.Subscribe",
                                                                      pattern="news.sports")
        bob.close()
    finally:
        err = b.stop()
    assert "SIGHUP: reload failed, keeping the previous users and ACL" in err
    assert "registration of Sum revoked" in err
    assert "alice is no longer allowed" in err


@pytest.mark.parametrize("acl,why", [(None, "No such file"), ("", "no rules"),
                                     ("# only comments\n", "no rules"),
                                     ("allow user:x.> call Sum\n", "the subject is"),
                                     ("allow * teleport Sum\n", "actions are"),
                                     ("allow * call a..b\n", "empty token")])
def test_bad_acl_files_stop_the_broker(files, acl, why):
    if acl is None:
        os.unlink(files / "acl")
    else:
        (files / "acl").write_text(acl)
    conf = files / "broker.conf"
    conf.write_text("[auth]\npassword_file = %s\nacl_file = %s\n" % (files / "passwd",
                                                                      files / "acl"))
    r = run([BROKER, "--config", str(conf)], check=False)
    assert r.returncode == 2 and why.encode() in r.stderr, r.stderr


def test_identities_with_wildcards_are_refused(files):
    (files / "passwd").write_text("a.>:users:%s\n" % hash_password("x"))
    conf = files / "broker.conf"
    conf.write_text("[auth]\npassword_file = %s\nacl_file = %s\n" % (files / "passwd",
                                                                      files / "acl"))
    r = run([BROKER, "--config", str(conf)], check=False)
    assert r.returncode == 2 and b"may not be empty or contain" in r.stderr


def test_anonymous_only_where_configured(files):
    (files / "acl").write_text(ACL + "allow anonymous call Sum\n")
    b = start(files, "anonymous = guests\n")
    try:
        p = Peer(b.port)
        # anonymous may call Sum (UNHANDLED: nobody serves it) but not Other
        assert p.call("Sum")[b"_error_code"] == b"UNHANDLED"
        assert p.call("Other")[b"_error_code"] == b"PERMISSION_DENIED"
        assert not p.closed()  # no login timeout for anonymous connections
    finally:
        b.stop()


def test_client_certificate_names_the_user(files, pki):
    # short paths: a configuration line holds at most 199 characters
    d = pathlib.Path(tempfile.mkdtemp(prefix="amp"))
    for name in ("server.key", "server.pem", "ca.pem", "ca.key"):
        shutil.copy(pki / name, d / name)
    pki = d
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "alice.key",
                    "-out", "alice.csr", "-subj", "/CN=alice"], cwd=d, check=True,
                   capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", "alice.csr", "-CA", str(pki / "ca.pem"),
                    "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-out", "alice.pem",
                    "-days", "1"], cwd=d, check=True, capture_output=True)
    conf = files / "broker.conf"
    conf.write_text(
        "[broker]\nlisten = ssl:0:privateKey=%s:certKey=%s:caCerts=%s:clientCert=required:"
        "interface=127.0.0.1\n[auth]\npassword_file = %s\nacl_file = %s\ncert_identity = cn\n"
        % (pki / "server.key", pki / "server.pem", pki / "ca.pem", files / "passwd",
           files / "acl"))
    b = Proc([BROKER, "--config", str(conf)], r"\(port (\d+)\)", stream="stderr")
    try:
        port = int(b.match.group(1))
        ep = "ssl:host=localhost:port=%d:caCerts=%s:certKey=%s:privateKey=%s" % (
            port, pki / "ca.pem", d / "alice.pem", d / "alice.key")
        r = run([AMP_CLI, "call", ep, "amp.Stats"])  # allowed for alice, no login
        assert b"connections" in r.stdout
        r = run([AMP_CLI, "call", ep, "Other"], check=False)
        assert r.returncode == 4 and b"PERMISSION_DENIED" in r.stderr
    finally:
        b.stop()


def test_overlong_config_lines_are_refused(tmp_path):
    conf = tmp_path / "long.conf"
    conf.write_text("[broker]\nlisten = ssl:0:privateKey=%s:certKey=x\n" % ("/k" * 120))
    r = run([BROKER, "--config", str(conf)], check=False)
    assert r.returncode == 2 and b"long.conf:2: line longer than 199 characters" in r.stderr
