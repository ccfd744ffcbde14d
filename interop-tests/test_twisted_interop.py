"""libamp and Twisted talking over live sockets, in both directions.

Each direction runs the same scenario list (interop-tests/python/twisted_peer.py
and interop-tests/c/peer.c implement it on each side): every argument type at
its edge values (from spec/vectors), unknown commands, declared, fatal and
undeclared errors, calls without _ask, 200 pipelined calls answered out of
order, StartTLS followed by more calls, TLS listeners, and Descriptor passing
over a UNIX socket.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import Proc, run

HERE = os.path.dirname(os.path.abspath(__file__))
TWISTED_PEER = [sys.executable if sys.executable.startswith("/usr/bin/") else "/usr/bin/python3",
                os.path.join(HERE, "python", "twisted_peer.py")]
BUILD = os.environ.get("AMP_BUILD_DIR", os.path.join(os.path.dirname(HERE), "build"))
C_PEER = os.path.join(BUILD, "interop-tests", "amp-interop-peer")
AMP_CLI = os.path.join(BUILD, "tools", "amp-cli", "amp-cli")

SCENARIOS = 21  # PASS lines every check prints for TCP alone


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a server certificate for localhost, made by the openssl CLI."""
    d = tmp_path_factory.mktemp("pki")

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=amp interop CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost")
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
         "-subj", "/CN=amp test client")
    ossl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "client.pem", "-days", "2")
    (d / "cadir").mkdir()
    (d / "cadir" / "ca.pem").write_bytes((d / "ca.pem").read_bytes())
    return d


class Server(Proc):
    """A peer process serving the interop commands: ready when it prints its port."""

    def __init__(self, argv):
        super().__init__(argv, r"^port (-?\d+)")  # -1 for UNIX sockets
        self.port = int(self.match.group(1))


def twisted_server(endpoint, *extra):
    return Server([*TWISTED_PEER, "serve", endpoint, *extra])


def c_server(endpoint, *extra):
    return Server([C_PEER, "serve", endpoint, *extra])


def check(client, endpoint, *extra, want=SCENARIOS):
    argv = [*TWISTED_PEER, "check", endpoint, *extra] if client == "twisted" else \
        [C_PEER, "check", endpoint, *extra]
    p = run(argv, check=False)
    out = p.stdout.decode()
    fails = [l for l in out.splitlines() if not l.startswith("PASS")]
    assert p.returncode == 0 and not fails, out + p.stderr.decode(errors="replace")
    assert out.count("PASS") >= want, out
    return out


@pytest.mark.parametrize("client,server", [("twisted", "c"), ("c", "twisted"), ("c", "c")])
def test_tcp_unix_and_starttls(client, server, pki, tmp_path):
    sock = str(tmp_path / "peer.sock")
    tls = ["--cert", str(pki / "server.pem"), "--key", str(pki / "server.key")]
    if server == "c":
        srv = c_server("tcp:0:interface=127.0.0.1", "--unix", sock, *tls)
        unix = None
    else:
        srv = twisted_server("tcp:0:interface=127.0.0.1", *tls)
        unix = twisted_server("unix:" + sock)
    try:
        out = check(client, "tcp:127.0.0.1:%d" % srv.port, "--unix", sock,
                    "--ca", str(pki / "ca.pem"), want=SCENARIOS + 3)
        assert "Descriptor passed over a UNIX socket" in out
        assert "StartTLS" in out
    finally:
        srv.stop()
        if unix:
            unix.stop()


@pytest.mark.parametrize("client,server", [("twisted", "c"), ("c", "twisted")])
def test_tls_listener(client, server, pki):
    ep = "ssl:0:privateKey=%s:certKey=%s:interface=127.0.0.1" % (pki / "server.key",
                                                                 pki / "server.pem")
    srv = c_server(ep) if server == "c" else twisted_server(ep)
    try:
        if client == "twisted":
            check(client, "ssl:host=localhost:port=%d:caCertsDir=%s" % (srv.port, pki / "cadir"))
        else:
            check(client, "ssl:host=localhost:port=%d:caCerts=%s" % (srv.port, pki / "ca.pem"))
    finally:
        srv.stop()


