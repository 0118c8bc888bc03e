// Record forms: "新增一列" copies the last row of an add-a-row table, and the template
// drop-down reloads the page on change. Without this script the form still works: the page
// always renders one spare empty row, and the template picker has its own button.
(function () {
  "use strict";

  function renumber(element, key, from, to) {
    var namePrefix = key + "-" + from + "-";
    var idPrefix = "f-" + namePrefix;
    var newName = key + "-" + to + "-";
    var newId = "f-" + newName;

    ["name", "id", "for"].forEach(function (attribute) {
      var value = element.getAttribute(attribute);
      if (!value) {
        return;
      }
      if (value.indexOf(idPrefix) === 0) {
        element.setAttribute(attribute, newId + value.slice(idPrefix.length));
      } else if (value.indexOf(namePrefix) === 0) {
        element.setAttribute(attribute, newName + value.slice(namePrefix.length));
      }
    });
    element.removeAttribute("aria-describedby");
    element.removeAttribute("aria-invalid");
  }

  function clear(element) {
    var tag = element.tagName.toLowerCase();
    if (tag === "select") {
      element.selectedIndex = 0;
    } else if (tag === "textarea") {
      element.value = "";
    } else if (element.type === "checkbox" || element.type === "radio") {
      element.checked = false;
    } else {
      element.value = "";
    }
  }

  function addRow(button) {
    var key = button.getAttribute("data-table");
    var table = document.querySelector('table[data-table="' + key + '"]');
    var counter = document.getElementById("f-" + key + "-rows");
    if (!table || !counter) {
      return;
    }
    var rows = table.querySelectorAll("tbody > tr.table-row");
    if (!rows.length) {
      return;
    }
    var last = rows[rows.length - 1];
    var from = parseInt(last.getAttribute("data-row-index"), 10);
    var to = parseInt(counter.value, 10);
    var cap = parseInt(table.getAttribute("data-max-rows"), 10);
    if (isNaN(from) || isNaN(to) || (!isNaN(cap) && to >= cap)) {
      return;
    }

    var copy = last.cloneNode(true);
    copy.setAttribute("data-row-index", String(to));
    copy.classList.remove("has-error");
    Array.prototype.forEach.call(copy.querySelectorAll(".field-error"), function (node) {
      node.parentNode.removeChild(node);
    });
    Array.prototype.forEach.call(copy.querySelectorAll(".has-error"), function (node) {
      node.classList.remove("has-error");
    });
    Array.prototype.forEach.call(copy.querySelectorAll("[name], [id], [for]"), function (node) {
      renumber(node, key, from, to);
      if (node.matches("input, select, textarea")) {
        clear(node);
      }
    });
    last.parentNode.appendChild(copy);
    counter.value = String(to + 1);

    if (!isNaN(cap) && to + 1 >= cap) {
      button.disabled = true;
    }
    var first = copy.querySelector("input, select, textarea");
    if (first) {
      first.focus();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.add-row");
    if (button) {
      event.preventDefault();
      addRow(button);
    }
  });

  document.addEventListener("input", function (event) {
    var form = event.target.form;
    if (form && form.classList.contains("record-form")) {
      form.setAttribute("data-dirty", "");
    }
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.matches("select[data-autosubmit]") || !select.form) {
      return;
    }
    var dirty = document.querySelector("form.record-form[data-dirty]");
    if (dirty && !window.confirm("切換範本後，目前輸入的內容不會保留。確定要切換嗎？")) {
      Array.prototype.forEach.call(select.options, function (option) {
        option.selected = option.defaultSelected;
      });
      return;
    }
    select.form.submit();
  });
})();
