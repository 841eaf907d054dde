//! The web console in a real browser: headless Chromium driven through chromedriver (WebDriver,
//! the `fantoccini` crate). Logs in as a read-only user and as an admin, drains a server from the
//! page and checks that the stats CSV, the control socket and the page agree, loads the proxy and
//! waits for the charts to draw, and checks the layout at 375 px and keyboard access. Screenshots
//! go to the test's temporary directory (kept when `LBHA_KEEP_SCREENSHOTS` names a directory to
//! copy them to). Without `chromium` and `chromedriver` the tests say "skipped" and pass.

mod common;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// chromedriver, killed by PID when dropped.
struct Driver {
    child: std::process::Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn on_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join(tool).is_file())
}

/// Starts chromedriver on a loopback port, or says why not.
fn driver() -> Result<Driver, String> {
    for tool in ["chromium", "chromedriver"] {
        if !on_path(tool) {
            return Err(format!("`{tool}` not on the PATH (Debian: apt-get install chromium chromium-driver)"));
        }
    }
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start chromedriver: {e}"))?;
    let mut d = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || d.child.try_wait().ok().flatten().is_some() {
            return Err("chromedriver did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(d)
}

async fn browser(d: &Driver, width: u32, height: u32) -> Result<Client, String> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}"), "--no-first-run", "--disable-extensions"],
        }),
    );
    let conn = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(conn)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .map_err(|e| format!("cannot start chromium through chromedriver: {e}"))
}

/// A pair-less daemon with a console, two servers behind `web`, a viewer and an admin.
fn setup(a: u16, b: u16, web: u16, console: u16) -> String {
    format!(
        r#"
[defaults]
mode = "http"
[[listen]]
name = "web"
bind = ["127.0.0.1:{web}"]
servers = [{{ name = "a", addr = "127.0.0.1:{a}", check = true, inter = 300 }}, {{ name = "b", addr = "127.0.0.1:{b}" }}]
[[userlist]]
name = "ops"
users = [{{ name = "admin", insecure_password = "adminpw", groups = ["admins"] }},
         {{ name = "viewer", insecure_password = "viewpw", groups = ["viewers"] }},
         {{ name = "stranger", insecure_password = "strangerpw" }}]
groups = [{{ name = "admins" }}, {{ name = "viewers" }}]
[console]
bind = "127.0.0.1:{console}"
userlist = "ops"
admin_group = "admins"
read_group = "viewers"
"#
    )
}

/// Polls `f` until it returns Some, for at most `limit`.
async fn wait<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn login(c: &Client, console: u16, user: &str, pw: &str) {
    c.goto(&format!("http://127.0.0.1:{console}/console/")).await.unwrap();
    let form = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Id("user")).await.unwrap();
    form.send_keys(user).await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys(pw).await.unwrap();
    c.find(Locator::Id("login-submit")).await.unwrap().click().await.unwrap();
    wait(Duration::from_secs(20), "the logged-in page", || async {
        let who = c.find(Locator::Id("who")).await.ok()?.text().await.ok()?;
        who.starts_with(user).then_some(())
    })
    .await;
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// POSTs a change as the page would (same origin, the session's CSRF token): the HTTP status.
async fn page_post(c: &Client, command: &str) -> u64 {
    let script = format!(
        r#"const s = await (await fetch('/console/api/v1/session')).json();
           const r = await fetch('/console/api/v1/command', {{ method: 'POST',
             headers: {{ 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf || '' }},
             body: JSON.stringify({{ command: {} }}) }});
           return r.status;"#,
        serde_json::to_string(command).unwrap()
    );
    js(c, &script).await.as_u64().unwrap()
}

fn screenshot(dir: &TempDir, name: &str, png: &[u8]) {
    let p = dir.0.join(name);
    std::fs::write(&p, png).unwrap();
    println!("screenshot: {}", p.display());
    if let Some(keep) = std::env::var_os("LBHA_KEEP_SCREENSHOTS") {
        let _ = std::fs::create_dir_all(&keep);
        let _ = std::fs::copy(&p, std::path::Path::new(&keep).join(name));
    }
}

