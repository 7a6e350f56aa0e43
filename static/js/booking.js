// The booking page, a little better with JavaScript; it works fully without it.
// 1. No time zone in the address: show the times in the browser's own zone (reload with ?tz=...).
// 2. The zone list becomes a search box (city, country, zone name) listing each zone's offset and local
//    time, the browser's zone first; choosing one applies it at once (no button).
// 3. After htmx swaps in a day, its first time takes the focus (keyboard users land on the times; on a
//    phone the times scroll into view). Without JavaScript the `autofocus` attribute does the same.
// 4. A failed form's error summary takes the focus; its links focus the field they name.
(() => {
  const form = document.getElementById("tz-form");
  const select = document.getElementById("tz");

  function detectedZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      return "";
    }
  }

  function apply(zone) {
    select.value = zone;
    const url = new URL(form.action || window.location.href, window.location.href);
    url.search = new URLSearchParams(new FormData(form)).toString();
    window.location.assign(url.toString());
  }

  function localTime(zone, locale) {
    try {
      return new Intl.DateTimeFormat(locale, { timeZone: zone, hour: "2-digit", minute: "2-digit" }).format(new Date());
    } catch (error) {
      return "";
    }
  }

  function enhance() {
    const locale = document.documentElement.lang || undefined;
    const detected = detectedZone();
    const label = document.getElementById("tz-label");
    const button = document.getElementById("tz-apply");
    const current = select.value;
    const zones = Array.from(select.options).map((option) => ({
      value: option.value,
      text: option.textContent.trim(),
      search: `${option.textContent} ${option.value.replace(/_/g, " ")}`.toLowerCase(),
    }));
    const ordered = [];
    const first = zones.find((zone) => zone.value === detected);
    if (first) ordered.push({ ...first, detected: true });
    for (const zone of zones) if (zone.value !== detected) ordered.push(zone);

    const box = document.createElement("div");
    box.className = "tz-combo";
    const input = document.createElement("input");
    input.type = "text";
    input.id = "tz-search";
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", "tz-list");
    input.setAttribute("autocomplete", "off");
    input.setAttribute("spellcheck", "false");
    input.placeholder = form.dataset.searchLabel || "";
    const chosen = zones.find((zone) => zone.value === current);
    input.value = chosen ? chosen.text : current;
    const list = document.createElement("ul");
    list.id = "tz-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-labelledby", "tz-label");
    list.hidden = true;
    const status = document.createElement("p");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    box.append(input, list, status);
    select.hidden = true;
    select.setAttribute("aria-hidden", "true");
    select.tabIndex = -1;
    select.after(box);
    if (button) button.hidden = true;
    label.htmlFor = "tz-search";

    let shown = [];
    let active = -1;

    function render(query) {
      const words = query.toLowerCase().split(/\s+/).filter(Boolean);
      shown = ordered.filter((zone) => words.every((word) => zone.search.includes(word))).slice(0, 60);
      list.replaceChildren();
      shown.forEach((zone, index) => {
        const item = document.createElement("li");
        item.id = `tz-option-${index}`;
        item.setAttribute("role", "option");
        item.dataset.value = zone.value;
        item.setAttribute("aria-selected", zone.value === current ? "true" : "false");
        const place = document.createElement("span");
        place.className = "tz-place";
        place.textContent = zone.text;
        const meta = document.createElement("span");
        meta.className = "tz-meta";
        const time = localTime(zone.value, locale);
        meta.textContent = [zone.detected ? form.dataset.detectedLabel : "", zone.value, time].filter(Boolean).join(" · ");
        item.append(place, meta);
        item.addEventListener("mousedown", (event) => event.preventDefault());
        item.addEventListener("click", () => apply(zone.value));
        list.append(item);
      });
      if (!shown.length) {
        const empty = document.createElement("li");
        empty.className = "tz-empty";
        empty.textContent = form.dataset.emptyLabel || "";
        list.append(empty);
      }
      status.textContent = (form.dataset.resultsLabel || "").replace("{count}", String(shown.length));
      move(shown.length ? 0 : -1);
    }

    function move(index) {
      const items = list.querySelectorAll("[role=option]");
      items.forEach((item) => item.classList.remove("active"));
      active = index;
      if (index >= 0 && items[index]) {
        items[index].classList.add("active");
        input.setAttribute("aria-activedescendant", items[index].id);
        items[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function open(query) {
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      render(query);
    }

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    input.addEventListener("focus", () => {
      input.select();
      open("");
    });
    input.addEventListener("input", () => open(input.value));
    input.addEventListener("blur", () => {
      close();
      input.value = chosen ? chosen.text : current;
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (list.hidden) open(input.value);
        const step = event.key === "ArrowDown" ? 1 : -1;
        move(Math.max(0, Math.min(shown.length - 1, active + step)));
      } else if (event.key === "Enter") {
        event.preventDefault();
        if (!list.hidden && active >= 0 && shown[active]) apply(shown[active].value);
      } else if (event.key === "Escape") {
        close();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!list.hidden && active >= 0 && shown[active]) apply(shown[active].value);
    });
  }

  if (form && select) {
    if (form.dataset.tzGiven !== "1") {
      const zone = detectedZone();
      const known = Array.from(select.options).some((option) => option.value === zone);
      if (zone && zone !== form.dataset.bookingTz && known) {
        const url = new URL(window.location.href);
        url.searchParams.set("tz", zone);
        window.location.replace(url.toString());
        return;
      }
    }
    enhance();
  }

  // htmx does not focus `autofocus` elements it swaps in on every version: do it here, once settled.
  document.body.addEventListener("htmx:afterSettle", (event) => {
    const swapped = event.detail && event.detail.target;
    if (!swapped || swapped.id !== "slot-picker") return;
    const target = document.getElementById("slot-picker");  // outerHTML: the event names the old element
    if (!target) return;
    const first = target.querySelector(".slots a.slot[autofocus]");
    if (!first) return;
    first.focus({ preventScroll: true });
    const box = first.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) {
      // Stacked on a phone: bring the day's times up, with their heading.
      const day = target.querySelector("#day-slots") || first;
      day.scrollIntoView({ block: "start" });
    }
  });

  const summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
    summary.addEventListener("click", (event) => {
      const link = event.target.closest("a[href^='#']");
      if (!link) return;
      const field = document.getElementById(link.getAttribute("href").slice(1));
      if (!field) return;
      event.preventDefault();
      const focusable = field.matches("input, select, textarea") ? field : field.querySelector("input, select, textarea");
      (focusable || field).focus();
      field.scrollIntoView({ block: "center" });
    });
  }
})();
