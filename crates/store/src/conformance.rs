//! Behaviour every [`Store`] implementation must show. Each backend's test suite calls
//! [`conformance_tests!`](crate::conformance_tests) with a factory for fresh, isolated stores.

use std::sync::Arc;

use plugboard_core::{
    AttemptRecord, AuditEntry, AuditFilter, ConnectLink, ConnectReport, ConnectSession,
    ConnectSessionStatus, Credential, CredentialConfiguration, CredentialStatus,
    CredentialWithConfigurations, DashboardPrincipal, DashboardSession, DeliveryAttempt,
    DeliveryNext, DeliveryStatus, EventFilter, Execution, ExecutionFilter, ExecutionStatus,
    ExecutionUpdate, IntegrationKey, Metadata, MetadataLimits, OutboxEvent, Project, ProjectId,
    ProjectIntegration, SealedColumn, SecretKeyRecord, SigningKeyRecord, UserFilter, UserId,
    WebhookDelivery, WebhookEndpoint, WorkflowVersion,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::{ConnectOutcome, CredentialSecretsWrite, LastSeen, MetadataWrite, Store, StoreError};

/// Generates one `#[tokio::test]` per check, each with a fresh store from `$factory`
/// (an async expression yielding `Arc<dyn Store>`).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            projects_round_trip,
            signing_keys_rotate_and_revoke,
            secret_keys_by_hash_and_revocation,
            ensure_user_creates_once,
            create_user_conflicts_when_present,
            metadata_write_is_optimistic,
            metadata_index_follows_writes,
            list_users_filters_and_pages,
            search_by_prefix_is_case_insensitive,
            pages_are_stable_under_inserts,
            suspend_and_resume,
            delete_user_erases_everything,
            last_seen_only_moves_forward,
            projects_are_isolated,
            concurrent_ensure_user_is_safe,
            integrations_upsert_list_and_get,
            credential_is_stored_with_its_default_configuration,
            one_user_may_connect_several_accounts,
            credentials_list_oldest_first,
            credentials_are_isolated_by_user_and_project,
            credential_secrets_update_is_optimistic,
            credential_status_changes,
            configuration_update_replaces_what_is_given,
            delete_credential_removes_its_configurations,
            delete_user_erases_credentials,
            refresh_lease_is_held_by_one_holder,
            concurrent_lease_acquisition_has_one_winner,
            connect_sessions_are_single_use_and_expire,
            connect_session_outcomes_are_found_by_client_id,
            concurrent_consumers_of_a_session_have_one_winner,
            connect_links_are_single_use,
            expired_connect_records_are_purged,
            sealed_values_list_and_replace,
            workflows_deploy_new_versions,
            executions_are_claimed_once_and_reclaimed_after_lease_expiry,
            per_user_limit_holds_back_busy_users,
            release_and_cancel,
            executions_filter_by_user_meta_workflow_and_status,
            step_journal_round_trip,
            connections_enqueue_in_their_transaction,
            concurrent_worker_writes_are_each_kept_or_refused,
            project_env_round_trip,
            concurrent_claims_never_share_an_execution,
            old_finished_executions_are_purged,
            users_filter_by_integration_and_credential_status,
            user_counts_follow_filters_up_to_a_cap,
            integration_usage_counts_users_and_enabled_workflows,
            projects_are_listed_oldest_first,
            dashboard_sessions_expire_and_end,
            user_changes_write_their_events,
            credential_changes_write_their_events,
            execution_release_writes_its_events,
            user_secrets_are_kept_unless_replaced,
            project_policy_round_trip,
            events_fan_out_once,
            deliveries_are_claimed_once_until_the_lease_expires,
            delivery_attempts_move_deliveries_on,
            failures_in_a_row_disable_the_endpoint,
            redelivery_resets_and_creates_deliveries,
            events_list_filters_and_pages,
            old_events_are_purged,
            webhook_endpoints_round_trip,
            webhook_secrets_are_resealable,
            audit_entries_filter_and_page,
            events_endpoints_and_audit_are_isolated_by_project,
            concurrent_delivery_claims_never_share_a_delivery,
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store: ::std::sync::Arc<dyn $crate::Store> = $factory.await;
                $crate::conformance::$name(store).await;
            }
        )*
    };
}

const T0: i64 = 1_700_000_000_000;

fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn meta(v: serde_json::Value) -> Metadata {
    Metadata::from_value(v, &MetadataLimits::default()).unwrap()
}

async fn new_project(store: &dyn Store, name: &str) -> ProjectId {
    let project = Project {
        id: ProjectId::new_random(),
        name: name.to_owned(),
        created_at: T0,
    };
    store.create_project(&project).await.unwrap();
    project.id
}

fn filter(limit: usize) -> UserFilter {
    UserFilter {
        limit,
        ..UserFilter::default()
    }
}

fn ids(page: &plugboard_core::UserPage) -> Vec<String> {
    page.users.iter().map(|u| u.user_id.to_string()).collect()
}

pub async fn projects_round_trip(store: Arc<dyn Store>) {
    let id = new_project(&*store, "acme").await;
    let got = store.get_project(id).await.unwrap().unwrap();
    assert_eq!(got.name, "acme");
    assert_eq!(got.created_at, T0);
    assert_eq!(
        store
            .find_project_by_name("acme")
            .await
            .unwrap()
            .unwrap()
            .id,
        id
    );
    assert!(store.find_project_by_name("nope").await.unwrap().is_none());
    assert!(
        store
            .get_project(ProjectId::new_random())
            .await
            .unwrap()
            .is_none()
    );
    store.ping().await.unwrap();
}

