// One payment session: what the provider confirmed to crier (never the checkout page's word),
// with "check now" asking the provider again (`POST …/verify`, safe to repeat). A session not
// yet final is verified as the page opens: this is where the provider sends the payer back
// (`/billing/return?session=pay_…` opens it).

import { get, post } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText } from "../lib/forms.js";
import { dateTime, money, t } from "../lib/i18n.js";

export const title = () => t("payment.title");

/// Statuses the provider may still change.
const OPEN = ["pending", "redirected", "processing"];

export async function render(id) {
  const container = h("div", { class: "payment-page" });
  const path = `/v1/payments/sessions/${encodeURIComponent(id)}`;
  const payment = await get(path);
  if (OPEN.includes(payment.status) && payment.checkout_url) {
    try {
      const answer = await post(`${path}/verify`);
      show(container, answer, answer.verification);
    } catch (err) {
      show(container, payment, null, err);
    }
  } else {
    show(container, payment, null);
  }
  return container;
}

function show(container, payment, verification, failure) {
  const status = h("p", { class: "form-error", role: "alert", hidden: !failure }, failure ? errorText(failure) : null);
  const check = h("button", { type: "button", class: "primary", id: "verify" }, t("payment.verify"));
  check.addEventListener("click", async () => {
    check.disabled = true;
    try {
      const answer = await post(`/v1/payments/sessions/${encodeURIComponent(payment.id)}/verify`);
      show(container, answer, answer.verification);
    } catch (err) {
      check.disabled = false;
      status.textContent = errorText(err);
      status.hidden = false;
    }
  });
  replace(
    container,
    h(
      "section",
      { class: "card" },
      h("p", { class: "big", id: "payment-status" }, t(`payment.${payment.status}`)),
      h("p", { id: "payment-outcome", role: "status" }, t(`payment.says_${payment.status}`)),
      h("p", { class: "muted small" }, t("payment.truth")),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, t("billing.col_what")),
        h("dd", {}, payment.kind === "plan" ? t("billing.kind_plan", { plan: payment.plan_code }) : t("billing.kind_topup")),
        h("dt", {}, t("billing.col_amount")),
        h("dd", {}, money(payment.amount)),
        h("dt", {}, t("billing.col_provider")),
        h("dd", {}, payment.provider || "—"),
        h("dt", {}, t("billing.col_created")),
        h("dd", {}, dateTime(payment.created_at)),
        payment.failure_reason ? [h("dt", {}, t("payment.failure")), h("dd", {}, payment.failure_reason)] : null,
      ),
      verification && !verification.changed ? h("p", { class: "muted small", id: "verification-note" }, verification.reason || t("payment.unchanged")) : null,
      status,
      h("p", { class: "actions" }, check, h("a", { href: "#/billing" }, t("payment.back"))),
    ),
  );
}
