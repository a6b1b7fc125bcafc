// Blastwall's web interface: keyboard shortcuts and the CSRF header of htmx requests.
// No inline script anywhere (the pages' Content-Security-Policy forbids it).
(function () {
  "use strict";
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  function help() {
    var dialog = document.getElementById("help");
    if (dialog && !dialog.open) { dialog.showModal(); }
  }
  function entry(kind) {
    var select = document.getElementById("entry-kind");
    var body = document.getElementById("entry-body");
    if (!body) { return false; }
    if (select && kind) { select.value = kind; }
    body.scrollIntoView({block: "center"});
    body.focus();
    return true;
  }
  function go(anchor) {
    var target = document.getElementById(anchor);
    if (!target) { return false; }
    target.scrollIntoView({block: "start"});
    var focusable = target.querySelector("h2, [tabindex]") || target;
    if (!focusable.hasAttribute("tabindex")) { focusable.setAttribute("tabindex", "-1"); }
    focusable.focus();
    return true;
  }
  var pending = null;
  var routes = {i: "/ui/incidents", s: "/ui/systems", a: "/ui/signals", h: "/ui/hunts"};
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var key = event.key;
    if (pending === "g") {
      pending = null;
      if (routes[key]) { event.preventDefault(); window.location.assign(routes[key]); }
      return;
    }
    var done = false;
    if (key === "?") { help(); done = true; }
    else if (key === "g") { pending = "g"; done = true; }
    else if (key === "n") { done = entry("note"); }
    else if (key === "f") { done = entry("fact"); }
    else if (key === "h") { done = entry("hypothesis"); }
    else if (key === "c") { done = go("containment"); }
    else if (key === "t") { done = go("timeline"); }
    if (done) { event.preventDefault(); }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-help]");
    if (button) { help(); }
  });
})();
