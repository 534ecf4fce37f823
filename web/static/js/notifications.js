// The notifications page (web/templates/notifications.html): "mark read" for one row or all,
// through the API with the session (js/session.js adds the CSRF header); then the page is
// shown again, so that the list and the badge in the navigation agree.
(function () {
  var error = document.getElementById("notifications-error");

  function markRead(body) {
    window.riskgridSession.api("/api/v1/notifications/read", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)
    }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      location.reload();
    }).catch(function () { error.hidden = false; });
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("button.mark-read");
    if (!button) return;
    if (button.id === "mark-all-read") markRead({all: true});
    else markRead({ids: [Number(button.dataset.id)]});
  });
})();
