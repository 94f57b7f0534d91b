// Progressive only: a "Copy key" button beside a key that is shown once.
// Without JavaScript, or where the page is not a secure context (no
// navigator.clipboard), the key stays in its read-only field to select.
(function () {
  "use strict";
  var field = document.getElementById("newkey");
  if (!field || !navigator.clipboard) return;
  var button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy key";
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = "Copied";
    }, function () {
      field.select();
      button.textContent = "Selected: press Ctrl+C";
    });
  });
  field.insertAdjacentElement("afterend", button);
})();
