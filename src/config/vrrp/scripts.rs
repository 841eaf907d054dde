//! keepalived's `script_user USER [GROUP]` (global, and `user` per `vrrp_script`) and
//! `enable_script_security`. Only the syntax is checked here; whether the user exists and whether
//! a script's path is safe are checked when VRRP starts or reloads (`vrrp::script`), as for
//! `[global] user`.

use super::{Cx, VrrpSettings};
use crate::config::error::{FieldPath, Problem};
use crate::config::model::Global;

/// A user (name or number) and optional group to run a script as. Without a group, the user's
/// primary group (keepalived: "groupname defaults to group of user").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

/// Parses `"USER [GROUP]"`.
pub(super) fn user(text: &str, at: FieldPath, cx: &mut Cx) -> Option<ScriptUser> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [u] => Some(ScriptUser { user: u.to_string(), group: None }),
        [u, g] => Some(ScriptUser { user: u.to_string(), group: Some(g.to_string()) }),
        _ => {
            cx.err_v(at, "must be \"USER\" or \"USER GROUP\" (names or numbers)", text);
            None
        }
    }
}

/// `[global] script_user` and `enable_script_security` into the VRRP settings.
pub fn script_security(vrrp: &mut VrrpSettings, g: &Global, problems: &mut Vec<Problem>) {
    let mut cx = Cx { problems };
    let p = FieldPath::root().key("global");
    vrrp.script_user = g.script_user.as_deref().and_then(|u| user(u, p.key("script_user"), &mut cx));
    vrrp.script_security = g.enable_script_security;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Option<ScriptUser>, Vec<Problem>) {
        let mut problems = Vec::new();
        let u = user(text, FieldPath::root().key("script_user"), &mut Cx { problems: &mut problems });
        (u, problems)
    }

    #[test]
    fn user_with_and_without_group() {
        assert_eq!(parse("nobody").0, Some(ScriptUser { user: "nobody".into(), group: None }));
        assert_eq!(
            parse(" nobody  nogroup ").0,
            Some(ScriptUser { user: "nobody".into(), group: Some("nogroup".into()) })
        );
    }

    #[test]
    fn empty_or_three_words_are_located_errors() {
        for bad in ["", "  ", "a b c"] {
            let (u, problems) = parse(bad);
            assert!(u.is_none());
            assert_eq!(problems.len(), 1, "{bad:?}");
            assert_eq!(problems[0].path, FieldPath::root().key("script_user"));
        }
    }
}
