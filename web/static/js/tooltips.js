// A GeoJson layer's tooltip (web.map_base.TextTooltip): its fields as a table of text. The
// values come from imported files and reports, so they are never parsed as markup.
window.riskgridTooltip = function (properties, fields) {
  var table = document.createElement("table");
  fields.forEach(function (field) {
    var row = table.insertRow();
    var label = document.createElement("th");
    label.textContent = field;
    row.appendChild(label);
    var value = properties[field];
    if (value === null || value === undefined) value = "";
    else if (typeof value === "object") value = JSON.stringify(value);
    row.insertCell().textContent = String(value);
  });
  var box = document.createElement("div");
  box.appendChild(table);
  return box;
};
