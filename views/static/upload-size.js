// Upload forms: a file over the size limit is refused in the browser, before it is sent, so
// that nothing else typed in the form is lost to a request the server has to cut off. The
// limit and the message come from the input's data-max-bytes and data-too-big attributes;
// without this script the server refuses the file and shows the form again.
(function () {
  "use strict";

  function check(input) {
    var limit = parseInt(input.getAttribute("data-max-bytes"), 10);
    var message = input.getAttribute("data-too-big") || "";
    var shown = document.getElementById(input.id + "-size-error");
    var tooBig = false;
    if (input.files && limit) {
      for (var i = 0; i < input.files.length; i += 1) {
        if (input.files[i].size > limit) {
          tooBig = true;
        }
      }
    }
    input.setCustomValidity(tooBig ? message : "");
    if (tooBig) {
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
    }
    if (shown) {
      shown.textContent = tooBig ? message : "";
      shown.hidden = !tooBig;
    }
    return !tooBig;
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input.matches && input.matches('input[type="file"][data-max-bytes]')) {
      check(input);
    }
  });

  document.addEventListener(
    "submit",
    function (event) {
      var inputs = event.target.querySelectorAll('input[type="file"][data-max-bytes]');
      for (var i = 0; i < inputs.length; i += 1) {
        if (!check(inputs[i])) {
          event.preventDefault();
          inputs[i].focus();
          return;
        }
      }
    },
    true
  );
})();
