//! Done ranges: sets of closed integer intervals (spec §8.4).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A set of integers kept as sorted, disjoint, non-adjacent closed intervals.
/// Serialized as `[a,b];[c,d]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet(Vec<(i64, i64)>);

impl RangeSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `[a,b];[c,d]`; malformed items are skipped, as TasCreed does.
    pub fn parse(s: &str) -> Self {
        let mut set = RangeSet::new();
        for item in s.split(';') {
            let item = item.trim();
            let Some(inner) = item.strip_prefix('[').and_then(|i| i.strip_suffix(']')) else {
                continue;
            };
            let mut parts = inner.split(',').map(|p| p.trim().parse::<i64>());
            if let (Some(Ok(a)), Some(Ok(b)), None) = (parts.next(), parts.next(), parts.next()) {
                set.add(a, b);
            }
        }
        set
    }

    /// The intervals, ascending.
    pub fn intervals(&self) -> &[(i64, i64)] {
        &self.0
    }

    /// No interval.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `[lo, hi]` (ignored if `hi < lo`), merging overlapping and adjacent intervals.
    pub fn add(&mut self, lo: i64, hi: i64) {
        if hi < lo {
            return;
        }
        let (mut lo, mut hi) = (lo, hi);
        let mut out = Vec::with_capacity(self.0.len() + 1);
        let mut placed = false;
        for &(a, b) in &self.0 {
            if b.saturating_add(1) < lo {
                out.push((a, b));
            } else if hi.saturating_add(1) < a {
                if !placed {
                    out.push((lo, hi));
                    placed = true;
                }
                out.push((a, b));
            } else {
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        if !placed {
            out.push((lo, hi));
        }
        self.0 = out;
    }

    /// Whether `x` is in the set.
    pub fn contains(&self, x: i64) -> bool {
        self.0.iter().any(|&(a, b)| a <= x && x <= b)
    }

    /// Number of integers in the set (saturating).
    pub fn count(&self) -> i64 {
        self.0.iter().fold(0i64, |acc, &(a, b)| acc.saturating_add(b.saturating_sub(a).saturating_add(1)))
    }

    /// TasCreed's `findWatermark`: the end of the first interval if it covers
    /// `start_point` (or no start point is given), else `start_point − 1`.
    pub fn watermark(&self, start_point: Option<i64>) -> Option<i64> {
        let &(lo, hi) = self.0.first()?;
        Some(match start_point {
            None => hi,
            Some(s) if lo <= s => hi,
            Some(s) => s.saturating_sub(1),
        })
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "[{a},{b}]")?;
        }
        Ok(())
    }
}

impl Serialize for RangeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RangeSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(|s| RangeSet::parse(&s)).unwrap_or_default())
    }
}

/// `shardDoneRange {"indexes": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShardDoneRange {
    /// Successful shard indexes.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "[0,4];[6,9]"))]
    #[serde(default)]
    pub indexes: RangeSet,
}

/// `packDoneRange {"offsets": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackDoneRange {
    /// Offsets of successful packs.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "[0,999];[2000,2999]"))]
    #[serde(default)]
    pub offsets: RangeSet,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[(i64, i64)]) -> RangeSet {
        let mut s = RangeSet::new();
        for &(a, b) in items {
            s.add(a, b);
        }
        s
    }

    // TC-64 (b)
    #[test]
    fn tc64_parse_add_serialize() {
        let mut s = RangeSet::parse("[1,5];[7,12];[34,350]");
        assert_eq!(s.to_string(), "[1,5];[7,12];[34,350]");
        s.add(6, 6);
        s.add(13, 20);
        assert_eq!(s.to_string(), "[1,20];[34,350]");
        let s = set(&[(1, 3), (4, 5), (7, 10), (9, 12), (34, 350)]);
        assert_eq!(s.to_string(), "[1,5];[7,12];[34,350]");
        assert_eq!(RangeSet::parse("[1,2];junk;[x,3];[5,6,7];[9,9]").to_string(), "[1,2];[9,9]");
    }

    // TC-64 (c)
    #[test]
    fn tc64_watermark() {
        let mut s = set(&[(1, 5), (7, 12), (34, 350)]);
        let steps: [((i64, i64), Option<i64>); 4] =
            [((4, 6), Some(12)), ((13, 36), Some(350)), ((700, 1000), Some(350)), ((100, 500), Some(500))];
        assert_eq!(s.watermark(Some(1)), Some(5));
        for ((a, b), want) in steps {
            s.add(a, b);
            assert_eq!(s.watermark(Some(1)), want, "after adding [{a},{b}]");
        }
        let mut s = set(&[(10, 19), (40, 49), (70, 79)]);
        assert_eq!((s.watermark(Some(1)), s.watermark(None)), (Some(0), Some(19)));
        let steps = [((20, 39), (0, 49)), ((50, 69), (0, 79)), ((1, 5), (5, 5)), ((6, 9), (79, 79))];
        for ((a, b), (with_start, without)) in steps {
            s.add(a, b);
            assert_eq!((s.watermark(Some(1)), s.watermark(None)), (Some(with_start), Some(without)));
        }
        assert_eq!(RangeSet::new().watermark(Some(1)), None);
    }
}
