//! Request budgets that keep cheap requests cheap: token buckets keyed by client address
//! (failed authentications, webhook deliveries) and a count of open event streams per
//! token. Everything is per engine process and in memory: a limit is a guard against one
//! client drowning one replica, not an accounting system.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::ConnectInfo;
use axum::http::Extensions;

/// A bucket of `burst` tokens refilled at `per_second`, per key.
pub struct Buckets<K> {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

/// Keys kept before idle (full) buckets are forgotten.
const PRUNE_AT: usize = 10_000;

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(burst: u32, per_second: f64) -> Buckets<K> {
        Buckets { burst: f64::from(burst.max(1)), per_second, buckets: Mutex::default() }
    }

    fn refilled(&self, (tokens, at): (f64, Instant), now: Instant) -> f64 {
        (tokens + now.duration_since(at).as_secs_f64() * self.per_second).min(self.burst)
    }

    /// Whether `key` has a token left, without taking it.
    pub fn allows(&self, key: &K) -> bool {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.get(key).is_none_or(|b| self.refilled(*b, Instant::now()) >= 1.0)
    }

    /// Takes a token from `key`'s bucket; false when there is none.
    pub fn take(&self, key: &K) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, b| self.refilled(*b, now) < self.burst);
        }
        let tokens = buckets.get(key).map_or(self.burst, |b| self.refilled(*b, now));
        if tokens < 1.0 {
            buckets.insert(key.clone(), (tokens, now));
            return false;
        }
        buckets.insert(key.clone(), (tokens - 1.0, now));
        true
    }
}

/// How many event streams one token may hold open at once.
pub struct StreamSlots {
    max: usize,
    open: Arc<Mutex<HashMap<i64, usize>>>,
}

/// One open stream; dropping it (the client went away, or the stream ended) frees the slot.
pub struct StreamSlot {
    token: i64,
    open: Arc<Mutex<HashMap<i64, usize>>>,
}

impl StreamSlots {
    pub fn new(max: usize) -> StreamSlots {
        StreamSlots { max, open: Arc::default() }
    }

    pub fn take(&self, token: i64) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(token).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(StreamSlot { token, open: self.open.clone() })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.token);
            }
        }
    }
}

/// The limits of one API process.
pub struct Limits {
    /// failed authentications (user tokens and worker credentials) by client address
    pub auth_failures: Buckets<IpAddr>,
    /// webhook deliveries by client address
    pub hooks: Buckets<IpAddr>,
    /// open run-event and completion streams by token
    pub streams: StreamSlots,
    /// how long one event stream may stay open before the client must reconnect
    pub stream_lifetime: std::time::Duration,
}

/// The settings behind [`Limits`], with the defaults `crm serve` uses.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    pub auth_failures_burst: u32,
    pub auth_failures_per_minute: u32,
    pub hooks_burst: u32,
    pub hooks_per_second: u32,
    pub streams_per_token: usize,
    pub stream_lifetime: std::time::Duration,
}

impl Default for LimitSettings {
    fn default() -> LimitSettings {
        LimitSettings {
            auth_failures_burst: 20,
            auth_failures_per_minute: 60,
            hooks_burst: 100,
            hooks_per_second: 50,
            streams_per_token: 16,
            stream_lifetime: std::time::Duration::from_secs(30 * 60),
        }
    }
}

impl Limits {
    /// A slot for one more event stream of `token`, or 429 when it holds its share already.
    pub fn stream_slot(&self, token: i64) -> Result<StreamSlot, crate::error::ApiError> {
        self.streams.take(token).ok_or_else(|| {
            crate::error::ApiError::too_many(format!(
                "this token already holds {} open event streams; close one first",
                self.streams.max
            ))
        })
    }

    pub fn new(s: &LimitSettings) -> Limits {
        Limits {
            auth_failures: Buckets::new(s.auth_failures_burst, f64::from(s.auth_failures_per_minute) / 60.0),
            hooks: Buckets::new(s.hooks_burst, f64::from(s.hooks_per_second)),
            streams: StreamSlots::new(s.streams_per_token.max(1)),
            stream_lifetime: s.stream_lifetime,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::new(&LimitSettings::default())
    }
}

/// The address a request came from (unspecified when the server was not started with
/// connection info, as in the router's unit tests).
pub fn client_ip(extensions: &Extensions) -> IpAddr {
    extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip())
}

/// The client's address as an extractor, for handlers that budget by it.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.extensions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_until_it_refills() {
        let b = Buckets::new(3, 0.0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!((0..3).all(|_| b.take(&ip)));
        assert!(!b.allows(&ip) && !b.take(&ip));
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(b.allows(&other) && b.take(&other), "buckets are per key");
        let refilling = Buckets::new(1, 1000.0);
        assert!(refilling.take(&ip));
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(refilling.take(&ip));
    }

    #[test]
    fn stream_slots_are_per_token_and_freed_on_drop() {
        let slots = StreamSlots::new(2);
        let (a, b) = (slots.take(1).unwrap(), slots.take(1).unwrap());
        assert!(slots.take(1).is_none());
        assert!(slots.take(2).is_some());
        drop(a);
        assert!(slots.take(1).is_some());
        drop(b);
    }
}
