// Draws the report's figures, fills its long tables and makes the tables
// sortable and searchable.
//
// Figures and table rows come in data blocks: <script> elements of a type
// the browser does not run, holding JSON, or gzip-compressed JSON in base64
// (data-encoding="gzip-base64"), which DecompressionStream inflates. A
// compressed plotly.js comes the same way. Cells are written through
// textContent only, so no data ever becomes markup. When all is done the
// <html> element gets data-ready="true" (or data-ready="failed").
"use strict";

(function () {
  var PACKED = "gzip-base64";

  function canInflate() {
    return typeof window.DecompressionStream === "function";
  }

  // Returns a promise of the block's text, inflated if it is compressed.
  function blockText(block) {
    var text = block.textContent;
    if (block.getAttribute("data-encoding") !== PACKED) {
      return Promise.resolve(text);
    }
    var binary = window.atob(text.trim());
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text();
  }

  function blockJSON(block) {
    return blockText(block).then(JSON.parse);
  }

  function needsInflating() {
    return document.querySelector("script[data-encoding='" + PACKED + "']") !== null;
  }

  function showProblem(selector, message) {
    document.querySelectorAll(selector).forEach(function (target) {
      var note = document.createElement("p");
      note.className = "warning";
      note.textContent = message;
      if (target.tagName === "TABLE") {
        target.parentNode.insertBefore(note, target);
      } else {
        target.textContent = "";
        target.appendChild(note);
      }
    });
  }

  // Runs the compressed plotly.js, if the page carries it that way.
  function loadPlotly() {
    var block = document.getElementById("layerlab-plotly");
    if (window.Plotly || !block) {
      return Promise.resolve();
    }
    return blockText(block).then(function (code) {
      var script = document.createElement("script");
      script.textContent = code;
      document.head.appendChild(script);
    });
  }

  // Calls use(element, value) for each block whose attribute names an element,
  // with the block's JSON value; returns a promise of all the calls.
  function eachBlock(attribute, use) {
    var blocks = document.querySelectorAll("script[" + attribute + "]");
    return Promise.all(
      Array.prototype.map.call(blocks, function (block) {
        var target = document.getElementById(block.getAttribute(attribute));
        if (!target) {
          return null;
        }
        return blockJSON(block).then(function (value) {
          return use(target, value);
        });
      })
    );
  }

  // On a narrow screen a legend at the side covers the figure, so it goes
  // under the figure instead.
  function fitLayout(target, layout) {
    var legend = layout.legend || {};
    if (target.clientWidth >= 700 || legend.orientation === "h") {
      return layout;
    }
    var under = { orientation: "h", x: 0, xanchor: "left", y: 0, yanchor: "top" };
    return Object.assign({}, layout, { legend: Object.assign({}, legend, under) });
  }

  // The report stays offline: plotly's "Share chart" button, on by default,
  // would send the figure's data (paths, commands) to plotly's cloud.
  var OFFLINE_CONFIG = {
    responsive: true,
    displaylogo: false,
    showSendToCloud: false,
    showEditInChartStudio: false,
    showLink: false,
    plotlyServerURL: "",
    modeBarButtonsToRemove: ["sendDataToCloud", "editInChartStudio"],
  };

  function drawFigures() {
    return eachBlock("data-figure", function (target, figure) {
      var layout = fitLayout(target, figure.layout);
      return window.Plotly.newPlot(target, figure.data, layout, OFFLINE_CONFIG);
    });
  }

  // Header cells set how to fill each column: data-type="path" cells get
  // <code>, data-type="number" cells keep their sort value in data-value.
  function fillTable(table, rows) {
    var kinds = Array.prototype.map.call(table.tHead.rows[0].cells, function (header) {
      return header.getAttribute("data-type");
    });
    var fragment = document.createDocumentFragment();
    rows.forEach(function (cells) {
      var row = document.createElement("tr");
      cells.forEach(function (cell, column) {
        var td = document.createElement("td");
        var parts = Array.isArray(cell) ? cell : [cell];
        if (kinds[column] === "path") {
          var code = document.createElement("code");
          code.textContent = parts[0];
          td.className = "path";
          td.appendChild(code);
        } else {
          td.textContent = parts[0];
        }
        if (kinds[column] === "number") {
          td.className = "number";
          td.setAttribute("data-value", parts[1] === null || parts[1] === undefined ? "" : String(parts[1]));
        }
        if (parts[2]) {
          td.title = parts[2];
        }
        row.appendChild(td);
      });
      fragment.appendChild(row);
    });
    table.tBodies[0].appendChild(fragment);
  }

  function fillTables() {
    return eachBlock("data-rows", fillTable);
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
        ? shown.toLocaleString("en") + " of " + rowCount(total)
        : rowCount(total);
    }
  }

  function rowCount(count) {
    return count.toLocaleString("en") + (count === 1 ? " row" : " rows");
  }

  // Marks for anyone timing the page (performance.getEntriesByType("mark")).
  function mark(name) {
    if (window.performance && performance.mark) {
      performance.mark("layerlab:" + name);
    }
  }

  function finish(state) {
    document.documentElement.setAttribute("data-ready", state);
  }

  function start() {
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      input.addEventListener("input", function () {
        filterTable(input);
      });
    });
    if (needsInflating() && !canInflate()) {
      var old =
        "This browser cannot inflate the report's compressed data (it lacks " +
        "DecompressionStream, found in Chrome 80, Firefox 113, Safari 16.4 " +
        "and later). Open the report in a newer browser, or write it again " +
        "with --no-compress.";
      showProblem(".figure, table[data-filled]", old);
      finish("failed");
      return;
    }
    var tables = fillTables().then(function () {
      mark("tables filled");
    });
    var figures = loadPlotly().then(function () {
      mark("plotly loaded");
      if (!window.Plotly) {
        showProblem(".figure", "The figures need plotly.js, which did not load.");
        return null;
      }
      return drawFigures().then(function () {
        mark("figures drawn");
      });
    });
    Promise.all([tables, figures]).then(
      function () {
        finish("true");
      },
      function (error) {
        finish("failed");
        console.error("layerlab report: " + error);
      }
    );
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
