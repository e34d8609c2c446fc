// API keys (owners and admins): the list, a form to create one — its secret shown once, with a
// copy button —, rotating one with a grace period for the old key, and revoking.

import { api, get, post } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, t } from "../lib/i18n.js";

export const title = () => t("keys.title");

const SCOPES = [
  "messages:send",
  "messages:read",
  "contacts:read",
  "contacts:write",
  "campaigns:read",
  "campaigns:write",
  "billing:read",
  "payments:write",
  "activity:read",
  "webhooks:read",
  "webhooks:write",
  "domains:read",
  "domains:write",
  "providers:read",
  "providers:write",
];

export async function render(_param, session) {
  if (session.role !== "owner" && session.role !== "admin") {
    return h("p", {}, t("keys.forbidden"));
  }
  const list = h("div", { id: "key-list" });
  const secret = h("div", { id: "new-key", "aria-live": "polite" });
  await load(list, secret);
  const scopes = h(
    "fieldset",
    { class: "field scopes", dataset: { field: "scopes" } },
    h("legend", {}, t("keys.scopes")),
    SCOPES.map((scope) =>
      h(
        "label",
        { class: "check-label" },
        h("input", { type: "checkbox", name: "scopes", value: scope, checked: scope.startsWith("messages") }),
        " ",
        scope,
      ),
    ),
    h("p", { class: "field-error", id: "scopes-error", hidden: true }),
  );
  const create = form(
    { id: "key-form" },
    [
      field("name", t("keys.name"), { required: true, maxlength: 100 }),
      field("mode", t("keys.mode"), { options: [["live", t("mode.live")], ["test", t("mode.test")]] }, "select"),
      scopes,
    ],
    t("keys.create"),
    async (values) => {
      const created = await post("/v1/api-keys", { name: values.name, mode: values.mode, scopes: values.scopes });
      showSecret(secret, created.key);
      await load(list, secret);
    },
  );
  return h("div", { class: "keys-page" }, h("section", { class: "card" }, create, secret), h("section", { class: "card" }, list));
}

function showSecret(container, key) {
  const value = h("input", { type: "text", readonly: true, value: key, class: "mono", id: "new-key-value", "aria-label": t("keys.secret") });
  const copy = h("button", { type: "button" }, t("keys.copy"));
  copy.addEventListener("click", async () => {
    value.select();
    try {
      await navigator.clipboard.writeText(key);
      copy.textContent = t("keys.copied");
    } catch (err) {
      // Without clipboard access the selected text can be copied by hand.
    }
  });
  replace(container, h("div", { class: "secret" }, h("p", {}, t("keys.secret")), h("div", { class: "row" }, value, copy)));
  value.focus();
}

/// Grace periods offered for the old key of a rotation, in seconds (the API allows 0 to 7 days).
const GRACE = [
  [0, "keys.grace_none"],
  [3600, "keys.grace_hour"],
  [86400, "keys.grace_day"],
  [604800, "keys.grace_week"],
];

/// The row's actions for a key in use: revoke, or rotate with a chosen grace period.
function actions(key, list, secret) {
  const revoke = h("button", { type: "button", class: "danger small" }, t("keys.revoke"));
  revoke.addEventListener("click", async () => {
    if (!confirm(t("keys.revoke_confirm", { name: key.name }))) return;
    try {
      await api("DELETE", `/v1/api-keys/${encodeURIComponent(key.id)}`);
      await load(list, secret);
    } catch (err) {
      alert(errorText(err));
    }
  });
  const grace = h(
    "select",
    { "aria-label": t("keys.grace_for", { name: key.name }), class: "grace" },
    GRACE.map(([seconds, label]) => h("option", { value: seconds }, t(label))),
  );
  const rotate = h("button", { type: "button", class: "small", dataset: { rotate: key.id } }, t("keys.rotate"));
  rotate.addEventListener("click", async () => {
    rotate.disabled = true;
    try {
      const made = await post(`/v1/api-keys/${encodeURIComponent(key.id)}/rotate`, { grace_seconds: Number(grace.value) });
      await load(list, secret);
      showSecret(secret, made.api_key.key);
    } catch (err) {
      rotate.disabled = false;
      alert(errorText(err));
    }
  });
  return h("div", { class: "row wrap" }, grace, rotate, revoke);
}

async function load(list, secret) {
  const page = await get("/v1/api-keys?limit=100");
  if (!page.data.length) return replace(list, h("p", { class: "empty" }, t("keys.empty")));
  replace(
    list,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "stack" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            [t("keys.name"), t("keys.col_prefix"), t("keys.mode"), t("keys.col_created"), t("keys.col_last_used"), ""].map((text) =>
              h("th", { scope: "col" }, text),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          page.data.map((key) => {
            const expired = key.expires_at && new Date(key.expires_at) <= new Date();
            const revoke = key.revoked_at
              ? h("span", { class: "badge" }, t("keys.revoked"))
              : key.replaced_by
                ? h("span", { class: "badge" }, expired ? t("keys.expired") : t("keys.expires", { date: dateTime(key.expires_at) }))
                : actions(key, list, secret);
            return h(
              "tr",
              {},
              h("td", { "data-label": t("keys.name") }, key.name),
              h("td", { class: "mono", "data-label": t("keys.col_prefix") }, key.display_prefix, "…"),
              h("td", { "data-label": t("keys.mode") }, t(`mode.${key.mode}`)),
              h("td", { "data-label": t("keys.col_created") }, dateTime(key.created_at)),
              h("td", { "data-label": t("keys.col_last_used") }, key.last_used_at ? dateTime(key.last_used_at) : t("keys.never")),
              h("td", { "data-label": "" }, revoke),
            );
          }),
        ),
      ),
    ),
  );
}
