"""``ops command`` and plain shell blocks: run a command locally, stream it, judge its exit.

A plain ``bash``/``sh`` block written for people is a command step with
``plain: true``: it is never run without the operator seeing the exact
command (an :class:`~opsconsole.operator.ApprovePlan` question that an
unattended run and the simulated operator never approve).
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ..artifacts import CommandArtifact, OutputArtifact
from ..errors import TemplateError
from ..model import Duration, StrDict, StrList
from ..operator import ApprovePlan, OutputLine
from ..run import StepStatus
from ..shell_text import Placeholder, command_title
from . import register
from .base import Outcome, StepContext, StepSpec, StepType

if TYPE_CHECKING:
    from ..artifacts import Artifact
    from ..clients import Clients
    from ..model import Runbook
    from ..run import Run
    from ..shell_session import ShellSession

__all__ = [
    "CommandExpect",
    "CommandSpec",
    "CommandStep",
    "keep_placeholder",
    "run_plain",
    "session_variables",
    "shell_for",
    "shell_session",
]

#: lines kept for a checkpoint of a running command (the result keeps the byte tail)
CHECKPOINT_LINES = 200


class CommandExpect(StepSpec):
    #: an exit status, a list of them, "nonzero", "any", or "running" (must still be
    #: running when the timeout stops it: a service that boots and stays up)
    exit: int | list[int] | Literal["nonzero", "any", "running"] = 0
    output_contains: StrList = Field(default_factory=list)
    output_not_contains: StrList = Field(default_factory=list)


class CommandSpec(StepSpec):
    run: str
    timeout: Duration = 60.0
    env: StrDict = Field(default_factory=dict)
    cwd: str | None = None
    expect: CommandExpect = Field(default_factory=CommandExpect)
    #: exit status -> what it means, shown beside the status (e.g. 78: EX_CONFIG)
    exit_codes: dict[int, str] = Field(default_factory=dict)
    #: set by the loader for plain ``bash``/``sh`` blocks written for humans
    plain: bool = False
    # -- set by the loader for plain blocks (the fields below are read, never run) --
    #: lines of a prompted block that are not commands: output the author expected
    expected_output: str | None = None
    #: an untagged fence that looks like a command: offered, never run headless
    guessed: bool = False
    #: Runme ``background=true``: a long-running process (a server, a port-forward)
    background: bool = False
    #: Runme ``interactive=true``: the command wants a terminal and a person at it
    interactive: bool = False
    #: Runme ``excludeFromRunAll=true``: skipped when every block is run in order
    exclude_from_run_all: bool = False
    #: values the operator must supply (``<namespace>``, ``$UNSET``), in order of first use
    placeholders: list[Placeholder] = Field(default_factory=list)
    #: shell variables this block sets (``export X=``, ``X=``, ``read X``, ``for X in``...)
    sets: list[str] = Field(default_factory=list)


def shell_title(run: str) -> str:
    """A leading ``# comment`` names the command; otherwise its first command does
    (continuation lines joined, no trailing ``\\``, cut at a word)."""
    return command_title(run)


def _in_run(source: str, offset: int) -> bool:
    """Whether line ``offset`` of the block belongs to its ``run:`` value."""
    key = None
    for number, line in enumerate(source.splitlines()):
        if line and not line[0].isspace() and ":" in line:
            key = line.split(":", 1)[0].strip()
        if number == offset:
            return key == "run"
    return False


@register
class CommandStep(StepType[CommandSpec]):
    kind = "command"
    spec = CommandSpec
    description = "run a shell command on this machine, stream its output, assert its exit"
    mutates = True
    tracks_action = True

    def default_title(self, spec: CommandSpec, section_title: str) -> str:
        return shell_title(spec.run)

    def checks_references(self, spec: CommandSpec) -> bool:
        return not spec.plain  # text written for people: {{ }} there is not ours

    def lint(self, spec: CommandSpec, source: str) -> list[tuple[int, str]]:
        from ..template import references

        problems = []
        for offset, line in enumerate(source.splitlines()):
            for name in references(line):
                if name.startswith("secrets.") and _in_run(source, offset):
                    problems.append(
                        (
                            offset,
                            f"{{{{ {name} }}}} in run: would put the secret on the command line "
                            "(world-readable in /proc); pass it with env: "
                            f"(env: {{MY_VAR: \"{{{{ {name} }}}}\"}}) and use $MY_VAR",
                        )
                    )
        return problems

    def describe(self, spec: CommandSpec, render: Callable[..., str]) -> str:
        return spec.run if spec.plain else render(spec.run, "shell")

    async def run(self, ctx: StepContext[CommandSpec]) -> Outcome:
        from ..expectations import evaluate_command, exit_meaning
        from ..process import child_environment, run_bounded

        spec = ctx.spec
        if spec.plain:
            return await run_plain(ctx)
        try:
            command = spec.run if spec.plain else ctx.render(spec.run, "shell")
            extra_env = {k: ctx.render(str(v)) for k, v in spec.env.items()}
            cwd = ctx.render(spec.cwd) if spec.cwd else None
        except TemplateError as exc:
            raise TemplateError(f"cannot build the command: {exc}", exc.name) from None
        where = cwd or os.getcwd()
        shown = CommandArtifact(
            command=command,
            where="this machine",
            cwd=where,
            timeout_s=spec.timeout,
            env_names=sorted(extra_env),
        )
        if spec.plain:
            await ctx.ask(
                ApprovePlan(
                    prompt="Run this command from the runbook?",
                    key="run",
                    plan=(command,),
                    where="this machine",
                    directory=where,
                    simulate=False,
                    unattended_reason=(
                        "plain shell block: commands written for people are run from the "
                        "console, never unattended"
                    ),
                )
            )
        recent: deque[str] = deque(maxlen=CHECKPOINT_LINES)
        last_checkpoint = 0.0

        def output(line: str) -> None:
            nonlocal last_checkpoint
            recent.append(line)
            ctx.emit(OutputLine(text=line))
            now = time.monotonic()
            if now - last_checkpoint >= 1.0:
                last_checkpoint = now
                ctx.checkpoint(
                    [shown, OutputArtifact(text="\n".join(recent), partial=True,
                                           truncated=len(recent) == recent.maxlen)]
                )

        ctx.acting()
        try:
            result = await run_bounded(
                ["/bin/bash", "-c", command],
                env=child_environment(extra_env),
                cwd=cwd,
                timeout=spec.timeout,
                on_output=output,
            )
        except OSError as exc:
            return Outcome(
                StepStatus.FAILED,
                f"cannot start the command: {exc.strerror or exc}",
                artifacts=[shown],
            )
        code = result.exit_code
        timed_out = spec.timeout if result.timed_out else None
        assertions = evaluate_command(
            spec.expect, code, result.output, spec.exit_codes, timed_out=timed_out
        )
        took = f"{result.duration_ms / 1000:.1f}s"
        summary = f"exit {code}{exit_meaning(code, spec.exit_codes)} in {took}"
        if result.signal is not None:
            summary = f"killed by {signal.Signals(result.signal).name} after {took}"
        if result.timed_out:
            summary = result.stopped or f"stopped after {spec.timeout:g}s"
        elif result.stopped:
            summary += f"; {result.stopped}"
        out = OutputArtifact(
            text=result.output,
            lines_total=result.lines_total,
            bytes_total=result.bytes_total,
            truncated=result.truncated,
            exit_code=code,
        )
        return Outcome.judged(
            assertions, summary, artifacts=[shown, out], duration_ms=result.duration_ms
        )


# -- plain blocks: one shell session per run -----------------------------------------------

#: what the operator is told when a block runs in a fresh shell after the old one ended
RESTARTED = "the shell session restarted: variables from earlier blocks were lost"


def shell_for(clients: Clients, runbook: Runbook | None, run: Run | None = None) -> ShellSession:
    """The run's shell session (made on first use, closed with the run's session; the
    shell process itself starts with the first block). ``run``: the saved run, whose
    placeholder values (never secret ones) the session starts with (a resume)."""
    from ..process import child_environment
    from ..shell_session import ShellSession

    def make() -> ShellSession:
        cwd = runbook.cwd if runbook is not None else None
        if cwd and runbook is not None and not os.path.isabs(cwd):
            cwd = str(runbook.path.parent / cwd)
        shell = ShellSession(
            shell=runbook.shell if runbook is not None else None,
            cwd=cwd,
            env=child_environment(),
        )
        for name, value in (run.placeholders if run is not None else {}).items():
            shell.remember(name, value, secret=False)
        return shell

    return clients.get("shell", make, ShellSession.close)


def shell_session(ctx: StepContext[CommandSpec]) -> ShellSession:
    """The shell session of the run this step belongs to."""
    return shell_for(
        ctx.clients, getattr(ctx.run, "runbook", None), getattr(ctx.run, "run", None)
    )


def keep_placeholder(
    session: object, shell: ShellSession, name: str, value: str, *, secret: bool, how: str,
    step: str,
) -> None:
    """A placeholder's value given (``how``: "asked" or "edited"): kept in the shell session,
    in the run state unless secret (a secret one is never stored: asked again after a
    resume), and audited (a secret one as ***). ``session``: the run's RunSession."""
    shell.remember(name, value, secret=secret)
    run = getattr(session, "run", None)
    kept = getattr(run, "placeholders", None)
    if isinstance(kept, dict):
        if secret:
            kept.pop(name, None)
        else:
            kept[name] = value
    record = getattr(session, "record_event", None)
    redactor = getattr(session, "redactor", None)
    if callable(record):
        shown = "***" if secret else redactor.redact(value) if redactor is not None else value
        record("placeholder.value", step=step, name=name, value=shown, how=how)


