// Progressive touch: a "Copy" button beside each read-only link; without JavaScript the text is selectable.
// The button's data-copied holds the translated "Copied" it shows for two seconds.
document.querySelectorAll("button[data-copy]").forEach((button) => {
  if (!navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    const source = document.querySelector(button.dataset.copy);
    navigator.clipboard.writeText(source.value).then(() => {
      button.dataset.label = button.dataset.label || button.textContent;
      button.textContent = button.dataset.copied || button.dataset.label;
      setTimeout(() => { button.textContent = button.dataset.label; }, 2000);
    });
  });
});
