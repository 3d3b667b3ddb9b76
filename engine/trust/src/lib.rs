//! The engine's authority over what workers do, so that Redis can be a transport that
//! trusts no one:
//!
//! - **Jobs are signed** ([`EngineKey::sign_jobs`], Ed25519, one signature for each batch
//!   sent together: the root of a Merkle tree over the batch is signed, and each job
//!   carries its path to it). A worker runs a job only if its proof verifies under the
//!   engine's public key ([`JobVerifier`]): whoever can write to Redis but lacks the
//!   engine's key cannot make a worker run a component, name one by path, or widen a grant.
//! - **Each attempt carries a ticket** ([`EngineKey::mint`]): the attempt's identity and
//!   deadline under a MAC only the engine can make or check. Every host call and every
//!   result a worker sends names its ticket; the engine accepts nothing for an attempt it
//!   did not dispatch, and re-checks each call's grant against the deployed version.
//! - **What the engine publishes is MAC'd** ([`EngineKey::seal`]): a completion forged
//!   on Redis is not forwarded to the bot.
//!
//! One 32-byte seed (kept in Postgres, shared by engine replicas) derives all of it.

mod batch;
mod key;
mod ticket;
mod verifier;

pub use key::EngineKey;
pub use ticket::{SentAhead, Ticket, TicketError};
pub use verifier::JobVerifier;
