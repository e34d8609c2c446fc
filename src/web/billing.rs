//! HTTP for billing: the summary, the ledger, the plan catalog, sender ID and verification
//! requests, and the instance-admin decisions and wallet adjustments.

use serde::{Deserialize, Serialize};

use crate::activity::{Action, Event};
use crate::api_keys::format::Scope;
use crate::app::App;
use crate::auth::buckets::Rate;

use crate::billing::catalog::Plan;
use crate::billing::plans;
use crate::billing::pricing::Tier;
use crate::billing::sender::{
    self, SenderIdReview, Subject, VerificationRequest, VerificationReview,
};
use crate::billing::{self, Channel, store};
use crate::clock::{format_timestamp, parse_timestamp};
use crate::error::{AppError, FieldErrors};
use crate::ids::WorkspaceId;
use crate::money::Money;
use crate::validate;
use crate::web::activity::{actor, record};
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, OPTIONAL_PER_USER, OPTIONAL_PER_WORKSPACE, Per, Requirement};
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;
use crate::workspaces::Role;

/// Suggested top-up amounts shown next to the minimum, in the wallet currency's minor unit.
const SUGGESTED_TOPUPS_MINOR: [i64; 4] = [1_000, 5_000, 10_000, 25_000];

/// A catalog plan as the API shows it, priced in `currency`.
#[derive(Serialize)]
struct PlanView<'a> {
    code: &'a str,
    name: &'a str,
    price: Option<Money>,
    included_sms_per_month: u64,
    included_email_per_day: u64,
    /// The plan's own API request rate, or the instance's (0: no limit).
    api_requests_per_second: u32,
}

fn plan_view<'a>(plan: &'a Plan, currency: &str, instance_rate: Rate) -> PlanView<'a> {
    PlanView {
        code: plan.code.as_str(),
        name: &plan.name,
        price: plan.price_minor.map(|price| Money::new(price, currency)),
        included_sms_per_month: plan.included_sms_per_month,
        included_email_per_day: plan.included_email_per_day,
        api_requests_per_second: plan
            .api_requests_per_second
            .unwrap_or(instance_rate.per_second),
    }
}

/// One price band: units `from_unit` to `to_unit` (open-ended when `None`) each cost `price`.
#[derive(Serialize)]
struct PriceBandView {
    from_unit: u64,
    to_unit: Option<u64>,
    price: Money,
}

fn tiers_view(tiers: &[Tier], currency: &str) -> Vec<PriceBandView> {
    let mut from = 1;
    tiers
        .iter()
        .map(|tier| {
            let band = PriceBandView {
                from_unit: from,
                to_unit: tier.up_to,
                price: Money::new(tier.price_minor, currency),
            };
            from = tier.up_to.map_or(from, |up_to| up_to + 1);
            band
        })
        .collect()
}

/// `GET /v1/billing`'s answer.
#[derive(Serialize)]
struct BillingView<'a> {
    plan: CurrentPlanView<'a>,
    wallet: WalletView,
    quotas: PerChannel<QuotaView>,
    pricing: PerChannel<Vec<PriceBandView>>,
    sender_id: Option<&'a sender::SenderId>,
    effective_sender: String,
    verification: VerificationStatusView<'a>,
    purchasable_plans: Vec<PlanView<'a>>,
    topup: TopupView,
}

#[derive(Serialize)]
struct CurrentPlanView<'a> {
    code: &'a str,
    name: &'a str,
    /// `active` while a plan runs, else `none` (and no period).
    status: &'static str,
    period_start: Option<&'a str>,
    period_end: Option<&'a str>,
}

#[derive(Serialize)]
struct WalletView {
    balance: Money,
    /// The balance below which a debit sends `wallet.low_balance`; `null`: no alert.
    low_balance_threshold: Option<Money>,
}

#[derive(Serialize)]
struct PerChannel<T> {
    sms: T,
    email: T,
}

