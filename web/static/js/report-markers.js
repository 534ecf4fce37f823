// The open reports on the Folium maps: one marker per [lat, lon, popup HTML] row
// (FastMarkerCluster's callback: web/maps.py MARKER_CALLBACK names it).
window.riskgridReportMarker = function (row) {
  var marker = L.marker(new L.LatLng(row[0], row[1]));
  marker.bindPopup(row[2], {maxWidth: 260});
  return marker;
};
