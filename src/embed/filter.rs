//! Which proposals get a crop: the research's filter (`training-research.md` §2, CocoDataset and
//! Coco4TrainingDataset from the FLYP-b runs on): `confidence > 0.25 and xmax − xmin > 16 and
//! ymax − ymin > 16`, every comparison strict. The thresholds are settings of the output
//! (recorded with the embeddings), not of a run.

use crate::boxes::BoxXyxy;

/// Keep a proposal iff its score and size are all strictly above these.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalFilter {
    pub score_above: f64,
    pub width_above: f64,
    pub height_above: f64,
}

impl Default for ProposalFilter {
    /// The research's values.
    fn default() -> Self {
        ProposalFilter {
            score_above: 0.25,
            width_above: 16.0,
            height_above: 16.0,
        }
    }
}

/// The filter's keys in `[embed]` of the manifest, each optional (the research's value).
#[derive(Debug, Default)]
pub struct ProposalFilterWire {
    pub score_above: Option<f64>,
    pub width_above: Option<f64>,
    pub height_above: Option<f64>,
}

impl ProposalFilterWire {
    /// Defaults filled in; a non-finite value is refused as `(key, value)`.
    pub fn validate(&self) -> Result<ProposalFilter, (&'static str, String)> {
        let d = ProposalFilter::default();
        let pick = |key: &'static str, v: Option<f64>, default: f64| match v {
            Some(x) if !x.is_finite() => Err((key, x.to_string())),
            Some(x) => Ok(x),
            None => Ok(default),
        };
        Ok(ProposalFilter {
            score_above: pick("score_above", self.score_above, d.score_above)?,
            width_above: pick("width_above", self.width_above, d.width_above)?,
            height_above: pick("height_above", self.height_above, d.height_above)?,
        })
    }
}

impl ProposalFilter {
    /// Whether the proposal is kept. Width and height are the exact differences of the corners
    /// (in f64, as the research's Python floats subtract them).
    pub fn keeps(&self, score: f64, b: &BoxXyxy) -> bool {
        let w = f64::from(b.xmax) - f64::from(b.xmin);
        let h = f64::from(b.ymax) - f64::from(b.ymin);
        score > self.score_above && w > self.width_above && h > self.height_above
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_comparison_is_strict() {
        let f = ProposalFilter::default();
        let b = |w: f32, h: f32| BoxXyxy::from_array([10.0, 20.0, 10.0 + w, 20.0 + h]);
        assert!(f.keeps(0.26, &b(16.5, 17.0)));
        assert!(!f.keeps(0.25, &b(30.0, 30.0)));
        assert!(!f.keeps(0.9, &b(16.0, 30.0)));
        assert!(!f.keeps(0.9, &b(30.0, 16.0)));
    }
}
