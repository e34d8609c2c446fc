// Segments: a builder of conditions (field, operator, value) in groups joined by "all" or
// "any", nested as deep as the API allows, whose matching contacts are counted live —
// `POST /v1/segments/preview` a moment after each change — and saved by name; the saved
// segments, each a link to the contacts it matches now and one to open it in the builder
// (`#/segments/<id>`), where saving changes it.

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

/// The deepest nesting of groups, the root counting as one (`MAX_DEPTH` in
/// src/contacts/rules.rs; tests/it/console.rs keeps the two equal).
export const MAX_DEPTH = 5;

export async function render(param) {
  const [definitions, groups, saved, found] = await Promise.all([
    get("/v1/contact-fields"),
    all("/v1/groups"),
    all("/v1/segments"),
    param ? get(`/v1/segments/${encodeURIComponent(param)}`) : null,
  ]);
  const fields = fieldsOf(definitions.data, groups);
  let opened = found;
  const count = h("p", { class: "live-count", id: "segment-count", "aria-live": "polite" }, t("segments.count_waiting"));
  const list = h("div", { id: "segment-list" });
  let timer = null;
  let asked = 0;
  const recount = () => {
    // Numbers in the labels follow the tree (one removed renumbers the rest).
    root.relabel("");
    clearTimeout(timer);
    const mine = ++asked;
    replace(count, h("span", { class: "muted" }, t("segments.counting")));
    timer = setTimeout(async () => {
      root.clearErrors();
      try {
        const preview = await post("/v1/segments/preview", { rules: root.node() });
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
        showRuleErrors(root, count, err);
      }
    }, DEBOUNCE_MS);
  };
  const root = groupBox(fields, 1, recount, null, opened ? opened.rules : null);
  root.id = "rule-root";
  root.querySelector("ol").id = "conditions";
  const save = form(
    { id: "segment-form", class: "inline-form" },
    [field("name", t("segments.name"), { required: true, maxlength: 100, value: opened ? opened.name : false })],
    opened ? t("segments.save_changes") : t("segments.save"),
    async (values) => {
      try {
        const body = { name: values.name, rules: root.node() };
        const stored = opened
          ? await api("PATCH", `/v1/segments/${encodeURIComponent(opened.id)}`, body)
          : await post("/v1/segments", body);
        // The address names the saved segment: a reload opens this same tree.
        history.replaceState(null, "", `#/segments/${encodeURIComponent(stored.id)}`);
        opened = stored;
        save.querySelector("button[type=submit]").textContent = t("segments.save_changes");
        heading.textContent = t("segments.editing", { name: stored.name });
        newLink.hidden = false;
      } catch (err) {
        if (!Object.keys(err.fields).some((path) => path.startsWith("rules"))) throw err;
        // The rules' reasons are shown in the tree; the form says the rest (the name's).
        showRuleErrors(root, count, err, true);
        const rest = Object.fromEntries(Object.entries(err.fields).filter(([path]) => !path.startsWith("rules")));
        err.details = { ...err.details, fields: rest };
        throw err;
      }
      drawSaved(list, await all("/v1/segments"));
    },
  );
  const heading = h("h2", {}, opened ? t("segments.editing", { name: opened.name }) : t("segments.build"));
  const newLink = h("p", { hidden: !opened }, h("a", { href: "#/segments", id: "new-segment" }, t("segments.new")));
  drawSaved(list, saved);
  recount();
  return h(
    "div",
    { class: "segments-page" },
    h(
      "section",
      { class: "card", id: "builder" },
      heading,
      newLink,
      root,
      count,
      save,
    ),
    h("section", { class: "card" }, h("h2", {}, t("segments.saved")), list),
  );
}

