// The console's webhooks and activity journey, in Chromium against the real binary and a tiny
// receiver on loopback (the instance allows private targets and plain http to 127.0.0.1): an
// endpoint registered — a refused URL first, by its field —, its signing secret shown once; a
// test event sent and its delivery seen succeeding in the log, the receiver checking the
// signature with that secret; an endpoint that answers 500, its failed attempt in the log and
// "retry"; a secret rotated with an overlap; the endpoint changed, turned off, and the other
// deleted; test mode showing its own (no) endpoints; the activity log with the creation, filtered
// by action; the instance admin's activity across workspaces; the low-balance alert set and
// cleared on the billing page; the pages in French. Screenshots at 1280 and 375 px
// (`console5-*.png`).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { text, screenshots, setUp, unlabelled, startJourney } from "./harness.mjs";

/// A receiver of webhook events: `/hook` answers 200, `/fail` 500; every request is kept.
async function receiver() {
  const requests = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      requests.push({ path: request.url, headers: request.headers, body });
      if (request.url === "/fail") {
        response.writeHead(500, { "Content-Type": "text/plain" });
        return response.end("receiver is down for maintenance");
      }
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end('{"received":true}');
    });
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  return { server, base: `http://127.0.0.1:${server.address().port}`, requests };
}

/// Whether `header` (`t=…,v1=…[,v1=…]`) signs `body` with `secret`, as docs/API.md says.
function signs(secret, header, body) {
  const parts = header.split(",").map((item) => item.split("="));
  const stamp = parts.find(([k]) => k === "t")?.[1];
  const expected = createHmac("sha256", secret).update(`${stamp}.${body}`).digest();
  return parts.some(([k, v]) => k === "v1" && v.length === 64 && timingSafeEqual(expected, Buffer.from(v, "hex")));
}

