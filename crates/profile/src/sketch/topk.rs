//! Frequent values in bounded space: the Misra–Gries summary.

use serde::{Deserialize, Serialize};

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

/// Counts the most frequent values of a stream in a bounded table (the Misra–Gries summary
/// with batched purges that Apache DataSketches' frequent-items sketch uses).
///
/// The table holds up to `2m` counters. When a new value finds it full, the median count is
/// subtracted from every counter and those that reach zero are dropped, so a purge frees at
/// least half the table and costs `O(m)` once per `m` new values: `O(1)` per value.
///
/// **Guarantee.** Every value occurring more than `n / (m + 1)` times in `n` values is held,
/// and its reported `count` overestimates the truth by at most `error`, the total subtracted
/// so far (itself at most `n / (m + 1)`). Values are identified by their 64-bit hash. Merged
/// summaries keep the guarantee for the combined stream.
#[derive(Debug, Clone)]
pub struct FrequentItems {
    max_counters: usize,
    max_value_bytes: usize,
    /// The counters, densely.
    entries: Vec<Entry>,
    /// An open-addressing index into `entries` (linear probing, at most half full): `i + 1`
    /// for entry `i`, 0 for a free slot.
    slots: Vec<u32>,
    /// The total subtracted by purges: the most any held count can fall short by.
    offset: u64,
    /// Strings of dropped counters, reused so a purge does not mean fresh allocations.
    spare: Vec<String>,
    /// The counts a purge takes the median of, kept between purges.
    median_scratch: Vec<u64>,
}

#[derive(Debug, Clone)]
struct Entry {
    hash: u64,
    count: u64,
    /// Stored on creation while no purge has happened, else on the second occurrence: after
    /// a purge a value seen once can never be reported, and copying the text of every value
    /// of a column of unique values was the summary's main cost.
    value: Option<String>,
}

impl FrequentItems {
    /// An empty summary with `m` guaranteed counters (the table holds `2m`) that stores at
    /// most `max_value_bytes` of a value.
    pub fn new(m: usize, max_value_bytes: usize) -> Self {
        let max_counters = 2 * m.max(1);
        Self {
            max_counters,
            max_value_bytes,
            entries: Vec::with_capacity(max_counters),
            slots: vec![0; (2 * max_counters).next_power_of_two()],
            offset: 0,
            spare: Vec::new(),
            median_scratch: Vec::new(),
        }
    }

    /// Counts one occurrence of `value`, whose hash is `hash`.
    pub fn insert(&mut self, hash: u64, value: &str) {
        self.insert_bytes(hash, value.as_bytes());
    }

    /// [`Self::insert`] for the bytes of valid UTF-8 text; `true` if the value was held
    /// (so it has been seen before).
    #[inline]
    pub(crate) fn insert_bytes(&mut self, hash: u64, value: &[u8]) -> bool {
        match self.find(hash) {
            Ok(i) => {
                let entry = &mut self.entries[i];
                entry.count += 1;
                if entry.value.is_none() {
                    let stored = self.capped(value);
                    self.entries[i].value = Some(stored);
                }
                true
            }
            Err(slot) => {
                let value = (self.offset == 0).then(|| self.capped(value));
                self.add_new(slot, hash, 1, value);
                false
            }
        }
    }

