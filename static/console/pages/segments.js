// Segments: a builder of conditions (field, operator, value) joined by "all" or "any", whose
// matching contacts are counted live — `POST /v1/segments/preview` a moment after each change —
// and saved by name; the saved segments, each a link to the contacts it matches now.

import { api, get, post } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, number, t } from "../lib/i18n.js";
import { all, EMAIL_STATES, PHONE_STATES } from "./contacts.js";

export const title = () => t("segments.title");

const OPERATORS = {
  text: ["eq", "neq", "in", "contains", "starts_with"],
  number: ["eq", "neq", "in", "gt", "gte", "lt", "lte", "between"],
  date: ["eq", "neq", "before", "after", "gt", "gte", "lt", "lte", "between"],
  boolean: ["eq", "neq"],
  choice: ["eq", "neq", "in"],
  group: ["eq", "neq", "in"],
};
const UNSET = ["is_set", "is_not_set"];
const DEBOUNCE_MS = 400;

/// The fields a condition can test: `[name, label, type, choices, optional]`.
function fieldsOf(definitions, groups) {
  const choices = (words, prefix) => words.map((w) => [w, t(`${prefix}${w}`)]);
  const custom = definitions.map((d) => {
    const type = { text: "text", url: "text", select: "choice" }[d.type] || d.type;
    return [`custom.${d.key}`, d.label, type, d.type === "select" ? d.options.map((o) => [o, o]) : null, true];
  });
  return [
    ["name", t("contacts.name"), "text", null, false],
    ["first_name", t("import.field.first_name"), "text", null, true],
    ["last_name", t("import.field.last_name"), "text", null, true],
    ["phone", t("contacts.phone"), "text", null, true],
    ["email", t("contacts.email"), "text", null, true],
    ["language", t("contacts.language"), "choice", [["en", "English"], ["fr", "Français"]], true],
    ["phone_state", t("contacts.phone_state"), "choice", choices(PHONE_STATES, "reach."), true],
    ["email_state", t("contacts.email_state"), "choice", choices(EMAIL_STATES, "reach."), true],
    ["sms_unsubscribed", t("segments.sms_unsubscribed"), "boolean", null, false],
    ["email_unsubscribed", t("segments.email_unsubscribed"), "boolean", null, false],
    ["created_at", t("contacts.created"), "date", null, false],
    ["updated_at", t("segments.updated"), "date", null, false],
    ["group", t("contacts.group"), "group", groups.map((g) => [g.id, g.name]), false],
    ...custom,
  ];
}

export async function render() {
  const [definitions, groups, saved] = await Promise.all([get("/v1/contact-fields"), all("/v1/groups"), all("/v1/segments")]);
  const fields = fieldsOf(definitions.data, groups);
  const rows = h("ol", { class: "conditions", id: "conditions" });
  const count = h("p", { class: "live-count", id: "segment-count", "aria-live": "polite" }, t("segments.count_waiting"));
  const join = field("join", t("segments.join"), { options: [["all", t("segments.all")], ["any", t("segments.any")]] }, "select");
  const list = h("div", { id: "segment-list" });
  let timer = null;
  let asked = 0;
  const rules = () => ({ [join.querySelector("select").value]: [...rows.children].map((row) => row.condition()) });
  const recount = () => {
    // Numbers in the labels follow the rows (one removed renumbers the rest).
    for (const row of rows.children) row.relabel();
    clearTimeout(timer);
    const mine = ++asked;
    replace(count, h("span", { class: "muted" }, t("segments.counting")));
    timer = setTimeout(async () => {
      for (const row of rows.children) row.showError(null);
      try {
        const preview = await post("/v1/segments/preview", { rules: rules() });
        if (mine !== asked) return;
        replace(
          count,
          h("strong", { id: "segment-count-value" }, number(preview.count)),
          " ",
          t(preview.count === 1 ? "segments.contact" : "segments.contacts"),
          preview.sample.length ? h("span", { class: "muted small block" }, t("segments.sample", { names: preview.sample.slice(0, 5).map((c) => c.name).join(", ") })) : null,
        );
      } catch (err) {
        if (mine !== asked) return;
        showRuleErrors(rows, count, err);
      }
    }, DEBOUNCE_MS);
  };
  const add = () => {
    rows.append(conditionRow(fields, recount, () => rows.children.length > 1, () => rows.children.length));
    recount();
  };
  join.addEventListener("change", recount);
  add();
  const save = form({ id: "segment-form", class: "inline-form" }, [field("name", t("segments.name"), { required: true, maxlength: 100 })], t("segments.save"), async (values) => {
    await post("/v1/segments", { name: values.name, rules: rules() });
    save.reset();
    drawSaved(list, await all("/v1/segments"));
  });
  drawSaved(list, saved);
  return h(
    "div",
    { class: "segments-page" },
    h(
      "section",
      { class: "card", id: "builder" },
      h("h2", {}, t("segments.build")),
      join,
      rows,
      h("p", {}, h("button", { type: "button", id: "add-condition", onclick: add }, t("segments.add"))),
      count,
      save,
    ),
    h("section", { class: "card" }, h("h2", {}, t("segments.saved")), list),
  );
}

