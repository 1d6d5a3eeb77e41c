// neuralgraph control surface: plain JavaScript, no build step, no external files.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { patch: null, ws: null, port: "", pending: {}, sending: false, source: "", octave: 4, held: new Set() };

// ---- HTTP ------------------------------------------------------------------------------------
async function api(method, path, body, raw) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = raw ? body : JSON.stringify(body);
    init.headers["Content-Type"] = raw ? "text/plain; charset=utf-8" : "application/json";
  }
  const response = await fetch(path, init);
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = new Error(data.message || String(data));
    error.data = data;
    throw error;
  }
  return data;
}

function say(text, bad) {
  const box = $("message");
  box.textContent = text;
  box.className = "message" + (bad ? " bad" : "");
  box.hidden = !text;
  clearTimeout(say.timer);
  if (text && !bad) say.timer = setTimeout(() => { box.hidden = true; }, 4000);
}

// ---- patch, graph and controls ----------------------------------------------------------------
async function loadPatch() {
  const patch = await api("GET", "/api/patch");
  state.patch = patch;
  $("patch-name").textContent = patch.name;
  $("patch-file").textContent = `${patch.file} · ${patch.sample_rate} Hz · block ${patch.block_size} · ${patch.channels} ch`;
  document.title = `${patch.name} — neuralgraph`;
  buildControls(patch);
  buildPorts(patch);
  buildMeters(patch.channels);
  $("keyboard-panel").hidden = !patch.midi;
  if (patch.midi) buildKeyboard();
  loadGraph();
}

async function loadGraph() {
  const box = $("graph");
  try {
    box.innerHTML = await api("GET", "/api/graph.svg");
  } catch (error) {
    box.textContent = error.message;
    return;
  }
  for (const g of box.querySelectorAll("g.node")) {
    const name = g.querySelector("title").textContent;
    g.addEventListener("click", () => selectNode(name));
  }
}

function selectNode(name) {
  for (const g of $("graph").querySelectorAll("g.node")) {
    g.classList.toggle("selected", g.querySelector("title").textContent === name);
  }
  for (const div of document.querySelectorAll(".node-controls")) {
    div.classList.toggle("selected", div.dataset.node === name);
  }
  const card = document.querySelector(`.node-controls[data-node="${CSS.escape(name)}"]`);
  if (card) card.scrollIntoView({ block: "nearest", behavior: "smooth" });
  const node = state.patch.nodes.find((n) => n.name === name);
  const out = node && node.outputs.find((o) => o.rate !== "events");
  if (out) watch(name === state.patch.output ? "" : `${name}.${out.name}`);
}

const toSlider = (c, v) => {
  const [lo, hi, curve] = c.slider;
  const t = curve === "log" ? Math.log(v / lo) / Math.log(hi / lo) : (v - lo) / (hi - lo);
  return Math.round(Math.min(1, Math.max(0, t)) * 1000);
};
const fromSlider = (c, s) => {
  const [lo, hi, curve] = c.slider;
  const t = s / 1000;
  const v = curve === "log" ? lo * Math.pow(hi / lo, t) : lo + t * (hi - lo);
  return c.kind === "int" ? Math.round(v) : Number(v.toPrecision(5));
};

function buildControls(patch) {
  const box = $("controls");
  box.textContent = "";
  const byNode = new Map();
  for (const c of patch.controls) {
    if (!byNode.has(c.node)) byNode.set(c.node, []);
    byNode.get(c.node).push(c);
  }
  for (const node of patch.nodes) {
    const controls = byNode.get(node.name);
    if (!controls) continue;
    const card = document.createElement("div");
    card.className = "node-controls";
    card.dataset.node = node.name;
    card.innerHTML = `<h3>${escapeHtml(node.name)} <small>${escapeHtml(node.type)}</small></h3>`;
    for (const c of controls) card.appendChild(control(c));
    box.appendChild(card);
  }
  if (!box.children.length) box.textContent = "This patch has nothing to set while it plays.";
}

