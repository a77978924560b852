// The wizard: model -> endpoint (new or existing) -> deployment (every setting, its default
// shown) -> review -> create, over PUT /batchEndpoints/{e} and .../deployments/{d}.

import { api } from "./api.js";
import { enc, field, h, main, render, select, showError } from "./ui.js";

// DESIGN.md section 3: the settings of a deployment, with the defaults a job gets.
export const SETTINGS = [
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
export const JOB_OVERRIDES = ["mini_batch_size", "instance_count", "max_retries", "timeout", "error_threshold", "output_file_name", "logging_level"];

export function signature(list) {
  return (list || []).map((t) => `${t.name}: ${t.type}[${t.shape.join(", ")}]`).join("; ");
}

export async function wizard(params) {
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
