// A report's page (web/templates/console_report.html): the map of its point and grid outline
// (from the grids API), the forms of the moves the viewer may make (each sends only what its
// move needs), the handlers of the chosen department, and 督办 set or lifted. After a move the
// page is shown again, so that history, clock and the moves left agree.
(function () {
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var w = data.words;
  var api = window.riskgridSession.api;
  var errorBox = document.getElementById("action-error");

  function fail(detail) {
    errorBox.textContent = w.failed + detail;
    errorBox.hidden = false;
  }

  function send(url, method, body) {
    var o = {method: method};
    if (body) { o.headers = {"Content-Type": "application/json"}; o.body = JSON.stringify(body); }
    return api(url, o).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error(j.detail || ("HTTP " + r.status));
        return j;
      });
    });
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.matches("form.move")) {
      e.preventDefault();
      var body = {to: form.dataset.to};
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && el.name !== "to" && el.value) body[el.name] = el.value;
      });
      send("/api/v1/reports/" + data.id + "/transitions", "POST", body)
        .then(function () { location.reload(); })
        .catch(function (err) { fail(err.message); });
    } else if (form.matches("form.supervision")) {
      e.preventDefault();
      var on = form.dataset.on === "true";
      var note = form.elements.note ? form.elements.note.value : "";
      send("/api/v1/reports/" + data.id + "/supervision", on ? "PUT" : "DELETE",
           on ? {note: note || null} : null)
        .then(function () { location.reload(); })
        .catch(function (err) { fail(err.message); });
    }
  });

  function handlers(form) {
    var dept = form.querySelector("select.department");
    window.riskgridFillHandlers(dept.value, form.querySelector("select.handler"));
  }
  document.querySelectorAll("form.move select.department").forEach(function (s) {
    s.addEventListener("change", function () { handlers(s.form); });
    handlers(s.form);
  });

  var box = document.getElementById("report-map");
  if (!box || !window.L || !box.dataset.lat) return;
  var at = [Number(box.dataset.lat), Number(box.dataset.lon)];
  var map = L.map(box).setView(at, 16);
  window.riskgridReportMap = map;  // for tests
  L.circleMarker(at, {radius: 8, color: "#cf222e", weight: 2, fillOpacity: 0.7}).addTo(map);
  if (!box.dataset.grid) return;
  api("/api/v1/grids/" + encodeURIComponent(box.dataset.grid))
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (feature) {
      if (!feature) return;
      var outline = L.geoJSON(feature, {style: {color: "#0969da", weight: 2, fillOpacity: 0.05}})
        .addTo(map);
      window.riskgridReportGrid = outline;  // for tests
      map.fitBounds(outline.getBounds().extend(at), {padding: [20, 20]});
    }).catch(function () { /* offline: the point is still shown */ });
})();
