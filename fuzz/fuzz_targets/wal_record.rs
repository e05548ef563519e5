//! A write-ahead log record payload as read back at start-up (`record::decode`: the
//! binary hit and event records and the older JSON event records). A torn or corrupt
//! log must give an error, not a panic or a huge allocation.
//! Properties: no panic; an event record that decodes re-encodes to a payload that
//! decodes to the same events.
#![no_main]

use footfall_ingest::record::{Record, decode, encode_events};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(Record::Events(events)) => {
            let again = encode_events(&events);
            match decode(&again) {
                Ok(Record::Events(back)) => {
                    assert_eq!(back.len(), events.len());
                    for (a, b) in events.iter().zip(&back) {
                        // NaN revenue compares unequal to itself: compare the rest.
                        let mut a = a.clone();
                        let mut b = b.clone();
                        if a.revenue_amount.is_some_and(f64::is_nan)
                            && b.revenue_amount.is_some_and(f64::is_nan)
                        {
                            a.revenue_amount = None;
                            b.revenue_amount = None;
                        }
                        assert_eq!(a, b, "event changed in a re-encode");
                    }
                }
                Ok(Record::Hits { .. }) => panic!("events re-encoded as hits"),
                Err(e) => panic!("re-encoded events do not decode: {e}"),
            }
        }
        Ok(Record::Hits { hits, .. }) => {
            for h in &hits {
                let _ = footfall_ingest::pipeline::validate(h);
            }
        }
        Err(_) => {}
    }
});