async def ask_placeholders(
    ctx: StepContext[CommandSpec], shell: ShellSession, spec: CommandSpec | None = None
) -> dict[str, str]:
    """Ask for each placeholder of the block not yet known in this run (once per run);
    returns placeholder text -> the shell variable holding its value."""
    from ..operator import EnterText
    from ..shell_session import placeholder_variable

    runbook = getattr(ctx.run, "runbook", None)
    declared = runbook.variables if runbook is not None else {}
    replacements: dict[str, str] = {}
    for placeholder in (spec or ctx.spec).placeholders:
        given = ctx.variables.get(placeholder.name) if placeholder.name in declared else None
        if placeholder.name not in shell.placeholders and given and not placeholder.secret:
            # a variable the front matter declares: the environment's value, not a question
            shell.remember(placeholder.name, given, secret=False)
        if placeholder.name not in shell.placeholders:
            reply = await ctx.ask(
                EnterText(
                    prompt=f"Value for {placeholder.text}",
                    key=f"placeholder.{placeholder.name}",
                    detail=(
                        f"This command uses {placeholder.text}. The value is asked once per "
                        "run and passed to the shell as a variable, never pasted into the "
                        "command."
                        + (
                            " It is treated as a secret: hidden and redacted, never stored"
                            " (after a resume it is asked again)."
                            if placeholder.secret
                            else " It is kept with the run (a resume reuses it); p changes it."
                        )
                    ),
                    name=placeholder.name,
                    secret=placeholder.secret,
                    placeholder=placeholder.name,
                    unattended_reason=(
                        f"the command needs a value for {placeholder.text}: give it with "
                        f"--answer {placeholder.name}=VALUE or the environment variable "
                        f"{placeholder.name}"
                    ),
                )
            )
            keep_placeholder(
                ctx.run, shell, placeholder.name, reply.value or "", secret=placeholder.secret,
                how="asked", step=ctx.step.id,
            )
        replacements[placeholder.text] = placeholder_variable(placeholder.name)
    return replacements


