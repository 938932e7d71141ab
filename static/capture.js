// The capture page: every capture is kept in IndexedDB first, then sent, each with its own client_id, so that
// nothing typed is lost when the venue's network drops and a capture sent twice is one person. The outbox line
// says how many wait; they go when the network is back (online event, a timer, the next save or a reload).
// The outbox is the signed-in recruiter's (data-owner): on a phone passed from one recruiter to the next, the next
// one never sees nor sends the previous one's captures; signing out clears it all (Clear-Site-Data).
// Nothing is stuck: a save says "Saved ✓" with the day's count and lists today's captures (one still waiting can be
// edited or undone); a capture the console refused opens for editing and goes again with the same client_id (the
// console kept nothing of it); a session that ended is signed in again inside the page, the outbox untouched. A
// sent capture is kept as its name alone, for today's list, and dropped the next day.
(function () {
  "use strict";
  var form = document.getElementById("capture");
  var outbox = document.getElementById("outbox");
  var problem = document.getElementById("problem");
  var refused = document.getElementById("refused");
  var recent = document.getElementById("recent");
  var saved = document.getElementById("saved");
  var signin = document.getElementById("signin");
  var bar = document.querySelector(".capture-bar");
  var name = document.getElementById("c-name");
  var STORE = "outbox";
  var RECENT = 10;  // today's captures listed
  var sending = false;
  var lastSaved = "";

  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open("jobsite-capture", 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE, { keyPath: "client_id" }); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function tx(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction(STORE, mode);
        var result = work(t.objectStore(STORE));
        t.oncomplete = function () { resolve(result && "result" in result ? result.result : undefined); };
        t.onerror = function () { reject(t.error); };
      });
    });
  }

  function all() {
    return tx("readonly", function (s) { return s.getAll(); }).then(function (items) {
      return (items || []).filter(function (x) {
        return x.event === form.dataset.event && x.owner === form.dataset.owner;
      })
        .sort(function (a, b) { return a.at - b.at; });
    });
  }

  function newId() {  // crypto.getRandomValues works without a secure context, unlike randomUUID
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  function startOfToday() { var d = new Date(); d.setHours(0, 0, 0, 0); return d.getTime(); }

  function button(text, label, action) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "link";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", action);
    return b;
  }

  function drop(item) { return tx("readwrite", function (s) { s.delete(item.client_id); }).then(show); }

  function show() {
    return all().then(function (items) {
      var waiting = items.filter(function (x) { return !x.error && !x.sent; });
      var bad = items.filter(function (x) { return x.error && !x.editing; });
      var today = items.filter(function (x) { return x.at >= startOfToday(); });
      outbox.dataset.waiting = String(waiting.length);
      outbox.textContent = waiting.length === 0 ? "Nothing waiting to send." :
        waiting.length + (waiting.length === 1 ? " capture waits" : " captures wait") + " to be sent" +
        (navigator.onLine ? "." : " (offline: they go when the network is back).");
      saved.dataset.today = String(today.length);
      saved.textContent = form.dataset.editing ? saved.textContent :
        (lastSaved ? "Saved \u2713 " + lastSaved + " \u00b7 " : "") +
        (today.length ? today.length + " today" : "");
      var list = refused.querySelector("ul");
      list.textContent = "";
      bad.forEach(function (x) {
        var li = document.createElement("li");
        var who = x.body.name || "?";
        li.textContent = who + ": " + x.error + " ";
        li.appendChild(button("Edit", "Edit the capture of " + who, function () { edit(x); }));
        li.appendChild(document.createTextNode(" "));
        li.appendChild(button("Delete", "Delete the capture of " + who, function () { drop(x); }));
        list.appendChild(li);
      });
      refused.hidden = bad.length === 0;
      var shown = today.filter(function (x) { return !x.error; }).reverse().slice(0, RECENT);
      var lines = recent.querySelector("ol");
      lines.textContent = "";
      shown.forEach(function (x) {
        var li = document.createElement("li");
        var who = x.body.name || "?";
        li.textContent = who + (x.sent ? " \u2013 sent \u2713" : x.editing ? " \u2013 being edited" : " \u2013 waiting") + " ";
        if (!x.sent && !x.editing) {
          li.appendChild(button("Edit", "Edit the capture of " + who, function () { edit(x); }));
          li.appendChild(document.createTextNode(" "));
          li.appendChild(button("Undo", "Undo the capture of " + who, function () { drop(x); }));
        }
        lines.appendChild(li);
      });
      recent.hidden = shown.length === 0;
      room();
    });
  }

  // The sticky bar's height kept clear above whatever takes focus, so a focused field never sits under it.
  function room() { document.documentElement.style.scrollPaddingTop = (bar.offsetHeight + 16) + "px"; }

  function top() {  // the next person (or the one being edited) from the start of the form, under the bar
    name.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }

  // A waiting or refused capture back in the form: it is not sent while there, and saving it puts it back with
  // its client_id (a refused one was never kept by the console, a waiting one never reached it).
  function edit(item) {
    item.editing = true;
    return tx("readwrite", function (s) { s.put(item); }).then(function () {
      var body = item.body;
      form.reset();
      form.dataset.editing = item.client_id;
      form.elements.namedItem("name").value = body.name || "";
      form.elements.namedItem("email").value = body.email || "";
      form.elements.namedItem("phone").value = body.phone || "";
      form.elements.namedItem("note").value = body.note || "";
      form.querySelectorAll("input[name=postings]").forEach(function (el) {
        el.checked = (body.postings || []).indexOf(el.value) >= 0;
      });
      form.querySelectorAll("input[name=rating]").forEach(function (el) {
        el.checked = Number(el.value) === (body.rating || 0);
      });
      saved.textContent = "Editing " + (body.name || "?") + (item.error ? ": " + item.error : "") +
        ". Save to send it again.";
      top();
      return show();
    });
  }

  function current(item) {  // the item as stored now: undone or opened for editing since the round began
    return tx("readonly", function (s) { return s.get(item.client_id); });
  }

  function send() {
    if (sending || !signin.hidden) { return Promise.resolve(); }
    sending = true;
    var more = false;
    return all().then(function (items) {
      var chain = Promise.resolve(true);
      var known = items.map(function (x) { return x.client_id; });
      items.filter(function (x) { return !x.error && !x.sent && !x.editing; }).forEach(function (first) {
        chain = chain.then(function (goOn) {
          if (!goOn) { return false; }
          return current(first).then(function (item) {
            if (!item || item.editing || item.error || item.sent) { return true; }
            return fetch(form.dataset.endpoint, {
              method: "POST", credentials: "same-origin",
              headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
              body: JSON.stringify(item.body)
            }).then(function (answer) {
              if (answer.status === 200 || answer.status === 202) {
                var kept = { client_id: item.client_id, event: item.event, owner: item.owner, at: item.at,
                             sent: Date.now(), body: { name: item.body.name } };
                return tx("readwrite", function (s) { s.put(kept); }).then(function () { return true; });
              }
              if (answer.status === 422) {
                return answer.json().then(function (data) {
                  item.error = Object.keys(data.errors || {}).map(function (k) { return k + ": " + data.errors[k]; })
                    .join("; ") || data.message;
                  return tx("readwrite", function (s) { s.put(item); });
                }).then(function () { return true; });
              }
              if (answer.status === 401 || answer.status === 400 || answer.status === 403) {
                return renew(answer.status).then(function (renewed) {  // a fresh token while the session lives,
                  more = more || renewed;  // then this one goes again at once; else a sign-in here
                  return renewed;
                });
              }
              return false;  // keep it; try again later
            }, function () { return false; });  // no network: keep it
          });
        });
      });
      return chain.then(function (allSent) {
        return allSent && all().then(function (now) {
          more = more || now.some(function (x) { return !x.error && !x.sent && !x.editing && known.indexOf(x.client_id) < 0; });
        });
      });
    }).then(function () {
      sending = false;
      return show().then(function () { return more ? send() : undefined; });  // saved while these were sent
    }, function () { sending = false; return show(); });
  }

  // The page's session, read again from the capture page itself: its token and who is signed in. A recruiter other
  // than the one this outbox belongs to gets the page afresh (their own outbox), never this one's captures.
  function adopt(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("capture");
    if (!fresh) { return false; }
    if (fresh.dataset.owner !== form.dataset.owner) { location.reload(); return false; }
    form.dataset.csrf = fresh.dataset.csrf;
    return true;
  }

  function renew(status) {
    var before = form.dataset.csrf;
    return fetch(location.href, { credentials: "same-origin", cache: "no-store" }).then(function (answer) {
      return answer.text().then(function (html) {
        if (answer.ok && new URL(answer.url).pathname === location.pathname && adopt(html)) {
          if (form.dataset.csrf !== before) { return true; }  // the session lives with a new token: go on with it
          problem.textContent = "The console refused a capture (" + status + "); it stays on this phone.";
          problem.hidden = false;  // not the token: tried again later, never in a loop
          return false;
        }
        problem.textContent = status === 403 ? "This account can view but not capture: sign in as a recruiter " +
          "who can. The captures stay on this phone." : "";
        problem.hidden = status !== 403;
        signin.hidden = false;
        document.getElementById("s-email").focus({ preventScroll: true });
        signin.scrollIntoView({ block: "start" });
        return false;
      });
    }, function () { return false; });
  }

  document.getElementById("signin-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var login = event.target;
    var error = document.getElementById("signin-error");
    if (!login.reportValidity()) { return; }
    // the sign-in page's own form: its CSRF token first, then the post, whose answer is this page when it worked
    fetch(login.dataset.login, { credentials: "same-origin", cache: "no-store" }).then(function (answer) {
      return answer.text();
    }).then(function (html) {
      var token = new DOMParser().parseFromString(html, "text/html").querySelector("input[name=csrf_token]");
      var body = new URLSearchParams();
      body.append("csrf_token", token ? token.value : "");
      body.append("email", login.elements.namedItem("email").value);
      body.append("password", login.elements.namedItem("password").value);
      return fetch(login.dataset.login, { method: "POST", credentials: "same-origin", body: body });
    }).then(function (answer) {
      return answer.text().then(function (html) {
        if (answer.ok && new URL(answer.url).pathname === location.pathname) {
          if (!adopt(html)) { return; }
          login.reset();
          error.hidden = true;
          signin.hidden = true;
          problem.hidden = true;
          top();
          return send();
        }
        var said = new DOMParser().parseFromString(html, "text/html").getElementById("login-error");
        error.textContent = said ? said.textContent : "The console did not sign you in (" + answer.status + ").";
        error.hidden = false;
      });
    }, function () {
      error.textContent = "No network: sign in again when it is back. The captures stay on this phone.";
      error.hidden = false;
    });
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!form.reportValidity()) { return; }
    var data = new FormData(form);
    var again = form.dataset.editing || "";
    var body = {
      name: data.get("name"), email: data.get("email"), phone: data.get("phone") || "",
      postings: data.getAll("postings"), note: data.get("note") || "",
      rating: Number(data.get("rating") || 0), client_id: again || newId()
    };
    var saving = again ? current({ client_id: again }) : Promise.resolve(null);
    saving.then(function (before) {
      var item = { client_id: body.client_id, event: form.dataset.event, owner: form.dataset.owner,
                   at: before ? before.at : Date.now(), body: body };
      return tx("readwrite", function (s) { s.put(item); });
    }).then(function () {
      form.reset();
      delete form.dataset.editing;
      lastSaved = body.name;
      problem.hidden = true;
      top();
      return show();
    }).then(send);
  });

  window.addEventListener("online", send);
  window.addEventListener("offline", show);
  window.addEventListener("resize", room);
  setInterval(send, 10000);
  // On opening: yesterday's sent names go, and a capture left open for editing (the page closed) waits again.
  all().then(function (items) {
    return tx("readwrite", function (s) {
      items.forEach(function (x) {
        if (x.sent && x.at < startOfToday()) { s.delete(x.client_id); }
        else if (x.editing) { delete x.editing; s.put(x); }
      });
    });
  }).then(show).then(send);

  // Installable and usable offline: the service worker answers from its cache when the network is gone; the page
  // puts itself and what it uses there now, while it is online.
  if ("serviceWorker" in navigator && window.caches) {
    navigator.serviceWorker.register(form.dataset.worker).then(function () {
      var urls = [location.href];
      document.querySelectorAll("link[rel=stylesheet], link[rel=icon], link[rel=manifest], script[src]")
        .forEach(function (el) { urls.push(el.href || el.src); });
      return caches.open("jobsite-capture").then(function (cache) { return cache.addAll(urls); });
    }).then(function () { document.body.dataset.offlineReady = "true"; }, function () {});
  }
}());
