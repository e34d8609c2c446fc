// Billing: the plan and the wallet, the catalog's plans (bought through a payment provider's
// checkout: the API has no purchase from the wallet), a top-up with an amount picker that opens
// a checkout and follows its redirect, the payment history and the wallet ledger ("show more"
// follows the keyset cursor), and the low-balance alert: the balance below which a debit sends
// the `wallet.low_balance` webhook event (shown to all, set and cleared by owners and admins).

import { ApiError, api, get, newIdempotencyKey, post, query } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, exponent, lastDay, money, number, t, toMinor } from "../lib/i18n.js";
import { table } from "../lib/views.js";

export const title = () => t("billing.title");

export async function render(_param, session) {
  const manager = session.role === "owner" || session.role === "admin";
  // Payments are live only (the API refuses them to test mode): no buying there, but a word why.
  const testMode = session.me.mode === "test";
  const buyer = manager && !testMode;
  const [billing, plans, payments] = await Promise.all([
    get("/v1/billing"),
    get("/v1/billing/plans?limit=100"),
    get("/v1/payments/sessions?limit=20"),
  ]);
  const ledger = h("div", { id: "ledger" });
  await loadLedger(ledger, null);
  return h(
    "div",
    { class: "billing-page" },
    h(
      "div",
      { class: "tiles" },
      h("section", { class: "card tile" }, h("h2", {}, t("overview.balance")), h("p", { class: "big", id: "billing-balance" }, money(billing.wallet.balance))),
      h(
        "section",
        { class: "card tile" },
        h("h2", {}, t("overview.plan")),
        h("p", { class: "big", id: "billing-plan" }, billing.plan.name),
        billing.plan.period_end ? h("p", { class: "muted small" }, t("billing.plan_until", { date: lastDay(billing.plan.period_end) })) : null,
      ),
    ),
    testMode ? h("p", { class: "notice", id: "test-mode-payments" }, t("billing.test_mode_payments")) : null,
    h("section", { class: "card", id: "plans" }, h("h2", {}, t("billing.plans")), planCards(plans.data, billing, buyer)),
    buyer ? h("section", { class: "card" }, h("h2", {}, t("billing.topup")), topupForm(billing)) : null,
    h("section", { class: "card", id: "low-balance" }, h("h2", {}, t("billing.low_balance")), lowBalance(billing, manager)),
    h("section", { class: "card" }, h("h2", {}, t("billing.payments")), paymentTable(payments.data)),
    h("section", { class: "card" }, h("h2", {}, t("billing.ledger")), ledger),
  );
}

/// Sends the payer to the provider's checkout the API opened.
function followCheckout(created) {
  if (created && created.checkout_url) location.assign(created.checkout_url);
}

function planCards(plans, billing, manager) {
  // Plans without a price (free, custom) cannot be bought: shown only when they are the one in force.
  const shown = plans.filter((plan) => plan.price || plan.code === billing.plan.code);
  return h(
    "ul",
    { class: "plan-cards" },
    shown.map((plan) => {
      const current = billing.plan.code === plan.code;
      const message = h("p", { class: "form-error", role: "alert", hidden: true });
      let button = null;
      if (plan.price && manager) {
        const key = newIdempotencyKey();
        button = h("button", { type: "button", class: current ? "" : "primary", dataset: { plan: plan.code } }, current ? t("billing.extend") : t("billing.buy"));
        button.addEventListener("click", async () => {
          message.hidden = true;
          button.disabled = true;
          try {
            followCheckout(await post("/v1/payments/sessions", { kind: "plan", plan_code: plan.code }, { idempotencyKey: key }));
          } catch (err) {
            message.textContent = errorText(err);
            message.hidden = false;
          } finally {
            button.disabled = false;
          }
        });
      }
      return h(
        "li",
        { class: current ? "plan current" : "plan", dataset: { code: plan.code } },
        h("h3", {}, plan.name, current ? h("span", { class: "badge" }, t("billing.current")) : null),
        h("p", { class: "big" }, plan.price ? money(plan.price) : "—"),
        h("p", { class: "muted small" }, plan.price ? t("billing.per_month") : ""),
        h(
          "ul",
          { class: "plain-list small" },
          // The plan in force shows what the workspace has: a custom plan's quotas are set per
          // workspace (the catalog's custom entry says 0).
          h("li", {}, t("billing.included_sms", { n: number(current ? billing.quotas.sms.included : plan.included_sms_per_month) })),
          h("li", {}, t("billing.included_email", { n: number(current ? billing.quotas.email.included : plan.included_email_per_day) })),
        ),
        message,
        button,
      );
    }),
  );
}

