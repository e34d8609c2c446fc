// Campaigns: the list, newest first, page after page, each a link to its page; and a way to
// start a new one.

import { get, query } from "../lib/api.js";
import { append, h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, t } from "../lib/i18n.js";

export const title = () => t("campaigns.title");

export const STATUSES = ["draft", "scheduled", "running", "completed", "partial", "failed", "cancelled"];

export function campaignBadge(status) {
  return h("span", { class: `badge campaign-${status}` }, t(`campaign.status.${status}`));
}

export async function render() {
  const list = h("div", { id: "campaign-list" });
  const filters = form(
    { class: "filters", id: "campaign-filters" },
    [field("status", t("messages.status"), { options: [["", t("messages.any")], ...STATUSES.map((s) => [s, t(`campaign.status.${s}`)])] }, "select")],
    t("messages.apply"),
    (values) => load(list, values),
  );
  await load(list, {});
  return h(
    "div",
    { class: "campaigns-page" },
    h("p", {}, h("a", { class: "button primary", href: "#/campaign/new", id: "new-campaign" }, t("campaigns.new"))),
    h("section", { class: "card" }, filters, list),
  );
}

async function load(list, values, cursor) {
  const page = await get("/v1/campaigns" + query({ limit: 25, status: values.status, cursor }));
  if (!cursor) replace(list);
  list.querySelector(".more")?.remove();
  if (!cursor && !page.data.length) return append(list, [h("p", { class: "empty" }, t("campaigns.empty"))]);
  const rows = page.data.map((campaign) =>
    h(
      "tr",
      { dataset: { id: campaign.id } },
      h("td", { "data-label": t("campaigns.name") }, h("a", { href: `#/campaign/${encodeURIComponent(campaign.id)}` }, campaign.name)),
      h("td", { "data-label": t("messages.channel") }, t(`channel.${campaign.channel}`)),
      h("td", { "data-label": t("messages.status") }, campaignBadge(campaign.status)),
      h("td", { "data-label": t("messages.col_created") }, dateTime(campaign.created_at)),
    ),
  );
  const body = list.querySelector("tbody");
  if (body) append(body, rows);
  else {
    const head = [t("campaigns.name"), t("messages.channel"), t("messages.status"), t("messages.col_created")];
    append(list, [h("div", { class: "table-wrap" }, h("table", { class: "stack" }, h("thead", {}, h("tr", {}, head.map((text) => h("th", { scope: "col" }, text)))), h("tbody", {}, rows)))]);
  }
  if (page.next_cursor) {
    const more = h("button", { type: "button", class: "more" }, t("messages.more"));
    more.addEventListener("click", () => load(list, values, page.next_cursor).catch((err) => alert(errorText(err))));
    append(list, [more]);
  }
}
