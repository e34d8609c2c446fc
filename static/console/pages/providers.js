// Provider accounts (`#/providers`, owners and admins, reached from settings): the workspace's
// own SMS and email providers, used instead of the instance's for its live messages. The list
// (an account whose secrets no longer open is called out above it, with what to do), and a form
// whose fields follow the provider chosen. Secrets are write-only: the API shows only whether
// each is set and its last four characters. Each account's page (`#/providers/pac_…`,
// pages/provider.js) edits it. Accounts are live objects: in test mode the page says so.

import { get, post } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { field, form } from "../lib/forms.js";
import { has, t } from "../lib/i18n.js";
import { table } from "../lib/views.js";

export const title = () => t("providers.title");

/// Each provider's channel, settings and secrets, as docs/API.md "Provider accounts" lists them:
/// `[name, required, kind]` (kind `url`, `number`, `security`, or text).
export const PROVIDERS = {
  twilio: { channel: "sms", settings: [["account_sid", true], ["base_url", false, "url"]], secrets: [["auth_token", true]] },
  infobip: { channel: "sms", settings: [["base_url", true, "url"]], secrets: [["api_key", true]] },
  avlytext: { channel: "sms", settings: [["base_url", false, "url"]], secrets: [["api_key", true]] },
  mboasms: { channel: "sms", settings: [["user_id", true], ["base_url", false, "url"]], secrets: [["password", true]] },
  lmt: { channel: "sms", settings: [["base_url", false, "url"]], secrets: [["api_key", true], ["secret", true]] },
  webhook: { channel: "sms", settings: [["url", true, "url"]], secrets: [["secret", false]] },
  smtp: {
    channel: "email",
    settings: [["host", true], ["port", false, "number"], ["security", false, "security"], ["username", false], ["from", false]],
    secrets: [["password", false]],
  },
};

/// The smtp `security` choices (the first is the default).
const SECURITY = ["starttls", "tls", "none"];

/// The API's limits (src/delivery/accounts): priority 0–1000, a description of 500 characters,
/// a setting of 2048 and a secret of 4096.
export const MAX_PRIORITY = 1000;
export const MAX_DESCRIPTION = 500;
const MAX_SETTING = 2048;
const MAX_SECRET = 4096;

export function manages(session) {
  return session.role === "owner" || session.role === "admin";
}

/// The controls of one provider's settings and secrets, named as the API names their errors
/// (`settings.account_sid`, `secrets.auth_token`). `account` (when editing) fills the settings
/// and says which secrets are set: a secret field left empty keeps the secret.
export function providerFields(provider, account = null) {
  const spec = PROVIDERS[provider];
  if (!spec) return [];
  const settings = spec.settings.map(([name, required, kind]) => {
    const label = t(`providers.setting.${name}`) + (required ? "" : " " + t("providers.optional"));
    const value = account ? account.settings[name] || "" : "";
    const hintKey = `providers.hint.${name}`;
    const hint = has(hintKey) ? t(hintKey, { provider: t(`providers.name.${provider}`) }) : undefined;
    if (kind === "security") {
      return field(`settings.${name}`, label, { options: [["", t("providers.security_default")], ...SECURITY.map((choice) => [choice, choice])], hint }, "select");
    }
    return field(`settings.${name}`, label, {
      type: kind === "url" ? "url" : kind === "number" ? "number" : "text",
      required,
      value,
      maxlength: kind === "number" ? false : MAX_SETTING,
      min: kind === "number" ? 1 : false,
      max: kind === "number" ? 65535 : false,
      autocomplete: "off",
      spellcheck: "false",
      hint,
    });
  });
  const secrets = spec.secrets.map(([name, required]) => {
    const state = account && account.secrets[name];
    const label = t(`providers.secret.${name}`) + (required || state ? "" : " " + t("providers.optional"));
    const locked = account && account.status === "needs_secrets" && state && state.set;
    let hint = t("providers.secret_hint");
    if (locked) hint = t("providers.secret_reenter", { last4: state.last4 || "" });
    else if (state && state.set) hint = state.last4 ? t("providers.secret_set_last4", { last4: state.last4 }) : t("providers.secret_set");
    else if (account) hint = t("providers.secret_unset");
    return field(`secrets.${name}`, label, {
      type: "password",
      required: required && !account,
      maxlength: MAX_SECRET,
      autocomplete: "new-password",
      placeholder: state && state.set && !locked ? t("providers.secret_keep") : false,
      hint,
    });
  });
  // The select keeps the stored choice (an option's `selected` has to be set on the element).
  if (account && account.settings.security) {
    for (const wrapper of settings) {
      const select = wrapper.querySelector("select");
      if (select) select.value = account.settings.security;
    }
  }
  return [...settings, ...secrets];
}

