use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn lex_with(src: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<Result<Line, LexError>> {
    let mut l = Lexer::new(src);
    let p = Pseudo { file: "t.cfg", section: "fe" };
    let mut out = Vec::new();
    while let Some(r) = l.next_line(env, &p) {
        out.push(r);
    }
    out
}

fn args(src: &str) -> Vec<String> {
    match lex_with(src, &no_env).remove(0) {
        Ok(l) => l.args,
        Err(e) => panic!("{src:?}: {e:?}"),
    }
}

fn err(src: &str) -> LexError {
    match lex_with(src, &no_env).remove(0) {
        Ok(l) => panic!("{src:?} lexed as {:?}", l.args),
        Err(e) => e,
    }
}

#[test]
fn words_split_on_blanks_and_skip_leading_space() {
    assert_eq!(args("   server  s1\t10.0.0.1:80   check  "), ["server", "s1", "10.0.0.1:80", "check"]);
}

#[test]
fn seed_httpchk_escapes() {
    // The seed's `option httpchk HEAD /index.jsp HTTP/1.1\r\nHost:\ www.xxx.com`.
    assert_eq!(
        args(r"option httpchk HEAD /index.jsp HTTP/1.1\r\nHost:\ www.xxx.com"),
        ["option", "httpchk", "HEAD", "/index.jsp", "HTTP/1.1\r\nHost: www.xxx.com"]
    );
}

#[test]
fn escapes_outside_single_quotes() {
    assert_eq!(args(r#"a\ b c\\d e\#f g\'h i\"j \tk\x41"#), ["a b", "c\\d", "e#f", "g'h", "i\"j", "\tkA"]);
    // Other backslashes stay, so regexes keep their escapes.
    assert_eq!(args(r"acl x path_reg ^/a\.php$"), ["acl", "x", "path_reg", "^/a\\.php$"]);
}

#[test]
fn quotes_weak_and_strong() {
    assert_eq!(args(r#"stats realm "Private lands""#), ["stats", "realm", "Private lands"]);
    assert_eq!(args(r#"x 'a \ b # "c"'"#), ["x", "a \\ b # \"c\""]);
    assert_eq!(args(r#"x "a # b" 'c'd"e""#), ["x", "a # b", "cde"]);
    assert_eq!(args(r#"x "it's""#), ["x", "it's"]);
    // Escapes still work inside double quotes.
    assert_eq!(args(r#"x "a\"b\\c""#), ["x", "a\"b\\c"]);
}

#[test]
fn comments_and_empty_words() {
    let l = lex_with("bind :80 # the web port", &no_env).remove(0).unwrap();
    assert_eq!(l.args, ["bind", ":80"]);
    assert_eq!(l.comment.as_deref(), Some(" the web port"));
    let l = lex_with("   # only a comment", &no_env).remove(0).unwrap();
    assert!(l.args.is_empty());
    assert_eq!(l.comment.as_deref(), Some(" only a comment"));
    // An empty quoted word counts in the middle, not at the end (HAProxy's rule).
    assert_eq!(args(r#"a "" b"#), ["a", "", "b"]);
    assert_eq!(args(r#"a """#), ["a"]);
    // A line whose first word is empty is skipped.
    assert!(args(r#""" b"#).is_empty());
}

#[test]
fn environment_variables_expand_only_in_double_quotes() {
    let env = |n: &str| match n {
        "PORT" => Some("8080".to_string()),
        "ADDRS" => Some("10.0.0.1:80  10.0.0.2:80".to_string()),
        _ => None,
    };
    let one = |s: &str| lex_with(s, &env).remove(0).unwrap();
    assert_eq!(one(r#"bind "127.0.0.1:${PORT}""#).args, ["bind", "127.0.0.1:8080"]);
    assert_eq!(one(r#"bind "127.0.0.1:$PORT""#).args, ["bind", "127.0.0.1:8080"]);
    assert_eq!(one("bind 127.0.0.1:$PORT").args, ["bind", "127.0.0.1:$PORT"]);
    assert_eq!(one(r#"x "${NOPE-dflt}" "${PORT-dflt}""#).args, ["x", "dflt", "8080"]);
    assert_eq!(one(r#"x "${ADDRS[*]}" y"#).args, ["x", "10.0.0.1:80", "10.0.0.2:80", "y"]);
    assert_eq!(one(r#"x "\$PORT""#).args, ["x", "$PORT"]);
    let l = one(r#"x "a${NOPE}b""#);
    assert_eq!(l.args, ["x", "ab"]);
    assert_eq!(l.env, [EnvUse { name: "NOPE".into(), set: false, default: None }]);
    assert_eq!(one(r#"x "${NOPE-d}""#).env[0].default.as_deref(), Some("d"));
    assert_eq!(one(r#"x "${.LINE}:${.SECTION}:${.FILE}""#).args, ["x", "1:fe:t.cfg"]);
}

#[test]
fn continuation_joins_lines_and_keeps_numbering() {
    let v = lex_with("server s1 \\\n  10.0.0.1:80 \\\n  check\nmode http\n", &no_env);
    let first = v[0].as_ref().unwrap();
    assert_eq!(first.args, ["server", "s1", "10.0.0.1:80", "check"]);
    assert_eq!((first.line, first.continued), (1, 2));
    let second = v[1].as_ref().unwrap();
    assert_eq!((second.line, second.args.clone()), (4, vec!["mode".to_string(), "http".to_string()]));
    // An escaped backslash at the end is a backslash, not a continuation.
    assert_eq!(args("a b\\\\\nc"), ["a", "b\\"]);
    // A trailing backslash on the last line stays literal.
    assert_eq!(args("a b\\"), ["a", "b\\"]);
    // CRLF files.
    assert_eq!(args("mode http\r\n"), ["mode", "http"]);
}

#[test]
fn errors_carry_line_and_column() {
    let e = err(r#"stats realm "Private lands"#);
    assert_eq!((e.line, e.column, e.kind), (1, 13, LexErrorKind::UnterminatedQuote('"')));
    let e = err("x 'abc");
    assert_eq!(e.kind, LexErrorKind::UnterminatedQuote('\''));
    assert_eq!(err(r"x \xZZ").kind, LexErrorKind::BadHex);
    assert_eq!(err(r#"x "^/a$""#).kind, LexErrorKind::BadVarName);
    assert_eq!(err(r#"x "${A""#).kind, LexErrorKind::UnmatchedBrace);
    assert_eq!(err(r#"x "${A[x]}""#).kind, LexErrorKind::BadExpand);
    assert_eq!(err(&"w ".repeat(65)).kind, LexErrorKind::TooManyWords);
    assert_eq!(err("a\0b").kind, LexErrorKind::Nul);
    // An error on a continued line names the physical line.
    let e = err("a \\\n b \"c");
    assert_eq!((e.line, e.column), (2, 4));
    // The lexer goes on after an error.
    let v = lex_with("x 'bad\nmode http\n", &no_env);
    assert!(v[0].is_err());
    assert_eq!(v[1].as_ref().unwrap().args, ["mode", "http"]);
}

#[test]
fn quote_round_trips() {
    for w in [
        "plain",
        "two words",
        "tab\there",
        "a#b",
        "it's",
        "say \"hi\"",
        "back\\slash",
        "$HOME",
        "${X}",
        "new\nline",
        "\r\n",
        "ctl\u{1}x",
        "ünïcödé",
        " lead",
        "trail ",
        "\\",
        "'",
        "\"",
    ] {
        let line = format!("k {} end", quote(w));
        assert_eq!(args(&line), ["k", w, "end"], "{line}");
    }
    assert_eq!(quote("plain/path:80"), "plain/path:80");
    assert_eq!(args(&format!("k {} end", quote(""))), ["k", "", "end"]);
}

/// A small deterministic generator (no extra crate).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() as usize) % xs.len()]
    }
}

#[test]
fn random_words_round_trip_through_quote() {
    let alphabet = ["a", "Z", "0", " ", "\t", "\\", "'", "\"", "#", "$", "{", "}", "\n", "\r", "é", "x", "%", "-"];
    let mut r = Lcg(42);
    for _ in 0..3000 {
        let n = 1 + (r.next() % 5) as usize;
        let words: Vec<String> = (0..n)
            .map(|_| {
                let len = 1 + (r.next() % 8) as usize;
                (0..len).map(|_| r.pick(&alphabet)).collect()
            })
            .collect();
        let line: Vec<String> = words.iter().map(|w| quote(w)).collect();
        let line = format!("kw {}", line.join(" "));
        let mut expected = vec!["kw".to_string()];
        expected.extend(words);
        assert_eq!(args(&line), expected, "{line:?}");
    }
}

#[test]
fn random_garbage_never_panics() {
    let pieces = [
        "a", " ", "\\", "\\x4", "\\x", "'", "\"", "#", "$", "${", "}", "[*]", "-", "\n", "\r", "\0", "é", "\\\n",
        "${.LINE}", "$.",
    ];
    let env = |n: &str| n.len().is_multiple_of(2).then(|| "v a l".to_string());
    let mut r = Lcg(7);
    for _ in 0..5000 {
        let len = (r.next() % 40) as usize;
        let s: String = (0..len).map(|_| r.pick(&pieces)).collect();
        for l in lex_with(&s, &env).into_iter().flatten() {
            assert!(l.args.len() <= MAX_ARGS);
        }
    }
}
