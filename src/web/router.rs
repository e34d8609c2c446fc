//! THE route table: every endpoint of the server, in one list.
//!
//! A route is (method, path template, handler). Templates use OpenAPI's syntax (`/v1/keys/{id}`)
//! so the table can be compared with `docs/openapi.json` by a test. Matching is exact and
//! segment-wise; a path that matches with another method gives 405 with `Allow`, no match 404.

use crate::app::App;
use crate::error::AppError;
use crate::web::request::Request;
use crate::web::response::ApiResponse;
use crate::web::{console, system};

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    /// Served by the GET route of the same path; hyper leaves the body out.
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// What an `Allow` header lists for a route of this method.
    fn allow_names(self) -> &'static [&'static str] {
        match self {
            Method::Get => &["GET", "HEAD"],
            Method::Head => &["HEAD"],
            Method::Post => &["POST"],
            Method::Put => &["PUT"],
            Method::Patch => &["PATCH"],
            Method::Delete => &["DELETE"],
        }
    }

    /// The method for a request line's method token, if the API uses it.
    pub fn parse(token: &str) -> Option<Method> {
        match token {
            "GET" => Some(Method::Get),
            "HEAD" => Some(Method::Head),
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "PATCH" => Some(Method::Patch),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }
}

pub type Handler = fn(&App, &mut Request<'_>) -> Result<ApiResponse, AppError>;

#[derive(Clone, Copy)]
pub struct Route {
    pub method: Method,
    /// The path template, e.g. `/v1/api-keys/{id}`.
    pub path: &'static str,
    pub handler: Handler,
    /// Whether the route reads a body. One that takes none (`without_body`) is refused a body
    /// that says anything before its handler runs (`exchange::dispatch`): a field sent to an
    /// action that reads no field (`{"confirm": false}` to an erase) must not be ignored.
    pub takes_body: bool,
    /// The length of the text before the first `{param}` (all of `path` without one): what a
    /// path must begin with, found once here rather than by every request for every route.
    literal_len: usize,
}

impl Route {
    pub const fn new(method: Method, path: &'static str, handler: Handler) -> Route {
        Route {
            method,
            path,
            handler,
            takes_body: true,
            literal_len: literal_prefix_len(path),
        }
    }

    /// A route whose handler reads no body: it accepts none, an empty one or `{}`.
    pub const fn without_body(self) -> Route {
        Route {
            takes_body: false,
            ..self
        }
    }
}

/// Where the first `{` of `template` is; its length when it has none.
const fn literal_prefix_len(template: &str) -> usize {
    let bytes = template.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'{' {
            return at;
        }
        at += 1;
    }
    bytes.len()
}

/// The outcome of looking a request up in the table.
pub enum RouteMatch<'r> {
    Found {
        route: &'r Route,
        params: Vec<(&'static str, String)>,
    },
    MethodNotAllowed {
        allowed: Vec<&'static str>,
    },
    NotFound,
}

#[derive(Clone)]
pub struct Router {
    routes: Vec<Route>,
}

/// The routes anyone may call without credentials (besides login, which has its own throttle):
/// each client IP's calls to them are counted against `--public-rate-limit`.
pub const OPEN_ROUTES: &[&str] = &[
    "/v1/setup",
    "/v1/invitations/accept",
    "/u/{token}",
    "/l/{code}",
    "/v1/webhooks/flutterwave",
    "/v1/webhooks/stripe",
    "/v1/webhooks/sms/{provider}",
    "/v1/webhooks/sms/{provider}/inbound",
    "/v1/webhooks/sms/{provider}/accounts/{id}",
    "/v1/webhooks/sms/{provider}/accounts/{id}/inbound",
    "/v1/webhooks/email/{provider}",
];

