"""The ``opsconsole`` command line.

The verbs are how CI and scripts use opsconsole, so they are stable:

    opsconsole                      the console's home screen
    opsconsole run RUNBOOK          the console at that runbook
    opsconsole demo                 the built-in sandbox + the console
    opsconsole lint PATH...         0 clean (warnings allowed unless --strict), 1 with errors
    opsconsole show RUNBOOK --json  the parsed outline
    opsconsole check RUNBOOK ...    headless run: 0 nothing failed, 1 a step failed, was unknown
                                    or inconclusive (or nothing automated ran, with
                                    --require-automated), 2 usage/runbook error
    opsconsole audit verify         check the audit log's hash chain

Only ``run``/``demo``/no verb import Textual (lazily): ``lint``, ``check``
and ``--help`` stay fast in CI. No command shows a traceback: unexpected
errors are written to ``<state>/crash.log`` and summarised in one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .config import Config, ConsoleSettings, bundled_runbooks_dir, load_config, state_dir
from .errors import OpsConsoleError, RunbookError
from .terminal_text import terminal_safe, terminal_safe_json

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("opsconsole")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """``--version``: the package metadata is read only when asked (it costs start-up)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0,
            help="print the version and exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"opsconsole {_version()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opsconsole",
        description="Turn Markdown runbooks into interactive, audited checks.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="environment config (TOML); default $OPSCONSOLE_CONFIG or the platform config dir",
    )
    parser.add_argument("--env", help="environment to use (default: the config's default)")
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="steps that change something are shown but do not run (break-glass: key b)",
    )
    parser.add_argument("--version", action=_VersionAction)
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")

    run = verbs.add_parser("run", help="open the console at a runbook")
    run.add_argument("runbook", type=Path)
    run.add_argument("--env", dest="run_env", help="environment to use")
    run.add_argument(
        "--read-only", dest="run_read_only", action="store_true",
        help="steps that change something are shown but do not run",
    )

    demo = verbs.add_parser("demo", help="start the built-in sandbox and open the console on it")
    demo.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="inject a sandbox fault from the start (repeatable)",
    )

    lint = verbs.add_parser("lint", help="check runbooks; prints path:line: message per problem")
    lint.add_argument("paths", nargs="+", type=Path)
    lint.add_argument(
        "--strict", action="store_true", help="warnings (unknown front matter, ...) fail too"
    )

    show = verbs.add_parser("show", help="print a runbook's parsed outline")
    show.add_argument("runbook", type=Path)
    show.add_argument("--json", action="store_true", help="machine-readable outline")

    check = verbs.add_parser("check", help="run a runbook headless (no screen, no questions)")
    check.add_argument("runbook", type=Path)
    target = check.add_mutually_exclusive_group()
    target.add_argument("--env", dest="check_env", help="environment to run against")
    target.add_argument(
        "--sandbox",
        action="store_true",
        help="start the built-in sandbox for the duration and run against it",
    )
    check.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="with --sandbox: inject this fault (repeatable)",
    )
    check.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="ID=VALUE",
        help="answer a step's question (STEP_ID=VALUE or STEP_ID.QUESTION=VALUE; repeatable)",
    )
    check.add_argument(
        "--yes",
        action="store_true",
        help="answer yes to confirmations (ops confirm); refused in a protected environment",
    )
    check.add_argument(
        "--require-automated",
        action="store_true",
        help="exit 1 when no automated step ran (only manual checks, or everything skipped)",
    )
    check.add_argument(
        "--run-commands",
        action="store_true",
        help="run the plain shell blocks (in order, in one shell session); off by default",
    )
    check.add_argument(
        "--keep-going",
        action="store_true",
        help="with --run-commands: go on after a failing block (default: stop there)",
    )
    check.add_argument(
        "--yes-protected",
        metavar="ENV",
        help="with --run-commands: allow running them in the protected environment ENV",
    )
    check.add_argument(
        "--read-only", dest="check_read_only", action="store_true",
        help="skip every step that changes something (with that reason); run the rest",
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.add_argument("--junit", type=Path, metavar="FILE", help="also write a JUnit XML report")

    audit = verbs.add_parser("audit", help="audit log tools")
    audit_verbs = audit.add_subparsers(dest="audit_verb", metavar="ACTION", required=True)
    verify = audit_verbs.add_parser(
        "verify", help="verify the hash chain; names the first bad record"
    )
    verify.add_argument("--log", type=Path, help="audit log file (default: <state>/audit.jsonl)")
    verify.add_argument(
        "--anchor",
        metavar="HASH:SEQ",
        help="a head kept elsewhere (evidence, ticket): the log must still contain it",
    )
    return parser


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"opsconsole: error: {message}", file=sys.stderr)
    return code


