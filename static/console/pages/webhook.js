// One webhook endpoint (`#/webhooks/whe_…`): what it is and wants, why crier turned it off if it
// did; turning it on or off, a test event, a new signing secret (the old one keeps signing for
// the overlap chosen), its deletion; the form to change its URL, events and description; and
// its delivery log, newest first, page after page, with "retry" on a failed delivery. After a
// test event the log is read again until that delivery is settled.

import { api, get, post, query } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, number, t } from "../lib/i18n.js";
import { table } from "../lib/views.js";
import { MAX_DESCRIPTION, MAX_URL, chosenEvents, eventsField, eventsText, manages, showSecret, stateBadge } from "./webhooks.js";

export const title = () => t("webhook.title");

/// How long the old secret of a rotation keeps signing, in seconds (the API allows 0 to 7 days
/// and defaults to one).
const OVERLAPS = [
  [0, "webhook.overlap_none"],
  [3600, "webhook.overlap_hour"],
  [86400, "webhook.overlap_day"],
  [604800, "webhook.overlap_week"],
];

/// Deliveries per page of the log.
const PAGE = 20;

export async function render(id, session) {
  if (!manages(session)) return h("p", {}, t("webhooks.forbidden"));
  const endpoint = await get(`/v1/webhook-endpoints/${encodeURIComponent(id)}`);
  const container = h("div", { class: "webhook-page" });
  const log = deliveryLog(endpoint.id);
  await log.load();
  const summary = h("section", { class: "card", id: "endpoint-summary" });
  const edit = h("section", { class: "card" });
  const draw = (current, saved = false) => {
    drawSummary(summary, current, { redraw: draw, log });
    replace(edit, h("h2", {}, t("webhook.edit_title")), editForm(current, draw, saved));
  };
  draw(endpoint);
  replace(
    container,
    h("p", {}, h("a", { href: "#/webhooks" }, "← ", t("webhook.back"))),
    summary,
    h("section", { class: "card", id: "delivery-log" }, h("div", { class: "card-head" }, h("h2", {}, t("webhook.deliveries")), log.refresh), log.element),
    edit,
  );
  return container;
}