/// The included quota of one channel in its current period.
#[derive(Serialize)]
struct QuotaView {
    used: u64,
    included: u64,
    remaining: u64,
    period_start: String,
    period_end: String,
}

/// The workspace's verification status; `unverified` when it never submitted one.
#[derive(Serialize)]
struct VerificationStatusView<'a> {
    status: &'a str,
    rejection_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct TopupView {
    minimum: Money,
    suggested: Vec<Money>,
}

/// `GET /v1/billing`: plan, wallet, quotas, prices, sender and verification, purchasable plans.
pub fn show_billing(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::BillingRead)?;
    let workspace_id = scope.id();
    let now = app.clock.now();
    let catalog = &app.config.billing_catalog;
    let (account, quotas, sender_id, verification) = app.db.read(|conn| {
        let account = store::find_account(conn, workspace_id)?.ok_or(AppError::NotFound)?;
        let sms = billing::quote_account(conn, catalog, &scope, &account, Channel::Sms, 0, now)?;
        let email =
            billing::quote_account(conn, catalog, &scope, &account, Channel::Email, 0, now)?;
        let sender_id = sender::find_sender_id(conn, &scope)?;
        let verification = sender::find_verification(conn, &scope)?;
        Ok((account, [sms, email], sender_id, verification))
    })?;
    let currency = account.wallet_currency.as_str();
    let plan_end = account.plan_period_end.as_deref().and_then(parse_timestamp);
    let plan = catalog.effective_plan(account.plan_code.as_str(), plan_end, now);
    let plan_running = billing::PlanState::of(&account, catalog, now).is_running();
    let quota = |channel: Channel, quote: &billing::Quote| {
        let included = channel.included(plan, &account);
        let (start, end) = match channel {
            Channel::Sms => (plans::month_start(now), plans::next_month_start(now)),
            Channel::Email => (plans::day_start(now), plans::next_day_start(now)),
        };
        QuotaView {
            used: quote.quota_used,
            included,
            remaining: quote.included_remaining,
            period_start: format_timestamp(start),
            period_end: format_timestamp(end),
        }
    };
    let [sms, email] = &quotas;
    let body = BillingView {
        plan: CurrentPlanView {
            code: plan.code.as_str(),
            name: &plan.name,
            status: if plan_running { "active" } else { "none" },
            period_start: account
                .plan_activated_at
                .as_deref()
                .filter(|_| plan_running),
            period_end: account.plan_period_end.as_deref().filter(|_| plan_running),
        },
        wallet: WalletView {
            balance: Money::new(account.wallet_balance_minor, currency),
            low_balance_threshold: account
                .low_balance_threshold_minor
                .map(|minor| Money::new(minor, currency)),
        },
        quotas: PerChannel {
            sms: quota(Channel::Sms, sms),
            email: quota(Channel::Email, email),
        },
        pricing: PerChannel {
            sms: tiers_view(catalog.tiers(Channel::Sms), &catalog.currency),
            email: tiers_view(catalog.tiers(Channel::Email), &catalog.currency),
        },
        sender_id: sender_id.as_ref(),
        effective_sender: sender::effective_sender(
            sender_id.as_ref(),
            verification.as_ref(),
            &app.config.default_sms_sender,
        ),
        verification: match &verification {
            Some(verification) => VerificationStatusView {
                status: &verification.status,
                rejection_reason: verification.rejection_reason.as_deref(),
            },
            None => VerificationStatusView {
                status: "unverified",
                rejection_reason: None,
            },
        },
        purchasable_plans: catalog
            .plans
            .iter()
            .filter(|plan| plan.price_minor.is_some())
            .map(|plan| plan_view(plan, &catalog.currency, app.config.api_rate))
            .collect(),
        topup: TopupView {
            minimum: Money::new(app.config.topup_minimum_minor, currency),
            suggested: SUGGESTED_TOPUPS_MINOR
                .iter()
                .map(|amount| Money::new(*amount, currency))
                .collect(),
        },
    };
    ApiResponse::json(200, &body)
}

