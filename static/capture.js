// The capture page: every capture is kept in IndexedDB first, then sent, each with its own client_id, so that
// nothing typed is lost when the venue's network drops and a capture sent twice is one person. The outbox line
// says how many wait; they go when the network is back (online event, a timer, the next save or a reload).
// The outbox is the signed-in recruiter's (data-owner): on a phone passed from one recruiter to the next, the next
// one never sees nor sends the previous one's captures; signing out clears it all (Clear-Site-Data). A capture the
// console refused stays, with its reason, until the recruiter deletes it.
(function () {
  "use strict";
  var form = document.getElementById("capture");
  var outbox = document.getElementById("outbox");
  var problem = document.getElementById("problem");
  var refused = document.getElementById("refused");
  var STORE = "outbox";
  var sending = false;

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

  function show() {
    return all().then(function (items) {
      var waiting = items.filter(function (x) { return !x.error; });
      var bad = items.filter(function (x) { return x.error; });
      outbox.dataset.waiting = String(waiting.length);
      outbox.textContent = waiting.length === 0 ? "Nothing waiting to send." :
        waiting.length + (waiting.length === 1 ? " capture waits" : " captures wait") + " to be sent" +
        (navigator.onLine ? "." : " (offline: they go when the network is back).");
      var list = refused.querySelector("ul");
      list.textContent = "";
      bad.forEach(function (x) {
        var li = document.createElement("li");
        var drop = document.createElement("button");
        li.textContent = (x.body.name || "?") + ": " + x.error + " ";
        drop.type = "button";
        drop.className = "link";
        drop.textContent = "Delete";
        drop.setAttribute("aria-label", "Delete the capture of " + (x.body.name || "?"));
        drop.addEventListener("click", function () {
          tx("readwrite", function (s) { s.delete(x.client_id); }).then(show);
        });
        li.appendChild(drop);
        list.appendChild(li);
      });
      refused.hidden = bad.length === 0;
    });
  }

  function send() {
    if (sending) { return Promise.resolve(); }
    sending = true;
    var more = false;
    return all().then(function (items) {
      var chain = Promise.resolve(true);
      var known = items.map(function (x) { return x.client_id; });
      items.filter(function (x) { return !x.error; }).forEach(function (item) {
        chain = chain.then(function (goOn) {
          if (!goOn) { return false; }
          return fetch(form.dataset.endpoint, {
            method: "POST", credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
            body: JSON.stringify(item.body)
          }).then(function (answer) {
            if (answer.status === 200 || answer.status === 202) {
              return tx("readwrite", function (s) { s.delete(item.client_id); }).then(function () { return true; });
            }
            if (answer.status === 422) {
              return answer.json().then(function (data) {
                item.error = Object.keys(data.errors || {}).map(function (k) { return k + ": " + data.errors[k]; })
                  .join("; ") || data.message;
                return tx("readwrite", function (s) { s.put(item); });
              }).then(function () { return true; });
            }
            if (answer.status === 401 || answer.status === 400 || answer.status === 403) {
              problem.textContent = "Captures are kept here, but the console refused them (" + answer.status +
                "): sign in again in another tab, then come back.";
              problem.hidden = false;
            }
            return false;  // keep it; try again later
          }, function () { return false; });  // no network: keep it
        });
      });
      return chain.then(function (allSent) {
        return allSent && all().then(function (now) { more = now.some(function (x) { return !x.error && known.indexOf(x.client_id) < 0; }); });
      });
    }).then(function () {
      sending = false;
      return show().then(function () { return more ? send() : undefined; });  // saved while these were sent
    }, function () { sending = false; return show(); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!form.reportValidity()) { return; }
    var data = new FormData(form);
    var body = {
      name: data.get("name"), email: data.get("email"), phone: data.get("phone") || "",
      postings: data.getAll("postings"), note: data.get("note") || "",
      rating: Number(data.get("rating") || 0), client_id: newId()
    };
    var item = { client_id: body.client_id, event: form.dataset.event, owner: form.dataset.owner, at: Date.now(),
                 body: body };
    tx("readwrite", function (s) { s.put(item); }).then(function () {
      form.reset();
      problem.hidden = true;
      document.getElementById("c-name").focus();
      return show();
    }).then(send);
  });

  window.addEventListener("online", send);
  window.addEventListener("offline", show);
  setInterval(send, 10000);
  show().then(send);

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
