// One contact: its edit form — name, phone, email, language and each custom field shown by its
// definition (a number box, a date, yes/no, a select's options) — its subscriptions, and delete.

import { api, get } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, t } from "../lib/i18n.js";
import { contactBody, contactFields } from "./contacts.js";

export const title = () => t("contact.title");

export async function render(id) {
  const path = `/v1/contacts/${encodeURIComponent(id)}`;
  const [contact, definitions] = await Promise.all([get(path), get("/v1/contact-fields")]);
  const status = h("p", { class: "success", role: "status", hidden: true });
  const custom = definitions.data.map((d) => customField(d, contact.custom[d.key]));
  const subscriptions = ["sms", "email"].map((channel) =>
    h(
      "label",
      { class: "check-label" },
      h("input", { type: "checkbox", name: `unsubscribed_${channel}`, value: "yes", checked: Boolean(contact[`${channel}_unsubscribed_at`]) }),
      " ",
      t(`contact.unsubscribed_${channel}`),
    ),
  );
  const edit = form(
    { id: "contact-edit", class: "grid-form" },
    [
      contactFields(),
      custom.length ? h("fieldset", { class: "wide custom-fields" }, h("legend", {}, t("contact.custom")), custom) : null,
      h("fieldset", { class: "field wide", dataset: { field: "unsubscribed" } }, h("legend", {}, t("contact.subscriptions")), subscriptions),
    ],
    t("contact.save"),
    async (values) => {
      // Only what changed: clearing a field that was already empty would be a needless write.
      const body = contactBody(values, true);
      for (const name of ["phone", "email", "language"]) {
        if (body[name] === null && !contact[name]) delete body[name];
      }
      body.custom = {};
      for (const d of definitions.data) {
        const value = customValue(d, values[`custom.${d.key}`]);
        if (value !== (contact.custom[d.key] ?? null)) body.custom[d.key] = value;
      }
      // Only a channel whose box changed: an unchanged one keeps its time and way.
      const unsubscribed = {};
      for (const channel of ["sms", "email"]) {
        const wanted = values[`unsubscribed_${channel}`].length > 0;
        if (wanted !== Boolean(contact[`${channel}_unsubscribed_at`])) unsubscribed[channel] = wanted;
      }
      if (Object.keys(unsubscribed).length) body.unsubscribed = unsubscribed;
      Object.assign(contact, await api("PATCH", path, body));
      status.textContent = t("contact.saved");
      status.hidden = false;
    },
  );
  edit.addEventListener("input", () => (status.hidden = true));
  edit.elements.name.value = contact.name;
  edit.elements.phone.value = contact.phone || "";
  edit.elements.email.value = contact.email || "";
  edit.elements.language.value = contact.language || "";
  edit.append(status);
  const remove = h("button", { type: "button", class: "danger", id: "delete-contact" }, t("contact.delete"));
  const feedback = h("p", { class: "form-error", role: "alert", hidden: true });
  remove.addEventListener("click", async () => {
    if (!confirm(t("contact.delete_confirm", { name: contact.name }))) return;
    try {
      await api("DELETE", path);
      location.hash = "#/contacts";
    } catch (err) {
      feedback.textContent = errorText(err);
      feedback.hidden = false;
    }
  });
  return h(
    "div",
    { class: "contact-page" },
    h("p", {}, h("a", { href: "#/contacts" }, "← ", t("contact.back"))),
    h(
      "section",
      { class: "card" },
      h("p", { class: "muted small" }, h("span", { class: "mono" }, contact.id), " · ", t("contact.created", { at: dateTime(contact.created_at) })),
      edit,
    ),
    h("section", { class: "card" }, h("h2", {}, t("contact.delete_title")), h("p", { class: "small muted" }, t("contact.delete_hint")), remove, feedback),
  );
}

/// A custom field's control, by its definition's type.
function customField(definition, value) {
  const name = `custom.${definition.key}`;
  const label = definition.label;
  const present = value !== undefined && value !== null;
  switch (definition.type) {
    case "boolean":
      return withValue(field(name, label, { options: [["", "—"], ["true", t("contact.yes")], ["false", t("contact.no")]] }, "select"), present ? String(value) : "");
    case "select":
      return withValue(field(name, label, { options: [["", "—"], ...definition.options.map((o) => [o, o])] }, "select"), present ? value : "");
    case "number":
      return withValue(field(name, label, { type: "number", step: "any" }), present ? String(value) : "");
    case "date":
      return withValue(field(name, label, { type: "date" }), present ? value : "");
    case "url":
      return withValue(field(name, label, { type: "url" }), present ? value : "");
    default:
      return withValue(field(name, label, { maxlength: 1000 }), present ? value : "");
  }
}

function withValue(wrapper, value) {
  wrapper.querySelector("input, select").value = value;
  return wrapper;
}

/// A control's text as the JSON the definition's type takes; empty clears the value (`null`).
function customValue(definition, text) {
  if (text === undefined || text === "") return null;
  if (definition.type === "boolean") return text === "true";
  if (definition.type === "number") return Number.isFinite(Number(text)) ? Number(text) : text;
  return text;
}
