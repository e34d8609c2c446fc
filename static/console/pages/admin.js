// Instance administration (instance admins only): pending sender IDs and verifications to
// approve or reject (each decision sends what was reviewed as `expected`, so a request changed
// since is refused rather than decided unseen), and wallet adjustments with a reason. The API
// has no list of all workspaces: the adjustment names a workspace by id, offered from the
// admin's own workspaces and the pending requests.

import { get, newIdempotencyKey, post } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, money, t } from "../lib/i18n.js";
import { table } from "../lib/views.js";

export const title = () => t("admin.title");

export async function render(_param, session) {
  if (!session.me.user.is_instance_admin) return h("p", {}, t("admin.forbidden"));
  const senders = h("div", { id: "admin-senders" });
  const verifications = h("div", { id: "admin-verifications" });
  const [senderPage, verificationPage] = await Promise.all([loadSenders(senders), loadVerifications(verifications)]);
  const known = new Map();
  for (const membership of session.me.memberships || []) known.set(membership.workspace.id, membership.workspace.name);
  for (const row of [...senderPage.data, ...verificationPage.data]) known.set(row.workspace_id, row.workspace_name);
  return h(
    "div",
    { class: "admin-page" },
    h("section", { class: "card" }, h("h2", {}, t("admin.senders")), senders),
    h("section", { class: "card" }, h("h2", {}, t("admin.verifications")), verifications),
    h("section", { class: "card" }, h("h2", {}, t("admin.adjust")), adjustForm(known, session)),
  );
}

/// Approve and reject buttons with the rejection reason's field; `path` is the request's.
function decision(path, expected, reload) {
  const message = h("p", { class: "form-error", role: "alert", hidden: true });
  const reason = h("input", { type: "text", maxlength: 500, "aria-label": t("admin.reason_for", { what: expected }), placeholder: t("admin.reason") });
  const act = (verb) => async () => {
    message.hidden = true;
    const body = verb === "reject" ? { expected, reason: reason.value } : { expected };
    try {
      await post(`${path}/${verb}`, body);
      await reload();
    } catch (err) {
      message.textContent = errorText(err);
      message.hidden = false;
      if (verb === "reject") reason.focus();
    }
  };
  return h(
    "div",
    { class: "decision" },
    h("button", { type: "button", class: "primary small", onclick: act("approve") }, t("admin.approve")),
    reason,
    h("button", { type: "button", class: "danger small", onclick: act("reject") }, t("admin.reject")),
    message,
  );
}

async function loadSenders(container) {
  const page = await get("/v1/admin/sender-ids?limit=100");
  if (!page.data.length) {
    replace(container, h("p", { class: "empty" }, t("admin.none_pending")));
    return page;
  }
  replace(
    container,
    table(
      [t("admin.col_workspace"), t("settings.sender_field"), t("admin.col_requested"), ""],
      page.data.map((row) => [
        h("span", {}, row.workspace_name, h("span", { class: "mono small block" }, row.workspace_id)),
        h("span", { class: "mono" }, row.sender_id),
        dateTime(row.requested_at),
        decision(`/v1/admin/sender-ids/${encodeURIComponent(row.workspace_id)}`, row.sender_id, () => loadSenders(container)),
      ]),
      { id: "sender-requests", class: "stack" },
    ),
  );
  return page;
}

async function loadVerifications(container) {
  const page = await get("/v1/admin/verifications?limit=100");
  if (!page.data.length) {
    replace(container, h("p", { class: "empty" }, t("admin.none_pending")));
    return page;
  }
  replace(
    container,
    table(
      [t("admin.col_workspace"), t("settings.business_name"), t("admin.col_documents"), t("admin.col_requested"), ""],
      page.data.map((row) => [
        h("span", {}, row.workspace_name, h("span", { class: "mono small block" }, row.workspace_id)),
        h("span", {}, row.business_name, " (", row.country, ")", row.website ? h("span", { class: "mono small block" }, row.website) : null),
        h("ul", { class: "plain-list small" }, row.document_refs.map((ref) => h("li", { class: "mono" }, ref))),
        dateTime(row.submitted_at),
        decision(`/v1/admin/verifications/${encodeURIComponent(row.workspace_id)}`, row.submitted_at, () => loadVerifications(container)),
      ]),
      { id: "verification-requests", class: "stack" },
    ),
  );
  return page;
}

function adjustForm(known, session) {
  const result = h("p", { role: "status", id: "adjust-result" });
  const options = [...known.entries()].map(([id, name]) => [id, `${name} (${id})`]);
  let key = newIdempotencyKey();
  const element = form(
    { id: "adjust-form", class: "grid-form" },
    [
      field("workspace_id", t("admin.col_workspace"), { options }, "select"),
      field("amount_minor", t("admin.amount"), { type: "number", step: 1, required: true, inputmode: "numeric", hint: t("admin.amount_hint") }),
      field("reason", t("admin.reason"), { maxlength: 500, required: true, class: "wide" }),
    ],
    t("admin.adjust_submit"),
    async (values) => {
      const amount = Number.parseInt(values.amount_minor, 10);
      const made = await post(
        `/v1/admin/workspaces/${encodeURIComponent(values.workspace_id)}/wallet-adjustments`,
        { amount_minor: Number.isFinite(amount) ? amount : values.amount_minor, reason: values.reason },
        { idempotencyKey: key },
      );
      key = newIdempotencyKey();
      element.reset();
      result.textContent = t("admin.adjusted", { amount: money(made.ledger_entry.amount), balance: money(made.balance) });
    },
  );
  const choice = element.querySelector("[name=workspace_id]");
  if (session.me.workspace) choice.value = session.me.workspace.id;
  return h("div", {}, element, result);
}
