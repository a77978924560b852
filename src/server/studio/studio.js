// batchscore studio: batch endpoints in the browser, over the REST API only.
// Hand-written, no dependencies. Every text from the server goes into the page as text
// (textContent), never as HTML. The token lives in sessionStorage and travels as a header.

const TERMINAL = ["Completed", "Failed", "Canceled"];
const PAGE = 50;
// DESIGN.md section 3: the settings of a deployment, with the defaults a job gets.
const SETTINGS = [
  { key: "mini_batch_size", label: "Mini-batch size", def: "10", hint: "files per mini-batch" },
  { key: "max_concurrency_per_instance", label: "Max concurrency per instance", def: "", hint: "parallel workers; default: the number of cores" },
  { key: "instance_count", label: "Instance count", def: "1", hint: "processes sharing the job", path: "resources" },
  { key: "output_action", label: "Output action", def: "append_row", choices: ["append_row", "summary_only"] },
  { key: "output_file_name", label: "Output file name", def: "predictions.csv", hint: ".csv or .parquet" },
  { key: "max_retries", label: "Max retries", def: "3", hint: "per failed or timed-out mini-batch", path: "retry_settings" },
  { key: "timeout", label: "Timeout (seconds)", def: "30", hint: "per mini-batch", path: "retry_settings" },
  { key: "error_threshold", label: "Error threshold", def: "-1", hint: "failed items tolerated; -1: all" },
  { key: "logging_level", label: "Logging level", def: "info", choices: ["warning", "info", "debug"] },
];
// What a job may override (the seed's "Override deployment settings").
const JOB_OVERRIDES = ["mini_batch_size", "instance_count", "max_retries", "timeout", "error_threshold", "output_file_name", "logging_level"];

const state = { token: sessionStorage.getItem("batchscore.token") || "", who: null };
const main = document.getElementById("main");

// ---- small helpers ---------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
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

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Authorization: `Bearer ${state.token}`, ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 204) return null;
  const text = await r.text();
  let v = null;
  try { v = text ? JSON.parse(text) : null; } catch { v = null; }
  if (!r.ok) {
    const e = (v && v.error) || { code: String(r.status), message: text || r.statusText };
    if (r.status === 401 && path !== "/whoami") { signOut("Your token was refused (wrong, revoked or expired). Sign in again."); }
    throw new ApiError(r.status, e.code, e.message);
  }
  return v;
}

const can = (scope) => {
  const order = { read: 0, invoke: 1, admin: 2 };
  return state.who && order[state.who.scope] >= order[scope];
};
const enc = encodeURIComponent;
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "");
function duration(job) {
  const p = job.properties;
  if (!p.started_at) return "";
  const end = p.finished_at ? new Date(p.finished_at) : new Date();
  const s = Math.max(0, (end - new Date(p.started_at)) / 1000);
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
const statusCell = (s) => h("span", { class: `status status-${s}` }, s);

function field(id, label, input, hint) {
  input.id = id;
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null,
    h("span", { class: "error", id: `${id}-error`, role: "alert" }));
}

function select(options, value) {
  const s = h("select", {});
  for (const o of options) {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    s.append(h("option", { value: v, selected: v === value }, text));
  }
  return s;
}

// Shows an API error next to the field it names, or in the form's banner.
function showError(form, err, fields) {
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
function render(title, ...content) {
  main.replaceChildren(h("h1", {}, title), ...content.flat().filter((c) => c !== null && c !== undefined && c !== false));
  document.title = `${title} - batchscore studio`;
  if (!refreshing) main.focus();
}

function table(headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c))))))));
}

async function pager(container, path, draw, skip = 0) {
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

async function confirmDialog(title, text, ok = "Delete") {
  const d = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = ok;
  d.returnValue = "";
  d.showModal();
  return new Promise((resolve) => d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true }));
}

// ---- sign-in -----------------------------------------------------------------------------

function signOut(message) {
  state.token = "";
  state.who = null;
  sessionStorage.removeItem("batchscore.token");
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  signIn(message);
}

