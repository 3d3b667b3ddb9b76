//! CRM users with API tokens, made straight in the store for a harness to act as.

use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_store::Db;

/// A user with `role` and an API token; returns (user id, token).
pub async fn with_token(db: &Db, name: &str, role: Role) -> (i64, String) {
    let user = crm_store::users::create(
        db,
        &Actor::system(),
        NewUser { name: name.into(), email: None, role, telegram_user_id: None },
    )
    .await
    .expect("create a test user");
    let (_, token) = crm_store::tokens::create(db, user.id, "test").await.expect("create a test token");
    (user.id, token)
}