/// What to type in an amount field of `currency`, once something else was typed.
function moneyHint(currency, digits) {
  return digits ? t("money.invalid", { currency, digits }) : t("money.invalid_whole", { currency });
}

function topupForm(billing) {
  const currency = billing.topup.minimum.currency;
  const digits = exponent(currency);
  const choices = h(
    "fieldset",
    { class: "field amounts", dataset: { field: "amount_choice" } },
    h("legend", {}, t("billing.amount")),
    billing.topup.suggested.map((amount, index) =>
      h(
        "label",
        { class: "check-label" },
        h("input", { type: "radio", name: "amount_choice", value: String(amount.amount_minor), checked: index === 0 }),
        " ",
        money(amount),
      ),
    ),
    h("label", { class: "check-label" }, h("input", { type: "radio", name: "amount_choice", value: "other", checked: !billing.topup.suggested.length }), " ", t("billing.other")),
  );
  const key = newIdempotencyKey();
  const element = form(
    { id: "topup-form" },
    [
      choices,
      // Typed in the currency's major unit, as its label says; sent in minor units.
      field("amount_minor", t("billing.other_amount", { currency }), {
        type: "number",
        min: billing.topup.minimum.amount_minor / 10 ** digits,
        step: 10 ** -digits,
        inputmode: digits ? "decimal" : "numeric",
        hint: t("billing.minimum", { amount: money(billing.topup.minimum) }),
      }),
    ],
    t("billing.topup_submit"),
    async (values) => {
      const other = values.amount_choice === "other" || !values.amount_choice;
      const amount = other ? toMinor(values.amount_minor, currency) : Number.parseInt(values.amount_choice, 10);
      if (amount === null) {
        throw new ApiError(422, "validation_failed", null, { fields: { amount_minor: moneyHint(currency, digits) } });
      }
      // Under the minimum: said in the currency, as typed (the API's reason counts minor units).
      if (amount < billing.topup.minimum.amount_minor) {
        throw new ApiError(422, "validation_failed", null, { fields: { amount_minor: t("billing.under_minimum", { amount: money(billing.topup.minimum) }) } });
      }
      followCheckout(await post("/v1/payments/sessions", { kind: "topup", amount_minor: amount, currency }, { idempotencyKey: key }));
    },
  );
  // The amount field is there only when "another amount" is chosen.
  const other = element.querySelector('[data-field="amount_minor"]');
  const sync = () => {
    other.hidden = element.querySelector("input[name=amount_choice]:checked")?.value !== "other";
  };
  choices.addEventListener("change", () => {
    sync();
    if (!other.hidden) other.querySelector("input").focus();
  });
  sync();
  return element;
}

function paymentTable(sessions) {
  if (!sessions.length) return h("p", { class: "empty" }, t("billing.payments_empty"));
  return table(
    [t("billing.col_created"), t("billing.col_what"), t("billing.col_amount"), t("billing.col_status"), t("billing.col_provider")],
    sessions.map((payment) => [
      h("a", { href: `#/payment/${encodeURIComponent(payment.id)}` }, dateTime(payment.created_at)),
      payment.kind === "plan" ? t("billing.kind_plan", { plan: payment.plan_code }) : t("billing.kind_topup"),
      { num: money(payment.amount) },
      h("span", { class: `badge pay-${payment.status}` }, t(`payment.${payment.status}`)),
      payment.provider || "—",
    ]),
    { id: "payments", class: "stack" },
  );
}