pub async fn signing_keys_rotate_and_revoke(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let key = |n: i64| SigningKeyRecord {
        id: Uuid::new_v4(),
        project_id: project,
        public_key_pem: format!("PEM-{n}"),
        created_at: T0 + n,
        revoked_at: None,
    };
    let (k1, k2) = (key(1), key(2));
    store.insert_signing_key(&k1).await.unwrap();
    store.insert_signing_key(&k2).await.unwrap();
    assert_eq!(
        store.list_signing_keys(project).await.unwrap(),
        vec![k1.clone(), k2.clone()]
    );
    store
        .revoke_signing_key(project, k1.id, T0 + 10)
        .await
        .unwrap();
    let keys = store.list_signing_keys(project).await.unwrap();
    assert_eq!(keys[0].revoked_at, Some(T0 + 10));
    assert_eq!(keys[1].revoked_at, None);
    assert!(matches!(
        store.revoke_signing_key(project, k1.id, T0 + 11).await,
        Err(StoreError::NotFound)
    ));
    let other = new_project(&*store, "other").await;
    assert!(matches!(
        store.revoke_signing_key(other, k2.id, T0).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.list_signing_keys(other).await.unwrap().is_empty());
}

pub async fn secret_keys_by_hash_and_revocation(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let record = SecretKeyRecord {
        id: Uuid::new_v4(),
        project_id: project,
        name: "backend".into(),
        prefix: "pb_sk_abcd".into(),
        hash: "h1".into(),
        created_at: T0,
        revoked_at: None,
    };
    store.insert_secret_key(&record).await.unwrap();
    assert_eq!(
        store.find_active_secret_key("h1").await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(store.find_active_secret_key("h2").await.unwrap(), None);
    let duplicate = SecretKeyRecord {
        id: Uuid::new_v4(),
        ..record.clone()
    };
    assert!(matches!(
        store.insert_secret_key(&duplicate).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .revoke_secret_key(project, record.id, T0 + 1)
        .await
        .unwrap();
    assert_eq!(store.find_active_secret_key("h1").await.unwrap(), None);
    let listed = store.list_secret_keys(project).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(T0 + 1));
}

pub async fn ensure_user_creates_once(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u-1");
    assert!(store.get_user(project, &user).await.unwrap().is_none());
    let first = store.ensure_user(project, &user, T0, None).await.unwrap();
    assert_eq!(first.created_at, T0);
    assert_eq!(first.meta, Metadata::default());
    assert!(!first.suspended);
    let again = store
        .ensure_user(project, &user, T0 + 5, None)
        .await
        .unwrap();
    assert_eq!(again.created_at, T0);
    assert_eq!(again.seq, first.seq);
    assert_eq!(store.get_user(project, &user).await.unwrap(), Some(first));
}

pub async fn create_user_conflicts_when_present(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    let created = store
        .create_user(
            project,
            &user,
            &meta(json!({"Email": "a@b.c"})),
            None,
            T0,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(created.meta.get_str("Email"), Some("a@b.c"));
    assert!(matches!(
        store
            .create_user(project, &user, &Metadata::default(), None, T0, &[])
            .await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn metadata_write_is_optimistic(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    let v0 = store.ensure_user(project, &user, T0, None).await.unwrap();
    let m1 = meta(json!({"plan": "pro", "nested": {"a": [1, 2, {"b": null}]}}));
    let v1 = store
        .write_metadata(MetadataWrite {
            project_id: project,
            user_id: &user,
            meta: &m1,
            expected_version: v0.version,
            now: T0 + 1,
            secrets_sealed: None,
            events: &[],
        })
        .await
        .unwrap();
    assert_eq!(v1.meta, m1);
    assert_eq!(v1.updated_at, T0 + 1);
    assert_ne!(v1.version, v0.version);
    let stale = store
        .write_metadata(MetadataWrite {
            project_id: project,
            user_id: &user,
            meta: &meta(json!({"plan": "free"})),
            expected_version: v0.version,
            now: T0 + 2,
            secrets_sealed: None,
            events: &[],
        })
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))));
    let stored = store.get_user(project, &user).await.unwrap().unwrap();
    assert_eq!(stored.meta, m1);
    let missing = store
        .write_metadata(MetadataWrite {
            project_id: project,
            user_id: &uid("ghost"),
            meta: &m1,
            expected_version: 0,
            now: T0,
            secrets_sealed: None,
            events: &[],
        })
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

async fn set_meta(store: &dyn Store, project: ProjectId, user: &UserId, m: serde_json::Value) {
    let current = store.ensure_user(project, user, T0, None).await.unwrap();
    store
        .write_metadata(MetadataWrite {
            project_id: project,
            user_id: user,
            meta: &meta(m),
            expected_version: current.version,
            now: T0 + 1,
            secrets_sealed: None,
            events: &[],
        })
        .await
        .unwrap();
}

fn meta_filter(pairs: &[(&str, &str)]) -> UserFilter {
    UserFilter {
        meta: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        limit: 50,
        ..UserFilter::default()
    }
}

pub async fn metadata_index_follows_writes(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("john");
    set_meta(
        &*store,
        project,
        &user,
        json!({"Email": "john@bookface.com", "seats": 5, "beta": true}),
    )
    .await;
    let found = store
        .list_users(project, &meta_filter(&[("Email", "john@bookface.com")]))
        .await
        .unwrap();
    assert_eq!(ids(&found), vec!["john"]);
    for (k, v) in [("seats", "5"), ("beta", "true")] {
        let page = store
            .list_users(project, &meta_filter(&[(k, v)]))
            .await
            .unwrap();
        assert_eq!(ids(&page), vec!["john"], "{k}={v}");
    }
    set_meta(&*store, project, &user, json!({"Email": "john@new.com"})).await;
    let old = store
        .list_users(project, &meta_filter(&[("Email", "john@bookface.com")]))
        .await
        .unwrap();
    assert!(old.users.is_empty(), "the old value must leave the index");
    assert!(
        store
            .list_users(project, &meta_filter(&[("seats", "5")]))
            .await
            .unwrap()
            .users
            .is_empty()
    );
    let new = store
        .list_users(project, &meta_filter(&[("Email", "john@new.com")]))
        .await
        .unwrap();
    assert_eq!(ids(&new), vec!["john"]);
    // Exact match: case and whole value matter.
    assert!(
        store
            .list_users(project, &meta_filter(&[("Email", "JOHN@new.com")]))
            .await
            .unwrap()
            .users
            .is_empty()
    );
    assert!(
        store
            .list_users(project, &meta_filter(&[("email", "john@new.com")]))
            .await
            .unwrap()
            .users
            .is_empty()
    );
}

pub async fn list_users_filters_and_pages(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    for i in 0..25 {
        let plan = if i % 2 == 0 { "pro" } else { "free" };
        let region = if i % 3 == 0 { "eu" } else { "us" };
        set_meta(
            &*store,
            project,
            &uid(&format!("u{i:02}")),
            json!({"plan": plan, "region": region}),
        )
        .await;
    }
    // Newest first, all of them across pages.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_users(
                project,
                &UserFilter {
                    limit: 7,
                    before_seq: before,
                    ..filter(7)
                },
            )
            .await
            .unwrap();
        seen.extend(ids(&page));
        match page.next_before_seq {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("u{i:02}")).collect();
    assert_eq!(seen, expected);

    // AND of two metadata filters, paged.
    let both = meta_filter(&[("plan", "pro"), ("region", "eu")]);
    let expected: Vec<String> = (0..25)
        .rev()
        .filter(|i| i % 2 == 0 && i % 3 == 0)
        .map(|i| format!("u{i:02}"))
        .collect();
    let first = store
        .list_users(
            project,
            &UserFilter {
                limit: 2,
                ..both.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&first), expected[..2]);
    let rest = store
        .list_users(
            project,
            &UserFilter {
                limit: 50,
                before_seq: first.next_before_seq,
                ..both
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&rest), expected[2..]);
    assert_eq!(rest.next_before_seq, None);

    // Suspended filter.
    store
        .set_suspended(project, &uid("u03"), true, T0, &[])
        .await
        .unwrap();
    let suspended = store
        .list_users(
            project,
            &UserFilter {
                suspended: Some(true),
                ..filter(50)
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&suspended), vec!["u03"]);
    let active = store
        .list_users(
            project,
            &UserFilter {
                suspended: Some(false),
                ..filter(50)
            },
        )
        .await
        .unwrap();
    assert_eq!(active.users.len(), 24);
    let suspended_pro = store
        .list_users(
            project,
            &UserFilter {
                suspended: Some(true),
                ..meta_filter(&[("plan", "pro")])
            },
        )
        .await
        .unwrap();
    assert!(suspended_pro.users.is_empty());
}

pub async fn search_by_prefix_is_case_insensitive(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    set_meta(
        &*store,
        project,
        &uid("acct-1"),
        json!({"Name": "John Smith", "Email": "js@bookface.com"}),
    )
    .await;
    set_meta(
        &*store,
        project,
        &uid("acct-2"),
        json!({"Name": "Jane Doe", "Email": "JOHN.d@other.io"}),
    )
    .await;
    set_meta(&*store, project, &uid("Johnny"), json!({})).await;
    set_meta(&*store, project, &uid("ünïcode"), json!({"Name": "Ünal"})).await;
    let q = |s: &str| UserFilter {
        q: Some(s.to_owned()),
        ..filter(50)
    };
    assert_eq!(
        ids(&store.list_users(project, &q("john")).await.unwrap()),
        vec!["Johnny", "acct-2", "acct-1"]
    );
    assert_eq!(
        ids(&store.list_users(project, &q("ACCT-")).await.unwrap()),
        vec!["acct-2", "acct-1"]
    );
    assert_eq!(
        ids(&store.list_users(project, &q("js@")).await.unwrap()),
        vec!["acct-1"]
    );
    assert_eq!(
        ids(&store.list_users(project, &q("ün")).await.unwrap()),
        vec!["ünïcode"]
    );
    assert!(
        store
            .list_users(project, &q("smith"))
            .await
            .unwrap()
            .users
            .is_empty()
    );
    // LIKE wildcards are plain characters here.
    assert!(
        store
            .list_users(project, &q("%"))
            .await
            .unwrap()
            .users
            .is_empty()
    );
    assert!(
        store
            .list_users(project, &q("_"))
            .await
            .unwrap()
            .users
            .is_empty()
    );
    let paged = store
        .list_users(project, &UserFilter { limit: 1, ..q("j") })
        .await
        .unwrap();
    assert_eq!(ids(&paged), vec!["Johnny"]);
    let next = store
        .list_users(
            project,
            &UserFilter {
                before_seq: paged.next_before_seq,
                ..q("j")
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&next), vec!["acct-2", "acct-1"]);
}

pub async fn pages_are_stable_under_inserts(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    for i in 0..6 {
        store
            .ensure_user(project, &uid(&format!("a{i}")), T0, None)
            .await
            .unwrap();
    }
    let first = store.list_users(project, &filter(3)).await.unwrap();
    assert_eq!(ids(&first), vec!["a5", "a4", "a3"]);
    for i in 0..3 {
        store
            .ensure_user(project, &uid(&format!("b{i}")), T0, None)
            .await
            .unwrap();
    }
    let second = store
        .list_users(
            project,
            &UserFilter {
                before_seq: first.next_before_seq,
                ..filter(3)
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&second), vec!["a2", "a1", "a0"]);
}

pub async fn suspend_and_resume(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    set_meta(&*store, project, &user, json!({"keep": "me"})).await;
    let s = store
        .set_suspended(project, &user, true, T0 + 9, &[])
        .await
        .unwrap();
    assert!(s.suspended);
    assert_eq!(s.meta.get_str("keep"), Some("me"));
    let r = store
        .set_suspended(project, &user, false, T0 + 10, &[])
        .await
        .unwrap();
    assert!(!r.suspended);
    assert!(matches!(
        store
            .set_suspended(project, &uid("ghost"), true, T0, &[])
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn delete_user_erases_everything(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("gone");
    set_meta(
        &*store,
        project,
        &user,
        json!({"Email": "g@x.io", "n": 1, "deep": {"x": 1}}),
    )
    .await;
    let counts = store.delete_user(project, &user, &[]).await.unwrap();
    assert_eq!(counts.users, 1);
    assert_eq!(counts.metadata_index_entries, 2);
    assert_eq!((counts.credentials, counts.configurations), (0, 0));
    assert!(store.get_user(project, &user).await.unwrap().is_none());
    assert!(
        store
            .list_users(project, &meta_filter(&[("Email", "g@x.io")]))
            .await
            .unwrap()
            .users
            .is_empty()
    );
    assert!(matches!(
        store.delete_user(project, &user, &[]).await,
        Err(StoreError::NotFound)
    ));
    // The id can be reused afterwards, as a new user.
    let again = store
        .ensure_user(project, &user, T0 + 100, None)
        .await
        .unwrap();
    assert_eq!(again.created_at, T0 + 100);
    assert_eq!(again.meta, Metadata::default());
}

pub async fn last_seen_only_moves_forward(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let (a, b) = (uid("a"), uid("b"));
    store.ensure_user(project, &a, T0, None).await.unwrap();
    store.ensure_user(project, &b, T0, None).await.unwrap();
    let seen = |user: &UserId, at| LastSeen {
        project_id: project,
        user_id: user.clone(),
        at,
    };
    store
        .record_last_seen(&[
            seen(&a, T0 + 50),
            seen(&b, T0 + 20),
            seen(&uid("ghost"), T0),
        ])
        .await
        .unwrap();
    store.record_last_seen(&[seen(&a, T0 + 10)]).await.unwrap();
    store.record_last_seen(&[]).await.unwrap();
    assert_eq!(
        store
            .get_user(project, &a)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        Some(T0 + 50)
    );
    assert_eq!(
        store
            .get_user(project, &b)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        Some(T0 + 20)
    );
}

pub async fn projects_are_isolated(store: Arc<dyn Store>) {
    let p1 = new_project(&*store, "one").await;
    let p2 = new_project(&*store, "two").await;
    let user = uid("same-id");
    set_meta(&*store, p1, &user, json!({"Email": "x@y.z"})).await;
    assert!(store.get_user(p2, &user).await.unwrap().is_none());
    assert!(
        store
            .list_users(p2, &filter(50))
            .await
            .unwrap()
            .users
            .is_empty()
    );
    assert!(
        store
            .list_users(p2, &meta_filter(&[("Email", "x@y.z")]))
            .await
            .unwrap()
            .users
            .is_empty()
    );
    let q = UserFilter {
        q: Some("same".into()),
        ..filter(50)
    };
    assert!(store.list_users(p2, &q).await.unwrap().users.is_empty());
    assert!(matches!(
        store.delete_user(p2, &user, &[]).await,
        Err(StoreError::NotFound)
    ));
    // The same id in another project is a different user.
    let other = store.ensure_user(p2, &user, T0, None).await.unwrap();
    assert_eq!(other.meta, Metadata::default());
    assert_eq!(
        store
            .get_user(p1, &user)
            .await
            .unwrap()
            .unwrap()
            .meta
            .get_str("Email"),
        Some("x@y.z")
    );
}

pub async fn concurrent_ensure_user_is_safe(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let user = uid(&format!("u{}", i % 4));
                store
                    .ensure_user(project, &user, T0, None)
                    .await
                    .unwrap()
                    .seq
            })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    assert_eq!(
        store
            .list_users(project, &filter(50))
            .await
            .unwrap()
            .users
            .len(),
        4
    );
}

fn key(s: &str) -> IntegrationKey {
    IntegrationKey::parse(s).unwrap()
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn integration(project: ProjectId, k: &str) -> ProjectIntegration {
    ProjectIntegration {
        id: Uuid::new_v4(),
        project_id: project,
        key: key(k),
        oauth_client_id: Some(format!("client-{k}")),
        oauth_client_secret_sealed: Some(format!("sealed-{k}")),
        scopes: Some(vec!["read".into(), "write".into()]),
        active: true,
        custom_spec: None,
        created_at: T0,
        updated_at: T0,
    }
}

async fn new_integration(store: &dyn Store, project: ProjectId, k: &str) -> ProjectIntegration {
    store
        .upsert_project_integration(&integration(project, k))
        .await
        .unwrap()
}

/// A credential of `user` for `integration`, created at `at`, with its default
/// configuration.
fn credential(
    project: ProjectId,
    user: &UserId,
    integration: Uuid,
    at: i64,
) -> (Credential, CredentialConfiguration) {
    let id = Uuid::new_v4();
    let credential = Credential {
        id,
        project_id: project,
        user_id: user.clone(),
        integration_id: integration,
        status: CredentialStatus::Valid,
        provider_id: Some("org-1".into()),
        provider_data: object(json!({"instanceUrl": "https://x.example", "n": 1})),
        secrets_sealed: format!("sealed-secrets-{id}"),
        expires_at: Some(at + 3_600_000),
        refresh_failure_count: 0,
        external_id: None,
        created_at: at,
        updated_at: at,
        refreshed_at: None,
        version: 1,
    };
    let configuration = CredentialConfiguration {
        id: Uuid::new_v4(),
        credential_id: id,
        is_default: true,
        workflow_settings: object(json!({"wf-1": {"enabled": true}})),
        shared_settings: object(json!({"channel": "#general"})),
        external_id: None,
        created_at: at,
        updated_at: at,
    };
    (credential, configuration)
}

/// Ensures `user` exists and connects a new credential for it.
async fn connect(
    store: &dyn Store,
    project: ProjectId,
    user: &UserId,
    integration: Uuid,
    at: i64,
) -> CredentialWithConfigurations {
    store.ensure_user(project, user, T0, None).await.unwrap();
    let (credential, configuration) = credential(project, user, integration, at);
    store
        .insert_credential(&credential, &configuration, &[], &[])
        .await
        .unwrap();
    CredentialWithConfigurations {
        credential,
        configurations: vec![configuration],
    }
}

fn credential_ids(list: &[CredentialWithConfigurations]) -> Vec<Uuid> {
    list.iter().map(|c| c.credential.id).collect()
}

pub async fn integrations_upsert_list_and_get(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let salesforce = integration(project, "salesforce");
    assert_eq!(
        store.upsert_project_integration(&salesforce).await.unwrap(),
        salesforce
    );
    let hubspot = new_integration(&*store, project, "hubspot").await;
    let custom = store
        .upsert_project_integration(&ProjectIntegration {
            scopes: None,
            oauth_client_id: None,
            oauth_client_secret_sealed: None,
            custom_spec: Some(r#"{"key":"custom.my-app"}"#.into()),
            ..integration(project, "custom.my-app")
        })
        .await
        .unwrap();
    assert_eq!(custom.scopes, None);
    assert_eq!(
        custom.custom_spec.as_deref(),
        Some(r#"{"key":"custom.my-app"}"#)
    );
    assert_eq!(
        store.list_project_integrations(project).await.unwrap(),
        vec![custom.clone(), hubspot.clone(), salesforce.clone()]
    );

    // A second upsert of the same key updates in place: same id, same creation time.
    let updated = store
        .upsert_project_integration(&ProjectIntegration {
            id: Uuid::new_v4(),
            oauth_client_id: Some("client-2".into()),
            oauth_client_secret_sealed: Some("sealed-2".into()),
            scopes: Some(vec!["api".into()]),
            active: false,
            created_at: T0 + 50,
            updated_at: T0 + 50,
            ..salesforce.clone()
        })
        .await
        .unwrap();
    let expected = ProjectIntegration {
        oauth_client_id: Some("client-2".into()),
        oauth_client_secret_sealed: Some("sealed-2".into()),
        scopes: Some(vec!["api".into()]),
        active: false,
        updated_at: T0 + 50,
        ..salesforce.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(
        store
            .get_project_integration(project, &key("salesforce"))
            .await
            .unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store
            .get_project_integration_by_id(project, salesforce.id)
            .await
            .unwrap(),
        Some(expected)
    );
    assert_eq!(
        store
            .list_project_integrations(project)
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(
        store
            .get_project_integration(project, &key("slack"))
            .await
            .unwrap()
            .is_none()
    );

    // Another project sees none of them, and may use the same keys.
    let other = new_project(&*store, "other").await;
    assert!(
        store
            .list_project_integrations(other)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .get_project_integration(other, &key("salesforce"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_project_integration_by_id(other, salesforce.id)
            .await
            .unwrap()
            .is_none()
    );
    let theirs = new_integration(&*store, other, "salesforce").await;
    assert_ne!(theirs.id, salesforce.id);

    // An id belongs to one integration.
    let reused_id = ProjectIntegration {
        id: hubspot.id,
        ..integration(project, "slack")
    };
    assert!(matches!(
        store.upsert_project_integration(&reused_id).await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn credential_is_stored_with_its_default_configuration(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let connected = connect(&*store, project, &user, slack.id, T0 + 1).await;
    assert_eq!(
        store
            .get_credential(project, &user, connected.credential.id)
            .await
            .unwrap(),
        Some(connected.clone())
    );
    assert_eq!(
        store.list_credentials(project, &user).await.unwrap(),
        vec![connected.clone()]
    );

    // The user must exist; the integration must be one of the project's.
    let (orphan, orphan_cf) = credential(project, &uid("ghost"), slack.id, T0);
    assert!(matches!(
        store.insert_credential(&orphan, &orphan_cf, &[], &[]).await,
        Err(StoreError::NotFound)
    ));
    let other = new_project(&*store, "other").await;
    let foreign = new_integration(&*store, other, "slack").await;
    let (wrong, wrong_cf) = credential(project, &user, foreign.id, T0);
    assert!(matches!(
        store.insert_credential(&wrong, &wrong_cf, &[], &[]).await,
        Err(StoreError::NotFound)
    ));
    let (unknown, unknown_cf) = credential(project, &user, Uuid::new_v4(), T0);
    assert!(matches!(
        store
            .insert_credential(&unknown, &unknown_cf, &[], &[])
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.list_credentials(project, &user).await.unwrap().len(),
        1
    );

    // Ids are unique, and so is a user's external id for a credential.
    let (mut dup, dup_cf) = credential(project, &user, slack.id, T0);
    dup.id = connected.credential.id;
    let dup_cf = CredentialConfiguration {
        credential_id: dup.id,
        ..dup_cf
    };
    assert!(matches!(
        store.insert_credential(&dup, &dup_cf, &[], &[]).await,
        Err(StoreError::Conflict(_))
    ));
    let with_external = |user: &UserId| {
        let (mut c, cf) = credential(project, user, slack.id, T0 + 2);
        c.external_id = Some("ext-1".into());
        (c, cf)
    };
    let (first, first_cf) = with_external(&user);
    store
        .insert_credential(&first, &first_cf, &[], &[])
        .await
        .unwrap();
    let (second, second_cf) = with_external(&user);
    assert!(matches!(
        store.insert_credential(&second, &second_cf, &[], &[]).await,
        Err(StoreError::Conflict(_))
    ));
    let other_user = uid("v");
    store
        .ensure_user(project, &other_user, T0, None)
        .await
        .unwrap();
    let (theirs, theirs_cf) = with_external(&other_user);
    store
        .insert_credential(&theirs, &theirs_cf, &[], &[])
        .await
        .unwrap();
    let listed = store.list_credentials(project, &user).await.unwrap();
    assert_eq!(
        credential_ids(&listed),
        vec![connected.credential.id, first.id]
    );
    assert_eq!(listed[1].credential.external_id.as_deref(), Some("ext-1"));
}

pub async fn one_user_may_connect_several_accounts(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let first = connect(&*store, project, &user, slack.id, T0 + 1).await;
    let mut second_pair = credential(project, &user, slack.id, T0 + 2);
    second_pair.0.provider_id = Some("org-2".into());
    store
        .insert_credential(&second_pair.0, &second_pair.1, &[], &[])
        .await
        .unwrap();
    let listed = store.list_credentials(project, &user).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], first);
    assert_eq!(listed[1].credential, second_pair.0);
    assert_eq!(listed[1].configurations, vec![second_pair.1]);
    for c in &listed {
        assert_eq!(c.credential.integration_id, slack.id);
        assert_eq!(c.configurations.len(), 1);
        assert!(c.configurations[0].is_default);
        assert_eq!(c.configurations[0].credential_id, c.credential.id);
    }
}

pub async fn credentials_list_oldest_first(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let hubspot = new_integration(&*store, project, "hubspot").await;
    let user = uid("u");
    let mut expected = Vec::new();
    for (integration, at) in [
        (slack.id, T0 + 30),
        (hubspot.id, T0 + 10),
        (slack.id, T0 + 20),
        (hubspot.id, T0 + 20),
        (slack.id, T0 + 20),
    ] {
        let c = connect(&*store, project, &user, integration, at).await;
        expected.push((c.credential.created_at, c.credential.id));
    }
    expected.sort();
    let listed = store.list_credentials(project, &user).await.unwrap();
    assert_eq!(
        credential_ids(&listed),
        expected.iter().map(|(_, id)| *id).collect::<Vec<_>>()
    );
    assert!(listed.iter().all(|c| c.configurations.len() == 1));
    assert!(
        store
            .list_credentials(project, &uid("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn credentials_are_isolated_by_user_and_project(store: Arc<dyn Store>) {
    let p1 = new_project(&*store, "one").await;
    let p2 = new_project(&*store, "two").await;
    let slack = new_integration(&*store, p1, "slack").await;
    new_integration(&*store, p2, "slack").await;
    let (a, b) = (uid("a"), uid("b"));
    let mine = connect(&*store, p1, &a, slack.id, T0).await;
    let id = mine.credential.id;
    let configuration = mine.configurations[0].id;
    store.ensure_user(p1, &b, T0, None).await.unwrap();
    store.ensure_user(p2, &a, T0, None).await.unwrap();

    // Another user of the same project.
    assert!(store.get_credential(p1, &b, id).await.unwrap().is_none());
    assert!(store.list_credentials(p1, &b).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_credential(p1, &b, id, &[]).await,
        Err(StoreError::NotFound)
    ));
    // The same user id in another project.
    assert!(store.get_credential(p2, &a, id).await.unwrap().is_none());
    assert!(store.list_credentials(p2, &a).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_credential(p2, &a, id, &[]).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .set_credential_status(p2, id, CredentialStatus::Invalid, 1, T0, &[])
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .update_credential_secrets(CredentialSecretsWrite {
                project_id: p2,
                credential_id: id,
                secrets_sealed: "stolen",
                expires_at: None,
                refreshed_at: None,
                expected_version: mine.credential.version,
                now: T0,
            })
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .update_configuration(
                p2,
                id,
                configuration,
                Some(object(json!({"x": 1}))),
                None,
                T0,
                &[],
                &[],
            )
            .await,
        Err(StoreError::NotFound)
    ));
    // Nothing changed for the owner.
    assert_eq!(store.get_credential(p1, &a, id).await.unwrap(), Some(mine));
}

pub async fn credential_secrets_update_is_optimistic(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let connected = connect(&*store, project, &user, slack.id, T0).await;
    let id = connected.credential.id;
    let failing = store
        .set_credential_status(project, id, CredentialStatus::Invalid, 3, T0 + 1, &[])
        .await
        .unwrap();
    let write = |secrets: &'static str, expected_version: i64, now: i64| CredentialSecretsWrite {
        project_id: project,
        credential_id: id,
        secrets_sealed: secrets,
        expires_at: Some(now + 3_600_000),
        refreshed_at: Some(now),
        expected_version,
        now,
    };
    let refreshed = store
        .update_credential_secrets(write("sealed-v2", failing.version, T0 + 10))
        .await
        .unwrap();
    assert_eq!(
        refreshed,
        Credential {
            secrets_sealed: "sealed-v2".into(),
            expires_at: Some(T0 + 10 + 3_600_000),
            refreshed_at: Some(T0 + 10),
            status: CredentialStatus::Valid,
            refresh_failure_count: 0,
            updated_at: T0 + 10,
            version: refreshed.version,
            ..connected.credential.clone()
        }
    );
    assert!(refreshed.version > failing.version);

    // A writer that read the credential before the refresh loses.
    let stale = store
        .update_credential_secrets(write("sealed-stale", failing.version, T0 + 20))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    let stored = store
        .get_credential(project, &user, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.credential, refreshed);
    assert_eq!(stored.configurations, connected.configurations);

    let missing = store
        .update_credential_secrets(CredentialSecretsWrite {
            credential_id: Uuid::new_v4(),
            ..write("sealed-x", refreshed.version, T0 + 30)
        })
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

pub async fn credential_status_changes(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let connected = connect(&*store, project, &user, slack.id, T0).await;
    let id = connected.credential.id;
    let mut version = connected.credential.version;
    for (status, failures, at) in [
        (CredentialStatus::Pending, 0, T0 + 1),
        (CredentialStatus::Valid, 2, T0 + 2),
        (CredentialStatus::Invalid, 5, T0 + 3),
    ] {
        let changed = store
            .set_credential_status(project, id, status, failures, at, &[])
            .await
            .unwrap();
        assert_eq!(changed.status, status);
        assert_eq!(changed.refresh_failure_count, failures);
        assert_eq!(changed.updated_at, at);
        assert!(changed.version > version);
        version = changed.version;
        assert_eq!(changed.secrets_sealed, connected.credential.secrets_sealed);
        let stored = store
            .get_credential(project, &user, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.credential, changed);
    }
    assert!(matches!(
        store
            .set_credential_status(project, Uuid::new_v4(), CredentialStatus::Valid, 0, T0, &[])
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn configuration_update_replaces_what_is_given(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let connected = connect(&*store, project, &user, slack.id, T0).await;
    let other = connect(&*store, project, &user, slack.id, T0 + 1).await;
    let id = connected.credential.id;
    let original = connected.configurations[0].clone();

    let workflows = object(json!({"wf-2": {"enabled": false, "inputs": [1, "two"]}}));
    let updated = store
        .update_configuration(
            project,
            id,
            original.id,
            Some(workflows.clone()),
            None,
            T0 + 5,
            &[],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        updated,
        CredentialConfiguration {
            workflow_settings: workflows.clone(),
            updated_at: T0 + 5,
            ..original.clone()
        }
    );
    let shared = object(json!({"channel": "#ops", "nested": {"a": null}}));
    let updated = store
        .update_configuration(
            project,
            id,
            original.id,
            None,
            Some(shared.clone()),
            T0 + 6,
            &[],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(updated.workflow_settings, workflows);
    assert_eq!(updated.shared_settings, shared);
    let emptied = store
        .update_configuration(
            project,
            id,
            original.id,
            Some(Map::new()),
            Some(Map::new()),
            T0 + 7,
            &[],
            &[],
        )
        .await
        .unwrap();
    assert!(emptied.workflow_settings.is_empty() && emptied.shared_settings.is_empty());
    assert_eq!(
        store
            .get_credential(project, &user, id)
            .await
            .unwrap()
            .unwrap()
            .configurations,
        vec![emptied]
    );
    // The configuration must be the named credential's.
    assert!(matches!(
        store
            .update_configuration(
                project,
                other.credential.id,
                original.id,
                None,
                None,
                T0,
                &[],
                &[],
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .update_configuration(project, id, Uuid::new_v4(), None, None, T0, &[], &[])
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .get_credential(project, &user, other.credential.id)
            .await
            .unwrap(),
        Some(other)
    );
}

pub async fn delete_credential_removes_its_configurations(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let gone = connect(&*store, project, &user, slack.id, T0).await;
    let kept = connect(&*store, project, &user, slack.id, T0 + 1).await;
    let id = gone.credential.id;
    assert_eq!(
        store
            .delete_credential(project, &user, id, &[])
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .get_credential(project, &user, id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.list_credentials(project, &user).await.unwrap(),
        vec![kept]
    );
    assert!(matches!(
        store
            .update_configuration(
                project,
                id,
                gone.configurations[0].id,
                None,
                None,
                T0,
                &[],
                &[]
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_credential(project, &user, id, &[]).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        !store
            .try_acquire_refresh_lease(id, "h", T0, T0 + 10)
            .await
            .unwrap()
    );
    // The user may connect again.
    let (again, again_cf) = credential(project, &user, slack.id, T0 + 2);
    store
        .insert_credential(&again, &again_cf, &[], &[])
        .await
        .unwrap();
    assert_eq!(
        store.list_credentials(project, &user).await.unwrap().len(),
        2
    );
}

pub async fn delete_user_erases_credentials(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let hubspot = new_integration(&*store, project, "hubspot").await;
    let (gone, kept) = (uid("gone"), uid("kept"));
    set_meta(&*store, project, &gone, json!({"Email": "g@x.io"})).await;
    let first = connect(&*store, project, &gone, slack.id, T0).await;
    connect(&*store, project, &gone, hubspot.id, T0 + 1).await;
    let theirs = connect(&*store, project, &kept, slack.id, T0).await;
    let counts = store.delete_user(project, &gone, &[]).await.unwrap();
    assert_eq!(counts.users, 1);
    assert_eq!(counts.metadata_index_entries, 1);
    assert_eq!(counts.credentials, 2);
    assert_eq!(counts.configurations, 2);
    // A new user with the same id starts with no credentials.
    store
        .ensure_user(project, &gone, T0 + 100, None)
        .await
        .unwrap();
    assert!(
        store
            .list_credentials(project, &gone)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .get_credential(project, &gone, first.credential.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store
            .set_credential_status(
                project,
                first.credential.id,
                CredentialStatus::Valid,
                0,
                T0,
                &[]
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.list_credentials(project, &kept).await.unwrap(),
        vec![theirs]
    );
    // The integrations stay: they are the project's.
    assert_eq!(
        store
            .list_project_integrations(project)
            .await
            .unwrap()
            .len(),
        2
    );
}

pub async fn refresh_lease_is_held_by_one_holder(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let id = connect(&*store, project, &user, slack.id, T0)
        .await
        .credential
        .id;
    let other = connect(&*store, project, &user, slack.id, T0 + 1)
        .await
        .credential
        .id;
    let acquire = |holder: &'static str, now: i64, until: i64| {
        let store = store.clone();
        async move {
            store
                .try_acquire_refresh_lease(id, holder, now, until)
                .await
                .unwrap()
        }
    };
    assert!(acquire("a", T0, T0 + 100).await);
    assert!(!acquire("b", T0 + 50, T0 + 150).await, "a holds it");
    // Leases are per credential.
    assert!(
        store
            .try_acquire_refresh_lease(other, "b", T0 + 50, T0 + 150)
            .await
            .unwrap()
    );
    // The holder may extend its lease.
    assert!(acquire("a", T0 + 60, T0 + 200).await);
    assert!(!acquire("b", T0 + 150, T0 + 250).await, "a extended it");
    // An expired lease is up for grabs.
    assert!(acquire("b", T0 + 201, T0 + 300).await);
    assert!(!acquire("a", T0 + 210, T0 + 300).await, "b holds it now");
    // Only the holder can release.
    store.release_refresh_lease(id, "a").await.unwrap();
    assert!(!acquire("c", T0 + 220, T0 + 300).await, "b still holds it");
    store.release_refresh_lease(id, "b").await.unwrap();
    assert!(acquire("c", T0 + 220, T0 + 300).await);
    // Leases are not credential writes.
    let stored = store
        .get_credential(project, &user, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.credential.version, 1);
    assert!(
        !store
            .try_acquire_refresh_lease(Uuid::new_v4(), "a", T0, T0 + 10)
            .await
            .unwrap()
    );
    store
        .release_refresh_lease(Uuid::new_v4(), "a")
        .await
        .unwrap();
}

pub async fn concurrent_lease_acquisition_has_one_winner(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let id = connect(&*store, project, &user, slack.id, T0)
        .await
        .credential
        .id;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .try_acquire_refresh_lease(id, &format!("holder-{i}"), T0, T0 + 30_000)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in futures::future::join_all(tasks).await {
        if task.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

fn session(
    project: ProjectId,
    user: &UserId,
    integration: Uuid,
    sid: &str,
    at: i64,
) -> ConnectSession {
    ConnectSession {
        id: Uuid::new_v4(),
        project_id: project,
        user_id: user.clone(),
        integration_id: integration,
        client_session_id: Some(sid.to_owned()),
        secrets_sealed: "sealed-verifier".into(),
        origin: Some("https://app.example".into()),
        options: object(json!({"allowMultipleCredentials": true})),
        status: ConnectSessionStatus::Pending,
        credential_id: None,
        error_code: None,
        error_message: None,
        created_at: at,
        expires_at: at + 600_000,
        consumed_at: None,
        finished_at: None,
        reported_by: None,
    }
}

pub async fn connect_sessions_are_single_use_and_expire(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let missing = session(project, &user, slack.id, "s", T0);
    assert!(
        matches!(
            store.insert_connect_session(&missing).await,
            Err(StoreError::NotFound)
        ),
        "the user must exist"
    );
    store.ensure_user(project, &user, T0, None).await.unwrap();
    let s = session(project, &user, slack.id, "s", T0);
    store.insert_connect_session(&s).await.unwrap();
    let taken = store
        .consume_connect_session(s.id, T0 + 1)
        .await
        .unwrap()
        .expect("first use works");
    assert_eq!(taken.consumed_at, Some(T0 + 1));
    assert_eq!(
        ConnectSession {
            consumed_at: None,
            finished_at: None,
            reported_by: None,
            ..taken
        },
        s
    );
    assert_eq!(
        store.consume_connect_session(s.id, T0 + 2).await.unwrap(),
        None
    );

    let late = session(project, &user, slack.id, "late", T0);
    store.insert_connect_session(&late).await.unwrap();
    assert_eq!(
        store
            .consume_connect_session(late.id, late.expires_at)
            .await
            .unwrap(),
        None,
        "an expired session cannot be used"
    );
    assert_eq!(
        store
            .consume_connect_session(Uuid::new_v4(), T0)
            .await
            .unwrap(),
        None
    );
    // Another project's integration cannot be named.
    let other = new_project(&*store, "q").await;
    let foreign = new_integration(&*store, other, "slack").await;
    assert!(matches!(
        store
            .insert_connect_session(&session(project, &user, foreign.id, "x", T0))
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn connect_session_outcomes_are_found_by_client_id(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let other_user = uid("v");
    store.ensure_user(project, &user, T0, None).await.unwrap();
    store
        .ensure_user(project, &other_user, T0, None)
        .await
        .unwrap();
    let first = session(project, &user, slack.id, "sid", T0);
    let second = session(project, &user, slack.id, "sid", T0 + 10);
    store.insert_connect_session(&first).await.unwrap();
    store.insert_connect_session(&second).await.unwrap();
    let found = store
        .find_connect_session(project, &user, "sid")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, second.id, "the newest attempt");
    assert_eq!(
        store
            .find_connect_session(project, &other_user, "sid")
            .await
            .unwrap(),
        None
    );

    let credential = Uuid::new_v4();
    store
        .finish_connect_session(
            second.id,
            &ConnectOutcome::Succeeded {
                credential_id: credential,
            },
            T0 + 5,
        )
        .await
        .unwrap();
    let found = store
        .find_connect_session(project, &user, "sid")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.status, ConnectSessionStatus::Succeeded);
    assert_eq!(found.credential_id, Some(credential));
    assert_eq!(found.finished_at, Some(T0 + 5));
    assert_eq!(found.reported_by, None);
    // The first channel to report the attempt keeps it; only its own credential claims.
    assert_eq!(
        store
            .claim_connect_report(second.id, Uuid::new_v4(), ConnectReport::Poll)
            .await
            .unwrap(),
        None
    );
    for via in [ConnectReport::Message, ConnectReport::Poll] {
        assert_eq!(
            store
                .claim_connect_report(second.id, credential, via)
                .await
                .unwrap(),
            Some(ConnectReport::Message)
        );
    }
    let found = store
        .find_connect_session(project, &user, "sid")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.reported_by, Some(ConnectReport::Message));
    store
        .finish_connect_session(
            first.id,
            &ConnectOutcome::Failed {
                code: "access_denied".into(),
                message: "no".into(),
            },
            T0 + 6,
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .finish_connect_session(
                Uuid::new_v4(),
                &ConnectOutcome::Succeeded {
                    credential_id: credential
                },
                T0 + 7,
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .delete_connect_sessions(project, &other_user, "sid")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_connect_sessions(project, &user, "sid")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .find_connect_session(project, &user, "sid")
            .await
            .unwrap(),
        None
    );
    // Erasing the user erases its attempts.
    let third = session(project, &user, slack.id, "sid3", T0);
    store.insert_connect_session(&third).await.unwrap();
    store.delete_user(project, &user, &[]).await.unwrap();
    assert_eq!(
        store.consume_connect_session(third.id, T0).await.unwrap(),
        None
    );
}

pub async fn concurrent_consumers_of_a_session_have_one_winner(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    store.ensure_user(project, &user, T0, None).await.unwrap();
    let s = session(project, &user, slack.id, "s", T0);
    store.insert_connect_session(&s).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.consume_connect_session(s.id, T0 + 1).await.unwrap() })
        })
        .collect();
    let winners = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter(|t| t.as_ref().unwrap().is_some())
        .count();
    assert_eq!(winners, 1);
}

pub async fn connect_links_are_single_use(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let link = ConnectLink {
        token_hash: "hash-1".into(),
        project_id: project,
        user_id: user.clone(),
        integration_id: slack.id,
        return_url: Some("https://app.example/done".into()),
        inputs: [("subdomain".to_owned(), "acme".to_owned())].into(),
        created_at: T0,
        expires_at: T0 + 1000,
        used_at: None,
    };
    assert!(matches!(
        store.insert_connect_link(&link).await,
        Err(StoreError::NotFound)
    ));
    store.ensure_user(project, &user, T0, None).await.unwrap();
    store.insert_connect_link(&link).await.unwrap();
    assert_eq!(
        store.consume_connect_link("hash-2", T0).await.unwrap(),
        None
    );
    // Looking a link up spends nothing, however often.
    for _ in 0..2 {
        assert_eq!(
            store.find_connect_link("hash-1", T0).await.unwrap(),
            Some(link.clone())
        );
    }
    assert_eq!(
        store.find_connect_link("hash-1", T0 + 1000).await.unwrap(),
        None
    );
    let used = store
        .consume_connect_link("hash-1", T0 + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        used,
        ConnectLink {
            used_at: Some(T0 + 1),
            ..link.clone()
        }
    );
    assert_eq!(
        store.consume_connect_link("hash-1", T0 + 2).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_connect_link("hash-1", T0 + 2).await.unwrap(),
        None
    );
    let expiring = ConnectLink {
        token_hash: "hash-3".into(),
        ..link
    };
    store.insert_connect_link(&expiring).await.unwrap();
    assert_eq!(
        store
            .consume_connect_link("hash-3", T0 + 1000)
            .await
            .unwrap(),
        None
    );
}

pub async fn expired_connect_records_are_purged(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    store.ensure_user(project, &user, T0, None).await.unwrap();
    let old = session(project, &user, slack.id, "old", T0 - 1_000_000);
    let fresh = session(project, &user, slack.id, "fresh", T0);
    store.insert_connect_session(&old).await.unwrap();
    store.insert_connect_session(&fresh).await.unwrap();
    assert_eq!(store.purge_expired_connect_records(T0).await.unwrap(), 1);
    assert!(
        store
            .find_connect_session(project, &user, "fresh")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .find_connect_session(project, &user, "old")
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn sealed_values_list_and_replace(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            connect(&*store, project, &user, slack.id, T0 + i)
                .await
                .credential
                .id,
        );
    }
    ids.sort();
    let first = store
        .list_sealed(SealedColumn::CredentialSecrets, None, 2)
        .await
        .unwrap();
    assert_eq!(first.iter().map(|r| r.id).collect::<Vec<_>>(), ids[..2]);
    let rest = store
        .list_sealed(SealedColumn::CredentialSecrets, Some(first[1].id), 2)
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|r| r.id).collect::<Vec<_>>(), ids[2..]);
    let row = &first[0];
    assert_eq!(row.project_id, project);
    assert_eq!(row.sealed, format!("sealed-secrets-{}", row.id));
    assert!(
        store
            .replace_sealed(
                SealedColumn::CredentialSecrets,
                row.id,
                &row.sealed,
                "resealed"
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_sealed(
                SealedColumn::CredentialSecrets,
                row.id,
                &row.sealed,
                "again"
            )
            .await
            .unwrap(),
        "compare-and-set"
    );
    let stored = store
        .get_credential(project, &user, row.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.credential.secrets_sealed, "resealed");

    let secrets = store
        .list_sealed(SealedColumn::IntegrationClientSecret, None, 10)
        .await
        .unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].key.as_deref(), Some("slack"));
    assert_eq!(secrets[0].sealed, "sealed-slack");
    assert!(
        store
            .replace_sealed(
                SealedColumn::IntegrationClientSecret,
                slack.id,
                "sealed-slack",
                "new"
            )
            .await
            .unwrap()
    );
    let integration = store
        .get_project_integration(project, &slack.key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        integration.oauth_client_secret_sealed.as_deref(),
        Some("new")
    );
}

fn workflow_version(project: ProjectId, id: &str, event: &str) -> WorkflowVersion {
    WorkflowVersion {
        project_id: project,
        workflow_id: id.into(),
        version: 0,
        integration: "slack".into(),
        event: Some(event.into()),
        trigger_kind: "event".into(),
        definition: json!({"id": id, "steps": []}),
        created_at: T0,
    }
}

fn execution(project: ProjectId, user: &UserId, workflow: &str, due: i64) -> Execution {
    Execution {
        id: Uuid::new_v4(),
        project_id: project,
        user_id: user.clone(),
        workflow_id: workflow.into(),
        workflow_version: 1,
        integration: "slack".into(),
        credential_id: None,
        status: ExecutionStatus::Queued,
        trigger: json!({"type": "event", "name": "e"}),
        settings: json!({}),
        output: None,
        error: None,
        response: None,
        runs: 0,
        next_run_at: due,
        created_at: due,
        started_at: None,
        finished_at: None,
    }
}

fn done(status: ExecutionStatus, at: i64) -> ExecutionUpdate {
    ExecutionUpdate {
        status,
        next_run_at: at,
        output: Some(json!({"ok": true})),
        error: None,
        response: None,
        finished_at: status.is_final().then_some(at),
        events: Vec::new(),
    }
}

pub async fn workflows_deploy_new_versions(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let first = store
        .deploy_workflow(&workflow_version(project, "sync", "a"))
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    let second = store
        .deploy_workflow(&workflow_version(project, "sync", "b"))
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    store
        .deploy_workflow(&workflow_version(project, "alpha", "a"))
        .await
        .unwrap();
    let listed = store.list_workflows(project).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|w| (w.workflow_id.as_str(), w.version))
            .collect::<Vec<_>>(),
        vec![("alpha", 1), ("sync", 2)]
    );
    assert_eq!(
        store
            .get_workflow(project, "sync", None)
            .await
            .unwrap()
            .unwrap()
            .event
            .as_deref(),
        Some("b")
    );
    assert_eq!(
        store
            .get_workflow(project, "sync", Some(1))
            .await
            .unwrap()
            .unwrap()
            .event
            .as_deref(),
        Some("a")
    );
    assert_eq!(
        store.get_workflow(project, "nope", None).await.unwrap(),
        None
    );
    let other = new_project(&*store, "q").await;
    assert!(store.list_workflows(other).await.unwrap().is_empty());
}

pub async fn executions_are_claimed_once_and_reclaimed_after_lease_expiry(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    store.ensure_user(project, &user, T0, None).await.unwrap();
    let due = execution(project, &user, "wf", T0);
    let later = execution(project, &user, "wf", T0 + 60_000);
    store
        .enqueue_executions(&[due.clone(), later.clone()])
        .await
        .unwrap();
    let claimed = store
        .claim_executions("w1", T0, T0 + 30_000, 10, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "only what is due");
    assert_eq!(claimed[0].id, due.id);
    assert_eq!(claimed[0].status, ExecutionStatus::Executing);
    assert_eq!(claimed[0].runs, 1);
    assert!(
        store
            .claim_executions("w2", T0 + 1, T0 + 30_000, 10, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .extend_execution_lease(due.id, "w1", T0 + 40_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .extend_execution_lease(due.id, "w2", T0 + 40_000)
            .await
            .unwrap()
    );
    // The holder died: after its lease, another worker takes it.
    let reclaimed = store
        .claim_executions("w2", T0 + 40_001, T0 + 70_000, 10, 10)
        .await
        .unwrap();
    assert_eq!(
        reclaimed.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![due.id]
    );
    assert_eq!(reclaimed[0].runs, 2);
    assert!(
        !store
            .release_execution(due.id, "w1", &done(ExecutionStatus::Succeeded, T0))
            .await
            .unwrap(),
        "the old holder cannot write"
    );
    let missing_user = execution(project, &uid("ghost"), "wf", T0);
    assert!(matches!(
        store.enqueue_executions(&[missing_user]).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn per_user_limit_holds_back_busy_users(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let busy = uid("busy");
    let quiet = uid("quiet");
    store.ensure_user(project, &busy, T0, None).await.unwrap();
    store.ensure_user(project, &quiet, T0, None).await.unwrap();
    let mut batch: Vec<Execution> = (0..5)
        .map(|i| execution(project, &busy, "wf", T0 + i))
        .collect();
    batch.push(execution(project, &quiet, "wf", T0 + 10));
    store.enqueue_executions(&batch).await.unwrap();
    let first = store
        .claim_executions("w1", T0 + 100, T0 + 30_000, 1, 2)
        .await
        .unwrap();
    let second = store
        .claim_executions("w1", T0 + 100, T0 + 30_000, 1, 2)
        .await
        .unwrap();
    let third = store
        .claim_executions("w1", T0 + 100, T0 + 30_000, 10, 2)
        .await
        .unwrap();
    let users: Vec<String> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|e| e.user_id.to_string())
        .collect();
    assert_eq!(
        users.iter().filter(|u| *u == "busy").count(),
        2,
        "{users:?}"
    );
    assert!(
        users.contains(&"quiet".to_string()),
        "the quiet user is not starved: {users:?}"
    );
}

pub async fn release_and_cancel(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    store.ensure_user(project, &user, T0, None).await.unwrap();
    let a = execution(project, &user, "wf", T0);
    let b = execution(project, &user, "wf", T0 + 1);
    let c = execution(project, &user, "other", T0 + 2);
    store
        .enqueue_executions(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    let claimed = store
        .claim_executions("w", T0 + 5, T0 + 30_000, 1, 10)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, a.id);
    let delayed = ExecutionUpdate {
        next_run_at: T0 + 500,
        output: None,
        ..done(ExecutionStatus::Delayed, T0 + 6)
    };
    assert!(store.release_execution(a.id, "w", &delayed).await.unwrap());
    let stored = store.get_execution(project, a.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.next_run_at, stored.finished_at),
        (ExecutionStatus::Delayed, T0 + 500, None)
    );
    // Cancelling the user's `wf` runs: a (delayed) and b (queued), not `other`.
    assert_eq!(
        store
            .cancel_executions(project, &user, &["wf".into()], T0 + 10)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .get_execution(project, b.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        ExecutionStatus::Cancelled
    );
    assert_eq!(
        store
            .get_execution(project, c.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        ExecutionStatus::Queued
    );
    let taken = store
        .claim_executions("w", T0 + 1000, T0 + 30_000, 10, 10)
        .await
        .unwrap();
    assert_eq!(taken.iter().map(|e| e.id).collect::<Vec<_>>(), vec![c.id]);
    assert!(
        store
            .release_execution(c.id, "w", &done(ExecutionStatus::Succeeded, T0 + 1001))
            .await
            .unwrap()
    );
    let finished = store.get_execution(project, c.id).await.unwrap().unwrap();
    assert_eq!(finished.output, Some(json!({"ok": true})));
    assert_eq!(finished.finished_at, Some(T0 + 1001));
    let other = new_project(&*store, "q").await;
    assert_eq!(store.get_execution(other, c.id).await.unwrap(), None);
}

pub async fn executions_filter_by_user_meta_workflow_and_status(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let john = uid("john");
    let jane = uid("jane");
    store
        .create_user(
            project,
            &john,
            &meta(json!({"Email": "john@bookface.com"})),
            None,
            T0,
            &[],
        )
        .await
        .unwrap();
    store
        .create_user(
            project,
            &jane,
            &meta(json!({"Email": "jane@example.com"})),
            None,
            T0,
            &[],
        )
        .await
        .unwrap();
    let runs = vec![
        execution(project, &john, "sync", T0 + 1),
        execution(project, &jane, "sync", T0 + 2),
        execution(project, &john, "notify", T0 + 3),
        execution(project, &john, "sync", T0 + 4),
    ];
    store.enqueue_executions(&runs).await.unwrap();
    let page = |f: ExecutionFilter| {
        let store = store.clone();
        async move {
            store
                .list_executions(project, &ExecutionFilter { limit: 10, ..f })
                .await
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    let by_email = page(ExecutionFilter {
        meta: vec![("Email".into(), "john@bookface.com".into())],
        ..Default::default()
    })
    .await;
    assert_eq!(
        by_email,
        vec![runs[3].id, runs[2].id, runs[0].id],
        "newest first"
    );
    let by_workflow = page(ExecutionFilter {
        workflow_id: Some("sync".into()),
        user_id: Some(john.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_workflow, vec![runs[3].id, runs[0].id]);
    let window = page(ExecutionFilter {
        since: Some(T0 + 2),
        until: Some(T0 + 4),
        ..Default::default()
    })
    .await;
    assert_eq!(window, vec![runs[2].id, runs[1].id]);
    let queued = page(ExecutionFilter {
        statuses: vec![ExecutionStatus::Queued, ExecutionStatus::Delayed],
        ..Default::default()
    })
    .await;
    assert_eq!(queued.len(), 4);
    let first_two = store
        .list_executions(
            project,
            &ExecutionFilter {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let last = first_two.last().unwrap();
    let rest = page(ExecutionFilter {
        after: Some((last.created_at, last.id)),
        ..Default::default()
    })
    .await;
    assert_eq!(rest, vec![runs[1].id, runs[0].id]);

    let oldest = page(ExecutionFilter {
        oldest_first: true,
        offset: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(oldest, vec![runs[1].id, runs[2].id, runs[3].id]);
    let count = |f: ExecutionFilter| {
        let store = store.clone();
        async move { store.count_executions(project, &f).await.unwrap() }
    };
    assert_eq!(count(ExecutionFilter::default()).await, 4);
    let johns = ExecutionFilter {
        meta: vec![("Email".into(), "john@bookface.com".into())],
        limit: 1,
        offset: 1,
        ..Default::default()
    };
    assert_eq!(
        count(johns).await,
        3,
        "the page position does not change the total"
    );
    let other = new_project(&*store, "q").await;
    assert_eq!(
        store
            .count_executions(other, &ExecutionFilter::default())
            .await
            .unwrap(),
        0
    );
}

pub async fn step_journal_round_trip(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    store.ensure_user(project, &user, T0, None).await.unwrap();
    let e = execution(project, &user, "wf", T0);
    store
        .enqueue_executions(std::slice::from_ref(&e))
        .await
        .unwrap();
    assert_eq!(store.load_step(e.id, "a").await.unwrap(), None);
    store
        .save_step(e.id, "a", &json!({"state": "retrying"}), T0)
        .await
        .unwrap();
    store
        .save_step(e.id, "b", &json!({"state": "done"}), T0 + 1)
        .await
        .unwrap();
    store
        .save_step(e.id, "a", &json!({"state": "done"}), T0 + 2)
        .await
        .unwrap();
    assert_eq!(
        store.load_step(e.id, "a").await.unwrap(),
        Some(json!({"state": "done"}))
    );
    let steps = store.list_steps(e.id).await.unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|(k, _, at)| (k.as_str(), *at))
            .collect::<Vec<_>>(),
        vec![("a", T0 + 2), ("b", T0 + 1)],
        "in first-written order"
    );
    let never_ran = Uuid::now_v7();
    assert_eq!(
        store.count_steps(&[e.id, never_ran]).await.unwrap(),
        vec![(e.id, 2)]
    );
    assert!(store.count_steps(&[]).await.unwrap().is_empty());
    store.delete_user(project, &user, &[]).await.unwrap();
    assert!(
        store.list_steps(e.id).await.unwrap().is_empty(),
        "erasing the user erases its executions"
    );
}

pub async fn concurrent_claims_never_share_an_execution(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let mut batch = Vec::new();
    for u in 0..20 {
        let user = uid(&format!("u{u}"));
        store.ensure_user(project, &user, T0, None).await.unwrap();
        for i in 0..5 {
            batch.push(execution(project, &user, "wf", T0 + i));
        }
    }
    store.enqueue_executions(&batch).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_executions(&format!("w{w}"), T0 + 100, T0 + 60_000, 3, 100)
                        .await
                        .unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|e| e.id));
                }
            })
        })
        .collect();
    let mut all: Vec<Uuid> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(|t| t.unwrap())
        .collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (100, 100),
        "every execution claimed exactly once"
    );
}

pub async fn old_finished_executions_are_purged(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    store.ensure_user(project, &user, T0, None).await.unwrap();
    let old = execution(project, &user, "wf", T0);
    let pending = execution(project, &user, "wf", T0 + 1);
    store
        .enqueue_executions(&[old.clone(), pending.clone()])
        .await
        .unwrap();
    let claimed = store
        .claim_executions("w", T0 + 2, T0 + 30_000, 1, 10)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, old.id);
    store
        .save_step(old.id, "a", &json!({"state": "done"}), T0 + 3)
        .await
        .unwrap();
    store
        .release_execution(old.id, "w", &done(ExecutionStatus::Succeeded, T0 + 5))
        .await
        .unwrap();
    assert_eq!(
        store.purge_executions(T0 + 5).await.unwrap(),
        0,
        "ended exactly at the bound: kept"
    );
    assert_eq!(store.purge_executions(T0 + 6).await.unwrap(), 1);
    assert_eq!(store.get_execution(project, old.id).await.unwrap(), None);
    assert!(store.list_steps(old.id).await.unwrap().is_empty());
    assert!(
        store
            .get_execution(project, pending.id)
            .await
            .unwrap()
            .is_some(),
        "unfinished ones stay"
    );
}

/// Executions started by a connection or a settings change are written with it, or not
/// at all.
pub async fn connections_enqueue_in_their_transaction(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    store.ensure_user(project, &user, T0, None).await.unwrap();
    let (connected, configuration) = credential(project, &user, slack.id, T0);
    let welcome = execution(project, &user, "welcome", T0);
    store
        .insert_credential(
            &connected,
            &configuration,
            std::slice::from_ref(&welcome),
            &[],
        )
        .await
        .unwrap();
    assert!(
        store
            .get_execution(project, welcome.id)
            .await
            .unwrap()
            .is_some()
    );

    let (stranger, stranger_cf) = credential(project, &uid("nobody"), slack.id, T0);
    let orphan = execution(project, &user, "welcome", T0);
    assert!(matches!(
        store
            .insert_credential(&stranger, &stranger_cf, std::slice::from_ref(&orphan), &[])
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.get_execution(project, orphan.id).await.unwrap(), None);

    let enabled = execution(project, &user, "sync", T0);
    store
        .update_configuration(
            project,
            connected.id,
            configuration.id,
            Some(Map::new()),
            None,
            T0 + 1,
            std::slice::from_ref(&enabled),
            &[],
        )
        .await
        .unwrap();
    assert!(
        store
            .get_execution(project, enabled.id)
            .await
            .unwrap()
            .is_some()
    );
    let lost = execution(project, &user, "sync", T0);
    assert!(matches!(
        store
            .update_configuration(
                project,
                connected.id,
                Uuid::new_v4(),
                None,
                None,
                T0 + 2,
                std::slice::from_ref(&lost),
                &[],
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.get_execution(project, lost.id).await.unwrap(), None);
}

/// Many writes at once (as many executions' steps and releases are): each lands, and one
/// refused write (an execution of an unknown user) fails alone.
pub async fn concurrent_worker_writes_are_each_kept_or_refused(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    store.ensure_user(project, &user, T0, None).await.unwrap();
    let runs: Vec<Execution> = (0..40)
        .map(|i| execution(project, &user, "wf", T0 + i))
        .collect();
    store.enqueue_executions(&runs).await.unwrap();
    let claimed = store
        .claim_executions("w", T0 + 100, T0 + 60_000, 40, 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 40);
    let mut writes = tokio::task::JoinSet::new();
    for (i, run) in runs.iter().enumerate() {
        let store = store.clone();
        let id = run.id;
        writes.spawn(async move {
            for step in ["a", "b", "c"] {
                store
                    .save_step(id, step, &json!({"step": step, "i": i}), T0 + 200)
                    .await
                    .unwrap();
            }
            // Half are released by their holder, half by a stranger (refused).
            let holder = if i % 2 == 0 { "w" } else { "someone-else" };
            store
                .release_execution(id, holder, &done(ExecutionStatus::Succeeded, T0 + 300))
                .await
                .unwrap()
        });
    }
    let stranger = execution(project, &uid("nobody"), "wf", T0);
    let refused = store.clone();
    let orphan = tokio::spawn(async move {
        refused
            .enqueue_executions(std::slice::from_ref(&stranger))
            .await
    });
    let mut released = 0;
    while let Some(result) = writes.join_next().await {
        released += usize::from(result.unwrap());
    }
    assert_eq!(released, 20);
    assert!(matches!(orphan.await.unwrap(), Err(StoreError::NotFound)));
    for (i, run) in runs.iter().enumerate() {
        let steps = store.list_steps(run.id).await.unwrap();
        assert_eq!(
            steps.iter().map(|(k, _, _)| k.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let status = store
            .get_execution(project, run.id)
            .await
            .unwrap()
            .unwrap()
            .status;
        let expected = if i % 2 == 0 {
            ExecutionStatus::Succeeded
        } else {
            ExecutionStatus::Executing
        };
        assert_eq!(status, expected);
    }
}

pub async fn project_env_round_trip(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    assert_eq!(store.get_project_env(project).await.unwrap(), None);
    let first = Uuid::new_v4();
    store
        .put_project_env(project, first, "sealed-1", T0)
        .await
        .unwrap();
    store
        .put_project_env(project, Uuid::new_v4(), "sealed-2", T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        store.get_project_env(project).await.unwrap(),
        Some((first, "sealed-2".to_owned())),
        "one row per project, keeping its id"
    );
    let other = new_project(&*store, "q").await;
    assert_eq!(store.get_project_env(other).await.unwrap(), None);
    assert!(matches!(
        store
            .put_project_env(ProjectId::new_random(), Uuid::new_v4(), "x", T0)
            .await,
        Err(StoreError::NotFound)
    ));
    let sealed = store
        .list_sealed(SealedColumn::ProjectEnv, None, 10)
        .await
        .unwrap();
    assert_eq!(sealed.len(), 1);
    assert_eq!((sealed[0].id, sealed[0].project_id), (first, project));
    assert!(
        store
            .replace_sealed(SealedColumn::ProjectEnv, first, "sealed-2", "sealed-3")
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_sealed(SealedColumn::ProjectEnv, first, "sealed-2", "sealed-4")
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_project_env(project).await.unwrap().unwrap().1,
        "sealed-3"
    );
}

// ---------------------------------------------------------------------------------------
// Dashboard

/// `alice` connected crm (valid) and mail (invalid), `bob` crm (invalid), `carol` nothing;
/// a second project's `dave` connected its own crm.
async fn dashboard_fixture(
    store: &dyn Store,
) -> (ProjectId, ProjectIntegration, ProjectIntegration, ProjectId) {
    let project = new_project(store, "dash").await;
    let crm = new_integration(store, project, "crm").await;
    let mail = new_integration(store, project, "mail").await;
    for (i, name) in ["alice", "bob", "carol"].iter().enumerate() {
        store
            .ensure_user(project, &uid(name), T0 + i as i64, None)
            .await
            .unwrap();
    }
    connect(store, project, &uid("alice"), crm.id, T0).await;
    let invalid_mail = connect(store, project, &uid("alice"), mail.id, T0 + 1).await;
    let invalid_crm = connect(store, project, &uid("bob"), crm.id, T0 + 2).await;
    for c in [invalid_mail, invalid_crm] {
        store
            .set_credential_status(
                project,
                c.credential.id,
                CredentialStatus::Invalid,
                3,
                T0 + 5,
                &[],
            )
            .await
            .unwrap();
    }
    let other = new_project(store, "other").await;
    let other_crm = new_integration(store, other, "crm").await;
    connect(store, other, &uid("dave"), other_crm.id, T0).await;
    (project, crm, mail, other)
}

pub async fn users_filter_by_integration_and_credential_status(store: Arc<dyn Store>) {
    let (project, crm, mail, _) = dashboard_fixture(&*store).await;
    let list = |f: UserFilter| {
        let store = store.clone();
        async move { ids(&store.list_users(project, &f).await.unwrap()) }
    };
    let by = |integration: Option<Uuid>, status: Option<CredentialStatus>| UserFilter {
        integration,
        credential_status: status,
        ..filter(10)
    };
    assert_eq!(list(by(Some(crm.id), None)).await, ["bob", "alice"]);
    assert_eq!(list(by(Some(mail.id), None)).await, ["alice"]);
    assert_eq!(
        list(by(None, Some(CredentialStatus::Invalid))).await,
        ["bob", "alice"]
    );
    assert_eq!(
        list(by(Some(crm.id), Some(CredentialStatus::Invalid))).await,
        ["bob"]
    );
    assert_eq!(
        list(by(Some(crm.id), Some(CredentialStatus::Valid))).await,
        ["alice"]
    );
    assert!(
        list(by(None, Some(CredentialStatus::Pending)))
            .await
            .is_empty()
    );
    // Combined with the other filters and pages.
    let combined = UserFilter {
        q: Some("AL".into()),
        ..by(None, Some(CredentialStatus::Invalid))
    };
    assert_eq!(list(combined).await, ["alice"]);
    let one = UserFilter {
        limit: 1,
        ..by(Some(crm.id), None)
    };
    let first = store.list_users(project, &one).await.unwrap();
    assert_eq!(ids(&first), ["bob"]);
    let rest = UserFilter {
        before_seq: first.next_before_seq,
        ..by(Some(crm.id), None)
    };
    assert_eq!(list(rest).await, ["alice"]);
}

pub async fn user_counts_follow_filters_up_to_a_cap(store: Arc<dyn Store>) {
    let (project, crm, _, other) = dashboard_fixture(&*store).await;
    set_meta(
        &*store,
        project,
        &uid("carol"),
        json!({"plan": "pro", "Email": "c@x.example"}),
    )
    .await;
    set_meta(&*store, project, &uid("bob"), json!({"plan": "pro"})).await;
    let count = |f: UserFilter, cap: u64| {
        let store = store.clone();
        async move { store.count_users(project, &f, cap).await.unwrap() }
    };
    let all = count(filter(1), 100).await;
    assert_eq!((all.count, all.capped), (3, false), "limit is ignored");
    let capped = count(filter(50), 2).await;
    assert_eq!((capped.count, capped.capped), (2, true));
    let exact = count(filter(50), 3).await;
    assert_eq!((exact.count, exact.capped), (3, false));
    assert_eq!(count(meta_filter(&[("plan", "pro")]), 100).await.count, 2);
    let broken_pro = UserFilter {
        credential_status: Some(CredentialStatus::Invalid),
        ..meta_filter(&[("plan", "pro")])
    };
    assert_eq!(count(broken_pro, 100).await.count, 1, "bob only");
    let suspended_pro = UserFilter {
        suspended: Some(true),
        ..meta_filter(&[("plan", "pro")])
    };
    assert_eq!(count(suspended_pro, 100).await.count, 0);
    let crm_users = UserFilter {
        integration: Some(crm.id),
        ..filter(50)
    };
    assert_eq!(count(crm_users, 100).await.count, 2);
    let search = UserFilter {
        q: Some("c@".into()),
        ..filter(50)
    };
    assert_eq!(count(search, 100).await.count, 1);
    let past_cursor = UserFilter {
        before_seq: Some(0),
        ..filter(50)
    };
    assert_eq!(
        count(past_cursor, 100).await.count,
        3,
        "the cursor is ignored"
    );
    let others = store.count_users(other, &filter(50), 100).await.unwrap();
    assert_eq!(others.count, 1);
}

pub async fn integration_usage_counts_users_and_enabled_workflows(store: Arc<dyn Store>) {
    let (project, crm, mail, other) = dashboard_fixture(&*store).await;
    // Every fixture credential's default configuration enables `wf-1`; turn it off for
    // bob and turn `wf-2` on for alice's crm.
    let bob_crm = &store.list_credentials(project, &uid("bob")).await.unwrap()[0];
    store
        .update_configuration(
            project,
            bob_crm.credential.id,
            bob_crm.configurations[0].id,
            Some(object(json!({"wf-1": {"enabled": false}}))),
            None,
            T0 + 9,
            &[],
            &[],
        )
        .await
        .unwrap();
    let alice = store
        .list_credentials(project, &uid("alice"))
        .await
        .unwrap();
    let alice_crm = alice
        .iter()
        .find(|c| c.credential.integration_id == crm.id)
        .unwrap();
    store
        .update_configuration(
            project,
            alice_crm.credential.id,
            alice_crm.configurations[0].id,
            Some(object(
                json!({"wf-1": {"enabled": true}, "wf-2": {"enabled": true, "settings": {}}}),
            )),
            None,
            T0 + 9,
            &[],
            &[],
        )
        .await
        .unwrap();
    let usage = store.integration_usage(project).await.unwrap();
    let of = |id: Uuid| {
        usage
            .integrations
            .iter()
            .find(|u| u.integration_id == id)
            .map(|u| (u.users, u.invalid_users))
    };
    assert_eq!(of(crm.id), Some((2, 1)));
    assert_eq!(of(mail.id), Some((1, 1)));
    assert_eq!(usage.integrations.len(), 2);
    // alice enabled wf-1 on both of her credentials: she counts once.
    assert_eq!(
        usage.workflows,
        vec![("wf-1".to_owned(), 1), ("wf-2".to_owned(), 1)]
    );
    let others = store.integration_usage(other).await.unwrap();
    assert_eq!(others.workflows, vec![("wf-1".to_owned(), 1)]);
    let empty = new_project(&*store, "empty").await;
    assert_eq!(
        store.integration_usage(empty).await.unwrap(),
        Default::default()
    );
}

pub async fn projects_are_listed_oldest_first(store: Arc<dyn Store>) {
    let a = new_project(&*store, "a").await;
    let b = Project {
        id: ProjectId::new_random(),
        name: "b".into(),
        created_at: T0 + 1,
    };
    store.create_project(&b).await.unwrap();
    let listed: Vec<ProjectId> = store
        .list_projects(10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(listed, vec![a, b.id]);
    assert_eq!(store.list_projects(1).await.unwrap().len(), 1);
}

pub async fn dashboard_sessions_expire_and_end(store: Arc<dyn Store>) {
    let project = new_project(&*store, "sessions").await;
    let key_id = Uuid::new_v4();
    let keyed = DashboardSession {
        id_hash: "hash-keyed".into(),
        principal: DashboardPrincipal::SecretKey { project, key_id },
        csrf_token: "csrf-1".into(),
        created_at: T0,
        expires_at: T0 + 1_000,
    };
    let admin = DashboardSession {
        id_hash: "hash-admin".into(),
        principal: DashboardPrincipal::Admin { project: None },
        csrf_token: "csrf-2".into(),
        created_at: T0,
        expires_at: T0 + 5_000,
    };
    store.insert_dashboard_session(&keyed).await.unwrap();
    store.insert_dashboard_session(&admin).await.unwrap();
    assert!(matches!(
        store.insert_dashboard_session(&keyed).await,
        Err(StoreError::Conflict(_))
    ));
    let got = store
        .get_dashboard_session("hash-keyed", T0 + 999)
        .await
        .unwrap();
    assert_eq!(got.as_ref(), Some(&keyed));
    assert!(
        store
            .get_dashboard_session("hash-keyed", T0 + 1_000)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(
        store
            .get_dashboard_session("nope", T0)
            .await
            .unwrap()
            .is_none()
    );
    // The admin picks a project; a secret-key session cannot be re-pointed.
    store
        .set_dashboard_session_project("hash-admin", project)
        .await
        .unwrap();
    let picked = store
        .get_dashboard_session("hash-admin", T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        picked.principal,
        DashboardPrincipal::Admin {
            project: Some(project)
        }
    );
    let other = new_project(&*store, "other").await;
    assert!(matches!(
        store
            .set_dashboard_session_project("hash-keyed", other)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.set_dashboard_session_project("nope", other).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.purge_dashboard_sessions(T0 + 2_000).await.unwrap(), 1);
    assert!(
        store
            .get_dashboard_session("hash-keyed", T0)
            .await
            .unwrap()
            .is_none(),
        "purged"
    );
    store.delete_dashboard_session("hash-admin").await.unwrap();
    store.delete_dashboard_session("hash-admin").await.unwrap();
    assert!(
        store
            .get_dashboard_session("hash-admin", T0)
            .await
            .unwrap()
            .is_none(),
        "logged out"
    );
}

// ---- Issue #7: the outbox, webhook endpoints and deliveries, policies, secrets, audit ----

/// A UUIDv7 whose time is `at`, so ids order like their times (as `Uuid::now_v7` ids do).
fn v7_at(at: i64) -> Uuid {
    let random: [u8; 10] = Uuid::new_v4().as_bytes()[..10].try_into().unwrap();
    uuid::Builder::from_unix_timestamp_millis(at as u64, &random).into_uuid()
}

/// An event of `project` at `at`, with an id ordered by that time.
fn outbox(project: ProjectId, event_type: &str, at: i64) -> OutboxEvent {
    OutboxEvent {
        id: v7_at(at),
        project_id: project,
        event_type: event_type.into(),
        payload: json!({"type": event_type, "at": at, "nested": {"list": [1, "two", null]}}),
        created_at: at,
    }
}

/// Every event of a project, newest first.
async fn all_events(store: &dyn Store, project: ProjectId) -> Vec<OutboxEvent> {
    store
        .list_events(
            project,
            &EventFilter {
                limit: 1000,
                ..EventFilter::default()
            },
        )
        .await
        .unwrap()
}

fn event_ids(events: &[OutboxEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

fn endpoint(project: ProjectId, url: &str, at: i64) -> WebhookEndpoint {
    WebhookEndpoint {
        id: Uuid::new_v4(),
        project_id: project,
        url: url.into(),
        description: format!("receiver at {url}"),
        event_types: vec!["user.created".into(), "user.deleted".into()],
        secret_sealed: "sealed-whsec".into(),
        previous_secret_sealed: None,
        previous_secret_expires_at: None,
        disabled_at: None,
        disabled_reason: None,
        consecutive_failures: 0,
        created_at: at,
        updated_at: at,
    }
}

async fn new_endpoint(
    store: &dyn Store,
    project: ProjectId,
    url: &str,
    at: i64,
) -> WebhookEndpoint {
    let e = endpoint(project, url, at);
    store.insert_webhook_endpoint(&e).await.unwrap();
    e
}

fn pending_delivery(event: &OutboxEvent, endpoint: &WebhookEndpoint, due: i64) -> WebhookDelivery {
    WebhookDelivery {
        id: Uuid::new_v4(),
        project_id: event.project_id,
        event_id: event.id,
        endpoint_id: endpoint.id,
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: due,
        last_status_code: None,
        last_error: None,
        created_at: event.created_at,
        updated_at: event.created_at,
    }
}

/// Inserts an event and fans it out to these endpoints, each delivery due at `due`.
async fn fanned_event(
    store: &dyn Store,
    project: ProjectId,
    at: i64,
    endpoints: &[&WebhookEndpoint],
    due: i64,
) -> (OutboxEvent, Vec<WebhookDelivery>) {
    let event = outbox(project, "user.created", at);
    store
        .insert_events(std::slice::from_ref(&event))
        .await
        .unwrap();
    let deliveries: Vec<WebhookDelivery> = endpoints
        .iter()
        .map(|e| pending_delivery(&event, e, due))
        .collect();
    assert!(store.fan_out_event(event.id, &deliveries).await.unwrap());
    (event, deliveries)
}

fn attempt_record(
    delivery: Uuid,
    attempt: i32,
    at: i64,
    status_code: Option<i32>,
    next: DeliveryNext,
    disable_after_failures: i32,
) -> AttemptRecord {
    AttemptRecord {
        attempt: DeliveryAttempt {
            id: Uuid::new_v4(),
            delivery_id: delivery,
            attempt,
            started_at: at,
            duration_ms: 42,
            status_code,
            error: match next {
                DeliveryNext::Delivered => None,
                _ => Some(format!("attempt {attempt} failed")),
            },
            response_excerpt: status_code.map(|c| format!("HTTP {c}")),
        },
        next,
        disable_after_failures,
        now: at,
    }
}

async fn only_delivery(store: &dyn Store, project: ProjectId, event: Uuid) -> WebhookDelivery {
    let mut all = store.list_deliveries(project, event).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

/// User creation, metadata writes, suspension and deletion write their events with the
/// change, and only when the change happened.
pub async fn user_changes_write_their_events(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    let created = outbox(project, "user.created", T0);
    store
        .ensure_user(project, &user, T0, Some(&created))
        .await
        .unwrap();
    assert_eq!(all_events(&*store, project).await, vec![created.clone()]);
    // Already there: the event is not written.
    let again = outbox(project, "user.created", T0 + 1);
    let v0 = store
        .ensure_user(project, &user, T0 + 1, Some(&again))
        .await
        .unwrap();
    assert_eq!(all_events(&*store, project).await, vec![created.clone()]);

    let made = vec![
        outbox(project, "user.created", T0 + 2),
        outbox(project, "entitlement.changed", T0 + 3),
    ];
    store
        .create_user(
            project,
            &uid("v"),
            &Metadata::default(),
            None,
            T0 + 2,
            &made,
        )
        .await
        .unwrap();
    let refused = outbox(project, "user.created", T0 + 4);
    assert!(matches!(
        store
            .create_user(
                project,
                &uid("v"),
                &Metadata::default(),
                None,
                T0 + 4,
                std::slice::from_ref(&refused)
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        event_ids(&all_events(&*store, project).await),
        vec![made[1].id, made[0].id, created.id]
    );

    let updated = outbox(project, "user.metadata_updated", T0 + 5);
    let m1 = meta(json!({"plan": "pro"}));
    store
        .write_metadata(MetadataWrite {
            project_id: project,
            user_id: &user,
            meta: &m1,
            expected_version: v0.version,
            now: T0 + 5,
            secrets_sealed: None,
            events: std::slice::from_ref(&updated),
        })
        .await
        .unwrap();
    let stale = outbox(project, "user.metadata_updated", T0 + 6);
    assert!(matches!(
        store
            .write_metadata(MetadataWrite {
                project_id: project,
                user_id: &user,
                meta: &m1,
                expected_version: v0.version,
                now: T0 + 6,
                secrets_sealed: None,
                events: std::slice::from_ref(&stale),
            })
            .await,
        Err(StoreError::Conflict(_))
    ));
    let suspended = outbox(project, "user.suspended", T0 + 7);
    store
        .set_suspended(
            project,
            &user,
            true,
            T0 + 7,
            std::slice::from_ref(&suspended),
        )
        .await
        .unwrap();
    let ghost = outbox(project, "user.suspended", T0 + 8);
    assert!(matches!(
        store
            .set_suspended(
                project,
                &uid("ghost"),
                true,
                T0 + 8,
                std::slice::from_ref(&ghost)
            )
            .await,
        Err(StoreError::NotFound)
    ));
    // The events outlive the user.
    let deleted = outbox(project, "user.deleted", T0 + 9);
    store
        .delete_user(project, &user, std::slice::from_ref(&deleted))
        .await
        .unwrap();
    let gone = outbox(project, "user.deleted", T0 + 10);
    assert!(matches!(
        store
            .delete_user(project, &user, std::slice::from_ref(&gone))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        event_ids(&all_events(&*store, project).await),
        vec![
            deleted.id,
            suspended.id,
            updated.id,
            made[1].id,
            made[0].id,
            created.id
        ]
    );
    assert_eq!(
        store.get_event(project, deleted.id).await.unwrap(),
        Some(deleted)
    );
}

/// Connections, status changes, settings changes and disconnections write their events
/// with the change, and none when it fails.
pub async fn credential_changes_write_their_events(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let slack = new_integration(&*store, project, "slack").await;
    let user = uid("u");
    store.ensure_user(project, &user, T0, None).await.unwrap();
    let (connected, configuration) = credential(project, &user, slack.id, T0);
    let enabled = outbox(project, "integration.enabled", T0 + 1);
    store
        .insert_credential(
            &connected,
            &configuration,
            &[],
            std::slice::from_ref(&enabled),
        )
        .await
        .unwrap();
    let (orphan, orphan_cf) = credential(project, &uid("ghost"), slack.id, T0);
    let lost = outbox(project, "integration.enabled", T0 + 2);
    assert!(matches!(
        store
            .insert_credential(&orphan, &orphan_cf, &[], std::slice::from_ref(&lost))
            .await,
        Err(StoreError::NotFound)
    ));

    let invalid = outbox(project, "credential.invalid", T0 + 3);
    store
        .set_credential_status(
            project,
            connected.id,
            CredentialStatus::Invalid,
            3,
            T0 + 3,
            std::slice::from_ref(&invalid),
        )
        .await
        .unwrap();
    let lost_status = outbox(project, "credential.invalid", T0 + 4);
    assert!(matches!(
        store
            .set_credential_status(
                project,
                Uuid::new_v4(),
                CredentialStatus::Invalid,
                3,
                T0 + 4,
                std::slice::from_ref(&lost_status),
            )
            .await,
        Err(StoreError::NotFound)
    ));

    let workflow = outbox(project, "workflow.enabled", T0 + 5);
    store
        .update_configuration(
            project,
            connected.id,
            configuration.id,
            Some(object(json!({"wf": {"enabled": true}}))),
            None,
            T0 + 5,
            &[],
            std::slice::from_ref(&workflow),
        )
        .await
        .unwrap();
    let lost_workflow = outbox(project, "workflow.enabled", T0 + 6);
    assert!(matches!(
        store
            .update_configuration(
                project,
                connected.id,
                Uuid::new_v4(),
                None,
                None,
                T0 + 6,
                &[],
                std::slice::from_ref(&lost_workflow),
            )
            .await,
        Err(StoreError::NotFound)
    ));

    let disabled = outbox(project, "integration.disabled", T0 + 7);
    store
        .delete_credential(
            project,
            &user,
            connected.id,
            std::slice::from_ref(&disabled),
        )
        .await
        .unwrap();
    let lost_disable = outbox(project, "integration.disabled", T0 + 8);
    assert!(matches!(
        store
            .delete_credential(
                project,
                &user,
                connected.id,
                std::slice::from_ref(&lost_disable)
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        event_ids(&all_events(&*store, project).await),
        vec![disabled.id, workflow.id, invalid.id, enabled.id]
    );
}

/// A release writes its events only when the holder still held the execution.
pub async fn execution_release_writes_its_events(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    store.ensure_user(project, &user, T0, None).await.unwrap();
    let run = execution(project, &user, "wf", T0);
    store
        .enqueue_executions(std::slice::from_ref(&run))
        .await
        .unwrap();
    store
        .claim_executions("w1", T0, T0 + 30_000, 10, 10)
        .await
        .unwrap();
    let stranger = ExecutionUpdate {
        error: Some("boom".into()),
        events: vec![outbox(project, "execution.failed", T0 + 1)],
        ..done(ExecutionStatus::Failed, T0 + 1)
    };
    assert!(
        !store
            .release_execution(run.id, "w2", &stranger)
            .await
            .unwrap()
    );
    assert!(all_events(&*store, project).await.is_empty());
    let failed = outbox(project, "execution.failed", T0 + 2);
    let update = ExecutionUpdate {
        error: Some("boom".into()),
        events: vec![failed.clone()],
        ..done(ExecutionStatus::Failed, T0 + 2)
    };
    assert!(
        store
            .release_execution(run.id, "w1", &update)
            .await
            .unwrap()
    );
    assert_eq!(all_events(&*store, project).await, vec![failed]);
}

/// Secret metadata values are stored sealed with the user: kept when a write gives none,
/// replaced when it gives some, gone with the user.
pub async fn user_secrets_are_kept_unless_replaced(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let (a, b) = (uid("a"), uid("b"));
    let created = store
        .create_user(
            project,
            &a,
            &meta(json!({"plan": "pro"})),
            Some("sealed-1"),
            T0,
            &[],
        )
        .await
        .unwrap();
    store.ensure_user(project, &b, T0, None).await.unwrap();
    assert_eq!(
        store
            .get_user_secrets(project, &a)
            .await
            .unwrap()
            .as_deref(),
        Some("sealed-1")
    );
    assert_eq!(store.get_user_secrets(project, &b).await.unwrap(), None);
    assert_eq!(
        store
            .get_user_secrets(project, &uid("ghost"))
            .await
            .unwrap(),
        None
    );
    let kept = store
        .write_metadata(MetadataWrite {
            project_id: project,
            user_id: &a,
            meta: &meta(json!({"plan": "free"})),
            expected_version: created.version,
            now: T0 + 1,
            secrets_sealed: None,
            events: &[],
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .get_user_secrets(project, &a)
            .await
            .unwrap()
            .as_deref(),
        Some("sealed-1")
    );
    let replaced = store
        .write_metadata(MetadataWrite {
            project_id: project,
            user_id: &a,
            meta: &meta(json!({"plan": "team"})),
            expected_version: kept.version,
            now: T0 + 2,
            secrets_sealed: Some("sealed-2"),
            events: &[],
        })
        .await
        .unwrap();
    assert_eq!(replaced.meta.get_str("plan"), Some("team"));
    assert_eq!(
        store
            .get_user_secrets(project, &a)
            .await
            .unwrap()
            .as_deref(),
        Some("sealed-2")
    );
    // A stale write changes nothing, secrets included.
    assert!(matches!(
        store
            .write_metadata(MetadataWrite {
                project_id: project,
                user_id: &a,
                meta: &meta(json!({})),
                expected_version: kept.version,
                now: T0 + 3,
                secrets_sealed: Some("sealed-3"),
                events: &[],
            })
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .get_user_secrets(project, &a)
            .await
            .unwrap()
            .as_deref(),
        Some("sealed-2")
    );
    // Secrets are per project.
    let other = new_project(&*store, "other").await;
    store.ensure_user(other, &a, T0, None).await.unwrap();
    assert_eq!(store.get_user_secrets(other, &a).await.unwrap(), None);
    store.delete_user(project, &a, &[]).await.unwrap();
    assert_eq!(store.get_user_secrets(project, &a).await.unwrap(), None);
}

pub async fn project_policy_round_trip(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let other = new_project(&*store, "other").await;
    assert_eq!(store.get_project_policy(project).await.unwrap(), None);
    let first = json!({
        "entitlements": [{"integration": "slack", "rule": "user.meta.plan == \"pro\""}],
        "secretMetadataKeys": ["apiToken"],
    });
    let changed = outbox(project, "entitlement.changed", T0);
    store
        .put_project_policy(project, &first, T0, std::slice::from_ref(&changed))
        .await
        .unwrap();
    assert_eq!(
        store.get_project_policy(project).await.unwrap(),
        Some(first)
    );
    assert_eq!(all_events(&*store, project).await, vec![changed]);
    let second = json!({"entitlements": [], "secretMetadataKeys": []});
    store
        .put_project_policy(project, &second, T0 + 1, &[])
        .await
        .unwrap();
    assert_eq!(
        store.get_project_policy(project).await.unwrap(),
        Some(second)
    );
    assert_eq!(store.get_project_policy(other).await.unwrap(), None);
}

/// Events are fanned out once: the first node marks them and writes their deliveries,
/// a second gets false and writes nothing.
pub async fn events_fan_out_once(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let hook = new_endpoint(&*store, project, "https://a.example/hook", T0).await;
    let events: Vec<OutboxEvent> = (0..3)
        .map(|i| outbox(project, "user.created", T0 + i))
        .collect();
    // Inserted out of order: they come back oldest first.
    store
        .insert_events(&[events[2].clone(), events[0].clone()])
        .await
        .unwrap();
    store
        .insert_events(std::slice::from_ref(&events[1]))
        .await
        .unwrap();
    store.insert_events(&[]).await.unwrap();
    assert_eq!(store.unfanned_events(10).await.unwrap(), events);
    assert_eq!(
        event_ids(&store.unfanned_events(2).await.unwrap()),
        vec![events[0].id, events[1].id]
    );

    let delivery = pending_delivery(&events[0], &hook, T0 + 100);
    assert!(
        store
            .fan_out_event(events[0].id, std::slice::from_ref(&delivery))
            .await
            .unwrap()
    );
    let duplicate = pending_delivery(&events[0], &hook, T0 + 200);
    assert!(
        !store
            .fan_out_event(events[0].id, std::slice::from_ref(&duplicate))
            .await
            .unwrap(),
        "fanned out already"
    );
    assert_eq!(
        store.list_deliveries(project, events[0].id).await.unwrap(),
        vec![delivery]
    );
    // No endpoint wants it: marked all the same.
    assert!(store.fan_out_event(events[1].id, &[]).await.unwrap());
    assert!(!store.fan_out_event(Uuid::new_v4(), &[]).await.unwrap());
    assert_eq!(
        event_ids(&store.unfanned_events(10).await.unwrap()),
        vec![events[2].id]
    );
    assert!(
        store
            .list_deliveries(project, events[1].id)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A due delivery is leased to one sender at a time, with its event and endpoint;
/// deliveries not yet due or to disabled endpoints wait.
pub async fn deliveries_are_claimed_once_until_the_lease_expires(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let live = new_endpoint(&*store, project, "https://live.example/hook", T0).await;
    let off = WebhookEndpoint {
        disabled_at: Some(T0),
        disabled_reason: Some("turned off".into()),
        ..endpoint(project, "https://off.example/hook", T0 + 1)
    };
    store.insert_webhook_endpoint(&off).await.unwrap();
    let (now_event, now_deliveries) =
        fanned_event(&*store, project, T0 + 10, &[&live, &off], T0 + 100).await;
    let (_, later) = fanned_event(&*store, project, T0 + 11, &[&live], T0 + 5_000).await;

    let claimed = store
        .claim_deliveries("s1", T0 + 100, T0 + 1_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].delivery, now_deliveries[0]);
    assert_eq!(claimed[0].event, now_event);
    assert_eq!(claimed[0].endpoint, live);
    assert!(
        store
            .claim_deliveries("s2", T0 + 500, T0 + 1_500, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased to s1"
    );
    // s1 died: after its lease, s2 takes the delivery; s1 can no longer record it.
    let reclaimed = store
        .claim_deliveries("s2", T0 + 1_001, T0 + 2_000, 10)
        .await
        .unwrap();
    assert_eq!(
        reclaimed.iter().map(|c| c.delivery.id).collect::<Vec<_>>(),
        vec![now_deliveries[0].id]
    );
    let stale = attempt_record(
        now_deliveries[0].id,
        1,
        T0 + 1_100,
        Some(200),
        DeliveryNext::Delivered,
        5,
    );
    assert!(!store.record_delivery_attempt("s1", &stale).await.unwrap());
    assert!(
        store
            .list_delivery_attempts(now_deliveries[0].id)
            .await
            .unwrap()
            .is_empty()
    );
    let fresh = attempt_record(
        now_deliveries[0].id,
        1,
        T0 + 1_200,
        Some(204),
        DeliveryNext::Delivered,
        5,
    );
    assert!(store.record_delivery_attempt("s2", &fresh).await.unwrap());
    assert!(
        !store.record_delivery_attempt("s2", &fresh).await.unwrap(),
        "the lease was given up"
    );

    // The later one comes due; the disabled endpoint's never does.
    let due = store
        .claim_deliveries("s3", T0 + 5_000, T0 + 6_000, 10)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|c| c.delivery.id).collect::<Vec<_>>(),
        vec![later[0].id]
    );
    // Once enabled again, it is sent (while the later one is still leased).
    store
        .update_webhook_endpoint(&WebhookEndpoint {
            disabled_at: None,
            disabled_reason: None,
            updated_at: T0 + 5_500,
            ..off.clone()
        })
        .await
        .unwrap();
    let enabled = store
        .claim_deliveries("s4", T0 + 5_500, T0 + 8_000, 10)
        .await
        .unwrap();
    assert_eq!(
        enabled.iter().map(|c| c.delivery.id).collect::<Vec<_>>(),
        vec![now_deliveries[1].id]
    );
}

/// An attempt is logged and moves its delivery on: delivered, retried later, or failed.
pub async fn delivery_attempts_move_deliveries_on(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let hook = new_endpoint(&*store, project, "https://a.example/hook", T0).await;
    let (event, deliveries) = fanned_event(&*store, project, T0, &[&hook], T0).await;
    let id = deliveries[0].id;

    let claimed = store.claim_deliveries("s", T0, T0 + 100, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let retry = attempt_record(
        id,
        1,
        T0 + 1,
        Some(500),
        DeliveryNext::RetryAt(T0 + 60_000),
        0,
    );
    assert!(store.record_delivery_attempt("s", &retry).await.unwrap());
    let pending = only_delivery(&*store, project, event.id).await;
    assert_eq!(
        (
            pending.status,
            pending.attempts,
            pending.next_attempt_at,
            pending.last_status_code,
            pending.last_error.as_deref()
        ),
        (
            DeliveryStatus::Pending,
            1,
            T0 + 60_000,
            Some(500),
            Some("attempt 1 failed")
        )
    );
    assert!(
        store
            .claim_deliveries("s", T0 + 59_999, T0 + 70_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    assert_eq!(
        store
            .claim_deliveries("s", T0 + 60_000, T0 + 70_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let delivered = attempt_record(id, 2, T0 + 60_001, Some(200), DeliveryNext::Delivered, 0);
    assert!(
        store
            .record_delivery_attempt("s", &delivered)
            .await
            .unwrap()
    );
    let done = only_delivery(&*store, project, event.id).await;
    assert_eq!(
        (done.status, done.attempts, done.last_status_code),
        (DeliveryStatus::Delivered, 2, Some(200))
    );
    assert!(
        store
            .claim_deliveries("s", T0 + 100_000, T0 + 110_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "delivered"
    );
    assert_eq!(
        store.list_delivery_attempts(id).await.unwrap(),
        vec![retry.attempt.clone(), delivered.attempt.clone()]
    );

    // Giving up fails the delivery for good.
    let (other_event, other) = fanned_event(&*store, project, T0 + 1, &[&hook], T0).await;
    store
        .claim_deliveries("s", T0 + 200_000, T0 + 210_000, 10)
        .await
        .unwrap();
    let give_up = AttemptRecord {
        attempt: DeliveryAttempt {
            status_code: None,
            error: Some("connection refused".into()),
            response_excerpt: None,
            ..attempt_record(other[0].id, 8, T0 + 200_001, None, DeliveryNext::GiveUp, 0).attempt
        },
        ..attempt_record(other[0].id, 8, T0 + 200_001, None, DeliveryNext::GiveUp, 0)
    };
    assert!(store.record_delivery_attempt("s", &give_up).await.unwrap());
    let failed = only_delivery(&*store, project, other_event.id).await;
    assert_eq!(
        (
            failed.status,
            failed.attempts,
            failed.last_status_code,
            failed.last_error.as_deref()
        ),
        (DeliveryStatus::Failed, 8, None, Some("connection refused"))
    );
    assert_eq!(
        store.list_delivery_attempts(other[0].id).await.unwrap(),
        vec![give_up.attempt]
    );
    assert!(
        store
            .claim_deliveries("s", T0 + 900_000, T0 + 910_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "failed for good"
    );
}

/// Failed attempts in a row are counted per endpoint; a success resets the count, and
/// reaching the threshold disables the endpoint.
pub async fn failures_in_a_row_disable_the_endpoint(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let hook = new_endpoint(&*store, project, "https://flaky.example/hook", T0).await;
    let mut at = T0;
    // Sends one new event to the endpoint and records one attempt with this outcome.
    let mut send = async |next: DeliveryNext| {
        at += 10;
        let (_, deliveries) = fanned_event(&*store, project, at, &[&hook], at).await;
        let claimed = store.claim_deliveries("s", at, at + 5, 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "{claimed:?}");
        let code = match next {
            DeliveryNext::Delivered => 200,
            _ => 503,
        };
        let record = attempt_record(deliveries[0].id, 1, at + 1, Some(code), next, 3);
        assert!(store.record_delivery_attempt("s", &record).await.unwrap());
        store
            .get_webhook_endpoint(project, hook.id)
            .await
            .unwrap()
            .unwrap()
    };
    let failing = send(DeliveryNext::RetryAt(T0 + 1_000_000)).await;
    assert_eq!(failing.consecutive_failures, 1);
    let failing = send(DeliveryNext::GiveUp).await;
    assert_eq!(failing.consecutive_failures, 2);
    assert_eq!(failing.disabled_at, None);
    let recovered = send(DeliveryNext::Delivered).await;
    assert_eq!(recovered.consecutive_failures, 0);
    send(DeliveryNext::GiveUp).await;
    send(DeliveryNext::GiveUp).await;
    let disabled = send(DeliveryNext::GiveUp).await;
    assert_eq!(disabled.consecutive_failures, 3);
    let disabled_at = disabled.disabled_at.expect("disabled at the threshold");
    assert!(disabled_at > T0, "{disabled_at}");
    assert!(
        disabled
            .disabled_reason
            .as_deref()
            .is_some_and(|r| r.contains('3')),
        "{:?}",
        disabled.disabled_reason
    );
    // Nothing more is sent to it.
    let (_, parked) = fanned_event(&*store, project, T0 + 2_000, &[&hook], T0 + 2_000).await;
    assert!(
        store
            .claim_deliveries("s", T0 + 3_000, T0 + 4_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        only_delivery(&*store, project, parked[0].event_id)
            .await
            .status,
        DeliveryStatus::Pending
    );
}

/// Redelivery makes each delivery pending again from scratch, creating the missing ones,
/// only for the project's endpoints.
pub async fn redelivery_resets_and_creates_deliveries(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let other = new_project(&*store, "other").await;
    let a = new_endpoint(&*store, project, "https://a.example/hook", T0).await;
    let b = new_endpoint(&*store, project, "https://b.example/hook", T0 + 1).await;
    let foreign = new_endpoint(&*store, other, "https://x.example/hook", T0).await;
    let (event, deliveries) = fanned_event(&*store, project, T0, &[&a], T0).await;
    store.claim_deliveries("s", T0, T0 + 100, 10).await.unwrap();
    let gave_up = attempt_record(
        deliveries[0].id,
        5,
        T0 + 1,
        Some(500),
        DeliveryNext::GiveUp,
        0,
    );
    assert!(store.record_delivery_attempt("s", &gave_up).await.unwrap());

    assert_eq!(
        store
            .redeliver_event(project, event.id, &[a.id, b.id, foreign.id, a.id], T0 + 50)
            .await
            .unwrap(),
        2
    );
    let listed = store.list_deliveries(project, event.id).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let of = |endpoint: Uuid| {
        listed
            .iter()
            .find(|d| d.endpoint_id == endpoint)
            .unwrap_or_else(|| panic!("no delivery to {endpoint}"))
            .clone()
    };
    let (again, new) = (of(a.id), of(b.id));
    assert_eq!(again.id, deliveries[0].id, "the delivery is reused");
    for d in [&again, &new] {
        assert_eq!(
            (d.status, d.attempts, d.next_attempt_at, d.project_id),
            (DeliveryStatus::Pending, 0, T0 + 50, project)
        );
    }
    // The log keeps the earlier attempts.
    assert_eq!(
        store.list_delivery_attempts(again.id).await.unwrap(),
        vec![gave_up.attempt]
    );
    let claimed = store
        .claim_deliveries("s", T0 + 50, T0 + 150, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    // Another project's event, or an unknown one, is not redelivered.
    assert_eq!(
        store
            .redeliver_event(other, event.id, &[foreign.id], T0 + 60)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .redeliver_event(project, Uuid::new_v4(), &[a.id], T0 + 60)
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .list_deliveries(other, event.id)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Events list newest first, by type and time, in pages.
pub async fn events_list_filters_and_pages(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let types = ["user.created", "user.deleted", "execution.failed"];
    let events: Vec<OutboxEvent> = (0..9)
        .map(|i| outbox(project, types[i as usize % 3], T0 + i * 1_000))
        .collect();
    store.insert_events(&events).await.unwrap();
    let newest_first =
        |picked: &[usize]| -> Vec<Uuid> { picked.iter().rev().map(|&i| events[i].id).collect() };
    let list = |f: EventFilter| {
        let store = store.clone();
        async move { event_ids(&store.list_events(project, &f).await.unwrap()) }
    };
    let page = |limit| EventFilter {
        limit,
        ..EventFilter::default()
    };
    assert_eq!(
        list(page(100)).await,
        newest_first(&[0, 1, 2, 3, 4, 5, 6, 7, 8])
    );
    assert_eq!(
        list(EventFilter {
            event_type: Some("user.deleted".into()),
            ..page(100)
        })
        .await,
        newest_first(&[1, 4, 7])
    );
    // `since` is inclusive, `until` exclusive.
    assert_eq!(
        list(EventFilter {
            since: Some(T0 + 2_000),
            until: Some(T0 + 5_000),
            ..page(100)
        })
        .await,
        newest_first(&[2, 3, 4])
    );
    // Pages: each starts after the previous page's last event.
    let first = list(page(4)).await;
    assert_eq!(first, newest_first(&[5, 6, 7, 8]));
    let second = list(EventFilter {
        before: first.last().copied(),
        ..page(4)
    })
    .await;
    assert_eq!(second, newest_first(&[1, 2, 3, 4]));
    let third = list(EventFilter {
        before: second.last().copied(),
        ..page(4)
    })
    .await;
    assert_eq!(third, vec![events[0].id]);
    assert!(
        list(EventFilter {
            before: Some(events[0].id),
            ..page(4)
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(EventFilter {
            event_type: Some("user.created".into()),
            before: Some(events[6].id),
            ..page(1)
        })
        .await,
        vec![events[3].id]
    );
    assert_eq!(
        store.get_event(project, events[4].id).await.unwrap(),
        Some(events[4].clone())
    );
    assert_eq!(
        store.get_event(project, Uuid::new_v4()).await.unwrap(),
        None
    );
}

/// Old events go with their deliveries and attempts.
pub async fn old_events_are_purged(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let hook = new_endpoint(&*store, project, "https://a.example/hook", T0).await;
    let (old, old_deliveries) = fanned_event(&*store, project, T0, &[&hook], T0).await;
    store.claim_deliveries("s", T0, T0 + 10, 10).await.unwrap();
    let record = attempt_record(
        old_deliveries[0].id,
        1,
        T0 + 1,
        Some(200),
        DeliveryNext::Delivered,
        0,
    );
    assert!(store.record_delivery_attempt("s", &record).await.unwrap());
    let unfanned = outbox(project, "user.deleted", T0 + 10);
    let recent = outbox(project, "user.created", T0 + 1_000);
    store
        .insert_events(&[unfanned.clone(), recent.clone()])
        .await
        .unwrap();

    assert_eq!(store.purge_events(T0 + 1_000).await.unwrap(), 2);
    assert_eq!(all_events(&*store, project).await, vec![recent.clone()]);
    assert_eq!(store.get_event(project, old.id).await.unwrap(), None);
    assert!(
        store
            .list_deliveries(project, old.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_delivery_attempts(old_deliveries[0].id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.unfanned_events(10).await.unwrap(), vec![recent]);
    assert_eq!(store.purge_events(T0 + 1_000).await.unwrap(), 0);
}

/// Master-key rotation reaches endpoint secrets: the current one of every endpoint, and
/// the previous one where a rotation left it.
pub async fn webhook_secrets_are_resealable(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let plain = new_endpoint(&*store, project, "https://a.example/hook", T0).await;
    let rotated = WebhookEndpoint {
        previous_secret_sealed: Some("sealed-old".into()),
        previous_secret_expires_at: Some(T0 + 1_000),
        ..endpoint(project, "https://b.example/hook", T0)
    };
    store.insert_webhook_endpoint(&rotated).await.unwrap();
    let mut ids = [plain.id, rotated.id];
    ids.sort();

    let current = store
        .list_sealed(SealedColumn::WebhookSecret, None, 10)
        .await
        .unwrap();
    let listed: Vec<_> = current.iter().map(|r| (r.id, r.project_id)).collect();
    assert_eq!(listed, [(ids[0], project), (ids[1], project)]);
    assert!(current.iter().all(|r| r.sealed == "sealed-whsec"));
    let page = store
        .list_sealed(SealedColumn::WebhookSecret, Some(ids[0]), 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    let previous = store
        .list_sealed(SealedColumn::WebhookPreviousSecret, None, 10)
        .await
        .unwrap();
    assert_eq!(previous.len(), 1);
    assert_eq!(
        (previous[0].id, previous[0].sealed.as_str()),
        (rotated.id, "sealed-old")
    );

    assert!(
        store
            .replace_sealed(
                SealedColumn::WebhookSecret,
                plain.id,
                "sealed-whsec",
                "re-1"
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_sealed(
                SealedColumn::WebhookSecret,
                plain.id,
                "sealed-whsec",
                "re-2"
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .replace_sealed(
                SealedColumn::WebhookPreviousSecret,
                rotated.id,
                "sealed-old",
                "re-3"
            )
            .await
            .unwrap()
    );
    let plain = store
        .get_webhook_endpoint(project, plain.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(plain.secret_sealed, "re-1");
    let rotated = store
        .get_webhook_endpoint(project, rotated.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.secret_sealed, "sealed-whsec");
    assert_eq!(rotated.previous_secret_sealed.as_deref(), Some("re-3"));
}

pub async fn webhook_endpoints_round_trip(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let other = new_project(&*store, "other").await;
    let second = new_endpoint(&*store, project, "https://b.example/hook", T0 + 1).await;
    let first = WebhookEndpoint {
        event_types: Vec::new(),
        previous_secret_sealed: Some("sealed-old".into()),
        previous_secret_expires_at: Some(T0 + 86_400_000),
        ..endpoint(project, "https://a.example/hook", T0)
    };
    store.insert_webhook_endpoint(&first).await.unwrap();
    assert!(matches!(
        store
            .insert_webhook_endpoint(&WebhookEndpoint {
                url: "https://c.example/hook".into(),
                ..first.clone()
            })
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.list_webhook_endpoints(project).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(
        store.get_webhook_endpoint(project, first.id).await.unwrap(),
        Some(first.clone())
    );
    let changed = WebhookEndpoint {
        url: "https://a2.example/hook".into(),
        description: "renamed".into(),
        event_types: vec!["execution.failed".into()],
        secret_sealed: "sealed-new".into(),
        previous_secret_sealed: None,
        previous_secret_expires_at: None,
        disabled_at: Some(T0 + 5),
        disabled_reason: Some("by hand".into()),
        consecutive_failures: 4,
        updated_at: T0 + 5,
        ..first.clone()
    };
    store.update_webhook_endpoint(&changed).await.unwrap();
    assert_eq!(
        store.get_webhook_endpoint(project, first.id).await.unwrap(),
        Some(changed.clone())
    );
    // Another project's endpoint is out of reach.
    assert_eq!(
        store.get_webhook_endpoint(other, first.id).await.unwrap(),
        None
    );
    assert!(
        store
            .list_webhook_endpoints(other)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .update_webhook_endpoint(&WebhookEndpoint {
                project_id: other,
                ..changed.clone()
            })
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_webhook_endpoint(other, first.id).await,
        Err(StoreError::NotFound)
    ));
    // Deleting an endpoint takes its deliveries and their attempts along.
    let (event, deliveries) = fanned_event(&*store, project, T0, &[&second], T0).await;
    store.claim_deliveries("s", T0, T0 + 10, 10).await.unwrap();
    let record = attempt_record(
        deliveries[0].id,
        1,
        T0 + 1,
        Some(500),
        DeliveryNext::RetryAt(T0 + 99),
        0,
    );
    assert!(store.record_delivery_attempt("s", &record).await.unwrap());
    store
        .delete_webhook_endpoint(project, second.id)
        .await
        .unwrap();
    assert!(matches!(
        store.delete_webhook_endpoint(project, second.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .list_deliveries(project, event.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_delivery_attempts(deliveries[0].id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_webhook_endpoints(project).await.unwrap(),
        vec![changed]
    );
    assert!(matches!(
        store
            .update_webhook_endpoint(&WebhookEndpoint {
                id: Uuid::new_v4(),
                ..first
            })
            .await,
        Err(StoreError::NotFound)
    ));
}

fn audit(project: ProjectId, at: i64, actor: &str, target: &str) -> AuditEntry {
    AuditEntry {
        id: v7_at(at),
        project_id: project,
        at,
        actor: actor.into(),
        action: format!("PATCH /api/v1/projects/{{projectId}}/{target}"),
        target: target.into(),
        before_digest: Some("b".repeat(64)),
        after_digest: None,
        status: 200,
    }
}

/// Audit entries list newest first, by actor, target prefix and time, in pages.
pub async fn audit_entries_filter_and_page(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let entries = [
        audit(project, T0, "admin", "users/u-1/metadata"),
        audit(project, T0 + 1_000, "key:k1", "users/u-1"),
        audit(project, T0 + 2_000, "key:k1", "users/u-10/metadata"),
        audit(project, T0 + 3_000, "dashboard:admin", "webhooks/w-1"),
        audit(project, T0 + 4_000, "key:k1", "users/u-2/metadata"),
        audit(project, T0 + 5_000, "key:k10", "users/u-1/credentials/c"),
    ];
    for entry in &entries {
        store.insert_audit_entry(entry).await.unwrap();
    }
    let list = |f: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .list_audit_entries(project, &f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    let ids = |picked: &[usize]| -> Vec<Uuid> { picked.iter().map(|&i| entries[i].id).collect() };
    let page = |limit| AuditFilter {
        limit,
        ..AuditFilter::default()
    };
    assert_eq!(list(page(100)).await, ids(&[5, 4, 3, 2, 1, 0]));
    assert_eq!(
        store.list_audit_entries(project, &page(1)).await.unwrap(),
        vec![entries[5].clone()]
    );
    // The actor matches exactly.
    assert_eq!(
        list(AuditFilter {
            actor: Some("key:k1".into()),
            ..page(100)
        })
        .await,
        ids(&[4, 2, 1])
    );
    // The target is a prefix.
    assert_eq!(
        list(AuditFilter {
            target: Some("users/u-1".into()),
            ..page(100)
        })
        .await,
        ids(&[5, 2, 1, 0])
    );
    assert_eq!(
        list(AuditFilter {
            target: Some("users/u-1/".into()),
            ..page(100)
        })
        .await,
        ids(&[5, 0])
    );
    assert_eq!(
        list(AuditFilter {
            target: Some("users/u-%".into()),
            ..page(100)
        })
        .await,
        ids(&[]),
        "no wildcards"
    );
    assert_eq!(
        list(AuditFilter {
            actor: Some("key:k1".into()),
            target: Some("users/u-1".into()),
            ..page(100)
        })
        .await,
        ids(&[2, 1])
    );
    // `since` is inclusive, `until` exclusive.
    assert_eq!(
        list(AuditFilter {
            since: Some(T0 + 1_000),
            until: Some(T0 + 4_000),
            ..page(100)
        })
        .await,
        ids(&[3, 2, 1])
    );
    let first = list(page(4)).await;
    assert_eq!(first, ids(&[5, 4, 3, 2]));
    assert_eq!(
        list(AuditFilter {
            before: first.last().copied(),
            ..page(4)
        })
        .await,
        ids(&[1, 0])
    );
    assert_eq!(
        list(AuditFilter {
            actor: Some("key:k1".into()),
            before: Some(entries[4].id),
            ..page(1)
        })
        .await,
        ids(&[2])
    );
}

/// Events, endpoints, deliveries and audit entries stay within their project.
pub async fn events_endpoints_and_audit_are_isolated_by_project(store: Arc<dyn Store>) {
    let p1 = new_project(&*store, "p1").await;
    let p2 = new_project(&*store, "p2").await;
    let hook = new_endpoint(&*store, p1, "https://a.example/hook", T0).await;
    let (event, _) = fanned_event(&*store, p1, T0, &[&hook], T0).await;
    store
        .insert_audit_entry(&audit(p1, T0, "admin", "users/u"))
        .await
        .unwrap();
    assert_eq!(store.get_event(p2, event.id).await.unwrap(), None);
    assert!(all_events(&*store, p2).await.is_empty());
    assert_eq!(all_events(&*store, p1).await, vec![event.clone()]);
    assert!(
        store
            .list_deliveries(p2, event.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_deliveries(p1, event.id).await.unwrap().len(), 1);
    assert!(store.list_webhook_endpoints(p2).await.unwrap().is_empty());
    assert_eq!(store.get_webhook_endpoint(p2, hook.id).await.unwrap(), None);
    let everything = AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    };
    assert!(
        store
            .list_audit_entries(p2, &everything)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_audit_entries(p1, &everything)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Senders claiming at once each get their own deliveries.
pub async fn concurrent_delivery_claims_never_share_a_delivery(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let hooks = [
        new_endpoint(&*store, project, "https://a.example/hook", T0).await,
        new_endpoint(&*store, project, "https://b.example/hook", T0).await,
    ];
    for i in 0..15 {
        fanned_event(&*store, project, T0 + i, &[&hooks[0], &hooks[1]], T0).await;
    }
    let claims: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_deliveries(&format!("s{i}"), T0 + 1, T0 + 60_000, 4)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for claim in claims {
        let batch = claim.await.unwrap();
        assert!(batch.len() <= 4, "{}", batch.len());
        claimed.extend(batch.into_iter().map(|c| c.delivery.id));
    }
    let total = claimed.len();
    claimed.sort_unstable();
    claimed.dedup();
    assert_eq!(claimed.len(), total, "a delivery was claimed twice");
    assert_eq!(total, 24, "six senders of four take 24 of 30");
}
