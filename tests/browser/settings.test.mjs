// The console's sending domains and provider accounts journey, in Chromium against the real
// binary and a tiny SMS gateway on loopback (the instance allows private targets and plain http
// to 127.0.0.1): from settings, a domain added — a refused name first, by its field —, its DKIM
// record shown to copy, waiting for an instance admin; approved on the admin page by the setup
// user; a From refused at another domain, then set and cleared; another domain rejected with a
// reason, which its card shows, then deleted after a confirmation. A webhook-provider account
// added — a refused URL first, by its field —, its secret shown only as "…last4", replaced, the
// receipts and inbound URLs to copy; turned off and deleted. Test mode saying both are live
// only; the pages in French. Screenshots at 1280 and 375 px (`console6-*.png`).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { text, screenshots, setUp, unlabelled, startJourney } from "./harness.mjs";

/// A gateway the webhook provider may post SMS to: answers 200, keeps every request.
async function gateway() {
  const requests = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      requests.push({ path: request.url, body });
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end('{"id":"gw-1"}');
    });
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  return { server, base: `http://127.0.0.1:${server.address().port}`, requests };
}

const SECRET = "gateway-signing-secret-7f3a";
const NEW_SECRET = "gateway-signing-secret-9c1e";

test("sending domains and provider accounts from settings, in Chromium", { timeout: 120_000 }, async (t) => {
  const sms = await gateway();
  const { base, page, problems } = await startJourney(
    t,
    { extra: ["--webhook-allow-private", "true", "--webhook-http-hosts", "127.0.0.1"] },
    () => sms.server.close(),
  );
  page.on("dialog", (dialog) => dialog.accept());
  const shoot = screenshots(page, "console6", { narrow: true });

  await t.test("a domain added from settings: a refused name, then its record, pending", async () => {
    await setUp(page, base);
    await page.click('#nav a[href="#/settings"]');
    await page.waitForSelector("#sending-links");
    await shoot("settings");
    await page.click("#domains-link");
    await page.waitForSelector("#domain-form");
    assert.equal(await page.getAttribute('#nav a[href="#/settings"]', "aria-current"), "page");
    assert.match(await page.textContent("#domain-list"), /No sending domains yet/);
    assert.match(await page.textContent("#domain-form"), /RSA 2048/);
    assert.deepEqual(await unlabelled(page), []);
    await page.fill("#domain-form [name=domain]", "not a domain");
    await page.click("#domain-form button[type=submit]");
    await page.waitForSelector('#domain-form [data-field="domain"] .field-error:not([hidden])');
    await page.fill("#domain-form [name=domain]", "mail.boutique.example");
    await page.fill("#domain-form [name=selector]", "shop2026");
    await page.click("#domain-form button[type=submit]");
    await page.waitForSelector('.card.domain[data-status="pending"]');
    const card = await text(page, ".card.domain");
    assert.match(card, /mail\.boutique\.example\s*pending/);
    assert.match(card, /Waiting for an instance admin/);
    assert.equal(await page.inputValue('.card.domain input[id^="record-name-"]'), "shop2026._domainkey.mail.boutique.example");
    assert.match(await page.inputValue('.card.domain input[id^="record-value-"]'), /^v=DKIM1; k=ed25519; p=\S+$/);
    assert.equal(await text(page, ".card.domain .record-type"), "TXT");
    assert.equal(await page.$(".card.domain .from-form"), null, "no From before approval");
    assert.deepEqual(await unlabelled(page), []);
    await shoot("domains-pending");
  });

  await t.test("approved by the instance admin, then a From refused, set and cleared", async () => {
    await page.click('#nav a[href="#/admin"]');
    await page.waitForSelector("#domain-requests");
    assert.match(await text(page, "#domain-requests"), /mail\.boutique\.example/);
    await page.click("#domain-requests .decision button.primary");
    await page.waitForSelector("#admin-domains .empty");
    await page.click('#nav a[href="#/settings"]');
    await page.click("#domains-link");
    await page.waitForSelector('.card.domain[data-status="active"]');
    assert.match(await text(page, ".card.domain"), /Active\. Set a From mailbox/);
    await page.fill(".from-form [name=from]", "Boutique <news@elsewhere.example>");
    await page.click(".from-form button[type=submit]");
    await page.waitForSelector('.from-form [data-field="from"] .field-error:not([hidden])');
    await page.fill(".from-form [name=from]", "Boutique Awa <news@mail.boutique.example>");
    await page.click(".from-form button[type=submit]");
    await page.waitForSelector(".card.domain .clear-from");
    assert.match(await text(page, ".card.domain .state-text"), /From Boutique Awa <news@mail\.boutique\.example>/);
    const from = await page.evaluate(async () => (await (await fetch("/v1/sending-domains")).json()).data[0].from);
    assert.equal(from, "Boutique Awa <news@mail.boutique.example>");
    await shoot("domains-active");
    await page.click(".card.domain .clear-from");
    await page.waitForFunction(() => !document.querySelector(".card.domain .clear-from"));
    assert.match(await text(page, ".card.domain .state-text"), /Set a From mailbox/);
  });

  await t.test("another domain rejected with a reason, shown on its card, then deleted", async () => {
    await page.fill("#domain-form [name=domain]", "news.other.example");
    await page.click("#domain-form button[type=submit]");
    await page.waitForSelector('.card.domain[data-status="pending"]');
    await page.click('#nav a[href="#/admin"]');
    await page.waitForSelector("#domain-requests");
    await page.fill("#domain-requests .decision input", "this domain is not yours");
    await page.click("#domain-requests .decision button.danger");
    await page.waitForSelector("#admin-domains .empty");
    await page.click('#nav a[href="#/settings"]');
    await page.click("#domains-link");
    await page.waitForSelector('.card.domain[data-status="rejected"]');
    assert.match(await text(page, '.card.domain[data-status="rejected"]'), /news\.other\.example\s*rejected.*rejected this domain.*:\s*this domain is not yours/);
    assert.equal(await page.$('.card.domain[data-status="rejected"] .record'), null, "no record to publish");
    await shoot("domains-rejected");
    await page.click('.card.domain[data-status="rejected"] .delete-domain');
    await page.waitForFunction(() => document.querySelectorAll(".card.domain").length === 1);
    assert.ok(await page.$('.card.domain[data-status="active"]'));
  });

  let accountId = null;
  await t.test("a webhook-provider account: a refused URL by its field, then its secret only as …last4", async () => {
    await page.click('#nav a[href="#/settings"]');
    await page.click("#providers-link");
    await page.waitForSelector("#provider-form");
    assert.match(await page.textContent("#provider-list"), /No accounts/);
    // The fields follow the provider: Twilio's first, the webhook's once chosen.
    assert.ok(await page.$('#provider-form [name="settings.account_sid"]'));
    await page.selectOption("#provider-choice", "webhook");
    assert.equal(await page.$('#provider-form [name="settings.account_sid"]'), null);
    assert.deepEqual(await unlabelled(page), []);
    await page.fill('#provider-form [name="settings.url"]', "ftp://127.0.0.1/sms");
    await page.fill('#provider-form [name="secrets.secret"]', SECRET);
    await page.click("#provider-form button[type=submit]");
    await page.waitForSelector('#provider-form [data-field="settings.url"] .field-error:not([hidden])');
    assert.equal(await page.getAttribute('#provider-form [name="settings.url"]', "aria-invalid"), "true");
    await shoot("providers-refused");
    await page.fill('#provider-form [name="settings.url"]', `${sms.base}/sms`);
    await page.fill("#provider-form [name=priority]", "5");
    await page.fill("#provider-form [name=description]", "our own gateway");
    await page.click("#provider-form button[type=submit]");
    await page.waitForSelector("#account-summary");
    accountId = await page.evaluate(() => decodeURIComponent(location.hash.split("/")[2]));
    assert.match(accountId, /^pac_/);
    assert.match(await text(page, "#account-summary"), /Webhook \(your own gateway\).*SMS.*active.*5.*our own gateway/);
    assert.equal(await text(page, "#account-secrets"), "secret …7f3a");
    assert.ok(!(await page.content()).includes(SECRET), "the secret itself is never on the page");
    assert.equal(await page.inputValue('#account-form [name="secrets.secret"]'), "");
    assert.match(await page.textContent("#account-form"), /Set \(…7f3a\)/);
    assert.match(await page.inputValue("#receipts-url"), new RegExp(`/v1/webhooks/sms/webhook/accounts/${accountId}\\?token=`));
    assert.match(await page.inputValue("#inbound-url"), new RegExp(`/accounts/${accountId}/inbound\\?token=`));
    assert.deepEqual(await unlabelled(page), []);
    await shoot("provider");
  });

  await t.test("the secret replaced, the account turned off, then deleted", async () => {
    const receipts = await page.inputValue("#receipts-url");
    await page.fill('#account-form [name="secrets.secret"]', NEW_SECRET);
    await page.click("#account-form button[type=submit]");
    await page.waitForSelector("#account-saved:not([hidden])");
    assert.equal(await text(page, "#account-secrets"), "secret …9c1e");
    assert.notEqual(await page.inputValue("#receipts-url"), receipts, "the receipts token follows the secret");
    await page.click("#toggle-account");
    await page.waitForFunction(() => document.querySelector("#account-status")?.textContent === "off");
    await page.click('a[href="#/providers"]');
    await page.waitForSelector("#accounts");
    assert.match(await text(page, "#accounts tbody"), /Webhook \(your own gateway\).*our own gateway.*SMS.*5.*off.*secret …9c1e/);
    await shoot("providers");
    await page.click("#accounts tbody a");
    await page.waitForSelector("#delete-account");
    await page.click("#delete-account");
    await page.waitForURL(/#\/providers$/);
    await page.waitForSelector("#provider-list .empty");
  });

  await t.test("test mode says both are live only", async () => {
    await page.click("#mode-switcher");
    await page.waitForSelector("#providers-test-mode");
    assert.match(await page.textContent("#providers-test-mode"), /live only/);
    await page.click('#nav a[href="#/settings"]');
    await page.click("#domains-link");
    await page.waitForSelector("#domains-test-mode");
    assert.match(await page.textContent("#domains-test-mode"), /live mode only/);
    await page.click("#mode-switcher");
    await page.waitForSelector('.card.domain[data-status="active"]');
  });

  await t.test("both pages in French", async () => {
    await page.selectOption("#language-switcher", "fr");
    await page.waitForFunction(() => document.querySelector("#page-title")?.textContent === "Domaines d’envoi");
    await page.waitForSelector('.card.domain[data-status="active"]');
    assert.match(await text(page, ".card.domain"), /actif.*Enregistrement DNS à publier/);
    await shoot("domains-fr");
    await page.click('#nav a[href="#/settings"]');
    await page.waitForSelector("#sending-links");
    assert.match(await text(page, "#sending-links"), /Domaines d’envoi.*Comptes de fournisseurs/);
    await page.click("#providers-link");
    await page.waitForSelector("#provider-form");
    await page.selectOption("#provider-choice", "smtp");
    assert.match(await text(page, "#provider-fields"), /Hôte.*Port \(facultatif\).*Sécurité.*Mot de passe/);
    await shoot("providers-fr");
    await page.selectOption("#language-switcher", "en");
  });

  // Chromium logs every 4xx answer to a fetch: the three asked for on purpose are the refused
  // domain, From and URL (422).
  const failedLoad = (status) => `error: Failed to load resource: the server responded with a status of ${status}`;
  assert.deepEqual(
    problems.map((line) => line.replace(/ \(.*\)$/, "")),
    [failedLoad(422), failedLoad(422), failedLoad(422)],
    "console errors",
  );
});
