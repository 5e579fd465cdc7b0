// kfab dashboard: listens to /stream (Server-Sent Events: a snapshot, then every change the server's watches
// see) and redraws on the next animation frame after a change. No polling: nothing here asks for data again;
// EventSource reconnects by itself and the server starts a reconnected stream with a fresh snapshot.
"use strict";

const state = { objects: {}, metrics: {}, metricsServed: false };
const PHASE_ORDER = { Running: 0, Pending: 1, Terminating: 2, Succeeded: 3, Failed: 4, Unknown: 5 };
let drawPending = false;

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function apply(message) {
  if (message.op === "snapshot") {
    state.objects = {};
    for (const [kind, items] of Object.entries(message.objects)) {
      state.objects[kind] = {};
      for (const obj of items) state.objects[kind][keyOf(obj)] = obj;
    }
    state.metrics = message.metrics;
    state.metricsServed = message.metricsServed;
  } else if (message.op === "put") {
    (state.objects[message.kind] ||= {})[message.key] = message.obj;
  } else if (message.op === "delete") {
    delete (state.objects[message.kind] || {})[message.key];
  } else if (message.op === "metrics") {
    state.metrics = message.metrics;
    state.metricsServed = message.metricsServed;
  }
}

function keyOf(obj) {
  return obj.namespace ? `${obj.namespace}/${obj.name}` : obj.name;
}

function list(kind) {
  return Object.values(state.objects[kind] || {});
}

function byName(a, b) {
  return keyOf(a).localeCompare(keyOf(b));
}

function shortPodName(pod) {
  // web-7c9d8f6b5-x2kq9 -> x2kq9; db-0 -> db-0: the part that tells pods of one workload apart.
  const parts = pod.name.split("-");
  if (pod.owner.startsWith("ReplicaSet/") && parts.length > 2) return parts[parts.length - 1];
  if (pod.owner.startsWith("DaemonSet/") && parts.length > 1) return parts[parts.length - 1];
  return pod.name.length > 14 ? pod.name.slice(0, 13) + "…" : pod.name;
}

function gib(bytes) {
  return (bytes / 1073741824).toFixed(1) + " GiB";
}

function podTile(pod) {
  const ready = pod.phase === "Running" && pod.ready < pod.containers ? " notready" : "";
  const title = `${pod.namespace}/${pod.name} — ${pod.phase}${pod.reason ? " (" + pod.reason + ")" : ""}, ` +
                `${pod.ready}/${pod.containers} ready`;
  return `<span class="pod phase-${esc(pod.phase)}${ready}" data-pod="${esc(keyOf(pod))}" data-phase="${esc(pod.phase)}" ` +
         `title="${esc(title)}">${esc(shortPodName(pod))}</span>`;
}

function usageRows(node) {
  const used = state.metrics[node.name];
  if (!used) return `<div class="roles">${(node.cpu / 1000).toFixed(1)} CPU · ${gib(node.memory)}</div>`;
  const row = (label, value, total, text) => {
    const pct = total ? Math.min(100, Math.round((100 * value) / total)) : 0;
    return `<span>${label}</span><div class="bar"><div style="width:${pct}%"></div></div><span>${text}</span>`;
  };
  return `<div class="usage">${row("CPU", used.cpu, node.cpu, `${(used.cpu / 1000).toFixed(2)} / ${(node.cpu / 1000).toFixed(0)}`)}` +
         `${row("Memory", used.memory, node.memory, `${gib(used.memory)}`)}</div>`;
}

function drawNodes(pods) {
  const onNode = {};
  for (const pod of pods) (onNode[pod.node] ||= []).push(pod);
  const sortPods = (a, b) => (PHASE_ORDER[a.phase] ?? 9) - (PHASE_ORDER[b.phase] ?? 9) || byName(a, b);
  const cards = list("Node").sort(byName).map((node) => {
    const status = node.ready ? (node.unschedulable ? ["warn", "Ready, cordoned"] : ["ok", "Ready"]) : ["bad", node.reason || "NotReady"];
    const tiles = (onNode[node.name] || []).sort(sortPods).map(podTile).join("");
    return `<div class="node${node.ready ? "" : " notready"}" data-node="${esc(node.name)}" data-ready="${node.ready}">` +
           `<div class="node-head"><span class="node-name">${esc(node.name)}</span><span class="badge ${status[0]}">${esc(status[1])}</span></div>` +
           `<div class="roles">${esc(node.roles.join(", ") || "worker")} · ${(onNode[node.name] || []).length} pods</div>` +
           usageRows(node) + `<div class="pods">${tiles}</div></div>`;
  });
  const unscheduled = onNode[""] || [];
  if (unscheduled.length) {
    cards.push(`<div class="node" data-node=""><div class="node-head"><span class="node-name">not scheduled</span>` +
               `<span class="badge warn">${unscheduled.length}</span></div><div class="pods">` +
               unscheduled.sort(byName).map(podTile).join("") + `</div></div>`);
  }
  document.getElementById("nodes").innerHTML = cards.join("") || `<div class="empty">no nodes</div>`;
}

