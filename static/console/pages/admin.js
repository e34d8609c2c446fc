// Instance administration (instance admins only): every workspace of the instance — searched by
// name, a page at a time ("show more" follows the keyset cursor) — with its plan, balance,
// verification, sender ID, members and owner; each row opens, right under itself, the wallet
// adjustment (amount and mandatory reason, one Idempotency-Key per adjustment) or the plan form
// (a catalog plan or `custom` with its two included amounts, an optional end), and shows the
// row again as the API now has it. Below: pending sender IDs and verifications to approve or
// reject (each decision sends what was reviewed as `expected`, so a request changed since is
// refused rather than decided unseen), and workspaces' sending domains with the DKIM record to
// look up before approving (live mode only: a domain is the workspace's, not a mode's). Last,
// the activity log of the whole instance (every workspace, both modes, failed sign-ins), with the
// workspace's own filters and one more.

import { ApiError, api, get, newIdempotencyKey, post, query } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, lastDay, money, number, t } from "../lib/i18n.js";
import { table } from "../lib/views.js";
import { activityLog, knownNames } from "./activity.js";

export const title = () => t("admin.title");

/// Workspaces per page of the list.
const PAGE = 20;

export async function render(_param, session) {
  if (!session.me.user.is_instance_admin) return h("p", {}, t("admin.forbidden"));
  const senders = h("div", { id: "admin-senders" });
  const verifications = h("div", { id: "admin-verifications" });
  const domains = h("div", { id: "admin-domains" });
  const list = h("div", { id: "workspace-list", "aria-live": "polite" });
  const plans = await get("/v1/billing/plans?limit=100");
  const workspaces = workspaceList(list, plans.data);
  // A decision changes a workspace's row too: the list is shown again as it stands.
  const decided = () => workspaces.load(workspaces.current());
  const activity = activityLog({ admin: true, names: await knownNames(session, true) });
  await Promise.all([
    workspaces.load(""),
    loadSenders(senders, decided),
    loadVerifications(verifications, decided),
    loadDomains(domains),
    activity.load({}),
  ]);
  return h(
    "div",
    { class: "admin-page" },
    h("section", { class: "card", id: "admin-workspaces" }, h("h2", {}, t("admin.workspaces")), workspaces.search, list),
    h("section", { class: "card" }, h("h2", {}, t("admin.senders")), senders),
    h("section", { class: "card" }, h("h2", {}, t("admin.verifications")), verifications),
    h("section", { class: "card" }, h("h2", {}, t("admin.domains")), h("p", { class: "small" }, t("admin.domains_hint")), domains),
    h("section", { class: "card", id: "admin-activity" }, h("h2", {}, t("admin.activity")), h("p", { class: "hint" }, t("admin.activity_hint")), activity.filters, activity.element),
  );
}

/// The column titles of the workspace table (the last one, the actions, has none).
function workspaceHeads() {
  return [
    t("admin.col_workspace"),
    t("admin.col_plan"),
    t("admin.col_balance"),
    t("admin.col_verification"),
    t("settings.sender_field"),
    t("admin.col_members"),
    t("admin.col_owner"),
    "",
  ];
}

/// The search form and the table below it: `load(q)` shows the first page of a search, "show
/// more" appends the next. A search typed while an older one is on its way wins.
function workspaceList(container, plans) {
  let asked = 0;
  let current = "";
  const heads = workspaceHeads();
  const search = form(
    { id: "workspace-search", class: "inline-form", role: "search" },
    [field("q", t("admin.search"), { type: "search", maxlength: 200, autocomplete: "off" })],
    t("admin.search_submit"),
    async (values) => {
      clearTimeout(timer);
      await load(values.q.trim());
    },
  );
  // Typing searches too, once the typing pauses; a search already shown is not asked again (an
  // open row form stays open).
  let timer = null;
  search.querySelector("[name=q]").addEventListener("input", (event) => {
    clearTimeout(timer);
    const q = event.target.value.trim();
    timer = setTimeout(() => {
      if (q !== current || !container.firstChild) load(q).catch((err) => showLoadError(err));
    }, 300);
  });

  function showLoadError(err) {
    replace(container, h("p", { class: "form-error", role: "alert" }, errorText(err)));
  }

  async function load(q) {
    const mine = ++asked;
    const page = await get("/v1/admin/workspaces" + query({ q, limit: PAGE }));
    if (mine !== asked) return;
    current = q;
    if (!page.data.length) {
      replace(container, h("p", { class: "empty" }, q ? t("admin.workspaces_none_found", { q }) : t("admin.workspaces_none")));
      return;
    }
    const wrap = table(heads, [], { id: "workspaces", class: "stack" });
    replace(container, wrap);
    showPage(wrap.querySelector("tbody"), page, mine);
  }

  function showPage(tbody, page, mine) {
    for (const workspace of page.data) {
      const row = h("tr", { dataset: { id: workspace.id } });
      fillRow(row, workspace, heads, plans);
      tbody.append(row);
    }
    container.querySelector(".more")?.remove();
    if (!page.next_cursor) return;
    const more = h("button", { type: "button" }, t("admin.more"));
    more.addEventListener("click", async () => {
      more.disabled = true;
      try {
        const next = await get("/v1/admin/workspaces" + query({ q: current, limit: PAGE, cursor: page.next_cursor }));
        if (mine === asked) showPage(tbody, next, mine);
      } catch (err) {
        more.disabled = false;
        more.after(h("p", { class: "form-error", role: "alert" }, errorText(err)));
      }
    });
    container.append(h("p", { class: "actions more" }, more));
  }

  return { search, load, current: () => current };
}

