use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn cfg(src: &str) -> Config {
    parse(src, "h.cfg", &no_env).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(src: &str) -> Vec<String> {
    match parse(src, "h.cfg", &no_env) {
        Ok(_) => panic!("parsed: {src}"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn sections_and_directives_with_lines() {
    let c = cfg(
        "global\n  maxconn 10\n\ndefaults web\n  mode http\nfrontend fe from web\n  bind :80\nlisten old 0.0.0.0:81\nuserlist api\npeers p\nresolvers dns\nmailers m\n",
    );
    let kinds: Vec<_> = c.sections.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SectionKind::Global,
            SectionKind::Defaults,
            SectionKind::Frontend,
            SectionKind::Listen,
            SectionKind::Userlist,
            SectionKind::Peers,
            SectionKind::Resolvers,
            SectionKind::Other
        ]
    );
    assert_eq!(c.sections[1].name.as_deref(), Some("web"));
    assert_eq!(c.sections[2].extra, ["from", "web"]);
    assert_eq!(c.sections[3].extra, ["0.0.0.0:81"]);
    let d = &c.sections[2].directives[0];
    assert_eq!(
        (d.loc.to_string(), d.args.clone()),
        ("h.cfg:7".to_string(), vec!["bind".to_string(), ":80".to_string()])
    );
}

#[test]
fn unknown_section_and_lexical_errors_name_file_and_line() {
    let e = errors("frontnd web\n  bind :80\n");
    assert_eq!(e.len(), 2);
    assert!(e[0].starts_with("h.cfg:1: unknown keyword `frontnd` out of section"), "{e:?}");
    assert!(e[1].starts_with("h.cfg:2: unknown keyword `bind` out of section"), "{e:?}");
    let e = errors("global\n  maxconn 1\nbackend b\n  stats realm \"open\n  server s 'x\n");
    assert_eq!(e, ["h.cfg:4:15: unterminated \" quote", "h.cfg:5:12: unterminated ' quote"]);
    let e = errors("global\n.if defined(X\n.endif\n");
    assert!(e[0].starts_with("h.cfg:2: unparsable conditional expression"), "{e:?}");
}

#[test]
fn comments_above_directives_by_default() {
    let c = cfg(
        "# file header\n\n# the web frontend\nfrontend fe # trailing\n    # port 80\n    bind :80\n\n    # backend choice\n    default_backend be\n# end\n",
    );
    assert_eq!(c.head, [" file header"]);
    assert_eq!(c.sections[0].comments.before, [" the web frontend"]);
    assert_eq!(c.sections[0].comments.trailing.as_deref(), Some(" trailing"));
    let d = &c.sections[0].directives;
    assert_eq!(d[0].comments.before, [" port 80"]);
    assert_eq!(d[1].comments.before, [" backend choice"]);
    assert_eq!(c.sections[0].tail, Vec::<String>::new());
    assert_eq!(d[1].comments.after, [" end"]);
}

#[test]
fn comments_below_directives_in_the_seed_style() {
    let c = cfg("defaults # d\n    mode http\n    # explains mode\n    retries 3\n    # explains retries\n");
    let d = &c.sections[0].directives;
    assert_eq!(d[0].comments.after, [" explains mode"]);
    assert_eq!(d[1].comments.after, [" explains retries"]);
    assert!(d[1].comments.before.is_empty());
}

#[test]
fn setenv_in_global_feeds_later_lines() {
    let c = cfg("global\n  setenv PORT 8080\nfrontend fe\n  bind \"*:${PORT}\"\n");
    assert_eq!(c.sections[1].directives[0].args, ["bind", "*:8080"]);
    assert!(c.reports.iter().any(|r| r.message.contains("PORT expanded")));
}

#[test]
fn continuation_is_reported() {
    let c = cfg("backend b\n  server s1 \\\n    10.0.0.1:80\n  mode http\n");
    let d = &c.sections[0].directives;
    assert_eq!(d[0].args, ["server", "s1", "10.0.0.1:80"]);
    assert_eq!(d[1].loc.line, 4);
    assert_eq!(c.reports.len(), 1);
    assert_eq!(c.reports[0].loc.line, 2);
    assert_eq!(c.reports[0].kind, ReportKind::Note);
}
