// The phone pages offline (上报, 我的上报, 核查任务): registers the service worker that keeps
// their last copies (js/phone-sw.js, served at /report-sw.js so that it may control /report),
// says when a page shown is such a copy, and forgets the copies on logout (they name the user).
(function () {
  const CACHE = "riskgrid.phone.v1";  // the service worker's cache (js/phone-sw.js)
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/report-sw.js", {scope: "/report"})
      .catch(() => { /* offline on the first visit, or not allowed: the page works online */ });
    // The pages and files a phone needs offline (the tabs' data-keep), asked for as soon as
    // the worker runs: this page itself was loaded before it could keep anything.
    const tabs = document.querySelector(".phone-tabs");
    if (tabs && navigator.onLine) {
      const keep = JSON.parse(tabs.dataset.keep || "[]");
      navigator.serviceWorker.ready.then((reg) => reg.active && reg.active.postMessage({keep}));
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
  document.addEventListener("submit", (e) => {
    if (e.target.matches && e.target.matches("form.logout") && window.caches) caches.delete(CACHE);
  });
})();
