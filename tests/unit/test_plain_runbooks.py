"""Runbooks written for people open as a person reads them (tests/runbooks/plain/)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from opsconsole.loader import find_runbooks, lint, load_runbook, parse_runbook
from opsconsole.shell_text import Placeholder
from opsconsole.steps.command import CommandSpec
from tests.conftest import REPO, RUNBOOKS

PLAIN = REPO / "tests" / "runbooks" / "plain"
SEEDS = Path("/work/shared/seeds")


def commands(path: Path) -> list[CommandSpec]:
    specs = [step.spec for step in load_runbook(path).steps if step.kind == "command"]
    assert all(isinstance(spec, CommandSpec) and spec.plain for spec in specs)
    return specs  # type: ignore[return-value]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rb.md"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_prompts_with_output_lines_are_commands_and_expected_output() -> None:
    pods, logs, script, restart = commands(PLAIN / "prompts.md")
    assert pods.run == "kubectl get pods -n payments"
    assert pods.expected_output is not None
    assert pods.expected_output.splitlines()[0].startswith("NAME ")
    assert "Running" in pods.expected_output
    # a pipe continued on a '> ' line, output, then a root prompt continued with '\'
    assert logs.run == (
        "kubectl logs deploy/api -n payments |\ngrep -c ERROR\n"
        'journalctl -u kubelet --since "10 min ago" \\\n    --no-pager | tail -n 3'
    )
    assert logs.expected_output == "0\n-- No entries --"
    # a console block without a single prompt is a script, no longer dropped
    assert (script.run, script.expected_output) == ("uptime\ndf -h /", None)
    # a '# comment' in a script stays a comment (and names the step)
    assert restart.run.startswith("# Restart the worker\nsystemctl restart worker")
    titles = [step.title for step in load_runbook(PLAIN / "prompts.md").steps]
    assert titles == [
        "kubectl get pods -n payments",
        "kubectl logs deploy/api -n payments | grep -c ERROR",
        "uptime",
        "Restart the worker",
    ]


def test_untagged_fences_that_look_like_commands_are_guessed_commands() -> None:
    runbook = load_runbook(PLAIN / "untagged.md")
    specs = commands(PLAIN / "untagged.md")
    assert [spec.run for spec in specs] == [
        "kubectl rollout status deploy/api -n payments",
        "./scripts/drain.sh --node worker-3",
        "LOG_LEVEL=debug ./bin/api --check",
    ]
    assert all(spec.guessed for spec in specs)
    assert specs[1].expected_output == "draining worker-3... done"
    # the data, prose and config fences stay prose
    prose = runbook.sections[0].prose
    assert "NAME    READY   STATUS" in prose and "make sure the dashboards" in prose
    assert "port: 8080" in prose


def test_tagged_blocks_are_not_guessed() -> None:
    assert not any(spec.guessed for spec in commands(PLAIN / "prompts.md"))


def test_hugo_front_matter_opens_with_warnings() -> None:
    runbook, problems = parse_runbook(PLAIN / "hugo.md")
    assert runbook is not None
    assert problems and all(problem.is_warning for problem in problems)
    assert [p.message.split("'")[1] for p in problems] == [
        "weight",
        "aliases",
        "sidebar_position",
        "date",
        "lastmod",
        "draft",
    ]
    assert runbook.title == "Restart the API"
    assert runbook.tags == ["ops", "api", "restart"]  # a comma string is a list
    assert runbook.front_matter["weight"] == 10
    assert [step.kind for step in runbook.steps] == ["manual", "command"]


def test_runme_front_matter_sets_shell_and_cwd() -> None:
    runbook, problems = parse_runbook(PLAIN / "runme.md")
    assert runbook is not None
    assert [(p.line, p.severity, p.message.split("'")[1]) for p in problems] == [
        (2, "warning", "runme"),
        (7, "warning", "skipPrompts"),
    ]
    assert (runbook.shell, runbook.cwd) == ("bash", "/tmp")


def test_runme_fence_attributes() -> None:
    runbook = load_runbook(PLAIN / "runme.md")
    assert [step.id for step in runbook.steps] == ["build", "deploy", "verify"]
    build, deploy, verify = (step.spec for step in runbook.steps)
    assert isinstance(build, CommandSpec)
    assert isinstance(deploy, CommandSpec)
    assert isinstance(verify, CommandSpec)
    assert build.exclude_from_run_all and not build.background
    assert (deploy.cwd, deploy.background, deploy.interactive) == ("/srv/app", True, False)
    assert not deploy.exclude_from_run_all
    assert verify.interactive  # Runme's JSON form, its own cell id ignored
    assert deploy.placeholders == [Placeholder("ENV", "variable", False, "$ENV")]


@pytest.mark.parametrize(
    ("shell", "problem"),
    [
        ("bin/bash", "'bin/bash' is not a shell: give its name"),
        ('"/bin/ba sh"', "is not a shell: give its name"),
    ],
)
def test_front_matter_shell_is_validated(tmp_path: Path, shell: str, problem: str) -> None:
    path = write(tmp_path, f"---\nshell: {shell}\n---\n# T\n")
    runbook, problems = parse_runbook(path)
    (error,) = problems
    assert (error.line, error.severity) == (2, "error")
    assert problem in error.message


def test_a_shell_the_session_cannot_run_opens_with_a_warning(tmp_path: Path) -> None:
    runbook, problems = parse_runbook(write(tmp_path, "---\nshell: fish\n---\n# T\n"))
    (warning,) = problems
    assert (warning.line, warning.severity) == (2, "warning")
    assert "shell 'fish' is not one the shell session runs (bash, sh, zsh)" in warning.message
    assert runbook is not None and runbook.shell == "fish"


@pytest.mark.parametrize("shell", ["bash", "sh", "zsh", "dash", "/usr/local/bin/bash"])
def test_front_matter_shells_that_open(tmp_path: Path, shell: str) -> None:
    assert (
        load_runbook(write(tmp_path, f"---\nshell: {shell}\ncwd: ./broker\n---\n# T\n")).shell
        == shell
    )


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ("sh {name=deploy", "fence attributes: '{' is never closed with '}'"),
        (
            "sh {name=deploy background=maybe}",
            "fence attribute background='maybe': use true or false",
        ),
        ("sh {name=deploy =x}", "fence attributes: cannot read '=x'"),
        ('sh {name="deploy}', "fence attributes: cannot read 'name=\"deploy'"),
        ('sh {"name": deploy}', "fence attributes: invalid JSON"),
        ("sh {name=../etc}", "fence attribute name: a step id uses letters"),
        ("sh {name=has/slash}", "fence attribute name: a step id uses letters"),
    ],
)
def test_malformed_fence_attributes_are_an_error_at_the_fence(
    tmp_path: Path, info: str, message: str
) -> None:
    path = write(tmp_path, f"# T\n\nText.\n\n```{info}\necho hi\n```\n")
    runbook, problems = parse_runbook(path)
    errors = [p for p in problems if not p.is_warning]
    assert errors, problems
    assert errors[0].line == 5
    assert errors[0].message.startswith(message), errors[0].message


def test_an_unknown_fence_attribute_is_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "# T\n\n```sh {name=x closeTerminalOnSuccess=false}\necho hi\n```\n")
    runbook, problems = parse_runbook(path)
    assert runbook is not None and runbook.steps[0].id == "x"
    (warning,) = problems
    assert (warning.line, warning.severity) == (3, "warning")
    assert "'closeTerminalOnSuccess'" in warning.message


def test_duplicate_fence_names_are_reported_at_the_second(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        # T

        ```sh {name=deploy}
        echo one
        ```

        ```ops http
        id: deploy
        url: http://127.0.0.1:1/
        ```
        """,
    )
    _, problems = parse_runbook(path)
    assert [str(p) for p in problems] == [
        f"{path}:7: duplicate step id 'deploy' (first used on line 3)"
    ]