/// `GET /v1/billing/ledger`: newest first, paginated.
pub fn list_ledger(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::BillingRead)?;
    let workspace_id = scope.id();
    let page = request.page()?;
    let entries = app.db.read(|conn| {
        store::list_ledger(conn, workspace_id, page.cursor.as_deref(), page.fetch())
    })?;
    let (entries, next_cursor) = page.split(entries, |entry| entry.id.as_str());
    let data: Vec<LedgerEntryView<'_>> = entries.iter().map(LedgerEntryView::from).collect();
    page_response(&data, next_cursor)
}

/// `GET /v1/billing/plans`: the catalog in its configured order, paginated like every list.
pub fn list_plans(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    principal.require_scope(Scope::BillingRead)?;
    let page = request.page()?;
    let catalog = &app.config.billing_catalog;
    let plans = catalog.plans_after(page.cursor.as_deref(), page.fetch());
    let (plans, next_cursor) = page.split(plans, |plan| plan.code.as_str());
    let data: Vec<PlanView<'_>> = plans
        .iter()
        .map(|plan| plan_view(plan, &catalog.currency, app.config.api_rate))
        .collect();
    page_response(&data, next_cursor)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LowBalanceAlertBody {
    /// Required; `null` turns the alert off.
    #[serde(default, deserialize_with = "crate::validate::present")]
    threshold_minor: Option<Option<i64>>,
}

/// `PUT /v1/billing/low-balance-alert`: sets (or with `null` clears) the balance below which a
/// debit sends the `wallet.low_balance` webhook event. Owner or admin (a console session).
pub fn set_low_balance_alert(
    app: &App,
    request: &mut Request<'_>,
) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let (scope, _) = session.require_role(Role::Admin)?;
    let body: LowBalanceAlertBody = request.json()?;
    let threshold_minor = body.threshold_minor.ok_or_else(|| {
        AppError::invalid_field("threshold_minor", "is required (null turns the alert off)")
    })?;
    let account = app.db.write(|conn| {
        billing::set_low_balance_threshold(conn, &scope, threshold_minor)?;
        store::find_account(conn, scope.id())?.ok_or(AppError::NotFound)
    })?;
    let currency = account.wallet_currency.as_str();
    ApiResponse::json(
        200,
        &WalletView {
            balance: Money::new(account.wallet_balance_minor, currency),
            low_balance_threshold: threshold_minor.map(|minor| Money::new(minor, currency)),
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SenderIdBody {
    sender_id: String,
}

/// `PUT /v1/billing/sender-id`: requests (or changes) the workspace's sender ID.
pub fn request_sender_id(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let (scope, _) = session.require_role(Role::Admin)?;
    let body: SenderIdBody = request.json()?;
    let sender_id = sender::normalize_sender_id(&body.sender_id)
        .map_err(|why| AppError::invalid_field("sender_id", why))?;
    let now = app.clock.now();
    let actor = actor(app, request, &principal);
    let requested = app.db.write(|conn| {
        let requested =
            sender::request_sender_id(conn, &scope, &sender_id, session.user_id(), now)?;
        let event = Event::new(Action::SenderIdRequested)
            .workspace(scope.id())
            .target(scope.id().as_str())
            .detail("sender_id", sender_id.as_str());
        record(app, conn, &actor, event)?;
        Ok(requested)
    })?;
    ApiResponse::json(200, &requested)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerificationBody {
    business_name: String,
    country: String,
    website: Option<String>,
    document_refs: Vec<String>,
}

/// `POST /v1/billing/verification`: submits business details for verification. Accepts an
/// `Idempotency-Key`.
pub fn submit_verification(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let (scope, _) = session.require_role(Role::Admin)?;
    let body: VerificationBody = request.json()?;
    let mut fields = FieldErrors::new();
    let business_name = validate::text(&body.business_name, 1, 200)
        .map_err(|why| fields.add("business_name", why))
        .ok();
    let country = body.country.trim().to_uppercase();
    // A country that exists (`XX` does not): the regions the phone-number metadata knows.
    if country.len() != 2 || country.parse::<phonenumber::country::Id>().is_err() {
        fields.add(
            "country",
            "must be a two-letter ISO 3166 country code such as CM",
        );
    }
    let website = body
        .website
        .as_deref()
        .map(str::trim)
        .filter(|site| !site.is_empty());
    if website.is_some_and(|site| {
        !(site.starts_with("https://") || site.starts_with("http://")) || site.chars().count() > 300
    }) {
        fields.add(
            "website",
            "must be an http(s) URL of at most 300 characters",
        );
    }
    let refs_ok = (1..=10).contains(&body.document_refs.len())
        && body
            .document_refs
            .iter()
            .all(|r| (1..=300).contains(&r.trim().chars().count()));
    if !refs_ok {
        fields.add(
            "document_refs",
            "must list 1 to 10 references of 1 to 300 characters",
        );
    }
    fields.into_result()?;
    let business_name =
        business_name.ok_or_else(|| AppError::internal("validated field missing"))?;
    let submission = VerificationRequest {
        business_name,
        country,
        website: website.map(str::to_owned),
        document_refs: body
            .document_refs
            .iter()
            .map(|r| r.trim().to_owned())
            .collect(),
    };
    let now = app.clock.now();
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let submitted =
            sender::submit_verification(conn, &scope, &submission, session.user_id(), now)?;
        let event = Event::new(Action::VerificationRequested)
            .workspace(scope.id())
            .target(scope.id().as_str())
            .detail("business_name", submission.business_name.as_str())
            .detail("country", submission.country.as_str());
        record(app, conn, &actor, event)?;
        ApiResponse::json(200, &submitted)
    })
}

/// A sender ID request as `GET /v1/admin/sender-ids` shows it.
#[derive(Serialize)]
struct AdminSenderIdView<'a> {
    workspace_id: &'a str,
    workspace_name: &'a str,
    sender_id: &'a str,
    status: &'a str,
    requested_at: &'a str,
    rejection_reason: Option<&'a str>,
}

impl<'a> From<&'a SenderIdReview> for AdminSenderIdView<'a> {
    fn from(review: &'a SenderIdReview) -> AdminSenderIdView<'a> {
        let request = &review.sender_id;
        AdminSenderIdView {
            workspace_id: review.workspace_id.as_str(),
            workspace_name: &review.workspace_name,
            sender_id: &request.sender_id,
            status: &request.status,
            requested_at: &request.requested_at,
            rejection_reason: request.rejection_reason.as_deref(),
        }
    }
}

/// A verification as `GET /v1/admin/verifications` shows it: the workspace, then the
/// verification's own fields.
#[derive(Serialize)]
struct AdminVerificationView<'a> {
    workspace_id: &'a str,
    workspace_name: &'a str,
    #[serde(flatten)]
    verification: &'a sender::Verification,
}

