// One experiment: its progress and steps refresh while it runs; each step's log shows its
// tail and, while the step runs, what it writes next (the server returns new bytes from an
// offset).
"use strict";

const NAME = document.body.dataset.name;
const LOG_MS = 1000;
const LOG_KEEP = 200000;  // characters of a log kept on the page
const logs = new Map();  // step id -> {panel, pre, offset, state, poll}

function overview(e) {
  const v = e.view;
  const facts = el("dl", {className: "facts"},
    el("dt", {text: "progress"}), el("dd", {}, progressBar(v)),
    el("dt", {text: "elapsed"}), el("dd", {className: "elapsed", text: v.elapsed}),
    v.left ? el("dt", {text: "left"}) : null,
    v.left ? el("dd", {className: "left", text: v.left}) : null,
    v.message ? el("dt", {text: "message"}) : null,
    v.message ? el("dd", {text: v.message}) : null);
  return [facts, e.state === "failed" ? failureBlock(v) : null].filter(Boolean);
}

function result(t) {
  if (t.result === null || t.result === undefined) return t.error || "";
  return typeof t.result === "string" ? t.result : JSON.stringify(t.result);
}

function stepRow(t) {
  const finished = t.state === "done" || t.state === "completed";
  const running = t.state === "running";
  const bar = progressBar({done: finished ? 1 : 0, total: 1,
                           running_fraction: running ? (t.progress || 0) : 0,
                           progress: finished ? 1 : running ? (t.progress || 0) : 0,
                           message: t.message,
                           steps: running && t.progress !== null
                             ? `${Math.round(100 * t.progress)}%` + (t.message ? ` ${t.message}` : "")
                             : ""});
  return el("tr", {"data-step": t.id, "data-state": t.state},
    el("td", {}, el("a", {href: "#log-" + t.id, text: t.id})),
    el("td", {text: t.method}),
    el("td", {}, stateBadge(t.state)),
    el("td", {}, bar),
    el("td", {className: "num", text: t.seconds === null ? "-" : t.time_text}),
    el("td", {className: "num", text: String(t.attempts)}),
    el("td", {className: "result", text: result(t)}));
}

function logPanel(t) {
  let log = logs.get(t.id);
  if (!log) {
    const pre = el("pre", {className: "log"});
    const panel = el("details", {id: "log-" + t.id, className: "logpanel", "data-step": t.id},
                     el("summary", {text: `log of ${t.id}`}), pre);
    log = {panel, pre, offset: null, state: t.state, poll: null, done: false};
    logs.set(t.id, log);
    panel.addEventListener("toggle", () => { if (panel.open) follow(t.id); });
    document.getElementById("logs").append(panel);
    if (t.state === "running" || t.state === "failed") panel.open = true;
  }
  const wasRunning = log.state === "running";
  log.state = t.state;
  if (t.state === "running" && !log.panel.open) log.panel.open = true;
  if (wasRunning && t.state !== "running" && log.panel.open) follow(t.id);  // its last words
}

function follow(step) {
  const log = logs.get(step);
  if (!log.poll) {
    log.poll = every(LOG_MS, () => readLog(step));
  }
}

async function readLog(step) {
  const log = logs.get(step);
  const url = `/experiments/api/log/${encodeURIComponent(NAME)}/${encodeURIComponent(step)}` +
              (log.offset === null ? "" : `?offset=${log.offset}`);
  const chunk = await getJSON(url);
  if (chunk.reset || log.offset === null) {
    log.pre.textContent = chunk.skipped ? `… (${chunk.skipped} earlier bytes not shown)\n` : "";
  }
  if (chunk.text) {
    log.pre.append(document.createTextNode(chunk.text));
    if (log.pre.textContent.length > LOG_KEEP) {
      log.pre.textContent = "…\n" + log.pre.textContent.slice(-LOG_KEEP);
    }
    log.pre.scrollTop = log.pre.scrollHeight;
  }
  log.offset = chunk.offset;
  const again = chunk.more || chunk.state === "running";
  if (!again) log.poll = null;
  return again;
}

async function load() {
  const e = await getJSON("/experiments/api/experiment/" + encodeURIComponent(NAME));
  const badge = document.getElementById("state");
  badge.className = "state " + e.state;
  badge.textContent = e.state + (e.view.worker_gone ? " (worker gone)" : "");
  document.getElementById("overview").replaceChildren(...overview(e));
  document.querySelector("#steps tbody").replaceChildren(...e.tasks.map(stepRow));
  e.tasks.forEach(logPanel);
  for (const [step, log] of logs) if (log.panel.open) follow(step);
  document.body.dataset.loaded = String(Date.now());
  return e.state === "queued" || e.state === "running";
}

every(REFRESH_MS, load);
