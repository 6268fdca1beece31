"""Send the terminal only the cells that changed.

Textual repaints a widget's whole region whenever the widget refreshes: a cursor move in
the step list rewrites every visible row of the list, a Static updated with the same
height rewrites the pane below it, a modal closing rewrites the whole screen. Over SSH
every one of those bytes is paid for by an operator (issue 10, defect 11: about 9 KB per
cursor move). :class:`TerminalMirror` keeps what the terminal shows, cell by cell, and
turns each compositor update into one that moves the cursor to, and writes, only the runs
of cells that differ; unchanged cells are never sent again.

The mirror forgets everything (so the next frame is sent whole) when the terminal may
have lost its content: a new size, the app resumed after a suspend, or ctrl+l
(:meth:`OpsConsoleApp.action_redraw`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from rich.cells import get_character_cell_size
from rich.color import ColorSystem
from rich.control import Control
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate, CompositorUpdate, LayoutUpdate
from textual.strip import SGR_STYLES, Strip

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult

__all__ = ["MirroredUpdate", "TerminalMirror"]

#: a cell: its text ("" for the right half of a wide character) and style
Cell = tuple[str, "Style | None"]
#: what the terminal keeps of a cell: its text and how it looks
Seen = tuple[str, object]
#: unchanged cells between two changed runs that are sent anyway: cheaper than a cursor move
JOIN_GAP = 6


#: attributes a blank cell shows (underlines, reverse video, strike, frames); a blank
#: cell's colour and other attributes (bold, italic, dim, blink) show nothing
SPACE_VISIBLE = 8 | 64 | 256 | 512 | 1024 | 2048 | 4096


@lru_cache(maxsize=4096)
def _look(style: Style | None) -> object:
    """What the terminal shows of a style: Textual's styles also carry meta (mouse
    offsets, widget ids) that never reaches the terminal and must not count as a change."""
    if style is None:
        return None
    return (style._attributes & style._set_attributes, style._color, style._bgcolor, style._link)


@lru_cache(maxsize=4096)
def _space_look(style: Style | None) -> object:
    """What the terminal shows of a blank cell in ``style``: its background (and the
    foreground only where an underline, reverse video or strike shows it)."""
    if style is None:
        return None
    attributes = style._attributes & style._set_attributes & SPACE_VISIBLE
    if not attributes and style._bgcolor is None and not style._link:
        return None
    return (attributes, style._color if attributes else None, style._bgcolor, style._link)


def _seen(char: str, style: Style | None) -> Seen:
    return (char, _space_look(style) if char == " " else _look(style))


class MirroredUpdate(CompositorUpdate):
    """The changed runs of one update: ``(x, y, segments)`` each.

    Written with one pen: a style is sent only when it differs from the one the terminal
    already has, as the parameters that changed (Rich resets after every segment and
    starts each from nothing: about 25 bytes a segment), and reset once at the end."""

    def __init__(self, runs: list[tuple[int, int, list[Segment]]]) -> None:
        self.runs = runs

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for x, y, segments in self.runs:
            yield Control.move_to(x, y).segment
            yield from segments

    def render_segments(self, console: Console) -> str:
        move_to = Control.move_to
        color_system = console._color_system or ColorSystem.TRUECOLOR
        out: list[str] = []
        pen: Pen = _BLANK
        for x, y, segments in self.runs:
            out.append(move_to(x, y).segment.text)
            for text, style, _control in segments:
                if style is not None and style._link:
                    # a link: as Rich writes it (its own reset), the pen starts again blank
                    if pen is not _BLANK:
                        out.append("\x1b[0m")
                        pen = _BLANK
                    out.append(Strip.render_style(style, text, color_system))
                    continue
                new = _pen(style, color_system)
                if new != pen and not (_blank(text) and _space_pen(new) == _space_pen(pen)):
                    out.append(_change(pen, new))
                    pen = new
                out.append(text)
        if pen != _BLANK:
            out.append("\x1b[0m")
        return "".join(out)


#: a terminal pen: attribute bits, foreground and background SGR parameters
Pen = tuple[int, str, str]
_BLANK: Pen = (0, "", "")


@lru_cache(maxsize=4096)
def _pen(style: Style | None, color_system: ColorSystem) -> Pen:
    if style is None:
        return _BLANK
    attributes = style._attributes & style._set_attributes
    fg = ";".join(style._color.downgrade(color_system).get_ansi_codes()) if style._color else ""
    bg = (
        ";".join(style._bgcolor.downgrade(color_system).get_ansi_codes(foreground=False))
        if style._bgcolor
        else ""
    )
    return (attributes, fg, bg)


def _blank(text: str) -> bool:
    return bool(text) and not text.strip(" ")


def _space_pen(pen: Pen) -> Pen:
    """What blanks written with ``pen`` show: blanks keep the terminal's pen when it shows
    them the same (the usual case: the end of a line after coloured text)."""
    attributes, fg, bg = pen
    attributes &= SPACE_VISIBLE
    return (attributes, fg if attributes else "", bg)


@lru_cache(maxsize=4096)
def _change(old: Pen, new: Pen) -> str:
    """The SGR sequence that turns pen ``old`` into ``new``: only what differs, or a reset
    and the whole new pen when something must be taken away."""
    old_attributes, old_fg, old_bg = old
    attributes, fg, bg = new
    if new == _BLANK:
        return "\x1b[0m"
    lost = old_attributes & ~attributes or (old_fg and not fg) or (old_bg and not bg)
    params: list[str] = ["0"] if lost else []
    added = attributes if lost else attributes & ~old_attributes
    params += [SGR_STYLES[bit] for bit in range(len(SGR_STYLES)) if added & (1 << bit)]
    if fg and (lost or fg != old_fg):
        params.append(fg)
    if bg and (lost or bg != old_bg):
        params.append(bg)
    return f"\x1b[{';'.join(params)}m"


class TerminalMirror:
    """What the terminal shows; :meth:`diff` reduces an update to what differs from it."""

    def __init__(self) -> None:
        self.rows: list[list[Seen | None]] = []
        self.width = 0
        self.height = 0
        #: cells written / cells an update asked for (the benchmark and tests read them)
        self.sent = 0
        self.asked = 0

    def reset(self, width: int = 0, height: int = 0) -> None:
        """Forget what the terminal shows: the next update is sent whole."""
        self.width, self.height = width, height
        self.rows = [[None] * width for _ in range(height)]

    def diff(self, update: RenderableType, width: int, height: int) -> RenderableType | None:
        """``update`` reduced to the cells that differ (``None`` when nothing does).
        Anything but a full or partial screen update passes through unchanged."""
        if not isinstance(update, LayoutUpdate | ChopsUpdate):
            return update
        if (width, height) != (self.width, self.height):
            self.reset(width, height)
        runs: list[tuple[int, int, list[Segment]]] = []
        for x, y, strip in self._pieces(update):
            if 0 <= y < height:
                runs.extend(self._row(x, y, strip))
        return MirroredUpdate(runs) if runs else None

    # -- internals -----------------------------------------------------------------------

    @staticmethod
    def _pieces(update: LayoutUpdate | ChopsUpdate) -> list[tuple[int, int, Strip]]:
        """The update as (x, y, strip) pieces, cropped exactly as Textual would write them."""
        pieces: list[tuple[int, int, Strip]] = []
        if isinstance(update, LayoutUpdate):
            x = update.region.x
            for y, line in enumerate(update.strips, update.region.y):
                offset = x
                for strip in line:
                    pieces.append((offset, y, strip))
                    offset += strip.cell_length
            return pieces
        for y, x1, x2 in update.spans:
            for end, (x, chop) in zip(update.chop_ends[y], update.chops[y].items(), strict=False):
                if chop is None or x > x2 or end <= x1:
                    continue
                if not (x2 > x >= x1 and end <= x2):
                    chop = chop.crop(0, min(end, x2) - x)
                pieces.append((x, y, chop))
        return pieces

    def _row(self, x: int, y: int, strip: Strip) -> list[tuple[int, int, list[Segment]]]:
        cells: list[Cell] = []
        for text, style, control in strip:
            if control:
                return self._unknown(x, y, strip)
            for char in text:
                size = get_character_cell_size(char)
                if size == 1:
                    cells.append((char, style))
                elif size == 2:
                    cells += [(char, style), ("", style)]
                else:  # zero-width: cannot be placed in a cell; send this piece as it is
                    return self._unknown(x, y, strip)
        row = self.rows[y]
        end = min(x + len(cells), self.width)
        self.asked += max(end - x, 0)
        changed: list[tuple[int, int]] = []
        for column in range(x, end):
            char, style = cells[column - x]
            if row[column] != _seen(char, style):
                if changed and column - changed[-1][1] <= JOIN_GAP:
                    changed[-1] = (changed[-1][0], column + 1)
                else:
                    changed.append((column, column + 1))
        runs = []
        for start, stop in changed:
            # never start or end inside a wide character
            if start > x and cells[start - x][0] == "":
                start -= 1
            if stop < end and cells[stop - x][0] == "":
                stop += 1
            piece = cells[start - x : stop - x]
            row[start:stop] = [_seen(char, style) for char, style in piece]
            self.sent += stop - start
            runs.append((start, y, self._segments(piece)))
        return runs

    def _unknown(self, x: int, y: int, strip: Strip) -> list[tuple[int, int, list[Segment]]]:
        """Send the piece as Textual would, and forget what those cells hold."""
        row = self.rows[y]
        for column in range(x, min(x + strip.cell_length, self.width)):
            row[column] = None
        self.asked += strip.cell_length
        self.sent += strip.cell_length
        return [(x, y, list(strip))]

    @staticmethod
    def _segments(cells: list[Cell]) -> list[Segment]:
        segments: list[Segment] = []
        text: list[str] = []
        current: Style | None = cells[0][1] if cells else None
        for char, style in cells:
            if style != current:
                segments.append(Segment("".join(text), current))
                text, current = [], style
            text.append(char)
        if text:
            segments.append(Segment("".join(text), current))
        return segments
