//! `agent-check` end to end: a loopback agent the test controls answers lbha's queries, and its
//! words (`drain`, `ready`, `down`, `up`, `N%`, `maxconn:N`) change where traffic goes. Also the
//! other way a server's own check steers traffic: `http-check disable-on-404`.

mod common;
mod kit;

use common::*;
use kit::{Web, wait_log};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An agent answering every connection with the current reply, after reading one line (what
/// `agent_send` sends), which it records.
struct Agent {
    port: u16,
    reply: Arc<Mutex<String>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn start(first: &str) -> Agent {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let reply = Arc::new(Mutex::new(first.to_string()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (r, s) = (reply.clone(), seen.clone());
        // The thread ends with the test process; each connection is handled and closed at once.
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { return };
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut line = String::new();
                let _ = BufReader::new(&c).read_line(&mut line);
                s.lock().unwrap().push(line);
                let text = r.lock().unwrap().clone();
                let _ = c.write_all(text.as_bytes());
            }
        });
        Agent { port, reply, seen }
    }
    fn say(&self, text: &str) {
        *self.reply.lock().unwrap() = text.to_string();
    }
}

fn bodies(port: u16, n: usize) -> Vec<String> {
    (0..n).map(|_| get(port, "/").text()).collect()
}

/// Waits until `n` requests in a row all reach `only` (the agent's change is applied).
fn wait_all(port: u16, only: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let b = bodies(port, 6);
        if b.iter().all(|x| x == only) {
            return;
        }
        assert!(Instant::now() < deadline, "traffic never went only to {only}: {b:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_agent_drains_readies_downs_and_weights_its_server() {
    let a = Web::start("A");
    let b = Web::start("B");
    let agent = Agent::start("ready 100%\n");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [
  {{ name = "a", addr = "127.0.0.1:{}", weight = 10, agent_check = true, agent_port = {}, agent_inter = "100ms", agent_send = 'status\n' }},
  {{ name = "b", addr = "127.0.0.1:{}", weight = 10 }},
]
"#,
        a.port, agent.port, b.port
    );
    let l = Lbha::start(&cfg, &[port]);
    let both = bodies(port, 4);
    assert!(both.contains(&"A".into()) && both.contains(&"B".into()), "{both:?}");

    agent.say("drain # maintenance window\n");
    wait_log(|| l.log_text(), "Server web/a changed by agent-check: state DRAIN (maintenance window)");
    wait_all(port, "B");

    agent.say("ready\n");
    wait_log(|| l.log_text(), "Server web/a changed by agent-check: state READY");
    agent.say("down\n");
    wait_log(|| l.log_text(), "Server web/a changed by agent-check: agent DOWN");
    wait_all(port, "B");
    agent.say("up 50% maxconn:7\n");
    wait_log(|| l.log_text(), "Server web/a changed by agent-check: weight 5 (50% of 10), maxconn 7, agent UP");
    let back = bodies(port, 6);
    assert!(back.contains(&"A".into()), "{back:?}");
    // agent_send reached the agent, unescaped.
    assert!(agent.seen.lock().unwrap().iter().all(|l| l == "status\n"));
}

#[test]
fn an_unreachable_agent_changes_nothing() {
    let a = Web::start("A");
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "a", addr = "127.0.0.1:{}", agent_check = true, agent_port = {dead}, agent_inter = "50ms" }}]
"#,
        a.port
    );
    let l = Lbha::start(&cfg, &[port]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(bodies(port, 3).iter().all(|x| x == "A"));
    assert!(!l.log_text().contains("changed by agent-check"), "{}", l.log_text());
}

#[test]
fn disable_on_404_takes_a_server_out_of_load_balancing_while_it_answers_404() {
    let a = Web::start("A");
    let b = Web::start("B");
    let port = free_port();
    let cfg = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "5s", server = "5s" }}

[[listen]]
name = "web"
bind = ["127.0.0.1:{port}"]
check = {{ http = "GET /health", disable_on_404 = true }}
servers = [
  {{ name = "a", addr = "127.0.0.1:{}", check = true, inter = 100 }},
  {{ name = "b", addr = "127.0.0.1:{}", check = true, inter = 100 }},
]
"#,
        a.port, b.port
    );
    let l = Lbha::start(&cfg, &[port]);
    a.set_status(404);
    wait_log(|| l.log_text(), "Server web/a is NOLB: its check answered 404");
    wait_all(port, "B");
    assert!(!l.log_text().contains("Server web/a is DOWN"), "a 404 does not take it down");
    a.set_status(200);
    wait_log(|| l.log_text(), "Server web/a leaves NOLB");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bodies(port, 6).contains(&"A".to_string()) {
        assert!(Instant::now() < deadline, "A never came back");
    }
}

#[test]
fn a_server_added_at_runtime_takes_agent_keywords() {
    let a = Web::start("A");
    let c = Web::start("C");
    let agent = Agent::start("up\n");
    let port = free_port();
    let cfg = format!(
        "[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"5s\", server = \"5s\" }}\n\
         [[listen]]\nname = \"web\"\nbind = [\"127.0.0.1:{port}\"]\nservers = [{{ name = \"a\", addr = \"127.0.0.1:{}\" }}]\n",
        a.port
    );
    let l = Lbha::start(&cfg, &[port]);
    // The control socket takes `\\` for one backslash (as HAProxy's): `status\\n` is `status\n`.
    let add = format!(
        "add server web/c 127.0.0.1:{} weight 10 agent-check agent-port {} agent-inter 100ms agent-send status\\\\n",
        c.port, agent.port
    );
    assert_eq!(l.ctl(&[&add]), "New server registered.\n\n");
    assert_eq!(l.ctl(&["enable server web/c"]), "\n");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !bodies(port, 6).contains(&"C".to_string()) {
        assert!(Instant::now() < deadline, "the runtime server never took traffic");
        std::thread::sleep(Duration::from_millis(50));
    }
    agent.say("down\n");
    wait_log(|| l.log_text(), "Server web/c changed by agent-check: agent DOWN");
    wait_all(port, "A");
    assert!(agent.seen.lock().unwrap().iter().any(|l| l == "status\n"), "{:?}", agent.seen.lock().unwrap());
}