/// Shows `workspace` in `row` (its cells, then its two action buttons).
function fillRow(row, workspace, heads, plans) {
  const plan = workspace.plan;
  const sender = workspace.sender_id;
  const action = (kind, label) =>
    h(
      "button",
      {
        type: "button",
        class: "small",
        dataset: { action: kind },
        "aria-expanded": "false",
        "aria-label": t(`admin.${kind}_of`, { name: workspace.name }),
        onclick: (event) => toggleAction(row, kind, workspace, plans, event.currentTarget),
      },
      label,
    );
  const cells = [
    h("span", {}, h("strong", {}, workspace.name), h("span", { class: "mono small block" }, workspace.id)),
    h(
      "span",
      { class: "plan-cell" },
      plan.name,
      plan.period_end ? h("span", { class: "small block" }, t("admin.plan_until", { date: lastDay(plan.period_end) })) : null,
      plan.included_sms_per_month !== null && plan.included_sms_per_month !== undefined
        ? h("span", { class: "small block" }, t("admin.plan_included", { sms: number(plan.included_sms_per_month), email: number(plan.included_email_per_day) }))
        : null,
    ),
    { num: money(workspace.wallet.balance) },
    h("span", { class: `badge review-${workspace.verification_status}` }, t(`review.${workspace.verification_status}`)),
    sender
      ? h("span", {}, h("span", { class: "mono" }, sender.value), " ", h("span", { class: `badge review-${sender.status}` }, t(`review.${sender.status}`)))
      : h("span", { class: "muted" }, "—"),
    { num: number(workspace.member_count) },
    h("span", { class: "mono small" }, workspace.owner_email || "—"),
    h("span", { class: "row-actions" }, action("adjust", t("admin.adjust_action")), action("plan", t("admin.plan_action"))),
  ];
  replace(
    row,
    cells.map((cell, index) =>
      cell && typeof cell === "object" && "num" in cell
        ? h("td", { class: "num", "data-label": heads[index] }, cell.num)
        : h("td", { "data-label": heads[index] }, cell),
    ),
  );
}

/// Opens the row's `kind` form right under it (closing any other), or closes it when it is the
/// one open. Escape closes it too, and gives the focus back to its button.
function toggleAction(row, kind, workspace, plans, button) {
  const open = document.querySelector("tr.workspace-action");
  const same = open && open.dataset.for === workspace.id && open.dataset.kind === kind;
  if (open) {
    document.querySelector('#workspaces button[aria-expanded="true"]')?.setAttribute("aria-expanded", "false");
    open.remove();
  }
  if (same) return;
  const refresh = async () => {
    const fresh = await get(`/v1/admin/workspaces/${encodeURIComponent(workspace.id)}`);
    fillRow(row, fresh, workspaceHeads(), plans);
    if (panel.isConnected) row.querySelector(`button[data-action="${kind}"]`).setAttribute("aria-expanded", "true");
    return fresh;
  };
  const close = () => {
    panel.remove();
    const again = row.querySelector(`button[data-action="${kind}"]`);
    again.setAttribute("aria-expanded", "false");
    again.focus();
  };
  const heading = t(kind === "adjust" ? "admin.adjust_title" : "admin.plan_title", { name: workspace.name });
  const body = kind === "adjust" ? adjustForm(workspace, refresh) : planForm(workspace, plans, refresh);
  const closer = h("button", { type: "button", class: "small", onclick: close }, t("admin.close"));
  const panel = h(
    "tr",
    { class: "workspace-action", dataset: { for: workspace.id, kind } },
    h("td", { colspan: 8 }, h("div", { class: "action-panel" }, h("h3", {}, heading), body, closer)),
  );
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  row.after(panel);
  button.setAttribute("aria-expanded", "true");
  panel.querySelector("input, select")?.focus();
}

