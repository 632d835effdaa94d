// The live queue view: /api/queues/events sends the whole view at each
// change; the page redraws from it (text only, never HTML from the data).
(function () {
  "use strict";
  var root = document.querySelector("[data-queues]");
  if (!root) return;
  var status = document.querySelector("[data-queues-status]");
  var agentsBody = document.querySelector("[data-agents]");

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function secs(s) {
    s = Math.round(s);
    var m = Math.floor(s / 60);
    return m > 0 ? m + "m " + (s % 60) + "s" : s + "s";
  }
  function row(cells) {
    var tr = el("tr");
    cells.forEach(function (c) { tr.appendChild(el("td", c)); });
    return tr;
  }
  function kpi(value, label) {
    var d = el("div", null, "kpi");
    d.appendChild(el("b", value));
    d.appendChild(el("span", label));
    return d;
  }

  function draw(v) {
    root.textContent = "";
    if (!v.queues.length) {
      root.appendChild(el("p", "No caller has waited in a queue since this node started.", "muted"));
    }
    v.queues.forEach(function (q) {
      var sec = el("section", null, "card queue");
      sec.setAttribute("data-queue", q.name);
      sec.appendChild(el("h2", q.name));
      var k = el("div", null, "kpis");
      k.appendChild(kpi(q.waiting.length, "waiting"));
      k.appendChild(kpi(secs(q.longest_wait_s), "longest wait"));
      k.appendChild(kpi(q.answered_today, "answered today"));
      k.appendChild(kpi(q.abandoned_today, "abandoned today"));
      k.appendChild(kpi(secs(q.average_wait_s), "average wait"));
      k.appendChild(kpi(Math.round(q.service_level * 100) + "%", "answered within " + q.service_level_s + "s"));
      sec.appendChild(k);
      var wrap = el("div", null, "table-wrap");
      var t = el("table", null, "list");
      var head = el("thead");
      head.appendChild(row(["#", "Caller", "Waiting"]));
      t.appendChild(head);
      var body = el("tbody");
      body.setAttribute("data-waiting", "");
      // With nodes sharing the queue, each caller says which node holds them.
      q.waiting.forEach(function (c) {
        body.appendChild(row([c.position, c.number + (c.callback ? " (callback)" : "") + (c.node ? " · " + c.node : ""), secs(c.waited_s)]));
      });
      if (!q.waiting.length) body.appendChild(row(["", "nobody waiting", ""]));
      t.appendChild(body);
      wrap.appendChild(t);
      sec.appendChild(wrap);
      root.appendChild(sec);
    });
    agentsBody.textContent = "";
    v.agents.forEach(function (a) {
      var tr = row([a.agent, a.state.replace("_", " ") + (a.reason ? " (" + a.reason + ")" : ""), new Date(a.since).toLocaleTimeString()]);
      tr.setAttribute("data-agent", a.agent);
      tr.setAttribute("data-state", a.state);
      agentsBody.appendChild(tr);
    });
    if (!v.agents.length) agentsBody.appendChild(row(["none", "", ""]));
    status.textContent = "live · " + new Date(v.at).toLocaleTimeString();
  }

  var src = new EventSource(root.getAttribute("data-src"));
  src.addEventListener("queues", function (e) { draw(JSON.parse(e.data)); });
  src.onerror = function () { status.textContent = "reconnecting…"; };
})();