function drawSummary(section, endpoint, { redraw, log }) {
  const feedback = h("div", { id: "endpoint-feedback", "aria-live": "polite" });
  const secret = h("div", { id: "new-secret", "aria-live": "polite" });
  const fail = (err) => replace(feedback, h("p", { class: "form-error", role: "alert" }, errorText(err)));
  const busy = async (button, work) => {
    button.disabled = true;
    replace(feedback);
    try {
      await work();
    } catch (err) {
      fail(err);
    } finally {
      button.disabled = false;
    }
  };
  const path = `/v1/webhook-endpoints/${encodeURIComponent(endpoint.id)}`;

  const toggle = h("button", { type: "button", id: "toggle-endpoint", class: endpoint.enabled ? "" : "primary" }, t(endpoint.enabled ? "webhook.disable" : "webhook.enable"));
  toggle.addEventListener("click", () =>
    busy(toggle, async () => {
      redraw(await api("PATCH", path, { enabled: !endpoint.enabled }));
      document.getElementById("toggle-endpoint")?.focus();
    }),
  );

  const test = h("button", { type: "button", id: "send-test", disabled: !endpoint.enabled }, t("webhook.send_test"));
  test.addEventListener("click", () =>
    busy(test, async () => {
      const delivery = await post(`${path}/test`);
      replace(feedback, h("p", { class: "success", role: "status" }, t("webhook.test_queued")));
      await log.load();
      log.follow(delivery.id);
    }),
  );

  const overlap = h(
    "select",
    { id: "overlap", "aria-label": t("webhook.overlap"), class: "grace" },
    OVERLAPS.map(([seconds, label]) => h("option", { value: seconds, selected: seconds === 86400 }, t(label))),
  );
  const rotate = h("button", { type: "button", id: "rotate-secret" }, t("webhook.rotate"));
  rotate.addEventListener("click", () =>
    busy(rotate, async () => {
      const rotated = await post(`${path}/rotate-secret`, { overlap_seconds: Number(overlap.value) });
      redraw(rotated);
      showSecret(document.getElementById("new-secret"), rotated.secret, null);
    }),
  );

  const remove = h("button", { type: "button", id: "delete-endpoint", class: "danger" }, t("webhook.delete"));
  remove.addEventListener("click", () => {
    if (!confirm(t("webhook.delete_confirm", { url: endpoint.url }))) return;
    busy(remove, async () => {
      log.stop();
      await api("DELETE", path);
      location.hash = "#/webhooks";
    });
  });

  const facts = [
    ["webhooks.url", h("span", { class: "mono", id: "endpoint-url" }, endpoint.url)],
    ["webhook.description", endpoint.description],
    ["webhook.mode", t(`mode.${endpoint.mode}`)],
    ["webhooks.events", eventsText(endpoint.events)],
    ["webhooks.col_state", h("span", { id: "endpoint-state" }, stateBadge(endpoint))],
    [
      "webhook.previous_secret",
      endpoint.previous_secret_expires_at ? t("webhook.previous_until", { date: dateTime(endpoint.previous_secret_expires_at) }) : null,
    ],
    ["webhooks.col_created", dateTime(endpoint.created_at)],
    ["webhook.updated", dateTime(endpoint.updated_at)],
  ].filter(([, value]) => value !== null && value !== undefined && value !== "");

  replace(
    section,
    endpoint.disabled_reason
      ? h(
          "div",
          { class: "alert", role: "alert", id: "disabled-reason" },
          h("p", {}, h("strong", {}, t("webhook.turned_off_title"))),
          h("p", {}, endpoint.disabled_reason),
          h("p", { class: "small" }, t("webhook.turned_off_hint")),
        )
      : null,
    h("dl", { class: "facts" }, facts.map(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)])),
    h(
      "div",
      { class: "row wrap endpoint-actions" },
      toggle,
      test,
      h("span", { class: "row rotate-group" }, overlap, rotate),
      remove,
    ),
    h("p", { class: "hint" }, t("webhook.rotate_hint")),
    feedback,
    secret,
  );
}

/// The form that changes the endpoint; `saved` says the last change was saved (the form is
/// drawn again from the API's answer).
function editForm(endpoint, redraw, saved) {
  const result = h("p", { class: "success", role: "status", id: "edit-saved", hidden: !saved }, t("webhook.saved"));
  const element = form(
    { id: "edit-form" },
    [
      field("url", t("webhooks.url"), { type: "url", required: true, maxlength: MAX_URL, value: endpoint.url }),
      eventsField(endpoint.events),
      field("description", t("webhooks.description"), { maxlength: MAX_DESCRIPTION, value: endpoint.description || "" }),
    ],
    t("webhook.save"),
    async (values) => {
      const description = values.description.trim();
      const updated = await api("PATCH", `/v1/webhook-endpoints/${encodeURIComponent(endpoint.id)}`, {
        url: values.url.trim(),
        events: chosenEvents(values),
        description: description || null,
      });
      redraw(updated, true);
    },
  );
  return [element, result];
}

