// Small progressive enhancements; every action also works without script.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var body = document.body;

  // The browser's time zone goes to the server in a cookie: pages show
  // times in it unless the user chose another. If this page was drawn in
  // another zone for lack of the cookie, draw it again, once.
  function syncZone() {
    var tz = "";
    try {
      tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      return;
    }
    if (!/^[A-Za-z0-9_+\-\/]{1,64}$/.test(tz)) {
      return;
    }
    var have = document.cookie.match(/(?:^|;\s*)callflow_tz=([^;]*)/);
    if (!have || have[1] !== tz) {
      document.cookie = "callflow_tz=" + tz + "; path=/; max-age=31536000; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
    }
    var source = body.getAttribute("data-tz-source");
    if (source !== "user" && body.getAttribute("data-tz") !== tz) {
      var key = "callflow-tz-redrawn";
      if (sessionStorage.getItem(key) !== tz) {
        sessionStorage.setItem(key, tz);
        location.reload();
      }
    }
  }
  syncZone();

  // New voicemail: the unheard count in the navigation, the page title,
  // and the inbox list, which redraws itself when something changed
  // (unless a message is playing; then at the next look).
  var countEl = document.querySelector("[data-unheard-count]");
  var list = document.querySelector("[data-refresh]");
  var state = body.getAttribute("data-inbox");
  var poll = parseInt(body.getAttribute("data-poll"), 10) || 30000;
  var polling = false;

  function showCount(n) {
    if (!countEl) {
      return;
    }
    countEl.textContent = String(n);
    countEl.hidden = n === 0;
    body.setAttribute("data-unheard", String(n));
    document.title = document.title.replace(/^\(\d+\) /, "");
    if (n > 0) {
      document.title = "(" + n + ") " + document.title;
    }
  }

  function playing() {
    var busy = false;
    document.querySelectorAll("audio").forEach(function (a) {
      busy = busy || !a.paused;
    });
    return busy;
  }

  function redraw(newState) {
    return fetch(location.href, { credentials: "same-origin" }).then(function (resp) {
      if (!resp.ok) {
        throw new Error(resp.status);
      }
      return resp.text();
    }).then(function (html) {
      if (playing()) {
        return; // try again at the next look
      }
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.querySelector("[data-refresh]");
      if (fresh) {
        list.innerHTML = fresh.innerHTML;
        state = newState;
      }
    });
  }

  function look() {
    if (polling || !countEl || document.hidden) {
      return;
    }
    polling = true;
    fetch("/api/voicemails/summary", { credentials: "same-origin" }).then(function (resp) {
      if (!resp.ok) {
        throw new Error(resp.status);
      }
      return resp.json();
    }).then(function (sum) {
      showCount(sum.unheard);
      var now = sum.total + ":" + sum.unheard + ":" + sum.newest;
      if (list && now !== state && !playing()) {
        return redraw(now);
      }
    }).catch(function () {
      // The server is away for a moment: the next look will tell.
    }).then(function () {
      polling = false;
    });
  }
  if (countEl) {
    window.setInterval(look, poll);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        look();
      }
    });
  }

  // Playing a message marks it heard.
  function markHeard(audio) {
    var id = audio.getAttribute("data-vm");
    var box = audio.closest(".unheard");
    if (!id || !box || box.getAttribute("data-marking")) {
      return;
    }
    box.setAttribute("data-marking", "1");
    fetch("/api/voicemails/" + encodeURIComponent(id) + "/heard", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf }
    }).then(function (resp) {
      box.removeAttribute("data-marking");
      if (!resp.ok) {
        return;
      }
      box.classList.remove("unheard");
      var dot = box.querySelector(".dot");
      if (dot) {
        dot.setAttribute("title", "heard");
      }
      var btn = box.querySelector("button.mark-heard");
      if (btn) {
        var field = btn.form.querySelector('input[name="heard"]');
        if (field) {
          field.value = "0";
        }
        btn.textContent = "Mark unheard";
        btn.classList.remove("mark-heard");
      }
      look();
    }).catch(function () {
      box.removeAttribute("data-marking");
    });
  }

  document.addEventListener("play", function (ev) {
    var audio = ev.target;
    if (!(audio instanceof HTMLAudioElement)) {
      return;
    }
    // One message at a time.
    document.querySelectorAll("audio").forEach(function (other) {
      if (other !== audio && !other.paused) {
        other.pause();
      }
    });
  }, true);

  // Marked heard once it really plays, not when it cannot be loaded.
  document.addEventListener("playing", function (ev) {
    if (ev.target instanceof HTMLAudioElement) {
      markHeard(ev.target);
    }
  }, true);

  // A recording that cannot be played says why: the server's answer to
  // the same address names the reason (gone, Asterisk unreachable, ...).
  document.addEventListener("error", function (ev) {
    var audio = ev.target;
    if (!(audio instanceof HTMLAudioElement) || !audio.getAttribute("src")) {
      return;
    }
    var note = audio.parentNode.querySelector(".audio-problem");
    if (!note) {
      return;
    }
    fetch(audio.getAttribute("src"), { credentials: "same-origin", headers: { Range: "bytes=0-0" } }).then(function (resp) {
      if (resp.ok) {
        return "this browser cannot play the recording; download it instead";
      }
      return resp.json().then(function (e) {
        return e.error || ("error " + resp.status);
      }, function () {
        return "error " + resp.status;
      });
    }).catch(function () {
      return "the server cannot be reached";
    }).then(function (why) {
      note.textContent = "Cannot play: " + why + ".";
      note.hidden = false;
      audio.classList.add("failed");
    });
  }, true);

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var msg = form.getAttribute && form.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });

  // A chart wider than a phone starts at its newest days.
  document.querySelectorAll(".chart-wrap").forEach(function (w) {
    w.scrollLeft = w.scrollWidth;
  });

  // The time zone field offers the zones the browser knows.
  var zoneField = document.querySelector("[data-zone-list]");
  if (zoneField && Intl.supportedValuesOf) {
    var dl = document.getElementById(zoneField.getAttribute("list"));
    Intl.supportedValuesOf("timeZone").forEach(function (z) {
      var o = document.createElement("option");
      o.value = z;
      dl.appendChild(o);
    });
  }
})();
