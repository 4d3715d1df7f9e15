// The dashboard: a hash-routed page per view, each reading the node's JSON under /ui/api/.
// Plain JavaScript, no dependency. Data is only ever put in the page as text (never as HTML).
"use strict";

const PAGE_SIZE = 100;
const main = document.getElementById("main");
const errorBox = document.getElementById("error");
const tokenInput = document.getElementById("token");
const tokenBox = document.getElementById("token-box");

// What the current view runs: timers and a long-poll to stop when the view changes.
let view = { timers: [], abort: null, stopped: false };
let admin = false;

tokenInput.value = sessionStorage.getItem("adminToken") || "";
tokenInput.addEventListener("input", () => {
  sessionStorage.setItem("adminToken", tokenInput.value);
  render();
});

/** An element with attributes (on* are listeners) and children (strings become text). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Headers for the node: the admin token, when one is entered. */
function headers() {
  const t = tokenInput.value.trim();
  return t ? { Authorization: "Bearer " + t } : {};
}

/** GETs `path` and returns the envelope's data, or throws with the node's message. */
async function api(path, signal) {
  const r = await fetch(path, { headers: headers(), signal });
  const body = await r.json().catch(() => null);
  if (!body || body.code !== 0) {
    const e = new Error(body ? `${path}: ${body.message} (${body.code})` : `${path}: HTTP ${r.status}`);
    e.code = body && body.code;
    e.status = r.status;
    throw e;
  }
  return body.data;
}

function showError(e) {
  if (e && e.name === "AbortError") return;
  errorBox.hidden = !e;
  errorBox.textContent = e ? String(e.message || e) : "";
}

/** Runs `f` now and every `ms` while the view lasts. */
function every(ms, f) {
  const run = () => Promise.resolve(f()).then(() => showError(null), showError);
  run();
  view.timers.push(setInterval(run, ms));
}

function stopView() {
  view.stopped = true;
  view.timers.forEach(clearInterval);
  if (view.abort) view.abort.abort();
  view = { timers: [], abort: null, stopped: false };
}

const fmtInt = (n) => Number(n).toLocaleString("en-US");

