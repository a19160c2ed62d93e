// The supervisors' dashboard: draws the charts with Chart.js (served from /static/vendor) from the
// numbers the page carries in <script type="application/json" id="dashboard-data">. Every chart has a
// table of the same numbers under it, so nothing depends on this script.
(function () {
  "use strict";

  const source = document.getElementById("dashboard-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  const { data, text } = JSON.parse(source.textContent);
  const Chart = window.Chart;

  // Okabe–Ito: told apart by people with the common colour-vision deficiencies.
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
  const LATE = "#D55E00";
  const UNANSWERED = "#7a1f12";
  const RATING = "#1f4e8c";

  const styles = getComputedStyle(document.body);
  Chart.defaults.font.family = styles.fontFamily;
  Chart.defaults.color = styles.color;
  Chart.defaults.maintainAspectRatio = false;
  if (window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches) {
    Chart.defaults.animation = false;
  }

  const label = (office) => (office === null ? text.shared_queue : office);
  // A dark edge round every bar: light bars stand out from the white background and from each other
  // (WCAG 1.4.11 asks 3:1 for the shapes that carry the numbers).
  Chart.defaults.elements.bar.borderColor = "#1d2430";
  Chart.defaults.elements.bar.borderWidth = 1;
  const whole = { beginAtZero: true, ticks: { precision: 0 } };

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  // Tickets per point per day, stacked; points without a ticket in the period stay out of the legend.
  const series = data.tickets.per_day.filter((row) => row.total > 0);
  draw("chart-tickets", {
    type: "bar",
    data: {
      labels: data.days,
      datasets: series.map((row, index) => ({
        label: label(row.office),
        data: row.counts,
        backgroundColor: PALETTE[index % PALETTE.length],
      })),
    },
    options: {
      plugins: { tooltip: { mode: "index", intersect: false } },
      scales: {
        x: { stacked: true, title: { display: true, text: text.day } },
        y: { ...whole, stacked: true, title: { display: true, text: text.tickets } },
      },
    },
  });

  // SLA breaches per point: answered late and unanswered past due, stacked (named in the legend).
  const points = data.sla.per_office;
  draw("chart-sla", {
    type: "bar",
    data: {
      labels: points.map((row) => label(row.office)),
      datasets: [
        {
          label: text.answered_late,
          data: points.map((row) => row.answered_late),
          backgroundColor: LATE,
        },
        {
          label: text.unanswered_late,
          data: points.map((row) => row.unanswered_late),
          backgroundColor: UNANSWERED,
        },
      ],
    },
    options: {
      plugins: { tooltip: { mode: "index", intersect: false } },
      scales: {
        x: { stacked: true, title: { display: true, text: text.point } },
        y: { ...whole, stacked: true, title: { display: true, text: text.breaches } },
      },
    },
  });

  // Ratings 1 to 5.
  const ratings = Object.keys(data.ratings.counts).sort();
  draw("chart-ratings", {
    type: "bar",
    data: {
      labels: ratings,
      datasets: [
        {
          label: text.tickets,
          data: ratings.map((rating) => data.ratings.counts[rating]),
          backgroundColor: RATING,
        },
      ],
    },
    options: {
      plugins: { legend: { display: false } },
      scales: {
        x: { title: { display: true, text: text.rating } },
        y: { ...whole, title: { display: true, text: text.tickets } },
      },
    },
  });
})();
