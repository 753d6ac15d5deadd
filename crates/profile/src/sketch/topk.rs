//! Frequent values in bounded space: the Misra–Gries summary.

use crate::hash::BuildPreHashed;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One frequent value with its estimated count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopEntry {
    /// The value, cut to the profiler's length cap (a cut value ends with `…`).
    pub value: String,
    /// Estimated occurrences: never less than the true count.
    pub count: u64,
    /// How much `count` may overestimate: the true count is in `count - error ..= count`.
    pub error: u64,
}

#[derive(Debug, Clone)]
struct Counter {
    count: u64,
    /// Stored on creation while no purge has happened, else on the second occurrence: after a
    /// purge a value seen once can never be reported, and copying the text of every value of
    /// a column of unique values was the summary's main cost.
    value: Option<String>,
}

/// Counts the most frequent values of a stream in a bounded table (the Misra–Gries summary
/// with batched purges that Apache DataSketches' frequent-items sketch uses).
///
/// The table holds up to `2m` counters. When a new value finds it full, the median count is
/// subtracted from every counter and those that reach zero are dropped, so a purge frees at
/// least half the table and costs `O(m)` once per `m` new values: `O(1)` per value.
///
/// **Guarantee.** Every value occurring more than `n / (m + 1)` times in `n` values is held,
/// and its reported `count` overestimates the truth by at most `error`, the total subtracted
/// so far (itself at most `n / (m + 1)`). Values are identified by their 64-bit hash.
#[derive(Debug, Clone)]
pub struct FrequentItems {
    max_counters: usize,
    max_value_bytes: usize,
    counters: HashMap<u64, Counter, BuildPreHashed>,
    /// The total subtracted by purges: the most any held count can fall short by.
    offset: u64,
    /// Strings of dropped counters, reused so a purge does not mean fresh allocations.
    spare: Vec<String>,
}

impl FrequentItems {
    /// An empty summary with `m` guaranteed counters (the table holds `2m`) that stores at
    /// most `max_value_bytes` of a value.
    pub fn new(m: usize, max_value_bytes: usize) -> Self {
        let max_counters = 2 * m.max(1);
        Self {
            max_counters,
            max_value_bytes,
            counters: HashMap::with_capacity_and_hasher(max_counters, BuildPreHashed::default()),
            offset: 0,
            spare: Vec::new(),
        }
    }

    /// Counts one occurrence of `value`, whose hash is `hash`.
    pub fn insert(&mut self, hash: u64, value: &str) {
        self.add(hash, value, 1);
    }

    fn add(&mut self, hash: u64, value: &str, count: u64) {
        if let Some(counter) = self.counters.get_mut(&hash) {
            counter.count += count;
            if counter.value.is_none() {
                let mut stored = self.spare.pop().unwrap_or_default();
                set_capped(&mut stored, value, self.max_value_bytes);
                counter.value = Some(stored);
            }
            return;
        }
        if self.counters.len() >= self.max_counters {
            self.purge();
        }
        let value = (self.offset == 0 || count > 1).then(|| {
            let mut stored = self.spare.pop().unwrap_or_default();
            set_capped(&mut stored, value, self.max_value_bytes);
            stored
        });
        self.counters.insert(hash, Counter { count, value });
    }

    /// Subtracts the median count from every counter and drops those left at zero.
    fn purge(&mut self) {
        let mut counts: Vec<u64> = self.counters.values().map(|c| c.count).collect();
        let middle = counts.len() / 2;
        let median = *counts.select_nth_unstable(middle).1;
        let spare = &mut self.spare;
        self.counters.retain(|_, counter| {
            if counter.count > median {
                counter.count -= median;
                true
            } else {
                spare.extend(counter.value.take());
                false
            }
        });
        self.offset += median;
    }

    /// Folds another summary in; the guarantee holds for the combined stream.
    pub fn merge(&mut self, other: &Self) {
        for (&hash, counter) in &other.counters {
            self.add(
                hash,
                counter.value.as_deref().unwrap_or_default(),
                counter.count,
            );
        }
        self.offset += other.offset;
    }

    /// The values, most frequent first (ties by value), up to `n` of them, leaving out those
    /// whose count is mostly possible overestimate (`error` at least half of `count`): on a
    /// column of unique values every counter is such noise.
    pub fn top(&self, n: usize) -> Vec<TopEntry> {
        let mut entries: Vec<TopEntry> = self
            .counters
            .values()
            .filter_map(|c| {
                let value = c.value.clone()?;
                Some(TopEntry {
                    value,
                    count: c.count + self.offset,
                    error: self.offset,
                })
            })
            .filter(|e| e.error * 2 < e.count)
            .collect();
        entries.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        entries.truncate(n);
        entries
    }
}

/// Replaces `dst` with `src` cut to at most `max_bytes` at a character boundary, marking a cut
/// with `…`. Reuses `dst`'s allocation, which matters when a slot is replaced on every row.
fn set_capped(dst: &mut String, src: &str, max_bytes: usize) {
    dst.clear();
    let capped = crate::value::cap(src, max_bytes);
    dst.push_str(capped);
    if capped.len() < src.len() {
        dst.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash_bytes;

    fn add(s: &mut FrequentItems, v: &str) {
        s.insert(hash_bytes(v.as_bytes()), v);
    }

    #[test]
    fn exact_when_fewer_values_than_slots() {
        let mut s = FrequentItems::new(8, 64);
        for v in ["a", "b", "a", "c", "a", "b"] {
            add(&mut s, v);
        }
        let top = s.top(2);
        assert_eq!(
            top[0],
            TopEntry {
                value: "a".into(),
                count: 3,
                error: 0
            }
        );
        assert_eq!(
            top[1],
            TopEntry {
                value: "b".into(),
                count: 2,
                error: 0
            }
        );
    }

    #[test]
    fn heavy_hitters_survive_a_long_tail_and_merge() {
        let (mut a, mut b) = (FrequentItems::new(20, 64), FrequentItems::new(20, 64));
        for i in 0..10_000 {
            let s = if i % 4 == 0 {
                "hot".to_string()
            } else {
                format!("tail{i}")
            };
            add(if i % 2 == 0 { &mut a } else { &mut b }, &s);
        }
        a.merge(&b);
        let top = a.top(1);
        assert_eq!(top[0].value, "hot");
        assert!(
            top[0].count >= 2500 && top[0].count - top[0].error <= 2500,
            "{top:?}"
        );
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let mut out = String::new();
        set_capped(&mut out, "ééé", 3);
        assert_eq!(out, "é…");
    }
}
