"""Runbook parsing and linting: every problem is path:line, never a traceback."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from opsconsole.errors import RunbookError
from opsconsole.loader import find_runbooks, lint_paths, load_runbook, parse_runbook
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
            title: ok
            colour: blue
            ---
            # T
            """,
            3,
            "front matter: unknown field 'colour'",
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
        owner: team-a
        variables: [base_url]
        ---
        # T

        ```ops http
        url: "{{ base_url }}/health"
        ```
    """,
    )
    assert errors_of(path) == [f"{path}:2: front matter: unknown field 'owner'"]


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
