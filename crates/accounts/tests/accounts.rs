//! The accounts' guarantees, on a real SQLite file and a real PostgreSQL database per
//! test: emails are unique whatever their case, sessions and tokens authenticate only
//! while live, concurrent writes each land exactly once and a failing one fails alone.

use forklift_accounts::Accounts;
use forklift_domain::{Role, now_ms};

// Each test runs on a fresh database of either backend.
use forklift_testkit::TestDb as Db;

async fn accounts(db: Db) -> (Accounts, Option<tempfile::TempDir>) {
    let (url, dir) = db.fresh_url();
    (Accounts::open(&url).await.unwrap(), dir)
}

forklift_testkit::on_both_databases!(
    accounts_sessions_and_tokens,
    failing_writes_among_concurrent_ones_fail_alone,
    a_closed_handle_refuses_queries_and_a_reopened_one_keeps_its_data,
    the_first_admin_is_made_once,
);

async fn accounts_sessions_and_tokens(db: Db) {
    let (s, _dir) = accounts(db).await;
    let ann = s
        .create_account(" Ann@Example.com ", "hash-a", Role::User)
        .await
        .unwrap()
        .expect("new account");
    assert_eq!(ann.email, "ann@example.com");
    assert!(
        s.create_account("ANN@example.com", "hash-b", Role::User)
            .await
            .unwrap()
            .is_none(),
        "emails are unique whatever their case"
    );
    let (found, hash) = s.credentials("ann@EXAMPLE.com").await.unwrap().unwrap();
    assert_eq!((found.id, hash.as_deref()), (ann.id, Some("hash-a")));
    assert!(s.credentials("bob@example.com").await.unwrap().is_none());

    // Sessions: live until deleted or expired.
    s.create_session("live", ann.id, now_ms() + 60_000)
        .await
        .unwrap();
    s.create_session("old", ann.id, now_ms() - 1).await.unwrap();
    assert_eq!(
        s.session_user("live").await.unwrap().map(|u| u.id),
        Some(ann.id)
    );
    assert!(s.session_user("old").await.unwrap().is_none());
    assert_eq!(s.delete_expired_sessions().await.unwrap(), 1);
    s.delete_session("live").await.unwrap();
    assert!(s.session_user("live").await.unwrap().is_none());

    // Tokens: listed without the secret, revoked only by their owner.
    let bob = s.create_user("bob@example.com", Role::User).await.unwrap();
    let id = s.create_api_token(ann.id, "ci", "h1").await.unwrap();
    assert_eq!(
        s.user_by_token_hash("h1").await.unwrap().map(|u| u.id),
        Some(ann.id)
    );
    assert!(!s.revoke_api_token(bob.id, &id).await.unwrap(), "not bob's");
    assert!(s.revoke_api_token(ann.id, &id).await.unwrap());
    assert!(
        !s.revoke_api_token(ann.id, &id).await.unwrap(),
        "already revoked"
    );
    assert!(s.user_by_token_hash("h1").await.unwrap().is_none());
    let tokens = s.list_api_tokens(ann.id).await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].name, "ci");
    assert!(tokens[0].revoked_at.is_some());
    assert!(s.list_api_tokens(bob.id).await.unwrap().is_empty());
}

/// Writes that break a constraint, sent at the same time as many that do not: the
/// failing ones report their own error and leave nothing behind; the rest all land.
async fn failing_writes_among_concurrent_ones_fail_alone(db: Db) {
    let (s, _d) = accounts(db).await;
    for i in 0..50 {
        s.create_user(&format!("taken-{i}@x"), Role::User)
            .await
            .unwrap();
    }
    let nobody = forklift_domain::UserId::new();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                match i % 4 {
                    // A fresh account: lands.
                    0 | 1 => s
                        .create_user(&format!("new-{i}@x"), Role::User)
                        .await
                        .map(|_| ()),
                    // An email that is taken: a unique violation.
                    2 => s
                        .create_user(&format!("taken-{}@x", i / 4), Role::User)
                        .await
                        .map(|_| ()),
                    // A token for an account that does not exist: a foreign-key violation.
                    _ => s
                        .create_api_token(nobody, "t", &format!("hash-{i}"))
                        .await
                        .map(|_| ()),
                }
                .map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    for (i, r) in results.iter().enumerate() {
        match i % 4 {
            0 | 1 => assert!(r.is_ok(), "write {i}: {r:?}"),
            2 => assert!(
                r.as_ref()
                    .is_err_and(|e| e.contains("unique") || e.contains("UNIQUE")),
                "write {i}: {r:?}"
            ),
            _ => assert!(
                r.as_ref()
                    .is_err_and(|e| e.contains("foreign key") || e.contains("FOREIGN KEY")),
                "write {i}: {r:?}"
            ),
        }
    }
    assert_eq!(s.count_users().await.unwrap(), 50 + 100);
    for i in (0..200).filter(|i| i % 4 < 2) {
        let (user, _) = s.credentials(&format!("new-{i}@x")).await.unwrap().unwrap();
        assert_eq!(user.email, format!("new-{i}@x"));
    }
    for i in (0..200).filter(|i| i % 4 == 3) {
        assert!(
            s.user_by_token_hash(&format!("hash-{i}"))
                .await
                .unwrap()
                .is_none()
        );
    }
}

async fn a_closed_handle_refuses_queries_and_a_reopened_one_keeps_its_data(db: Db) {
    let (url, _d) = db.fresh_url();
    let s = Accounts::open(&url).await.unwrap();
    let user = s.create_user("kept@x", Role::User).await.unwrap();
    s.ping().await.unwrap();
    let clone = s.clone();
    s.close().await;
    assert!(
        clone.get_user(user.id).await.is_err(),
        "closed for every clone"
    );
    assert!(clone.create_user("late@x", Role::User).await.is_err());

    // Opening again runs the migrations again: they are all recorded as applied.
    let s = Accounts::open(&url).await.unwrap();
    assert_eq!(
        s.get_user(user.id).await.unwrap().map(|u| u.email),
        Some("kept@x".into())
    );
    assert_eq!(s.count_users().await.unwrap(), 1);
    s.close().await;
}

async fn the_first_admin_is_made_once(db: Db) {
    let (s, _d) = accounts(db).await;
    let first = forklift_accounts::bootstrap_admin(&s)
        .await
        .unwrap()
        .expect("an empty database gets its first admin");
    let (admin, hash) = s
        .credentials(forklift_accounts::BOOTSTRAP_ADMIN)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin.role, Role::Admin);
    assert!(forklift_accounts::verify_password(
        &first.password,
        &hash.unwrap()
    ));
    assert_eq!(
        s.user_by_token_hash(&forklift_accounts::hash_token(&first.token))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(admin.id)
    );
    assert!(
        forklift_accounts::bootstrap_admin(&s)
            .await
            .unwrap()
            .is_none(),
        "accounts exist: nothing is made"
    );
    assert_eq!(s.count_users().await.unwrap(), 1);
}
