"""``/`` over a list: type to narrow it; enter keeps the filter, escape clears it."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input

__all__ = ["FilterBar"]


class FilterBar(Input):
    """A one-line filter above a list, hidden until ``/``. Its screen listens to
    ``Input.Changed`` (narrow the list) and :class:`FilterBar.Closed` (focus the list)."""

    DEFAULT_CSS = """
    FilterBar {
        display: none;
        height: 1;
        border: none;
        padding: 0 1;
        background: $boost;
    }
    FilterBar.-shown {
        display: block;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear", "Clear filter", tooltip="Clear the filter and close it"),
    ]

    class Closed(Message):
        """The operator is done typing (enter keeps the filter, escape cleared it)."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(placeholder="[filter: part of a title]", id=id, compact=True)

    def open(self) -> None:
        self.add_class("-shown")
        self.focus()

    def action_clear(self) -> None:
        self.value = ""
        self.remove_class("-shown")
        self.post_message(self.Closed())

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not self.value:
            self.remove_class("-shown")
        self.post_message(self.Closed())
