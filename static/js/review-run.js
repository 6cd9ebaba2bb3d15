// A running review run's page follows its task until it is done, then shows what the rules would have added.
(function () {
  var card = document.querySelector("[data-progress-url]");
  if (!card) { return; }
  var url = card.getAttribute("data-progress-url");
  function poll() {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (p) {
      document.getElementById("review-bar").value = p.percent;
      document.getElementById("review-state").textContent = p.state.toLowerCase();
      document.getElementById("review-count").textContent = p.done + " / " + p.total;
      if (p.finished) { window.location.reload(); } else { setTimeout(poll, 1500); }
    }).catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1500);
})();
