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

  // A file field names the chosen file in its box (the native input is transparent over it).
  form.querySelectorAll(".file-drop input[type=file]").forEach((input) => {
    const box = input.closest(".file-drop");
    const name = box.querySelector(".file-name");
    const hint = name.textContent;
    input.addEventListener("change", () => {
      box.classList.toggle("chosen", input.files.length > 0);
      name.textContent = input.files.length ? input.files[0].name : hint;
    });
  });

  // The resume fills name, email, phone and links as soon as it is chosen: the server reads it and forgets it
  // (POST /api/v1/autofill). Only empty fields are filled, so nothing the candidate typed is lost; all stay editable.
  const resume = form.querySelector("#f-resume");
  const said = form.querySelector(".autofill-status");
  const SITES = ["linkedin", "github", "gitlab", "twitter"];
  function fill(found) {
    let filled = 0;
    const put = (el, value) => {
      if (!el || !value || el.value.trim()) return false;
      el.value = value;
      el.classList.add("filled");
      filled += 1;
      return true;
    };
    put(form.elements.namedItem("fullName"), found.fullName);
    put(form.elements.namedItem("email"), found.email);
    put(form.elements.namedItem("phone"), found.phone);
    const links = Array.from(form.querySelectorAll('input[type=url][name^="urls["]'));
    const site = (el) => el.name.slice(5, -1).toLowerCase();
    const rest = [];
    (found.urls || []).forEach((url) => {
      let host = "";
      try { host = new URL(url).hostname.toLowerCase(); } catch (e) { return; }
      const own = links.find((el) => host.includes(site(el)));
      if (own) put(own, url);
      else rest.push(url);
    });
    rest.forEach((url) => put(links.find((el) => !el.value.trim() && !SITES.some((s) => site(el).includes(s))), url));
    return filled;
  }
  if (resume && said && form.dataset.autofill) {
    resume.addEventListener("change", async () => {
      if (!resume.files.length) return;
      said.textContent = said.dataset.reading;
      const body = new FormData();
      body.append("resume", resume.files[0]);
      try {
        const answer = await fetch(form.dataset.autofill, { method: "POST", body });
        const filled = answer.ok ? fill(await answer.json()) : 0;
        said.textContent = filled ? said.dataset.filled : said.dataset.nothing;
      } catch (e) {
        said.textContent = said.dataset.nothing;
      }
    });
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
