// The flood coordinator's map (web/risk_map.py): a drawn polygon runs the area query
// (POST /api/v1/risk/query) and the panel (web/templates/maps/coordinator_panel.html) shows
// the answer. The query goes with the page's session and its CSRF token (js/session.js); the
// API decides from the logged-in role whether the relocation list comes with it. Personal
// data never goes into the page itself.
(function () {
  var last = null;

  function $(id) { return document.getElementById(id); }
  function words() { return JSON.parse($("risk-words").textContent); }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c];
    });
  }
  function query(fmt) {
    return riskgridSession.api("/api/v1/risk/query" + (fmt ? "?format=" + fmt : ""), {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(last),
    });
  }
  function download(fmt) {
    query(fmt).then(function (r) {
      if (!r.ok) return r.json().then(function (b) { failed($("risk-result"), b.detail); });
      return r.blob().then(function (b) {
        var a = document.createElement("a");
        a.href = URL.createObjectURL(b);
        a.download = fmt === "csv" ? "relocation.csv" : "area_query.xlsx";
        a.click();
      });
    });
  }
  function count(n) { return n == null ? "–" : String(n); }

  function summary(b, W) {
    var h = b.households || {};
    var s = "<p><b>" + W.area + "</b> " + b.area_km2.toFixed(2) + " km²<br><b>" + W.grids +
      '</b> <span id="risk-grids">' + b.grids.length + "</span><br><b>" + W.hazards +
      "</b> " + count(b.hazards.total) + "<br><b>" + W.homes + '</b> <span id="risk-homes">' +
      count(h.households) + "</span> (" + count(h.residents) + " " + W.people + "; " +
      W.over60 + " " + count(h.over_60) + ", " + W.alone + " " + count(h.living_alone) + ", " +
      W.mobility + " " + count(h.mobility_needs) + ")</p>";
    if (h.suppressed || b.hazards.suppressed) {
      s += '<p class="note" id="risk-suppressed">' + W.suppressed + "</p>";
    }
    (b.notes || []).forEach(function (n) {
      s += '<p class="note">' + esc(n) + "</p>";
    });
    s += '<table id="risk-grid-table">';
    b.grids.slice(0, 8).forEach(function (g) {
      s += "<tr><td>" + esc(g.name) + '</td><td class="share">' +
        (g.share_inside * 100).toFixed(0) + "%</td></tr>";
    });
    return s + "</table>";
  }

  function relocation(b, W) {
    if (!b.relocation) return '<p id="risk-withheld">' + W.withheld + "</p>";
    var s = "<p><b>" + W.relocation + "</b> (" + b.relocation_total + ")</p>" +
      '<ol id="risk-relocation">';
    b.relocation.slice(0, 30).forEach(function (r) {
      s += "<li>" + esc(r.head_name) + " · " + esc(r.address) + " · " + esc(r.phone) +
        " · " + esc(r.members) + W.people + "</li>";
    });
    return s + '</ol><button type="button" id="risk-csv">' + W.csv + "</button> ";
  }

  function failed(out, message) {
    out.dataset.state = "error";
    out.innerHTML = '<p class="error">' + esc(message) + "</p>";
  }

  // Runs the area query of `geometry` (GeoJSON, in `crs`: the panel's basemap by default).
  window.riskgridQuery = function (geometry, crs) {
    var W = words();
    var out = $("risk-result");
    out.dataset.state = "busy";
    out.innerHTML = "<p>" + W.busy + "</p>";
    last = {geometry: geometry, crs: crs || $("risk-panel").dataset.crs, limit: 200};
    query(null)
      .then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
      .then(function (res) {
        var status = res[0], b = res[1];
        if (status !== 200) { failed(out, b.detail); return; }
        out.innerHTML = summary(b, W) + relocation(b, W) +
          '<button type="button" id="risk-xlsx">' + W.xlsx + "</button>";
        out.dataset.state = "done";
        var c = $("risk-csv");
        if (c) c.onclick = function () { download("csv"); };
        $("risk-xlsx").onclick = function () { download("xlsx"); };
      })
      .catch(function (err) { failed(out, err); });
  };

  // Every shape drawn on `map` is queried (web/risk_map.py add_call).
  window.riskgridQuery.attach = function (map) {
    map.on("draw:created", function (e) { window.riskgridQuery(e.layer.toGeoJSON().geometry); });
  };
})();