function signIn(message) {
  const input = h("input", { type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", { class: "stack", "aria-label": "Sign in" },
    h("div", { class: "banner", role: "alert" }, message || ""),
    field("token", "Access token", input, "From `batchscore token create`; kept in this tab only."),
    h("div", {}, h("button", { type: "submit" }, "Sign in")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    state.token = input.value.trim();
    try {
      state.who = await api("GET", "/whoami");
    } catch (err) {
      state.token = "";
      form.querySelector(".banner").textContent =
        err.status === 401 ? "That token was refused: it is wrong, revoked or expired." : err.message;
      input.focus();
      return;
    }
    sessionStorage.setItem("batchscore.token", state.token);
    signedIn();
    if (!location.hash || location.hash === "#/") location.hash = "#/endpoints";
    else route();
  });
  render("Sign in", form);
  input.focus();
}

function signedIn() {
  document.getElementById("nav").hidden = false;
  document.getElementById("signout").hidden = false;
  document.getElementById("who").textContent = `${state.who.name} (${state.who.scope})`;
}

// ---- models --------------------------------------------------------------------------------

function signature(list) {
  return (list || []).map((t) => `${t.name}: ${t.type}[${t.shape.join(", ")}]`).join("; ");
}

async function modelsPage() {
  const box = h("div", { "data-testid": "models" });
  render("Models", h("p", { class: "muted" }, "Registered ONNX models, newest first. `batchscore model create` registers one."), box);
  await pager(box, "/models", (models) => table(
    ["Name", "Version", "Type", "Inputs", "Outputs", "Created", ""],
    models.map((m) => [m.name, m.version, m.type, signature(m.signature.inputs), signature(m.signature.outputs), fmtTime(m.created_at),
      can("admin") ? h("a", { class: "button", href: `#/deploy?model=${enc(m.name)}&version=${enc(m.version)}` }, "Deploy to batch endpoint") : ""]),
    "No models yet."));
}

// ---- data -------------------------------------------------------------------------------------

async function dataPage() {
  const [data, stores] = await Promise.all([api("GET", "/data"), api("GET", "/datastores")]);
  render("Data",
    h("h2", {}, "Data assets"),
    table(["Name", "Version", "Type", "Path"], data.value.map((d) => [d.name, d.version, d.type, d.path]), "No data assets."),
    h("h2", {}, "Datastores"),
    table(["Name", "Type", "URL"], stores.value.map((d) => [d.name, d.type, d.url]), "No datastores."));
}

// ---- endpoints ------------------------------------------------------------------------------

async function endpointsPage() {
  const eps = await api("GET", "/batchEndpoints");
  render("Endpoints",
    h("div", { class: "tabs" }, h("a", { href: "#/endpoints", "aria-current": "page" }, "Batch endpoints")),
    h("div", { class: "toolbar" }, can("admin") ? h("a", { class: "button", href: "#/deploy" }, "+ Create") : null),
    table(["Name", "Description", "Default deployment", "Created"],
      eps.value.map((e) => [h("a", { href: `#/endpoints/${enc(e.name)}` }, e.name), e.description || "", e.defaults.deployment_name || "", fmtTime(e.created_at)]),
      "No batch endpoints yet."));
}

function endpointTabs(name, current) {
  const tab = (id, text) => h("a", { href: `#/endpoints/${enc(name)}${id ? "/" + id : ""}`, "aria-current": current === id ? "page" : null }, text);
  return h("div", { class: "tabs" }, tab("", "Details"), tab("jobs", "Jobs"));
}

async function endpointPage(name) {
  const [ep, deps] = await Promise.all([api("GET", `/batchEndpoints/${enc(name)}`), api("GET", `/batchEndpoints/${enc(name)}/deployments`)]);
  const def = ep.defaults.deployment_name;
  const uri = `${location.origin}/batchEndpoints/${ep.name}/jobs`;
  const curl = `curl -X POST ${uri} \\\n  -H "Authorization: Bearer <token>" -H "Content-Type: application/json" \\\n  -d '{"properties": {"InputData": {"input": {"JobInputType": "UriFolder", "Uri": "azureml://datastores/workspaceblobstore/paths/<folder>"}}}}'`;
  const banner = h("div", { class: "banner", role: "alert" });
  const defaultForm = () => {
    const sel = select(deps.value.map((d) => d.name), def);
    const form = h("form", { class: "toolbar", "aria-label": "Update default deployment" },
      h("label", { for: "default-dep" }, "Default deployment"), sel,
      h("button", { type: "submit" }, "Update default deployment"));
    sel.id = "default-dep";
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { await api("PATCH", `/batchEndpoints/${enc(name)}`, { defaults: { deployment_name: sel.value } }); route(); }
      catch (err) { banner.textContent = err.message; }
    });
    return form;
  };
  const rows = deps.value.map((d) => [
    d.name + (d.name === def ? " (default)" : ""), `${d.model.name}:${d.model.version}`, `${d.environment.name}:${d.environment.version}`, fmtTime(d.created_at),
    can("admin") && d.name !== def ? h("button", { type: "button", class: "secondary", "aria-label": `Delete deployment ${d.name}`, onclick: async () => {
      if (!(await confirmDialog(`Delete deployment ${d.name}?`, `Deployment ${d.name} of ${name} is removed. Its jobs stay listed.`))) return;
      try { await api("DELETE", `/batchEndpoints/${enc(name)}/deployments/${enc(d.name)}`); route(); } catch (err) { banner.textContent = err.message; }
    } }, "Delete") : ""]);
  render(`Endpoint ${ep.name}`,
    endpointTabs(name, ""), banner,
    h("div", { class: "toolbar" },
      can("invoke") && def ? h("a", { class: "button", href: `#/endpoints/${enc(name)}/create-job` }, "Create job") : null,
      can("admin") ? h("a", { class: "button secondary", href: `#/deploy?endpoint=${enc(name)}` }, "+ Add deployment") : null,
      can("admin") ? h("button", { type: "button", class: "danger", onclick: async () => {
        if (!(await confirmDialog(`Delete endpoint ${name}?`, `Endpoint ${name} and its ${deps.value.length} deployment(s) are deleted. Its jobs stay listed, with their outputs.`))) return;
        try { await api("DELETE", `/batchEndpoints/${enc(name)}`); location.hash = "#/endpoints"; } catch (err) { banner.textContent = err.message; }
      } }, "Delete endpoint") : null),
    h("dl", { class: "props" },
      h("dt", {}, "Description"), h("dd", {}, ep.description || ""),
      h("dt", {}, "Scoring URI"), h("dd", {}, h("code", { "data-testid": "scoring-uri" }, uri)),
      h("dt", {}, "Created"), h("dd", {}, fmtTime(ep.created_at))),
    h("h2", {}, "Call it"),
    h("pre", {}, curl),
    h("h2", {}, "Deployments"),
    can("admin") && deps.value.length > 1 ? defaultForm() : null,
    table(["Name", "Model", "Environment", "Created", ""], rows, "No deployments yet: + Add deployment."));
}