/** "3s", "5m 2s", "2h 10m", "4d 1h" for a duration in seconds. */
function age(s) {
  if (!(s >= 0)) return "–";
  s = Math.floor(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** Seconds between two Unix nanosecond timestamps. */
const secondsBetween = (earlier, later) => (later - earlier) / 1e9;

/** A wall-clock date for a Unix nanosecond timestamp. */
const when = (ns) => (ns > 0 ? new Date(ns / 1e6).toISOString().replace("T", " ").slice(0, 19) : "–");

function card(label, value, small, id) {
  return el("div", { class: "card", id },
    el("div", { class: "label" }, label),
    el("div", { class: "value" + (small ? " small" : "") }, value));
}

function badge(text, kind) {
  return el("span", { class: "badge " + kind }, text);
}

const STATUS = { 1: ["UP", "up"], 2: ["WAITING", "waiting"] };
const statusBadge = (s) => badge(...(STATUS[s] || [String(s), "off"]));

// ---- overview -------------------------------------------------------------------------------

async function overview() {
  let last = null;
  main.replaceChildren(el("h1", {}, "Overview"), el("div", { class: "cards", id: "cards" }));
  every(2000, async () => {
    const o = await api("/ui/api/overview");
    const now = performance.now();
    let rate = "–";
    if (last && now > last.t) rate = ((o.requests - last.n) / ((now - last.t) / 1000)).toFixed(1);
    last = { t: now, n: o.requests };
    const onOff = (on) => badge(on ? "ON" : "off", on ? "on" : "off");
    document.getElementById("cards").replaceChildren(
      card("Version", o.version, true),
      card("Zone", o.zone, true),
      card("Env", o.env, true),
      card("Address", o.addr, true),
      card("Uptime", age(o.uptime_s), true),
      card("Driver / cores", `${o.driver} × ${o.cores}`, true),
      card("Apps", fmtInt(o.apps), false, "card-apps"),
      card("Instances", fmtInt(o.instances), false, "card-instances"),
      card("Up / waiting", `${fmtInt(o.up)} / ${fmtInt(o.waiting)}`, true),
      card("Parked polls", fmtInt(o.parked_polls)),
      card("Connections", fmtInt(o.connections)),
      card("Requests/s", rate),
      card("Self-preservation", onOff(o.self_preservation), true),
      card("Start-up protection", onOff(o.protected), true),
      card("Renews seen / expected", `${fmtInt(o.renews_last_window)} / ${fmtInt(o.renews_expected)}`, true),
      card("Evicted", fmtInt(o.evicted)),
      card("Peers up", `${o.peers_up} / ${o.peers}`, true),
      card("Poll wake p99", o.poll_wake_p99_us < 0 ? "–" : `≤ ${o.poll_wake_p99_us / 1000} ms`, true),
    );
  });
}

// ---- apps -----------------------------------------------------------------------------------

const APP_COLUMNS = [
  ["env", "Env", (a) => a.env],
  ["appid", "App", (a) => a.appid],
  ["zones", "Zones", (a) => a.zones.length],
  ["total", "Instances", (a) => a.total],
  ["up", "Up", (a) => a.up],
  ["waiting", "Waiting", (a) => a.waiting],
  ["latest", "Latest change", (a) => a.latest_ts],
];

async function apps() {
  const state = { all: [], filter: "", sort: "appid", desc: false, page: 0, now: 0 };
  const search = el("input", {
    type: "search", placeholder: "Search env or app…", id: "search",
    oninput: () => { state.filter = search.value.trim().toLowerCase(); state.page = 0; draw(); },
  });
  const count = el("span", { class: "muted", id: "app-count" });
  const pager = el("span", {});
  const table = el("table", { id: "apps" });
  main.replaceChildren(el("h1", {}, "Apps"), el("div", { class: "toolbar" }, search, count, pager), table);

  function draw() {
    const f = state.filter;
    const key = APP_COLUMNS.find((c) => c[0] === state.sort)[2];
    // Filtering and sorting thousands of rows is cheap; only one page becomes DOM.
    const rows = state.all.filter((a) => !f || a.appid.toLowerCase().includes(f) || a.env.toLowerCase().includes(f));
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return state.desc ? -c : c;
    });
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    const shown = rows.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
    count.textContent = `${fmtInt(rows.length)} of ${fmtInt(state.all.length)} apps`;
    pager.replaceChildren(
      el("button", { disabled: state.page === 0, onclick: () => { state.page--; draw(); } }, "‹ Prev"),
      ` page ${state.page + 1} / ${pages} `,
      el("button", { disabled: state.page >= pages - 1, onclick: () => { state.page++; draw(); } }, "Next ›"),
    );
    const head = el("tr", {}, APP_COLUMNS.map(([id, label]) => el("th", {
      class: "sort" + (["zones", "total", "up", "waiting"].includes(id) ? " num" : ""),
      onclick: () => { state.desc = state.sort === id ? !state.desc : false; state.sort = id; draw(); },
    }, label + (state.sort === id ? (state.desc ? " ▾" : " ▴") : ""))), el("th", {}, "Per zone (up/total)"));
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, shown.map((a) => el("tr", { "data-app": `${a.env}/${a.appid}` },
      el("td", {}, a.env),
      el("td", {}, el("a", { href: `#/app/${encodeURIComponent(a.env)}/${encodeURIComponent(a.appid)}` }, a.appid)),
      el("td", { class: "num" }, a.zones.length),
      el("td", { class: "num total" }, a.total),
      el("td", { class: "num" }, a.up),
      el("td", { class: "num" }, a.waiting),
      el("td", {}, age(secondsBetween(a.latest_ts, state.now)), " ago"),
      el("td", { class: "zones" }, a.zones.map((z) => el("span", {}, `${z.zone}: ${z.up}/${z.total}`))),
    ))));
  }

  every(3000, async () => {
    const list = await api("/ui/api/apps");
    for (const a of list) {
      a.up = a.zones.reduce((n, z) => n + z.up, 0);
      a.waiting = a.zones.reduce((n, z) => n + z.waiting, 0);
    }
    state.all = list;
    state.now = Date.now() * 1e6;
    draw();
  });
}

// ---- one app, live ----------------------------------------------------------------------------

