//! The request time limit (`request_timeout_ms`), without a timer for the calls answered at
//! once.
//!
//! A tokio timer is registered and dropped under the runtime's one timer lock, so a timer per
//! call (as tower-http's `TimeoutLayer` makes) has every core take that lock at least once per
//! call, a cost that shows in the throughput of small calls. Here a call is polled once
//! first; most decision calls are answered then (the body came with the headers), and only a
//! call still pending gets a timer, whose deadline counts from the call's arrival all the same.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use tokio::time::{Instant, Sleep};

use crate::server::error::ApiError;

/// Answers `408` for a call not answered within `limit` of its arrival.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    pub fn new(limit: Duration) -> DeadlineLayer {
        DeadlineLayer { limit }
    }
}

impl<S> tower_layer::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

/// The service of [`DeadlineLayer`].
#[derive(Clone, Debug)]
pub(crate) struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S, R> tower_service::Service<R> for Deadline<S>
where
    S: tower_service::Service<R, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        DeadlineFuture {
            inner: self.inner.call(request),
            arrived: Instant::now(),
            limit: self.limit,
            sleep: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A call under its deadline: the timer is made at the first poll that leaves it pending.
    pub(crate) struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        arrived: Instant,
        limit: Duration,
        #[pin]
        sleep: Option<Sleep>,
    }
}

impl<F, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }
        if this.sleep.is_none() {
            let deadline = *this.arrived + *this.limit;
            this.sleep.set(Some(tokio::time::sleep_until(deadline)));
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => {
                Poll::Ready(Ok(ApiError::Timeout(*this.limit).into_response()))
            }
            _ => Poll::Pending,
        }
    }
}
