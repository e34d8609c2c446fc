//! Test fixtures for the campaign runner's unit tests: a workspace with contacts, and campaigns
//! launched in it, in-process (no HTTP, no runner thread: the tests take the runner's steps).

use chrono::{DateTime, Utc};

use super::CampaignStatus;
use super::launch::{self, Launcher};
use super::store::CampaignRow;
use super::{Audience, NewCampaign, create_campaign};
use crate::app::App;
use crate::billing::Charging;
use crate::contacts::{Editor, NewContact, UnsubscribeVia, create_contact};
use crate::ids::ContactId;
use crate::scope::WorkspaceScope;
use crate::users::{NewUser, create_user};
use crate::vocabulary::Mode;
use crate::workspaces::create_workspace;

/// A test-mode workspace and its contacts, in the order given (each named once, with a phone).
pub struct Workspace {
    pub scope: WorkspaceScope,
    pub mode: Mode,
    pub contacts: Vec<ContactId>,
}

pub fn workspace_with_contacts(app: &App, names: &[&str], now: DateTime<Utc>) -> Workspace {
    let (scope, mode) = app
        .db
        .write(|conn| {
            let user = NewUser {
                email: "o@x.io".into(),
                name: "O".into(),
                password_hash: "x".into(),
            };
            let user = create_user(conn, &app.ids, user, false, now)?;
            let workspace = create_workspace(conn, &app.ids, "Acme", &user.id, "XAF", now)?;
            Ok((WorkspaceScope::trusted(&workspace.id), Mode::Test))
        })
        .unwrap();
    let editor = Editor {
        scope: &scope,
        mode,
        via: UnsubscribeVia::Api,
    };
    let contacts = names
        .iter()
        .enumerate()
        .map(|(n, name)| {
            let contact = NewContact {
                name: Some((*name).to_owned()),
                first_name: Some((*name).to_owned()),
                phone: Some(format!("+23767700000{n}")),
                ..NewContact::default()
            };
            app.db
                .write(|conn| {
                    let key = &app.unsubscribe_key;
                    create_contact(conn, &app.ids, key, editor, contact, "CM", now)
                })
                .unwrap()
                .id
        })
        .collect();
    Workspace {
        scope,
        mode,
        contacts,
    }
}

/// An SMS campaign of `text` to all the workspace's contacts, launched (running, its fan-out
/// not started).
pub fn launched(app: &App, workspace: &Workspace, text: &str, now: DateTime<Utc>) -> CampaignRow {
    let (scope, mode) = (&workspace.scope, workspace.mode);
    let draft = NewCampaign {
        name: Some("Sale".into()),
        channel: Some("sms".into()),
        text: Some(text.into()),
        audience: Some(Audience {
            all: true,
            ..Audience::default()
        }),
        ..NewCampaign::default()
    };
    let draft = app
        .db
        .write(|conn| create_campaign(conn, &app.ids, scope, mode, draft, now))
        .unwrap();
    let links = super::runner::links(app);
    let estimate = launch::estimate(&app.db, links, scope, &draft, now).unwrap();
    let launcher = Launcher {
        api_key_id: None,
        charging: Charging::Test,
    };
    app.db
        .write(|conn| {
            launch::launch(
                conn,
                &app.ids,
                &app.config.billing_catalog,
                (scope, mode),
                &draft.id,
                CampaignStatus::Draft,
                (launcher, "CRIER"),
                &estimate,
                now,
            )
        })
        .unwrap()
}
