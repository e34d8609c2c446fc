// Sending domains (`#/domains`, owners and admins, reached from settings): the workspace's own
// domains to send live email From, each with the DKIM record to publish (copy buttons), its
// state — pending waits for an instance admin, rejected says why —, once active the From
// mailbox to set or clear, and its deletion. A form adds one: the domain, an optional selector
// and an optional imported PEM key (else crier generates an Ed25519 one). A domain is the
// workspace's, not a mode's: the API refuses test mode, and the page says so instead.

import { api, get, post } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, t } from "../lib/i18n.js";
import { copyField } from "../lib/views.js";

export const title = () => t("domains.title");

/// The API's limits (src/sending_domains): a host name, a DNS label for the selector, a PEM key.
const MAX_DOMAIN = 253;
const MAX_SELECTOR = 63;

export function manages(session) {
  return session.role === "owner" || session.role === "admin";
}

export async function render(_param, session) {
  if (!manages(session)) return h("p", {}, t("domains.forbidden"));
  const back = h("p", {}, h("a", { href: "#/settings" }, "← ", t("domains.back")));
  if (session.me.mode === "test") {
    return h("div", { class: "domains-page" }, back, h("p", { class: "lead", id: "domains-test-mode" }, t("domains.test_mode")));
  }
  const list = h("div", { id: "domain-list" });
  await load(list);
  const create = form(
    { id: "domain-form", class: "grid-form" },
    [
      field("domain", t("domains.domain"), { required: true, maxlength: MAX_DOMAIN, autocomplete: "off", hint: t("domains.domain_hint") }),
      field("selector", t("domains.selector"), { maxlength: MAX_SELECTOR, autocomplete: "off", hint: t("domains.selector_hint") }),
      h(
        "div",
        { class: "wide" },
        field("private_key_pem", t("domains.key"), { rows: 5, class: "mono", spellcheck: "false", hint: t("domains.key_hint") }, "textarea"),
      ),
    ],
    t("domains.add"),
    async (values, element) => {
      const body = { domain: values.domain.trim() };
      if (values.selector.trim()) body.selector = values.selector.trim();
      if (values.private_key_pem.trim()) body.private_key_pem = values.private_key_pem.trim();
      const created = await post("/v1/sending-domains", body);
      element.reset();
      await load(list);
      document.querySelector(`[data-domain="${CSS.escape(created.id)}"] h3`)?.focus();
    },
  );
  return h(
    "div",
    { class: "domains-page" },
    back,
    h("p", { class: "lead" }, t("domains.lead")),
    h("h2", {}, t("domains.list_title")),
    list,
    h("section", { class: "card" }, h("h2", {}, t("domains.add_title")), create),
  );
}

async function load(list) {
  const page = await get("/v1/sending-domains?limit=100");
  if (!page.data.length) return replace(list, h("p", { class: "empty" }, t("domains.empty")));
  replace(
    list,
    page.data.map((domain) => domainCard(domain, () => load(list))),
  );
}

/// One domain: its state, the record to publish, the From once active, deletion.
function domainCard(domain, reload) {
  const feedback = h("div", { class: "domain-feedback", "aria-live": "polite" });
  const path = `/v1/sending-domains/${encodeURIComponent(domain.id)}`;
  const remove = h("button", { type: "button", class: "danger small delete-domain" }, t("domains.delete"));
  remove.addEventListener("click", async () => {
    if (!confirm(t("domains.delete_confirm", { domain: domain.domain }))) return;
    remove.disabled = true;
    try {
      await api("DELETE", path);
      await reload();
    } catch (err) {
      remove.disabled = false;
      replace(feedback, h("p", { class: "form-error", role: "alert" }, errorText(err)));
    }
  });
  const record = domain.dns_record;
  const slug = domain.id.replace(/[^A-Za-z0-9_-]/g, "");
  return h(
    "section",
    { class: "card domain", dataset: { domain: domain.id, status: domain.status } },
    h(
      "div",
      { class: "card-head" },
      h("h3", { class: "mono", tabindex: "-1" }, domain.domain),
      h("span", { class: `badge domain-${domain.status}` }, t(`domains.status_${domain.status}`)),
    ),
    stateText(domain),
    // A rejected domain is not used whatever DNS says: its record is not offered for publishing.
    domain.status === "rejected"
      ? null
      : [
          h("h4", {}, t("domains.record")),
          h("p", { class: "hint" }, t("domains.record_hint")),
          h(
            "dl",
            { class: "facts record" },
            h("dt", {}, t("domains.record_name")),
            h("dd", {}, copyField(`record-name-${slug}`, record.name, t("domains.record_name"))),
            h("dt", {}, t("domains.record_type")),
            h("dd", { class: "mono record-type" }, record.type),
            h("dt", {}, t("domains.record_value")),
            h("dd", {}, copyField(`record-value-${slug}`, record.value, t("domains.record_value"))),
          ),
        ],
    domain.status === "active" ? fromForm(domain, path, reload) : null,
    h(
      "p",
      { class: "muted small" },
      t("domains.details", { selector: domain.selector, algorithm: domain.algorithm, date: dateTime(domain.created_at) }),
    ),
    h("div", { class: "actions" }, remove),
    feedback,
  );
}

function stateText(domain) {
  if (domain.status === "pending") return h("p", { class: "state-text" }, t("domains.pending_text"));
  if (domain.status === "rejected") {
    return h(
      "div",
      { class: "alert state-text", role: "alert" },
      h("p", {}, h("strong", {}, t("domains.rejected_text"))),
      domain.rejection_reason ? h("p", { class: "rejection-reason" }, domain.rejection_reason) : null,
    );
  }
  return h(
    "p",
    { class: "state-text success" },
    domain.from ? t("domains.active_from", { from: domain.from }) : t("domains.active_no_from"),
  );
}

/// The workspace's From at this domain: set (one domain holds it at a time) or cleared.
function fromForm(domain, path, reload) {
  const element = form(
    { class: "inline-form from-form" },
    [
      field("from", t("domains.from"), {
        maxlength: 320,
        autocomplete: "off",
        value: domain.from || "",
        required: true,
        hint: t("domains.from_hint", { domain: domain.domain }),
      }),
    ],
    t("domains.from_save"),
    async (values) => {
      await api("PUT", path, { from: values.from.trim() });
      await reload();
    },
  );
  if (domain.from) {
    const clear = h("button", { type: "button", class: "clear-from" }, t("domains.from_clear"));
    clear.addEventListener("click", async () => {
      clear.disabled = true;
      try {
        await api("PUT", path, { from: null });
        await reload();
      } catch (err) {
        clear.disabled = false;
        const message = element.querySelector(".form-error");
        message.textContent = errorText(err);
        message.hidden = false;
      }
    });
    element.querySelector(".actions").append(clear);
  }
  return element;
}
