// Heartbeat of a task page: while the worker types, tell the server every few seconds so the
// lease (a short first lease) is extended; nothing is sent while the page sits idle.
(function () {
  "use strict";
  var form = document.querySelector("form[data-ping-every]");
  if (!form || !window.fetch) { return; }
  var every = Math.max(5, parseInt(form.getAttribute("data-ping-every"), 10) || 60) * 1000;
  var typed = false;
  form.addEventListener("input", function () { typed = true; });
  window.setInterval(function () {
    if (!typed) { return; }
    typed = false;
    var body = new URLSearchParams();
    body.append("csrf_token", form.elements["csrf_token"].value);
    body.append("token", form.elements["token"].value);
    body.append("action", "ping");
    window.fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        var out = document.getElementById("deadline");
        if (j && j.expires_at && out) {
          var d = new Date(j.expires_at * 1000);
          out.textContent = d.getFullYear() + "-" + ("0" + (d.getMonth() + 1)).slice(-2) + "-" +
            ("0" + d.getDate()).slice(-2) + " " + ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
          out.setAttribute("data-live", "1");
        }
      })
      .catch(function () {});
  }, every);
})();
