//! crier: a self-hosted server for sending SMS and email, with billing, in one binary and one
//! SQLite file. `main.rs` is a thin command-line front; everything lives here so the integration
//! tests can start the very same server in-process. ARCHITECTURE.md is the map.

pub mod activity;
pub mod api_keys;
pub mod app;
pub mod auth;
pub mod backups;
pub mod billing;
pub mod campaigns;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod contacts;
pub mod db;
pub mod delivery;
pub mod doctor;
pub mod error;
pub mod events;
pub mod html;
pub mod idempotency;
pub mod ids;
pub mod janitor;
pub mod logging;
pub mod messages;
pub mod metrics;
pub mod money;
pub mod outbound;
pub mod payments;
pub mod recipients;
pub mod scope;
pub mod secrets;
pub mod sending_domains;
pub mod server;
pub mod settings;
pub mod users;
pub mod validate;
pub mod vocabulary;
pub mod web;
pub mod webhooks;
pub mod workspaces;