/// One condition: a row of field, operator and value controls that rebuild as the choice of
/// field or operator changes. `row.condition()` is its JSON; `row.showError` marks it.
function conditionRow(fields, changed, removable, rowsSoFar) {
  const row = h("li", { class: "condition" });
  // Its number in the list, for the controls' labels (the last one while not yet placed).
  const index = () => (row.parentNode ? [...row.parentNode.children].indexOf(row) + 1 : rowsSoFar() + 1);
  const fieldSelect = h("select", { name: "field", "aria-label": "" }, fields.map(([name, label]) => h("option", { value: name }, label)));
  const opSelect = h("select", { name: "op" });
  const valueBox = h("span", { class: "value" });
  const error = h("p", { class: "field-error", hidden: true });
  const current = () => fields.find(([name]) => name === fieldSelect.value);
  const drawOps = () => {
    const [, , type, , optional] = current();
    replace(opSelect, [...OPERATORS[type], ...(optional ? UNSET : [])].map((op) => h("option", { value: op }, t(`op.${op}`))));
  };
  const drawValue = () => {
    const [, , type, choices] = current();
    const op = opSelect.value;
    const label = t("segments.value", { n: index() });
    if (UNSET.includes(op)) return replace(valueBox);
    if (type === "boolean") {
      return replace(valueBox, h("select", { "aria-label": label, class: "v" }, h("option", { value: "true" }, t("contact.yes")), h("option", { value: "false" }, t("contact.no"))));
    }
    if (choices) {
      return replace(valueBox, h("select", { "aria-label": label, class: "v", multiple: op === "in" }, choices.map(([value, text]) => h("option", { value }, text))));
    }
    const inputType = { number: "number", date: "date" }[type] || "text";
    if (op === "between") {
      return replace(
        valueBox,
        h("input", { type: inputType, "aria-label": t("segments.low", { n: index() }), class: "v", step: "any" }),
        h("input", { type: inputType, "aria-label": t("segments.high", { n: index() }), class: "v", step: "any" }),
      );
    }
    if (op === "in") return replace(valueBox, h("input", { type: "text", "aria-label": label, class: "v", placeholder: t("segments.in_hint") }));
    return replace(valueBox, h("input", { type: inputType, "aria-label": label, class: "v", step: "any" }));
  };
  const label = () => {
    fieldSelect.setAttribute("aria-label", t("segments.field", { n: index() }));
    opSelect.setAttribute("aria-label", t("segments.operator", { n: index() }));
    remove.setAttribute("aria-label", t("segments.remove_named", { n: index() }));
  };
  fieldSelect.addEventListener("change", () => (drawOps(), drawValue(), changed()));
  opSelect.addEventListener("change", () => (drawValue(), changed()));
  row.addEventListener("input", (event) => event.target.classList.contains("v") && changed());
  const remove = h("button", {
    type: "button",
    class: "link remove",
    onclick: () => {
      if (!removable()) return;
      row.remove();
      changed();
    },
  }, t("segments.remove"));
  row.condition = () => {
    const [name, , type] = current();
    const op = opSelect.value;
    const condition = { field: name, op };
    if (UNSET.includes(op)) return condition;
    const controls = [...valueBox.querySelectorAll(".v")];
    const cast = (text) => (type === "number" && text !== "" && Number.isFinite(Number(text)) ? Number(text) : text);
    if (type === "boolean") condition.value = controls[0].value === "true";
    else if (controls[0].multiple) condition.value = [...controls[0].selectedOptions].map((o) => o.value);
    else if (op === "between") condition.value = controls.map((c) => cast(c.value));
    else if (op === "in") condition.value = controls[0].value.split(",").map((v) => cast(v.trim())).filter((v) => v !== "");
    else condition.value = cast(controls[0].value);
    return condition;
  };
  row.showError = (text) => {
    error.textContent = text || "";
    error.hidden = !text;
    row.classList.toggle("invalid", Boolean(text));
  };
  drawOps();
  drawValue();
  row.append(h("div", { class: "condition-controls" }, fieldSelect, opSelect, valueBox, remove), error);
  row.relabel = label;
  return row;
}

/// A 422's paths (`rules.all[2].value`) put by their condition; the rest under the count.
function showRuleErrors(rows, count, err) {
  const loose = [];
  for (const [path, reason] of Object.entries(err.fields || {})) {
    const match = /^rules\.(?:all|any)\[(\d+)\]/.exec(path);
    const row = match && rows.children[Number(match[1])];
    if (row) row.showError(reason);
    else loose.push(reason);
  }
  replace(count, h("span", { class: "field-error" }, loose.length ? loose.join(" ") : err.fields ? t("error.fields") : errorText(err)));
}

function drawSaved(list, segments) {
  if (!segments.length) return replace(list, h("p", { class: "empty" }, t("segments.none")));
  replace(
    list,
    h(
      "ul",
      { class: "plain-list" },
      segments.map((segment) =>
        h(
          "li",
          {},
          h("a", { href: `#/contacts/${encodeURIComponent(segment.id)}` }, segment.name),
          h("span", { class: "muted small" }, " · ", dateTime(segment.created_at), " "),
          h("button", {
            type: "button",
            class: "danger small",
            "aria-label": t("groups.delete_named", { name: segment.name }),
            onclick: async () => {
              if (!confirm(t("groups.delete_confirm", { name: segment.name }))) return;
              try {
                await api("DELETE", `/v1/segments/${encodeURIComponent(segment.id)}`);
                drawSaved(list, await all("/v1/segments"));
              } catch (err) {
                alert(errorText(err));
              }
            },
          }, t("groups.delete")),
        ),
      ),
    ),
  );
}
