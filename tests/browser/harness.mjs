// What the browser journeys share: the real `crier` binary started on a free port with a fresh
// data directory, and Debian's headless Chromium driven by playwright-core.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

export const ROOT = resolve(import.meta.dirname, "../..");
export const BINARY = process.env.CRIER_BINARY || join(ROOT, "target/debug/crier");
export const SHOTS = process.env.CONSOLE_SCREENSHOTS || join(ROOT, "target/console-screenshots");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/// An element's text with every kind of space (Intl puts no-break ones in amounts) as " ".
export async function text(page, selector) {
  return (await page.textContent(selector)).replace(/\s/g, " ");
}

export const EXPECTED_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Starts `crier serve` on `addr` (a free port by default) with `extra` flags, and resolves with
/// its address from the "listening" line.
export function startCrier(dataDir, { addr = "127.0.0.1:0", extra = [] } = {}) {
  const child = spawn(
    BINARY,
    [
      "serve",
      "--addr", addr,
      "--data-dir", dataDir,
      "--log-format", "json",
      "--log-level", "info",
      // The minimum cost: the test logs in three times, in a debug build.
      "--password-iterations", "100000",
      ...extra,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const lines = [];
  const address = new Promise((resolveAddress, reject) => {
    const reader = createInterface({ input: child.stderr });
    reader.on("line", (line) => {
      lines.push(line);
      try {
        const entry = JSON.parse(line);
        if (entry.msg === "listening") resolveAddress(entry.addr);
      } catch (err) {
        // Not a JSON line: kept for the failure message.
      }
    });
    child.on("exit", (code) => reject(new Error(`crier exited (${code}) before listening:\n${lines.join("\n")}`)));
  });
  return { child, address, lines };
}

/// A fresh Chromium profile under `work`, 1280×900, British English, Douala's time zone.
export async function launchBrowser(work) {
  return await chromium.launchPersistentContext(join(work, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
    locale: "en-GB",
    timezoneId: "Africa/Douala",
  });
}

/// The browser's first page, with the console errors, warnings and page errors it will show
/// collected in `problems` (each journey compares them with the ones it provokes on purpose).
export async function openPage(context) {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15_000);
  const problems = [];
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(`${message.type()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return { page, problems };
}

/// Saves the page at 1280 and 375 px as `SHOTS/<prefix>-<name>-<width>.png`; with `narrow`, also
/// checks that no page is wider than the screen.
export function screenshots(page, prefix, { narrow = false } = {}) {
  return async (name) => {
    for (const width of [1280, 375]) {
      await page.setViewportSize({ width, height: width === 375 ? 812 : 900 });
      await page.screenshot({ path: join(SHOTS, `${prefix}-${name}-${width}.png`), fullPage: true });
      if (narrow) {
        const wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
        if (wide) throw new Error(`${name} is wider than ${width} px`);
      }
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  };
}

/// The visible controls of the page's main part without a label (their own, or aria-label).
export function unlabelled(page) {
  return page.$$eval("main input, main select, main textarea", (controls) =>
    controls
      .filter((c) => c.type !== "hidden" && c.offsetParent !== null)
      .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label"))
      .map((c) => c.name || c.id || c.outerHTML.slice(0, 60)),
  );
}

/// First-run setup through the form (Awa Ndiaye, owner of Boutique Awa), ending on the overview.
export async function setUp(page, base) {
  await page.goto(base + "/");
  await page.waitForSelector("#setup-form");
  await page.fill("#setup-form [name=name]", "Awa Ndiaye");
  await page.fill("#setup-form [name=email]", "awa@example.cm");
  await page.fill("#setup-form [name=password]", "correct horse battery staple");
  await page.fill("#setup-form [name=workspace_name]", "Boutique Awa");
  await page.click("#setup-form button[type=submit]");
  await page.waitForSelector("#checklist");
}

/// One journey's world: a fresh directory, `crier serve` in it (`options` as `startCrier` takes
/// them), a fresh Chromium and its page. One hook on `t` tears it down in order: the browser
/// first, then the server and `cleanup`, then the directory (removing the profile while
/// Chromium still wrote there failed once with ENOTEMPTY).
export async function startJourney(t, options = {}, cleanup = () => {}) {
  const work = mkdtempSync(join(tmpdir(), "crier-browser-"));
  mkdirSync(SHOTS, { recursive: true });
  const server = startCrier(join(work, "data"), options);
  let context = null;
  t.after(async () => {
    if (context) await context.close();
    server.child.kill("SIGTERM");
    await cleanup();
    rmSync(work, { recursive: true, force: true });
  });
  const base = `http://${await server.address}`;
  context = await launchBrowser(work);
  const { page, problems } = await openPage(context);
  return { base, page, problems };
}
