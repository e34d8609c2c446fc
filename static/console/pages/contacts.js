// Contacts: the list with its search and filters (keyset "show more"), a form to add one, the
// selected rows added to or removed from a group, the groups themselves and the custom field
// definitions. Import and export are a link away.

import { api, get, post, query } from "../lib/api.js";
import { append, h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, number, t } from "../lib/i18n.js";

export const title = () => t("contacts.title");

export const PHONE_STATES = ["valid", "invalid", "unreachable"];
export const EMAIL_STATES = ["valid", "invalid", "bounced", "complained"];
export const FIELD_TYPES = ["text", "number", "date", "boolean", "url", "select"];

/// Every page of a list endpoint (groups, segments, fields: small lists a select offers).
export async function all(path) {
  const items = [];
  let cursor = null;
  do {
    const page = await get(path + query({ limit: 100, cursor }));
    items.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

export async function render(param) {
  const [groups, segments, fields] = await Promise.all([all("/v1/groups"), all("/v1/segments"), get("/v1/contact-fields")]);
  const state = {
    filters: {
      group: param && param.startsWith("grp_") ? param : "",
      segment: param && param.startsWith("seg_") ? param : "",
    },
    groups,
    segments,
  };
  const list = h("div", { id: "contact-list" });
  const exportLink = h("a", { id: "export-link", href: "/v1/contacts/export", download: "contacts.csv" }, t("contacts.export"));
  const reload = async () => {
    exportLink.href = "/v1/contacts/export" + query(state.filters);
    await load(list, state);
  };
  const filters = filterForm(state, async (values) => {
    state.filters = values;
    await reload();
  });
  const groupCard = h("section", { class: "card", id: "groups" });
  const bulk = bulkBar(state, reload, () => redrawGroups());
  const redrawGroups = async () => {
    state.groups = await all("/v1/groups");
    drawGroups(groupCard, state, reload, redrawGroups);
    bulk.fill();
  };
  drawGroups(groupCard, state, reload, redrawGroups);
  await reload();
  return h(
    "div",
    { class: "contacts-page" },
    h(
      "p",
      { class: "actions" },
      h("a", { class: "button", href: "#/import" }, t("contacts.import")),
      exportLink,
      h("a", { href: "#/segments" }, t("nav.segments")),
    ),
    h("section", { class: "card" }, h("h2", {}, t("contacts.list")), filters, bulk, list),
    h("section", { class: "card" }, h("h2", {}, t("contacts.add")), createForm(reload)),
    groupCard,
    h("section", { class: "card", id: "fields" }, fieldsCard(fields.data)),
  );
}

function filterForm(state, apply) {
  const any = ["", t("messages.any")];
  const element = form(
    { class: "filters", id: "contact-filters" },
    [
      field("q", t("contacts.search"), { type: "search", hint: t("contacts.search_hint") }),
      field("group", t("contacts.group"), { options: [any, ...state.groups.map((g) => [g.id, g.name])] }, "select"),
      field("segment", t("contacts.segment"), { options: [any, ...state.segments.map((s) => [s.id, s.name])] }, "select"),
      field("phone_state", t("contacts.phone_state"), { options: [any, ...PHONE_STATES.map((s) => [s, t(`reach.${s}`)])] }, "select"),
      field("email_state", t("contacts.email_state"), { options: [any, ...EMAIL_STATES.map((s) => [s, t(`reach.${s}`)])] }, "select"),
      field("unsubscribed", t("contacts.unsubscribed"), { options: [any, ["sms", t("channel.sms")], ["email", t("channel.email")]] }, "select"),
      field("sort", t("contacts.sort"), {
        options: [
          ["-created_at", t("contacts.sort_newest")],
          ["created_at", t("contacts.sort_oldest")],
          ["name", t("contacts.sort_name")],
          ["-name", t("contacts.sort_name_desc")],
        ],
      }, "select"),
    ],
    t("messages.apply"),
    (values) => apply(values),
  );
  element.elements.group.value = state.filters.group || "";
  element.elements.segment.value = state.filters.segment || "";
  return element;
}

async function load(list, state, cursor) {
  const page = await get("/v1/contacts" + query({ limit: 50, ...state.filters, cursor }));
  if (!cursor) replace(list);
  list.querySelector(".more")?.remove();
  if (!cursor && page.data.length === 0) return append(list, [h("p", { class: "empty" }, t("contacts.empty"))]);
  const rows = page.data.map((contact) =>
    h(
      "tr",
      { dataset: { id: contact.id } },
      h("td", { "data-label": "" }, h("input", { type: "checkbox", class: "pick", value: contact.id, "aria-label": t("contacts.select", { name: contact.name }) })),
      h("td", { "data-label": t("contacts.name") }, h("a", { href: `#/contact/${encodeURIComponent(contact.id)}` }, contact.name)),
      h("td", { class: "mono", "data-label": t("contacts.phone") }, contact.phone || ""),
      h("td", { class: "wrap-anywhere", "data-label": t("contacts.email") }, contact.email || ""),
      h("td", { "data-label": t("contacts.language") }, contact.language || ""),
      h("td", { "data-label": t("contacts.created") }, dateTime(contact.created_at)),
    ),
  );
  const body = list.querySelector("tbody");
  if (body) append(body, rows);
  else {
    const head = ["", t("contacts.name"), t("contacts.phone"), t("contacts.email"), t("contacts.language"), t("contacts.created")];
    append(list, [
      h("div", { class: "table-wrap" }, h("table", { class: "contacts stack" }, h("thead", {}, h("tr", {}, head.map((text) => h("th", { scope: "col" }, text)))), h("tbody", {}, rows))),
    ]);
  }
  if (page.next_cursor) {
    const more = h("button", { type: "button", class: "more" }, t("messages.more"));
    more.addEventListener("click", () => load(list, state, page.next_cursor).catch((err) => alert(errorText(err))));
    append(list, [more]);
  }
}

/// The selected rows into a group, or out of it.
function bulkBar(state, reload, redrawGroups) {
  const select = h("select", { id: "bulk-group", name: "bulk_group" });
  const fill = () => replace(select, state.groups.map((g) => h("option", { value: g.id }, g.name)));
  fill();
  const message = h("span", { class: "small", role: "status", id: "bulk-result" });
  const act = async (method) => {
    const ids = [...document.querySelectorAll("#contact-list input.pick:checked")].map((box) => box.value);
    if (!ids.length) return replace(message, t("contacts.pick_first"));
    if (!select.value) return replace(message, t("contacts.no_groups"));
    try {
      const result = await api(method, `/v1/groups/${encodeURIComponent(select.value)}/contacts`, { contact_ids: ids });
      await redrawGroups();
      await reload();
      replace(
        message,
        method === "POST"
          ? t("contacts.added", { n: result.added, m: result.already_members })
          : t("contacts.removed", { n: result.removed, m: result.not_members }),
      );
    } catch (err) {
      replace(message, h("span", { class: "field-error" }, errorText(err)));
    }
  };
  const bar = h(
    "div",
    { class: "bulk row wrap" },
    h("label", { for: "bulk-group" }, t("contacts.selected_to")),
    select,
    h("button", { type: "button", id: "bulk-add", onclick: () => act("POST") }, t("contacts.add_to_group")),
    h("button", { type: "button", id: "bulk-remove", onclick: () => act("DELETE") }, t("contacts.remove_from_group")),
    message,
  );
  bar.fill = fill;
  return bar;
}

/// The contact body from a form's values: empty optional fields are left out.
export function contactBody(values, cleared = false) {
  const body = { name: values.name };
  for (const name of ["phone", "email", "language"]) {
    if (values[name]) body[name] = values[name];
    else if (cleared) body[name] = null;
  }
  return body;
}

function createForm(reload) {
  const status = h("p", { class: "success", role: "status", hidden: true });
  const element = form(
    { id: "contact-form", class: "grid-form" },
    contactFields(),
    t("contacts.create"),
    async (values) => {
      // The last contact's "added" line goes as a new one is tried: it must not stand beside
      // this one's refusal.
      status.hidden = true;
      const contact = await post("/v1/contacts", contactBody(values));
      element.reset();
      replace(status, h("a", { href: `#/contact/${encodeURIComponent(contact.id)}` }, t("contacts.created_one", { name: contact.name })));
      status.hidden = false;
      await reload();
    },
  );
  element.append(status);
  return element;
}

export function contactFields() {
  return [
    field("name", t("contacts.name"), { required: true, maxlength: 200, autocomplete: "off" }),
    field("phone", t("contacts.phone"), { type: "tel", autocomplete: "off", placeholder: "+237 6…" }),
    field("email", t("contacts.email"), { type: "email", autocomplete: "off" }),
    field("language", t("contacts.language"), { options: [["", t("contacts.language_none")], ["en", "English"], ["fr", "Français"]] }, "select"),
  ];
}

function drawGroups(card, state, reload, redrawGroups) {
  const create = form({ id: "group-form", class: "inline-form" }, [field("name", t("groups.name"), { required: true, maxlength: 100 })], t("groups.create"), async (values) => {
    await post("/v1/groups", { name: values.name });
    await redrawGroups();
  });
  const rows = state.groups.map((group) =>
    h(
      "tr",
      { dataset: { id: group.id } },
      h("td", {}, h("a", { href: `#/contacts/${encodeURIComponent(group.id)}` }, group.name)),
      h("td", { class: "num" }, number(group.member_count)),
      h(
        "td",
        {},
        h(
          "button",
          {
            type: "button",
            class: "danger small",
            "aria-label": t("groups.delete_named", { name: group.name }),
            onclick: async () => {
              if (!confirm(t("groups.delete_confirm", { name: group.name }))) return;
              try {
                await api("DELETE", `/v1/groups/${encodeURIComponent(group.id)}`);
                await redrawGroups();
                await reload();
              } catch (err) {
                alert(errorText(err));
              }
            },
          },
          t("groups.delete"),
        ),
      ),
    ),
  );
  replace(
    card,
    h("h2", {}, t("groups.title")),
    rows.length
      ? h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { id: "group-list" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("groups.name")), h("th", { scope: "col", class: "num" }, t("groups.members")), h("th", { scope: "col" }, ""))),
            h("tbody", {}, rows),
          ),
        )
      : h("p", { class: "empty" }, t("groups.empty")),
    create,
  );
}