/// Approve and reject buttons with the rejection reason's field; `path` is the request's.
/// `expected` (what was reviewed) is sent when given; `label` names the subject for the reason.
function decision(path, expected, reload, label = expected) {
  const message = h("p", { class: "form-error", role: "alert", hidden: true });
  const reason = h("input", { type: "text", maxlength: 500, "aria-label": t("admin.reason_for", { what: label }), placeholder: t("admin.reason") });
  const act = (verb) => async () => {
    message.hidden = true;
    const body = verb === "reject" ? { expected, reason: reason.value } : { expected };
    try {
      await post(`${path}/${verb}`, body);
      await reload();
    } catch (err) {
      // A 422 names its fields (the reason, most often): said, not only "fields need attention".
      const fields = Object.entries((err && err.fields) || {}).map(([name, why]) => (name === "reason" ? `${t("admin.reason")}: ${why}` : why));
      message.textContent = fields.length ? fields.join(" ") : errorText(err);
      message.hidden = false;
      if (verb === "reject") reason.focus();
    }
  };
  return h(
    "div",
    { class: "decision" },
    h("button", { type: "button", class: "primary small", onclick: act("approve") }, t("admin.approve")),
    reason,
    h("button", { type: "button", class: "danger small", onclick: act("reject") }, t("admin.reject")),
    message,
  );
}

async function loadSenders(container, decided) {
  const page = await get("/v1/admin/sender-ids?limit=100");
  if (!page.data.length) {
    replace(container, h("p", { class: "empty" }, t("admin.none_pending")));
    return page;
  }
  replace(
    container,
    table(
      [t("admin.col_workspace"), t("settings.sender_field"), t("admin.col_requested"), ""],
      page.data.map((row) => [
        h("span", {}, row.workspace_name, h("span", { class: "mono small block" }, row.workspace_id)),
        h("span", { class: "mono" }, row.sender_id),
        dateTime(row.requested_at),
        decision(`/v1/admin/sender-ids/${encodeURIComponent(row.workspace_id)}`, row.sender_id, async () => {
          await loadSenders(container, decided);
          await decided();
        }),
      ]),
      { id: "sender-requests", class: "stack" },
    ),
  );
  return page;
}

async function loadVerifications(container, decided) {
  const page = await get("/v1/admin/verifications?limit=100");
  if (!page.data.length) {
    replace(container, h("p", { class: "empty" }, t("admin.none_pending")));
    return page;
  }
  replace(
    container,
    table(
      [t("admin.col_workspace"), t("settings.business_name"), t("admin.col_documents"), t("admin.col_requested"), ""],
      page.data.map((row) => [
        h("span", {}, row.workspace_name, h("span", { class: "mono small block" }, row.workspace_id)),
        h("span", {}, row.business_name, " (", row.country, ")", row.website ? h("span", { class: "mono small block" }, row.website) : null),
        h("ul", { class: "plain-list small" }, row.document_refs.map((ref) => h("li", { class: "mono" }, ref))),
        dateTime(row.submitted_at),
        decision(`/v1/admin/verifications/${encodeURIComponent(row.workspace_id)}`, row.submitted_at, async () => {
          await loadVerifications(container, decided);
          await decided();
        }),
      ]),
      { id: "verification-requests", class: "stack" },
    ),
  );
  return page;
}

/// Pending sending domains, each with the record to look up before approving. Another mode's
/// session is refused by the API (403): said so instead of failing the page.
async function loadDomains(container) {
  let page;
  try {
    page = await get("/v1/admin/sending-domains?status=pending&limit=100");
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      replace(container, h("p", { class: "empty" }, t("admin.domains_live_only")));
      return null;
    }
    throw err;
  }
  if (!page.data.length) {
    replace(container, h("p", { class: "empty" }, t("admin.none_pending")));
    return page;
  }
  replace(
    container,
    table(
      [t("admin.col_workspace"), t("admin.col_domain"), t("admin.col_record"), t("admin.col_requested"), ""],
      page.data.map((row) => [
        h("span", { class: "mono small" }, row.workspace_id),
        h("span", { class: "mono" }, row.domain),
        h("span", {}, h("span", { class: "mono small block" }, row.dns_record.name), h("span", { class: "mono small block" }, row.dns_record.value)),
        dateTime(row.created_at),
        decision(`/v1/admin/sending-domains/${encodeURIComponent(row.id)}`, undefined, () => loadDomains(container), row.domain),
      ]),
      { id: "domain-requests", class: "stack" },
    ),
  );
  return page;
}

