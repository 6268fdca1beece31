"""screens/mirror.py: an update is reduced to the cells that differ from the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate, LayoutUpdate
from textual.geometry import Region
from textual.strip import Strip

from screens.mirror import MirroredUpdate, TerminalMirror

CONSOLE = Console(color_system="256", force_terminal=True, width=20)
PLAIN = Style(color="white", bgcolor="black")
BOLD = Style(color="white", bgcolor="black", bold=True)


def full(*rows: list[Segment], width: int = 10) -> LayoutUpdate:
    strips = [[Strip(row).adjust_cell_length(width, PLAIN)] for row in rows]
    return LayoutUpdate(strips, Region(0, 0, width, len(rows)))


def chop(y: int, x: int, segments: list[Segment], height: int = 3) -> ChopsUpdate:
    strip = Strip(segments)
    chops: list[dict[int, Strip | None]] = [{} for _ in range(height)]
    ends: list[list[int]] = [[] for _ in range(height)]
    chops[y] = {x: strip}
    ends[y] = [x + strip.cell_length]
    return ChopsUpdate(chops, [(y, x, x + strip.cell_length)], ends)


def written(update: object) -> str:
    assert isinstance(update, MirroredUpdate)
    return update.render_segments(CONSOLE)


def test_the_first_frame_is_sent_whole_and_the_same_frame_again_sends_nothing() -> None:
    mirror = TerminalMirror()
    frame = full([Segment("hello", PLAIN)], [Segment("world", PLAIN)], [Segment("!", PLAIN)])
    first = written(mirror.diff(frame, 10, 3))
    assert "hello" in first and "world" in first
    assert mirror.diff(frame, 10, 3) is None


def test_only_the_changed_cells_are_sent() -> None:
    mirror = TerminalMirror()
    mirror.diff(full([Segment("step one  ", PLAIN)], [Segment("x", PLAIN)], []), 10, 3)
    out = written(mirror.diff(chop(0, 0, [Segment("step two  ", PLAIN)]), 10, 3))
    assert "two" in out and "step" not in out
    assert out.startswith("\x1b[1;6H")  # the cursor goes to the first changed cell


def test_a_style_change_is_a_change_and_meta_is_not() -> None:
    mirror = TerminalMirror()
    mirror.diff(full([Segment("abc", PLAIN)], [], []), 10, 3)
    assert "abc" in written(mirror.diff(chop(0, 0, [Segment("abc", BOLD)]), 10, 3))
    # Textual's mouse meta never reaches the terminal: not a change
    meta = BOLD + Style.from_meta({"@click": "app.bell", "offset": (1, 2)})
    assert mirror.diff(chop(0, 0, [Segment("abc", meta)]), 10, 3) is None


def test_a_wide_character_is_never_cut_in_half() -> None:
    mirror = TerminalMirror()
    mirror.diff(full([Segment("a界b", PLAIN)], [], []), 10, 3)
    out = written(mirror.diff(chop(0, 0, [Segment("a界c", PLAIN)]), 10, 3))
    assert "c" in out and "界" not in out
    out = written(mirror.diff(chop(0, 0, [Segment("a世c", PLAIN)]), 10, 3))
    assert "世" in out


def test_a_new_size_and_a_reset_send_everything_again() -> None:
    mirror = TerminalMirror()
    frame = full([Segment("hello", PLAIN)], [], [])
    mirror.diff(frame, 10, 3)
    assert "hello" in written(mirror.diff(frame, 10, 4))  # resized: the terminal may differ
    mirror.reset()
    assert "hello" in written(mirror.diff(frame, 10, 4))


def sgr(text: str) -> list[str]:
    import re

    return re.findall(r"\x1b\[[0-9;]*m", text)


def test_a_style_is_sent_once_per_change_and_reset_once_at_the_end() -> None:
    mirror = TerminalMirror()
    red = Style(color="red", bgcolor="black")
    frame = full(
        [Segment("ab", PLAIN), Segment("cd", BOLD), Segment("ef", PLAIN)],
        [Segment("gh", PLAIN), Segment("ij", red)],
        [],
    )
    out = written(mirror.diff(frame, 10, 3))
    codes = sgr(out)
    # Rich writes "ESC[..m text ESC[0m" per segment: here one code per change of pen
    assert codes.count("\x1b[0m") == 1 and out.endswith("\x1b[0m"), codes
    assert "\x1b[1m" in codes  # bold added: only the attribute, not the colours again
    assert "\x1b[0;37;40m" in codes  # bold taken away: reset and the whole pen
    assert "\x1b[31m" in codes  # only the foreground changed
    # the padding cells of each row keep the pen they already have
    assert out.count("\x1b[37;40m") == 1, codes


def test_blanks_keep_the_terminals_pen_when_they_look_the_same() -> None:
    mirror = TerminalMirror()
    other_fg = Style(color="red", bgcolor="black")
    mirror.diff(full([Segment("x" * 10, PLAIN)], [], []), 10, 3)
    out = written(mirror.diff(chop(0, 0, [Segment("ab", BOLD), Segment("   ", other_fg)]), 10, 3))
    assert sgr(out) == ["\x1b[1;37;40m", "\x1b[0m"], sgr(out)  # the blanks: no new pen
    # a blank whose foreground does not show is not a change either
    assert mirror.diff(chop(0, 2, [Segment("   ", PLAIN)]), 10, 3) is None
    # but a new background is, and so is an underline (it shows on a blank)
    blue = Style(color="white", bgcolor="blue")
    assert sgr(written(mirror.diff(chop(0, 2, [Segment(" ", blue)]), 10, 3)))[0].endswith(
        ";44m"
    )
    underlined = Style(color="white", bgcolor="blue", underline=True)
    assert sgr(written(mirror.diff(chop(0, 2, [Segment(" ", underlined)]), 10, 3)))[0] == (
        "\x1b[4;37;44m"
    )
