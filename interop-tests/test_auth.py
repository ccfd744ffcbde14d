"""amp-broker authentication and ACLs, with the real broker over loopback."""
import hashlib
import json
import os
import threading
import pathlib
import re
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

    def __init__(self, port, source=None):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          source_address=(source, 0) if source else None)
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

    def still_open(self, seconds=0.3):
        self.s.settimeout(seconds)
        try:
            return not self.closed()
        finally:
            self.s.settimeout(10)

    def close(self):
        self.s.close()


def hash_password(pw):
    """The broker's own hash line (its default cost)."""
    return run([BROKER, "--hash-password"], pw.encode() + b"\n").stdout.decode().strip()


def quick_hash(pw, iterations=10000):
    """A hash line at the lowest cost the broker accepts, in the broker's
    format: the logins of most tests then take milliseconds even on a busy
    machine, where hashing threads below normal priority wait for the CPU."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, iterations)
    return "pbkdf2-sha256$%d$%s$%s" % (iterations, salt.hex(), digest.hex())


ACL = """
# who            what       pattern
allow user:alice call       Sum
allow user:alice call       amp.Stats
deny  user:alice call       Secret.>
allow user:alice call       Secret.>
allow role:workers register Sum
allow role:workers register Work.*
allow authenticated subscribe news.*
deny  user:bob   subscribe  news.private
allow user:bob   publish    news.>
"""


@pytest.fixture()
def files(tmp_path):
    # alice's line is the broker's own (--hash-password); worker's is a
    # cheap one made here, which the broker must accept as well
    alice = hash_password("wonderland")
    (tmp_path / "passwd").write_text(
        "# user:roles:hash\nalice:users:%s\nworker:workers:%s\n" % (alice, quick_hash("w0rk")))
    token = "s3cret-token"
    (tmp_path / "tokens").write_text("bob:users:%s\n" % hashlib.sha256(token.encode()).hexdigest())
    (tmp_path / "acl").write_text(ACL)
    return tmp_path


def start(files, extra="", login_timeout=5):
    """A broker with the test's files. The login timeout is long by default:
    on a busy machine the hashing threads (below normal priority) are slow,
    and a login cut short by it fails the test for the wrong reason. The
    test of the timeout itself gives a short one."""
    conf = files / "broker.conf"
    conf.write_text("[broker]\nlisten = tcp:0:interface=127.0.0.1\n[auth]\n"
                    "password_file = %s\ntokens_file = %s\nacl_file = %s\nlogin_timeout = %s\n%s"
                    % (files / "passwd", files / "tokens", files / "acl", login_timeout, extra))
    b = Proc([BROKER, "--config", str(conf)], r"\(port (\d+)\)", stream="stderr")
    b.port = int(b.match.group(1))
    return b


def login(port, source=None, **creds):
    p = Peer(port, source)
    got = p.call("amp.Login", **creds)
    assert b"_answer" in got, got
    return p


def test_login_required_and_timeout(files):
    b = start(files, login_timeout=0.7)
    try:
        p = Peer(b.port)
        got = p.call("Sum", a="1", b="2")
        assert got[b"_error_code"] == b"AUTH_REQUIRED"
        t0 = time.time()
        assert p.closed()  # login_timeout
        assert time.time() - t0 < 3
    finally:
        b.stop()


def test_failed_login_closes_and_a_good_one_works(files):
    b = start(files)
    try:
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


@pytest.fixture()
def short_pki(pki):
    """The test CA and server certificate under a short path: a configuration
    line holds at most 199 characters."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="amp"))
    for name in ("server.key", "server.pem", "ca.pem", "ca.key"):
        shutil.copy(pki / name, d / name)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def client_cert(d, name, subj, san=None):
    """A client certificate signed by the test CA, made by the openssl CLI:
    `subj` as -subj takes it (a backslash escapes a slash inside a field),
    `san` an openssl subjectAltName value."""
    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", name + ".key", "-out", name + ".csr", "-subj", subj)
    ext = []
    if san:
        (d / (name + ".ext")).write_text("subjectAltName=%s\n" % san)
        ext = ["-extfile", name + ".ext"]
    ossl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", name + ".pem", "-days", "1", *ext)
    return d / (name + ".pem"), d / (name + ".key")


