//! CRM users with API tokens, made straight in the store for a harness to act as.

use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role, TokenScope};
use crm_store::Db;

/// A user with `role` and an API token; returns (user id, token).
pub async fn with_token(db: &Db, name: &str, role: Role) -> (i64, String) {
    let user = crm_store::users::create(
        db,
        &Actor::system(),
        NewUser { name: name.into(), email: None, role, telegram_user_id: None, time_zone: None },
    )
    .await
    .expect("create a test user");
    let (_, token) = crm_store::tokens::create(db, user.id, "test").await.expect("create a test token");
    (user.id, token)
}

/// A delegate token owned by `user_id`, as the bot holds: it acts for the user each request
/// names and has none of the operator's powers.
pub async fn delegate_token(db: &Db, user_id: i64) -> String {
    let new = crm_store::tokens::NewToken { name: "bot", scope: TokenScope::Delegate, expires_at: None };
    let (_, token) = crm_store::tokens::create_with(db, user_id, &new).await.expect("create a delegate token");
    token
}

/// A user with `role` linked to Telegram account `telegram_id` (the bot knows them), in
/// `time_zone` (`None`: the installation's default).
pub async fn linked(
    db: &Db,
    name: &str,
    role: Role,
    telegram_id: i64,
    time_zone: Option<&str>,
) -> crm_concepts::user::User {
    crm_store::users::create(
        db,
        &Actor::system(),
        NewUser {
            name: name.into(),
            email: None,
            role,
            telegram_user_id: Some(telegram_id),
            time_zone: time_zone.map(str::to_string),
        },
    )
    .await
    .expect("create a linked test user")
}