/// The endpoint's deliveries: `load()` shows the first page, "show more" appends the next,
/// `follow(id)` reads the first page again every second until that delivery is settled, and
/// `stop()` ends that.
function deliveryLog(endpointId) {
  const element = h("div", { id: "deliveries-list", "aria-live": "polite" });
  const refresh = h("button", { type: "button", class: "small", id: "refresh-log" }, t("webhook.refresh"));
  refresh.addEventListener("click", async () => {
    refresh.disabled = true;
    try {
      await load();
    } catch (err) {
      replace(element, h("p", { class: "form-error", role: "alert" }, errorText(err)));
    } finally {
      refresh.disabled = false;
    }
  });
  const heads = () => [
    t("webhook.col_created"),
    t("webhook.col_event"),
    t("webhook.col_status"),
    t("webhook.col_attempts"),
    t("webhook.col_http"),
    t("webhook.col_latency"),
    t("webhook.col_response"),
    t("webhook.col_next"),
    "",
  ];
  let asked = 0;
  let stopped = false;

  async function load() {
    const mine = ++asked;
    const page = await get(`/v1/webhook-endpoints/${encodeURIComponent(endpointId)}/deliveries` + query({ limit: PAGE }));
    if (mine !== asked) return page;
    if (!page.data.length) {
      replace(element, h("p", { class: "empty" }, t("webhook.no_deliveries")));
      return page;
    }
    const wrap = table(heads(), [], { id: "deliveries", class: "stack wrap-cells" });
    replace(element, wrap);
    showPage(wrap.querySelector("tbody"), page, mine);
    return page;
  }

  function showPage(tbody, page, mine) {
    for (const delivery of page.data) tbody.append(row(delivery));
    element.querySelector(".more")?.remove();
    if (!page.next_cursor) return;
    const more = h("button", { type: "button" }, t("webhook.more"));
    more.addEventListener("click", async () => {
      more.disabled = true;
      try {
        const next = await get(`/v1/webhook-endpoints/${encodeURIComponent(endpointId)}/deliveries` + query({ limit: PAGE, cursor: page.next_cursor }));
        if (mine === asked) showPage(tbody, next, mine);
      } catch (err) {
        more.disabled = false;
        more.after(h("p", { class: "form-error", role: "alert" }, errorText(err)));
      }
    });
    element.append(h("p", { class: "actions more" }, more));
  }

  function row(delivery) {
    const last = delivery.last_attempt;
    const labels = heads();
    const excerpt = last ? last.error || last.response_body : null;
    const retryable = delivery.status === "failed" || (delivery.status === "pending" && delivery.attempts > 0);
    const cells = [
      dateTime(delivery.created_at),
      h("span", { class: "mono small" }, delivery.event_type),
      h("span", { class: `badge delivery-${delivery.status}` }, t(`delivery.${delivery.status}`)),
      { num: number(delivery.attempts) },
      { num: last && last.response_status !== null ? String(last.response_status) : "—" },
      { num: last && last.latency_ms !== null && last.latency_ms !== undefined ? t("webhook.ms", { n: number(last.latency_ms) }) : "—" },
      excerpt ? h("span", { class: "mono small excerpt" }, excerpt.length > 200 ? excerpt.slice(0, 200) + "…" : excerpt) : "—",
      delivery.next_attempt_at ? dateTime(delivery.next_attempt_at) : "—",
      retryable ? retryButton(delivery) : "",
    ];
    return h(
      "tr",
      { dataset: { id: delivery.id, status: delivery.status } },
      cells.map((cell, index) =>
        cell && typeof cell === "object" && "num" in cell
          ? h("td", { class: "num", "data-label": labels[index] }, cell.num)
          : h("td", { "data-label": labels[index] }, cell),
      ),
    );
  }

  function retryButton(delivery) {
    const button = h(
      "button",
      { type: "button", class: "small", dataset: { retry: delivery.id }, "aria-label": t("webhook.retry_of", { event: delivery.event_type }) },
      t("webhook.retry"),
    );
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await post(`/v1/webhook-deliveries/${encodeURIComponent(delivery.id)}/retry`);
        await load();
        follow(delivery.id);
      } catch (err) {
        button.disabled = false;
        button.after(h("p", { class: "form-error", role: "alert" }, errorText(err)));
      }
    });
    return button;
  }

  /// Reads the log again each second (at most 30 times, while the page is shown) until the
  /// delivery `id` is no longer pending.
  function follow(id, tries = 30) {
    setTimeout(async () => {
      if (stopped || !element.isConnected || tries <= 0) return;
      try {
        const page = await load();
        const delivery = page.data.find((candidate) => candidate.id === id);
        if (delivery && delivery.status === "pending") follow(id, tries - 1);
      } catch (err) {
        // The refresh button shows errors; following just stops.
      }
    }, 1000);
  }

  /// No more following (the endpoint is being deleted).
  function stop() {
    stopped = true;
  }

  return { element, refresh, load, follow, stop };
}
