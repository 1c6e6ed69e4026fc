// The ranking page of `curate annotate`. Plain JavaScript, no library: every action is sent to the server
// at once and the page redraws from the server's answer, so what is shown is what is saved.
"use strict";

const FLAGS = [["unsafe", "u"], ["wrong", "w"], ["off-topic", "o"]];
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) node.append(c);
  return node;
};

let annotator = null;
let view = null; // the server's view of the current prompt
let cursor = 0; // the selected response (index)
let queue = Promise.resolve(); // actions run one after another, each on the view the one before left

// ---------------------------------------------------------------------------------------------- server

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", "X-Annotator": encodeURIComponent(annotator) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await res.json(); } catch (e) { /* an empty or non-JSON answer */ }
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
  return data;
}

// One action at a time, in the order they were asked for (keys typed fast queue up); the page redraws from
// each answer, or says what went wrong.
function act(fn) {
  queue = queue.then(fn).catch((e) => toast(e.message, true));
  return queue;
}

function toast(message, error = false) {
  const t = $("toast");
  t.textContent = message;
  t.className = error ? "error" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, error ? 6000 : 2500);
}

// ---------------------------------------------------------------------------------------------- who

function cookieName() {
  const m = document.cookie.match(/(?:^|;\s*)annotator=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : null;
}

function remember(name) {
  document.cookie = `annotator=${encodeURIComponent(name)}; path=/; max-age=31536000; SameSite=Strict`;
}

async function start() {
  const fromUrl = new URLSearchParams(location.search).get("annotator");
  const name = (fromUrl || cookieName() || "").trim();
  if (!name) return askName();
  await login(name);
}

function askName() {
  show("name-form");
  $("who").textContent = "";
  $("name-input").focus();
}

async function login(name) {
  annotator = name;
  const r = await api("POST", "/api/annotators");
  annotator = r.name;
  remember(annotator);
  $("who").replaceChildren("annotator: ", el("b", { textContent: annotator }), " ",
    el("a", { href: "#", id: "change-name", textContent: "change", onclick: changeName }));
  await route();
}

function changeName(e) {
  e.preventDefault();
  document.cookie = "annotator=; path=/; max-age=0";
  const url = new URL(location.href);
  url.searchParams.delete("annotator");
  history.replaceState(null, "", url.pathname + url.hash);
  annotator = null;
  askName();
}

// ---------------------------------------------------------------------------------------------- navigation

function show(section) {
  for (const id of ["name-form", "task", "overview"]) $(id).hidden = id !== section;
  blurHidden();
}

// A field that was just hidden must not keep the focus (and so swallow the keys) until the browser notices.
function blurHidden() {
  const a = document.activeElement;
  if (a && a !== document.body && a.closest("[hidden]")) a.blur();
}

async function route() {
  const m = location.hash.match(/^#\/(\d+)$/);
  if (location.hash === "#/overview") return overview();
  if (m) return load(Number(m[1]) - 1);
  const next = await api("GET", "/api/next");
  return go(next.pos, { replace: true });
}

// Within an action, so that keys pressed meanwhile wait for the new prompt (pushState fires no hashchange;
// the back and forward buttons do).
async function go(pos, { replace = false } = {}) {
  const hash = pos === null ? "#/overview" : `#/${pos + 1}`;
  if (location.hash !== hash) history[replace ? "replaceState" : "pushState"](null, "", location.pathname + location.search + hash);
  await route();
}

async function load(pos) {
  const v = await api("GET", `/api/prompts/${pos}`);
  if (!view || view.pos !== v.pos) cursor = 0;
  closeForms();
  render(v);
  show("task");
}

async function overview() {
  const o = await api("GET", "/api/overview");
  view = null;
  $("overview-title").textContent = o.done === o.total
    ? `All ${o.total} prompts done. Thank you!`
    : `${o.done} of ${o.total} prompts done`;
  $("progress").textContent = `${o.done} / ${o.total} done`;
  $("where").textContent = "overview";
  const rows = o.prompts.map((p) => {
    const a = p.agreement;
    const fmt = (x) => (x === null || x === undefined ? "–" : String(x));
    const tr = el("tr", { className: `status-${p.status}` },
      el("td", { textContent: p.pos + 1 }),
      el("td", { textContent: p.id }),
      el("td", { textContent: p.status }),
      el("td", { textContent: a ? `${a.annotators} ranked` + (a.skipped_by ? `, ${a.skipped_by} skipped` : "") : "–" }),
      el("td", { textContent: a ? fmt(a.kendall_tau) : "–" }),
      el("td", { textContent: a ? fmt(a.top_agreement) : "–" }),
      el("td", { textContent: a && a.ranking.length ? a.ranking.map((k) => k + 1).join(" > ") : "–" }));
    tr.onclick = () => act(() => go(p.pos));
    return tr;
  });
  $("overview-rows").replaceChildren(...rows);
  show("overview");
}

// ---------------------------------------------------------------------------------------------- drawing

function render(v) {
  view = v;
  const s = v.state;
  $("where").textContent = `prompt ${v.pos + 1} of ${v.total}`;
  $("progress").textContent = `${v.done} / ${v.total} done`;
  const statusText = { open: "not submitted yet", ranked: "submitted", skipped: "skipped" }[s.status];
  $("status-line").replaceChildren(
    el("span", { className: `badge status-${s.status}`, textContent: statusText }),
    s.skip_reason ? ` reason: ${s.skip_reason}` : "",
    el("span", { className: "pid", textContent: ` id ${v.id}` }));

  $("prompt").replaceChildren(...v.prompt.map((m) =>
    el("div", { className: `msg ${m.role}` }, el("span", { className: "role", textContent: m.role }),
      el("div", { className: "text", textContent: m.content }))));

  const ranking = $("ranking");
  ranking.replaceChildren(...s.ranking.map((k, i) => {
    const li = el("li", { className: "chip", title: "drag to reorder" },
      el("span", { className: "pos", textContent: `#${i + 1}` }),
      el("span", { className: "key", textContent: k + 1 }),
      el("span", { className: "snippet", textContent: v.responses[k].text.slice(0, 90) }),
      el("button", { className: "remove", textContent: "×", title: "remove from the ranking",
        onclick: (e) => { e.stopPropagation(); act(() => rank(k)); } }));
    li.dataset.k = k;
    li.addEventListener("pointerdown", dragStart);
    return li;
  }));
  $("ranking-hint").hidden = s.ranking.length > 0;

  const unranked = v.responses.map((_, k) => k).filter((k) => !s.ranking.includes(k) && !(k in s.flags));
  $("submit").disabled = unranked.length > 1;
  $("submit").title = unranked.length > 1
    ? `rank ${unranked.length - 1} more (the last one goes last by itself)` : "Submit the ranking (Enter)";
  $("edit-btn").disabled = s.ranking.length === 0;

  $("responses").replaceChildren(...v.responses.map((r, k) => card(r, k, s)));

  const note = $("edit-note");
  note.hidden = !s.edit;
  if (s.edit) {
    const used = s.ranking[0] === s.edit.base;
    note.className = used ? "note" : "note warn";
    note.replaceChildren(used
      ? `Edited version of response ${s.edit.base + 1} saved; it will be exported instead of it.`
      : `Your edit of response ${s.edit.base + 1} is kept but not used: response ${s.edit.base + 1} is no longer your best. Edit the best again or discard it.`);
  }

  const a = v.agreement;
  $("agreement").hidden = !a;
  if (a) {
    const parts = [`${a.annotators} annotator${a.annotators === 1 ? "" : "s"} ranked this prompt`];
    if (a.skipped_by) parts.push(`${a.skipped_by} skipped it`);
    if (a.kendall_tau !== null) parts.push(`Kendall's τ ${a.kendall_tau}`);
    if (a.top_agreement !== null) parts.push(`top choice agreed ${Math.round(a.top_agreement * 100)}%`);
    if (a.ranking.length) parts.push(`combined: ${a.ranking.map((k) => k + 1).join(" > ")}`);
    $("agreement").textContent = "Agreement: " + parts.join(" · ");
  }
}

function card(r, k, s) {
  const pos = s.ranking.indexOf(k);
  const flag = s.flags[k];
  const classes = ["card"];
  if (k === cursor) classes.push("selected");
  if (flag) classes.push("flagged");
  if (pos === 0) classes.push("best");
  const badge = flag ? `flagged: ${flag}` : pos >= 0 ? `#${pos + 1}` : "unranked";
  const flags = FLAGS.map(([reason, key]) => el("button", {
    className: `flag${flag === reason ? " on" : ""}`,
    textContent: reason,
    title: `flag as ${reason} (${key})`,
    onclick: (e) => { e.stopPropagation(); cursor = k; act(() => setFlag(k, reason)); },
  }));
  const body = el("div", { className: "text", textContent: r.text });
  const c = el("article", { className: classes.join(" "), id: `response-${k + 1}` },
    el("div", { className: "head" },
      el("span", { className: "key", textContent: k + 1 }),
      el("span", { textContent: `Response ${k + 1}` }),
      el("span", { className: "rank", textContent: badge }),
      el("span", { className: "grow" }), ...flags),
    body);
  if (pos === 0 && s.edit && s.edit.base === k) {
    c.append(el("div", { className: "edited" }, el("span", { className: "role", textContent: "edited" }),
      el("div", { className: "text", textContent: s.edit.text })));
  }
  c.onclick = () => { cursor = k; act(() => rank(k)); };
  return c;
}

// ---------------------------------------------------------------------------------------------- actions

async function rank(k) {
  const s = view.state;
  if (k in s.flags) throw new Error(`response ${k + 1} is flagged: unflag it to rank it`);
  const ranking = s.ranking.includes(k) ? s.ranking.filter((x) => x !== k) : [...s.ranking, k];
  render(await api("PUT", `/api/prompts/${view.pos}/ranking`, { ranking }));
}

async function move(k, delta) {
  const ranking = [...view.state.ranking];
  const i = ranking.indexOf(k);
  const j = i + delta;
  if (i < 0 || j < 0 || j >= ranking.length) return;
  [ranking[i], ranking[j]] = [ranking[j], ranking[i]];
  render(await api("PUT", `/api/prompts/${view.pos}/ranking`, { ranking }));
}

async function setFlag(k, reason) {
  const same = view.state.flags[k] === reason;
  render(await api("PUT", `/api/prompts/${view.pos}/flags/${k}`, { reason: same ? null : reason }));
  toast(same ? `response ${k + 1} unflagged` : `response ${k + 1} flagged ${reason}`);
}

async function submit() {
  const r = await api("POST", `/api/prompts/${view.pos}/submit`);
  const a = r.agreement;
  toast(`Prompt ${r.pos + 1} saved` + (a && a.annotators > 1 && a.kendall_tau !== null ? ` (Kendall's τ with others ${a.kendall_tau})` : ""));
  await go(r.next);
}

async function skip(reason) {
  const r = await api("POST", `/api/prompts/${view.pos}/skip`, { reason });
  toast(`Prompt ${r.pos + 1} skipped`);
  await go(r.next);
}

async function saveEdit(text) {
  render(await api("PUT", `/api/prompts/${view.pos}/edit`, { text }));
  closeForms();
  toast(text === null ? "edit discarded" : "edit saved");
}

function openEditor() {
  const s = view.state;
  if (!s.ranking.length) throw new Error("rank a response first: the edit is of the best one");
  const best = s.ranking[0];
  $("skip-form").hidden = true;
  $("editor").hidden = false;
  $("edit-text").value = s.edit && s.edit.base === best ? s.edit.text : view.responses[best].text;
  $("edit-text").focus();
}

function openSkip() {
  $("editor").hidden = true;
  $("skip-form").hidden = false;
  $("skip-reason").value = view.state.skip_reason || "";
  $("skip-reason").focus();
}

function closeForms() {
  $("editor").hidden = true;
  $("skip-form").hidden = true;
  blurHidden();
}

// ---------------------------------------------------------------------------------------------- dragging

// Pointer events (mouse, pen, touch) rather than HTML5 drag and drop: the item follows the pointer between
// the others, and the order is saved when it is let go.
function dragStart(e) {
  if (e.button !== 0 || e.target.closest("button")) return;
  e.preventDefault();
  const li = e.currentTarget;
  const list = $("ranking");
  const before = [...list.children].map((x) => Number(x.dataset.k));
  li.classList.add("dragging");
  // On the window, not the item: moving the item in the list would end a pointer capture on it.
  const onMove = (ev) => {
    const others = [...list.children].filter((x) => x !== li);
    const after = others.find((x) => { const r = x.getBoundingClientRect(); return ev.clientY < r.top + r.height / 2; });
    if ((after || null) !== li.nextElementSibling) list.insertBefore(li, after || null);
  };
  const onUp = () => {
    window.removeEventListener("pointermove", onMove);
    window.removeEventListener("pointerup", onUp);
    li.classList.remove("dragging");
    const order = [...list.children].map((x) => Number(x.dataset.k));
    if (order.join() !== before.join()) act(async () => render(await api("PUT", `/api/prompts/${view.pos}/ranking`, { ranking: order })));
  };
  window.addEventListener("pointermove", onMove);
  window.addEventListener("pointerup", onUp);
}

// ---------------------------------------------------------------------------------------------- keys

function onKey(e) {
  if (!view || $("task").hidden) {
    if (e.key === "g" && annotator && !isTyping(e)) act(() => go(null));
    return;
  }
  if (!$("editor").hidden) {
    if (e.key === "Escape") closeForms();
    else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); act(() => saveEdit($("edit-text").value)); }
    return;
  }
  if (!$("skip-form").hidden) {
    if (e.key === "Escape") closeForms();
    return; // Enter submits the form
  }
  if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey) return;
  const n = view.responses.length;
  const handled = () => e.preventDefault();
  if (/^[1-9]$/.test(e.key) && Number(e.key) <= n) {
    handled();
    const k = Number(e.key) - 1;
    cursor = k;
    act(() => rank(k));
  } else if (e.key === "ArrowUp" || e.key === "ArrowDown") {
    handled();
    const delta = e.key === "ArrowUp" ? -1 : 1;
    const k = cursor;
    if (e.shiftKey) act(() => move(k, delta));
    else { cursor = Math.min(n - 1, Math.max(0, cursor + delta)); render(view); $(`response-${cursor + 1}`).scrollIntoView({ block: "nearest" }); }
  } else if (e.key === "ArrowLeft" && view.pos > 0) { handled(); const p = view.pos - 1; act(() => go(p)); }
  else if (e.key === "ArrowRight" && view.pos < view.total - 1) { handled(); const p = view.pos + 1; act(() => go(p)); }
  else if (e.key === "Enter") { handled(); act(submit); } // after the keys before it; the server says what is missing
  else if (e.key === "e") { handled(); act(async () => openEditor()); }
  else if (e.key === "s") { handled(); openSkip(); }
  else if (e.key === "c") { handled(); act(async () => render(await api("PUT", `/api/prompts/${view.pos}/ranking`, { ranking: [] }))); }
  else if (e.key === "g") { handled(); act(() => go(null)); }
  else {
    const flag = FLAGS.find(([, key]) => key === e.key.toLowerCase());
    const k = cursor;
    if (flag) { handled(); act(() => setFlag(k, flag[0])); }
  }
}

