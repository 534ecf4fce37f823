// Grid outlines drawn from the grids API for the part of the map in view: the page stays the
// same size, and with no basemap (the default, offline) the grids are what a planner reads
// the map by. web/maps.py add_grid_outlines calls it with the map and the layer group; the
// options come from #grid-outlines-options (web/templates/maps/grid_outlines.html). The
// requests carry the page's session (js/session.js).
window.riskgridOutlineGrids = function (map, group) {
  var o = JSON.parse(document.getElementById("grid-outlines-options").textContent);
  var outlines = L.geoJSON(null, {style: {color: "#555", weight: 0.7, fill: false},
                                  interactive: false});
  group.addLayer(outlines);
  window.riskgridGridOutlines = outlines;  // for tests
  var turn = 0;
  async function draw() {
    var mine = ++turn;
    if (!map.hasLayer(group)) return;  // switched off in the layer control: fetch nothing
    if (map.getZoom() < o.minZoom) { outlines.clearLayers(); return; }
    var b = map.getBounds().pad(0.05);
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
      .map(function (v) { return v.toFixed(5); }).join(",");
    var feats = [];
    try {
      for (var offset = 0; offset < o.maxOutlines;) {
        var r = await riskgridSession.api("/api/v1/grids?limit=1000&offset=" + offset +
                                          "&bbox=" + bbox + (o.gcj ? "&crs=gcj02" : ""));
        if (!r.ok) return;
        var fc = await r.json();
        if (mine !== turn) return;  // the map moved on meanwhile
        feats = feats.concat(fc.features);
        offset += fc.features.length;
        if (!fc.features.length || offset >= fc.numberMatched) break;
      }
    } catch (e) { return; }  // offline: the rest of the map still works
    outlines.clearLayers();
    outlines.addData({type: "FeatureCollection", features: feats});
  }
  map.on("moveend", draw);
  group.on("add", draw);
  draw();
};
