// The booking page, a little better with JavaScript; it works fully without it.
// 1. No time zone in the address: show the times in the browser's own zone (reload with ?tz=...).
// 2. Picking another zone in the list applies it at once (the button stays for keyboard and no-JS use).
(() => {
  const form = document.getElementById("tz-form");
  if (!form) return;
  const select = document.getElementById("tz");
  if (select) {
    select.addEventListener("change", () => {
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    });
  }
  if (form.dataset.tzGiven === "1") return;
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    return;
  }
  if (!zone || zone === form.dataset.bookingTz) return;
  if (select && !Array.from(select.options).some((option) => option.value === zone)) return;
  const url = new URL(window.location.href);
  url.searchParams.set("tz", zone);
  window.location.replace(url.toString());
})();