def filled_in(command: str, placeholders: list[Placeholder], shell: ShellSession) -> str:
    """The command as the operator confirms it: values filled in, secrets as ***."""
    shown = command
    for placeholder in sorted(placeholders, key=lambda p: len(p.text), reverse=True):
        if placeholder.name not in shell.placeholders:
            continue  # not given yet: the text stays as the author wrote it
        value = shell.placeholders[placeholder.name]
        secret = placeholder.secret or placeholder.name in shell.secret_placeholders
        shown = shown.replace(placeholder.text, "***" if secret else value)
    return shown


def session_variables(shell: ShellSession) -> list[tuple[str, str]]:
    """The session's variables for the pane and the evidence (secret-looking ones ***)."""
    from ..shell_session import looks_secret

    items = [
        (name, "***" if looks_secret(name) else value)
        for name, value in sorted(shell.variables.items())
    ]
    items += [
        (f"<{name}>", "***" if name in shell.secret_placeholders else value)
        for name, value in sorted(shell.placeholders.items())
    ]
    return items


async def ask_restore(ctx: StepContext[CommandSpec], shell: ShellSession) -> list[CommandSpec]:
    """Blocks of this run ran in a shell that is gone (opsconsole restarted, the run was
    resumed): say so and offer to re-run those that set variables. Returns their specs
    (empty: continue without them). Asked once per session."""
    from ..operator import Choice, Choose

    runbook = getattr(ctx.run, "runbook", None)
    if shell.generation or shell.restore_asked or runbook is None:
        return []
    shell.restore_asked = True
    earlier = runbook.steps[: runbook.index_of(ctx.step.id)]
    ran = {StepStatus.PASSED, StepStatus.FAILED, StepStatus.UNKNOWN}
    setters = [
        step.spec for step in earlier
        if isinstance(step.spec, CommandSpec) and step.spec.plain and step.spec.sets
        and ctx.run.result(step.id).status in ran
    ]
    if not setters:
        return []
    names = sorted({name for spec in setters for name in spec.sets})
    shown = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
    reply = await ctx.ask(
        Choose(
            prompt="The shell session of this run is gone",
            key="restore-session",
            detail=(
                "Earlier blocks of this run ran in a shell that no longer exists (opsconsole "
                f"was restarted): the variables they set ({shown}) are not in the new shell. "
                f"Re-run the {len(setters)} block(s) that set them first? They are shown "
                "for approval with this one."
            ),
            choices=(
                Choice("rerun", f"Re-run {len(setters)} block(s) first", tone="positive"),
                Choice("continue", "Continue without them"),
            ),
            default="rerun",
            note=False,
            simulate=False,
            unattended_reason=(
                "the shell session of this run is gone; re-running the blocks that set its "
                "variables needs the operator"
            ),
        )
    )
    return setters if reply.value == "rerun" else []


