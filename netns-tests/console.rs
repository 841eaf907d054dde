//! The web console in a real browser during a failover: headless Chromium (through chromedriver,
//! both in the client's namespace) watches lb2's console while lb1, the master, is killed. With
//! `[cluster]`, the page first shows both nodes (lb1 MASTER at priority 150); then lb2 as MASTER
//! and the transition in its timeline. Prints how long the page took
//! after the kill and after lb2 took the VIP (the issue asks for 2 s; no timing assertion here).

use crate::bed::{self, VIP, enter_ns, only_on, wait_for};
use crate::failover::pair;
use fantoccini::{ClientBuilder, Locator};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CONSOLE_PORT: u16 = 8404;
const DRIVER_PORT: u16 = 9515;

/// The same on both nodes (the `[cluster]` shares it).
fn console_extra() -> String {
    format!(
        r#"
[[userlist]]
name = "ops"
users = [{{ name = "viewer", insecure_password = "viewpw" }}]

[console]
bind = "0.0.0.0:{CONSOLE_PORT}"
userlist = "ops"
allow_insecure_http = true
"#
    )
}

fn on_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join(tool).is_file())
}

#[test]
#[cfg_attr(netns_needs_root, ignore = "needs root (network namespaces)")]
fn failover_appears_on_the_console() {
    if !bed::root_or_skip("failover_appears_on_the_console") {
        return;
    }
    if !on_path("chromium") || !on_path("chromedriver") {
        println!("skipped: chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)");
        return;
    }
    let mut p = pair("console");
    let (lb1, lb2, client) = (p.lb1.clone(), p.lb2.clone(), p.client.clone());
    crate::cluster::cert(&p.bed, "lb1");
    crate::cluster::cert(&p.bed, "lb2");
    let c1 = crate::cluster::config(&p.bed, &lb1, "lb1", &lb2, "lb2", 150) + &console_extra();
    let c2 = crate::cluster::config(&p.bed, &lb2, "lb2", &lb1, "lb1", 100) + &console_extra();
    let p1 = p.bed.lbha(&lb1, "lb1", &c1);
    p.bed.lbha(&lb2, "lb2", &c2);
    wait_for(Duration::from_secs(10), || only_on(&lb1, &lb2)).expect("lb1 master");
    p.bed.spawn(&client, "chromedriver.log", &["chromedriver", &format!("--port={DRIVER_PORT}")]);

    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let url = format!("http://{}:{CONSOLE_PORT}/console/", lb2.ip);
    let ns = client.ns.clone();
    // The browser side runs on a thread moved into the client's namespace: its sockets (to
    // chromedriver on the namespace's loopback) are made there.
    let browser = std::thread::spawn(move || -> Result<(Instant, String), String> {
        enter_ns(&ns)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", DRIVER_PORT)).is_err() {
                if Instant::now() > deadline {
                    return Err("chromedriver did not listen".to_string());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut caps = serde_json::Map::new();
            caps.insert(
                "goog:chromeOptions".into(),
                serde_json::json!({ "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"] }),
            );
            let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{DRIVER_PORT}"))
                .await
                .map_err(|e| format!("cannot start chromium: {e}"))?;
            let role_in = |scope: &'static str| {
                let c = &c;
                async move {
                    let e = c.find(Locator::Css(&format!("{scope} tr[data-instance='VI_1'] .state"))).await.ok()?;
                    e.text().await.ok()
                }
            };
            let role = || role_in("#vrrp-table");
            let steps = async {
                c.goto(&url).await.map_err(|e| e.to_string())?;
                let user =
                    c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Id("user")).await.map_err(|e| e.to_string())?;
                user.send_keys("viewer").await.map_err(|e| e.to_string())?;
                c.find(Locator::Id("password")).await.map_err(|e| e.to_string())?.send_keys("viewpw").await.map_err(|e| e.to_string())?;
                c.find(Locator::Id("login-submit")).await.map_err(|e| e.to_string())?.click().await.map_err(|e| e.to_string())?;
                let deadline = Instant::now() + Duration::from_secs(20);
                while role().await.as_deref() != Some("BACKUP") {
                    if Instant::now() > deadline {
                        return Err(format!("the page never showed lb2 as BACKUP (shows {:?})", role().await));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // Both nodes: the peer's instance as the peer reports it, through [cluster].
                let deadline = Instant::now() + Duration::from_secs(30);
                while role_in("[data-node='lb1']").await.as_deref() != Some("MASTER") {
                    if Instant::now() > deadline {
                        return Err("the page never showed lb1's instance through [cluster]".into());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let peer_row = c
                    .find(Locator::Css("[data-node='lb1'] tr[data-instance='VI_1']"))
                    .await
                    .map_err(|e| e.to_string())?
                    .text()
                    .await
                    .map_err(|e| e.to_string())?;
                if !peer_row.contains("150") {
                    return Err(format!("lb1's priority is not on the page: {peer_row}"));
                }
                let _ = ready_tx.send(Ok(()));
                // Generous: the measurement is printed, not asserted.
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    if role().await.as_deref() == Some("MASTER") {
                        break;
                    }
                    if Instant::now() > deadline {
                        return Err("the page never showed lb2 as MASTER".into());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let seen = Instant::now();
                let deadline = Instant::now() + Duration::from_secs(20);
                let events = loop {
                    let t = c.find(Locator::Id("events-body")).await.map_err(|e| e.to_string())?.text().await.map_err(|e| e.to_string())?;
                    if t.contains("VI_1: BACKUP -> MASTER") || Instant::now() > deadline {
                        break t;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
                c.set_window_size(1280, 1300).await.map_err(|e| e.to_string())?;
                // The pair view catches up too (it asks the peer, which is gone, every 2 s).
                let deadline = Instant::now() + Duration::from_secs(15);
                while role_in("[data-node='lb2']").await.as_deref() != Some("MASTER") && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                if let (Ok(png), Some(keep)) = (c.screenshot().await, std::env::var_os("LBHA_KEEP_SCREENSHOTS")) {
                    let _ = std::fs::create_dir_all(&keep);
                    let _ = std::fs::write(std::path::Path::new(&keep).join("console-failover.png"), png);
                }
                Ok((seen, events))
            }
            .await;
            if let Err(e) = &steps {
                let _ = ready_tx.send(Err(e.clone()));
            }
            let _ = c.close().await;
            steps
        })
    });
    match ready_rx.recv_timeout(Duration::from_secs(90)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("browser: {e}"),
        Err(e) => panic!("browser did not get ready: {e}"),
    }
    let killed = Instant::now();
    p.bed.kill9(p1);
    let vip_moved = wait_for(Duration::from_secs(10), || lb2.has_addr(VIP)).map(|d| killed + d);
    let (seen, events) = browser.join().expect("browser thread").unwrap_or_else(|e| panic!("browser: {e}"));
    assert!(events.contains("VI_1: BACKUP -> MASTER"), "the timeline lacks the transition:\n{events}");
    let vip_moved = vip_moved.expect("lb2 took the VIP");
    println!(
        "console failover: page showed MASTER {} ms after the kill, {} ms after lb2 took the VIP",
        (seen - killed).as_millis(),
        seen.saturating_duration_since(vip_moved).as_millis()
    );
}