def _runbook_paths(config: Config) -> list[Path]:
    return [bundled_runbooks_dir(), *(Path(p).expanduser() for p in config.runbook_paths)]


def _print_problems(problems: Sequence[RunbookError], file: TextIO | None = None) -> None:
    """``path:line: [warning: ]message``, one line each, whatever the runbook contains."""
    for problem in problems:
        print(terminal_safe(str(problem), one_line=True), file=file or sys.stdout)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def cmd_lint(paths: Sequence[Path], strict: bool = False) -> int:
    """Problems on stdout (one per line), the summary on stderr; exit 1 on errors."""
    from .loader import lint

    result = lint(paths)
    _print_problems(result.problems)
    errors, warnings = len(result.errors), len(result.warnings)
    found = _plural(result.runbooks, "runbook")
    if errors:
        summary = f"{found}, {_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
    elif warnings:
        summary = f"{found}, {_plural(warnings, 'warning')}"
    else:
        summary = f"{found}, no problems"
    print(summary, file=sys.stderr)
    return EXIT_FAILED if errors or (strict and warnings) else EXIT_OK


def cmd_show(path: Path, as_json: bool) -> int:
    import json

    from .loader import parse_runbook

    runbook, problems = parse_runbook(path)
    errors = [problem for problem in problems if not problem.is_warning]
    if errors or runbook is None:
        _print_problems(errors, sys.stderr)
        return EXIT_USAGE
    _print_problems(problems, sys.stderr)  # warnings: the outline is still shown
    outline = {
        "id": runbook.id,
        "title": runbook.title,
        "service": runbook.service,
        "tags": runbook.tags,
        "variables": runbook.variables,
        "secrets": runbook.secrets,
        "sections": [
            {"title": s.title, "level": s.level, "line": s.line, "steps": s.step_ids}
            for s in runbook.sections
        ],
        "steps": [
            {
                "id": s.id,
                "kind": s.kind,
                "title": s.title,
                "line": s.line,
                "section": runbook.sections[s.section].title,
                "mutating": s.mutating,
                "human": s.needs_human,
                "spec": s.spec.model_dump(
                    mode="json", by_alias=True, exclude_defaults=True, exclude={"id", "title"}
                ),
            }
            for s in runbook.steps
        ],
    }
    if as_json:
        print(terminal_safe_json(json.dumps(outline, indent=2, ensure_ascii=False)))
        return EXIT_OK

    def safe(text: object) -> str:
        return terminal_safe(str(text), one_line=True)

    print(f"{safe(runbook.title)} ({safe(runbook.id)})  {safe(runbook.path)}")
    steps = {step.id: step for step in runbook.steps}
    for section in runbook.sections:
        print(f"{'  ' * max(section.level - 1, 0)}{safe(section.title)}  [line {section.line}]")
        for step_id in section.step_ids:
            step = steps[step_id]
            flag = " (mutating)" if step.mutating else ""
            print(
                f"{'  ' * section.level}- {step.kind:8} {safe(step.title)}{flag}"
                f"  [line {step.line}]"
            )
    return EXIT_OK


def _junit_target_problem(path: Path) -> str | None:
    """Why a JUnit report could not be written to ``path`` (checked before the run)."""
    import os

    target = path.expanduser()
    if target.is_dir():
        return f"--junit {path}: is a folder; give the report's file name"
    parent = target.parent
    if not parent.is_dir():
        return f"--junit {path}: the folder {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"--junit {path}: cannot write in {parent}"
    if target.exists() and not os.access(target, os.W_OK):
        return f"--junit {path}: the file exists and cannot be overwritten"
    return None