impl<'a> From<&'a VerificationReview> for AdminVerificationView<'a> {
    fn from(review: &'a VerificationReview) -> AdminVerificationView<'a> {
        AdminVerificationView {
            workspace_id: review.workspace_id.as_str(),
            workspace_name: &review.workspace_name,
            verification: &review.verification,
        }
    }
}

/// The `{workspace_id}` an instance admin acts on; one that cannot be a workspace id is not found.
fn workspace_id_param(request: &Request<'_>) -> Result<WorkspaceId, AppError> {
    WorkspaceId::parse(request.param("workspace_id")).ok_or(AppError::NotFound)
}

/// `?status=` of an admin review list: one of `known`, `pending` when absent.
fn review_status(request: &Request<'_>, known: [&str; 3]) -> Result<String, AppError> {
    let status = request
        .query_param("status")
        .unwrap_or_else(|| "pending".to_owned());
    if !known.contains(&status.as_str()) {
        return Err(AppError::invalid_field(
            "status",
            format!("must be one of {}", known.join(", ")),
        ));
    }
    Ok(status)
}

/// `GET /v1/admin/sender-ids?status=pending`: oldest request first, paginated.
pub fn list_sender_ids(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    principal.require_instance_admin()?;
    let status = review_status(request, ["pending", "approved", "rejected"])?;
    let page = request.page()?;
    let reviews = app.db.read(|conn| {
        sender::list_sender_ids(conn, &status, page.cursor.as_deref(), page.fetch())
    })?;
    let (reviews, next_cursor) = page.split(reviews, |review| review.workspace_id.as_str());
    let data: Vec<AdminSenderIdView<'_>> = reviews.iter().map(AdminSenderIdView::from).collect();
    page_response(&data, next_cursor)
}