impl Router {
    /// Every endpoint crier serves.
    pub fn standard() -> Router {
        use crate::web::api_keys as keys;
        use crate::web::{
            activity, auth, billing, campaigns, contacts, groups, imports, links, messages,
            payments, provider_accounts, receipts, segments, sending_domains, unsubscribe,
            webhooks, workspaces,
        };
        use Method::{Delete, Get, Patch, Post, Put};
        Router {
            routes: vec![
                // The web console: one page, and its files (embedded; see web/console.rs).
                Route::new(Get, "/", console::show_console),
                Route::new(Get, "/console/{file}", console::show_asset),
                Route::new(Get, "/console/lib/{file}", console::show_asset),
                Route::new(Get, "/console/pages/{file}", console::show_asset),
                Route::new(Get, "/docs", system::show_docs),
                Route::new(Get, "/openapi.json", system::show_openapi),
                Route::new(Get, "/healthz", system::show_health),
                Route::new(Get, "/readyz", system::show_readiness),
                Route::new(Get, "/metrics", system::show_metrics),
                Route::new(Get, "/invitations/accept", system::show_accept_invitation),
                Route::new(Get, "/billing/return", system::show_billing_return),
                // Unsubscribe links: the signed token is the credential (RFC 8058 one-click).
                Route::new(Get, "/u/{token}", unsubscribe::show_unsubscribe),
                Route::new(Post, "/u/{token}", unsubscribe::unsubscribe),
                // Campaigns' short links: the signed code is the credential.
                Route::new(Get, "/l/{code}", links::follow_link),
                // Console authentication.
                Route::new(Get, "/v1/setup", auth::show_setup),
                Route::new(Post, "/v1/setup", auth::run_setup),
                Route::new(Post, "/v1/auth/login", auth::log_in),
                Route::new(Post, "/v1/auth/logout", auth::log_out).without_body(),
                Route::new(Get, "/v1/auth/me", auth::show_me),
                Route::new(Put, "/v1/auth/mode", auth::set_mode),
                Route::new(
                    Post,
                    "/v1/invitations/accept",
                    workspaces::accept_invitation,
                ),
                // Workspaces and their members.
                Route::new(Post, "/v1/workspaces", workspaces::create_workspace),
                Route::new(Get, "/v1/workspaces", workspaces::list_workspaces),
                Route::new(
                    Post,
                    "/v1/workspaces/{id}/activate",
                    workspaces::activate_workspace,
                )
                .without_body(),
                Route::new(Get, "/v1/workspace", workspaces::show_workspace),
                Route::new(Patch, "/v1/workspace", workspaces::rename_workspace),
                Route::new(Get, "/v1/workspace/members", workspaces::list_members),
                Route::new(
                    Patch,
                    "/v1/workspace/members/{user_id}",
                    workspaces::change_member_role,
                ),
                Route::new(
                    Delete,
                    "/v1/workspace/members/{user_id}",
                    workspaces::remove_member,
                )
                .without_body(),
                Route::new(
                    Post,
                    "/v1/workspace/invitations",
                    workspaces::create_invitation,
                ),
                Route::new(
                    Get,
                    "/v1/workspace/invitations",
                    workspaces::list_invitations,
                ),
                Route::new(
                    Delete,
                    "/v1/workspace/invitations/{id}",
                    workspaces::revoke_invitation,
                )
                .without_body(),
                // API keys.
                Route::new(Get, "/v1/api-keys", keys::list_api_keys),
                Route::new(Post, "/v1/api-keys", keys::create_api_key),
                Route::new(Delete, "/v1/api-keys/{id}", keys::revoke_api_key).without_body(),
                Route::new(Post, "/v1/api-keys/{id}/rotate", keys::rotate_api_key),
                // Messages.
                Route::new(Post, "/v1/messages", messages::send_message),
                Route::new(Get, "/v1/messages", messages::list_messages),
                Route::new(Post, "/v1/messages/estimate", messages::estimate_message),
                // Before `{id}`, which would take the name for an id.
                Route::new(Get, "/v1/messages/timeline", messages::messages_timeline),
                Route::new(Get, "/v1/messages/{id}", messages::show_message),
                Route::new(Post, "/v1/messages/{id}/cancel", messages::cancel_message)
                    .without_body(),
                // Contacts and their custom fields.
                Route::new(Post, "/v1/contacts", contacts::create_contact),
                Route::new(Get, "/v1/contacts", contacts::list_contacts),
                // Imports and the export before `{id}`, which would take their names for an id.
                Route::new(Post, "/v1/contacts/imports", imports::create_import),
                Route::new(Get, "/v1/contacts/imports", imports::list_imports),
                Route::new(Get, "/v1/contacts/imports/{id}", imports::show_import),
                Route::new(
                    Get,
                    "/v1/contacts/imports/{id}/rejects",
                    imports::download_rejects,
                ),
                Route::new(
                    Post,
                    "/v1/contacts/imports/{id}/cancel",
                    imports::cancel_import,
                )
                .without_body(),
                Route::new(
                    Post,
                    "/v1/contacts/imports/{id}/rollback",
                    imports::rollback_import,
                )
                .without_body(),
                Route::new(Get, "/v1/contacts/export", contacts::export_contacts),
                Route::new(Get, "/v1/contacts/{id}", contacts::show_contact),
                Route::new(Patch, "/v1/contacts/{id}", contacts::update_contact),
                Route::new(Delete, "/v1/contacts/{id}", contacts::delete_contact).without_body(),
                Route::new(Post, "/v1/contacts/{id}/erase", contacts::erase_contact).without_body(),
                Route::new(Get, "/v1/contact-fields", contacts::list_fields),
                Route::new(Post, "/v1/contact-fields", contacts::create_field),
                Route::new(Patch, "/v1/contact-fields/{id}", contacts::update_field),
                Route::new(Delete, "/v1/contact-fields/{id}", contacts::delete_field)
                    .without_body(),
                Route::new(Post, "/v1/groups", groups::create_group),
                Route::new(Get, "/v1/groups", groups::list_groups),
                Route::new(Get, "/v1/groups/{id}", groups::show_group),
                Route::new(Patch, "/v1/groups/{id}", groups::rename_group),
                Route::new(Delete, "/v1/groups/{id}", groups::delete_group).without_body(),
                Route::new(Post, "/v1/groups/{id}/contacts", groups::add_members),
                Route::new(Delete, "/v1/groups/{id}/contacts", groups::remove_members),
                Route::new(Post, "/v1/segments/preview", segments::preview),
                Route::new(Post, "/v1/segments", segments::create_segment),
                Route::new(Get, "/v1/segments", segments::list_segments),
                Route::new(Get, "/v1/segments/{id}", segments::show_segment),
                Route::new(Patch, "/v1/segments/{id}", segments::update_segment),
                Route::new(Delete, "/v1/segments/{id}", segments::delete_segment).without_body(),
                // Campaigns.
                Route::new(Post, "/v1/campaigns", campaigns::create_campaign),
                Route::new(Get, "/v1/campaigns", campaigns::list_campaigns),
                Route::new(Get, "/v1/campaigns/{id}", campaigns::show_campaign),
                Route::new(Patch, "/v1/campaigns/{id}", campaigns::update_campaign),
                Route::new(Delete, "/v1/campaigns/{id}", campaigns::delete_campaign).without_body(),
                Route::new(
                    Post,
                    "/v1/campaigns/{id}/duplicate",
                    campaigns::duplicate_campaign,
                )
                .without_body(),
                Route::new(
                    Post,
                    "/v1/campaigns/{id}/preview",
                    campaigns::preview_campaign,
                ),
                Route::new(
                    Post,
                    "/v1/campaigns/{id}/estimate",
                    campaigns::estimate_campaign,
                ),
                Route::new(
                    Post,
                    "/v1/campaigns/{id}/launch",
                    campaigns::launch_campaign,
                ),
                Route::new(
                    Post,
                    "/v1/campaigns/{id}/cancel",
                    campaigns::cancel_campaign,
                )
                .without_body(),
                Route::new(Post, "/v1/campaigns/{id}/test", campaigns::test_campaign),
                Route::new(
                    Get,
                    "/v1/campaigns/{id}/timeline",
                    campaigns::campaign_timeline,
                ),
                // A workspace's own provider accounts.
                Route::new(
                    Post,
                    "/v1/provider-accounts",
                    provider_accounts::create_account,
                ),
                Route::new(
                    Get,
                    "/v1/provider-accounts",
                    provider_accounts::list_accounts,
                ),
                Route::new(
                    Get,
                    "/v1/provider-accounts/{id}",
                    provider_accounts::show_account,
                ),
                Route::new(
                    Patch,
                    "/v1/provider-accounts/{id}",
                    provider_accounts::update_account,
                ),
                Route::new(
                    Delete,
                    "/v1/provider-accounts/{id}",
                    provider_accounts::delete_account,
                )
                .without_body(),
                // Outgoing webhooks: endpoints and their delivery log.
                Route::new(Post, "/v1/webhook-endpoints", webhooks::create_endpoint),
                Route::new(Get, "/v1/webhook-endpoints", webhooks::list_endpoints),
                Route::new(Get, "/v1/webhook-endpoints/{id}", webhooks::show_endpoint),
                Route::new(
                    Patch,
                    "/v1/webhook-endpoints/{id}",
                    webhooks::update_endpoint,
                ),
                Route::new(
                    Delete,
                    "/v1/webhook-endpoints/{id}",
                    webhooks::delete_endpoint,
                )
                .without_body(),
                Route::new(
                    Post,
                    "/v1/webhook-endpoints/{id}/rotate-secret",
                    webhooks::rotate_secret,
                ),
                Route::new(
                    Post,
                    "/v1/webhook-endpoints/{id}/test",
                    webhooks::send_test_event,
                )
                .without_body(),
                Route::new(
                    Get,
                    "/v1/webhook-endpoints/{id}/deliveries",
                    webhooks::list_deliveries,
                ),
                Route::new(Get, "/v1/webhook-deliveries/{id}", webhooks::show_delivery),
                Route::new(
                    Post,
                    "/v1/webhook-deliveries/{id}/retry",
                    webhooks::retry_delivery,
                )
                .without_body(),
                // Sending domains (the workspace's own From and DKIM key).
                Route::new(Post, "/v1/sending-domains", sending_domains::create_domain),
                Route::new(Get, "/v1/sending-domains", sending_domains::list_domains),
                Route::new(
                    Get,
                    "/v1/sending-domains/{id}",
                    sending_domains::show_domain,
                ),
                Route::new(
                    Put,
                    "/v1/sending-domains/{id}",
                    sending_domains::update_domain,
                ),
                Route::new(
                    Delete,
                    "/v1/sending-domains/{id}",
                    sending_domains::delete_domain,
                )
                .without_body(),
                // Payments.
                Route::new(Post, "/v1/payments/sessions", payments::create_session),
                Route::new(Get, "/v1/payments/sessions", payments::list_sessions),
                Route::new(Get, "/v1/payments/sessions/{id}", payments::show_session),
                Route::new(
                    Post,
                    "/v1/payments/sessions/{id}/verify",
                    payments::verify_session,
                )
                .without_body(),
                Route::new(
                    Post,
                    "/v1/webhooks/flutterwave",
                    payments::flutterwave_webhook,
                ),
                Route::new(Post, "/v1/webhooks/stripe", payments::stripe_webhook),
                // Provider callbacks (authenticated by their own means, not by crier's).
                Route::new(
                    Post,
                    "/v1/webhooks/sms/{provider}",
                    receipts::receive_receipts,
                ),
                Route::new(
                    Post,
                    "/v1/webhooks/sms/{provider}/inbound",
                    receipts::receive_inbound,
                ),
                Route::new(
                    Post,
                    "/v1/webhooks/sms/{provider}/accounts/{id}",
                    receipts::receive_account_receipts,
                ),
                Route::new(
                    Post,
                    "/v1/webhooks/sms/{provider}/accounts/{id}/inbound",
                    receipts::receive_account_inbound,
                ),
                Route::new(
                    Post,
                    "/v1/webhooks/email/{provider}",
                    receipts::receive_email_events,
                ),
                // Billing.
                Route::new(Get, "/v1/billing", billing::show_billing),
                Route::new(Get, "/v1/billing/ledger", billing::list_ledger),
                Route::new(Get, "/v1/billing/plans", billing::list_plans),
                Route::new(Put, "/v1/billing/sender-id", billing::request_sender_id),
                Route::new(
                    Put,
                    "/v1/billing/low-balance-alert",
                    billing::set_low_balance_alert,
                ),
                Route::new(
                    Post,
                    "/v1/billing/verification",
                    billing::submit_verification,
                ),
                // Instance administration.
                Route::new(Get, "/v1/admin/sender-ids", billing::list_sender_ids),
                Route::new(
                    Post,
                    "/v1/admin/sender-ids/{workspace_id}/approve",
                    billing::approve_sender_id,
                ),
                Route::new(
                    Post,
                    "/v1/admin/sender-ids/{workspace_id}/reject",
                    billing::reject_sender_id,
                ),
                Route::new(
                    Get,
                    "/v1/admin/sending-domains",
                    sending_domains::list_for_review,
                ),
                Route::new(
                    Post,
                    "/v1/admin/sending-domains/{id}/approve",
                    sending_domains::approve_domain,
                ),
                Route::new(
                    Post,
                    "/v1/admin/sending-domains/{id}/reject",
                    sending_domains::reject_domain,
                ),
                Route::new(Get, "/v1/admin/verifications", billing::list_verifications),
                Route::new(
                    Post,
                    "/v1/admin/verifications/{workspace_id}/approve",
                    billing::approve_verification,
                ),
                Route::new(
                    Post,
                    "/v1/admin/verifications/{workspace_id}/reject",
                    billing::reject_verification,
                ),
                Route::new(
                    Get,
                    "/v1/admin/workspaces",
                    workspaces::list_admin_workspaces,
                ),
                Route::new(
                    Get,
                    "/v1/admin/workspaces/{workspace_id}",
                    workspaces::show_admin_workspace,
                ),
                Route::new(
                    Post,
                    "/v1/admin/workspaces/{workspace_id}/wallet-adjustments",
                    billing::adjust_wallet,
                ),
                Route::new(
                    Put,
                    "/v1/admin/workspaces/{workspace_id}/plan",
                    billing::set_plan,
                ),
                // The activity log.
                Route::new(Get, "/v1/activity", activity::list_activity),
                Route::new(Get, "/v1/admin/activity", activity::list_all_activity),
            ],
        }
    }

