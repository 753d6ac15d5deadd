//! Protobuf timestamps to and from milliseconds since the Unix epoch, the record's
//! unit of time.

/// Milliseconds since the epoch as a protobuf timestamp.
pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A protobuf timestamp in milliseconds since the epoch; a client's timestamp beyond
/// what milliseconds can hold saturates instead of overflowing.
pub fn millis(ts: &prost_types::Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos) / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for ms in [0, 1, 999, 1_700_000_000_123, -1] {
            assert_eq!(millis(&timestamp(ms)), ms);
        }
        let far = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 999_999_999,
        };
        assert_eq!(millis(&far), i64::MAX);
    }
}
