// The consultants' workspace: the queue and the ticket update live (server-sent events fed by Redis
// pub/sub across every app worker), a new ticket sounds and shows a browser notification, drafts
// survive a reload, and a suggested answer goes into the reply with one click, editable before sending.
(function () {
  "use strict";
  const textsNode = document.getElementById("desk-texts");
  const texts = textsNode ? JSON.parse(textsNode.textContent) : {};
  const announcer = document.getElementById("announcer");
  const liveState = document.getElementById("live-state");
  const rows = document.getElementById("queue-rows");
  const thread = document.getElementById("thread");
  const alertsButton = document.getElementById("enable-alerts");
  let audio = null;

  function store() { try { return window.localStorage; } catch (error) { return null; } }
  function session() { try { return window.sessionStorage; } catch (error) { return null; } }

  // --- drafts: what a consultant typed is never lost to a reload or a failed send -----------------
  const hadError = Boolean(document.getElementById("error"));
  document.querySelectorAll("textarea[data-draft]").forEach(function (box) {
    const key = "infoopt.draft." + box.dataset.draft;
    const local = store(), flags = session();
    const submitted = flags && flags.getItem("submitted." + key);
    if (flags) flags.removeItem("submitted." + key);
    if (submitted && !hadError && local) local.removeItem(key);   // it went through: start clean
    if (!box.value && local && local.getItem(key)) box.value = local.getItem(key);
    box.addEventListener("input", function () {
      if (!local) return;
      if (box.value) local.setItem(key, box.value); else local.removeItem(key);
    });
    if (box.form) box.form.addEventListener("submit", function () {
      if (local && box.value) local.setItem(key, box.value);
      if (flags) flags.setItem("submitted." + key, "1");
    });
  });

  const reply = document.getElementById("reply");
  const counter = document.getElementById("reply-count");
  function count() { if (reply && counter) counter.textContent = String(reply.value.length); }
  if (reply) { reply.addEventListener("input", count); count(); }

  document.querySelectorAll("button.insert").forEach(function (button) {
    button.addEventListener("click", function () {
      if (!reply) return;
      const text = button.dataset.text || "";
      const start = reply.selectionStart || reply.value.length, end = reply.selectionEnd || reply.value.length;
      const before = reply.value.slice(0, start), after = reply.value.slice(end);
      const glue = before && !before.endsWith("\n") ? "\n\n" : "";
      reply.value = before + glue + text + after;
      reply.focus();
      reply.dispatchEvent(new Event("input"));
    });
  });

  // --- alerts: a sound and a browser notification for a new ticket ---------------------------------
  function beep() {
    if (!audio) return;
    const oscillator = audio.createOscillator(), gain = audio.createGain();
    oscillator.frequency.value = 880; gain.gain.value = 0.08;
    oscillator.connect(gain); gain.connect(audio.destination);
    oscillator.start(); oscillator.stop(audio.currentTime + 0.25);
  }

  function announce(text) {
    if (!announcer) return;
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function notify(change) {
    beep();
    const text = (texts.new_ticket || "New ticket") + ": " + change.number;
    announce(text);
    if ("Notification" in window && Notification.permission === "granted") {
      try { new Notification(text, { tag: "infoopt-" + change.ticket_id }); } catch (error) { /* not allowed here */ }
    }
  }

  if (alertsButton) {
    alertsButton.hidden = false;
    alertsButton.addEventListener("click", function () {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (Context && !audio) audio = new Context();   // browsers only allow sound after a click
      if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
      alertsButton.textContent = texts.alerts_on || alertsButton.textContent;
      alertsButton.disabled = true;
    });
  }

  // --- live updates ----------------------------------------------------------------------------------
  async function refresh(url, target) {
    try {
      const response = await fetch(url, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
      if (response.ok) target.innerHTML = await response.text();   // server-rendered, escaped by Jinja
    } catch (error) { /* the next event or the timer will try again */ }
  }

  // Many consultants, many changes: each page reloads its queue at most every two seconds (with a little
  // jitter, so fifty pages do not all ask at the same moment), and never misses the last change.
  let queueTimer = null, lastQueue = 0;
  function refreshQueue() {
    if (!rows || queueTimer) return;
    const wait = Math.max(0, 2000 - (Date.now() - lastQueue)) + Math.random() * 400;
    queueTimer = window.setTimeout(function () {
      queueTimer = null;
      lastQueue = Date.now();
      refresh("/staff/tickets/rows" + window.location.search, rows);
    }, wait);
  }
  function refreshThread() { if (thread) refresh("/staff/tickets/" + thread.dataset.ticket + "/thread", thread); }

  if ((rows || thread) && "EventSource" in window) {
    const events = new EventSource("/api/v1/tickets/events");
    let connected = false;
    events.onopen = function () {
      if (liveState) liveState.textContent = texts.live || "";
      // Whatever changed while the page loaded or the stream was down: catch up once.
      if (connected) refreshQueue();
      refreshThread();
      connected = true;
    };
    events.onerror = function () { if (liveState) liveState.textContent = texts.offline || ""; };
    events.addEventListener("ticket", function (event) {
      let change;
      try { change = JSON.parse(event.data); } catch (error) { return; }
      if (rows) {
        refreshQueue();
        if (change.kind === "created") notify(change);
      }
      if (thread && String(change.ticket_id) === thread.dataset.ticket) {
        refreshThread();
        if (change.kind === "person_wrote" || change.kind === "reopened") announce(texts.person_wrote || "");
      }
    });
  }
  // A safety net for a dropped stream: the queue also refreshes every minute.
  if (rows) window.setInterval(refreshQueue, 60000);
})();
