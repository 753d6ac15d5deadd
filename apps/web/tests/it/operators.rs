//! What an operator does to a deployment: files kept in the storage the settings name
//! (listed back from it), accounts and tokens made with `forklift-jobs admin`, and
//! processes starting together on an empty database.

use crate::support::*;
use forklift_rpc::v1 as pb;

#[tokio::test]
async fn uploads_and_outputs_are_objects_in_the_configured_storage() {
    let app = TestApp::start().await;
    let c = &app.client;
    let jpeg = test_jpeg(64, 48, None);
    let file = c.upload("a.jpg", &jpeg).await.unwrap();
    assert_eq!(
        app.stored_keys("uploads").await,
        [format!("uploads/{}", file.id)],
        "the upload is an object in the storage"
    );
    let job = c
        .submit(submit(
            thumbnail_params(&[(16, 16), (32, 32)], pb::Fit::Cover, pb::ImageFormat::Jpeg),
            &[&file.id],
        ))
        .await
        .unwrap();
    // The worker read the input from the storage and wrote its outputs there: with a
    // data directory of its own, it has nowhere else to find or leave them.
    let done = c.watch_to_end(&job.id).await.pop().unwrap();
    assert_eq!(done.state(), pb::JobState::Succeeded, "{done:#?}");
    let keys = app.stored_keys(&format!("jobs/{}", job.id)).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    for out in &done.outputs {
        assert!(
            keys.contains(&format!("jobs/{}/{}", job.id, out.name)),
            "{} in {keys:?}",
            out.name
        );
        let (_, body) = c.download(&out.file_id).await.unwrap();
        assert!(body.starts_with(&[0xFF, 0xD8]), "a JPEG");
    }
    // Extracted, this also checks that no process kept a file in its data directory.
    app.stop().await;
}

#[tokio::test]
async fn operators_create_users_and_tokens_with_commands() {
    let database = forklift_testkit::Postgres::shared().database();
    let dirs = DataDirs::new();
    let mut common: Vec<String> = ["--database-url", &database, "--log", "warn"]
        .map(String::from)
        .to_vec();
    common.extend(dirs.flags("operator"));
    let password = admin_command(
        &common,
        &["create-user", "--email", "Ops@Example.com", "--admin"],
    )
    .await
    .unwrap();
    assert!(password.len() >= 16, "a generated password: {password:?}");
    let accounts = forklift_accounts::Accounts::open(&database).await.unwrap();
    let (user, hash) = accounts
        .credentials("ops@example.com")
        .await
        .unwrap()
        .expect("the account exists");
    assert_eq!(user.role, forklift_domain::Role::Admin);
    assert!(forklift_accounts::verify_password(
        &password,
        &hash.unwrap()
    ));

    let err = admin_command(&common, &["create-user", "--email", "ops@example.com"])
        .await
        .unwrap_err();
    assert!(err.contains("exists already"), "{err}");
    let err = admin_command(&common, &["create-user", "--email", "not-an-email"])
        .await
        .unwrap_err();
    assert!(err.contains("not an email address"), "{err}");

    // A password of the operator's own, from standard input; nothing printed.
    let out = admin_command_with_input(
        &common,
        &[
            "create-user",
            "--email",
            "ann@example.com",
            "--password-stdin",
        ],
        "correct horse battery\n",
    )
    .await
    .unwrap();
    assert_eq!(out, "");
    let (ann, hash) = accounts
        .credentials("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.role, forklift_domain::Role::User);
    assert!(forklift_accounts::verify_password(
        "correct horse battery",
        &hash.unwrap()
    ));
    let err = admin_command_with_input(
        &common,
        &[
            "create-user",
            "--email",
            "bo@example.com",
            "--password-stdin",
        ],
        "short\n",
    )
    .await
    .unwrap_err();
    assert!(err.contains("at least 8 characters"), "{err}");

    let token = admin_command(&common, &["create-token", "--email", "ops@example.com"])
        .await
        .unwrap();
    let owner = accounts
        .user_by_token_hash(&forklift_accounts::hash_token(&token))
        .await
        .unwrap()
        .expect("the printed token is stored by its hash");
    assert_eq!(owner.id, user.id);
    let err = admin_command(&common, &["create-token", "--email", "nobody@example.com"])
        .await
        .unwrap_err();
    assert!(err.contains("no account"), "{err}");
    accounts.close().await;
    dirs.assert_no_files();
}

#[tokio::test]
async fn processes_starting_together_on_an_empty_database_make_one_first_admin() {
    let database = forklift_testkit::Postgres::shared().database();
    let dirs = DataDirs::new();
    let starts = (0..4).map(|i| {
        let mut args: Vec<String> = [
            "forklift-jobs",
            "--database-url",
            &database,
            "--log",
            "warn",
        ]
        .map(String::from)
        .to_vec();
        args.extend(dirs.flags(&format!("api-{i}")));
        let cfg: forklift_config::JobsConfig = forklift_config::parse_from(args).unwrap();
        async move { forklift_host::JobsHost::build(&cfg.common, true).await }
    });
    let hosts: Vec<_> = futures::future::join_all(starts)
        .await
        .into_iter()
        .map(|h| h.expect("every process starts"))
        .collect();
    let bootstrapped = hosts
        .iter()
        .filter(|h| h.admin_token_file().is_some())
        .count();
    assert_eq!(bootstrapped, 1, "exactly one process made the first admin");
    let pg = forklift_testkit::Postgres::shared();
    assert_eq!(pg.query(&database, "SELECT count(*) FROM users"), "1");
    assert_eq!(pg.query(&database, "SELECT count(*) FROM api_tokens"), "1");
    for h in hosts {
        h.store().close().await;
    }
}
