// The pages' session (web/templates/_csrf.html): the API calls of a page carry its session
// cookie, and those that change something also the CSRF token of <meta name="csrf-token">
// (the API refuses a cookie-authenticated POST without it: another site's form cannot send
// it). When the session has ended (401) a page sends the browser to the login page, which
// brings it back here. Logging out also ends the token the phone page may keep (js/report.js).
window.riskgridSession = (function () {
  var SAFE = ["GET", "HEAD", "OPTIONS"];
  var KEPT = "riskgrid.token";  // the phone page's own token, after it logged in again in place

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // Headers for a request of `method` sent with the session cookie.
  function headers(method, extra) {
    var h = new Headers(extra || {});
    if (SAFE.indexOf((method || "GET").toUpperCase()) < 0 && csrf()) h.set("X-CSRF-Token", csrf());
    return h;
  }

  function loginUrl() {
    var next = location.pathname + location.search;
    var lang = document.documentElement.lang === "en" ? "&lang=en" : "";
    return "/login?next=" + encodeURIComponent(next) + lang;
  }

  // fetch() with the session: same-origin cookie, CSRF header on unsafe methods, and the
  // login page when the session has ended.
  function api(url, options) {
    var o = Object.assign({credentials: "same-origin"}, options || {});
    o.headers = headers(o.method, o.headers);
    return fetch(url, o).then(function (r) {
      if (r.status === 401) location.assign(loginUrl());
      return r;
    });
  }

  // The phone pages' offline copies (js/phone-sw.js's cache) are one user's: their pages and
  // the targets they visit (households: names, phones, addresses). They go when that user logs
  // out, and as soon as this browser shows someone else's page, before that page keeps
  // anything (`copiesReady`): another user of the same phone never opens them offline.
  var COPIES = "riskgrid.phone.v1";
  var OWNER = "riskgrid.phone.owner";  // whose copies the cache holds
  function forgetCopies() {
    try { localStorage.removeItem(OWNER); } catch (err) { /* no storage: nothing kept */ }
    if (!window.caches) return Promise.resolve();
    return caches.delete(COPIES).catch(function () { /* none kept */ });
  }
  function ownCopies() {
    var shown = document.querySelector("nav.site-nav .who[data-username]");
    if (!shown) return Promise.resolve();  // the login page: nobody's yet
    var user = shown.getAttribute("data-username"), owner = null;
    try { owner = localStorage.getItem(OWNER); } catch (err) { owner = null; }
    if (owner === user) return Promise.resolve();
    return forgetCopies().then(function () {
      try { localStorage.setItem(OWNER, user); } catch (err) { /* dropped again next page */ }
    });
  }
  var copiesReady = ownCopies();

  // The logout form ends the cookie's session; the phone page's kept token is revoked too,
  // so that no login of this user is left in this browser, and the offline copies go.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches || !form.matches("form.logout")) return;
    e.preventDefault();
    var kept = null;
    try { kept = JSON.parse(localStorage.getItem(KEPT) || "null"); } catch (err) { kept = null; }
    localStorage.removeItem(KEPT);
    var revoked = !kept || !kept.token ? Promise.resolve() :
      fetch("/api/v1/auth/logout", {method: "POST", credentials: "omit",
                                    headers: {Authorization: "Bearer " + kept.token}})
        .catch(function () { /* offline: the token expires on its own */ });
    // A second at most for the copies: logging out never waits on a stuck storage.
    var second = new Promise(function (resolve) { setTimeout(resolve, 1000); });
    Promise.all([revoked, Promise.race([forgetCopies(), second])])
      .then(function () { form.submit(); });
  });

  return {csrf: csrf, headers: headers, api: api, loginUrl: loginUrl, keptTokenKey: KEPT,
          copiesReady: copiesReady};
})();