    /// The entry holding `hash`, or the free slot where it would go.
    #[inline]
    fn find(&self, hash: u64) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            match self.slots[slot] {
                0 => return Err(slot),
                i if self.entries[i as usize - 1].hash == hash => return Ok(i as usize - 1),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// Adds a counter for a hash not held, whose free slot is `slot`, purging first when the
    /// table is full.
    fn add_new(&mut self, mut slot: usize, hash: u64, count: u64, value: Option<String>) {
        if self.entries.len() >= self.max_counters {
            self.purge();
            slot = self.find(hash).expect_err("purged counters are gone");
        }
        self.entries.push(Entry { hash, count, value });
        self.slots[slot] = self.entries.len() as u32;
    }

    /// `value` cut to the length cap (a cut marked with `…`), in a reused string.
    fn capped(&mut self, value: &[u8]) -> String {
        let mut stored = self.spare.pop().unwrap_or_default();
        set_capped(&mut stored, value, self.max_value_bytes);
        stored
    }

    /// Subtracts the median count from every counter and drops those left at zero.
    fn purge(&mut self) {
        let median = self.median_count();
        let spare = &mut self.spare;
        self.entries.retain_mut(|entry| {
            if entry.count > median {
                entry.count -= median;
                true
            } else {
                spare.extend(entry.value.take());
                false
            }
        });
        self.slots.fill(0);
        let mask = self.slots.len() - 1;
        for (i, entry) in self.entries.iter().enumerate() {
            let mut slot = entry.hash as usize & mask;
            while self.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = i as u32 + 1;
        }
        self.offset += median;
    }

    /// The median of the counts (the middle one in ascending order). Counts are mostly
    /// small, so a histogram of them finds it without a selection.
    fn median_count(&mut self) -> u64 {
        const SMALL: usize = 64;
        let middle = self.entries.len() / 2;
        let mut histogram = [0u32; SMALL];
        for entry in &self.entries {
            histogram[(entry.count as usize).min(SMALL - 1)] += 1;
        }
        let mut below = 0;
        for (count, &n) in histogram[..SMALL - 1].iter().enumerate() {
            below += n as usize;
            if below > middle {
                return count as u64;
            }
        }
        self.median_scratch.clear();
        self.median_scratch
            .extend(self.entries.iter().map(|e| e.count));
        *self.median_scratch.select_nth_unstable(middle).1
    }

    /// Folds another summary in; the guarantee holds for the combined stream.
    pub fn merge(&mut self, other: &Self) {
        for entry in &other.entries {
            // Stored values are already cut and marked: they are copied as they are.
            match self.find(entry.hash) {
                Ok(i) => {
                    let mine = &mut self.entries[i];
                    mine.count += entry.count;
                    if mine.value.is_none() {
                        mine.value.clone_from(&entry.value);
                    }
                }
                Err(slot) => self.add_new(slot, entry.hash, entry.count, entry.value.clone()),
            }
        }
        self.offset += other.offset;
    }

    /// The values, most frequent first (ties by value), up to `n` of them, leaving out those
    /// whose count is mostly possible overestimate (`error` at least half of `count`): on a
    /// column of unique values every counter is such noise.
    pub fn top(&self, n: usize) -> Vec<TopEntry> {
        let mut entries: Vec<TopEntry> = self
            .entries
            .iter()
            .filter_map(|e| {
                let value = e.value.clone()?;
                Some(TopEntry {
                    value,
                    count: e.count + self.offset,
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

/// Replaces `dst` with `src` (valid UTF-8) cut to at most `max_bytes` at a character
/// boundary, marking a cut with `…`. Reuses `dst`'s allocation, which matters when a slot is
/// replaced on every row.
fn set_capped(dst: &mut String, src: &[u8], max_bytes: usize) {
    dst.clear();
    let capped = crate::value::cap_bytes(src, max_bytes);
    dst.push_str(&String::from_utf8_lossy(capped));
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
    fn the_median_count_is_the_middle_one() {
        let mut s = FrequentItems::new(50, 8);
        for counts in [
            vec![1, 1, 1, 5],
            vec![3, 1, 2],
            vec![70, 80, 1, 90, 100],
            vec![63, 64, 65],
        ] {
            s.entries = counts
                .iter()
                .enumerate()
                .map(|(i, &count)| Entry {
                    hash: i as u64,
                    count,
                    value: None,
                })
                .collect();
            let mut sorted = counts.clone();
            sorted.sort_unstable();
            assert_eq!(s.median_count(), sorted[sorted.len() / 2], "{counts:?}");
        }
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let mut out = String::new();
        set_capped(&mut out, "ééé".as_bytes(), 3);
        assert_eq!(out, "é…");
    }
}
