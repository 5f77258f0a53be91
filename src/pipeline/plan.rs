//! The plan of a run: which images go into which output shard, and which worker does which shard.
//!
//! The unit of work and of commitment is one output shard: the refs of one split whose images fall in
//! one block of `images_per_shard` consecutive images (instances.json order, restricted to the images
//! that refs of that split use). The blocks depend only on the dataset and the output settings, never on
//! how many workers share the run, so `--shard i/N` runs and a single run write the same files.

use std::collections::BTreeMap;

use crate::dataset::Dataset;

/// One output shard to produce: the images it covers and the refs that become its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Position in the run's list of units (all splits), used for the worker partition.
    pub id: usize,
    pub split: String,
    /// Shard index within the split, and the split's shard count.
    pub shard: usize,
    pub shard_count: usize,
    /// Indices into `Dataset::images`, in order.
    pub images: Vec<usize>,
    /// For each entry of `images`, indices into `Dataset::refs` of this split's refs of that image, in
    /// pickle order. The rows of the shard come in this order.
    pub refs: Vec<Vec<usize>>,
}

impl Unit {
    /// `<split>-NNNNN-of-NNNNN.parquet`, the Hugging Face shard naming.
    pub fn file_name(&self) -> String {
        crate::write::shard::shard_file_name(&self.split, self.shard, self.shard_count)
    }

    pub fn ref_count(&self) -> usize {
        self.refs.iter().map(Vec::len).sum()
    }
}

/// Which part of the units this process does: `index` of `count` workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    pub index: usize,
    pub count: usize,
}

impl Default for Worker {
    fn default() -> Self {
        Worker { index: 0, count: 1 }
    }
}

impl Worker {
    /// Units are dealt round-robin so that every worker gets a similar mix of splits.
    pub fn owns(&self, unit: &Unit) -> bool {
        unit.id % self.count == self.index
    }

    /// Parses `i/N` (0-based `i`).
    pub fn parse(text: &str) -> Result<Worker, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("--shard {text:?}: expected i/N, e.g. 0/4"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("--shard {text:?}: {i:?} is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("--shard {text:?}: {n:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("--shard {text:?}: need 0 <= i < N"));
        }
        Ok(Worker { index, count })
    }

    /// The worker given by a batch scheduler's environment: `SLURM_ARRAY_TASK_ID` with
    /// `SLURM_ARRAY_TASK_COUNT` (Slurm job arrays), or Kubernetes indexed Jobs' `JOB_COMPLETION_INDEX`
    /// with `REFAUG_SHARD_COUNT` (Kubernetes does not export the completion count). `None` when unset.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Worker>, String> {
        let pair = |i: &str, n: &str| -> Result<Option<Worker>, String> {
            match (get(i), get(n)) {
                (Some(a), Some(b)) => Worker::parse(&format!("{a}/{b}"))
                    .map(Some)
                    .map_err(|e| format!("{i}/{n}: {e}")),
                (Some(_), None) => Err(format!("{i} is set but {n} is not")),
                _ => Ok(None),
            }
        };
        if let Some(w) = pair("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")? {
            return Ok(Some(w));
        }
        pair("JOB_COMPLETION_INDEX", "REFAUG_SHARD_COUNT")
    }
}

/// What to include: the splits (in the split_by's order) and an optional cap on images per split.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub splits: Vec<String>,
    /// `--limit N`: the first N images (in order) of each split.
    pub limit: Option<usize>,
    pub images_per_shard: usize,
}

