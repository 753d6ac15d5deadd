// Forklift web app — progressive enhancement only. The site works without this file.
"use strict";
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const STATES = ["queued", "running", "succeeded", "failed", "cancelled"];
  document.documentElement.classList.add("js");

  const parse = (data) => {
    try { const v = JSON.parse(data); return v && typeof v === "object" ? v : null; } catch { return null; }
  };
  // The version an event carries, or null when it is stale (not greater than `last`).
  const newer = (ev, last) => {
    const v = Number(ev.version);
    return !Number.isFinite(v) ? last : v > last ? v : null;
  };

  // Update state badge and progress fields inside `root` (a job panel or a table row).
  function applyJob(root, ev) {
    if (STATES.includes(ev.state)) {
      for (const el of $$('[data-field="state"]', root)) {
        el.textContent = ev.state;
        el.className = "badge state-" + ev.state;
      }
    }
    const p = Number(ev.progress);
    if (ev.progress != null && Number.isFinite(p)) {
      const pct = Math.max(0, Math.min(100, p));
      const text = Math.round(pct) + "%";
      for (const el of $$('progress[data-field="progress"]', root)) { el.value = pct; el.textContent = text; }
      for (const el of $$('[data-field="progress-text"]', root)) el.textContent = text;
    }
  }

  const markLive = () => { document.body.dataset.live = "on"; };

  // 1. Job page live progress.
  let jobSource = null;
  function startJobStream(fromRefresh = false) {
    const el = $("[data-job-stream]");
    if (!el || !el.dataset.jobStream || typeof EventSource !== "function") return;
    if (jobSource) jobSource.close();
    const src = new EventSource(el.dataset.jobStream);
    jobSource = src;
    let last = -Infinity;
    let sawNonFinal = false;
    src.addEventListener("open", markLive);
    src.addEventListener("job", (msg) => {
      const ev = parse(msg.data);
      if (!ev || src !== jobSource) return;
      const v = newer(ev, last);
      if (v === null) return;
      last = v;
      markLive();
      applyJob(el, ev);
      for (const m of $$('[data-field="progress-message"]', el)) m.textContent = ev.progress_message || "";
      for (const e of $$('[data-field="error"]', el)) { e.textContent = ev.error || ""; e.hidden = !ev.error; }
      if (!ev.final) { sawNonFinal = true; return; }
      src.close();
      jobSource = null;
      // Restart at most once for a job that was already final when its page was rendered.
      refreshJob(sawNonFinal || !fromRefresh);
    });
  }

  async function refreshJob(mayRestart) {
    try {
      const res = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const next = doc.getElementById("job");
      const current = document.getElementById("job");
      if (!next || !current) return;
      const hadFocus = current.contains(document.activeElement);
      const node = document.importNode(next, true);
      current.replaceWith(node);
      setupDropzones(node);
      updateTimes();
      if (hadFocus) { node.tabIndex = -1; node.focus({ preventScroll: true }); }
      const streams = node.matches("[data-job-stream]") || $("[data-job-stream]", node);
      if (streams && mayRestart) startJobStream(true);
    } catch {
      // Network trouble: leave the page as it is; a reload shows the final state.
    }
  }

  // 2. Dashboard live updates: rows on the page change in place; a job the page does not
  // show yet (started elsewhere: another tab, the API) brings the server's fresh list.
  function startUserStream() {
    const el = $("[data-user-stream]");
    if (!el || !el.dataset.userStream || typeof EventSource !== "function") return;
    // The version each shown row is at (rendered rows carry theirs); events not newer
    // are stale. `latest` keeps the newest event of every job seen: for rows not shown
    // yet, and so that a fresh list rendered a moment before an event cannot put a row
    // back to an older state.
    const versions = new Map(), latest = new Map();
    const seed = () => {
      for (const r of $$("tr[data-job-id]", el)) {
        const v = Number(r.dataset.version);
        if (Number.isFinite(v)) versions.set(r.dataset.jobId, v);
      }
    };
    seed();
    const src = new EventSource(el.dataset.userStream);
    src.addEventListener("open", markLive);
    src.addEventListener("job", (msg) => {
      const ev = parse(msg.data);
      if (!ev || ev.id == null) return;
      const id = String(ev.id);
      // Once a fresh list still lacks it, it is an older job off this page: let it be.
      if (offPage.has(id)) return;
      const held = latest.get(id);
      if (!held || newer(ev, Number(held.version)) !== null) latest.set(id, ev);
      const row = $$("tr[data-job-id]", el).find((r) => r.dataset.jobId === id);
      if (!row) {
        refreshJobList(el, id);
        return;
      }
      apply(row, id, ev);
    });

    function apply(row, id, ev) {
      const v = newer(ev, versions.has(id) ? versions.get(id) : -Infinity);
      if (v === null) return;
      versions.set(id, v);
      applyJob(row, ev);
    }

    // Replaces the stream's section with the server's current rendering, at most one
    // fetch at a time (events arriving meanwhile ask for one more). The newest event of
    // each job is applied to it where newer than what it shows.
    let listFetch = null, listAgain = false;
    const offPage = new Set(), asked = new Set();
    async function refreshJobList(el, id) {
      asked.add(id);
      if (listFetch) { listAgain = true; return; }
      // The ids this fetch answers; ones asked for meanwhile wait for the next.
      const answering = new Set(asked);
      asked.clear();
      listFetch = (async () => {
        try {
          const res = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
          if (!res.ok) return;
          const doc = new DOMParser().parseFromString(await res.text(), "text/html");
          const next = doc.querySelector("[data-user-stream]");
          if (!next) return;
          // Keep the live stream: swap the contents, not the element that owns it.
          el.replaceChildren(...Array.from(next.childNodes, (n) => document.importNode(n, true)));
          updateTimes();
          versions.clear();
          seed();
          const rows = new Map($$("tr[data-job-id]", el).map((r) => [r.dataset.jobId, r]));
          for (const [pid, r] of rows) {
            const ev = latest.get(pid);
            if (ev) apply(r, pid, ev);
          }
          for (const a of answering) if (!rows.has(a)) { offPage.add(a); latest.delete(a); }
        } catch {
          // Network trouble: the next event or a reload brings the list.
        }
      })();
      await listFetch;
      listFetch = null;
      if (listAgain) {
        listAgain = false;
        const again = asked.values().next();
        if (!again.done) refreshJobList(el, again.value);
      }
    }
  }

  // 3. Drag-and-drop upload.
  function setupDropzones(root = document) {
    for (const form of $$("form[data-dropzone]", root)) {
      if (form.dataset.dzReady) continue;
      form.dataset.dzReady = "1";
      const zone = $(".dropzone", form);
      const input = $('input[type="file"]', form);
      const nameEl = $('[data-field="filename"]', form);
      const showName = (files) => {
        if (nameEl) nameEl.textContent = files && files.length ? Array.from(files, (f) => f.name).join(", ") : "";
      };
      if (input) input.addEventListener("change", () => showName(input.files));
      if (!zone) continue;
      let depth = 0; // dragenter/dragleave also fire for child elements
      const over = (e) => { e.preventDefault(); zone.classList.add("dragover"); };
      zone.addEventListener("dragenter", (e) => { depth++; over(e); });
      zone.addEventListener("dragover", over);
      zone.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; zone.classList.remove("dragover"); } });
      zone.addEventListener("drop", (e) => {
        e.preventDefault();
        depth = 0; zone.classList.remove("dragover");
        const files = e.dataTransfer && e.dataTransfer.files;
        if (!input || !files || !files.length) return;
        try { input.files = files; } catch { return; }
        showName(files);
        if (typeof form.requestSubmit === "function") form.requestSubmit(); else form.submit();
      });
    }
  }

  // 4. Confirmations. 5. Copy to clipboard. (Delegated, so replaced content works too.)
  const ask = (el) => window.confirm(el.dataset.confirm || "Are you sure?");
  document.addEventListener("click", (e) => {
    const t = e.target instanceof Element ? e.target : null;
    const confirmEl = t && t.closest("button[data-confirm], input[type=submit][data-confirm], a[data-confirm]");
    if (confirmEl && !ask(confirmEl)) { e.preventDefault(); e.stopImmediatePropagation(); return; }
    const copyEl = t && t.closest("[data-copy]");
    if (copyEl) { e.preventDefault(); copy(copyEl); }
  });
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
    if (e.submitter && e.submitter.hasAttribute("data-confirm")) return; // already asked on click
    if (!ask(form)) e.preventDefault();
  });

  async function copy(btn) {
    let target = null;
    try { target = document.querySelector(btn.dataset.copy); } catch { /* invalid selector */ }
    if (!target) return;
    const text = target.textContent.trim();
    if (btn.dataset.label == null) btn.dataset.label = btn.textContent;
    try {
      await navigator.clipboard.writeText(text);
      btn.textContent = "Copied";
    } catch {
      // Clipboard unavailable (e.g. plain http): select the text so the user can copy it.
      const range = document.createRange();
      range.selectNodeContents(target);
      const sel = window.getSelection();
      if (sel) { sel.removeAllRanges(); sel.addRange(range); }
      btn.textContent = "Press Ctrl+C";
    }
    clearTimeout(Number(btn.dataset.timer));
    btn.dataset.timer = String(setTimeout(() => { btn.textContent = btn.dataset.label; }, 1600));
  }

  // 6. Relative times.
  const plural = (n, unit) => n + " " + unit + (n === 1 ? "" : "s");
  function relative(date, now) {
    const diff = Math.round((now - date) / 1000);
    const s = Math.abs(diff);
    let text;
    const m = Math.round(s / 60), h = Math.round(s / 3600), d = Math.round(s / 86400);
    if (s < 45) return diff >= 0 ? "just now" : "in a moment";
    if (m < 60) text = m + " min";
    else if (h < 24) text = plural(h, "hour");
    else if (d < 30) text = plural(d, "day");
    else return null; // too far away: keep the server's absolute date
    return diff >= 0 ? text + " ago" : "in " + text;
  }
  function updateTimes() {
    const now = Date.now();
    for (const el of $$("time[datetime][data-relative]")) {
      const date = Date.parse(el.getAttribute("datetime"));
      if (Number.isNaN(date)) continue;
      if (el.dataset.absolute == null) el.dataset.absolute = el.textContent;
      if (!el.title) el.title = el.dataset.absolute.trim() || new Date(date).toLocaleString();
      const text = relative(date, now);
      el.textContent = text || el.dataset.absolute;
    }
  }

  setupDropzones();
  // A file dropped just beside a dropzone should not navigate away from the page.
  if ($("form[data-dropzone]")) {
    for (const type of ["dragover", "drop"]) {
      document.addEventListener(type, (e) => {
        if (e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files")) e.preventDefault();
      });
    }
  }
  updateTimes();
  setInterval(updateTimes, 30000);
  startJobStream();
  startUserStream();
})();
