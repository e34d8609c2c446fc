// Messages: the list with its filters (status, channel, creation dates), page after page, and
// the "send a test" form with a live SMS counter priced by `POST /v1/messages/estimate`.

import { get, newIdempotencyKey, post, query } from "../lib/api.js";
import { append, h, replace } from "../lib/dom.js";
import { smsCounter } from "../lib/counter.js";
import { field, fieldAround, form } from "../lib/forms.js";
import { t } from "../lib/i18n.js";
import { messageTable } from "../lib/views.js";

export const title = () => t("messages.title");

const STATUSES = ["scheduled", "queued", "sending", "sent", "delivered", "failed", "cancelled"];

export async function render() {
  const list = h("div", { id: "message-list" });
  const filters = filterForm((values) => load(list, values));
  await load(list, {});
  return h(
    "div",
    { class: "messages-page" },
    h("section", { class: "card" }, h("h2", {}, t("messages.send_title")), sendForm(() => load(list, {}))),
    h("section", { class: "card" }, h("h2", {}, t("messages.filters")), filters, list),
  );
}

function filterForm(apply) {
  const any = ["", t("messages.any")];
  return form(
    { class: "filters", id: "filters" },
    [
      field("status", t("messages.status"), { options: [any, ...STATUSES.map((s) => [s, t(`status.${s}`)])] }, "select"),
      field("channel", t("messages.channel"), { options: [any, ["sms", t("channel.sms")], ["email", t("channel.email")]] }, "select"),
      field("created_from", t("messages.from"), { type: "date" }),
      field("created_to", t("messages.to_date"), { type: "date" }),
    ],
    t("messages.apply"),
    (values) => apply(values),
  );
}

/// Local dates from the date inputs, as the instants they start at in the browser's zone.
function toInstant(localDate) {
  return localDate ? new Date(localDate + "T00:00:00").toISOString() : "";
}

async function load(list, values, cursor) {
  const params = {
    limit: 25,
    status: values.status,
    channel: values.channel,
    created_from: toInstant(values.created_from),
    created_to: toInstant(values.created_to),
    cursor,
  };
  const page = await get("/v1/messages" + query(params));
  if (!cursor) replace(list);
  list.querySelector(".more")?.remove();
  if (!cursor && page.data.length === 0) {
    append(list, [h("p", { class: "empty" }, t("messages.empty"))]);
    return;
  }
  const existing = list.querySelector("tbody");
  if (existing) append(existing, [...messageTable(page.data).querySelectorAll("tbody tr")]);
  else append(list, [messageTable(page.data)]);
  if (page.next_cursor) {
    const more = h("button", { type: "button", class: "more" }, t("messages.more"));
    more.addEventListener("click", () => load(list, values, page.next_cursor).catch(() => {}));
    append(list, [more]);
  }
}

function sendForm(sent) {
  let idempotencyKey = newIdempotencyKey();
  const text = h("textarea", { id: "f-send-text", name: "text", rows: 4, required: true });
  const counter = smsCounter(text, (value) => ({ channel: "sms", to: element.elements.to.value.trim(), text: value }));
  const status = h("p", { class: "success", role: "status", hidden: true });
  const element = form(
    { id: "send-form" },
    [
      field("to", t("messages.send_to"), { type: "tel", autocomplete: "off", required: true, placeholder: "+237 6…" }),
      fieldAround("text", t("messages.send_text"), text),
      counter.element,
      field("scheduled_at", t("messages.send_at"), { type: "datetime-local", hint: t("messages.send_at_hint") }),
    ],
    t("messages.send_submit"),
    async (values) => {
      const body = { channel: "sms", to: values.to, text: values.text };
      // A local date and time, sent as the instant it is in the browser's time zone.
      if (values.scheduled_at) body.scheduled_at = new Date(values.scheduled_at).toISOString();
      const message = await post("/v1/messages", body, { idempotencyKey });
      idempotencyKey = newIdempotencyKey();
      replace(status, h("a", { href: `#/message/${encodeURIComponent(message.id)}` }, t("messages.sent", { id: message.id })));
      status.hidden = false;
      element.elements.text.value = "";
      element.elements.scheduled_at.value = "";
      counter.reset();
      await sent();
    },
  );
  element.append(status);
  // A changed message is a new send: the key of a refused attempt must not replay it.
  element.addEventListener("input", () => {
    idempotencyKey = newIdempotencyKey();
    status.hidden = true;
  });
  // The number matters to the price (its country's tariff): a change of it asks again.
  element.elements.to.addEventListener("input", counter.update);
  return element;
}
