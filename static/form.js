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
    if (rules.file) return null;  // checked by the server (size, content): intake/fieldtypes.py says which are files
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

  // A draft of the answers (never files) in this tab's sessionStorage, so that a reload or a switch of language
  // from the header loses nothing typed; removed when the form is sent. Restored only into controls still empty,
  // so the server's own answers (after an error) win. Per posting; nothing is kept when storage is refused (a
  // partitioned frame), the form then works as before.
  const DRAFT = "jobsite-draft:" + (form.dataset.draft || location.pathname);
  const SKIP = new Set(["form_token", "website"]);
  let auto = {};  // field name -> the value autofill put there: changed since means the person typed it
  const kept = () => Array.from(form.elements).filter((el) => el.name && !SKIP.has(el.name) &&
    el.type !== "file" && el.type !== "hidden" && el.type !== "submit");
  function saveDraft() {
    const answers = {};
    kept().forEach((el) => {
      if (el.type === "checkbox" || el.type === "radio") {
        if (el.checked) (answers[el.name] = answers[el.name] || []).push(el.value);
      } else if (el.value) answers[el.name] = el.value;
    });
    try { sessionStorage.setItem(DRAFT, JSON.stringify({ answers, auto })); } catch (e) { /* storage refused */ }
  }
  function restoreDraft() {
    let draft = null;
    try { draft = JSON.parse(sessionStorage.getItem(DRAFT) || "null"); } catch (e) { return; }
    if (!draft || typeof draft.answers !== "object") return;
    const answers = draft.answers;
    const chosen = new Set(kept().filter((el) => el.checked).map((el) => el.name));
    kept().forEach((el) => {
      const value = answers[el.name];
      if (value === undefined) return;
      if (el.type === "checkbox" || el.type === "radio") {
        if (!chosen.has(el.name) && Array.isArray(value) && value.includes(el.value)) el.checked = true;
      } else if (!el.value && typeof value === "string") {
        el.value = value;
        if (draft.auto && draft.auto[el.name] === value) {
          auto[el.name] = value;
          el.classList.add("filled");
        }
      }
    });
  }
  restoreDraft();
  form.addEventListener("input", (event) => {  // typed over what autofill put there: the person's now, not marked
    const el = event.target;
    if (el.classList.contains("filled") && auto[el.name] !== el.value) el.classList.remove("filled");
  });
  form.addEventListener("input", saveDraft);
  form.addEventListener("change", saveDraft);

  // A web address written without its scheme (linkedin.com/in/ada, as most people write it) is completed here as
  // the server completes it (forms.complete_url), once the pattern both check accepts it.
  function complete(el) {
    const field = el.closest(".field[data-rules]");
    const rules = field && JSON.parse(field.dataset.rules);
    const v = el.value.trim();
    if (rules && rules.pattern && v && !/^https?:\/\//i.test(v) && new RegExp(rules.pattern, rules.flags).test(v)) {
      el.value = "https://" + v;
    }
  }
  form.querySelectorAll("input[type=url]").forEach((el) => el.addEventListener("change", () => complete(el)));

  // The resume fills name, email, phone, links, current company and location as soon as it is chosen: the server
  // reads it and forgets it (POST /api/v1/autofill). A field is filled when empty or still holding what autofill
  // put there, so a second resume replaces the first one's details (and clears those it does not give), and
  // nothing the candidate typed is touched; all stay editable.
  const resume = form.querySelector("#f-resume");
  const said = form.querySelector(".autofill-status");
  const SITES = ["linkedin", "github", "gitlab", "twitter"];
  const PERSONAL = ["fullName", "email", "phone", "currentCompany", "currentLocation"];
  const ours = (el) => !el.value.trim() || auto[el.name] === el.value;
  function fill(found) {
    const want = new Map();  // control -> the value this resume gives it
    PERSONAL.forEach((name) => {
      const el = form.elements.namedItem(name);
      if (el instanceof HTMLInputElement && typeof found[name] === "string" && found[name]) want.set(el, found[name]);
    });
    const links = Array.from(form.querySelectorAll('input[type=url][name^="urls["]'));
    const site = (el) => el.name.slice(5, -1).toLowerCase();
    const rest = [];
    (found.urls || []).forEach((url) => {
      let host = "";
      try { host = new URL(url).hostname.toLowerCase(); } catch (e) { return; }
      const own = links.find((el) => host.includes(site(el)));
      if (own && !want.has(own)) want.set(own, url);
      else if (!own) rest.push(url);
    });
    rest.forEach((url) => {
      const free = links.find((el) => !want.has(el) && ours(el) && !SITES.some((s) => site(el).includes(s)));
      if (free) want.set(free, url);
    });
    kept().forEach((el) => {  // the last resume's details this one does not give
      if (auto[el.name] !== undefined && auto[el.name] === el.value && !want.has(el)) {
        el.value = "";
        el.classList.remove("filled");
        delete auto[el.name];
      } else if (auto[el.name] !== undefined && auto[el.name] !== el.value) delete auto[el.name];  // typed over
    });
    want.forEach((value, el) => {
      if (!ours(el)) return;
      el.value = value;
      auto[el.name] = value;
      el.classList.add("filled");
    });
    saveDraft();
    return want.size;
  }
  if (resume && said && form.dataset.autofill) {
    resume.addEventListener("change", async () => {
      if (!resume.files.length) return;
      said.textContent = said.dataset.reading;
      const body = new FormData();
      body.append("resume", resume.files[0]);
      try {
        const answer = await fetch(form.dataset.autofill, { method: "POST", body });
        const found = answer.ok ? fill(await answer.json()) : 0;
        said.textContent = found ? said.dataset.filled : said.dataset.nothing;
      } catch (e) {
        said.textContent = said.dataset.nothing;
      }
    });
  }

  form.addEventListener("submit", (event) => {
    form.querySelectorAll("input[type=url]").forEach(complete);
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
    if (!failed.length) {
      try { sessionStorage.removeItem(DRAFT); } catch (e) { /* storage refused */ }
      return;
    }
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