function control(c) {
  const row = document.createElement("div");
  row.className = "control";
  row.dataset.target = c.target;
  const label = document.createElement("label");
  label.textContent = c.name;
  label.title = `${c.target}${c.doc ? ": " + c.doc : ""}${c.input ? " (input)" : ""}`;
  row.appendChild(label);
  const unit = document.createElement("span");
  unit.className = "unit";
  unit.textContent = c.unit || "";
  if (c.kind === "bool") {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = !!c.value;
    box.id = `ctl-${c.target}`;
    box.addEventListener("change", () => send(c.target, box.checked));
    row.append(box, document.createElement("span"), unit);
  } else if (c.kind === "choice" || c.kind === "text") {
    const menu = document.createElement("select");
    menu.id = `ctl-${c.target}`;
    for (const choice of c.choices || [c.value]) menu.add(new Option(choice, choice, false, choice === c.value));
    menu.addEventListener("change", () => send(c.target, menu.value));
    row.append(menu, document.createElement("span"), unit);
  } else {
    const range = document.createElement("input");
    range.type = "range";
    range.min = 0; range.max = 1000; range.step = 1;
    range.id = `ctl-${c.target}`;
    range.value = toSlider(c, c.value);
    const number = document.createElement("input");
    number.type = "number";
    number.value = c.value;
    number.step = c.kind === "int" ? 1 : "any";
    if (c.min !== null) number.min = c.min;
    if (c.max !== null) number.max = c.max;
    range.addEventListener("input", () => { const v = fromSlider(c, range.value); number.value = v; send(c.target, v); });
    number.addEventListener("change", () => {
      const v = Number(number.value);
      if (number.value === "" || !Number.isFinite(v)) return say(`${c.target}: enter a number`, true);
      range.value = toSlider(c, v);
      send(c.target, v);
    });
    row.append(range, number, unit);
  }
  return row;
}

function showValues(values) {
  for (const [target, value] of Object.entries(values)) {
    const row = document.querySelector(`.control[data-target="${CSS.escape(target)}"]`);
    const c = state.patch && state.patch.controls.find((x) => x.target === target);
    if (!row || !c) continue;
    const inputs = row.querySelectorAll("input, select");
    if (c.kind === "bool") inputs[0].checked = !!value;
    else if (c.kind === "choice" || c.kind === "text") inputs[0].value = value;
    else { inputs[0].value = toSlider(c, value); inputs[1].value = value; }
  }
}

// Changes are coalesced per animation frame: a dragged slider sends its latest value, not every step.
function send(target, value) {
  state.pending[target] = value;
  if (state.sending) return;
  state.sending = true;
  requestAnimationFrame(() => {
    const values = state.pending;
    state.pending = {};
    state.sending = false;
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "set", values }));
    else api("POST", "/api/params", values).catch((e) => say(e.message, true));
  });
}

// ---- scope, spectrum, meters, status ------------------------------------------------------------
function buildPorts(patch) {
  const menu = $("port");
  menu.textContent = "";
  menu.add(new Option(`output (${patch.output})`, ""));
  for (const node of patch.nodes) {
    if (node.name === patch.output) continue;
    for (const out of node.outputs) {
      if (out.rate !== "events") menu.add(new Option(`${node.name}.${out.name}${out.rate === "control" ? " (control)" : ""}`, `${node.name}.${out.name}`));
    }
  }
  menu.value = state.port;
  if (menu.value !== state.port) watch("");
  menu.onchange = () => watch(menu.value);
}

function watch(port) {
  state.port = port;
  $("port").value = port;
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "watch", port }));
}

function buildMeters(channels) {
  const box = $("meters");
  box.textContent = "";
  for (let i = 0; i < channels; i++) {
    box.insertAdjacentHTML("beforeend",
      `<div class="meter" data-channel="${i}"><span>${i + 1}</span><div class="bar"><div class="rms"></div><div class="peak"></div></div><span class="db">-inf</span></div>`);
  }
}

const dbToWidth = (db) => `${Math.max(0, Math.min(100, (db + 60) / 60 * 100))}%`;

