// Accepting an invitation (`/invitations/accept?token=…` opens `#/accept/<token>`): someone new
// gives a name and a password and is signed in; someone with an account accepts while signed in
// (the API then needs the session's CSRF token, which the console holds once it knows the user).

import { get, post } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { field, form } from "../lib/forms.js";
import { t } from "../lib/i18n.js";

export const title = () => t("accept.title");

export async function render(token, session) {
  if (!token) return h("p", { class: "form-error", role: "alert" }, t("accept.no_token"));
  if (!session.me) {
    try {
      session.signedIn(await get("/v1/auth/me", { quietUnauthenticated: true }));
    } catch (err) {
      // Not signed in: the invitation makes a new account.
    }
  }
  const who = session.me
    ? h("p", { class: "lead" }, t("accept.signed_in", { email: session.me.user.email }))
    : [
        h("p", { class: "lead" }, t("accept.new_account")),
        // Someone who has an account signs in first and comes back here to accept.
        h("p", {}, h("a", { id: "accept-login", href: `#/login/${encodeURIComponent(`accept/${token}`)}` }, t("accept.have_account"))),
      ];
  return h(
    "section",
    { class: "card narrow" },
    who,
    form(
      { id: "accept-form" },
      session.me
        ? []
        : [
            field("name", t("setup.name"), { autocomplete: "name", required: true, maxlength: 100 }),
            field("password", t("setup.password"), { type: "password", autocomplete: "new-password", required: true, hint: t("accept.password_hint") }),
          ],
      t("accept.submit"),
      async (values) => {
        const body = { token };
        if (values.name) body.name = values.name;
        if (values.password) body.password = values.password;
        await post("/v1/invitations/accept", body, { quietUnauthenticated: true });
        await session.refresh();
        session.go("overview");
      },
    ),
  );
}
