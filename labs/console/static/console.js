// The zkops lab console: draws the lab pushed by the server (Server-Sent Events) and posts the
// buttons' actions. No libraries: everything here is ours, nothing is fetched from elsewhere.
"use strict";
(() => {
  const $ = (sel) => document.querySelector(sel);
  const SVG = "http://www.w3.org/2000/svg";
  const el = (name, attrs, parent) => {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  };
  const text = (parent, x, y, str, cls) => { const t = el("text", { x, y, class: cls || "" }, parent); t.textContent = str; return t; };

  let state = { nodes: [], links: [], leader: null, lab: null };
  let canAct = false;
  let selectedNode = null;
  let selectedLink = null;
  let electionsVersion = -1;
  let historiesVersion = -1;
  let elections = [];
  let histories = [];

  // ------------------------------------------------------------ layout
  function layout(ids, cx, cy, r) {
    const pos = {};
    ids.forEach((id, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(ids.length, 1);
      pos[id] = [cx + r * Math.cos(a), cy + r * Math.sin(a)];
    });
    return pos;
  }

  // ------------------------------------------------------------ the ensemble
  function drawEnsemble() {
    const svg = $("#ensemble");
    svg.textContent = "";
    const ids = state.nodes.map((n) => n.id);
    const pos = layout(ids, 300, 215, ids.length > 1 ? 150 : 0);
    const byId = Object.fromEntries(state.nodes.map((n) => [n.id, n]));
    if (!state.nodes.length) text(svg, 300, 215, state.message || "waiting for the lab…", "empty");
    for (const l of state.links) {
      const [x1, y1] = pos[l.a], [x2, y2] = pos[l.b];
      const cutBoth = l.cut_ab && l.cut_ba, cutOne = l.cut_ab !== l.cut_ba;
      const slow = l.delay_ab || l.delay_ba;
      const down = [byId[l.a], byId[l.b]].some((n) => n.process !== "running");
      const cls = ["link", cutBoth ? "cut" : "", cutOne ? "oneway" : "", slow ? "slow" : "", down ? "down" : "",
        selectedLink && selectedLink.a === l.a && selectedLink.b === l.b ? "selected" : ""].join(" ").trim();
      const g = el("g", { class: cls, "data-a": l.a, "data-b": l.b,
        "data-state": cutBoth ? "cut" : cutOne ? "oneway" : slow ? "slow" : "ok" }, svg);
      const mx = (x1 + x2) / 2, my = (y1 + y2) / 2;
      if (cutOne) {
        el("line", { x1, y1, x2: mx, y2: my, class: "seg half" + (l.cut_ab ? " dropped" : "") }, g);
        el("line", { x1: mx, y1: my, x2, y2, class: "seg half" + (l.cut_ba ? " dropped" : "") }, g);
        text(g, mx, my - 8, l.cut_ab ? `${l.a}→${l.b} dropped` : `${l.b}→${l.a} dropped`);
      } else {
        el("line", { x1, y1, x2, y2, class: "seg" }, g);
        if (cutBoth) text(g, mx, my - 8, "✂ cut");
      }
      if (slow) text(g, mx, my + 18, `${Math.max(l.delay_ab, l.delay_ba)} ms`);
      el("line", { x1, y1, x2, y2, class: "hit" }, g);
      g.addEventListener("click", () => { selectedLink = { a: l.a, b: l.b }; selectedNode = null; render(); });
    }
    for (const n of state.nodes) {
      const [x, y] = pos[n.id];
      const role = n.role.toLowerCase();
      const g = el("g", { class: `node ${role}${selectedNode === n.id ? " selected" : ""}`, "data-id": n.id,
        "data-role": n.role, transform: `translate(${x},${y})` }, svg);
      el("circle", { r: 60 }, g);
      text(g, 0, -24, `${n.id}`, "id");
      text(g, 0, -6, n.role);
      text(g, 0, 10, n.epoch == null ? (n.kind === "observer" ? "observer" : "") : `epoch ${n.epoch}`);
      text(g, 0, 25, n.zxid == null ? "" : `zxid ${n.zxid}`);
      text(g, 0, 40, n.connections == null ? "" : `conns ${n.connections}`);
      text(g, 0, 54, n.sessions == null ? "" : `sessions ${n.sessions}`);
      g.addEventListener("click", () => { selectedNode = n.id; selectedLink = null; render(); });
    }
    document.body.dataset.leader = state.leader == null ? "" : String(state.leader);
  }

  function render() {
    const lab = state.lab;
    $("#lab-info").textContent = lab ? `${lab.backend} lab · clients ${lab.clients}` : (state.message || "no lab");
    $("#access").textContent = canAct ? "faults allowed" : "read-only";
    $("#access").className = "badge " + (canAct ? "live" : "readonly");
    document.body.classList.toggle("readonly", !canAct);
    if (selectedNode != null && !state.nodes.some((n) => n.id === selectedNode)) selectedNode = null;
    $("#selected-node").textContent = selectedNode == null ? "— click one" : String(selectedNode);
    $("#selected-link").textContent = selectedLink ? `${selectedLink.a}–${selectedLink.b}` : "— click one";
    $("#oneway-ab").textContent = selectedLink ? `cut ${selectedLink.a}→${selectedLink.b}` : "cut a→b";
    $("#oneway-ba").textContent = selectedLink ? `cut ${selectedLink.b}→${selectedLink.a}` : "cut b→a";
    for (const b of document.querySelectorAll("#node-actions button")) b.disabled = !canAct || selectedNode == null;
    for (const b of document.querySelectorAll("#link-actions button")) b.disabled = !canAct || !selectedLink;
    drawEnsemble();
    syncChips();
  }

  // ------------------------------------------------------------ actions
  function say(msg, error) {
    const m = $("#message");
    m.textContent = msg;
    m.className = error ? "error" : "";
  }

  async function post(path, body) {
    try {
      const r = await fetch(path, { method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", "X-Zkops-Console": "1" } });
      const reply = await r.json();
      say(reply.message || reply.error || "", !r.ok);
      return r.ok;
    } catch (e) {
      say(`the console did not answer: ${e}`, true);
      return false;
    }
  }
  const act = (body) => post("/api/action", body);

  for (const b of document.querySelectorAll("#node-actions button")) {
    b.addEventListener("click", () => selectedNode != null && act({ action: b.dataset.action, node: selectedNode }));
  }
  $("#oneway-ab").addEventListener("click", () => act({ action: "oneway", src: selectedLink.a, dst: selectedLink.b }));
  $("#oneway-ba").addEventListener("click", () => act({ action: "oneway", src: selectedLink.b, dst: selectedLink.a }));
  $("#slow").addEventListener("click", () => act({ action: "slow", a: selectedLink.a, b: selectedLink.b,
    ms: Number($("#slow-ms").value) }));
  $("#heal").addEventListener("click", () => act({ action: "heal" }));

  // ------------------------------------------------------------ partition by dragging
  const zones = [...document.querySelectorAll(".zone")];
  zones.forEach((z, i) => { z.dataset.label = String(i + 1); });
  function syncChips() {
    const ids = state.nodes.map((n) => n.id);
    for (const c of document.querySelectorAll(".chip")) if (!ids.includes(Number(c.dataset.id))) c.remove();
    for (const id of ids) {
      if (document.querySelector(`.chip[data-id="${id}"]`)) continue;
      const c = document.createElement("div");
      c.className = "chip";
      c.dataset.id = id;
      c.textContent = `server ${id}`;
      c.addEventListener("pointerdown", startDrag);
      zones[0].appendChild(c);
    }
  }
  function zoneAt(x, y) {
    const hit = document.elementFromPoint(x, y);
    return hit ? hit.closest(".zone") : null;
  }
  function startDrag(ev) {
    const chip = ev.currentTarget;
    ev.preventDefault();
    const box = chip.getBoundingClientRect();
    const dx = ev.clientX - box.left, dy = ev.clientY - box.top;
    chip.classList.add("dragging");
    const move = (e) => {
      chip.style.left = `${e.clientX - dx}px`;
      chip.style.top = `${e.clientY - dy}px`;
      zones.forEach((z) => z.classList.toggle("over", z === zoneAt(e.clientX, e.clientY)));
    };
    const up = (e) => {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", up);
      chip.classList.remove("dragging");
      chip.style.left = chip.style.top = "";
      const z = zoneAt(e.clientX, e.clientY);
      zones.forEach((zz) => zz.classList.remove("over"));
      if (z) z.appendChild(chip);
    };
    move(ev);
    document.addEventListener("pointermove", move);
    document.addEventListener("pointerup", up);
  }
  $("#apply-partition").addEventListener("click", () => {
    const groups = zones.map((z) => [...z.querySelectorAll(".chip")].map((c) => c.dataset.id)).filter((g) => g.length);
    if (groups.length < 2) { say("drag at least one server into another group first", true); return; }
    act({ action: "partition", groups: groups.map((g) => g.join(",")).join("/") });
  });

  // ------------------------------------------------------------ tabs
  for (const t of document.querySelectorAll(".tab")) {
    t.addEventListener("click", () => {
      for (const u of document.querySelectorAll(".tab")) u.classList.toggle("on", u === t);
      for (const p of document.querySelectorAll(".pane")) p.classList.toggle("hidden", p.id !== `tab-${t.dataset.tab}`);
    });
  }

  // ------------------------------------------------------------ election replay
  // touched: the class has used the replay controls, so a new election does not take the view away
  const replay = { election: null, index: 0, timer: null, speed: 1, anim: null, touched: false };
  const voteText = (v) => (v ? `→ ${v.leader} (e${v.epoch}, ${v.zxid})` : "");

  async function loadElections() {
    const r = await fetch("/api/elections");
    const data = await r.json();
    electionsVersion = data.version;
    const current = replay.election ? replay.election.number : null;
    const wasLatest = current === null || current === (elections.at(-1) || {}).number;
    elections = data.elections;
    const list = $("#election-list");
    list.textContent = "";
    for (const e of elections) {
      const o = document.createElement("option");
      o.value = String(e.number);
      const when = new Date(e.ts * 1000).toLocaleTimeString();
      o.textContent = `#${e.number} ${when}: leader ${e.leader}` + (e.election_ms != null ? ` in ${Math.round(e.election_ms)} ms` : "");
      list.appendChild(o);
    }
    if (!elections.length) return;
    const newest = elections.at(-1).number;
    const stillThere = current !== null && elections.some((e) => e.number === current);
    // a new election: show it, unless the class is looking at (or playing) an older one
    if (stillThere && (replay.touched || !wasLatest || newest === current || replay.timer)) choose(current, true);
    else choose(newest, false);
  }

  function choose(number, keepIndex) {
    const e = elections.find((x) => x.number === Number(number));
    if (!e) return;
    $("#election-list").value = String(number);
    const sameOne = replay.election && replay.election.number === e.number;
    replay.election = e;
    const log = $("#step-log");
    log.textContent = "";
    e.steps.forEach((s, i) => {
      const li = document.createElement("li");
      li.textContent = `+${s.t.toFixed(3)}s ${s.text}`;
      li.addEventListener("click", () => { pause(); show(i); });
      log.appendChild(li);
    });
    $("#replay-scrub").max = String(Math.max(e.steps.length - 1, 0));
    show(keepIndex && sameOne ? Math.min(replay.index, e.steps.length - 1) : 0);
  }

  function drawReplay(step) {
    const svg = $("#replay");
    svg.textContent = "";
    const ids = Object.keys(step ? step.after : {}).map(Number);
    const pos = layout(ids, 300, 165, ids.length > 1 ? 115 : 0);
    for (let i = 0; i < ids.length; i++) for (let j = i + 1; j < ids.length; j++) {
      const [x1, y1] = pos[ids[i]], [x2, y2] = pos[ids[j]];
      el("line", { x1, y1, x2, y2, stroke: "#cfd8dc", "stroke-width": 2 }, svg);
    }
    for (const id of ids) {
      const s = step.after[String(id)];
      const [x, y] = pos[id];
      const g = el("g", { class: `replay-node ${s.state.toLowerCase()}${step.server === id ? " active" : ""}`,
        "data-id": id, transform: `translate(${x},${y})` }, svg);
      el("circle", { r: 44 }, g);
      text(g, 0, -10, String(id), "id");
      text(g, 0, 8, s.state === "?" ? "" : s.state.toLowerCase() === "silent" ? "no events" : s.state);
      text(g, 0, 62, voteText(s.vote));
    }
    if (step && step.message && step.message.from != null && pos[step.message.from]) {
      const targets = step.message.to.filter((t) => pos[t]);
      const dots = targets.map(() => el("circle", { r: 8, class: "dot" + (targets.length > 1 ? " broadcast" : "") }, svg));
      const [fx, fy] = pos[step.message.from];
      const dur = Math.min(600, 700 / replay.speed);
      const t0 = performance.now();
      cancelAnimationFrame(replay.anim);
      const frame = (now) => {
        const k = Math.min(1, (now - t0) / dur);
        targets.forEach((t, i) => {
          const [tx, ty] = pos[t];
          dots[i].setAttribute("cx", fx + (tx - fx) * k);
          dots[i].setAttribute("cy", fy + (ty - fy) * k);
        });
        if (k < 1) replay.anim = requestAnimationFrame(frame);
      };
      replay.anim = requestAnimationFrame(frame);
    }
  }

  function show(i) {
    const e = replay.election;
    if (!e || !e.steps.length) return;
    replay.index = Math.max(0, Math.min(i, e.steps.length - 1));
    const step = e.steps[replay.index];
    $("#step-index").textContent = `step ${replay.index + 1} / ${e.steps.length}`;
    $("#step-time").textContent = `+${step.t.toFixed(3)} s`;
    $("#step-text").textContent = step.text;
    $("#step-text").dataset.kind = step.kind;
    $("#step-reason").textContent = step.reason ? `why: ${step.reason}` : "";
    $("#replay-scrub").value = String(replay.index);
    const items = $("#step-log").children;
    for (let k = 0; k < items.length; k++) items[k].classList.toggle("current", k === replay.index);
    if (items[replay.index]) items[replay.index].scrollIntoView({ block: "nearest" });
    drawReplay(step);
  }

  function pause() { clearTimeout(replay.timer); replay.timer = null; document.body.dataset.replay = "paused"; }
  for (const id of ["#replay-first", "#replay-back", "#replay-play", "#replay-pause", "#replay-step", "#replay-scrub",
    "#election-list", "#step-log"]) {
    $(id).addEventListener("pointerdown", () => { replay.touched = true; });
    $(id).addEventListener("keydown", () => { replay.touched = true; });
  }
  function play() {
    pause();
    document.body.dataset.replay = "playing";
    const tick = () => {
      const e = replay.election;
      if (!e || replay.index >= e.steps.length - 1) { pause(); return; }
      try {
        show(replay.index + 1);
      } finally {
        replay.timer = setTimeout(tick, 900 / replay.speed);
      }
    };
    replay.timer = setTimeout(tick, 300 / replay.speed);
  }
  $("#replay-play").addEventListener("click", () => {
    if (replay.election && replay.index >= replay.election.steps.length - 1) show(0);
    play();
  });
  $("#replay-pause").addEventListener("click", pause);
  $("#replay-step").addEventListener("click", () => { pause(); show(replay.index + 1); });
  $("#replay-back").addEventListener("click", () => { pause(); show(replay.index - 1); });
  $("#replay-first").addEventListener("click", () => { pause(); show(0); });
  $("#replay-speed").addEventListener("change", (ev) => { replay.speed = Number(ev.target.value); });
  $("#replay-scrub").addEventListener("input", (ev) => { pause(); show(Number(ev.target.value)); });
  $("#election-list").addEventListener("change", (ev) => { pause(); choose(Number(ev.target.value), false); });

  // ------------------------------------------------------------ client panel
  function renderClients(c) {
    const w = c.writer;
    $("#writer-toggle").textContent = w && w.running ? "stop writer" : "start writer";
    $("#writer-toggle").dataset.running = w && w.running ? "1" : "";
    $("#writer-acked").textContent = w ? String(w.acked) : "–";
    $("#writer-blocked").textContent = w ? `${w.blocked_s.toFixed(1)} s` : "–";
    $("#writer-outage").textContent = w ? `${w.longest_outage_s.toFixed(2)} s` : "–";
    $("#writer-error").textContent = w && w.last_error ? w.last_error : "–";
    const pre = $("#watch-lines");
    pre.textContent = c.watch.lines.join("\n");
    pre.scrollTop = pre.scrollHeight;
  }
  $("#writer-toggle").addEventListener("click", () => post("/api/writer", { run: !$("#writer-toggle").dataset.running }));
  $("#watch-start").addEventListener("click", () => post("/api/watch", { path: $("#watch-path").value }));
  $("#watch-stop").addEventListener("click", () => post("/api/watch", { path: null }));

  // ------------------------------------------------------------ graded histories
  async function loadHistories() {
    const r = await fetch("/api/histories");
    const data = await r.json();
    historiesVersion = data.version;
    histories = data.histories;
    const list = $("#history-list");
    const chosen = list.value;
    list.textContent = "";
    histories.forEach((h, i) => {
      const o = document.createElement("option");
      o.value = String(i);
      o.textContent = `${h.lesson}: ${h.valid ? "linearizable" : h.valid === false ? "NOT linearizable" : "unknown"}`;
      list.appendChild(o);
    });
    if (!histories.length) { $("#history-verdict").textContent = "no graded history yet: play lab 06, 07 or 08"; return; }
    list.value = chosen && Number(chosen) < histories.length ? chosen : "0";
    drawHistory(histories[Number(list.value)]);
  }
  function drawHistory(h) {
    const v = $("#history-verdict");
    v.textContent = h.verdicts.map((x) => x.text).join("\n");
    v.className = h.valid ? "ok" : "bad";
    const svg = $("#history");
    svg.textContent = "";
    const procs = [...new Set(h.ops.map((o) => o.process))].sort((a, b) => a - b);
    const lane = 26, left = 70, width = 510;
    svg.setAttribute("viewBox", `0 0 600 ${Math.max(60, procs.length * lane + 30)}`);
    const dur = Math.max(h.duration, 0.001);
    const x = (t) => left + (width * t) / dur;
    procs.forEach((p, i) => text(svg, 4, 20 + i * lane, `client ${p}`, "oplabel"));
    for (const o of h.ops) {
      const i = procs.indexOf(o.process);
      const end = o.end == null ? dur : o.end;
      const r = el("rect", { x: x(o.start), y: 6 + i * lane, width: Math.max(3, x(end) - x(o.start)), height: lane - 8,
        class: `op ${o.f} ${o.kind}${o.violation ? " violation" : ""}`, "data-id": o.id }, svg);
      const title = el("title", {}, r);
      const val = Array.isArray(o.value) ? `${o.value[0]}→${o.value[1]}` : String(o.value);
      title.textContent = `${o.f} ${val}: ${o.kind}${o.violation ? " — cannot be placed: not linearizable" : ""}`;
      const label = `${o.f[0]}${val === "null" ? "" : " " + val}`;
      if (x(end) - x(o.start) >= label.length * 6 + 6 || o.violation) text(svg, x(o.start) + 3, 20 + i * lane, label, "oplabel");
    }
    text(svg, left, procs.length * lane + 24, "0 s", "oplabel");
    text(svg, left + width - 30, procs.length * lane + 24, `${dur.toFixed(2)} s`, "oplabel");
  }
  $("#history-list").addEventListener("change", (ev) => drawHistory(histories[Number(ev.target.value)]));

  // ------------------------------------------------------------ the live stream
  function connect() {
    const es = new EventSource("/api/events");
    es.addEventListener("open", () => { $("#link-state").textContent = "live"; $("#link-state").className = "badge live"; });
    es.addEventListener("error", () => { $("#link-state").textContent = "reconnecting…"; $("#link-state").className = "badge"; });
    es.addEventListener("hello", (ev) => {
      const h = JSON.parse(ev.data);
      canAct = h.can_act;
      if (h.elections_version !== electionsVersion) loadElections();
      if (h.histories_version !== historiesVersion) loadHistories();
      render();
    });
    es.addEventListener("state", (ev) => { state = JSON.parse(ev.data); render(); });
    es.addEventListener("elections", (ev) => { if (JSON.parse(ev.data).version !== electionsVersion) loadElections(); });
    es.addEventListener("histories", (ev) => { if (JSON.parse(ev.data).version !== historiesVersion) loadHistories(); });
    es.addEventListener("clients", (ev) => renderClients(JSON.parse(ev.data)));
    es.addEventListener("problem", (ev) => say(JSON.parse(ev.data).text, true));
  }
  render();
  loadHistories();
  connect();
})();
