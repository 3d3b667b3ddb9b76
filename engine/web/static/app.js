// crm web app: progressive enhancement. Every action also works without this script
// (plain forms); with it, cards drag between stages, tasks complete in place, run pages
// follow their run live, and the Telegram Mini App signs in by itself.
//
// Loaded with `defer` from this origin only (the Content-Security-Policy allows no inline
// script), so the DOM is ready when it runs.
"use strict";

(function () {
  document.documentElement.classList.add("js");

  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  // A POST with the CSRF header, answered in JSON. Resolves to the parsed body; rejects
  // with the server's message.
  async function post(url, fields) {
    const body = new URLSearchParams(fields || {});
    const response = await fetch(url, {
      method: "POST",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      body: body,
      credentials: "same-origin",
    });
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : "The server answered " + response.status + ".";
      throw new Error(message);
    }
    return data;
  }

  function notice(text, kind) {
    const box = document.getElementById("notice");
    if (!box) return;
    box.textContent = text;
    box.className = "notice " + (kind || "error");
    box.hidden = false;
    clearTimeout(notice.timer);
    notice.timer = setTimeout(function () { box.hidden = true; }, 8000);
  }

  // ---------------------------------------------------------------------------------
  // Pipeline board: drag with pointer events (mouse, pen, touch), or arrow keys.

  const board = document.getElementById("board");
  if (board) {
    let drag = null;

    const columns = function () { return Array.from(board.querySelectorAll(".column")); };
    const listOf = function (column) { return column.querySelector("ol.cards"); };

    function columnAt(x, y) {
      const el = document.elementFromPoint(x, y);
      return el ? el.closest(".column") : null;
    }

    // Moves `card` to `column` on the page at once, then asks the server; puts it back
    // where it was when the server refuses.
    async function moveCard(card, column) {
      const from = card.closest(".column");
      if (!column || column === from) return;
      const home = { list: card.parentNode, next: card.nextSibling };
      listOf(column).prepend(card);
      card.classList.add("pending");
      const stage = column.dataset.stageId;
      try {
        const moved = await post("/deals/" + card.dataset.dealId + "/move", { stage_id: stage });
        card.dataset.stageId = String(moved.stage_id);
        notice("Moved to " + moved.stage + ".", "ok");
        refreshHeads();
      } catch (err) {
        home.list.insertBefore(card, home.next);
        card.classList.add("refused");
        setTimeout(function () { card.classList.remove("refused"); }, 1500);
        notice(err.message);
      } finally {
        card.classList.remove("pending");
      }
    }

    // Counts and totals come from the server, like everything else on the page.
    async function refreshHeads() {
      try {
        const response = await fetch(location.href, { credentials: "same-origin" });
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        doc.querySelectorAll(".column-head").forEach(function (head) {
          const here = document.getElementById(head.id);
          if (here) here.replaceWith(document.importNode(head, true));
        });
      } catch (_) { /* the heads stay as they were */ }
    }

    board.addEventListener("pointerdown", function (e) {
      const card = e.target.closest(".card");
      if (!card || e.button !== 0 || e.target.closest("select, button, input")) return;
      drag = { card: card, x: e.clientX, y: e.clientY, started: false, pointer: e.pointerId };
    });

    document.addEventListener("pointermove", function (e) {
      if (!drag || e.pointerId !== drag.pointer) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.started) {
        if (Math.abs(dx) + Math.abs(dy) < 6) return;
        drag.started = true;
        drag.card.classList.add("dragging");
      }
      e.preventDefault();
      drag.card.style.transform = "translate(" + dx + "px, " + dy + "px)";
      columns().forEach(function (c) { c.classList.remove("drop-target"); });
      const over = columnAt(e.clientX, e.clientY);
      if (over) over.classList.add("drop-target");
    });

    function endDrag(e, cancelled) {
      if (!drag || e.pointerId !== drag.pointer) return;
      const d = drag;
      drag = null;
      if (!d.started) return;
      d.card.classList.remove("dragging");
      d.card.style.transform = "";
      columns().forEach(function (c) { c.classList.remove("drop-target"); });
      // A drag is not a click: keep the title link from opening.
      d.card.addEventListener("click", function (ev) { ev.preventDefault(); ev.stopPropagation(); }, { capture: true, once: true });
      if (!cancelled) moveCard(d.card, columnAt(e.clientX, e.clientY));
    }
    document.addEventListener("pointerup", function (e) { endDrag(e, false); });
    document.addEventListener("pointercancel", function (e) { endDrag(e, true); });
    // Links and text inside cards would start the browser's own drag.
    board.addEventListener("dragstart", function (e) { e.preventDefault(); });

    board.addEventListener("keydown", function (e) {
      const card = e.target.closest(".card");
      if (!card || e.target !== card || (e.key !== "ArrowLeft" && e.key !== "ArrowRight")) return;
      e.preventDefault();
      const all = columns();
      const i = all.indexOf(card.closest(".column")) + (e.key === "ArrowRight" ? 1 : -1);
      if (i < 0 || i >= all.length) return;
      moveCard(card, all[i]).then(function () { card.focus(); });
    });
  }

  // ---------------------------------------------------------------------------------
  // Tasks: "Done" completes in place.

  document.addEventListener("submit", async function (e) {
    const form = e.target.closest("form.complete");
    if (!form) return;
    e.preventDefault();
    const item = form.closest(".task");
    try {
      await post(form.action, {});
      if (item) item.classList.add("done");
      form.remove();
      notice("Done.", "ok");
    } catch (err) {
      notice(err.message);
    }
  });

  // ---------------------------------------------------------------------------------
  // A run in progress: follow its event stream and recolour the steps.

  const run = document.getElementById("run");
  if (run && run.dataset.events && window.EventSource) {
    const source = new EventSource(run.dataset.events);
    // Works for SVG nodes too, whose className is not a string.
    const setStatus = function (el, status) {
      if (!el) return;
      el.setAttribute("class", (el.getAttribute("class") || "").replace(/status-[a-z_]+/, "status-" + status));
    };
    source.addEventListener("step", function (e) {
      const step = JSON.parse(e.data);
      // The engine keeps a run "queued" until it ends; a step that moved means it is under way.
      const runBadge = document.getElementById("run-status");
      if (runBadge && runBadge.textContent === "queued" && step.status !== "queued" && step.status !== "waiting") {
        runBadge.textContent = "running";
        setStatus(runBadge, "running");
      }
      const node = document.getElementById("node-" + step.step);
      setStatus(node, step.status);
      if (node) {
        const label = node.querySelector(".node-status");
        if (label) label.textContent = step.status + (step.attempt > 1 ? " · attempt " + step.attempt : "");
      }
      const section = document.getElementById("step-" + step.step);
      if (section) {
        const badge = section.querySelector(".step-status");
        if (badge) { badge.textContent = step.status; setStatus(badge, step.status); }
        const out = section.querySelector(".step-output");
        if (out && step.output !== null && step.output !== undefined) {
          const pre = document.createElement("pre");
          pre.className = "json";
          pre.textContent = JSON.stringify(step.output, null, 2);
          out.replaceChildren(pre);
        }
      }
    });
    source.addEventListener("run", async function (e) {
      source.close();
      const finished = JSON.parse(e.data);
      const badge = document.getElementById("run-status");
      if (badge) { badge.textContent = finished.status; setStatus(badge, finished.status); }
      // The attempts, logs and resource use are on the server's page: take them from there.
      try {
        const response = await fetch(location.href, { credentials: "same-origin" });
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = doc.getElementById("run");
        if (fresh) run.replaceChildren.apply(run, Array.from(fresh.childNodes).map(function (n) { return document.importNode(n, true); }));
        run.removeAttribute("data-events");
      } catch (_) { /* the live view stays */ }
    });
    source.addEventListener("error", function () {
      // The browser reconnects by itself; a closed stream after the run ended is normal.
    });
  }

  // ---------------------------------------------------------------------------------
  // Telegram Mini App: the client puts the signed initData in the URL fragment.

  const tg = document.querySelector("[data-telegram-sign-in]");
  if (tg) {
    const params = new URLSearchParams(location.hash.slice(1));
    const initData = params.get("tgWebAppData");
    if (initData) {
      post(tg.dataset.telegramSignIn, { init_data: initData })
        .then(function (answer) { location.replace(answer && answer.next ? answer.next : "/"); })
        .catch(function (err) { tg.textContent = err.message; tg.classList.add("error-message"); });
    } else {
      tg.textContent = "Open this page from the CRM's Telegram bot to sign in with Telegram.";
    }
  }
})();
