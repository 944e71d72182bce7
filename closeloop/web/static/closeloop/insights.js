// Draws the insight pages' charts from the JSON each page embeds (no network calls).
document.addEventListener("DOMContentLoaded", () => {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const css = getComputedStyle(document.documentElement);
  const colour = (name) => css.getPropertyValue(name).trim();
  const go = (rows) => (event, points) => { if (points.length) window.location = rows[points[0].index].href; };

  const segments = document.getElementById("segments");
  if (segments && data.segments.length) {
    const rows = data.segments;
    new Chart(segments, {
      type: "bar",
      data: {
        labels: rows.map((r) => `${r.label} (n ${r.n})`),
        datasets: [
          { type: "scatter", label: "NPS", data: rows.map((r, i) => ({ x: r.nps, y: i })),
            backgroundColor: colour("--ink"), pointRadius: 4 },
          { label: "95% interval", data: rows.map((r) => [r.low, r.high]),
            backgroundColor: rows.map((r) => (r.small ? "rgba(148, 163, 184, 0.35)" : "rgba(47, 91, 234, 0.3)")),
            borderSkipped: false, barPercentage: 0.55 },
        ],
      },
      options: {
        indexAxis: "y", maintainAspectRatio: false, onClick: go(rows),
        scales: { x: { min: -100, max: 100, title: { display: true, text: "NPS" } },
                  y: { type: "category" } },
        plugins: {
          legend: { display: false },
          annotation: undefined,
          tooltip: { callbacks: { label: (ctx) => {
            const r = rows[ctx.dataIndex];
            return `NPS ${r.nps} (95%: ${r.low} to ${r.high}), n = ${r.n}${r.small ? " — small n" : ""}`;
          } } },
        },
      },
    });
  }
});

document.addEventListener("DOMContentLoaded", () => {
  const sla = document.getElementById("program-sla");
  if (!sla) return;
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const css = getComputedStyle(document.documentElement);
  const colour = (name) => css.getPropertyValue(name).trim();
  const flat = (value) => data.labels.map(() => value);
  const percent = { beginAtZero: true, max: 100, ticks: { callback: (v) => `${v}%` } };
  new Chart(sla, {
    type: "line",
    data: {
      labels: data.labels,
      datasets: [
        { label: "Automated", data: data.automated, borderColor: colour("--accent"),
          backgroundColor: colour("--accent"), spanGaps: true },
        { label: "Personal", data: data.personal, borderColor: "#7c3aed", backgroundColor: "#7c3aed",
          spanGaps: true },
        { label: `Personal target (${data.targets.personal}%)`, data: flat(data.targets.personal),
          borderColor: "#7c3aed", borderDash: [6, 4], borderWidth: 1, pointRadius: 0 },
      ],
    },
    options: { maintainAspectRatio: false, scales: { y: percent } },
  });
  new Chart(document.getElementById("program-outcomes"), {
    data: {
      labels: data.labels,
      datasets: [
        { type: "bar", label: "Resolved", data: data.resolved, backgroundColor: colour("--promoter"), stack: "s" },
        { type: "bar", label: "Can't fix", data: data.cant_fix, backgroundColor: colour("--passive"), stack: "s" },
        { type: "bar", label: "No response", data: data.no_response, backgroundColor: "#94a3b8", stack: "s" },
        { type: "bar", label: "Open", data: data.open, backgroundColor: "#e5e7eb", stack: "s" },
        { type: "line", label: "Customers responding %", data: data.response, yAxisID: "rate",
          borderColor: colour("--accent"), backgroundColor: colour("--accent"), spanGaps: true },
        { type: "line", label: `Warn under ${data.targets.response}%`, data: flat(data.targets.response),
          yAxisID: "rate", borderColor: colour("--detractor"), borderDash: [6, 4], borderWidth: 1, pointRadius: 0 },
      ],
    },
    options: {
      maintainAspectRatio: false,
      scales: { y: { stacked: true, beginAtZero: true, title: { display: true, text: "cases" } },
                x: { stacked: true },
                rate: { ...percent, position: "right", grid: { drawOnChartArea: false } } },
      plugins: { legend: { labels: { boxWidth: 12 } } },
    },
  });
});

document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("theme-trend");
  if (!canvas) return;
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const palette = ["#2f5bea", "#d9480f", "#2b8a3e", "#9c36b5", "#f59f00", "#0b7285"];
  new Chart(canvas, {
    type: "line",
    data: {
      labels: data.labels,
      datasets: data.series.map((s, i) => ({
        label: s.name, data: s.shares, borderColor: palette[i % palette.length],
        backgroundColor: palette[i % palette.length], tension: 0.25, pointRadius: 3,
      })),
    },
    options: {
      maintainAspectRatio: false,
      interaction: { mode: "nearest", intersect: true },
      scales: { y: { min: 0, title: { display: true, text: "% of comments read" } } },
      onClick: (event, points) => {
        if (points.length) window.location = data.series[points[0].datasetIndex].hrefs[points[0].index];
      },
      plugins: {
        tooltip: { callbacks: { label: (ctx) => {
          const s = data.series[ctx.datasetIndex];
          return `${s.name}: ${s.shares[ctx.dataIndex]}% (${s.counts[ctx.dataIndex]} of ${data.read[ctx.dataIndex]})`;
        } } },
      },
    },
  });
});