def test_tls_refuses_wrong_ca_and_wrong_host(pki):
    ep = "ssl:0:privateKey=%s:certKey=%s:interface=127.0.0.1" % (pki / "server.key",
                                                                 pki / "server.pem")
    srv = c_server(ep)
    try:
        p = run([AMP_CLI, "call", "ssl:host=localhost:port=%d:caCerts=%s" % (
            srv.port, pki / "server.pem"), "Sum", "a:int=1", "b:int=2"], check=False)
        assert p.returncode == 5 and b"certificate verification failed" in p.stderr, p.stderr
        p = run([AMP_CLI, "call", "ssl:host=127.0.0.1:port=%d:caCerts=%s:hostname=other.example"
                 % (srv.port, pki / "ca.pem"), "Sum", "a:int=1", "b:int=2"], check=False)
        assert p.returncode == 5 and b"verification failed" in p.stderr, p.stderr
        p = run([AMP_CLI, "call", "ssl:host=localhost:port=%d:caCerts=%s" % (
            srv.port, pki / "ca.pem"), "Sum", "a:int=1", "b:int=2"])
        assert p.stdout == b'{"total":"3"}\n'
        # TLS 1.1 is below the floor
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.port,
                            "-tls1_1"], input=b"", capture_output=True, timeout=30)
        assert p.returncode != 0
    finally:
        srv.stop()


@pytest.mark.parametrize("mode", ["required", "optional"])
def test_client_certificates(pki, mode):
    ep = "ssl:0:privateKey=%s:certKey=%s:caCerts=%s:clientCert=%s:interface=127.0.0.1" % (
        pki / "server.key", pki / "server.pem", pki / "ca.pem", mode)
    srv = c_server(ep)
    base = "ssl:host=localhost:port=%d:caCerts=%s" % (srv.port, pki / "ca.pem")
    try:
        with_cert = base + ":certKey=%s:privateKey=%s" % (pki / "client.pem", pki / "client.key")
        p = run([AMP_CLI, "call", with_cert, "Sum", "a:int=1", "b:int=2"])
        assert p.stdout == b'{"total":"3"}\n'
        p = run([AMP_CLI, "call", base, "Sum", "a:int=1", "b:int=2"], check=False)
        if mode == "required":
            assert p.returncode == 5, p.stderr
        else:
            assert p.returncode == 0 and p.stdout == b'{"total":"3"}\n', p.stderr
        # a certificate from another CA is refused in both modes
        other = pki / "other"
        other.mkdir(exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        "o.key", "-out", "o.pem", "-days", "1", "-subj", "/CN=stranger"],
                       cwd=other, check=True, capture_output=True)
        p = run([AMP_CLI, "call", base + ":certKey=%s:privateKey=%s" % (other / "o.pem",
                 other / "o.key"), "Sum", "a:int=1", "b:int=2"], check=False)
        assert p.returncode == 5, p.stdout
    finally:
        srv.stop()


