// Spool console: the little script the server-rendered pages need.
(function () {
  "use strict";

  // flash shows a message in the page's alert region (read by screen
  // readers), e.g. the detail of an application/problem+json answer.
  function flash(text, kind) {
    var el = document.getElementById("flash");
    if (!el) return;
    el.textContent = text;
    el.className = kind || "bad";
    clearTimeout(flash.timer);
    if (kind === "ok") flash.timer = setTimeout(function () { el.textContent = ""; el.className = ""; }, 8000);
  }
  window.spoolFlash = flash;

  // An action refused by the server answers problem+json: show its detail.
  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr, msg = xhr.status + " " + xhr.statusText;
    try {
      var p = JSON.parse(xhr.responseText);
      if (p.detail) msg = p.detail;
    } catch (_) {}
    flash(msg, "bad");
  });
  // An action (not a GET: polls and filters are GETs) that succeeds clears
  // the alert of an earlier refusal, so a fixed and resubmitted form does
  // not keep showing the old error.
  document.addEventListener("htmx:afterRequest", function (e) {
    var el = document.getElementById("flash"), cfg = e.detail.requestConfig;
    if (el && e.detail.successful && el.className === "bad" && cfg && cfg.verb && cfg.verb.toLowerCase() !== "get") {
      el.textContent = "";
      el.className = "";
    }
  });
  document.addEventListener("htmx:sendError", function () {
    flash("The console did not answer: is spool still running?", "bad");
  });

  // A form with data-confirm-text="NAME" submits only once its
  // [name=confirm] field holds NAME (typed confirmation of a deletion).
  document.addEventListener("htmx:confirm", function (e) {
    var form = e.target.closest("form[data-confirm-text]");
    if (!form) return;
    var want = form.getAttribute("data-confirm-text");
    var got = form.querySelector("[name=confirm]");
    if (!got || got.value !== want) {
      e.preventDefault();
      flash("Type " + want + " to confirm.", "bad");
    }
  });

  // Copy buttons: <button data-copy="#id"> copies that element's text.
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-copy]");
    if (!b) return;
    var el = document.querySelector(b.getAttribute("data-copy"));
    if (el && navigator.clipboard) {
      navigator.clipboard.writeText(el.textContent).then(function () { flash("Copied.", "ok"); });
    }
  });
})();