def test_placeholders_and_variables_set_by_earlier_blocks() -> None:
    first, second = commands(PLAIN / "placeholders.md")
    assert first.placeholders == []
    assert first.sets == ["NS", "BROKER_URL", "RELEASE"]
    assert second.placeholders == [
        Placeholder("deployment-name", "angle", False, "<deployment-name>"),
        Placeholder("API_TOKEN", "angle", True, "<API_TOKEN>"),
        Placeholder("PREVIOUS_SHA", "variable", False, "$PREVIOUS_SHA"),
        Placeholder("REGION", "variable", False, "${REGION}"),
        Placeholder("DB_PASSWORD", "variable", True, "$DB_PASSWORD"),
    ]
    assert second.sets == ["pod"]


def test_a_variable_set_in_a_later_block_is_still_a_placeholder_where_it_is_used(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        """
        # T

        ```bash
        echo "$NS"
        ```

        ```bash
        export NS=payments
        ```
        """,
    )
    use, setter = commands(path)
    assert [p.name for p in use.placeholders] == ["NS"]
    assert setter.sets == ["NS"] and setter.placeholders == []


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed runbooks are not on this machine")
@pytest.mark.parametrize(
    "path",
    [SEEDS / "000_adc4786777f72942.txt", RUNBOOKS / "discogs-broker.md"],
    ids=["seed", "bundled"],
)
def test_the_broker_full_flow_reads_as_a_person_reads_it(path: Path) -> None:
    runbook = load_runbook(path)
    section = next(s for s in runbook.sections if s.title == "Local Contract Smoke (Full Flow)")
    steps = [runbook.step(step_id) for step_id in section.step_ids]
    specs = [step.spec for step in steps if step.kind == "command"]
    start = next(s for s in specs if isinstance(s, CommandSpec) and "START_JSON=" in s.run)
    assert isinstance(start, CommandSpec)
    assert {"DEVICE_ID", "PENDING_TOKEN", "BROKER_URL", "BROKER_TOKEN"} <= set(start.sets)
    assert start.placeholders == [
        Placeholder(
            "BROKER_CLIENT_TOKEN_IF_ENABLED", "angle", True, "<BROKER_CLIENT_TOKEN_IF_ENABLED>"
        )
    ]
    later = specs[specs.index(start) + 1 :]
    assert len(later) >= 2
    # status, finalize and proxy/search use what the start block set: nothing to ask
    assert all(isinstance(s, CommandSpec) and s.placeholders == [] for s in later)
    finalize = next(s for s in later if isinstance(s, CommandSpec) and "SESSION_TOKEN" in s.sets)
    assert isinstance(finalize, CommandSpec)
    assert any(isinstance(s, CommandSpec) and "${SESSION_TOKEN}" in s.run for s in later)


