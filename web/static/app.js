// Small progressive enhancements; every action also works without script.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

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
        var form = btn.form;
        var field = form.querySelector('input[name="heard"]');
        if (field) {
          field.value = "0";
        }
        btn.textContent = "Mark unheard";
        btn.classList.remove("mark-heard");
      }
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
    markHeard(audio);
  }, true);

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var msg = form.getAttribute && form.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });
})();
