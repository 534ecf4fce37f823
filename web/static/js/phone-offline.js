// The phone's outbox (上报 and 走访): what the worker did offline waits in localStorage, one list
// per user and kind, until the API has it. Each item carries its client id (the API's
// idempotency key), so a resend after a lost answer stores nothing twice. Photos wait apart, in
// IndexedDB (js/photo-queue.js), under their report's id, and go out once that report is
// stored. Reports go as one batch (those refused are counted and dropped, as the report page
// always did); visits one by one, and a visit the API refuses (4xx) stays on the phone marked
// refused with the API's words and is not sent again: the worker reads why and removes it.
// An item is the body the API takes, plus what the page shows of it (`label`) and, once
// refused, `refused: {status, detail, at}`; neither is sent.
// Either page sends both kinds: what waits goes out from whichever tab is open.
window.riskgridOutbox = (function () {
  const PREFIX = {report: "riskgrid.outbox.", visit: "riskgrid.visits."};
  const CHANGED = "riskgrid-outbox";  // the window's event after each change

  class LoginNeeded extends Error {}

  function key(kind, owner) { return PREFIX[kind] + owner; }
  function items(kind, owner) {
    try { return JSON.parse(localStorage.getItem(key(kind, owner)) || "[]"); } catch (e) { return []; }
  }
  function save(kind, owner, list) {
    localStorage.setItem(key(kind, owner), JSON.stringify(list));
    window.dispatchEvent(new CustomEvent(CHANGED, {detail: {kind, owner}}));
  }
  function add(kind, owner, item) { save(kind, owner, items(kind, owner).concat([item])); }
  function drop(kind, owner, id) { save(kind, owner, items(kind, owner).filter((i) => i.id !== id)); }
  function waiting(kind, owner) { return items(kind, owner).filter((i) => !i.refused); }
  function refused(kind, owner) { return items(kind, owner).filter((i) => i.refused); }
  function refuse(kind, owner, id, status, detail) {
    const at = new Date().toISOString();
    save(kind, owner, items(kind, owner).map((i) => (i.id === id ? {...i, refused: {status, detail, at}} : i)));
  }
  // The ids of reports the API has not stored: waiting alone, or found on a visit still kept
  // (waiting or refused). Their photos wait with them.
  function unsent(owner) {
    const ids = new Set(items("report", owner).map((r) => r.id));
    for (const v of items("visit", owner)) {
      ids.add(v.id);  // the visit's own photos wait for it too
      for (const r of v.reports || []) ids.add(r.id);
    }
    return ids;
  }
  async function photos(owner) {
    if (!window.riskgridPhotos) return [];
    try { return (await riskgridPhotos.list(owner)).filter((p) => !p.check_id); } catch (e) { return []; }
  }
  // Whether anything of `owner` waits to be sent (reports, visits, photos; 核查 apart).
  async function pending(owner) {
    if (items("report", owner).length || waiting("visit", owner).length) return true;
    return (await photos(owner)).length > 0;
  }

  // fetch() as `owner`: the report page's own login while it is theirs (js/report.js), else
  // the session cookie with its CSRF token; rejects with LoginNeeded on 401.
  function api(owner) {
    return async function (url, options) {
      const o = Object.assign({}, options || {});
      let kept = null;
      try { kept = JSON.parse(localStorage.getItem(riskgridSession.keptTokenKey) || "null"); } catch (e) { kept = null; }
      if (kept && kept.username === owner && kept.expires_at > Date.now()) {
        o.credentials = "omit";
        o.headers = new Headers(o.headers || {});
        o.headers.set("Authorization", "Bearer " + kept.token);
      } else {
        o.credentials = "same-origin";
        o.headers = riskgridSession.headers(o.method, o.headers);
      }
      const resp = await fetch(url, o);
      if (resp.status === 401) throw new LoginNeeded();
      return resp;
    };
  }
  // Whether `api` sends as `owner`: another tab may have logged in as someone else, and the
  // outbox goes out under the name of whoever wrote it.
  async function sessionIsMine(owner, api) {
    const resp = await api("/api/v1/auth/me");
    return resp.ok && (await resp.json()).username === owner;
  }
  async function detail(resp) {
    try { return (await resp.json()).detail || ("HTTP " + resp.status); } catch (e) { return "HTTP " + resp.status; }
  }

  // Send the kept photos whose report is stored; resolves with how many went out.
  async function flushPhotos(owner, api) {
    const held = unsent(owner);
    let sent = 0;
    for (const rec of await photos(owner)) {
      if (held.has(rec.report_id || rec.visit_id)) continue;
      if ((await riskgridPhotos.send(rec, api)) === "done") sent += 1;
    }
    return sent;
  }

  // Reports go at most BATCH a request, and no more than the API takes at once (its
  // reports.max_batch, told by GET /api/v1/themes and kept for offline use: `learnBatch`): a
  // phone long offline may keep more, and a batch refused whole would be sent again and again.
  // A batch that fails waits, with those after it, for the next try.
  const BATCH = 100;
  const BATCH_KEY = "riskgrid.maxBatch";
  function learnBatch(n) { if (Number.isInteger(n) && n > 0) localStorage.setItem(BATCH_KEY, String(n)); }
  function batchSize() { return Math.min(BATCH, parseInt(localStorage.getItem(BATCH_KEY), 10) || BATCH); }
  async function sendReports(owner, api, out) {
    for (let list = items("report", owner); list.length; list = items("report", owner)) {
      const chunk = list.slice(0, batchSize());
      const resp = await api("/api/v1/reports:batch", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({reports: chunk}),
      });
      if (!resp.ok) return;
      const body = await resp.json();
      save("report", owner, items("report", owner).slice(chunk.length));
      out.batch = true;
      out.reports += body.created + body.replayed;
      out.reports_refused += body.failed;
    }
  }

  // Resolves false when the rest should wait (the network or the server failed).
  async function sendVisit(owner, api, item, out) {
    const {refused, label, ...body} = item;  // what the page shows of it, not sent
    const resp = await api("/api/v1/visits", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    if (resp.status === 200 || resp.status === 201) {
      out.visits.push(await resp.json());
      drop("visit", owner, item.id);
      return true;
    }
    if (resp.status === 408 || resp.status === 429 || resp.status >= 500) return false;
    // 403, 404, 409, 413, 422: the same visit would be refused again.
    refuse("visit", owner, item.id, resp.status, await detail(resp));
    out.visits_refused += 1;
    return true;
  }

  // Send what `owner` keeps with `api` (fetch-like, as that user): reports, visits, then the
  // photos of what is stored. Rejects with LoginNeeded when the login has ended (all kept);
  // a network failure stops it (`interrupted`), the rest waits for the next try.
  async function flush(owner, api) {
    const out = {batch: false, reports: 0, reports_refused: 0, visits: [], visits_refused: 0, photos: 0, interrupted: false};
    try {
      await sendReports(owner, api, out);
      for (const item of waiting("visit", owner)) {
        if (!(await sendVisit(owner, api, item, out))) { out.interrupted = true; break; }
      }
      out.photos = await flushPhotos(owner, api);
    } catch (e) {
      if (e instanceof LoginNeeded) throw e;
      out.interrupted = true;
    }
    return out;
  }

  // The forms' 定位 button: the phone's position into the lon, lat and accuracy fields,
  // `show(kind, html)` saying what came of it in the page's words (`say`).
  function locateButton(show, say) {
    const $ = (id) => document.getElementById(id);
    $("gps").addEventListener("click", () => {
      if (!navigator.geolocation) { show("err", say("no_gps")); return; }
      navigator.geolocation.getCurrentPosition((pos) => {
        $("lon").value = pos.coords.longitude.toFixed(7);
        $("lat").value = pos.coords.latitude.toFixed(7);
        $("accuracy").value = pos.coords.accuracy ? pos.coords.accuracy.toFixed(1) : "";
        show("ok", say("located", {m: Math.round(pos.coords.accuracy || 0)}));
      }, (err) => show("err", say("gps_failed", {error: err.message})), {enableHighAccuracy: true, timeout: 15000});
    });
  }

  return {
    CHANGED, LoginNeeded, key, items, add, drop, waiting, refused, refuse, unsent, pending,
    api, sessionIsMine, flush, flushPhotos, locateButton, learnBatch,
  };
})();

