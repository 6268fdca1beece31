"""Redaction cost: prints numbers, asserts nothing.

    python benchmarks/redaction.py [--runs N] [--secrets N] [--mib N]

1. Build: registering N secrets (every encoded form, prefixes, windows) and
   building the matcher on first use.
2. Clean text: redacting MIB MiB of JSON-like text that holds no secret (the
   common case: every response body, every saved state).
3. Leaky text: the same text with 200 secrets, encoded forms and cut prefixes
   sprinkled through it.
4. Structures: ``redact_obj`` over a run-state-like dict of 70,000 short strings
   (keys included), with none and with one secret in it.
"""

from __future__ import annotations

import argparse
import base64
import random
import secrets
import statistics
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opsconsole.secrets import Redactor  # noqa: E402


def median_ms(runs: int, action: object) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--secrets", type=int, default=10)
    parser.add_argument("--mib", type=float, default=1.0)
    args = parser.parse_args()

    rng = random.Random(7)
    values = [secrets.token_urlsafe(32) for _ in range(args.secrets)]
    alphabet = string.ascii_letters + string.digits + ' {}":,_-/\n'
    size = int(args.mib * 1024 * 1024)
    clean = "".join(rng.choice(alphabet) for _ in range(size))
    leaks = []
    for index in range(200):
        value = values[index % len(values)]
        form = rng.choice(
            [value, base64.b64encode(value.encode()).decode(), value.encode().hex(), value[:12]]
        )
        leaks.append(form)
    step = size // len(leaks)
    leaky = "".join(clean[i * step : (i + 1) * step] + leaks[i] for i in range(len(leaks)))

    def build() -> Redactor:
        redactor = Redactor()
        redactor.register_all(values)
        redactor.redact("warm-up")
        return redactor

    build_ms = median_ms(args.runs, build)
    redactor = build()
    clean_ms = median_ms(args.runs, lambda: redactor.redact(clean))
    leaky_ms = median_ms(args.runs, lambda: redactor.redact(leaky))
    masked = redactor.redact(leaky).count("***")
    state = {
        f"step-{i}": {"detail": f"step {i} passed", "headers": {"x-id": str(i)}, "n": i}
        for i in range(20_000 // 2)
    }
    obj_ms = median_ms(args.runs, lambda: redactor.redact_obj(state))
    state["step-5"]["detail"] = f"token {values[0]}"
    obj_leak_ms = median_ms(args.runs, lambda: redactor.redact_obj(state))

    print(f"secrets registered:         {args.secrets}")
    print(f"build (register + matcher): {build_ms:8.2f} ms")
    print(f"redact {args.mib:g} MiB, no secret:  {clean_ms:8.2f} ms")
    print(f"redact {args.mib:g} MiB, 200 leaks:  {leaky_ms:8.2f} ms  ({masked} masked)")
    print(f"redact_obj 70,000 strings:  {obj_ms:8.2f} ms  (no secret)")
    print(f"redact_obj 70,000 strings:  {obj_leak_ms:8.2f} ms  (one secret: copy rebuilt)")


if __name__ == "__main__":
    main()
