// jobsite widget: lists open jobs on a company's own page.
//   <div data-jobsite-widget data-team="Platform"></div>
//   <script src="https://careers.example.com/static/widget.js" async></script>
// Optional filters: data-team, data-department, data-location, data-commitment, data-workplace, data-q.
(function () {
  const script = document.currentScript;
  const base = new URL(script.src).origin;
  const FILTERS = ["team", "department", "location", "commitment", "workplace", "q"];

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text) node.textContent = text; // never innerHTML: posting data is not trusted markup
    if (className) node.className = className;
    return node;
  }

  async function render(root) {
    const params = new URLSearchParams();
    FILTERS.forEach((name) => { if (root.dataset[name]) params.set(name, root.dataset[name]); });
    root.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(`${base}/api/v1/postings?${params}`);
      if (!response.ok) throw new Error(response.status);
      const { data } = await response.json();
      const groups = new Map();
      data.forEach((p) => { const t = p.team || "Other"; groups.set(t, [...(groups.get(t) || []), p]); });
      root.replaceChildren();
      if (!data.length) root.append(el("p", "No open jobs right now.", "jobsite-empty"));
      [...groups.keys()].sort().forEach((team) => {
        root.append(el("h3", team, "jobsite-team"));
        const list = el("ul", "", "jobsite-postings");
        groups.get(team).forEach((p) => {
          const item = el("li", "", "jobsite-posting");
          const link = el("a", p.text);
          link.href = p.urls.show;
          item.append(link, el("span", ` ${p.locations.join(" · ")}`, "jobsite-meta"));
          list.append(item);
        });
        root.append(list);
      });
    } catch (e) {
      root.replaceChildren(el("p", "Our job list is briefly unavailable. Please try again soon.", "jobsite-error"));
    } finally {
      root.removeAttribute("aria-busy");
    }
  }

  document.querySelectorAll("[data-jobsite-widget]").forEach(render);
})();
