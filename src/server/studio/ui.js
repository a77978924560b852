// The page's building blocks: elements made from text (never from HTML), fields with their
// labels and error slots, tables, a pager, the confirm dialog, errors beside the field they
// name.

import { api } from "./api.js";

export const TERMINAL = ["Completed", "Failed", "Canceled"];
export const PAGE = 50;
export const main = document.getElementById("main");

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const enc = encodeURIComponent;
export const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "");
export function duration(job) {
  const p = job.properties;
  if (!p.started_at) return "";
  const end = p.finished_at ? new Date(p.finished_at) : new Date();
  const s = Math.max(0, (end - new Date(p.started_at)) / 1000);
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
export const statusCell = (s) => h("span", { class: `status status-${s}` }, s);

export function field(id, label, input, hint) {
  input.id = id;
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null,
    h("span", { class: "error", id: `${id}-error`, role: "alert" }));
}

export function select(options, value) {
  const s = h("select", {});
  for (const o of options) {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    s.append(h("option", { value: v, selected: v === value }, text));
  }
  return s;
}

// Shows an API error next to the field it names, or in the form's banner.
export function showError(form, err, fields) {
  form.querySelectorAll(".error").forEach((e) => (e.textContent = ""));
  const banner = form.querySelector(".banner");
  const msg = err.message || String(err);
  const named = fields.find(([, names]) => names.some((n) => msg.includes(n)));
  if (named) {
    const slot = document.getElementById(`${named[0]}-error`);
    if (slot) { slot.textContent = msg; document.getElementById(named[0])?.focus(); return; }
  }
  if (banner) banner.textContent = msg;
}

// A refresh (a running job's page, each second) keeps the focus where the user has it.
let refreshing = false;
export function setRefreshing(v) {
  refreshing = v;
}
export function render(title, ...content) {
  main.replaceChildren(h("h1", {}, title), ...content.flat().filter((c) => c !== null && c !== undefined && c !== false));
  document.title = `${title} - batchscore studio`;
  if (!refreshing) main.focus();
}

export function table(headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c))))))));
}

export async function pager(container, path, draw, skip = 0) {
  const sep = path.includes("?") ? "&" : "?";
  const started = performance.now();
  const page = await api("GET", `${path}${sep}top=${PAGE}&skip=${skip}&order=newest`);
  const count = page.count ?? page.value.length;
  const nav = h("div", { class: "pager" },
    h("span", { class: "muted", "data-testid": "range" }, count ? `${skip + 1}–${skip + page.value.length} of ${count}` : ""),
    h("button", { class: "secondary", type: "button", disabled: skip === 0, onclick: () => pager(container, path, draw, Math.max(0, skip - PAGE)) }, "Previous"),
    h("button", { class: "secondary", type: "button", disabled: !page.nextLink, onclick: () => pager(container, path, draw, skip + PAGE) }, "Next"));
  container.replaceChildren(draw(page.value), nav);
  container.dataset.renderedMs = String(Math.round(performance.now() - started));
}

export async function confirmDialog(title, text, ok = "Delete") {
  const d = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = ok;
  d.returnValue = "";
  d.showModal();
  return new Promise((resolve) => d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true }));
}

export function endpointTabs(name, current) {
  const tab = (id, text) => h("a", { href: `#/endpoints/${enc(name)}${id ? "/" + id : ""}`, "aria-current": current === id ? "page" : null }, text);
  return h("div", { class: "tabs" }, tab("", "Details"), tab("jobs", "Jobs"));
}

export function showPageError(err) {
  if (err.status === 401) return;
  render(err.status === 404 ? "Not found" : "Something went wrong", h("div", { class: "banner", role: "alert" }, err.message));
}
