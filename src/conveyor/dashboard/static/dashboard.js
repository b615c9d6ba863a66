// Conveyor dashboard: live progress over server-sent events. No framework, no inline code
// (the Content-Security-Policy forbids it); every job text is set with textContent, never HTML.
"use strict";
(function () {
  const body = document.body;
  if (!body.dataset.live || !window.EventSource) return;
  const base = body.dataset.base || "";
  const active = document.querySelector("#active-jobs tbody");

  function setState(root, state) {
    root.querySelectorAll('[data-role="state"]').forEach(function (el) {
      el.className = "badge state-" + state;
      el.textContent = state;
    });
  }

  // A flow's root (job.flow) shows its whole tree's progress: the hub lists only roots.
  function update(root, job) {
    const done = job.display_state === "completed";
    const pct = done ? 100 : job.flow ? job.flow.percent : job.progress.percent;
    root.querySelectorAll('[data-role="bar"]').forEach(function (bar) {
      bar.value = pct;
      bar.className = "bar state-" + job.display_state;
    });
    root.querySelectorAll('[data-role="pct"]').forEach(function (el) { el.textContent = Math.round(pct) + "%"; });
    root.querySelectorAll('[data-role="message"]').forEach(function (el) {
      el.textContent = (job.flow && job.flow.message) || job.progress.message || (job.error ? job.error.message : "");
    });
    setState(root, job.display_state);
  }

  // The same "2026-11-23 21:55:58 UTC" the server renders, whatever the browser's locale.
  function utc(iso) {
    const at = new Date(iso);
    return isNaN(at) ? "" : at.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function newRow(job) {
    const tr = document.createElement("tr");
    tr.dataset.jobId = job.id;
    const link = document.createElement("a");
    link.href = base + "/jobs/" + encodeURIComponent(job.id);
    link.textContent = job.type;
    const cells = [];
    for (let i = 0; i < 6; i++) cells.push(tr.appendChild(document.createElement("td")));
    cells[0].appendChild(link);
    const badge = cells[1].appendChild(document.createElement("span"));
    badge.dataset.role = "state";
    const bar = cells[2].appendChild(document.createElement("progress"));
    bar.max = 100;
    bar.dataset.role = "bar";
    const pct = cells[2].appendChild(document.createElement("span"));
    pct.className = "pct";
    pct.dataset.role = "pct";
    cells[2].className = "progress-cell";
    cells[3].dataset.role = "message";
    cells[4].textContent = job.tenant || "";
    cells[5].className = "small";
    cells[5].textContent = utc(job.created_at);
    active.appendChild(tr);
    const empty = document.querySelector(".empty");
    if (empty) empty.hidden = true;
    return tr;
  }

  const source = new EventSource(base + "/events");
  source.addEventListener("job", function (event) {
    const job = JSON.parse(event.data);
    let rows = document.querySelectorAll('[data-job-id="' + CSS.escape(job.id) + '"]');
    if (rows.length === 0 && active && !job.parent_id) rows = [newRow(job)];
    rows.forEach(function (row) { update(row, job); });
  });
  // The summary cards: jobs running now, waiting (pending or scheduled), finished, and the
  // success rate of finished jobs, as the page first rendered them.
  source.addEventListener("stats", function (event) {
    const stats = JSON.parse(event.data);
    const s = stats.statistics;
    const finished = s.completed + s.failed;
    const shown = {
      running: stats.status.currently_processing,
      pending: s.pending,
      completed: s.completed,
      failed: s.failed,
      success: finished ? (100 * s.completed / finished).toFixed(1) + "%" : "\u2013",
    };
    Object.keys(shown).forEach(function (name) {
      document.querySelectorAll('[data-stat="' + name + '"]').forEach(function (el) {
        el.textContent = String(shown[name]);
      });
    });
  });
  source.addEventListener("removed", function (event) {
    const gone = JSON.parse(event.data);
    document.querySelectorAll('#active-jobs tr[data-job-id="' + CSS.escape(gone.id) + '"]')
      .forEach(function (row) { row.remove(); });
  });
})();
