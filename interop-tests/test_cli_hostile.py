"""amp-cli against peers that lie: what another peer declares never makes
amp-cli open a file for it."""
import subprocess

from test_broker import broker
from test_cli_bus import cli, env
from test_twisted_interop import AMP_CLI

BAD_ARGUMENT = 1


def test_a_declared_descriptor_never_opens_a_file(tmp_path):
    """A provider declaring an argument Descriptor cannot make
    'call Note text=/some/file' open that file and pass it: the user must say
    text:fd=PATH. Before, amp-cli opened the path the user meant as text."""
    secret = tmp_path / "secret"
    secret.write_text("private\n")
    b = broker()
    serve = subprocess.Popen([AMP_CLI, "serve", "--server", b.endpoint, "--answer", "ok=1",
                              "Note(text: Descriptor) -> (ok: String)"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    try:
        assert serve.stderr.readline().startswith(b"amp-cli serve: serving")
        p = cli("call", "--server", b.endpoint, "Note", "text=%s" % secret, check=False)
        assert p.returncode == BAD_ARGUMENT, p.stderr
        assert b"declared Descriptor: to pass a file, give it as text:fd=PATH" in p.stderr
    finally:
        serve.send_signal(2)
        serve.communicate(timeout=30)
        b.stop()

