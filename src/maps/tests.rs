use super::overlay::{Op, OpError, apply};
use super::*;

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn kv(entries: &[Entry]) -> Vec<(String, String)> {
    entries.iter().map(|e| (String::from_utf8_lossy(&e.key).into(), String::from_utf8_lossy(&e.value).into())).collect()
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lbha-maps-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn load(d: &Path, files: &[(&str, MatchKind, bool)]) -> Loaded {
    let mut l = Loader::new(d);
    for (name, kind, pattern) in files {
        l.need(name, *kind, false, *pattern, "frontend fe").unwrap();
    }
    l.finish()
}

#[test]
fn rule_edits_set_or_add_and_add_patterns_once() {
    let mut e = vec![Entry::new(b("a"), b("1")), Entry::new(b("a"), b("2"))];
    apply(&Op::Upsert { key: b("a"), value: b("9") }, &mut e).unwrap();
    assert_eq!(kv(&e), [("a".into(), "9".into()), ("a".into(), "9".into())], "every entry of the key, as set-map");
    apply(&Op::Upsert { key: b("n"), value: b("new") }, &mut e).unwrap();
    assert_eq!(kv(&e)[2], ("n".into(), "new".into()), "an absent key is added");
    let mut p = vec![Entry::new(b("10.0.0.0/8"), Vec::new())];
    apply(&Op::AddOnce { key: b("10.0.0.0/8") }, &mut p).unwrap();
    assert_eq!(p.len(), 1, "add-acl adds a pattern only once");
    apply(&Op::AddOnce { key: b("192.0.2.1") }, &mut p).unwrap();
    assert_eq!(kv(&p)[1], ("192.0.2.1".into(), String::new()));
}

#[test]
fn a_rule_edit_that_changes_nothing_is_told_without_a_copy() {
    use super::overlay::changes;
    let e = vec![Entry::new(b("a"), b("1")), Entry::new(b("a"), b("2")), Entry::new(b("c"), b("3"))];
    assert!(!changes(&Op::Upsert { key: b("c"), value: b("3") }, &e), "the same value again");
    assert!(changes(&Op::Upsert { key: b("c"), value: b("4") }, &e));
    assert!(changes(&Op::Upsert { key: b("a"), value: b("1") }, &e), "one entry of the key differs");
    assert!(changes(&Op::Upsert { key: b("n"), value: b("1") }, &e), "a new key");
    assert!(!changes(&Op::AddOnce { key: b("a") }, &e));
    assert!(changes(&Op::AddOnce { key: b("z") }, &e));
    assert!(changes(&Op::Del { key: b("a") }, &e), "not a rule's: always applied");
}

#[test]
fn an_edited_file_may_be_absent_and_starts_empty() {
    let d = dir("edited");
    std::fs::write(d.join("here.map"), "k v\n").unwrap();
    let mut l = Loader::new(&d);
    l.need_edited("absent.map", false, "frontend fe").unwrap();
    l.need_edited("here.map", false, "frontend fe").unwrap();
    l.need("here.map", MatchKind::Beg, false, false, "frontend fe").unwrap();
    let err = l.need_edited("here.map", true, "frontend fe").unwrap_err();
    assert!(err.contains("both as a map and as an ACL pattern file"), "{err}");
    let loaded = l.finish();
    let shared = Shared::default();
    shared.install(&loaded);
    shared.change("absent.map", Op::Upsert { key: b("x"), value: b("1") }).unwrap();
    shared.change("here.map", Op::Upsert { key: b("k"), value: b("w") }).unwrap();
    let store = shared.store.load();
    assert_eq!(kv(&store.get("absent.map").unwrap().entries), [("x".into(), "1".into())]);
    let here = store.get("here.map").unwrap();
    assert_eq!(here.lookup(MatchKind::Beg, false, &Value::str("kk")), Some(&b"w"[..]), "the reader's index is rebuilt");
    assert!(!d.join("absent.map").exists(), "nothing is written before commit");
    shared.commit("absent.map").unwrap();
    assert_eq!(std::fs::read(d.join("absent.map")).unwrap(), b"x 1\n");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn operations_like_haproxy() {
    let mut e = vec![Entry::new(b("a"), b("1")), Entry::new(b("b"), b("2"))];
    apply(&Op::Add { key: b("c"), value: b("3") }, &mut e).unwrap();
    apply(&Op::Add { key: b("c"), value: b("4") }, &mut e).unwrap();
    apply(&Op::Set { key: b("c"), value: b("x") }, &mut e).unwrap();
    assert_eq!(kv(&e)[2..], [("c".into(), "x".into()), ("c".into(), "x".into())], "set changes every entry of the key");
    assert_eq!(apply(&Op::Set { key: b("zz"), value: b("x") }, &mut e), Err(OpError::NotFound("entry not found.")));
    apply(&Op::DelOne { key: b("c"), value: b("x") }, &mut e).unwrap();
    assert_eq!(e.len(), 3, "one entry by reference");
    apply(&Op::Del { key: b("c") }, &mut e).unwrap();
    assert_eq!(apply(&Op::Del { key: b("c") }, &mut e), Err(OpError::NotFound("Key not found.")));
    apply(&Op::SetOne { key: b("a"), old: b("1"), value: b("9") }, &mut e).unwrap();
    assert_eq!(kv(&e), [("a".into(), "9".into()), ("b".into(), "2".into())]);
    apply(&Op::Clear, &mut e).unwrap();
    assert!(e.is_empty());
}

#[test]
fn changes_survive_a_reload_and_commit_writes_the_file() {
    let d = dir("reload");
    std::fs::write(d.join("sni.map"), "a.example be_a\nb.example be_b\n").unwrap();
    std::fs::write(d.join("block.lst"), "10.0.0.1\n").unwrap();
    let files = [("sni.map", MatchKind::Str, false), ("block.lst", MatchKind::Ip, true)];
    let shared = Shared::default();
    assert!(shared.install(&load(&d, &files)).is_empty());
    let look = |k: &str| {
        use crate::sample::Maps;
        shared
            .store
            .load()
            .lookup("sni.map", MatchKind::Str, &Value::str(k))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    shared.change("sni.map", Op::Add { key: b("c.example"), value: b("be_c") }).unwrap();
    shared.change("sni.map", Op::Set { key: b("a.example"), value: b("be_x") }).unwrap();
    shared.change("block.lst", Op::Add { key: b("10.9.0.0/16"), value: Vec::new() }).unwrap();
    // A pattern the index refuses is refused, and nothing changes.
    let bad = shared.change("block.lst", Op::Add { key: b("notanip"), value: Vec::new() });
    assert!(matches!(bad, Err(OpError::Invalid(_))), "{bad:?}");
    assert_eq!((look("c.example").as_deref(), look("a.example").as_deref()), (Some("be_c"), Some("be_x")));
    use crate::sample::Maps;
    let blocked =
        |ip: &str| shared.store.load().contains("block.lst", MatchKind::Ip, false, &Value::Ipv4(ip.parse().unwrap()));
    assert!(blocked("10.9.3.4"));

    // The operator edits the file, then reloads: the edit and the runtime changes both hold.
    std::fs::write(d.join("sni.map"), "a.example be_a\nb.example be_b2\nd.example be_d\n").unwrap();
    assert!(shared.install(&load(&d, &files)).is_empty());
    assert_eq!(look("b.example").as_deref(), Some("be_b2"));
    assert_eq!(look("d.example").as_deref(), Some("be_d"));
    assert_eq!((look("c.example").as_deref(), look("a.example").as_deref()), (Some("be_c"), Some("be_x")));
    assert!(blocked("10.9.3.4"));
    assert_eq!(shared.pending("sni.map"), 2);

    // A change that no longer applies is reported, the others stay.
    std::fs::write(d.join("sni.map"), "b.example be_b\n").unwrap();
    let notes = shared.install(&load(&d, &files));
    assert!(notes.len() == 1 && notes[0].contains("set a.example be_x"), "{notes:?}");
    assert_eq!(look("c.example").as_deref(), Some("be_c"));

    // Commit writes the live content and forgets the operations.
    shared.commit("sni.map").unwrap();
    assert_eq!(std::fs::read_to_string(d.join("sni.map")).unwrap(), "b.example be_b\nc.example be_c\n");
    assert_eq!(shared.pending("sni.map"), 0);
    assert!(shared.pending("block.lst") > 0, "other files keep theirs");
    shared.commit("block.lst").unwrap();
    assert_eq!(std::fs::read_to_string(d.join("block.lst")).unwrap(), "10.0.0.1\n10.9.0.0/16\n");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn loader_errors_name_the_file_and_line() {
    let d = dir("errors");
    std::fs::write(d.join("nets.lst"), "10.0.0.0/8\nnot-an-ip\n").unwrap();
    let mut l = Loader::new(&d);
    let e = l.need("nets.lst", MatchKind::Ip, false, true, "x").unwrap_err();
    assert!(e.contains("nets.lst: line 2: key `not-an-ip`"), "{e}");
    let e = l.need("missing.map", MatchKind::Str, false, false, "x").unwrap_err();
    assert!(e.contains("cannot read") && e.contains("missing.map"), "{e}");
    std::fs::write(d.join("m.map"), "k v\n").unwrap();
    l.need("m.map", MatchKind::Str, false, false, "x").unwrap();
    assert!(l.need("m.map", MatchKind::Str, false, true, "y").unwrap_err().contains("both as a map"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn typed_map_converters_refuse_values_of_another_type() {
    use crate::sample::MapOut;
    let d = dir("typed");
    std::fs::write(d.join("ints.map"), "a 1\nb -2\n").unwrap();
    std::fs::write(d.join("mixed.map"), "a 1\nb two\n").unwrap();
    std::fs::write(d.join("ips.map"), "a 10.0.0.1\nb 2001:db8::1\n").unwrap();
    let mut l = Loader::new(&d);
    l.need_map("ints.map", MatchKind::Str, MapOut::Int, "fe").unwrap();
    l.need_map("ips.map", MatchKind::Str, MapOut::Ip, "fe").unwrap();
    l.need_map("mixed.map", MatchKind::Str, MapOut::Str, "fe").unwrap();
    let e = l.need_map("mixed.map", MatchKind::Beg, MapOut::Int, "fe").unwrap_err();
    assert!(e.contains("key `b`: value `two` is not an integer"), "{e}");
    let e = l.need_map("ints.map", MatchKind::Str, MapOut::Ip, "fe").unwrap_err();
    assert!(e.contains("is not an IP address"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_rule_setting_one_key_per_request_is_remembered_once_and_bad_bytes_are_refused() {
    let d = dir("perrequest");
    let mut l = Loader::new(&d);
    l.need_edited("seen.map", false, "frontend fe").unwrap();
    l.need_edited("allow.lst", true, "frontend fe").unwrap();
    let shared = Shared::default();
    shared.install(&l.finish());
    for i in 0..100 {
        shared.change("seen.map", Op::Upsert { key: b("k"), value: format!("{i}").into_bytes() }).unwrap();
        shared.change("allow.lst", Op::AddOnce { key: b("192.0.2.1") }).unwrap();
    }
    let ops = shared.ops.lock().unwrap();
    assert_eq!(ops["seen.map"], [Op::Upsert { key: b("k"), value: b("99") }], "the last set-map of the key only");
    assert_eq!(ops["allow.lst"], [Op::AddOnce { key: b("192.0.2.1") }], "a pattern already there is no change");
    drop(ops);
    for (file, key, value) in [("seen.map", "a\nb", "1"), ("seen.map", "a", "1\r\nc 2"), ("seen.map", "a b", "1")] {
        let e = shared.change(file, Op::Upsert { key: b(key), value: b(value) }).unwrap_err();
        assert!(matches!(e, OpError::Invalid(_)), "{key:?} {value:?}: {e:?}");
    }
    let e = shared.change("allow.lst", Op::AddOnce { key: b("x\0y") }).unwrap_err();
    assert!(matches!(e, OpError::Invalid(_)), "{e:?}");
    shared.change("allow.lst", Op::AddOnce { key: b("a pattern with blanks") }).unwrap();
    shared.commit("seen.map").unwrap();
    assert_eq!(std::fs::read(d.join("seen.map")).unwrap(), b"k 99\n");
    let _ = std::fs::remove_dir_all(&d);
}
