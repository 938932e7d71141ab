// jobsite's iframe helper for a company's own page: each jobsite iframe takes the height of the page it shows, so
// the host page has no blank space and no scrollbar inside it.
//   <iframe data-jobsite src="https://careers.example.com/?embed=1&hide=heading,filters" title="Open jobs"></iframe>
//   <script src="https://careers.example.com/static/embed.js" async></script>
// The framed page (static/framed.js) reports its height by postMessage, to this page's origin only, once this page
// has said hello; here only messages from jobsite's origin and from that iframe's own window are heard. The iframe
// keeps its height while the next page loads, so navigating never collapses it. The host page's source and utm_*
// parameters (or data-source on the iframe) are passed on, so applications say which page they came from.
(() => {
  const base = new URL(document.currentScript.src).origin;
  const CARRY = ["source", "lever-source", "utm_source", "utm_medium", "utm_campaign", "ref"]; // web/embed.py CARRIED_SOURCE
  // The site that sent the candidate to the host page (first touch), unless the page's address names one.
  const referrer = () => { try { const h = new URL(document.referrer).hostname; return h !== location.hostname ? h : ""; } catch (e) { return ""; } };
  const seen = new WeakSet();
  const frames = () => [...document.querySelectorAll("iframe[data-jobsite]")];
  const hello = (frame) => frame.contentWindow && frame.contentWindow.postMessage({ jobsite: "hello" }, base);

  function prepare(frame) {
    if (seen.has(frame)) return;
    seen.add(frame);
    frame.style.width = frame.style.width || "100%";
    frame.style.border = frame.style.border || "0";
    const page = new URLSearchParams(location.search);
    const src = new URL(frame.src, location.href);
    let more = false;
    CARRY.forEach((k) => {
      const value = page.get(k) || (k === "source" && frame.dataset.source) || (k === "ref" && referrer());
      if (!value || src.searchParams.has(k)) return;
      src.searchParams.set(k, value);
      more = true;
    });
    if (more && src.origin === base) frame.src = src;
    frame.addEventListener("load", () => hello(frame));
    hello(frame);
  }

  window.addEventListener("message", (event) => {
    if (event.origin !== base || !event.data) return;
    const frame = frames().find((f) => f.contentWindow === event.source);
    if (!frame) return;
    const { jobsite, height } = event.data;
    if (jobsite === "ready") hello(frame);
    if (jobsite === "size" && height > 0) frame.style.height = `${Math.ceil(height)}px`;
    if (jobsite === "page" && frame.getBoundingClientRect().top < 0) frame.scrollIntoView(); // a new page's top
  });

  frames().forEach(prepare);
  new MutationObserver(() => frames().forEach(prepare)).observe(document.documentElement,
    { childList: true, subtree: true });
})();
