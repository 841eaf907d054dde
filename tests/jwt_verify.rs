//! `jwt_verify` end to end against the real HAProxy 2.6: one haproxy.cfg whose paths each verify
//! the `x` header's token with one algorithm and key, run by HAProxy and by lbha (`run
//! --haproxy-config`); every case must give the same code in both, and the code HAProxy 2.6 was
//! seen to give (so the lbha half runs, and fails, without HAProxy too).
//!
//! Keys and tokens are in tests/data/jwt (made with openssl); the cases alter them.

mod common;

use base64::Engine;
use common::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jwt");

fn token(alg: &str) -> String {
    let text = std::fs::read_to_string(format!("{DATA}/tokens.txt")).unwrap();
    text.lines().find_map(|l| l.strip_prefix(alg)?.strip_prefix(' ').map(str::to_string)).unwrap()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The token with its signature bytes changed by `f`.
fn resign(tok: &str, f: impl Fn(Vec<u8>) -> Vec<u8>) -> String {
    let (head, sig) = tok.rsplit_once('.').unwrap();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).unwrap();
    format!("{head}.{}", b64(&f(sig)))
}

fn config(port: u16, dir: &std::path::Path) -> String {
    let d = dir.display();
    let routes = [
        ("hs256", r#""HS256","secret""#.to_string()),
        ("hs384", r#""HS384","secret""#.to_string()),
        ("hs512", r#""HS512","secret""#.to_string()),
        ("rs256", format!(r#""RS256","{d}/rsa.pub""#)),
        ("rs384", format!(r#""RS384","{d}/rsa.pub""#)),
        ("rs512", format!(r#""RS512","{d}/rsa.pub""#)),
        ("es256", format!(r#""ES256","{d}/ec.pub""#)),
        ("es384", format!(r#""ES384","{d}/ec384.pub""#)),
        ("pkcs1", format!(r#""RS256","{d}/rsa.pkcs1.pem""#)),
        ("relabelled", format!(r#""RS256","{d}/relabelled.pem""#)),
        ("eclabel", format!(r#""ES256","{d}/eclabel.pem""#)),
        ("missing", format!(r#""RS256","{d}/none.pem""#)),
        ("none", r#""none","x""#.to_string()),
        ("varalg", format!(r#"txn.alg,"{d}/rsa.pub""#)),
        ("varkey", r#""HS256",txn.key"#.to_string()),
        ("varkeyrs", r#""RS256",txn.key"#.to_string()),
        ("rsec", format!(r#""RS256","{d}/ec.pub""#)),
        ("ecrs", format!(r#""ES256","{d}/rsa.pub""#)),
        ("es256p384", format!(r#""ES256","{d}/ec384.pub""#)),
        ("es512", format!(r#""ES512","{d}/p521.pub""#)),
        ("es256p521", format!(r#""ES256","{d}/p521.pub""#)),
        ("es512p256", format!(r#""ES512","{d}/es512-p256.pub""#)),
        ("es512p384", format!(r#""ES512","{d}/es512-p384.pub""#)),
        ("es256p384k", format!(r#""ES256","{d}/es512-p384.pub""#)),
    ];
    let mut cfg = format!(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  \
         http-request set-var(txn.alg) req.hdr(alg)\n  http-request set-var(txn.key) req.hdr(k)\n"
    );
    for (path, args) in routes {
        cfg += &format!(
            "  http-request return status 200 content-type text/plain lf-string \"%[req.hdr(x),jwt_verify({})]\" if {{ path /{path} }}\n",
            args.replace('"', "\\\"")
        );
    }
    cfg
}

/// (name, path, token, extra headers, HAProxy 2.6's answer).
type Case = (&'static str, &'static str, String, Vec<(&'static str, String)>, &'static str);

fn cases(dir: &std::path::Path) -> Vec<Case> {
    let (rs, es, es384, hs) = (token("RS256"), token("ES256"), token("ES384"), token("HS256"));
    let es512 = token("ES512");
    let head = hs.rsplit_once('.').unwrap().0.to_string();
    let flip = |i: usize| {
        move |mut s: Vec<u8>| {
            s[i] ^= 1;
            s
        }
    };
    let none = Vec::new;
    let d = dir.display();
    vec![
        ("hs256", "hs256", hs.clone(), none(), "1"),
        ("hs384", "hs384", token("HS384"), none(), "1"),
        ("hs512", "hs512", token("HS512"), none(), "1"),
        ("hs256 checked as hs384", "hs384", hs.clone(), none(), "0"),
        ("hs256 flipped", "hs256", resign(&hs, flip(3)), none(), "0"),
        ("two parts", "hs256", head.clone(), none(), "-3"),
        ("four parts", "hs256", format!("{hs}.x"), none(), "-3"),
        ("empty signature", "hs256", format!("{head}."), none(), "-3"),
        ("signature not base64url", "hs256", format!("{head}.@@@@"), none(), "-3"),
        ("empty", "hs256", String::new(), none(), "-3"),
        ("rs256", "rs256", rs.clone(), none(), "1"),
        ("rs384", "rs384", token("RS384"), none(), "1"),
        ("rs512", "rs512", token("RS512"), none(), "1"),
        ("rs256 checked as rs384", "rs384", rs.clone(), none(), "0"),
        ("rs256 flipped", "rs256", resign(&rs, flip(100)), none(), "0"),
        ("rs256 short", "rs256", resign(&rs, |s| s[..100].to_vec()), none(), "0"),
        ("es256", "es256", es.clone(), none(), "1"),
        ("es384", "es384", es384.clone(), none(), "1"),
        ("es256 flipped", "es256", resign(&es, flip(40)), none(), "0"),
        ("es256 odd length", "es256", resign(&es, |s| s[..63].to_vec()), none(), "-3"),
        ("es256 zero-padded halves", "es256", resign(&es, |s| [&[0], &s[..32], &[0], &s[32..]].concat()), none(), "1"),
        ("es256 long halves", "es256", resign(&es, |_| vec![7; 128]), none(), "0"),
        ("PKCS#1 RSA PUBLIC KEY", "pkcs1", rs.clone(), none(), "1"),
        ("SPKI labelled RSA PUBLIC KEY", "relabelled", rs.clone(), none(), "1"),
        ("EC PUBLIC KEY label", "eclabel", es.clone(), none(), "-5"),
        ("missing key file", "missing", rs.clone(), none(), "-5"),
        ("none unsigned", "none", format!("{head}."), none(), "1"),
        ("none two parts", "none", head.clone(), none(), "1"),
        ("none signed", "none", hs.clone(), none(), "0"),
        ("var alg RS256", "varalg", rs.clone(), vec![("alg", "RS256".into())], "1"),
        ("var alg HS256 with a path", "varalg", rs.clone(), vec![("alg", "HS256".into())], "0"),
        ("var alg unknown", "varalg", rs.clone(), vec![("alg", "rs256".into())], "-1"),
        ("var alg PS256", "varalg", rs.clone(), vec![("alg", "PS256".into())], "-2"),
        ("var alg unset", "varalg", rs.clone(), none(), ""),
        ("var key", "varkey", hs.clone(), vec![("k", "secret".into())], "1"),
        ("var key wrong", "varkey", hs.clone(), vec![("k", "nope".into())], "0"),
        ("var key unset", "varkey", hs.clone(), none(), ""),
        ("var key naming a loaded key", "varkeyrs", rs.clone(), vec![("k", format!("{d}/rsa.pub"))], "1"),
        ("var key naming no loaded key", "varkeyrs", rs.clone(), vec![("k", format!("{d}/other.pem"))], "-5"),
        ("RS256 with an EC key", "rsec", rs.clone(), none(), "0"),
        ("ES256 with an RSA key", "ecrs", es.clone(), none(), "0"),
        ("ES256 with a P-384 key", "es256p384", es384.clone(), none(), "0"),
        ("es512 over P-521", "es512", es512.clone(), none(), "1"),
        ("es512 flipped", "es512", resign(&es512, flip(70)), none(), "0"),
        ("es512 payload changed", "es512", es512.replacen(".eyJzdWIiOiIx", ".eyJzdWIiOiIy", 1), none(), "0"),
        (
            "es512 zero-padded halves",
            "es512",
            resign(&es512, |s| [&[0], &s[..66], &[0], &s[66..]].concat()),
            none(),
            "1",
        ),
        ("es512 odd length", "es512", resign(&es512, |s| s[..131].to_vec()), none(), "-3"),
        ("es512 long halves", "es512", resign(&es512, |_| vec![7; 200]), none(), "0"),
        ("SHA-256 over P-521", "es256p521", token("ES256P521"), none(), "1"),
        ("ES512 token checked as ES256", "es256p521", es512.clone(), none(), "0"),
        ("SHA-512 over P-256", "es512p256", token("ES512P256"), none(), "1"),
        ("SHA-512 over P-384", "es512p384", token("ES512P384"), none(), "1"),
        ("SHA-512 over P-256, flipped", "es512p256", resign(&token("ES512P256"), flip(5)), none(), "0"),
        ("P-256 token on a P-384 key", "es512p384", token("ES512P256"), none(), "0"),
        ("ES512 token checked as ES256 over P-384", "es256p384k", token("ES512P384"), none(), "0"),
    ]
}

fn run(port: u16, dir: &std::path::Path) -> Vec<String> {
    cases(dir)
        .into_iter()
        .map(|(_, path, tok, hdrs, _)| {
            let extra: String = hdrs.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
            let req = format!("GET /{path} HTTP/1.1\r\nHost: t\r\nx: {tok}\r\n{extra}Connection: close\r\n\r\n");
            raw(port, req.as_bytes()).unwrap().text()
        })
        .collect()
}

#[test]
fn jwt_verify_answers_as_haproxy() {
    let dir = TempDir::new("jwt");
    for f in ["rsa.pub", "ec.pub", "ec384.pub", "p521.pub", "rsa.pkcs1.pem", "es512-p256.pub", "es512-p384.pub"] {
        std::fs::copy(format!("{DATA}/{f}"), dir.0.join(f)).unwrap();
    }
    let pem = |f: &str| std::fs::read_to_string(format!("{DATA}/{f}")).unwrap();
    dir.write("relabelled.pem", &pem("rsa.pub").replace("PUBLIC KEY", "RSA PUBLIC KEY"));
    dir.write("eclabel.pem", &pem("ec.pub").replace("PUBLIC KEY", "EC PUBLIC KEY"));
    let want: Vec<_> = cases(&dir.0).into_iter().map(|c| (c.0, c.4.to_string())).collect();

    let port = free_port();
    let lbha = Lbha::start_haproxy(&config(port, &dir.0), &[port]);
    let ours = run(port, &dir.0);
    let log = lbha.log_text();
    assert!(log.contains("eclabel.pem: no PEM public key"), "the warning HAProxy prints too:\n{log}");
    for ((name, want), got) in want.iter().zip(&ours) {
        assert_eq!(got, want, "lbha: {name}");
    }
    if haproxy_bin().is_none() {
        println!("skipped the HAProxy comparison: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let hport = free_port();
    let _h = haproxy(&config(hport, &dir.0), hport);
    let theirs = run(hport, &dir.0);
    for ((name, _), (o, t)) in want.iter().zip(ours.iter().zip(&theirs)) {
        assert_eq!(o, t, "lbha and HAProxy differ: {name}");
    }
}

#[test]
fn unusable_keys_are_refused_at_load() {
    let dir = TempDir::new("jwtbad");
    // A key on a curve lbha has no verifier for (secp256k1) and an RSA key under 2048 bits:
    // HAProxy takes both. P-521 and ES512 are taken.
    let k1 = dir.0.join("k1.pub");
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl ecparam -name secp256k1 -genkey -noout | openssl ec -pubout -out {} 2>/dev/null",
            k1.display()
        ))
        .status();
    let short = dir.0.join("short.pub");
    std::fs::copy(format!("{DATA}/rsa2047.pub"), &short).unwrap();
    let p521 = dir.0.join("p521.pub");
    std::fs::copy(format!("{DATA}/p521.pub"), &p521).unwrap();
    let mut cases = vec![(format!(r#""RS256","{}""#, short.display()), Some("2047 bits"))];
    if made.is_ok_and(|s| s.success()) {
        cases.push((format!(r#""ES256","{}""#, k1.display()), Some("curve")));
    } else {
        println!("skipped the secp256k1 case: openssl could not make the key");
    }
    cases.push((format!(r#""ES512","{}""#, p521.display()), None));
    cases.push((r#""ES512","k""#.to_string(), None));
    for (args, why) in cases {
        let cfg = format!(
            "defaults\n  mode http\nfrontend f\n  bind 127.0.0.1:1\n  \
             http-request deny unless {{ req.hdr(x),jwt_verify({args}) 1 }}\n"
        );
        let path = dir.write("haproxy.cfg", &cfg);
        let out =
            std::process::Command::new(lbha_bin()).args(["check", "--haproxy-config"]).arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
        match why {
            Some(why) => {
                assert!(!out.status.success(), "{args}: accepted\n{text}");
                assert!(text.contains(why), "{args}: {text}");
            }
            None => assert!(out.status.success(), "{args}: refused\n{text}"),
        }
    }
}
