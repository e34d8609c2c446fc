// Forms: every control has a label; a 422 `validation_failed` puts each field's reason next to
// its control (tied with aria-describedby), and any other error shows as the form's message.

import { h } from "./dom.js";
import { has, money, number, t } from "./i18n.js";

let nextId = 0;

/// A labelled control: `field("email", t("login.email"), {type: "email", required: true})`.
/// `kind` "textarea" or "select" (with `options: [[value, label], …]`) make those controls.
export function field(name, label, attrs = {}, kind = "input") {
  const { hint, options, ...rest } = attrs;
  const control =
    kind === "select"
      ? h("select", { name, ...rest }, (options || []).map(([value, text]) => h("option", { value }, text)))
      : h(kind, { name, ...rest });
  return fieldAround(name, label, control, hint);
}

/// The label, hint and error slot around a control made elsewhere (one a page keeps a hold
/// of, such as the textarea the SMS counter follows).
export function fieldAround(name, label, control, hint) {
  const id = control.id || `f-${name}-${++nextId}`;
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field", dataset: { field: name } },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("p", { class: "field-error", id: `${id}-error`, hidden: true }),
  );
}

/// A form with a message area at its top and a submit button; `onSubmit(values, form)` runs
/// with the controls' values while the button is disabled, and its errors are shown.
export function form(attrs, fields, submitLabel, onSubmit) {
  const message = h("div", { class: "form-error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "primary" }, submitLabel);
  const element = h("form", { novalidate: true, ...attrs }, message, fields, h("div", { class: "actions" }, button));
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(element);
    button.disabled = true;
    try {
      await onSubmit(values(element), element);
    } catch (err) {
      showError(element, err);
    } finally {
      button.disabled = false;
    }
  });
  return element;
}

export function values(formElement) {
  const out = {};
  for (const control of formElement.elements) {
    if (!control.name) continue;
    if (control.type === "checkbox") {
      (out[control.name] ||= []);
      if (control.checked) out[control.name].push(control.value);
    } else if (control.type === "radio") {
      if (control.checked) out[control.name] = control.value;
    } else {
      out[control.name] = control.value;
    }
  }
  return out;
}

export function clearErrors(formElement) {
  for (const slot of formElement.querySelectorAll(".field-error")) {
    slot.hidden = true;
    slot.textContent = "";
  }
  for (const control of formElement.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
    const hint = control.closest(".field")?.querySelector(".hint");
    if (hint) control.setAttribute("aria-describedby", hint.id);
    else control.removeAttribute("aria-describedby");
  }
  const message = formElement.querySelector(".form-error");
  if (message) {
    message.hidden = true;
    message.textContent = "";
  }
}

/// The sentence for an error in the page's language: the text of its code (`error.code.<code>`,
/// every code the server emits has one — tests/it/console.rs checks it), filled from the
/// envelope's details (`{balance}`, `{seconds}`) and, where the API's sentence says what no
/// code can (a conflict's reason), with `{message}`; the API's message for a code the console
/// does not know; ours when there was no answer at all.
export function errorText(err) {
  if (!err) return t("error.generic");
  if (err.code === "network") return t("error.network");
  // A duplicate contact: said in the reader's language, without the other contact's raw id
  // (the API's sentence names it, for API callers; the console links to it where it can).
  const existing = err.details && err.details.existing_id;
  if (err.code === "conflict" && typeof existing === "string" && existing.startsWith("con_")) {
    const what = /\bthis (phone|email)\b/.exec(err.message || "");
    return t(what ? `error.duplicate_contact_${what[1]}` : "error.duplicate_contact");
  }
  const key = `error.code.${err.code}`;
  if (err.code && has(key) && (err.message || !t(key).includes("{message}"))) {
    const details = err.details || {};
    return t(key, {
      message: err.message || "",
      balance: money(details.balance),
      charge: money(details.charge),
      seconds: number(details.retry_after_seconds ?? 1),
      scopes: (details.missing_scopes || []).join(", "),
      limit: number(details.limit_bytes ?? 0),
      methods: (details.allowed_methods || []).join(", "),
    });
  }
  return err.message || t("error.generic");
}

/// Shows an API error on a form: each named field by its control, the message on top.
export function showError(formElement, err) {
  const fields = (err && err.fields) || {};
  let unplaced = [];
  let first = null;
  for (const [name, reason] of Object.entries(fields)) {
    const wrapper = formElement.querySelector(`.field[data-field="${CSS.escape(name)}"]`);
    if (!wrapper) {
      unplaced.push(`${name}: ${reason}`);
      continue;
    }
    const slot = wrapper.querySelector(".field-error");
    const control = wrapper.querySelector("input, select, textarea");
    slot.textContent = reason;
    slot.hidden = false;
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", slot.id);
    first ||= control;
  }
  const message = formElement.querySelector(".form-error");
  const lines = [errorText(err), ...unplaced];
  if (err && err.requestId && err.status >= 500) lines.push(t("error.request_id", { id: err.requestId }));
  message.textContent = lines.join(" ");
  message.hidden = false;
  (first || message).focus?.();
}