/// A group: its join (all or any), its children — conditions and groups — and the buttons to
/// add either (a group only above the depth limit) or to remove it (not the root). `node()` is
/// its JSON; `relabel(number)` numbers its children `1.2.1`; `at(indexes)` finds a descendant
/// by a 422 path's indexes. `initial` (saved rules) fills it.
function groupBox(fields, depth, changed, onRemove, initial) {
  const box = h("fieldset", { class: `rule-group depth-${depth}`, dataset: { depth: String(depth) } });
  const legend = h("legend", {});
  const join = h("select", { name: "join", class: "join" }, h("option", { value: "all" }, t("segments.all")), h("option", { value: "any" }, t("segments.any")));
  const joinLabel = h("label", {}, h("span", { class: "join-label" }), join);
  const children = h("ol", { class: "conditions" });
  const error = h("p", { class: "field-error", hidden: true });
  const removable = () => children.children.length > 1;
  const addCondition = (condition) => {
    const row = conditionRow(fields, changed, removable, condition);
    children.append(row);
    return row;
  };
  const addGroup = (rules) => {
    const item = h("li", { class: "condition nested" });
    const group = groupBox(fields, depth + 1, changed, () => {
      item.remove();
      changed();
      addGroupButton.focus();
    }, rules);
    item.append(group);
    item.group = group;
    item.node = () => group.node();
    item.relabel = (n) => group.relabel(n);
    item.clearErrors = () => group.clearErrors();
    item.showError = (text) => group.showError(text);
    item.at = (indexes) => group.at(indexes);
    children.append(item);
    return item;
  };
  const addConditionButton = h("button", {
    type: "button",
    class: "add-condition",
    id: depth === 1 ? "add-condition" : false,
    onclick: () => {
      addCondition().querySelector("select").focus();
      changed();
    },
  }, t("segments.add"));
  const addGroupButton = h("button", {
    type: "button",
    class: "add-group",
    id: depth === 1 ? "add-group" : false,
    hidden: depth >= MAX_DEPTH,
    onclick: () => {
      addGroup().querySelector("select").focus();
      changed();
    },
  }, t("segments.add_group"));
  const removeButton = onRemove ? h("button", { type: "button", class: "link remove remove-group", onclick: onRemove }, t("segments.remove_group")) : null;
  join.addEventListener("change", changed);
  if (initial) {
    const key = "any" in initial ? "any" : "all";
    join.value = key;
    for (const child of initial[key] || []) {
      if (child && ("all" in child || "any" in child) && depth < MAX_DEPTH) addGroup(child);
      else addCondition(child);
    }
  }
  if (!children.children.length) addCondition();
  box.append(legend, h("div", { class: "group-head" }, joinLabel, removeButton), children, error, h("p", { class: "group-actions" }, addConditionButton, " ", addGroupButton));
  box.node = () => ({ [join.value]: [...children.children].map((child) => child.node()) });
  box.relabel = (number) => {
    legend.textContent = number ? t("segments.group", { n: number }) : t("segments.root");
    legend.classList.toggle("visually-hidden", !number);
    joinLabel.firstChild.textContent = t("segments.join");
    // The legend shows which group this is; a nested join's name says it to a screen reader.
    if (number) join.setAttribute("aria-label", t("segments.group_join", { n: number }));
    addConditionButton.setAttribute("aria-label", number ? t("segments.add_in", { n: number }) : t("segments.add"));
    addGroupButton.setAttribute("aria-label", number ? t("segments.add_group_in", { n: number }) : t("segments.add_group"));
    removeButton?.setAttribute("aria-label", t("segments.remove_group_named", { n: number }));
    [...children.children].forEach((child, index) => child.relabel(number ? `${number}.${index + 1}` : String(index + 1)));
  };
  box.clearErrors = () => {
    box.showError(null);
    for (const child of children.children) child.clearErrors();
  };
  box.showError = (text) => {
    error.textContent = text || "";
    error.hidden = !text;
    box.classList.toggle("invalid", Boolean(text));
  };
  box.at = (indexes) => {
    if (!indexes.length) return box;
    const child = children.children[indexes[0]];
    if (!child) return null;
    return indexes.length === 1 ? child : child.at ? child.at(indexes.slice(1)) : child;
  };
  return box;
}

