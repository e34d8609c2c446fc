// The API reference (/docs): every operation of the OpenAPI document with its parameters,
// request body and responses, schemas drawn field by field (types, required, limits, enums,
// examples), references followed. Built with text nodes only: nothing from the document is
// ever parsed as HTML.

const MAX_DEPTH = 6;

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/// Text with `backticks` shown as code.
function prose(text) {
  return String(text || "")
    .split("`")
    .map((part, index) => (index % 2 ? h("code", {}, part) : part));
}

let doc = null;

/// `#/components/schemas/Message` → the object, with its name.
function resolve(value) {
  if (!value || typeof value.$ref !== "string") return { value, name: null };
  const parts = value.$ref.replace(/^#\//, "").split("/");
  let found = doc;
  for (const part of parts) found = found && found[part];
  return { value: found || {}, name: parts[parts.length - 1] };
}

function typeName(schema) {
  const { value, name } = resolve(schema);
  if (name && (value.type === "object" || value.properties)) return name;
  if (value.enum) return value.enum.map((item) => JSON.stringify(item)).join(" | ");
  if (value.const !== undefined) return JSON.stringify(value.const);
  const variants = value.anyOf || value.oneOf;
  if (variants) return variants.map(typeName).join(" or ");
  if (value.type === "array") return "array of " + typeName(value.items || {});
  const type = Array.isArray(value.type) ? value.type.join(" or ") : value.type || name || "any";
  return value.format ? `${type} (${value.format})` : type;
}

/// The limits a value must keep, in words.
function limits(schema) {
  const { value } = resolve(schema);
  const said = [];
  const pairs = [
    ["minLength", "at least %s characters"],
    ["maxLength", "at most %s characters"],
    ["minimum", "≥ %s"],
    ["maximum", "≤ %s"],
    ["exclusiveMinimum", "> %s"],
    ["exclusiveMaximum", "< %s"],
    ["minItems", "at least %s items"],
    ["maxItems", "at most %s items"],
    ["pattern", "matches %s"],
    ["default", "default %s"],
    ["example", "e.g. %s"],
  ];
  for (const [key, words] of pairs) {
    if (value[key] !== undefined) {
      const shown = typeof value[key] === "string" && key !== "pattern" ? JSON.stringify(value[key]) : value[key];
      said.push(words.replace("%s", typeof shown === "object" ? JSON.stringify(shown) : shown));
    }
  }
  if (value.additionalProperties === false) said.push("no other fields");
  return said.join(" · ");
}

/// The objects a schema holds fields of: itself, its array's items, or its variants.
function objectsOf(schema) {
  const { value } = resolve(schema);
  if (value.properties) return [value];
  if (value.type === "array" && value.items) return objectsOf(value.items);
  const variants = value.anyOf || value.oneOf || value.allOf;
  return variants ? variants.flatMap(objectsOf) : [];
}

/// A table of an object's fields; nested objects fold out below their field.
function fieldsTable(schema, depth, seen) {
  const objects = objectsOf(schema);
  if (objects.length === 0) {
    const { value } = resolve(schema);
    return h("p", {}, h("span", { class: "type" }, typeName(schema)), " ", prose(value.description), " ", h("span", { class: "limits" }, limits(schema)));
  }
  return objects.map((object) => {
    const required = new Set(object.required || []);
    const rows = Object.entries(object.properties).map(([field, property]) => {
      const { value, name } = resolve(property);
      const nested = objectsOf(property);
      const describe = [prose(value.description || property.description)];
      if (nested.length && depth < MAX_DEPTH && !(name && seen.has(name))) {
        const inner = new Set(seen);
        if (name) inner.add(name);
        describe.push(h("details", {}, h("summary", {}, `fields of ${field}`), fieldsTable(property, depth + 1, inner)));
      }
      return h(
        "tr",
        {},
        h("td", { class: "name" }, field, required.has(field) ? h("span", { class: "required" }, "required") : null),
        h("td", {}, h("span", { class: "type" }, typeName(property)), h("div", { class: "limits" }, limits(property))),
        h("td", {}, describe),
      );
    });
    return h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "field"), h("th", {}, "type"), h("th", {}, "meaning"))), h("tbody", {}, rows));
  });
}

function parametersTable(parameters) {
  const rows = parameters.map((parameter) => {
    const { value } = resolve(parameter);
    return h(
      "tr",
      {},
      h("td", { class: "name" }, value.name, value.required ? h("span", { class: "required" }, "required") : null),
      h("td", {}, value.in),
      h("td", {}, h("span", { class: "type" }, typeName(value.schema || {})), h("div", { class: "limits" }, limits(value.schema || {}))),
      h("td", {}, prose(value.description)),
    );
  });
  return h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "name"), h("th", {}, "in"), h("th", {}, "type"), h("th", {}, "meaning"))), h("tbody", {}, rows));
}

function statusClass(code) {
  if (code.startsWith("2") || code.startsWith("3")) return "status ok";
  if (code.startsWith("4")) return "status client";
  return "status server";
}

