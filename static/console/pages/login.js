// Log in with email and password (`POST /v1/auth/login`); the session cookie comes back.

import { post } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { field, form } from "../lib/forms.js";
import { t } from "../lib/i18n.js";

export const title = () => t("login.title");

export function render(_param, session) {
  return h(
    "section",
    { class: "card narrow" },
    form(
      { id: "login-form" },
      [
        field("email", t("login.email"), { type: "email", autocomplete: "username", required: true }),
        field("password", t("login.password"), {
          type: "password",
          autocomplete: "current-password",
          required: true,
        }),
      ],
      t("login.submit"),
      async (values) => {
        // A wrong password is `invalid_credentials`, said in the page's language by forms.js.
        await post("/v1/auth/login", values, { quietUnauthenticated: true });
        await session.refresh();
        session.resume();
      },
    ),
  );
}
