// Draw the dashboard's charts from the figures in data-charts (the same data as the tables).
(function () {
  const host = document.getElementById("dashboard-charts");
  if (!host || !window.Chart) return;
  const data = JSON.parse(host.dataset.charts);
  const red = "#c8102e", amber = "#f59e0b", blue = "#1d4ed8", green = "#15803d", grey = "#94a3b8";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  new Chart(document.getElementById("chart-funnel"), {
    type: "bar",
    data: {
      // 尽职调查 counts funds only (bases and platforms sign without it), so it may be below 已签约
      labels: data.funnel.map((s) => (s.stage === "DUE_DILIGENCE" ? `${s.label}（仅投融资）` : s.label)),
      datasets: [{ label: "对接数", data: data.funnel.map((s) => s.count),
        backgroundColor: data.funnel.map((_, i) => `rgba(200, 16, 46, ${1 - i * 0.13})`) }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  });

  new Chart(document.getElementById("chart-regions"), {
    type: "bar",
    data: {
      labels: data.regions.map((r) => r.key),
      datasets: [
        { label: "融资", data: data.regions.map((r) => r.financed), backgroundColor: red },
        { label: "落地", data: data.regions.map((r) => r.landed), backgroundColor: blue },
        { label: "服务", data: data.regions.map((r) => r.services), backgroundColor: green },
      ],
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });

  new Chart(document.getElementById("chart-months"), {
    data: {
      labels: data.months.map((m) => m.month),
      datasets: [
        { type: "bar", label: "新建对接", data: data.months.map((m) => m.opened), backgroundColor: grey, yAxisID: "y" },
        { type: "bar", label: "签约", data: data.months.map((m) => m.signed), backgroundColor: red, yAxisID: "y" },
        { type: "line", label: "融资金额（万元）", data: data.months.map((m) => m.financing_wan), borderColor: amber,
          backgroundColor: amber, yAxisID: "y2", tension: 0.2 },
      ],
    },
    options: {
      scales: {
        y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "个" } },
        y2: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "万元" } },
      },
    },
  });
})();
