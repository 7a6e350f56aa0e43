// Progressive touches only: every form works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // Fill an untouched time-zone field with the browser's own zone.
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll("input[data-detect-tz]").forEach((input) => {
    if (zone && !input.dataset.touched && !input.closest(".has-error")) input.value = zone;
    input.addEventListener("input", () => { input.dataset.touched = "1"; });
  });
});

// htmx does not swap error answers other than 422; say so instead of failing silently.
document.addEventListener("htmx:responseError", (event) => {
  const banner = document.getElementById("error-banner");
  if (!banner) return;
  const status = event.detail.xhr.status;
  banner.textContent = status === 400
    ? "This form has expired. Reload the page and try again; nothing was saved."
    : `Something went wrong (${status}). Nothing was saved; reload the page and try again.`;
  banner.hidden = false;
});
