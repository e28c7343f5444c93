// FastReasonSeg web page: upload -> watch the twin build -> ask -> overlay, reasoning and instances.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { twin: null, poll: null };

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function api(path, opts = {}) {
  const r = await fetch(path, opts);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401) showTokenForm(true);
  if (!r.ok) {
    let msg = body && body.detail !== undefined ? body.detail : r.statusText;
    if (Array.isArray(msg)) msg = msg.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("\n");
    const err = new Error(`${r.status}: ${msg}`);
    err.status = r.status;
    throw err;
  }
  return body;
}

// The token (when the server has one) lives in an HttpOnly cookie set by POST /auth, so images and videos carry it
// too. A link "http://host:port/#token=..." (what `fastreasonseg serve` prints) signs in once: the fragment never
// reaches the server's logs and is removed from the address bar at once.
function showTokenForm(show) {
  $("token-form").hidden = !show;
  if (show) $("token").focus();
}

async function signIn(token) {
  const r = await fetch("/auth", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }),
  });
  if (!r.ok) { showError(new Error(`${r.status}: wrong token`)); showTokenForm(true); return false; }
  showError(null);
  showTokenForm(false);
  return true;
}

async function checkAuth() {
  const m = location.hash.match(/(?:^#|&)token=([^&]*)/);
  if (m) {
    history.replaceState(null, "", location.pathname + location.search);
    await signIn(decodeURIComponent(m[1]));
  }
  try {
    const st = await (await fetch("/auth")).json();
    showTokenForm(st.required && !st.authenticated);
  } catch (e) { /* the list below shows the error */ }
}

function showError(e) {
  const box = $("error");
  if (!e) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = e.message || String(e);
  box.hidden = false;
}

function setStage(kind, url) {
  for (const id of ["preview", "overlay", "overlay-video"]) $(id).hidden = true;
  $("placeholder").hidden = !!url;
  if (!url) return;
  const el = $(kind);
  el.src = url;
  el.hidden = false;
}

function renderStatus(st) {
  $("twin-card").hidden = false;
  $("twin-name").textContent = st.id === "example" ? "example (coffee.jpg)" : (st.filename || st.id);
  const s = $("status");
  let text = st.status;
  if (st.status === "building") text += ` ${Math.round(100 * (st.progress || 0))}%` + (st.stage ? ` (${st.stage})` : "");
  if (st.status === "ready") text += ` · ${st.num_instances} objects`;
  if (st.status === "failed") text += `: ${st.error || ""}`;
  s.textContent = text;
  s.className = "status " + st.status;
  $("progress").style.width = `${Math.round(100 * (st.status === "ready" ? 1 : st.progress || 0))}%`;
  const ready = st.status === "ready";
  $("query").disabled = !ready;
  $("ask-btn").disabled = !ready;
}

async function selectTwin(id) {
  clearInterval(state.poll);
  state.twin = id;
  showError(null);
  clearAnswer();
  $("instances").tBodies[0].innerHTML = "";
  $("view").textContent = "";
  let st;
  try { st = await api(`/twins/${id}`); } catch (e) { showError(e); return; }
  renderStatus(st);
  if (st.source_url && st.kind === "image") setStage("preview", st.source_url);
  else if (st.source_url && st.kind === "video") setStage("overlay-video", st.source_url);
  else setStage(null, null);
  markActive();
  if (st.status === "queued" || st.status === "building") {
    state.poll = setInterval(() => pollTwin(id), 500);
  } else if (st.status === "ready") {
    await loadView(id);
    $("query").focus();
  }
}

async function pollTwin(id) {
  if (state.twin !== id) return;
  try {
    const st = await api(`/twins/${id}`);
    renderStatus(st);
    if (st.status === "ready" || st.status === "failed") {
      clearInterval(state.poll);
      refreshList();
      if (st.status === "ready") { await loadView(id); $("query").focus(); }
    }
  } catch (e) { clearInterval(state.poll); showError(e); }
}

async function loadView(id) {
  const v = await api(`/twins/${id}/view`);
  $("view").textContent = v.view;
  const tb = $("instances").tBodies[0];
  const { width, height } = v.source;
  tb.innerHTML = v.instances.map((i) => `<tr data-id="${i.id}"><td>${i.id}</td><td>${esc(i.label)}` +
    (i.alt_labels.length ? ` <small>/ ${esc(i.alt_labels.map((a) => a[0]).join(", "))}</small>` : "") +
    `</td><td>${i.score == null ? "" : i.score.toFixed(2)}</td><td>${i.depth == null ? "" : i.depth.toFixed(2)}</td>` +
    `<td>${(100 * i.area / (width * height)).toFixed(1)}%</td><td>${i.frames}</td></tr>`).join("");
}

function clearAnswer() {
  $("answer").innerHTML = "";
  $("rollout").textContent = "";
  $("tools").innerHTML = "";
  $("timings").textContent = "";
}

function renderAnswer(res) {
  const labels = res.labels || {};
  $("answer").innerHTML = res.no_target
    ? `<strong>No target.</strong> ${esc(res.diagnostic || "")}`
    : "<strong>Answer:</strong> " + res.ids.map((i) => `<span class="id">${i} ${esc(labels[i] || "")}</span>`).join("");
  $("rollout").textContent = res.rollout;
  $("tools").innerHTML = (res.tool_calls || []).map((t) =>
    `<li><code>${esc(t.tool || t.name || "")}(${esc(JSON.stringify(t.args || {}))})</code> &rarr; ` +
    `${esc(JSON.stringify(t.result !== undefined ? t.result : (t.error || t.output || "")).slice(0, 300))}</li>`).join("");
  const t = res.timings_ms || {};
  const tok = res.tokens || {};
  $("timings").textContent = `${tok.prompt_tokens || 0} prompt tokens (${tok.cached_tokens || 0} cached), ` +
    `${tok.completion_tokens || 0} generated · model ${Math.round(t.total_ms || 0)} ms · request ${Math.round(t.server_ms || 0)} ms`;
  for (const tr of $("instances").tBodies[0].rows) tr.classList.toggle("hit", res.ids.includes(Number(tr.dataset.id)));
  const video = res.overlay_url.endsWith(".mp4");
  setStage(video ? "overlay-video" : "overlay", `${res.overlay_url}?t=${Date.now()}`);
}

async function ask(ev) {
  ev.preventDefault();
  const q = $("query").value.trim();
  if (!q) { showError(new Error("type a question first")); return; }
  showError(null);
  $("ask-btn").disabled = true;
  $("ask-btn").textContent = "Asking…";
  try {
    const res = await api(`/twins/${state.twin}/ask`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ query: q }),
    });
    renderAnswer(res);
  } catch (e) { showError(e); } finally {
    $("ask-btn").disabled = false;
    $("ask-btn").textContent = "Ask";
  }
}

