// The dgent inspector: a page over dgent serve's REST API (/v1/ns/:ns/...). No build step and no
// dependency; every value from the server reaches the page through textContent, never as HTML.

const $ = (selector) => document.querySelector(selector);
const TOKEN_KEY = "dgent.inspector.token";
const CODEC_KEY = "dgent.codec";
const PAGE = 50;

const state = { ns: null, view: null, datum: null, cursor: null, source: null, events: 0 };

function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

function status(message, isError = false) {
  const el = $("#status");
  el.textContent = message;
  el.classList.toggle("error", isError);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "className") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

/** A call to the API: JSON in and out, the token as a bearer header, errors as thrown Error(code: message). */
async function api(path, { method = "GET", body } = {}) {
  const headers = { accept: "application/json" };
  if (token()) headers.authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const error = new Error(json?.error ? `${json.error.code}: ${json.error.message}` : `HTTP ${res.status}`);
    error.status = res.status;
    throw error;
  }
  return json;
}

const nsPath = (rest) => `/v1/ns/${encodeURIComponent(state.ns)}${rest}`;
const idPath = (id, rest = "") => nsPath(`/datums/${encodeURIComponent(id)}${rest}`);

function bytesOf(wire) {
  const raw = atob(wire.content);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function utf8(bytes) {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function hex(bytes) {
  const lines = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const row = bytes.subarray(off, off + 16);
    const h = [...row].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const a = [...row].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${off.toString(16).padStart(8, "0")}  ${h.padEnd(47)}  ${a}`);
  }
  return lines.join("\n");
}

/** The view a datum opens in: its codec tag first (patterns/codec), else what its bytes look like. */
function defaultView(wire, bytes) {
  const codec = wire.metadata[CODEC_KEY];
  if (codec === "json") return "json";
  if (codec === "text") return "text";
  if (codec === "bytes") return "hex";
  const s = utf8(bytes);
  if (s === null) return "hex";
  try {
    JSON.parse(s);
    return "json";
  } catch {
    return "text";
  }
}

function render(view) {
  const bytes = bytesOf(state.datum);
  state.view = view;
  for (const b of document.querySelectorAll("#views button")) b.setAttribute("aria-pressed", String(b.dataset.view === view));
  const out = $("#content");
  out.dataset.view = view;
  if (view === "hex") out.textContent = hex(bytes);
  else {
    const s = utf8(bytes);
    if (s === null) out.textContent = "(not UTF-8: see hex)";
    else if (view === "json") {
      try {
        out.textContent = JSON.stringify(JSON.parse(s), null, 2);
      } catch {
        out.textContent = `(not JSON)\n${s}`;
      }
    } else out.textContent = s;
  }
}

const when = (ms) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");
const link = (label, id) => el("button", { type: "button", className: "link", "data-open": id, onclick: () => openDatum(id) }, label);

// ---- namespaces -----------------------------------------------------------------------------

async function loadNamespaces() {
  const select = $("#ns-select");
  select.replaceChildren();
  try {
    const { namespaces } = await api("/inspector/namespaces");
    for (const ns of namespaces) select.append(el("option", { value: ns }, ns));
    const wanted = new URLSearchParams(location.search).get("ns") ?? state.ns ?? namespaces[0];
    if (wanted) await openNamespace(wanted);
    else status("no namespace this token may read; type one");
  } catch (error) {
    status(error.message, true);
  }
}

async function openNamespace(ns) {
  state.ns = ns;
  if ([...$("#ns-select").options].every((o) => o.value !== ns)) $("#ns-select").append(el("option", { value: ns }, ns));
  $("#ns-select").value = ns;
  stopStream();
  $("#events").replaceChildren();
  $("#detail").hidden = true;
  $("#detail-empty").hidden = false;
  status(`namespace ${ns}`);
  await Promise.all([listDatums(false), loadRefs(), loadHealth()]);
}

// ---- datums ---------------------------------------------------------------------------------

async function listDatums(more) {
  const prefix = $("#prefix").value;
  const tag = $("#tag").value.trim();
  const tbody = $("#datums tbody");
  if (!more) {
    tbody.replaceChildren();
    state.cursor = null;
  }
  try {
    const query = { limit: PAGE };
    if (prefix) query.prefix = prefix;
    if (tag) {
      const eq = tag.indexOf("=");
      query.where = eq < 0 ? { [tag]: { exists: true } } : { [tag.slice(0, eq)]: tag.slice(eq + 1) };
    }
    if (more && state.cursor) query.cursor = state.cursor;
    const page = await api(nsPath("/query"), { method: "POST", body: query });
    for (const d of page.items) {
      const size = atob(d.content).length;
      tbody.append(
        el("tr", { dataset: { id: d.id } }, el("td", { className: "id" }, link(d.id, d.id)), el("td", {}, when(d.createdAt)), el("td", {}, size), el("td", {}, d.metadata[CODEC_KEY] ?? "")),
      );
    }
    state.cursor = page.cursor;
    $("#more").hidden = !page.cursor;
    status(`${tbody.children.length} datums shown in ${state.ns}`);
  } catch (error) {
    status(error.message, true);
  }
}

async function openDatum(id) {
  try {
    const wire = await api(idPath(id));
    state.datum = wire;
    for (const tr of document.querySelectorAll("#datums tr.selected")) tr.classList.remove("selected");
    for (const tr of document.querySelectorAll("#datums tbody tr")) if (tr.dataset.id === id) tr.classList.add("selected");
    $("#detail").hidden = false;
    $("#detail-empty").hidden = true;
    $("#detail-id").textContent = wire.id;
    const meta = $("#detail-meta");
    meta.replaceChildren();
    const row = (k, v) => meta.append(el("dt", {}, k), el("dd", {}, v));
    row("created", when(wire.createdAt));
    row("bytes", bytesOf(wire).length);
    meta.append(el("dt", {}, "parent"), el("dd", {}, wire.causalParent === null ? "none" : link(wire.causalParent, wire.causalParent)));
    for (const [k, v] of Object.entries(wire.metadata)) row(`tag ${k}`, v);
    render(defaultView(wire, bytesOf(wire)));
    await loadTree(wire);
    status(`datum ${wire.id}`);
  } catch (error) {
    status(error.message, true);
  }
}

/** The chain (oldest first) as nested lists down to the datum, then the datum's children, each expandable. */
async function loadTree(wire) {
  const tree = $("#tree");
  tree.replaceChildren(el("p", {}, "loading…"));
  const chain = (await api(idPath(wire.id, "/chain"))).items;
  const root = el("ul");
  let parentList = root;
  for (const d of chain) {
    const current = d.id === wire.id;
    const li = el("li", { className: current ? "current" : "ancestor", dataset: { id: d.id } }, link(d.id, d.id));
    parentList.append(li);
    if (current) {
      li.append(await childrenList(d.id));
    } else {
      const next = el("ul");
      li.append(next);
      parentList = next;
    }
  }
  tree.replaceChildren(root);
}

async function childrenList(id) {
  const ul = el("ul", { className: "children" });
  const page = await api(idPath(id, `/children?limit=${PAGE}`));
  for (const c of page.items) {
    const li = el("li", { className: "child", dataset: { id: c.id } });
    const expand = el("button", {
      type: "button",
      className: "expand",
      title: "children",
      onclick: async () => {
        expand.disabled = true;
        li.append(await childrenList(c.id));
      },
    }, "+");
    li.append(expand, link(c.id, c.id));
    ul.append(li);
  }
  if (page.cursor) ul.append(el("li", {}, "…"));
  return ul;
}

// ---- refs and health ------------------------------------------------------------------------

async function loadRefs() {
  const tbody = $("#refs tbody");
  tbody.replaceChildren();
  try {
    const { items } = await api(nsPath("/refs"));
    for (const r of items) tbody.append(el("tr", { dataset: { ref: r.name } }, el("td", {}, r.name), el("td", { className: "id" }, link(r.target, r.target)), el("td", {}, r.version)));
    if (items.length === 0) tbody.append(el("tr", {}, el("td", { colspan: "3" }, "no refs")));
  } catch (error) {
    tbody.append(el("tr", {}, el("td", { colspan: "3" }, error.message)));
  }
}

async function loadHealth() {
  const box = $("#health");
  box.replaceChildren();
  try {
    const info = await api(nsPath("/info"));
    const b = info.backend;
    box.append(el("p", { id: "health-summary" }, b.degraded ? `degraded: writes land on ${b.landing}` : `writes land on ${b.landing}`));
    const table = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "tier"), el("th", {}, "state"), el("th", {}, "datums"))));
    const body = el("tbody");
    for (const t of b.tiers) {
      body.append(
        el("tr", { dataset: { tier: t.name } }, el("td", {}, `${t.name}${t.landing ? " (landing)" : ""}`), el("td", { className: t.up ? "up" : "down" }, t.up ? "up" : `down: ${t.error ?? ""}`), el("td", {}, t.count ?? "?")),
      );
    }
    table.append(body);
    box.append(table);
  } catch (error) {
    if (error.status === 403 || error.status === 401) {
      const ready = await fetch("/readyz").then((r) => r.json()).catch(() => null);
      box.append(el("p", { id: "health-summary" }, `server ${ready?.status ?? "unknown"}; tier details need a token with admin rights on ${state.ns}`));
    } else box.append(el("p", { id: "health-summary" }, error.message));
  }
}

// ---- live stream ----------------------------------------------------------------------------

function stopStream() {
  state.source?.close();
  state.source = null;
  $("#stream-toggle").textContent = "follow changes";
  $("#stream-state").textContent = "";
}

function startStream() {
  const params = new URLSearchParams();
  if ($("#prefix").value) params.set("prefix", $("#prefix").value);
  // EventSource sends no headers: the change stream takes the token as access_token (never logged).
  if (token()) params.set("access_token", token());
  const source = new EventSource(nsPath(`/changes?${params}`));
  state.source = source;
  $("#stream-toggle").textContent = "stop";
  $("#stream-state").textContent = "connecting…";
  source.onopen = () => ($("#stream-state").textContent = "following");
  source.onerror = () => ($("#stream-state").textContent = source.readyState === EventSource.CLOSED ? "closed" : "reconnecting…");
  const show = (event) => {
    const change = JSON.parse(event.data);
    const key = change.op === "put" || change.op === "delete" ? link(change.key, change.key) : change.key;
    const detail = change.op === "setRef" ? ` → ${change.target} (v${change.version})` : "";
    $("#events").prepend(el("li", { dataset: { seq: change.seq, op: change.op, key: change.key } }, `#${event.lastEventId} ${change.op} `, key, detail));
    if (change.op === "setRef" || change.op === "deleteRef") void loadRefs();
  };
  for (const type of ["put", "delete", "setRef", "deleteRef"]) source.addEventListener(type, show);
  for (const type of ["dropped", "reset"]) {
    source.addEventListener(type, (event) => {
      const body = JSON.parse(event.data);
      $("#events").prepend(el("li", { className: "down" }, `${type}: ${body.error.message}`));
    });
  }
}

// ---- wiring ---------------------------------------------------------------------------------

function init() {
  $("#token").value = token();
  $("#auth-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token").value);
    void loadNamespaces();
  });
  $("#forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("#token").value = "";
    stopStream();
  });
  $("#ns-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const typed = $("#ns-input").value.trim();
    void openNamespace(typed || $("#ns-select").value);
  });
  $("#ns-select").addEventListener("change", () => void openNamespace($("#ns-select").value));
  $("#filter-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void listDatums(false);
  });
  $("#more").addEventListener("click", () => void listDatums(true));
  for (const b of document.querySelectorAll("#views button")) b.addEventListener("click", () => render(b.dataset.view));
  $("#stream-toggle").addEventListener("click", () => (state.source ? stopStream() : startStream()));
  void loadNamespaces();
}

init();