async function endpointJobsPage(name) {
  const box = h("div", { "data-testid": "jobs" });
  render(`Endpoint ${name}: jobs`, endpointTabs(name, "jobs"), box);
  await pager(box, `/batchEndpoints/${enc(name)}/jobs`, jobsTable);
}

function jobsTable(jobs) {
  return table(["Job", "Deployment", "Status", "Started", "Duration", "Rows scored", "Items failed"],
    jobs.map((j) => {
      const c = j.properties.counts || {};
      const p = j.properties.progress || {};
      return [h("a", { href: `#/jobs/${enc(j.name)}` }, j.name), j.properties.deployment_name, statusCell(j.properties.status),
        fmtTime(j.properties.started_at), duration(j),
        h("td", { class: "num" }, String(c.rows_scored ?? p.rows_scored ?? "")), h("td", { class: "num" }, String(c.items_failed ?? p.items_failed ?? ""))];
    }), "No jobs yet.");
}

// ---- the wizard: model -> endpoint -> deployment -> review -> create --------------------------

async function wizard(params) {
  const [models, eps, envs] = await Promise.all([api("GET", "/models?order=newest"), api("GET", "/batchEndpoints"), api("GET", "/environments")]);
  const w = { step: 0, model: params.get("model") ? `${params.get("model")}:${params.get("version") || "1"}` : "",
    mode: params.get("endpoint") ? "existing" : "new", endpoint: params.get("endpoint") || "", description: "",
    deployment: "", environment: envs.value.length ? `${envs.value[0].name}:${envs.value[0].version}` : "", settings: {}, passthrough: "" };
  if (!w.model && models.value.length) w.model = `${models.value[0].name}:${models.value[0].version}`;
  const steps = ["Model", "Endpoint", "Deployment", "Review"];
  const draw = () => {
    const banner = h("div", { class: "banner", role: "alert" });
    const body = [stepModel, stepEndpoint, stepDeployment, stepReview][w.step]();
    const back = w.step > 0 ? h("button", { type: "button", class: "secondary", onclick: () => { collect(); w.step--; draw(); } }, "Back") : null;
    const next = h("button", { type: "submit" }, w.step === 3 ? "Create" : "Next");
    const form = h("form", { class: "stack", novalidate: true, "aria-label": `Step ${w.step + 1}: ${steps[w.step]}` }, banner, body, h("div", { class: "toolbar" }, back, next));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      collect();
      if (w.step < 3) { const missing = check(); if (missing) { showError(form, { message: missing.msg }, [[missing.id, [missing.msg]]]); return; } w.step++; draw(); return; }
      next.disabled = true;
      try { await create(); location.hash = `#/endpoints/${enc(w.endpoint)}`; }
      catch (err) {
        next.disabled = false;
        // Back to the step that holds the field the API named, the error beside it.
        const hit = wizardFields().find(([, , words]) => words.some((word) => err.message.includes(word)));
        if (hit) w.step = hit[0];
        draw();
        showError(main.querySelector("form"), err, hit ? [[hit[1], hit[2]]] : []);
      }
    });
    render(w.mode === "existing" && params.get("endpoint") ? `Add deployment to ${w.endpoint}` : "Create batch endpoint",
      h("ol", { class: "steps" }, steps.map((s, i) => h("li", { "aria-current": i === w.step ? "step" : null }, `${i + 1}. ${s}`))), form);
    main.querySelector("input, select")?.focus();
  };
  const byId = (id) => document.getElementById(id);
  const collect = () => {
    if (byId("model")) w.model = byId("model").value;
    if (byId("ep-mode-new")) w.mode = byId("ep-mode-new").checked ? "new" : "existing";
    if (byId("ep-name")) w.endpoint = byId("ep-name").value.trim();
    if (byId("ep-existing") && w.mode === "existing") w.endpoint = byId("ep-existing").value;
    if (byId("ep-desc")) w.description = byId("ep-desc").value;
    if (byId("dep-name")) w.deployment = byId("dep-name").value.trim();
    if (byId("environment")) w.environment = byId("environment").value;
    for (const s of SETTINGS) if (byId(`set-${s.key}`)) w.settings[s.key] = byId(`set-${s.key}`).value.trim();
    if (byId("passthrough")) w.passthrough = byId("passthrough").value.trim();
  };
  const check = () => {
    if (w.step === 0 && !w.model) return { id: "model", msg: "Choose a model (register one with `batchscore model create`)." };
    if (w.step === 1 && !w.endpoint) return { id: w.mode === "new" ? "ep-name" : "ep-existing", msg: "The endpoint needs a name." };
    if (w.step === 2 && !w.deployment) return { id: "dep-name", msg: "The deployment needs a name." };
    return null;
  };
  // The wizard's fields by step, most specific first, with the words an API error about each
  // contains.
  const wizardFields = () => [
    ...SETTINGS.map((s) => [2, `set-${s.key}`, [s.key]]),
    [2, "passthrough", ["passthrough"]],
    [2, "environment", ["environment"]],
    [2, "dep-name", ["deployment"]],
    [1, w.mode === "new" ? "ep-name" : "ep-existing", ["endpoint"]],
    [0, "model", ["model"]],
  ];
  const stepModel = () => field("model", "Model", select(models.value.map((m) => [`${m.name}:${m.version}`, `${m.name} version ${m.version} (${signature(m.signature.inputs)})`]), w.model));
  const stepEndpoint = () => {
    const radios = h("fieldset", {}, h("legend", {}, "Endpoint"),
      h("div", {}, h("input", { type: "radio", name: "ep-mode", id: "ep-mode-new", checked: w.mode === "new", onchange: () => { collect(); draw(); } }), " ", h("label", { for: "ep-mode-new" }, "New")),
      h("div", {}, h("input", { type: "radio", name: "ep-mode", id: "ep-mode-existing", checked: w.mode === "existing", disabled: !eps.value.length, onchange: () => { collect(); w.mode = "existing"; draw(); } }), " ", h("label", { for: "ep-mode-existing" }, "Existing")));
    if (w.mode === "existing") {
      if (!w.endpoint && eps.value.length) w.endpoint = eps.value[0].name;
      return [radios, field("ep-existing", "Endpoint", select(eps.value.map((e) => e.name), w.endpoint))];
    }
    return [radios, field("ep-name", "Endpoint name", h("input", { value: w.endpoint, autocomplete: "off" }), "Letters, digits and '-'; unique in the workspace."),
      field("ep-desc", "Description", h("input", { value: w.description }))];
  };
  const stepDeployment = () => [
    field("dep-name", "Deployment name", h("input", { value: w.deployment, autocomplete: "off" })),
    field("environment", "Environment", select(envs.value.map((e) => [`${e.name}:${e.version}`, `${e.name}:${e.version} (${e.runtime.execution_provider})`]), w.environment)),
    h("fieldset", {}, h("legend", {}, "Settings (empty: the default shown)"),
      h("div", { class: "grid2" }, SETTINGS.map((s) => field(`set-${s.key}`, s.label,
        s.choices ? select([["", `${s.def} (default)`], ...s.choices.map((c) => [c, c])], w.settings[s.key] || "")
          : h("input", { value: w.settings[s.key] || "", placeholder: `${s.def || "number of cores"} (default)`, inputmode: /^-?\d+$/.test(s.def) ? "numeric" : null }),
        s.hint)))),
    field("passthrough", "Pass-through columns", h("input", { value: w.passthrough, autocomplete: "off", placeholder: "none" }),
      "Tabular inputs: columns copied to the output as they are, not fed to the model (comma-separated, e.g. id).")];
  const stepReview = () => h("dl", { class: "props", "data-testid": "review" },
    h("dt", {}, "Model"), h("dd", {}, w.model),
    h("dt", {}, "Endpoint"), h("dd", {}, `${w.endpoint} (${w.mode})`),
    h("dt", {}, "Deployment"), h("dd", {}, w.deployment),
    h("dt", {}, "Environment"), h("dd", {}, w.environment),
    h("dt", {}, "Pass-through columns"), h("dd", {}, w.passthrough || "none"),
    ...SETTINGS.flatMap((s) => [h("dt", {}, s.label), h("dd", {}, w.settings[s.key] || `${s.def || "number of cores"} (default)`)]));
  const create = async () => {
    if (w.mode === "new") {
      await api("PUT", `/batchEndpoints/${enc(w.endpoint)}`, { description: w.description || undefined });
      // Made: a retry after a deployment error adds to it rather than making it again.
      w.mode = "existing";
      eps.value.push({ name: w.endpoint });
    }
    const doc = { model: `azureml:${w.model}`, environment: `azureml:${w.environment}`, settings: {} };
    for (const s of SETTINGS) {
      const v = w.settings[s.key];
      if (!v) continue;
      const value = /^-?\d+$/.test(v) ? Number(v) : v;
      if (s.path === "resources") doc.resources = { instance_count: value };
      else if (s.path === "retry_settings") (doc.settings.retry_settings ||= {})[s.key] = value;
      else doc.settings[s.key] = value;
    }
    const passthrough = w.passthrough.split(",").map((c) => c.trim()).filter(Boolean);
    if (passthrough.length) doc.batchscore = { passthrough };
    await api("PUT", `/batchEndpoints/${enc(w.endpoint)}/deployments/${enc(w.deployment)}`, doc);
  };
  draw();
}

