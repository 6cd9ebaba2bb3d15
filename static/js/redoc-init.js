/* Starts Redoc on the API schema (templates/drf_spectacular/redoc.html): a file, as the portal's CSP runs no inline script. */
(function () {
  "use strict";
  var container = document.getElementById("redoc-container");
  Redoc.init(container.getAttribute("data-spec-url"), {}, container);
})();
