// Sorting and filtering of the prototype table; no external code, no network.
// The URL fragment can preset both: index.html#filter=hue&sort=4&dir=desc&flagged=1
(function () {
  "use strict";
  var table = document.getElementById("prototype-table");
  if (!table) { return; }
  var body = table.tBodies[0];
  var headers = table.tHead.rows[0].cells;
  var filter = document.getElementById("filter");
  var flagged = document.getElementById("flagged");
  var counter = document.getElementById("shown-count");

  function cellValue(row, index, type) {
    var cell = row.cells[index];
    var raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent;
    if (type === "number") {
      var number = parseFloat(raw);
      return isNaN(number) ? -Infinity : number;
    }
    return raw.trim().toLowerCase();
  }

  function sortBy(index, descending) {
    var type = headers[index].getAttribute("data-type") || "text";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index, type), y = cellValue(b, index, type);
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
    headers[index].setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  function applyFilter() {
    var needle = filter.value.trim().toLowerCase();
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var visible = (!needle || row.textContent.toLowerCase().indexOf(needle) >= 0) &&
        (!flagged.checked || row.getAttribute("data-flagged") === "1");
      row.classList.toggle("hidden", !visible);
      if (visible) { shown += 1; }
    });
    counter.textContent = shown + " of " + body.rows.length + " shown";
  }

  Array.prototype.forEach.call(headers, function (header, index) {
    if (!header.hasAttribute("data-type")) { return; }
    header.addEventListener("click", function () {
      sortBy(index, header.getAttribute("aria-sort") === "ascending");
    });
  });
  filter.addEventListener("input", applyFilter);
  flagged.addEventListener("change", applyFilter);

  var params = new URLSearchParams(window.location.hash.slice(1));
  if (params.has("filter")) { filter.value = params.get("filter"); }
  if (params.get("flagged") === "1") { flagged.checked = true; }
  if (params.has("sort")) {
    var column = parseInt(params.get("sort"), 10);
    if (column >= 0 && column < headers.length) { sortBy(column, params.get("dir") === "desc"); }
  }
  applyFilter();
  document.body.setAttribute("data-ready", "1");
}());
