"""amp-cli's bash completion, man page and the README's walk-through,
checked against the built binary: the completion script sourced in a real
bash (COMP_WORDS/COMP_CWORD set as bash sets them, the function called,
COMPREPLY printed), against a real broker for command names; the man page
rendered by groff/man without a warning and naming every verb of
'amp-cli --help' and every long option of each 'amp-cli VERB --help'; both
installed by 'cmake --install' where bash-completion and man look for them;
the README's session run as written, each block on a terminal of its own."""
import os
import re
import subprocess
import socket

from test_broker import broker
from test_twisted_interop import AMP_CLI, BUILD, HERE

ROOT = os.path.dirname(HERE)
COMPLETION = os.path.join(ROOT, "tools", "amp-cli", "amp-cli.bash")
MAN_PAGE = os.path.join(ROOT, "tools", "amp-cli", "amp-cli.1")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
CLI_DIR = os.path.dirname(os.path.abspath(AMP_CLI))


def help_text(*verb):
    p = subprocess.run([AMP_CLI, *verb, "--help"], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def verbs():
    """The verbs 'amp-cli --help' lists, under 'verbs:'."""
    text = help_text()
    block = text.split("\nverbs:\n", 1)[1].split("\n\n", 1)[0]
    names = [line.split()[0] for line in block.splitlines()]
    assert {"call", "pub", "sub", "decode"} <= set(names), text
    return names


def long_options(verb):
    """Every long option a verb's --help mentions."""
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", help_text(verb)))


def split_like_bash(line):
    """COMP_WORDS and COMP_CWORD as bash makes them for a line completed at
    its end: words split at blanks, and ':' and '=' (COMP_WORDBREAKS) as
    words of their own."""
    words = []
    for blank_word in line.split(" "):
        if blank_word == "" and words:
            continue
        words += [w for w in re.split(r"([:=]+)", blank_word) if w] or [""]
    if line.endswith(" "):
        words.append("")
    return words, len(words) - 1


def complete(line, env=None, cwd=None, preload=""):
    """COMPREPLY for `line`, completed at its end by the script sourced in
    bash (after `preload`, shell code run first)."""
    words, cword = split_like_bash(line)
    script = preload + '\nsource "$COMPLETION" || exit 9\n' \
        'COMP_LINE=$1 COMP_POINT=${#1} COMP_CWORD=$2; shift 2; COMP_WORDS=("$@")\n' \
        '_amp_cli; status=$?\n' \
        '[ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\\n" "${COMPREPLY[@]}"\nexit $status\n'
    e = dict(os.environ, COMPLETION=COMPLETION, PATH=CLI_DIR + ":" + os.environ["PATH"])
    e.pop("AMP_URL", None)
    e.setdefault("ASAN_OPTIONS", "exitcode=86")
    e.update(env or {})
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "bash", line, str(cword),
                        *words], capture_output=True, env=e, cwd=cwd, timeout=60)
    assert p.returncode == 0 and p.stderr == b"", (line, p.returncode, p.stderr)
    return sorted(p.stdout.decode().splitlines())


def test_split_like_bash_splits_at_colons_and_equals():
    assert split_like_bash("amp-cli call tcp:1.2.3.4:5 S") == \
        (["amp-cli", "call", "tcp", ":", "1.2.3.4", ":", "5", "S"], 7)
    assert split_like_bash("amp-cli call --ca=x") == (["amp-cli", "call", "--ca", "=", "x"], 4)
    assert split_like_bash("amp-cli ") == (["amp-cli", ""], 1)


def test_completion_is_registered_for_amp_cli():
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                        'source "$0" && complete -p amp-cli', COMPLETION],
                       capture_output=True, timeout=30)
    assert p.stdout.decode().strip() == "complete -F _amp_cli amp-cli", p


def test_completion_offers_the_verbs_that_amp_cli_help_lists():
    assert complete("amp-cli ") == sorted(verbs())
    assert complete("amp-cli su") == ["sub"]
    assert complete("amp-cli -") == ["--help", "--version"]
    # the verbs come from the binary being completed: none from a name that
    # is no program
    assert complete("./no-such-amp-cli ") == []


