"""Bounded child processes (interim: replaced by the hardened version of the hardening work)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ProcessResult", "child_environment", "run_bounded"]

_ALLOWED = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR")


def child_environment(
    extra: Mapping[str, str] | None = None, *, source: Mapping[str, str] | None = None
) -> dict[str, str]:
    source = os.environ if source is None else source
    env = {k: v for k, v in source.items() if k in _ALLOWED or k.startswith("LC_")}
    env.update(extra or {})
    return env


@dataclass
class ProcessResult:
    exit_code: int | None
    signal: int | None
    timed_out: bool
    cancelled: bool
    output: str
    bytes_total: int
    lines_total: int
    truncated: bool
    duration_ms: float
    stopped: str = ""


async def run_bounded(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None = None,
    timeout: float,
    on_output: Callable[[str], None] | None = None,
    tail_bytes: int = 64 * 1024,
    grace: float = 2.0,
) -> ProcessResult:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
    )
    tail = bytearray()
    total = lines = 0
    pending = b""

    async def pump() -> None:
        nonlocal total, lines, pending
        assert process.stdout is not None
        while chunk := await process.stdout.read(65536):
            total += len(chunk)
            tail.extend(chunk)
            if len(tail) > tail_bytes:
                del tail[: len(tail) - tail_bytes]
            data = pending + chunk
            *complete, pending = data.split(b"\n")
            for line in complete:
                lines += 1
                if on_output is not None:
                    on_output(line.decode("utf-8", errors="replace"))
        if pending:
            lines += 1
            if on_output is not None:
                on_output(pending.decode("utf-8", errors="replace"))

    def kill(sig: int) -> None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass

    timed_out = False
    stopped = ""
    try:
        await asyncio.wait_for(asyncio.gather(pump(), process.wait()), timeout)
    except TimeoutError:
        timed_out = True
        kill(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            kill(signal.SIGKILL)
            await process.wait()
        stopped = f"still running after {timeout:g}s: stopped the process group"
    except asyncio.CancelledError:
        kill(signal.SIGKILL)
        await process.wait()
        raise
    code = process.returncode
    return ProcessResult(
        exit_code=None if timed_out else code,
        signal=-code if code is not None and code < 0 else None,
        timed_out=timed_out,
        cancelled=False,
        output=tail.decode("utf-8", errors="replace"),
        bytes_total=total,
        lines_total=lines,
        truncated=total > len(tail),
        duration_ms=(time.perf_counter() - started) * 1000,
        stopped=stopped,
    )
