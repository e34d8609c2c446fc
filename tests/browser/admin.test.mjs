// The console's instance-admin journey, in Chromium against the real binary: a second user
// joins through an invitation (accepted from outside the browser) and opens a workspace of
// their own; the owner makes them an admin in settings and submits the business verification;
// on the admin page the list of every workspace shows both, the search finds the second, the
// custom plan with its included amounts is set from its row (a refusal first, by its field) and
// the row changes; the verification is approved there and settings then says verified; a
// sending domain is approved there with its DKIM record shown; the page in French. Screenshots
// at 1280 and 375 px (`console4-*.png`).

import { test } from "node:test";
import assert from "node:assert/strict";
import { text, screenshots, setUp, unlabelled, startJourney } from "./harness.mjs";

/// The cells of the workspace row named `name`, as shown (a line break a space; every space a
/// plain one).
function rowCells(page, name) {
  return page.$$eval(
    "#workspaces tbody tr[data-id]",
    (rows, wanted) => {
      const row = rows.find((tr) => tr.querySelector("td strong")?.textContent === wanted);
      return row ? [...row.querySelectorAll("td")].map((td) => td.innerText.replace(/\s+/g, " ").trim()) : null;
    },
    name,
  );
}

/// The names of the workspace rows shown, in order.
function rowNames(page) {
  return page.$$eval("#workspaces tbody tr[data-id] td strong", (cells) => cells.map((cell) => cell.textContent));
}