function drawWorkloads() {
  const rows = ["Deployment", "StatefulSet", "DaemonSet"].flatMap((kind) => list(kind).sort(byName)).map((w) => {
    const slots = Math.max(w.desired, w.current, 1);
    // A cell per replica: green when ready; the underline marks those already on the new template.
    const cells = Array.from({ length: Math.min(slots, 40) }, (_, i) =>
      `<span class="${i < w.ready ? "ready" : ""}${i < w.updated ? " updated" : ""}"></span>`).join("");
    const label = w.rollout === "complete" ? `<span class="complete">✔ rolled out</span>` : `<span class="rolling">rolling out…</span>`;
    return `<div class="row" data-workload="${esc(w.kind)}/${esc(keyOf(w))}" data-ready="${w.ready}" data-desired="${w.desired}" ` +
           `data-updated="${w.updated}" data-rollout="${esc(w.rollout)}">` +
           `<div class="row-head"><span><span class="kind">${esc(w.kind)}</span><span class="name">${esc(keyOf(w))}</span></span>${label}</div>` +
           `<div class="progress">${cells}</div>` +
           `<div class="detail">${w.ready}/${w.desired} ready · ${w.updated} up to date · ${w.available} available` +
           `${w.message ? " · " + esc(w.message) : ""}</div></div>`;
  });
  document.getElementById("workloads").innerHTML = rows.join("") || `<div class="empty">no workloads</div>`;
}

function drawServices() {
  const endpoints = state.objects.Endpoints || {};
  const rows = list("Service").sort(byName).map((svc) => {
    const ep = endpoints[keyOf(svc)] || { ready: [], notReady: [] };
    const where = [svc.clusterIP, ...svc.external].filter((a) => a && a !== "None").join(", ");
    const badge = ep.ready.length ? "ok" : svc.clusterIP === "None" || svc.type === "ExternalName" ? "warn" : "bad";
    return `<div class="row" data-service="${esc(keyOf(svc))}" data-endpoints="${ep.ready.length}">` +
           `<div class="row-head"><span><span class="kind">${esc(svc.type)}</span><span class="name">${esc(keyOf(svc))}</span></span>` +
           `<span class="badge ${badge}">${ep.ready.length} endpoint${ep.ready.length === 1 ? "" : "s"}</span></div>` +
           `<div class="detail">${esc(where)} ${esc(svc.ports.join(" "))}` +
           `${ep.ready.length ? " → " + esc(ep.ready.join(", ")) : ""}${ep.notReady.length ? ` (${ep.notReady.length} not ready)` : ""}</div></div>`;
  });
  document.getElementById("services").innerHTML = rows.join("") || `<div class="empty">no services</div>`;
}

function drawEvents() {
  const events = list("Event").sort((a, b) => (b.time > a.time ? 1 : b.time < a.time ? -1 : 0)).slice(0, 12);
  document.getElementById("events").innerHTML = events.map((e) =>
    `<div class="event ${esc(e.type)}"><span class="time">${esc((e.time || "").slice(11, 19))}</span>` +
    `<span><span class="reason">${esc(e.reason)}</span> ${esc(e.object)}${e.count > 1 ? " ×" + e.count : ""}</span>` +
    `<span class="message">${esc(e.message)}</span></div>`).join("") || `<div class="empty">no events</div>`;
}

function draw() {
  drawPending = false;
  const pods = list("Pod");
  const nodes = list("Node");
  const running = pods.filter((p) => p.phase === "Running").length;
  document.getElementById("summary").innerHTML =
    `<b>${nodes.filter((n) => n.ready).length}/${nodes.length}</b> nodes ready · <b>${running}/${pods.length}</b> pods running` +
    (state.metricsServed ? "" : " · <span title='metrics.k8s.io is not served'>no usage metrics</span>");
  drawNodes(pods);
  drawWorkloads();
  drawServices();
  drawEvents();
}

function scheduleDraw() {
  if (!drawPending) {
    drawPending = true;
    // A hidden page gets no animation frames: draw it anyway, so it is current when shown.
    if (document.hidden) setTimeout(draw, 100); else requestAnimationFrame(draw);
  }
}

function connect() {
  const status = document.getElementById("connection");
  const source = new EventSource("/stream");
  source.onopen = () => { status.className = "live"; status.textContent = "live"; };
  source.onerror = () => { status.className = "connecting"; status.textContent = "reconnecting…"; };
  source.onmessage = (event) => {
    apply(JSON.parse(event.data));
    scheduleDraw();
  };
}

connect();
