// Webhooks (owners and admins): the endpoints of the world the session looks at (test or live;
// each receives only its own mode's events), a form to register one — its signing secret shown
// once, with a copy button — and the list, where an endpoint crier turned off says why. Each
// endpoint's own page (`#/webhooks/whe_…`, pages/webhook.js) edits it and shows its deliveries.

import { get, post } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { field, form } from "../lib/forms.js";
import { dateTime, t } from "../lib/i18n.js";
import { table } from "../lib/views.js";

export const title = () => t("webhooks.title");

/// The event types an endpoint may want, in the API's order (`webhook.test` is sent only by the
/// test button, never subscribed to); tests/it/console.rs checks it against the server's list.
export const EVENTS = [
  "message.sent",
  "message.delivered",
  "message.failed",
  "message.cancelled",
  "campaign.launched",
  "campaign.completed",
  "campaign.failed",
  "payment.succeeded",
  "payment.failed",
  "payment.refunded",
  "contact.unsubscribed",
  "import.completed",
  "wallet.low_balance",
];

/// The API's limits on an endpoint's URL and description (src/webhooks/mod.rs).
export const MAX_URL = 2048;
export const MAX_DESCRIPTION = 500;

export function manages(session) {
  return session.role === "owner" || session.role === "admin";
}

export async function render(_param, session) {
  if (!manages(session)) return h("p", {}, t("webhooks.forbidden"));
  const list = h("div", { id: "webhook-list" });
  const secret = h("div", { id: "new-secret", "aria-live": "polite" });
  await load(list);
  const create = form(
    { id: "webhook-form" },
    [
      field("url", t("webhooks.url"), { type: "url", required: true, maxlength: MAX_URL, hint: t("webhooks.url_hint") }),
      eventsField([]),
      field("description", t("webhooks.description"), { maxlength: MAX_DESCRIPTION }),
    ],
    t("webhooks.create"),
    async (values, element) => {
      const body = { url: values.url.trim(), events: chosenEvents(values) };
      if (values.description.trim()) body.description = values.description.trim();
      const created = await post("/v1/webhook-endpoints", body);
      showSecret(secret, created.secret, created.id);
      element.reset();
      await load(list);
    },
  );
  return h(
    "div",
    { class: "webhooks-page" },
    h("p", { class: "lead", id: "webhooks-mode" }, t(session.me.mode === "test" ? "webhooks.mode_test" : "webhooks.mode_live")),
    h("section", { class: "card" }, h("h2", {}, t("webhooks.create_title")), create, secret),
    h("section", { class: "card" }, h("h2", {}, t("webhooks.list_title")), list),
  );
}

/// Whether `events` are all of them (`*` is stored as every type there is).
function everyEvent(events) {
  return events.includes("*") || EVENTS.every((kind) => events.includes(kind));
}

/// The events picker: "every event" (sent as `*`) or some of them. `selected` is what the
/// endpoint wants now.
export function eventsField(selected) {
  const all = everyEvent(selected);
  const boxes = EVENTS.map((kind) =>
    h(
      "label",
      { class: "check-label" },
      h("input", { type: "checkbox", name: "events", value: kind, checked: all || selected.includes(kind), disabled: all }),
      " ",
      h("span", { class: "mono small" }, kind),
    ),
  );
  const every = h("input", { type: "checkbox", name: "all_events", value: "*", checked: all });
  every.addEventListener("change", () => {
    for (const box of fieldset.querySelectorAll("input[name=events]")) {
      box.disabled = every.checked;
      if (every.checked) box.checked = true;
    }
  });
  const fieldset = h(
    "fieldset",
    { class: "field events", dataset: { field: "events" } },
    h("legend", {}, t("webhooks.events")),
    h("label", { class: "check-label every" }, every, " ", t("webhooks.all_events")),
    h("div", { class: "event-boxes" }, boxes),
    h("p", { class: "field-error", id: "events-error", hidden: true }),
  );
  return fieldset;
}

/// The `events` a form's values ask for: `["*"]` for every event, else the boxes ticked.
export function chosenEvents(values) {
  return (values.all_events || []).includes("*") ? ["*"] : values.events || [];
}

/// The signing secret of a new or rotated endpoint, shown once with a copy button.
export function showSecret(container, secret, endpointId) {
  const value = h("input", { type: "text", readonly: true, value: secret, class: "mono", id: "webhook-secret", "aria-label": t("webhooks.secret_label") });
  const copy = h("button", { type: "button", id: "copy-secret" }, t("keys.copy"));
  copy.addEventListener("click", async () => {
    value.select();
    try {
      await navigator.clipboard.writeText(secret);
      copy.textContent = t("keys.copied");
    } catch (err) {
      // Without clipboard access the selected text can be copied by hand.
    }
  });
  replace(
    container,
    h(
      "div",
      { class: "secret" },
      h("p", {}, h("strong", {}, t("webhooks.secret_once"))),
      h("div", { class: "row" }, value, copy),
      h("p", { class: "hint" }, t("webhooks.secret_hint")),
      endpointId ? h("p", {}, h("a", { href: `#/webhooks/${encodeURIComponent(endpointId)}`, id: "new-endpoint-link" }, t("webhooks.open_endpoint"))) : null,
    ),
  );
  value.focus();
  value.select();
}

/// The endpoint's state in words: on, off, or turned off by crier (with its reason apart).
export function stateBadge(endpoint) {
  if (endpoint.enabled) return h("span", { class: "badge endpoint-on" }, t("webhooks.on"));
  if (endpoint.disabled_reason) return h("span", { class: "badge endpoint-failing" }, t("webhooks.turned_off"));
  return h("span", { class: "badge endpoint-off" }, t("webhooks.off"));
}

export function eventsText(events) {
  return everyEvent(events) ? t("webhooks.all_events") : events.join(", ");
}

async function load(list) {
  const page = await get("/v1/webhook-endpoints?limit=100");
  if (!page.data.length) return replace(list, h("p", { class: "empty" }, t("webhooks.empty")));
  const turnedOff = page.data.filter((endpoint) => !endpoint.enabled && endpoint.disabled_reason);
  replace(
    list,
    turnedOff.length
      ? h(
          "div",
          { class: "alert", role: "alert", id: "turned-off" },
          h("p", {}, h("strong", {}, turnedOff.length === 1 ? t("webhooks.turned_off_lead_one") : t("webhooks.turned_off_lead", { n: turnedOff.length }))),
          h(
            "ul",
            {},
            turnedOff.map((endpoint) =>
              h("li", {}, h("a", { href: `#/webhooks/${encodeURIComponent(endpoint.id)}`, class: "mono" }, endpoint.url), " — ", endpoint.disabled_reason),
            ),
          ),
        )
      : null,
    table(
      [t("webhooks.url"), t("webhooks.events"), t("webhooks.col_state"), t("webhooks.col_created")],
      page.data.map((endpoint) => [
        h(
          "span",
          {},
          h("a", { href: `#/webhooks/${encodeURIComponent(endpoint.id)}`, class: "mono" }, endpoint.url),
          endpoint.description ? h("span", { class: "muted small block" }, endpoint.description) : null,
        ),
        h("span", { class: "small" }, eventsText(endpoint.events)),
        h(
          "span",
          {},
          stateBadge(endpoint),
          endpoint.disabled_reason ? h("span", { class: "small block off-reason" }, endpoint.disabled_reason) : null,
        ),
        dateTime(endpoint.created_at),
      ]),
      { id: "endpoints", class: "stack wrap-cells" },
    ),
  );
}
