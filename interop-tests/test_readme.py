"""The README's examples work as pasted."""
import os
import re
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
                        os.path.join(BUILD, "libamp", "libamp.a"), "-lm", "-lpthread",
                        "-o", exe], check=True)
        out = run([exe]).stdout.decode().splitlines()
    assert out == expected


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
