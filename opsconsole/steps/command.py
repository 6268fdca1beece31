"""The local command step: run a shell command, stream its output, judge its exit."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from ..errors import TemplateError
from ..expectations import evaluate_command, exit_meaning
from ..model import CommandSpec
from ..run import StepStatus
from ..template import render, render_value
from . import Outcome, StepContext

__all__ = ["OUTPUT_LIMIT", "run_command"]

#: output kept for the screen and evidence (the tail is what matters most)
OUTPUT_LIMIT = 64 * 1024


def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return


async def run_command(spec: CommandSpec, ctx: StepContext) -> Outcome:
    try:
        command = spec.run if spec.plain else render(spec.run, ctx.variables, ctx.secret)
        extra_env = render_value(spec.env, ctx.variables, ctx.secret)
        cwd = render(spec.cwd, ctx.variables, ctx.secret) if spec.cwd else None
    except TemplateError as exc:
        return Outcome(StepStatus.FAILED, f"cannot build the command: {exc}")
    env = {**os.environ, **{k: str(v) for k, v in extra_env.items()}}
    request = {"command": command, "cwd": cwd or os.getcwd(), "timeout_s": spec.timeout}
    started = time.perf_counter()
    try:
        process = await asyncio.create_subprocess_exec(
            "/bin/bash",
            "-c",
            command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,  # so a timeout can stop the whole process group
        )
    except OSError as exc:
        return Outcome(
            StepStatus.FAILED, f"cannot start the command: {exc.strerror or exc}", request=request
        )

    chunks: list[str] = []

    async def pump() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            text = line.decode("utf-8", errors="replace")
            chunks.append(text)
            ctx.progress(text.rstrip("\n"))

    timed_out: float | None = None
    try:
        await asyncio.wait_for(asyncio.gather(pump(), process.wait()), spec.timeout)
    except TimeoutError:
        timed_out = spec.timeout
        _kill_group(process)
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    output = "".join(chunks)
    if len(output) > OUTPUT_LIMIT:
        output = "…(earlier output cut)…\n" + output[-OUTPUT_LIMIT:]
    elapsed = (time.perf_counter() - started) * 1000
    code = None if timed_out is not None else process.returncode
    assertions = evaluate_command(spec.expect, code, output, spec.exit_codes, timed_out=timed_out)
    summary = f"exit {code}{exit_meaning(code, spec.exit_codes)} in {elapsed / 1000:.1f}s"
    if timed_out is not None:
        summary = f"stopped after {timed_out:g}s"
    return Outcome.judged(
        assertions, summary, request=request, output=output, exit_code=code, duration_ms=elapsed
    )
