// The grid worker's phone page (web/templates/report.html).
// Reports are sent with a client UUID as their id and Idempotency-Key: resending after a
// dropped connection stores nothing twice. Unsent reports wait in the phone's outbox
// (js/phone-offline.js: localStorage, one per user, shared with the visit page), and go out as
// one batch when the phone is back online, with the visits waiting. Photos wait in IndexedDB
// (js/photo-queue.js) under their report's id and go out once that report is stored.
//
// Who sends: the user the page was served to. It sends with that session (the cookie, and the
// CSRF token of js/session.js) until the API answers 401; then it asks for the password in
// place (POST /api/v1/auth/token) and sends with the token it gets (Authorization: Bearer),
// kept in localStorage until it expires. The session cookie cannot be renewed from a script
// (it is HttpOnly, and /login leaves the page); the token can, so a login that ended while
// the phone was offline costs one password, no report and no page reload.
(function () {
  const $ = (id) => document.getElementById(id);
  const page = $("report-page").dataset;
  const W = JSON.parse($("report-words").textContent);
  const lang = page.lang === "en" ? "en" : "zh";
  const me = page.username;
  const OUTBOX = riskgridOutbox.key("report", me);
  const LEGACY_OUTBOX = "riskgrid.outbox";  // before logins: one outbox for the phone
  const TOKEN = riskgridSession.keptTokenKey;  // logging out revokes it (js/session.js)
  let themes = [];
  let kept = keptToken();
  let flushing = false;
  let chosen = [];  // photos picked for the report being written, shown as previews

  class LoginNeeded extends riskgridOutbox.LoginNeeded {}

  // The page's words with {name} filled in; `html` values are inserted as they are.
  function say(key, values, html) {
    return W[key].replace(/\{(\w+)\}/g, (_, k) => {
      if (html && k in html) return html[k];
      return escape(values && k in values ? values[k] : "");
    });
  }
  function read(key) { try { return JSON.parse(localStorage.getItem(key) || "[]"); } catch (e) { return []; } }
  function outbox() { return riskgridOutbox.items("report", me); }
  function saveOutbox(items) { localStorage.setItem(OUTBOX, JSON.stringify(items)); showOutbox(); }
  // Reports kept before logins carried the reporter's name: the API now takes the user's.
  function adoptLegacyOutbox() {
    const old = read(LEGACY_OUTBOX);
    if (!old.length) return;
    saveOutbox(outbox().concat(old.map(({reporter, ...item}) => item)));
    localStorage.removeItem(LEGACY_OUTBOX);
  }
  async function showPhotos() {
    let n = 0;
    try { n = (await riskgridPhotos.list(me)).length; } catch (e) { /* no IndexedDB: none kept */ }
    $("photo-outbox").textContent = n ? W.photos_waiting.replace("{n}", String(n)) : "";
    $("photo-outbox").dataset.count = String(n);
  }
  function showChosen() {
    for (const img of $("previews").querySelectorAll("img")) URL.revokeObjectURL(img.src);
    $("previews").replaceChildren(...chosen.map((file) => {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(file);
      img.alt = file.name;
      return img;
    }));
    $("previews").dataset.count = String(chosen.length);
  }
  function showOutbox() {
    const n = outbox().length;
    let text = n ? W.outbox.replace("{n}", String(n)) : "";
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (!key.startsWith(LEGACY_OUTBOX + ".") || key === OUTBOX) continue;
      const others = read(key).length;
      const user = key.slice(LEGACY_OUTBOX.length + 1);
      if (others) text += (text ? " · " : "") + W.others.replace("{n}", String(others)).replaceAll("{user}", user);
    }
    $("outbox").textContent = text;
    $("outbox").dataset.count = String(n);
  }
  function show(kind, html) { const r = $("result"); r.className = kind; r.innerHTML = html; }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, (c) => {
      const r = Math.random() * 16 | 0; return (c === "x" ? r : (r & 0x3 | 0x8)).toString(16);
    });
  }
  function escape(s) { const d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }
  function name(item) { return item[lang] || item.zh; }

  // The token of an in-page login, while it is this user's and has not expired.
  function keptToken() {
    try {
      const t = JSON.parse(localStorage.getItem(TOKEN) || "null");
      if (t && t.username === me && t.expires_at > Date.now()) return t;
    } catch (e) { /* unreadable: dropped below */ }
    localStorage.removeItem(TOKEN);
    return null;
  }
  function forgetToken() { kept = null; localStorage.removeItem(TOKEN); }

  function request(url, options) {
    const o = Object.assign({}, options || {});
    if (kept) {
      o.credentials = "omit";
      o.headers = new Headers(o.headers || {});
      o.headers.set("Authorization", "Bearer " + kept.token);
    } else {
      o.credentials = "same-origin";
      o.headers = riskgridSession.headers(o.method, o.headers);
    }
    return fetch(url, o);
  }
  // An API call as this user: the kept token, else the session; LoginNeeded when neither
  // works any more (the login form is shown). A network failure rejects as fetch does.
  async function api(url, options) {
    let resp = await request(url, options);
    if (resp.status === 401 && kept) { forgetToken(); resp = await request(url, options); }
    if (resp.status === 401) { askLogin(); throw new LoginNeeded(); }
    return resp;
  }
  // Whether the session cookie is still this user's: another tab may have logged in as
  // someone else meanwhile, and the outbox must go out under the name of whoever wrote it.
  async function sessionIsMine() {
    if (kept) return true;
    const resp = await api("/api/v1/auth/me");
    return resp.ok && (await resp.json()).username === me;
  }

  function askLogin() {
    $("login").hidden = false;
    $("login-password").focus();
  }
  function waitWords(seconds) {
    const s = Math.max(1, parseInt(seconds, 10) || 60);
    return s < 60 ? W.seconds.replace("{n}", String(s)) : W.minutes.replace("{n}", String(Math.ceil(s / 60)));
  }
  async function logIn(event) {
    event.preventDefault();
    const out = $("login-result");
    if (!navigator.onLine) { out.textContent = W.login_offline; return; }
    out.textContent = W.logging_in;
    const form = new URLSearchParams({username: me, password: $("login-password").value});
    let resp;
    try {
      resp = await fetch("/api/v1/auth/token", {method: "POST", body: form, credentials: "omit"});
    } catch (e) { out.textContent = W.login_offline; return; }
    if (resp.status === 429) { out.textContent = W.locked.replace("{wait}", waitWords(resp.headers.get("Retry-After"))); return; }
    if (!resp.ok) { out.textContent = W.wrong; $("login-password").select(); return; }
    const body = await resp.json();
    kept = {token: body.access_token, username: body.username, expires_at: Date.now() + body.expires_in * 1000};
    localStorage.setItem(TOKEN, JSON.stringify(kept));
    $("login-password").value = "";
    out.textContent = "";
    $("login").hidden = true;
    show("ok", escape(W.logged_in));
    if (!themes.length) await loadThemes();
    await flush();
  }

  function fillCategories() {
    const t = themes.find((x) => x.code === $("theme").value);
    $("category").innerHTML = (t ? t.categories : []).map((c) => `<option value="${escape(c.code)}">${escape(name(c))}</option>`).join("");
  }

  function describe(rep) {
    if (!rep.grid) return say("unassigned", {id: rep.id});
    let html = say("assigned", {name: rep.grid.name}, {code: `<b id="grid-code">${escape(rep.grid.code)}</b>`}) +
      "<br>" + say("department", {department: rep.department});
    if (rep.assignment.method === "nearest") html += "<br>" + say("nearest", {m: rep.assignment.distance_m});
    const near = rep.assignment.near_boundary;
    if (near) html += "<br>" + say("near_boundary", {code: near.code, m: near.distance_m});
    return html;
  }

  async function post(item) {
    const resp = await api("/api/v1/reports", {
      method: "POST", headers: {"Content-Type": "application/json", "Idempotency-Key": item.id},
      body: JSON.stringify(item),
    });
    const body = await resp.json();
    if (resp.status === 200 || resp.status === 201) return body;
    const err = new Error(body.detail || ("HTTP " + resp.status)); err.refused = true; throw err;
  }

  // Send the kept photos whose report is stored (not waiting in the outbox any more); stops
  // at the first network failure, the rest kept. Resolves with how many went out.
  async function flushPhotos() {
    try { return await riskgridOutbox.flushPhotos(me, api); } finally { await showPhotos(); }
  }

  // The outbox (reports, and the visits of the visit page) and the photos of what is stored.
  async function flush() {
    if (!navigator.onLine || flushing) return;
    flushing = true;
    try {
      if (!(await riskgridOutbox.pending(me))) return;
      if (!(await sessionIsMine())) { askLogin(); return; }
      const out = await riskgridOutbox.flush(me, api);
      const said = [];
      if (out.batch) said.push(say("flushed", {n: out.reports}) + (out.reports_refused ? say("refused", {n: out.reports_refused}) : ""));
      if (out.visits.length) said.push(say("visits_sent", {n: out.visits.length}));
      if (out.visits_refused) said.push(say("visits_refused", {n: out.visits_refused}));
      if (out.photos) said.push(say("photos_sent", {n: out.photos}));
      if (said.length) show(out.visits_refused ? "warn" : "ok", said.join("<br>"));
    } catch (e) {
      /* LoginNeeded: the form is shown and the outbox kept; offline: tried again later */
    } finally { flushing = false; await showPhotos(); }
  }

  async function send() {
    const item = {
      id: uuid(), lon: parseFloat($("lon").value), lat: parseFloat($("lat").value),
      theme: $("theme").value, category: $("category").value,
      description: $("description").value || null,
      reported_at: new Date().toISOString(),
    };
    if ($("accuracy").value) item.accuracy_m = parseFloat($("accuracy").value);
    if (!isFinite(item.lon) || !isFinite(item.lat)) { show("err", say("no_position")); return; }
    // 自行处置: stored resolved at grid level; its photos show the fixed site (kind `after`),
    // which the desk needs to verify it.
    const onSite = $("on-site").checked;
    if (onSite) item.on_site = true;
    if (onSite && !chosen.length) { show("err", say("on_site_needs_photo")); return; }
    // The photos are kept before the report is sent: a dropped connection loses neither.
    try {
      for (const file of chosen) await riskgridPhotos.add(me, item.id, onSite ? "after" : "site", file);
    } catch (e) { show("err", say("photo_not_kept")); return; }
    chosen = [];
    $("photo").value = "";
    $("on-site").checked = false;
    $("on-site-hint").hidden = true;
    showChosen();
    await showPhotos();
    if (!navigator.onLine) { saveOutbox(outbox().concat([item])); show("warn", say("offline")); return; }
    let rep;
    try {
      rep = await post(item);
    } catch (e) {
      if (e.refused) { show("err", escape(e.message)); return; }  // its photos: dropped at the next flush (404)
      saveOutbox(outbox().concat([item]));
      show("warn", say(e instanceof LoginNeeded ? "kept_for_login" : "dropped"));
      return;
    }
    show(rep.assignment.near_boundary ? "warn" : "ok", describe(rep));
    try {
      const photos = await flushPhotos();
      if (photos) $("result").insertAdjacentHTML("beforeend", "<br>" + say("photos_sent", {n: photos}));
    } catch (e) {  // the report is stored; its photos wait and go out with the next flush
      $("result").insertAdjacentHTML("beforeend", "<br>" + say("photos_kept"));
    }
  }

  riskgridOutbox.locateButton(show, say);
  // Tap a point on a small map (Leaflet, served by riskgrid itself, loaded only when asked
  // for: a phone on a weak network does not pay for it otherwise). Grid outlines show where
  // one grid ends and the next begins.
  let map = null, marker = null, outlines = null;
  function loadLeaflet() {
    return new Promise((resolve, reject) => {
      if (window.L) { resolve(); return; }
      const css = document.createElement("link");
      css.rel = "stylesheet"; css.href = page.leafletCss;
      document.head.appendChild(css);
      const js = document.createElement("script");
      js.src = page.leafletJs; js.onload = resolve; js.onerror = reject;
      document.head.appendChild(js);
    });
  }
  async function drawGrids() {
    if (map.getZoom() < 13) { if (outlines) outlines.clearLayers(); return; }
    const b = map.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(",");
    try {
      const resp = await api(`/api/v1/grids?bbox=${bbox}&limit=500`);
      if (!resp.ok) return;
      const fc = await resp.json();
      outlines.clearLayers();
      outlines.addData(fc);
    } catch (e) { /* offline, or the login form is up: the map still takes a tap */ }
  }
  function pickAt(latlng) {
    $("lon").value = latlng.lng.toFixed(7);
    $("lat").value = latlng.lat.toFixed(7);
    $("accuracy").value = "";
    if (marker) marker.setLatLng(latlng); else marker = L.circleMarker(latlng, {radius: 8, color: "#cf222e"}).addTo(map);
    show("ok", say("picked", {lon: latlng.lng.toFixed(6), lat: latlng.lat.toFixed(6)}));
  }
  $("pick").addEventListener("click", async () => {
    try { await loadLeaflet(); } catch (e) { show("err", say("map_failed")); return; }
    $("map").style.display = "block";
    if (map) { map.invalidateSize(); return; }
    const lon = parseFloat($("lon").value), lat = parseFloat($("lat").value);
    map = L.map("map", {maxZoom: 19});
    // Where the worker stands, else where the grids are densest (the server's `data-lat`).
    if (isFinite(lon) && isFinite(lat)) map.setView([lat, lon], 16);
    else if (page.lat) map.setView([parseFloat(page.lat), parseFloat(page.lon)], 13);
    else map.fitWorld();
    outlines = L.geoJSON(null, {style: {color: "#1f6feb", weight: 1, fillOpacity: 0.04}, interactive: false}).addTo(map);
    map.on("click", (e) => pickAt(e.latlng));
    map.on("moveend", drawGrids);
    drawGrids();
    window.riskgridPickMap = map;  // for tests
  });
  $("photo").addEventListener("change", () => {
    chosen = chosen.concat(Array.from($("photo").files || []));
    showChosen();
  });
  $("on-site").addEventListener("change", () => { $("on-site-hint").hidden = !$("on-site").checked; });
  $("theme").addEventListener("change", fillCategories);
  $("send").addEventListener("click", send);
  $("login-form").addEventListener("submit", logIn);
  window.addEventListener("online", flush);
  window.addEventListener(riskgridOutbox.CHANGED, showOutbox);

  async function loadThemes() {
    try {
      const body = await (await api("/api/v1/themes")).json();
      themes = body.themes;
      riskgridOutbox.learnBatch(body.max_batch);
    } catch (e) { return; }  // the login form is up: loaded once logged in
    $("theme").innerHTML = themes.map((t) => `<option value="${escape(t.code)}">${escape(name(t))}</option>`).join("");
    fillCategories();
    document.body.dataset.ready = "1";
  }
  adoptLegacyOutbox();
  showOutbox();
  showPhotos();
  loadThemes().then(flush);
})();