/// All units of the run, split by split, in the order given.
pub fn plan(dataset: &Dataset, selection: &Selection) -> Vec<Unit> {
    let image_index: BTreeMap<i64, usize> = dataset
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| (im.image_id, i))
        .collect();
    let mut units = Vec::new();
    for split in &selection.splits {
        // image index → refs of this split, ordered by image (instances order) then pickle order.
        let mut by_image: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (r, rec) in dataset.refs.iter().enumerate() {
            if &rec.split == split
                && let Some(&i) = image_index.get(&rec.image_id)
            {
                by_image.entry(i).or_default().push(r);
            }
        }
        let mut entries: Vec<(usize, Vec<usize>)> = by_image.into_iter().collect();
        if let Some(limit) = selection.limit {
            entries.truncate(limit);
        }
        let per = selection.images_per_shard.max(1);
        let shard_count = entries.len().div_ceil(per);
        for (shard, block) in entries.chunks(per).enumerate() {
            units.push(Unit {
                id: units.len(),
                split: split.clone(),
                shard,
                shard_count,
                images: block.iter().map(|(i, _)| *i).collect(),
                refs: block.iter().map(|(_, r)| r.clone()).collect(),
            });
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_parse() {
        assert_eq!(Worker::parse("2/4"), Ok(Worker { index: 2, count: 4 }));
        assert!(Worker::parse("4/4").is_err());
        assert!(Worker::parse("1/0").is_err());
        assert!(Worker::parse("x").is_err());
    }

    #[test]
    fn worker_from_env() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(a, _)| *a == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Worker::from_env(env(&[])), Ok(None));
        assert_eq!(
            Worker::from_env(env(&[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3")
            ])),
            Ok(Some(Worker { index: 1, count: 3 }))
        );
        assert_eq!(
            Worker::from_env(env(&[
                ("JOB_COMPLETION_INDEX", "0"),
                ("REFAUG_SHARD_COUNT", "2")
            ])),
            Ok(Some(Worker { index: 0, count: 2 }))
        );
        assert!(Worker::from_env(env(&[("JOB_COMPLETION_INDEX", "0")])).is_err());
    }

    #[test]
    fn file_names_follow_the_hub_convention() {
        let u = Unit {
            id: 0,
            split: "val".into(),
            shard: 3,
            shard_count: 12,
            images: vec![],
            refs: vec![],
        };
        assert_eq!(u.file_name(), "val-00003-of-00012.parquet");
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::boxes::BoxXyxy;
    use crate::dataset::{DatasetKind, ImageRecord, RefRecord};

    fn dataset() -> Dataset {
        let image = |id: i64| ImageRecord {
            image_id: id,
            file_name: format!("{id}.jpg"),
            width: 10,
            height: 10,
        };
        let r = |ref_id: i64, image_id: i64, split: &str| RefRecord {
            ref_id,
            ann_id: ref_id * 10,
            image_id,
            category_id: 1,
            split: split.into(),
            sentences: vec![],
            gt_box: BoxXyxy {
                xmin: 0.0,
                ymin: 0.0,
                xmax: 1.0,
                ymax: 1.0,
            },
        };
        Dataset {
            kind: DatasetKind::Refcocog,
            split_by: "umd".into(),
            images_dir: "images".into(),
            // Instances order 5, 3, 9, 7, 1: units follow it, not the ids.
            images: [5, 3, 9, 7, 1].into_iter().map(image).collect(),
            refs: vec![
                r(0, 9, "train"),
                r(1, 5, "train"),
                r(2, 9, "train"),
                r(3, 3, "val"),
                r(4, 7, "train"),
                r(5, 1, "train"),
            ],
            categories: Default::default(),
            sources: Default::default(),
        }
    }

    #[test]
    fn units_follow_instances_order_and_block_size() {
        let d = dataset();
        let sel = Selection {
            splits: vec!["train".into(), "val".into()],
            limit: None,
            images_per_shard: 2,
        };
        let units = plan(&d, &sel);
        type View = (String, usize, usize, Vec<usize>, Vec<Vec<usize>>);
        let got: Vec<View> = units
            .iter()
            .map(|u| {
                (
                    u.split.clone(),
                    u.shard,
                    u.shard_count,
                    u.images.clone(),
                    u.refs.clone(),
                )
            })
            .collect();
        // train images in instances order: 5 (idx 0), 9 (idx 2), 7 (idx 3), 1 (idx 4).
        assert_eq!(
            got,
            vec![
                ("train".into(), 0, 2, vec![0, 2], vec![vec![1], vec![0, 2]]),
                ("train".into(), 1, 2, vec![3, 4], vec![vec![4], vec![5]]),
                ("val".into(), 0, 1, vec![1], vec![vec![3]]),
            ]
        );
        assert_eq!(
            units.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        let limited = plan(
            &d,
            &Selection {
                limit: Some(3),
                ..sel
            },
        );
        assert_eq!(limited[0].images, vec![0, 2]);
        assert_eq!(limited[1].images, vec![3]);
    }
}
