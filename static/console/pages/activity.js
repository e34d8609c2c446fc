// The activity log (owners and admins): who did what, when, from where — the workspace's
// entries of the mode the session looks at and those the same in both worlds — with the API's
// filters (actor, action, target, time range) and "show more" along the keyset cursor. The
// instance admin page shows the same view across every workspace (`activityLog({admin})`).

import { get, query } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, t } from "../lib/i18n.js";
import { table } from "../lib/views.js";

export const title = () => t("activity.title");

/// The actions the log records, in the API's order; tests/it/console.rs checks it against the
/// server's list.
export const ACTIONS = [
  "instance.set_up",
  "session.signed_in",
  "session.sign_in_failed",
  "session.signed_out",
  "session.mode_switched",
  "user.created",
  "api_key.created",
  "api_key.revoked",
  "api_key.rotated",
  "workspace.created",
  "workspace.renamed",
  "member.invited",
  "member.joined",
  "member.role_changed",
  "member.removed",
  "invitation.revoked",
  "sender_id.requested",
  "sender_id.approved",
  "sender_id.rejected",
  "verification.requested",
  "verification.approved",
  "verification.rejected",
  "plan.changed",
  "wallet.adjusted",
  "payment.started",
  "contact.created",
  "contact.updated",
  "contact.deleted",
  "contact.erased",
  "contacts.exported",
  "contacts.import_started",
  "contact_field.created",
  "contact_field.updated",
  "contact_field.deleted",
  "group.created",
  "group.renamed",
  "group.deleted",
  "group.members_added",
  "group.members_removed",
  "segment.created",
  "segment.updated",
  "segment.deleted",
  "campaign.created",
  "campaign.launched",
  "campaign.cancelled",
  "webhook_endpoint.created",
  "webhook_endpoint.updated",
  "webhook_endpoint.deleted",
  "webhook_endpoint.secret_rotated",
  "sending_domain.created",
  "sending_domain.from_changed",
  "sending_domain.approved",
  "sending_domain.rejected",
  "sending_domain.deleted",
  "provider_account.created",
  "provider_account.updated",
  "provider_account.deleted",
];

const ACTOR_TYPES = ["user", "api_key", "operator", "anonymous"];

/// Entries per page.
const PAGE = 25;

export async function render(_param, session) {
  if (session.role !== "owner" && session.role !== "admin") return h("p", {}, t("activity.forbidden"));
  const names = await knownNames(session, false);
  const log = activityLog({ admin: false, names });
  await log.load({});
  return h(
    "div",
    { class: "activity-page" },
    h("p", { class: "lead" }, t(session.me.mode === "test" ? "activity.mode_test" : "activity.mode_live")),
    h("section", { class: "card" }, h("h2", {}, t("activity.filters")), log.filters, log.element),
  );
}

/// Names for the ids the entries carry: the workspace's members and (for its owners and
/// admins) API keys, and for an instance admin every workspace (best effort: a list that fails
/// leaves the ids as they are).
export async function knownNames(session, admin) {
  const manager = session.role === "owner" || session.role === "admin";
  const names = new Map();
  const none = { data: [] };
  const [members, keys, workspaces] = await Promise.all([
    get("/v1/workspace/members?limit=100").catch(() => none),
    manager ? get("/v1/api-keys?limit=100").catch(() => none) : none,
    admin ? get("/v1/admin/workspaces?limit=100").catch(() => none) : none,
  ]);
  for (const member of members.data) names.set(member.user.id, member.user.name);
  for (const key of keys.data) names.set(key.id, key.name);
  for (const workspace of workspaces.data) names.set(workspace.id, workspace.name);
  return names;
}

/// Local dates from the date inputs as instants: the start of `from`, and the start of the
/// day after `to` (the API's end is exclusive; the form's "to" day is included).
function fromInstant(localDate) {
  return localDate ? new Date(localDate + "T00:00:00").toISOString() : "";
}
function toInstant(localDate) {
  if (!localDate) return "";
  const next = new Date(localDate + "T00:00:00");
  next.setDate(next.getDate() + 1);
  return next.toISOString();
}