/// `GET /v1/admin/verifications?status=pending`: oldest submission first, paginated.
pub fn list_verifications(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    principal.require_instance_admin()?;
    let status = review_status(request, ["pending", "verified", "rejected"])?;
    let page = request.page()?;
    let reviews = app.db.read(|conn| {
        sender::list_verifications(conn, &status, page.cursor.as_deref(), page.fetch())
    })?;
    let (reviews, next_cursor) = page.split(reviews, |review| review.workspace_id.as_str());
    let data: Vec<AdminVerificationView<'_>> =
        reviews.iter().map(AdminVerificationView::from).collect();
    page_response(&data, next_cursor)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    /// Required to reject.
    reason: Option<String>,
    /// What the admin reviewed: the sender ID, or the verification's `submitted_at`.
    expected: Option<String>,
}

/// What a decision answers: the decided sender ID or verification as it now stands.
#[derive(Serialize)]
#[serde(untagged)]
enum Decided {
    SenderId(Option<sender::SenderId>),
    Verification(Option<sender::Verification>),
}

/// An instance admin's decision on a sender ID or a verification. Accepts an `Idempotency-Key`.
fn decide(
    app: &App,
    request: &mut Request<'_>,
    subject: Subject,
    approve: bool,
) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let admin = principal.require_instance_admin()?;
    let body: DecisionBody = request.json_or_default()?;
    let reason = decision_reason(body.reason.as_deref(), approve)?;
    let expected = body.expected.as_deref().map(|value| match subject {
        Subject::SenderId => value.trim().to_uppercase(),
        Subject::Verification => value.trim().to_owned(),
    });
    let workspace_id = workspace_id_param(request)?;
    let (_, scope) = principal.require_instance_admin_in(&workspace_id)?;
    let now = app.clock.now();
    let decision = sender::Decision {
        rejection_reason: reason.as_deref(),
        expected: expected.as_deref(),
        admin_id: admin.user_id(),
    };
    let actor = actor(app, request, &principal);
    let action = match (subject, approve) {
        (Subject::SenderId, true) => Action::SenderIdApproved,
        (Subject::SenderId, false) => Action::SenderIdRejected,
        (Subject::Verification, true) => Action::VerificationApproved,
        (Subject::Verification, false) => Action::VerificationRejected,
    };
    // Scoped to the admin, like wallet adjustments: the workspace is the path's, not theirs.
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_USER, |conn| {
        sender::decide(conn, subject, &workspace_id, &decision, now)?;
        let mut event = Event::new(action)
            .workspace(&workspace_id)
            .target(workspace_id.as_str());
        if let Some(reason) = &reason {
            event = event.detail("reason", reason.as_str());
        }
        record(app, conn, &actor, event)?;
        let decided = match subject {
            Subject::SenderId => Decided::SenderId(sender::find_sender_id(conn, &scope)?),
            Subject::Verification => {
                Decided::Verification(sender::find_verification(conn, &scope)?)
            }
        };
        ApiResponse::json(200, &decided)
    })
}

/// `POST /v1/admin/sender-ids/{workspace_id}/approve`.
pub fn approve_sender_id(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    decide(app, request, Subject::SenderId, true)
}

