//! `WorkspaceScope`: the right to act in one workspace. Workspace-scoped domain functions take
//! one instead of a bare workspace id, so a handler cannot reach into a workspace its caller was
//! not authenticated for by passing the wrong string.
//!
//! Scopes are minted in two places only (tests/it/layers.rs checks it): `auth`, from an
//! authenticated principal; and crier's own work on rows it already stores (the dispatcher, the
//! payments worker, the janitor, operator commands), whose workspace is the row's.

use crate::ids::WorkspaceId;

/// A workspace the holder may act in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceScope {
    workspace_id: WorkspaceId,
}

impl WorkspaceScope {
    /// A scope for `workspace_id`, vouched for by the caller. Only `auth` and crier's own
    /// background work and commands may call this.
    pub fn trusted(workspace_id: &WorkspaceId) -> WorkspaceScope {
        WorkspaceScope {
            workspace_id: workspace_id.clone(),
        }
    }

    pub fn id(&self) -> &WorkspaceId {
        &self.workspace_id
    }
}
