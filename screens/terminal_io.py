"""What reaches the operator's terminal besides widgets: a QR code drawn with Unicode half
blocks, an OSC 52 clipboard copy (works over SSH and through tmux and screen), and
whether a browser may be opened here at all.

Nothing here decides for the operator: the QR code is drawn only when it fits, the copy
cannot tell whether the terminal took it (so the text always stays on screen), and a
browser opens only on request, only with a local display.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

__all__ = ["browser_refusal", "osc52", "qr_lines"]

#: quiet zone around the code, in modules (the spec asks 4; 2 scans fine on a terminal)
QR_BORDER = 2


def qr_lines(text: str) -> list[str]:
    """``text`` as a QR code, two module rows per line (``▀``, ``▄``, ``█``, space).

    A full block is a *light* module: drawn in a light colour on a dark one, the code
    reads as dark-on-light, which is what scanners expect, whatever the theme."""
    import segno

    code = segno.make(text, error="l", micro=False)
    rows = [list(row) for row in code.matrix_iter(scale=1, border=QR_BORDER)]
    if len(rows) % 2:
        rows.append([0] * len(rows[0]))
    lines = []
    for top, bottom in zip(rows[0::2], rows[1::2], strict=True):
        line = []
        for upper, lower in zip(top, bottom, strict=True):
            light_up, light_down = not upper, not lower
            line.append(
                "█" if light_up and light_down else
                "▀" if light_up else
                "▄" if light_down else " "
            )
        lines.append("".join(line))
    return lines


def osc52(text: str, environ: Mapping[str, str] | None = None) -> str:
    """The escape sequence that asks the terminal to put ``text`` on the clipboard.

    Inside tmux (``$TMUX``) or GNU screen (``$STY``) it is wrapped for passthrough, so
    it reaches the terminal outside; over SSH it travels with the session's output."""
    environ = os.environ if environ is None else environ
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    sequence = f"\x1b]52;c;{payload}\x07"
    if environ.get("TMUX"):
        return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    if environ.get("STY"):
        return "\x1bP" + sequence + "\x1b\\"
    return sequence


def browser_refusal(environ: Mapping[str, str] | None = None) -> str | None:
    """Why no browser is opened from here (None: a local display is there to open it on)."""
    environ = os.environ if environ is None else environ
    if environ.get("SSH_CONNECTION") or environ.get("SSH_TTY"):
        return (
            "this console runs over SSH, so no browser opens here: open the URL on your own "
            "device"
        )
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return "no local display to open a browser on: open the URL on any device"
    return None
