// The console's third journey, in Chromium against the real binary: the billing page with the
// plan and the balance; a plan bought through a fake Flutterwave on loopback, then another plan
// refused while it runs (the refusal shown by that plan); a wallet adjustment made on the
// instance admin page and its ledger row; a top-up with the amount picker, paid on the fake and
// back through the return page to a credited wallet; a sender ID requested in settings and
// approved on the admin page; an invitation created and revoked; an API key rotated with a
// grace period; the ledger page after page and the billing page in French; an invitation link
// opened signed out, logged into and come back to, then accepted by a new account; the payment
// return link opened signed out, logged into and come back to. Screenshots at 1280 and 375 px
// (`console3-*.png`).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { text, screenshots, setUp, unlabelled, startJourney } from "./harness.mjs";

/// A free loopback port: crier must know its own address up front (the return URL it gives the
/// provider), so the port is found here and handed to `--addr`.
async function freePort() {
  const probe = createServer();
  await new Promise((done) => probe.listen(0, "127.0.0.1", done));
  const { port } = probe.address();
  await new Promise((done) => probe.close(done));
  return port;
}

/// Flutterwave's three calls crier makes, answered from memory: create a checkout (its page
/// sends the payer straight back, paid), and verify by reference or by transaction id.
async function fakeFlutterwave() {
  const payments = new Map();
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const url = new URL(request.url, "http://127.0.0.1");
      const json = (status, value) => {
        response.writeHead(status, { "Content-Type": "application/json" });
        response.end(JSON.stringify(value));
      };
      if (request.method === "POST" && url.pathname === "/v3/payments") {
        const checkout = JSON.parse(body);
        const id = String(4200 + payments.size);
        payments.set(checkout.tx_ref, { ...checkout, id });
        return json(200, { status: "success", data: { link: `${base}/checkout/${checkout.tx_ref}` } });
      }
      const page = url.pathname.match(/^\/checkout\/(.+)$/);
      if (page && payments.has(page[1])) {
        const payment = payments.get(page[1]);
        const back = new URL(payment.redirect_url);
        back.searchParams.set("status", "successful");
        back.searchParams.set("tx_ref", payment.tx_ref);
        back.searchParams.set("transaction_id", payment.id);
        response.writeHead(302, { Location: back.toString() });
        return response.end();
      }
      const byId = url.pathname.match(/^\/v3\/transactions\/(\d+)\/verify$/);
      const payment = byId
        ? [...payments.values()].find((candidate) => candidate.id === byId[1])
        : url.pathname === "/v3/transactions/verify_by_reference" && payments.get(url.searchParams.get("tx_ref"));
      if (payment) {
        return json(200, {
          status: "success",
          data: { id: Number(payment.id), tx_ref: payment.tx_ref, status: "successful", amount: payment.amount, currency: payment.currency },
        });
      }
      json(404, { status: "error", message: "No transaction was found for this id" });
    });
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { server, base, payments };
}

