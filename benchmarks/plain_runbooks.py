"""Reading plain runbooks: prints seconds per case; asserts nothing.

    python benchmarks/plain_runbooks.py

Each case is parsed in this process with ``parse_runbook`` (no interpreter start-up):
the seed and bundled runbooks, and generated files near the loader's 2 MiB cap whose
shell blocks are hostile to the shell reader (one huge block of ``${`` openings,
thousands of comments and ``<angle>`` placeholders, deep heredocs, a long prompted
transcript with continuations).
"""

from __future__ import annotations

import time
from pathlib import Path

from opsconsole.loader import parse_runbook

REPO = Path(__file__).resolve().parent.parent
SEEDS = Path("/work/shared/seeds")
CAP = 2 * 1024 * 1024 - 4096


def block(body: str, language: str = "bash") -> str:
    return f"# Generated\n\n```{language}\n{body}\n```\n"


def fill(unit: str) -> str:
    """As many copies as fit under both caps (2 MiB, 50,000 lines)."""
    lines = unit.count("\n")
    return unit * min(CAP // len(unit), 49_000 // lines if lines else CAP)


CASES = {
    "unclosed ${ on one line": block(fill("echo ${A ")),
    "comments and angles": block(fill("echo <name-1> $X # <c> $Y\n")),
    "heredocs": block(fill("cat <<EOF\n$X <y>\nEOF\n")),
    "transcript": block(
        fill("$ kubectl get pods |\n> grep api \\\n  -n x\nNAME READY\n"), "console"
    ),
    "one huge line of pipes": block(fill("a | ")),
    "many small blocks": fill("```bash\nexport V=1\necho $V <p> $W\n```\n"),
}


def main() -> None:
    paths = sorted(SEEDS.glob("*.txt")) if SEEDS.is_dir() else []
    paths += sorted((REPO / "runbooks").glob("*.md"))
    for path in paths:
        start = time.perf_counter()
        runbook, _ = parse_runbook(path)
        took = time.perf_counter() - start
        steps = len(runbook.steps) if runbook else 0
        print(f"{path.name:40} {took * 1000:8.1f} ms  {steps} steps")
    for name, text in CASES.items():
        start = time.perf_counter()
        runbook, problems = parse_runbook(Path(f"{name}.md"), text)
        took = time.perf_counter() - start
        steps = len(runbook.steps) if runbook else 0
        print(f"{name:40} {took:8.2f} s   {len(text) / 1024 / 1024:.1f} MiB, {steps} steps")


if __name__ == "__main__":
    main()
