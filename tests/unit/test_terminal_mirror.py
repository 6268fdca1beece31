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
