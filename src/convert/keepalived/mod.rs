//! keepalived.conf → `[[vrrp_instance]]`, `[[vrrp_script]]` and `[[vrrp_sync_group]]`.

pub mod ast;
mod emit;

pub(crate) use emit::convert;
