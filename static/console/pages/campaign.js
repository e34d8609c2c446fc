// One campaign. A draft: the composer — channel, name, SMS text with the live counter (the
// send-a-test form's) and its opt-out line, or an email's subject, HTML and text; the audience
// (everyone, or groups and segments); a schedule — saved as a draft, then its personalisation
// preview for a sample contact, its estimate, and launch (with an Idempotency-Key). Once
// launched: its progress, stats, a chart of its timeline, and cancel while it may be.

import { api, get, newIdempotencyKey, post } from "../lib/api.js";
import { barChart } from "../lib/chart.js";
import { smsCounter } from "../lib/counter.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, fieldAround, form } from "../lib/forms.js";
import { dateTime, getLocale, money, number, t } from "../lib/i18n.js";
import { all } from "./contacts.js";
import { campaignBadge } from "./campaigns.js";

export const title = (id) => (id === "new" ? t("campaign.new") : t("campaign.title"));

/// The sample contact's number (`docs/rules/campaigns.md`): the counter prices a message to it.
const SAMPLE_PHONE = "+237677123456";
const EXCLUDED = ["unsubscribed", "invalid", "bounced", "complained", "no_address", "render_failed", "duplicate", "deleted"];
const LIVE = new Set(["scheduled", "running"]);
const REFRESH_MS = 1500;

export async function render(id) {
  const container = h("div", { class: "campaign-page" });
  const campaign = id === "new" ? null : await get(`/v1/campaigns/${encodeURIComponent(id)}`);
  if (!campaign || campaign.status === "draft") await drawDraft(container, campaign);
  else await drawLaunched(container, campaign);
  return container;
}

/// The heading once a new campaign has its id (the page was drawn as "New campaign").
function retitle() {
  const heading = document.getElementById("page-title");
  if (heading) heading.textContent = t("campaign.title");
  document.title = `${t("campaign.title")} · crier`;
}

const back = () => h("p", {}, h("a", { href: "#/campaigns" }, "← ", t("campaign.back")));

async function drawDraft(container, campaign) {
  const [groups, segments, billing, contacts] = await Promise.all([all("/v1/groups"), all("/v1/segments"), get("/v1/billing"), get("/v1/contacts?limit=20")]);
  const previewCard = h("section", { class: "card", id: "campaign-preview", hidden: !campaign });
  const estimateCard = h("section", { class: "card", id: "campaign-estimate", hidden: !campaign });
  const composer = composeForm(campaign, groups, segments, billing, async (saved) => {
    const first = !campaign;
    campaign = saved;
    if (first) {
      history.replaceState(null, "", `#/campaign/${encodeURIComponent(saved.id)}`);
      retitle();
    }
    previewCard.hidden = false;
    estimateCard.hidden = false;
    drawEstimate(estimateCard, campaign, container);
    await preview(previewCard, campaign, contacts.data, previewCard.querySelector("select")?.value);
  });
  replace(container, back(), h("section", { class: "card" }, composer), previewCard, estimateCard);
  if (campaign) {
    drawEstimate(estimateCard, campaign, container);
    await preview(previewCard, campaign, contacts.data, "");
  }
}

