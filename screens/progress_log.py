"""The walkthrough's progress log: nothing cut, and the newest lines in view.

A RichLog renders each line at least ``min_width`` (78) columns wide, at the width it has
when the line is written. At 80 columns the log is 77 wide (padding, scrollbar), so every
wrapped line lost its last character ("operato", a copied evidence path missing a
letter), and a scrollbar appearing later took one more column; after the
terminal shrank, lines kept their old width and their old scroll position, hiding the
newest lines. This log keeps its scrollbar gutter reserved (the width never changes under
a written line), keeps what was written and wraps it again for a new width, and follows
the tail unless the operator has scrolled up.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.text import Text
from textual import events
from textual.widgets import RichLog

__all__ = ["ProgressLog"]


class ProgressLog(RichLog):
    """A RichLog of plain Text lines that wraps without losing characters and follows
    its tail unless the operator scrolled up."""

    DEFAULT_CSS = """
    ProgressLog {
        scrollbar-gutter: stable;
        overflow-x: hidden;
    }
    """

    def __init__(self, *, max_lines: int = 500, **kwargs: Any) -> None:
        # min_width: RichLog renders every line at least 78 columns wide, which at 80
        # columns is wider than the log (padding, scrollbar): the cells past its width were
        # cut off, one character at every wrap
        super().__init__(
            max_lines=max_lines, min_width=1, wrap=True, markup=False, highlight=False, **kwargs
        )
        #: what was written, to wrap it again at a new width (one entry per write), and its
        #: lines in all: kept to about max_lines, as the log itself (a resize after an output
        #: flood wraps 500 lines again, not every burst ever written)
        self._texts: deque[tuple[Text, int]] = deque()
        self._kept_lines = 0
        self._max_kept = max_lines
        #: the view is at the newest line: new lines and resizes keep it there
        self.following = True
        self._wrapped_width = 0
        self._rewrapping = False

    def add(self, text: Text) -> None:
        """Append ``text`` (one or more lines); scroll to it only when following."""
        count = text.plain.count("\n") + 1
        self._texts.append((text, count))
        self._kept_lines += count
        while len(self._texts) > 1 and self._kept_lines - self._texts[0][1] >= self._max_kept:
            self._kept_lines -= self._texts.popleft()[1]
        self.write(text, scroll_end=self.following)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if not self._rewrapping:
            # the operator scrolled up (or back down to the newest line)
            self.following = round(new) >= self.max_scroll_y

    def on_resize(self, event: events.Resize) -> None:
        super().on_resize(event)
        width = self.scrollable_content_region.width
        if not width or width == self._wrapped_width:
            if self.following:
                self.scroll_end(animate=False, immediate=False, x_axis=False)
            return
        first = self._wrapped_width == 0
        self._wrapped_width = width
        if first:
            return
        following = self.following
        self._rewrapping = True
        try:
            self.clear()
            for text, _count in self._texts:
                self.write(text, scroll_end=False)
        finally:
            self._rewrapping = False
        self.following = following
        if following:
            self.scroll_end(animate=False, immediate=False, x_axis=False)
