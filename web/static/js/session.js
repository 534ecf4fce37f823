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

  // The logout form ends the cookie's session; the phone page's kept token is revoked too,
  // so that no login of this user is left in this browser.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches || !form.matches("form.logout")) return;
    var kept = null;
    try { kept = JSON.parse(localStorage.getItem(KEPT) || "null"); } catch (err) { kept = null; }
    localStorage.removeItem(KEPT);
    if (!kept || !kept.token) return;
    e.preventDefault();
    fetch("/api/v1/auth/logout", {method: "POST", credentials: "omit",
                                  headers: {Authorization: "Bearer " + kept.token}})
      .catch(function () { /* offline: the token expires on its own */ })
      .then(function () { form.submit(); });
  });

  return {csrf: csrf, headers: headers, api: api, loginUrl: loginUrl, keptTokenKey: KEPT};
})();
