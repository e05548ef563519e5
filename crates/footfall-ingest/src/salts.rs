//! Daily salts for the cookieless visitor hash (DESIGN §3): one random salt per UTC day,
//! the previous day's still tried, nothing older than 48 hours kept.

use footfall_core::identity::Salt;
use parking_lot::Mutex;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

pub const DAY_US: i64 = 86_400 * 1_000_000;

/// How long a salt of a day older than yesterday (a historical import) stays in memory
/// after its last use. Long enough that one import keeps one salt per day (otherwise
/// the 10-second upkeep would replace it mid-import and split visitors), short enough
/// that it is gone soon after; such salts are never written to disk.
pub const HISTORICAL_SALT_IDLE: Duration = Duration::from_secs(600);

pub fn day_of(ts_us: i64) -> i32 {
    ts_us.div_euclid(DAY_US) as i32
}

#[derive(Default)]
pub struct SaltBook {
    salts: Mutex<HashMap<i32, Salt>>,
    /// Salts created since the last persist.
    unsaved: Mutex<Vec<(i32, Salt)>>,
    /// First day not deleted by the last `forget_before` (`i32::MIN` before any).
    floor: AtomicI32,
    /// Last use of each salt older than `floor`.
    historical_use: Mutex<HashMap<i32, Instant>>,
}

impl SaltBook {
    pub fn load(existing: Vec<(i32, Salt)>) -> Self {
        SaltBook {
            salts: Mutex::new(existing.into_iter().collect()),
            unsaved: Mutex::new(Vec::new()),
            floor: AtomicI32::new(i32::MIN),
            historical_use: Mutex::new(HashMap::new()),
        }
    }

    fn note_use(&self, day: i32) {
        if day < self.floor.load(Ordering::Relaxed) {
            self.historical_use.lock().insert(day, Instant::now());
        }
    }

    /// The salt for a UTC day, created on first use.
    pub fn get(&self, day: i32) -> Salt {
        self.note_use(day);
        let mut salts = self.salts.lock();
        *salts.entry(day).or_insert_with(|| {
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            self.unsaved.lock().push((day, salt));
            // A new salt of a day before yesterday counts as used now even before the
            // first upkeep has said which days are historical (an import that starts its
            // own server sends at once): otherwise that upkeep deletes it mid-import and
            // splits the day's visitors.
            if day < day_of(chrono::Utc::now().timestamp_micros()) - 1 {
                self.historical_use.lock().insert(day, Instant::now());
            }
            salt
        })
    }

    /// The salt for a day only if it already exists.
    pub fn existing(&self, day: i32) -> Option<Salt> {
        let salt = self.salts.lock().get(&day).copied();
        if salt.is_some() {
            self.note_use(day);
        }
        salt
    }

    pub fn take_unsaved(&self) -> Vec<(i32, Salt)> {
        std::mem::take(&mut *self.unsaved.lock())
    }

    /// Drops salts of days before `day` (48 h rule: keep today and yesterday), except
    /// historical salts used in the last `HISTORICAL_SALT_IDLE`.
    pub fn forget_before(&self, day: i32) {
        self.forget_before_at(day, Instant::now());
    }

    fn forget_before_at(&self, day: i32, now: Instant) {
        self.floor.store(day, Ordering::Relaxed);
        let mut used = self.historical_use.lock();
        used.retain(|d, t| *d < day && now.saturating_duration_since(*t) < HISTORICAL_SALT_IDLE);
        self.salts
            .lock()
            .retain(|d, _| *d >= day || used.contains_key(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_historical_salt_lives_while_used_then_goes() {
        let book = SaltBook::default();
        let today = day_of(chrono::Utc::now().timestamp_micros());
        book.forget_before(today - 1);
        let old = book.get(today - 3000);
        // Upkeep during an import keeps the day's salt.
        book.forget_before(today - 1);
        assert_eq!(book.existing(today - 3000), Some(old));
        assert_eq!(book.get(today - 3000), old);
        // Idle for longer than the limit: deleted, and a new import gets a new salt.
        book.forget_before_at(today - 1, Instant::now() + HISTORICAL_SALT_IDLE);
        assert_eq!(book.existing(today - 3000), None);
        // Current salts follow the 48 h rule as before.
        book.get(today - 1);
        book.forget_before(today);
        assert_eq!(book.existing(today - 1), None);
    }

    #[test]
    fn a_historical_salt_made_before_the_first_upkeep_survives_it() {
        let book = SaltBook::default();
        let today = day_of(chrono::Utc::now().timestamp_micros());
        // An import that starts its own server: hits of an old day before any upkeep.
        let old = book.get(today - 3000);
        book.forget_before(today - 1);
        assert_eq!(book.existing(today - 3000), Some(old));
        book.forget_before_at(today - 1, Instant::now() + HISTORICAL_SALT_IDLE);
        assert_eq!(book.existing(today - 3000), None);
    }
}