async function app(env, appid) {
  const title = el("h1", {}, appid, el("span", { class: "muted" }, ` · ${env}`));
  const status = el("p", { class: "muted", id: "live" });
  const state = { filter: "", page: 0 };
  const search = el("input", {
    type: "search", placeholder: "Search hostname, zone, address…", id: "host-search",
    oninput: () => { state.filter = search.value.trim().toLowerCase(); state.page = 0; draw(); },
  });
  const pager = el("span", {});
  const table = el("table", { id: "instances" });
  main.replaceChildren(title, status, el("div", { class: "toolbar" }, search, pager), table);
  let data = null;
  let fetchedAt = 0;
  const mine = view;
  mine.abort = new AbortController();
  const canSet = () => admin && tokenInput.value.trim() !== "";

  function draw() {
    if (!data) return;
    // Ages run on from the node's clock at the last answer.
    const now = data.now + (performance.now() - fetchedAt) * 1e6;
    const f = state.filter;
    const rows = data.instances.filter((i) => !f || i.hostname.toLowerCase().includes(f) ||
      i.zone.toLowerCase().includes(f) || i.addrs.some((a) => a.toLowerCase().includes(f)));
    // A large app is shown a page at a time, so the page stays responsive.
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    const shown = rows.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
    pager.replaceChildren(
      el("button", { disabled: state.page === 0, onclick: () => { state.page--; draw(); } }, "‹ Prev"),
      ` page ${state.page + 1} / ${pages} `,
      el("button", { disabled: state.page >= pages - 1, onclick: () => { state.page++; draw(); } }, "Next ›"),
    );
    const head = ["Hostname", "Zone", "Addresses", "Version", "Status", "Metadata", "Last renew", "Registered"];
    if (canSet()) head.push("Change status");
    table.replaceChildren(
      el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
      el("tbody", {}, shown.map((i) => el("tr", { "data-host": i.hostname },
        el("td", {}, i.hostname),
        el("td", {}, i.zone),
        el("td", { class: "meta" }, i.addrs.map((a) => el("div", {}, a))),
        el("td", {}, i.version || "–"),
        el("td", { class: "status" }, statusBadge(i.status)),
        el("td", { class: "meta" }, Object.entries(i.metadata).map(([k, v]) => el("div", {}, `${k}=${v}`))),
        el("td", {}, age(secondsBetween(i.renew_ts, now)), " ago"),
        el("td", { title: when(i.reg_ts) }, age(secondsBetween(i.reg_ts, now)), " ago"),
        canSet() ? el("td", {}, setControl(i)) : null,
      ))),
    );
    status.replaceChildren(el("span", { class: "live" }), `${data.instances.length} instances · live · last change ${when(Number(data.latest_ts))}`);
  }

  function setControl(i) {
    const to = i.status === 1 ? 2 : 1;
    return el("button", {
      onclick: async (ev) => {
        ev.target.disabled = true;
        const form = new URLSearchParams({ env, appid, zone: i.zone, hostname: i.hostname, status: String(to) });
        try {
          const r = await fetch("/discovery/set", { method: "POST", headers: headers(), body: form });
          const body = await r.json().catch(() => null);
          showError(body && body.code === 0 ? null : new Error(`set: ${body ? body.message : "HTTP " + r.status}`));
        } catch (e) {
          showError(e);
        }
      },
    }, to === 1 ? "Set UP" : "Set WAITING");
  }

  async function load() {
    data = await api(`/ui/api/app?env=${encodeURIComponent(env)}&appid=${encodeURIComponent(appid)}`, mine.abort.signal);
    fetchedAt = performance.now();
    draw();
  }

  // Reload whenever the app changes: long-poll the node with the latest change seen. A poll
  // answers at once for a newer change, -304 after its hold, or an error (the app has no
  // instance up, or the node is protected): then wait a moment and look again.
  mine.timers.push(setInterval(draw, 1000));
  while (!mine.stopped) {
    try {
      await load();
      showError(null);
      const q = `/discovery/poll?env=${encodeURIComponent(env)}&appid=${encodeURIComponent(appid)}` +
        `&hostname=dashboard&latest_timestamp=${data.latest_ts}`;
      const r = await fetch(q, { headers: headers(), signal: mine.abort.signal });
      const body = await r.json().catch(() => null);
      if (!body || (body.code !== 0 && body.code !== -304)) await sleep(2000);
      // An app that changes all the time is reloaded at most twice a second.
      else await sleep(Math.max(0, 500 - (performance.now() - fetchedAt)));
    } catch (e) {
      if (mine.stopped) return;
      if (e.code === -404) {
        data = null;
        table.replaceChildren();
        status.textContent = "No instance is registered.";
      } else {
        showError(e);
      }
      await sleep(2000);
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- cluster ------------------------------------------------------------------------------------

async function cluster() {
  const me = el("p", { class: "muted" });
  const table = el("table", { id: "peers" });
  main.replaceChildren(el("h1", {}, "Cluster"), me, table);
  every(2000, async () => {
    const c = await api("/ui/api/cluster");
    me.textContent = `This node: ${c.addr} (zone ${c.zone}) · ${c.peers.length} peers`;
    const head = ["Address", "Zone", "Software", "Status", "Last contact", "Queued", "Sent", "Requests", "Retried", "Dropped"];
    table.replaceChildren(
      el("thead", {}, el("tr", {}, head.map((h, n) => el("th", { class: n >= 5 ? "num" : "" }, h)))),
      el("tbody", {}, c.peers.length ? c.peers.map((p) => el("tr", { "data-peer": p.addr },
        el("td", {}, p.addr),
        el("td", {}, p.zone, p.own_zone ? "" : el("span", { class: "muted" }, " (other zone)")),
        el("td", {}, p.kind),
        el("td", { class: "status" }, badge(p.status.toUpperCase(), p.status)),
        el("td", {}, p.last_ok_ns > 0 ? age(secondsBetween(p.last_ok_ns, c.now)) + " ago" : "never"),
        el("td", { class: "num" }, fmtInt(p.queued)),
        el("td", { class: "num" }, fmtInt(p.sent)),
        el("td", { class: "num" }, fmtInt(p.requests)),
        el("td", { class: "num" }, fmtInt(p.retried)),
        el("td", { class: "num", title: `queue full: ${p.dropped_queue_full}, unreachable: ${p.dropped_unreachable}` },
          fmtInt(p.dropped_queue_full + p.dropped_unreachable)),
      )) : el("tr", {}, el("td", { colspan: head.length, class: "muted" }, "No peer: this node runs alone."))),
    );
  });
}

// ---- config -------------------------------------------------------------------------------------

async function config() {
  const table = el("table", { id: "config" });
  main.replaceChildren(el("h1", {}, "Config"),
    el("p", { class: "muted" }, "The effective configuration: file, flags and environment merged. Secrets are masked."), table);
  const pairs = await api("/ui/api/config").catch((e) => { showError(e); return []; });
  table.replaceChildren(
    el("thead", {}, el("tr", {}, el("th", {}, "Key"), el("th", {}, "Value"))),
    el("tbody", {}, pairs.map(([k, v]) => el("tr", {}, el("td", { class: "meta" }, k), el("td", { class: "meta" }, v)))),
  );
}

// ---- routing ------------------------------------------------------------------------------------

async function render() {
  stopView();
  showError(null);
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const page = parts[0] || "overview";
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.page === page || (page === "app" && a.dataset.page === "apps"));
  }
  switch (page) {
    case "apps": return apps();
    case "app": return app(parts[1] || "", parts.slice(2).join("/"));
    case "cluster": return cluster();
    case "config": return config();
    default: return overview();
  }
}

async function start() {
  // The token field shows where a token is of use: the node checks an admin token (status
  // changes are then offered), or it refuses to be read without a token.
  let refused = false;
  try {
    const o = await api("/ui/api/overview");
    admin = o.admin;
    document.getElementById("node").textContent = `${o.addr} · ${o.zone} · ${o.env}`;
    document.title = `discovery · ${o.addr}`;
  } catch (e) {
    // Refused for want of a token: HTTP 401/403, or those ecodes in an envelope.
    refused = [401, 403].includes(e.status) || [-401, -403].includes(e.code);
    showError(e);
  }
  tokenBox.hidden = !(admin || refused);
  if (refused) {
    tokenBox.firstChild.textContent = "Token ";
    tokenInput.placeholder = "read or admin token";
    // Once a token is entered, start over with it.
    tokenInput.addEventListener("change", () => location.reload(), { once: true });
  }
  window.addEventListener("hashchange", render);
  render();
}

start();
