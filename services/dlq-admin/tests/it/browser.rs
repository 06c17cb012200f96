//! A real headless Chromium, driven over WebDriver (fantoccini) through a
//! chromedriver this test starts on a free port. Debian's `chromium` and
//! `chromium-driver` are installed by `scripts/ensure-browser.sh` (the
//! Makefile's `test` target runs it first).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use test_support::process::free_port;
use test_support::{eventually, unique_suffix};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const DESKTOP: (u32, u32) = (1280, 900);

pub struct Browser {
    /// Taken by [`Browser::close`]: a fantoccini session ends only when
    /// its last handle closes it.
    client: Option<Client>,
    base: String,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a browser session against `base` (the console's origin).
    pub async fn start(base: &str) -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(Path::new(bin).exists(), "{bin} is missing: run scripts/ensure-browser.sh (make test does)");
        }
        let port = free_port();
        let profile = std::env::temp_dir().join(format!("docflow-console-chromium-{}", unique_suffix()));
        std::fs::create_dir_all(&profile).unwrap();
        let log = std::fs::File::create(profile.with_extension("chromedriver.log")).unwrap();
        // Its own process group, so dropping the browser ends chromedriver
        // and every Chromium process it started, even after a panic.
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting chromedriver");
        let status = format!("http://127.0.0.1:{port}/status");
        let http = reqwest::Client::new();
        eventually(Duration::from_secs(30), "chromedriver to answer", || async {
            http.get(&status).send().await.ok()?.status().is_success().then_some(())
        })
        .await;
        // Without the background-networking flags Chromium keeps dialling
        // out, and its connections are refused on this closed network.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            &format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            &format!("--user-data-dir={}", profile.display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), json!({"binary": CHROMIUM, "args": args}));
        // Confirm dialogs are answered by the test (accept_alert), not by the driver.
        caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a chromium session");
        Browser { client: Some(client), base: base.to_owned(), driver, profile }
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn goto(&self, path: &str) {
        self.client().goto(&self.url(path)).await.unwrap();
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        let url = self.client().current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self.client().find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no {css} on {}: {e}", self.path().await),
        }
    }

    pub async fn all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.client().find_all(Locator::Css(css)).await.unwrap()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Logs in at the form with `token` (the console sends a GET there first).
    /// Clicks something that loads another page, and waits until it has:
    /// the next look at the page must not see the one before.
    pub async fn click_to_navigate(&self, css: &str) {
        let before = self.client().current_url().await.unwrap();
        self.click(css).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let now = self.client().current_url().await.unwrap();
            let ready = self.client().execute("return document.readyState === 'complete';", vec![]).await;
            if now != before && ready.ok().and_then(|v| v.as_bool()).unwrap_or(false) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{css} did not lead to another page");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn log_in(&self, token: &str) {
        // Always a fresh form: a refusal shown from an earlier try would
        // otherwise satisfy the wait below before this try's answer came.
        let here = self.path().await;
        self.goto(if here.starts_with("/login") { &here } else { "/login" }).await;
        self.fill("#token", token).await;
        self.click("form[action='/login'] button[type=submit]").await;
        // The click only starts the navigation: wait until it lands (off the
        // login page, or back on it with the refusal), or the next request
        // may leave before the session cookie is set.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let ready: bool = self
                .client()
                .execute(
                    "return document.readyState === 'complete' && (!location.pathname.startsWith('/login') \
                       || document.querySelector('[data-error-code]') !== null);",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the login did not finish");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// A same-origin POST from the page (as a forged form would send it):
    /// the status and the body.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let fields: serde_json::Map<String, Value> =
            fields.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect();
        let script = "const [path, fields, done] = arguments; \
                      fetch(path, {method: 'POST', body: new URLSearchParams(fields), redirect: 'manual'}) \
                        .then(r => r.text().then(t => done([r.status, t]))) \
                        .catch(e => done([0, String(e)]));";
        let out = self.client().execute_async(script, vec![json!(path), Value::Object(fields)]).await.unwrap();
        (out[0].as_u64().unwrap() as u16, out[1].as_str().unwrap_or_default().to_owned())
    }

    /// A PNG of the whole page at `width`, written to `docs/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str, width: u32) {
        self.client().set_window_size(width, DESKTOP.1).await.unwrap();
        let height = self
            .client()
            .execute("return Math.ceil(document.documentElement.scrollHeight);", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(u64::from(DESKTOP.1)) as u32;
        self.client().set_window_size(width, height.clamp(400, 4000)).await.unwrap();
        let png = self.client().screenshot().await.unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        self.client().set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
    }

    /// Ends the session (Chromium quits); dropping the browser then stops chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pgid = self.driver.id();
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
        let _ = std::fs::remove_file(self.profile.with_extension("chromedriver.log"));
    }
}