def not_runnable(spec: CommandSpec) -> str:
    """Why the console does not run a plain block (Runme's background or interactive
    blocks), in operator words; "" when it runs it."""
    if spec.background:
        return (
            "not run: a background process (Runme background=true: a server, a "
            "port-forward) would hold the run's shell session until it ends; start it in a "
            "terminal of your own, then go on"
        )
    if spec.interactive:
        return (
            "not run: this block needs a terminal and a person at it (Runme "
            "interactive=true); run it in a terminal of your own, then go on"
        )
    return ""


async def ask_shell(ctx: StepContext[CommandSpec], shell: ShellSession) -> str:
    """The runbook's shell cannot be run here (not installed, or not one the session
    speaks): say so before anything runs and ask whether to use bash instead (once per
    session). Returns why the block is not run, or ""."""
    from ..operator import Choice, Choose, Note

    problem = shell.problem()
    if not problem:
        return ""
    reply = await ctx.ask(
        Choose(
            prompt=f"The runbook's shell ({shell.shell}) cannot run here",
            key="shell-fallback",
            detail=(
                f"{problem[0].upper()}{problem[1:]}. Its blocks may rely on {shell.shell}; "
                "run them in bash instead (for the rest of this run), or do not run them?"
            ),
            choices=(
                Choice("bash", "Run in bash instead"),
                Choice("no", "Do not run", tone="negative"),
            ),
            default="no",
            note=False,
            simulate=False,
            unattended_reason=f"not run: {problem}",
        )
    )
    if reply.value != "bash":
        return f"not run: {problem}"
    shell.bash_instead = problem
    ctx.emit(Note(text=f"{problem}: the blocks of this run go to bash instead"))
    return ""


def _register_secrets(ctx: StepContext[CommandSpec], shell: ShellSession) -> str:
    """The values of the session's secret-looking variables registered with the redactor
    (output is redacted from here on); returns the problem if one cannot be, else ""."""
    from ..errors import SecretUnavailable
    from ..shell_session import looks_secret

    for name, value in shell.variables.items():
        if looks_secret(name) and value:
            try:
                ctx.redactor.register(value)
            except SecretUnavailable as exc:
                return f"{name}: {exc}"
    return ""


