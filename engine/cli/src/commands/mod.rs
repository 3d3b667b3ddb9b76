//! One file per subcommand.

pub mod migrate;
pub mod schedule;
pub mod webhook;
pub mod bench;
pub mod bench_bot;
pub mod bot;
pub mod demo_data;
pub mod invite;
pub mod serve;
pub mod token;
pub mod up;
pub mod user;
pub mod engine_client;
pub mod examples;
pub mod bench_runs;
pub mod run;
pub mod workflow;
pub mod bench_runtime;
pub mod component;
pub mod worker;
