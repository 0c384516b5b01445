// Plumb's only script: on the reliability timeline, hover shows a bucket's values, a click
// lists the bucket's traces, and a drag zooms to the dragged range. Pages work without it.
(function () {
  "use strict";
  var section = document.querySelector("section.timeline[data-route]");
  var dataEl = document.getElementById("timeline-data");
  if (!section || !dataEl) return;
  var data = JSON.parse(dataEl.textContent);
  var from = Number(section.dataset.from), to = Number(section.dataset.to);
  var tooltip = section.querySelector(".tooltip");
  var route = section.dataset.route;

  function iso(ns) { return new Date(Math.floor(ns / 1e6)).toISOString().replace(/\.\d+Z$/, "Z"); }
  // The instant under the pointer, from its position across a chart.
  function instant(svg, clientX) {
    var r = svg.getBoundingClientRect();
    var f = Math.min(1, Math.max(0, (clientX - r.left) / r.width));
    return from + f * (to - from);
  }
  function bucketOf(t) { return Math.floor((t - data.first) / data.width); }

  var cursor = null, brush = null, dragStart = null;
  function overlay(cls) {
    var el = document.createElement("div");
    el.className = cls;
    section.appendChild(el);
    return el;
  }
  function xIn(svg, clientX) {
    var s = section.getBoundingClientRect();
    return clientX - s.left;
  }

  function show(svg, ev) {
    var t = instant(svg, ev.clientX);
    var i = bucketOf(t);
    if (!cursor) cursor = overlay("cursor");
    cursor.style.left = xIn(svg, ev.clientX) + "px";
    tooltip.textContent = "";
    var head = document.createElement("div");
    head.textContent = iso(data.first + i * data.width) + " (" + (data.width / 1e9) + " s)";
    tooltip.appendChild(head);
    data.rows.forEach(function (row) {
      var v = row[1][i];
      if (v === null || v === undefined) return;
      var line = document.createElement("div");
      line.textContent = row[0] + ": " + v;
      tooltip.appendChild(line);
    });
    tooltip.hidden = false;
    var s = section.getBoundingClientRect();
    var x = ev.clientX - s.left + 12, y = ev.clientY - s.top + 12;
    if (x + 280 > s.width) x = ev.clientX - s.left - 292;
    tooltip.style.left = x + "px";
    tooltip.style.top = y + "px";
  }

  function hide() {
    tooltip.hidden = true;
    if (cursor) { cursor.remove(); cursor = null; }
  }

  section.querySelectorAll("svg.lane-chart").forEach(function (svg) {
    svg.addEventListener("mousemove", function (ev) {
      show(svg, ev);
      if (dragStart) {
        var a = xIn(svg, dragStart.clientX), b = xIn(svg, ev.clientX);
        if (!brush) brush = overlay("brush");
        brush.style.left = Math.min(a, b) + "px";
        brush.style.width = Math.abs(b - a) + "px";
      }
    });
    svg.addEventListener("mouseleave", hide);
    svg.addEventListener("mousedown", function (ev) { dragStart = { svg: svg, clientX: ev.clientX }; ev.preventDefault(); });
  });

  document.addEventListener("mouseup", function (ev) {
    if (!dragStart) return;
    var svg = dragStart.svg, x0 = dragStart.clientX;
    dragStart = null;
    if (brush) { brush.remove(); brush = null; }
    var t0 = instant(svg, x0), t1 = instant(svg, ev.clientX);
    var q;
    if (Math.abs(ev.clientX - x0) > 5) {
      // Zoom to the dragged range.
      q = "from=" + iso(Math.min(t0, t1)) + "&to=" + iso(Math.max(t0, t1));
      window.location.search = q;
    } else {
      // A click: the traces of that bucket.
      var i = bucketOf(t1), start = data.first + i * data.width;
      q = "route=" + encodeURIComponent(route) + "&from=" + iso(start) + "&to=" + iso(start + data.width);
      window.location.href = "/traces?" + q;
    }
  });
})();