function drawMeters(meters) {
  const rows = $("meters").children;
  meters.forEach((m, i) => {
    const row = rows[i];
    if (!row) return;
    row.querySelector(".rms").style.left = dbToWidth(m.rms_db);
    row.querySelector(".peak").style.left = dbToWidth(m.peak_db);
    row.querySelector(".db").textContent = m.rms_db <= -120 ? "-inf" : `${m.rms_db.toFixed(1)} dB`;
    row.dataset.rms = m.rms_db;
  });
}

function drawScope(scope) {
  const canvas = $("scope");
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#374151";
  g.beginPath(); g.moveTo(0, h / 2); g.lineTo(w, h / 2); g.stroke();
  const data = (scope && scope.scope) || [];
  canvas.dataset.points = data.length;
  if (!data.length) return;
  const peak = Math.max(1e-3, ...data.map(Math.abs));
  const scale = peak > 1 ? 1 / peak : 1;  // control signals (Hz, gains) are scaled to fit
  g.strokeStyle = "#69db7c";
  g.lineWidth = 1.5;
  g.beginPath();
  data.forEach((v, i) => {
    const x = i / (data.length - 1) * w, y = h / 2 - v * scale * (h / 2 - 4);
    if (i) g.lineTo(x, y); else g.moveTo(x, y);
  });
  g.stroke();
}

function drawSpectrum(scope) {
  const canvas = $("spectrum");
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  if (!scope || !scope.spectrum) { $("peak").textContent = scope && scope.control ? "(a control-rate port)" : ""; return; }
  const bands = scope.spectrum;
  g.fillStyle = "#4dabf7";
  const bw = w / bands.length;
  bands.forEach((db, i) => {
    const bh = Math.max(0, (db + 100) / 100) * h;
    g.fillRect(i * bw, h - bh, Math.max(1, bw - 0.5), bh);
  });
  $("peak").textContent = scope.peak_hz ? `peak ${scope.peak_hz.toFixed(1)} Hz · ${scope.rms_db.toFixed(1)} dB rms` : "";
  canvas.dataset.peakHz = scope.peak_hz || 0;
}

function drawStatus(s) {
  if (!s) return;
  const bad = (n) => (n ? ` class="bad"` : "");
  $("status").innerHTML = `${s.backend} · ${s.sample_rate} Hz/${s.period} · cpu ${(s.load * 100).toFixed(1)}% (p99 ${(s.load_p99 * 100).toFixed(1)}%)` +
    ` · <span${bad(s.xruns)}>xruns ${s.xruns}</span> · <span${bad(s.faults + s.node_faults)}>faults ${s.faults + s.node_faults}</span>` +
    ` · latency ${s.latency_ms} ms · voices ${s.voices} · swaps ${s.swaps}`;
}

function connect() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  state.ws = ws;
  ws.onopen = () => { if (state.port) watch(state.port); };
  ws.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "frame") {
      if (m.meters) drawMeters(m.meters);
      drawStatus(m.status);
      if (m.port === state.port) { drawScope(m.scope); drawSpectrum(m.scope); $("scope").dataset.port = m.port; }
      $("port-info").textContent = m.scope && m.scope.gone ? "(gone from the patch)" : "";
    } else if (m.type === "error") {
      say(m.message, true);
      if (m.request === "set") api("GET", "/api/params").then(showValues);
    }
  };
  ws.onclose = () => { $("status").textContent = "disconnected; retrying…"; setTimeout(connect, 1000); };
}