/// The `settings` and `secrets` of a form's values: what is filled in; when editing, an emptied
/// setting is removed (`null`) and an empty secret kept (left out).
export function providerBody(provider, values, account = null) {
  const spec = PROVIDERS[provider];
  const settings = {};
  const secrets = {};
  for (const [name] of spec.settings) {
    const value = (values[`settings.${name}`] || "").trim();
    if (value) settings[name] = value;
    else if (account && account.settings[name] !== undefined) settings[name] = null;
  }
  for (const [name] of spec.secrets) {
    const value = values[`secrets.${name}`] || "";
    if (value.trim()) secrets[name] = value;
  }
  return { settings, secrets };
}

/// The account's state: active, off, or needing its secrets (what to do is said apart).
export function statusBadge(account) {
  return h("span", { class: `badge account-${account.status}` }, t(`providers.status_${account.status}`));
}

/// "auth_token …89ab" (the API's `last4` has its ellipsis) for each secret set, "not set" for the others.
export function secretsText(account) {
  const parts = Object.entries(account.secrets || {}).map(([name, state]) =>
    state.set ? `${name} ${state.last4 || t("providers.set")}` : `${name}: ${t("providers.not_set")}`,
  );
  return parts.join(", ");
}

export async function render(_param, session) {
  if (!manages(session)) return h("p", {}, t("providers.forbidden"));
  const back = h("p", {}, h("a", { href: "#/settings" }, "← ", t("providers.back")));
  if (session.me.mode === "test") {
    return h("div", { class: "providers-page" }, back, h("p", { class: "lead", id: "providers-test-mode" }, t("providers.test_mode")));
  }
  const list = h("div", { id: "provider-list" });
  await load(list);
  return h(
    "div",
    { class: "providers-page" },
    back,
    h("p", { class: "lead" }, t("providers.lead")),
    h("section", { class: "card" }, h("h2", {}, t("providers.list_title")), list),
    h("section", { class: "card" }, h("h2", {}, t("providers.add_title")), createForm(list)),
  );
}

function createForm(list) {
  const provider = h(
    "select",
    { name: "provider", id: "provider-choice" },
    h("optgroup", { label: t("channel.sms") }, Object.keys(PROVIDERS).filter((name) => PROVIDERS[name].channel === "sms").map((name) => h("option", { value: name }, t(`providers.name.${name}`)))),
    h("optgroup", { label: t("channel.email") }, Object.keys(PROVIDERS).filter((name) => PROVIDERS[name].channel === "email").map((name) => h("option", { value: name }, t(`providers.name.${name}`)))),
  );
  const chosen = h("div", { class: "grid-form wide provider-fields", id: "provider-fields" });
  const draw = () => replace(chosen, providerFields(provider.value));
  provider.addEventListener("change", draw);
  draw();
  const element = form(
    { id: "provider-form" },
    [
      h(
        "div",
        { class: "field", dataset: { field: "provider" } },
        h("label", { for: "provider-choice" }, t("providers.provider")),
        provider,
        h("p", { class: "field-error", id: "provider-choice-error", hidden: true }),
      ),
      chosen,
      h(
        "div",
        { class: "grid-form" },
        field("priority", t("providers.priority"), { type: "number", min: 0, max: MAX_PRIORITY, step: 1, value: 0, hint: t("providers.priority_hint") }),
        field("description", t("providers.description"), { maxlength: MAX_DESCRIPTION }),
      ),
    ],
    t("providers.add"),
    async (values) => {
      const name = values.provider;
      const body = { channel: PROVIDERS[name].channel, provider: name, ...providerBody(name, values), priority: Number(values.priority || 0) };
      if (values.description.trim()) body.description = values.description.trim();
      const created = await post("/v1/provider-accounts", body);
      location.hash = `#/providers/${encodeURIComponent(created.id)}`;
    },
  );
  return element;
}

async function load(list) {
  const page = await get("/v1/provider-accounts?limit=100");
  if (!page.data.length) return replace(list, h("p", { class: "empty" }, t("providers.empty")));
  const locked = page.data.filter((account) => account.status === "needs_secrets");
  replace(
    list,
    locked.length
      ? h(
          "div",
          { class: "alert", role: "alert", id: "needs-secrets" },
          h("p", {}, h("strong", {}, t("providers.needs_secrets_lead"))),
          h("p", {}, t("providers.needs_secrets_hint")),
          h(
            "ul",
            {},
            locked.map((account) => h("li", {}, h("a", { href: `#/providers/${encodeURIComponent(account.id)}` }, t(`providers.name.${account.provider}`), " — ", account.description || account.id))),
          ),
        )
      : null,
    table(
      [t("providers.provider"), t("providers.channel"), t("providers.priority"), t("providers.col_status"), t("providers.col_secrets")],
      page.data.map((account) => [
        h(
          "span",
          {},
          h("a", { href: `#/providers/${encodeURIComponent(account.id)}` }, t(`providers.name.${account.provider}`)),
          account.description ? h("span", { class: "muted small block" }, account.description) : null,
        ),
        t(`channel.${account.channel}`),
        { num: String(account.priority) },
        statusBadge(account),
        h("span", { class: "mono small" }, secretsText(account)),
      ]),
      { id: "accounts", class: "stack wrap-cells" },
    ),
  );
}
