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

  const months = data.trend.map((p) => p.month);
  new Chart(document.getElementById("trend"), {
    type: "line",
    data: {
      labels: months,
      datasets: [
        { label: "95% interval (high)", data: data.trend.map((p) => p.high), borderWidth: 0,
          pointRadius: 0, fill: "+1", backgroundColor: "rgba(47, 91, 234, 0.12)" },
        { label: "95% interval (low)", data: data.trend.map((p) => p.low), borderWidth: 0,
          pointRadius: 0, fill: false },
        { label: "NPS", data: data.trend.map((p) => p.nps), borderColor: colour("--accent"),
          backgroundColor: colour("--accent"), tension: 0.2, pointRadius: 3 },
      ],
    },
    options: {
      maintainAspectRatio: false,
      scales: { y: { suggestedMin: -20, suggestedMax: 80 } },
      plugins: {
        legend: { labels: { filter: (item) => item.text === "NPS" } },
        tooltip: { callbacks: { afterLabel: (ctx) =>
          ctx.dataset.label === "NPS" ? `n = ${data.trend[ctx.dataIndex].n}` : "" } },
      },
    },
  });
});