// ---- Listen: the output tap played through Web Audio -------------------------------------------
const listen = { ws: null, ctx: null, next: 0, channels: 2 };
function toggleListen() {
  const button = $("listen");
  if (listen.ws) {
    listen.ws.close(); listen.ws = null;
    if (listen.ctx) listen.ctx.close();
    listen.ctx = null;
    button.classList.remove("on");
    return;
  }
  // made inside the click, so the browser lets it play; the engine's rate, so nothing is resampled twice
  listen.ctx = new AudioContext({ sampleRate: state.patch.sample_rate });
  listen.next = 0;
  const ws = new WebSocket(`ws://${location.host}/ws/audio`);
  ws.binaryType = "arraybuffer";
  listen.ws = ws;
  button.classList.add("on");
  ws.onmessage = (event) => {
    if (typeof event.data === "string") {
      listen.channels = JSON.parse(event.data).channels;
      return;
    }
    const ctx = listen.ctx;
    if (!ctx) return;
    const samples = new Float32Array(event.data);
    const frames = samples.length / listen.channels;
    const buffer = ctx.createBuffer(listen.channels, frames, ctx.sampleRate);
    for (let c = 0; c < listen.channels; c++) buffer.copyToChannel(samples.subarray(c * frames, (c + 1) * frames), c);
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    if (listen.next < ctx.currentTime + 0.02) listen.next = ctx.currentTime + 0.1;  // (re)fill a 100 ms cushion
    source.start(listen.next);
    listen.next += frames / ctx.sampleRate;
    listen.blocks = (listen.blocks || 0) + 1;
  };
  ws.onclose = () => { if (listen.ws === ws) toggleListen(); };
}

// ---- keyboard: mouse, computer keys, Web MIDI --------------------------------------------------
const KEYS = "awsedftgyhujk";
function note(n, on, velocity = 100) {
  if (n < 0 || n > 127) return;
  if (on) state.held.add(n); else state.held.delete(n);
  const key = document.querySelector(`.key[data-note="${n}"]`);
  if (key) key.classList.toggle("down", on);
  const message = { type: "note", note: n, velocity, on };
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
  else api("POST", "/api/notes", { note: n, velocity, on }).catch((e) => say(e.message, true));
}

function buildKeyboard() {
  const box = $("keyboard");
  box.textContent = "";
  const first = 12 * (state.octave + 1), whiteWidth = 34;
  let white = 0;
  for (let n = first; n < first + 25; n++) {
    const black = [1, 3, 6, 8, 10].includes(n % 12);
    const key = document.createElement("div");
    key.className = `key ${black ? "black" : "white"}`;
    key.dataset.note = n;
    key.style.left = `${black ? white * whiteWidth - 11 : white * whiteWidth}px`;
    key.style.width = `${black ? 22 : whiteWidth}px`;
    if (n % 12 === 0) key.textContent = `C${Math.floor(n / 12) - 1}`;
    if (!black) white++;
    key.addEventListener("pointerdown", (e) => { key.setPointerCapture(e.pointerId); note(n, true); });
    key.addEventListener("pointerup", () => note(n, false));
    key.addEventListener("pointercancel", () => note(n, false));
    box.appendChild(key);
  }
}

function keyNote(event) {
  const i = KEYS.indexOf(event.key.toLowerCase());
  return i < 0 ? null : 12 * (state.octave + 1) + i;
}

document.addEventListener("keydown", (event) => {
  if (event.target.closest("textarea, input, select") || !state.patch || !state.patch.midi || event.repeat) return;
  if (event.key === "z" || event.key === "x") {
    state.octave = Math.max(0, Math.min(8, state.octave + (event.key === "x" ? 1 : -1)));
    buildKeyboard();
    return;
  }
  const n = keyNote(event);
  if (n !== null) note(n, true);
});
document.addEventListener("keyup", (event) => {
  const n = keyNote(event);
  if (n !== null && state.held.has(n)) note(n, false);
});

async function webMidi() {
  if (!navigator.requestMIDIAccess) return;
  try {
    const access = await navigator.requestMIDIAccess();
    const attach = () => {
      const names = [];
      for (const input of access.inputs.values()) {
        names.push(input.name);
        input.onmidimessage = (m) => {
          const [status, d1, d2] = m.data;
          const kind = status & 0xf0;
          if (kind === 0x90 && d2 > 0) note(d1, true, d2);
          else if (kind === 0x80 || kind === 0x90) note(d1, false);
        };
      }
      $("midi-devices").textContent = names.length ? `· ${names.join(", ")}` : "";
    };
    attach();
    access.onstatechange = attach;
  } catch (error) {
    // no permission or no MIDI support: the on-screen and computer keys still play
  }
}

