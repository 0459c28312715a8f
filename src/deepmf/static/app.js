// deepmf web page: plain DOM + fetch against the JSON API of the same server.
"use strict";

const $ = (id) => document.getElementById(id);
let modelInfo = null;

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const detail = body && body.detail;
    const text = typeof detail === "string" ? detail : `request failed (${response.status})`;
    throw Object.assign(new Error(text), { status: response.status });
  }
  return body;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function showMessage(text, isError) {
  const box = $("message");
  box.textContent = text || "";
  box.hidden = !text;
  box.classList.toggle("error", Boolean(isError));
}

function describeModel(info) {
  const parts = [info.model, info.dataset, `split ${info.split}`];
  const metrics = info.metrics || {};
  for (const key of ["rmse", "hr@10", "ndcg@10"]) {
    if (typeof metrics[key] === "number") parts.push(`${key.toUpperCase()} ${metrics[key].toFixed(3)}`);
  }
  parts.push(`${info.n_users.toLocaleString()} users · ${info.n_items.toLocaleString()} items`);
  return parts.join(" · ");
}

function stars(rating) {
  const full = Math.max(0, Math.min(5, Math.round(rating)));
  return "★".repeat(full) + "☆".repeat(5 - full);
}

function itemRow(entry, options) {
  const li = el("li", "item");
  if (options.rank) li.appendChild(el("span", "rank", String(entry.rank)));
  const body = el("div", "body");
  const title = el("button", "title", entry.title || `item ${entry.item}`);
  title.type = "button";
  title.title = "show similar movies";
  title.addEventListener("click", () => showSimilar(entry.item));
  body.appendChild(title);
  const meta = el("div", "meta");
  for (const genre of entry.genres || []) meta.appendChild(el("span", "genre", genre));
  meta.appendChild(el("span", "id", `#${entry.item}`));
  body.appendChild(meta);
  li.appendChild(body);
  const side = el("div", "side");
  if (options.kind === "history") {
    if (entry.rating !== null && entry.rating !== undefined) {
      const s = el("span", "stars", stars(entry.rating));
      s.title = `rated ${entry.rating}`;
      side.appendChild(s);
    }
    if (entry.timestamp) {
      side.appendChild(el("span", "date", new Date(entry.timestamp * 1000).toISOString().slice(0, 10)));
    }
  } else {
    const score = el("span", "score", entry.score.toFixed(options.kind === "similar" ? 3 : 2));
    score.title = options.kind === "similar" ? "cosine similarity" : "model score";
    side.appendChild(score);
  }
  li.appendChild(side);
  return li;
}

function fill(listId, entries, options) {
  const list = $(listId);
  list.replaceChildren(...entries.map((e) => itemRow(e, options)));
  if (!entries.length) list.appendChild(el("li", "empty", "nothing to show"));
}

async function loadUser(user) {
  user = String(user).trim();
  if (!user) return;
  $("user-input").value = user;
  showMessage(`loading user ${user}…`);
  $("similar-card").hidden = true;
  try {
    const q = encodeURIComponent(user);
    const [recs, history] = await Promise.all([
      getJSON(`/users/${q}/recommendations?k=10`),
      getJSON(`/users/${q}/history?limit=10`),
    ]);
    $("recs-title").textContent = `Top ${recs.items.length} for user ${recs.user}`;
    fill("recommendations", recs.items, { rank: true, kind: "recs" });
    $("history-hint").textContent = history.items.length
      ? `${history.n_seen} rated in training; the latest ${history.items.length} shown.`
      : "No training history.";
    fill("history", history.items, { kind: "history" });
    $("results").hidden = false;
    showMessage("");
    document.title = `deepmf · user ${recs.user}`;
  } catch (error) {
    $("results").hidden = true;
    showMessage(error.status === 404 ? `${error.message}.` : `Could not load: ${error.message}`, true);
  }
}

async function showSimilar(item) {
  const card = $("similar-card");
  card.hidden = false;
  $("similar-title").textContent = "Similar movies";
  try {
    const data = await getJSON(`/items/${encodeURIComponent(item)}/similar?k=10`);
    $("similar-title").textContent = `Similar to ${data.item.title || "item " + data.item.item}`;
    fill("similar", data.items, { rank: true, kind: "similar" });
  } catch (error) {
    $("similar").replaceChildren(el("li", "empty", error.message));
  }
  card.scrollIntoView({ behavior: "smooth", block: "nearest" });
}

function setAddress(user) {
  const url = new URL(window.location.href);
  url.searchParams.set("user", user);
  if (url.href !== window.location.href) history.pushState({ user }, "", url);
}

async function start() {
  $("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const user = $("user-input").value.trim();
    if (!user) return;
    setAddress(user);
    loadUser(user);
  });
  $("random-user").addEventListener("click", () => {
    const options = $("user-ids").options;
    if (!options.length) return;
    const user = options[Math.floor(Math.random() * options.length)].value;
    setAddress(user);
    loadUser(user);
  });
  window.addEventListener("popstate", () => {
    const user = new URLSearchParams(window.location.search).get("user");
    if (user) loadUser(user);
  });

  const initial = new URLSearchParams(window.location.search).get("user");
  if (initial) loadUser(initial);

  try {
    modelInfo = await getJSON("/model");
    $("model-info").textContent = describeModel(modelInfo);
    const users = await getJSON("/users?limit=2000");
    $("user-ids").replaceChildren(...users.users.map((u) => { const o = el("option"); o.value = u; return o; }));
  } catch (error) {
    $("model-info").textContent = `model info unavailable: ${error.message}`;
  }
}

start();