def cmd_check(args: argparse.Namespace, config_path: Path | None, env_name: str | None) -> int:
    from .headless import MARKS, CommandOperator, run_check
    from .loader import load_runbook

    if args.fault and not args.sandbox:
        return _fail("--fault needs --sandbox")
    if args.junit and (problem := _junit_target_problem(args.junit)):
        return _fail(terminal_safe(problem, one_line=True))
    answers: dict[str, str] = {}
    for item in args.answer:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            return _fail(f"--answer {item!r}: use STEP_ID=VALUE (or STEP_ID.QUESTION=VALUE)")
        answers[key.strip()] = value
    runbook = load_runbook(args.runbook)
    sandbox = None
    try:
        if args.sandbox:
            from .sandbox import Sandbox

            try:
                sandbox = Sandbox.for_runbooks([runbook], faults=args.fault)
            except OpsConsoleError as exc:
                return _fail(str(exc))
            sandbox.start()
            for note in sandbox.notes:  # e.g. no Prometheus: PromQL checks have no data
                print(terminal_safe(note), file=sys.stderr, flush=True)
            sandbox.install_keyring()
            config = load_config(sandbox.config_path)
            environment = config.environment(sandbox.environment_name)
            home = state_dir() / "sandbox"
        else:
            config = load_config(config_path)
            environment = config.environment(env_name)
            home = state_dir()
        if args.yes and environment.protected:
            return _fail(
                f"--yes is refused in the protected environment {environment.name!r}: "
                "confirm in the console"
            )
        if args.run_commands and environment.protected:
            if args.yes_protected != environment.name:
                return _fail(
                    f"--run-commands in the protected environment {environment.name!r} needs "
                    f"--yes-protected {environment.name}"
                )
        elif args.yes_protected or args.keep_going:
            if not args.run_commands:
                return _fail("--yes-protected and --keep-going need --run-commands")
        operator = CommandOperator(
            answers=answers,
            yes=args.yes,
            simulate=args.sandbox,
            protected=environment.protected,
            browser=sandbox.simulated_browser if sandbox is not None else None,
            run_commands=args.run_commands,
            yes_protected=args.yes_protected if environment.protected else None,
        )

        def progress(step: object, entry: dict[str, object]) -> None:
            if not args.json:
                mark = MARKS[str(entry["status"])]
                line = terminal_safe(f"{entry['id']}: {entry['title']}", one_line=True)
                print(f"{mark} {line}", file=sys.stderr, flush=True)

        import asyncio

        report = asyncio.run(
            run_check(
                runbook,
                environment,
                home,
                operator=operator,
                on_step=progress,
                require_automated=args.require_automated,
                run_commands=args.run_commands,
                keep_going=args.keep_going,
                read_only=args.read_only or args.check_read_only,
            )
        )
    finally:
        if sandbox is not None:
            sandbox.stop()
    print(terminal_safe_json(report.to_json()) if args.json else terminal_safe(report.to_text()))
    if args.junit:
        from .run import atomic_write

        try:
            atomic_write(args.junit.expanduser(), report.to_junit())
        except OSError as exc:
            return _fail(f"could not write the JUnit report {args.junit}: {exc.strerror or exc}")
    return report.exit_code


