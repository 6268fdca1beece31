"""Every runbook is answered: `lint`, `show` and `check` on a corpus of broken and hostile files.

Each file in ``tests/runbooks/malformed/`` is run through the real CLI in a child
process with a time limit and an address-space limit. Whatever the file, the
answer is ``path:line: message`` (or success), exit 1 or 2 — never 3 (a crash),
never a timeout, never a traceback, and nothing from the runbook reaches the
terminal as a control sequence. Files too large to commit (10 MB, FIFOs) are
made in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO

CORPUS = REPO / "tests" / "runbooks" / "malformed"
TIMEOUT = 20
MEMORY_LIMIT = 768 * 1024 * 1024

#: file -> (line, start of the first message); these files do not open
ERRORS: dict[str, tuple[int, str]] = {
    "crlf-unknown-variable.md": (6, "unknown variable 'nowhere'"),
    "fence-attributes-malformed.md": (3, "fence attributes: '{' is never closed with '}'"),
    "fm-alias-bomb.md": (7, "front matter: YAML expands to more than 50,000 values"),
    "fm-alias-count.md": (3, "front matter: more than 100 YAML aliases"),
    "fm-bad-binary.md": (2, "front matter: invalid YAML: failed to decode base64"),
    "fm-big-integer.md": (3, "front matter: a number of 4,400 characters"),
    "fm-control-char.md": (2, "front matter: invalid YAML: unacceptable character #x001b"),
    "fm-deep-block.md": (101, "front matter: YAML nested more than 100 levels deep"),
    "fm-deep-flow.md": (2, "front matter: YAML nested more than 100 levels deep"),
    "fm-duplicate-key.md": (4, "front matter: duplicate key 'title' (first on line 2)"),
    "fm-duplicate-nested-key.md": (4, "front matter: duplicate key 'base_url' (first on line 3)"),
    "fm-id-slash.md": (2, "front matter: id: an id is a lower-case slug"),
    "fm-id-traversal.md": (2, "front matter: id: an id is a lower-case slug"),
    "fm-id-upper.md": (2, "front matter: id: an id is a lower-case slug"),
    "fm-impossible-date.md": (3, "front matter: cannot read '2001-02-30' as a timestamp"),
    "fm-invalid-yaml.md": (2, "front matter: invalid YAML"),
    "fm-merge-bomb.md": (6, "front matter: YAML expands to more than 50,000 values"),
    "fm-never-closed.md": (1, "front matter opened with '---' is never closed"),
    "fm-non-text-key.md": (3, "front matter: a field name is text, not 1"),
    "fm-not-a-mapping.md": (2, "front matter must be a YAML mapping"),
    "fm-python-tag.md": (2, "front matter: invalid YAML: could not determine a constructor"),
    "fm-recursive-alias.md": (2, "front matter: the YAML alias *loop is inside the value"),
    "fm-tab-indent.md": (3, "front matter: invalid YAML"),
    "fm-undefined-alias.md": (2, "front matter: invalid YAML: found undefined alias"),
    "fm-unhashable-key.md": (3, "front matter: invalid YAML: found unhashable key"),
    "fm-wrong-type.md": (3, "front matter: tags: Input should be a valid list"),
    "form-feed-lines.md": (6, "unknown variable 'nowhere'"),
    "not-utf8.md": (4, "not UTF-8 text"),
    "ops-alias-bomb.md": (10, "ops http block: YAML expands to more than 50,000 values"),
    "ops-bad-jmespath.md": (7, "ops http: expect.json.0.path: invalid JMESPath"),
    "ops-bad-regex.md": (6, "ops http: expect.body_matches: invalid regular expression"),
    "ops-big-integer.md": (5, "ops command block: a number of 4,400 characters"),
    "ops-deep-nesting.md": (5, "ops http block: YAML nested more than 100 levels deep"),
    "ops-duplicate-key.md": (6, "ops http block: duplicate key 'url' (first on line 4)"),
    "ops-duplicate-step-id.md": (8, "duplicate step id 'same'"),
    "ops-huge-block.md": (4, "ops command block: 78 KiB of YAML; the limit is 64 KiB"),
    "ops-huge-duration.md": (5, "ops command: timeout: a duration must be at most a week"),
    "ops-impossible-date.md": (5, "ops command block: cannot read '2001-13-45' as a timestamp"),
    "ops-inf-duration.md": (5, "ops command: timeout: a duration must be a finite number"),
    "ops-invalid-yaml.md": (6, "ops http block: invalid YAML"),
    "ops-many-bad-items.md": (6, "ops http: expect.status.0: Input should be a valid integer"),
    "ops-missing-kind.md": (3, "missing step kind after 'ops'"),
    "ops-nan-duration.md": (5, "ops command: timeout: a duration must be a finite number"),
    "ops-not-a-mapping.md": (3, "ops http block: the body must be YAML key: value lines"),
    "ops-recursive-alias.md": (5, "ops http block: the YAML alias *j is inside the value"),
    "ops-step-id-dotdot.md": (4, "ops command: id: a step id uses"),
    "ops-step-id-slash.md": (4, "ops command: id: a step id uses"),
    "ops-unknown-field.md": (5, "ops http: unknown field 'retries'"),
    "ops-unknown-kind.md": (3, "unknown step kind 'teleport'"),
    "ops-unknown-secret.md": (6, "unknown secret 'nope'"),
    "ops-unknown-variable.md": (4, "unknown variable 'base_url'"),
}
#: file -> (line, start of the first message); these open, with warnings
WARNINGS: dict[str, tuple[int, str]] = {
    "fm-bom.md": (4, "front matter: unknown field 'owner'"),
    "fm-hugo.md": (3, "front matter: unknown field 'weight'"),
    "fm-runme.md": (2, "front matter: unknown field 'runme'"),
    "unclosed-fence.md": (5, "this ``` fence is never closed"),
    "unclosed-ops-fence.md": (3, "this ``` fence is never closed"),
}
#: valid runbooks whose titles carry escape sequences and bidi overrides
HOSTILE_TEXT = {"ansi-titles.md"}


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def opsconsole(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child with a time and memory limit; a timeout fails the test."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "opsconsole.cli", *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            preexec_fn=limit_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"opsconsole {' '.join(args)[:200]} did not answer within {TIMEOUT} s")


def run_all(*commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda argv: opsconsole(*argv), commands))


def assert_answered(done: subprocess.CompletedProcess[str]) -> str:
    """No crash, no traceback, no control character from the runbook on the terminal."""
    output = done.stdout + done.stderr
    assert done.returncode != 3, output
    assert "Traceback" not in output, output
    raw = sorted(
        {
            f"U+{ord(char):04X}"
            for char in output
            if (ord(char) < 0x20 and char not in "\n\t")
            or 0x7F <= ord(char) <= 0x9F
            or char in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
        }
    )
    assert not raw, f"control characters written raw: {raw}\n{output}"
    return output


def first_line(text: str) -> str:
    return text.splitlines()[0] if text.strip() else ""


def test_the_corpus_is_all_listed() -> None:
    on_disk = {path.name for path in CORPUS.glob("*.md")}
    listed = set(ERRORS) | set(WARNINGS) | HOSTILE_TEXT
    assert on_disk == listed
    assert len(on_disk) >= 40


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_a_broken_runbook_is_an_error_at_its_line(name: str) -> None:
    path = CORPUS / name
    line, message = ERRORS[name]
    expected = f"{path}:{line}: {message}"
    lint, show, check = run_all(("lint", str(path)), ("show", str(path)), ("check", str(path)))
    for done in (lint, show, check):
        assert_answered(done)
    assert lint.returncode == 1, lint.stdout + lint.stderr
    assert first_line(lint.stdout).startswith(expected), lint.stdout
    assert lint.stderr.startswith("1 runbook, "), lint.stderr
    for done in (show, check):
        assert done.returncode == 2, done.stdout + done.stderr
        assert first_line(done.stderr).startswith(expected), done.stderr
        assert done.stdout == ""


@pytest.mark.parametrize("name", sorted(WARNINGS))
def test_a_runbook_with_warnings_opens(name: str) -> None:
    path = CORPUS / name
    line, message = WARNINGS[name]
    expected = f"{path}:{line}: warning: {message}"
    lint, strict, show, check = run_all(
        ("lint", str(path)),
        ("lint", "--strict", str(path)),
        ("show", str(path)),
        ("check", str(path)),
    )
    for done in (lint, strict, show, check):
        assert_answered(done)
    assert lint.returncode == 0 and strict.returncode == 1
    assert first_line(lint.stdout).startswith(expected), lint.stdout
    assert "1 runbook, " in lint.stderr and " warning" in lint.stderr
    assert show.returncode == 0, show.stderr
    assert first_line(show.stderr).startswith(expected), show.stderr
    assert show.stdout.strip(), "the outline is shown"
    assert check.returncode in {0, 1}, check.stdout + check.stderr
    assert " passed, " in check.stdout


def test_titles_with_escape_sequences_never_reach_the_terminal_raw() -> None:
    path = CORPUS / "ansi-titles.md"
    lint, show, show_json, check, check_json = run_all(
        ("lint", str(path)),
        ("show", str(path)),
        ("show", str(path), "--json"),
        ("check", str(path)),
        ("check", str(path), "--json"),
    )
    for done in (lint, show, show_json, check, check_json):
        assert_answered(done)
        assert done.returncode == 0, done.stdout + done.stderr
    assert lint.stderr == "1 runbook, no problems\n"
    assert show.stdout.startswith("Clean \\x1b]0;pwned\\x07\\x1b[2J title (ansi-titles)")
    assert "\\x1b[1A\\x1b[2Kfake: 0 passed" in show.stdout
    assert "\\u202eevil" in show.stdout
    outline = json.loads(show_json.stdout)
    assert outline["title"] == "Clean \x1b]0;pwned\x07\x1b[2J title"  # JSON keeps the value
    assert "\\x1b[1A\\x1b[2Kfake: 0 passed" in check.stdout + check.stderr
    assert json.loads(check_json.stdout)["runbook"]["title"] == outline["title"]


def test_a_folder_lint_of_the_corpus_reports_every_file() -> None:
    done = opsconsole("lint", str(CORPUS))
    assert_answered(done)
    assert done.returncode == 1
    reported = done.stdout.splitlines()
    for name, (line, message) in {**ERRORS, **WARNINGS}.items():
        label = "warning: " if name in WARNINGS else ""
        assert any(
            entry.startswith(f"{CORPUS / name}:{line}: {label}{message}") for entry in reported
        ), name
    count = len(ERRORS) + len(WARNINGS) + len(HOSTILE_TEXT)
    assert done.stderr.startswith(f"{count} runbooks, ")


def test_a_fifo_is_answered_at_once_and_skipped_in_a_folder(tmp_path: Path) -> None:
    fifo = tmp_path / "x.md"
    os.mkfifo(fifo)
    (tmp_path / "folder.md").mkdir()
    (tmp_path / "good.md").write_text("# Good\n\n- [ ] fine\n")
    lint, show, check, folder = run_all(
        ("lint", str(fifo)), ("show", str(fifo)), ("check", str(fifo)), ("lint", str(tmp_path))
    )
    for done in (lint, show, check, folder):
        assert_answered(done)
    expected = f"{fifo}:1: not a regular file (a FIFO)"
    assert (lint.returncode, first_line(lint.stdout)) == (1, expected)
    assert (show.returncode, first_line(show.stderr)) == (2, expected)
    assert (check.returncode, first_line(check.stderr)) == (2, expected)
    assert folder.returncode == 0, folder.stdout
    assert folder.stdout.splitlines() == [
        f"{tmp_path / 'folder.md'}:1: warning: skipped: not a regular file (a folder)",
        f"{tmp_path / 'x.md'}:1: warning: skipped: not a regular file (a FIFO)",
    ]
    assert folder.stderr == "1 runbook, 2 warnings\n"


def test_a_10_mb_runbook_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.md"
    chunk = "## Phase\n\n- [ ] check\n\n```ops http\nurl: http://127.0.0.1:1/\n```\n\n"
    big.write_text("# Big\n\n" + chunk * (10_000_000 // len(chunk)))
    expected = f"{big}:1: runbook is 9.5 MiB; the limit is 2 MiB"
    lint, show, check = run_all(("lint", str(big)), ("show", str(big)), ("check", str(big)))
    for done in (lint, show, check):
        assert_answered(done)
    assert lint.returncode == 1 and first_line(lint.stdout).startswith(expected)
    assert show.returncode == 2 and first_line(show.stderr).startswith(expected)
    assert check.returncode == 2 and first_line(check.stderr).startswith(expected)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("# T\n" + "- a\n" * 200_000, 1),  # too many lines
        ("# " + "![" * 5000 + "\n\n" + "![" * 1_000_000 + "\n", 0),  # slow inline markup
        ("# T\n\n" + "> " * 5000 + "deep\n\n" + "[" * 500_000 + "\n", 0),
    ],
    ids=["200k-lines", "image-brackets", "deep-quotes-and-brackets"],
)
def test_hostile_markdown_is_answered_in_bounded_time(tmp_path: Path, text: str, code: int) -> None:
    path = tmp_path / "hostile.md"
    path.write_text(text)
    done = opsconsole("lint", str(path))
    assert_answered(done)
    assert done.returncode == code, done.stdout + done.stderr


def test_a_file_name_with_escape_sequences_is_shown_escaped(tmp_path: Path) -> None:
    path = tmp_path / "evil\x1b]0;pwned\x07.md"
    path.write_text("# T\n\n```ops teleport\n```\n")
    (done,) = run_all(("lint", str(tmp_path)))
    assert_answered(done)
    assert "evil\\x1b]0;pwned\\x07.md:3: unknown step kind 'teleport'" in done.stdout


PLAIN = "# Plain\n\n- [ ] looked at the dashboard\n"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (".", "is a folder; give the report's file name"),
        ("missing/report.xml", "the folder {tmp}/missing does not exist"),
    ],
)
def test_junit_target_is_checked_before_the_run(tmp_path: Path, target: str, message: str) -> None:
    runbook = tmp_path / "plain.md"
    runbook.write_text(PLAIN)
    junit = tmp_path / target
    done = opsconsole("check", str(runbook), "--junit", str(junit))
    assert_answered(done)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == (f"opsconsole: error: --junit {junit}: {message.format(tmp=tmp_path)}\n")
    assert done.stdout == "", "nothing ran"


def test_junit_report_is_written_after_a_run(tmp_path: Path) -> None:
    runbook = tmp_path / "plain.md"
    runbook.write_text(PLAIN)
    junit = tmp_path / "report.xml"
    done = opsconsole("check", str(runbook), "--junit", str(junit))
    assert_answered(done)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '<testsuite name="plain"' in junit.read_text()


def test_lint_summary_and_strict(tmp_path: Path) -> None:
    (tmp_path / "clean.md").write_text(PLAIN)
    clean = opsconsole("lint", str(tmp_path))
    assert (clean.returncode, clean.stdout, clean.stderr) == (0, "", "1 runbook, no problems\n")
    (tmp_path / "hugo.md").write_text("---\nweight: 1\n---\n# Hugo\n")
    warned, strict = run_all(("lint", str(tmp_path)), ("lint", "--strict", str(tmp_path)))
    assert (warned.returncode, warned.stderr) == (0, "2 runbooks, 1 warning\n")
    assert (strict.returncode, strict.stdout) == (1, warned.stdout)
    assert warned.stdout == (
        f"{tmp_path / 'hugo.md'}:2: warning: front matter: unknown field 'weight'"
        " (kept, not used by opsconsole)\n"
    )
