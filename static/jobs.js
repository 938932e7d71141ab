// Filters are plain GET forms and work without this (the Search button sends the filters too). It submits as soon as
// a filter changes, leaves empty fields out of the URL (?team=Sales, not ?q=&team=Sales&department=...), and opens
// the filter panel on wide screens, where the filters sit in the search's row (on a phone they stay folded behind
// their "Filters" button so the jobs come first).
(function () {
  const form = document.querySelector("form.filters");
  if (!form) return;
  form.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => form.requestSubmit());
  });
  form.addEventListener("submit", () => {
    Array.from(form.elements).forEach((el) => {
      if (el.name && !el.value.trim()) el.disabled = true;
    });
  });
  // Back/forward restores the page from cache with the fields still disabled.
  window.addEventListener("pageshow", () => Array.from(form.elements).forEach((el) => { el.disabled = false; }));
  const panel = form.querySelector("details[data-open-when-wide]");
  const wide = window.matchMedia("(min-width: 48rem)");
  if (panel && wide.matches) panel.open = true;
})();
