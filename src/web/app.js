// trackgate web app: signs in with an API key (the server answers with an
// HttpOnly session cookie; this script never stores the key) and calls the
// REST API. Every value from the server is set as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;
let view = "own";
let live = null; // the received view's EventSource while it is shown

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch("/api/v1" + path, init);
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    data = null;
  }
  if (r.status === 401 && path !== "/session") {
    showLogin("Your session has ended; please sign in again.");
  }
  if (!r.ok) {
    throw new ApiError(r.status, (data && data.message) || r.statusText);
  }
  return { data, logged: r.headers.get("x-access-logged") };
}

function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c);
    else td.textContent = c === null || c === undefined ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function positionCells(p) {
  if (!p) return ["no position yet", "", ""];
  const where = `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}`;
  const link = el("a", where, {
    href: `https://www.openstreetmap.org/?mlat=${p.lat}&mlon=${p.lon}#map=13/${p.lat}/${p.lon}`,
    target: "_blank",
    rel: "noopener noreferrer",
    class: "position",
  });
  return [link, p.fix_time.replace("T", " ").replace("Z", ""), `${Math.round(p.speed_kmh)} km/h`];
}

function status(text) {
  $("status").textContent = text || "";
}

function showLogin(message) {
  stopLive();
  me = null;
  $("workspace").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

function showWorkspace() {
  $("login").hidden = true;
  $("workspace").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = `${me.user_name || "user " + me.user_id} · ${me.company_name || ""} (${me.company_id}) · ${me.role}`;
  show(view);
}

function stopLive() {
  if (live) live.close();
  live = null;
  $("live").textContent = "";
}

async function show(name) {
  view = name;
  stopLive();
  $("history").hidden = true;
  for (const v of ["own", "received", "granted"]) {
    $("view-" + v).hidden = v !== name;
    const tab = $("tab-" + v);
    if (v === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  status("");
  try {
    if (name === "own") await loadOwn();
    else if (name === "received") await loadReceived();
    else await loadGranted();
  } catch (e) {
    if (e.status !== 401) status(e.message);
  }
}

async function loadOwn() {
  const { data } = await api("GET", "/devices?scope=own");
  const body = $("own-devices").tBodies[0];
  body.replaceChildren();
  for (const d of data.devices) {
    body.appendChild(row([d.name, d.device_id, ...positionCells(d.position), trackButton(d)]));
  }
  if (data.devices.length === 0) status("Your company has no devices yet.");
}

function noticeKey() {
  return `trackgate.notice.${me.user_id}`;
}

// The recipient reads the notice before the first retrieval: the received
// devices are fetched only once it has been acknowledged.
async function loadReceived() {
  const { data } = await api("GET", "/permissions?side=received");
  const active = data.permissions.filter((p) => p.state === "active");
  $("no-received").hidden = active.length > 0;
  if (active.length === 0) {
    $("notice").hidden = true;
    $("received-content").hidden = true;
    return;
  }
  if (localStorage.getItem(noticeKey()) !== "acknowledged") {
    $("notice-text").textContent = active[0].notice;
    $("notice").hidden = false;
    $("received-content").hidden = true;
    return;
  }
  $("notice").hidden = true;
  await loadReceivedDevices(active);
}

async function loadReceivedDevices(permissions) {
  const { data, logged } = await api("GET", "/devices?scope=received");
  $("received-content").hidden = false;
  $("logged").textContent = logged
    ? `This retrieval was logged for the providers (access log entry ${logged}).`
    : "";
  const body = $("received-devices").tBodies[0];
  body.replaceChildren();
  for (const d of data.devices) {
    const input = el("input", undefined, {
      class: "shipment",
      maxlength: "200",
      "aria-label": `Shipment number for ${d.name}`,
      "data-device": d.device_id,
    });
    input.value = d.shipment_number || "";
    const save = el("button", "Save", { type: "button", class: "save-shipment" });
    save.addEventListener("click", () => saveShipment(d.permission_id, d.device_id, input.value));
    const cell = el("span");
    cell.append(input, save);
    const tr = row([
      d.permission_name,
      d.provider_company_id,
      d.name,
      ...positionCells(d.position),
      cell,
      trackButton(d),
    ]);
    tr.setAttribute("data-key", `${d.permission_id}/${d.device_id}`);
    body.appendChild(tr);
  }
  followLive();
  const logs = $("received-logs");
  logs.replaceChildren();
  for (const p of permissions) {
    logs.appendChild(logLinks(p));
  }
}

// Newer fixes arrive as server-sent events, each logged for the provider
// before it is sent (the event id is its access-log entry).
function followLive() {
  stopLive();
  live = new EventSource("/api/v1/stream?scope=received&changes_only=true");
  live.addEventListener("position", (ev) => {
    const d = JSON.parse(ev.data);
    const key = `${d.permission_id}/${d.device_id}`;
    const tr = [...$("received-devices").tBodies[0].rows].find((r) => r.getAttribute("data-key") === key);
    if (!tr) return;
    const cells = positionCells(d.position);
    for (let i = 0; i < cells.length; i++) {
      const td = tr.children[3 + i];
      td.replaceChildren();
      if (cells[i] instanceof Node) td.appendChild(cells[i]);
      else td.textContent = cells[i];
    }
    $("live").textContent = `Live: ${d.name} updated at ${new Date().toISOString().slice(11, 19)} UTC (access log entry ${ev.lastEventId}).`;
  });
  // A message a shared truck sent without a fix (an SOS without GPS).
  live.addEventListener("report", (ev) => {
    const d = JSON.parse(ev.data);
    const content = Object.entries(d.attributes).map(([k, v]) => `${k}=${v}`).join(", ");
    $("live").textContent = `Live: ${d.name} sent ${content} at ${d.time.slice(11, 19)} UTC, without a position (access log entry ${ev.lastEventId}).`;
  });
  live.addEventListener("open", () => {
    $("live").textContent = "Live updates on.";
  });
  live.addEventListener("gone", () => show("received"));
}

function trackButton(d) {
  const b = el("button", "Track", { type: "button", class: "track" });
  b.addEventListener("click", () => loadTrack(d));
  return b;
}

// The last 24 hours of a device (for a recipient, only what its permission
// window covers; the server clamps the range and logs the read).
async function loadTrack(d) {
  try {
    const device = `/devices/${encodeURIComponent(d.device_id)}`;
    const path = `${device}/positions`;
    const { data, logged } = await api("GET", `${path}?limit=1000`);
    const section = $("history");
    section.hidden = false;
    const n = data.positions.length;
    $("history-title").textContent = `Track of ${d.name}: ${n} position${n === 1 ? "" : "s"} since ${data.from.replace("T", " ").replace("Z", "")} UTC`;
    $("history-logged").textContent = logged
      ? `This retrieval was logged for the provider (access log entry ${logged}).`
      : "";
    $("history-gpx").setAttribute("href", `/api/v1${path}?format=gpx`);
    const body = $("history-positions").tBodies[0];
    body.replaceChildren();
    for (const p of [...data.positions].reverse()) {
      body.appendChild(row(positionCells(p)));
    }
    // What the device sent without a fix over the same time: an alarm
    // without GPS, a status. Also a logged read for a recipient.
    const reports = await api("GET", `${device}/reports?limit=100`);
    $("history-reports-logged").textContent = reports.logged
      ? `This retrieval was logged for the provider (access log entry ${reports.logged}).`
      : "";
    const list = $("history-reports").tBodies[0];
    list.replaceChildren();
    for (const r of [...reports.data.reports].reverse()) {
      const content = Object.entries(r.attributes).map(([k, v]) => `${k}=${v}`).join(", ");
      list.appendChild(row([r.time.replace("T", " ").replace("Z", ""), r.protocol, content]));
    }
    $("history-no-reports").hidden = reports.data.reports.length > 0;
    section.scrollIntoView();
  } catch (e) {
    if (e.status !== 401) status(e.message);
  }
}

function logLinks(p) {
  const li = el("li", `${p.name}: `);
  const base = `/api/v1/permissions/${p.id}/access-log`;
  li.append(
    el("a", "Excel", { href: `${base}?format=xlsx`, class: "log-xlsx", download: "" }),
    " · ",
    el("a", "CSV", { href: `${base}?format=csv`, class: "log-csv", download: "" }),
  );
  return li;
}

async function saveShipment(permission, device, value) {
  const v = value.trim();
  try {
    await api(
      "PUT",
      `/permissions/${permission}/devices/${encodeURIComponent(device)}/shipment-number`,
      { shipment_number: v === "" ? null : v },
    );
    await show("received");
    status(v === "" ? "Shipment number cleared." : `Shipment number ${v} saved.`);
  } catch (e) {
    if (e.status !== 401) status(e.message);
  }
}

async function loadGranted() {
  const { data } = await api("GET", "/permissions?side=granted");
  const body = $("granted-permissions").tBodies[0];
  body.replaceChildren();
  for (const p of data.permissions) {
    const devices = el("ul");
    for (const d of p.devices) {
      devices.appendChild(el("li", d.shipment_number ? `${d.name}: ${d.shipment_number}` : d.name));
    }
    const range = `${p.valid_from.replace("T", " ").replace("Z", "")} – ${
      p.valid_until ? p.valid_until.replace("T", " ").replace("Z", "") : "until revoked"
    }`;
    const actions = el("span");
    if (me.role === "admin" && (p.state === "active" || p.state === "scheduled")) {
      const b = el("button", "Revoke", { type: "button", class: "revoke" });
      b.addEventListener("click", () => revoke(p));
      actions.appendChild(b);
    }
    body.appendChild(
      row([p.name, p.recipient_company_id, p.kind, p.state, range, devices, logLinks(p), actions]),
    );
    body.lastChild.setAttribute("data-permission", String(p.id));
  }
  if (data.permissions.length === 0) status("You have not shared any device yet.");
  $("grant-form").hidden = me.role !== "admin";
  if (me.role === "admin") {
    const own = await api("GET", "/devices?scope=own");
    const box = $("grant-devices");
    box.replaceChildren(el("legend", "Devices"));
    for (const d of own.data.devices) {
      const label = el("label", ` ${d.name} (${d.device_id})`);
      const check = el("input", undefined, { type: "checkbox", value: d.device_id });
      label.prepend(check);
      box.appendChild(label);
    }
  }
}

async function revoke(p) {
  if (!window.confirm(`Revoke "${p.name}" for ${p.recipient_company_id} now?`)) return;
  try {
    await api("DELETE", `/permissions/${p.id}`);
    await show("granted");
    status(`Permission "${p.name}" revoked.`);
  } catch (e) {
    if (e.status !== 401) status(e.message);
  }
}

function utc(value) {
  return value ? `${value.length === 16 ? value + ":00" : value}Z` : undefined;
}

async function grant(event) {
  event.preventDefault();
  $("grant-error").textContent = "";
  const user = $("grant-user").value.trim();
  const body = {
    name: $("grant-name").value.trim(),
    recipient_company_id: $("grant-recipient").value.trim(),
    device_ids: [...$("grant-devices").querySelectorAll("input:checked")].map((c) => c.value),
  };
  if (user !== "") body.recipient_user_id = Number(user);
  if ($("grant-from").value) body.valid_from = utc($("grant-from").value);
  if ($("grant-until").value) body.valid_until = utc($("grant-until").value);
  try {
    await api("POST", "/permissions", body);
    $("grant-form").reset();
    await show("granted");
    status(`Permission "${body.name}" granted.`);
  } catch (e) {
    if (e.status !== 401) $("grant-error").textContent = e.message;
  }
}

async function signIn(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    const { data } = await api("POST", "/session", { api_key: $("api-key").value.trim() });
    $("api-key").value = "";
    me = data;
    view = "own";
    showWorkspace();
  } catch (e) {
    $("login-error").textContent =
      e.status === 401 ? "This API key is not valid." : e.message;
  }
}

async function signOut() {
  try {
    await api("DELETE", "/session");
  } catch (_) {
    // Signed out either way.
  }
  showLogin("Signed out.");
}

document.addEventListener("DOMContentLoaded", async () => {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("grant-form").addEventListener("submit", grant);
  $("refresh").addEventListener("click", () => show(view));
  $("acknowledge").addEventListener("click", () => {
    localStorage.setItem(noticeKey(), "acknowledged");
    show("received");
  });
  for (const v of ["own", "received", "granted"]) {
    $("tab-" + v).addEventListener("click", () => show(v));
  }
  try {
    me = (await api("GET", "/session")).data;
    showWorkspace();
  } catch (_) {
    showLogin("");
  }
});