def client_cert_with_nul(d, name, common_name):
    """A client certificate whose commonName holds a NUL byte, which the
    openssl CLI cannot write: made with the cryptography package, signed by
    the test CA."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    ca_key = serialization.load_pem_private_key((d / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((d / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(4242)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    (d / (name + ".pem")).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / (name + ".key")).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return d / (name + ".pem"), d / (name + ".key")


def tls_broker(files, d, auth_extra):
    """A broker on an ssl: listener that requires a client certificate."""
    conf = files / "broker.conf"
    conf.write_text(
        "[broker]\nlisten = ssl:0:privateKey=%s:certKey=%s:caCerts=%s:clientCert=required:"
        "interface=127.0.0.1\n[auth]\npassword_file = %s\nacl_file = %s\n%s"
        % (d / "server.key", d / "server.pem", d / "ca.pem", files / "passwd", files / "acl",
           auth_extra))
    b = Proc([BROKER, "--config", str(conf)], r"\(port (\d+)\)", stream="stderr")
    b.port = int(b.match.group(1))
    return b


def cert_call(b, d, cert, command="amp.Stats"):
    ep = "ssl:host=localhost:port=%d:caCerts=%s:certKey=%s:privateKey=%s" % (
        b.port, d / "ca.pem", cert[0], cert[1])
    return run([AMP_CLI, "call", ep, command], check=False)


def test_client_certificate_names_the_user(files, short_pki):
    d = short_pki
    alice = client_cert(d, "alice", "/CN=alice")
    b = tls_broker(files, d, "cert_identity = cn\n")
    try:
        r = cert_call(b, d, alice)  # allowed for alice, no login
        assert b"connections" in r.stdout, r.stderr
        r = cert_call(b, d, alice, "Other")
        assert r.returncode == 4 and b"PERMISSION_DENIED" in r.stderr
    finally:
        b.stop()


def test_certificate_common_name_is_read_as_a_field(files, short_pki):
    """The one-line subject "/O=x/CN=admin/CN=mallory" has "/CN=admin" in it,
    inside the O field: the identity is the certificate's single commonName
    entry, and two of them, none, or one with a NUL byte name nobody."""
    d = short_pki
    with open(files / "passwd", "a") as f:
        f.write("admin:admins:-\nmallory:users:-\n")
    with open(files / "acl", "a") as f:
        f.write("allow user:admin call amp.Stats\n")
    trick = client_cert(d, "trick", "/O=x\\/CN=admin/CN=mallory")
    two = client_cert(d, "two", "/CN=mallory/CN=admin")
    none = client_cert(d, "none", "/O=admin")
    nul = client_cert_with_nul(d, "nul", "alice\x00admin")
    alice = client_cert(d, "alice", "/CN=alice")
    b = tls_broker(files, d, "cert_identity = cn\n")
    try:
        r = cert_call(b, d, trick)
        assert r.returncode == 4, r.stdout
        assert b"PERMISSION_DENIED: mallory may not call amp.Stats" in r.stderr, r.stderr
        for cert in (two, none, nul):
            r = cert_call(b, d, cert)
            assert r.returncode == 4 and b"AUTH_REQUIRED" in r.stderr, (r.stdout, r.stderr)
        stats = json.loads(cert_call(b, d, alice).stdout)
        assert stats["cert_identities_refused"] == "3", stats
    finally:
        err = b.stop()
    assert "more than one commonName" in err and "no commonName" in err
    assert "commonName holds a NUL" in err


SAN_MODES = [
    ("san-email", "cert_identity_domain = Users.Example",
     "email:alice@users.example,email:admin@other.example", "email:alice@other.example",
     "email:alice@users.example,email:bob@users.example"),
    ("san-dns", "cert_identity_suffix = users.example",
     "DNS:Alice.users.example,DNS:www.example.org", "DNS:alice.x.users.example",
     "DNS:alice.users.example,DNS:bob.users.example"),
    ("san-uri", "cert_identity_prefix = spiffe://example.org/user/",
     "URI:spiffe://example.org/user/alice", "URI:spiffe://example.org/service/alice",
     "URI:spiffe://example.org/user/alice,URI:spiffe://example.org/user/bob"),
]


@pytest.mark.parametrize("mode,setting,good,other,two", SAN_MODES,
                         ids=[m[0] for m in SAN_MODES])
def test_certificate_names_the_user_by_subject_alt_name(files, short_pki, mode, setting, good,
                                                        other, two):
    """Exactly one SAN entry of the mode's type must match the configured
    rule; its name part is the user. The CN plays no part."""
    d = short_pki
    good_cert = client_cert(d, "good", "/CN=admin", good)
    other_cert = client_cert(d, "other", "/CN=alice", other)
    two_cert = client_cert(d, "two", "/CN=alice", two)
    plain = client_cert(d, "plain", "/CN=alice")
    b = tls_broker(files, d, "cert_identity = %s\n%s\n" % (mode, setting))
    try:
        r = cert_call(b, d, good_cert)
        assert r.returncode == 0 and b"connections" in r.stdout, r.stderr
        for cert in (other_cert, two_cert, plain):
            r = cert_call(b, d, cert)
            assert r.returncode == 4 and b"AUTH_REQUIRED" in r.stderr, (cert, r.stderr)
        stats = json.loads(cert_call(b, d, good_cert).stdout)
        assert stats["cert_identities_refused"] == "3", stats
    finally:
        err = b.stop()
    assert "more than one subjectAltName entry matches" in err
    assert "no subjectAltName entry matches" in err


@pytest.mark.parametrize("settings,why", [
    ("cert_identity = san-email\n", "needs cert_identity_domain"),
    ("cert_identity = san-dns\n", "needs cert_identity_suffix"),
    ("cert_identity = san-uri\n", "needs cert_identity_prefix"),
    ("cert_identity = cn\ncert_identity_suffix = users.example\n", "does not go with"),
    ("cert_identity = san-dns\ncert_identity_domain = users.example\n", "does not go with"),
    ("cert_identity = san-uri\ncert_identity_prefix = spiffe://example.org/user\n",
     "must end with / or :"),
    ("cert_identity = san-dns\ncert_identity_suffix = *.example\n", "must be a DNS name"),
    ("cert_identity = subject\n", "cert_identity is cn, san-dns"),
])
def test_bad_certificate_identity_settings_stop_the_broker(files, settings, why):
    conf = files / "broker.conf"
    conf.write_text("[auth]\npassword_file = %s\nacl_file = %s\n%s"
                    % (files / "passwd", files / "acl", settings))
    r = run([BROKER, "--config", str(conf)], check=False)
    assert r.returncode == 2 and why.encode() in r.stderr, r.stderr


def test_overlong_config_lines_are_refused(tmp_path):
    conf = tmp_path / "long.conf"
    conf.write_text("[broker]\nlisten = ssl:0:privateKey=%s:certKey=x\n" % ("/k" * 120))
    r = run([BROKER, "--config", str(conf)], check=False)
    assert r.returncode == 2 and b"long.conf:2: line longer than 199 characters" in r.stderr


def test_star_is_every_peer_and_authenticated_the_logged_in_ones(files):
    (files / "acl").write_text(ACL + "allow anonymous call Public.>\ndeny * call Public.secret\n"
                               "allow * call Open\nallow authenticated call Members\n"
                               "allow user:alice call Public.>\n")
    b = start(files, "anonymous = guests\n")
    try:
        anon = Peer(b.port)
        assert anon.call("Public.news")[b"_error_code"] == b"UNHANDLED"  # allowed
        got = anon.call("Public.secret")
        assert got[b"_error_code"] == b"PERMISSION_DENIED", got  # deny * covers anonymous
        assert anon.call("Open")[b"_error_code"] == b"UNHANDLED"
        assert anon.call("Members")[b"_error_code"] == b"PERMISSION_DENIED"
        alice = login(b.port, username="alice", password="wonderland")
        assert alice.call("Members")[b"_error_code"] == b"UNHANDLED"
        assert alice.call("Open")[b"_error_code"] == b"UNHANDLED"
        assert alice.call("Public.secret")[b"_error_code"] == b"PERMISSION_DENIED"
    finally:
        err = b.stop()
    assert "'allow *' rule(s) apply to anonymous peers too" in "".join(b.lines) + err


def test_iteration_counts_outside_the_bounds_stop_the_broker(files):
    salt, digest = "00" * 16, "11" * 32
    for iterations in (9999, 1000001, 50000000):
        (files / "passwd").write_text("alice:users:pbkdf2-sha256$%d$%s$%s\n"
                                      % (iterations, salt, digest))
        conf = files / "broker.conf"
        conf.write_text("[auth]\npassword_file = %s\nacl_file = %s\n" % (files / "passwd",
                                                                          files / "acl"))
        r = run([BROKER, "--config", str(conf)], check=False)
        assert r.returncode == 2 and b"between 10000 and 1000000" in r.stderr, r.stderr


def failed_login_seconds(port, user, source):
    p = Peer(port, source)
    t0 = time.perf_counter()
    got = p.call("amp.Login", username=user, password="not-the-password")
    dt = time.perf_counter() - t0
    assert got[b"_error_code"] == b"AUTH_FAILED", got
    p.close()
    return dt


def test_unknown_users_cost_as_much_as_known_ones(files):
    """A failed login for a user without a password, or for no user at all,
    runs a dummy key derivation of the default cost, counted as one password
    check like a real one (the count, not a clock, decides: timings are no
    test on a shared machine). Every attempt comes from its own address and
    no name fails five times, so no throttle answers instead."""
    b = start(files, login_timeout=10)
    try:
        admin = login(b.port, username="alice", password="wonderland")

        def password_checks():
            return int(admin.call("amp.Stats")[b"password_checks"])
        checks = {}
        for k, user in enumerate(("alice", "bob", "nobody")):  # password, token only, unknown
            before = password_checks()
            for i in range(3):
                failed_login_seconds(b.port, user, "127.0.0.%d" % (10 + 3 * i + k))
            checks[user] = password_checks() - before
        assert checks == {"alice": 3, "bob": 3, "nobody": 3}, checks
    finally:
        b.stop()


def raw_login(sock, tag, user, password):
    sock.sendall(raw_box([(b"_ask", str(tag).encode()), (b"_command", b"amp.Login"),
                          (b"username", user.encode()), (b"password", password.encode())]))


def test_a_login_held_for_the_whole_wait_is_told_a_true_wait(files):
    """The first wait is 1 s, all of it spent holding the login (the login
    timeout leaves room): the refusal says to wait 1 s, never 0 s."""
    b = start(files, "login_throttle_after = 1\n", login_timeout=10)
    try:
        assert failed_login_seconds(b.port, "alice", "127.0.0.1") >= 0
        p = Peer(b.port, "127.0.0.2")  # the user waits, not this address
        got = p.call("amp.Login", username="alice", password="wonderland")
        assert got[b"_error_code"] == b"LOGIN_THROTTLED", got
        wait = re.search(rb"try again in (\d+) s$", got[b"_error_description"])
        assert wait and int(wait.group(1)) >= 1, got
        p.close()
    finally:
        b.stop()


def test_pending_logins_are_bounded(files):
    """One check at a time per connection, max_pending_logins_per_address
    per address, max_pending_logins in all: beyond them LOGIN_BUSY at once."""
    b = start(files, "login_workers = 1\nmax_pending_logins = 3\n"
                     "max_pending_logins_per_address = 2\nlogin_throttle_after = 1000\n",
              login_timeout=10)
    try:
        # a second login on the same connection while the first is checked
        p = Peer(b.port)
        raw_login(p.s, 1, "alice", "wrong")
        raw_login(p.s, 2, "alice", "wrong")
        first, p.buf = read_box(p.s, p.buf)
        assert dict(first) == {b"_error": b"2", b"_error_code": b"LOGIN_BUSY",
                               b"_error_description":
                               b"a login is already in progress on this connection"}
        second, p.buf = read_box(p.s, p.buf)
        assert dict(second)[b"_error_code"] == b"AUTH_FAILED"
        # per address: five connections from 127.0.0.1 at once, one worker
        peers = [Peer(b.port) for _ in range(5)]
        for q in peers:
            raw_login(q.s, 1, "alice", "wrong")
        codes = [dict(read_box(q.s, q.buf)[0])[b"_error_code"] for q in peers]
        assert codes.count(b"LOGIN_BUSY") >= 1 and b"AUTH_FAILED" in codes, codes
        # globally: from five addresses
        peers = [Peer(b.port, "127.0.0.%d" % (2 + i)) for i in range(5)]
        for q in peers:
            raw_login(q.s, 1, "alice", "wrong")
        codes = [dict(read_box(q.s, q.buf)[0])[b"_error_code"] for q in peers]
        assert codes.count(b"LOGIN_BUSY") >= 1 and b"AUTH_FAILED" in codes, codes
        stats = login(b.port, username="alice", password="wonderland").call("amp.Stats")
        assert int(stats[b"logins_busy"]) >= 3, stats
    finally:
        b.stop()


def test_failed_logins_are_throttled_per_user_and_per_address(files):
    """After login_throttle_after failures the user name and the address
    wait: a login meanwhile is held (another on the same connection is
    LOGIN_BUSY at once), then refused with LOGIN_THROTTLED, unchecked.
    Token logins keep their own per-address count: bad passwords from a
    shared address do not lock out its token users, bad tokens do."""
    (files / "acl").write_text(ACL + "allow role:workers call amp.Stats\n")
    # a throttled login is held for at most half the time left to log in
    b = start(files, "login_throttle_after = 2\nlogin_throttle_max = 60\n", login_timeout=0.7)
    try:
        for _ in range(2):
            assert failed_login_seconds(b.port, "alice", "127.0.0.1") >= 0
        # within the first wait (1 s), all at once: alice from elsewhere with
        # the right password (the user waits), a good token from 127.0.0.1
        # (password failures do not hold it up), and one that leaves
        alice, token, gone = (Peer(b.port, "127.0.0.2"), Peer(b.port, "127.0.0.1"),
                              Peer(b.port, "127.0.0.1"))
        raw_login(alice.s, 1, "alice", "wonderland")
        raw_login(alice.s, 2, "alice", "wonderland")
        for peer in (token, gone):
            peer.s.sendall(raw_box([(b"_ask", b"1"), (b"_command", b"amp.Login"),
                                    (b"token", b"s3cret-token")]))
        gone.close()
        first, alice.buf = read_box(alice.s, alice.buf)
        assert dict(first)[b"_error"] == b"2", first  # the held one answers later
        assert dict(first)[b"_error_code"] == b"LOGIN_BUSY", first
        second, alice.buf = read_box(alice.s, alice.buf)
        assert dict(second)[b"_error"] == b"1", second
        assert dict(second)[b"_error_code"] == b"LOGIN_THROTTLED", second
        assert b"try again in" in dict(second)[b"_error_description"]
        got = dict(read_box(token.s, token.buf)[0])
        assert got[b"identity"] == b"bob", got
        # the connection stays: it may try again (still within the wait)
        raw_login(alice.s, 3, "alice", "wonderland")
        third, alice.buf = read_box(alice.s, alice.buf)
        assert dict(third)[b"_error_code"] == b"LOGIN_THROTTLED", third
        # other users from other addresses are not affected
        worker = login(b.port, "127.0.0.3", username="worker", password="w0rk")
        stats = worker.call("amp.Stats")
        assert stats[b"logins_throttled"] == b"2" and stats[b"logins_failed"] == b"2", stats
        # bad tokens from 127.0.0.4 hold up its token logins, not its password ones
        for _ in range(2):
            bad = Peer(b.port, "127.0.0.4")
            assert bad.call("amp.Login", token="guess")[b"_error_code"] == b"AUTH_FAILED"
            bad.close()
        got = Peer(b.port, "127.0.0.4").call("amp.Login", token="s3cret-token")
        assert got[b"_error_code"] == b"LOGIN_THROTTLED", got
        login(b.port, "127.0.0.4", username="worker", password="w0rk")
    finally:
        b.stop()


def test_peers_leaving_while_their_password_is_checked(files):
    """The check's result is dropped; nothing is answered, nothing counted,
    nothing crashes; a broker stopped with checks running exits cleanly."""
    b = start(files, login_timeout=10)
    try:
        for i in range(12):
            s = socket.create_connection(("127.0.0.1", b.port),
                                         source_address=("127.0.0.%d" % (2 + i % 4), 0))
            raw_login(s, 1, "alice", "wrong")
            s.close()
        time.sleep(0.6)  # the checks finish after their peers left (or are still queued)
        stats = login(b.port, username="alice", password="wonderland").call("amp.Stats")
        assert stats[b"logins_failed"] == b"0", stats
        for i in range(4):
            s = socket.create_connection(("127.0.0.1", b.port),
                                         source_address=("127.0.0.%d" % (20 + i), 0))
            raw_login(s, 1, "alice", "wrong")
        time.sleep(0.05)
    finally:
        b.stop()
    assert b.proc.returncode == 0


def provide_sum(worker):
    """Answer every call forwarded to this raw connection, until it closes."""
    def loop():
        try:
            while True:
                got, worker.buf = read_box(worker.s, worker.buf)
                ask = dict(got)[b"_ask"]
                worker.s.sendall(raw_box([(b"_answer", ask), (b"total", b"3")]))
        except (AssertionError, OSError):
            return
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def flood_bad_passwords(port, stop, codes):
    while not stop.is_set():
        try:
            p = Peer(port)
            codes.append(p.call("amp.Login", username="alice", password="wrong")
                         .get(b"_error_code"))
            p.close()
        except (AssertionError, OSError):
            time.sleep(0.01)


def test_calls_are_answered_during_a_login_flood(files):
    """Sixty-four connections keep sending bad passwords for a real user
    while a logged-in client makes routed calls: hashing runs off the loop,
    so every call is answered well within a second (with the hashing on the
    loop it waited for up to 64 x 42 ms)."""
    b = start(files, login_timeout=10)
    stop = threading.Event()
    try:
        worker = login(b.port, username="worker", password="w0rk")
        assert b"_answer" in worker.call("amp.Register", command="Sum")
        provide_sum(worker)
        alice = login(b.port, username="alice", password="wonderland")
        codes = []
        flooders = [threading.Thread(target=flood_bad_passwords, args=(b.port, stop, codes),
                                     daemon=True) for _ in range(64)]
        for t in flooders:
            t.start()
        time.sleep(0.5)
        slowest = 0
        for _ in range(20):
            t0 = time.perf_counter()
            assert alice.call("Sum", a="1", b="2")[b"total"] == b"3"
            slowest = max(slowest, time.perf_counter() - t0)
            time.sleep(0.05)
        stop.set()
        for t in flooders:
            t.join(timeout=10)
        assert slowest < 1.0, slowest
        stats = alice.call("amp.Stats")
        assert int(stats[b"logins_throttled"]) + int(stats[b"logins_busy"]) > 0, stats
        assert b"LOGIN_BUSY" in codes or b"LOGIN_THROTTLED" in codes
    finally:
        stop.set()
        b.stop()


def test_reload_ends_sessions_whose_credential_changed(files):
    with open(files / "passwd", "a") as f:
        f.write("bob:users:%s\n" % hash_password("bobs-password"))
    (files / "acl").write_text(ACL + "allow role:users call amp.Stats\n")
    b = start(files, login_timeout=10)
    try:
        bob_token = login(b.port, token="s3cret-token")
        bob_password = login(b.port, username="bob", password="bobs-password")
        alice = login(b.port, username="alice", password="wonderland")
        worker = login(b.port, username="worker", password="w0rk")
        # bob's token goes (bob stays, with his password); alice's password changes
        (files / "tokens").write_text("# none\n")
        (files / "passwd").write_text(
            "alice:users:%s\nworker:workers:%s\nbob:users:%s\n"
            % (hash_password("new-password"),
               [l for l in (files / "passwd").read_text().splitlines()
                if l.startswith("worker:")][0].split(":", 2)[2],
               [l for l in (files / "passwd").read_text().splitlines()
                if l.startswith("bob:")][0].split(":", 2)[2]))
        os.kill(b.proc.pid, signal.SIGHUP)
        time.sleep(0.5)
        assert bob_token.closed() and alice.closed()
        assert bob_password.still_open() and worker.still_open()
        stats = bob_password.call("amp.Stats")
        assert stats[b"credentials_revoked"] == b"2", stats
        assert b"identity" in Peer(b.port).call("amp.Login", username="alice",
                                                password="new-password")
    finally:
        err = b.stop()
    assert "bob is no longer allowed (token removed or changed)" in err
    assert "alice is no longer allowed (user or password changed)" in err


def test_connections_per_user_are_capped(files):
    (files / "acl").write_text(ACL + "allow role:users call amp.Stats\n")
    b = start(files, "max_connections_per_user = 2\n")
    try:
        first = login(b.port, token="s3cret-token")
        second = login(b.port, token="s3cret-token")
        third = Peer(b.port)
        got = third.call("amp.Login", token="s3cret-token")
        assert got[b"_error_code"] == b"TOO_MANY_CONNECTIONS", got
        assert third.closed()
        assert b"identity" in login(b.port, username="alice", password="wonderland").call(
            "amp.Login", username="alice", password="wonderland")  # other users are not
        second.close()
        time.sleep(0.2)
        again = login(b.port, token="s3cret-token")
        stats = again.call("amp.Stats")
        assert stats[b"logins_over_user_cap"] == b"1", stats
        first.close()
    finally:
        b.stop()
