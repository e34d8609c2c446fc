// The workspace at a glance: balance, plan and quotas with their periods, messages per day,
// the latest messages, and a getting-started checklist that goes away once everything is done.

import { get } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { barChart } from "../lib/chart.js";
import { date, day, lastDay, money, number, t } from "../lib/i18n.js";
import { messageTable } from "../lib/views.js";

export const title = () => t("overview.title");

const DAYS = 14;

export async function render(_param, session) {
  const manager = session.role === "owner" || session.role === "admin";
  const [billing, timeline, recent, keys, contacts] = await Promise.all([
    get("/v1/billing"),
    get(`/v1/messages/timeline?days=${DAYS}`),
    get("/v1/messages?limit=5"),
    manager ? get("/v1/api-keys?limit=1") : null,
    get("/v1/contacts?limit=1"),
  ]);
  return h(
    "div",
    { class: "overview" },
    checklist(billing, recent, keys, contacts),
    h(
      "div",
      { class: "tiles" },
      tile(t("overview.balance"), h("p", { class: "big", id: "balance" }, money(billing.wallet.balance))),
      tile(t("overview.plan"), planText(billing.plan)),
      tile(t("overview.quotas"), quota(t("overview.quota_sms"), billing.quotas.sms), quota(t("overview.quota_email"), billing.quotas.email)),
      tile(t("overview.sender"), h("p", { class: "big mono" }, billing.effective_sender)),
    ),
    h("section", { class: "card" }, h("h2", {}, t("overview.chart")), chart(timeline)),
    h(
      "section",
      { class: "card" },
      h("h2", {}, t("overview.recent")),
      recent.data.length ? messageTable(recent.data) : h("p", { class: "empty" }, t("overview.recent_empty")),
      h("p", {}, h("a", { href: "#/messages" }, t("overview.all_messages"))),
    ),
  );
}

function tile(heading, ...content) {
  return h("section", { class: "card tile" }, h("h2", {}, heading), content);
}

function planText(plan) {
  if (plan.status !== "active") return h("p", { class: "big" }, plan.name || t("overview.plan_none"));
  return [
    h("p", { class: "big" }, plan.name),
    plan.period_end ? h("p", { class: "muted" }, t("overview.plan_until", { date: lastDay(plan.period_end) })) : null,
  ];
}

function quota(label, q) {
  return h(
    "div",
    { class: "quota" },
    h("p", {}, h("strong", {}, label), " ", t("overview.quota_line", { used: number(q.used), included: number(q.included) })),
    h("progress", { max: Math.max(1, q.included), value: Math.min(q.used, Math.max(1, q.included)), "aria-label": label }),
    // The days the period covers — UTC days, as quotas count them: one date for a day's quota,
    // the first and the last otherwise.
    quotaDays(q.period_start, q.period_end),
  );
}

/// Every day of the window, zero where the API listed none.
function chart(timeline) {
  const byDay = new Map(timeline.data.map((point) => [point.day, point]));
  const labels = [];
  const sms = [];
  const email = [];
  const today = new Date();
  for (let i = DAYS - 1; i >= 0; i--) {
    const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i));
    const key = d.toISOString().slice(0, 10);
    const point = byDay.get(key);
    labels.push(day(key));
    sms.push(point ? point.sms : 0);
    email.push(point ? point.email : 0);
  }
  const figure = barChart({
    labels,
    title: t("overview.chart"),
    series: [
      { name: t("chart.sms"), values: sms, className: "series-a" },
      { name: t("chart.email"), values: email, className: "series-b" },
    ],
  });
  if (timeline.data.length === 0) return [figure, h("p", { class: "muted" }, t("overview.chart_empty"))];
  return figure;
}

/// The first steps of a new workspace; none of it once all are done.
function checklist(billing, recent, keys, contacts) {
  const steps = [
    ["credit", billing.wallet.balance.amount_minor > 0 || billing.plan.status === "active", "#/billing"],
    ["key", keys ? keys.data.length > 0 : null, "#/keys"],
    ["send", recent.data.length > 0, "#/messages"],
    ["sender", billing.sender_id !== null, "#/settings"],
    ["contacts", contacts.data.length > 0, "#/import"],
  ].filter(([, done]) => done !== null);
  if (steps.every(([, done]) => done)) return null;
  return h(
    "section",
    { class: "card checklist", id: "checklist" },
    h("h2", {}, t("checklist.title")),
    h(
      "ol",
      {},
      steps.map(([name, done, href]) =>
        h(
          "li",
          { class: done ? "done" : "todo", dataset: { step: name } },
          h("span", { class: "check", "aria-hidden": "true" }, done ? "✓" : ""),
          done ? h("span", {}, t(`checklist.${name}`)) : h("a", { href }, t(`checklist.${name}`)),
          h("span", { class: "visually-hidden" }, ` (${done ? t("checklist.done") : t("checklist.todo")})`),
        ),
      ),
    ),
  );
}

/// A quota period's days, in UTC as the quotas count them (a reader in Douala or New York sees
/// the same days as the server).
function quotaDays(start, end) {
  const [first, last] = [date(start, "UTC"), lastDay(end, "UTC")];
  return h("p", { class: "muted small" }, first === last ? first : t("overview.quota_period", { start: first, end: last }));
}
