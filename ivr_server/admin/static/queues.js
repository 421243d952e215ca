// Live queues: fetch /admin/queues.json every few seconds and update the table in place.
// A failed fetch says "not updating: ..." and the next one is tried on schedule anyway.
"use strict";
(function () {
  const config = window.ivrAdmin.readJson("queues-config");
  const table = document.getElementById("queues");
  const status = document.getElementById("updated-at");
  if (!config || !table || !status) return;
  const body = table.tBodies[0];
  const FIELDS = ["waiting", "longest", "agents", "estimate"];

  function cell(field, className) {
    const td = document.createElement("td");
    td.dataset.field = field;
    if (className) td.className = className;
    return td;
  }

  function rowFor(name) {
    const existing = Array.from(body.rows).find((tr) => tr.dataset.queue === name);
    if (existing) return existing;
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    const tr = document.createElement("tr");
    tr.dataset.queue = name;
    const first = document.createElement("td");
    first.textContent = name;
    tr.appendChild(first);
    for (const field of FIELDS) tr.appendChild(cell(field, field === "estimate" ? "" : "num"));
    body.appendChild(tr);
    return tr;
  }

  function set(tr, field, text, title) {
    const td = tr.querySelector('[data-field="' + field + '"]');
    if (!td) return;
    if (td.textContent !== text) td.textContent = text;
    td.title = title || "";
  }

  function render(state) {
    const seen = new Set();
    for (const q of state.queues) {
      const tr = rowFor(q.name);
      seen.add(q.name);
      set(tr, "waiting", String(q.waiting));
      set(tr, "longest", q.longest);
      set(tr, "agents", q.agents === null ? "—" : String(q.agents), q.on_duty.join(", "));
      set(tr, "estimate", q.estimate_text, q.estimate ? q.estimate.phrase : "");
      const badge = tr.querySelector('[data-field="error"]');
      if (badge && !q.error) badge.remove();
    }
    for (const tr of Array.from(body.rows)) {
      if (tr.dataset.queue && !seen.has(tr.dataset.queue)) tr.remove();
    }
    status.textContent = "updated " + state.updated;
    status.style.color = "";
  }

  function failed(reason) {
    status.textContent = "not updating: " + reason + " (retrying)";
    status.style.color = "#b42318";
  }

  async function refresh() {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(1000, config.every - 500));
    try {
      const response = await fetch(config.url, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
        cache: "no-store", signal: controller.signal,
      });
      if (response.status === 401) {
        failed("signed out; reload the page to sign in");
      } else {
        let state = null;
        try { state = await response.json(); } catch (e) { state = null; }
        if (!response.ok || !state) failed((state && state.error) || "HTTP " + response.status);
        else if (state.error) failed(state.error);
        else render(state);
      }
    } catch (err) {
      failed(err.name === "AbortError" ? "the server did not answer in time" : "network error");
    } finally {
      clearTimeout(timer);
      setTimeout(refresh, config.every);
    }
  }

  setTimeout(refresh, config.every);
})();