@pytest.mark.parametrize("server", ["twisted", "c"])
def test_peer_vanishing_mid_call_fails_every_call_once(server):
    srv = twisted_server("tcp:0:interface=127.0.0.1") if server == "twisted" else \
        c_server("tcp:0:interface=127.0.0.1")
    n = 150
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "exitcode=86")
    client = subprocess.Popen([C_PEER, "vanish", "tcp:127.0.0.1:%d" % srv.port, str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert client.stdout.readline().decode().strip() == "sent %d" % n
        time.sleep(0.3)
        srv.stop(signal.SIGKILL)
        out, err = client.communicate(timeout=30)
        assert client.returncode == 0, (out, err)
        # every call completed exactly once, none with an answer
        assert out.decode().strip() == "completed %d answered 0" % n, out
    finally:
        if client.poll() is None:
            os.kill(client.pid, signal.SIGKILL)
            client.wait()
        srv.stop()


def test_amp_cli_call_against_twisted():
    srv = twisted_server("tcp:0:interface=127.0.0.1")
    ep = "tcp:127.0.0.1:%d" % srv.port
    try:
        p = run([AMP_CLI, "call", ep, "Sum", "a:int=13", "b:int=81"])
        assert p.stdout == b'{"total":"94"}\n'
        p = run([AMP_CLI, "call", "tcp:host=127.0.0.1:port=%d" % srv.port, "Nope"],
                check=False)
        assert p.returncode == 4
        assert p.stderr == b"UNHANDLED: Unhandled Command: b'Nope'\n"
        p = run([AMP_CLI, "call", ep, "Fail"], check=False)
        assert p.returncode == 4 and p.stderr.startswith(b"OOPS: it went wrong")
        typed = [
            ("EchoInteger", "value:int=-123456789012345678901234567890",
             '"-123456789012345678901234567890"'),
            ("EchoFloat", "value:float=1e16", '"1e+16"'),
            ("EchoFloat", "value:float=0.1", '"0.1"'),
            ("EchoBoolean", "value:bool=true", '"True"'),
            ("EchoDecimal", "value:decimal=1.50E+3", '"1.50E+3"'),
            ("EchoDateTime", "value:datetime=2024-05-01T12:00:00.000000+00:00",
             '"2024-05-01T12:00:00.000000-00:00"'),
            ("EchoUnicode", "value:unicode=h\u00e9llo", '"h\u00e9llo"'),
            ("EchoString", "value:hex=00ff", '"\\u0000\\udcff"'),
            ("EchoListOfInteger", "value:list<int>=[1,20,500]",
             '"\\u0000\\u00011\\u0000\\u000220\\u0000\\u0003500"'),
            ("EchoAmpList", 'value:amplist=[{"a":"7","b":"hi"}]',
             '"\\u0000\\u0001a\\u0000\\u00017\\u0000\\u0001b\\u0000\\u0002hi\\u0000\\u0000"'),
            ("EchoStructured", 'value:msgpack={"k":[1,true,null]}',
             '"\\udc81\\udca1k\\udc93\\u0001\\udcc3\\udcc0"'),
        ]
        for cmd, arg, want in typed:
            p = run([AMP_CLI, "call", ep, cmd, arg])
            assert p.stdout.decode() == '{"value":%s}\n' % want, (cmd, p.stdout)
        p = run([AMP_CLI, "call", "--timeout", "0.5", ep, "Delay", "ms:int=3000", "n:int=1"],
                check=False)
        assert p.returncode == 6 and b"timed out" in p.stderr
        p = run([AMP_CLI, "call", "--no-answer", ep, "Notify", "text=hi"])
        assert p.stdout == b""
    finally:
        srv.stop()
    p = run([AMP_CLI, "call", ep, "Sum"], check=False)
    assert p.returncode == 5 and b"Connection refused" in p.stderr
    p = run([AMP_CLI, "call", "tcp:127.0.0.1", "Sum"], check=False)
    assert p.returncode == 2 and b"missing the port" in p.stderr
    p = run([AMP_CLI, "call", ep, "Sum", "a:int=x"], check=False)
    assert p.returncode == 1 and b"is not an integer" in p.stderr


def test_amp_cli_listen_answers_and_prints(tmp_path):
    def listen(*opts):
        proc = subprocess.Popen([AMP_CLI, "listen", *opts, "tcp:0:interface=127.0.0.1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = proc.stderr.readline().decode()
        port = int(line.rsplit("port ", 1)[1].rstrip(")\n"))
        return proc, "tcp:127.0.0.1:%d" % port

    proc, ep = listen("--answer", "total:int=94", "--answer", "note=ok")
    try:
        p = run([AMP_CLI, "call", ep, "Sum", "a:int=13", "b:int=81"])
        assert p.stdout == b'{"total":"94","note":"ok"}\n'
        # call first asks for Sum's signature; listen's empty answer has none
        assert proc.stdout.readline() == b'{"_ask":"1","_command":"amp.Commands","command":"Sum"}\n'
        assert proc.stdout.readline() == b'{"_ask":"2","_command":"Sum","a":"13","b":"81"}\n'
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    # --count 1 counts the call, not call's look-up before it
    proc, ep = listen("--answer", "total:int=94", "--count", "1")
    try:
        p = run([AMP_CLI, "call", ep, "Sum", "a:int=13"])
        assert p.stdout == b'{"total":"94"}\n'
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
    proc, ep = listen("--error", "NOPE:not today")
    try:
        p = run([AMP_CLI, "call", ep, "Anything"], check=False)
        assert p.returncode == 4 and p.stderr == b"NOPE: not today\n"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    # a Twisted client calling amp-cli listen
    proc, ep = listen("--answer", "total:int=3", "--count", "1")
    script = (
        "import sys\n"
        "sys.path.insert(0, %r)\n"
        "from twisted.internet import reactor, endpoints\n"
        "from twisted.protocols import amp\n"
        "from twisted_peer import Sum\n"
        "def go():\n"
        "    d = endpoints.connectProtocol(endpoints.clientFromString(reactor, %r), amp.AMP())\n"
        "    d.addCallback(lambda p: p.callRemote(Sum, a=1, b=2))\n"
        "    d.addCallback(lambda r: print(r['total']))\n"
        "    d.addBoth(lambda _: reactor.stop())\n"
        "reactor.callWhenRunning(go)\n"
        "reactor.run()\n" % (os.path.join(HERE, "python"), ep))
    p = run([TWISTED_PEER[0], "-c", script])
    assert p.stdout == b"3\n"
    assert proc.wait(timeout=10) == 0
