// The result page's Print button (the print view itself is print CSS; this only opens the dialog).
(function () {
  "use strict";
  var button = document.getElementById("print");
  if (!button) { return; }
  button.classList.remove("hidden");
  button.addEventListener("click", function () { window.print(); });
}());
