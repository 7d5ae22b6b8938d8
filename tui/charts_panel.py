"""The charts' column: the training chart, the LR sweep, the LR grid and the embedding map, laid
out for the room there is.

Wide and tall (from WIDE columns x rows of its own): the training chart on top, the sweep and the
grid side by side below it (or the embedding map in their place, m). Smaller, as at 80x24, one
chart at a time takes the whole column and a row of tabs says which (keys 1 to 4, or a click):
two charts stacked there left each three rows of plot. The widgets stay mounted in both layouts;
only which are displayed changes, and a hidden chart is not redrawn until it shows.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.widgets import Tab, Tabs

from tui.charts import EmbeddingChart, TrainingChart
from tui.keys import CHART_VIEWS
from tui.lr_charts import GridChart, SweepChart
from tui.plot import Chart

WIDE = (84, 30)  # the column's own size from which the charts are shown together
LR_CHARTS = ("sweep", "grid")  # side by side below the training chart when wide


class ChartsPanel(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view = "training"  # the chart shown when one at a time; "embedding" replaces the LR charts when wide
        self.before_map = "sweep"  # the view m goes back to
        self.wide = False

    def compose(self) -> ComposeResult:
        tabs = Tabs(*(Tab(f"{key} {tab}", id=f"tab-{view}") for view, key, tab, _ in CHART_VIEWS), id="chart-tabs")
        tabs.can_focus = False  # it would take left/right and, focused, enter: the keys stay the app's
        yield tabs
        yield TrainingChart(id="training")
        with Horizontal(id="lower-charts"):
            yield SweepChart(id="sweep")
            yield GridChart(id="grid")
            yield EmbeddingChart(id="embedding")

    def on_mount(self) -> None:
        self._arrange()

    def on_resize(self, event: Resize) -> None:
        wide = event.size.width >= WIDE[0] and event.size.height >= WIDE[1]
        if wide != self.wide:
            self.wide = wide
            self._arrange()

    def show(self, view: str) -> None:
        """Bring a chart into sight: the one shown when one at a time, and m's way back from the map."""
        if view != "embedding":
            self.before_map = view if view in LR_CHARTS else self.before_map
        self.view = view
        self._arrange()

    def toggle_map(self) -> None:
        self.show(self.before_map if self.view == "embedding" else "embedding")

    def shown(self, view: str) -> bool:
        """Whether the chart is in sight now."""
        if not self.wide:
            return view == self.view
        if view == "training":
            return True
        return (view == "embedding") == (self.view == "embedding")

    def _arrange(self) -> None:
        self.set_class(self.wide, "wide")
        tabs = self.query_one(Tabs)
        tabs.display = not self.wide
        if tabs.active != f"tab-{self.view}":
            tabs.active = f"tab-{self.view}"
        lower = False
        for chart in self.query(Chart):
            chart.display = self.shown(chart.id or "")
            lower |= chart.display and chart.id != "training"
        self.query_one("#lower-charts").display = lower
        for chart in self.query(Chart):
            if chart.display:
                chart.redraw()

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        view = (event.tab.id or "").removeprefix("tab-")
        if view != self.view:  # a click: keys come through show()
            self.show(view)
