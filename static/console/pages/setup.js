// First run: the instance has no user yet. `POST /v1/setup` makes the instance admin and the
// first workspace, and signs them in.

import { post } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { field, form } from "../lib/forms.js";
import { t } from "../lib/i18n.js";

export const title = () => t("setup.title");

export function render(_param, session) {
  return h(
    "section",
    { class: "card narrow" },
    h("p", { class: "lead" }, t("setup.lead")),
    form(
      { id: "setup-form" },
      [
        field("name", t("setup.name"), { autocomplete: "name", required: true }),
        field("email", t("setup.email"), { type: "email", autocomplete: "email", required: true }),
        field("password", t("setup.password"), {
          type: "password",
          autocomplete: "new-password",
          required: true,
          hint: t("setup.password_hint"),
        }),
        field("workspace_name", t("setup.workspace_name"), { required: true }),
      ],
      t("setup.submit"),
      async (values) => {
        const signedIn = await post("/v1/setup", values);
        session.setupDone();
        session.signedIn({ ...signedIn, memberships: [] });
        await session.refresh();
        session.resume();
      },
    ),
  );
}
