//! One file per subcommand.

pub mod bench;
pub mod bench_bot;
pub mod bench_hostcalls;
pub mod bench_runs;
pub mod bench_runtime;
pub mod bench_stack;
pub mod bench_web;
pub mod bot;
pub mod component;
pub mod demo_data;
pub mod engine_client;
pub mod examples;
pub mod invite;
pub mod migrate;
pub mod redis_acl;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod serve;
pub mod token;
pub mod up;
pub mod user;
pub mod webhook;
pub mod worker;
pub mod workflow;
pub mod workflow_test;
