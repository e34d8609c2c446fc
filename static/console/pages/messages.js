// Messages: the list with its filters (status, channel, creation dates), page after page, and
// the "send a test" form with a live SMS counter priced by `POST /v1/messages/estimate`.

import { get, newIdempotencyKey, post, query } from "../lib/api.js";
import { append, h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { money, number, t } from "../lib/i18n.js";
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
  const counter = h("div", { class: "counter", id: "sms-counter", "aria-live": "polite" }, t("counter.waiting"));
  const status = h("p", { class: "success", role: "status", hidden: true });
  const element = form(
    { id: "send-form" },
    [
      field("to", t("messages.send_to"), { type: "tel", autocomplete: "off", required: true, placeholder: "+237 6…" }),
      field("text", t("messages.send_text"), { rows: 4, required: true }, "textarea"),
      counter,
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
      showCounter(counter, "", null, null);
      await sent();
    },
  );
  element.append(status);
  // A changed message is a new send: the key of a refused attempt must not replay it.
  element.addEventListener("input", () => {
    idempotencyKey = newIdempotencyKey();
    status.hidden = true;
  });
  let timer = null;
  let asked = 0;
  const estimate = () => {
    const to = element.elements.to.value.trim();
    const text = element.elements.text.value;
    clearTimeout(timer);
    if (!text) return showCounter(counter, "", null, null);
    timer = setTimeout(async () => {
      const mine = ++asked;
      try {
        const result = await post("/v1/messages/estimate", { channel: "sms", to, text });
        if (mine === asked) showCounter(counter, text, result, null);
      } catch (err) {
        if (mine === asked) showCounter(counter, text, null, err);
      }
    }, 250);
  };
  element.elements.to.addEventListener("input", estimate);
  element.elements.text.addEventListener("input", estimate);
  return element;
}

/// Characters, encoding, segments and price, with the characters that force UCS-2 marked.
function showCounter(counter, text, estimate, error) {
  if (!text) return replace(counter, t("counter.waiting"));
  const characters = [...text].length;
  const parts = [h("span", { class: "count", id: "counter-characters" }, t("counter.characters", { n: number(characters) }))];
  if (estimate) {
    parts.push(
      h("span", { class: `badge encoding-${estimate.encoding}`, id: "counter-encoding" }, estimate.encoding === "ucs2" ? "UCS-2" : "GSM-7"),
      h("span", { id: "counter-segments" }, estimate.segments === 1 ? t("counter.segment") : t("counter.segments", { n: estimate.segments })),
      h("span", { id: "counter-price" }, t("counter.price", { price: money(estimate.charge) })),
    );
    if (!estimate.affordable) parts.push(h("span", { class: "warning" }, t("counter.unaffordable")));
  }
  const rows = [h("p", { class: "counter-line" }, parts)];
  const forcing = (estimate && estimate.non_gsm_characters) || [];
  if (forcing.length) {
    const marked = new Set(forcing);
    rows.push(
      h("p", { class: "small" }, t("counter.ucs2_because"), " ", forcing.map((c) => h("mark", { class: "ucs2" }, c))),
      h("p", { class: "preview", "aria-hidden": "true" }, [...text].map((c) => (marked.has(c) ? h("mark", { class: "ucs2" }, c) : c))),
    );
  }
  const fields = (error && error.fields) || {};
  if (error && !(Object.keys(fields).length === 1 && fields.to)) {
    rows.push(h("p", { class: "field-error" }, Object.keys(fields).length ? Object.values(fields).join(" ") : errorText(error)));
  }
  replace(counter, rows);
}
