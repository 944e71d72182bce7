// The case page: "Insert" on a protocol sheet's approved answer puts its text into the
// message being written and opens the composer. An untouched draft is replaced (the
// answer has its own greeting and signature); text the owner wrote is kept, and the
// answer goes where the cursor was, or at the end.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-insert]");
  if (!button) return;
  const body = document.getElementById("body");
  if (!body) return;
  const text = button.dataset.insert;
  const details = body.closest("details");
  if (details) details.open = true;
  let at;
  if (body.value === body.defaultValue || !body.value.trim()) {
    body.value = text;
    at = text.length;
  } else {
    const focused = body.dataset.touched === "yes";
    const start = focused ? body.selectionStart : body.value.length;
    const end = focused ? body.selectionEnd : body.value.length;
    const glue = start > 0 && !focused ? "\n\n" : "";
    body.value = body.value.slice(0, start) + glue + text + body.value.slice(end);
    at = start + glue.length + text.length;
  }
  body.focus();
  body.setSelectionRange(at, at);
  button.textContent = "Inserted";
});
document.addEventListener("input", (event) => {
  if (event.target.id === "body") event.target.dataset.touched = "yes";
});
