// Every <div data-chart="NAME" data-series='JSON'> of a page drawn with Apache ECharts (served
// from /static/vendor: offline intranets have no CDN). One script line per page:
//   <script src=".../js/charts.js" data-echarts=".../vendor/echarts/echarts.min.js"></script>
// loads ECharts itself when the page has not (the address comes versioned from static_url).
//
// A chart's JSON (web/campaign_page.py writes it):
//   {"x": {"name": "日期", "type": "day"|"month"|"category", "data": [...]},
//    "y": [{"name": "当日走访（次）", "unit": "次", "percent": false}, ...],
//    "series": [{"name": "走访", "type": "bar"|"line", "y": 0, "data": [...], "stack": "s"}]}
// Any label may be {"zh": …, "en": …}: the page's <html lang> picks one. A bare object of
// columns ({"months": [...], "closure_rate": [...], ...}, the evaluation page's trend) is read
// through COLUMNS below.
//
// Tooltips are built as DOM nodes with textContent: ECharts' own tooltip HTML carries style
// attributes, which the pages' Content-Security-Policy refuses (and labels are never markup).
(function () {
  var script = document.currentScript;
  var LANG = document.documentElement.lang === "en" ? "en" : "zh";
  var HEIGHT = 300;  // px when the page's stylesheet gives the box no height
  var COLOURS = ["#0969da", "#cf222e", "#2da44e", "#bf8700", "#8250df", "#57606a"];

  // The columns a chart may be given bare, and what they are called (the evaluation trend).
  var COLUMNS = {
    months: {x: true, type: "month", name: {zh: "月份", en: "Month"}},
    days: {x: true, type: "day", name: {zh: "日期", en: "Day"}},
    closure_rate: {name: {zh: "结案率", en: "Closure rate"}, type: "line", y: 1},
    on_time_closure_rate: {name: {zh: "按期结案率", en: "On-time closure rate"}, type: "line",
                           y: 1},
    due_to_close: {name: {zh: "应结案数", en: "Due to close"}, type: "bar", y: 0}
  };
  var COLUMN_AXES = [
    {name: {zh: "应结案数（件）", en: "Due to close (reports)"}, unit: {zh: "件", en: ""}},
    {name: {zh: "比率（%）", en: "Rate (%)"}, percent: true}
  ];

  function say(label) {
    if (label === null || label === undefined) return "";
    if (typeof label === "object") return String(label[LANG] || label.zh || label.en || "");
    return String(label);
  }

  // A bare object of columns as a chart: its x column, a series per other known column.
  function fromColumns(cols) {
    var x = null;
    var series = [];
    // In the order of COLUMNS, then any others: a template's tojson sorts the keys.
    var keys = Object.keys(COLUMNS).filter(function (k) { return k in cols; });
    keys = keys.concat(Object.keys(cols).filter(function (k) { return !(k in COLUMNS); }).sort());
    keys.forEach(function (key) {
      var known = COLUMNS[key] || {name: key, type: "line", y: 0};
      if (known.x) x = {name: known.name, type: known.type, data: cols[key]};
      else if (Array.isArray(cols[key])) {
        series.push({name: known.name, type: known.type, y: known.y, data: cols[key]});
      }
    });
    var used = series.some(function (s) { return s.y === 1; }) ? COLUMN_AXES : [COLUMN_AXES[0]];
    return {x: x || {name: "", data: []}, y: used, series: series};
  }

  function dayLabel(type) {
    // Days read 07-25 under the axis (the tooltip gives the whole date); months 2024-03.
    return function (value) {
      var s = String(value);
      return type === "day" && /^\d{4}-\d{2}-\d{2}$/.test(s) ? s.slice(5) : s;
    };
  }

  function valueText(v, axis) {
    if (v === null || v === undefined || v === "-") return "–";
    if (axis.percent) return (Number(v) * 100).toFixed(1) + "%";
    var unit = say(axis.unit);
    return Number(v).toLocaleString(LANG === "en" ? "en" : "zh-CN") + (unit ? " " + unit : "");
  }

  function tooltip(spec) {
    return function (params) {
      var list = Array.isArray(params) ? params : [params];
      var box = document.createElement("div");
      box.className = "chart-tooltip";
      var head = document.createElement("b");
      head.textContent = list.length ? String(list[0].axisValue || list[0].name || "") : "";
      box.appendChild(head);
      var table = document.createElement("table");
      list.forEach(function (p) {
        var s = spec.series[p.seriesIndex] || {};
        var axis = spec.y[s.y || 0] || {};
        var row = table.insertRow();
        var swatch = document.createElement("span");
        swatch.className = "chart-swatch";
        // CSSOM, not a style attribute: the policy allows the one, refuses the other.
        if (typeof p.color === "string") swatch.style.background = p.color;
        swatch.style.display = "inline-block";
        swatch.style.width = swatch.style.height = "10px";
        swatch.style.marginRight = "6px";
        var name = row.insertCell();
        name.appendChild(swatch);
        name.appendChild(document.createTextNode(say(s.name)));
        var value = row.insertCell();
        value.textContent = valueText(p.value, axis);
        value.style.textAlign = "right";
        value.style.paddingLeft = "12px";
      });
      box.appendChild(table);
      return box;
    };
  }

  function yAxis(axis, i) {
    return {
      type: "value",
      name: say(axis.name),
      nameLocation: "middle",
      nameGap: 52,
      nameTextStyle: {fontSize: 12, color: "#1f2328"},
      position: i === 0 ? "left" : "right",
      min: 0,
      max: axis.percent ? 1 : null,
      splitLine: {show: i === 0},
      axisLine: {show: true},
      axisTick: {show: true},
      axisLabel: {
        fontSize: 12,
        formatter: axis.percent
          ? function (v) { return Math.round(v * 100) + "%"; }
          : function (v) { return Number(v).toLocaleString(LANG === "en" ? "en" : "zh-CN"); }
      }
    };
  }

  function option(spec, width) {
    var x = spec.x || {};
    var n = (x.data || []).length || 1;
    // Names (districts) all shown, broken over lines to fit; dates thinned out when crowded.
    var names = x.type !== "day" && x.type !== "month";
    return {
      color: COLOURS,
      animation: false,
      aria: {enabled: true},
      textStyle: {fontFamily: "sans-serif"},
      grid: {left: 76, right: spec.y.length > 1 ? 76 : 24, top: 44, bottom: names ? 64 : 56},
      legend: {top: 4, type: "scroll", textStyle: {fontSize: 12}},
      tooltip: {trigger: "axis", confine: true, formatter: tooltip(spec),
                axisPointer: {type: "shadow"}},
      xAxis: {
        type: "category",
        name: say(x.name),
        nameLocation: "middle",
        nameGap: names ? 44 : 32,
        nameTextStyle: {fontSize: 12, color: "#1f2328"},
        data: (x.data || []).map(say),
        axisTick: {show: true, alignWithLabel: true},
        axisLabel: names
          ? {fontSize: 12, interval: 0, width: Math.max((width - 120) / n - 4, 24),
             overflow: "break"}
          : {fontSize: 12, hideOverlap: true, formatter: dayLabel(x.type)}
      },
      yAxis: spec.y.map(yAxis),
      series: spec.series.map(function (s) {
        return {
          name: say(s.name),
          type: s.type === "line" ? "line" : "bar",
          yAxisIndex: s.y || 0,
          stack: s.stack || null,
          data: s.data,
          connectNulls: false,
          symbolSize: 6,
          barMaxWidth: 36,
          emphasis: {focus: "series"}
        };
      })
    };
  }

  function draw(el) {
    var raw;
    try { raw = JSON.parse(el.dataset.series || "null"); } catch (e) { raw = null; }
    if (!raw) return null;
    var spec = raw.series && raw.y ? raw : fromColumns(raw);
    if (!el.clientHeight) el.style.height = (spec.height || HEIGHT) + "px";
    var chart = window.echarts.init(el, null, {renderer: "canvas", locale: LANG === "en"
      ? "EN" : "ZH"});
    chart.setOption(option(spec, el.clientWidth));
    el.dataset.drawn = "1";
    return function resize() {
      chart.setOption(option(spec, el.clientWidth));  // the labels' widths follow the box
      chart.resize();
    };
  }

  function drawAll() {
    var resizes = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var resize = draw(el);
      if (resize) resizes.push(resize);
    });
    window.addEventListener("resize", function () {
      resizes.forEach(function (resize) { resize(); });
    });
    document.documentElement.dataset.charts = String(resizes.length);  // for tests
  }

  function start() {
    if (!document.querySelector("[data-chart]")) return;
    if (window.echarts) { drawAll(); return; }
    var lib = script && script.dataset.echarts;
    if (!lib) { console.error("charts.js: no data-echarts address, ECharts not loaded"); return; }
    var tag = document.createElement("script");
    tag.src = lib;
    tag.onload = drawAll;
    document.head.appendChild(tag);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
