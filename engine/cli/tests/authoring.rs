//! From nothing to a running workflow, in each language, with the real binaries: `crm
//! workflow new hello --lang L --trigger bot` in a folder outside the source tree, edit the
//! step's function, `crm workflow test hello` (fails until the expectation follows the
//! edit), `crm workflow deploy hello`, and `/hello Ann` in the bot answers with the
//! function's output — through `crm serve`, a `crm worker` that prepared the new component
//! before the run, and the loopback Bot API server.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_testing::process::{Process, crm, rust_log};
use crm_testing::{LocalBotApi, TestStack, TgUser};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// `crm ARGS` in `cwd`. Rust steps build into the guests' target directory, whose
/// dependencies (wit-bindgen, serde) are already built with the same profile.
fn crm_in(cwd: &Path, args: &[&str]) -> Output {
    let target = crm_testing::workspace::root().join("target/wasm-guests");
    crm().current_dir(cwd).env("CARGO_TARGET_DIR", target).args(args).output().expect("run crm")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let before = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(before.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, before.replace(from, to)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_edit_test_deploy_then_hello_in_the_bot_in_python_js_and_rust() {
    let stack = TestStack::start("authoring").await;
    for name in ["Ann Lee", "Bo Chen", "Cy Diaz"] {
        let (status, body) = stack.post("/api/contacts", json!({ "name": name })).await;
        assert_eq!(status, 201, "{body}");
    }
    // A production worker (the engine's URL, a credential, Redis; no database) that says
    // when it prepares a component.
    let worker = stack.start_worker_with(4, &[("RUST_LOG", "warn,crm_worker=info")]).await;
    let user = crm_store::users::create(
        &stack.db,
        &Actor::system(),
        NewUser {
            name: "Max Manager".into(),
            email: None,
            role: Role::Manager,
            telegram_user_id: Some(9001),
            time_zone: None,
        },
    )
    .await
    .expect("a linked user");
    let max = TgUser::new(9001, "Max");
    let api = LocalBotApi::start("4242:authoring").await.expect("local Bot API server");
    let bot_data = tempfile::tempdir().unwrap();
    let mut bot: Option<Process> = None;

    for (lang, source, label) in
        [("python", "hello.py", "Python"), ("js", "hello.js", "JS"), ("rust", "src/lib.rs", "Rust")]
    {
        // A folder outside the crm source tree, as a team's own repository would be.
        let home = tempfile::tempdir().unwrap();
        let out = crm_in(home.path(), &["workflow", "new", "hello", "--lang", lang, "--trigger", "bot"]);
        assert!(out.status.success(), "{lang}: {}", text(&out));
        let dir = home.path().join("hello");
        assert!(
            std::fs::read_to_string(dir.join("workflow.toml"))
                .unwrap()
                .starts_with("#:schema ./.crm/workflow.schema.json")
        );
        assert!(dir.join(".crm/workflow.schema.json").is_file());

        // The scaffold passes its own test as it is.
        let out = crm_in(home.path(), &["workflow", "test", "hello"]);
        assert!(out.status.success(), "{lang}: {}", text(&out));
        assert!(text(&out).contains("1 passed, 0 failed"), "{lang}: {}", text(&out));

        // Edit the function: the test now fails, saying what differs ...
        replace_in(&dir.join(source), "Hello, ", &format!("Hi from {label}, "));
        let out = crm_in(home.path(), &["workflow", "test", "hello"]);
        assert!(!out.status.success(), "{lang}: {}", text(&out));
        let said = text(&out);
        assert!(said.contains("FAILED") && said.contains(&format!("Hi from {label}, Ann!")), "{lang}: {said}");
        // ... until the expectation follows the edit.
        replace_in(&dir.join("tests/hello.json"), "Hello, Ann!", &format!("Hi from {label}, Ann!"));
        let out = crm_in(home.path(), &["workflow", "test", "hello"]);
        assert!(out.status.success(), "{lang}: {}", text(&out));

        let prepared_before = worker.log().matches("component prepared ahead of its runs").count();
        let out = crm_in(
            home.path(),
            &["workflow", "deploy", "hello", "--engine", &stack.url, "--token", &stack.admin_token],
        );
        assert!(out.status.success(), "{lang}: {}", text(&out));
        assert!(text(&out).contains("deployed hello version"), "{lang}: {}", text(&out));
        // The worker compiles the new version's component before anyone runs it.
        let deadline = tokio::time::Instant::now() + WAIT;
        while worker.log().matches("component prepared ahead of its runs").count() == prepared_before {
            assert!(tokio::time::Instant::now() < deadline, "{lang}: the worker never prepared the component");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        if bot.is_none() {
            let mut cmd = crm();
            crm_testing::bot::configure(&mut cmd, &api, &stack.url, &stack.admin_token, bot_data.path())
                .env("CRM_BOT_POLL_TIMEOUT_SECS", "10")
                .env("RUST_LOG", rust_log("warn"));
            bot = Some(Process::spawn("crm bot", cmd, &bot_data.path().join("bot.log")).expect("start crm bot"));
            api.wait_for(0, WAIT, |c| c.method == "getUpdates" && c.result.is_some()).await.expect("the bot polls");
        }
        let since = api.seq();
        api.send_text(&max, "/hello Ann");
        let running = api.reply(max.id, since, WAIT).await.expect("the bot answers /hello");
        let answer = if running.text().starts_with('⏳') {
            api.wait_for(running.seq, WAIT, |c| {
                c.method == "editMessageText" && c.message_id() == running.message_id() && c.result.is_some()
            })
            .await
            .expect("the running message becomes the result")
        } else {
            running
        };
        assert_eq!(answer.text(), format!("Hi from {label}, Ann! The CRM has 3 contact(s)."), "{lang}");
    }
    drop(bot);
    let _ = user;
}