async function upload(file) {
  if (!file) return;
  showError(null);
  const fd = new FormData();
  fd.append("file", file, file.name);
  $("twin-card").hidden = false;
  $("twin-name").textContent = file.name;
  $("status").textContent = "uploading…";
  $("status").className = "status";
  try {
    const st = await api("/twins", { method: "POST", body: fd });
    await refreshList();
    await selectTwin(st.id);
  } catch (e) {
    showError(e);
    $("status").textContent = "upload refused";
    $("status").className = "status failed";
  }
}

function markActive() {
  for (const li of $("twins").children) li.classList.toggle("active", li.dataset.id === state.twin);
}

async function refreshList() {
  let twins = [];
  try { twins = await api("/twins"); } catch (e) { return; }
  $("twins").innerHTML = twins.map((t) => `<li data-id="${esc(t.id)}"><span class="fn">${esc(t.id === "example" ? "example" : (t.filename || t.id))}</span>` +
    `<span class="st">${esc(t.status)}</span></li>`).join("");
  markActive();
}

$("token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (await signIn($("token").value.trim())) { $("token").value = ""; refreshList(); }
});
$("twins").addEventListener("click", (ev) => {
  const li = ev.target.closest("li");
  if (li) selectTwin(li.dataset.id);
});
$("refresh-btn").addEventListener("click", refreshList);
$("example-btn").addEventListener("click", () => selectTwin("example"));
$("ask-form").addEventListener("submit", ask);
$("file-input").addEventListener("change", (ev) => upload(ev.target.files[0]));
const drop = $("drop");
drop.addEventListener("click", (ev) => { if (ev.target.tagName !== "LABEL") $("file-input").click(); });
drop.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") $("file-input").click(); });
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  upload(ev.dataTransfer.files[0]);
});
window.addEventListener("hashchange", () => { if (location.hash.includes("token=")) checkAuth().then(refreshList); });
checkAuth().then(refreshList);
