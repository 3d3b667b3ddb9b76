//! Telegram Mini App sign-in: checking the `initData` a Telegram client hands the app.
//!
//! As Telegram documents it ("Validating data received via the Mini App"): the data is a
//! query string; all its fields but `hash`, as `key=value` lines sorted by key and joined
//! with `\n`, form the data-check string; the secret key is HMAC-SHA256 of the bot token
//! under the key `WebAppData`; `hash` must be the hex HMAC-SHA256 of the data-check string
//! under that secret key. `auth_date` says when Telegram signed it: older data is refused,
//! so a leaked `initData` stops working soon.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Signed data older than this is refused.
pub const MAX_AGE: Duration = Duration::hours(1);

/// The Telegram user the data vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TelegramUser {
    pub id: i64,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitDataError {
    #[error("the Telegram data is not signed (no hash)")]
    Unsigned,
    #[error("the Telegram data's signature does not match this bot")]
    BadSignature,
    #[error("the Telegram data has expired; open the app from the bot again")]
    Expired,
    #[error("the Telegram data is malformed: {0}")]
    Malformed(String),
}

/// Checks `init_data` against `bot_token` at `now`; returns the user it vouches for.
pub fn verify(init_data: &str, bot_token: &str, now: DateTime<Utc>) -> Result<TelegramUser, InitDataError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(init_data).map_err(|e| InitDataError::Malformed(e.to_string()))?;
    let hash = pairs.iter().find(|(k, _)| k == "hash").map(|(_, v)| v.clone()).ok_or(InitDataError::Unsigned)?;
    let expected = hex::decode(&hash).map_err(|_| InitDataError::BadSignature)?;
    let mut fields: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "hash").collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let check: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let check = check.join("\n");

    let mut secret = Hmac::<Sha256>::new_from_slice(b"WebAppData").map_err(|_| InitDataError::BadSignature)?;
    secret.update(bot_token.as_bytes());
    let secret = secret.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).map_err(|_| InitDataError::BadSignature)?;
    mac.update(check.as_bytes());
    mac.verify_slice(&expected).map_err(|_| InitDataError::BadSignature)?;

    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let auth_date: i64 = field("auth_date")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| InitDataError::Malformed("no auth_date".into()))?;
    let signed_at =
        DateTime::from_timestamp(auth_date, 0).ok_or_else(|| InitDataError::Malformed("bad auth_date".into()))?;
    if now - signed_at > MAX_AGE || signed_at - now > Duration::minutes(5) {
        return Err(InitDataError::Expired);
    }
    let user = field("user").ok_or_else(|| InitDataError::Malformed("no user".into()))?;
    serde_json::from_str(user).map_err(|e| InitDataError::Malformed(format!("user: {e}")))
}

/// Signs `fields` the way Telegram does, for tests and local tools that play Telegram:
/// returns the whole `initData` query string with its `hash`.
pub fn sign(fields: &[(&str, &str)], bot_token: &str) -> String {
    let mut sorted: Vec<&(&str, &str)> = fields.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let check = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n");
    let mut secret = Hmac::<Sha256>::new_from_slice(b"WebAppData").expect("HMAC takes any key");
    secret.update(bot_token.as_bytes());
    let secret = secret.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).expect("HMAC takes any key");
    mac.update(check.as_bytes());
    let hash = hex::encode(mac.finalize().into_bytes());
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.push(("hash", &hash));
    serde_urlencoded::to_string(all).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "4242:local-test-token";

    fn data(now: DateTime<Utc>) -> String {
        let auth = now.timestamp().to_string();
        sign(
            &[
                ("query_id", "AAHdF6IQAAAAAN0XohDhrOrc"),
                ("user", r#"{"id":279058397,"first_name":"Vladislav","username":"vdkfrost"}"#),
                ("auth_date", &auth),
            ],
            TOKEN,
        )
    }

    #[test]
    fn accepts_data_signed_with_the_bot_token() {
        let now = Utc::now();
        let user = verify(&data(now), TOKEN, now).unwrap();
        assert_eq!(user.id, 279058397);
        assert_eq!(user.username.as_deref(), Some("vdkfrost"));
    }

    #[test]
    fn refuses_another_bot_a_changed_field_and_stale_data() {
        let now = Utc::now();
        assert_eq!(verify(&data(now), "4242:another", now), Err(InitDataError::BadSignature));
        let forged = data(now).replace("279058397", "279058398");
        assert_eq!(verify(&forged, TOKEN, now), Err(InitDataError::BadSignature));
        assert_eq!(verify(&data(now), TOKEN, now + Duration::hours(2)), Err(InitDataError::Expired));
        assert_eq!(verify("user=%7B%7D&auth_date=1", TOKEN, now), Err(InitDataError::Unsigned));
    }

    /// The data-check string is built from the decoded values, as Telegram's own example
    /// shows: a value with `&`, `=` or a newline escaped in transit still verifies.
    #[test]
    fn values_are_checked_decoded() {
        let now = Utc::now();
        let auth = now.timestamp().to_string();
        let d = sign(&[("user", r#"{"id":7,"first_name":"A&B = C"}"#), ("auth_date", &auth)], TOKEN);
        assert!(d.contains("%26"), "{d}");
        assert_eq!(verify(&d, TOKEN, now).unwrap().first_name, "A&B = C");
    }
}
