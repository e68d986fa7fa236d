// The follower's live page: reads the server-sent events of GET /dashboard/events (see follower/dashboard.py).
"use strict";

const $ = (id) => document.getElementById(id);

function formatSeconds(seconds) {
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function showState(state) {
  $("waiting").hidden = !state.waiting;
  $("images").hidden = state.waiting;
  if (state.waiting) $("waiting").textContent = `waiting for the simulator on port ${state.port}`;
  const mode = $("mode");
  mode.textContent = state.mode;
  mode.classList.toggle("follow", state.mode === "FOLLOW");
  $("mode-for").textContent = `for ${formatSeconds(state.mode_for_s)}`;
  const target = state.target ? state.target.map((c) => c.toFixed(2)).join(", ") + " m" : "–";
  $("target").textContent = state.target && state.mode === "PATROL" ? `${target} (last seen)` : target;
  $("fps").textContent = state.fps.toFixed(1);
  const latency = state.latency_ms;
  $("latency").textContent = latency ? `${latency.p50.toFixed(1)} / ${latency.p95.toFixed(1)} ms` : "–";
  for (const key of ["frames", "processed", "dropped", "rejected"]) $(key).textContent = state[key];
  showTracker(state.tracker);
  $("last-rejection").textContent = state.last_rejection || "–";
}

// The tracker: its status (and, while the target goes unseen, for how many frames), candidates, counters.
function showTracker(tracker) {
  const unseen = tracker.misses > 0 && ["coasting", "holding", "lost"].includes(tracker.status);
  $("tracker").textContent = `${tracker.name}: ${tracker.status}${unseen ? ` (${tracker.misses} frames unseen)` : ""}`;
  const candidate = (c) => `(${c.position.map((v) => v.toFixed(1)).join(", ")}) m, ${c.hits} hit${c.hits === 1 ? "" : "s"}`;
  $("candidates").textContent = tracker.candidates.map(candidate).join("; ") || "–";
  $("track-misses").textContent = tracker.track_misses;
  $("coasting").textContent = `${tracker.coasting_frames} / ${tracker.candidate_frames}`;
}

// The simulators connected, one line each; the main one (shown below) outlined. Clicking one shows it.
function showConnections(connections, main) {
  const list = $("connections");
  if (!connections.length) {
    list.replaceChildren(Object.assign(document.createElement("li"), { textContent: "none yet" }));
    return;
  }
  list.replaceChildren(...connections.map((c) => {
    const item = document.createElement("li");
    const mode = Object.assign(document.createElement("span"), { textContent: c.mode });
    mode.classList.toggle("follow", c.mode === "FOLLOW");
    const latency = c.latency_ms ? `, p50 ${c.latency_ms.p50.toFixed(1)} ms` : "";
    item.append(`${c.sid.slice(0, 8)} `, mode, ` ${c.tracker_status}, ${c.frames} frames${latency}`);
    item.dataset.sid = c.sid;
    item.classList.toggle("main", c.sid === main);
    item.onclick = () => select(c.sid === selected ? null : c.sid);
    return item;
  }));
}

function showFrame(frame) {
  $("overlay").src = frame.overlay;
  $("overlay").dataset.seq = frame.seq;
  $("raw").src = frame.raw;
}

// A grid step of 1, 2 or 5 times a power of ten, near a fifth of the span.
function gridStep(span) {
  const raw = span / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw);
}

