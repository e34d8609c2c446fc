// CSV import: choose a file, map its header's columns to contact fields (guessed the way the
// server guesses: a header named like a field or a custom key fills it), start, then a progress
// bar that follows the import's status until it ends, its counts, and its rejected rows.

import { api, get, query } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, number, t } from "../lib/i18n.js";
import { all } from "./contacts.js";

export const title = () => t("import.title");

const BUILT_IN = ["name", "first_name", "last_name", "phone", "email", "language"];
const FINAL = new Set(["completed", "failed", "cancelled"]);
const POLL_MS = 500;

export async function render() {
  const [groups, definitions, recent] = await Promise.all([all("/v1/groups"), get("/v1/contact-fields"), get("/v1/contacts/imports?limit=5")]);
  const targets = [...BUILT_IN.map((f) => [f, t(`import.field.${f}`)]), ...definitions.data.map((d) => [`custom.${d.key}`, d.label])];
  const mapping = h("div", { id: "import-mapping" });
  const progress = h("section", { class: "card", id: "import-status", hidden: true });
  const recentCard = h("section", { class: "card" }, h("h2", {}, t("import.recent")), recentTable(recent.data));
  let columns = [];
  const upload = form(
    { id: "import-form" },
    [
      field("file", t("import.file"), { type: "file", accept: ".csv,text/csv", required: true, hint: t("import.file_hint") }),
      mapping,
      h(
        "div",
        { class: "grid-form" },
        field("mode", t("import.mode"), { options: ["create", "upsert", "update"].map((m) => [m, t(`import.mode.${m}`)]) }, "select"),
        field("group", t("import.group"), { options: [["", t("import.no_group")], ...groups.map((g) => [g.id, g.name])] }, "select"),
      ),
    ],
    t("import.start"),
    async (values, element) => {
      const file = element.elements.file.files[0];
      if (!file) throw Object.assign(new Error(t("import.choose")), { fields: { file: t("import.choose") } });
      const params = { mode: values.mode, group: values.group };
      columns.forEach((column, i) => {
        const target = values[`map_${i}`];
        if (target) params[`map.${column}`] = target;
      });
      const job = await api("POST", "/v1/contacts/imports" + query(params), file, { contentType: "text/csv" });
      await follow(progress, job);
      replace(recentCard, h("h2", {}, t("import.recent")), recentTable((await get("/v1/contacts/imports?limit=5")).data));
    },
  );
  upload.elements.file.addEventListener("change", async () => {
    const file = upload.elements.file.files[0];
    columns = file ? await headerOf(file) : [];
    drawMapping(mapping, columns, targets);
  });
  return h(
    "div",
    { class: "import-page" },
    h("p", {}, h("a", { href: "#/contacts" }, "← ", t("contact.back"))),
    h("section", { class: "card" }, upload),
    progress,
    recentCard,
  );
}

/// The header's columns, read from the file's start: delimiter `,` `;` or tab (the most
/// frequent outside quotes), quotes as RFC 4180 has them. The server reads the file again.
async function headerOf(file) {
  const start = await file.slice(0, 65536).text();
  const line = start.replace(/^\uFEFF/, "").split(/\r?\n/)[0] || "";
  const outside = line.replace(/"[^"]*"/g, "");
  const delimiter = [",", ";", "\t"].reduce((best, d) => (outside.split(d).length > outside.split(best).length ? d : best), ",");
  const cells = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === delimiter) cells.push(cell), (cell = "");
    else cell += c;
  }
  cells.push(cell);
  return cells.map((c) => c.trim()).filter((c, i, list) => c !== "" || i < list.length - 1);
}

/// The fields a header commonly names in English or French, by the header folded (`fold`):
/// the server's `header_synonym` (docs/rules/contacts.md lists them).
const HEADER_SYNONYMS = {
  ...Object.fromEntries(["fullname", "nomcomplet", "nom", "contactname"].map((k) => [k, "name"])),
  ...Object.fromEntries(["firstname", "givenname", "prenom"].map((k) => [k, "first_name"])),
  ...Object.fromEntries(["lastname", "surname", "familyname", "nomdefamille"].map((k) => [k, "last_name"])),
  ...Object.fromEntries(
    ["phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "cell", "cellphone", "portable", "gsm", "numerodetelephone"].map((k) => [k, "phone"]),
  ),
  ...Object.fromEntries(["email", "mail", "emailaddress", "courriel", "adresseemail", "adressemail"].map((k) => [k, "email"])),
  ...Object.fromEntries(["language", "lang", "langue"].map((k) => [k, "language"])),
};

/// A header without case, accents, spaces, dashes, underscores or dots.
function fold(header) {
  return header
    .toLowerCase()
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[\s\-_.]/g, "");
}