function responsesList(responses) {
  return Object.entries(responses).map(([code, response]) => {
    const { value } = resolve(response);
    const content = value.content || {};
    const [mediaType, media] = Object.entries(content)[0] || [];
    const headers = Object.keys(value.headers || {});
    return h(
      "div",
      { class: "response" },
      h("p", {}, h("span", { class: statusClass(code) }, code), " ", prose(response.description || value.description)),
      headers.length ? h("p", { class: "limits" }, "Headers: ", headers.join(", ")) : null,
      media && media.schema
        ? h("details", {}, h("summary", {}, `${mediaType}: ${typeName(media.schema)}`), fieldsTable(media.schema, 1, new Set()))
        : null,
    );
  });
}

function authLine(operation) {
  const security = operation.security ?? doc.security ?? [];
  if (security.length === 0) return "No credentials.";
  const ways = security.map((requirement) =>
    Object.entries(requirement)
      .map(([scheme, scopes]) => (scheme === "apiKey" ? `API key${scopes.length ? " with " + scopes.join(", ") : ""}` : scheme === "session" ? "console session" : scheme))
      .join(" and "),
  );
  return "Authentication: " + ways.join(" or ") + ".";
}

function operationCard(path, method, operation, id) {
  const body = operation.requestBody && resolve(operation.requestBody).value;
  const bodyMedia = body && Object.entries(body.content || {});
  return h(
    "section",
    { class: "op", id, "data-search": `${method} ${path} ${operation.summary || ""} ${(operation.tags || []).join(" ")}`.toLowerCase() },
    h("h3", {}, h("span", { class: `method ${method}` }, method.toUpperCase()), h("span", { class: "path" }, path), h("span", { class: "summary" }, operation.summary || "")),
    h("p", { class: "auth" }, authLine(operation)),
    operation.description ? h("p", {}, prose(operation.description)) : null,
    operation.parameters && operation.parameters.length ? [h("h4", {}, "Parameters"), parametersTable(operation.parameters)] : null,
    bodyMedia && bodyMedia.length
      ? [
          h("h4", {}, "Request body", body.required ? " (required)" : ""),
          bodyMedia.map(([mediaType, media]) => [
            h("p", { class: "limits" }, mediaType, media.schema ? ": " + typeName(media.schema) : ""),
            media.schema ? fieldsTable(media.schema, 1, new Set()) : null,
          ]),
        ]
      : null,
    h("h4", {}, "Responses"),
    responsesList(operation.responses || {}),
  );
}

function render() {
  document.getElementById("intro").replaceChildren(...prose(doc.info.description || ""));
  const groups = new Map();
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      if (typeof operation !== "object" || !operation.responses) continue;
      const tag = (operation.tags && operation.tags[0]) || "other";
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push({ path, method, operation });
    }
  }
  const toc = [];
  const cards = [];
  for (const [tag, entries] of groups) {
    const links = [];
    cards.push(h("h2", {}, tag));
    for (const { path, method, operation } of entries) {
      const id = "op-" + (operation.operationId || `${method}-${path}`).replace(/[^A-Za-z0-9_-]/g, "-");
      links.push(h("li", { "data-for": id }, h("a", { href: "#" + id }, `${method.toUpperCase()} ${path}`)));
      cards.push(operationCard(path, method, operation, id));
    }
    toc.push(h("h2", {}, tag), h("ul", {}, links));
  }
  const codes = doc.components && doc.components.schemas && doc.components.schemas.ErrorCode;
  if (codes) {
    cards.push(h("h2", {}, "error codes"), h("section", { class: "op", id: "error-codes" }, h("p", {}, prose(codes.description)), codes.enum ? h("p", {}, codes.enum.map((code) => [h("code", {}, code), " "])) : null));
    toc.push(h("h2", {}, "errors"), h("ul", {}, h("li", {}, h("a", { href: "#error-codes" }, "error codes"))));
  }
  document.getElementById("toc").replaceChildren(...toc);
  document.getElementById("endpoints").replaceChildren(...cards);
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

function filter(text) {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  for (const card of document.querySelectorAll("section.op[data-search]")) {
    const shown = words.every((word) => card.dataset.search.includes(word));
    card.hidden = !shown;
    const link = document.querySelector(`#toc li[data-for="${card.id}"]`);
    if (link) link.hidden = !shown;
  }
  // A group's heading goes with its last shown operation.
  for (const heading of document.querySelectorAll("main > h2")) {
    let next = heading.nextElementSibling;
    let any = false;
    while (next && next.tagName !== "H2") {
      if (!next.hidden && next.matches("section.op[data-search]")) any = true;
      next = next.nextElementSibling;
    }
    if (heading.nextElementSibling && heading.nextElementSibling.matches("section.op[data-search]")) heading.hidden = !any;
  }
}

document.getElementById("filter").addEventListener("input", (event) => filter(event.target.value));

fetch("/openapi.json")
  .then((response) => response.json())
  .then((loaded) => {
    doc = loaded;
    render();
  })
  .catch(() => {
    document.getElementById("intro").textContent = "Could not load /openapi.json.";
  });
