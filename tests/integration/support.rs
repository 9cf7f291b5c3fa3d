//! Helpers every area's tests share.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// Calls `probe` every `every` until it returns `Ok`, and gives that value with the time it
/// took; fails the test after `limit`, naming `what` and the last `Err` (the state it saw).
pub async fn poll<T, E: Debug>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, E>,
) -> (T, Duration) {
    let started = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return (value, started.elapsed()),
            Err(seen) => assert!(
                started.elapsed() < limit,
                "waited {limit:?} for {what}; last seen: {seen:#?}"
            ),
        }
        tokio::time::sleep(every).await;
    }
}

/// `Ok(())` when `done`, else `Err(())`: a probe for [`poll`] that has nothing to show.
pub fn done(done: bool) -> Result<(), ()> {
    if done { Ok(()) } else { Err(()) }
}
