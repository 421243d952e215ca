// The dashboard's two charts, from the JSON block the server rendered (#dashboard-data).
// Each canvas gets data-rendered="1" once Chart.js has drawn it, for browser tests.
// Without Chart.js (file missing or failed to load) the page keeps its figures and says so.
"use strict";
(function () {
  const data = window.ivrAdmin.readJson("dashboard-data");
  const callsCanvas = document.getElementById("chart-calls");
  const waitCanvas = document.getElementById("chart-wait");
  if (!data || !callsCanvas || !waitCanvas) return;
  if (typeof window.Chart === "undefined") {
    const note = document.getElementById("charts-failed");
    if (note) note.hidden = false;
    const charts = document.getElementById("charts");
    if (charts) charts.hidden = true;
    return;
  }

  // Marks the canvas once the chart has been drawn (animation is off: the first render is
  // the final one).
  const markRendered = {
    id: "ivrMarkRendered",
    afterRender(chart) { chart.canvas.dataset.rendered = "1"; },
  };

  function duration(seconds) {
    const s = Math.round(seconds);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  }

  new window.Chart(callsCanvas, {
    data: {
      labels: data.labels,
      datasets: [
        { type: "bar", label: "Calls", data: data.calls, yAxisID: "calls",
          backgroundColor: "rgba(36, 86, 198, 0.55)", order: 2 },
        { type: "line", label: "Abandonment rate (%)", data: data.abandonment, yAxisID: "rate",
          borderColor: "#b42318", backgroundColor: "#b42318", spanGaps: false, tension: 0.2,
          pointRadius: 2, order: 1 },
      ],
    },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        calls: { type: "linear", position: "left", beginAtZero: true,
                 title: { display: true, text: "calls" }, ticks: { precision: 0 } },
        rate: { type: "linear", position: "right", min: 0, max: 100,
                title: { display: true, text: "abandoned %" }, grid: { drawOnChartArea: false } },
      },
    },
    plugins: [markRendered],
  });

  const points = data.wait.points || [];
  // Both axes to the same whole minute, so the diagonal is the 45-degree "exact" line.
  const top = 60 * Math.ceil(Math.max(60, ...points.map((p) => Math.max(p.x, p.y))) / 60);
  const point = (p) => ({ x: p.x, y: p.y, lo: p.lo, hi: p.hi });
  new window.Chart(waitCanvas, {
    type: "scatter",
    data: {
      datasets: [
        { label: "Within the announced range", data: points.filter((p) => p.in).map(point),
          backgroundColor: "rgba(31, 122, 77, 0.7)", pointRadius: 3 },
        { label: "Outside it", data: points.filter((p) => !p.in).map(point),
          backgroundColor: "rgba(161, 92, 0, 0.75)", pointRadius: 3 },
        { type: "line", label: "Exact (real = announced)", data: [{ x: 0, y: 0 }, { x: top, y: top }],
          borderColor: "#5b6478", borderDash: [6, 4], pointRadius: 0, borderWidth: 1 },
      ],
    },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      scales: {
        x: { type: "linear", min: 0, max: top, title: { display: true, text: "announced wait (s)" } },
        y: { type: "linear", min: 0, max: top, title: { display: true, text: "real wait (s)" } },
      },
      plugins: {
        subtitle: { display: points.length === 0, text: "No answered caller with an estimate in this period" },
        tooltip: {
          callbacks: {
            label(ctx) {
              const p = ctx.raw;
              if (p.lo === undefined) return ctx.dataset.label;
              return "told " + duration(p.x) + " (" + duration(p.lo) + "–" + duration(p.hi) +
                "), waited " + duration(p.y);
            },
          },
        },
      },
    },
    plugins: [markRendered],
  });
})();