// ---- create a job ---------------------------------------------------------------------------------

async function createJobPage(name) {
  const [ep, deps, data, stores] = await Promise.all([api("GET", `/batchEndpoints/${enc(name)}`), api("GET", `/batchEndpoints/${enc(name)}/deployments`),
    api("GET", "/data"), api("GET", "/datastores")]);
  const storeNames = stores.value.map((d) => d.name);
  const dep = select(deps.value.map((d) => [d.name, d.name + (d.name === ep.defaults.deployment_name ? " (default)" : "")]), ep.defaults.deployment_name);
  const overrides = SETTINGS.filter((s) => JOB_OVERRIDES.includes(s.key));
  const overrideBox = h("div", { class: "grid2", hidden: true }, overrides.map((s) => field(`job-${s.key}`, s.label,
    s.choices ? select([["", "the deployment's"], ...s.choices.map((c) => [c, c])], "") : h("input", { placeholder: "the deployment's", autocomplete: "off" }), s.hint)));
  const overrideToggle = h("input", { type: "checkbox", id: "override", onchange: () => (overrideBox.hidden = !overrideToggle.checked) });
  const inputKind = (id, text, checked) => h("div", {}, h("input", { type: "radio", name: "input-kind", id, value: id, checked, onchange: showInput }), " ", h("label", { for: id }, text));
  const dataSel = select(data.value.map((d) => [`azureml:${d.name}:${d.version}`, `${d.name}:${d.version} (${d.type})`]), "");
  const inStore = select(storeNames, "workspaceblobstore");
  const inPath = h("input", { autocomplete: "off", placeholder: "folder/or/file.csv" });
  const inUrl = h("input", { autocomplete: "off", placeholder: "https://... or s3://... or /path" });
  const inputs = { "in-data": field("in-data-asset", "Data asset", dataSel), "in-store": h("div", { class: "grid2" }, field("in-datastore", "Input datastore", inStore), field("in-path", "Input path", inPath)), "in-url": field("in-url-value", "URL or path", inUrl) };
  const inputBox = h("div", {});
  function showInput() {
    const kind = main.querySelector('input[name="input-kind"]:checked')?.value || "in-store";
    inputBox.replaceChildren(inputs[kind]);
  }
  const outStore = select(storeNames, "workspaceblobstore");
  const outPath = h("input", { autocomplete: "off", placeholder: "empty: azureml/<job name>/score (unique)" });
  const inputType = select([["uri_folder", "Folder"], ["uri_file", "File"]], "uri_folder");
  const banner = h("div", { class: "banner", role: "alert" });
  const submit = h("button", { type: "submit" }, "Create job");
  const form = h("form", { class: "stack", novalidate: true, "aria-label": "Create job" }, banner,
    field("deployment", "Deployment", dep),
    h("div", {}, overrideToggle, " ", h("label", { for: "override" }, "Override deployment settings")), overrideBox,
    h("fieldset", {}, h("legend", {}, "Input"),
      inputKind("in-data", "Registered data asset", false), inputKind("in-store", "Datastore path", true), inputKind("in-url", "Public URL", false),
      inputBox, field("input-type", "Input type", inputType)),
    h("fieldset", {}, h("legend", {}, "Output"), h("div", { class: "grid2" }, field("out-datastore", "Output datastore", outStore),
      field("out-path", "Output path", outPath, "Must not exist: a job never overwrites an output."))),
    h("div", { class: "toolbar" }, submit));
  outPath.addEventListener("change", () => outputFree());
  async function outputFree() {
    const slot = document.getElementById("out-path-error");
    slot.textContent = "";
    const p = outPath.value.trim();
    if (!p) return true;
    const got = await api("GET", `/datastores/${enc(outStore.value)}/files?path=${enc(p)}&top=1`);
    if (got.value.length) {
      slot.textContent = `azureml://datastores/${outStore.value}/paths/${p} already exists: choose another path (a job never overwrites an output).`;
      return false;
    }
    return true;
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    form.querySelectorAll(".error").forEach((e) => (e.textContent = ""));
    banner.textContent = "";
    const kind = main.querySelector('input[name="input-kind"]:checked').value;
    const uri = kind === "in-data" ? dataSel.value : kind === "in-url" ? inUrl.value.trim()
      : inPath.value.trim() ? `azureml://datastores/${inStore.value}/paths/${inPath.value.trim()}` : "";
    if (!uri) { showError(form, { message: "Give an input." }, [[kind === "in-url" ? "in-url-value" : kind === "in-data" ? "in-data-asset" : "in-path", ["input"]]]); return; }
    submit.disabled = true;
    try {
      if (!(await outputFree())) { document.getElementById("out-path").focus(); return; }
      const props = { InputData: { input: { JobInputType: inputType.value === "uri_file" ? "UriFile" : "UriFolder", Uri: uri } } };
      if (outPath.value.trim()) props.OutputData = { score: { JobOutputType: "UriFolder", Uri: `azureml://datastores/${outStore.value}/paths/${outPath.value.trim()}` } };
      if (overrideToggle.checked) {
        const settings = {};
        for (const s of overrides) {
          const v = document.getElementById(`job-${s.key}`).value.trim();
          if (!v) continue;
          const key = s.path === "retry_settings" ? `retry_settings.${s.key}` : s.key;
          settings[key] = /^-?\d+$/.test(v) ? Number(v) : v;
        }
        props.settings = settings;
      }
      const headers = dep.value !== ep.defaults.deployment_name ? { "azureml-model-deployment": dep.value } : {};
      const job = await api("POST", `/batchEndpoints/${enc(name)}/jobs`, { properties: props }, headers);
      location.hash = `#/jobs/${enc(job.name)}`;
    } catch (err) {
      showError(form, err, [["deployment", ["deployment"]], ["out-path", ["output", "exists"]], ...overrides.map((s) => [`job-${s.key}`, [s.key]]),
        [kind === "in-url" ? "in-url-value" : kind === "in-data" ? "in-data-asset" : "in-path", ["input", "Uri"]]]);
    } finally { submit.disabled = false; }
  });
  render(`Create job on ${name}`, endpointTabs(name, "create-job"), form);
  showInput();
}

