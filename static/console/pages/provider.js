// One provider account (`#/providers/pac_…`): what it is, its state — an account whose secrets
// no longer open says what to do —, the receipts and inbound URLs to paste into the provider's
// dashboard, turning it on or off, its deletion; and the form to change its settings, replace
// a secret (an empty field keeps it: secrets are never shown, only "…last4"), its priority and
// description.

import { api, get } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, t } from "../lib/i18n.js";
import { copyField } from "../lib/views.js";
import { MAX_DESCRIPTION, MAX_PRIORITY, manages, providerBody, providerFields, secretsText, statusBadge } from "./providers.js";

export const title = () => t("provider.title");

export async function render(id, session) {
  if (!manages(session)) return h("p", {}, t("providers.forbidden"));
  const back = h("p", {}, h("a", { href: "#/providers" }, "← ", t("provider.back")));
  if (session.me.mode === "test") return h("div", {}, back, h("p", { class: "lead", id: "providers-test-mode" }, t("providers.test_mode")));
  const account = await get(`/v1/provider-accounts/${encodeURIComponent(id)}`);
  const summary = h("section", { class: "card", id: "account-summary" });
  const edit = h("section", { class: "card" });
  const draw = (current, saved = false) => {
    drawSummary(summary, current, draw);
    replace(edit, h("h2", {}, t("provider.edit_title")), editForm(current, draw, saved));
  };
  draw(account);
  return h("div", { class: "provider-page" }, back, summary, edit);
}

function drawSummary(section, account, redraw) {
  const feedback = h("div", { id: "account-feedback", "aria-live": "polite" });
  const path = `/v1/provider-accounts/${encodeURIComponent(account.id)}`;
  const fail = (err) => replace(feedback, h("p", { class: "form-error", role: "alert" }, errorText(err)));

  const toggle = h("button", { type: "button", id: "toggle-account", class: account.enabled ? "" : "primary" }, t(account.enabled ? "provider.disable" : "provider.enable"));
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    try {
      redraw(await api("PATCH", path, { enabled: !account.enabled }));
      document.getElementById("toggle-account")?.focus();
    } catch (err) {
      toggle.disabled = false;
      fail(err);
    }
  });
  const remove = h("button", { type: "button", id: "delete-account", class: "danger" }, t("provider.delete"));
  remove.addEventListener("click", async () => {
    if (!confirm(t("provider.delete_confirm", { provider: t(`providers.name.${account.provider}`) }))) return;
    remove.disabled = true;
    try {
      await api("DELETE", path);
      location.hash = "#/providers";
    } catch (err) {
      remove.disabled = false;
      fail(err);
    }
  });

  const facts = [
    ["providers.provider", h("span", { id: "account-provider" }, t(`providers.name.${account.provider}`))],
    ["providers.channel", t(`channel.${account.channel}`)],
    ["providers.col_status", h("span", { id: "account-status" }, statusBadge(account))],
    ["providers.priority", String(account.priority)],
    ["providers.col_description", account.description],
    ...Object.entries(account.settings).map(([name, value]) => [`providers.setting.${name}`, h("span", { class: "mono" }, value)]),
    ["providers.col_secrets", h("span", { class: "mono", id: "account-secrets" }, secretsText(account))],
    ["provider.updated", dateTime(account.updated_at)],
  ].filter(([, value]) => value !== null && value !== undefined && value !== "");

  const urls = [];
  if (account.receipts_url) {
    urls.push(h("h3", {}, t("provider.receipts_url")), h("p", { class: "hint" }, t("provider.receipts_hint")), copyField("receipts-url", account.receipts_url, t("provider.receipts_url")));
  }
  if (account.inbound_url) {
    urls.push(h("h3", {}, t("provider.inbound_url")), h("p", { class: "hint" }, t("provider.inbound_hint")), copyField("inbound-url", account.inbound_url, t("provider.inbound_url")));
  }
  if (!urls.length && account.channel === "sms" && account.status !== "needs_secrets") urls.push(h("p", { class: "hint", id: "no-urls" }, t("provider.urls_need_secret")));

  replace(
    section,
    account.status === "needs_secrets"
      ? h(
          "div",
          { class: "alert", role: "alert", id: "needs-secrets" },
          h("p", {}, h("strong", {}, t("provider.needs_secrets_title"))),
          h("p", {}, t("provider.needs_secrets_hint")),
        )
      : null,
    h("dl", { class: "facts" }, facts.map(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)])),
    h("div", { class: "row wrap endpoint-actions" }, toggle, remove),
    feedback,
    urls,
  );
}

function editForm(account, redraw, saved) {
  const done = h("p", { class: "success", role: "status", id: "account-saved", hidden: !saved }, t("provider.saved"));
  return form(
    { id: "account-form" },
    [
      h("div", { class: "grid-form" }, providerFields(account.provider, account)),
      h(
        "div",
        { class: "grid-form" },
        field("priority", t("providers.priority"), { type: "number", min: 0, max: MAX_PRIORITY, step: 1, value: account.priority, hint: t("providers.priority_hint") }),
        field("description", t("providers.description"), { maxlength: MAX_DESCRIPTION, value: account.description || "" }),
      ),
      done,
    ],
    t("provider.save"),
    async (values) => {
      const body = { ...providerBody(account.provider, values, account), priority: Number(values.priority || 0) };
      body.description = values.description.trim() ? values.description.trim() : null;
      const updated = await api("PATCH", `/v1/provider-accounts/${encodeURIComponent(account.id)}`, body);
      redraw(updated, true);
      document.getElementById("account-saved")?.focus();
    },
  );
}
