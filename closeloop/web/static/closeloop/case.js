// The case page: "Insert" on a protocol sheet's approved answer puts its text into the
// message being written (at the cursor, else at the end) and opens the composer.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-insert]");
  if (!button) return;
  const body = document.getElementById("body");
  if (!body) return;
  const text = button.dataset.insert;
  const details = body.closest("details");
  if (details) details.open = true;
  const at = body.selectionStart ?? body.value.length;
  const end = body.selectionEnd ?? at;
  body.value = body.value.slice(0, at) + text + body.value.slice(end);
  body.focus();
  body.setSelectionRange(at + text.length, at + text.length);
  button.textContent = "Inserted";
});
