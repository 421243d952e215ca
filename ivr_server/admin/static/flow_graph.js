// Draws the flow graph (#flow-graph) with the vendored Mermaid, under the admin CSP: no
// inline script, strict security level, text read from <script type="application/json">.
// Without Mermaid (file not vendored) the diagram's text stays in the <pre>.
"use strict";
(function () {
  const box = document.getElementById("flow-graph");
  const data = window.ivrAdmin && window.ivrAdmin.readJson("flow-graph-data");
  if (!box || !data) return;
  const mermaid = window.mermaid;
  if (!mermaid) {
    box.dataset.rendered = "unavailable";
    return;
  }
  mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
  mermaid.render("flow-graph-svg", data.mermaid).then(({ svg, bindFunctions }) => {
    box.innerHTML = svg; // sanitised by Mermaid at securityLevel "strict"
    if (bindFunctions) bindFunctions(box);
    box.dataset.rendered = "1";
  }).catch((err) => {
    box.dataset.rendered = "error";
    const note = document.createElement("p");
    note.className = "muted";
    note.textContent = "The graph could not be drawn: " + (err && err.message ? err.message : err);
    box.prepend(note);
  });
})();