/// `POST /v1/admin/sender-ids/{workspace_id}/reject` `{reason}`.
pub fn reject_sender_id(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    decide(app, request, Subject::SenderId, false)
}

/// `POST /v1/admin/verifications/{workspace_id}/approve`.
pub fn approve_verification(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    decide(app, request, Subject::Verification, true)
}

/// `POST /v1/admin/verifications/{workspace_id}/reject` `{reason}`.
pub fn reject_verification(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    decide(app, request, Subject::Verification, false)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustmentBody {
    amount_minor: i64,
    reason: String,
}

/// `POST /v1/admin/workspaces/{workspace_id}/wallet-adjustments`: credits or debits a wallet with
/// a mandatory reason (one `adjustment` ledger row).
pub fn adjust_wallet(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let admin = principal.require_instance_admin()?;
    let body: AdjustmentBody = request.json()?;
    let mut fields = FieldErrors::new();
    if let Some(why) = billing::check_adjustment(body.amount_minor) {
        fields.add("amount_minor", why);
    }
    let reason = validate::text(&body.reason, 1, 500)
        .map_err(|why| fields.add("reason", why))
        .ok();
    fields.into_result()?;
    let reason = reason.ok_or_else(|| AppError::internal("validated field missing"))?;
    let (_, scope) = principal.require_instance_admin_in(&workspace_id_param(request)?)?;
    let now = app.clock.now();
    let actor = actor(app, request, &principal);
    // Money moves: a retried adjustment (same key, same request) is applied once.
    idempotency::in_transaction(
        app,
        request,
        &principal,
        (Requirement::Optional, Per::User),
        |conn| {
            let (entry, account) = billing::adjust_wallet(
                conn,
                &app.ids,
                &scope,
                body.amount_minor,
                &reason,
                Some(admin.user_id()),
                now,
            )?;
            let event = wallet_adjusted(scope.id(), &entry.id, body.amount_minor, &reason);
            record(app, conn, &actor, event)?;
            let balance = Money::new(account.wallet_balance_minor, &account.wallet_currency);
            ApiResponse::json(
                201,
                &AdjustmentView {
                    ledger_entry: LedgerEntryView::from(&entry),
                    balance,
                },
            )
        },
    )
}

/// A ledger row as the API shows it.
/// The activity entry of a wallet adjustment (HTTP or `crier admin adjust-wallet`).
fn wallet_adjusted(
    workspace_id: &WorkspaceId,
    ledger_entry_id: &str,
    amount_minor: i64,
    reason: &str,
) -> Event {
    Event::new(Action::WalletAdjusted)
        .workspace(workspace_id)
        .target(ledger_entry_id)
        .detail("amount_minor", amount_minor)
        .detail("reason", reason)
}

/// The activity entry of a plan set by the instance admin.
fn plan_changed(
    workspace_id: &WorkspaceId,
    plan_code: &str,
    period_end: Option<crate::clock::Timestamp>,
) -> Event {
    let mut event = Event::new(Action::PlanChanged)
        .workspace(workspace_id)
        .target(workspace_id.as_str())
        .detail("plan_code", plan_code);
    if let Some(end) = period_end {
        event = event.detail("period_end", format_timestamp(end));
    }
    event
}

#[derive(Serialize)]
struct LedgerEntryView<'a> {
    id: &'a str,
    kind: &'a str,
    amount: Money,
    balance_after: Money,
    reference: &'a str,
    actor: Option<&'a str>,
    reason: Option<&'a str>,
    created_at: &'a str,
}

impl<'a> From<&'a store::LedgerEntry> for LedgerEntryView<'a> {
    fn from(entry: &'a store::LedgerEntry) -> LedgerEntryView<'a> {
        LedgerEntryView {
            id: &entry.id,
            kind: &entry.kind,
            amount: Money::new(entry.amount_minor, &entry.currency),
            balance_after: Money::new(entry.balance_after_minor, &entry.currency),
            reference: &entry.reference,
            actor: entry.actor.as_deref(),
            reason: entry.reason.as_deref(),
            created_at: &entry.created_at,
        }
    }
}

