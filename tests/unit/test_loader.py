"""Runbook parsing and linting: every problem is path:line, never a traceback."""

from __future__ import annotations

import contextlib
import os
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from opsconsole.errors import RunbookError
from opsconsole.loader import (
    MAX_RUNBOOK_BYTES,
    MAX_RUNBOOK_LINES,
    FrontMatter,
    LintResult,
    find_runbooks,
    lint,
    lint_paths,
    load_runbook,
    parse_runbook,
)
from tests.conftest import RUNBOOKS, V2_RUNBOOK


def write(tmp_path: Path, text: str, name: str = "rb.md") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    return [str(error) for error in parse_runbook(path)[1]]


def test_bundled_runbooks_lint_clean() -> None:
    paths = find_runbooks([RUNBOOKS])
    assert len(paths) >= 5, paths
    assert lint_paths([RUNBOOKS]) == []


def test_v2_runbook_outline() -> None:
    runbook = load_runbook(V2_RUNBOOK)
    assert runbook.id == "v2-control-plane"
    assert set(runbook.secrets) == {"ops_key", "runner_token"}
    kinds = {step.kind for step in runbook.steps}
    assert {
        "http",
        "trigger",
        "command",
        "manual",
        "gate",
    } <= kinds
    create = runbook.step("create-job")
    assert create.mutating and create.spec.method == "POST"
    assert not runbook.step("debug-env-leaks-nothing").mutating
    assert runbook.step("cp-missing-database-url").spec.exit_codes[78].startswith("EX_CONFIG")
    # the gate closes exactly the steps since the previous gate
    phase = [step.id for step in runbook.phase_of("jobs-gate")]
    assert phase[0] == "ops-jobs-without-key" and phase[-1] == "happy-path-4"


def test_human_runbook_without_ops_blocks_is_useful(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        # Restart the widget service

        Call the on-call lead first.

        ## Checks
        - [ ] Dashboards are green
        - [x] Paged the owner
          - with the incident link

        ## Restart

        ```console
        $ systemctl restart widget
        Job for widget.service finished
        $ systemctl status widget
        ```

        ```python
        print("not a command")
        ```
    """,
    )
    runbook, errors = parse_runbook(path)
    assert errors == []
    assert runbook is not None
    assert runbook.title == "Restart the widget service"
    assert [s.title for s in runbook.sections] == [
        "Restart the widget service",
        "Checks",
        "Restart",
    ]
    manual = [s for s in runbook.steps if s.kind == "manual"]
    assert [m.title for m in manual] == ["Dashboards are green", "Paged the owner"]
    assert manual[1].spec.detail == "- with the incident link"
    (command,) = [s for s in runbook.steps if s.kind == "command"]
    assert command.spec.plain and command.mutating
    assert command.spec.run == "systemctl restart widget\nsystemctl status widget"
    assert "Call the on-call lead first." in runbook.sections[0].prose


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        (
            """
            ---
            title: [unclosed
            ---
            # T
            """,
            2,
            "front matter: invalid YAML",
        ),
        (
            """
            ---
            title: never closed
            # T
            """,
            1,
            "never closed",
        ),
        (
            """
            # T

            ```ops http
            url: http://x
            expect:
              status: [200
            ```
            """,
            6,
            "ops http block: invalid YAML",
        ),
        (
            """
            # T

            ```ops teleport
            to: mars
            ```
            """,
            3,
            "unknown step kind 'teleport'",
        ),
        (
            """
            # T

            ```ops http
            url: "{{ base_url }}/health"
            ```
            """,
            4,
            "unknown variable 'base_url'",
        ),
        (
            """
            # T

            ```ops http
            url: http://x
            headers:
              X-Key: "{{ secrets.nope }}"
            ```
            """,
            6,
            "unknown secret 'nope'",
        ),
        (
            """
            # T

            ```ops http
            url: http://x
            expect:
              json:
                - path: status
                  equals: ok
                - path: "bad[["
                  equals: 1
            ```
            """,
            9,
            "invalid JMESPath",
        ),
        (
            """
            # T

            ```ops command
            run: echo ok
            timeout: soon
            ```
            """,
            5,
            "invalid duration",
        ),
        (
            """
            # T

            ```ops http
            id: same
            url: http://x
            ```

            ```ops http
            id: same
            url: http://y
            ```
            """,
            8,
            "duplicate step id 'same'",
        ),
    ],
)
def test_broken_runbooks_name_file_and_line(
    tmp_path: Path, source: str, line: int, message: str
) -> None:
    path = write(tmp_path, source)
    errors = errors_of(path)
    assert errors, "expected an error"
    assert errors[0].startswith(f"{path}:{line}: "), errors
    assert message in errors[0], errors
    with pytest.raises(RunbookError) as caught:
        load_runbook(path)
    assert caught.value.line == line


def test_lint_reports_every_error_in_a_file_and_missing_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        # T

        ```ops bogus
        ```

        ```ops http
        url: "{{ nowhere }}"
        ```
    """,
    )
    errors = [str(e) for e in lint_paths([path, tmp_path / "absent.md"])]
    assert f"{tmp_path / 'absent.md'}:1: no such file or folder" in errors
    assert any(e.startswith(f"{path}:3:") for e in errors)
    assert any(e.startswith(f"{path}:7:") for e in errors)


def test_not_utf8_is_an_error_with_a_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.md"
    path.write_bytes(b"# T\n\nok\n\xe9t\xe9\n")
    assert errors_of(path) == [f"{path}:4: not UTF-8 text"]


def test_generated_step_ids_are_stable_and_unique(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        # T
        ## Phase one
        - [ ] a
        - [ ] b

        ```ops gate
        ```
    """,
    )
    runbook = load_runbook(path)
    assert [s.id for s in runbook.steps] == ["phase-one-1", "phase-one-2", "phase-one-3"]
    assert runbook.steps[-1].title == "Go / no-go: Phase one"


def test_reference_before_its_capture_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        ---
        variables: [base_url]
        ---
        # T

        ```ops http
        url: "{{ base_url }}/jobs/{{ job_id }}"
        ```

        ```ops http
        method: POST
        url: "{{ base_url }}/jobs"
        capture:
          job_id: id
        ```
    """,
    )
    assert errors_of(path) == [
        f"{path}:7: variable 'job_id' is used before the step that captures or asks for it"
        " (line 10)"
    ]


def test_one_bad_front_matter_key_keeps_the_rest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        ---
        tags: {not: a list}
        variables: [base_url]
        ---
        # T

        ```ops http
        url: "{{ base_url }}/health"
        ```
    """,
    )
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:2: front matter: tags")


def test_one_mistake_is_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        # T

        ```ops command
        run: echo hi
        expect:
          exit: sometimes
        ```
    """,
    )
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:6: ops command: expect.exit: expected ")
    assert "\n" not in error


