//! Sessionization rules (DESIGN §3): the events of one (site, visitor) with no gap over the
//! site's timeout form one visit, decided by event time, not arrival time.

/// Default inactivity timeout: 30 minutes.
pub const DEFAULT_TIMEOUT_SECS: u32 = 30 * 60;

/// What the sessionizer remembers about an open visit.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSession {
    pub session_id: u64,
    pub visitor_id: u64,
    pub start_us: i64,
    pub last_us: i64,
}

impl OpenSession {
    /// Whether an event at `ts_us` belongs to this visit: no gap over the timeout to
    /// it, on either side. Events arrive slightly out of order (two hits of a page load
    /// sent at once, stamped on arrival, processed in the other order), so an event a
    /// little before the start belongs to the visit too and becomes its start.
    pub fn continues_at(&self, ts_us: i64, timeout_secs: u32) -> bool {
        let timeout_us = i64::from(timeout_secs) * 1_000_000;
        ts_us - self.last_us <= timeout_us && self.start_us - ts_us <= timeout_us
    }

    /// Records an event of this visit.
    pub fn touch(&mut self, ts_us: i64) {
        self.last_us = self.last_us.max(ts_us);
        self.start_us = self.start_us.min(ts_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(start: i64) -> OpenSession {
        OpenSession {
            session_id: 1,
            visitor_id: 2,
            start_us: start,
            last_us: start,
        }
    }

    #[test]
    fn thirty_minute_gap_is_inclusive() {
        let s = open(0);
        assert!(s.continues_at(30 * 60 * 1_000_000, DEFAULT_TIMEOUT_SECS));
        assert!(!s.continues_at(30 * 60 * 1_000_000 + 1, DEFAULT_TIMEOUT_SECS));
    }

    #[test]
    fn sliding_window() {
        let mut s = open(0);
        s.touch(20 * 60 * 1_000_000);
        assert!(s.continues_at(45 * 60 * 1_000_000, DEFAULT_TIMEOUT_SECS));
    }

    #[test]
    fn an_earlier_event_within_the_timeout_extends_the_start() {
        let mut s = open(60 * 60 * 1_000_000);
        assert!(s.continues_at(59 * 60 * 1_000_000, DEFAULT_TIMEOUT_SECS));
        s.touch(59 * 60 * 1_000_000);
        assert_eq!(s.start_us, 59 * 60 * 1_000_000);
        // Over the timeout before the start (and after the last event): another visit.
        assert!(!s.continues_at(29 * 60 * 1_000_000 - 1, DEFAULT_TIMEOUT_SECS));
        assert!(!s.continues_at(90 * 60 * 1_000_000 + 1, DEFAULT_TIMEOUT_SECS));
    }
}