    /// The table plus one more route. For tests that need a handler the product does not have
    /// (one that panics, one that is slow).
    pub fn with_route(mut self, route: Route) -> Router {
        self.routes.push(route);
        self
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Finds the route for `method` (`None` for a method the API never uses) and `path`.
    /// `HEAD` is answered by the `GET` route of the path.
    ///
    /// When templates of different shapes match the path, the one with a literal segment where
    /// the others have a `{param}` (first difference from the left) owns it: `/v1/contacts/export`
    /// is the export route's path, never a contact id, so `PATCH /v1/contacts/export` is a 405
    /// listing the export's methods rather than an update of the contact `export`.
    pub fn find(&self, method: Option<Method>, path: &str) -> RouteMatch<'_> {
        let wanted = match method {
            Some(Method::Head) => Some(Method::Get),
            other => other,
        };
        let matching: Vec<(&Route, Vec<(&'static str, String)>)> = self
            .routes
            .iter()
            .filter_map(|route| {
                match_template(route.path, route.literal_len, path).map(|params| (route, params))
            })
            .collect();
        let Some(most_specific) = matching
            .iter()
            .map(|(route, _)| literal_segments(route.path))
            .max()
        else {
            return RouteMatch::NotFound;
        };
        let mut allowed = Vec::new();
        for (route, params) in matching {
            if literal_segments(route.path) != most_specific {
                continue;
            }
            if Some(route.method) == wanted {
                return RouteMatch::Found { route, params };
            }
            for name in route.method.allow_names() {
                if !allowed.contains(name) {
                    allowed.push(*name);
                }
            }
        }
        if allowed.is_empty() {
            RouteMatch::NotFound
        } else {
            RouteMatch::MethodNotAllowed { allowed }
        }
    }
}

/// Which segments of `template` are literal (`true`) rather than `{param}`, left to right; a
/// greater vector is a more specific template.
fn literal_segments(template: &str) -> Vec<bool> {
    template
        .split('/')
        .map(|segment| !segment.starts_with('{'))
        .collect()
}

/// Matches `path` against `template`; returns the `{name}` captures on success.
/// `literal_len` is `literal_prefix_len(template)`.
fn match_template(
    template: &'static str,
    literal_len: usize,
    path: &str,
) -> Option<Vec<(&'static str, String)>> {
    // Every request tries every route: the text before the first `{param}` (all of a template
    // without one) must begin the path, a comparison of bytes that turns nearly all of them away
    // before any splitting (trying ~150 routes was 2–3 % of a send's CPU; finding each
    // template's `{` per request was another 10 % of a small read's).
    let literal = template.get(..literal_len).unwrap_or(template);
    if literal_len == template.len() {
        if template != path {
            return None;
        }
    } else if !path.starts_with(literal) {
        return None;
    }
    let mut template_segments = template.split('/');
    let mut path_segments = path.split('/');
    let mut params = Vec::new();
    loop {
        match (template_segments.next(), path_segments.next()) {
            (None, None) => return Some(params),
            (Some(pattern), Some(actual)) => {
                match pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) if !actual.is_empty() => params.push((name, actual.to_owned())),
                    Some(_) => return None,
                    None if pattern == actual => {}
                    None => return None,
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_exactly_and_capture_params() {
        type Case = (
            &'static str,
            &'static str,
            Option<Vec<(&'static str, &'static str)>>,
        );
        let cases: &[Case] = &[
            ("/healthz", "/healthz", Some(vec![])),
            ("/healthz", "/healthz/", None),
            ("/healthz", "/health", None),
            ("/", "/", Some(vec![])),
            ("/", "", None),
            (
                "/v1/keys/{id}",
                "/v1/keys/key_1",
                Some(vec![("id", "key_1")]),
            ),
            ("/v1/keys/{id}", "/v1/keys/", None),
            ("/v1/keys/{id}", "/v1/keys/a/b", None),
            (
                "/v1/keys/{id}/rotate",
                "/v1/keys/k/rotate",
                Some(vec![("id", "k")]),
            ),
            ("/v1/keys/{id}", "/v1/other/k", None),
            ("/v1/{a}/{b}", "/v1/x/y", Some(vec![("a", "x"), ("b", "y")])),
        ];
        assert_eq!(literal_prefix_len("/v1/keys/{id}"), "/v1/keys/".len());
        assert_eq!(literal_prefix_len("/healthz"), "/healthz".len());
        for (template, path, expected) in cases {
            let got = match_template(template, literal_prefix_len(template), path);
            let expected: Option<Vec<(&str, String)>> = expected
                .as_ref()
                .map(|params| params.iter().map(|(k, v)| (*k, v.to_string())).collect());
            assert_eq!(got, expected, "{template} vs {path}");
        }
    }

    #[test]
    fn wrong_method_lists_the_allowed_ones() {
        let router = Router::standard();
        match router.find(Some(Method::Post), "/healthz") {
            RouteMatch::MethodNotAllowed { allowed } => assert_eq!(allowed, vec!["GET", "HEAD"]),
            _ => panic!("expected 405"),
        }
        match router.find(None, "/healthz") {
            RouteMatch::MethodNotAllowed { allowed } => assert_eq!(allowed, vec!["GET", "HEAD"]),
            _ => panic!("expected 405 for an unknown method"),
        }
        assert!(matches!(
            router.find(Some(Method::Get), "/nope"),
            RouteMatch::NotFound
        ));
        assert!(matches!(
            router.find(Some(Method::Head), "/healthz"),
            RouteMatch::Found { route, .. } if route.method == Method::Get
        ));
    }

    #[test]
    fn a_literal_segment_owns_its_path_over_a_parameter() {
        let router = Router::standard();
        for method in [Method::Patch, Method::Delete, Method::Post] {
            match router.find(Some(method), "/v1/contacts/export") {
                RouteMatch::MethodNotAllowed { allowed } => {
                    assert_eq!(allowed, vec!["GET", "HEAD"], "{}", method.as_str())
                }
                _ => panic!("expected 405 for {}", method.as_str()),
            }
        }
        match router.find(Some(Method::Get), "/v1/contacts/export") {
            RouteMatch::Found { route, params } => {
                assert_eq!(route.path, "/v1/contacts/export");
                assert!(params.is_empty());
            }
            _ => panic!("expected the export route"),
        }
        match router.find(Some(Method::Patch), "/v1/contacts/con_1") {
            RouteMatch::Found { route, params } => {
                assert_eq!(route.path, "/v1/contacts/{id}");
                assert_eq!(params, vec![("id", "con_1".to_owned())]);
            }
            _ => panic!("expected the contact route"),
        }
    }

    #[test]
    fn every_route_is_unique() {
        let router = Router::standard();
        let mut seen = std::collections::HashSet::new();
        for route in router.routes() {
            assert!(
                seen.insert((route.method, route.path)),
                "{} {} is listed twice",
                route.method.as_str(),
                route.path
            );
        }
    }
}