// The phone pages offline (上报, 走访, 我的上报, 核查任务): registers the service worker that keeps
// their last copies (js/phone-sw.js, served at /report-sw.js so that it may control /report)
// and says when a page shown is such a copy. The copies name their user: js/session.js drops
// them on logout and before another user's page keeps anything (riskgridSession.copiesReady).
(function () {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/report-sw.js", {scope: "/report"})
      .catch(() => { /* offline on the first visit, or not allowed: the page works online */ });
    // The pages and files a phone needs offline (the tabs' data-keep), asked for as soon as
    // the worker runs: this page itself was loaded before it could keep anything.
    const tabs = document.querySelector(".phone-tabs");
    if (tabs && navigator.onLine) {
      const keep = JSON.parse(tabs.dataset.keep || "[]");
      Promise.all([navigator.serviceWorker.ready, riskgridSession.copiesReady])
        .then(([reg]) => reg.active && reg.active.postMessage({keep}));
    }
  }
  // For tests and the page: the copies are kept (the worker answers {kept: n}).
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (e) => {
      if (e.data && "kept" in e.data) document.body.dataset.offlineReady = "1";
    });
  }
  const note = document.getElementById("offline-copy");
  const page = document.getElementById("phone-page");
  if (note && page && page.dataset.rendered && !navigator.onLine) {
    const at = new Date(page.dataset.rendered).toLocaleString();
    note.textContent = note.dataset.words.replace("{at}", at);
    note.hidden = false;
  }
})();
