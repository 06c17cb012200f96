// docflow console: progressive enhancement only. Every page works without
// this file; with it, changes ask for confirmation and the overview
// refreshes itself while its tab is visible.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    // The button pressed may ask its own question (a form with two actions).
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
  var seconds = parseInt(document.body && document.body.getAttribute("data-refresh-seconds"), 10);
  if (seconds > 0) {
    window.setInterval(function () {
      // Do not reload under someone typing a reason, or in a hidden tab.
      var active = document.activeElement;
      var typing = active && (active.tagName === "INPUT" || active.tagName === "SELECT");
      if (document.visibilityState === "visible" && !typing) {
        window.location.reload();
      }
    }, seconds * 1000);
  }
})();
