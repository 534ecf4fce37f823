// A campaign's coverage map (web/templates/campaign.html): every grid of its districts from
// the coverage API, coloured visited or not (the grids not visited stand out), with a text
// tooltip (js/tooltips.js: names come from imported files, never parsed as markup); the
// totals of grids and targets reached; and a grid worker's own targets still to visit.
(function () {
  var data = JSON.parse(document.getElementById("campaign-data").textContent);
  var w = data.words;
  var api = window.riskgridSession.api;
  var totalsBox = document.getElementById("coverage-totals");
  var errorBox = document.getElementById("coverage-error");
  var onlyUnvisited = document.getElementById("unvisited-only");
  var LOCALE = document.documentElement.lang === "en" ? "en" : "zh-CN";

  var VISITED = {color: "#2da44e", weight: 0.4, fillColor: "#7fcf95", fillOpacity: 0.45};
  var UNVISITED = {color: "#cf222e", weight: 1.2, fillColor: "#fd8c73", fillOpacity: 0.75};

  function n(v) { return Number(v).toLocaleString(LOCALE); }

  function pct(a, b) { return b ? " (" + (100 * a / b).toFixed(1) + "%)" : ""; }

  function when(iso) {
    if (!iso) return "–";
    var d = new Date(iso);
    return d.toLocaleString(LOCALE, {timeZone: data.zone, hour12: false,
                                     year: "numeric", month: "2-digit", day: "2-digit",
                                     hour: "2-digit", minute: "2-digit"});
  }

  function tooltip(layer) {
    var p = layer.feature.properties;
    var shown = {};
    var fields = [w.grid, w.grid_code, w.s_district, w.s_visits, w.last_visit];
    shown[w.grid] = p.name || "";
    shown[w.grid_code] = p.grid;
    shown[w.s_district] = data.districts[p.district] || p.district || "";
    shown[w.s_visits] = n(p.visits) + " · " + (p.visited ? w.visited : w.unvisited);
    shown[w.last_visit] = when(p.last_visit);
    if (p.suppressed) {
      fields.push(w.s_targets);
      shown[w.s_targets] = w.withheld;
    } else if (p.targets) {
      fields.push(w.s_targets);
      shown[w.s_targets] = n(p.targets_visited) + " / " + n(p.targets);
    }
    return window.riskgridTooltip(shown, fields);
  }

  function showTotals(t) {
    var parts = [w.grids_visited + " " + n(t.grids_visited) + " / " + n(t.grids) +
                 pct(t.grids_visited, t.grids)];
    if (t.targets) {
      parts.push(w.targets_visited + " " + n(t.targets_visited) + " / " + n(t.targets) +
                 pct(t.targets_visited, t.targets));
    }
    totalsBox.textContent = parts.join(" · ");
    totalsBox.dataset.gridsVisited = t.grids_visited;
    totalsBox.dataset.grids = t.grids;
  }

  var box = document.getElementById("coverage-map");
  // Canvas: five thousand grid polygons as SVG paths made the page crawl.
  var map = L.map(box, {preferCanvas: true, zoomSnap: 0.25}).setView([46.6, 124.9], 8);
  window.riskgridCoverageMap = map;  // for tests
  api(data.coverage)
    .then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    })
    .then(function (fc) {
      function grids(visited, style) {
        var layer = L.geoJSON(fc, {style: style, filter: function (f) {
          return f.properties.visited === visited;
        }});
        layer.eachLayer(function (l) { l.bindTooltip(tooltip, {sticky: true}); });
        return layer;
      }
      // The grids not visited go on top: their red outlines stay whole.
      var layers = {visited: grids(true, VISITED).addTo(map),
                    unvisited: grids(false, UNVISITED).addTo(map)};
      window.riskgridCoverage = layers;  // for tests
      var all = L.featureGroup([layers.visited, layers.unvisited]);
      if (fc.features.length) map.fitBounds(all.getBounds(), {padding: [8, 8]});
      showTotals(fc.totals);
      onlyUnvisited.addEventListener("change", function () {
        if (onlyUnvisited.checked) map.removeLayer(layers.visited);
        else map.addLayer(layers.visited);
      });
    })
    .catch(function (err) {
      totalsBox.textContent = "";
      errorBox.textContent = w.map_failed + err.message;
      errorBox.hidden = false;
    });

  // A grid worker's own targets not visited yet (the API lists what the worker may see).
  if (!data.todo) return;
  api(data.todo)
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (found) {
      if (!found || !found.targets) return;
      var summary = document.getElementById("todo-summary");
      var body = document.querySelector("#todo-list tbody");
      summary.textContent = found.total ? w.todo_more.replace("{n}", n(found.total))
        .replace("{shown}", n(found.targets.length)) : w.todo_none;
      found.targets.forEach(function (t) {
        var row = body.insertRow();
        row.insertCell().textContent = t.head_name || t.name || t.ref;
        row.insertCell().textContent = t.address || "";
        row.insertCell().textContent = t.grid_code || "";
      });
    })
    .catch(function () { /* offline: the rest of the page still works */ });
})();
