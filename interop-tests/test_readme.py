"""The README's examples work as pasted."""
import os
import re
import socket
import subprocess
import tempfile

from conftest import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("AMP_BUILD_DIR", os.path.join(ROOT, "build"))


def readme_blocks(lang):
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    return re.findall(r"```%s\n(.*?)```" % lang, text, re.S)


def test_c_example_compiles_and_runs():
    """The codec example needs libamp-core alone."""
    code = readme_blocks("c")[0]
    want = [b for b in readme_blocks("sh") if "./example" in b][0]
    expected = [l[5:] for l in want.splitlines() if l.startswith("# => ")]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "example.c")
        with open(src, "w") as f:
            f.write(code)
        exe = os.path.join(tmp, "example")
        cflags = os.environ.get("CFLAGS", "").split()
        subprocess.run(["cc", *cflags, "-Wall", "-Werror", src,
                        "-I", os.path.join(ROOT, "libamp", "include"),
                        "-I", os.path.join(BUILD, "libamp", "include"),
                        os.path.join(BUILD, "libamp", "libamp-core.a"), "-lm",
                        "-o", exe], check=True)
        out = run([exe]).stdout.decode().splitlines()
    assert out == expected


def named_examples():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    return dict(re.findall(r"<!-- example: (\S+) -->\n```c\n(.*?)```", text, re.S))


def build_example(name, code, tmp):
    src = os.path.join(tmp, name)
    with open(src, "w") as f:
        f.write(code)
    exe = src[:-2]
    cflags = os.environ.get("CFLAGS", "").split()
    subprocess.run(["cc", *cflags, "-Wall", "-Werror", src,
                    "-I", os.path.join(ROOT, "libamp", "include"),
                    "-I", os.path.join(BUILD, "libamp", "include"),
                    os.path.join(BUILD, "libamp", "libamp.a"),
                    os.path.join(BUILD, "libamp", "libamp-core.a"), "-lev", "-lssl", "-lcrypto", "-lm", "-lpthread", "-o", exe], check=True)
    return exe


def test_server_and_client_examples(tmp_path):
    ex = named_examples()
    assert set(ex) >= {"sum_server.c", "sum_client.c"}
    server = build_example("sum_server.c", ex["sum_server.c"], str(tmp_path))
    client = build_example("sum_client.c", ex["sum_client.c"], str(tmp_path))
    proc = subprocess.Popen([server, "tcp:0:interface=127.0.0.1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("serving Sum on port "), line
        port = int(line.split()[-1])
        p = run([client, "tcp:127.0.0.1:%d" % port])
        assert p.stdout == b"total = 94\n"
    finally:
        os.kill(proc.pid, 15)
        proc.wait(timeout=10)
    # the same client against Twisted
    twisted = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "interop-tests", "python",
                                "twisted_peer.py"), "serve", "tcp:0:interface=127.0.0.1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(twisted.stdout.readline().split()[1])
        p = run([client, "tcp:127.0.0.1:%d" % port])
        assert p.stdout == b"total = 94\n"
    finally:
        os.kill(twisted.pid, 15)
        twisted.wait(timeout=10)


def test_cli_examples_print_what_the_readme_says():
    block = [b for b in readme_blocks("sh") if "amp-cli decode" in b][0]
    cli = os.path.join(BUILD, "tools", "amp-cli", "amp-cli")
    # commands are joined across trailing backslashes; "# => " lines after
    # one are its expected output
    cmds, cur = [], ""
    for line in block.splitlines():
        if line.startswith("# => ") and cmds and not cur:
            cmds[-1][1].append(line[5:])
        elif line.startswith("#") or not line.strip():
            continue
        elif line.endswith("\\"):
            cur += line[:-1]
        else:
            cmds.append([cur + line, []])
            cur = ""
    checked = 0
    for cmd, expected in cmds:
        if not expected:
            continue
        cmd = cmd.replace("build/tools/amp-cli/amp-cli", cli)
        p = subprocess.run(["bash", "-c", cmd], capture_output=True, check=True)
        assert p.stdout.decode().splitlines() == expected, cmd
        checked += 1
    assert checked >= 2


def test_server_and_client_shell_block_runs_as_written(tmp_path):
    """The shell block that builds and runs sum_server and sum_client, run
    as pasted against an installed copy of this build (a temporary prefix
    instead of /usr/local; a free port instead of 7000): the client waits for
    the server, gets its answer, and the block ends the server itself."""
    with open(os.path.join(ROOT, "README.md")) as f:
        block = re.search(r"<!-- example: run -->\n```sh\n(.*?)```", f.read(), re.S).group(1)
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", BUILD, "--prefix", str(prefix)], check=True,
                   capture_output=True)
    libdir = os.path.dirname(next(prefix.rglob("libamp.so")))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = str(sock.getsockname()[1])
    sock.close()
    for name, code in named_examples().items():
        (tmp_path / name).write_text(code.replace("7000", port))
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"),
               LD_LIBRARY_PATH=libdir)
    script = block.replace("cc ", "cc %s " % os.environ.get("CFLAGS", ""))
    p = subprocess.Popen(["sh", "-e", "-c", script], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=60)  # a server left running holds stdout open
    finally:
        if p.poll() is None:
            os.killpg(p.pid, 9)
            p.wait()
    assert p.returncode == 0, err
    expected = [l[5:] for l in block.splitlines() if l.startswith("# => ")]
    assert expected and out.decode().splitlines() == \
        ["serving Sum on port %s" % port] + expected, (out, err)