def cmd_audit_verify(log: Path | None, anchor: str | None = None) -> int:
    """Verify one log, or by default every log opsconsole writes (real and sandbox).

    ``anchor`` (``HASH:SEQ``, from a run's evidence or an earlier verify) must still be
    in the log: a log cut short since then fails. Without ``log`` it applies to the real
    log only.
    """
    from .audit import AuditHead, verify

    anchored: AuditHead | None = None
    if anchor is not None:
        try:
            anchored = AuditHead.parse(anchor)
        except ValueError as exc:
            return _fail(str(exc))
    if log:
        paths = [log]
    elif anchored is not None:
        paths = [state_dir() / "audit.jsonl"]
    else:
        paths = [state_dir() / "audit.jsonl", state_dir() / "sandbox" / "audit.jsonl"]
    code = EXIT_OK
    for path in paths:
        if log is None and anchored is None and not path.exists():
            continue
        verdict = verify(path, anchored)
        if verdict.ok:
            against = f", reaches anchor record {anchored.seq}" if anchored else ""
            head = f"head {verdict.head}"
            print(f"{path}: OK, {verdict.records} records, chain intact{against}; {head}")
            continue
        where = f"{path}:{verdict.line}" if verdict.line else str(path)
        print(f"{where}: {verdict.message} ({verdict.records} records verified before it)")
        code = EXIT_FAILED
    if log is None and anchored is None and not any(path.exists() for path in paths):
        print(f"{state_dir()}: no audit log yet")
    return code


def _console(settings: ConsoleSettings) -> int:
    from screens.app import run_console

    return run_console(settings)


def cmd_console(
    config_path: Path | None, env_name: str | None, runbook: Path | None, read_only: bool = False
) -> int:
    config = load_config(config_path)
    if env_name is not None:
        config.environment(env_name)  # unknown names fail here, before the screen opens
    if runbook is not None:
        from .loader import load_runbook

        load_runbook(runbook)
    paths = _runbook_paths(config)
    if runbook is not None:
        paths.append(runbook)
    settings = ConsoleSettings(
        config=config,
        home=state_dir(),
        runbook_paths=paths,
        environment=env_name,
        initial_runbook=runbook,
        read_only=read_only,
    )
    return _console(settings)


def cmd_demo(faults: list[str], read_only: bool = False) -> int:
    from .sandbox import Sandbox

    try:
        sandbox = Sandbox(faults=faults)
    except OpsConsoleError as exc:
        return _fail(str(exc))
    print("Starting the demo sandbox on loopback…", file=sys.stderr, flush=True)
    sandbox.start()
    for note in sandbox.notes:
        print(terminal_safe(note), file=sys.stderr, flush=True)
    try:
        sandbox.install_keyring()
        config = load_config(sandbox.config_path)
        home = state_dir() / "sandbox"
        settings = ConsoleSettings(
            config=config,
            home=home,
            runbook_paths=[bundled_runbooks_dir()],
            environment=sandbox.environment_name,
            sandbox=sandbox,
            evidence_dir=home / "evidence",
            read_only=read_only,
        )
        return _console(settings)
    finally:
        sandbox.stop()
        # stopped cleanly (stop raised nothing): finished runs need their faults no more
        from .faults import forget_finished_faults

        forget_finished_faults(state_dir() / "sandbox")


def _dispatch(args: argparse.Namespace) -> int:
    if args.verb == "lint":
        return cmd_lint(args.paths, args.strict)
    if args.verb == "show":
        return cmd_show(args.runbook, args.json)
    if args.verb == "check":
        return cmd_check(args, args.config, args.check_env or args.env)
    if args.verb == "audit":
        return cmd_audit_verify(args.log, args.anchor)
    if args.verb == "demo":
        return cmd_demo(args.fault, args.read_only)
    if args.verb == "run":
        return cmd_console(
            args.config, args.run_env or args.env, args.runbook,
            args.read_only or args.run_read_only,
        )
    return cmd_console(args.config, args.env, None, args.read_only)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.verb not in {"lint", "show", "audit"}:
        from .process import install_hangup_handlers

        # a dropped SSH session (SIGHUP) or a kill stops every child a step started
        install_hangup_handlers()
    try:
        return _dispatch(args)
    except RunbookError as exc:
        _print_problems(exc.errors, sys.stderr)
        return EXIT_USAGE
    except OpsConsoleError as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        # `opsconsole show X | head`: the reader left; that is not an error worth a word
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("opsconsole: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the operator gets one line, the log gets the rest
        from .crash import crash_summary, write_crash_log

        return _fail(crash_summary(exc, write_crash_log(exc)), 3)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
