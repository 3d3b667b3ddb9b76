//! crm-testing: what the tests of every crate share, one concept per module.
//!
//! - `services`: the test Postgres and Redis (`CRM_TEST_PG`, `CRM_TEST_REDIS`), a scratch
//!   database and a Redis key prefix per test, removed afterwards;
//! - `process`: `crm` processes that cannot reach the default installation, with their
//!   output in a log file, their listening address awaited, killed on drop;
//! - `redis_server`, `redis_cluster`: a private Redis with ACL users, a private
//!   three-master Redis Cluster;
//! - `stack`: `crm serve` with an admin, a manager and a viewer ([`TestStack`]);
//! - `flow`: the whole run path, engine and workers, with crash controls ([`Flow`]);
//! - `worker`: one `crm worker` fed jobs by the test ([`WorkerHarness`]);
//! - `bot_api`: a Bot-API-compatible server on loopback ([`LocalBotApi`]), `bot`, the
//!   `crm bot` process that talks to it ([`bot::ChatBot`]), and `bot_stack`, an engine with
//!   a bot in front ([`BotStack`]);
//! - `browser`: a headless Chromium driven over WebDriver, for the web app ([`Browser`]);
//! - `fixtures`: the hostile fixture components with the error each must end with;
//! - `otlp`: an OTLP/HTTP trace receiver on loopback ([`otlp::OtlpReceiver`]);
//! - `deploy`: manifests deployed straight through the store; `http`: requests to the API;
//!   `users`: users with tokens; `workspace`: where the repository's files are.
//!
//! `crm bench bot` uses `process` and `bot_api` too; nothing else of the product does.

pub mod bot;
pub mod bot_api;
pub mod bot_stack;
pub mod browser;
pub mod deploy;
pub mod fixtures;
pub mod flow;
pub mod http;
pub mod manifests;
pub mod otlp;
pub mod ports;
pub mod process;
pub mod redis_cluster;
pub mod redis_server;
pub mod services;
pub mod stack;
pub mod users;
pub mod worker;
pub mod workspace;

pub use bot_api::{Call, LocalBotApi, TgUser};
pub use bot_stack::BotStack;
pub use browser::Browser;
pub use flow::Flow;
pub use http::send;
pub use services::{ScratchDb, TestPrefix, scheduler};
pub use stack::{Options, TestStack};
pub use worker::WorkerHarness;
