/* Shows the notifications the shop sends to this browser; a tap opens the message's https link. */
self.addEventListener("push", function (event) {
  var data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = { body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(
    self.registration.showNotification(data.title || "", {
      body: data.body || "",
      image: data.image || undefined,
      data: { url: data.url || "" },
    })
  );
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data || {}).url || "";
  if (url.indexOf("https://") === 0) {
    event.waitUntil(clients.openWindow(url));
  }
});
