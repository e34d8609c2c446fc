// Pieces more than one page shows: a message's status, a table of messages.

import { h } from "./dom.js";
import { dateTime, money, t } from "./i18n.js";

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, t(`status.${status}`));
}

/// A table of messages, each row linking to the message's page.
export function messageTable(messages) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "messages stack" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, t("messages.col_created")),
          h("th", { scope: "col" }, t("messages.col_to")),
          h("th", { scope: "col" }, t("messages.col_channel")),
          h("th", { scope: "col" }, t("messages.col_status")),
          h("th", { scope: "col", class: "num" }, t("messages.col_charge")),
        ),
      ),
      h(
        "tbody",
        {},
        messages.map((message) =>
          h(
            "tr",
            { dataset: { id: message.id } },
            h("td", { "data-label": t("messages.col_created") }, h("a", { href: `#/message/${encodeURIComponent(message.id)}` }, dateTime(message.created_at))),
            h("td", { class: "mono", "data-label": t("messages.col_to") }, message.to),
            h(
              "td",
              { "data-label": t("messages.col_channel") },
              t(`channel.${message.channel}`),
              message.mode === "test" ? h("span", { class: "badge" }, t("mode.test")) : null,
            ),
            h("td", { "data-label": t("messages.col_status") }, statusBadge(message.status)),
            h("td", { class: "num", "data-label": t("messages.col_charge") }, money(message.charge)),
          ),
        ),
      ),
    ),
  );
}

/// A table in its scrolling wrapper: `heads` are the column titles, each row a list of cells
/// (text, a node, or `{num: text}` for a right-aligned number); `attrs` go on the table. With
/// `class: "stack"` its rows become blocks on a phone, each cell named by its column.
export function table(heads, rows, attrs = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      attrs,
      h("thead", {}, h("tr", {}, heads.map((text) => h("th", { scope: "col" }, text)))),
      h(
        "tbody",
        {},
        rows.map((cells) =>
          h(
            "tr",
            {},
            cells.map((cell, index) =>
              cell && typeof cell === "object" && "num" in cell
                ? h("td", { class: "num", "data-label": heads[index] }, cell.num)
                : h("td", { "data-label": heads[index] }, cell),
            ),
          ),
        ),
      ),
    ),
  );
}

/// A value to copy somewhere else (a DNS record, a URL for a provider's dashboard): read-only,
/// selected on focus, with a copy button; without clipboard access it stays selected to copy
/// by hand.
export function copyField(id, value, label) {
  const input = h("input", { type: "text", readonly: true, value, class: "mono", id, "aria-label": label });
  input.addEventListener("focus", () => input.select());
  const copy = h("button", { type: "button", class: "small", dataset: { copies: id } }, t("keys.copy"));
  copy.addEventListener("click", async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(value);
      copy.textContent = t("keys.copied");
    } catch (err) {
      // The text stays selected for a copy by hand.
    }
  });
  return h("div", { class: "row copy-row" }, input, copy);
}