/// One condition: a row of field, operator and value controls that rebuild as the choice of
/// field or operator changes. `row.node()` is its JSON; `row.showError` marks it; `initial`
/// (a saved condition) sets its controls.
function conditionRow(fields, changed, removable, initial) {
  const row = h("li", { class: "condition" });
  let number = "";
  const fieldSelect = h("select", { name: "field" }, fields.map(([name, label]) => h("option", { value: name }, label)));
  const opSelect = h("select", { name: "op" });
  const valueBox = h("span", { class: "value" });
  const error = h("p", { class: "field-error", hidden: true });
  const current = () => fields.find(([name]) => name === fieldSelect.value) || fields[0];
  const drawOps = () => {
    const [, , type, , optional] = current();
    replace(opSelect, [...OPERATORS[type], ...(optional ? UNSET : [])].map((op) => h("option", { value: op }, t(`op.${op}`))));
  };
  const drawValue = () => {
    const [, , type, choices] = current();
    const op = opSelect.value;
    const label = t("segments.value", { n: number });
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
        h("input", { type: inputType, "aria-label": t("segments.low", { n: number }), class: "v", step: "any" }),
        h("input", { type: inputType, "aria-label": t("segments.high", { n: number }), class: "v", step: "any" }),
      );
    }
    if (op === "in") return replace(valueBox, h("input", { type: "text", "aria-label": label, class: "v", placeholder: t("segments.in_hint") }));
    return replace(valueBox, h("input", { type: inputType, "aria-label": label, class: "v", step: "any" }));
  };
  fieldSelect.addEventListener("change", () => (drawOps(), drawValue(), row.relabel(number), changed()));
  opSelect.addEventListener("change", () => (drawValue(), row.relabel(number), changed()));
  row.addEventListener("input", (event) => event.target.classList.contains("v") && changed());
  const remove = h("button", {
    type: "button",
    class: "link remove",
    onclick: () => {
      if (!removable()) return;
      // The focus goes on to the next control rather than back to the top of the page.
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      next?.querySelector("select")?.focus();
      changed();
    },
  }, t("segments.remove"));
  row.relabel = (n) => {
    number = n;
    fieldSelect.setAttribute("aria-label", t("segments.field", { n }));
    opSelect.setAttribute("aria-label", t("segments.operator", { n }));
    remove.setAttribute("aria-label", t("segments.remove_named", { n }));
    const controls = [...valueBox.querySelectorAll(".v")];
    if (controls.length === 2) {
      controls[0].setAttribute("aria-label", t("segments.low", { n }));
      controls[1].setAttribute("aria-label", t("segments.high", { n }));
    } else if (controls.length === 1) {
      controls[0].setAttribute("aria-label", t("segments.value", { n }));
    }
  };
  row.node = () => {
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
  row.clearErrors = () => row.showError(null);
  row.showError = (text) => {
    error.textContent = text || "";
    error.hidden = !text;
    row.classList.toggle("invalid", Boolean(text));
  };
  drawOps();
  if (initial && fields.some(([name]) => name === initial.field)) {
    fieldSelect.value = initial.field;
    drawOps();
    opSelect.value = initial.op;
  }
  drawValue();
  if (initial && "value" in initial) {
    const controls = [...valueBox.querySelectorAll(".v")];
    const value = initial.value;
    if (controls[0]?.multiple) {
      const wanted = (Array.isArray(value) ? value : [value]).map(String);
      for (const option of controls[0].options) option.selected = wanted.includes(option.value);
    } else if (controls.length === 2 && Array.isArray(value)) {
      controls.forEach((control, i) => (control.value = String(value[i] ?? "")));
    } else if (controls[0]) {
      controls[0].value = Array.isArray(value) ? value.join(", ") : String(value);
    }
  }
  row.append(h("div", { class: "condition-controls" }, fieldSelect, opSelect, valueBox, remove), error);
  return row;
}

/// A 422's paths (`rules.all[2].any[0].value`) put by the condition or group they name; the
/// rest under the count. `saving`: the paths came from a save, whose form says the rest.
function showRuleErrors(root, count, err, saving = false) {
  const loose = [];
  for (const [path, reason] of Object.entries(err.fields || {})) {
    if (!path.startsWith("rules")) continue;
    const indexes = [...path.matchAll(/\.(?:all|any)\[(\d+)\]/g)].map((match) => Number(match[1]));
    const node = root.at(indexes);
    if (node) node.showError(reason);
    else loose.push(reason);
  }
  if (saving) return;
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
          " ",
          h("a", { href: `#/segments/${encodeURIComponent(segment.id)}`, class: "small", "aria-label": t("segments.open_named", { name: segment.name }) }, t("segments.open")),
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