test("webhooks, the activity log and the low-balance alert, in Chromium", { timeout: 120_000 }, async (t) => {
  const hooks = await receiver();
  const { base, page, problems } = await startJourney(
    t,
    { extra: ["--webhook-allow-private", "true", "--webhook-http-hosts", "127.0.0.1"] },
    () => hooks.server.close(),
  );
  page.on("dialog", (dialog) => dialog.accept());
  const shoot = screenshots(page, "console5", { narrow: true });
  let secret = null;
  let endpointId = null;

  await t.test("setup, then an endpoint registered: a refused URL, then its secret shown once", async () => {
    await setUp(page, base);
    await page.click('#nav a[href="#/webhooks"]');
    await page.waitForSelector("#webhook-form");
    assert.match(await page.textContent("#webhook-list"), /No endpoints yet/);
    assert.match(await page.textContent("#webhooks-mode"), /Live endpoints/);
    assert.deepEqual(await unlabelled(page), []);
    await page.fill("#webhook-form [name=url]", "ftp://127.0.0.1/hook");
    await page.check('#webhook-form input[name=events][value="message.delivered"]');
    await page.click("#webhook-form button[type=submit]");
    await page.waitForSelector('#webhook-form [data-field="url"] .field-error:not([hidden])');
    await page.fill("#webhook-form [name=url]", `${hooks.base}/hook`);
    await page.fill("#webhook-form [name=description]", "shop backend");
    await page.click("#webhook-form button[type=submit]");
    await page.waitForSelector("#webhook-secret");
    secret = await page.inputValue("#webhook-secret");
    assert.match(secret, /^whsec_/);
    assert.match(await page.textContent("#new-secret"), /you will not see it again/);
    assert.match(await text(page, "#endpoints tbody"), /\/hook.*shop backend.*message\.delivered.*on/);
    await shoot("webhooks-created");
    // Shown once: the page drawn again has no secret.
    await page.click('#nav a[href="#/overview"]');
    await page.waitForSelector("#checklist");
    await page.click('#nav a[href="#/webhooks"]');
    await page.waitForSelector("#endpoints");
    assert.equal(await page.$("#webhook-secret"), null);
  });

  await t.test("a test event: its delivery succeeds in the log, signed with the secret", async () => {
    await page.click("#endpoints tbody a");
    await page.waitForSelector("#send-test");
    endpointId = await page.evaluate(() => decodeURIComponent(location.hash.split("/")[2]));
    assert.match(endpointId, /^whe_/);
    assert.match(await page.textContent("#deliveries-list"), /No deliveries yet/);
    assert.deepEqual(await unlabelled(page), []);
    await page.click("#send-test");
    await page.waitForSelector('#deliveries tr[data-status="succeeded"]');
    const cells = await page.$$eval('#deliveries tr[data-status="succeeded"] td', (tds) => tds.map((td) => td.textContent.replace(/\s/g, " ")));
    assert.equal(cells[1], "webhook.test");
    assert.equal(cells[2], "succeeded");
    assert.equal(cells[3], "1");
    assert.equal(cells[4], "200");
    assert.match(cells[5], /^\d+ ms$/);
    assert.equal(cells[6], '{"received":true}');
    const sent = hooks.requests.filter((request) => request.path === "/hook");
    assert.equal(sent.length, 1);
    assert.equal(sent[0].headers["crier-event-type"], "webhook.test");
    assert.ok(signs(secret, sent[0].headers["crier-signature"], sent[0].body), "signed with the secret shown");
    await shoot("endpoint");
  });

  await t.test("an endpoint that answers 500: its failure in the log, then retried", async () => {
    await page.click('#nav a[href="#/webhooks"]');
    await page.waitForSelector("#webhook-form");
    await page.fill("#webhook-form [name=url]", `${hooks.base}/fail`);
    await page.check("#webhook-form input[name=all_events]");
    await page.click("#webhook-form button[type=submit]");
    await page.waitForSelector("#new-endpoint-link");
    await page.click("#new-endpoint-link");
    await page.waitForSelector("#send-test");
    await page.click("#send-test");
    await page.waitForSelector("#deliveries button[data-retry]");
    const cells = await page.$$eval("#deliveries tbody tr:first-child td", (tds) => tds.map((td) => td.textContent.replace(/\s/g, " ")));
    assert.equal(cells[2], "pending");
    assert.equal(cells[4], "500");
    assert.match(cells[6], /500|receiver is down/);
    assert.notEqual(cells[7], "—", "the next attempt is shown");
    await page.click("#deliveries button[data-retry]");
    await page.waitForFunction(() => document.querySelector("#deliveries tbody tr:first-child td:nth-child(4)")?.textContent === "2");
    assert.equal(hooks.requests.filter((request) => request.path === "/fail").length, 2);
    // Deleted, after a confirmation: back on the list, which no longer has it.
    await page.click("#delete-endpoint");
    await page.waitForURL(/#\/webhooks$/);
    await page.waitForSelector("#endpoints");
    assert.equal(await page.locator("#endpoints tbody tr").count(), 1);
  });

  await t.test("the secret rotated with an hour's overlap, the endpoint changed, then turned off", async () => {
    await page.click("#endpoints tbody a");
    await page.waitForSelector("#rotate-secret");
    await page.selectOption("#overlap", "3600");
    await page.click("#rotate-secret");
    await page.waitForSelector("#webhook-secret");
    const rotated = await page.inputValue("#webhook-secret");
    assert.match(rotated, /^whsec_/);
    assert.notEqual(rotated, secret);
    assert.match(await page.textContent("#endpoint-summary"), /still signs too until/);
    await page.fill("#edit-form [name=description]", "shop backend (eu)");
    await page.check('#edit-form input[name=events][value="message.failed"]');
    await page.click("#edit-form button[type=submit]");
    await page.waitForSelector("#edit-saved:not([hidden])");
    assert.match(await text(page, "#endpoint-summary"), /shop backend \(eu\).*message\.delivered, message\.failed/);
    await page.click("#toggle-endpoint");
    await page.waitForFunction(() => document.querySelector("#endpoint-state")?.textContent === "off");
    assert.equal(await page.isDisabled("#send-test"), true);
    assert.equal(await page.textContent("#toggle-endpoint"), "Turn on");
  });

  await t.test("test mode shows its own endpoints: none", async () => {
    await page.click('#nav a[href="#/webhooks"]');
    await page.waitForSelector("#endpoints");
    await page.click("#mode-switcher");
    await page.waitForFunction(() => /Test endpoints/.test(document.querySelector("#webhooks-mode")?.textContent ?? ""));
    assert.match(await page.textContent("#webhook-list"), /No endpoints yet/);
    await page.click("#mode-switcher");
    await page.waitForFunction(() => /Live endpoints/.test(document.querySelector("#webhooks-mode")?.textContent ?? ""));
    await page.waitForSelector("#endpoints");
    assert.match(await text(page, "#endpoints tbody"), /off/);
    await shoot("webhooks");
  });

  await t.test("the activity log: the endpoint's creation, filtered by action", async () => {
    await page.click('#nav a[href="#/activity"]');
    await page.waitForSelector("#activity-table");
    const actions = await page.$$eval("#activity-table tbody tr", (rows) => rows.map((row) => row.dataset.action));
    assert.ok(actions.includes("webhook_endpoint.created"), actions.join(" "));
    assert.ok(actions.includes("instance.set_up"), actions.join(" "));
    assert.deepEqual(await unlabelled(page), []);
    await page.selectOption("#activity-filters [name=action]", "webhook_endpoint.created");
    await page.click("#activity-filters button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#activity-table tbody tr").length === 2);
    const rows = await page.$$eval("#activity-table tbody tr", (trs) => trs.map((tr) => tr.textContent.replace(/\s/g, " ")));
    for (const row of rows) assert.match(row, /webhook_endpoint\.created.*whe_.*events: message\./);
    // The actor is named, and the target is the endpoint's page.
    assert.match(rows[1], /userAwa Ndiaye/);
    assert.equal(await page.getAttribute("#activity-table tbody tr:last-child a", "href"), `#/webhooks/${endpointId}`);
    await shoot("activity");
    // The instance admin sees it too, across workspaces.
    await page.click('#nav a[href="#/admin"]');
    await page.waitForSelector("#admin-activity-table");
    assert.match(await page.textContent("#admin-activity-table"), /webhook_endpoint\.created/);
  });

  await t.test("the low-balance alert set, then cleared, on the billing page", async () => {
    await page.click('#nav a[href="#/billing"]');
    await page.waitForSelector("#low-balance-form");
    assert.equal(await page.textContent("#low-balance-status"), "No alert is set.");
    assert.equal(await page.isVisible("#clear-low-balance"), false);
    await page.fill("#low-balance-form [name=threshold_minor]", "0");
    await page.click("#low-balance-form button[type=submit]");
    await page.waitForSelector('#low-balance-form [data-field="threshold_minor"] .field-error:not([hidden])');
    await page.fill("#low-balance-form [name=threshold_minor]", "5000");
    await page.click("#low-balance-form button[type=submit]");
    await page.waitForFunction(() => /below XAF\s5,000/.test(document.querySelector("#low-balance-status")?.textContent ?? ""));
    const billing = await page.evaluate(async () => (await fetch("/v1/billing")).json());
    assert.deepEqual(billing.wallet.low_balance_threshold, { amount_minor: 5000, currency: "XAF" });
    await shoot("billing-alert");
    await page.click("#clear-low-balance");
    await page.waitForFunction(() => document.querySelector("#low-balance-status")?.textContent === "No alert is set.");
    const after = await page.evaluate(async () => (await fetch("/v1/billing")).json());
    assert.equal(after.wallet.low_balance_threshold, null);
  });

  await t.test("the pages in French", async () => {
    await page.selectOption("#language-switcher", "fr");
    await page.click('#nav a[href="#/webhooks"]');
    await page.waitForFunction(() => document.querySelector("#webhooks-mode")?.textContent.startsWith("Points de terminaison réels"));
    assert.match(await page.textContent("#endpoints thead"), /État/);
    assert.match(await text(page, "#endpoints tbody"), /désactivé/);
    await page.click('#nav a[href="#/activity"]');
    await page.waitForSelector("#activity-table");
    assert.match(await page.textContent("#activity-table thead"), /Identifiant de requête/);
    await shoot("activity-fr");
    await page.selectOption("#language-switcher", "en");
  });

  // Chromium logs every 4xx answer to a fetch: the one asked for on purpose is the refused URL
  // (422). Anything else is a bug.
  const failedLoad = (status) => `error: Failed to load resource: the server responded with a status of ${status}`;
  assert.deepEqual(
    problems.map((line) => line.replace(/ \(.*\)$/, "")),
    [failedLoad(422)],
    "console errors",
  );
});