function composeForm(campaign, groups, segments, billing, saved) {
  const text = h("textarea", { id: "f-campaign-text", name: "text", rows: 5 });
  const counter = smsCounter(text, (value) => ({ channel: "sms", to: SAMPLE_PHONE, text: value }), "campaign-counter");
  const audience = campaign ? campaign.audience : { all: true };
  const listBoxes = (name, items, chosen) =>
    items.map((item) =>
      h("label", { class: "check-label" }, h("input", { type: "checkbox", name, value: item.id, checked: (chosen || []).includes(item.id) }), " ", item.name),
    );
  const status = h("p", { class: "success", role: "status", hidden: true });
  const element = form(
    { id: "campaign-form" },
    [
      h(
        "div",
        { class: "grid-form" },
        field("name", t("campaign.name"), { required: true, maxlength: 200 }),
        field("channel", t("messages.channel"), { options: [["sms", t("channel.sms")], ["email", t("channel.email")]] }, "select"),
      ),
      h(
        "div",
        { class: "sms-only" },
        h("p", { class: "small muted" }, t("campaign.sender", { sender: billing.effective_sender })),
        fieldAround("text", t("campaign.text"), text, t("campaign.text_hint")),
        counter.element,
        h(
          "div",
          { class: "field", dataset: { field: "opt_out_line" } },
          h("label", { class: "check-label" }, h("input", { type: "checkbox", name: "opt_out_line", value: "yes", checked: campaign ? campaign.opt_out_line : true }), " ", t("campaign.opt_out")),
          h("p", { class: "field-error", hidden: true }),
        ),
      ),
      h(
        "div",
        { class: "email-only" },
        field("from_name", t("campaign.from_name"), { maxlength: 100 }),
        field("subject", t("campaign.subject"), { maxlength: 998 }),
        field("html", t("campaign.html"), { rows: 6, class: "mono" }, "textarea"),
        field("email_text", t("campaign.email_text"), { rows: 4 }, "textarea"),
      ),
      h(
        "fieldset",
        { class: "field", dataset: { field: "audience" } },
        h("legend", {}, t("campaign.audience")),
        h("label", { class: "check-label" }, h("input", { type: "radio", name: "audience_kind", value: "all", checked: Boolean(audience.all) }), " ", t("campaign.audience_all")),
        h("label", { class: "check-label" }, h("input", { type: "radio", name: "audience_kind", value: "lists", checked: !audience.all }), " ", t("campaign.audience_lists")),
        h("div", { class: "lists" }, groups.length ? h("p", { class: "small muted" }, t("contacts.group")) : null, listBoxes("groups", groups, audience.groups)),
        h("div", { class: "lists" }, segments.length ? h("p", { class: "small muted" }, t("contacts.segment")) : null, listBoxes("segments", segments, audience.segments)),
        h("p", { class: "field-error", hidden: true }),
      ),
      h(
        "div",
        { class: "field", dataset: { field: "track_links" } },
        h("label", { class: "check-label" }, h("input", { type: "checkbox", name: "track_links", value: "yes", checked: campaign ? campaign.track_links : false }), " ", t("campaign.track_links")),
        h("p", { class: "small muted" }, t("campaign.track_links_hint")),
        h("p", { class: "field-error", hidden: true }),
      ),
      field("scheduled_at", t("campaign.schedule"), { type: "datetime-local", hint: t("campaign.schedule_hint") }),
    ],
    t("campaign.save"),
    async (values) => {
      const body = {
        name: values.name,
        channel: values.channel,
        audience: values.audience_kind === "all" ? { all: true } : { groups: values.groups, segments: values.segments },
        scheduled_at: values.scheduled_at ? new Date(values.scheduled_at).toISOString() : null,
        track_links: values.track_links.length > 0,
      };
      if (values.channel === "sms") {
        Object.assign(body, { text: values.text, opt_out_line: values.opt_out_line.length > 0 });
      } else {
        Object.assign(body, { subject: values.subject, html: values.html || null, text: values.email_text || null, from_name: values.from_name || null });
      }
      // The API names the email's plain part `text`; its control here is `email_text`.
      let result;
      try {
        result = campaign ? await api("PATCH", `/v1/campaigns/${encodeURIComponent(campaign.id)}`, body) : await post("/v1/campaigns", body);
      } catch (err) {
        if (values.channel === "email" && err.fields && err.fields.text) {
          err.details.fields = { ...err.fields, email_text: err.fields.text };
          delete err.details.fields.text;
        }
        throw err;
      }
      campaign = result;
      status.textContent = t("campaign.saved");
      status.hidden = false;
      await saved(result);
    },
  );
  element.append(status);
  element.addEventListener("input", () => (status.hidden = true));
  const channel = element.elements.channel;
  const showChannel = () => {
    element.querySelector(".sms-only").hidden = channel.value !== "sms";
    element.querySelector(".email-only").hidden = channel.value !== "email";
  };
  channel.addEventListener("change", showChannel);
  // The lists matter only when the audience is not everyone.
  const showLists = () => {
    for (const lists of element.querySelectorAll(".lists")) lists.hidden = element.querySelector("[name=audience_kind]:checked").value === "all";
  };
  for (const radio of element.querySelectorAll("[name=audience_kind]")) radio.addEventListener("change", showLists);
  showLists();
  if (campaign) {
    element.elements.name.value = campaign.name;
    channel.value = campaign.channel;
    if (campaign.channel === "sms") text.value = campaign.text || "";
    else {
      element.elements.email_text.value = campaign.text || "";
      element.elements.subject.value = campaign.subject || "";
      element.elements.html.value = campaign.html || "";
      element.elements.from_name.value = campaign.from_name || "";
    }
    if (campaign.scheduled_at) element.elements.scheduled_at.value = localInput(campaign.scheduled_at);
    if (text.value) counter.update();
  }
  showChannel();
  return element;
}

