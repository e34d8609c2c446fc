// One message: what was sent, what it cost, and its story — created, each provider attempt,
// sent, delivered or failed — with a cancel button while it is scheduled.

import { get, post } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText } from "../lib/forms.js";
import { dateTime, money, t } from "../lib/i18n.js";
import { statusBadge } from "../lib/views.js";

export const title = () => t("message.title");

export async function render(id) {
  const container = h("div", { class: "message-page" });
  await draw(container, await get(`/v1/messages/${encodeURIComponent(id)}`));
  return container;
}

// "avlytext → mboasms (+23767)": the chain the message's route chose, and what matched it.
function routeText(route) {
  const matched = route.matched === "default" ? t("message.route_default") : route.matched === "test" ? t("message.route_test") : route.matched;
  return `${route.providers.join(" → ")} (${matched})`;
}

async function draw(container, message) {
  const facts = [
    ["message.field_id", h("span", { class: "mono" }, message.id)],
    ["message.field_status", statusBadge(message.status)],
    ["message.field_to", h("span", { class: "mono" }, message.to)],
    ["message.field_sender", message.sender],
    ["message.field_subject", message.subject],
    ["message.field_text", message.text ? h("span", { class: "pre" }, message.text) : null],
    ["message.field_body", message.body_purged_at ? t("message.body_purged", { date: dateTime(message.body_purged_at) }) : null],
    ["message.field_encoding", message.encoding ? `${message.encoding === "ucs2" ? "UCS-2" : "GSM-7"} · ${message.segments === 1 ? t("counter.segment") : t("counter.segments", { n: message.segments })}` : null],
    ["message.field_route", message.route ? routeText(message.route) : null],
    ["message.field_charge", money(message.charge)],
    ["message.field_created", dateTime(message.created_at)],
    ["message.field_scheduled", message.scheduled_at ? dateTime(message.scheduled_at) : null],
    ["message.field_error", message.error ? `${message.error.code}: ${message.error.message}` : null],
  ].filter(([, value]) => value !== null && value !== undefined && value !== "");
  const feedback = h("div", { role: "status" });
  const cancel =
    message.status === "scheduled"
      ? h("button", { type: "button", class: "danger", id: "cancel-message" }, t("message.cancel"))
      : null;
  cancel?.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      const updated = await post(`/v1/messages/${encodeURIComponent(message.id)}/cancel`);
      await draw(container, updated.attempts ? updated : await get(`/v1/messages/${encodeURIComponent(message.id)}`));
      container.prepend(h("p", { class: "success", role: "status" }, t("message.cancelled")));
    } catch (err) {
      cancel.disabled = false;
      replace(feedback, h("p", { class: "form-error", role: "alert" }, errorText(err)));
    }
  });
  replace(
    container,
    h("p", {}, h("a", { href: "#/messages" }, "← ", t("message.back"))),
    h(
      "section",
      { class: "card" },
      h("dl", { class: "facts" }, facts.map(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)])),
      cancel,
      feedback,
    ),
    h("section", { class: "card" }, h("h2", {}, t("message.timeline")), timeline(message)),
  );
}

/// The message's events and attempts, oldest first.
function timeline(message) {
  const events = [["message.created_event", message.created_at, null]];
  for (const attempt of message.attempts || []) {
    const detail = attempt.error ? `${attempt.error.code}: ${attempt.error.message}` : attempt.provider_message_id;
    events.push([
      null,
      attempt.created_at,
      h(
        "span",
        {},
        t("message.attempt", { n: attempt.attempt, provider: attempt.provider }),
        " — ",
        h("span", { class: `outcome-${attempt.outcome}` }, t(`message.outcome.${attempt.outcome}`)),
        ` (${attempt.duration_ms} ms)`,
        detail ? h("span", { class: "muted small block" }, detail) : null,
      ),
    ]);
  }
  for (const [key, at] of [
    ["message.sent_event", message.sent_at],
    ["message.delivered_event", message.delivered_at],
    ["message.failed_event", message.failed_at],
    ["message.cancelled_event", message.cancelled_at],
  ]) {
    if (at) events.push([key, at, null]);
  }
  events.sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  if (events.length === 1 && !(message.attempts || []).length) {
    events.push([null, null, h("span", { class: "muted" }, t("message.no_attempts"))]);
  }
  return h(
    "ol",
    { class: "timeline" },
    events.map(([key, at, content]) =>
      h("li", {}, at ? h("time", { datetime: at }, dateTime(at)) : null, h("span", {}, key ? t(key) : content)),
    ),
  );
}
