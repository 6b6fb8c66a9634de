//! The writer Leases as the operator sees them: a reflector over the
//! pairs' Leases (their renewals never wake a reconcile) and, per Lease,
//! when the operator itself last saw it change. Expiry is judged by that
//! local instant and the Lease's duration, never by the `renewTime`
//! written by another machine's clock (client-go's rule).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::locked;
use crate::lease::WriterLease;
use crate::render::Names;
use crate::topology::LeaseInput;

/// When each Lease was last seen to change.
#[derive(Default)]
pub struct LeaseClock {
    seen: Mutex<HashMap<String, Seen>>,
}

#[derive(Clone, Debug)]
struct Seen {
    holder: Option<String>,
    renew_time: Option<String>,
    at: Instant,
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl LeaseClock {
    /// Records `lease` as seen at `now`: its instant moves only when its
    /// holder or renewal time changed.
    pub fn saw(&self, lease: &Lease, now: Instant) {
        let w = WriterLease::of(lease);
        let k = key(&lease.namespace().unwrap_or_default(), &lease.name_any());
        let mut seen = locked(&self.seen);
        let changed = seen
            .get(&k)
            .is_none_or(|s| s.holder != w.holder || s.renew_time != w.renew_time);
        if changed {
            seen.insert(
                k,
                Seen {
                    holder: w.holder,
                    renew_time: w.renew_time,
                    at: now,
                },
            );
        }
    }

    /// Whether the Lease `namespace/name` was seen to change less than
    /// `duration` before `now` (a Lease never seen counts as just seen:
    /// an operator that starts waits a whole duration before taking a
    /// Lease as expired).
    pub fn live(&self, namespace: &str, name: &str, duration: Duration, now: Instant) -> bool {
        locked(&self.seen)
            .get(&key(namespace, name))
            .is_none_or(|s| now.saturating_duration_since(s.at) < duration)
    }
}

/// The writer Lease of the pair `names` for the decision: from the store,
/// judged by the clock. `addresses`: both nodes' current addresses.
pub fn input(
    store: &Store<Lease>,
    clock: &LeaseClock,
    names: &Names,
    addresses: [Option<&str>; 2],
    now: Instant,
) -> LeaseInput {
    let Some(lease) = store.get(&ObjectRef::new(&names.writer_lease()).within(&names.namespace))
    else {
        return LeaseInput::default();
    };
    clock.saw(&lease, now);
    let w = WriterLease::of(&lease);
    let holder = (0..2u32).find(|o| w.holder.as_deref() == Some(names.pod(*o).as_str()));
    let duration = Duration::from_secs(w.duration_seconds.max(1).into());
    let addresses_current = (0..2u32).all(|o| {
        addresses[o as usize]
            .is_none_or(|a| w.addresses.get(&names.pod(o)).map(String::as_str) == Some(a))
    });
    LeaseInput {
        exists: true,
        holder,
        epoch: w.epoch,
        live: holder.is_some()
            && clock.live(&names.namespace, &names.writer_lease(), duration, now),
        addresses_current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lease(holder: &str, renew: &str) -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": "db-writer", "namespace": "shop"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 5, "renewTime": renew},
        }))
        .unwrap_or_default()
    }

    /// Expiry counts from when the operator saw a change, not from the
    /// renewal time written in the Lease (another machine's clock).
    #[test]
    fn expiry_is_judged_by_local_observation() {
        let clock = LeaseClock::default();
        let t0 = Instant::now();
        let d = Duration::from_secs(5);
        let s = Duration::from_secs;
        assert!(
            clock.live("shop", "db-writer", d, t0),
            "never seen: as if just seen"
        );
        // A renewal time far in the past (a clock behind) is still a renewal.
        clock.saw(&lease("db-0", "2001-01-01T00:00:00.000000Z"), t0);
        assert!(clock.live("shop", "db-writer", d, t0 + s(4)));
        // The same Lease seen again is no renewal.
        clock.saw(&lease("db-0", "2001-01-01T00:00:00.000000Z"), t0 + s(4));
        assert!(!clock.live("shop", "db-writer", d, t0 + s(5)));
        // A renewal (even to an older time) or a new holder is.
        clock.saw(&lease("db-0", "2000-01-01T00:00:00.000000Z"), t0 + s(6));
        assert!(clock.live("shop", "db-writer", d, t0 + s(10)));
        clock.saw(&lease("db-1", "2000-01-01T00:00:00.000000Z"), t0 + s(11));
        assert!(clock.live("shop", "db-writer", d, t0 + s(15)));
        assert!(!clock.live("shop", "db-writer", d, t0 + s(16)));
    }
}
