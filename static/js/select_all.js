// A list's "select all" box ticks or clears every row's box in the same table.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!box.matches("input.select-all")) return;
  const table = box.closest("table");
  if (!table) return;
  for (const row of table.querySelectorAll("tbody input[type=checkbox]")) row.checked = box.checked;
});
