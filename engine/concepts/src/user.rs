//! CRM users and their roles. A role decides what a user's API tokens (and the chat user
//! linked to them) may do.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
