// The web chat: one more renderer of the conversation. It sends what the person typed, or the action
// they chose, to POST /api/v1/ask and shows the reply with the actions it offers; it keeps the
// server-issued session id in this browser and polls the conversation for consultants' replies.
(function () {
  "use strict";
  const texts = JSON.parse(document.getElementById("chat-texts").textContent);
  const list = document.getElementById("messages");
  const form = document.getElementById("ask");
  const input = document.getElementById("text");
  const languageSelect = document.getElementById("language");
  const welcome = document.getElementById("welcome");
  const STORAGE = "infoopt.session";
  let session = null;
  let cursor = "";
  let language = "pl";        // the language in use: chosen, or the last one the bot answered in
  let busy = false;

  try { session = window.localStorage.getItem(STORAGE); } catch (error) { session = null; }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function words() { return texts[language] || texts.pl; }

  function scrollDown() { window.scrollTo(0, document.body.scrollHeight); }

  // The interface follows the language in use: labels, placeholder, the page's lang attribute.
  function applyLanguage(code) {
    language = texts[code] ? code : "pl";
    const w = words();
    document.documentElement.lang = language;
    document.getElementById("language-label").textContent = w.language;
    document.getElementById("language-auto").textContent =
      w.automatic + (languageSelect.value ? "" : " (" + w.name + ")");
    input.placeholder = w.placeholder;
    document.getElementById("text-label").textContent = w.placeholder;
    document.getElementById("send").setAttribute("aria-label", w.send);
    document.getElementById("your-data").textContent = w.your_data;
    document.getElementById("examples-heading").textContent = w.examples;
    document.getElementById("footer").innerHTML = w.footer_html;  // server-made, sanitised
    const statement = document.getElementById("statement-link");
    statement.textContent = w.statement;
    statement.href = w.statement_url;
    const examples = document.getElementById("examples");
    examples.replaceChildren();
    w.examples_list.forEach(function (example) {
      const chip = element("button", "secondary example", example);
      chip.type = "button";
      chip.addEventListener("click", function () { submit({ text: example }, example); });
      examples.appendChild(chip);
    });
  }

  function remember(id) {
    session = id;
    try { window.localStorage.setItem(STORAGE, id); } catch (error) { /* private mode: this tab only */ }
  }

  // After "erase my data" nothing of the conversation is kept: neither is its id in this browser.
  function forget() {
    session = null;
    try { window.localStorage.removeItem(STORAGE); } catch (error) { /* private mode */ }
  }

  function personBubble(text) {
    const item = element("li", "person", text);
    item.setAttribute("aria-label", words().you + ": " + text);
    list.appendChild(item);
  }

  function render(reply) {
    const item = element("li", "bot" + (reply.handoff ? " handoff" : ""));
    item.dataset.kind = reply.kind;
    item.lang = reply.language;
    if (reply.article_id) item.dataset.article = reply.article_id;
    // h2 under the page's h1; an article's own headings (h2, h3) follow it in order.
    if (reply.title) item.appendChild(element("h2", "title", reply.title));
    const body = element("div", reply.format === "markdown" ? "text formatted" : "text");
    body.innerHTML = reply.answer_html;  // sanitised on the server: no scripts, only http(s)/tel/mailto links
    item.appendChild(body);
    const notes = reply.notes || {};
    if (reply.verified_on || (reply.source_links || []).length) {
      const meta = element("div", "meta");
      if (notes.verified_on) meta.appendChild(element("div", "verified", "✔ " + notes.verified_on));
      if (notes.stale) meta.appendChild(element("div", "stale", "⚠ " + notes.stale));
      if ((reply.source_links || []).length) {
        const sources = element("ul", "sources");
        sources.setAttribute("aria-label", notes.sources || words().sources);
        reply.source_links.forEach(function (source) {
          const link = element("a", "", source.label);
          link.href = source.url; link.rel = "noopener noreferrer"; link.target = "_blank";
          const entry = element("li"); entry.appendChild(link); sources.appendChild(entry);
        });
        meta.appendChild(element("div", "", (notes.sources || words().sources) + ":"));
        meta.appendChild(sources);
      }
      item.appendChild(meta);
    }
    if (reply.ticket) {
      item.dataset.ticket = reply.ticket.number;
      item.dataset.ticketStatus = reply.ticket.status;
    }
    appendButtons(item, reply.actions);
    list.appendChild(item);
    scrollDown();
  }

  function appendButtons(item, actions) {
    if (!(actions || []).length) return;
    const buttons = element("div", "buttons");
    buttons.setAttribute("role", "group");
    actions.forEach(function (action) {
      const node = element("button", action.action === "consultant" ? "" : "secondary", action.label);
      node.type = "button";
      node.dataset.action = action.action;
      if (action.value) node.dataset.value = action.value;
      node.addEventListener("click", function () {
        submit({ action: action.action, value: action.value }, action.label);
      });
      buttons.appendChild(node);
    });
    item.appendChild(buttons);
  }

  // What the desk sent on its own: a consultant's reply, or a notice such as the rating request.
  // A consultant's reply says so in words, not only by its green edge.
  function deskMessage(message) {
    const consultant = message.author === "consultant";
    const item = element("li", consultant ? "bot consultant" : "bot notice");
    item.dataset.kind = message.kind || "";
    if (consultant) item.appendChild(element("div", "author", words().consultant));
    item.appendChild(element("div", "text", message.text));
    appendButtons(item, message.actions);
    list.appendChild(item);
  }

  // What the desk or a worker sent on its own, not in answer to a turn: a consultant's reply, a notice
  // about a request (the rating request), a change of an answer the person follows.
  const DESK_KINDS = ["ticket_notice", "change_notice"];
  function fromDesk(message) {
    return message.author === "consultant" || DESK_KINDS.indexOf(message.kind) >= 0;
  }

  async function submit(payload, shown) {
    if (busy) return;
    busy = true;
    welcome.hidden = true;
    personBubble(shown);
    scrollDown();
    const body = Object.assign({ session_id: session, language: languageSelect.value || null }, payload);
    try {
      const response = await fetch("/api/v1/ask", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
      });
      const reply = await response.json();
      if (!response.ok) throw new Error(reply.detail || response.statusText);
      if (reply.kind === "forgotten") forget(); else remember(reply.session_id);
      if (!languageSelect.value) applyLanguage(reply.language);
      render(reply);
    } catch (error) {
      const w = words();
      const item = element("li", "bot handoff error");
      item.setAttribute("role", "alert");
      item.appendChild(element("div", "text", (error.message && error.message.length < 300 ? error.message : w.error)));
      const contact = element("div", "meta"); contact.innerHTML = w.footer_html; item.appendChild(contact);
      list.appendChild(item);
      scrollDown();
    } finally {
      busy = false;
    }
  }

  async function fetchMessages() {
    const response = await fetch("/api/v1/conversations/" + encodeURIComponent(session) + "/messages?after=" + cursor);
    if (response.status === 404) { session = null; return null; }
    return response.ok ? response.json() : null;
  }

  // Back after a reload: the conversation so far, as plain text.
  async function restore() {
    if (!session) return;
    try {
      const page = await fetchMessages();
      if (!page) return;
      page.items.forEach(function (message) {
        if (message.author === "person") personBubble(message.text);
        else if (fromDesk(message)) deskMessage(message);
        else list.appendChild(element("li", "bot", message.text));
      });
      if (page.items.length) welcome.hidden = true;
      cursor = page.cursor;
    } catch (error) { /* offline: start afresh */ }
  }

  // Consultants' replies arrive in the conversation; the chat shows what it has not shown yet.
  async function poll() {
    if (!session || document.hidden) return;
    try {
      const page = await fetchMessages();
      if (!page) return;
      page.items.forEach(function (message) {
        if (!fromDesk(message)) return;  // the chat showed the conversation's own turns as they happened
        deskMessage(message);
        scrollDown();
      });
      cursor = page.cursor;
    } catch (error) { /* offline for a moment: try again on the next tick */ }
  }

  document.getElementById("your-data").addEventListener("click", function (event) {
    submit({ action: "privacy" }, event.currentTarget.textContent);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    submit({ text: text }, text);
  });
  languageSelect.addEventListener("change", function () {
    applyLanguage(languageSelect.value || language);
  });

  const preferred = (navigator.language || "pl").slice(0, 2);
  applyLanguage(texts[preferred] ? preferred : "pl");
  restore().then(function () { window.setInterval(poll, 5000); });
})();
