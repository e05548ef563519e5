//! Daily salts for the cookieless visitor hash (DESIGN §3): one random salt per UTC day,
//! the previous day's still tried, nothing older than 48 hours kept.

use footfall_core::identity::Salt;
use parking_lot::Mutex;
use rand::RngCore;
use std::collections::HashMap;

pub const DAY_US: i64 = 86_400 * 1_000_000;

pub fn day_of(ts_us: i64) -> i32 {
    ts_us.div_euclid(DAY_US) as i32
}

#[derive(Default)]
pub struct SaltBook {
    salts: Mutex<HashMap<i32, Salt>>,
    /// Salts created since the last persist.
    unsaved: Mutex<Vec<(i32, Salt)>>,
}

impl SaltBook {
    pub fn load(existing: Vec<(i32, Salt)>) -> Self {
        SaltBook {
            salts: Mutex::new(existing.into_iter().collect()),
            unsaved: Mutex::new(Vec::new()),
        }
    }

    /// The salt for a UTC day, created on first use.
    pub fn get(&self, day: i32) -> Salt {
        let mut salts = self.salts.lock();
        *salts.entry(day).or_insert_with(|| {
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            self.unsaved.lock().push((day, salt));
            salt
        })
    }

    /// The salt for a day only if it already exists.
    pub fn existing(&self, day: i32) -> Option<Salt> {
        self.salts.lock().get(&day).copied()
    }

    pub fn take_unsaved(&self) -> Vec<(i32, Salt)> {
        std::mem::take(&mut *self.unsaved.lock())
    }

    /// Drops salts of days before `day` (48 h rule: keep today and yesterday).
    pub fn forget_before(&self, day: i32) {
        self.salts.lock().retain(|d, _| *d >= day);
    }
}
