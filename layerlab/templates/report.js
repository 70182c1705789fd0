// Draws the report's figures and makes its tables sortable and searchable.
// The template fills the table cells. This script only reorders and hides
// rows and reads text through textContent, so it never turns data into
// markup.
"use strict";

(function () {
  function drawFigures() {
    var specs = document.querySelectorAll("script[type='application/json'][data-figure]");
    specs.forEach(function (spec) {
      var target = document.getElementById(spec.getAttribute("data-figure"));
      if (!target) {
        return;
      }
      var figure = JSON.parse(spec.textContent);
      window.Plotly.newPlot(target, figure.data, figure.layout, {
        responsive: true,
        displaylogo: false,
      });
    });
  }

  function cellValue(row, column, type) {
    var cell = row.cells[column];
    if (!cell) {
      return type === "number" ? -Infinity : "";
    }
    if (type === "number") {
      var raw = cell.getAttribute("data-value");
      var number = raw === null || raw === "" ? NaN : Number(raw);
      return isNaN(number) ? -Infinity : number;
    }
    return cell.textContent.trim().toLowerCase();
  }

  function sortTable(table, header) {
    var headers = Array.prototype.slice.call(header.parentNode.children);
    var column = headers.indexOf(header);
    var type = header.getAttribute("data-type") || "text";
    var current = header.getAttribute("aria-sort");
    // Sizes are most useful largest first, names in alphabetical order.
    var descending = current === "none" ? type === "number" : current === "ascending";
    headers.forEach(function (other) {
      other.setAttribute("aria-sort", "none");
    });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");

    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, index) {
      return { row: row, key: cellValue(row, column, type), index: index };
    });
    keyed.sort(function (a, b) {
      var order;
      if (type === "number") {
        order = a.key - b.key;
        if (isNaN(order)) {
          order = 0; // both -Infinity: cells without a number
        }
      } else {
        order = a.key.localeCompare(b.key);
      }
      if (descending) {
        order = -order;
      }
      return order || a.index - b.index;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (item) {
      fragment.appendChild(item.row);
    });
    body.appendChild(fragment);
  }

  function makeSortable(table) {
    table.querySelectorAll("thead th").forEach(function (header) {
      var button = header.querySelector("button");
      (button || header).addEventListener("click", function () {
        sortTable(table, header);
      });
    });
  }

  function filterTable(input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table) {
      return;
    }
    var query = input.value.trim().toLowerCase();
    var shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var match = !query || row.textContent.toLowerCase().indexOf(query) !== -1;
      row.hidden = !match;
      if (match) {
        shown += 1;
      }
    });
    var count = document.querySelector("[data-count-for='" + table.id + "']");
    if (count) {
      var total = table.tBodies[0].rows.length;
      count.textContent = query
        ? shown.toLocaleString("en") + " of " + total.toLocaleString("en") + " rows"
        : total.toLocaleString("en") + " rows";
    }
  }

  function start() {
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      input.addEventListener("input", function () {
        filterTable(input);
      });
    });
    if (window.Plotly) {
      drawFigures();
    } else {
      document.querySelectorAll(".figure").forEach(function (target) {
        target.textContent = "The figures need plotly.js, which did not load.";
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
