//! Failure injection: queued faults that the next requests consume.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;

use crate::state::State;

/// Faults to inject, callable from a test while the server runs.
///
/// Each call queues a fault for the next `times` requests to its endpoint (`/oauth/token`, or
/// any `/api` route). Failures queue one after another, first in first out, and each request
/// consumes at most one. Delays are queued apart: a request consumes at most one delay as well,
/// and a delay can come before a failure on the same request.
pub struct Faults {
    queues: Mutex<Queues>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct Queues {
    token: VecDeque<TokenFault>,
    token_delays: VecDeque<Duration>,
    api: VecDeque<ApiFault>,
    api_delays: VecDeque<Duration>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum TokenFault {
    Status(StatusCode),
    RateLimited { retry_after_secs: u64 },
    InvalidGrant,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum ApiFault {
    Unauthorized,
    RateLimited { retry_after_secs: u64 },
}

/// What a request must suffer before being handled.
pub(crate) struct Taken<F> {
    pub delay: Option<Duration>,
    pub fault: Option<F>,
}

impl Faults {
    pub(crate) fn new(state: Arc<Mutex<State>>) -> Self {
        Self {
            queues: Mutex::default(),
            state,
        }
    }

    /// The next `times` token requests answer `status` with an OAuth error body.
    ///
    /// # Panics
    /// If `status` is not an HTTP status code (100 to 999).
    pub fn fail_token_with_status(&self, status: u16, times: usize) {
        let status = StatusCode::from_u16(status).expect("an HTTP status code");
        self.push_token(TokenFault::Status(status), times);
    }

    /// The next `times` token requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn token_rate_limited(&self, retry_after_secs: u64, times: usize) {
        self.push_token(TokenFault::RateLimited { retry_after_secs }, times);
    }

    /// The next `times` token requests answer 400 `{"error":"invalid_grant"}`.
    pub fn token_invalid_grant(&self, times: usize) {
        self.push_token(TokenFault::InvalidGrant, times);
    }

    /// The next `times` token requests wait `delay` before being handled.
    pub fn delay_token(&self, delay: Duration, times: usize) {
        self.queues()
            .token_delays
            .extend(std::iter::repeat_n(delay, times));
    }

    /// The next `times` API requests answer 401 `invalid_token`, even with a good token.
    pub fn api_unauthorized(&self, times: usize) {
        self.push_api(ApiFault::Unauthorized, times);
    }

    /// The next `times` API requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn api_rate_limited(&self, retry_after_secs: u64, times: usize) {
        self.push_api(ApiFault::RateLimited { retry_after_secs }, times);
    }

    /// The next `times` API requests wait `delay` before being handled.
    pub fn delay_api(&self, delay: Duration, times: usize) {
        self.queues()
            .api_delays
            .extend(std::iter::repeat_n(delay, times));
    }

    /// Forgets every refresh token issued so far: the next refresh gets `invalid_grant`.
    /// Access tokens already issued keep working until they expire.
    pub fn revoke_all_refresh_tokens(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.refresh.clear();
    }

    /// Drops every queued fault and delay.
    pub fn clear(&self) {
        *self.queues() = Queues::default();
    }

    pub(crate) fn take_token(&self) -> Taken<TokenFault> {
        let mut queues = self.queues();
        Taken {
            delay: queues.token_delays.pop_front(),
            fault: queues.token.pop_front(),
        }
    }

    pub(crate) fn take_api(&self) -> Taken<ApiFault> {
        let mut queues = self.queues();
        Taken {
            delay: queues.api_delays.pop_front(),
            fault: queues.api.pop_front(),
        }
    }

    fn push_token(&self, fault: TokenFault, times: usize) {
        self.queues()
            .token
            .extend(std::iter::repeat_n(fault, times));
    }

    fn push_api(&self, fault: ApiFault, times: usize) {
        self.queues().api.extend(std::iter::repeat_n(fault, times));
    }

    fn queues(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
