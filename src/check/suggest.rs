//! "Did you mean `x`?": the nearest known name to a mistyped one.

/// The candidate closest to `name`, if one is close enough to be a plausible typo (the one
/// rule every stage uses: [`crate::source::suggest`]).
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    crate::source::suggest(name, candidates)
}

/// A help line: the suggestion when there is one, else `otherwise`.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    otherwise: impl FnOnce() -> String,
) -> String {
    match nearest(name, candidates) {
        Some(candidate) => format!("did you mean `{candidate}`?"),
        None => otherwise(),
    }
}

/// `a`, `b` and `c`: a short list of names for a help line (at most eight, then "…").
pub fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    list_with(names, "and")
}

/// Like [`list`], joining the last two with `word` ("and", "or").
pub(crate) fn list_with(names: impl IntoIterator<Item = impl AsRef<str>>, word: &str) -> String {
    let names: Vec<String> = names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect();
    match names.as_slice() {
        [] => "none".to_string(),
        [one] => one.clone(),
        [rest @ .., last] if names.len() <= 8 => format!("{} {word} {last}", rest.join(", ")),
        _ => format!("{}, …", names.get(..8).unwrap_or(&[]).join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_typos_but_not_strangers() {
        let names = ["User", "Album", "Photo", "Group"];
        assert_eq!(nearest("Usr", names), Some("User"));
        assert_eq!(nearest("user", names), Some("User"));
        assert_eq!(nearest("Phtoo", names), Some("Photo"));
        assert_eq!(nearest("Invoice", names), None);
        assert_eq!(nearest("User", names), None);
    }

    #[test]
    fn lists_names() {
        assert_eq!(list(["a"]), "`a`");
        assert_eq!(list(["a", "b", "c"]), "`a`, `b` and `c`");
        assert_eq!(list(Vec::<String>::new()), "none");
    }
}
