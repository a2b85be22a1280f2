// The SMART App Launch in a real browser (Debian's Chromium, driven by playwright-core): an EHR
// launch and a standalone launch of `ehrqa serve` through tests/smart/authz.mjs (oidc-provider in
// front of sekmet-fhir), each ending on the launched patient's chart with a session for that
// patient only; the access token never reaches the page. Run by tests/it/smart_launch.rs; prints
// one JSON line of what it saw and exits non-zero on the first failed check.
//
// Environment: EHRQA_URL, EHRQA_ISS (the FHIR base behind the provider), AUTHZ_URL,
// EHRQA_PATIENT (the one the EHR launches), EHRQA_OTHER (another patient ehrqa holds),
// EHRQA_OUT (screenshots), EHRQA_NODE_MODULES.
import { createRequire } from "node:module";
import { join } from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const require = createRequire(join(env("EHRQA_NODE_MODULES"), "noop.js"));
const { chromium } = require("playwright-core");

const base = env("EHRQA_URL");
const iss = env("EHRQA_ISS");
const authz = env("AUTHZ_URL");
const patient = env("EHRQA_PATIENT");
const other = env("EHRQA_OTHER");
const seen = {};

function check(ok, what) {
  if (!ok) throw new Error("check failed: " + what);
}

const browser = await chromium.launch({
  executablePath: process.env.EHRQA_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

/** Signs in on the provider's pages (any name and password), then consents. */
async function signIn(page) {
  await page.waitForSelector("input[name=login]");
  await page.fill("input[name=login]", "dr-smith");
  await page.fill("input[name=password]", "any");
  await page.click("button[type=submit]");
  await page.waitForSelector("button[type=submit]");
  await page.click("button[type=submit]");
}

/** A launch from start to the chart; what the page and the browser hold afterwards. */
async function launch(name, query) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  // Console errors on ehrqa's pages (the provider's development pages reach for web fonts),
  // until the chart is up (the checks after it ask for what must be refused).
  const errors = [];
  let watching = true;
  page.on("console", (m) => watching && m.type() === "error" && page.url().startsWith(base) && errors.push(m.text()));
  let callback = null;
  page.on("request", (r) => {
    if (r.url().startsWith(base + "/smart/callback")) callback = r.url();
  });
  await page.goto(`${base}/smart/launch?${query}`);
  await signIn(page);
  await page.waitForURL(`${base}/#/patients/${patient}`, { timeout: 60_000 });
  await page.waitForSelector("h1.banner", { timeout: 30_000 });
  const banner = (await page.textContent("h1.banner")).trim();
  await page.waitForLoadState("networkidle");
  watching = false;
  await page.screenshot({ path: join(env("EHRQA_OUT"), `smart-${name}.png`) });
  const held = await page.evaluate(() => JSON.stringify({
    session: { ...sessionStorage }, local: { ...localStorage }, cookie: document.cookie,
  }));
  // What the session may read: the launched patient, and no one else.
  const api = await page.evaluate(async ([p, o]) => {
    const status = async (u) => (await fetch(u)).status;
    const list = await (await fetch("/v1/patients")).json();
    return { own: await status(`/v1/patients/${p}`), other: await status(`/v1/patients/${o}`),
      listed: (Array.isArray(list) ? list : list.patients).map((x) => x.id), sync: (await fetch("/v1/sync", { method: "POST",
        headers: { "content-type": "application/json" }, body: JSON.stringify({ server: "http://x/fhir", all: true }) })).status };
  }, [patient, other]);
  const html = await page.content();
  await context.close();
  check(errors.length === 0, `${name}: console errors ${errors}`);
  return { banner, held, html, api, callback };
}

const ehr = await launch("ehr", `iss=${encodeURIComponent(iss)}&launch=launch-ctx-1`);
const standalone = await launch("standalone", `iss=${encodeURIComponent(iss)}`);

// Where the tokens went: FHIR requests with them, and nowhere in the page.
const tokens = await (await fetch(`${authz}/test/tokens`)).json();
check(tokens.issued.length === 2, `two tokens issued: ${tokens.issued.length}`);
for (const l of [ehr, standalone]) {
  for (const t of tokens.issued) {
    check(!l.held.includes(t) && !l.html.includes(t), "an access token reached the page");
  }
  check(!l.held.includes("ehrqa_session"), "the session cookie is readable by the page");
}

// A callback replayed (its state was used), a forged one, and an issuer not registered.
const replay = await fetch(ehr.callback, { redirect: "manual" });
const forged = await fetch(`${base}/smart/callback?code=abc&state=forged`, { redirect: "manual" });
const stranger = await fetch(`${base}/smart/launch?iss=${encodeURIComponent("http://127.0.0.1:9/fhir")}&launch=x`, { redirect: "manual" });
// A user who declines: the provider returns access_denied, and ehrqa says so.
const context = await browser.newContext();
const page = await context.newPage();
await page.goto(`${base}/smart/launch?iss=${encodeURIComponent(iss)}&launch=launch-ctx-1`);
await page.waitForSelector("input[name=login]");
const declinedResponse = page.waitForResponse((r) => r.url().startsWith(base + "/smart/callback"));
await page.click("text=Cancel");
const resp = await declinedResponse;
const declined = { status: resp.status(), text: (await resp.text()).trim() };
await context.close();
await browser.close();

Object.assign(seen, {
  ehr_banner: ehr.banner,
  standalone_banner: standalone.banner,
  ehr_api: ehr.api,
  standalone_api: standalone.api,
  fhir_requests: tokens.fhir_requests.length,
  fhir_tokens: [...new Set(tokens.fhir_requests.map((r) => r.token))].length,
  replay: replay.status,
  forged: forged.status,
  stranger: stranger.status,
  stranger_location: stranger.headers.get("location"),
  declined,
});
console.log(JSON.stringify(seen));
