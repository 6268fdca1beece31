"""The baseline for the first-frame budget: a bare Textual app (Header, DataTable, Footer)."""

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header


class BareApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Runbook", "Service", "Tags")
        table.add_row("Baseline ready", "bench", "-")


if __name__ == "__main__":
    BareApp().run()
