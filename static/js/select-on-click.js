// A value meant to be copied (an API token shown once) is selected whole by one click.
document.addEventListener("click", function (event) {
  if (event.target.matches && event.target.matches("[data-select-on-click]")) { event.target.select(); }
});
