// Streams an answer into the page: POSTs the question form to the server-sent-events
// endpoint and renders "sources", "token" and "done" events as they arrive. No third-party
// code; without JavaScript the form posts normally and the page shows the whole answer.
(function () {
  "use strict";
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function renderSources(list, sources) {
    list.textContent = "";
    sources.forEach(function (s) {
      var li = el("li", { value: s.n });
      var label = s.title + (s.page ? ", page " + s.page : "") + (s.section ? " — " + s.section : "");
      li.appendChild(el("a", { href: s.url }, label));
      if (s.cited) { li.appendChild(document.createTextNode(" ")); li.appendChild(el("strong", {}, "(cited)")); }
      li.appendChild(el("span", { class: "muted" }, " relevance " + s.score));
      li.appendChild(el("div", { class: "muted" }, s.excerpt));
      list.appendChild(li);
    });
  }
  // The answer text with each [n] turned into a link to source n's passage.
  function renderAnswer(target, text, sources) {
    target.textContent = "";
    var byNumber = {};
    sources.forEach(function (s) { byNumber[s.n] = s; });
    text.split(/(\[\d{1,2}\])/).forEach(function (part) {
      var m = /^\[(\d{1,2})\]$/.exec(part);
      if (m && byNumber[m[1]]) target.appendChild(el("a", { href: byNumber[m[1]].url }, part));
      else target.appendChild(document.createTextNode(part));
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("ask-form");
    if (!form || !window.fetch || !window.TextDecoder) return;
    var box = document.getElementById("stream-answer");
    var text = document.getElementById("stream-text");
    var label = document.getElementById("stream-label");
    var reason = document.getElementById("stream-reason");
    var error = document.getElementById("stream-error");
    var cited = document.getElementById("stream-cited");
    var sourcesHeading = document.getElementById("stream-sources-heading");
    var sourcesList = document.getElementById("stream-sources");
    var status = document.getElementById("stream-status");
    var question = document.getElementById("id_question");
    var questionError = document.getElementById("question-error");
    // A form error belongs next to the form, where the person is looking.
    function showQuestionError(message) {
      questionError.textContent = message; questionError.hidden = !message;
      if (message) question.setAttribute("aria-invalid", "true"); else question.removeAttribute("aria-invalid");
    }
    // The question just answered goes to the top of "Your recent questions" at once.
    function addToHistory(asked, outcome, followUpUrl) {
      var aside = document.querySelector("aside.history");
      if (!aside) return;
      var list = aside.querySelector(".history-list");
      if (!list) {
        var empty = aside.querySelector("p.muted");
        list = el("ol", { class: "history-list" });
        if (empty) empty.replaceWith(list); else aside.appendChild(list);
      }
      var li = el("li");
      li.appendChild(el("span", { class: "muted" }, "just now · " + outcome));
      li.appendChild(el("br"));
      li.appendChild(document.createTextNode(asked.length > 120 ? asked.slice(0, 119) + "…" : asked));
      li.appendChild(document.createTextNode(" · "));
      li.appendChild(el("a", { href: followUpUrl }, "follow up"));
      list.insertBefore(li, list.firstChild);
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var asked = question.value.trim();
      var old = document.getElementById("answer");
      if (old) old.remove();
      showQuestionError("");
      // aria-busy: screen readers wait for the finished answer instead of reading every token.
      box.hidden = false; box.setAttribute("aria-busy", "true");
      error.hidden = true; cited.hidden = true; sourcesHeading.hidden = true; reason.hidden = true;
      label.hidden = true; label.className = "answer-label"; text.className = "answer";
      text.textContent = ""; sourcesList.textContent = ""; status.textContent = "Searching your documents…";
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      var sources = [], answer = "";
      function handle(kind, data) {
        if (kind === "sources") {
          sources = data; renderSources(sourcesList, sources); sourcesHeading.hidden = false;
          status.textContent = "Answering…";
        } else if (kind === "token") {
          // The model's draft is never shown unmarked: it is labelled until the check decides.
          if (label.hidden) {
            label.textContent = "Draft, not yet verified against the passages…";
            label.className = "answer-label answer-draft"; label.hidden = false;
            text.className = "answer draft";
          }
          answer += data.text; text.textContent = answer;
        } else if (kind === "done") {
          sources = data.sources;
          if (data.error) { error.textContent = data.error; error.hidden = false; }
          label.textContent = data.label || ""; label.hidden = !data.label;
          label.className = "answer-label answer-" + data.answer_kind;
          text.className = data.answer_kind === "quotation" ? "answer quotation" : "answer";
          if (data.reason && data.answer_kind !== "verified" && data.answer_kind !== "none") {
            reason.textContent = (data.answer_kind === "quotation" ? "Why not the model's answer: " : "Why: ") + data.reason;
            reason.hidden = false;
          }
          renderAnswer(text, data.answer, sources);
          renderSources(sourcesList, sources); sourcesHeading.hidden = sources.length === 0;
          var citedSources = sources.filter(function (s) { return s.cited; });
          if (citedSources.length) {
            cited.textContent = "Based on ";
            citedSources.forEach(function (s) { cited.appendChild(el("a", { href: s.url }, "[" + s.n + "]")); cited.appendChild(document.createTextNode(" ")); });
            cited.hidden = false;
          }
          status.textContent = "Audit event #" + data.audit_sequence + " · outcome: " + data.outcome;
          if (data.follow_up_url) {
            status.appendChild(document.createTextNode(" · "));
            status.appendChild(el("a", { href: data.follow_up_url }, "ask a follow-up"));
            addToHistory(asked, data.outcome, data.follow_up_url);
          }
        }
      }
      fetch(form.dataset.streamUrl, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 400) {
            return response.json().then(function (body) {
              var errors = body.errors || {};
              var messages = Object.keys(errors).reduce(function (all, k) { return all.concat(errors[k]); }, []);
              box.hidden = true; status.textContent = "";
              showQuestionError(messages.join(" ") || "The question was not accepted.");
            });
          }
          if (!response.ok || !response.body) throw new Error("The server refused the question (" + response.status + ").");
          var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
          function pump() {
            return reader.read().then(function (chunk) {
              if (chunk.done) return;
              buffer += decoder.decode(chunk.value, { stream: true });
              var parts = buffer.split("\n\n");
              buffer = parts.pop();
              parts.forEach(function (block) {
                var kind = "message", data = "";
                block.split("\n").forEach(function (line) {
                  if (line.indexOf("event: ") === 0) kind = line.slice(7);
                  else if (line.indexOf("data: ") === 0) data += line.slice(6);
                });
                if (data) handle(kind, JSON.parse(data));
              });
              return pump();
            });
          }
          return pump();
        })
        .catch(function (e) { error.textContent = e.message; error.hidden = false; status.textContent = ""; })
        .finally(function () { button.disabled = false; box.setAttribute("aria-busy", "false"); });
    });
  });
})();
