// Analytics pages: draws the report's chart from its JSON (after the first load and after every htmx swap of the
// report), and turns the range into "Custom" when a date is picked by hand.
(function () {
  "use strict";
  const palette = ["#4f46e5", "#0ea5e9", "#14b8a6", "#f59e0b", "#22c55e", "#ef4444", "#a855f7", "#64748b", "#94a3b8"];
  let chart = null;

  function draw() {
    const canvas = document.getElementById("report-chart");
    const source = document.getElementById("report-chart-data");
    if (chart) { chart.destroy(); chart = null; }
    if (!canvas || !source || !window.Chart) return;
    const spec = JSON.parse(JSON.parse(source.textContent));
    if (!spec.labels) return;
    const line = spec.type === "line";
    chart = new window.Chart(canvas, {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (d, n) {
          const color = palette[n % palette.length];
          return { label: d.label, data: d.data, backgroundColor: color, borderColor: color, fill: line && spec.stacked, tension: 0.2, pointRadius: spec.labels.length > 60 ? 0 : 2 };
        }),
      },
      options: {
        indexAxis: spec.horizontal ? "y" : "x",
        animation: false,
        responsive: true,
        interaction: { mode: "index", intersect: false },
        scales: { x: { stacked: !!spec.stacked }, y: { stacked: !!spec.stacked, beginAtZero: true } },
        plugins: { legend: { display: spec.datasets.length > 1 } },
      },
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw();
    const form = document.getElementById("report-filters");
    if (!form) return;
    form.addEventListener("change", function (event) {
      const preset = form.querySelector("[name=preset]");
      if (preset && (event.target.name === "date_from" || event.target.name === "date_to")) preset.value = "custom";
    }, true);
  });
  // The report section is replaced whole (outerHTML): redraw once the new one is in the page.
  document.addEventListener("htmx:afterSettle", function () {
    if (document.getElementById("report-chart-data")) draw();
  });
})();
