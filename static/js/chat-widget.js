/* Termin chat widget: a launcher button and a panel (an iframe of a Termin page) on the customer's site.
 *
 * The host page never sees Termin's cookies or tokens: the panel is another origin, and the two speak
 * only by postMessage, each checking the other's origin. The one thing kept here is the conversation's
 * secret, in this site's own localStorage (first-party, so neither third-party cookie blocking nor
 * storage partitioning loses it); the panel gets it in its URL fragment, which is never sent to a server.
 * Served by GET /widget.js with the tenant's settings in place of the marker below (app/chat/widget.py).
 */
(function () {
  "use strict";
  var config = __TERMIN_CONFIG__;
  if (window.__terminChat) { return; }  // the snippet pasted twice
  window.__terminChat = true;

  var panelOrigin = new URL(config.panel).origin;
  var storageKey = "termin-chat:" + config.widget;
  var memory = null;  // when localStorage is unavailable (a private window), the secret lives this long

  function readSecret() {
    try { return window.localStorage.getItem(storageKey) || memory; } catch (e) { return memory; }
  }
  function writeSecret(value) {
    memory = value;
    try { window.localStorage.setItem(storageKey, value); } catch (e) { /* kept in memory */ }
  }

  var host = document.createElement("div");
  host.setAttribute("data-termin-chat", "");
  // A shadow root (open, so assistive tools and tests reach the button) keeps the site's CSS off the launcher and ours off the site.
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var side = config.position === "left" ? "left" : "right";
  var style = document.createElement("style");
  style.textContent =
    ".launcher{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483000;border:0;border-radius:999px;" +
    "background:" + config.color + ";color:#fff;font:600 15px/1 system-ui,sans-serif;padding:14px 18px;" +
    "box-shadow:0 6px 20px rgba(0,0,0,.2);cursor:pointer;display:flex;align-items:center;gap:8px}" +
    ".launcher:focus-visible{outline:3px solid #111;outline-offset:2px}" +
    ".launcher svg{width:20px;height:20px;fill:currentColor}" +
    ".frame{position:fixed;bottom:84px;" + side + ":20px;z-index:2147483000;width:380px;height:600px;" +
    "max-width:calc(100vw - 24px);max-height:calc(100vh - 110px);border:0;border-radius:14px;background:#fff;" +
    "box-shadow:0 12px 40px rgba(0,0,0,.25)}" +
    ".frame[hidden]{display:none}" +
    "@media (max-width:480px){.frame{bottom:0;" + side + ":0;width:100vw;max-width:100vw;height:100%;" +
    "max-height:100%;border-radius:0}}";
  root.appendChild(style);

  var button = document.createElement("button");
  button.type = "button";
  button.className = "launcher";
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-label", config.label);
  button.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 ' +
    '1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
  var text = document.createElement("span");
  text.textContent = config.label;
  button.appendChild(text);
  root.appendChild(button);

  var frame = null;

  function open() {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.className = "frame";
      frame.title = config.label;
      var fragment = "o=" + encodeURIComponent(window.location.origin);
      var secret = readSecret();
      if (secret) { fragment += "&s=" + encodeURIComponent(secret); }
      frame.src = config.panel + "#" + fragment;
      root.appendChild(frame);
    }
    frame.hidden = false;
    button.setAttribute("aria-expanded", "true");
    text.textContent = config.close;
  }

  function close() {
    if (frame) { frame.hidden = true; }
    button.setAttribute("aria-expanded", "false");
    text.textContent = config.label;
    button.focus();
  }

  button.addEventListener("click", function () {
    if (frame && !frame.hidden) { close(); } else { open(); }
  });

  window.addEventListener("message", function (event) {
    // Only our own panel, in our own frame, is listened to.
    if (event.origin !== panelOrigin || !frame || event.source !== frame.contentWindow) { return; }
    var data = event.data || {};
    if (data.type === "termin-chat:secret" && typeof data.secret === "string" && /^[\w-]{32,64}$/.test(data.secret)) {
      writeSecret(data.secret);
    } else if (data.type === "termin-chat:forget") {
      memory = null;
      try { window.localStorage.removeItem(storageKey); } catch (e) { /* nothing kept */ }
    } else if (data.type === "termin-chat:close") {
      close();
    }
  });

  function mount() { document.body.appendChild(host); }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
