// In a jobsite page framed by a company's site (?embed=1): tells the host page (static/embed.js, or the widget's
// overlay) how tall this page is, that a new page has loaded, and that Escape was pressed, so the host can size the
// iframe and close its dialog. In the widget's overlay (its hello says so), a link back to the job list
// (data-all-jobs) closes the dialog instead of loading the whole site inside it. Origin-checked both ways: the host proves itself by a "hello" from its window, from
// an origin JOBSITE_EMBED_ORIGINS allows (data-origins; null = any site may embed), and only that origin is told
// anything. Messages carry no address and no answer, only a height.
(() => {
  if (window.parent === window) return;
  const allowed = JSON.parse(document.currentScript.dataset.origins || "null");
  let host = null;
  let overlay = false;
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
    overlay = event.data.overlay === true;
    last = 0;
    send("page");
    size();
  });
  new ResizeObserver(size).observe(document.documentElement);
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-all-jobs]");
    if (!overlay || !link || event.defaultPrevented || event.button !== 0 || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    send("close");
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.defaultPrevented) send("escape");
  });
  window.parent.postMessage({ jobsite: "ready" }, "*"); // says only that a jobsite page is here
})();