// ---- a job -----------------------------------------------------------------------------------------

let jobTimer = null;
async function jobPage(name) {
  const job = await api("GET", `/jobs/${enc(name)}`);
  const p = job.properties;
  const prog = p.progress || {};
  const done = TERMINAL.includes(p.status);
  const total = prog.mini_batches_total || (p.counts && p.counts.mini_batches_total) || 0;
  const doneBatches = done ? total : prog.mini_batches_done || 0;
  const banner = h("div", { class: "banner", role: "alert" });
  const parts = [
    h("div", { class: "toolbar" }, h("a", { href: `#/endpoints/${enc(p.endpoint_name)}/jobs` }, `Jobs of ${p.endpoint_name}`),
      can("invoke") && !done ? h("button", { type: "button", class: "danger", onclick: async () => {
        try { await api("POST", `/jobs/${enc(name)}/cancel`); route(); } catch (err) { banner.textContent = err.message; }
      } }, "Cancel job") : null),
    banner,
    h("dl", { class: "props" },
      h("dt", {}, "Status"), h("dd", { "data-testid": "status" }, statusCell(p.status)),
      h("dt", {}, "Deployment"), h("dd", {}, p.deployment_name),
      h("dt", {}, "Started"), h("dd", {}, fmtTime(p.started_at)),
      h("dt", {}, "Duration"), h("dd", {}, duration(job)),
      h("dt", {}, "Input"), h("dd", {}, Object.values(p.inputs).map((i) => i.path).join(", ")),
      h("dt", {}, "Output"), h("dd", {}, Object.values(p.outputs).map((o) => o.path).join(", "))),
    h("h2", {}, "Progress"),
    h("progress", { max: String(total || 1), value: String(doneBatches), "aria-label": "Mini-batches done" }),
    h("p", { "data-testid": "progress" }, `${doneBatches} of ${total || "?"} mini-batches; ${(p.counts || prog).rows_scored ?? 0} rows scored; ${(p.counts || prog).items_failed ?? 0} items failed`),
  ];
  if (p.error) parts.push(h("div", { class: "banner" }, p.error));
  if (p.first_failure) parts.push(h("h2", {}, "First failure"), h("pre", { "data-testid": "first-failure" }, JSON.stringify(p.first_failure, null, 2)));
  parts.push(h("h2", {}, "Effective settings"), h("pre", {}, JSON.stringify(p.settings, null, 2)));
  const files = h("div", { "data-testid": "outputs" });
  parts.push(h("h2", {}, "Outputs"), files);
  const failures = h("div", {});
  parts.push(failures);
  render(`Job ${name}`, ...parts);
  clearTimeout(jobTimer);
  refreshing = false;
  if (!done) {
    jobTimer = setTimeout(() => {
      if (location.hash !== `#/jobs/${enc(name)}`) return;
      refreshing = true;
      jobPage(name).catch(showPageError).finally(() => (refreshing = false));
    }, 1000);
    return;
  }
  try {
    const list = await api("GET", `/jobs/${enc(name)}/outputs/score`);
    files.replaceChildren(table(["File", "Size", ""], list.value.map((f) => [f.path, h("td", { class: "num" }, String(f.size_bytes)),
      h("button", { type: "button", class: "secondary", "aria-label": `Download ${f.path}`, onclick: () => download(f) }, "Download")]), "Nothing was written."));
    const fl = list.value.find((f) => f.path === "logs/failures.jsonl");
    if (fl && fl.size_bytes > 0) {
      const text = await (await fetch(fl.content, { headers: { Authorization: `Bearer ${state.token}` } })).text();
      const lines = text.split("\n").filter(Boolean);
      failures.replaceChildren(h("h2", {}, `Failures (${lines.length})`), table(["Mini-batch", "File", "Error"],
        lines.slice(0, 100).map((l) => { try { const f = JSON.parse(l); return [String(f.mini_batch ?? ""), f.file || "", f.error || ""]; } catch { return ["", "", l]; } }), ""));
    }
  } catch (err) { files.replaceChildren(h("p", { class: "muted" }, err.message)); }
}

