"""Lint at scale: prints seconds, per-heading cost and peak memory; asserts nothing.

    python benchmarks/lint_scale.py [--sizes 5000,10000,20000] [--timeout 300]

Each case is a generated runbook linted by a fresh ``python -m opsconsole.cli lint``
process (the way CI runs it); the time includes interpreter start-up, which the
"tiny" case measures so the per-heading cost can be shown without it.

- headings-distinct N: N ``## Heading i`` sections, each with a checklist item;
- headings-repeated N: the same, every heading titled ``## Step`` (generated step
  ids must stay unique: the path that was quadratic);
- at-the-cap: a mixed runbook (prose, ops blocks, shell blocks, checklists) just
  under the loader's caps (2 MiB, 50,000 lines);
- over-the-cap: a 10 MB runbook, which must be refused at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def headings(count: int, repeated: bool) -> str:
    parts = ["# Generated\n"]
    for index in range(count):
        title = "Step" if repeated else f"Heading {index}"
        parts.append(f"## {title}\n- [ ] check {index}\n")
    return "".join(parts)


def mixed(size: int, max_lines: int = 10**9) -> str:
    header = "---\ntitle: Big\nvariables: [base_url]\n---\n# Big runbook\n"
    chunk = (
        "## Phase {i}\n\n"
        "Some prose about phase {i}, with *emphasis* and a [link](http://127.0.0.1/).\n\n"
        "- [ ] Look at the dashboard {i}\n"
        "  - with a detail line\n\n"
        '```ops http\nid: health-{i}\nurl: "{{{{ base_url }}}}/health"\n'
        "expect:\n  status: 200\n```\n\n"
        "```bash\ncurl -s http://127.0.0.1/{i}\n```\n\n"
    )
    parts = [header]
    total, lines = len(header), header.count("\n")
    index = 0
    while True:
        piece = chunk.format(i=index)
        if total + len(piece) > size or lines + piece.count("\n") > max_lines:
            break
        parts.append(piece)
        total += len(piece)
        lines += piece.count("\n")
        index += 1
    return "".join(parts)


def lint(path: Path, timeout: float) -> tuple[float, float, int, int | None, str]:
    """(seconds, CPU seconds, peak RSS in KiB, exit code or None on timeout, first line)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "opsconsole.cli", "lint", str(path)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        while True:  # reap it ourselves: wait4 gives this child's own peak memory
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                os.killpg(process.pid, signal.SIGKILL)
                os.wait4(process.pid, 0)
                return time.perf_counter() - started, 0.0, 0, None, "(timed out)"
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        first = output.read(4096).decode(errors="replace").splitlines()[:1]
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, usage.ru_maxrss, process.returncode, (first[0] if first else "")[:70]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,10000,20000")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        tiny = root / "tiny.md"
        tiny.write_text("# Tiny\n\nok\n")
        base, base_cpu, _, _, _ = lint(tiny, args.timeout)
        print(
            f"{'case':28} {'seconds':>8} {'CPU s':>6} {'CPU/heading':>12} {'peak RSS':>10}"
            "  exit  first line of output"
        )
        print(f"{'tiny (start-up)':28} {base:8.2f} {base_cpu:6.2f}")
        for repeated in (False, True):
            for count in sizes:
                path = root / f"h{count}.md"
                path.write_text(headings(count, repeated))
                seconds, cpu, peak, code, first = lint(path, args.timeout)
                name = f"headings-{'repeated' if repeated else 'distinct'} {count}"
                per = (cpu - base_cpu) / count * 1e6
                print(
                    f"{name:28} {seconds:8.2f} {cpu:6.2f} {per:9.0f} µs {peak / 1024:6.0f} MiB"
                    f"  {code!s:>4}  {first}"
                )
        for name, size, max_lines in (
            ("at-the-cap (50k lines)", 2 * MIB - 4096, 49_000),
            ("over-the-cap (10 MB)", 10**7, 10**9),
        ):
            path = root / "big.md"
            text = mixed(size, max_lines)
            path.write_text(text)
            seconds, cpu, peak, code, first = lint(path, args.timeout)
            sections = text.count("\n## ")
            cost = f"{(cpu - base_cpu) / sections * 1e6:9.0f} µs" if code == 0 else ""
            print(
                f"{name:28} {seconds:8.2f} {cpu:6.2f} {cost:>12} {peak / 1024:6.0f} MiB"
                f"  {code!s:>4}  {first}"
            )


if __name__ == "__main__":
    main()
