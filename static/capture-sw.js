// The capture page's service worker: GET requests go to the network first and fall back to what the page cached,
// so the page (and its script and style) load again while the venue's network is down. Captures are POSTs: they
// are never cached or answered here (the page keeps them in IndexedDB until the console accepts them).
self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });
self.addEventListener("fetch", function (event) {
  if (event.request.method !== "GET") { return; }
  event.respondWith(fetch(event.request).then(function (answer) {
    if (answer.ok && !answer.redirected) {  // a page that sent elsewhere (to sign in) is not this page offline
      var copy = answer.clone();
      caches.open("jobsite-capture").then(function (cache) { cache.put(event.request, copy); });
    }
    return answer;
  }, function () {
    return caches.match(event.request, { ignoreVary: true }).then(function (hit) {
      return hit || new Response("Offline, and this page was not saved for offline use.",
                                 { status: 503, headers: { "Content-Type": "text/plain" } });
    });
  }));
});