async def run_plain(ctx: StepContext[CommandSpec]) -> Outcome:
    """A plain block: placeholders asked, the command approved, run in the run's shell."""
    from ..artifacts import KeyValuesArtifact
    from ..expectations import evaluate_command, exit_meaning
    from ..operator import NoAnswer, Note
    from ..shell_session import RedactedStream, looks_secret, placeholder_variable, substitute

    spec = ctx.spec
    refused = not_runnable(spec)
    if refused:
        return Outcome(StepStatus.SKIPPED, refused)
    shell = shell_session(ctx)
    refused = await ask_shell(ctx, shell)
    if refused:
        return Outcome(StepStatus.SKIPPED, refused)
    restore = await ask_restore(ctx, shell)
    restoring: list[tuple[str, str, dict[str, str]]] = []  # (title, command, values)
    for setter in restore:
        found = await ask_placeholders(ctx, shell, setter)
        restoring.append((
            substitute(setter.run, found),
            filled_in(setter.run, setter.placeholders, shell),
            {placeholder_variable(p.name): shell.placeholders.get(p.name, "")
             for p in setter.placeholders},
        ))
    replacements = await ask_placeholders(ctx, shell)
    command = substitute(spec.run, replacements)
    shown_text = filled_in(spec.run, spec.placeholders, shell)
    where = spec.cwd or shell.cwd or shell.start_cwd or os.getcwd()
    shown = CommandArtifact(
        command=shown_text, where="this machine (the run's shell session)", cwd=where,
        timeout_s=spec.timeout,
    )
    approved = await ctx.ask(
        ApprovePlan(
            prompt="Run this command from the runbook?",
            key="run-guessed" if spec.guessed else "run",
            plan=(*(shown for _, shown, _ in restoring), shown_text),
            where="this machine (the run's shell session)",
            directory=where,
            simulate=False,
            unattended_reason=(
                "guessed command (an untagged block): never run unattended"
                if spec.guessed
                else "plain shell block: commands written for people are run from the "
                "console, never unattended (check --run-commands runs them)"
            ),
        )
    )
    if approved.value != "yes":
        raise NoAnswer("the command was not approved")
    # Output of a block in the shared shell is not checkpointed: which of its variables hold
    # secrets (SESSION_TOKEN=...) is known only when the block ends, and a checkpoint is on
    # disk for good. A crash keeps the command; the output is in the result once it ends.
    ctx.checkpoint([shown])

    stream = RedactedStream(ctx.redactor, lambda line: ctx.emit(OutputLine(text=line)))
    # a block that sets a secret-looking variable (SESSION_TOKEN=$(...)) may print its value
    # before the block ends, which is when the value is known: its output is held till then
    holding = sorted({
        name for block in (*restore, spec) for name in block.sets if looks_secret(name)
    })
    if holding:
        ctx.emit(Note(text=(
            f"this block sets {', '.join(holding)}, a secret known only when the block ends: "
            "its output is shown then, redacted"
        )))
    output = None if holding else stream

    values = {
        placeholder_variable(p.name): shell.placeholders.get(p.name, "") for p in spec.placeholders
    }
    ctx.acting()
    notes = []
    try:
        if restoring:
            codes = []
            for again, _, setter_values in restoring:
                ctx.emit(Note(text="re-running an earlier block to restore the shell session"))
                earlier = await shell.run_block(
                    again, values=setter_values, timeout=spec.timeout, on_output=output
                )
                codes.append(str(earlier.exit_code))
            notes.append(
                f"re-ran {len(restoring)} earlier block(s) first to restore the shell session "
                f"(exit {', '.join(codes)})"
            )
        result = await shell.run_block(
            command, values=values, timeout=spec.timeout, cwd=spec.cwd, on_output=output
        )
    except OSError as exc:
        return Outcome(
            StepStatus.FAILED, f"cannot start the shell session: {exc.strerror or exc}",
            artifacts=[shown],
        )
    finally:
        stream.flush()
    unregistered = _register_secrets(ctx, shell)
    if holding:
        if unregistered:
            ctx.emit(Note(text=f"output not shown: {unregistered}"))
        else:
            for line in result.output.splitlines():
                stream(line)
    if shell.bash_instead:
        notes.append(f"run in bash: {shell.bash_instead}")
    if result.restarted:
        ctx.emit(Note(text=RESTARTED))
        notes.append(RESTARTED)
    code = result.exit_code
    assertions = evaluate_command(
        spec.expect, code, result.output, spec.exit_codes,
        timed_out=spec.timeout if result.timed_out else None,
    )
    took = f"{result.duration_ms / 1000:.1f}s"
    summary = f"exit {code}{exit_meaning(code, spec.exit_codes)} in {took}"
    if result.timed_out:
        summary = result.stopped
    elif result.stopped:
        summary += f"; {result.stopped}"
    ended = ""
    if result.shell_ended:
        ended = (
            "the shell session ended in this block: the next block starts a new one "
            "(variables from earlier blocks are lost)"
        )
        notes.append(ended)
        ctx.emit(Note(text=ended))
    out = OutputArtifact(
        text=result.output, lines_total=result.lines_total, bytes_total=result.bytes_total,
        truncated=result.truncated, exit_code=code,
    )
    artifacts: list[Artifact] = [shown, out]
    variables = session_variables(shell)
    if variables:
        artifacts.append(KeyValuesArtifact(title="Shell session variables", items=variables))
    outcome = Outcome.judged(
        assertions, summary, artifacts=artifacts, duration_ms=result.duration_ms
    )
    if ended:
        outcome.summary += f"; {ended}"
    # values of secret-looking variables are registered (redacted from here on)
    outcome.secret_captures = {
        f"shell {name}": value
        for name, value in shell.variables.items()
        if looks_secret(name) and value
    }
    outcome.note = "; ".join(notes)
    return outcome