async function download(f) {
  const r = await fetch(f.content, { headers: { Authorization: `Bearer ${state.token}` } });
  const blob = await r.blob();
  const a = h("a", { href: URL.createObjectURL(blob), download: f.path.split("/").pop() });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// ---- routing -------------------------------------------------------------------------------------

function showPageError(err) {
  if (err.status === 401) return;
  render(err.status === 404 ? "Not found" : "Something went wrong", h("div", { class: "banner", role: "alert" }, err.message));
}

async function route() {
  if (!state.token || !state.who) return signIn();
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const seg = path.split("/").filter(Boolean).map(decodeURIComponent);
  document.querySelectorAll("nav a").forEach((a) => a.setAttribute("aria-current", a.getAttribute("href") === `#/${seg[0] || ""}` ? "page" : "false"));
  try {
    if (seg[0] === "models") return await modelsPage();
    if (seg[0] === "data") return await dataPage();
    if (seg[0] === "deploy") return await wizard(params);
    if (seg[0] === "jobs" && seg[1]) return await jobPage(seg[1]);
    if (seg[0] === "endpoints" && seg[1] && seg[2] === "jobs") return await endpointJobsPage(seg[1]);
    if (seg[0] === "endpoints" && seg[1] && seg[2] === "create-job") return await createJobPage(seg[1]);
    if (seg[0] === "endpoints" && seg[1]) return await endpointPage(seg[1]);
    return await endpointsPage();
  } catch (err) { showPageError(err); }
}

document.getElementById("signout").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", route);
(async () => {
  if (state.token) {
    try { state.who = await api("GET", "/whoami"); signedIn(); } catch { return signOut("Your token was refused. Sign in again."); }
  }
  route();
})();
