//! The dashboard in a real browser: Chromium headless, driven over the DevTools protocol (a
//! small client over a WebSocket below), looking at what a person would see on each page while
//! instances come and go and a peer stops. Screenshots go to `target/tmp/dashboard/`.
//!
//! Chromium is looked for as `$CHROMIUM`, `chromium`, `chromium-browser` or `google-chrome`;
//! without one the test says so and passes (`.ci/run` installs Debian's `chromium`).

mod common;

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{ident, reg, wait_until, Conn, Setup, TempDir};
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// Where the screenshots go: the integration tests' scratch folder under `target/`.
fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

fn chromium() -> Option<String> {
    let candidates = std::env::var("CHROMIUM")
        .into_iter()
        .chain(["chromium", "chromium-browser", "google-chrome"].map(String::from));
    candidates.into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A headless Chromium with its own profile; killed on drop with every process it started, so
/// that none of them writes to the profile while it is removed.
struct Browser {
    child: Child,
    port: u16,
    _profile: TempDir,
}

impl Browser {
    fn start(bin: &str) -> Browser {
        let profile = TempDir::new("chromium");
        let child = Command::new(bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
                "--window-size=1400,900",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            // Its own temporary files (the singleton socket's directory) go with the profile.
            .env("TMPDIR", profile.path())
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromium");
        // Chromium writes the port it picked into the profile once it listens.
        let file = profile.path().join("DevToolsActivePort");
        let port = wait_until("chromium's DevToolsActivePort", || {
            std::fs::read_to_string(&file)
                .ok()?
                .lines()
                .next()?
                .parse()
                .ok()
        });
        Browser {
            child,
            port,
            _profile: profile,
        }
    }

    /// The first page target's DevTools connection.
    fn page(&self) -> Page {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let url = wait_until("a page target", || {
            let list: Value = Conn::open(addr).get("/json/list").json();
            list.as_array()?.iter().find(|t| t["type"] == "page")?["webSocketDebuggerUrl"]
                .as_str()
                .map(String::from)
        });
        let stream = TcpStream::connect(addr).expect("connect to chromium");
        stream
            .set_read_timeout(Some(common::WAIT))
            .expect("read timeout");
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools handshake");
        let mut page = Page { ws, next: 0 };
        page.call("Page.enable", json!({}));
        page.call("Runtime.enable", json!({}));
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Its own process group: the zygote and renderers go with it.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a process group id is only a system call.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One page over the DevTools protocol.
struct Page {
    ws: WebSocket<TcpStream>,
    next: u64,
}

impl Page {
    /// Calls `method` and returns its result (events arriving meanwhile are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).expect("send to chromium");
        loop {
            let msg = match self.ws.read() {
                // A socket read with a timeout fails so after the process was stopped and
                // continued; tungstenite keeps what it had read, so reading again goes on.
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                    continue
                }
                other => other.expect("read from chromium"),
            };
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        self.wait("the page loaded", "document.readyState === 'complete'");
    }

    /// Waits until `expr` is true in the page.
    fn wait(&mut self, what: &str, expr: &str) {
        wait_until(what, || (self.eval(expr) == json!(true)).then_some(()));
    }

    /// Waits until `expr` evaluates to `want`, and says what it was otherwise.
    fn wait_for(&mut self, what: &str, expr: &str, want: Value) {
        let mut last = Value::Null;
        let found = wait_until_or(|| {
            last = self.eval(expr);
            last == want
        });
        if !found {
            let shot = self.screenshot("failure.png");
            let body = self.eval("document.body.innerText");
            panic!(
                "{what}: wanted {want}, the page shows {last}\n(screenshot {}; page text:\n{})",
                shot.display(),
                body.as_str().unwrap_or_default()
            );
        }
    }

    /// The text of the first element matching a CSS selector, or null.
    fn text_of(&mut self, selector: &str) -> Value {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); return e ? e.textContent.trim() : null; }})()",
            json!(selector)
        ))
    }

    fn count(&mut self, selector: &str) -> Value {
        self.eval(&format!(
            "document.querySelectorAll({}).length",
            json!(selector)
        ))
    }

    fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let data = r["data"].as_str().expect("screenshot data");
        let png = data_encoding::BASE64
            .decode(data.as_bytes())
            .expect("base64 screenshot");
        let path = shots().join(name);
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

