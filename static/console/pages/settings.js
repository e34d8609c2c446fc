// Workspace settings: the sender ID request and its status, business verification, members and
// their roles, and invitations (invite, with the link shown once; revoke). Owners and admins
// change things; members see. Owners and admins also find here the ways to the workspace's own
// sending domains (`#/domains`) and provider accounts (`#/providers`).

import { api, get, post } from "../lib/api.js";
import { h, replace } from "../lib/dom.js";
import { errorText, field, form } from "../lib/forms.js";
import { dateTime, t } from "../lib/i18n.js";
import { table } from "../lib/views.js";

export const title = () => t("settings.title");

/// Least power first: the invitation form starts on `member`.
const ROLES = ["member", "admin", "owner"];

export async function render(_param, session) {
  const manager = session.role === "owner" || session.role === "admin";
  const [billing, members] = await Promise.all([get("/v1/billing"), get("/v1/workspace/members?limit=100")]);
  const invitations = h("div", { id: "invitation-list" });
  const memberList = h("div", { id: "member-list" });
  showMembers(memberList, members.data, session, manager);
  if (manager) await loadInvitations(invitations);
  return h(
    "div",
    { class: "settings-page" },
    manager ? sendingLinks() : null,
    h("section", { class: "card", id: "sender-id" }, h("h2", {}, t("settings.sender")), senderStatus(billing), manager ? senderForm() : null),
    h("section", { class: "card", id: "verification" }, h("h2", {}, t("settings.verification")), verificationStatus(billing), manager ? verificationForm() : null),
    h("section", { class: "card" }, h("h2", {}, t("settings.members")), memberList),
    manager ? h("section", { class: "card" }, h("h2", {}, t("settings.invitations")), inviteForm(invitations, session), h("div", { id: "invite-link", "aria-live": "polite" }), invitations) : null,
  );
}

/// Where the workspace sends through its own domain and providers: their pages, one line each.
function sendingLinks() {
  return h(
    "section",
    { class: "card", id: "sending-links" },
    h("h2", {}, t("settings.sending")),
    h(
      "ul",
      { class: "plain-list" },
      h("li", {}, h("a", { href: "#/domains", id: "domains-link" }, t("settings.domains_link")), h("span", { class: "muted small block" }, t("settings.domains_text"))),
      h("li", {}, h("a", { href: "#/providers", id: "providers-link" }, t("settings.providers_link")), h("span", { class: "muted small block" }, t("settings.providers_text"))),
    ),
  );
}

function senderStatus(billing) {
  const sender = billing.sender_id;
  return h(
    "div",
    { id: "sender-status" },
    sender
      ? h("p", {}, h("span", { class: "mono" }, sender.value), " ", h("span", { class: `badge review-${sender.status}` }, t(`review.${sender.status}`)))
      : h("p", { class: "empty" }, t("settings.sender_none")),
    sender && sender.rejection_reason ? h("p", { class: "form-error" }, sender.rejection_reason) : null,
    h("p", { class: "muted small" }, t("settings.effective", { sender: billing.effective_sender })),
  );
}

function senderForm() {
  return form(
    { id: "sender-form", class: "inline-form" },
    [field("sender_id", t("settings.sender_field"), { maxlength: 11, required: true, autocomplete: "off", hint: t("settings.sender_hint") })],
    t("settings.sender_submit"),
    async (values) => {
      await api("PUT", "/v1/billing/sender-id", { sender_id: values.sender_id });
      location.reload();
    },
  );
}

function verificationStatus(billing) {
  const verification = billing.verification;
  return h(
    "div",
    { id: "verification-status" },
    h("p", {}, h("span", { class: `badge review-${verification.status}` }, t(`review.${verification.status}`))),
    verification.rejection_reason ? h("p", { class: "form-error" }, verification.rejection_reason) : null,
  );
}

function verificationForm() {
  return form(
    { id: "verification-form", class: "grid-form" },
    [
      field("business_name", t("settings.business_name"), { maxlength: 200, required: true }),
      field("country", t("settings.country"), { maxlength: 2, required: true, autocomplete: "country", hint: t("settings.country_hint") }),
      field("website", t("settings.website"), { type: "url", maxlength: 300 }),
      field("document_refs", t("settings.documents"), { rows: 3, required: true, hint: t("settings.documents_hint") }, "textarea"),
    ],
    t("settings.verification_submit"),
    async (values) => {
      await post("/v1/billing/verification", {
        business_name: values.business_name,
        country: values.country,
        website: values.website || null,
        document_refs: values.document_refs.split("\n").map((line) => line.trim()).filter(Boolean),
      });
      location.reload();
    },
  );
}

