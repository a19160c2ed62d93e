// The article editor: live character count for the short answer, Markdown preview from the server
// (the same sanitiser the site uses), and a warning before leaving with unsaved changes.
(function () {
  const form = document.getElementById("editor");
  if (!form) return;
  const shortAnswer = document.getElementById("short_answer");
  const counter = document.getElementById("short-counter");
  const limit = Number(counter.dataset.limit);
  const body = document.getElementById("body");
  const preview = document.getElementById("preview");
  const csrf = form.querySelector("input[name=csrf_token]").value;
  let dirty = false;

  const overNote = document.getElementById("short-over");

  // Too long is said in words (announced once, when it happens), not only by the counter turning red.
  function count() {
    const length = shortAnswer.value.replace(/\s+/g, " ").trim().length;
    const over = length > limit;
    counter.textContent = String(length);
    counter.classList.toggle("over", over);
    const note = over ? overNote.dataset.text : "";
    if (overNote.textContent !== note) overNote.textContent = note;
  }

  async function refresh() {
    const data = new URLSearchParams({ csrf_token: csrf, body: body.value });
    try {
      const response = await fetch("/admin/kb/preview", { method: "POST", body: data, credentials: "same-origin" });
      if (!response.ok) { preview.textContent = "Preview unavailable (" + response.status + ")."; return; }
      preview.innerHTML = (await response.json()).html;
    } catch (error) {
      preview.textContent = "Preview unavailable: " + error;
    }
  }

  let timer = null;
  body.addEventListener("input", function () { dirty = true; clearTimeout(timer); timer = setTimeout(refresh, 400); });
  shortAnswer.addEventListener("input", function () { dirty = true; count(); });
  form.addEventListener("input", function () { dirty = true; });
  form.addEventListener("submit", function () { dirty = false; });
  window.addEventListener("beforeunload", function (event) { if (dirty) { event.preventDefault(); event.returnValue = ""; } });
  document.getElementById("preview-button").addEventListener("click", refresh);
  count();
  refresh();
})();
