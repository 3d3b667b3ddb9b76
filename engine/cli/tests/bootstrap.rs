//! `crm bootstrap`, an unattended deploy's first step: on a server with no `crm` database
//! it creates the database, migrates, makes the first admin and writes the worker's
//! credential and the bot's delegate token to files only their owner can read; run again,
//! it changes nothing.

use std::os::unix::fs::PermissionsExt as _;

use crm_testing::process::crm;
use crm_testing::services::UnmadeDb;

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_makes_the_admin_and_the_credentials_once() {
    let made = UnmadeDb::new("bootstrap");
    let url = made.url.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let (admin, worker, bot) = (dir.path().join("admin"), dir.path().join("worker"), dir.path().join("bot"));
    let bootstrap = || {
        let out = crm()
            .env("CRM_DATABASE_URL", &url)
            .arg("bootstrap")
            .arg("--admin-token")
            .arg(&admin)
            .arg("--worker-credential")
            .arg(&worker)
            .arg("--bot-token")
            .arg(&bot)
            .output()
            .expect("run crm bootstrap");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = bootstrap();
    assert!(first.contains("created admin user"), "{first}");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("a written secret");
    let secrets = (read(&admin), read(&worker), read(&bot));
    for p in [&admin, &worker, &bot] {
        assert_eq!(std::fs::metadata(p).expect("file").permissions().mode() & 0o777, 0o600, "{}", p.display());
    }

    let second = bootstrap();
    assert!(!second.contains("created") && !second.contains("written"), "nothing new the second time: {second}");
    assert_eq!((read(&admin), read(&worker), read(&bot)), secrets);

    let db = made.connect(1).await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&db.pool).await.expect("users");
    assert_eq!(users, 1);
    let (user, _) =
        crm_store::tokens::authenticate(&db, &secrets.0).await.expect("auth").expect("the admin token works");
    assert!(user.role.is_admin());
    assert!(crm_store::worker_credentials::authenticate(&db, &secrets.1).await.expect("auth").is_some());
    let (bot_user, presented) =
        crm_store::tokens::authenticate(&db, &secrets.2).await.expect("auth").expect("bot token");
    assert_eq!(bot_user.id, user.id);
    assert_eq!(presented.scope, crm_concepts::user::TokenScope::Delegate, "the bot's token is a delegate token");
    db.pool.close().await;
}