function fieldsCard(definitions) {
  const list = h("div", { id: "field-list" });
  const draw = (items) =>
    replace(
      list,
      items.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, [t("fields.key"), t("fields.label"), t("fields.type"), t("fields.options")].map((text) => h("th", { scope: "col" }, text)))),
              h(
                "tbody",
                {},
                items.map((d) => h("tr", {}, h("td", { class: "mono" }, d.key), h("td", {}, d.label), h("td", {}, t(`fieldtype.${d.type}`)), h("td", {}, (d.options || []).join(", ")))),
              ),
            ),
          )
        : h("p", { class: "empty" }, t("fields.empty")),
    );
  draw(definitions);
  const create = form(
    { id: "field-form", class: "grid-form" },
    [
      field("key", t("fields.key"), { required: true, pattern: "[a-z][a-z0-9_]*", maxlength: 40, hint: t("fields.key_hint"), class: "mono" }),
      field("label", t("fields.label"), { required: true, maxlength: 100 }),
      field("type", t("fields.type"), { options: FIELD_TYPES.map((type) => [type, t(`fieldtype.${type}`)]) }, "select"),
      field("options", t("fields.options"), { hint: t("fields.options_hint") }),
    ],
    t("fields.create"),
    async (values) => {
      const body = { key: values.key, label: values.label, type: values.type };
      if (values.type === "select") body.options = values.options.split(",").map((o) => o.trim()).filter(Boolean);
      await post("/v1/contact-fields", body);
      create.reset();
      draw((await get("/v1/contact-fields")).data);
    },
  );
  return [h("h2", {}, t("fields.title")), list, h("h3", {}, t("fields.add")), create];
}
