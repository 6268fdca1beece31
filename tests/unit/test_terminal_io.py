"""QR code, OSC 52 and the browser rule: what reaches the operator's terminal."""

from __future__ import annotations

import base64

import segno

from screens.terminal_io import browser_refusal, osc52, qr_lines


def test_qr_code_is_two_module_rows_per_line_and_decodes_to_the_same_modules() -> None:
    url = "https://example.test/device?user_code=WDJB-MJHT"
    lines = qr_lines(url)
    matrix = [list(row) for row in segno.make(url, error="l").matrix_iter(border=2)]
    assert len(lines) == (len(matrix) + 1) // 2
    assert {len(line) for line in lines} == {len(matrix[0])}
    # back from half blocks to modules: dark modules are where no light is drawn
    top = {"█": (0, 0), "▀": (0, 1), "▄": (1, 0), " ": (1, 1)}
    rebuilt = []
    for line in lines:
        rebuilt.append([top[ch][0] for ch in line])
        rebuilt.append([top[ch][1] for ch in line])
    assert rebuilt[: len(matrix)] == matrix


def test_osc52_plain_and_wrapped_for_tmux_and_screen() -> None:
    payload = base64.b64encode(b"https://x.test/a").decode()
    assert osc52("https://x.test/a", {}) == f"\x1b]52;c;{payload}\x07"
    tmux = osc52("https://x.test/a", {"TMUX": "/tmp/tmux-0/default,1,0"})
    assert tmux == f"\x1bPtmux;\x1b\x1b]52;c;{payload}\x07\x1b\\"
    assert osc52("https://x.test/a", {"STY": "1.pts-0"}).startswith("\x1bP\x1b]52;c;")


def test_a_browser_only_with_a_local_display_and_never_over_ssh() -> None:
    assert browser_refusal({"DISPLAY": ":0"}) is None
    assert browser_refusal({"WAYLAND_DISPLAY": "wayland-0"}) is None
    assert "SSH" in (browser_refusal({"DISPLAY": ":0", "SSH_CONNECTION": "1 2 3 4"}) or "")
    assert "SSH" in (browser_refusal({"DISPLAY": "localhost:10", "SSH_TTY": "/dev/pts/1"}) or "")
    assert "no local display" in (browser_refusal({}) or "")


def test_the_browser_gets_the_url_as_one_argument_and_no_secret(tmp_path) -> None:
    import time

    from screens.terminal_io import open_browser

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    seen = tmp_path / "seen"
    opener = bin_dir / "xdg-open"
    opener.write_text(f'#!/bin/sh\nprintf "%s\\n" "$#" "$1" > {seen}.tmp\nenv >> {seen}.tmp\n'
                      f"mv {seen}.tmp {seen}\n")
    opener.chmod(0o755)
    environ = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DISPLAY": ":0", "HOME": str(tmp_path),
               "OPSCONSOLE_SECRET_OPS_KEY": "s3cret-not-for-browsers",
               "AWS_SECRET_ACCESS_KEY": "also-not"}
    url = "https://example.test/device?user_code=WDJB-MJHT&x=$(id)"
    assert open_browser(url, environ) is None
    for _ in range(500):  # the opener is not waited for: wait for what it wrote
        if seen.exists():
            break
        time.sleep(0.01)
    lines = seen.read_text().splitlines()
    assert lines[:2] == ["1", url]
    written = "\n".join(lines)
    assert "DISPLAY=:0" in written
    assert "s3cret-not-for-browsers" not in written and "also-not" not in written


def test_only_http_urls_are_opened_and_never_over_ssh() -> None:
    from screens.terminal_io import open_browser

    local = {"DISPLAY": ":0", "PATH": "/nonexistent"}
    assert open_browser("javascript:alert(1)", local) == "only http and https URLs are opened"
    assert open_browser("file:///etc/passwd", local) == "only http and https URLs are opened"
    assert "SSH" in (open_browser("https://a.test/", {**local, "SSH_TTY": "/dev/pts/0"}) or "")
