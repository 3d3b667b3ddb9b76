//! CRM users and their roles. A role decides what a user's API tokens (and the chat user
//! linked to them) may do.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::language::Language;
use crate::records::Id;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// everything, including users, tokens and acting for other users
    Admin,
    /// reads and writes records
    Manager,
    /// reads only
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Viewer => "viewer",
        }
    }
    pub fn can_write(self) -> bool {
        matches!(self, Role::Admin | Role::Manager)
    }
    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, manager or viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "manager" => Ok(Role::Manager),
            "viewer" => Ok(Role::Viewer),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

// Sent with every field, `null` when unset: `#[schema(required)]` keeps the `Option`s
// required in the OpenAPI document, which would otherwise make them optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Id,
    pub name: String,
    #[schema(required)]
    pub email: Option<String>,
    pub role: Role,
    #[schema(required)]
    pub telegram_user_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    #[schema(required)]
    pub disabled_at: Option<DateTime<Utc>>,
    /// the IANA zone due times are typed and shown in and "today" is counted in
    #[serde(default = "utc")]
    pub time_zone: String,
    /// how long before a task's due time its reminder comes (0: at the due time)
    #[serde(default)]
    pub remind_before_minutes: i32,
    /// the language the bot speaks to them in; unset: their Telegram app's
    #[serde(default)]
    #[schema(required)]
    pub language: Option<Language>,
}

fn utc() -> String {
    "UTC".into()
}

impl User {
    /// The user's zone; UTC for a name this build's zone database does not know (the name
    /// was checked when it was set, so only a zone dropped from a newer database gets here).
    pub fn zone(&self) -> chrono_tz::Tz {
        crate::local_time::zone(&self.time_zone).unwrap_or(chrono_tz::Tz::UTC)
    }
}

/// A user as a workflow step sees them (`get-user`): enough to address them and say a time
/// the way they read it; never their email, role or chat account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserProfile {
    pub id: Id,
    pub name: String,
    #[serde(default = "utc")]
    pub time_zone: String,
    #[serde(default)]
    pub remind_before_minutes: i32,
}

impl From<User> for UserProfile {
    fn from(u: User) -> UserProfile {
        UserProfile { id: u.id, name: u.name, time_zone: u.time_zone, remind_before_minutes: u.remind_before_minutes }
    }
}

/// The most a reminder may come before its task is due: a week.
pub const MAX_REMIND_BEFORE_MINUTES: i32 = 7 * 24 * 60;

/// A person's own settings; what is absent stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    /// an IANA zone name, e.g. `Europe/Berlin`
    #[serde(default)]
    pub time_zone: Option<String>,
    /// 0 to 10080 (a week)
    #[serde(default)]
    pub remind_before_minutes: Option<i32>,
    /// `en` or `ru`; `null` goes back to following the Telegram app's language
    #[serde(default, deserialize_with = "crate::records::nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Language>)]
    pub language: Option<Option<Language>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    pub role: Role,
    #[serde(default)]
    pub telegram_user_id: Option<i64>,
    /// an IANA zone name; unset: the installation's default (CRM_TIME_ZONE)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// the token is its user, with the user's role
    #[default]
    Full,
    /// the bot's kind: acts for the CRM user each request names (`X-Crm-Acting-User`), with
    /// that user's role, and never has the operator's powers (deploying workflows, secrets and
    /// webhook keys, users and roles, tokens); on its own it may only look users up, redeem
    /// invites and follow the completion and notification streams
    Delegate,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Full => "full",
            TokenScope::Delegate => "delegate",
        }
    }
}

impl FromStr for TokenScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(TokenScope::Full),
            "delegate" => Ok(TokenScope::Delegate),
            other => Err(format!("unknown token scope {other:?}: expected full or delegate")),
        }
    }
}

/// An API token as listed: never the secret, which is shown once at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: Id,
    pub user_id: Id,
    pub name: String,
    pub scope: TokenScope,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}
