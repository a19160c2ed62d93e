// The web chat: sends each question to POST /api/v1/ask and renders the reply with the same
// buttons the channels have (full answer, helpful / not helpful, consultant, topic choices).
(function () {
  const list = document.getElementById("messages");
  const form = document.getElementById("ask");
  const input = document.getElementById("text");
  const languageSelect = document.getElementById("language");
  const session = "web-" + (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
  let lastQuestion = "";

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function scrollDown() { window.scrollTo(0, document.body.scrollHeight); }

  function button(label, action, handler) {
    const node = element("button", "secondary", label);
    node.type = "button";
    node.dataset.action = action;
    node.addEventListener("click", handler);
    return node;
  }

  async function send(text, language, action) {
    const body = { text: text, language: language || languageSelect.value || null, session_id: session };
    if (action) body.action = action;
    const response = await fetch("/api/v1/ask", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.detail || response.statusText);
    return data;
  }

  async function showArticle(topicId, language, item) {
    const response = await fetch("/api/v1/kb/articles/" + encodeURIComponent(topicId) + "?language=" + language);
    if (!response.ok) return;
    const article = await response.json();
    render({
      kind: "answer", language: language, article_id: topicId, title: article.title, answer: article.short_answer,
      full_answer: article.body, sources: article.sources, verified_on: article.verified_on, handoff: false,
      buttons: item.buttons, contact: item.contact, options: []
    });
  }

  function render(reply) {
    const item = element("li", "bot" + (reply.handoff ? " handoff" : ""));
    item.dataset.kind = reply.kind;
    if (reply.article_id) item.dataset.article = reply.article_id;
    if (reply.title) item.appendChild(element("div", "title", reply.title));
    item.appendChild(element("div", "text", reply.answer));
    const buttons = element("div", "buttons");
    const labels = reply.buttons || {};
    (reply.options || []).forEach(function (option) {
      buttons.appendChild(button(option.title, "option", function () { showArticle(option.topic_id, reply.language, reply); }));
    });
    if (reply.kind === "answer") {
      const full = element("div", "full");
      full.hidden = true;
      full.textContent = reply.full_answer || "";
      buttons.appendChild(button(labels.full_answer || "Full answer", "full", function () { full.hidden = !full.hidden; scrollDown(); }));
      buttons.appendChild(button(labels.helpful || "Helpful", "helpful", function () { vote(reply, true, item); }));
      buttons.appendChild(button(labels.not_helpful || "Not helpful", "not_helpful", function () { vote(reply, false, item); }));
      item.appendChild(full);
      const meta = element("div", "meta");
      const notes = reply.notes || {};
      if (reply.verified_on) meta.appendChild(element("div", "verified", "✔ " + (notes.verified_on || reply.verified_on)));
      if (notes.stale) meta.appendChild(element("div", "stale", "⚠ " + notes.stale));
      if ((reply.sources || []).length && notes.sources) meta.appendChild(element("div", "", notes.sources + ":"));
      (reply.sources || []).forEach(function (url) {
        const link = element("a", "", url);
        link.href = url; link.rel = "noopener noreferrer"; link.target = "_blank";
        meta.appendChild(link); meta.appendChild(document.createElement("br"));
      });
      item.appendChild(meta);
    }
    buttons.appendChild(button(labels.consultant || "Consultant", "consultant", function () { ask(labels.consultant || "Consultant", reply.language, "consultant"); }));
    item.appendChild(buttons);
    if (reply.handoff && reply.contact) item.appendChild(element("div", "meta", reply.contact));
    list.appendChild(item);
    scrollDown();
  }

  async function vote(reply, helpful, item) {
    const response = await fetch("/api/v1/feedback", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question: lastQuestion || reply.title || reply.article_id, article_id: reply.article_id,
                             language: reply.language, helpful: helpful, session_id: session })
    });
    const data = await response.json();
    item.appendChild(element("div", "meta feedback", data.answer || ""));
  }

  async function ask(text, language, action) {
    list.appendChild(element("li", "person", text));
    scrollDown();
    try {
      render(await send(text, language, action));
    } catch (error) {
      render({ kind: "error", answer: String(error.message || error), handoff: true, contact: "INFO.OPT 12 210 20 20, info.opt@muw.pl", buttons: {} });
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    lastQuestion = text;
    input.value = "";
    ask(text);
  });
})();