/// A raw HTTP POST to the console (not from the page), with the given headers.
fn raw_post(port: u16, path: &str, headers: &str, body: &str) -> Resp {
    raw(
        port,
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_user_sees_nothing_to_click_and_cannot_change() {
    let d = match driver() {
        Ok(d) => d,
        Err(e) => return println!("skipped: {e}"),
    };
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let (web, console) = (free_port(), free_port());
    let l = Lbha::start(&setup(a.port, b.port, web, console), &[console]);
    let c = match browser(&d, 1280, 900).await {
        Ok(c) => c,
        Err(e) => return println!("skipped: {e}"),
    };
    login(&c, console, "viewer", "viewpw").await;
    assert!(c.find(Locator::Id("who")).await.unwrap().text().await.unwrap().contains("read-only"));
    // The servers table is drawn, without an action button anywhere.
    wait(Duration::from_secs(20), "the servers table", || async {
        c.find(Locator::Css("tr[data-server='web/a']")).await.ok().map(|_| ())
    })
    .await;
    assert!(c.find_all(Locator::Css("button.action")).await.unwrap().is_empty());
    assert!(!c.find(Locator::Id("vip-form")).await.unwrap().is_displayed().await.unwrap());
    // The endpoint refuses, from the page itself (valid session, CSRF token and origin) ...
    assert_eq!(page_post(&c, "set server web/a state drain").await, 403);
    // ... and from outside the browser with the viewer's own cookie.
    let cookie = c.get_named_cookie("lbha_console").await.unwrap();
    let r = raw_post(
        console,
        "/console/api/v1/command",
        &format!("Cookie: lbha_console={}\r\nOrigin: http://127.0.0.1:{console}\r\n", cookie.value()),
        r#"{"command":"set server web/a state drain"}"#,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(l.ctl(&["show servers state web"]).lines().any(|x| x.contains(" a ") && !x.is_empty()));
    let state = l.ctl(&["json show servers state web"]);
    assert!(state.contains(r#""admin":"ready""#), "nothing changed: {state}");
    // A user in neither group cannot log in; a wrong password is told so.
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("http://127.0.0.1:{console}/console/")).await.unwrap();
    let user = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Id("user")).await.unwrap();
    user.send_keys("stranger").await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys("strangerpw").await.unwrap();
    c.find(Locator::Id("login-submit")).await.unwrap().click().await.unwrap();
    let msg = wait(Duration::from_secs(20), "the refusal", || async {
        let e = c.find(Locator::Id("login-error")).await.ok()?;
        let t = e.text().await.ok()?;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert!(msg.contains("may not use"), "{msg}");
    screenshot(&l.dir, "console-login-refused.png", &c.screenshot().await.unwrap());
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_drains_a_server_and_charts_draw_under_load() {
    let d = match driver() {
        Ok(d) => d,
        Err(e) => return println!("skipped: {e}"),
    };
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let (web, console) = (free_port(), free_port());
    let l = Lbha::start(&setup(a.port, b.port, web, console), &[console]);
    let c = match browser(&d, 1280, 1000).await {
        Ok(c) => c,
        Err(e) => return println!("skipped: {e}"),
    };
    // Bounded load through the proxy: at most 20 s and 4000 requests.
    let load = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut n = 0;
        while Instant::now() < deadline && n < 4000 {
            let _ = raw(web, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            n += 1;
            std::thread::sleep(Duration::from_millis(4));
        }
        n
    });
    login(&c, console, "admin", "adminpw").await;
    assert!(c.find(Locator::Id("who")).await.unwrap().text().await.unwrap().contains("admin"));
    // The request-rate chart of `web` gets points with traffic in them.
    let peak = wait(Duration::from_secs(30), "a non-empty requests chart", || async {
        let v = js(
            &c,
            r#"const p = document.querySelector('#charts figure polyline');
               if (!p) return 0;
               const ys = p.getAttribute('points').split(' ').filter(Boolean).map((s) => +s.split(',')[1]);
               return ys.length > 2 && Math.min(...ys) < 100 ? ys.length : 0;"#,
        )
        .await;
        v.as_u64().filter(|&n| n > 0)
    })
    .await;
    println!("requests chart drawn with {peak} points");
    let captions = js(&c, "return [...document.querySelectorAll('#charts figcaption')].map(e => e.textContent)").await;
    assert_eq!(captions.as_array().unwrap().len(), 4, "{captions}");
    screenshot(&l.dir, "console-1280.png", &c.screenshot().await.unwrap());

    // Keyboard: Tab from the top of the page reaches an action button.
    js(&c, "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);").await;
    let mut reached = None;
    for i in 0..80 {
        c.active_element().await.unwrap().send_keys("\u{E004}").await.unwrap();
        let focused = js(&c, "const e = document.activeElement; return e ? (e.className + '|' + (e.getAttribute('aria-label') || e.textContent)) : ''").await;
        if focused.as_str().is_some_and(|s| s.starts_with("action")) {
            reached = Some((i + 1, focused));
            break;
        }
    }
    let (tabs, what) = reached.expect("Tab never reached a server action");
    println!("Tab reached {what} after {tabs} presses");

    // Drain web/a from the page, through the confirmation.
    let drain = c.find(Locator::Css("tr[data-server='web/a'] button[data-action='Drain']")).await.unwrap();
    drain.click().await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("confirm-ok"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let shown = wait(Duration::from_secs(20), "DRAIN on the page", || async {
        let t = c.find(Locator::Css("tr[data-server='web/a'] .srv-state")).await.ok()?.text().await.ok()?;
        t.contains("DRAIN").then_some(t)
    })
    .await;
    // The stats CSV, the control socket and the page agree.
    let csv = l.ctl(&["show stat"]);
    let header: Vec<&str> = csv.lines().next().unwrap().trim_start_matches("# ").split(',').collect();
    let status_col = header.iter().position(|h| *h == "status").unwrap();
    let row = csv.lines().find(|x| x.starts_with("web,a,")).expect("web/a row");
    // "DRAIN", or "DRAIN 1/3" while the checks have not topped the counter yet (HAProxy's).
    assert!(row.split(',').nth(status_col).is_some_and(|s| s.starts_with("DRAIN")), "{row}");
    let state = l.ctl(&["json show servers state web"]);
    let state: Value = serde_json::from_str(state.trim()).unwrap();
    let a_state = state.as_array().unwrap().iter().find(|s| s["srv_name"] == "a").unwrap();
    assert_eq!(a_state["admin"], "drain");
    assert!(shown.contains("DRAIN"));
    // ... and the timeline has it.
    wait(Duration::from_secs(20), "the drain in the events", || async {
        let t = c.find(Locator::Id("events-body")).await.ok()?.text().await.ok()?;
        t.contains("web/a: admin state ready -> drain").then_some(())
    })
    .await;

    c.set_window_size(1280, 1700).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    screenshot(&l.dir, "console-full.png", &c.screenshot().await.unwrap());

    // 375 px wide: nothing overflows sideways.
    c.set_window_size(375, 812).await.unwrap();
    let widths = wait(Duration::from_secs(10), "a 375 px viewport", || async {
        let w = js(&c, "return [window.innerWidth, document.documentElement.scrollWidth]").await;
        let w: Vec<u64> = w.as_array()?.iter().filter_map(Value::as_u64).collect();
        (w[0] <= 400).then_some(w)
    })
    .await;
    assert!(widths[1] <= widths[0], "horizontal overflow at {} px: content is {} px wide", widths[0], widths[1]);
    screenshot(&l.dir, "console-375.png", &c.screenshot().await.unwrap());
    let sent = load.join().unwrap();
    println!("load: {sent} requests");
    c.close().await.unwrap();
}