function drawMapping(container, columns, targets) {
  if (!columns.length) return replace(container);
  const exact = (column) => {
    const lower = column.toLowerCase();
    const hit = targets.find(([value]) => value === lower || value === `custom.${lower}`);
    return hit ? hit[0] : "";
  };
  // As the server guesses (contacts/imports `resolve_mapping`): exact names first, then the
  // common ones, each for a field no column has yet.
  const guesses = columns.map(exact);
  // `Nom` beside a first-name column (`Nom`, `Prénom`) is the family name.
  const hasFirstName = columns.some((column) => HEADER_SYNONYMS[fold(column)] === "first_name");
  columns.forEach((column, i) => {
    let synonym = HEADER_SYNONYMS[fold(column)];
    if (synonym === "name" && hasFirstName && fold(column) === "nom") synonym = "last_name";
    if (!guesses[i] && synonym && !guesses.includes(synonym)) guesses[i] = synonym;
  });
  replace(
    container,
    h(
      "fieldset",
      { class: "mapping" },
      h("legend", {}, t("import.mapping")),
      h("p", { class: "hint" }, t("import.mapping_hint")),
      columns.map((column, i) => {
        const wrapper = field(`map_${i}`, column, { options: [["", t("import.ignore")], ...targets] }, "select");
        wrapper.dataset.field = `map.${column}`;
        wrapper.querySelector("select").value = guesses[i];
        return wrapper;
      }),
    ),
  );
}

/// Polls the import until it ends, drawing its progress each time.
async function follow(card, job) {
  card.hidden = false;
  for (;;) {
    draw(card, job);
    if (FINAL.has(job.status)) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    job = await get(`/v1/contacts/imports/${encodeURIComponent(job.id)}`);
  }
}

function draw(card, job) {
  const done = FINAL.has(job.status);
  const percent = job.status === "completed" ? 100 : job.bytes_received ? Math.floor((100 * job.bytes_read) / job.bytes_received) : 0;
  const cancel = !done
    ? h("button", {
        type: "button",
        class: "danger",
        onclick: async () => {
          try {
            draw(card, await api("POST", `/v1/contacts/imports/${encodeURIComponent(job.id)}/cancel`));
          } catch (err) {
            alert(errorText(err));
          }
        },
      }, t("import.cancel"))
    : null;
  replace(
    card,
    h("h2", {}, t("import.progress")),
    h("label", { for: "import-progress" }, t(`import.status.${job.status}`), " — ", h("span", { id: "import-percent" }, `${percent} %`)),
    h("progress", { id: "import-progress", max: 100, value: percent }, `${percent} %`),
    h(
      "dl",
      { class: "facts counts", id: "import-counts" },
      ["rows_read", "created", "updated", "unchanged", "rejected"].map((key) => [h("dt", {}, t(`import.${key}`)), h("dd", { dataset: { count: key } }, number(job[key]))]),
    ),
    job.error ? h("p", { class: "form-error" }, job.error) : null,
    done && job.rejected > 0
      ? h("p", {}, h("a", { id: "rejects-link", href: `/v1/contacts/imports/${encodeURIComponent(job.id)}/rejects`, download: `${job.id}-rejects.csv` }, t("import.rejects")))
      : null,
    done ? h("p", {}, h("a", { href: "#/contacts" }, t("import.see_contacts"))) : null,
    cancel,
  );
}

function recentTable(jobs) {
  if (!jobs.length) return h("p", { class: "empty" }, t("import.none"));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, [t("import.col_created"), t("import.col_status"), t("import.created"), t("import.updated"), t("import.rejected")].map((text) => h("th", { scope: "col" }, text)))),
      h(
        "tbody",
        {},
        jobs.map((job) =>
          h(
            "tr",
            {},
            h("td", {}, dateTime(job.created_at)),
            h("td", {}, t(`import.status.${job.status}`)),
            h("td", { class: "num" }, number(job.created)),
            h("td", { class: "num" }, number(job.updated)),
            h(
              "td",
              { class: "num" },
              job.rejected > 0 ? h("a", { href: `/v1/contacts/imports/${encodeURIComponent(job.id)}/rejects`, download: `${job.id}-rejects.csv` }, number(job.rejected)) : "0",
            ),
          ),
        ),
      ),
    ),
  );
}