def test_completion_offers_each_verbs_options_from_its_help():
    for verb in verbs():
        want = long_options(verb) | {"--help"}
        assert set(complete("amp-cli %s --" % verb)) == want, verb
    assert "--password-file" in long_options("call")  # the set compared is not empty
    assert complete("amp-cli call --pass") == ["--password-file"]
    assert complete("amp-cli listen --starttls-") == ["--starttls-cert", "--starttls-key"]
    # after an option without a value, options again
    assert "--count" in complete("amp-cli sub --insecure --")
    # options may follow the operands, until '--'
    assert complete("amp-cli call Sum a=1 --js") == ["--json"]
    assert complete("amp-cli sub 'x.*' --cou") == ["--count"]
    assert complete("amp-cli sub -- --cou") == []


def takes_a_value(verb, option):
    """What amp-cli's own option parser says: a flag lets the --help after it
    print the usage; an option with a value takes that --help as its value.
    (No endpoint is known, so nothing connects anywhere.)"""
    e = dict(os.environ, ASAN_OPTIONS="exitcode=86")
    e.pop("AMP_URL", None)
    p = subprocess.run([AMP_CLI, verb, option, "--help"], capture_output=True, env=e,
                       stdin=subprocess.DEVNULL, timeout=30)
    assert b"Sanitizer" not in p.stderr, p.stderr
    return not (p.returncode == 0 and p.stdout.startswith(b"usage: amp-cli " + verb.encode()))


def test_completion_knows_which_options_take_a_value(tmp_path):
    """For every option of every verb, as the parser sees it: after a flag,
    the verb's options again; after an option that takes a value, never an
    option (a file name, or nothing)."""
    flags = values = 0
    for verb in verbs():
        for option in sorted(long_options(verb)):
            after = complete("amp-cli %s %s --" % (verb, option), cwd=str(tmp_path))
            if takes_a_value(verb, option):
                assert after == [], (verb, option, after)
                values += 1
            else:
                assert after == sorted(long_options(verb) | {"--help"}), (verb, option)
                flags += 1
    assert flags >= 10 and values >= 20


def test_completion_completes_files_where_a_file_goes(tmp_path):
    for name in ("cred.txt", "ca.pem", "other"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "certs").mkdir()
    cwd = str(tmp_path)
    for opt in ("--password-file", "--token-file", "--ca", "--cert", "--key"):
        assert complete("amp-cli call %s c" % opt, cwd=cwd) == ["ca.pem", "certs", "cred.txt"], opt
        assert complete("amp-cli pub %s cr" % opt, cwd=cwd) == ["cred.txt"], opt
    # --option=FILE, split by bash at '='
    assert complete("amp-cli sub --token-file=cr", cwd=cwd) == ["cred.txt"]
    # options shown as '--NAME FILE' in a verb's help
    assert complete("amp-cli listen --starttls-key o", cwd=cwd) == ["other"]
    # decode's and encode's FILE
    assert complete("amp-cli decode ot", cwd=cwd) == ["other"]
    assert complete("amp-cli encode --", cwd=cwd) == ["--help"]
    # a value that is not a file: nothing, not the directory's files
    assert complete("amp-cli sub --count ", cwd=cwd) == []
    assert complete("amp-cli call --user ", cwd=cwd) == []
    assert complete("amp-cli call --server ", cwd=cwd) == []


def test_completion_uses_bash_completions_filedir_when_loaded(tmp_path):
    """Loaded by bash-completion (as when installed), file names come from
    its _filedir: directories marked, the same names."""
    (tmp_path / "cred.txt").write_text("x\n")
    (tmp_path / "certs").mkdir()
    preload = 'source %s || exit 8\ndeclare -F _filedir >/dev/null || exit 7' % BASH_COMPLETION
    assert complete("amp-cli call --password-file c", cwd=str(tmp_path), preload=preload) == \
        ["certs", "cred.txt"]
    assert complete("amp-cli call --", preload=preload) == \
        sorted(long_options("call") | {"--help"})


def render_man(path=MAN_PAGE):
    """The page as man shows it on an 80-column terminal, as plain text;
    groff's and man's warnings make the test fail."""
    p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", path], capture_output=True,
                       timeout=60)
    assert p.returncode == 0 and p.stderr == b"", p.stderr.decode()
    p = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", path], capture_output=True,
                       env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat"),
                       timeout=60)
    assert p.returncode == 0 and p.stderr == b"", p.stderr.decode()
    p = subprocess.run(["groff", "-man", "-Tutf8", "-rLL=78n", "-P-cbou", path],
                       capture_output=True, check=True, timeout=60)
    text = p.stdout.decode()
    # hyphens and minus signs as a terminal without those glyphs shows them
    return text.replace("\u2010", "-").replace("\u2212", "-")


