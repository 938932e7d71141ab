// jobsite widget: a company's open jobs on its own page, in a Shadow DOM so neither page's CSS reaches the other.
// Sizes are in em from `medium` (the reader's own default size) or px, never rem: the host's root font size (62.5 %
// is common) must not shrink or grow the widget.
//   <div data-jobsite-widget data-team="Platform"><a href="https://careers.example.com/">Our open jobs</a></div>
//   <script src="https://careers.example.com/static/widget.js" async></script>
// The README ("Embedding") documents the data attributes and the --jobsite-* theming properties. What the div holds
// is shown until the list is ready, and stays where scripts never run. No dependencies; the test suite keeps this
// file under 8 KB gzipped.
(() => {
  const base = new URL(document.currentScript.src).origin;
  const FILTERS = { team: "Team", department: "Department", location: "Location", commitment: "Type",
    workplace: "Workplace" };
  const WORKPLACE = { onsite: "On-site", remote: "Remote", hybrid: "Hybrid" }; // board.WORKPLACE_LABELS
  const CARRY = ["source", "lever-source", "utm_source", "utm_medium", "utm_campaign", "ref"]; // web/embed.py CARRIED_SOURCE
  // The site that sent the candidate to the host page (first touch), unless the page's address names one.
  const referrer = () => { try { const h = new URL(document.referrer).hostname; return h !== location.hostname ? h : ""; } catch (e) { return ""; } };
  const PARAM = "jobsite"; // ?jobsite=<posting id>: the posting open in the overlay, a link to share
  const fetched = {};
  let seq = 0;
  let overlay;

  const CSS = `
:host{display:block}
.w{all:initial;display:block;font-family:var(--jobsite-font,system-ui,sans-serif);font-size:var(--jobsite-font-size,medium);
line-height:1.5;color:var(--jobsite-text,#1d2433);--s:var(--jobsite-spacing,.75rem);--r:var(--jobsite-radius,6px);
--a:var(--jobsite-accent,#2454d6);--m:var(--jobsite-muted,#5b6475);--l:var(--jobsite-border,#d9dee7)}
[hidden]{display:none!important}
h2,h3,h4{font-size:1.15em;margin:calc(var(--s)*1.5) 0 calc(var(--s)/2)}
ul{list-style:none;margin:0;padding:0}
li{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.25em 1em;padding:var(--s) 0;border-bottom:1px solid var(--l)}
a{color:var(--a);font-weight:600}
a:focus-visible,input:focus-visible,select:focus-visible,button:focus-visible,[tabindex]:focus-visible{outline:3px solid var(--jobsite-focus,#ffbf47);outline-offset:2px}
.m,.st{color:var(--m);font-size:.875em}
form{display:flex;flex-wrap:wrap;gap:var(--s);margin-bottom:var(--s)}
label{display:block;font-weight:600;font-size:.875em}
input,select{font:inherit;color:inherit;padding:.4em .5em;border:1px solid var(--m);border-radius:var(--r);background:var(--jobsite-background,#fff);min-height:2.75em}
.q{flex:1 1 12em}.q input{width:100%;box-sizing:border-box}
dialog{padding:0;border:0;border-radius:var(--r);width:min(832px,calc(100vw - 32px));max-height:calc(100vh - 32px);background:var(--jobsite-background,#fff);color:inherit}
dialog::backdrop{background:#0009}
.bar{display:flex;align-items:center;justify-content:space-between;gap:var(--s);padding:0 var(--s);border-bottom:1px solid var(--l)}
.bar{justify-content:flex-end}.bar h2{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;margin:0}
button{font:inherit;font-weight:600;min-width:max(44px,2.75em);min-height:max(44px,2.75em);border:1px solid var(--a);border-radius:var(--r);background:none;color:var(--a);cursor:pointer}
iframe{display:block;width:100%;height:calc(100vh - 112px);border:0}`;

  function el(tag, props, ...children) {
    const node = Object.assign(document.createElement(tag), props); // textContent, never innerHTML
    node.append(...children);
    return node;
  }

  function load(params) {
    const url = `${base}/api/v1/postings?${params}`;
    fetched[url] = fetched[url] || fetch(url).then((r) => (r.ok ? r.json() : Promise.reject(r.status)));
    return fetched[url].catch((e) => { delete fetched[url]; throw e; });
  }

  function carried(widget) {
    const page = new URLSearchParams(location.search);
    const out = new URLSearchParams();
    CARRY.forEach((k) => { const v = page.get(k) || (k === "source" && widget.dataset.source) || (k === "ref" && referrer()); if (v) out.set(k, v); });
    return out;
  }

  const by = (key) => (a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

  function groups(postings, field) { // as board.by_team: groups by name, postings by title
    const found = new Map();
    postings.forEach((p) => {
      const names = field === "none" ? [""] : field === "location" ? p.locations : [p[field] || "Other"];
      (names.length ? names : ["Other"]).forEach((n) => found.set(n, [...(found.get(n) || []), p]));
    });
    return [...found].sort(by((g) => g[0])).map(([name, ps]) => [name, ps.sort(by((p) => p.text))]);
  }

  function meta(p) {
    return [p.locations.join(" · "), p.commitment, WORKPLACE[p.workplaceType]].filter(Boolean).join(" · ");
  }

  function widget(host) {
    const d = host.dataset;
    const id = `jsw${++seq}`;
    const root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host; // old browsers: plain links
    const level = Math.min(Math.max(+d.headingLevel || 2, 2), 6);
    const fixed = new URLSearchParams();
    [...Object.keys(FILTERS), "q"].forEach((k) => d[k] && fixed.set(k, d[k]));
    const carry = carried(host);
    const status = el("p", { className: "st", role: "status", textContent: "Loading jobs…" });
    const list = el("div", { part: "list" });
    const form = el("form", { role: "search", ariaLabel: "Filter jobs", hidden: true });
    // data-alerts: "Email me jobs like these", the site's request page for the filters shown (web/alert_pages.py)
    const alerts = el("a", { textContent: "Email me jobs like these", part: "alerts" });
    const w = el("div", { className: "w", part: "widget" }, form, status, list,
      ...(d.alerts !== undefined ? [el("p", {}, alerts)] : []));
    list.setAttribute("aria-busy", "true");
    root.replaceChildren(...(root === host ? [] : [el("style", { textContent: CSS })]), w); // the loading state
    const link = (p) => `${p.urls.show}${carry.size ? `?${carry}` : ""}`;

    function params() {
      const out = new URLSearchParams(fixed);
      form.querySelectorAll("input,select").forEach((c) => c.value.trim() && out.set(c.name, c.value.trim()));
      return out;
    }

    function show(data, filtered) {
      list.replaceChildren();
      list.removeAttribute("aria-busy");
      const asked = params();
      carry.forEach((v, k) => asked.set(k, v));
      alerts.href = `${base}/alerts/new?${asked}`;
      const n = data.length;
      status.textContent = n ? `${n} open ${n === 1 ? "job" : "jobs"}` : filtered ? "No jobs match these filters."
        : "No open jobs right now.";
      groups(data, d.groupBy || "team").forEach(([name, ps], i) => {
        const items = ps.map((p) => {
          const a = el("a", { href: link(p), textContent: p.text });
          if (d.apply === "overlay") {
            a.addEventListener("click", (e) => {
              if (e.button || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return; // a new tab stays a link
              e.preventDefault();
              open(p, a);
            });
          }
          return el("li", { part: "posting" }, a, el("span", { className: "m", textContent: meta(p) }));
        });
        const ul = el("ul", {}, ...items);
        if (!name) return list.append(ul);
        const h = el(`h${level}`, { id: `${id}-g${i}`, textContent: name, part: "group" });
        const section = el("section", {}, h, ul);
        section.setAttribute("aria-labelledby", h.id);
        list.append(section);
      });
    }

    function controls(data) {
      const field = (k, label, control) => {
        control.id = `${id}-${k}`;
        control.name = k;
        return el("div", { className: k === "q" ? "q" : "" }, el("label", { htmlFor: control.id, textContent: label }),
          control);
      };
      if (d.showSearch !== undefined && !fixed.has("q")) {
        let timer;
        const input = el("input", { type: "search", placeholder: "Title or keyword" });
        input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 300); });
        form.append(field("q", "Search", input));
      }
      if (d.showFilters !== undefined) {
        Object.entries(FILTERS).filter(([k]) => !fixed.has(k)).forEach(([k, label]) => {
          const values = new Set();
          data.forEach((p) => (k === "location" ? p.locations : [k === "workplace" ? p.workplaceType : p[k]])
            .forEach((v) => v && v !== "unspecified" && values.add(v)));
          const select = el("select", {}, el("option", { value: "", textContent: "All" }),
            ...[...values].sort().map((v) => el("option", { value: v, textContent: WORKPLACE[v] || v })));
          select.addEventListener("change", refresh);
          form.append(field(k, label, select));
        });
      }
      form.hidden = !form.childElementCount;
      form.addEventListener("submit", (e) => e.preventDefault());
    }

    function failed() {
      list.replaceChildren();
      list.removeAttribute("aria-busy");
      status.textContent = "Our job list is briefly unavailable. ";
      status.append(el("a", { href: `${base}/${carry.size ? `?${carry}` : ""}`, textContent: "See all open jobs" }));
    }

    function refresh() {
      const asked = params();
      list.setAttribute("aria-busy", "true");
      load(asked).then(({ data }) => {
        if (`${asked}` === `${params()}`) show(data, `${asked}` !== `${fixed}`); // a later change wins
      }, failed);
    }

    load(fixed).then(({ data }) => {
      controls(data);
      show(data, false);
      const wanted = new URLSearchParams(location.search).get(PARAM);
      const p = data.find((x) => x.id === wanted);
      if (p && d.apply === "overlay" && !overlay) open(p, null);
    }, failed);

    function open(p, opener) { // apply in place: the posting and its form in a dialog, from jobsite itself
      if (!overlay) overlay = dialog(root);
      const q = new URLSearchParams(carry);
      q.set("embed", "1");
      const accent = getComputedStyle(host).getPropertyValue("--jobsite-accent").trim();
      if (/^#[0-9a-f]{6}$/i.test(accent)) q.set("accent", accent);
      overlay.show(p, `${p.urls.show}?${q}`, opener);
    }
  }

  // The address names the open posting (replaced, not pushed: the frame's own pages are what Back goes through).
  function address(id) {
    const url = new URL(location.href);
    if (id) url.searchParams.set(PARAM, id);
    else url.searchParams.delete(PARAM);
    history.replaceState(history.state, "", url);
  }

  function dialog(root) {
    const title = el("h2", { id: `jsw-dialog-${seq}` });
    const close = el("button", { type: "button", ariaLabel: "Close", textContent: "✕" });
    const trap = (to) => { const s = el("span", { tabIndex: 0 }); s.addEventListener("focus", to); return s; };
    const slot = el("div");
    const box = el("dialog", { part: "dialog" }, trap(() => o.frame.contentWindow.focus()),
      el("div", { className: "bar" }, title, close), slot, trap(() => close.focus()));
    box.setAttribute("aria-labelledby", title.id);
    (root.querySelector(".w") || root).append(box);
    const page = document.documentElement.style;
    let scroll = null; // the host's own overflow, put back on close: the page behind stays still while open
    const o = {
      show(p, src, opener) { // a new iframe each time: a removed one takes its pages out of the history
        title.textContent = p.text;
        o.frame = el("iframe", { title: `${p.text}: the job and its application form`, src });
        o.frame.allow = "clipboard-write"; // the receipt's "Copy link"
        slot.replaceChildren(o.frame);
        o.opener = opener;
        address(p.id);
        if (scroll === null) { scroll = page.overflow; page.overflow = "hidden"; }
        box.showModal();
        close.focus();
      },
    };
    // Every way out (×, Escape on the dialog or in the framed page, its "All jobs" link, the browser closing it)
    // leaves the same page: the posting out of the address, the host scrolling again, focus back on the job's link.
    function shut() {
      if (box.open) box.close();
      if (scroll === null) return;
      page.overflow = scroll;
      scroll = null;
      slot.replaceChildren();
      address(null);
      if (o.opener) o.opener.focus();
    }
    close.addEventListener("click", shut);
    box.addEventListener("cancel", (e) => { e.preventDefault(); shut(); });
    box.addEventListener("close", shut);
    addEventListener("message", (e) => { // the framed page (static/framed.js): origin and window both checked
      if (e.origin !== base || !o.frame || e.source !== o.frame.contentWindow || !e.data) return;
      if (e.data.jobsite === "ready") o.frame.contentWindow.postMessage({ jobsite: "hello", overlay: true }, base);
      if (e.data.jobsite === "escape" || e.data.jobsite === "close") shut(); // close: its "All jobs" link
    });
    return o;
  }

  const started = new WeakSet();
  const start = () => document.querySelectorAll("[data-jobsite-widget]").forEach((host) => {
    if (started.has(host)) return;
    started.add(host);
    widget(host);
  });
  start();
  window.jobsiteWidgets = start; // for hosts that add widgets later
})();
