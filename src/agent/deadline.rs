//! The agent's clock rules (pure): how long a renewal or a peer's
//! confirmation lets the writer go on, how often to look, and what to do at
//! each look.
//!
//! Only local instants are compared (when a request was *sent*), never the
//! times written in the Lease: clocks of different machines may disagree,
//! their rates do not (client-go's leader election makes the same choice).

use std::time::{Duration, Instant};

/// How long a peer's confirmation lets a writer that cannot reach the API
/// server go on. The operator waits as long after it stopped the
/// candidate's receiver before it promotes under `Async` (the peer confirms
/// only while that receiver runs).
pub const CONFIRMATION_VALIDITY: Duration = Duration::from_millis(1500);

/// The margin kept below the Lease's duration: the writer fences itself
/// this long before the operator may take the Lease as expired.
pub fn margin(duration: Duration) -> Duration {
    (duration / 5)
        .max(Duration::from_millis(500))
        .min(duration / 2)
}

/// How often the agent looks (and renews): a fifth of the duration, from
/// 0.2 to 1 s.
pub fn period(duration: Duration) -> Duration {
    (duration / 5).clamp(Duration::from_millis(200), Duration::from_secs(1))
}

/// Until when a renewal sent at `sent` lets the writer go on.
pub fn renewed_until(sent: Instant, duration: Duration) -> Instant {
    sent + duration.saturating_sub(margin(duration))
}

/// Until when a confirmation asked at `sent` lets the writer go on.
pub fn confirmed_until(sent: Instant) -> Instant {
    sent + CONFIRMATION_VALIDITY
}

/// The local server's process, as the agent finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    /// Running and answering.
    Answering,
    /// Running, not answering (frozen, recovering, overloaded).
    Silent,
    /// Not running (crashed, being restarted).
    Gone,
}

/// What the agent knows after a look's renewal (or confirmation) attempt.
/// A look renews only when the Lease names this pod and its server
/// answers; it asks the peer only when that renewal failed.
#[derive(Clone, Copy, Debug)]
pub struct Look {
    /// The Lease (as last read) names this pod.
    pub holder: bool,
    /// The local server.
    pub process: Process,
    /// Until when the last renewal or confirmation lets it go on (`None`:
    /// none since it was handed the Lease or since the agent started).
    pub valid_until: Option<Instant>,
    /// It was fenced since its last renewal.
    pub fenced: bool,
    /// Now.
    pub now: Instant,
}

/// What to do after a look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not the writer: nothing to hold.
    Idle,
    /// The server is not running: give the Lease back (the operator then
    /// knows this node takes no writes and need not wait for it).
    Release,
    /// No renewal or confirmation is valid any more: fence the server now.
    Fence,
    /// Go on (valid, or already fenced).
    Hold,
}

/// What to do after `look`. Pure.
pub fn verdict(look: &Look) -> Verdict {
    if !look.holder {
        return Verdict::Idle;
    }
    let expired = look.valid_until.is_none_or(|v| look.now >= v);
    match look.process {
        Process::Gone => Verdict::Release,
        _ if expired && !look.fenced => Verdict::Fence,
        _ => Verdict::Hold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_and_periods_scale_with_the_duration() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // (duration, margin, period)
        let rows = [
            (s(1), ms(500), ms(200)),
            (s(3), ms(600), ms(600)),
            (s(5), s(1), s(1)),
            (s(10), s(2), s(1)),
            (s(60), s(12), s(1)),
        ];
        for (d, m, p) in rows {
            assert_eq!((margin(d), period(d)), (m, p), "{d:?}");
            assert!(margin(d) < d && period(d) < d.saturating_sub(margin(d)));
        }
        let t = Instant::now();
        assert_eq!(renewed_until(t, s(5)), t + s(4));
        assert_eq!(confirmed_until(t), t + CONFIRMATION_VALIDITY);
    }

    #[test]
    fn verdicts() {
        let t = Instant::now();
        let later = Some(t + Duration::from_secs(1));
        let earlier = Some(t - Duration::from_millis(1));
        let look = |holder, process, valid_until, fenced| Look {
            holder,
            process,
            valid_until,
            fenced,
            now: t,
        };
        use Process::*;
        // (what, look, verdict)
        let rows = [
            (
                "a replica holds nothing",
                look(false, Answering, None, false),
                Verdict::Idle,
            ),
            (
                "a replica's expiry is not its own",
                look(false, Silent, earlier, false),
                Verdict::Idle,
            ),
            (
                "a renewed writer goes on",
                look(true, Answering, later, false),
                Verdict::Hold,
            ),
            (
                "a writer never renewed is fenced",
                look(true, Answering, None, false),
                Verdict::Fence,
            ),
            (
                "a frozen writer within validity goes on",
                look(true, Silent, later, false),
                Verdict::Hold,
            ),
            (
                "a frozen writer past validity is fenced",
                look(true, Silent, earlier, false),
                Verdict::Fence,
            ),
            (
                "a cut-off writer past validity is fenced",
                look(true, Answering, earlier, false),
                Verdict::Fence,
            ),
            (
                "a writer is fenced once per lost validity",
                look(true, Answering, earlier, true),
                Verdict::Hold,
            ),
            (
                "a crashed writer gives the Lease back",
                look(true, Gone, later, false),
                Verdict::Release,
            ),
            (
                "even past validity",
                look(true, Gone, earlier, false),
                Verdict::Release,
            ),
        ];
        for (what, l, want) in rows {
            assert_eq!(verdict(&l), want, "{what}");
        }
    }
}
