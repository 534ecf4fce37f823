// A department's active users as the options of a handler list, after its first (empty) one:
// a dispatch names the handler by username. Used by the console and the report page.
window.riskgridFillHandlers = function (department, list) {
  list.length = 1;
  if (!department) return Promise.resolve();
  return window.riskgridSession.api("/api/v1/departments/" + encodeURIComponent(department) + "/users")
    .then(function (r) { return r.ok ? r.json() : []; })
    .then(function (users) {
      users.forEach(function (u) {
        var o = document.createElement("option");
        o.value = u.username;
        o.textContent = (u.name || u.username) + " (" + u.username + ")";
        list.appendChild(o);
      });
    });
};