def test_shell_titles_console_continuations_and_numbers_as_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        # T

        ```bash
        # Restart the broker
        systemctl restart broker
        ```

        ```console
        $ echo one \\
        > two
        one two
        ```

        ```ops http
        url: http://127.0.0.1:1/
        headers:
          X-Retries: 3
        ```
    """,
    )
    runbook = load_runbook(path)
    restart, echo, http = runbook.steps
    assert restart.title == "Restart the broker"
    assert echo.spec.run == "echo one \\\ntwo"
    assert http.spec.headers == {"X-Retries": "3"}


def test_nested_task_items_are_not_repeated_in_the_parent_detail(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        # T
        - [ ] Parent
          - context line
          - [ ] Child
    """,
    )
    parent, child = load_runbook(path).steps
    assert parent.spec.detail == "- context line"
    assert child.title == "Child"


# -- hostile and unusual files: answered at a line, never an exception, never a hang --------


def parse_in_thread(path: Path, timeout: float = 20) -> tuple[Any, list[RunbookError]]:
    """parse_runbook(path) in a thread, so a file that blocks (a FIFO) fails the test."""
    result: list[tuple[Any, list[RunbookError]]] = []
    worker = threading.Thread(target=lambda: result.append(parse_runbook(path)), daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        unblock_fifo(path)
        pytest.fail(f"parse_runbook({path.name}) is still reading after {timeout:.0f} s")
    return result[0]


def unblock_fifo(path: Path) -> None:
    with contextlib.suppress(OSError):  # a blocked reader sees EOF once a writer comes and goes
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "x.md"
    os.mkfifo(fifo)
    runbook, errors = parse_in_thread(fifo)
    assert runbook is None
    assert [str(e) for e in errors] == [f"{fifo}:1: not a regular file (a FIFO)"]


def test_a_folder_named_like_a_runbook_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "x.md"
    folder.mkdir()
    assert errors_of(folder) == [f"{folder}:1: not a regular file (a folder)"]


def test_a_folder_lint_skips_what_is_not_a_file_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "dir.md").mkdir()
    write(tmp_path / "dir.md", "# Inside\n", "inner.md")
    os.mkfifo(tmp_path / "pipe.md")
    (tmp_path / "gone.md").symlink_to(tmp_path / "nowhere.md")
    good = write(tmp_path, "# Good\n", "good.md")
    done: list[LintResult] = []
    worker = threading.Thread(target=lambda: done.append(lint([tmp_path])), daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():
        unblock_fifo(tmp_path / "pipe.md")
        pytest.fail("a folder lint blocked on a FIFO")
    (result,) = done
    assert result.runbooks == 2, result
    assert sorted(str(p) for p in result.problems) == [
        f"{tmp_path / 'dir.md'}:1: warning: skipped: not a regular file (a folder)",
        f"{tmp_path / 'gone.md'}:1: warning: skipped: cannot read it: No such file or directory",
        f"{tmp_path / 'pipe.md'}:1: warning: skipped: not a regular file (a FIFO)",
    ]
    assert result.errors == []
    assert find_runbooks([tmp_path]) == [tmp_path / "dir.md" / "inner.md", good]


def test_too_big_and_too_many_lines_are_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.md"
    big.write_bytes(b"# Big\n" + b"x" * (3 * MAX_RUNBOOK_BYTES // 2))
    assert errors_of(big) == [
        f"{big}:1: runbook is 3.0 MiB; the limit is 2 MiB (split it into smaller runbooks)"
    ]
    tall = tmp_path / "tall.md"
    tall.write_text("# Tall\n" + "\n" * MAX_RUNBOOK_LINES)
    (error,) = errors_of(tall)
    assert error == (
        f"{tall}:1: runbook has {MAX_RUNBOOK_LINES + 1:,} lines; the limit is "
        f"{MAX_RUNBOOK_LINES:,} (split it into smaller runbooks)"
    )


def test_a_byte_order_mark_does_not_hide_the_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "bom.md"
    path.write_text(
        "\ufeff---\ntitle: With BOM\nvariables: [base_url]\n---\n# T\n\n"
        '```ops http\nurl: "{{ base_url }}/health"\n```\n',
        encoding="utf-8",
    )
    runbook, errors = parse_runbook(path)
    assert errors == []
    assert runbook is not None and runbook.title == "With BOM"


def test_line_numbers_follow_markdown_lines_whatever_the_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "breaks.md"
    path.write_bytes(
        "# A\r\n\r\nA page\x0cbreak, a \u2028 separator.\r\n\r\n## B\r\n\r\nb text\r\n\r\n"
        '```ops http\r\nurl: "{{ nowhere }}/x"\r\n```\r\n'.encode()
    )
    runbook, errors = parse_runbook(path)
    assert [str(e).split(": unknown")[0] for e in errors] == [f"{path}:10"]
    assert runbook is not None
    assert [s.line for s in runbook.sections] == [1, 5]
    assert runbook.sections[1].prose == "b text"


@pytest.mark.parametrize(
    "source",
    [
        "# T\n\n> ```bash\n> echo quoted\n> ```\n",
        "# T\n\n- item\n\n  ```bash\n  echo listed\n  ```\n",
        "# T\n\n````bash\necho four\n`````\n",
        "# T\n\n~~~\nplain\n~~~",
    ],
)
def test_closed_fences_are_not_warned_about(tmp_path: Path, source: str) -> None:
    assert errors_of(write(tmp_path, source)) == []


def test_an_unclosed_fence_is_a_warning_and_the_runbook_opens(tmp_path: Path) -> None:
    path = write(tmp_path, "# T\n\nStart.\n\n```bash\nsystemctl status api\n")
    runbook, problems = parse_runbook(path)
    assert [(p.line, p.severity) for p in problems] == [(5, "warning")]
    assert str(problems[0]).startswith(f"{path}:5: warning: this ``` fence is never closed")
    assert load_runbook(path).steps[0].spec.run == "systemctl status api"


def test_site_generator_and_runme_front_matter_open_with_warnings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        ---
        title: Restart
        weight: 10
        aliases: [/old]
        sidebar_position: 2
        runme:
          id: 01HF7B0KJPF469EG9ZWDNKKACQ
        shell: bash
        cwd: /srv
        skipPrompts: true
        ---
        # Restart
        """,
    )
    runbook, problems = parse_runbook(path)
    assert all(problem.is_warning for problem in problems)
    assert [(p.line, p.message.split("'")[1]) for p in problems] == [
        (3, "weight"),
        (4, "aliases"),
        (5, "sidebar_position"),
        (6, "runme"),
        (10, "skipPrompts"),
    ]
    runbook = load_runbook(path)
    assert (runbook.title, runbook.shell, runbook.cwd) == ("Restart", "bash", "/srv")
    kept = FrontMatter.model_validate({"title": "T", "shell": "bash", "runme": {"id": "x"}})
    assert kept.model_extra == {"runme": {"id": "x"}}


def test_load_runbook_raises_errors_only(tmp_path: Path) -> None:
    path = write(tmp_path, "---\ncolour: blue\ntags: {not: a list}\n---\n# T\n")
    with pytest.raises(RunbookError) as caught:
        load_runbook(path)
    assert [(e.line, e.severity) for e in caught.value.errors] == [(3, "error")]
    assert [p.severity for p in parse_runbook(path)[1]] == ["warning", "error"]


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("---\ntitle: t\ncount: " + "9" * 4400 + "\n---\n# T\n", 3, "at most 100 digits"),
        ("---\ntags: " + "[" * 2000 + "]" * 2000 + "\n---\n# T\n", 2, "more than 100 levels"),
        (
            "---\ntitle: a\nservice: b\ntitle: c\n---\n# T\n",
            4,
            "duplicate key 'title' (first on line 2)",
        ),
        ("---\nwhen: 2001-02-30\n---\n# T\n", 2, "cannot read '2001-02-30' as a timestamp"),
        ("---\nid: ../../x\n---\n# T\n", 2, "front matter: id: an id is a lower-case slug"),
        ("---\nid: a/b\n---\n# T\n", 2, "front matter: id: an id is a lower-case slug"),
        ("# T\n\n```ops command\nrun: echo\ntimeout: " + "1" * 4400 + "\n```\n", 5, "100 digits"),
        ("# T\n\n```ops http\nurl: http://x\njson: " + "[" * 2000 + "\n```\n", 5, "100 levels"),
        ("# T\n\n```ops http\nurl: http://a\nurl: http://b\n```\n", 5, "duplicate key 'url'"),
        ("# T\n\n```ops command\nrun: echo\ntimeout: .nan\n```\n", 5, "finite number"),
        ("# T\n\n```ops command\nrun: echo\ntimeout: .inf\n```\n", 5, "finite number"),
        ("# T\n\n```ops command\nrun: echo\ntimeout: 9999999h\n```\n", 5, "at most a week"),
        ("# T\n\n```ops command\nid: a..b\nrun: echo\n```\n", 4, "no '..'"),
    ],
)
def test_hostile_yaml_is_an_error_at_its_line(
    tmp_path: Path, source: str, line: int, message: str
) -> None:
    path = write(tmp_path, source)
    errors = errors_of(path)
    assert errors and errors[0].startswith(f"{path}:{line}: "), errors
    assert message in errors[0]


def test_titles_lose_their_markup(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# Restart the `broker` *now*\n\n- [ ] Check [the dashboard](http://x) \\*twice\\*\n",
    )
    runbook = load_runbook(path)
    assert runbook.title == "Restart the broker now"
    assert runbook.steps[0].title == "Check the dashboard *twice*"


def test_a_block_with_thousands_of_mistakes_is_twenty_messages_and_a_count(
    tmp_path: Path,
) -> None:
    statuses = ", ".join(["ok"] * 3000)
    path = write(
        tmp_path, f"# T\n\n```ops http\nurl: http://x\nexpect:\n  status: [{statuses}]\n```\n"
    )
    errors = errors_of(path)
    assert len(errors) == 21
    assert errors[0].startswith(f"{path}:6: ops http: expect.status.0: Input should be")
    assert errors[-1] == f"{path}:6: ops http: and 2980 more problems like the ones above"


def test_thousands_of_unknown_front_matter_fields_are_each_located(tmp_path: Path) -> None:
    fields = "".join(f"k{i}: 1\n" for i in range(3000))
    problems = parse_runbook(write(tmp_path, f"---\n{fields}---\n# T\n"))[1]
    assert [p.line for p in problems] == list(range(2, 3002))
    assert all(p.is_warning for p in problems)


def test_burst_variables_exist_only_inside_the_burst(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        ---
        variables: [base_url]
        ---
        # T

        ```ops burst
        url: "{{ base_url }}/act"
        user: "{{ burst_index }}"
        count: 3
        headers:
          X-User: "{{ burst_user }}"
        ```

        ```ops http
        url: "{{ base_url }}/users/{{ burst_user }}"
        ```
    """,
    )
    errors = errors_of(path)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}:15: unknown variable 'burst_user'")
