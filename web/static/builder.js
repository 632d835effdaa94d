// The flow builder: the steps as a diagram that is also the editor, a form
// per step made from the applet's own parameter descriptions, the TOML
// beside it, lint as you edit, and a simulated call drawn on the diagram.
// The server is the one that reads and writes TOML (/api/flows/validate,
// /api/flows/compose): this page never builds flow text itself.
(function () {
  "use strict";
  var root = document.getElementById("builder");
  if (!root) return;
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var flow = root.getAttribute("data-flow");
  var revision = parseInt(root.getAttribute("data-revision"), 10) || 0;
  var editable = root.getAttribute("data-editable") === "true";
  function $(sel) { return root.querySelector(sel); }
  var srcEl = $("[data-source]"), stepsEl = $("[data-steps]"), editorEl = $("[data-editor]");
  var paletteEl = $("[data-palette-groups]"), probsEl = $("[data-flow-problems]"), lintEl = $("[data-lint-summary]");
  var msgEl = $("[data-message]"), undoBtn = $("[data-undo]"), redoBtn = $("[data-redo]");

  var applets = {};          // name → description
  var source = srcEl.value;  // the flow as last read or written
  var steps = [];            // [{index, id, applet, params}] as the server read them
  var outcomes = {};         // step id → [{outcome, next, routed}]
  var problems = [];
  var selected = null;       // the selected step's id
  var path = null;           // the simulated path: step id → [seq]
  var undo = [], redo = [];

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "class") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function say(text, bad) {
    msgEl.hidden = !text;
    msgEl.textContent = text || "";
    msgEl.className = "flash" + (bad ? " error" : "");
  }
  function api(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j }; });
    });
  }

  // ---- one edit at a time ------------------------------------------------
  // Each edit is computed from the steps as the server last read them, so an
  // edit waits for the one before it (its compose and its lint) to finish:
  // two quick clicks never write one over the other. While anything is in
  // flight the page carries data-busy (scripts and tests wait for it).
  var chain = Promise.resolve(), inFlight = 0;
  function track(p) {
    inFlight++;
    root.setAttribute("data-busy", "");
    return p.then(function (v) { done(); return v; }, function (e) { done(); say(String(e), true); });
    function done() { if (--inFlight === 0) root.removeAttribute("data-busy"); }
  }
  function queue(fn) {
    var p = chain.then(fn);
    chain = p.catch(function () {});
    return track(p);
  }

  // ---- reading the source --------------------------------------------
  var validating = 0;
  function validate() {
    var mine = ++validating;
    return api("POST", "/api/flows/validate", { toml: source, name: flow }).then(function (r) {
      if (mine !== validating) return;
      problems = r.body.problems || [];
      if (r.body.steps) steps = r.body.steps;
      outcomes = r.body.outcomes || {};
      render();
    });
  }
  function setSource(next, record) {
    if (next === source) return Promise.resolve();
    if (record !== false) {
      undo.push(source);
      redo = [];
    }
    source = next;
    srcEl.value = next;
    path = null;
    updateUndo();
    return validate();
  }
  function updateUndo() {
    if (undoBtn) undoBtn.disabled = !undo.length;
    if (redoBtn) redoBtn.disabled = !redo.length;
  }

  // ---- writing: the server composes the new source --------------------
  // changes: {id: params} of changed steps; order: the step ids in their
  // new order ("+" prefix: a new step, its params in changes).
  function compose(order, changes) {
    var byId = {};
    steps.forEach(function (s) { byId[s.id] = s; });
    var list = order.map(function (id) {
      var st = byId[id];
      var ch = changes[id];
      if (ch) {
        return { from: st ? st.index : -1, changed: true, params: ch, order: st ? Object.keys(st.params) : Object.keys(ch) };
      }
      return { from: st.index, changed: false };
    });
    return api("POST", "/api/flows/compose", { toml: source, steps: list }).then(function (r) {
      if (r.status !== 200) { say(r.body.error || "the change could not be written", true); return; }
      say("");
      return setSource(r.body.toml);
    });
  }
  function ids() { return steps.map(function (s) { return s.id; }); }
  function copyParams(st) { return JSON.parse(JSON.stringify(st.params || {})); }
  function stepById(id) { for (var i = 0; i < steps.length; i++) if (steps[i].id === id) return steps[i]; return null; }

  function changeStep(id, mutate) {
    var st = stepById(id);
    if (!st) return;
    var p = copyParams(st);
    mutate(p);
    var ch = {}; ch[id] = p;
    return compose(ids(), ch);
  }
  function setParam(id, key, value) { var a = arguments; return queue(function () { return setParamNow.apply(null, a); }); }
  function setParamNow(id, key, value) {
    return changeStep(id, function (p) {
      if (value === undefined || value === "" || (Array.isArray(value) && !value.length)) delete p[key];
      else p[key] = value;
    });
  }
  // setRoute sends outcome of step id to target ("" falls through): a
  // menu's key in its keys map, anything else in on.
  function setRoute(id, outcome, target) { var a = arguments; return queue(function () { return setRouteNow.apply(null, a); }); }
  function setRouteNow(id, outcome, target) {
    return changeStep(id, function (p) {
      if (p.keys && typeof p.keys === "object" && outcome in p.keys && target) { p.keys[outcome] = target; return; }
      if (p.keys && typeof p.keys === "object" && outcome in p.keys && !target) { delete p.keys[outcome]; }
      p.on = p.on || {};
      if (target) p.on[outcome] = target; else delete p.on[outcome];
      if (!Object.keys(p.on).length) delete p.on;
    });
  }
  function uniqueId(base) {
    var taken = {}; ids().forEach(function (i) { taken[i] = true; });
    if (!taken[base]) return base;
    for (var n = 2; ; n++) if (!taken[base + "-" + n]) return base + "-" + n;
  }
  function addStep(applet) { var a = arguments; return queue(function () { return addStepNow.apply(null, a); }); }
  function addStepNow(applet) {
    var id = uniqueId(applet.replace(/_/g, "-"));
    var order = ids();
    var at = selected ? order.indexOf(selected) + 1 : order.length;
    order.splice(at, 0, id);
    var ch = {}; ch[id] = { id: id, applet: applet };
    selected = id;
    return compose(order, ch);
  }
  // Routes to a step that goes away, or is renamed, follow it.
  function retarget(from, to) {
    var ch = {};
    steps.forEach(function (s) {
      var p = copyParams(s), hit = false;
      ["on", "keys"].forEach(function (k) {
        if (!p[k] || typeof p[k] !== "object") return;
        for (var o in p[k]) if (p[k][o] === from) { if (to) p[k][o] = to; else delete p[k][o]; hit = true; }
      });
      if (p.next === from) { if (to) p.next = to; else delete p.next; hit = true; }
      if (hit) ch[s.id] = p;
    });
    return ch;
  }
  function deleteStep(id) { var a = arguments; return queue(function () { return deleteStepNow.apply(null, a); }); }
  function deleteStepNow(id) {
    var ch = retarget(id, null);
    delete ch[id];
    if (selected === id) selected = null;
    return compose(ids().filter(function (i) { return i !== id; }), ch);
  }
  function moveStep(id, by) { var a = arguments; return queue(function () { return moveStepNow.apply(null, a); }); }
  function moveStepNow(id, by) {
    var order = ids(), i = order.indexOf(id), j = i + by;
    if (j < 0 || j >= order.length) return;
    order.splice(i, 1); order.splice(j, 0, id);
    return compose(order, {});
  }
  function renameStep(id, to) { var a = arguments; return queue(function () { return renameStepNow.apply(null, a); }); }
  function renameStepNow(id, to) {
    to = (to || "").trim();
    if (!to || to === id) return;
    if (stepById(to)) { say("A step is named " + to + " already.", true); return; }
    var ch = retarget(id, to);
    var p = ch[id] || copyParams(stepById(id));
    p.id = to;
    var order = ids().map(function (i) { return i === id ? to : i; });
    // The renamed step is composed under its new id, from its old block.
    var st = stepById(id);
    steps.push({ index: st.index, id: to, applet: st.applet, params: st.params });
    delete ch[id];
    ch[to] = p;
    selected = to;
    return compose(order, ch);
  }

  // ---- drawing -----------------------------------------------------------
  function problemsOf(id) { return problems.filter(function (p) { return p.step === id; }); }
  function render() {
    renderProblems();
    renderSteps();
    renderEditor();
  }
  function renderProblems() {
    var errs = 0, warns = 0;
    problems.forEach(function (p) { if (p.severity === "error") errs++; else if (p.severity === "warning") warns++; });
    lintEl.textContent = errs || warns ? "· " + errs + " error" + (errs === 1 ? "" : "s") + ", " + warns + " warning" + (warns === 1 ? "" : "s") : "· no problems";
    probsEl.textContent = "";
    problems.filter(function (p) { return !p.step; }).forEach(function (p) {
      probsEl.appendChild(el("li", { class: "problem " + p.severity, "data-problem": p.severity }, "line " + p.line + ": " + p.message));
    });
  }
  function targetSelect(st, oc) {
    var sel = el("select", { "aria-label": st.id + ": where " + oc.outcome + " goes", "data-route": oc.outcome });
    var fall = el("option", { value: "" }, oc.next === "(end)" && !oc.routed ? "ends the call" : "falls through");
    sel.appendChild(fall);
    ids().forEach(function (i) {
      var o = el("option", { value: i }, "→ " + i);
      if (oc.routed && oc.next === i) o.selected = true;
      sel.appendChild(o);
    });
    sel.disabled = !editable;
    sel.addEventListener("change", function () { setRoute(st.id, oc.outcome, sel.value); });
    return sel;
  }
  function renderSteps() {
    stepsEl.textContent = "";
    steps.forEach(function (st, n) {
      var probs = problemsOf(st.id);
      var cls = "step";
      if (probs.some(function (p) { return p.severity === "error"; })) cls += " has-error";
      else if (probs.some(function (p) { return p.severity === "warning"; })) cls += " has-warning";
      if (st.id === selected) cls += " selected";
      if (path && path[st.id]) cls += " on-path";
      var li = el("li", { class: cls, "data-step": st.id, tabindex: "0", draggable: editable ? "true" : "false" });
      var head = el("div", { class: "step-head" });
      if (path && path[st.id]) head.appendChild(el("span", { class: "seq", title: "simulated call" }, path[st.id].join(",")));
      head.appendChild(el("b", {}, st.id));
      head.appendChild(el("span", { class: "applet" }, st.applet));
      if (editable) {
        var tools = el("span", { class: "tools" });
        [["↑", "Move up", function () { moveStep(st.id, -1); }], ["↓", "Move down", function () { moveStep(st.id, 1); }],
         ["✎", "Rename", function () { var to = window.prompt("New id for " + st.id, st.id); renameStep(st.id, to); }],
         ["✕", "Delete", function () { deleteStep(st.id); }]].forEach(function (t) {
          var b = el("button", { type: "button", title: t[1] + " " + st.id, "aria-label": t[1] + " " + st.id, "data-tool": t[1].toLowerCase() }, t[0]);
          b.addEventListener("click", function (e) { e.stopPropagation(); t[2](); });
          tools.appendChild(b);
        });
        head.appendChild(tools);
      }
      li.appendChild(head);
      var ocs = outcomes[st.id] || [];
      if (ocs.length) {
        var ul = el("ul", { class: "outcomes" });
        ocs.forEach(function (oc) {
          var o = el("li", { "data-outcome": oc.outcome });
          var handle = el("span", { class: "outcome", draggable: editable ? "true" : "false", title: editable ? "drag onto a step to send " + oc.outcome + " there" : "" }, oc.outcome);
          handle.addEventListener("dragstart", function (e) {
            e.stopPropagation();
            e.dataTransfer.setData("application/x-callflow-route", JSON.stringify({ step: st.id, outcome: oc.outcome }));
          });
          o.appendChild(handle);
          o.appendChild(targetSelect(st, oc));
          ul.appendChild(o);
        });
        li.appendChild(ul);
      }
      probs.forEach(function (p) { li.appendChild(el("p", { class: "problem " + p.severity, "data-problem": p.severity }, p.message)); });
      li.addEventListener("click", function () { selected = st.id; render(); });
      li.addEventListener("keydown", function (e) {
        if (e.target !== li) return;
        if (e.key === "Enter") { selected = st.id; render(); focusStep(st.id); }
        if (editable && e.altKey && e.key === "ArrowUp") { e.preventDefault(); moveStep(st.id, -1); }
        if (editable && e.altKey && e.key === "ArrowDown") { e.preventDefault(); moveStep(st.id, 1); }
        if (editable && e.key === "Delete") { deleteStep(st.id); }
      });
      // Drag a step onto another to put it there.
      li.addEventListener("dragstart", function (e) { e.dataTransfer.setData("text/plain", st.id); });
      li.addEventListener("dragover", function (e) { e.preventDefault(); });
      li.addEventListener("drop", function (e) {
        e.preventDefault();
        var route = e.dataTransfer.getData("application/x-callflow-route");
        if (route) { // an outcome dropped on a step: it goes there
          var rt = JSON.parse(route);
          setRoute(rt.step, rt.outcome, st.id);
          return;
        }
        var from = e.dataTransfer.getData("text/plain");
        if (from && from !== st.id) moveStep(from, n - ids().indexOf(from));
      });
      stepsEl.appendChild(li);
    });
  }
  function focusStep(id) {
    var li = stepsEl.querySelector('[data-step="' + CSS.escape(id) + '"]');
    if (li) li.focus();
  }

  // ---- the step's form, from the applet's description ----------------------
  function valueText(type, v) {
    if (v === undefined || v === null) return "";
    if (type === "list") return (Array.isArray(v) ? v : [v]).join("\n");
    if (type === "map") return Object.keys(v).map(function (k) { return k + " = " + (typeof v[k] === "object" ? JSON.stringify(v[k]) : v[k]); }).join("\n");
    if (type === "table") return JSON.stringify(v, null, 1);
    return String(v);
  }
  function parseValue(type, text) {
    text = text.trim();
    if (text === "") return undefined;
    switch (type) {
      case "int": return parseInt(text, 10);
      case "number": return parseFloat(text);
      case "list": return text.split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
      case "map":
        var m = {};
        text.split("\n").forEach(function (l) {
          var i = l.indexOf("=");
          if (i > 0) m[l.slice(0, i).trim().replace(/^"|"$/g, "")] = l.slice(i + 1).trim().replace(/^"|"$/g, "");
        });
        return m;
      case "table": return JSON.parse(text);
    }
    return text;
  }
  // A list of tables (opening hours, holidays, tag rules, hunt targets)
  // is edited as rows of its own fields: days as a week of boxes, lists
  // comma-separated.
  var week = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  // Rows added but not filled in yet are not in the flow: they are counted
  // here (step id, option) so that a redraw does not take them away.
  var blankRows = {};
  function rowsKey(st, pd) { return st.id + "\u0000" + pd.name; }
  function cleanRows(rows) {
    return rows.map(function (r) {
      var o = {};
      for (var k in r) if (r[k] !== "" && !(Array.isArray(r[k]) && !r[k].length)) o[k] = r[k];
      return o;
    }).filter(function (r) { return Object.keys(r).length; });
  }
  function rowsEditor(st, pd, v) {
    var rows = Array.isArray(v) ? JSON.parse(JSON.stringify(v)) : [];
    for (var b = blankRows[rowsKey(st, pd)] || 0; b > 0; b--) rows.push({});
    var box = el("div", { class: "rows", "data-rows": pd.name });
    function commit() {
      var clean = cleanRows(rows);
      blankRows[rowsKey(st, pd)] = rows.length - clean.length;
      var was = Array.isArray(st.params[pd.name]) ? cleanRows(st.params[pd.name]) : [];
      if (JSON.stringify(clean) === JSON.stringify(was)) { renderRowsOnly(st, pd, box); return; }
      setParam(st.id, pd.name, clean.length ? clean : undefined);
    }
    rows.forEach(function (r, i) {
      var row = el("div", { class: "row", "data-row": i });
      pd.fields.forEach(function (fd) {
        var cell = el("label", { class: "cell" });
        cell.appendChild(el("span", {}, fd.name));
        if (fd.name === "days") {
          var days = el("span", { class: "week" });
          week.forEach(function (d) {
            var c = el("input", { type: "checkbox", "aria-label": fd.name + " " + d, "data-day": d });
            c.checked = (r.days || []).indexOf(d) >= 0;
            c.disabled = !editable;
            c.addEventListener("change", function () {
              r.days = week.filter(function (x) { return days.querySelector('[data-day="' + x + '"]').checked; });
              commit();
            });
            var l = el("label", { class: "day" }); l.appendChild(c); l.appendChild(document.createTextNode(d)); days.appendChild(l);
          });
          cell.appendChild(days);
        } else {
          var inp = el("input", { type: "text", "data-field": fd.name, placeholder: fd.type === "list" ? "a, b, c" : "" });
          inp.value = Array.isArray(r[fd.name]) ? r[fd.name].join(", ") : (r[fd.name] === undefined ? "" : String(r[fd.name]));
          inp.disabled = !editable;
          inp.addEventListener("change", function () {
            var t = inp.value.trim();
            r[fd.name] = fd.type === "list" ? t.split(",").map(function (x) { return x.trim(); }).filter(Boolean)
              : fd.type === "int" ? (t === "" ? "" : parseInt(t, 10)) : t;
            commit();
          });
          cell.appendChild(inp);
        }
        row.appendChild(cell);
      });
      if (editable) {
        var rm = el("button", { type: "button", class: "small", "aria-label": "Remove row " + (i + 1) + " of " + pd.name }, "✕");
        rm.addEventListener("click", function () { rows.splice(i, 1); commit(); });
        row.appendChild(rm);
      }
      box.appendChild(row);
    });
    if (editable) {
      var add = el("button", { type: "button", class: "small", "data-add-row": pd.name }, "+ add");
      add.addEventListener("click", function () {
        var k = rowsKey(st, pd);
        blankRows[k] = (blankRows[k] || 0) + 1;
        renderRowsOnly(st, pd, box);
      });
      box.appendChild(add);
    }
    return box;
  }
  // A row added but not filled in is not written yet: draw it alone.
  function renderRowsOnly(st, pd, box) {
    var fresh = rowsEditor(st, pd, st.params[pd.name]);
    box.replaceWith(fresh);
    var inputs = fresh.querySelectorAll("[data-row]:last-of-type input");
    if (inputs.length) inputs[0].focus();
  }
  function field(st, pd) {
    var id = "p-" + st.id + "-" + pd.name;
    if (pd.type === "table" && pd.fields && pd.fields.length && (st.params[pd.name] === undefined || Array.isArray(st.params[pd.name])) && pd.name !== "override") {
      var wrapRows = el("div", { class: "param", "data-param": pd.name });
      wrapRows.appendChild(el("span", { class: "label" }, pd.name));
      wrapRows.appendChild(rowsEditor(st, pd, st.params[pd.name]));
      if (pd.doc) wrapRows.appendChild(el("small", { class: "muted" }, pd.doc));
      return wrapRows;
    }
    var wrap = el("div", { class: "param", "data-param": pd.name });
    var label = el("label", { for: id }, pd.name);
    wrap.appendChild(label);
    var v = st.params[pd.name], input;
    if (pd.type === "bool") {
      input = el("input", { type: "checkbox", id: id });
      input.checked = v === true;
      input.addEventListener("change", function () { setParam(st.id, pd.name, input.checked ? true : undefined); });
    } else if (pd.enum) {
      input = el("select", { id: id });
      input.appendChild(el("option", { value: "" }, "(default)"));
      pd.enum.forEach(function (e) { var o = el("option", { value: e }, e); if (v === e) o.selected = true; input.appendChild(o); });
      input.addEventListener("change", function () { setParam(st.id, pd.name, input.value || undefined); });
    } else if (pd.type === "list" || pd.type === "map" || pd.type === "table") {
      input = el("textarea", { id: id, rows: pd.type === "table" ? 6 : 3, spellcheck: "false",
        placeholder: pd.type === "list" ? "one per line" : pd.type === "map" ? "key = value, one per line" : "JSON" });
      input.value = valueText(pd.type, v);
      input.addEventListener("change", function () {
        try { setParam(st.id, pd.name, parseValue(pd.type, input.value)); }
        catch (e) { say(pd.name + ": " + e.message, true); }
      });
    } else {
      input = el("input", { id: id, type: pd.type === "int" || pd.type === "number" ? "number" : "text",
        placeholder: pd.type === "duration" ? "e.g. 30s, 1m30s" : "" });
      input.value = valueText(pd.type, v);
      input.addEventListener("change", function () { setParam(st.id, pd.name, parseValue(pd.type, input.value)); });
    }
    input.disabled = !editable;
    wrap.appendChild(input);
    if (pd.doc) wrap.appendChild(el("small", { class: "muted" }, pd.doc));
    return wrap;
  }
  // The form is drawn again only when its step changed: a lint answer that
  // arrives while someone types must not take their field away.
  var editorDrawn = null;
  function renderEditor() {
    var st = stepById(selected);
    var drawn = JSON.stringify([selected, st && st.applet, st && st.params, Object.keys(applets).length]);
    if (drawn === editorDrawn) return;
    editorDrawn = drawn;
    editorEl.textContent = "";
    if (!st) { editorEl.appendChild(el("p", { class: "muted" }, "Select a step to edit it.")); return; }
    var doc = applets[st.applet];
    editorEl.appendChild(el("h2", {}, st.id + " · " + st.applet));
    if (doc) editorEl.appendChild(el("p", { class: "muted" }, doc.summary));
    var form = el("div", { class: "params", "data-params": st.id });
    (doc ? doc.params : []).forEach(function (pd) { form.appendChild(field(st, pd)); });
    editorEl.appendChild(form);
  }

  // ---- the palette -----------------------------------------------------------
  var groupOrder = ["say & play", "gather", "connect", "route", "record & voicemail", "messaging", "HTTP & bidding", "transfer & end"];
  function renderPalette(list) {
    var groups = {};
    list.forEach(function (a) { (groups[a.group || "other"] = groups[a.group || "other"] || []).push(a); });
    var names = Object.keys(groups).sort(function (a, b) {
      var i = groupOrder.indexOf(a), j = groupOrder.indexOf(b);
      return (i < 0 ? 99 : i) - (j < 0 ? 99 : j);
    });
    paletteEl.textContent = "";
    names.forEach(function (g) {
      var sec = el("div", { class: "palette-group" });
      sec.appendChild(el("h3", {}, g));
      groups[g].forEach(function (a) {
        var b = el("button", { type: "button", "data-add": a.name, title: a.summary }, a.name.replace(/_/g, " "));
        b.addEventListener("click", function () { addStep(a.name); });
        sec.appendChild(b);
      });
      paletteEl.appendChild(sec);
    });
  }

  // ---- source view: edits there are read back -------------------------------
  var typing = null;
  srcEl.addEventListener("input", function () {
    clearTimeout(typing);
    typing = setTimeout(function () { var v = srcEl.value; queue(function () { return setSource(v); }); }, 500);
  });

  // ---- undo, redo, save, publish -----------------------------------------
  function doUndo() {
    queue(function () { if (!undo.length) return; redo.push(source); var s = undo.pop(); updateUndo(); return setSource(s, false); });
  }
  function doRedo() {
    queue(function () { if (!redo.length) return; undo.push(source); var s = redo.pop(); updateUndo(); return setSource(s, false); });
  }
  if (undoBtn) undoBtn.addEventListener("click", doUndo);
  if (redoBtn) redoBtn.addEventListener("click", doRedo);
  document.addEventListener("keydown", function (e) {
    if (!(e.ctrlKey || e.metaKey) || e.key.toLowerCase() !== "z" || e.target === srcEl) return;
    e.preventDefault();
    if (e.shiftKey) doRedo(); else doUndo();
  });
  var conflict = $("[data-conflict]");
  function save() {
    return api("PUT", "/api/flows/" + encodeURIComponent(flow), { toml: source, revision: revision }).then(function (r) {
      if (r.status === 409) {
        conflict.hidden = false;
        $("[data-conflict-text]").textContent = "Changed since you opened it: revision " + r.body.current + " by " + (r.body.updated_by || "someone") + ". Their version:";
        $("[data-conflict-source]").value = r.body.toml || "";
        conflict.setAttribute("data-theirs", r.body.toml || "");
        conflict.setAttribute("data-current", r.body.current);
        say("Not saved: changed since you opened it.", true);
        return false;
      }
      if (r.status !== 200) { say(r.body.error || "not saved", true); return false; }
      revision = r.body.revision;
      root.setAttribute("data-revision", revision);
      var lab = $("[data-revision-label]"); if (lab) lab.textContent = "revision " + revision;
      say("Saved as revision " + revision + ".");
      return true;
    });
  }
  if ($("[data-save]")) $("[data-save]").addEventListener("click", save);
  if ($("[data-take-theirs]")) $("[data-take-theirs]").addEventListener("click", function () {
    revision = parseInt(conflict.getAttribute("data-current"), 10);
    conflict.hidden = true;
    var theirs = conflict.getAttribute("data-theirs");
    queue(function () { return setSource(theirs); });
    say("Their version is loaded.");
  });
  if ($("[data-keep-mine]")) $("[data-keep-mine]").addEventListener("click", function () {
    revision = parseInt(conflict.getAttribute("data-current"), 10);
    conflict.hidden = true;
    save();
  });
  if ($("[data-publish]")) $("[data-publish]").addEventListener("click", function () {
    save().then(function (ok) {
      if (!ok) return;
      api("POST", "/api/flows/" + encodeURIComponent(flow) + "/publish", {}).then(function (r) {
        if (r.status !== 200) { say(r.body.error || "not published", true); return; }
        var badge = $("[data-status-badge]");
        badge.textContent = "published"; badge.className = "badge green";
        say("Published: calls to its numbers take it now.");
      });
    });
  });

  // ---- simulate ------------------------------------------------------------
  var simForm = $("[data-simulate]"), simOut = $("[data-sim-result]");
  simForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var f = new FormData(simForm);
    api("POST", "/api/flows/" + encodeURIComponent(flow) + "/simulate", {
      toml: source, input: f.get("input") || "", agents: f.get("agents") || "", at: f.get("at") || "", from: f.get("from") || ""
    }).then(function (r) {
      simOut.textContent = "";
      if (r.status !== 200) { simOut.appendChild(el("p", { class: "error" }, r.body.error || "not simulated")); return; }
      path = {};
      var table = el("table", { class: "list trace", "data-trace": "" });
      table.appendChild(el("thead")).appendChild(function () {
        var tr = el("tr"); ["#", "step", "outcome", "next", "what it did"].forEach(function (h) { tr.appendChild(el("th", {}, h)); }); return tr;
      }());
      var tb = el("tbody");
      (r.body.steps || []).forEach(function (s) {
        (path[s.step] = path[s.step] || []).push(s.seq);
        var tr = el("tr", { "data-trace-step": s.step });
        [s.seq, s.step, s.outcome, s.next || "", (s.actions || []).join("; ")].forEach(function (c) { tr.appendChild(el("td", {}, c)); });
        tb.appendChild(tr);
      });
      table.appendChild(tb);
      simOut.appendChild(el("p", { "data-sim-outcome": r.body.outcome }, "The call ends: " + r.body.outcome + (r.body.last_step ? " at " + r.body.last_step : "")));
      simOut.appendChild(table);
      (r.body.would_send || []).forEach(function (m) { simOut.appendChild(el("p", { class: "muted" }, "would send " + m)); });
      renderSteps();
    });
  });

  // ---- start -----------------------------------------------------------------
  queue(function () {
    return api("GET", "/api/applets").then(function (r) {
      (r.body.applets || []).forEach(function (a) { applets[a.name] = a; });
      renderPalette(r.body.applets || []);
      return validate();
    });
  });
  updateUndo();
})();
