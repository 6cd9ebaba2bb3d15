// The review queue's "tick all" box: ticks or clears every row's box of the same table.
document.addEventListener("change", function (event) {
  var box = event.target;
  if (!box.matches("input.select-all")) {
    return;
  }
  var table = box.closest("table");
  table.querySelectorAll('tbody input[type="checkbox"][name="entries"]').forEach(function (row) {
    row.checked = box.checked;
  });
});