def test_every_runbook_in_the_repo_lints_without_errors() -> None:
    """The corpus: bundled runbooks, tests/runbooks (not the malformed ones) and the plain
    ones open; only the deliberately Hugo/Runme files carry warnings."""
    paths = [
        p
        for p in find_runbooks([RUNBOOKS, REPO / "tests" / "runbooks"])
        if "malformed" not in p.parts
    ]
    assert len(paths) >= 10, paths
    result = lint(paths)
    assert result.errors == []
    warned = {Path(str(problem.path)).name for problem in result.warnings}
    assert warned == {"hugo.md", "runme.md", "before-after.md"}


def test_the_before_and_after_in_the_docs_is_what_the_loader_reads() -> None:
    """docs/runbook-format.md "Runbooks you already have": its example is this file."""
    docs = (REPO / "docs" / "runbook-format.md").read_text(encoding="utf-8")
    example = docs[docs.index("**Before**") :]
    example = example[example.index("````markdown\n") + 13 : example.index("\n````\n") + 1]
    path = PLAIN / "before-after.md"
    assert path.read_text(encoding="utf-8") == example
    runbook, problems = parse_runbook(path)
    assert runbook is not None
    assert [(p.severity, p.message.split("'")[1]) for p in problems] == [("warning", "weight")]
    assert (runbook.tags, runbook.shell, runbook.cwd) == (["ops", "api"], "bash", "/srv/api")
    pods, restart, tag, use = commands(path)
    assert pods.run == "kubectl get pods -n payments |\ngrep api"
    assert pods.expected_output is not None and "Running" in pods.expected_output
    assert restart.guessed and [p.text for p in restart.placeholders] == ["<namespace>"]
    assert runbook.steps[2].id == "tag-release"
    assert tag.exclude_from_run_all and tag.sets == ["RELEASE"]
    assert use.placeholders == [
        Placeholder("PREVIOUS_SHA", "variable", False, "$PREVIOUS_SHA"),
        Placeholder("API_TOKEN", "angle", True, "<API_TOKEN>"),
    ]


def test_an_ops_command_title_is_its_first_command_without_the_backslash(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        # T

        ```ops command
        run: |
          docker run --rm \\
            -e APP_ENV=prod alpine:3 true
        ```
        """,
    )
    (step,) = load_runbook(path).steps
    assert step.title == "docker run --rm -e APP_ENV=prod alpine:3 true"


def test_other_tools_fence_attributes_do_not_stop_a_runbook(tmp_path: Path) -> None:
    """Docs sites put line highlights and options after the language; they open."""
    path = write(
        tmp_path,
        """
        # T

        ```js {1,3-4}
        const a = 1;
        ```

        ```python {linenos=true hl_lines=[2
        print("not ours")
        ```

        ```bash {2-3}
        echo one
        ```

        ```bash {linenos=table,hl_lines=[8,"15-17"]}
        echo two
        ```
        """,
    )
    runbook, problems = parse_runbook(path)
    assert runbook is not None
    assert [p.severity for p in problems] == ["warning", "warning"]  # linenos, hl_lines
    assert [step.spec.run for step in runbook.steps] == ["echo one", "echo two"]
