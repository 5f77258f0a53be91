//! Which refs a gallery shows and in what order: every ref of the output is summarised by a
//! few numbers per variant ([`RefSummary`]), ranked by a [`SortOrder`] and cut to `n`, or the
//! refs the user lists. The page re-sorts the refs it holds with the same rules
//! (`site/gallery.js`, `sortKey`), so a page sorted like the command shows the same order.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use clap::ValueEnum;
use serde::Serialize;

/// How the refs are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SortOrder {
    /// Lowest best IoU first (over the variants, the lowest): where a detector fails.
    #[default]
    Worst,
    /// Most proposals first (over the variants, the most).
    MostProposals,
    /// A random order fixed by `--seed` (a hash of the seed and the ref_id).
    Random,
    /// Ascending ref_id.
    RefId,
}

/// What the selection needs to know of one ref in one variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VariantOutcome {
    pub best_iou: f32,
    pub proposals: usize,
}

/// One ref of the output: its outcome in each variant that has a row for it (variant index →
/// outcome).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RefSummary {
    pub ref_id: i64,
    pub outcomes: BTreeMap<usize, VariantOutcome>,
}

impl RefSummary {
    /// The lowest best IoU over the variants (+inf for a ref without any row, which never
    /// happens for a summary built from rows).
    pub fn worst_best_iou(&self) -> f32 {
        self.outcomes
            .values()
            .map(|o| o.best_iou)
            .fold(f32::INFINITY, f32::min)
    }

    /// The most proposals over the variants.
    pub fn most_proposals(&self) -> usize {
        self.outcomes
            .values()
            .map(|o| o.proposals)
            .max()
            .unwrap_or(0)
    }
}

/// MurmurHash3's 32-bit finaliser (`fmix32`): a bijection on u32 that mixes every input bit
/// into every output bit. `gallery.js` has the same function (`fmix32`).
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The random order's key of a ref: a hash of the seed and the ref_id, so the order depends on
/// nothing but the two (not on reading order, variants or `--n`). `gallery.js` computes the same
/// key (`shuffleKey`) for ref_ids below 2^53.
pub fn shuffle_key(seed: u32, ref_id: i64) -> u32 {
    let id = ref_id as u64;
    let (lo, hi) = (id as u32, (id >> 32) as u32);
    fmix32(fmix32(seed ^ 0x9e37_79b9) ^ fmix32(lo) ^ hi.wrapping_mul(0x85eb_ca6b))
}

/// Compare two refs under `order`; ties (and then everything) by ascending ref_id.
pub fn compare(a: &RefSummary, b: &RefSummary, order: SortOrder, seed: u32) -> Ordering {
    let primary = match order {
        SortOrder::Worst => a.worst_best_iou().total_cmp(&b.worst_best_iou()),
        SortOrder::MostProposals => b.most_proposals().cmp(&a.most_proposals()),
        SortOrder::Random => shuffle_key(seed, a.ref_id).cmp(&shuffle_key(seed, b.ref_id)),
        SortOrder::RefId => Ordering::Equal,
    };
    primary.then(a.ref_id.cmp(&b.ref_id))
}

/// The first `n` refs under `order`.
pub fn select(mut refs: Vec<RefSummary>, order: SortOrder, seed: u32, n: usize) -> Vec<i64> {
    refs.sort_by(|a, b| compare(a, b, order, seed));
    refs.into_iter().take(n).map(|r| r.ref_id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(ref_id: i64, outcomes: &[(usize, f32, usize)]) -> RefSummary {
        RefSummary {
            ref_id,
            outcomes: outcomes
                .iter()
                .map(|&(v, best_iou, proposals)| {
                    (
                        v,
                        VariantOutcome {
                            best_iou,
                            proposals,
                        },
                    )
                })
                .collect(),
        }
    }

    fn refs() -> Vec<RefSummary> {
        vec![
            summary(1, &[(0, 0.9, 3), (1, 0.2, 10)]),
            summary(2, &[(0, 0.5, 40), (1, 0.6, 2)]),
            summary(3, &[(0, 0.0, 0)]),
            summary(4, &[(0, 0.2, 5), (1, 0.95, 1)]),
        ]
    }

    #[test]
    fn worst_first_takes_the_lowest_best_iou_over_the_variants() {
        // Lowest per ref: 1 → 0.2, 2 → 0.5, 3 → 0, 4 → 0.2 (tie with 1: ref_id order).
        assert_eq!(select(refs(), SortOrder::Worst, 0, 10), [3, 1, 4, 2]);
        assert_eq!(select(refs(), SortOrder::Worst, 0, 2), [3, 1]);
    }

    #[test]
    fn most_proposals_takes_the_most_over_the_variants() {
        // Most per ref: 1 → 10, 2 → 40, 3 → 0, 4 → 5.
        assert_eq!(
            select(refs(), SortOrder::MostProposals, 0, 10),
            [2, 1, 4, 3]
        );
        assert_eq!(select(refs(), SortOrder::RefId, 0, 3), [1, 2, 3]);
    }

    #[test]
    fn murmur3_finaliser_values() {
        // fmix32 by hand: 0 stays 0; 1 → 0x514e28b7 (the published MurmurHash3 fmix32 of 1).
        assert_eq!(fmix32(0), 0);
        assert_eq!(fmix32(1), 0x514e_28b7);
    }

    #[test]
    fn random_order_depends_on_the_seed_only() {
        let a = select(refs(), SortOrder::Random, 7, 10);
        let mut reversed = refs();
        reversed.reverse();
        assert_eq!(select(reversed, SortOrder::Random, 7, 10), a);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 3, 4]);
        let orders: std::collections::BTreeSet<Vec<i64>> = (0..20)
            .map(|seed| select(refs(), SortOrder::Random, seed, 10))
            .collect();
        assert!(orders.len() > 5, "seeds give different orders: {orders:?}");
    }
}
