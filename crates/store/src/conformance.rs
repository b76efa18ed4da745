//! Behaviour every [`Store`] implementation must show. Each backend's test suite calls
//! [`conformance_tests!`](crate::conformance_tests) with a factory for fresh, isolated stores.

use std::sync::Arc;

use plugboard_core::{
    Metadata, MetadataLimits, Project, ProjectId, SecretKeyRecord, SigningKeyRecord, UserFilter,
    UserId,
};
use serde_json::json;
use uuid::Uuid;

use crate::{LastSeen, MetadataWrite, Store, StoreError};

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
    let first = store.ensure_user(project, &user, T0).await.unwrap();
    assert_eq!(first.created_at, T0);
    assert_eq!(first.meta, Metadata::default());
    assert!(!first.suspended);
    let again = store.ensure_user(project, &user, T0 + 5).await.unwrap();
    assert_eq!(again.created_at, T0);
    assert_eq!(again.seq, first.seq);
    assert_eq!(store.get_user(project, &user).await.unwrap(), Some(first));
}

pub async fn create_user_conflicts_when_present(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    let created = store
        .create_user(project, &user, &meta(json!({"Email": "a@b.c"})), T0)
        .await
        .unwrap();
    assert_eq!(created.meta.get_str("Email"), Some("a@b.c"));
    assert!(matches!(
        store
            .create_user(project, &user, &Metadata::default(), T0)
            .await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn metadata_write_is_optimistic(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let user = uid("u");
    let v0 = store.ensure_user(project, &user, T0).await.unwrap();
    let m1 = meta(json!({"plan": "pro", "nested": {"a": [1, 2, {"b": null}]}}));
    let v1 = store
        .write_metadata(MetadataWrite {
            project_id: project,
            user_id: &user,
            meta: &m1,
            expected_version: v0.version,
            now: T0 + 1,
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
        })
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

async fn set_meta(store: &dyn Store, project: ProjectId, user: &UserId, m: serde_json::Value) {
    let current = store.ensure_user(project, user, T0).await.unwrap();
    store
        .write_metadata(MetadataWrite {
            project_id: project,
            user_id: user,
            meta: &meta(m),
            expected_version: current.version,
            now: T0 + 1,
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
        .set_suspended(project, &uid("u03"), true, T0)
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
            .ensure_user(project, &uid(&format!("a{i}")), T0)
            .await
            .unwrap();
    }
    let first = store.list_users(project, &filter(3)).await.unwrap();
    assert_eq!(ids(&first), vec!["a5", "a4", "a3"]);
    for i in 0..3 {
        store
            .ensure_user(project, &uid(&format!("b{i}")), T0)
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
        .set_suspended(project, &user, true, T0 + 9)
        .await
        .unwrap();
    assert!(s.suspended);
    assert_eq!(s.meta.get_str("keep"), Some("me"));
    let r = store
        .set_suspended(project, &user, false, T0 + 10)
        .await
        .unwrap();
    assert!(!r.suspended);
    assert!(matches!(
        store.set_suspended(project, &uid("ghost"), true, T0).await,
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
    let counts = store.delete_user(project, &user).await.unwrap();
    assert_eq!(counts.users, 1);
    assert_eq!(counts.metadata_index_entries, 2);
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
        store.delete_user(project, &user).await,
        Err(StoreError::NotFound)
    ));
    // The id can be reused afterwards, as a new user.
    let again = store.ensure_user(project, &user, T0 + 100).await.unwrap();
    assert_eq!(again.created_at, T0 + 100);
    assert_eq!(again.meta, Metadata::default());
}

pub async fn last_seen_only_moves_forward(store: Arc<dyn Store>) {
    let project = new_project(&*store, "p").await;
    let (a, b) = (uid("a"), uid("b"));
    store.ensure_user(project, &a, T0).await.unwrap();
    store.ensure_user(project, &b, T0).await.unwrap();
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
        store.delete_user(p2, &user).await,
        Err(StoreError::NotFound)
    ));
    // The same id in another project is a different user.
    let other = store.ensure_user(p2, &user, T0).await.unwrap();
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
                store.ensure_user(project, &user, T0).await.unwrap().seq
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
