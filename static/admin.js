// Keeps the dashboard's figures current while a backlog drains: polls the status JSON every 2 s.
(function () {
  const root = document.getElementById("status");
  if (!root) return;
  function duration(s) {
    if (s === null || s === undefined) return "—";
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }
  function get(data, path) { return path.split(".").reduce((o, k) => (o == null ? o : o[k]), data); }
  async function tick() {
    try {
      const response = await fetch(root.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      document.querySelectorAll("[data-field]").forEach((el) => {
        const value = get(data, el.dataset.field);
        el.textContent = el.dataset.format === "duration" ? duration(value) : value;
      });
      const bar = document.getElementById("drain");
      if (bar) { bar.max = data.backlog + data.counts.delivered; bar.value = data.counts.delivered; }
      document.querySelectorAll("[data-show-when]").forEach((el) => { el.hidden = !get(data, el.dataset.showWhen); });
      // What is true only in some states of delivery (a pace and an end time only while it is open).
      document.querySelectorAll("[data-when-gate]").forEach((el) => {
        el.hidden = !el.dataset.whenGate.split(" ").includes(data.gate.state);
      });
    } catch (e) { /* keep the last figures on a network hiccup */ }
  }
  setInterval(tick, 2000);
})();

// Times arrive as <time datetime="...Z"> in UTC (the fallback text names the zone); show them in the viewer's own
// time zone with that zone named. Risky actions (pause, discard, retry all) ask first.
(function () {
  const format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
  document.querySelectorAll("time[datetime]").forEach((el) => {
    const moment = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) el.textContent = format.format(moment);
  });
  // The dashboard chart's hours, and the zone its caption names.
  const hour = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  document.querySelectorAll("svg text[data-hour]").forEach((el) => {
    el.textContent = hour.format(new Date(Number(el.dataset.hour) * 1000));
  });
  const zone = document.getElementById("chart-zone");
  if (zone) {
    const named = format.formatToParts(new Date()).find((part) => part.type === "timeZoneName");
    if (named) zone.textContent = `your time (${named.value})`;
  }
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
