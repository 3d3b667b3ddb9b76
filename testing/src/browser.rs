//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`), for the web app's scenario tests: a fresh profile per browser, no
//! network beyond loopback, killed with its driver on drop.
//!
//! ```ignore
//! let browser = crm_testing::Browser::start().await;
//! browser.sign_in_with_token(&stack.url, &stack.manager_token).await;
//! browser.goto(&format!("{}/board", stack.url)).await;
//! ```

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::process::Process;

/// How long a page, an element or a condition is waited for.
pub const WAIT: Duration = Duration::from_secs(20);

/// Where Debian installs them; `CRM_TEST_CHROMIUM` and `CRM_TEST_CHROMEDRIVER` point elsewhere.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The flags every test browser runs with: headless, and nothing that would reach out of
/// this machine (this test machine refuses outside connections anyway).
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
];

pub struct Browser {
    pub client: Client,
    driver: Process,
    /// the driver's process group: the browsers it started are in it too
    group: i32,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a browser session with a fresh profile.
    pub async fn start() -> Browser {
        let chromium = std::env::var("CRM_TEST_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
        let chromedriver = std::env::var("CRM_TEST_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
        assert!(
            std::path::Path::new(&chromium).exists() && std::path::Path::new(&chromedriver).exists(),
            "the web tests need Chromium and chromedriver: apt-get install chromium chromium-driver (.ci/run does)"
        );
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let port = crate::ports::free_port();
        let mut cmd = Command::new(&chromedriver);
        cmd.args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()]);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let driver = Process::spawn("chromedriver", cmd, &profile.path().join("chromedriver.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        let group = i32::try_from(driver.pid()).expect("a pid fits an i32");
        let url = format!("http://127.0.0.1:{port}");

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().join("profile").display()));
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), json!({"binary": chromium, "args": args}));
        let deadline = Instant::now() + WAIT;
        let client = loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "chromedriver not ready yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot start a browser session: {e}; chromedriver's log:\n{}", driver.log_tail()),
            }
        };
        Browser { client, driver, group, _profile: profile }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("the current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The first element matching `css`, waited for.
    pub async fn find(&self, css: &str) -> Element {
        match self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no element {css:?} on {}: {e}", self.path().await),
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap_or_default()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    /// The page's visible text.
    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `condition` (a JS expression) is true in the page.
    pub async fn wait_until(&self, condition: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.client.execute(&format!("return !!({condition});"), vec![]).await;
            if matches!(v, Ok(Value::Bool(true))) {
                return;
            }
            assert!(Instant::now() < deadline, "waited {WAIT:?} for `{condition}` on {}", self.path().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's text contains `text`.
    pub async fn wait_for_text(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let body = self.client.find(Locator::Css("body")).await;
            if let Ok(body) = body
                && body.text().await.is_ok_and(|t| t.contains(text))
            {
                return;
            }
            assert!(Instant::now() < deadline, "waited {WAIT:?} for {text:?} on {}", self.path().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Signs in by pasting `token` into the sign-in page.
    pub async fn sign_in_with_token(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/sign-in")).await;
        self.find("#token").await.send_keys(token).await.expect("type the token");
        self.find("form[action='/sign-in/token'] button").await.click().await.expect("press Sign in");
        self.wait_until("document.querySelector('header.top .user-name') !== null").await;
    }

    /// Presses the mouse on `from`, moves in steps onto `to` and lets go: pointer events, as
    /// a person dragging with a mouse makes them.
    pub async fn drag(&self, from: &Element, to: &Element) {
        let mouse = MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement { element: from.clone(), duration: None, x: 0.0, y: 0.0 })
            .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
            .then(PointerAction::MoveBy { duration: Some(Duration::from_millis(100)), x: 12.0, y: 8.0 })
            .then(PointerAction::MoveToElement {
                element: to.clone(),
                duration: Some(Duration::from_millis(250)),
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
        self.client.perform_actions(mouse).await.expect("drag");
    }

    /// Saves a PNG of the window as `target/screenshots/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// The cookies the browser holds for the current page, HttpOnly ones included.
    pub async fn cookies(&self) -> Vec<fantoccini::cookies::Cookie<'static>> {
        self.client.get_all_cookies().await.expect("cookies")
    }

    /// Ends the session (the browser quits) and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.kill();
    }

    fn kill(&mut self) {
        // Chromium's helper processes are in the driver's process group.
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.group), nix::sys::signal::Signal::SIGKILL);
        self.driver.kill();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `target/screenshots`, beside the binaries under test.
pub fn screenshot_dir() -> PathBuf {
    let bin = crate::process::crm_bin();
    let profile_dir = bin.parent().expect("the binary's directory");
    profile_dir.parent().unwrap_or(profile_dir).join("screenshots")
}