test("billing, settings and instance admin, in Chromium", { timeout: 110_000 }, async (t) => {
  const flutterwave = await fakeFlutterwave();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const journey = await startJourney(t, {
    addr: `127.0.0.1:${port}`,
    extra: [
      "--public-url", base,
      "--payment-providers", "flutterwave",
      "--flutterwave-base-url", flutterwave.base,
      "--flutterwave-secret-key", "FLWSECK_TEST-browser",
    ],
  }, () => flutterwave.server.close());
  assert.equal(journey.base, base);
  const { page, problems } = journey;
  page.on("dialog", (dialog) => dialog.accept());
  const shoot = screenshots(page, "console3", { narrow: true });

  await t.test("setup, then the billing page: the plan and an empty wallet", async () => {
    await setUp(page, base);
    await page.click('#nav a[href="#/billing"]');
    await page.waitForSelector("#plans");
    assert.equal(await text(page, "#billing-balance"), "XAF 0");
    assert.equal(await page.textContent("#billing-plan"), "Free");
    assert.ok(await page.isVisible('.plan[data-code="growth"] button'));
    assert.deepEqual(await unlabelled(page), []);
  });

  await t.test("a plan bought through the provider's checkout, then another refused while it runs", async () => {
    await page.click('.plan[data-code="basic"] button');
    // The fake checkout sends the payer back to /billing/return, which is the console's page of
    // that payment, verified with the provider as it opens.
    await page.waitForURL(/\/#\/payment\/pay_/);
    await page.waitForFunction(() => document.querySelector("#payment-status")?.textContent === "paid");
    await page.click('#nav a[href="#/billing"]');
    await page.waitForSelector("#plans");
    assert.equal(await page.textContent("#billing-plan"), "Basic");
    assert.equal(await page.textContent('.plan[data-code="basic"] button'), "Extend by a month");
    // Another plan while Basic runs: 409, said by that plan's card.
    await page.click('.plan[data-code="growth"] button');
    await page.waitForSelector('.plan[data-code="growth"] .form-error:not([hidden])');
    assert.match(await page.textContent('.plan[data-code="growth"] .form-error'), /plan/i);
  });

  await t.test("a wallet adjustment on the admin page, then its ledger row", async () => {
    await page.click('#nav a[href="#/admin"]');
    // The adjustment opens under the workspace's row of the list of every workspace.
    await page.click('#workspaces button[data-action="adjust"]');
    await page.waitForSelector("#adjust-form");
    // A decimal is refused by the field, never sent cut down to a whole number.
    await page.fill("#adjust-form [name=amount_minor]", "2500.75");
    await page.fill("#adjust-form [name=reason]", "decimal");
    await page.click("#adjust-form button[type=submit]");
    await page.waitForSelector('#adjust-form [data-field="amount_minor"] .field-error:not([hidden])');
    await page.fill("#adjust-form [name=reason]", "");
    // A reason is required: the API's message by the field.
    await page.fill("#adjust-form [name=amount_minor]", "20000");
    await page.click("#adjust-form button[type=submit]");
    await page.waitForSelector('#adjust-form [data-field="reason"] .field-error:not([hidden])');
    await page.fill("#adjust-form [name=reason]", "Opening credit");
    await page.click("#adjust-form button[type=submit]");
    await page.waitForSelector("#adjust-result:not(:empty)");
    assert.match(await text(page, "#adjust-result"), /XAF 20,000/);
    await page.waitForFunction(() => /XAF\s20,000/.test(document.querySelector("#workspaces tbody tr[data-id] td.num")?.textContent));
    assert.deepEqual(await unlabelled(page), []);
    await page.click('#nav a[href="#/billing"]');
    await page.waitForSelector("#ledger-table");
    assert.equal(await text(page, "#billing-balance"), "XAF 20,000");
    const first = await page.$$eval("#ledger-table tbody tr:first-child td", (cells) => cells.map((cell) => cell.textContent.replace(/\s/g, " ")));
    assert.deepEqual(first.slice(1), ["adjustment", "XAF 20,000", "XAF 20,000", "Opening credit"]);
  });

  await t.test("a top-up: the amount picker, the provider's page, back to a credited wallet", async () => {
    await page.check('#topup-form input[name=amount_choice][value="other"]');
    // Typed in XAF, which has no minor unit: a decimal is refused by the field.
    await page.fill("#topup-form [name=amount_minor]", "7500.5");
    await page.click("#topup-form button[type=submit]");
    await page.waitForFunction(() => /whole amount in XAF/.test(document.querySelector('#topup-form [data-field="amount_minor"] .field-error')?.textContent));
    // Under the minimum: said in XAF, before any request.
    await page.fill("#topup-form [name=amount_minor]", "100");
    await page.click("#topup-form button[type=submit]");
    await page.waitForFunction(() => /The least you can top up is XAF/.test(document.querySelector('#topup-form [data-field="amount_minor"] .field-error')?.textContent));
    await page.fill("#topup-form [name=amount_minor]", "7500");
    await page.click("#topup-form button[type=submit]");
    await page.waitForURL(/\/#\/payment\/pay_/);
    await page.waitForFunction(() => document.querySelector("#payment-status")?.textContent === "paid");
    await page.click('#nav a[href="#/billing"]');
    await page.waitForSelector("#payments");
    assert.equal(await text(page, "#billing-balance"), "XAF 27,500");
    const statuses = await page.$$eval("#payments tbody tr td:nth-child(4)", (cells) => cells.map((cell) => cell.textContent));
    assert.deepEqual(statuses, ["paid", "paid"]);
    await shoot("billing");
    await page.click("#payments tbody tr:first-child a");
    await page.waitForSelector("#payment-status");
    assert.equal(await page.textContent("#payment-status"), "paid");
    assert.match(await page.textContent("#payment-outcome"), /Payment confirmed/);
    await page.click("#verify");
    await page.waitForSelector("#verification-note");
    await shoot("payment");
  });

  await t.test("the return link opened signed out: log in, then that payment's page", async () => {
    const payment = await page.evaluate(() => decodeURIComponent(location.hash.split("/")[2]));
    assert.match(payment, /^pay_/);
    await page.click("#logout");
    await page.waitForSelector("#login-form");
    await page.goto(`${base}/billing/return?session=${encodeURIComponent(payment)}`);
    await page.waitForSelector("#login-form");
    assert.equal(await page.evaluate(() => location.hash), `#/login/${encodeURIComponent(`payment/${payment}`)}`);
    await page.fill("#login-form [name=email]", "awa@example.cm");
    await page.fill("#login-form [name=password]", "correct horse battery staple");
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#payment-status");
    assert.equal(await page.evaluate(() => location.hash), `#/payment/${payment}`);
    assert.equal(await page.textContent("#payment-status"), "paid");
    // A login link naming somewhere else than a console page is not followed.
    await page.click("#logout");
    await page.waitForSelector("#login-form");
    await page.goto(`${base}/#/login/${encodeURIComponent("//evil.example/x")}`);
    await page.fill("#login-form [name=email]", "awa@example.cm");
    await page.fill("#login-form [name=password]", "correct horse battery staple");
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#checklist");
    assert.equal(await page.evaluate(() => location.origin + location.pathname + location.hash), `${base}/#/overview`);
  });

  await t.test("a sender ID requested in settings, approved on the admin page", async () => {
    await page.click('#nav a[href="#/settings"]');
    await page.waitForSelector("#sender-form");
    await page.fill("#sender-form [name=sender_id]", "A!");
    await page.click("#sender-form button[type=submit]");
    await page.waitForSelector('#sender-form [data-field="sender_id"] .field-error:not([hidden])');
    await page.fill("#sender-form [name=sender_id]", "Awa Shop");
    await page.click("#sender-form button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#sender-status")?.textContent.includes("AWA SHOP"));
    assert.match(await page.textContent("#sender-status"), /pending review/);
    assert.deepEqual(await unlabelled(page), []);
    await page.click('#nav a[href="#/admin"]');
    await page.waitForSelector("#sender-requests");
    assert.match(await page.textContent("#sender-requests"), /AWA SHOP/);
    await shoot("admin");
    // A rejection without a reason is refused, and the message says what is missing.
    await page.click("#sender-requests .decision button.danger");
    await page.waitForSelector("#sender-requests .decision .form-error:not([hidden])");
    assert.match(await page.textContent("#sender-requests .decision .form-error"), /^Reason: /);
    await page.click("#sender-requests .decision button.primary");
    await page.waitForSelector("#admin-senders .empty");
    await page.click('#nav a[href="#/settings"]');
    await page.waitForSelector("#sender-status");
    assert.match(await page.textContent("#sender-status"), /approved/);
  });

  await t.test("an invitation created, its link shown once, then revoked", async () => {
    await page.fill("#invite-form [name=email]", "not an email");
    await page.click("#invite-form button[type=submit]");
    await page.waitForSelector('#invite-form [data-field="email"] .field-error:not([hidden])');
    await page.fill("#invite-form [name=email]", "binta@example.cm");
    await page.selectOption("#invite-form [name=role]", "admin");
    await page.click("#invite-form button[type=submit]");
    await page.waitForSelector("#invite-url");
    assert.match(await page.inputValue("#invite-url"), /\/invitations\/accept\?token=/);
    assert.match(await page.textContent("#invitations"), /binta@example\.cm.*admin/);
    await shoot("settings");
    await page.click('#invitations button[data-email="binta@example.cm"]');
    await page.waitForSelector("#invitation-list .empty");
  });

  await t.test("an API key rotated with a day's grace: a new secret, the old key still listed", async () => {
    await page.click('#nav a[href="#/keys"]');
    await page.waitForSelector("#key-form");
    await page.fill("#key-form [name=name]", "shop site");
    await page.click("#key-form button[type=submit]");
    const first = await page.locator("#new-key-value").inputValue();
    await page.locator("#key-list select.grace").first().selectOption("86400");
    await page.click("#key-list button[data-rotate]");
    await page.waitForFunction((old) => {
      const value = document.querySelector("#new-key-value")?.value;
      return value && value !== old;
    }, first);
    assert.match(await page.locator("#new-key-value").inputValue(), /^crier_live_/);
    const rows = await page.$$eval("#key-list tbody tr", (trs) => trs.map((tr) => tr.textContent.replace(/\s/g, " ")));
    assert.equal(rows.length, 2);
    assert.equal(rows.filter((row) => /replaced; works until/.test(row)).length, 1);
    assert.deepEqual(await unlabelled(page), []);
    await shoot("keys");
  });

  await t.test("the ledger page after page, then billing in French", async () => {
    // Twenty small credits: the ledger's first page is full and "show more" brings the rest.
    const statuses = await page.evaluate(async () => {
      const me = await (await fetch("/v1/auth/me")).json();
      const out = [];
      for (let i = 0; i < 20; i += 1) {
        const response = await fetch(`/v1/admin/workspaces/${me.workspace.id}/wallet-adjustments`, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf_token },
          body: JSON.stringify({ amount_minor: 1, reason: `small credit ${i}` }),
        });
        out.push(response.status);
      }
      return out;
    });
    assert.deepEqual(new Set(statuses), new Set([201]));
    await page.click('#nav a[href="#/billing"]');
    await page.waitForSelector("#ledger-table");
    assert.equal(await page.locator("#ledger-table tbody tr").count(), 20);
    await page.click("#ledger button.more");
    await page.waitForFunction(() => document.querySelectorAll("#ledger-table tbody tr").length === 22);
    assert.equal(await page.$("#ledger button.more"), null);
    const reasons = await page.$$eval("#ledger-table tbody tr td:last-child", (cells) => cells.map((cell) => cell.textContent));
    assert.deepEqual(reasons.slice(-2), ["top-up via flutterwave", "Opening credit"]);
    await page.selectOption("#language-switcher", "fr");
    await page.waitForFunction(() => document.querySelector("h1")?.textContent === "Facturation");
    await page.waitForSelector("#billing-balance");
    assert.equal(await text(page, "#billing-balance"), "27 520 XAF");
    assert.match(await page.textContent("#ledger-table thead"), /Solde après/);
    await shoot("billing-fr");
  });

  await t.test("an invitation link opened signed out: a new account joins as a member", async () => {
    const link = await page.evaluate(async () => {
      const me = await (await fetch("/v1/auth/me")).json();
      const response = await fetch("/v1/workspace/invitations", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf_token },
        body: JSON.stringify({ email: "chidi@example.cm", role: "member" }),
      });
      return (await response.json()).accept_url;
    });
    await page.click("#logout");
    await page.waitForSelector("#login-form");
    await page.goto(link);
    await page.waitForSelector("#accept-form [name=password]");
    assert.equal(await page.evaluate(() => location.hash.startsWith("#/accept/")), true);
    assert.deepEqual(await unlabelled(page), []);
    await shoot("accept");
    // Someone with an account logs in from the invitation and comes back to it, signed in.
    await page.click("#accept-login");
    await page.waitForSelector("#login-form");
    await page.fill("#login-form [name=email]", "awa@example.cm");
    await page.fill("#login-form [name=password]", "correct horse battery staple");
    await page.click("#login-form button[type=submit]");
    await page.waitForFunction(() => /awa@example\.cm/.test(document.querySelector("#accept-form")?.parentNode.textContent ?? ""));
    assert.equal(await page.evaluate(() => location.hash), `#/accept/${encodeURIComponent(new URL(link).searchParams.get("token"))}`);
    await page.evaluate(async () => {
      const me = await (await fetch("/v1/auth/me")).json();
      await fetch("/v1/auth/logout", { method: "POST", headers: { "X-CSRF-Token": me.csrf_token } });
    });
    await page.goto(link);
    await page.waitForSelector("#accept-form [name=password]");
    await page.fill("#accept-form [name=name]", "Chidi Okafor");
    await page.fill("#accept-form [name=password]", "another long passphrase");
    await page.click("#accept-form button[type=submit]");
    await page.waitForSelector("#balance");
    const me = await page.evaluate(async () => (await fetch("/v1/auth/me")).json());
    assert.equal(me.user.email, "chidi@example.cm");
    assert.equal(me.role, "member");
    // A member sees neither the instance admin page nor the API keys in the navigation.
    assert.equal(await page.$('#nav a[href="#/admin"]'), null);
    assert.equal(await page.$('#nav a[href="#/keys"]'), null);
  });

  // Chromium logs every 4xx answer to a fetch: the eight asked for on purpose are the plan
  // refused while another runs (409), the adjustment without a reason (422), who is signed in on
  // the return link opened signed out (401), the bad sender ID, the rejection without a reason
  // and the bad email (422), and who is signed in on the invitation page, twice, after logging
  // out (401). Anything else is a bug. (The decimal amounts and the top-up under the minimum
  // are refused by the console before any request.)
  const failedLoad = (status) => `error: Failed to load resource: the server responded with a status of ${status}`;
  assert.deepEqual(
    problems.map((line) => line.replace(/ \(.*\)$/, "")),
    [failedLoad(409), failedLoad(422), failedLoad(401), failedLoad(422), failedLoad(422), failedLoad(422), failedLoad(401), failedLoad(401)],
    "console errors",
  );
});
