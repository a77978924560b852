// The studio's workflow in a real headless Chromium (Debian's, driven by playwright-core), as
// the seed page describes it. Run by tests/studio_browser.rs, which makes the workspace, starts
// `batchscore serve` and passes: STUDIO_URL, ADMIN_TOKEN, INVOKE_TOKEN, READ_TOKEN, SHOTS (a
// folder for screenshots), BROKEN_INPUT (a folder where some files fail), CHROMIUM (the
// browser), PLAYWRIGHT (playwright-core's folder). Prints one JSON line of measurements last;
// exits non-zero on the first step that does not hold.

const path = require("path");
const assert = require("assert/strict");
const { chromium } = require(process.env.PLAYWRIGHT);

const URL = process.env.STUDIO_URL;
const SHOTS = process.env.SHOTS;
const timings = {};

async function step(name, f) {
  const t = Date.now();
  try {
    await f();
  } catch (e) {
    console.error(`step failed: ${name}`);
    throw e;
  }
  console.log(`ok: ${name} (${Date.now() - t} ms)`);
}

async function signIn(page, token) {
  await page.goto(URL + "/");
  await page.getByLabel("Access token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function signOut(page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Access token").waitFor();
}

// Every form control has a label (or an aria-label); nothing needs a mouse to reach.
async function labelled(page, where) {
  const bare = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea, button")]
      .filter((el) => el.type !== "hidden" && !el.closest("[hidden]"))
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !(el.tagName === "BUTTON" && el.textContent.trim()))
      .map((el) => el.outerHTML.slice(0, 80)));
  assert.deepEqual(bare, [], `controls without a label on ${where}`);
}

// No page shows a value the code forgot to fill.
async function clean(page, where) {
  const text = await page.locator("main").textContent();
  for (const bad of ["null", "undefined", "[object Object]", "NaN"]) assert.ok(!text.includes(bad), `${where} shows "${bad}"`);
}

async function waitForStatus(page, want) {
  const status = page.getByTestId("status");
  await status.filter({ hasText: new RegExp(`^(${want}|Failed|Canceled|Completed)$`) }).waitFor({ timeout: 120000 });
  assert.equal((await status.textContent()).trim(), want);
}