/// An instant as a `datetime-local` value in the browser's time zone.
function localInput(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/// The campaign as a contact would receive it: the sample contact, or one chosen.
async function preview(card, campaign, contacts, contactId) {
  const choose = field("contact_id", t("campaign.preview_for"), { options: [["", t("campaign.sample")], ...contacts.map((c) => [c.id, c.name])] }, "select");
  const select = choose.querySelector("select");
  select.value = contactId || "";
  select.addEventListener("change", () => preview(card, campaign, contacts, select.value).catch(() => {}));
  const body = h("div", { id: "preview-body", "aria-live": "polite" });
  replace(card, h("h2", {}, t("campaign.preview")), choose, body, testSend(campaign, select));
  try {
    const shown = await post(`/v1/campaigns/${encodeURIComponent(campaign.id)}/preview`, contactId ? { contact_id: contactId } : {});
    if (shown.channel === "sms") {
      replace(
        body,
        h("p", { class: "preview sms-bubble", id: "preview-text" }, shown.text),
        h(
          "p",
          { class: "counter-line small" },
          h("span", { class: `badge encoding-${shown.encoding}` }, shown.encoding === "ucs2" ? "UCS-2" : "GSM-7"),
          h("span", {}, shown.segments === 1 ? t("counter.segment") : t("counter.segments", { n: shown.segments })),
        ),
      );
    } else {
      replace(
        body,
        h("dl", { class: "facts" }, h("dt", {}, t("campaign.subject")), h("dd", { id: "preview-subject" }, shown.subject)),
        shown.text ? h("p", { class: "preview", id: "preview-text" }, shown.text) : null,
        shown.html ? h("details", {}, h("summary", {}, t("campaign.html_source")), h("pre", { class: "preview" }, shown.html)) : null,
      );
    }
  } catch (err) {
    replace(body, h("p", { class: "form-error", role: "alert" }, errorText(err), " ", Object.values(err.fields || {}).join(" ")));
  }
}

/// Sends the campaign as the preview shows it (for the contact chosen there) to one address or
/// number, as one transactional message charged like any send. A click retried after an error
/// reuses its Idempotency-Key (it cannot send twice); a new key is made once a test is sent.
function testSend(campaign, contactSelect) {
  let idempotencyKey = newIdempotencyKey();
  const sent = h("p", { class: "small", id: "test-sent", "aria-live": "polite" });
  const element = form(
    { id: "campaign-test-form" },
    [field("to", campaign.channel === "sms" ? t("campaign.test_to_phone") : t("campaign.test_to_email"), { type: campaign.channel === "sms" ? "tel" : "email", required: true })],
    t("campaign.test_send"),
    async (values) => {
      const body = { to: values.to };
      if (contactSelect.value) body.contact_id = contactSelect.value;
      const message = await post(`/v1/campaigns/${encodeURIComponent(campaign.id)}/test`, body, { idempotencyKey });
      idempotencyKey = newIdempotencyKey();
      replace(sent, t("campaign.test_sent"), " ", h("a", { href: `#/message/${encodeURIComponent(message.id)}` }, message.id));
    },
  );
  return h("div", { class: "test-send" }, h("h3", {}, t("campaign.test_title")), element, sent);
}

/// Estimate, then launch: the key is made once per estimate shown, so a retried click of the
/// same launch replays it rather than launching twice.
function drawEstimate(card, campaign, container) {
  const result = h("div", { id: "estimate-result", "aria-live": "polite" });
  const button = h("button", { type: "button", id: "estimate-button" }, t("campaign.estimate"));
  const remove = h("button", { type: "button", class: "danger", id: "delete-campaign" }, t("campaign.delete"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      showEstimate(result, await post(`/v1/campaigns/${encodeURIComponent(campaign.id)}/estimate`), campaign, container);
    } catch (err) {
      replace(result, h("p", { class: "form-error", role: "alert" }, errorText(err), " ", Object.values(err.fields || {}).join(" ")));
    } finally {
      button.disabled = false;
    }
  });
  remove.addEventListener("click", async () => {
    if (!confirm(t("campaign.delete_confirm", { name: campaign.name }))) return;
    try {
      await api("DELETE", `/v1/campaigns/${encodeURIComponent(campaign.id)}`);
      location.hash = "#/campaigns";
    } catch (err) {
      replace(result, h("p", { class: "form-error", role: "alert" }, errorText(err)));
    }
  });
  replace(card, h("h2", {}, t("campaign.estimate_title")), h("p", { class: "small muted" }, t("campaign.estimate_hint")), h("div", { class: "actions" }, button, remove), result);
}

