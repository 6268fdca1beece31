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
import threading
from collections.abc import Mapping

__all__ = ["browser_refusal", "open_browser", "osc52", "qr_lines"]

#: what a browser needs from this environment besides the allowlist every child gets
#: (the display, and the session bus through which xdg-open reaches a running browser)
BROWSER_ENV = ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "XDG_RUNTIME_DIR",
               "DBUS_SESSION_BUS_ADDRESS")

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


def open_browser(url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Open ``url`` with the desktop's opener; the problem, or None when it was handed over.

    Only http(s) URLs (a server's ``javascript:`` or ``file:`` URL is never opened), as
    one argument (never through a shell), with the allowlisted environment plus the
    display: no ``OPSCONSOLE_SECRET_*`` reaches the browser. The browser is the
    operator's to close, so it is not waited for or stopped with the console.
    """
    import shutil
    import subprocess
    import sys
    from urllib.parse import urlsplit

    from opsconsole.process import child_environment

    environ = os.environ if environ is None else environ
    refusal = browser_refusal(environ)
    if refusal is not None:
        return refusal
    if urlsplit(url).scheme not in {"http", "https"} or not url.isprintable():
        return "only http and https URLs are opened"
    opener = shutil.which("open" if sys.platform == "darwin" else "xdg-open",
                          path=environ.get("PATH"))
    if opener is None:
        return "no xdg-open here to open a browser with"
    extra = {name: environ[name] for name in BROWSER_ENV if environ.get(name)}
    env = child_environment(extra, source=environ)
    try:
        child = subprocess.Popen(  # noqa: S603 - a fixed program, the URL as one argument
            [opener, url], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
        )
    except OSError as exc:
        return f"could not start {opener}: {exc.strerror or exc}"
    # reaped when it exits (no zombie), never waited for by the console
    threading.Thread(target=child.wait, name="browser opener", daemon=True).start()
    return None
