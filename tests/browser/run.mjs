// Drives the unmodified @useparagon/connect in headless Chromium against a Plugboard server.
//
//   node run.mjs <plugboard base URL> <artifacts dir>
//
// Serves the test page from its own origin (so every SDK call is cross-origin and CORS is
// exercised), then speaks JSON lines: it prints {"ready": …}, and for each command read on
// stdin ({"op": …, …}) prints one answer {"ok": true, "value": …, "requests": […]} or
// {"ok": false, "error": "…"}. It exits when stdin closes. If Chromium does not start it
// exits 1: the suite never passes by skipping.
import http from "node:http";
import fs from "node:fs/promises";
import path from "node:path";
import readline from "node:readline";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const sdkFile = createRequire(import.meta.url).resolve("@useparagon/connect/ConnectSDK");
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const [server, artifacts] = process.argv.slice(2);
const OP_TIMEOUT_MS = 30_000;
const INSTALL_SETTLE_MS = 1_500;

if (!server || !artifacts) {
  console.error("usage: node run.mjs <plugboard base URL> <artifacts dir>");
  process.exit(2);
}

/** The test page, the app script and the SDK's own file from node_modules. */
async function serveStatic() {
  const files = {
    "/": [path.join(here, "page.html"), "text/html; charset=utf-8"],
    "/app.js": [path.join(here, "app.js"), "text/javascript"],
    "/sdk/ConnectSDK.js": [sdkFile, "text/javascript"],
  };
  const httpServer = http.createServer(async (req, res) => {
    const pathname = new URL(req.url, "http://page").pathname;
    if (pathname === "/favicon.ico") return res.writeHead(204).end();
    const file = files[pathname];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": file[1], "cache-control": "no-store" });
    res.end(await fs.readFile(file[0]));
  });
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  return { httpServer, origin: `http://127.0.0.1:${httpServer.address().port}` };
}

async function launch() {
  try {
    // Without Playwright's default --disable-popup-blocking, popups need a user gesture,
    // as for a real user.
    return await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      ignoreDefaultArgs: ["--disable-popup-blocking"],
    });
  } catch (error) {
    console.error(`Chromium did not start from ${chromiumPath}: ${error.message}`);
    console.error("Install it (apt-get install -y chromium) or set CHROMIUM_PATH.");
    process.exit(1);
  }
}

// A test hook in the page, not in the SDK: the OAuth sessions started while `__pbHoldPolls`
// is set (named in the SDK's build-oauth call) have every poll answered "pending" in the
// page, so only the callback page's postMessage can finish those installs. Once the install
// has resolved, `__pbReleaseHeld()` hands the polls back to the server, whose answer must
// end the SDK's poll loop without reporting the install again. (Playwright routing is not
// used: it would answer every CORS preflight itself and hide the server's CORS.)
function holdPollsHook() {
  const realFetch = window.fetch.bind(window);
  const held = new Map();
  window.__pbHeldPolls = 0;
  window.__pbReleaseHeld = () => held.clear();
  window.fetch = (input, init = {}) => {
    const url = String(input && input.url ? input.url : input);
    const method = (init.method || "GET").toUpperCase();
    if (window.__pbHoldPolls && url.includes("/sdk/actions/build-oauth?")) {
      held.set(new URL(url).searchParams.get("oauthMetaKeyId"), null);
    }
    const sid = method === "GET" && (url.match(/\/sdk\/actions\/session-id\/([^/?]+)/) || [])[1];
    if (sid && held.has(sid)) {
      window.__pbHeldPolls += 1;
      const done = held.get(sid);
      const body = JSON.stringify(done ? { connectCredentialId: done } : {});
      return Promise.resolve(new Response(body, { status: 200, headers: { "content-type": "application/json" } }));
    }
    return realFetch(input, init);
  };
}

// Loses the popup's opener on Plugboard's callback page, as when a user's browser severs
// it: the page cannot post its message, so only polling can finish an install.
const DROP_OPENER = `if (location.pathname === "/oauth/callback") { window.opener = null; }`;