// Creates a job from the endpoint's page: `input` is {kind: "store" | "data" | "url", value}.
async function createJob(page, endpoint, { overrides, output, deployment, input = { kind: "store", value: "inputs/iris" } }) {
  await page.goto(`${URL}/#/endpoints/${endpoint}`);
  await page.getByRole("link", { name: "Create job" }).click();
  if (deployment) await page.getByLabel("Deployment", { exact: true }).selectOption(deployment);
  if (input.kind === "store") {
    await page.getByLabel("Datastore path").check();
    await page.getByLabel("Input path").fill(input.value);
  } else if (input.kind === "data") {
    await page.getByLabel("Registered data asset").check();
    await page.getByLabel("Data asset", { exact: true }).selectOption({ label: input.value });
  } else {
    await page.getByLabel("Public URL").check();
    await page.getByLabel("URL or path", { exact: true }).fill(input.value);
  }
  if (overrides) {
    await page.getByLabel("Override deployment settings").check();
    for (const [label, value] of Object.entries(overrides)) await page.getByLabel(label, { exact: true }).fill(value);
  }
  await page.getByLabel("Output path").fill(output);
  await page.getByRole("button", { name: "Create job" }).click();
}

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"], headless: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error" && !/status of 40[0-9]/.test(m.text())) consoleErrors.push(m.text()); });

  await step("a wrong token is refused", async () => {
    await signIn(page, "bst_not-a-token");
    await page.getByText("That token was refused").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("batchscore.token")), null);
    assert.ok(!page.url().includes("bst_"), "the token never goes into a URL");
  });

  await step("a read-only token sees no buttons that would fail", async () => {
    await signIn(page, process.env.READ_TOKEN);
    await page.getByRole("heading", { name: "Endpoints" }).waitFor();
    assert.equal(await page.getByRole("link", { name: "+ Create" }).count(), 0);
    await page.getByRole("link", { name: "Models" }).click();
    await page.getByTestId("models").locator("table").waitFor();
    assert.equal(await page.getByRole("link", { name: "Deploy to batch endpoint" }).count(), 0);
    await page.goto(`${URL}/#/endpoints/bulk-ep`);
    await page.getByText("Scoring URI").waitFor();
    assert.equal(await page.getByRole("button", { name: "Delete endpoint" }).count(), 0);
    assert.equal(await page.getByRole("link", { name: "Create job" }).count(), 0);
    await signOut(page);
  });

  await step("an invoke token may start jobs and nothing more", async () => {
    await signIn(page, process.env.INVOKE_TOKEN);
    await page.getByRole("heading", { name: "Endpoints" }).waitFor();
    assert.equal(await page.getByRole("link", { name: "+ Create" }).count(), 0);
    await page.goto(`${URL}/#/endpoints/bulk-ep`);
    await page.getByRole("link", { name: "Create job" }).waitFor();
    for (const admin of ["+ Add deployment", "Delete endpoint"]) {
      assert.equal(await page.getByText(admin, { exact: true }).count(), 0, `an invoke token sees ${admin}`);
    }
    await signOut(page);
  });

  await signIn(page, process.env.ADMIN_TOKEN);
  await page.getByRole("heading", { name: "Endpoints" }).waitFor();

  await step("the models page with 200 versions renders a page of them", async () => {
    const t = Date.now();
    await page.getByRole("link", { name: "Models" }).click();
    await page.getByTestId("models").locator("tbody tr").first().waitFor();
    timings.models_page_ms = Date.now() - t;
    assert.equal(await page.getByTestId("models").locator("tbody tr").count(), 50);
    assert.match(await page.getByTestId("range").textContent(), /of 20[0-9]/);
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByTestId("range").filter({ hasText: /^51/ }).waitFor();
    await clean(page, "the models page");
    await page.screenshot({ path: path.join(SHOTS, "models.png") });
    await labelled(page, "models");
  });

  await step("deploy a model: the wizard, an API error next to its field, then create", async () => {
    await page.getByRole("link", { name: "Endpoints" }).click();
    await page.getByRole("link", { name: "Models" }).click();
    const row = page.getByTestId("models").locator("tbody tr", { hasText: "iris" }).first();
    await row.getByRole("link", { name: "Deploy to batch endpoint" }).click();
    await page.getByLabel("Model", { exact: true }).waitFor();
    assert.match(await page.getByLabel("Model", { exact: true }).inputValue(), /^iris:1$/);
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByLabel("Endpoint name").fill("bad/name");
    await page.getByLabel("Description").fill("Iris from the studio");
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByLabel("Deployment name").fill("blue");
    await page.getByLabel("Mini-batch size").fill("1");
    await page.getByLabel("Pass-through columns").fill("id");
    assert.equal(await page.getByLabel("Error threshold").getAttribute("placeholder"), "-1 (default)");
    await labelled(page, "the deployment step");
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByTestId("review").waitFor();
    await clean(page, "the review step");
    await page.screenshot({ path: path.join(SHOTS, "wizard-review.png") });
    await page.getByRole("button", { name: "Create" }).click();
    const err = page.locator("#ep-name-error");
    await err.filter({ hasText: /bad\/name/ }).waitFor();
    await page.getByLabel("Endpoint name").fill("iris-studio");
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { name: "Endpoint iris-studio" }).waitFor();
    await page.getByRole("cell", { name: "blue (default)" }).waitFor();
    const uri = await page.getByTestId("scoring-uri").textContent();
    assert.ok(uri.endsWith("/batchEndpoints/iris-studio/jobs"), uri);
    assert.match(await page.locator("pre").first().textContent(), /Bearer <token>/);
    await clean(page, "the endpoint page");
    await page.screenshot({ path: path.join(SHOTS, "endpoint.png") });
  });

  await step("a job with overridden settings on a datastore path reaches Completed", async () => {
    await page.goto(`${URL}/#/endpoints/iris-studio/create-job`);
    assert.equal(await page.getByLabel("Deployment", { exact: true }).inputValue(), "blue");
    await labelled(page, "create job");
    await page.screenshot({ path: path.join(SHOTS, "create-job.png") });
    await createJob(page, "iris-studio", { overrides: { "Mini-batch size": "2", "Error threshold": "5" }, output: "studio-out/run1" });
    await page.getByRole("heading", { name: /^Job / }).waitFor();
    await waitForStatus(page, "Completed");
    const settings = await page.locator("pre").first().textContent();
    assert.match(settings, /"mini_batch_size": "?2"?/);
    assert.match(settings, /"error_threshold": "?5"?/);
    await page.getByTestId("outputs").locator("table").waitFor();
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download predictions.csv" }).click()]);
    const file = path.join(SHOTS, "downloaded-predictions.csv");
    await download.saveAs(file);
    const text = require("fs").readFileSync(file, "utf8");
    assert.ok(text.split("\n").length > 100 && text.startsWith("file,row,id,"), text.slice(0, 200));
    await clean(page, "the job page");
    await page.screenshot({ path: path.join(SHOTS, "job.png"), fullPage: true });
  });

  await step("a second deployment becomes the default, and a job runs on it", async () => {
    await page.goto(`${URL}/#/endpoints/iris-studio`);
    await page.getByRole("link", { name: "+ Add deployment" }).click();
    await page.getByRole("button", { name: "Next" }).click();
    assert.ok(await page.getByLabel("Existing").isChecked());
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByLabel("Deployment name").fill("green");
    await page.getByLabel("Pass-through columns").fill("id");
    await page.getByLabel("Error threshold").fill("lots");
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByRole("button", { name: "Create" }).click();
    // The API's refusal of a setting, beside that setting, back on its step.
    await page.locator("#set-error_threshold-error").filter({ hasText: /error_threshold/ }).waitFor();
    await page.getByLabel("Error threshold").fill("");
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByRole("cell", { name: "green", exact: true }).waitFor();
    await page.getByLabel("Default deployment", { exact: true }).selectOption("green");
    await page.getByRole("button", { name: "Update default deployment" }).click();
    await page.getByRole("cell", { name: "green (default)" }).waitFor();
    await createJob(page, "iris-studio", { output: "studio-out/run2" });
    await waitForStatus(page, "Completed");
    await page.getByText("green", { exact: true }).first().waitFor();
  });

  await step("a job on a registered data asset with the non-default deployment", async () => {
    await createJob(page, "iris-studio", { deployment: "blue", input: { kind: "data", value: "iris-data:1 (uri_folder)" }, output: "studio-out/run3" });
    await waitForStatus(page, "Completed");
    await page.getByText("blue", { exact: true }).first().waitFor();
    await clean(page, "the job page");
  });

  await step("a job with failures shows the first one and the failures list", async () => {
    await createJob(page, "iris-studio", { input: { kind: "url", value: process.env.BROKEN_INPUT }, output: "studio-out/run4" });
    await waitForStatus(page, "Completed");
    await page.getByTestId("first-failure").waitFor();
    await page.getByRole("heading", { name: /^Failures \(\d+\)$/ }).waitFor();
    assert.match(await page.getByTestId("first-failure").textContent(), /bad_value\.csv/);
    await page.screenshot({ path: path.join(SHOTS, "job-failed.png"), fullPage: true });
  });

  await step("a running job's page follows it live, and cancel stops it", async () => {
    await createJob(page, "slow-ep", { output: "slow-out/run1" });
    await page.getByTestId("status").filter({ hasText: "Running" }).waitFor({ timeout: 60000 });
    await page.getByTestId("progress").filter({ hasText: /of 1 mini-batches/ }).waitFor();
    await page.getByRole("button", { name: "Cancel job" }).click();
    await waitForStatus(page, "Canceled");
  });

  await step("delete a deployment that is not the default", async () => {
    await page.goto(`${URL}/#/endpoints/iris-studio`);
    await page.getByRole("button", { name: "Delete deployment blue" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await page.getByRole("cell", { name: "blue", exact: true }).waitFor({ state: "detached" });
    await page.getByRole("cell", { name: "green (default)" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Delete deployment green" }).count(), 0, "the default cannot be deleted here");
  });

  await step("an output that exists is named before submit; nothing is overwritten", async () => {
    const before = await page.evaluate(async () => (await (await fetch("/jobs", { headers: { Authorization: `Bearer ${sessionStorage.getItem("batchscore.token")}` } })).json()).value.length);
    await createJob(page, "iris-studio", { output: "studio-out/run1" });
    await page.locator("#out-path-error").filter({ hasText: "already exists" }).waitFor();
    assert.match(page.url(), /create-job$/);
    const after = await page.evaluate(async () => (await (await fetch("/jobs", { headers: { Authorization: `Bearer ${sessionStorage.getItem("batchscore.token")}` } })).json()).value.length);
    assert.equal(after, before, "no job was created");
  });

  await step("the jobs tab lists the endpoint's jobs", async () => {
    await page.goto(`${URL}/#/endpoints/iris-studio/jobs`);
    await page.getByTestId("jobs").locator("tbody tr").first().waitFor();
    assert.equal(await page.getByTestId("jobs").locator("tbody tr").count(), 4);
    assert.equal(await page.getByTestId("jobs").getByText("Completed").count(), 4);
    await clean(page, "the jobs tab");
    await page.screenshot({ path: path.join(SHOTS, "jobs.png") });
  });

  await step("the jobs tab with 1,000 jobs renders a page of them", async () => {
    await page.goto(`${URL}/#/endpoints`);
    await page.getByRole("heading", { name: "Endpoints" }).waitFor();
    const t = Date.now();
    await page.goto(`${URL}/#/endpoints/bulk-ep/jobs`);
    await page.getByTestId("jobs").locator("tbody tr").first().waitFor();
    timings.jobs_tab_ms = Date.now() - t;
    assert.equal(await page.getByTestId("jobs").locator("tbody tr").count(), 50);
    assert.match(await page.getByTestId("range").textContent(), /of 1000/);
  });

  await step("delete the endpoint: the dialog says what goes, the jobs stay", async () => {
    await page.goto(`${URL}/#/endpoints/iris-studio`);
    await page.getByRole("button", { name: "Delete endpoint" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    assert.match(await dialog.textContent(), /1 deployment\(s\) are deleted\. Its jobs stay listed/);
    await dialog.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("heading", { name: "Endpoints" }).waitFor();
    assert.equal(await page.getByRole("link", { name: "iris-studio" }).count(), 0);
    const jobs = await page.evaluate(async () => (await (await fetch("/jobs?top=10&order=newest", { headers: { Authorization: `Bearer ${sessionStorage.getItem("batchscore.token")}` } })).json()).value.filter((j) => j.properties.endpoint_name === "iris-studio").length);
    assert.equal(jobs, 4, "its jobs remain");
  });

  await step("readable at 390x844", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const where of ["#/endpoints", "#/models", "#/endpoints/bulk-ep"]) {
      await page.goto(`${URL}/${where}`);
      await page.locator("h1").waitFor();
      await page.waitForTimeout(200);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${where} scrolls sideways by ${overflow}px at 390 wide`);
      await clean(page, where);
    }
    await page.screenshot({ path: path.join(SHOTS, "mobile-endpoint.png") });
  });

  await step("keyboard: the sign-out button and the nav are reachable with Tab", async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${URL}/#/endpoints`);
    // The list's own heading (the previous page's h1 may still be there for a moment), and the
    // focus back at the top of the page, so the Tabs start from there on a slow machine too.
    await page.locator("h1", { hasText: /^Endpoints$/ }).waitFor();
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    const wanted = ["Models", "Endpoints", "Sign out"];
    const reached = new Set();
    for (let i = 0; i < 12 && !wanted.every((w) => reached.has(w)); i++) {
      await page.keyboard.press("Tab");
      reached.add(await page.evaluate(() => document.activeElement && (document.activeElement.textContent || "").trim()));
    }
    for (const want of wanted) assert.ok(reached.has(want), `Tab never reaches ${want}: ${[...reached]}`);
  });

  assert.deepEqual(consoleErrors, [], "the page logged errors");
  await browser.close();
  console.log(JSON.stringify(timings));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
