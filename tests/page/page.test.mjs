// The clinician page in a real browser: Debian's Chromium, driven by playwright-core, audited by
// axe-core. Run by tests/it/page.rs against a running `ehrqa serve`; prints one JSON line of
// what it saw and exits non-zero on the first failed check.
//
// Environment: EHRQA_URL, EHRQA_ADMIN_KEY, EHRQA_SCOPED_KEY (a key for another patient only),
// EHRQA_PATIENT, EHRQA_OUT (screenshots and the exported draft), EHRQA_NODE_MODULES.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const require = createRequire(join(env("EHRQA_NODE_MODULES"), "noop.js"));
const { chromium } = require("playwright-core");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const base = env("EHRQA_URL");
const out = env("EHRQA_OUT");
const patient = env("EHRQA_PATIENT");
const question = "What was his latest hemoglobin A1c?";
const seen = { audits: {} };

function check(ok, what) {
  if (!ok) throw new Error("check failed: " + what);
}

const browser = await chromium.launch({
  executablePath: process.env.EHRQA_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

/** A fresh browser session (its own sessionStorage); console errors and failed requests fail the test. */
async function session(name) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(`${name}: console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on("request", (r) => { if (!r.url().startsWith(base)) problems.push(`${name}: request outside the service: ${r.url()}`); });
  return { context, page, problems };
}

async function useKey(page, key) {
  await page.fill("#key", key);
  await page.click("#key-form button[type=submit]");
}

/** axe-core in the page: serious and critical violations fail the test. */
async function audit(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  seen.audits[name] = { violations: result.violations.map((v) => `${v.id} (${v.impact})`) };
  check(bad.length === 0, `${name}: accessibility violations: ${JSON.stringify(bad.map((v) => ({ id: v.id, nodes: v.nodes.map((n) => n.target) })))}`);
}

try {
  // ---- the list, by keyboard ------------------------------------------------------------------
  const main = await session("main");
  const { page } = main;
  await page.goto(base + "/");
  check((await page.textContent(".synthetic")).includes("Synthetic data. Not for clinical use."), "banner");
  // Without a key the service answers 401, and the page asks for one.
  await page.waitForSelector("#status.error");
  seen.without_key = await page.textContent("#status");
  check(seen.without_key.includes("API key"), "the page asks for a key: " + seen.without_key);
  main.problems.length = 0;
  await useKey(page, env("EHRQA_ADMIN_KEY"));
  await page.waitForSelector("table.patients tbody tr");
  seen.patients = await page.$$eval("table.patients tbody tr", (rows) => rows.length);
  check(seen.patients >= 5, "patients listed: " + seen.patients);
  await page.screenshot({ path: join(out, "patients.png"), fullPage: true });
  await audit(page, "patients");
  await page.fill("#patient-search", "Mervin");
  check(await page.$$eval("table.patients tbody tr", (r) => r.length) === 1, "search by name");
  // Keyboard only: Tab to the patient's link and press Enter.
  await page.focus("#patient-search");
  let tabs = 0;
  while (!(await page.evaluate(() => document.activeElement && document.activeElement.matches("table.patients a")))) {
    await page.keyboard.press("Tab");
    check(++tabs < 50, "the patient link is reachable by Tab");
  }
  await page.keyboard.press("Enter");

  // ---- the chart ---------------------------------------------------------------------------------
  await page.waitForSelector("h1.banner");
  check(page.url().includes(encodeURIComponent(patient)), "chart URL names the patient");
  seen.banner = await page.textContent("h1.banner");
  seen.demographics = await page.textContent(".demographics");
  await page.waitForFunction(() => document.querySelectorAll(".entries li").length >= 100);
  seen.timeline_rows = await page.$$eval(".entries li", (l) => l.length);
  seen.a1c = await page.$$eval(".series li", (items) => items
    .filter((li) => li.querySelector(".name").textContent.startsWith("Hemoglobin A1c"))
    .map((li) => li.querySelector(".value").textContent)[0]);
  seen.sparklines = await page.$$eval(".series svg.spark", (s) => s.length);
  seen.shaded_ranges = await page.$$eval(".series svg.spark rect.range", (s) => s.length);
  // The timeline pages as it scrolls: the next page arrives when its end comes into view.
  await page.$eval(".timeline", (t) => { t.scrollTop = t.scrollHeight; });
  await page.waitForFunction((n) => document.querySelectorAll(".entries li").length > n, seen.timeline_rows);
  seen.timeline_rows_after_scroll = await page.$$eval(".entries li", (l) => l.length);
  await page.$eval(".timeline", (t) => { t.scrollTop = 0; });
  await page.screenshot({ path: join(out, "chart.png") });
  await audit(page, "chart");

  // ---- ask, keyboard to the question box; tokens before the answer ends ---------------------------
  await page.evaluate(() => {
    window.__stream = { tokens: 0, finished: false, tokensBeforeEnd: 0 };
    new MutationObserver((changes) => {
      for (const c of changes) {
        const el = c.target.nodeType === 1 ? c.target : c.target.parentElement;
        const answer = el && el.closest(".answer");
        if (!answer) continue;
        if (answer.classList.contains("streaming") && c.type === "childList") window.__stream.tokens++;
        if (c.type === "attributes" && !answer.classList.contains("streaming") && !window.__stream.finished) {
          window.__stream.finished = true;
          window.__stream.tokensBeforeEnd = window.__stream.tokens;
        }
      }
    }).observe(document.querySelector(".conversation"), { subtree: true, childList: true, attributes: true, attributeFilter: ["class"] });
  });
  tabs = 0;
  while (!(await page.evaluate(() => document.activeElement && document.activeElement.id === "question"))) {
    await page.keyboard.press("Tab");
    check(++tabs < 150, "the question box is reachable in few Tabs (the timeline is one stop)");
  }
  seen.tabs_to_question = tabs;
  await page.keyboard.type(question);
  await page.keyboard.press("Enter");
  await page.waitForSelector(".turn .answer.answered, .turn .answer.abstained, .turn .answer.failed", { timeout: 120000 });
  seen.first_answer = await page.textContent(".turn .answer .text");
  seen.first_stream = await page.evaluate(() => window.__stream);
  check(seen.first_stream.tokensBeforeEnd >= 1, "tokens arrived before the answer ended");

  // Citation 1 opens the cited record beside the answer and marks it in the timeline.
  const cite = await page.$(".turn .answer .cite");
  check(cite, "the answer has a numbered citation");
  seen.citation_ref = await cite.getAttribute("data-ref");
  await cite.click();
  await page.waitForSelector("#record .rendering");
  seen.record_heading = await page.textContent("#record h2");
  seen.record_rendering = await page.textContent("#record .rendering");
  seen.record_json = JSON.parse(await page.textContent("#record pre.json"));
  await page.waitForSelector(`.entries li.marked[data-ref="${seen.citation_ref}"]`, { timeout: 60000 });
  seen.marked_in_timeline = true;
  await page.screenshot({ path: join(out, "answer.png") });
  await audit(page, "answer");

  // A follow-up the computed facts do not answer: the model writes it, token by token.
  await page.evaluate(() => { window.__stream = { tokens: 0, finished: false, tokensBeforeEnd: 0 }; });
  await page.fill("#question", "What did the note of his last visit say?");
  await page.press("#question", "Enter");
  await page.waitForFunction(() => document.querySelectorAll(".turn .answer:not(.streaming)").length === 2, null, { timeout: 180000 });
  seen.turns = await page.$$eval(".turn", (t) => t.length);
  seen.second_stream = await page.evaluate(() => window.__stream);
  seen.second_answer_class = await page.$$eval(".turn .answer", (a) => a[1].className);
  check(seen.second_stream.tokensBeforeEnd >= 2, "the model's tokens arrived one by one before its answer");

  // ---- draft and export --------------------------------------------------------------------------
  await page.waitForSelector("#encounter option", { state: "attached" });
  await page.click(".draft button:has-text('Draft a visit summary')");
  await page.waitForSelector(".draft button:has-text('Export'):visible", { timeout: 180000 });
  await page.fill("#draft-text", (await page.inputValue("#draft-text")) + "\nReviewed by the page test.");
  await page.click(".draft button:has-text('Export')");
  await page.waitForSelector("#export-json");
  const exported = JSON.parse(await page.textContent("#export-json"));
  writeFileSync(join(out, "draft.json"), JSON.stringify(exported, null, 2));
  seen.draft_encounter = await page.inputValue("#encounter");
  check(main.problems.length === 0, main.problems.join("\n"));
  await main.context.close();

  // ---- a key for another patient cannot open this chart ------------------------------------------
  const other = await session("scoped");
  await other.page.goto(base + "/");
  await other.page.waitForSelector("#status.error");
  other.problems.length = 0;
  await useKey(other.page, env("EHRQA_SCOPED_KEY"));
  await other.page.waitForSelector("table.patients tbody tr");
  seen.scoped_patients = await other.page.$$eval("table.patients tbody tr", (r) => r.length);
  await other.page.goto(base + "/#/patients/" + encodeURIComponent(patient));
  await other.page.waitForSelector(".summary .error");
  seen.scoped_error = await other.page.textContent(".summary .error");
  seen.scoped_banner = await other.page.$("h1.banner") !== null;
  // The refused requests are the only console errors allowed here.
  seen.scoped_problems = other.problems.filter((p) => !p.includes("403"));
  await other.context.close();
  check(seen.scoped_problems.length === 0, seen.scoped_problems.join("\n"));

  console.log(JSON.stringify(seen));
} catch (e) {
  console.error(e.stack || String(e));
  console.error("seen so far: " + JSON.stringify(seen));
  process.exitCode = 1;
} finally {
  await browser.close();
}
