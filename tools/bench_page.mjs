// The browser's time to an interactive chart: opens one patient's chart in Debian's Chromium
// (playwright-core) N times and reports, per run, the milliseconds from navigation until the
// banner, the vitals and labs and the first timeline page are on screen and the question box
// takes input. Prints one JSON object.
//
//   EHRQA_NODE_MODULES=~/.cache/ehrqa/node-page/node_modules EHRQA_API_KEY=... \
//     node tools/bench_page.mjs http://127.0.0.1:8080 PATIENT_ID [RUNS]
import { createRequire } from "node:module";
import { join } from "node:path";
import { homedir } from "node:os";

const [base, patient, runsArg] = process.argv.slice(2);
if (!base || !patient) {
  console.error("usage: bench_page.mjs BASE_URL PATIENT_ID [RUNS]");
  process.exit(2);
}
const modules = process.env.EHRQA_NODE_MODULES || join(homedir(), ".cache/ehrqa/node-page/node_modules");
const { chromium } = createRequire(join(modules, "noop.js"))("playwright-core");
const runs = Number(runsArg || 10);
const browser = await chromium.launch({
  executablePath: process.env.EHRQA_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const times = [];
try {
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    const page = await context.newPage();
    if (process.env.EHRQA_API_KEY) {
      await context.addInitScript((k) => sessionStorage.setItem("ehrqa.key", k), process.env.EHRQA_API_KEY);
    }
    const started = Date.now();
    await page.goto(base + "/#/patients/" + encodeURIComponent(patient));
    await page.waitForFunction(() =>
      document.querySelector("h1.banner") && document.querySelector(".series li") &&
      document.querySelectorAll(".entries li").length > 0 && document.getElementById("question"));
    await page.focus("#question");
    times.push(Date.now() - started);
    await context.close();
  }
} finally {
  await browser.close();
}
const sorted = [...times].sort((a, b) => a - b);
const at = (p) => sorted[Math.round((sorted.length - 1) * p)];
console.log(JSON.stringify({ url: base, patient, runs, interactive_ms: times, p50_ms: at(0.5), max_ms: sorted[sorted.length - 1] }));
