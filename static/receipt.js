// The receipt page follows its application through the status API (no reload): it shows the plain words the page
// carries for each status, and stops asking once the application is delivered or closed. It asks again after 5 s,
// backing off to a minute; a failed request just waits for the next turn.
(function () {
  const page = document.querySelector(".receipt-page[data-status-url]");
  if (!page) return;
  const words = JSON.parse(page.dataset.words);
  const final = JSON.parse(page.dataset.final);
  let delay = 5000;

  function show(status) {
    const said = words[status] || words.queued;
    page.dataset.status = status;
    page.querySelector('[data-field="text"]').textContent = said.text;
    page.querySelector('[data-step="2"]').classList.toggle("done", said.step >= 2);
  }

  function poll() {
    fetch(page.dataset.statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then((response) => (response.ok ? response.json() : null))
      .then((body) => {
        if (body && body.status && body.status !== page.dataset.status) show(body.status);
      })
      .catch(() => {})
      .finally(() => {
        if (final.includes(page.dataset.status)) return;
        delay = Math.min(delay * 1.5, 60000);
        setTimeout(poll, delay);
      });
  }

  if (!final.includes(page.dataset.status)) setTimeout(poll, delay);
})();

// Framed in a company's page, the receipt shows its own address: "Copy link" puts it on the clipboard (or, where the
// frame may not write there, selects it to copy by hand).
(function () {
  const box = document.querySelector(".receipt-link");
  if (!box) return;
  const field = box.querySelector("input");
  const button = box.querySelector("[data-copy]");
  const said = box.querySelector(".copied");
  button.hidden = false;
  button.addEventListener("click", () => {
    const selectIt = () => { field.focus(); field.select(); };
    if (!navigator.clipboard) return selectIt();
    navigator.clipboard.writeText(field.value).then(() => { said.textContent = box.dataset.copied; }, selectIt);
  });
})();
