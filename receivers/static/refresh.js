// Keeps a dashboard page current without reloading it, so that the operator keeps their
// place: every N seconds (the <main>'s data-refresh) the page is fetched again and each
// element marked data-live (with an id) is replaced by its new version. The scroll position
// stays; a <details> the operator opened or closed stays so; text typed in a form stays; no
// update runs while a form field has the focus or the tab is hidden. #updated says when the
// last update came, or that updates stopped (the server is unreachable, the login expired).
// A file, not inline: the Content-Security-Policy allows scripts from this origin only.
"use strict";

(() => {
  const main = document.querySelector("main[data-refresh]");
  if (!main) {
    return;
  }
  const seconds = Math.max(5, Number(main.dataset.refresh) || 15);
  const status = document.getElementById("updated");
  let busy = false;
  let updates = 0;
  let last = new Date();

  const fieldKey = (el) => (el.form ? el.form.getAttribute("action") : "") + "|" + el.name;
  const fields = (root) => root.querySelectorAll("input[name], textarea[name], select[name]");

  function carryOver(old, next) {
    const open = new Map();
    old.querySelectorAll("details[id]").forEach((d) => open.set(d.id, d.open));
    next.querySelectorAll("details[id]").forEach((d) => {
      if (open.has(d.id)) {
        d.open = open.get(d.id);
      }
    });
    const typed = new Map();
    fields(old).forEach((el) => {
      if (el.type !== "hidden" && el.value !== el.defaultValue) {
        typed.set(fieldKey(el), el.value);
      }
    });
    fields(next).forEach((el) => {
      if (typed.has(fieldKey(el))) {
        el.value = typed.get(fieldKey(el));
      }
    });
  }

  function say(text, stale) {
    if (status) {
      status.textContent = text;
      status.classList.toggle("stale", stale);
    }
  }

  async function update() {
    const focused = document.activeElement;
    if (busy || document.hidden || (focused && focused.matches("input, select, textarea"))) {
      return;
    }
    busy = true;
    try {
      const answer = await fetch(location.href, {
        cache: "no-store", credentials: "same-origin", headers: { accept: "text/html" },
      });
      if (answer.status === 401 || answer.status === 403 || answer.status >= 500) {
        throw new Error("HTTP " + answer.status);
      }
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      document.querySelectorAll("[data-live][id]").forEach((part) => {
        const next = fresh.getElementById(part.id);
        if (next) {
          carryOver(part, next);
          part.replaceWith(document.adoptNode(next));
        }
      });
      document.title = fresh.title || document.title;
      last = new Date();
      updates += 1;
      document.documentElement.dataset.updates = String(updates);
      say("updated " + last.toLocaleTimeString(), false);
    } catch (error) {
      say("not updated since " + last.toLocaleTimeString() + " (" + error.message + ")", true);
    } finally {
      busy = false;
    }
  }

  setInterval(update, seconds * 1000);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      update();
    }
  });
})();
