// The live SMS counter: characters, GSM-7 or UCS-2 (the characters that force UCS-2 marked),
// segments and price, asked of `POST /v1/messages/estimate` a quarter second after the typing
// stops. The send-a-test form and the campaign composer both use it.

import { post } from "./api.js";
import { h, replace } from "./dom.js";
import { errorText } from "./forms.js";
import { money, number, t } from "./i18n.js";

/// `smsCounter(textarea, () => ({channel: "sms", to, text}))` → `{element, reset}`: the counter
/// follows the textarea (and anything else that calls `update`). `bodyFor(text)` makes the
/// estimate request; an error only on `to` (the number not typed yet) is not shown.
export function smsCounter(textarea, bodyFor, id = "sms-counter") {
  const element = h("div", { class: "counter", id, "aria-live": "polite" }, t("counter.waiting"));
  let timer = null;
  let asked = 0;
  const update = () => {
    const text = textarea.value;
    clearTimeout(timer);
    asked++;
    if (!text) return show(element, "", null, null);
    timer = setTimeout(async () => {
      const mine = ++asked;
      try {
        const result = await post("/v1/messages/estimate", bodyFor(text));
        if (mine === asked) show(element, text, result, null);
      } catch (err) {
        if (mine === asked) show(element, text, null, err);
      }
    }, 250);
  };
  textarea.addEventListener("input", update);
  return { element, update, reset: () => show(element, "", null, null) };
}

function show(counter, text, estimate, error) {
  if (!text) return replace(counter, t("counter.waiting"));
  const characters = [...text].length;
  const parts = [h("span", { class: "count", id: "counter-characters" }, t("counter.characters", { n: number(characters) }))];
  if (estimate) {
    parts.push(
      h("span", { class: `badge encoding-${estimate.encoding}`, id: "counter-encoding" }, estimate.encoding === "ucs2" ? "UCS-2" : "GSM-7"),
      h("span", { id: "counter-segments" }, estimate.segments === 1 ? t("counter.segment") : t("counter.segments", { n: estimate.segments })),
      h("span", { id: "counter-price" }, t("counter.price", { price: money(estimate.charge) })),
    );
    if (!estimate.affordable) parts.push(h("span", { class: "warning" }, t("counter.unaffordable")));
  }
  const rows = [h("p", { class: "counter-line" }, parts)];
  const forcing = (estimate && estimate.non_gsm_characters) || [];
  if (forcing.length) {
    const marked = new Set(forcing);
    rows.push(
      h("p", { class: "small" }, t("counter.ucs2_because"), " ", forcing.map((c) => h("mark", { class: "ucs2" }, c))),
      h("p", { class: "preview", "aria-hidden": "true" }, [...text].map((c) => (marked.has(c) ? h("mark", { class: "ucs2" }, c) : c))),
    );
  }
  const fields = (error && error.fields) || {};
  if (error && !(Object.keys(fields).length === 1 && fields.to)) {
    rows.push(h("p", { class: "field-error" }, Object.keys(fields).length ? Object.values(fields).join(" ") : errorText(error)));
  }
  replace(counter, rows);
}
