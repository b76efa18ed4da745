// Drives Plugboard's dashboard in headless Chromium for crates/plugboard/tests/dashboard_browser.rs.
//
//   node dashboard.mjs <plugboard base URL> <artifacts dir>
//
// Prints {"ready": true}, then answers each JSON command read on stdin with one JSON line:
// {"ok": true, "url": <path>, "value": …, "errors": [console errors so far]} or
// {"ok": false, "error": "…"}. Elements are found by their label or their accessible role
// and name, as a screen reader would, so an unlabelled field fails the test. Exits when
// stdin closes; exits 1 if Chromium does not start (the suite never passes by skipping).
import fs from "node:fs/promises";
import path from "node:path";
import readline from "node:readline";
import { chromium } from "playwright-core";

const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const [server, artifacts] = process.argv.slice(2);
const TIMEOUT_MS = 15_000;

if (!server || !artifacts) {
  console.error("usage: node dashboard.mjs <plugboard base URL> <artifacts dir>");
  process.exit(2);
}

let browser;
try {
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
} catch (error) {
  console.error(`Chromium did not start from ${chromiumPath}: ${error.message}`);
  process.exit(1);
}
await fs.mkdir(artifacts, { recursive: true });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(TIMEOUT_MS);
const errors = [];
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
page.on("pageerror", (e) => errors.push(String(e)));

function locate(c) {
  if (c.label) return page.getByLabel(c.label, { exact: true });
  if (c.role) return page.getByRole(c.role, { name: c.name, exact: c.exact !== false });
  return page.locator(c.selector);
}

const ops = {
  goto: async (c) => { await page.goto(new URL(c.path, server).href); },
  fill: async (c) => { await locate(c).fill(c.value); },
  // A click or key that submits a form or follows a link: waits for the next page.
  click: async (c) => {
    const loaded = page.waitForNavigation({ waitUntil: "load" });
    await locate(c).click();
    await loaded;
  },
  press: async (c) => {
    const loaded = page.waitForNavigation({ waitUntil: "load" });
    await page.keyboard.press(c.key);
    await loaded;
  },
  text: async (c) => (await locate(c).first().innerText()).trim(),
  count: async (c) => await locate(c).count(),
  body: async () => await page.locator("body").innerText(),
  // Tabs to the next focusable element; tells what it is and how its focus shows.
  tab: async () => {
    await page.keyboard.press("Tab");
    return await page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return { tag: el.tagName, text: (el.innerText || el.value || "").trim().slice(0, 60),
        outlineStyle: style.outlineStyle, outlineWidth: style.outlineWidth };
    });
  },
  // Every form control has a label (or an accessible name) and the page does not scroll sideways.
  audit: async () => await page.evaluate(() => {
    const unlabelled = [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
      .map((el) => el.name || el.id);
    const nameless = [...document.querySelectorAll("button, a[href]")]
      .filter((el) => !(el.innerText.trim() || el.getAttribute("aria-label")))
      .map((el) => el.outerHTML.slice(0, 80));
    return { unlabelled, nameless, overflow: document.documentElement.scrollWidth > window.innerWidth + 1 };
  }),
  viewport: async (c) => { await page.setViewportSize({ width: c.width, height: c.height }); },
  screenshot: async (c) => {
    const file = path.join(artifacts, `dashboard-${c.name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  },
};

console.log(JSON.stringify({ ready: true }));
for await (const line of readline.createInterface({ input: process.stdin })) {
  const command = JSON.parse(line);
  let answer;
  try {
    const op = ops[command.op];
    if (!op) throw new Error(`unknown op ${command.op}`);
    const value = await op(command);
    answer = { ok: true, value: value ?? null };
  } catch (error) {
    answer = { ok: false, error: String(error && error.message ? error.message : error) };
  }
  answer.url = new URL(page.url()).pathname + new URL(page.url()).search;
  answer.errors = errors.splice(0);
  console.log(JSON.stringify(answer));
}
await browser.close();
