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
from typing import Literal

from pydantic import Field

from ..artifacts import CommandArtifact, OutputArtifact
from ..errors import TemplateError
from ..model import Duration, StrDict, StrList
from ..operator import ApprovePlan, OutputLine
from ..run import StepStatus
from ..shell_text import Placeholder, command_title
from . import register
from .base import Outcome, StepContext, StepSpec, StepType

__all__ = ["CommandExpect", "CommandSpec", "CommandStep"]

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
