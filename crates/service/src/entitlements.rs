//! Changing a project's policy: every user is evaluated under the old and the new rules,
//! and what a user loses is stopped (or disconnected) at once; a dry run answers what a
//! change would do without doing it.

use std::sync::Arc;

use plugboard_core::{
    AccessChange, CompiledPolicy, ConnectedUser, OutboxEvent, ProjectId, UserFilter, now_millis,
};
use serde::Serialize;
use serde_json::Value;

use crate::error::ServiceResult;
use crate::policy::{PolicyService, SECRET_MASK};
use crate::users::{UsersService, entitlement_payload};

/// Users read per page while a policy change is evaluated.
const PAGE: usize = 500;
/// Most affected users a dry run lists (all are counted).
pub const MAX_DRY_RUN_USERS: usize = 1000;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAccessChange {
    pub user_id: String,
    #[serde(flatten)]
    pub change: AccessChange,
}

/// What a policy change did, or would do.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyImpact {
    pub users_evaluated: u64,
    pub users_changed: u64,
    /// Users for whom a rule could not be evaluated (a missing key, a type error): the
    /// rule denies them.
    pub users_with_rule_errors: u64,
    /// Values of newly secret keys that were sealed.
    pub secret_values_sealed: u64,
    /// The changed users, up to [`MAX_DRY_RUN_USERS`].
    pub changes: Vec<UserAccessChange>,
    pub truncated: bool,
}

pub struct EntitlementsService {
    users: Arc<UsersService>,
    policy: Arc<PolicyService>,
    store: Arc<dyn plugboard_store::Store>,
}

impl EntitlementsService {
    pub fn new(
        store: Arc<dyn plugboard_store::Store>,
        users: Arc<UsersService>,
        policy: Arc<PolicyService>,
    ) -> Self {
        Self {
            users,
            policy,
            store,
        }
    }

    /// The project's policy document.
    pub async fn get(&self, project: ProjectId) -> ServiceResult<Value> {
        let compiled = self.policy.compiled(project).await?;
        Ok(serde_json::to_value(&compiled.policy).unwrap_or_default())
    }

    /// What replacing the policy with `document` would change, without changing it.
    pub async fn dry_run(
        &self,
        project: ProjectId,
        document: Value,
    ) -> ServiceResult<PolicyImpact> {
        let proposed = PolicyService::compile(document)?;
        let current = self.policy.compiled(project).await?;
        self.evaluate(project, &current, &proposed, false).await
    }

    /// Replaces the policy and applies it to every user: lost entitlements are stopped
    /// (or disconnected) and reported as `entitlement.changed`; values of keys that became
    /// secret are sealed. The walk over the users runs as a task of its own, so it ends
    /// even if the caller stops waiting (a request timeout on a large project).
    pub async fn replace(
        self: &Arc<Self>,
        project: ProjectId,
        document: Value,
    ) -> ServiceResult<PolicyImpact> {
        let proposed = PolicyService::compile(document)?;
        let current = self.policy.compiled(project).await?;
        let stored = serde_json::to_value(&proposed.policy).unwrap_or_default();
        self.store
            .put_project_policy(project, &stored, now_millis(), &[])
            .await
            .map_err(crate::projects::not_found_as(
                crate::ServiceError::ProjectNotFound,
            ))?;
        let proposed = Arc::new(proposed);
        self.policy.remember(project, proposed.clone());
        let this = self.clone();
        tokio::spawn(async move { this.evaluate(project, &current, &proposed, true).await })
            .await
            .map_err(|e| crate::ServiceError::Internal(format!("policy change: {e}")))?
    }

    async fn evaluate(
        &self,
        project: ProjectId,
        current: &CompiledPolicy,
        proposed: &CompiledPolicy,
        apply: bool,
    ) -> ServiceResult<PolicyImpact> {
        let mut impact = PolicyImpact::default();
        let mut before_seq = None;
        loop {
            let filter = UserFilter {
                limit: PAGE,
                before_seq,
                ..UserFilter::default()
            };
            let page = self.store.list_users(project, &filter).await?;
            let mut events = Vec::new();
            for user in &page.users {
                self.evaluate_user(user, current, proposed, apply, &mut impact, &mut events)
                    .await?;
            }
            if apply && !events.is_empty() {
                self.store.insert_events(&events).await?;
            }
            match page.next_before_seq {
                Some(next) if !page.users.is_empty() => before_seq = Some(next),
                _ => return Ok(impact),
            }
        }
    }

    async fn evaluate_user(
        &self,
        user: &ConnectedUser,
        current: &CompiledPolicy,
        proposed: &CompiledPolicy,
        apply: bool,
        impact: &mut PolicyImpact,
        events: &mut Vec<OutboxEvent>,
    ) -> ServiceResult<()> {
        impact.users_evaluated += 1;
        let after = proposed.access(&user.user_id, &user.meta);
        if !after.errors.is_empty() {
            impact.users_with_rule_errors += 1;
        }
        let change = current.access(&user.user_id, &user.meta).change_to(&after);
        let unsealed = proposed.policy.secret_metadata_keys.iter().any(|key| {
            user.meta
                .as_map()
                .get(key)
                .is_some_and(|v| !v.as_str().is_some_and(|s| s.starts_with(SECRET_MASK)))
        });
        if apply && unsealed {
            // Rewriting the metadata as it is seals the values of the newly secret keys.
            self.users
                .replace_meta(
                    user.project_id,
                    &user.user_id,
                    Value::Object(user.meta.as_map().clone()),
                )
                .await?;
            impact.secret_values_sealed += 1;
        }
        if change.is_empty() {
            return Ok(());
        }
        impact.users_changed += 1;
        if apply {
            events.push(OutboxEvent::new(
                user.project_id,
                "entitlement.changed",
                entitlement_payload(&user.user_id, &change, proposed.on_loss()),
                now_millis(),
            ));
            self.users
                .apply_access_change(user, &change, proposed.on_loss())
                .await?;
        }
        if impact.changes.len() < MAX_DRY_RUN_USERS {
            impact.changes.push(UserAccessChange {
                user_id: user.user_id.to_string(),
                change,
            });
        } else {
            impact.truncated = true;
        }
        Ok(())
    }
}