const LEDGER_HEADS = () => [t("billing.col_created"), t("billing.col_kind"), t("billing.col_amount"), t("billing.col_balance"), t("billing.col_reason")];

async function loadLedger(container, cursor) {
  const page = await get("/v1/billing/ledger" + query({ limit: 20, cursor }));
  let body = container.querySelector("tbody");
  if (!body) {
    if (!page.data.length) return replace(container, h("p", { class: "empty" }, t("billing.ledger_empty")));
    replace(
      container,
      table(LEDGER_HEADS(), [], { id: "ledger-table", class: "stack" }),
    );
    body = container.querySelector("tbody");
  }
  for (const entry of page.data) {
    const [when, kind, amount, after, reason] = LEDGER_HEADS();
    body.append(
      h(
        "tr",
        { dataset: { id: entry.id } },
        h("td", { "data-label": when }, dateTime(entry.created_at)),
        h("td", { "data-label": kind }, t(`ledger.${entry.kind}`)),
        h("td", { class: "num", "data-label": amount }, money(entry.amount)),
        h("td", { class: "num", "data-label": after }, money(entry.balance_after)),
        h("td", { "data-label": reason }, entry.reason || h("span", { class: "mono small" }, entry.reference)),
      ),
    );
  }
  container.querySelector(".more")?.remove();
  if (page.next_cursor) {
    const more = h("button", { type: "button", class: "more" }, t("billing.more"));
    more.addEventListener("click", async () => {
      more.disabled = true;
      try {
        await loadLedger(container, page.next_cursor);
      } catch (err) {
        more.disabled = false;
        more.after(h("p", { class: "form-error", role: "alert" }, errorText(err)));
      }
    });
    container.append(h("p", { class: "actions more" }, more));
  }
}

/// What the alert is now, in a sentence.
function alertText(threshold) {
  return threshold ? t("billing.low_balance_set", { amount: money(threshold) }) : t("billing.low_balance_off");
}

/// The low-balance alert: its state, and for owners and admins a form that sets the threshold
/// (typed in the wallet's currency, sent in minor units) and a button that clears it.
function lowBalance(billing, manager) {
  const status = h("p", { id: "low-balance-status", role: "status" }, alertText(billing.wallet.low_balance_threshold));
  const explain = h("p", { class: "hint" }, t("billing.low_balance_hint"));
  if (!manager) return h("div", {}, status, explain);
  const currency = billing.wallet.balance.currency;
  const digits = exponent(currency);
  const save = async (threshold) => {
    const wallet = await api("PUT", "/v1/billing/low-balance-alert", { threshold_minor: threshold });
    status.textContent = alertText(wallet.low_balance_threshold);
    clear.hidden = !wallet.low_balance_threshold;
    return wallet;
  };
  const current = billing.wallet.low_balance_threshold;
  const element = form(
    { id: "low-balance-form", class: "inline-form" },
    [
      field("threshold_minor", t("billing.low_balance_amount", { currency }), {
        type: "number",
        min: 10 ** -digits,
        step: 10 ** -digits,
        inputmode: digits ? "decimal" : "numeric",
        required: true,
        value: current ? String(current.amount_minor / 10 ** digits) : "",
      }),
    ],
    t("billing.low_balance_submit"),
    async (values) => {
      const threshold = toMinor(values.threshold_minor, currency);
      if (threshold === null) {
        throw new ApiError(422, "validation_failed", null, { fields: { threshold_minor: moneyHint(currency, digits) } });
      }
      if (threshold <= 0) {
        throw new ApiError(422, "validation_failed", null, { fields: { threshold_minor: t("billing.low_balance_positive") } });
      }
      await save(threshold);
    },
  );
  const clear = h("button", { type: "button", id: "clear-low-balance", hidden: !current }, t("billing.low_balance_clear"));
  clear.addEventListener("click", async () => {
    clear.disabled = true;
    try {
      await save(null);
      element.querySelector("[name=threshold_minor]").value = "";
    } catch (err) {
      alert(errorText(err));
    } finally {
      clear.disabled = false;
    }
  });
  element.querySelector(".actions").append(clear);
  return h("div", {}, status, element, explain);
}
