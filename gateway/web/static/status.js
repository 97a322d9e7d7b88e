// Keeps a status page current: every few seconds it fetches the page's JSON (main[data-api])
// and updates, in place, the elements bound to it:
//   data-bind="a.b"        text of a value       data-bind-json="a"  a value as JSON text
//   data-list="a"          rows (or cards) of a list, matched by data-key, new ones from its <template>
//   data-field / data-spark / data-ok / data-width   an item's text, sparkline points,
//                          health dot, bar width in percent
"use strict";
(function () {
  var main = document.getElementById("page");
  if (!main || !main.dataset.api) return;
  var api = main.dataset.api;
  var every = 5000;
  var updates = 0;

  function get(obj, path) {
    if (path === ".") return obj;
    return path.split(".").reduce(function (o, k) { return o == null ? undefined : o[k]; }, obj);
  }
  function text(v) { return v == null ? "-" : String(v); }

  function fillRow(tr, item, key) {
    tr.dataset.key = text(get(item, key));
    tr.querySelectorAll("[data-field]").forEach(function (el) {
      var t = text(get(item, el.dataset.field));
      if (el.textContent !== t) el.textContent = t;
    });
    tr.querySelectorAll("[data-spark]").forEach(function (el) {
      el.setAttribute("points", get(item, el.dataset.spark) || "");
    });
    tr.querySelectorAll("[data-width]").forEach(function (el) {
      el.style.width = Math.max(0, Math.min(100, Number(get(item, el.dataset.width)) || 0)) + "%";
    });
    tr.querySelectorAll("[data-ok]").forEach(function (el) {
      var ok = !!get(item, el.dataset.ok);
      el.classList.toggle("ok", ok);
      el.classList.toggle("bad", !ok);
    });
  }

  function fillList(list, items) {
    var key = list.dataset.key;
    var existing = {};
    Array.prototype.forEach.call(list.children, function (tr) { existing[tr.dataset.key] = tr; });
    var template = document.getElementById(list.dataset.template);
    items.forEach(function (item) {
      var k = text(get(item, key));
      var tr = existing[k];
      if (tr) delete existing[k];
      else tr = template.content.firstElementChild.cloneNode(true);
      fillRow(tr, item, key);
      list.appendChild(tr);  // appending an existing item moves it into the JSON's order
    });
    Object.keys(existing).forEach(function (k) { existing[k].remove(); });
    var empty = document.querySelector('[data-empty="' + list.dataset.list + '"]');
    if (empty) empty.hidden = items.length > 0;
  }

  function apply(data) {
    document.querySelectorAll("[data-bind]").forEach(function (el) {
      var t = text(get(data, el.dataset.bind));
      if (el.textContent !== t) el.textContent = t;
    });
    document.querySelectorAll("[data-bind-json]").forEach(function (el) {
      el.textContent = JSON.stringify(get(data, el.dataset.bindJson));
    });
    document.querySelectorAll("[data-list]").forEach(function (list) {
      var items = get(data, list.dataset.list);
      if (Array.isArray(items)) fillList(list, items);
    });
  }

  function refresh() {
    fetch(api, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        apply(data);
        updates += 1;
        var stamp = document.getElementById("updated");
        stamp.textContent = new Date().toLocaleTimeString();
        stamp.dataset.updates = String(updates);
        stamp.classList.remove("error");
      })
      .catch(function (e) {
        var stamp = document.getElementById("updated");
        stamp.textContent = "failed (" + e.message + "), retrying";
        stamp.classList.add("error");
      })
      .finally(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
