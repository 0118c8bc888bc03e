// Back-office behaviour that Flask-Admin writes as inline handlers, which the site's
// Content-Security-Policy (script-src 'self') does not run.
(function () {
  "use strict";

  var text = document.getElementById("staff-page-text");
  var deleteQuestion = text ? text.getAttribute("data-delete-confirm") : "";

  // Flask-Admin names the narrow-window menu button in English ("Toggle navigation")
  var menuButton = document.querySelector(".navbar-toggler");
  if (menuButton && text) {
    menuButton.setAttribute("aria-label", text.getAttribute("data-menu-label"));
  }

  // list actions ("With selected" menu): actions.html marks each item with its action name
  document.addEventListener("click", function (event) {
    var item = event.target.closest("[data-model-action]");
    if (!item) {
      return;
    }
    event.preventDefault();
    if (window.modelActions) {
      window.modelActions.execute(item.getAttribute("data-model-action"));
    }
  });

  // the delete buttons of the list, the edit page and the details page ask first
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var action = form.getAttribute("action") || "";
    if (/\/delete\/?(\?|$)/.test(action) && !window.confirm(deleteQuestion)) {
      event.preventDefault();
    }
  }, true);

  // the filter menu's items (admin/model/layout.html) and Flask-Admin's and select2's
  // "javascript:void(0)" links only run scripts; following them would scroll to the top or be
  // refused by the Content-Security-Policy
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a");
    if (!link) {
      return;
    }
    var href = link.getAttribute("href") || "";
    if (link.matches(".field-filters a.filter") || /^javascript:/i.test(href)) {
      event.preventDefault();
    }
  });
})();
