/* The chat panel, framed by the widget script on the customer's site (app/chat/widget.py).
 *
 * It keeps no cookie and no storage of its own (a cross-site frame may have neither): the conversation's
 * secret comes in the URL fragment from the script, rides on every request in X-Chat-Secret, and when the
 * server starts a conversation the new secret goes back to the script by postMessage, addressed to the
 * origin the script named, and nowhere else.
 */
(function () {
  "use strict";
  var body = document.body;
  var params = new URLSearchParams(window.location.hash.slice(1));
  var parentOrigin = params.get("o");
  var secret = params.get("s");
  if (window.location.hash) {  // out of the address, so it cannot leak into a reload or a copied link
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  body.style.setProperty("--chat-color", body.dataset.color || "#2563eb");

  function tell(message) {
    if (parentOrigin && window.parent !== window) {
      try { window.parent.postMessage(message, parentOrigin); } catch (e) { /* not a usable origin */ }
    }
  }

  document.addEventListener("htmx:configRequest", function (event) {
    if (secret) { event.detail.headers["X-Chat-Secret"] = secret; }
    if (event.detail.verb === "post" && event.detail.elt.id === "composer") {
      var poller = document.getElementById("poller");
      event.detail.parameters.after = (poller && poller.dataset.after) || "0";
      event.detail.parameters.asked = (poller && poller.dataset.asked) || "0";
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    var given = xhr && xhr.getResponseHeader("X-Chat-Secret");
    if (given && given !== secret) {
      secret = given;
      tell({ type: "termin-chat:secret", secret: secret });
    }
    if (xhr && xhr.status === 404 && secret && event.detail.requestConfig.verb === "get") {
      // The conversation is gone (or the secret was never this site's): start afresh.
      secret = null;
      tell({ type: "termin-chat:forget" });
      var poller = document.getElementById("poller");
      if (poller) { poller.replaceWith(Object.assign(document.createElement("div"), { id: "poller" })); }
    }
  });

  function tidy() {
    // A poll and a send may both bring the same message: keep the first of each id.
    var seen = {};
    document.querySelectorAll("#messages > [data-id]").forEach(function (item) {
      if (seen[item.dataset.id]) { item.remove(); } else { seen[item.dataset.id] = true; }
    });
    var list = document.getElementById("messages");
    list.scrollTop = list.scrollHeight;
  }
  document.addEventListener("htmx:oobAfterSwap", tidy);
  document.addEventListener("htmx:afterSettle", tidy);

  document.addEventListener("keydown", function (event) {
    if (event.target.id === "chat-body" && event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      var form = document.getElementById("composer");
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    }
  });

  // Book a meeting: the scheduling page opens inside the panel, the customer's site stays where it is.
  var chatView = document.getElementById("chat-view");
  var bookingView = document.getElementById("booking-view");
  var bookingFrame = document.getElementById("booking-frame");
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-book]") : null;
    if (!link) { return; }
    event.preventDefault();
    bookingFrame.src = link.href;
    chatView.hidden = true;
    bookingView.hidden = false;
  });
  document.getElementById("back-to-chat").addEventListener("click", function () {
    bookingView.hidden = true;
    chatView.hidden = false;
    tidy();
  });
  document.getElementById("chat-close").addEventListener("click", function () {
    tell({ type: "termin-chat:close" });
  });

  function start() {
    if (!secret || !window.htmx) { return; }
    window.htmx.ajax("GET", body.dataset.messagesUrl + "?after=0", { target: "#poller", swap: "none" });
  }
  if (window.htmx) { start(); } else { window.addEventListener("load", start); }
})();
