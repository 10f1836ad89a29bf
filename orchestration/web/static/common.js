// Shared by the experiments pages. Everything shown is user data (names, messages, log
// lines), so the DOM is built with createElement and textContent only: never innerHTML.
"use strict";

const REFRESH_MS = 2000;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

async function getJSON(url) {
  const reply = await fetch(url, {cache: "no-store"});
  if (!reply.ok) throw new Error(`${url}: ${reply.status} ${reply.statusText}`);
  return reply.json();
}

function experimentURL(name) {
  return "/experiments/" + encodeURIComponent(name);
}

function stateBadge(state, workerGone) {
  return el("span", {className: "state " + state,
                     text: state + (workerGone ? " (worker gone)" : "")});
}

// Steps done of total, plus the running step's own fraction, as one bar.
function progressBar(view) {
  const total = Math.max(view.total, 1);
  const done = el("div", {className: "done"});
  const running = el("div", {className: "running"});
  done.style.width = (100 * view.done / total) + "%";
  running.style.width = (100 * (view.running_fraction || 0) / total) + "%";
  const bar = el("div", {className: "bar", role: "progressbar", "aria-valuemin": "0",
                         "aria-valuemax": "100",
                         "aria-valuenow": String(Math.round(100 * view.progress)),
                         title: view.message || null}, done, running);
  return el("div", {className: "progress"}, bar, el("span", {className: "steps",
                                                           text: view.steps}));
}

function failureBlock(view) {
  if (!view.detail && !view.cause && !view.last_log_line) return null;
  const head = el("div", {className: "why"},
    view.cause ? el("span", {className: "cause", text: view.cause}) : null,
    view.failed_step ? el("span", {className: "where", text: view.failed_step +
      (view.attempts ? ` (${view.attempts} attempt${view.attempts === 1 ? "" : "s"})` : "")}) : null,
    view.detail ? el("span", {className: "detail", text: view.detail}) : null);
  const last = view.last_log_line
    ? el("code", {className: "lastline", title: "last line of the step's log",
                  text: view.last_log_line}) : null;
  return el("div", {className: "failure"}, head, last);
}

// Run fn now and again every delay ms after it settles (never two at once); fn returning
// false stops the loop.
function every(delay, fn) {
  let timer = null;
  const tick = async () => {
    clearTimeout(timer);
    let again = true;
    try { again = (await fn()) !== false; } catch (err) { showError(err); }
    if (again) timer = setTimeout(tick, delay);
  };
  tick();
  return tick;
}

function showError(err) {
  let box = document.getElementById("error");
  if (!box) {
    box = el("p", {id: "error", className: "error"});
    document.querySelector("main").prepend(box);
  }
  box.textContent = "could not refresh: " + err.message;
  setTimeout(() => box.remove(), 5000);
}
