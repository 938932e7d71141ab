// Filters are plain GET links and forms; this only submits the form as soon as a filter changes.
document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});
