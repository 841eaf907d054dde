//! `servers?backend=`: entries of a backend's `servers` list.

use super::common::{Kept, Mapped, check_kept, read_kept, write_kept};
use super::*;
use crate::api::json::{self, Toggle};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use toml_edit::InlineTable;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub check: Option<Toggle>,
    pub backup: Option<Toggle>,
    pub maintenance: Option<Toggle>,
    pub weight: Option<u32>,
    pub maxconn: Option<u32>,
    pub inter: Option<u64>,
    pub fastinter: Option<u64>,
    pub downinter: Option<u64>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub health_check_port: Option<u16>,
    pub health_check_address: Option<String>,
    /// The value of the backend's persistence cookie for this server.
    pub cookie: Option<String>,
    pub ssl: Option<Toggle>,
    pub ssl_certificate: Option<String>,
    pub ssl_cafile: Option<String>,
    pub crl_file: Option<String>,
    pub verify: Option<ServerVerify>,
    pub verifyhost: Option<String>,
    pub sni: Option<String>,
    pub alpn: Option<String>,
    pub proto: Option<String>,
    pub ciphers: Option<String>,
    pub ciphersuites: Option<String>,
    pub ssl_min_ver: Option<super::binds::TlsVersion>,
    pub ssl_max_ver: Option<super::binds::TlsVersion>,
    pub no_sslv3: Option<Toggle>,
    pub no_tlsv10: Option<Toggle>,
    pub no_tlsv11: Option<Toggle>,
    pub no_tlsv12: Option<Toggle>,
    pub no_tlsv13: Option<Toggle>,
    pub force_sslv3: Option<Toggle>,
    pub force_tlsv10: Option<Toggle>,
    pub force_tlsv11: Option<Toggle>,
    pub force_tlsv12: Option<Toggle>,
    pub force_tlsv13: Option<Toggle>,
    /// HAProxy's API says `disabled` for `no-tls-tickets`.
    pub tls_tickets: Option<Toggle>,
    #[serde(rename = "send-proxy")]
    pub send_proxy: Option<Toggle>,
    #[serde(rename = "send-proxy-v2")]
    pub send_proxy_v2: Option<Toggle>,
    #[serde(rename = "proxy-v2-options")]
    pub proxy_v2_options: Option<Vec<String>>,
    #[serde(rename = "check-send-proxy")]
    pub check_send_proxy: Option<Toggle>,
    #[serde(rename = "check-ssl")]
    pub check_ssl: Option<Toggle>,
    pub check_sni: Option<String>,
    pub check_alpn: Option<String>,
    #[serde(rename = "agent-check")]
    pub agent_check: Option<Toggle>,
    #[serde(rename = "agent-port")]
    pub agent_port: Option<u16>,
    #[serde(rename = "agent-inter")]
    pub agent_inter: Option<u64>,
    #[serde(rename = "agent-addr")]
    pub agent_addr: Option<String>,
    #[serde(rename = "agent-send")]
    pub agent_send: Option<String>,
    pub slowstart: Option<u64>,
    pub maxqueue: Option<u32>,
    pub minconn: Option<u32>,
    pub pool_max_conn: Option<i64>,
    pub pool_purge_delay: Option<u64>,
    pub max_reuse: Option<i64>,
    pub resolvers: Option<String>,
    #[serde(rename = "init-addr")]
    pub init_addr: Option<String>,
    #[serde(rename = "resolve-prefer")]
    pub resolve_prefer: Option<ResolvePrefer>,
    #[serde(rename = "resolve-net")]
    pub resolve_net: Option<String>,
    #[serde(rename = "on-marked-down")]
    pub on_marked_down: Option<OnMarkedDown>,
    #[serde(rename = "on-marked-up")]
    pub on_marked_up: Option<OnMarkedUp>,
    /// Passive health checking of live traffic.
    pub observe: Option<Observe>,
    pub error_limit: Option<u32>,
    #[serde(rename = "on-error")]
    pub on_error: Option<OnError>,
    /// `[backend/]server` whose checks this server follows.
    pub track: Option<String>,
    /// The server's number (`srv_id`, stats' `sid`).
    pub id: Option<u32>,
    pub source: Option<String>,
    /// Prefix of the 302 answered for GET and HEAD instead of forwarding.
    pub redir: Option<String>,
    pub resolve_opts: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerVerify {
    None,
    Required,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolvePrefer {
    Ipv4,
    Ipv6,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum OnMarkedDown {
    #[serde(rename = "shutdown-sessions")]
    ShutdownSessions,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum OnMarkedUp {
    #[serde(rename = "shutdown-backup-sessions")]
    ShutdownBackupSessions,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Observe {
    Layer4,
    Layer7,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    Fastinter,
    FailCheck,
    SuddenDeath,
    MarkDown,
}

/// The server fields that map one to one onto a key of lbha's server (TLS, PROXY protocol,
/// agent, slow start, queueing, pooling, DNS), as the API spells them, and lbha's keys.
const MORE: Mapped = &[
    ("ssl", "ssl", Kept::Flag),
    ("ssl_certificate", "crt", Kept::Text),
    ("ssl_cafile", "ca_file", Kept::Text),
    ("crl_file", "crl_file", Kept::Text),
    ("verify", "verify", Kept::Text),
    ("verifyhost", "verifyhost", Kept::Text),
    ("sni", "sni", Kept::Text),
    ("alpn", "alpn", Kept::Text),
    ("proto", "proto", Kept::Text),
    ("ciphers", "ciphers", Kept::Text),
    ("ciphersuites", "ciphersuites", Kept::Text),
    ("ssl_min_ver", "ssl_min_ver", Kept::Text),
    ("ssl_max_ver", "ssl_max_ver", Kept::Text),
    ("no_sslv3", "no_sslv3", Kept::Flag),
    ("no_tlsv10", "no_tlsv10", Kept::Flag),
    ("no_tlsv11", "no_tlsv11", Kept::Flag),
    ("no_tlsv12", "no_tlsv12", Kept::Flag),
    ("no_tlsv13", "no_tlsv13", Kept::Flag),
    ("force_sslv3", "force_sslv3", Kept::Flag),
    ("force_tlsv10", "force_tlsv10", Kept::Flag),
    ("force_tlsv11", "force_tlsv11", Kept::Flag),
    ("force_tlsv12", "force_tlsv12", Kept::Flag),
    ("force_tlsv13", "force_tlsv13", Kept::Flag),
    ("tls_tickets", "no_tls_tickets", Kept::Not),
    ("send-proxy", "send_proxy", Kept::Flag),
    ("send-proxy-v2", "send_proxy_v2", Kept::Flag),
    ("proxy-v2-options", "proxy_v2_options", Kept::List),
    ("check-send-proxy", "check_send_proxy", Kept::Flag),
    ("check-ssl", "check_ssl", Kept::Flag),
    ("check_sni", "check_sni", Kept::Text),
    ("check_alpn", "check_alpn", Kept::Text),
    ("agent-check", "agent_check", Kept::Flag),
    ("agent-port", "agent_port", Kept::Int),
    ("agent-inter", "agent_inter", Kept::Ms),
    ("agent-addr", "agent_addr", Kept::Text),
    ("agent-send", "agent_send", Kept::Text),
    ("slowstart", "slowstart", Kept::Ms),
    ("maxqueue", "maxqueue", Kept::Int),
    ("minconn", "minconn", Kept::Int),
    ("pool_max_conn", "pool_max_conn", Kept::Int),
    ("pool_purge_delay", "pool_purge_delay", Kept::Ms),
    ("max_reuse", "max_reuse", Kept::Int),
    ("resolvers", "resolvers", Kept::Text),
    ("init-addr", "init_addr", Kept::Text),
    ("resolve-prefer", "resolve_prefer", Kept::Text),
    ("resolve-net", "resolve_net", Kept::Text),
    ("on-marked-down", "on_marked_down", Kept::Text),
    ("on-marked-up", "on_marked_up", Kept::Text),
    ("observe", "observe", Kept::Text),
    ("error_limit", "error_limit", Kept::Int),
    ("on-error", "on_error", Kept::Text),
    ("track", "track", Kept::Text),
    ("id", "id", Kept::Int),
    ("source", "source", Kept::Text),
    ("redir", "redir", Kept::Text),
    ("resolve_opts", "resolve_opts", Kept::Text),
];

impl Server {
    fn check_more(&self) -> ApiResult<()> {
        check_kept(self, MORE)?;
        if let Some(p) = self.agent_port {
            json::check_range("agent-port", i64::from(p), 1, 65535)?;
        }
        if let Some(a) = &self.agent_addr
            && a.parse::<std::net::IpAddr>().is_err()
        {
            return Err(ApiError::BadRequest(format!("agent-addr: not an IP address ({a})")));
        }
        super::common::nonzero("id", self.id)?;
        super::common::nonzero("error_limit", self.error_limit)?;
        if let Some(o) = &self.resolve_opts
            && let Some(bad) = o.split(',').find(|w| !matches!(*w, "allow-dup-ip" | "ignore-weight" | "prevent-dup-ip"))
        {
            return Err(ApiError::BadRequest(format!(
                "resolve_opts: `{bad}` is not allow-dup-ip, ignore-weight or prevent-dup-ip ({o})"
            )));
        }
        Ok(())
    }
}

/// Server fields of HAProxy's API that lbha has no setting for.
const HAPROXY_ONLY: &[&str] = &["ssl_reuse", "tfo", "stick", "no_verifyhost", "pool_low_conn", "ws"];

impl Server {
    pub fn decode(body: &Json) -> ApiResult<Server> {
        let s: Server = json::decode(body, HAPROXY_ONLY)?;
        json::check_name("name", &s.name)?;
        json::check_no_space("address", &s.address)?;
        let port = s.port.ok_or_else(|| {
            ApiError::BadRequest(
                "port: required by lbha (a server without a port would use the client's destination port, which lbha does not do)".into(),
            )
        })?;
        json::check_range("port", i64::from(port), 1, 65535)?;
        if let Some(w) = s.weight {
            json::check_range("weight", i64::from(w), 0, 256)?;
        }
        if let Some(p) = s.health_check_port {
            json::check_range("health_check_port", i64::from(p), 1, 65535)?;
        }
        if let Some(a) = &s.health_check_address
            && a.parse::<std::net::IpAddr>().is_err()
        {
            return Err(ApiError::BadRequest(format!("health_check_address: not an IP address ({a})")));
        }
        super::common::nonzero("maxconn", s.maxconn)?;
        if let Some(c) = &s.cookie {
            json::check_no_space("cookie", c)?;
        }
        s.check_more()?;
        Ok(s)
    }

    pub fn read(t: &dyn TableLike) -> Server {
        let (address, port) = split_addr(&get_str(t, "addr").unwrap_or_default());
        let flag = |k: &str| get_bool(t, k).map(Toggle::on);
        let s = Server {
            name: name_of(t).unwrap_or_default().to_string(),
            address,
            port,
            check: flag("check"),
            backup: flag("backup"),
            maintenance: flag("disabled"),
            weight: get_int(t, "weight").map(|n| n as u32),
            maxconn: get_int(t, "maxconn").map(|n| n as u32),
            inter: get_ms(t, "inter"),
            fastinter: get_ms(t, "fastinter"),
            downinter: get_ms(t, "downinter"),
            rise: get_int(t, "rise").map(|n| n as u32),
            fall: get_int(t, "fall").map(|n| n as u32),
            health_check_port: get_int(t, "check_port").map(|n| n as u16),
            health_check_address: get_str(t, "check_addr"),
            cookie: get_str(t, "cookie"),
            ..Default::default()
        };
        read_kept(s, t, MORE)
    }

    pub fn write(&self, t: &mut dyn TableLike) {
        set_str(t, "name", Some(&self.name));
        let addr = join_addr(&self.address, self.port.unwrap_or(0));
        set_str(t, "addr", Some(&addr));
        set_bool(t, "check", self.check.map(Toggle::is_on));
        set_bool(t, "backup", self.backup.map(Toggle::is_on));
        set_bool(t, "disabled", self.maintenance.map(Toggle::is_on));
        set_int(t, "weight", self.weight.map(i64::from));
        set_int(t, "maxconn", self.maxconn.map(i64::from));
        set_ms(t, "inter", self.inter);
        set_ms(t, "fastinter", self.fastinter);
        set_ms(t, "downinter", self.downinter);
        set_int(t, "rise", self.rise.map(i64::from));
        set_int(t, "fall", self.fall.map(i64::from));
        set_int(t, "check_port", self.health_check_port.map(i64::from));
        set_str(t, "check_addr", self.health_check_address.as_deref());
        set_str(t, "cookie", self.cookie.as_deref());
        write_kept(self, t, MORE);
    }
}

/// Which entries of a backend's `servers` list a resource holds: plain servers, or
/// `server-template` entries (those with `template = N`, the `server_templates` resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entries {
    Servers,
    Templates,
}

impl Entries {
    fn holds(self, t: &InlineTable) -> bool {
        t.contains_key("template") == (self == Entries::Templates)
    }
}

/// Where entry `name` of kind `e` is in the list (`None`: any kind).
fn position(t: &dyn TableLike, name: &str, e: Option<Entries>) -> Option<usize> {
    array(t, "servers")?.iter().position(|v| {
        v.as_inline_table()
            .is_some_and(|s| s.get("name").and_then(|n| n.as_str()) == Some(name) && e.is_none_or(|e| e.holds(s)))
    })
}

fn parent_table<'a>(doc: &'a DocumentMut, backend: &str) -> ApiResult<&'a dyn TableLike> {
    let r = parent(doc, Side::Backend, backend)?;
    section(doc, r).ok_or_else(|| ApiError::missing_parent("backend", backend))
}

/// A missing parent on a list is an empty list, as in the original.
pub fn list(doc: &DocumentMut, backend: &str) -> Json {
    list_of(doc, backend, Entries::Servers, |s| json::to_value(&Server::read(s)))
}

/// The entries of kind `e`, each as `show` gives it.
pub fn list_of(doc: &DocumentMut, backend: &str, e: Entries, show: impl Fn(&InlineTable) -> Json) -> Json {
    let Ok(t) = parent_table(doc, backend) else {
        return Json::Array(Vec::new());
    };
    Json::Array(
        array(t, "servers")
            .into_iter()
            .flat_map(|a| a.iter())
            .filter_map(|v| v.as_inline_table())
            .filter(|s| e.holds(s))
            .map(show)
            .collect(),
    )
}

pub fn get(doc: &DocumentMut, backend: &str, name: &str) -> ApiResult<Json> {
    get_of(doc, backend, name, Entries::Servers, |s| json::to_value(&Server::read(s)))
}

/// Entry `name` of kind `e`, as `show` gives it.
pub fn get_of(
    doc: &DocumentMut,
    backend: &str,
    name: &str,
    e: Entries,
    show: impl Fn(&InlineTable) -> Json,
) -> ApiResult<Json> {
    let t = parent_table(doc, backend)?;
    let i = position(t, name, Some(e)).ok_or_else(|| ApiError::missing_object(name))?;
    let s = array(t, "servers")
        .and_then(|a| a.get(i))
        .and_then(|v| v.as_inline_table())
        .ok_or_else(|| ApiError::missing_object(name))?;
    Ok(show(s))
}

pub fn create(doc: &mut DocumentMut, backend: &str, body: &Json) -> ApiResult<Json> {
    let s = Server::decode(body)?;
    create_entry(doc, backend, &s.name, |it| s.write(it))?;
    Ok(json::to_value(&s))
}

/// Appends entry `name` to the backend's list, written by `fill`; a name any entry has already
/// is a conflict (a server and a template of one name would be told apart by kind only).
pub fn create_entry(
    doc: &mut DocumentMut,
    backend: &str,
    name: &str,
    fill: impl FnOnce(&mut InlineTable),
) -> ApiResult<()> {
    let r = parent(doc, Side::Backend, backend)?;
    let t = section_mut(doc, r)?;
    if position(t, name, None).is_some() {
        return Err(ApiError::exists(name));
    }
    let mut it = InlineTable::new();
    fill(&mut it);
    let a = array_mut(t, "servers")?;
    let len = a.len();
    insert_elem(a, len, it.into());
    Ok(())
}

pub fn replace(doc: &mut DocumentMut, backend: &str, name: &str, body: &Json) -> ApiResult<Json> {
    let s = Server::decode(body)?;
    if s.name != name {
        return Err(ApiError::BadRequest(format!(
            "name: `{}` differs from the server in the path (`{name}`); lbha does not rename",
            s.name
        )));
    }
    replace_entry(doc, backend, name, Entries::Servers, |it| s.write(it))?;
    Ok(json::to_value(&s))
}

/// Rewrites entry `name` of kind `e` in place with `fill` (keys it does not set are kept).
pub fn replace_entry(
    doc: &mut DocumentMut,
    backend: &str,
    name: &str,
    e: Entries,
    fill: impl FnOnce(&mut InlineTable),
) -> ApiResult<()> {
    let r = parent(doc, Side::Backend, backend)?;
    let t = section_mut(doc, r)?;
    let i = position(t, name, Some(e)).ok_or_else(|| ApiError::missing_object(name))?;
    let it = array_mut(t, "servers")?
        .get_mut(i)
        .and_then(|v| v.as_inline_table_mut())
        .ok_or_else(|| ApiError::missing_object(name))?;
    fill(it);
    Ok(())
}

pub fn delete(doc: &mut DocumentMut, backend: &str, name: &str) -> ApiResult<()> {
    delete_entry(doc, backend, name, Entries::Servers)
}

pub fn delete_entry(doc: &mut DocumentMut, backend: &str, name: &str, e: Entries) -> ApiResult<()> {
    let r = parent(doc, Side::Backend, backend)?;
    let t = section_mut(doc, r)?;
    let i = position(t, name, Some(e)).ok_or_else(|| ApiError::missing_object(name))?;
    remove_elem(t, "servers", i)
}
