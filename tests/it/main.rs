//! Integration tests: the real server, started in-process on 127.0.0.1:0 with its own temporary
//! database per test, spoken to over HTTP; and the real `crier` binary for the command line.

// A test that cannot unwrap has failed; the crate's no-unwrap rule is for the product.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod activity;
mod admin_workspaces;
mod auth_api_keys;
mod auth_cli;
mod auth_fixtures;
mod auth_sessions;
mod auth_workspaces;
mod backups;
mod billing;
mod binary;
mod campaign_crash;
mod campaign_links;
mod campaign_sending;
mod campaigns;
mod console;
mod contacts;
mod delivery;
mod dkim;
mod edge;
mod email_events;
mod erase;
mod export;
mod fake_http;
mod groups;
mod harness;
mod http_errors;
mod idempotency;
mod imports;
mod layers;
mod login_throttling;
mod messages;
mod modes;
mod openapi;
mod payment_providers;
mod payment_webhooks;
mod payments;
mod probes;
mod process;
mod provider_accounts;
mod quickstart;
mod rate_limits;
mod retention;
mod routing;
mod segments;
mod sending;
mod sending_domains;
mod shutdown;
mod sms_providers;
mod smtp_pool;
mod smtp_provider;
mod unsubscribe;
mod webhooks;
