// 走访 on the phone (web/templates/visit.html): a campaign's checklist answered on site, the
// target visited, the leaflets and stickers handed out and the hazards found, each hazard a
// report with its photos. The visit is kept in the phone's outbox (js/phone-offline.js) with
// its client id before anything is sent, and goes out when the phone is online: resending
// after a lost answer stores nothing twice (the API answers the stored visit). A visit the API
// refuses stays listed with the API's words until the worker removes it. The hazards' photos
// wait in IndexedDB (js/photo-queue.js) under each hazard's report id, sent once the visit is.
(function () {
  const $ = (id) => document.getElementById(id);
  const page = $("phone-page").dataset;
  const W = JSON.parse($("visit-words").textContent);
  const CAMPAIGNS = JSON.parse($("visit-campaigns").textContent);
  const lang = page.lang === "en" ? "en" : "zh";
  const me = page.username;
  const CHOICE = "riskgrid.visit.campaign." + me;  // the campaign chosen last
  const MAX_ANSWER = 1e9, MAX_COUNT = 1e6;  // geo.campaigns.checklist, api VisitCreate
  const box = riskgridOutbox;
  const api = box.api(me);
  const form = $("visit-form");
  let themes = [];
  let flushing = false;
  let again = null;  // a flush asked for while one runs: run once more after it ({just})
  let hazards = 0;  // hazard fieldsets made, for their ids

  class Refusal extends Error {}

  function fill(text, values) { return text.replace(/\{(\w+)\}/g, (_, k) => (values && k in values ? String(values[k]) : "")); }
  function escape(s) { const d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }
  function say(key, values) { return escape(fill(W[key], values)); }
  function show(kind, html) { const r = $("result"); r.className = kind; r.innerHTML = html; }
  function name(item) { return item[lang] || item.zh; }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, (c) => {
      const r = Math.random() * 16 | 0; return (c === "x" ? r : (r & 0x3 | 0x8)).toString(16);
    });
  }
  function campaign(code) { return CAMPAIGNS.find((c) => c.code === code) || null; }
  function current() { return form ? campaign($("campaign").value) : null; }
  function when(iso) { return new Date(iso).toLocaleString(lang === "en" ? "en-GB" : "zh-CN", {month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"}); }

  // --- What waits, what was refused -----------------------------------------------------
  async function showPhotos() {
    let n = 0;
    try { n = (await riskgridPhotos.list(me)).filter((p) => !p.check_id).length; } catch (e) { /* no IndexedDB */ }
    $("photo-outbox").textContent = n ? fill(W.photos_waiting, {n}) : "";
    $("photo-outbox").dataset.count = String(n);
  }
  function showQueue() {
    const n = box.waiting("visit", me).length;
    $("visit-outbox").textContent = n ? fill(W.outbox, {n}) : "";
    $("visit-outbox").dataset.count = String(n);
    showRefused();
  }
  function showRefused() {
    const list = box.refused("visit", me);
    const section = $("visit-refused");
    section.hidden = !list.length;
    section.dataset.count = String(list.length);
    section.querySelector("h2").textContent = fill(W.refused_heading, {n: list.length});
    section.querySelector("ul").replaceChildren(...list.map((item) => {
      const li = document.createElement("li");
      li.className = "card refused";
      li.dataset.id = item.id;
      const c = campaign(item.campaign);
      const what = document.createElement("div");
      what.className = "muted";
      what.textContent = fill(W.refused_what, {
        campaign: c ? c.name : item.campaign, at: when(item.visited_at),
        target: item.label ? " · " + item.label : "",
      });
      const why = document.createElement("div");
      why.className = "detail";
      why.textContent = fill(W.refused_detail, item.refused);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "secondary dismiss";
      remove.textContent = W.dismiss;
      remove.addEventListener("click", () => dismiss(item));
      li.append(what, why, remove);
      return li;
    }));
  }
  // A refused visit removed by the worker: its photos and its hazards' go with it.
  async function dismiss(item) {
    const ids = new Set((item.reports || []).map((r) => r.id));
    try {
      for (const rec of await riskgridPhotos.list(me)) {
        if (ids.has(rec.report_id) || rec.visit_id === item.id) await riskgridPhotos.remove(rec.id);
      }
    } catch (e) { /* no IndexedDB: nothing kept */ }
    box.drop("visit", me, item.id);
    await showPhotos();
  }

  // --- The form -------------------------------------------------------------------------
  function showChecklist() {
    const code = $("campaign").value;
    for (const f of document.querySelectorAll("fieldset.checklist")) f.hidden = f.dataset.campaign !== code;
  }

  // The chosen campaign's targets still to visit (a worker's own list), less those of the
  // visits waiting on the phone. Through the service worker, which keeps the last answer.
  async function loadTargets() {
    const c = current();
    const select = $("target"), note = $("target-note");
    const none = new Option(W.no_target, "");
    select.replaceChildren(none);
    note.hidden = true;
    if (!c || page.targets !== "mine" || !c.targets) { markTargets(c, 0); return; }
    await riskgridSession.copiesReady;  // another user's copies gone before this list is kept
    let listed;
    try {
      const resp = await api(`/api/v1/campaigns/${encodeURIComponent(c.code)}/targets?todo=mine&limit=500`);
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      listed = await resp.json();
    } catch (e) {
      if (e instanceof box.LoginNeeded) askLogin("login_again");
      note.textContent = W.targets_offline; note.hidden = false;
      markTargets(c, 0);
      return;
    }
    if (current() !== c) return;  // another campaign was chosen meanwhile
    const queued = new Set(box.items("visit", me).filter((v) => v.campaign === c.code).map((v) => v.target));
    const open = (listed.targets || []).filter((t) => !queued.has(t.id));
    for (const t of open) {
      const label = [t.ref, t.head_name || t.name, t.address].filter(Boolean).join(" · ");
      select.add(new Option(label, t.id));
    }
    if (!open.length) { note.textContent = W.targets_none; note.hidden = false; }
    markTargets(c, open.length);
  }
  function markTargets(c, n) {
    const select = $("target");
    select.dataset.campaign = c ? c.code : "";
    select.dataset.count = String(n);
    // Whether the list came through the service worker (and is kept for offline use).
    select.dataset.via = navigator.serviceWorker && navigator.serviceWorker.controller ? "sw" : "network";
  }

  function fillCategories(fs, preferred) {
    const t = themes.find((x) => x.code === fs.querySelector(".hazard-theme").value);
    const select = fs.querySelector(".hazard-category");
    select.replaceChildren(...(t ? t.categories : []).map((c) => new Option(name(c), c.code)));
    if (preferred && t && t.categories.some((x) => x.code === preferred)) select.value = preferred;
  }
  function numberHazards() {
    const all = $("hazards").querySelectorAll("fieldset.hazard");
    all.forEach((fs, i) => { fs.querySelector("legend").textContent = fill(W.hazard, {n: i + 1}); });
    $("hazards").dataset.count = String(all.length);
  }
  function addHazard() {
    const fs = $("hazard-template").content.firstElementChild.cloneNode(true);
    const n = ++hazards;
    for (const [cls, field] of [["theme", "hazard-theme"], ["category", "hazard-category"],
      ["description", "hazard-description"], ["photo", "hazard-photo"]]) {
      const id = `hazard-${n}-${cls}`;
      fs.querySelector("." + field).id = id;
      fs.querySelector(`.${cls}-label`).htmlFor = id;
    }
    const c = current();
    const theme = fs.querySelector(".hazard-theme");
    theme.replaceChildren(...themes.map((t) => new Option(name(t), t.code)));
    if (c && themes.some((t) => t.code === c.theme)) theme.value = c.theme;
    fillCategories(fs, c && c.categories[0]);
    theme.addEventListener("change", () => fillCategories(fs, null));
    fs.files = [];
    const input = fs.querySelector(".hazard-photo");
    input.addEventListener("change", () => {
      fs.files = fs.files.concat(Array.from(input.files || []));
      showPreviews(fs);
    });
    fs.querySelector(".hazard-remove").addEventListener("click", () => {
      fs.files = []; showPreviews(fs); fs.remove(); numberHazards();
    });
    $("hazards").appendChild(fs);
    numberHazards();
  }
  function showPreviews(fs) {
    const box = fs.querySelector(".previews");
    for (const img of box.querySelectorAll("img")) URL.revokeObjectURL(img.src);
    box.replaceChildren(...fs.files.map((file) => {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(file);
      img.alt = file.name;
      return img;
    }));
    box.dataset.count = String(fs.files.length);
  }

  // The answers of the chosen campaign's checklist; Refusal naming the item when one is off.
  function answers(c) {
    const out = {};
    const fs = document.querySelector(`fieldset.checklist[data-campaign="${CSS.escape(c.code)}"]`);
    for (const item of fs.querySelectorAll(".item")) {
      const code = item.dataset.code, label = item.dataset.label;
      let value = null;
      if (item.dataset.answer === "yes_no") {
        const picked = item.querySelector("input[type=radio]:checked");
        if (picked) value = picked.value === "yes";
      } else {
        const raw = item.querySelector(".answer").value.trim();
        if (raw !== "" && item.dataset.answer === "number") {
          value = Number(raw);
          if (!Number.isFinite(value) || value < 0 || value > MAX_ANSWER) throw new Refusal(fill(W.bad_number, {label}));
          if (item.dataset.whole && !Number.isInteger(value)) throw new Refusal(fill(W.whole_number, {label}));
        } else if (raw !== "") value = raw;
      }
      if (value === null) {
        if (item.dataset.required) throw new Refusal(fill(W.need_answer, {label}));
        continue;
      }
      out[code] = value;
    }
    return out;
  }
  function count(id) {
    const raw = $(id).value.trim();
    const n = raw === "" ? 0 : Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > MAX_COUNT) {
      throw new Refusal(fill(W.bad_count, {label: document.querySelector(`label[for="${id}"]`).textContent}));
    }
    return n;
  }
  // The hazards found, each a report body at the visit's point, with its photos.
  function found(at) {
    return Array.from($("hazards").querySelectorAll("fieldset.hazard")).map((fs, i) => {
      const category = fs.querySelector(".hazard-category").value;
      if (!category) throw new Refusal(fill(W.need_category, {n: i + 1}));
      const report = {id: uuid(), ...at, theme: fs.querySelector(".hazard-theme").value, category};
      const description = fs.querySelector(".hazard-description").value.trim();
      if (description) report.description = description;
      return {report, files: fs.files || []};
    });
  }
  function position() {
    const at = {lon: parseFloat($("lon").value), lat: parseFloat($("lat").value)};
    if (!Number.isFinite(at.lon) || !Number.isFinite(at.lat)) throw new Refusal(W.no_position);
    const accuracy = parseFloat($("accuracy").value);
    if (accuracy > 0) at.accuracy_m = accuracy;
    return at;
  }
  function reset() {
    const fs = document.querySelector(`fieldset.checklist[data-campaign="${CSS.escape($("campaign").value)}"]`);
    for (const input of fs.querySelectorAll("input")) {
      if (input.type === "radio") input.checked = false; else input.value = "";
    }
    for (const id of ["lon", "lat", "accuracy"]) $(id).value = "";  // the next visit is elsewhere
    $("leaflets").value = "0";
    $("stickers").value = "0";
    $("target").value = "";
    $("visit-photos").files = [];
    showPreviews($("visit-photos"));
    for (const h of $("hazards").querySelectorAll("fieldset.hazard")) { h.files = []; showPreviews(h); }
    $("hazards").replaceChildren();
    numberHazards();
  }

  async function send() {
    const c = current();
    let item, hazardsFound;
    try {
      if (!c) throw new Refusal(W.need_campaign);
      const given = answers(c);
      const at = position();
      item = {id: uuid(), campaign: c.code, ...at, visited_at: new Date().toISOString(), answers: given};
      item.leaflets = count("leaflets");
      item.stickers = count("stickers");
      hazardsFound = found(at);
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      show("err", escape(e.message));
      return;
    }
    const target = $("target");
    if (target.value) {
      item.target = target.value;
      item.label = target.selectedOptions[0].textContent;  // shown while kept, not sent
    }
    item.reports = hazardsFound.map((h) => h.report);
    // The photos are kept before the visit: a dropped connection loses neither.
    const kept = [];
    try {
      for (const file of $("visit-photos").files) kept.push(await riskgridPhotos.addForVisit(me, item.id, file));
      for (const h of hazardsFound) {
        for (const file of h.files) kept.push(await riskgridPhotos.add(me, h.report.id, "site", file));
      }
    } catch (e) {
      for (const rec of kept) await riskgridPhotos.remove(rec.id).catch(() => {});
      show("err", say("photo_not_kept"));
      return;
    }
    box.add("visit", me, item);
    if (item.target) target.selectedOptions[0].remove();  // visited: not offered again
    reset();
    await showPhotos();
    if (!navigator.onLine) { show("warn", say("offline")); return; }
    show("warn", say("kept"));
    await flush(item.id);
  }

  function describe(v) {
    const lines = [v.grid ? say("sent_one", {code: v.grid.code, name: v.grid.name}) : say("sent_unassigned")];
    if (v.target) lines.push(say("sent_target", {ref: v.target.ref}));
    if (v.reports.length) lines.push(say("sent_hazards", {n: v.reports.length}));
    return lines;
  }

  // --- Sending --------------------------------------------------------------------------
  function askLogin(key) {
    const p = $("login-needed");
    p.querySelector("span").textContent = fill(W[key], {user: me});
    $("login-link").href = riskgridSession.loginUrl();
    p.hidden = false;
  }

  // Send what waits (the visits, and the reports of the report page), then the photos of what
  // is stored. `just`: the visit just recorded, described when it goes out.
  async function flush(just) {
    if (!navigator.onLine) return;
    if (flushing) { again = {just: just || (again && again.just)}; return; }
    flushing = true;
    try {
      if (!(await box.pending(me))) return;
      if (!(await box.sessionIsMine(me, api))) { askLogin("not_mine"); return; }
      $("login-needed").hidden = true;
      const out = await box.flush(me, api);
      const mine = out.visits.find((v) => v.id === just);
      const lines = mine ? describe(mine) : [];
      const others = out.visits.length - (mine ? 1 : 0);
      if (others) lines.push(say("visits_sent", {n: others}));
      if (out.batch) lines.push(say("flushed", {n: out.reports}) + (out.reports_refused ? say("refused", {n: out.reports_refused}) : ""));
      if (out.visits_refused) lines.push(say("refused_now", {n: out.visits_refused}));
      if (out.photos) lines.push(say("photos_sent", {n: out.photos}));
      if (just && box.waiting("visit", me).some((v) => v.id === just)) lines.push(say("dropped"));
      const kind = out.visits_refused ? "err" : (out.interrupted ? "warn" : "ok");
      if (lines.length) show(kind, lines.join("<br>"));
      if (out.visits.some((v) => v.target)) await loadTargets();
    } catch (e) {
      if (e instanceof box.LoginNeeded) askLogin("login_again");
      else if (just) show("warn", say("dropped"));
    } finally {
      flushing = false;
      showQueue();
      await showPhotos();
    }
    if (again) { const next = again; again = null; await flush(next.just); }
  }

  async function loadThemes() {
    try {
      const resp = await api("/api/v1/themes");
      if (resp.ok) {
        const body = await resp.json();
        themes = body.themes;
        box.learnBatch(body.max_batch);
      }
    } catch (e) {
      if (e instanceof box.LoginNeeded) askLogin("login_again");
    }
    $("add-hazard").disabled = !themes.length;
  }

  // --- Start ----------------------------------------------------------------------------
  window.addEventListener("online", () => flush(null));
  window.addEventListener(box.CHANGED, showQueue);
  showQueue();
  showPhotos();
  if (form) {
    const chosen = localStorage.getItem(CHOICE);
    if (chosen && campaign(chosen)) $("campaign").value = chosen;
    showChecklist();
    $("campaign").addEventListener("change", () => {
      localStorage.setItem(CHOICE, $("campaign").value);
      showChecklist();
      loadTargets();
    });
    box.locateButton(show, say);
    $("add-hazard").addEventListener("click", addHazard);
    const own = $("visit-photos");
    own.files = [];
    $("visit-photo").addEventListener("change", () => {
      own.files = own.files.concat(Array.from($("visit-photo").files || []));
      showPreviews(own);
    });
    $("send").addEventListener("click", send);
    // On the first visit the page was loaded before the service worker ran: the targets are
    // asked for again through it once it controls the page, so that it keeps them.
    if ("serviceWorker" in navigator && !navigator.serviceWorker.controller) {
      navigator.serviceWorker.addEventListener("controllerchange", loadTargets, {once: true});
    }
  }
  Promise.all([loadThemes(), form ? loadTargets() : null])
    .then(() => flush(null))
    .finally(() => { document.body.dataset.ready = "1"; });
})();