function isTyping(e) {
  return ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName);
}

// ---------------------------------------------------------------------------------------------- wiring

$("name").onsubmit = (e) => { e.preventDefault(); act(() => login($("name-input").value.trim())); };
$("submit").onclick = () => act(submit);
$("edit-btn").onclick = () => act(async () => openEditor());
$("skip-btn").onclick = openSkip;
$("clear-btn").onclick = () => act(async () => render(await api("PUT", `/api/prompts/${view.pos}/ranking`, { ranking: [] })));
$("skip-form").onsubmit = (e) => { e.preventDefault(); act(() => skip($("skip-reason").value)); };
$("skip-cancel").onclick = closeForms;
$("edit-save").onclick = () => act(() => saveEdit($("edit-text").value));
$("edit-cancel").onclick = closeForms;
$("edit-discard").onclick = () => act(() => saveEdit(null));
$("prev").onclick = () => { if (view && view.pos > 0) { const p = view.pos - 1; act(() => go(p)); } };
$("next").onclick = () => { if (view && view.pos < view.total - 1) { const p = view.pos + 1; act(() => go(p)); } };
$("overview-btn").onclick = () => { if (annotator) act(() => go(null)); };
window.addEventListener("hashchange", () => { if (annotator) act(route); });
document.addEventListener("keydown", onKey);
act(start);
