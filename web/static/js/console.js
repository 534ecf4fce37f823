// The dispatcher's console (web/templates/console.html): bulk accept and dispatch of the ticked
// reports (answered per report), the handlers of the chosen department, placing a report of
// the 无网格 queue on a grid picked on the map, and merging or accepting a suspected duplicate.
// Writes go through riskgridSession.api (js/session.js adds the CSRF header).
(function () {
  var data = JSON.parse(document.getElementById("console-data").textContent);
  var w = data.script.words;
  var api = window.riskgridSession.api;
  var errorBox = document.getElementById("console-error");

  function say(text, args) {
    return Object.keys(args || {}).reduce(function (s, k) {
      return s.split("{" + k + "}").join(args[k]);
    }, text);
  }

  function fail(detail) {
    errorBox.textContent = w.failed + detail;
    errorBox.hidden = false;
  }

  function send(url, method, body) {
    return api(url, {method: method, headers: {"Content-Type": "application/json"},
                     body: JSON.stringify(body)})
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (!r.ok) throw new Error(j.detail || ("HTTP " + r.status));
          return j;
        });
      });
  }

  // --- bulk moves -----------------------------------------------------------------------
  var picks = function () { return Array.prototype.slice.call(document.querySelectorAll("input.pick")); };
  var chosen = function () { return picks().filter(function (p) { return p.checked && !p.disabled; }); };
  var counter = document.getElementById("selected-count");

  function count() {
    if (counter) counter.textContent = say(w.selected, {n: chosen().length});
  }

  var all = document.getElementById("select-all");
  if (all) all.addEventListener("change", function () {
    picks().forEach(function (p) { if (!p.disabled) p.checked = all.checked; });
    count();
  });
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("input.pick")) count();
  });

  // Each report's answer is written on its row; the moved ones can no longer be ticked.
  function show(results) {
    results.forEach(function (res) {
      var row = document.querySelector('tr[data-id="' + res.id + '"]');
      if (!row) return;
      var cell = row.querySelector(".result");
      if (res.status === 200) {
        row.classList.add("moved");
        row.dataset.status = res.report.status;
        var name = data.script.statuses[res.report.status] || res.report.status;
        row.querySelector(".status-cell").textContent = name;
        cell.textContent = "✓ " + name + (res.report.department ? " · " + res.report.department : "") +
          (res.report.handler ? " · " + res.report.handler : "");
      } else {
        row.classList.add("refused");
        cell.textContent = "✗ " + res.detail;
      }
    });
  }

  function bulk(to, ids, extra) {
    document.getElementById("bulk-summary").textContent = "";
    return send("/api/v1/reports:transitions", "POST", Object.assign({ids: ids, to: to}, extra || {}));
  }

  function summary(answers) {
    var moved = 0, failed = 0;
    answers.forEach(function (a) { moved += a.moved; failed += a.failed; });
    document.getElementById("bulk-summary").textContent = say(w.moved, {moved: moved, failed: failed});
    var reload = document.getElementById("bulk-reload");
    reload.href = location.href;
    reload.hidden = false;
  }

  var acceptButton = document.getElementById("bulk-accept");
  if (acceptButton) acceptButton.addEventListener("click", function () {
    var ids = chosen().map(function (p) { return p.value; });
    if (!ids.length) return fail(w.pick_some);
    bulk("accepted", ids).then(function (a) {
      show(a.results);
      chosen().forEach(function (p) { if (p.closest("tr").classList.contains("refused")) return; p.checked = false; });
      summary([a]);
    }).catch(function (e) { fail(e.message); });
  });

  // A dispatch of reports still waiting to be accepted accepts them first (立案 then 派遣):
  // the dispatcher's decision to send them somewhere is the decision to take them on.
  var dispatchButton = document.getElementById("bulk-dispatch");
  if (dispatchButton) dispatchButton.addEventListener("click", function () {
    var rows = chosen().map(function (p) { return p.closest("tr"); });
    if (!rows.length) return fail(w.pick_some);
    var extra = {};
    var dept = document.getElementById("bulk-department").value;
    var handler = document.getElementById("bulk-handler").value;
    if (dept) extra.department = dept;
    if (dept && handler) extra.handler = handler;
    var waiting = rows.filter(function (r) { return r.dataset.status === "reported"; })
      .map(function (r) { return r.dataset.id; });
    var first = waiting.length ? bulk("accepted", waiting) : Promise.resolve({moved: 0, failed: 0, results: []});
    first.then(function (accepted) {
      var refused = accepted.results.filter(function (r) { return r.status !== 200; });
      show(refused);
      var ids = rows.map(function (r) { return r.dataset.id; })
        .filter(function (id) { return !refused.some(function (x) { return x.id === id; }); });
      return (ids.length ? bulk("dispatched", ids, extra) : Promise.resolve({moved: 0, failed: 0, results: []}))
        .then(function (sent) {
          show(sent.results);
          rows.forEach(function (r) {
            if (r.classList.contains("moved") && r.dataset.status === "dispatched") {
              var p = r.querySelector("input.pick"); p.checked = false; p.disabled = true;
            }
          });
          summary([sent, {moved: 0, failed: refused.length}]);
        });
    }).catch(function (e) { fail(e.message); });
  });

  // The handlers of the chosen department (their usernames are what a dispatch names).
  var deptSelect = document.getElementById("bulk-department");
  if (deptSelect) deptSelect.addEventListener("change", function () {
    var handlers = document.getElementById("bulk-handler");
    handlers.disabled = true;
    if (!deptSelect.value) { handlers.length = 1; return; }
    window.riskgridFillHandlers(deptSelect.value, handlers).then(function () {
      handlers.disabled = false;
    });
  });

  // Categories follow the chosen theme.
  var themeSelect = document.getElementById("filter-theme");
  var catSelect = document.getElementById("filter-category");
  function narrow() {
    Array.prototype.forEach.call(catSelect.options, function (o) {
      o.hidden = Boolean(o.value && themeSelect.value && o.dataset.theme !== themeSelect.value);
    });
    if (catSelect.selectedOptions[0] && catSelect.selectedOptions[0].hidden) catSelect.value = "";
  }
  if (themeSelect && catSelect) { themeSelect.addEventListener("change", narrow); narrow(); }

  // --- 疑似重复: merge, or say it is none ----------------------------------------------------
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button.merge, button.not-duplicate");
    if (!b) return;
    var pair = b.closest(".pair");
    var body = b.classList.contains("merge") ? {to: "duplicate", duplicate_of: b.dataset.original}
                                             : {to: "accepted", note: w.not_duplicate};
    send("/api/v1/reports/" + b.dataset.id + "/transitions", "POST", body).then(function (r) {
      pair.classList.add("decided");
      pair.querySelector(".result").textContent = "✓ " + (r.status === "duplicate" ? w.merged : w.accepted);
      pair.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
    }).catch(function (err) { fail(err.message); });
  });

  // --- 无网格: pick a report, click its grid on the map, place it ---------------------------
  var mapBox = document.getElementById("place-map");
  if (!mapBox || !window.L) return;
  var MIN_ZOOM = 13;  // below this the view holds thousands of grids: they are not fetched
  var map = L.map(mapBox);
  window.riskgridPlaceMap = map;  // for tests
  var markers = {};
  var bounds = [];
  data.points.forEach(function (p) {
    var m = L.circleMarker([p.lat, p.lon], {radius: 7, color: "#cf222e", weight: 2, fillOpacity: 0.6})
      .addTo(map).bindTooltip(p.short);
    m.on("click", function () { pick(p.id); });
    markers[p.id] = m;
    bounds.push([p.lat, p.lon]);
  });
  if (bounds.length) map.fitBounds(bounds, {maxZoom: 14, padding: [40, 40]});
  else map.setView([0, 0], 2);
  var status = document.getElementById("place-status");
  var confirm = document.getElementById("place-confirm");
  var selected = null, target = null;
  var grids = L.geoJSON(null, {
    style: {color: "#555", weight: 1, fillOpacity: 0.05},
    onEachFeature: function (f, layer) {
      layer.on("click", function () { choose(f.properties); });
    }
  }).addTo(map);
  window.riskgridPlaceGrids = grids;  // for tests

  function pick(id) {
    selected = id;
    Object.keys(markers).forEach(function (k) { markers[k].setStyle({color: k === id ? "#0969da" : "#cf222e"}); });
    document.querySelectorAll("tr.picked").forEach(function (r) { r.classList.remove("picked"); });
    var row = document.querySelector('tr[data-id="' + id + '"]');
    if (row) row.classList.add("picked");
    status.textContent = say(w.placing, {id: id.slice(0, 8)});
    if (markers[id]) map.panTo(markers[id].getLatLng());
  }

  function choose(grid) {
    if (!selected) { status.textContent = w.place_hint; return; }
    target = grid;
    confirm.textContent = say(w.place_to, {code: grid.code, name: grid.name || ""});
    confirm.hidden = false;
  }

  confirm.addEventListener("click", function () {
    if (!selected || !target) return;
    var id = selected, grid = target;
    send("/api/v1/reports/" + id, "PATCH", {grid: grid.code, note: w.place}).then(function (r) {
      var row = document.querySelector('tr[data-id="' + id + '"]');
      if (row) {
        row.classList.add("moved");
        row.querySelector(".grid-cell").textContent = r.grid ? r.grid.code : grid.code;
        row.querySelector(".result").textContent = "✓ " + say(w.placed, {code: grid.code});
      }
      if (markers[id]) { map.removeLayer(markers[id]); delete markers[id]; }
      status.textContent = say(w.placed, {code: grid.code});
      confirm.hidden = true;
      selected = target = null;
    }).catch(function (e) { fail(e.message); });
  });

  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button.place");
    if (b) pick(b.dataset.id);
  });

  var turn = 0;
  function draw() {
    var mine = ++turn;
    if (map.getZoom() < MIN_ZOOM) { grids.clearLayers(); status.textContent = w.zoom_in; return; }
    var b = map.getBounds().pad(0.2);
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
      .map(function (v) { return v.toFixed(5); }).join(",");
    api("/api/v1/grids?limit=1000&bbox=" + bbox).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (fc) {
        if (!fc || mine !== turn) return;
        grids.clearLayers();
        grids.addData(fc);
        grids.bringToBack();
      }).catch(function () { /* offline: the list still works */ });
  }
  map.on("moveend", draw);
  draw();
})();