/// The instant a plan chosen to end on `day` (`2027-01-31`, a date input's value) ends: the
/// start of the next day, in the admin's time zone.
function nextMidnight(day) {
  const end = new Date(day + "T00:00:00");
  end.setDate(end.getDate() + 1);
  return end.toISOString();
}

/// The wallet adjustment of one workspace: a signed amount and a mandatory reason. A retried
/// submission (the same attempt) reuses its Idempotency-Key; a new key after each success.
function adjustForm(workspace, refresh) {
  const result = h("p", { role: "status", id: "adjust-result" });
  let key = newIdempotencyKey();
  const element = form(
    { id: "adjust-form", class: "grid-form" },
    [
      field("amount_minor", t("admin.amount"), { type: "number", step: 1, required: true, inputmode: "numeric", hint: t("admin.amount_hint") }),
      field("reason", t("admin.reason"), { maxlength: 500, required: true }),
    ],
    t("admin.adjust_submit"),
    async (values) => {
      result.textContent = "";
      // A whole number or nothing: `2500.75` must not be sent as 2500 unseen.
      if (!/^-?\d+$/.test(values.amount_minor.trim())) {
        throw new ApiError(422, "validation_failed", null, { fields: { amount_minor: t("admin.amount_whole") } });
      }
      const made = await post(
        `/v1/admin/workspaces/${encodeURIComponent(workspace.id)}/wallet-adjustments`,
        { amount_minor: Number(values.amount_minor.trim()), reason: values.reason },
        { idempotencyKey: key },
      );
      key = newIdempotencyKey();
      element.reset();
      result.textContent = t("admin.adjusted", { amount: money(made.ledger_entry.amount), balance: money(made.balance) });
      await refresh();
    },
  );
  return h("div", {}, element, result);
}

/// A whole number of at least zero typed in `name`, or a 422 of our own on that field.
function included(values, name) {
  const text = (values[name] || "").trim();
  if (text === "") return null;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ApiError(422, "validation_failed", t("admin.check_fields"), { fields: { [name]: t("admin.whole_number") } });
  }
  return value;
}

/// The plan an instance admin sets: a catalog plan (free of charge) or `custom`, whose two
/// included amounts show only when it is chosen; an optional end (the start of that day here).
function planForm(workspace, plans, refresh) {
  const result = h("p", { role: "status", id: "plan-result" });
  const options = plans.map((plan) => [plan.code, plan.name]);
  const amounts = h(
    "div",
    { class: "wide custom-amounts grid-form" },
    field("included_sms_per_month", t("admin.included_sms"), { type: "number", min: 0, step: 1, inputmode: "numeric" }),
    field("included_email_per_day", t("admin.included_email"), { type: "number", min: 0, step: 1, inputmode: "numeric" }),
  );
  const element = form(
    { id: "plan-form", class: "grid-form" },
    [
      field("plan_code", t("admin.plan_field"), { options }, "select"),
      field("period_end", t("admin.period_end"), { type: "date", hint: t("admin.period_end_hint") }),
      amounts,
    ],
    t("admin.plan_submit"),
    async (values) => {
      result.textContent = "";
      const custom = values.plan_code === "custom";
      const body = {
        plan_code: values.plan_code,
        // "Ends on 31 Jan": the plan covers all of that day, so it ends at the next midnight
        // (the admin's own), and reads "until 31 Jan" everywhere (`lastDay`).
        period_end: values.period_end ? nextMidnight(values.period_end) : null,
      };
      if (custom) {
        body.included_sms_per_month = included(values, "included_sms_per_month");
        body.included_email_per_day = included(values, "included_email_per_day");
      }
      await api("PUT", `/v1/admin/workspaces/${encodeURIComponent(workspace.id)}/plan`, body);
      const fresh = await refresh();
      result.textContent = t("admin.plan_set", { name: fresh.name, plan: fresh.plan.name });
    },
  );
  const choice = element.querySelector("[name=plan_code]");
  choice.value = workspace.plan.code;
  if (workspace.plan.included_sms_per_month !== null && workspace.plan.included_sms_per_month !== undefined) {
    element.querySelector("[name=included_sms_per_month]").value = workspace.plan.included_sms_per_month;
    element.querySelector("[name=included_email_per_day]").value = workspace.plan.included_email_per_day;
  }
  const showAmounts = () => {
    amounts.hidden = choice.value !== "custom";
  };
  choice.addEventListener("change", showAmounts);
  showAmounts();
  return h("div", {}, element, result);
}