/// Like `wait_until`, but returns false at the deadline instead of failing, so the caller can
/// say what it saw.
fn wait_until_or(mut ok: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + common::WAIT;
    while std::time::Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn in_zone(form: common::Form, zone: &str) -> common::Form {
    form.set("zone", zone)
}

#[test]
fn dashboard_shows_apps_instances_and_peers_live() {
    let Some(bin) = chromium() else {
        eprintln!("dashboard test skipped: no chromium (apt-get install chromium)");
        return;
    };
    // a learns b through infra.discovery; the shared peer token admits it as a peer.
    let a = Setup::new()
        .identity("sh001", "node-a")
        .auth("peerToken", r#""dash-secret""#)
        .start();
    let mut b = Some(
        Setup::new()
            .identity("sh001", "node-b")
            .nodes(&[a.addr])
            .client("timeout", "1s")
            .auth("peerToken", r#""dash-secret""#)
            .start(),
    );
    let b_addr = b.as_ref().map(|b| b.addr.to_string()).unwrap_or_default();

    // Several apps over two zones, and enough others to need more than one page.
    for h in ["cart-1", "cart-2", "cart-3"] {
        a.register(&reg("shop.cart", h).set("metadata", r#"{"color":"blue"}"#));
    }
    for h in ["cart-4", "cart-5"] {
        a.register(&in_zone(reg("shop.cart", h), "sh002"));
    }
    a.register(&reg("shop.pay", "pay-1").set("status", "2"));
    for h in ["profile-1", "profile-2"] {
        a.register(&in_zone(reg("user.profile", h), "sh002"));
    }
    let mut conn = a.connect();
    for n in 0..150 {
        let form = reg(&format!("fleet.svc{n:03}"), "host-1");
        assert_eq!(conn.post("/discovery/register", &form.encode()).code(), 0);
    }

    let browser = Browser::start(&bin);
    let mut page = browser.page();
    let base = format!("http://{}", a.addr);

    // Apps: every app is counted, one page of rows is shown; a search finds the app with its
    // instance count.
    page.goto(&format!("{base}/#/apps"));
    // 150 + 3 apps + the nodes' own.
    page.wait_for(
        "the app count",
        "(document.getElementById('app-count') || {}).textContent",
        json!("154 of 154 apps"),
    );
    assert_eq!(page.count("#apps tbody tr"), json!(100));
    page.eval(
        "(() => { const s = document.getElementById('search'); s.value = 'shop'; \
         s.dispatchEvent(new Event('input')); })()",
    );
    page.wait_for(
        "rows matching 'shop'",
        "document.querySelectorAll('#apps tbody tr').length",
        json!(2),
    );
    assert_eq!(page.text_of("#app-count"), json!("2 of 154 apps"));
    assert_eq!(
        page.text_of(r#"tr[data-app="dev/shop.cart"] .total"#),
        json!("5")
    );
    assert_eq!(
        page.text_of(r#"tr[data-app="dev/shop.pay"] .total"#),
        json!("1")
    );
    page.screenshot("apps.png");

    // One app, live: a new instance shows up and a cancelled one disappears, without a reload
    // (a marker set on the page survives).
    page.goto(&format!("{base}/#/app/dev/shop.cart"));
    page.wait_for(
        "shop.cart's instances",
        "document.querySelectorAll('#instances tbody tr').length",
        json!(5),
    );
    assert_eq!(
        page.text_of(r#"tr[data-host="cart-1"] .status"#),
        json!("UP")
    );
    page.eval("window.notReloaded = true");
    // Each change is made once the page's poll is parked, so that both reach it as wake-ups (a
    // poll that arrives after a change is answered at once and counts no wake).
    a.wait_parked(1);
    a.register(&reg("shop.cart", "cart-new").set("version", "v2"));
    page.wait_for(
        "the new instance",
        r#"!!document.querySelector('tr[data-host="cart-new"]')"#,
        json!(true),
    );
    a.wait_parked(1);
    assert_eq!(
        a.post("/discovery/cancel", &ident("shop.cart", "cart-1"))
            .code(),
        0
    );
    page.wait_for(
        "the cancelled instance gone",
        r#"!!document.querySelector('tr[data-host="cart-1"]')"#,
        json!(false),
    );
    assert_eq!(page.eval("window.notReloaded === true"), json!(true));
    // The page learnt both changes from its long-poll, which the metrics count per ecode.
    let m = a.metrics();
    let polls = |ecode: &str| {
        m.get(&format!(
            "discovery_endpoint_requests_total{{endpoint=\"poll\",ecode=\"{ecode}\"}}"
        ))
        .copied()
    };
    assert!(polls("0").is_some_and(|n| n >= 2), "{m:?}");
    assert_eq!(polls("-400"), None, "the page's polls are well-formed");
    assert!(m["discovery_poll_wake_seconds_count"] >= 2, "{m:?}");
    assert_eq!(page.count("#instances tbody tr"), json!(5));
    // Without an admin token the page offers no status change.
    assert_eq!(
        page.eval("document.getElementById('token-box').hidden"),
        json!(true)
    );
    assert_eq!(page.count("#instances button"), json!(0));
    page.screenshot("app.png");
    page.eval(
        "(() => { const s = document.getElementById('host-search'); s.value = 'sh002'; \
         s.dispatchEvent(new Event('input')); })()",
    );
    page.wait_for(
        "the instances of zone sh002",
        "[...document.querySelectorAll('#instances tbody tr')].map(r => r.dataset.host).join(',')",
        json!("cart-4,cart-5"),
    );

    // Overview.
    page.goto(&format!("{base}/#/overview"));
    page.wait_for(
        "the overview's app count",
        "(document.querySelector('#card-apps .value') || {}).textContent",
        json!("154"),
    );
    page.screenshot("overview.png");

    // Cluster: the peer is up, then lost once it stopped and a write to it failed.
    page.goto(&format!("{base}/#/cluster"));
    let peer = format!(r#"tr[data-peer="{b_addr}"] .status"#);
    page.wait_for(
        "the peer up",
        &format!(
            "(document.querySelector({}) || {{}}).textContent",
            json!(peer)
        ),
        json!("UP"),
    );
    page.screenshot("cluster-up.png");
    drop(b.take());
    // A write for the peer finds it gone.
    a.register(&reg("shop.cart", "cart-after-stop"));
    page.wait_for(
        "the peer lost",
        &format!(
            "(document.querySelector({}) || {{}}).textContent",
            json!(peer)
        ),
        json!("LOST"),
    );
    page.screenshot("cluster-lost.png");

    // Config: the effective values.
    page.goto(&format!("{base}/#/config"));
    page.wait(
        "the config table",
        "[...document.querySelectorAll('#config tr')].some(r => r.textContent === 'env.zonesh001')",
    );
    page.screenshot("config.png");
}
