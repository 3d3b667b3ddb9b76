//! Fresh request ids without a system call each. tower-http's `MakeRequestUuid` draws a
//! UUID v4 from the kernel (`getrandom`) for every request; an id only has to tell
//! requests apart in logs, so here one seed is drawn per process and a counter is mixed
//! into it. The ids keep the shape of a UUID v4, so nothing that reads them changes.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};
use uuid::Uuid;

static SEED: LazyLock<(u64, u64)> = LazyLock::new(|| Uuid::new_v4().as_u64_pair());
static NEXT: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, Default)]
pub struct MakeRequestUuid;

impl MakeRequestId for MakeRequestUuid {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = next_id();
        HeaderValue::from_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer())).ok().map(RequestId::new)
    }
}

fn next_id() -> Uuid {
    let (a, b) = *SEED;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // splitmix64 is a bijection of its input: distinct counters give distinct halves.
    let x = a.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let bytes = ((u128::from(mix(x)) << 64) | u128::from(mix(x ^ b))).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_distinct_uuids_v4() {
        let ids: HashSet<Uuid> = (0..10_000).map(|_| next_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.get_version_num() == 4 && id.get_variant() == uuid::Variant::RFC4122));
    }
}