class Session {
  static async open(browser, origin) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 1100 } });
    const page = await context.newPage();
    const session = new Session(context, page);
    await page.addInitScript(holdPollsHook);
    await page.goto(`${origin}/?server=${encodeURIComponent(server)}`);
    await page.waitForFunction(() => window.paragon && window.render);
    return session;
  }

  constructor(context, page) {
    Object.assign(this, { context, page, log: [], pending: [], foreign: [], errors: [] });
    page.on("request", (request) => {
      const host = new URL(request.url()).hostname;
      if (!["127.0.0.1", "localhost"].includes(host)) this.foreign.push(request.url());
    });
    page.on("response", (response) => this.pending.push(this.describe(response)));
    page.on("requestfailed", (request) => {
      if (request.url().startsWith(server)) {
        this.log.push({ method: request.method(), path: this.pathOf(request.url()), failed: request.failure()?.errorText });
      }
    });
    page.on("pageerror", (error) => this.errors.push(`pageerror: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") this.errors.push(`console: ${message.text()}`);
    });
  }

  pathOf(url) {
    return url.slice(server.length);
  }

  /** One request the page made to Plugboard: method, path, status, and JSON bodies. */
  async describe(response) {
    const request = response.request();
    if (!request.url().startsWith(server)) return;
    const entry = { method: request.method(), path: this.pathOf(request.url()), status: response.status(), type: request.resourceType() };
    this.log.push(entry); // in the order the answers came
    const sent = request.postData();
    if (sent) entry.sent = parseJson(sent);
    if ((response.headers()["content-type"] || "").includes("application/json")) {
      entry.body = await response.json().catch(() => undefined);
    }
  }

  /** What the page asked of Plugboard since the last call. */
  async drain() {
    await Promise.allSettled(this.pending);
    this.pending = [];
    const out = { requests: this.log, foreign: this.foreign, errors: this.errors };
    this.log = [];
    this.foreign = [];
    this.errors = [];
    return out;
  }
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Calls `paragon[method](...args)` in the page; sync throws and rejections alike. */
async function call(session, { method, args = [] }) {
  const outcome = await session.page.evaluate(
    async ({ method, args }) => {
      try {
        const value = await window.paragon[method](...args);
        return { ok: true, value: value === undefined ? null : value };
      } catch (error) {
        return { ok: false, error: String((error && error.message) || error) };
      } finally {
        window.render(`after ${method}`);
      }
    },
    { method, args },
  );
  return outcome;
}

/**
 * installIntegration from a click on the page's Connect button, through the popup: the
 * sandbox's consent page gets an account name and "Allow". `completion` forces one way of
 * finishing: "polling" (the callback page loses its opener) or "postMessage" (polls are
 * held pending in the page); "any" lets both race, as in production.
 */
async function install(session, { integration, options = {}, completion = "any", account = "Sandbox User" }) {
  const { context, page } = session;
  const dropOpener = completion === "polling" ? await context.addInitScript(DROP_OPENER) : null;
  await page.evaluate(
    ({ integration, options, hold }) => {
      Object.assign(window, { pendingInstall: { integration, options }, installOutcome: null, __pbHoldPolls: hold, __pbHeldPolls: 0 });
    },
    { integration, options, hold: completion === "postMessage" },
  );
  const eventsBefore = await page.evaluate(() => window.installEvents.length);
  // Pages the popup went through, with their status, recorded from before it opens.
  const popupPages = [];
  const onNavigation = async (response) => {
    const request = response.request();
    if (request.isNavigationRequest() && !inPage(request, page)) {
      popupPages.push(`${response.status()} ${request.method()} ${request.url().split("?")[0]}`);
    }
  };
  context.on("response", onNavigation);
  // Polling of this install's session (named in its build-oauth call) ends with a DELETE,
  // also when the message won the race.
  let sid = null;
  const onBuild = (request) => {
    if (request.url().includes("/sdk/actions/build-oauth?")) sid = new URL(request.url()).searchParams.get("oauthMetaKeyId");
  };
  page.on("request", onBuild);
  const pollingDone = page.waitForResponse(
    (r) => sid && r.request().method() === "DELETE" && r.url().endsWith(`/sdk/actions/session-id/${sid}`),
    { timeout: 20_000 },
  ).then(() => true, () => false);
  const popupOpened = page.waitForEvent("popup", { timeout: 10_000 });
  await page.click("#install");
  const popup = await popupOpened.catch(() => null);
  let popupClosed = false;
  if (popup) {
    const closed = popup.waitForEvent("close", { timeout: 20_000 }).then(() => true, () => false);
    await popup.waitForSelector('button[value="allow"]', { timeout: 15_000 });
    await popup.fill('input[name="account_name"]', account);
    await popup.click('button[value="allow"]');
    await page.waitForFunction(() => window.installOutcome, null, { timeout: 25_000 });
    popupClosed = await closed;
    await endPolling(page, completion, pollingDone);
  } else {
    await page.waitForFunction(() => window.installOutcome, null, { timeout: 5_000 });
  }
  // Both channels have answered by now; leave a late second report time to show.
  await page.waitForTimeout(INSTALL_SETTLE_MS);
  const outcome = await page.evaluate((eventsBefore) => {
    window.__pbHoldPolls = false;
    window.render("after installIntegration");
    return {
      ...window.installOutcome,
      heldPolls: window.__pbHeldPolls,
      installEvents: window.installEvents.slice(eventsBefore),
    };
  }, eventsBefore);
  outcome.sid = sid;
  context.off("response", onNavigation);
  page.off("request", onBuild);
  if (dropOpener) await dropOpener.dispose();
  return { ...outcome, popupOpened: !!popup, popupClosed, popupPages };
}

/** Waits for the SDK's poll loop to end (its DELETE of the session), so that nothing of
 * this install spills into the next command; a held loop is released first. */
async function endPolling(page, completion, pollingDone) {
  const outcome = await page.evaluate(() => window.installOutcome);
  if (!outcome.ok) return;
  if (completion === "postMessage") {
    // The poll loop has run (held) while the message finished the install; only then
    // do its polls reach the server.
    await page.waitForFunction(() => window.__pbHeldPolls >= 1, null, { timeout: 5_000 });
    await page.evaluate(() => window.__pbReleaseHeld());
  }
  if (!(await pollingDone)) throw new Error("the SDK's polling did not finish");
}

/** Whether a request comes from `page` (a popup's first request has no frame yet). */
function inPage(request, page) {
  try {
    return request.frame().page() === page;
  } catch {
    return false;
  }
}

/**
 * installIntegration called with no user gesture: the popup blocker must stop it.
 * Playwright evaluates as if the user had just clicked, so the activation is spent first
 * on a throwaway popup.
 */
async function installWithoutGesture(session, { integration }) {
  // The SDK asks for the provider URL while it opens the popup: wait for that answer too.
  const built = session.page.waitForResponse((r) => r.url().includes("/build-oauth"), { timeout: 5_000 });
  const outcome = await session.page.evaluate(async (integration) => {
    const spent = window.open("about:blank");
    if (spent) spent.close();
    try {
      await window.paragon.installIntegration(integration, {});
      return { ok: true, value: null };
    } catch (error) {
      return { ok: false, error: String((error && error.message) || error), name: error && error.name };
    }
  }, integration);
  await built.catch(() => null);
  return outcome;
}

async function screenshot(session, { name, status }) {
  await session.page.evaluate((status) => window.render(status), status || name);
  await fs.mkdir(artifacts, { recursive: true });
  const file = path.join(artifacts, `${name}.png`);
  await session.page.screenshot({ path: file, fullPage: true });
  return { ok: true, value: file };
}

async function storage(session) {
  const value = await session.page.evaluate(() => window.localStorage.getItem("paragon-connect-user-state"));
  return { ok: true, value };
}

async function main() {
  const browser = await launch();
  const { httpServer, origin } = await serveStatic();
  const session = await Session.open(browser, origin);
  const ops = {
    call: (args) => call(session, args),
    install: (args) => install(session, args),
    installWithoutGesture: (args) => installWithoutGesture(session, args),
    screenshot: (args) => screenshot(session, args),
    storage: () => storage(session),
  };
  const boot = await session.drain();
  console.log(JSON.stringify({ ready: true, origin, chromium: browser.version(), ...boot }));

  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    let answer;
    const started = Date.now();
    try {
      const run = ops[command.op];
      if (!run) throw new Error(`unknown op ${command.op}`);
      answer = await withTimeout(run(command), `${command.op} ${command.method || ""}`);
    } catch (error) {
      answer = { ok: false, error: `runner: ${error.message}` };
    }
    const ms = Date.now() - started;
    console.log(JSON.stringify({ ...answer, ...(await session.drain()), ms }));
  }
  await browser.close();
  httpServer.close();
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${OP_TIMEOUT_MS} ms`)), OP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
