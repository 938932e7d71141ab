// In a jobsite page framed by a company's site (?embed=1): tells the host page (static/embed.js, or the widget's
// overlay) how tall this page is, that a new page has loaded, and that Escape was pressed, so the host can size the
// iframe and close its dialog. Origin-checked both ways: the host proves itself by a "hello" from its window, from
// an origin JOBSITE_EMBED_ORIGINS allows (data-origins; null = any site may embed), and only that origin is told
// anything. Messages carry no address and no answer, only a height.
(() => {
  if (window.parent === window) return;
  const allowed = JSON.parse(document.currentScript.dataset.origins || "null");
  let host = null;
  let last = 0;

  const send = (type, extra) => host && window.parent.postMessage({ jobsite: type, ...extra }, host);

  function size() {
    const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (Math.abs(height - last) < 1) return;
    last = height;
    send("size", { height });
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || !event.data || event.data.jobsite !== "hello") return;
    if (allowed && !allowed.includes(event.origin)) return;
    host = event.origin;
    last = 0;
    send("page");
    size();
  });
  new ResizeObserver(size).observe(document.documentElement);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.defaultPrevented) send("escape");
  });
  window.parent.postMessage({ jobsite: "ready" }, "*"); // says only that a jobsite page is here
})();