function roleOptions(session) {
  return ROLES.filter((role) => role !== "owner" || session.role === "owner").map((role) => [role, t(`role.${role}`)]);
}

function showMembers(container, members, session, manager) {
  replace(
    container,
    table(
      [t("settings.col_name"), t("settings.col_email"), t("settings.col_role"), t("settings.col_joined"), ""],
      members.map((member) => {
        const mine = member.user.id === session.me.user.id;
        const editable = manager && !mine && (member.role !== "owner" || session.role === "owner");
        const message = h("p", { class: "form-error", role: "alert", hidden: true });
        let role = t(`role.${member.role}`);
        let remove = null;
        if (editable) {
          role = h(
            "select",
            { "aria-label": t("settings.role_of", { name: member.user.name }), dataset: { user: member.user.id } },
            roleOptions(session).map(([value, label]) => h("option", { value, selected: value === member.role }, label)),
          );
          role.addEventListener("change", async () => {
            message.hidden = true;
            try {
              await api("PATCH", `/v1/workspace/members/${encodeURIComponent(member.user.id)}`, { role: role.value });
            } catch (err) {
              role.value = member.role;
              message.textContent = errorText(err);
              message.hidden = false;
            }
          });
          remove = h("button", { type: "button", class: "danger small" }, t("settings.remove"));
          remove.addEventListener("click", async () => {
            if (!confirm(t("settings.remove_confirm", { name: member.user.name }))) return;
            try {
              await api("DELETE", `/v1/workspace/members/${encodeURIComponent(member.user.id)}`);
              const fresh = await get("/v1/workspace/members?limit=100");
              showMembers(container, fresh.data, session, manager);
            } catch (err) {
              message.textContent = errorText(err);
              message.hidden = false;
            }
          });
        }
        return [member.user.name, h("span", { class: "mono" }, member.user.email), [role, message], dateTime(member.joined_at), remove];
      }),
      { id: "members", class: "stack" },
    ),
  );
}

function inviteForm(list, session) {
  return form(
    { id: "invite-form", class: "grid-form" },
    [
      field("email", t("settings.invite_email"), { type: "email", required: true, maxlength: 254, autocomplete: "off" }),
      field("role", t("settings.col_role"), { options: roleOptions(session) }, "select"),
    ],
    t("settings.invite_submit"),
    async (values, element) => {
      const created = await post("/v1/workspace/invitations", { email: values.email, role: values.role });
      const link = h("input", { type: "text", readonly: true, value: created.accept_url, class: "mono", id: "invite-url", "aria-label": t("settings.invite_link") });
      replace(document.getElementById("invite-link"), h("div", { class: "secret" }, h("p", {}, t("settings.invite_link")), link));
      element.reset();
      await loadInvitations(list);
      link.focus();
      link.select();
    },
  );
}

async function loadInvitations(list) {
  const page = await get("/v1/workspace/invitations?limit=100");
  if (!page.data.length) return replace(list, h("p", { class: "empty" }, t("settings.invitations_empty")));
  replace(
    list,
    table(
      [t("settings.col_email"), t("settings.col_role"), t("settings.col_expires"), ""],
      page.data.map((invitation) => {
        const revoke = h("button", { type: "button", class: "danger small", dataset: { email: invitation.email } }, t("settings.revoke"));
        revoke.addEventListener("click", async () => {
          if (!confirm(t("settings.revoke_confirm", { email: invitation.email }))) return;
          try {
            await api("DELETE", `/v1/workspace/invitations/${encodeURIComponent(invitation.id)}`);
            await loadInvitations(list);
          } catch (err) {
            revoke.after(h("p", { class: "form-error", role: "alert" }, errorText(err)));
          }
        });
        return [h("span", { class: "mono" }, invitation.email), t(`role.${invitation.role}`), dateTime(invitation.expires_at), revoke];
      }),
      { id: "invitations", class: "stack" },
    ),
  );
}
