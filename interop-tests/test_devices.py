"""amp::core on devices.

- A Cortex-M3 (QEMU's mps2-an385 board, picolibc, semihosting) runs the
  spec's golden vectors through the core with every byte of memory taken
  from a static arena: no malloc in the image.
- amp-sensor, built for 32-bit ARM Linux with the core alone and plain
  sockets, runs under qemu-arm against amp-broker on loopback: a Twisted
  peer receives its readings as events and calls its command through the
  broker.

Both are cross-compiled here, each in a build directory of its own under
AMP_BUILD_DIR/devices with its toolchain file (devices/toolchains/cortex-m3.cmake,
devices/toolchains/arm-linux-gnueabihf.cmake) and AMP_CORE_ONLY=ON.
"""
import json
import os
import re
import shutil
import struct
import subprocess

import pytest

from conftest import Proc, run
from test_broker import broker, stats
from test_twisted_interop import BUILD, HERE

ROOT = os.path.dirname(HERE)
DEVICES = os.path.join(ROOT, "devices")
VECTORS = os.path.join(ROOT, "spec", "vectors")
QEMU_SYSTEM = ["qemu-system-arm", "-M", "mps2-an385", "-nographic",
               "-semihosting-config", "enable=on,target=native", "-kernel"]
SENSOR_PEER = ["/usr/bin/python3", os.path.join(HERE, "python", "sensor_peer.py")]
ALLOCATOR_SYMBOLS = {"malloc", "free", "realloc", "calloc", "_malloc_r", "_free_r",
                     "_realloc_r", "_calloc_r", "sbrk", "_sbrk", "__malloc_sbrk_base"}


def cross_build(name, source, toolchain):
    """Configure and build devices/SOURCE for another CPU in BUILD/devices/NAME."""
    out = os.path.join(BUILD, "devices", name)
    # the host build's flags (sanitizers, in the ASan run) are not the target's
    env = {k: v for k, v in os.environ.items() if k not in ("CFLAGS", "LDFLAGS", "CC")}
    for argv in (["cmake", "-S", os.path.join(DEVICES, source), "-B", out,
                  "-DCMAKE_TOOLCHAIN_FILE=" + os.path.join(DEVICES, "toolchains", toolchain),
                  "-DCMAKE_BUILD_TYPE=MinSizeRel"],
                 ["cmake", "--build", out, "-j2"]):
        p = subprocess.run(argv, env=env, capture_output=True, timeout=600)
        assert p.returncode == 0, (p.stdout + p.stderr).decode(errors="replace")[-6000:]
    return out


@pytest.fixture(scope="module")
def cortex_m():
    return cross_build("cortex-m", "cortex-m", "cortex-m3.cmake")


@pytest.fixture(scope="module")
def armhf():
    return cross_build("armhf", "sensor", "arm-linux-gnueabihf.cmake")


