// batchscore studio: batch endpoints in the browser, over the REST API only. Hand-written, no
// dependencies, no build step. This file: sign-in, the models, data and endpoints pages, and
// the routes (#/...); api.js, ui.js, deploy.js (the wizard) and jobs.js hold the rest.

import { api, can, state, whenRefused } from "./api.js";
import { signature, wizard } from "./deploy.js";
import { createJobPage, jobPage, jobsTable } from "./jobs.js";
import { confirmDialog, endpointTabs, enc, field, fmtTime, h, pager, render, select, showPageError, table } from "./ui.js";

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

// ---- routing -------------------------------------------------------------------------------------

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

whenRefused(signOut);
document.getElementById("signout").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", route);
(async () => {
  if (state.token) {
    try { state.who = await api("GET", "/whoami"); signedIn(); } catch { return signOut("Your token was refused. Sign in again."); }
  }
  route();
})();
