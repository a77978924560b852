// Jobs: create one on an endpoint (deployment, overrides, input, an output checked free before
// submit), a job's page (live progress, failures, settings, downloads, cancel), a jobs table.

import { api, can, state } from "./api.js";
import { JOB_OVERRIDES, SETTINGS } from "./deploy.js";
import { TERMINAL, duration, endpointTabs, enc, field, fmtTime, h, main, render, select, setRefreshing, showError, showPageError, statusCell, table } from "./ui.js";

export async function createJobPage(name) {
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

let jobTimer = null;
export async function jobPage(name) {
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
        try { await api("POST", `/jobs/${enc(name)}/cancel`); await jobPage(name); } catch (err) { banner.textContent = err.message; }
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
  setRefreshing(false);
  if (!done) {
    jobTimer = setTimeout(() => {
      if (location.hash !== `#/jobs/${enc(name)}`) return;
      setRefreshing(true);
      jobPage(name).catch(showPageError).finally(() => setRefreshing(false));
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

export function jobsTable(jobs) {
  return table(["Job", "Deployment", "Status", "Started", "Duration", "Rows scored", "Items failed"],
    jobs.map((j) => {
      const c = j.properties.counts || {};
      const p = j.properties.progress || {};
      return [h("a", { href: `#/jobs/${enc(j.name)}` }, j.name), j.properties.deployment_name, statusCell(j.properties.status),
        fmtTime(j.properties.started_at), duration(j),
        h("td", { class: "num" }, String(c.rows_scored ?? p.rows_scored ?? "")), h("td", { class: "num" }, String(c.items_failed ?? p.items_failed ?? ""))];
    }), "No jobs yet.");
}