def qemu_board(image):
    """Run a Cortex-M image to its end: (exit status, output lines). QEMU
    writes what the board prints through semihosting to its stderr."""
    p = subprocess.run(QEMU_SYSTEM + [image], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace").splitlines()


def vector_counts():
    """How many vectors each group of the runner must report, from the JSON."""
    def load(name):
        with open(os.path.join(VECTORS, name + ".json"), encoding="utf-8") as fh:
            return json.load(fh)
    framing, types, conv = load("framing"), load("types"), load("conversation")
    return {
        "framing": sum(len(framing[g]) for g in ("boxes", "decode_only", "streams")),
        "reject": len(framing["reject"]) + len(framing["truncated"]),
        "types": sum(len(t.get(m, [])) for t in types["types"].values()
                     for m in ("encode", "decode_only", "reject")),
        "conversation": len(conv["cases"]) + len(conv["reject"]),
        "unhandled": len(conv["unhandled"]),
        "session": 3,
    }


def test_cortex_m_runs_every_golden_vector(cortex_m):
    status, lines = qemu_board(os.path.join(cortex_m, "amp-vectors.elf"))
    out = "\n".join(lines)
    assert status == 0, out
    for group, count in vector_counts().items():
        assert "PASS %s: %d vectors" % (group, count) in lines, out
    # the core without malloc: an object given no allocator gets no memory
    assert "PASS no-malloc: 2 vectors" in lines, out
    assert not [l for l in lines if l.startswith("FAIL")], out
    m = re.search(r"ALL PASSED: 0 failures; memory high water (\d+) bytes of (\d+)", out)
    assert m and 0 < int(m.group(1)) <= int(m.group(2)), out


@pytest.mark.parametrize("group", ["types", "session"])
def test_cortex_m_fails_when_a_vector_is_corrupted(cortex_m, group):
    """The same image with one expected byte flipped must fail, and say where."""
    status, lines = qemu_board(os.path.join(cortex_m, "amp-vectors-bad-%s.elf" % group))
    out = "\n".join(lines)
    assert status == 1, out
    assert any(re.match(r"FAIL %s: \d+ vectors, [1-9]\d* failed" % group, l) for l in lines), out
    assert "FAILED:" in out, out


def symbols(nm, path):
    p = subprocess.run([nm, path], capture_output=True, check=True)
    return {line.split()[-1] for line in p.stdout.decode().splitlines() if line.strip()}


def test_cortex_m_image_links_no_malloc(cortex_m):
    """Every byte the core uses comes through the allocator hook from the
    arena: the C library's allocator is not in the image at all."""
    for image in ("amp-vectors.elf", "footprint-session.elf"):
        names = symbols("arm-none-eabi-nm", os.path.join(cortex_m, image))
        assert "amp_session_new" in names and "amp_decoder_new_with" in names, image
        assert not names & ALLOCATOR_SYMBOLS, (image, names & ALLOCATOR_SYMBOLS)


def test_footprint_table(cortex_m):
    """devices/footprint.sh prints the README's table from these images."""
    p = run([os.path.join(DEVICES, "footprint.sh"), cortex_m, BUILD])
    out = p.stdout.decode()
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1].replace(",", "").isdigit():
            rows[cells[0]] = [int(c.replace(",", "")) for c in cells[1:]]
    assert set(rows) == {"codec only", "codec + session"}, out
    codec, session = rows["codec only"], rows["codec + session"]
    for row in (codec, session):
        assert all(v > 0 for v in (row[0], row[2], row[3], row[4])), out
    assert session[0] > codec[0] and session[2] > codec[2], out


def elf_machine(path):
    """(class, machine) of an ELF file: (1, 40) is 32-bit ARM."""
    with open(path, "rb") as fh:
        head = fh.read(20)
    assert head[:4] == b"\x7fELF", path
    return head[4], struct.unpack("<H", head[18:20])[0]


def test_sensor_on_the_bus_under_qemu_arm(armhf):
    sensor_bin = os.path.join(armhf, "amp-sensor")
    assert elf_machine(sensor_bin) == (1, 40), "not a 32-bit ARM executable"
    names = symbols("arm-linux-gnueabihf-nm", sensor_bin)
    assert "amp_session_new" in names
    assert not [n for n in names if n.startswith(("ev_", "SSL_", "EVP_"))], \
        "the device client must link neither libev nor OpenSSL"
    qemu_arm = shutil.which("qemu-arm")
    assert qemu_arm, "qemu-arm (qemu-user) is not installed"

    b = broker()
    peer = device = None
    device_status = None
    try:
        wanted = 5
        peer = Proc([*SENSOR_PEER, b.endpoint, "s1", str(wanted)], r"^subscribed")
        device = Proc([qemu_arm, sensor_bin, "--name", "s1", "--interval", "20",
                       "--count", "50", "127.0.0.1", str(b.port)], r"^ready")
        peer.proc.wait(timeout=60)
        lines = [json.loads(l) for l in peer.proc.stdout.read().decode().splitlines()]
        err = peer.proc.stderr.read().decode()
        assert peer.proc.returncode == 0, (lines, err)

        events = [l for l in lines if l["kind"] == "event"]
        assert len(events) == wanted, lines
        for i, e in enumerate(events):  # Twisted parsed each with its own types
            assert e == {"kind": "event", "command": "sensor.s1.reading", "channel": 0,
                         "seq": i, "value": 20 + i / 4,
                         "keys": ["_command", "channel", "seq", "value"]}, e
        answer = next(l for l in lines if l["kind"] == "answer")
        assert answer["channel"] == 2 and answer["unit"] == "C" and answer["seq"] >= wanted
        assert answer["value"] == 22 + answer["seq"] / 4, answer
        error = next(l for l in lines if l["kind"] == "error")
        assert error == {"kind": "error", "code": "NO_SUCH_CHANNEL",
                         "description": "channels are 0 to 3"}, lines
        assert not [l for l in lines if l["kind"] == "unexpected"], lines

        s = stats(b.endpoint)
        assert s["events_published"] >= wanted and s["calls_routed"] >= 2, s
    finally:
        if device:
            device.stop()
            device_status = device.proc.returncode
        if peer:
            peer.stop()
        b.stop()
    assert device_status == 0, "amp-sensor did not exit cleanly on SIGTERM"