def man_sections(text):
    """{SECTION: text} of a rendered page (headings start in column 0)."""
    sections, name = {}, None
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Z ]+$", line):
            name = line
            sections[name] = ""
        elif name:
            sections[name] += line + "\n"
    return sections


def verb_sections(verbs_text):
    """{verb: text} of the VERBS section's subsections ('   amp-cli VERB ...')."""
    out, verb = {}, None
    for line in verbs_text.splitlines():
        m = re.match(r"^   amp-cli ([a-z][a-z0-9-]*)", line)
        if m:
            verb = m.group(1)
            out[verb] = line + "\n"
        elif verb:
            out[verb] += line + "\n"
    return out


def mentions(text, option):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(option), text) is not None


def test_man_page_renders_without_warnings_in_the_usual_sections():
    sections = man_sections(render_man())
    want = ["NAME", "SYNOPSIS", "DESCRIPTION", "VERBS", "ARGUMENTS", "CONNECTION SETTINGS",
            "SIGNATURES", "OUTPUT", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES",
            "SEE ALSO"]
    assert list(sections) == want
    assert sections["NAME"].strip().startswith("amp-cli - ")
    # nothing wider than an 80-column terminal (examples do not wrap)
    wide = [line for line in render_man().splitlines() if len(line) > 80]
    assert not wide, wide


def test_man_page_documents_every_verb_and_every_option_of_its_help():
    sections = man_sections(render_man())
    by_verb = verb_sections(sections["VERBS"])
    checked = 0
    for verb in verbs():
        assert verb in by_verb, "VERBS has no 'amp-cli %s' subsection" % verb
        assert mentions(sections["SYNOPSIS"], verb), verb
        text = by_verb[verb]
        # the shared connection settings are documented once, in their section
        if "connection settings" in text:
            text += sections["CONNECTION SETTINGS"]
        for option in sorted(long_options(verb)):
            assert mentions(text, option), "%s: %s is not in the page" % (verb, option)
            checked += 1
    assert checked >= 20
    # every verb the page describes is one amp-cli has
    assert set(by_verb) <= set(verbs())


def test_man_page_lists_every_exit_status_and_environment_variable():
    sections = man_sections(render_man())
    with open(os.path.join(ROOT, "tools", "amp-cli", "cli.h")) as f:
        statuses = re.findall(r"\bCLI_[A-Z_]+ = (\d+)", f.read())
    assert len(statuses) >= 8
    for status in statuses:
        assert re.search(r"^       %s  " % status, sections["EXIT STATUS"], re.M), status
    names = set(re.findall(r"\bAMP_[A-Z]+\b", help_text()))
    assert {"AMP_URL", "AMP_PASSWORD", "AMP_TOKEN"} <= names
    for verb in verbs():
        names |= set(re.findall(r"\bAMP_[A-Z]+\b", help_text(verb)))
    for name in names:
        assert re.search(r"^       %s$" % name, sections["ENVIRONMENT"], re.M), name


def test_man_page_carries_the_projects_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        version = re.search(r"project\(amp VERSION (\S+)", f.read()).group(1)
    with open(MAN_PAGE) as f:
        th = [line for line in f if line.startswith(".TH ")]
    assert len(th) == 1 and '"amp %s"' % version in th[0]