/// The filter form and the table under it. With `admin` it reads `/v1/admin/activity` (every
/// workspace, both modes) and adds the workspace filter and column.
export function activityLog({ admin = false, names = new Map() } = {}) {
  const path = admin ? "/v1/admin/activity" : "/v1/activity";
  const prefix = admin ? "admin-activity" : "activity";
  const element = h("div", { id: `${prefix}-list`, "aria-live": "polite" });
  const any = ["", t("activity.any")];
  const filters = form(
    { id: `${prefix}-filters`, class: "filters" },
    [
      admin ? field("workspace_id", t("activity.workspace"), { maxlength: 40, autocomplete: "off", placeholder: "wsp_…" }) : null,
      field("actor_type", t("activity.actor_type"), { options: [any, ...ACTOR_TYPES.map((type) => [type, t(`actor.${type}`)])] }, "select"),
      field("actor_id", t("activity.actor_id"), { maxlength: 40, autocomplete: "off", placeholder: "usr_… / key_…" }),
      field("action", t("activity.action"), { options: [any, ...ACTIONS.map((action) => [action, action])] }, "select"),
      field("target_id", t("activity.target_id"), { maxlength: 40, autocomplete: "off" }),
      field("created_from", t("activity.from"), { type: "date" }),
      field("created_to", t("activity.to"), { type: "date" }),
    ],
    t("activity.apply"),
    (values) => load(values),
  );
  const heads = () => [
    t("activity.col_time"),
    admin ? t("activity.col_workspace") : null,
    t("activity.col_actor"),
    t("activity.col_action"),
    t("activity.col_target"),
    t("activity.col_details"),
    t("activity.col_ip"),
    t("activity.col_request"),
  ].filter((head) => head !== null);
  let asked = 0;

  function params(values, cursor) {
    return query({
      limit: PAGE,
      workspace_id: admin ? (values.workspace_id || "").trim() : "",
      actor_type: values.actor_type,
      actor_id: (values.actor_id || "").trim(),
      action: values.action,
      target_id: (values.target_id || "").trim(),
      created_from: fromInstant(values.created_from),
      created_to: toInstant(values.created_to),
      cursor,
    });
  }

  async function load(values) {
    const mine = ++asked;
    const page = await get(path + params(values));
    if (mine !== asked) return;
    if (!page.data.length) {
      replace(element, h("p", { class: "empty" }, t("activity.empty")));
      return;
    }
    const wrap = table(heads(), [], { id: `${prefix}-table`, class: "stack wrap-cells" });
    replace(element, wrap);
    showPage(wrap.querySelector("tbody"), page, values, mine);
  }

  function showPage(tbody, page, values, mine) {
    const labels = heads();
    for (const entry of page.data) {
      const cells = [
        h("time", { datetime: entry.created_at }, dateTime(entry.created_at)),
        admin ? (entry.workspace_id ? named(entry.workspace_id, names) : h("span", { class: "muted" }, "—")) : null,
        actorCell(entry.actor, names),
        h(
          "span",
          {},
          h("span", { class: "mono small action" }, entry.action),
          entry.mode === "test" ? h("span", { class: "badge" }, t("mode.test")) : null,
        ),
        entry.target_id ? targetLink(entry.target_id, names) : "—",
        detailsText(entry.details),
        entry.ip ? h("span", { class: "mono small ip" }, entry.ip) : "—",
        entry.request_id ? h("span", { class: "mono small" }, entry.request_id) : "—",
      ].filter((cell) => cell !== null);
      tbody.append(
        h(
          "tr",
          { dataset: { id: entry.id, action: entry.action } },
          cells.map((cell, index) => h("td", { "data-label": labels[index] }, cell)),
        ),
      );
    }
    element.querySelector(".more")?.remove();
    if (!page.next_cursor) return;
    const more = h("button", { type: "button" }, t("activity.more"));
    more.addEventListener("click", async () => {
      more.disabled = true;
      try {
        const next = await get(path + params(values, page.next_cursor));
        if (mine === asked) showPage(tbody, next, values, mine);
      } catch (err) {
        more.disabled = false;
        more.after(h("p", { class: "form-error", role: "alert" }, errorText(err)));
      }
    });
    element.append(h("p", { class: "actions more" }, more));
  }

  return { element, filters, load };
}

/// An id's name when known here (the id on hover), else the id.
function named(id, names) {
  const name = names.get(id);
  return name ? h("span", { title: id }, name) : h("span", { class: "mono small" }, id);
}

/// The actor's kind and name (its id on hover), or its id when the name is not known here.
function actorCell(actor, names) {
  return h(
    "span",
    {},
    h("span", { class: "muted small block" }, t(`actor.${actor.type}`)),
    actor.id ? h("span", { class: "block" }, named(actor.id, names)) : null,
  );
}

/// Console pages of the objects an entry may name, by their id's prefix. (An import has no page
/// of its own: `#/import` is the form, with only the latest five imports.)
const TARGET_PAGES = { con: "contact", cmp: "campaign", whe: "webhooks", pay: "payment" };

/// The target: a link to its page when the console has one, else its name when known here.
function targetLink(id, names) {
  const page = TARGET_PAGES[id.split("_")[0]];
  if (!page) return named(id, names);
  return h("a", { href: `#/${page}/${encodeURIComponent(id)}` }, h("span", { class: "mono small" }, id));
}

/// The entry's few facts as `name: value` lines (they never hold a secret: the API redacts).
function detailsText(details) {
  if (!details || typeof details !== "object") return "—";
  const shown = (value) => (typeof value === "string" ? value : Array.isArray(value) ? value.map(shown).join(", ") : JSON.stringify(value));
  const lines = Object.entries(details).map(([name, value]) => `${name}: ${shown(value)}`);
  if (!lines.length) return "—";
  return h("span", { class: "small details" }, lines.map((line) => h("span", { class: "block" }, line)));
}
