// Checks the application form with the rules and messages the server renders into each field (forms.py defines
// them once; the server checks them again, and says them in the page's language), and shows errors in the same places
// the server would.
(function () {
  const form = document.querySelector("form.apply");
  if (!form) return;

  function values(name) {
    return Array.from(form.elements).filter((el) => el.name === name).flatMap((el) => {
      if (el.type === "file") return el.files.length ? [el.files[0].name] : [];
      if (el.type === "checkbox" || el.type === "radio") return el.checked ? [el.value] : [];
      return el.value.trim() ? [el.value.trim()] : [];
    });
  }

  function problem(field, rules) {
    const vals = values(field.dataset.field);
    if (!vals.length) return rules.required ? rules.messages.required : null;
    if (rules.type === "file-upload") return null;
    const v = vals[0];
    if (rules.maxLength && v.length > rules.maxLength) return rules.messages.maxLength;
    if (rules.pattern && !new RegExp(rules.pattern, rules.flags).test(v)) return rules.messages.pattern;
    return null;
  }

  form.addEventListener("submit", (event) => {
    const failed = [];
    form.querySelectorAll(".field[data-rules]").forEach((field) => {
      const message = problem(field, JSON.parse(field.dataset.rules));
      const error = field.querySelector(".error");
      const control = field.querySelector("input, select, textarea, fieldset");
      field.classList.toggle("has-error", !!message);
      error.hidden = !message;
      error.textContent = message || "";
      if (control && control.tagName !== "FIELDSET") control.setAttribute("aria-invalid", message ? "true" : "false");
      if (message) failed.push([control, field, message]);
    });
    const summary = document.getElementById("error-summary");
    if (!failed.length) return;
    event.preventDefault();
    summary.hidden = false;
    summary.innerHTML = "";
    const title = document.createElement("h2");
    // The heading in the page's language: the form carries its plural forms, chosen by that language's rules.
    const plural = new Intl.PluralRules(document.documentElement.lang).select(failed.length);
    title.textContent = form.dataset[plural === "one" ? "checkOne" : "checkOther"].replace("{n}", failed.length);
    const list = document.createElement("ul");
    failed.forEach(([control, field, message]) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = "#" + (control ? control.id : "");
      link.textContent = `${field.querySelector("legend, label").childNodes[0].textContent.trim()} — ${message}`;
      item.appendChild(link);
      list.appendChild(item);
    });
    summary.append(title, list);
    summary.focus();
  });
})();