/// A wallet adjustment: its ledger row and the balance it left.
#[derive(Serialize)]
struct AdjustmentView<'a> {
    ledger_entry: LedgerEntryView<'a>,
    balance: Money,
}

/// The plan an instance admin set.
#[derive(Serialize)]
struct PlanSetView<'a> {
    workspace_id: &'a str,
    plan_code: &'a str,
    period_end: Option<String>,
    included_sms_per_month: Option<u64>,
    included_email_per_day: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPlanBody {
    plan_code: String,
    /// When the plan ends; `null` (or absent) for a `custom` plan without end, one month from now
    /// for catalog plans.
    period_end: Option<String>,
    included_sms_per_month: Option<u64>,
    included_email_per_day: Option<u64>,
}

/// `PUT /v1/admin/workspaces/{workspace_id}/plan`: an instance admin sets a workspace's plan —
/// a catalog plan (free of charge: a gift or a correction), or `custom` with its own quotas.
pub fn set_plan(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    principal.require_instance_admin()?;
    let body: SetPlanBody = request.json()?;
    let now = app.clock.now();
    let catalog = &app.config.billing_catalog;
    let mut fields = FieldErrors::new();
    if catalog.plan(&body.plan_code).is_none() {
        let codes: Vec<&str> = catalog
            .plans
            .iter()
            .map(|plan| plan.code.as_str())
            .collect();
        fields.add("plan_code", format!("must be one of {}", codes.join(", ")));
    }
    let custom = billing::catalog::PlanCode::new(body.plan_code.as_str()).is_custom();
    let quotas = (body.included_sms_per_month, body.included_email_per_day);
    if custom && (quotas.0.is_none() || quotas.1.is_none()) {
        fields.add(
            "included_sms_per_month",
            "the custom plan needs both included amounts",
        );
    }
    if !custom && (quotas.0.is_some() || quotas.1.is_some()) {
        fields.add(
            "included_sms_per_month",
            "only the custom plan takes included amounts",
        );
    }
    let period_end = match body.period_end.as_deref().map(parse_timestamp) {
        None if custom => None,
        None => Some(plans::one_month_after(now)),
        Some(Some(end)) if end > now => Some(end),
        Some(_) => {
            fields.add("period_end", "must be an RFC 3339 timestamp in the future");
            None
        }
    };
    fields.into_result()?;
    let workspace_id = workspace_id_param(request)?;
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        store::find_account(conn, &workspace_id)?.ok_or(AppError::NotFound)?;
        let event = plan_changed(&workspace_id, &body.plan_code, period_end);
        record(app, conn, &actor, event)?;
        store::set_plan(
            conn,
            &workspace_id,
            &body.plan_code,
            &format_timestamp(now),
            period_end.map(format_timestamp).as_deref(),
        )?;
        if let (true, Some(sms), Some(email)) = (custom, quotas.0, quotas.1) {
            store::set_custom_quotas(conn, &workspace_id, sms, email)?;
        }
        Ok(())
    })?;
    ApiResponse::json(
        200,
        &PlanSetView {
            workspace_id: workspace_id.as_str(),
            plan_code: &body.plan_code,
            period_end: period_end.map(format_timestamp),
            included_sms_per_month: quotas.0,
            included_email_per_day: quotas.1,
        },
    )
}

/// The reason of an instance admin's decision: checked whenever one is sent (1–500 characters),
/// though only a rejection keeps it, and required to reject.
pub fn decision_reason(reason: Option<&str>, approve: bool) -> Result<Option<String>, AppError> {
    let reason = reason
        .map(|reason| {
            validate::text(reason, 1, 500).map_err(|why| AppError::invalid_field("reason", why))
        })
        .transpose()?;
    match (approve, reason) {
        (true, _) => Ok(None),
        (false, Some(reason)) => Ok(Some(reason)),
        (false, None) => Err(AppError::invalid_field("reason", "is required to reject")),
    }
}
