//! Webhook request signatures: HMAC-SHA256 over `timestamp + "." + path + "." + body`,
//! keyed with the hook's webhook key, sent as `X-Crm-Timestamp: <unix seconds>` and
//! `X-Crm-Signature: sha256=<hex>`; `path` is the hook's path (`inbound-lead` for
//! `POST /hooks/inbound-lead`). Signing the timestamp is what makes the replay window
//! enforceable (an old body cannot be re-sent with a fresh time); signing the path is what
//! keeps a delivery to one hook from being replayed to another that shares its key.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "x-crm-timestamp";
pub const SIGNATURE_HEADER: &str = "x-crm-signature";

type HmacSha256 = Hmac<Sha256>;

/// Why a request's signature was refused; each message tells the caller what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing X-Crm-Timestamp header (unix seconds of when the request was signed)")]
    MissingTimestamp,
    #[error(
        "missing X-Crm-Signature header (expected sha256=<hex HMAC-SHA256 of timestamp + \".\" + path + \".\" + body>)"
    )]
    MissingSignature,
    #[error("X-Crm-Timestamp is not a unix time in seconds")]
    BadTimestamp,
    #[error("X-Crm-Signature is malformed (expected sha256=<64 hex digits>)")]
    MalformedSignature,
    #[error("request timestamp is {age_secs} s away from the server clock; outside the {window_secs} s replay window")]
    Stale { age_secs: i64, window_secs: i64 },
    #[error("signature does not match the request's timestamp, path and body")]
    Mismatch,
}

/// What a request signed at `timestamp` for the hook `path` says; the parts of [`verify`].
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub path: &'a str,
    pub body: &'a [u8],
}

/// The signature header value for a request: what a sender computes.
pub fn sign(key: &[u8], timestamp: i64, signed: Signed<'_>) -> String {
    format!("sha256={}", hex::encode(keyed(key, timestamp, signed).finalize().into_bytes()))
}

fn keyed(key: &[u8], timestamp: i64, signed: Signed<'_>) -> HmacSha256 {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    // Hook paths have no '.', so the separator cannot be forged by moving bytes across it.
    m.update(signed.path.as_bytes());
    m.update(b".");
    m.update(signed.body);
    m
}

/// Checks the headers of a request against `secret` and the clock. Returns the verified
/// signature bytes, which the caller records to refuse a replay inside the window.
pub fn verify(
    key: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    signed: Signed<'_>,
    now: DateTime<Utc>,
    window_secs: i64,
) -> Result<[u8; 32], SignatureError> {
    let timestamp = timestamp_header.ok_or(SignatureError::MissingTimestamp)?;
    let signature = signature_header.ok_or(SignatureError::MissingSignature)?;
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    let hex_part = signature.trim().strip_prefix("sha256=").ok_or(SignatureError::MalformedSignature)?;
    let mut given = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut given).map_err(|_| SignatureError::MalformedSignature)?;

    // The window applies both ways: a clock far ahead is as suspicious as a stale request.
    let age_secs = now.timestamp().saturating_sub(timestamp);
    if age_secs.abs() > window_secs {
        return Err(SignatureError::Stale { age_secs, window_secs });
    }
    // Verification through the Mac type compares in constant time.
    keyed(key, timestamp, signed).verify_slice(&given).map_err(|_| SignatureError::Mismatch)?;
    Ok(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"whsec_test";

    fn at(path: &'static str, body: &'static [u8]) -> Signed<'static> {
        Signed { path, body }
    }

    #[test]
    fn a_signed_request_verifies() {
        let now = Utc::now();
        let req = at("inbound-lead", br#"{"name":"Ann"}"#);
        let sig = sign(KEY, now.timestamp(), req);
        let ts = now.timestamp().to_string();
        let got = verify(KEY, Some(&ts), Some(&sig), req, now, 300).expect("valid");
        assert_eq!(format!("sha256={}", hex::encode(got)), sig);
    }

    #[test]
    fn each_defect_has_its_own_error() {
        let now = Utc::now();
        let req = at("hook", b"{}");
        let ts = now.timestamp().to_string();
        let sig = sign(KEY, now.timestamp(), req);
        assert_eq!(verify(KEY, None, Some(&sig), req, now, 300), Err(SignatureError::MissingTimestamp));
        assert_eq!(verify(KEY, Some(&ts), None, req, now, 300), Err(SignatureError::MissingSignature));
        assert_eq!(verify(KEY, Some("soon"), Some(&sig), req, now, 300), Err(SignatureError::BadTimestamp));
        assert_eq!(verify(KEY, Some(&ts), Some("md5=abc"), req, now, 300), Err(SignatureError::MalformedSignature));
        assert_eq!(
            verify(KEY, Some(&ts), Some(&sig), at("hook", b"{\"x\":1}"), now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(b"other", Some(&ts), Some(&sig), req, now, 300), Err(SignatureError::Mismatch));
        let old = now.timestamp() - 301;
        let old_sig = sign(KEY, old, req);
        assert_eq!(
            verify(KEY, Some(&old.to_string()), Some(&old_sig), req, now, 300),
            Err(SignatureError::Stale { age_secs: 301, window_secs: 300 })
        );
    }

    #[test]
    fn the_timestamp_and_the_path_are_part_of_what_is_signed() {
        let now = Utc::now();
        let req = at("orders", b"{}");
        let ts = now.timestamp().to_string();
        let earlier = sign(KEY, now.timestamp() - 10, req);
        assert_eq!(verify(KEY, Some(&ts), Some(&earlier), req, now, 300), Err(SignatureError::Mismatch));
        // A delivery to one hook does not verify at another that shares its key.
        let sig = sign(KEY, now.timestamp(), req);
        assert_eq!(verify(KEY, Some(&ts), Some(&sig), at("refunds", b"{}"), now, 300), Err(SignatureError::Mismatch));
    }
}
