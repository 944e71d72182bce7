// Draws the dashboard's charts from the JSON the page embeds (no network calls).
document.addEventListener("DOMContentLoaded", () => {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const css = getComputedStyle(document.documentElement);
  const colour = (name) => css.getPropertyValue(name).trim();
  const classColour = (score) =>
    score >= 9 ? colour("--promoter") : score >= 7 ? colour("--passive") : colour("--detractor");

  new Chart(document.getElementById("distribution"), {
    type: "bar",
    data: {
      labels: [...Array(11).keys()].map(String),
      datasets: [{ label: "Answers", data: data.distribution,
                   backgroundColor: [...Array(11).keys()].map(classColour) }],
    },
    options: { maintainAspectRatio: false, plugins: { legend: { display: false } },
               scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });

  const trend = data.trend;
  const labels = trend.map((p) => p.label);
  const open = (points) => { if (points.length) window.location = trend[points[0].index].href; };
  // A significant change gets a triangle pointing its way; every other point is a dot.
  const marker = trend.map((p) => (p.significant ? "triangle" : "circle"));
  const markerSize = trend.map((p) => (p.significant ? 7 : 3));
  const rotation = trend.map((p) => (p.significant && p.change < 0 ? 180 : 0));
  const markerColour = trend.map((p) => (!p.significant ? colour("--accent")
    : p.change > 0 ? colour("--promoter") : colour("--detractor")));
  // Incidents: a dotted vertical line on their period, red when a detractor spike followed.
  const incidentLines = {
    id: "incidents",
    afterDatasetsDraw(chart) {
      const { ctx, chartArea, scales } = chart;
      ctx.save();
      for (const incident of data.incidents) {
        const x = scales.x.getPixelForValue(incident.index);
        ctx.strokeStyle = incident.spike ? colour("--detractor") : "#6b7280";
        ctx.setLineDash([2, 3]);
        ctx.beginPath();
        ctx.moveTo(x, chartArea.top);
        ctx.lineTo(x, chartArea.bottom);
        ctx.stroke();
        ctx.fillStyle = ctx.strokeStyle;
        ctx.font = "11px sans-serif";
        ctx.fillText("◆", x - 4, chartArea.top + 9);
      }
      ctx.restore();
    },
  };
  new Chart(document.getElementById("trend"), {
    type: "line",
    plugins: [incidentLines],
    data: {
      labels,
      datasets: [
        { label: "95% interval (high)", data: trend.map((p) => p.high), borderWidth: 0,
          pointRadius: 0, fill: "+1", backgroundColor: "rgba(47, 91, 234, 0.12)", spanGaps: true },
        { label: "95% interval (low)", data: trend.map((p) => p.low), borderWidth: 0,
          pointRadius: 0, fill: false, spanGaps: true },
        { label: "NPS", data: trend.map((p) => p.nps), borderColor: colour("--accent"),
          backgroundColor: markerColour, pointBackgroundColor: markerColour,
          pointBorderColor: markerColour, pointStyle: marker, pointRadius: markerSize,
          pointRotation: rotation, tension: 0.2, spanGaps: true },
        { label: `B2B SaaS average (${data.benchmark})`, data: trend.map(() => data.benchmark),
          borderColor: "#9aa3af", borderDash: [6, 4], borderWidth: 1, pointRadius: 0 },
      ],
    },
    options: {
      maintainAspectRatio: false,
      onClick: (event, points) => open(points),
      scales: { y: { suggestedMin: -20, suggestedMax: 80 } },
      plugins: {
        legend: { labels: { filter: (item) => !item.text.startsWith("95%") } },
        tooltip: { callbacks: { afterLabel: (ctx) => {
          if (ctx.dataset.label !== "NPS") return "";
          const p = trend[ctx.dataIndex];
          const change = p.change === null ? "" : p.significant
            ? `\nchange ${p.change > 0 ? "+" : ""}${p.change} (significant)`
            : `\nchange ${p.change} (within noise)`;
          return `n = ${p.n}, 95% interval ${p.low} to ${p.high}${change}`;
        } } },
      },
    },
  });

  const share = trend.map((p) => p.detractors);
  new Chart(document.getElementById("detractors"), {
    type: "bar",
    data: {
      labels,
      datasets: [
        { type: "line", label: "Structural problem (40%)", data: trend.map(() => data.structural),
          borderColor: colour("--detractor"), borderDash: [6, 4], borderWidth: 1, pointRadius: 0 },
        { type: "line", label: "Healthy (10–20%)", data: trend.map(() => data.healthy[1]),
          borderColor: "rgba(22, 163, 74, 0.5)", borderWidth: 0, pointRadius: 0,
          fill: "+1", backgroundColor: "rgba(22, 163, 74, 0.12)" },
        { type: "line", label: "healthy-low", data: trend.map(() => data.healthy[0]),
          borderWidth: 0, pointRadius: 0, fill: false },
        { label: "Detractors %", data: share,
          backgroundColor: share.map((v) => (v > data.structural ? colour("--detractor") : "#f4a3a3")) },
      ],
    },
    options: {
      maintainAspectRatio: false,
      onClick: (event, points) => open(points),
      scales: { y: { beginAtZero: true, suggestedMax: 50, ticks: { callback: (v) => `${v}%` } } },
      plugins: { legend: { labels: { boxWidth: 12, filter: (item) => item.text !== "healthy-low" } } },
    },
  });
});