// ---- editor --------------------------------------------------------------------------------------
function gutter(errors) {
  const lines = $("source").value.split("\n").length;
  const out = [];
  for (let i = 1; i <= lines; i++) out.push(errors.has(i) ? `<span class="err">${i}</span>` : String(i));
  $("gutter").innerHTML = out.join("\n");
  $("gutter").scrollTop = $("source").scrollTop;
}

function goToLine(line, col) {
  const text = $("source");
  const lines = text.value.split("\n");
  let pos = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
  pos += Math.max(0, (col || 1) - 1);
  text.focus();
  text.setSelectionRange(pos, pos);
}

async function loadSource() {
  state.source = await api("GET", "/api/patch/source");
  $("source").value = state.source;
  $("problems").textContent = "";
  $("editor-state").textContent = "";
  gutter(new Set());
}

async function saveSource() {
  const text = $("source").value;
  $("editor-state").textContent = "swapping…";
  try {
    const result = await api("PUT", "/api/patch/source", text, true);
    state.source = text;
    $("problems").textContent = "";
    gutter(new Set());
    $("editor-state").textContent = result.swapped ? `swapped: ${result.report}` : "saved (nothing changed)";
    await loadPatch();
  } catch (error) {
    const problems = (error.data && error.data.problems) || [];
    const list = $("problems");
    list.textContent = "";
    const lines = new Set();
    for (const p of problems.length ? problems : [{ text: error.message }]) {
      const li = document.createElement("li");
      li.textContent = p.text;
      if (p.line) { lines.add(p.line); li.onclick = () => goToLine(p.line, p.col); }
      list.appendChild(li);
    }
    gutter(lines);
    $("editor-state").textContent = "not swapped: still playing the last good version";
  }
}

// ---- presets -------------------------------------------------------------------------------------
async function loadPresets() {
  const { presets } = await api("GET", "/api/presets");
  const list = $("presets");
  list.textContent = "";
  for (const name of presets) {
    const li = document.createElement("li");
    li.innerHTML = `<span>${escapeHtml(name)}</span><span><button type="button">Recall</button> <button type="button">Delete</button></span>`;
    const [recall, remove] = li.querySelectorAll("button");
    recall.onclick = async () => {
      try {
        const result = await api("POST", `/api/presets/${encodeURIComponent(name)}/recall`);
        showValues(await api("GET", "/api/params"));
        say(`recalled ${name}` + (result.skipped.length ? `; skipped: ${result.skipped.map((s) => s.message).join("; ")}` : ""), result.skipped.length > 0);
      } catch (e) { say(e.message, true); }
    };
    remove.onclick = async () => { await api("DELETE", `/api/presets/${encodeURIComponent(name)}`).catch((e) => say(e.message, true)); loadPresets(); };
    list.appendChild(li);
  }
}

async function savePreset() {
  try {
    const result = await api("POST", "/api/presets", { name: $("preset-name").value.trim() });
    say(`saved ${result.file}`);
    loadPresets();
  } catch (e) { say(e.message, true); }
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// ---- start -----------------------------------------------------------------------------------------
window.addEventListener("DOMContentLoaded", async () => {
  if (location.search.includes("token=")) history.replaceState(null, "", location.pathname);  // the cookie carries it now
  $("save-source").onclick = saveSource;
  $("revert-source").onclick = loadSource;
  $("save-preset").onclick = savePreset;
  $("listen").onclick = toggleListen;
  $("source").addEventListener("input", () => gutter(new Set()));
  $("source").addEventListener("scroll", () => { $("gutter").scrollTop = $("source").scrollTop; });
  $("source").addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); saveSource(); }
  });
  try {
    await loadPatch();
    await Promise.all([loadSource(), loadPresets()]);
  } catch (error) {
    say(error.message, true);
  }
  connect();
  webMidi();
});
