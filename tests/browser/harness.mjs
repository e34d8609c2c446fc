// What the browser journeys share: the real `crier` binary started on a free port with a fresh
// data directory, and Debian's headless Chromium driven by playwright-core.

import { spawn } from "node:child_process";
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
