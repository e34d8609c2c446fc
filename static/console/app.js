// The console's entry point: finds out whether the instance needs its first user, who is
// signed in, and shows the page the location's hash names (`#/messages/msg_…`).

import { api, get, post, setCsrfToken, whenUnauthenticated } from "./lib/api.js";
import { h, replace } from "./lib/dom.js";
import { errorText } from "./lib/forms.js";
import { getLocale, setLocale, t, translateShell } from "./lib/i18n.js";
import * as setupPage from "./pages/setup.js";
import * as loginPage from "./pages/login.js";
import * as overviewPage from "./pages/overview.js";
import * as messagesPage from "./pages/messages.js";
import * as messagePage from "./pages/message.js";
import * as keysPage from "./pages/keys.js";
import * as contactsPage from "./pages/contacts.js";
import * as contactPage from "./pages/contact.js";
import * as importPage from "./pages/import.js";
import * as segmentsPage from "./pages/segments.js";
import * as campaignsPage from "./pages/campaigns.js";
import * as campaignPage from "./pages/campaign.js";
import * as billingPage from "./pages/billing.js";
import * as paymentPage from "./pages/payment.js";
import * as settingsPage from "./pages/settings.js";
import * as adminPage from "./pages/admin.js";
import * as webhooksPage from "./pages/webhooks.js";
import * as webhookPage from "./pages/webhook.js";
import * as activityPage from "./pages/activity.js";
import * as acceptPage from "./pages/accept.js";
import * as domainsPage from "./pages/domains.js";
import * as providersPage from "./pages/providers.js";
import * as providerPage from "./pages/provider.js";

/// Pages that need a session, by the hash's first segment; `param` is the second one.
const PAGES = {
  overview: overviewPage,
  messages: messagesPage,
  message: messagePage,
  keys: keysPage,
  contacts: contactsPage,
  contact: contactPage,
  import: importPage,
  segments: segmentsPage,
  campaigns: campaignsPage,
  campaign: campaignPage,
  billing: billingPage,
  payment: paymentPage,
  settings: settingsPage,
  admin: adminPage,
  webhooks: webhooksPage,
  activity: activityPage,
  domains: domainsPage,
  providers: providersPage,
};

/// Pages whose hash has a second segment that names one of their items: `#/webhooks/whe_…` is
/// that endpoint's page.
const ITEM_PAGES = { webhooks: webhookPage, providers: providerPage };

/// Pages that light up another's entry in the navigation (a message is under "Messages").
const UNDER = { message: "messages", contact: "contacts", import: "contacts", campaign: "campaigns", payment: "billing", domains: "settings", providers: "settings" };

const NAV = [
  ["overview", "nav.overview"],
  ["messages", "nav.messages"],
  ["contacts", "nav.contacts"],
  ["segments", "nav.segments"],
  ["campaigns", "nav.campaigns"],
  ["billing", "nav.billing"],
  ["webhooks", "nav.webhooks", (session) => session.role === "owner" || session.role === "admin"],
  ["activity", "nav.activity", (session) => session.role === "owner" || session.role === "admin"],
  ["keys", "nav.keys", (session) => session.role === "owner" || session.role === "admin"],
  ["settings", "nav.settings"],
  ["admin", "nav.admin", (session) => Boolean(session.me.user && session.me.user.is_instance_admin)],
];

const main = document.getElementById("main");
const top = document.getElementById("top");
const notice = document.getElementById("notice");

/// What the pages are given: the signed-in user (`/v1/auth/me`) and ways to move on.
const session = {
  me: null,
  get role() {
    return this.me && this.me.role;
  },
  /// Re-reads `/v1/auth/me` (after login, a switch of workspace).
  async refresh() {
    this.me = await get("/v1/auth/me", { quietUnauthenticated: true });
    setCsrfToken(this.me.csrf_token);
    return this.me;
  },
  signedIn(me) {
    this.me = me;
    setCsrfToken(me.csrf_token);
  },
  go(path) {
    if (location.hash === "#/" + path) render();
    else location.hash = "#/" + path;
  },
  /// After login or setup: back to the page that asked for a session (`#/login/<route>`), or
  /// the overview.
  resume() {
    this.go(safeNext(parseHash().param) || "overview");
  },
};

/// Routes that are not worth coming back to after signing in.
const NOT_RESUMED = ["", "login", "setup", "overview"];

/// `route` (what `#/login/<route>` carries: `payment/pay_1`, `accept/<token>`) when it names a
/// console page, else null. Only a route inside this page's hash is ever followed — never a
/// path, a scheme or another host — so a crafted login link cannot send anyone elsewhere.
function safeNext(route) {
  if (typeof route !== "string" || route.length > 2000) return null;
  if (!/^[a-z]+(\/[^\s\\]*)?$/.test(route)) return null;
  const name = route.split("/")[0];
  if (NOT_RESUMED.includes(name)) return null;
  return PAGES[name] || name === "accept" ? route : null;
}

/// The login (or first-run setup) page, remembering the route being left so that signing in
/// comes back to it.
function toSignIn(page) {
  const { name, param } = parseHash();
  const here = param ? `${name}/${param}` : name;
  const next = name === "login" || name === "setup" ? safeNext(param) : safeNext(here);
  session.go(next ? `${page}/${encodeURIComponent(next)}` : page);
}

let setupRequired = false;

whenUnauthenticated(() => {
  session.me = null;
  setCsrfToken(null);
  toSignIn("login");
});

