"""A clickable table widget, drawn by a small ES module through anywidget.

One component serves the explorer's layer list, its file tree and the
comparison's file list: rows can be indented, expanded, selected and
coloured. The browser sends back which row was selected (the ``selected``
trait) and which directory was opened or closed or which ``more`` line was
clicked (a custom message), and Python sends new rows. Cells are set with
``textContent``, so paths and commands from an image are never read as
markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

_ESM = r"""
function cell(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "ll-table-box";
  const table = document.createElement("table");
  table.className = "ll-table";
  const head = table.createTHead();
  const body = table.createTBody();
  box.appendChild(table);
  el.appendChild(box);

  function drawHead() {
    head.replaceChildren();
    const line = head.insertRow();
    for (const column of model.get("columns")) {
      line.appendChild(cell("th", column.label, "ll-" + column.align));
    }
  }

  function drawBody() {
    const columns = model.get("columns");
    const selected = model.get("selected");
    const lines = [];
    for (const row of model.get("rows")) {
      // [key, depth, toggle (0 none, 1 closed, 2 open), classes, color, cells...]
      const [key, depth, toggle, classes, color, ...cells] = row;
      const line = document.createElement("tr");
      line.dataset.key = key;
      line.className = classes + (key === selected ? " ll-selected" : "");
      cells.forEach((text, position) => {
        const node = cell("td", String(text), "ll-" + columns[position].align);
        if (position === 0) {
          node.style.paddingLeft = (0.3 + depth * 1.1) + "em";
          if (color) node.style.borderLeft = "6px solid " + color;
          const mark = toggle === 0 ? "" : toggle === 2 ? "\u25BE" : "\u25B8";
          const button = cell("span", mark, "ll-toggle");
          node.prepend(button);
        }
        line.appendChild(node);
      });
      lines.push(line);
    }
    body.replaceChildren(...lines);
    const caption = model.get("caption");
    box.dataset.caption = caption;
  }

  function markSelected() {
    const selected = model.get("selected");
    for (const line of body.rows) {
      line.classList.toggle("ll-selected", line.dataset.key === selected);
    }
  }

  body.addEventListener("click", (event) => {
    const line = event.target.closest("tr");
    if (!line) return;
    const key = line.dataset.key;
    if (line.classList.contains("ll-more")) {
      model.send({ event: "more", key });
      return;
    }
    if (event.target.classList.contains("ll-toggle") && event.target.textContent) {
      model.send({ event: "toggle", key });
      return;
    }
    model.set("selected", key);
    model.save_changes();
  });
  body.addEventListener("dblclick", (event) => {
    const line = event.target.closest("tr");
    if (line && line.querySelector(".ll-toggle").textContent) {
      model.send({ event: "toggle", key: line.dataset.key });
    }
  });

  // plotly's FigureWidget sizes itself once, when it is drawn, and often
  // before the notebook has laid the output out. Tell Python when a chart of
  // the same widget has been drawn, so that it can send a relayout.
  function onChart(event) {
    const owner = el.closest(".ll-widget");
    if (owner && event.detail && owner.contains(event.detail.element)) {
      model.send({ event: "chart-drawn", key: "" });
    }
  }
  if (model.get("watch_charts")) {
    document.addEventListener("plotlywidget-after-render", onChart);
  }

  model.on("change:columns", () => { drawHead(); drawBody(); });
  model.on("change:rows", drawBody);
  model.on("change:selected", markSelected);
  drawHead();
  drawBody();
  return () => document.removeEventListener("plotlywidget-after-render", onChart);
}

export default { render };
"""

_CSS = """
.ll-table-box {
  max-height: var(--ll-table-height, 420px);
  overflow: auto;
  border: 1px solid var(--jp-border-color2, #ddd);
}
.ll-table {
  border-collapse: collapse;
  width: 100%;
  font-family: var(--jp-code-font-family, monospace);
  font-size: var(--jp-code-font-size, 12px);
  color: var(--jp-ui-font-color1, #222);
}
.ll-table th {
  position: sticky;
  top: 0;
  background: var(--jp-layout-color2, #eee);
  text-align: left;
  padding: 2px 6px;
  font-weight: 600;
}
.ll-table td {
  padding: 1px 6px;
  white-space: pre;
  border-top: 1px solid var(--jp-border-color3, #f0f0f0);
}
.ll-table td.ll-left { max-width: 40em; overflow: hidden; text-overflow: ellipsis; }
.ll-table .ll-right { text-align: right; }
.ll-table tbody tr { cursor: pointer; }
.ll-table tbody tr:hover { background: var(--jp-layout-color2, #f3f3f3); }
.ll-table tbody tr.ll-selected { background: var(--jp-brand-color3, #cfe3fa); }
.ll-toggle { display: inline-block; width: 1.1em; color: var(--jp-ui-font-color2, #666); }
.ll-added td:first-child { color: #2a8a2a; }
.ll-modified td:first-child { color: #b36b00; }
.ll-removed td:first-child { color: #c62828; text-decoration: line-through; }
.ll-unchanged td:first-child { color: var(--jp-ui-font-color2, #777); }
.ll-more td { color: var(--jp-ui-font-color2, #777); font-style: italic; }
"""


class RowTable(anywidget.AnyWidget):  # type: ignore[misc]
    """A table whose rows can be selected, indented and expanded.

    Traits:
        columns: ``[{"label": ..., "align": "left" | "right"}, ...]``.
        rows: one list per row: ``[key, depth, toggle, classes, color,
            *cells]`` where ``toggle`` is 0 (no children), 1 (closed) or 2
            (open), ``classes`` are CSS classes of the row (``ll-added``,
            ``ll-more``, ...) and ``color`` a CSS colour for the first cell's
            left border, or empty.
        selected: key of the selected row, or empty.
        caption: text kept on the table's box for tests and screen readers.
        watch_charts: send a ``chart-drawn`` event when a plotly chart inside
            the same widget (an element with the ``ll-widget`` class) is drawn.
    """

    _esm = _ESM
    _css = _CSS
    columns: traitlets.List[dict[str, str]] = traitlets.List().tag(sync=True)
    rows: traitlets.List[list[Any]] = traitlets.List().tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)
    watch_charts = traitlets.Bool(False).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handlers: dict[str, list[Callable[[str], None]]] = {}
        self.on_msg(self._receive)

    def on_event(self, event: str, handler: Callable[[str], None]) -> None:
        """Call ``handler(key)`` when the browser sends ``event`` (toggle, more)."""
        self._handlers.setdefault(event, []).append(handler)

    def send_event(self, event: str, key: str) -> None:
        """Act as if the browser had sent ``event`` for row ``key``."""
        for handler in self._handlers.get(event, []):
            handler(key)

    def _receive(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and isinstance(content.get("key"), str):
            self.send_event(str(content.get("event")), content["key"])

    def set_rows(self, rows: list[list[Any]]) -> bool:
        """Replace the rows; send nothing when they are unchanged."""
        if rows == self.rows:
            return False
        self.rows = rows
        return True
