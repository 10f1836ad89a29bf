// The list of experiments: totals and ETA on top, state tabs, a name filter, one page of
// rows (the server filters and pages: a workspace may hold 10,000 experiments).
"use strict";

const STATES = ["running", "failed", "queued", "completed"];
const PAGE = 100;
const params = new URLSearchParams(location.search);
const view = {q: params.get("q") || "", state: params.get("state") || "",
              offset: Number(params.get("offset")) || 0};
let refresh = null;
let asked = 0;  // a slow answer to an older question must not overwrite a newer one

function query() {
  const out = new URLSearchParams({limit: String(PAGE), offset: String(view.offset)});
  if (view.q) out.set("q", view.q);
  if (view.state) out.set("state", view.state);
  return out;
}

function remember() {
  const shown = query();
  shown.delete("limit");
  if (view.offset === 0) shown.delete("offset");
  history.replaceState(null, "", shown.toString() ? "?" + shown : location.pathname);
}

function summary(data) {
  const total = Object.values(data.totals).reduce((a, b) => a + b, 0);
  const counts = STATES.filter(s => data.totals[s])
    .map(s => el("span", {className: "count " + s, text: `${data.totals[s]} ${s}`}));
  const eta = data.eta_line || "nothing queued or running";
  return [el("strong", {text: `${total} experiment${total === 1 ? "" : "s"}`}), ...counts,
          el("span", {className: "eta", id: "eta", text: eta})];
}

function tabs(data) {
  const total = Object.values(data.totals).reduce((a, b) => a + b, 0);
  return [["", "all", total], ...STATES.map(s => [s, s, data.totals[s] || 0])].map(
    ([state, label, count]) => {
      const tab = el("button", {type: "button", className: "tab" +
                                (view.state === state ? " active" : ""),
                                "data-state": state, text: `${label} ${count}`});
      tab.addEventListener("click", () => { view.state = state; view.offset = 0; go(); });
      return tab;
    });
}

function row(e) {
  const v = e.view;
  return el("tr", {"data-name": e.name, "data-state": e.state},
    el("td", {}, el("a", {href: experimentURL(e.name), text: e.name})),
    el("td", {}, stateBadge(e.state, v.worker_gone)),
    el("td", {}, progressBar(v)),
    el("td", {className: "num elapsed", text: v.elapsed}),
    el("td", {className: "num left", text: v.left}),
    el("td", {}, e.state === "failed" ? failureBlock(v) : null));
}

async function load() {
  const mine = ++asked;
  const data = await getJSON("/experiments/api/status?" + query());
  if (mine !== asked) return;
  document.getElementById("summary").replaceChildren(...summary(data));
  document.getElementById("tabs").replaceChildren(...tabs(data));
  document.querySelector("#experiments tbody").replaceChildren(...data.experiments.map(row));
  document.getElementById("empty").hidden = data.experiments.length > 0;
  const last = data.offset + data.experiments.length;
  document.getElementById("window").textContent = data.matched
    ? `${data.offset + 1}–${last} of ${data.matched}` : "";
  document.getElementById("prev").disabled = data.offset === 0;
  document.getElementById("next").disabled = last >= data.matched;
  document.body.dataset.loaded = String(Date.now());
}

function go() {
  remember();
  refresh();
}

document.getElementById("filter").value = view.q;
let typing = null;
document.getElementById("filter").addEventListener("input", event => {
  clearTimeout(typing);
  typing = setTimeout(() => { view.q = event.target.value.trim(); view.offset = 0; go(); },
                      200);
});
document.getElementById("prev").addEventListener("click", () => {
  view.offset = Math.max(0, view.offset - PAGE); go();
});
document.getElementById("next").addEventListener("click", () => {
  view.offset += PAGE; go();
});
refresh = every(REFRESH_MS, load);