test("instance admin: every workspace, plans, verification and roles, in Chromium", { timeout: 90_000 }, async (t) => {
  const { base, page, problems } = await startJourney(t);
  const shoot = screenshots(page, "console4", { narrow: true });
  let binta = null;

  await t.test("setup; a second user joins through an invitation and opens a workspace", async () => {
    await setUp(page, base);
    const invitation = await page.evaluate(async () => {
      const me = await (await fetch("/v1/auth/me")).json();
      const response = await fetch("/v1/workspace/invitations", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf_token },
        body: JSON.stringify({ email: "binta@example.cm", role: "member" }),
      });
      return response.json();
    });
    // Accepted from here, not the browser: the browser keeps the owner's session.
    const accepted = await fetch(base + "/v1/invitations/accept", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: invitation.token, name: "Binta Diallo", password: "another long passphrase" }),
    });
    assert.equal(accepted.status, 200);
    const cookie = accepted.headers.getSetCookie().map((line) => line.split(";")[0]).join("; ");
    binta = await accepted.json();
    const created = await fetch(base + "/v1/workspaces", {
      method: "POST",
      headers: { "Content-Type": "application/json", Cookie: cookie, "X-CSRF-Token": binta.csrf_token },
      body: JSON.stringify({ name: "Chez Binta" }),
    });
    assert.equal(created.status, 201);
  });

  await t.test("settings: the member made an admin, the business verification submitted", async () => {
    await page.click('#nav a[href="#/settings"]');
    await page.waitForSelector("#verification-form");
    const patched = page.waitForResponse((response) => response.request().method() === "PATCH");
    await page.selectOption(`#members select[data-user="${binta.user.id}"]`, "admin");
    assert.equal((await patched).status(), 200);
    const roles = await page.evaluate(async () => (await (await fetch("/v1/workspace/members")).json()).data.map((member) => [member.user.email, member.role]));
    assert.deepEqual(roles, [["awa@example.cm", "owner"], ["binta@example.cm", "admin"]]);

    // Not a country code: the API's reason by the field.
    await page.fill("#verification-form [name=business_name]", "Boutique Awa SARL");
    await page.fill("#verification-form [name=country]", "C1");
    await page.fill("#verification-form [name=document_refs]", "RCCM-DLA-2026-B-0042\nNIU P0123456789");
    await page.click("#verification-form button[type=submit]");
    await page.waitForSelector('#verification-form [data-field="country"] .field-error:not([hidden])');
    await page.fill("#verification-form [name=country]", "CM");
    await page.click("#verification-form button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#verification-status")?.textContent.includes("pending review"));
    assert.deepEqual(await unlabelled(page), []);
  });

  await t.test("the admin page lists every workspace with its plan, balance, reviews, members and owner", async () => {
    await page.click('#nav a[href="#/admin"]');
    await page.waitForSelector("#workspaces");
    assert.deepEqual(await rowNames(page), ["Chez Binta", "Boutique Awa"]);
    const awa = await rowCells(page, "Boutique Awa");
    assert.match(awa[0], /^Boutique Awa wsp_\w+$/);
    assert.deepEqual(awa.slice(1, 7), ["Free", "XAF 0", "pending review", "—", "2", "awa@example.cm"]);
    const chez = await rowCells(page, "Chez Binta");
    assert.deepEqual(chez.slice(1, 7), ["Free", "XAF 0", "not verified", "—", "1", "binta@example.cm"]);
    assert.deepEqual(await unlabelled(page), []);
  });

  await t.test("the search finds the second workspace, and says when nothing matches", async () => {
    await page.fill("#workspace-search [name=q]", "zzz");
    await page.waitForSelector("#workspace-list .empty");
    assert.match(await page.textContent("#workspace-list .empty"), /zzz/);
    await page.fill("#workspace-search [name=q]", "BINTA");
    await page.press("#workspace-search [name=q]", "Enter");
    await page.waitForSelector("#workspaces");
    assert.deepEqual(await rowNames(page), ["Chez Binta"]);
  });

  await t.test("the custom plan set from the row: a refusal by its field, then the row changes", async () => {
    await page.click('#workspaces button[data-action="plan"]');
    await page.waitForSelector("#plan-form");
    assert.equal(await page.isVisible("#plan-form [name=included_sms_per_month]"), false, "amounts only for custom");
    await page.selectOption("#plan-form [name=plan_code]", "custom");
    assert.equal(await page.isVisible("#plan-form [name=included_sms_per_month]"), true);
    // Without the included amounts: the API's reason by the field.
    await page.click("#plan-form button[type=submit]");
    await page.waitForSelector('#plan-form [data-field="included_sms_per_month"] .field-error:not([hidden])');
    await page.fill("#plan-form [name=included_sms_per_month]", "500");
    await page.fill("#plan-form [name=included_email_per_day]", "20");
    const year = new Date().getFullYear() + 1;
    await page.fill("#plan-form [name=period_end]", `${year}-01-31`);
    await page.click("#plan-form button[type=submit]");
    await page.waitForSelector("#plan-result:not(:empty)");
    assert.equal(await page.textContent("#plan-result"), "Chez Binta is now on Custom.");
    const plan = (await rowCells(page, "Chez Binta"))[1];
    assert.equal(plan, `Custom until Jan 31, ${year} 500 SMS a month, 20 emails a day`);
    // "Ends on 31 Jan" covers the whole of that day: it ends at the next midnight.
    const stored = await page.evaluate(async (y) => {
      const list = await (await fetch("/v1/admin/workspaces?q=Chez%20Binta")).json();
      return [list.data[0].plan.period_end, new Date(`${y}-02-01T00:00:00`).toISOString()];
    }, year);
    assert.equal(Date.parse(stored[0]), Date.parse(stored[1]), `${stored}`);
    assert.deepEqual(await unlabelled(page), []);
    await shoot("admin-plan");
    // Escape closes the form and gives the focus back to its button.
    await page.focus("#plan-form [name=included_email_per_day]");
    await page.keyboard.press("Escape");
    assert.equal(await page.$("#plan-form"), null);
    assert.equal(await page.evaluate(() => document.activeElement.dataset.action), "plan");
  });

  await t.test("the verification approved on the admin page; settings then says verified", async () => {
    await page.fill("#workspace-search [name=q]", "");
    await page.press("#workspace-search [name=q]", "Enter");
    await page.waitForFunction(() => document.querySelectorAll("#workspaces tbody tr[data-id]").length === 2);
    assert.match(await page.textContent("#verification-requests"), /Boutique Awa SARL/);
    await shoot("admin");
    await page.click("#verification-requests .decision button.primary");
    await page.waitForSelector("#admin-verifications .empty");
    await page.waitForFunction(() => /verified/.test(document.querySelector("#workspaces tbody tr:last-child")?.textContent));
    assert.equal((await rowCells(page, "Boutique Awa"))[3], "verified");
    await page.click('#nav a[href="#/settings"]');
    await page.waitForSelector("#verification-status");
    assert.equal(await text(page, "#verification-status"), "verified");
  });

  await t.test("a workspace's sending domain approved on the admin page, with its DKIM record", async () => {
    const added = await page.evaluate(async () => {
      const me = await (await fetch("/v1/auth/me")).json();
      const response = await fetch("/v1/sending-domains", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf_token },
        body: JSON.stringify({ domain: "mail.acme.example" }),
      });
      return response.json();
    });
    assert.equal(added.status, "pending");
    await page.click('#nav a[href="#/settings"]');
    await page.waitForSelector("#verification-status");
    await page.click('#nav a[href="#/admin"]');
    await page.waitForSelector("#domain-requests");
    const row = await text(page, "#domain-requests");
    assert.match(row, /mail\.acme\.example/);
    assert.ok(row.includes(added.dns_record.name) && row.includes(added.dns_record.value), row);
    await page.click("#domain-requests .decision button.primary");
    await page.waitForSelector("#admin-domains .empty");
    const status = await page.evaluate(async (id) => (await (await fetch(`/v1/sending-domains/${id}`)).json()).status, added.id);
    assert.equal(status, "active");
  });

  await t.test("the admin page in French", async () => {
    await page.click('#nav a[href="#/admin"]');
    await page.waitForSelector("#workspaces");
    await page.selectOption("#language-switcher", "fr");
    await page.waitForFunction(() => document.querySelector("#admin-workspaces h2")?.textContent === "Espaces de travail");
    await page.waitForSelector("#workspaces");
    const chez = await rowCells(page, "Chez Binta");
    assert.match(chez[1], /^Custom jusqu’au 31 janv\. \d{4} 500 SMS par mois, 20 e-mails par jour$/);
    assert.equal(chez[2], "0 XAF");
    await shoot("admin-fr");
  });

  // Chromium logs every 4xx answer to a fetch: the two asked for on purpose are the
  // verification with a bad country and the custom plan without its amounts (422).
  const failedLoad = (status) => `error: Failed to load resource: the server responded with a status of ${status}`;
  assert.deepEqual(
    problems.map((line) => line.replace(/ \(.*\)$/, "")),
    [failedLoad(422), failedLoad(422)],
    "console errors",
  );
});
