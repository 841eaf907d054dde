//! HAProxy's `external-check`: run a command per check with HAProxy's arguments and environment;
//! exit status 0 passes. The environment is only what HAProxy documents, so scripts written for
//! HAProxy behave the same here.

use super::probe::{ProbeError, ServerLoad};
use super::spec::{CheckSpec, ExternalCheck};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use tokio::process::Command;

/// Runs the command once; kills it when it outlives `ext.timeout`.
pub(super) async fn run(spec: &CheckSpec, ext: &ExternalCheck, load: ServerLoad) -> Result<(), ProbeError> {
    let mut child = command(spec, ext, load)
        .spawn()
        .map_err(|e| ProbeError::ExternalError { detail: format!("cannot run {}: {e}", ext.command.display()) })?;
    match tokio::time::timeout(ext.timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => match (status.code(), status.signal()) {
            (Some(code), _) => Err(ProbeError::ExternalCode { code }),
            (None, Some(signal)) => Err(ProbeError::ExternalSignal { signal }),
            (None, None) => Err(ProbeError::ExternalError { detail: format!("ended with {status}") }),
        },
        Ok(Err(e)) => Err(ProbeError::ExternalError { detail: format!("waiting for the command: {e}") }),
        Err(_) => {
            if let Err(e) = child.kill().await {
                tracing::warn!(
                    backend = %spec.backend, server = %spec.server, error = %e,
                    "cannot kill timed-out external check"
                );
            }
            Err(ProbeError::ExternalTimeout)
        }
    }
}

/// Arguments: `<proxy_address> <proxy_port> <server_address> <server_port>`. The proxy pair is
/// empty, as HAProxy passes it for a `backend` section (checks here always belong to backends).
fn command(spec: &CheckSpec, ext: &ExternalCheck, load: ServerLoad) -> Command {
    let server_addr = spec.addr.ip().to_string();
    let server_port = spec.addr.port().to_string();
    let mut cmd = Command::new(&ext.command);
    cmd.args(["", "", &server_addr, &server_port])
        .env_clear()
        .env("PATH", ext.path_env.as_deref().unwrap_or(""))
        .env("HAPROXY_PROXY_NAME", &spec.backend)
        .env("HAPROXY_PROXY_ADDR", "")
        .env("HAPROXY_PROXY_PORT", "")
        .env("HAPROXY_SERVER_NAME", &spec.server)
        .env("HAPROXY_SERVER_ADDR", &server_addr)
        .env("HAPROXY_SERVER_PORT", &server_port)
        .env("HAPROXY_SERVER_MAXCONN", load.maxconn.to_string())
        .env("HAPROXY_SERVER_CURCONN", load.curconn.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // A checker stopped mid-check (reload, shutdown) must not leave the command running.
        .kill_on_drop(true);
    crate::daemon::privs::without_ambient_caps(&mut cmd);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::probe::probe_with;
    use crate::health::spec::CheckKind;
    use std::net::SocketAddr;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn spec(command: PathBuf, timeout: Duration) -> CheckSpec {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8080));
        CheckSpec {
            kind: CheckKind::External(ExternalCheck { command, path_env: Some("/usr/bin:/bin".into()), timeout }),
            addr,
            inter: Duration::from_secs(2),
            fastinter: Duration::from_secs(2),
            downinter: Duration::from_secs(2),
            timeout,
            rise: 2,
            fall: 3,
            spread_pct: 0,
            backend: "php_server".into(),
            server: "php_server_1".into(),
            host_header: None,
            proxy_header: None,
            tls: None,
            source: None,
        }
    }

    /// One test for every script: all files are written and closed before the first fork, so no
    /// child can inherit a write handle and make another exec fail with ETXTBSY.
    #[tokio::test]
    async fn external_checks() {
        let dir = std::env::temp_dir().join(format!("lbha-health-ext-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let env_out = dir.join("env.out");
        let pass = script(&dir, "pass.sh", "exit 0");
        let fail = script(&dir, "fail.sh", "exit 1");
        let slow = script(&dir, "slow.sh", "exec sleep 5");
        let env = script(
            &dir,
            "env.sh",
            &format!(
                "echo \"$#|$1|$2|$3|$4|$HAPROXY_PROXY_NAME|$HAPROXY_SERVER_NAME|$HAPROXY_SERVER_ADDR|\
                 $HAPROXY_SERVER_PORT|$HAPROXY_SERVER_MAXCONN|$HAPROXY_SERVER_CURCONN|$PATH|$HOME\" > {}",
                env_out.display()
            ),
        );
        let second = Duration::from_secs(5);

        assert_eq!(
            probe_with(&spec(pass, second), ServerLoad::default()).await.map(|ok| ok.detail),
            Ok("External check passed")
        );

        let err = probe_with(&spec(fail, second), ServerLoad::default()).await.expect_err("fails");
        assert_eq!(err.to_string(), "External check error, code 1");

        let started = std::time::Instant::now();
        let err = probe_with(&spec(slow, Duration::from_millis(200)), ServerLoad::default()).await.expect_err("slow");
        assert_eq!(err.to_string(), "External check timeout");
        assert!(started.elapsed() < Duration::from_secs(3));

        let load = ServerLoad { maxconn: 30, curconn: 4 };
        probe_with(&spec(env, second), load).await.expect("env script passes");
        let seen = std::fs::read_to_string(&env_out).expect("script output");
        assert_eq!(seen.trim(), "4|||127.0.0.1|8080|php_server|php_server_1|127.0.0.1|8080|30|4|/usr/bin:/bin|");

        let err = probe_with(&spec(dir.join("missing.sh"), second), load).await.expect_err("missing");
        assert!(err.to_string().starts_with("External check error, info: cannot run"), "{err}");

        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