function showEstimate(result, estimate, campaign, container) {
  const rows = [
    ["campaign.contacts", number(estimate.contacts)],
    ["campaign.recipients", h("strong", { id: "estimate-recipients" }, number(estimate.recipients))],
    ...EXCLUDED.filter((reason) => estimate.excluded[reason] > 0).map((reason) => [`excluded.${reason}`, number(estimate.excluded[reason])]),
    ...(estimate.segments || []).map((s) => [null, t("campaign.segments_line", { n: number(s.recipients), segments: s.segments }), t("campaign.by_length")]),
    ["campaign.units", number(estimate.units)],
    ["campaign.included_units", number(estimate.included_units)],
    ["campaign.charge", h("span", { id: "estimate-charge" }, money(estimate.charge))],
    ["campaign.balance", money(estimate.balance)],
    ["campaign.balance_after", h("span", { id: "estimate-after" }, money(estimate.balance_after))],
  ];
  const launch = h("button", { type: "button", class: "primary", id: "launch-campaign", disabled: !estimate.affordable || estimate.recipients === 0 }, campaign.scheduled_at ? t("campaign.schedule_button") : t("campaign.launch"));
  const feedback = h("p", { class: "form-error", role: "alert", hidden: true });
  const key = newIdempotencyKey();
  launch.addEventListener("click", async () => {
    launch.disabled = true;
    try {
      const launched = await post(`/v1/campaigns/${encodeURIComponent(campaign.id)}/launch`, undefined, { idempotencyKey: key });
      await drawLaunched(container, launched);
    } catch (err) {
      feedback.textContent = [errorText(err), ...Object.values(err.fields || {})].join(" ");
      feedback.hidden = false;
      launch.disabled = false;
    }
  });
  replace(
    result,
    h("dl", { class: "facts", id: "estimate-facts" }, rows.map(([key, value, label]) => [h("dt", {}, key ? t(key) : label), h("dd", {}, value)])),
    estimate.affordable ? null : h("p", { class: "warning" }, t("counter.unaffordable")),
    estimate.charged ? null : h("p", { class: "muted small" }, t("campaign.test_mode")),
    launch,
    feedback,
  );
}

