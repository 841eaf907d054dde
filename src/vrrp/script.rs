//! How VRRP's scripts (`vrrp_script` checks, `notify*`) are started: through `/bin/sh -c`, with no
//! stdin, killed when their handle is dropped, and without the daemon's ambient capabilities.
//!
//! Under `[global] user` the daemon keeps CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE as
//! ambient capabilities (so `lbha upgrade`'s new process has them); a script inheriting them could
//! change addresses and routes or open raw sockets. keepalived runs scripts without capabilities
//! unless they run as root; so does lbha: the child clears its ambient set before `exec`, so the
//! shell starts with none (a daemon running as root runs scripts as root, as keepalived does).

/// `/bin/sh -c script` (with `args` as `"$@"` after `$0 = name`), ready to spawn.
pub fn shell(script: &str, name: &str, args: &[String]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("/bin/sh");
    c.arg("-c").arg(script);
    if !args.is_empty() || name != "sh" {
        c.arg(name).args(args);
    }
    c.stdin(std::process::Stdio::null()).kill_on_drop(true);
    crate::daemon::privs::without_ambient_caps(&mut c);
    c
}

/// (`netns-tests/failover.rs` checks, under `[global] user`, that a notify script has no capability.)
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn arguments_follow_as_positional_parameters() {
        let args = ["INSTANCE".to_string(), "VI_1".to_string()];
        let out = shell("printf '%s|' \"$0\" \"$@\"", "lbha-notify", &args)
            .stdout(std::process::Stdio::piped())
            .output()
            .await
            .expect("run");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "lbha-notify|INSTANCE|VI_1|");
    }
}
