// Photos waiting on the phone (the report and visit pages, 核查任务): kept as Blobs in IndexedDB, which
// survives a reload and a closed browser as localStorage does but holds megabytes of binary
// (localStorage takes ~5 MB of strings: one phone photo as base64). One record a photo:
// {id, owner, report_id, kind, blob, name, check_id?}, or for a visit's own photo {id, owner,
// visit_id, blob, name}. A report's (a visit's) photo goes out once its report (visit) has been
// stored (its 201/200); a check photo goes out just before its check's move.
window.riskgridPhotos = (function () {
  const DB = "riskgrid.phone";
  const STORE = "photos";
  let opened = null;

  function open() {
    if (opened) return opened;
    opened = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => {
        const store = req.result.createObjectStore(STORE, {keyPath: "id"});
        store.createIndex("owner", "owner");
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => { opened = null; reject(req.error); };
    });
    return opened;
  }
  // Run `work(store)` in one transaction; resolves with what the last request answered.
  async function run(mode, work) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      let answer;
      const req = work(tx.objectStore(STORE));
      if (req) req.onsuccess = () => { answer = req.result; };
      tx.oncomplete = () => resolve(answer);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  // Keep a photo; resolves with its record.
  async function add(owner, reportId, kind, file, checkId) {
    const rec = {
      id: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random(),
      owner, report_id: reportId, kind, blob: file, name: file.name || "photo.jpg",
      check_id: checkId || null, added_at: new Date().toISOString(),
    };
    await run("readwrite", (s) => s.put(rec));
    return rec;
  }
  // Keep a photo of a visit (走访 evidence, apart from its hazards'); resolves with its record.
  async function addForVisit(owner, visitId, file) {
    const rec = {
      id: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random(),
      owner, visit_id: visitId, blob: file, name: file.name || "photo.jpg",
      added_at: new Date().toISOString(),
    };
    await run("readwrite", (s) => s.put(rec));
    return rec;
  }
  // The photos `owner` keeps, oldest first.
  async function list(owner) {
    const all = await run("readonly", (s) => s.index("owner").getAll(owner));
    return (all || []).sort((a, b) => a.added_at.localeCompare(b.added_at));
  }
  function remove(id) { return run("readwrite", (s) => s.delete(id)); }

  // Send one photo with `api` (fetch-like, as its page's user). Resolves "done" when the report
  // (visit) holds it (201; 200: stored before, a resend after a lost answer), "refused" when it
  // never will (409 the report is closed or the visit has its photos, 404, 413, 415, 422), and
  // removes it then; rejects on a network failure or a 5xx/401/429, the photo kept to try again.
  async function send(rec, api) {
    const form = new FormData();
    if (!rec.visit_id) form.append("kind", rec.kind);
    form.append("file", rec.blob, rec.name);
    const url = rec.visit_id
      ? `/api/v1/visits/${encodeURIComponent(rec.visit_id)}/photos`
      : `/api/v1/reports/${encodeURIComponent(rec.report_id)}/photos`;
    const resp = await api(url, {method: "POST", body: form});
    if (resp.status === 200 || resp.status === 201) { await remove(rec.id); return "done"; }
    if (resp.status === 409 && rec.visit_id) { await remove(rec.id); return "refused"; }
    if (resp.status === 409) { await remove(rec.id); return "done"; }
    if ([404, 413, 415, 422].includes(resp.status)) { await remove(rec.id); return "refused"; }
    throw new Error("HTTP " + resp.status);
  }

  return {add, addForVisit, list, remove, send};
})();
