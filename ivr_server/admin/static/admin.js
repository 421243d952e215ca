// Small helpers shared by the admin pages. No inline scripts: pages pass data in
// <script type="application/json"> blocks, read here with readJson().
"use strict";
window.ivrAdmin = {
  readJson(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  },
};
// Forms that change something can ask first: <form data-confirm="Publish this version?">
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