/// A launched campaign: progress, stats and timeline, redrawn while it is scheduled or running.
async function drawLaunched(container, campaign) {
  if (location.hash !== `#/campaign/${encodeURIComponent(campaign.id)}`) history.replaceState(null, "", `#/campaign/${encodeURIComponent(campaign.id)}`);
  retitle();
  const [full, timeline] = await Promise.all([
    campaign.stats || campaign.status === "scheduled" ? campaign : get(`/v1/campaigns/${encodeURIComponent(campaign.id)}`),
    get(`/v1/campaigns/${encodeURIComponent(campaign.id)}/timeline?period=minute`),
  ]);
  campaign = full;
  const launch = campaign.launch || {};
  const feedback = h("p", { class: "form-error", role: "alert", hidden: true });
  const cancel = LIVE.has(campaign.status) ? h("button", { type: "button", class: "danger", id: "cancel-campaign" }, t("campaign.cancel")) : null;
  cancel?.addEventListener("click", async () => {
    if (!confirm(t("campaign.cancel_confirm", { name: campaign.name }))) return;
    cancel.disabled = true;
    try {
      await drawLaunched(container, await post(`/v1/campaigns/${encodeURIComponent(campaign.id)}/cancel`));
    } catch (err) {
      feedback.textContent = errorText(err);
      feedback.hidden = false;
      cancel.disabled = false;
    }
  });
  const facts = [
    ["messages.status", h("span", { id: "campaign-status" }, campaignBadge(campaign.status))],
    ["messages.channel", t(`channel.${campaign.channel}`)],
    ["campaign.sender_label", launch.sender],
    ["campaign.scheduled_for", campaign.scheduled_at ? dateTime(campaign.scheduled_at) : null],
    ["campaign.launched_at", launch.launched_at ? dateTime(launch.launched_at) : null],
    // Unknown (null) until the fan-out counts them: not shown, rather than shown as 0.
    ["campaign.planned", launch.planned_recipients != null ? number(launch.planned_recipients) : null],
    ["campaign.written", launch.messages_created != null ? number(launch.messages_created) : null],
    ["campaign.reserved", launch.reserved ? money(launch.reserved) : null],
    ["campaign.finished_at", launch.finished_at ? dateTime(launch.finished_at) : null],
    ["campaign.cancelled_at", launch.cancelled_at ? dateTime(launch.cancelled_at) : null],
    ["campaign.failure", launch.failure ? launch.failure.message : null],
  ].filter(([, value]) => value !== null && value !== undefined);
  const excluded = Object.entries(launch.excluded || {}).filter(([, n]) => n > 0);
  replace(
    container,
    back(),
    h("section", { class: "card" }, h("h2", {}, campaign.name), h("dl", { class: "facts" }, facts.map(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)])), cancel, feedback),
    campaign.stats ? statsCard(campaign.stats) : null,
    excluded.length
      ? h("section", { class: "card" }, h("h2", {}, t("campaign.left_out")), h("dl", { class: "facts" }, excluded.map(([reason, n]) => [h("dt", {}, t(`excluded.${reason}`)), h("dd", {}, number(n))])))
      : null,
    h("section", { class: "card" }, h("h2", {}, t("campaign.timeline")), timelineChart(timeline)),
  );
  if (LIVE.has(campaign.status) || (campaign.stats && campaign.stats.messages.queued > 0)) {
    setTimeout(async () => {
      if (!container.isConnected) return;
      try {
        await drawLaunched(container, await get(`/v1/campaigns/${encodeURIComponent(campaign.id)}`));
      } catch (err) {
        // The next visit shows it; a failed refresh leaves the figures as they were.
      }
    }, REFRESH_MS);
  }
}

function statsCard(stats) {
  const statuses = ["queued", "sent", "delivered", "failed", "cancelled"];
  const clicks = stats.clicks !== undefined ? [["campaign.clicks", number(stats.clicks)], ["campaign.unique_clicks", number(stats.unique_clicks ?? 0)]] : [];
  return h(
    "section",
    { class: "card", id: "campaign-stats" },
    h("h2", {}, t("campaign.stats")),
    h(
      "div",
      { class: "stat-tiles" },
      statuses.map((status) => h("div", { class: "stat", dataset: { status } }, h("span", { class: "stat-value" }, number(stats.messages[status])), h("span", { class: "stat-label" }, t(`status.${status}`)))),
    ),
    h(
      "dl",
      { class: "facts" },
      [["campaign.charged", money(stats.charged)], ["campaign.refunded", money(stats.refunded)], ...clicks].map(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)]),
    ),
  );
}

function timelineChart(timeline) {
  if (!timeline.data.length) return h("p", { class: "empty" }, t("campaign.timeline_empty"));
  const time = new Intl.DateTimeFormat(getLocale(), { hour: "2-digit", minute: "2-digit" });
  return barChart({
    title: t("campaign.timeline"),
    labels: timeline.data.map((point) => time.format(new Date(point.start))),
    series: [
      { name: t("status.sent"), values: timeline.data.map((p) => p.sent), className: "series-a" },
      { name: t("status.delivered"), values: timeline.data.map((p) => p.delivered), className: "series-b" },
      { name: t("status.failed"), values: timeline.data.map((p) => p.failed), className: "series-c" },
    ],
  });
}
