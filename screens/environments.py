"""The environment picker: every configured environment, protected ones marked."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from opsconsole.config import Config

__all__ = ["EnvironmentPicker"]


class EnvironmentPicker(ModalScreen[str | None]):
    """Enter picks the highlighted environment; escape keeps the current one."""

    CSS_PATH = "environments.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", tooltip="Keep the current environment"),
    ]

    def __init__(self, config: Config, current: str) -> None:
        super().__init__()
        self.config = config
        self.current = current

    def compose(self) -> ComposeResult:
        options = []
        for name in self.config.environment_names():
            environment = self.config.environment(name)
            parts: list[str | tuple[str, str]] = [
                ("● " if name == self.current else "  ", "$text-accent"),
                (name, "bold"),
            ]
            if environment.protected:
                parts += ["  ", (" PROTECTED ", "bold $text on $error")]
            if environment.description:
                parts += ["\n    ", (environment.description, "$text-muted")]
            options.append(Option(Content.assemble(*parts), id=name))
        with Vertical(id="environment-frame") as frame:
            frame.border_title = "Environment"
            yield OptionList(*options, id="environment-list")
            yield Static(
                Content("enter: switch · escape: keep " + self.current), id="environment-hint"
            )

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        try:
            option_list.highlighted = option_list.get_option_index(self.current)
        except Exception:  # noqa: BLE001 - the current one may not be configured (local)
            option_list.highlighted = 0
        option_list.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
