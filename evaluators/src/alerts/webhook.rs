//! Webhook delivery from the catalog's outbox: a JSON body, an HMAC-SHA256 signature of it in
//! `X-Plumb-Signature: sha256=<hex>`, the transition's key in `X-Plumb-Delivery` (receivers
//! de-duplicate on it), retries with exponential backoff. A transition is enqueued once (its
//! key is unique), and marked delivered on the first 2xx, so it is not sent twice.

use std::time::Duration;

use hmac::{Hmac, Mac};
use plumb_store::catalog::alerts::Notification;
use plumb_store::Catalog;
use sha2::Sha256;

/// Attempts before a notification is given up (about 40 minutes of backoff in all).
pub const MAX_ATTEMPTS: i64 = 12;
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Backoff before attempt `attempts + 1`: 1 s, 2 s, 4 s, ... up to 10 minutes.
pub fn backoff(attempts: i64) -> Duration {
    Duration::from_secs(1u64 << attempts.clamp(0, 20)).min(MAX_BACKOFF)
}

/// Sends what is due; returns how many were delivered.
pub async fn deliver_due(
    catalog: &Catalog,
    http: &reqwest::Client,
    secret: impl Fn(&Notification) -> Option<String>,
) -> plumb_store::Result<usize> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let mut delivered = 0;
    for n in catalog.due_notifications(now, MAX_ATTEMPTS).await? {
        let mut req = http
            .post(&n.url)
            .header("content-type", "application/json")
            .header("x-plumb-delivery", &n.transition_key)
            .body(n.body.clone());
        if let Some(key) = secret(&n) {
            req = req.header("x-plumb-signature", signature(&key, n.body.as_bytes()));
        }
        let result = match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("{} answered {}", n.url, r.status())),
            Err(e) => Err(format!("{}: {e}", n.url)),
        };
        match result {
            Ok(()) => {
                catalog.notification_delivered(n.id).await?;
                delivered += 1;
            }
            Err(error) => {
                let next = now + backoff(n.attempts).as_nanos() as i64;
                tracing::warn!(rule = %n.rule_name, attempt = n.attempts + 1, %error, "webhook delivery failed; will retry");
                catalog.notification_failed(n.id, next, &error).await?;
            }
        }
    }
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_the_rfc_4231_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
