//! Redis URLs as status pages, logs and the effective configuration show them.

/// The URL with any password replaced, for status pages and logs.
pub fn masked(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest.get(..authority_end).and_then(|a| a.rfind('@')) {
        Some(at) => {
            let userinfo = rest.get(..at).unwrap_or("");
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            format!(
                "{scheme}://{user}:<masked>@{}",
                rest.get(at + 1..).unwrap_or("")
            )
        }
        None => url.to_string(),
    }
}