// Top-down plot in the world frame (ROS: x forward, y left), drawn with +x up and +y to the left: the drone,
// the target positions sent, the raw detections and the current candidates.
function drawTrack(track, candidates) {
  const canvas = $("track");
  const ctx = canvas.getContext("2d");
  const size = canvas.width;
  ctx.fillStyle = "#0b0d10";
  ctx.fillRect(0, 0, size, size);
  const candidatePoints = candidates.map((c) => c.position.slice(0, 2));
  const points = track.drone.concat(track.targets, track.detections, candidatePoints);
  if (!points.length) return;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const midX = (Math.min(...xs) + Math.max(...xs)) / 2;
  const midY = (Math.min(...ys) + Math.max(...ys)) / 2;
  const span = Math.max(10, 1.2 * Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys)));
  const scale = size / span;
  const toScreen = ([x, y]) => [size / 2 - (y - midY) * scale, size / 2 - (x - midX) * scale];

  const step = gridStep(span);
  ctx.strokeStyle = "#262b33";
  ctx.lineWidth = 1;
  for (let g = Math.ceil((midX - span / 2) / step) * step; g <= midX + span / 2; g += step) {
    const [, sy] = toScreen([g, midY]);
    ctx.beginPath(); ctx.moveTo(0, sy); ctx.lineTo(size, sy); ctx.stroke();
  }
  for (let g = Math.ceil((midY - span / 2) / step) * step; g <= midY + span / 2; g += step) {
    const [sx] = toScreen([midX, g]);
    ctx.beginPath(); ctx.moveTo(sx, 0); ctx.lineTo(sx, size); ctx.stroke();
  }
  ctx.fillStyle = "#8c95a3";
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(`grid ${step} m`, 6, size - 6);

  ctx.strokeStyle = "#8c95a3";
  ctx.lineWidth = 1;
  for (const p of track.detections) {
    const [sx, sy] = toScreen(p);
    ctx.beginPath(); ctx.moveTo(sx - 3, sy - 3); ctx.lineTo(sx + 3, sy + 3);
    ctx.moveTo(sx - 3, sy + 3); ctx.lineTo(sx + 3, sy - 3); ctx.stroke();
  }
  ctx.strokeStyle = "#ffb347";
  ctx.lineWidth = 2;
  for (const p of candidatePoints) {
    const [sx, sy] = toScreen(p);
    ctx.beginPath(); ctx.arc(sx, sy, 7, 0, 2 * Math.PI); ctx.stroke();
  }
  ctx.fillStyle = "#4d7dff";
  track.targets.forEach((p, i) => {
    const [sx, sy] = toScreen(p);
    ctx.globalAlpha = 0.25 + 0.75 * (i + 1) / track.targets.length;
    ctx.beginPath(); ctx.arc(sx, sy, i === track.targets.length - 1 ? 5 : 3, 0, 2 * Math.PI); ctx.fill();
  });
  ctx.globalAlpha = 1;
  if (track.drone.length) {
    ctx.strokeStyle = "#c9ced6";
    ctx.lineWidth = 2;
    ctx.beginPath();
    track.drone.forEach((p, i) => { const [sx, sy] = toScreen(p); i ? ctx.lineTo(sx, sy) : ctx.moveTo(sx, sy); });
    ctx.stroke();
    const [sx, sy] = toScreen(track.drone[track.drone.length - 1]);
    ctx.fillStyle = "#ffffff";
    ctx.beginPath(); ctx.arc(sx, sy, 5, 0, 2 * Math.PI); ctx.fill();
  }
}

// The connection asked for (?connection=SID in the address), or null for the latest one.
let selected = new URLSearchParams(location.search).get("connection");
let events = null;

function select(sid) {
  selected = sid;
  const query = sid ? `?connection=${encodeURIComponent(sid)}` : "";
  history.replaceState(null, "", location.pathname + query);
  listen();
}

function listen() {
  if (events) events.close();
  events = new EventSource("/dashboard/events" + (selected ? `?connection=${encodeURIComponent(selected)}` : ""));
  events.onopen = () => {
    $("connection").textContent = "live";
    $("connection").classList.remove("lost");
  };
  events.onerror = () => {
    $("connection").textContent = "no connection to the follower, retrying…";
    $("connection").classList.add("lost");
  };
  events.onmessage = (message) => {
    const state = JSON.parse(message.data);
    showConnections(state.connections, state.connection);
    showState(state);
    if (state.frame) showFrame(state.frame);
    drawTrack(state.track, state.tracker.candidates);
  };
}

listen();