def test_installed_completion_and_man_page_are_found_where_tools_look(tmp_path):
    """cmake --install puts both where bash-completion's loader and man look
    under the prefix; loaded by bash-completion itself (XDG_DATA_DIRS names
    the prefix's share/), the completion completes the installed amp-cli."""
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", BUILD, "--prefix", str(prefix)], check=True,
                   capture_output=True, timeout=300)
    completion = prefix / "share" / "bash-completion" / "completions" / "amp-cli"
    page = prefix / "share" / "man" / "man1" / "amp-cli.1"
    with open(COMPLETION, "rb") as f:
        assert completion.read_bytes() == f.read()
    with open(MAN_PAGE, "rb") as f:
        assert page.read_bytes() == f.read()
    env = dict(os.environ, XDG_DATA_DIRS=str(prefix / "share"),
               PATH="%s:%s" % (prefix / "bin", os.environ["PATH"]),
               BASH_COMPLETION_USER_DIR=str(tmp_path / "none"))
    env.pop("AMP_URL", None)
    script = ('source %s || exit 8\n'
              '__load_completion amp-cli || exit 9\n'
              'complete -p amp-cli\n'
              'COMP_WORDS=(amp-cli ""); COMP_CWORD=1; COMP_LINE="amp-cli "; COMP_POINT=8\n'
              '_amp_cli; printf "%%s\\n" "${COMPREPLY[@]}"\n' % BASH_COMPLETION)
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                       env=env, timeout=60)
    assert p.returncode == 0 and p.stderr == b"", p
    lines = p.stdout.decode().splitlines()
    assert lines[0] == "complete -F _amp_cli amp-cli"
    assert sorted(lines[1:]) == sorted(verbs())
    p = subprocess.run(["man", "-w", "amp-cli"], capture_output=True, timeout=60,
                       env=dict(os.environ, MANPATH=str(prefix / "share" / "man")))
    assert p.stdout.decode().strip() == str(page), p
    assert "VERBS" in man_sections(render_man(str(page)))


# The README's walk-through: blocks marked '<!-- session: NAME -->', each
# what one terminal runs; '# => ' lines are what it shows ('...' stands for
# any text). The test runs them as written, each in bash on a terminal of
# its own (pexpect), against a free port instead of 7760 and this build
# instead of build/ ('make run' is build/broker/amp-broker once built).

def session_blocks(text=None):
    if text is None:
        with open(os.path.join(ROOT, "README.md")) as f:
            text = f.read()
    return dict(re.findall(r"<!-- session: (\S+) -->\n```(?:sh)?\n(.*?)```", text, re.S))


def shown(block):
    return [line[5:] for line in block.splitlines() if line.startswith("# => ")]


def line_matches(want, got):
    if "..." not in want:
        return want == got
    return re.fullmatch(".*".join(re.escape(p) for p in want.split("...")), got) is not None


def lines_match(want, got):
    """`got` line by line as `want` shows it; a line of '...' alone stands
    for any number of lines."""
    if not want:
        return not got
    if want[0] == "...":
        return any(lines_match(want[1:], got[i:]) for i in range(len(got) + 1))
    return bool(got) and line_matches(want[0], got[0]) and lines_match(want[1:], got[1:])


def assert_shows(want, got, what):
    assert lines_match(want, got), \
        "%s shows:\n%s\nthe README says:\n%s" % (what, "\n".join(got), "\n".join(want))


def test_shown_lines_match_with_their_wildcards():
    assert lines_match(["a ... c"], ["a b c"]) and not lines_match(["a ... c"], ["a b d"])
    assert lines_match(["x", "...", "y"], ["x", "y"])
    assert lines_match(["x", "...", "y"], ["x", "1", "2", "y"])
    assert not lines_match(["x", "...", "y"], ["x", "1", "2"])
    assert not lines_match(["x"], ["x", "y"]) and not lines_match(["x", "y"], ["x"])