export function showNotice(text) {
  replace(
    notice,
    h("span", {}, text),
    h("button", { type: "button", class: "link", onclick: () => (notice.hidden = true) }, t("app.dismiss")),
  );
  notice.hidden = false;
}

function parseHash() {
  const [name = "", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { name: decodeURIComponent(name), param: decodeURIComponent(rest.join("/")) };
}

async function render() {
  notice.hidden = true;
  translateShell();
  const { name, param } = parseHash();
  if (setupRequired && name !== "setup") return toSignIn("setup");
  if (name === "setup") {
    if (!setupRequired) return session.go(param ? `login/${encodeURIComponent(param)}` : "login");
    return show(setupPage, param, false);
  }
  if (name === "accept") return show(acceptPage, param, false);
  if (name === "login") {
    if (session.me) return session.resume();
    return show(loginPage, param, false);
  }
  if (!session.me) {
    try {
      await session.refresh();
    } catch (err) {
      if (err.status === 401) return toSignIn("login");
      return replace(main, h("p", { class: "form-error" }, errorText(err)));
    }
  }
  const page = (param && ITEM_PAGES[name]) || PAGES[name];
  if (!page) {
    if (name === "") return session.go("overview");
    return show(notFoundPage, param, true);
  }
  return show(page, param, true);
}

const notFoundPage = {
  title: () => t("notfound.title"),
  render: () => h("section", {}, h("p", {}, h("a", { href: "#/overview" }, t("notfound.back")))),
};

async function show(page, param, withChrome) {
  top.hidden = !withChrome;
  if (withChrome) drawChrome(page);
  const heading = h("h1", { id: "page-title" }, page.title(param, session));
  document.title = `${page.title(param, session)} · crier`;
  const body = h("div", { class: "page-body" }, h("p", { class: "loading" }, t("app.loading")));
  replace(main, heading, body);
  try {
    const content = await page.render(param, session);
    replace(body, content);
  } catch (err) {
    if (err.status === 401) return;
    replace(body, h("p", { class: "form-error", role: "alert" }, errorText(err)));
  }
}

function drawChrome(page) {
  const current = parseHash().name;
  const nav = document.getElementById("nav");
  replace(
    nav,
    h(
      "ul",
      {},
      NAV.filter(([, , allowed]) => !allowed || allowed(session)).map(([name, key]) => {
        const active = current === name || UNDER[current] === name;
        return h("li", {}, h("a", { href: `#/${name}`, "aria-current": active ? "page" : false }, t(key)));
      }),
    ),
  );
  const switcher = document.getElementById("workspace-switcher");
  const memberships = session.me.memberships || [];
  replace(
    switcher,
    memberships.map((membership) =>
      h(
        "option",
        {
          value: membership.workspace.id,
          selected: session.me.workspace && membership.workspace.id === session.me.workspace.id,
        },
        membership.workspace.name,
      ),
    ),
  );
  switcher.closest("label").hidden = memberships.length < 2;
  const testMode = session.me.mode === "test";
  document.getElementById("mode-switcher").checked = testMode;
  document.getElementById("mode-banner").hidden = !testMode;
  document.body.classList.toggle("test-mode", testMode);
  document.getElementById("language-switcher").value = getLocale();
}

document.getElementById("workspace-switcher").addEventListener("change", async (event) => {
  try {
    await post(`/v1/workspaces/${encodeURIComponent(event.target.value)}/activate`);
    await session.refresh();
    render();
  } catch (err) {
    showNotice(errorText(err));
  }
});

// Test and live are two worlds: the session looks at one of them (`PUT /v1/auth/mode`).
document.getElementById("mode-switcher").addEventListener("change", async (event) => {
  try {
    session.signedIn(await api("PUT", "/v1/auth/mode", { mode: event.target.checked ? "test" : "live" }));
    render();
  } catch (err) {
    event.target.checked = !event.target.checked;
    showNotice(errorText(err));
  }
});

document.getElementById("language-switcher").addEventListener("change", (event) => {
  setLocale(event.target.value);
  render();
});

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await api("POST", "/v1/auth/logout", undefined, { quietUnauthenticated: true });
  } catch (err) {
    // The cookie is cleared whatever happened; the login page comes next all the same.
  }
  session.me = null;
  setCsrfToken(null);
  session.go("login");
});

// The skip link moves the focus without touching the hash, which holds the route.
document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener("hashchange", render);

async function start() {
  setLocale(getLocale());
  // A payment provider sends the payer back to `/billing/return?session=pay_…`: that payment's
  // page verifies it with the provider.
  if (location.pathname === "/billing/return") {
    const payment = new URLSearchParams(location.search).get("session") || "";
    history.replaceState(null, "", payment ? `/#/payment/${encodeURIComponent(payment)}` : "/#/billing");
  }
  // An invitation link, `/invitations/accept?token=…`, opens the acceptance page.
  if (location.pathname === "/invitations/accept") {
    const token = new URLSearchParams(location.search).get("token") || "";
    history.replaceState(null, "", `/#/accept/${encodeURIComponent(token)}`);
  }
  try {
    const status = await get("/v1/setup");
    setupRequired = status.setup_required;
  } catch (err) {
    replace(main, h("p", { class: "form-error", role: "alert" }, errorText(err)));
    return;
  }
  /// Setup done from this page: the next render goes on signed in.
  session.setupDone = () => {
    setupRequired = false;
  };
  render();
}

start();
