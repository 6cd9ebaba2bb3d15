// A running re-rating job's page follows its progress until the job is done, then shows the result.
(function () {
  var card = document.querySelector("[data-progress-url]");
  if (!card) { return; }
  var url = card.getAttribute("data-progress-url");
  function poll() {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (p) {
      document.getElementById("rerate-bar").value = p.percent;
      document.getElementById("rerate-status").textContent = p.status_display;
      document.getElementById("rerate-count").textContent = p.done + " / " + p.total;
      document.getElementById("rerate-changed").textContent = p.changed;
      if (p.finished) { window.location.reload(); } else { setTimeout(poll, 2000); }
    }).catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
})();