class Terminal:
    """bash running one session block on a pseudo-terminal of its own."""

    def __init__(self, script, port, cwd):
        import pexpect
        self.pexpect = pexpect
        build = os.path.abspath(BUILD)
        script = script.replace("7760", str(port)).replace("$PWD/build/", build + "/")
        script = script.replace(
            "make run", "%s/broker/amp-broker --listen tcp:%d:interface=127.0.0.1" % (build, port))
        e = dict(os.environ, TERM="dumb", HOME=str(cwd))
        for k in ("AMP_URL", "AMP_PASSWORD", "AMP_TOKEN"):
            e.pop(k, None)
        e.setdefault("ASAN_OPTIONS", "exitcode=86")
        self.child = pexpect.spawn("bash", ["--norc", "--noprofile", "-c", script], env=e,
                                   cwd=str(cwd), encoding="utf-8", timeout=60,
                                   dimensions=(50, 200))
        self.seen = ""

    def wait_for(self, text):
        self.child.expect_exact(text)
        self.seen += self.child.before + text

    def interrupt(self):
        """Ctrl-C, as typed: SIGINT to the terminal's foreground processes."""
        self.child.sendintr()
        return self.finish()

    def finish(self):
        self.child.expect(self.pexpect.EOF)
        self.seen += self.child.before
        self.child.close()
        for marker in ("Sanitizer", "runtime error:"):
            assert marker not in self.seen, self.seen
        return self.child.exitstatus, self.lines()

    def lines(self):
        return [l for l in self.seen.replace("\r\n", "\n").split("\n") if l != ""]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_shell_transcript(block, port, cwd):
    """A '$ amp-cli shell' transcript: each 'amp> LINE' typed, the lines up
    to the next prompt compared with those shown."""
    import pexpect
    lines = block.splitlines()
    assert lines[0] == "$ amp-cli shell", lines[0]
    steps, want = [], None
    for line in lines[1:]:
        if line.startswith("amp> "):
            want = []
            steps.append((line[5:], want))
        else:
            want.append(line)
    assert steps and steps[-1] == ("quit", []), steps
    e = dict(os.environ, TERM="dumb", HOME=str(cwd), AMP_URL="tcp:127.0.0.1:%d" % port)
    e.pop("AMP_HISTORY", None)
    e.setdefault("ASAN_OPTIONS", "exitcode=86")
    child = pexpect.spawn(os.path.abspath(AMP_CLI), ["shell"], env=e, cwd=str(cwd),
                          encoding="utf-8", timeout=60, dimensions=(50, 200))
    child.expect_exact("amp> ")
    for typed, want in steps[:-1]:
        child.send(typed + "\r")
        child.expect_exact("amp> ")
        got = [l for l in child.before.replace("\r\n", "\n").split("\n") if l][1:]  # the echo
        assert_shows(want, got, "amp> " + typed)
    child.send("quit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    return (cwd / ".amp_cli_history").read_text()


def test_readme_session_runs_as_written(tmp_path):
    """The README's walk-through of a session: the broker, serve --exec with
    a signature, sub, then call, pub, commands and stats, and the shell."""
    blocks = session_blocks()
    assert list(blocks) == ["broker", "serve", "sub", "main", "shell"]
    port = free_port()
    started = []
    try:
        broker = Terminal(blocks["broker"], port, tmp_path)
        started.append(broker)
        broker.wait_for("amp-broker ")
        broker.wait_for(" ready")
        serve = Terminal(blocks["serve"], port, tmp_path)
        started.append(serve)
        serve.wait_for("amp-cli serve: serving")
        sub = Terminal(blocks["sub"], port, tmp_path)
        started.append(sub)
        sub.wait_for("amp-cli sub: subscribed")
        main = Terminal(blocks["main"], port, tmp_path)
        started.append(main)
        status, got = main.finish()
        assert status == 0
        assert_shows(shown(blocks["main"]), got, "the session's main terminal")
        history = run_shell_transcript(blocks["shell"], port, tmp_path)
        assert "quit" in history
        # the events published reach the subscriber; Ctrl-C ends it and serve
        want = shown(blocks["sub"])
        sub.wait_for(want[-1].split("...")[0])
        for term, name in ((sub, "sub"), (serve, "serve")):
            status, got = term.interrupt()
            assert status == 0, (name, got)
            assert_shows(shown(blocks[name]), [l for l in got if l != "^C"], name)
        status, got = broker.interrupt()
        assert status == 0
        # the broker's lines shown are among those it logged
        for want in shown(blocks["broker"]):
            assert any(line_matches(want, line) for line in got), (want, got)
    finally:
        for term in started:
            if term.child.isalive():
                os.killpg(term.child.pid, 9)  # its session, bash and what it runs


class Serving:
    """amp-cli serve, ready once its commands are registered."""

    def __init__(self, endpoint, *commands):
        e = dict(os.environ, ASAN_OPTIONS="exitcode=86")
        self.proc = subprocess.Popen([AMP_CLI, "serve", "--server", endpoint,
                                      "--answer", "total:int=3", *commands],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        line = self.proc.stderr.readline().decode()
        assert line.startswith("amp-cli serve: serving"), line

    def stop(self):
        self.proc.send_signal(2)
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0 and b"Sanitizer" not in err, err


def test_completion_names_the_commands_and_arguments_the_broker_knows(tmp_path):
    b = broker()
    served = None
    try:
        served = Serving(b.endpoint, "Sum(a: Integer, b: Integer?, big.n: Integer) -> (total: Integer)",
                         "Stop")
        ep = b.endpoint
        # the broker from --server, call's positional ENDPOINT or AMP_URL
        assert complete("amp-cli call --server %s S" % ep) == ["Stop", "Sum"]
        assert complete("amp-cli call --server=%s Su" % ep) == ["Sum"]
        assert complete("amp-cli call %s Su" % ep) == ["Sum"]
        assert complete("amp-cli call Su", env={"AMP_URL": ep}) == ["Sum"]
        assert complete("amp-cli serve --exec 'true' Su", env={"AMP_URL": ep}) == ["Sum"]
        assert complete("amp-cli commands --json S", env={"AMP_URL": ep}) == ["Stop", "Sum"]
        assert complete("amp-cli commands Sum ", env={"AMP_URL": ep}) == []
        # call's arguments: the names of Sum's signature not given yet
        assert complete("amp-cli call %s Sum " % ep) == ["a=", "b=", "big.n="]
        assert complete("amp-cli call Sum a=1 ", env={"AMP_URL": ep}) == ["b=", "big.n="]
        assert complete("amp-cli call Sum a:int=1 b", env={"AMP_URL": ep}) == ["b=", "big.n="]
        assert complete("amp-cli call Stop ", env={"AMP_URL": ep}) == []
        # options between the operands are no operands
        assert complete("amp-cli call Sum --timeout 5 a=1 --json ", env={"AMP_URL": ep}) == \
            ["b=", "big.n="]
        assert complete("amp-cli call --timeout 5 -- Sum a=1 ", env={"AMP_URL": ep}) == \
            ["b=", "big.n="]
        # no endpoint known: nothing, and nothing asked
        assert complete("amp-cli call Su") == []
        # a broker that is not there: nothing, at once, without a word on stderr
        dead = "tcp:127.0.0.1:%d" % free_port()
        assert complete("amp-cli call --server %s Su" % dead) == []
        assert complete("amp-cli call --server %s Sum " % dead) == []
    finally:
        if served:
            served.stop()
        b.stop()


def test_readme_completion_block_runs_as_written():
    """The README's lines that enable completion and read the manual from a
    build tree, run in bash from the project's directory: afterwards
    amp-cli completes, and man showed the page."""
    with open(os.path.join(ROOT, "README.md")) as f:
        block = re.search(r"<!-- example: completion -->\n```sh\n(.*?)```", f.read(),
                          re.S).group(1)
    assert "source tools/amp-cli/amp-cli.bash" in block
    script = block.replace("$PWD/build/", os.path.abspath(BUILD) + "/") + \
        'complete -p amp-cli\n' \
        'COMP_WORDS=(amp-cli ""); COMP_CWORD=1; _amp_cli; printf "%s\\n" "${COMPREPLY[@]}"\n'
    e = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80")
    e.pop("AMP_URL", None)
    p = subprocess.run(["bash", "--norc", "--noprofile", "-e", "-c", script], cwd=ROOT, env=e,
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stderr == b"", p.stderr
    out = p.stdout.decode().splitlines()
    assert "complete -F _amp_cli amp-cli" in out
    assert out[-len(verbs()):] == verbs()
    assert any(line.startswith("AMP-CLI(1)") for line in out)


def test_completion_script_passes_shellcheck():
    p = subprocess.run(["shellcheck", "-s", "bash", COMPLETION], capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout.decode()


def test_completion_never_evaluates_or_offers_hostile_command_names(tmp_path):
    """Command names come from any peer that may register one. A name built to
    run code when bash expands it, or to break the command line it is put on,
    is neither run nor offered; plain names next to it still are."""
    from amp_signature import BoxClient, Register
    b = broker()
    peer = BoxClient(b.port)
    marker = tmp_path / "ran"
    hostile = ["x$(touch %s)" % marker, "x`touch %s`" % marker, "x;touch %s" % marker,
               "x y", "x'q", "x${HOME}", "x*"]
    try:
        for name in hostile + ["xSafe.1"]:
            peer.call(Register, command=name)
        assert complete("amp-cli call --server %s x" % b.endpoint) == ["xSafe.1"]
        assert complete("amp-cli commands --server %s " % b.endpoint) == ["xSafe.1"]
        assert not marker.exists()
    finally:
        peer.close()
        b.stop()
