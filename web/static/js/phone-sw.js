// The phone pages' service worker (served at /report-sw.js, scope /report): a page reloaded
// with no network is its last copy, not the browser's error page. Pages, the taxonomy
// (/api/v1/themes) and a campaign's targets as the visit page asks for them
// (/api/v1/campaigns/{code}/targets) are asked of the network first and kept when answered
// 200; the versioned static files (their address holds their hash) are answered from the copy
// first.
const CACHE = "riskgrid.phone.v1";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

const TARGETS = /^\/api\/v1\/campaigns\/[^/]+\/targets$/;

function keeps(request, url) {
  if (request.method !== "GET" || url.origin !== self.location.origin) return null;
  if (url.pathname.startsWith("/static/")) return "copy-first";
  if (request.mode === "navigate" || url.pathname === "/api/v1/themes") return "network-first";
  if (TARGETS.test(url.pathname)) return "network-first";
  return null;
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const resp = await fetch(request);
    // A page that ended at the login page (the session ended) is not a copy to keep.
    if (resp.ok && !resp.redirected) await cache.put(request, resp.clone());
    return resp;
  } catch (e) {
    const kept = await cache.match(request);
    if (kept) return kept;
    throw e;
  }
}

async function copyFirst(request) {
  const cache = await caches.open(CACHE);
  const kept = await cache.match(request);
  if (kept) return kept;
  const resp = await fetch(request);
  if (resp.ok) await cache.put(request, resp.clone());
  return resp;
}

// The page asks for its pages and files to be kept (js/phone-offline.js); one that fails is
// kept at its next visit instead. Tells the page when done (tests wait for it).
async function keepAll(urls) {
  const cache = await caches.open(CACHE);
  await Promise.all(urls.map(async (url) => {
    try {
      const resp = await fetch(url, {credentials: "same-origin"});
      if (resp.ok && !resp.redirected) await cache.put(url, resp);
    } catch (e) { /* offline meanwhile */ }
  }));
}
self.addEventListener("message", (event) => {
  const urls = (event.data && event.data.keep) || [];
  const sameSite = urls.filter((u) => new URL(u, self.location.origin).origin === self.location.origin);
  event.waitUntil(keepAll(sameSite).then(() => event.source && event.source.postMessage({kept: sameSite.length})));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const how = keeps(event.request, url);
  if (how === "copy-first") event.respondWith(copyFirst(event.request));
  else if (how === "network-first") event.respondWith(networkFirst(event.request));
});
