//! What the Redis clients of the shared limit store and shared revocations have in common: the
//! URL as status pages, logs and the effective configuration show it, and waiting for Redis
//! from synchronous code that may run on the server's async workers.

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

/// Runs `wait` (which blocks on Redis) off the async workers when called on one: the worker's
/// other tasks move to another thread meanwhile. Elsewhere (a plain thread, a current-thread
/// runtime) it simply runs.
pub(crate) fn blocking<T>(wait: impl FnOnce() -> T) -> T {
    let on_workers = tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if on_workers {
        tokio::task::block_in_place(wait)
    } else {
        wait()
    }
}
