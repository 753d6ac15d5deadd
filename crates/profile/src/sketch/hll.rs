//! HyperLogLog distinct counter with Ertl's improved estimator.

/// A HyperLogLog sketch over 64-bit hashes with `2^precision` one-byte registers.
///
/// The estimate uses Otmar Ertl's improved raw estimator ("New cardinality estimation
/// algorithms for HyperLogLog sketches", 2017), which is unbiased from zero to far beyond
/// 2^32 without the empirical bias tables of HLL++. Its relative standard error is
/// `1.04 / sqrt(2^precision)`: 0.81 % at the default precision 14 (16 KiB of registers),
/// so about 99.7 % of estimates are within 2.4 % of the true count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HyperLogLog {
    precision: u8,
    registers: Vec<u8>,
}

impl HyperLogLog {
    /// The precision used by the profiler: 16 384 registers, 0.81 % standard error.
    pub const DEFAULT_PRECISION: u8 = 14;

    /// An empty sketch with `2^precision` registers; `precision` is clamped to 4..=18.
    pub fn new(precision: u8) -> Self {
        let precision = precision.clamp(4, 18);
        Self {
            precision,
            registers: vec![0; 1 << precision],
        }
    }

    /// Adds a value by its 64-bit hash (the hash must be well mixed in every bit).
    pub fn insert_hash(&mut self, hash: u64) {
        let p = u32::from(self.precision);
        let index = (hash >> (64 - p)) as usize;
        // The rank is the position of the first 1 bit after the index bits, capped at q + 1.
        let rest = hash << p;
        let rank = (rest.leading_zeros() + 1).min(64 - p + 1) as u8;
        let register = &mut self.registers[index];
        if rank > *register {
            *register = rank;
        }
    }

    /// Folds another sketch of the same precision into this one.
    ///
    /// # Panics
    /// If the precisions differ: such sketches cannot be merged without losing accuracy.
    pub fn merge(&mut self, other: &Self) {
        assert_eq!(
            self.precision, other.precision,
            "HyperLogLog precisions differ"
        );
        for (a, &b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(b);
        }
    }

    /// The estimated number of distinct values inserted.
    pub fn estimate(&self) -> f64 {
        let p = u32::from(self.precision);
        let q = 64 - p;
        let m = self.registers.len() as f64;
        let mut histogram = vec![0u32; q as usize + 2];
        for &r in &self.registers {
            histogram[r as usize] += 1;
        }
        let mut z = m * tau(1.0 - f64::from(histogram[q as usize + 1]) / m);
        for k in (1..=q as usize).rev() {
            z = 0.5 * (z + f64::from(histogram[k]));
        }
        z += m * sigma(f64::from(histogram[0]) / m);
        let alpha_inf = 1.0 / (2.0 * std::f64::consts::LN_2);
        alpha_inf * m * m / z
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash_bytes;

    #[test]
    fn empty_is_zero_and_small_counts_are_close() {
        let mut h = HyperLogLog::new(HyperLogLog::DEFAULT_PRECISION);
        assert_eq!(h.estimate(), 0.0);
        for i in 0..100u32 {
            h.insert_hash(hash_bytes(&i.to_le_bytes()));
            h.insert_hash(hash_bytes(&i.to_le_bytes()));
        }
        assert!((h.estimate() - 100.0).abs() < 2.0, "{}", h.estimate());
    }

    #[test]
    fn merge_equals_inserting_everything() {
        let mut a = HyperLogLog::new(12);
        let mut b = HyperLogLog::new(12);
        let mut all = HyperLogLog::new(12);
        for i in 0..50_000u64 {
            let h = hash_bytes(&i.to_le_bytes());
            if i % 3 == 0 {
                a.insert_hash(h)
            } else {
                b.insert_hash(h)
            }
            all.insert_hash(h);
        }
        a.merge(&b);
        assert_eq!(a, all);
    }
}
