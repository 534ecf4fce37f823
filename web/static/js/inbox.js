// The department inbox (web/templates/inbox.html): 接收, 回退 with a reason, 办结 with a level
// and an `after` photo, each a move through the API with the session (js/session.js adds the
// CSRF token). The server decides: what it refuses is shown as it says it, in the task. After
// a move the page is loaded again, so the list, its order and the counts are the server's.
(function () {
  var root = document.getElementById("inbox");
  if (!root) return;
  var words = JSON.parse(document.getElementById("inbox-words").textContent);
  var session = window.riskgridSession;
  var FLASH = "riskgrid.inbox.flash";

  function say(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) { return k in values ? values[k] : m; });
  }

  function message(task, text) {
    var p = task.querySelector(".task-message");
    p.textContent = text;
    p.hidden = !text;
  }

  function busy(task, on) {
    task.querySelectorAll("button").forEach(function (b) { b.disabled = on; });
  }

  // The `detail` of a refusal (422 bodies from validation carry a list).
  function detail(response) {
    return response.json().then(function (body) {
      var d = body && body.detail;
      if (Array.isArray(d)) return d.map(function (e) { return e.msg; }).join("; ");
      return d || response.statusText;
    }, function () { return response.status + " " + response.statusText; });
  }

  function refused(task, response) {
    return detail(response).then(function (d) {
      message(task, say(words.failed, {detail: d}));
      return false;
    });
  }

  function move(task, body) {
    message(task, words.sending);
    return session.api("/api/v1/reports/" + task.dataset.id + "/transitions", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)
    }).then(function (r) {
      if (!r.ok) return refused(task, r);
      sessionStorage.setItem(FLASH, say(words["done_" + body.to], {id: task.dataset.id.slice(0, 8)}));
      location.reload();
      return true;
    });
  }

  // The photo first: the server refuses a resolve without an `after` photo (but disputes).
  function upload(task, file) {
    if (!file) return Promise.resolve(true);
    message(task, words.uploading);
    var form = new FormData();
    form.append("kind", "after");
    form.append("file", file);
    return session.api("/api/v1/reports/" + task.dataset.id + "/photos", {
      method: "POST", body: form
    }).then(function (r) { return r.ok ? true : refused(task, r); });
  }

  function run(task, work) {
    busy(task, true);
    work().catch(function () { message(task, words.offline); })
      .then(function () { busy(task, false); });
  }

  root.addEventListener("click", function (e) {
    var button = e.target.closest("button.take");
    if (!button) return;
    var task = button.closest(".task");
    run(task, function () { return move(task, {to: "in_progress"}); });
  });

  root.addEventListener("submit", function (e) {
    var form = e.target;
    var task = form.closest(".task");
    if (!task) return;
    e.preventDefault();
    if (form.classList.contains("return-form")) {
      var reason = form.elements.reason.value.trim();
      run(task, function () { return move(task, {to: "returned", reason: reason}); });
    } else if (form.classList.contains("resolve-form")) {
      var body = {to: "resolved", level: form.elements.level.value};
      var note = form.elements.note.value.trim();
      if (note) body.note = note;
      run(task, function () {
        return upload(task, form.elements.photo.files[0]).then(function (ok) {
          return ok ? move(task, body) : false;
        });
      });
    }
  });

  var flash = sessionStorage.getItem(FLASH);
  if (flash) {
    sessionStorage.removeItem(FLASH);
    var p = document.getElementById("inbox-flash");
    p.textContent = flash;
    p.hidden = false;
  }
})();
