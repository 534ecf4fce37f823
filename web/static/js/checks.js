// 核查任务 on the phone (web/templates/checks.html): verify a resolved report, or send it back
// as rework (返工) with a reason and a `check` photo. A check waits on the phone, in
// localStorage with its photo in IndexedDB (js/photo-queue.js), until it has been sent: the
// photo first (a verified report is closed and takes no more photos), then the move.
(function () {
  const $ = (id) => document.getElementById(id);
  const me = $("phone-page").dataset.username;
  const W = JSON.parse($("check-words").textContent);
  const QUEUE = "riskgrid.checks." + me;
  let flushing = false;

  const LoginNeeded = riskgridOutbox.LoginNeeded;

  function queue() { try { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); } catch (e) { return []; } }
  function saveQueue(items) { localStorage.setItem(QUEUE, JSON.stringify(items)); showQueue(); }
  function card(reportId) { return document.querySelector(`li.check[data-id="${CSS.escape(reportId)}"]`); }
  function say(reportId, kind, text) {
    const c = card(reportId);
    if (!c) return;
    const out = c.querySelector(".check-result");
    out.className = "check-result " + kind;
    out.textContent = text;
    c.dataset.state = kind;
  }
  function showQueue() {
    const items = queue();
    $("check-outbox").textContent = items.length ? W.checks_waiting.replace("{n}", String(items.length)) : "";
    $("check-outbox").dataset.count = String(items.length);
    for (const item of items) {
      say(item.report_id, "warn", W.queued);
      const c = card(item.report_id);
      if (c) c.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    }
  }
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  }

  // The report page's kept token while it is this user's, else the session cookie (with the
  // CSRF token); a 401 means the login has ended: LoginNeeded, the queue kept.
  const api = riskgridOutbox.api(me);

  async function move(item) {
    const body = {to: item.to};
    if (item.reason) body.reason = item.reason;
    if (item.note) body.note = item.note;
    return api(`/api/v1/reports/${encodeURIComponent(item.report_id)}/transitions`, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
  }

  // Send one check: its photo, then its move. Resolves when the check is settled (done or
  // refused for good); rejects on a network failure or an answer worth trying again (5xx, 429).
  async function sendCheck(item) {
    for (const rec of await riskgridPhotos.list(me)) {
      if (rec.check_id === item.id) await riskgridPhotos.send(rec, api);
    }
    const resp = await move(item);
    if (resp.status >= 500 || resp.status === 429) throw new Error("HTTP " + resp.status);
    if (resp.ok) {
      say(item.report_id, "ok", item.to === "verified" ? W.sent_verified : W.sent_rework);
      return;  // its buttons stay disabled: the report has left 核查
    }
    // 409 (moved meanwhile, e.g. a dispatcher verified it), 403, 404, 422: not to be resent.
    let detail = "HTTP " + resp.status;
    try { detail = (await resp.json()).detail || detail; } catch (e) { /* not JSON */ }
    say(item.report_id, "err", W.refused.replace("{detail}", detail));
  }

  async function flush() {
    if (flushing || !navigator.onLine) return;
    flushing = true;
    try {
      for (const item of queue()) {
        await sendCheck(item);
        saveQueue(queue().filter((x) => x.id !== item.id));
      }
    } catch (e) {
      if (e instanceof LoginNeeded) $("check-outbox").textContent = W.login_again;
      /* offline, or the server is busy: the rest waits for the next `online` */
    } finally { flushing = false; }
  }

  async function check(c, to) {
    const reportId = c.dataset.id;
    const reason = c.querySelector(".check-reason").value.trim();
    const note = c.querySelector(".check-note").value.trim();
    const file = (c.querySelector(".check-photo").files || [])[0];
    if (to === "in_progress" && !reason) { say(reportId, "err", W.need_reason); return; }
    if (to === "in_progress" && !file) { say(reportId, "err", W.need_photo); return; }
    const item = {id: uuid(), report_id: reportId, to, reason: to === "in_progress" ? reason : null, note: note || null};
    try {
      if (file) await riskgridPhotos.add(me, reportId, "check", file, item.id);
    } catch (e) { say(reportId, "err", W.refused.replace("{detail}", String(e))); return; }
    saveQueue(queue().concat([item]));
    await flush();
  }

  document.querySelectorAll("li.check").forEach((c) => {
    c.querySelector(".verify").addEventListener("click", () => check(c, "verified"));
    c.querySelector(".rework").addEventListener("click", () => check(c, "in_progress"));
  });
  window.addEventListener("online", flush);
  showQueue();
  flush().then(() => { document.body.dataset.ready = "1"; });
})();
