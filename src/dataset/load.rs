//! Reading and validating a dataset source: [`load`] (annotation files, structure) and
//! [`check_images`] (image files).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path};

use rayon::prelude::*;

use super::error::{DatasetError, Problem};
use super::instances::{WireAnnotation, WireImage, WireInstances};
use super::pickle::{PyText, WireRef, parse};
use super::{
    Dataset, DatasetSource, ImageRecord, RefRecord, Sentence, SourceFile, SourceFiles, split_names,
};
use crate::boxes::BoxXyxy;
use crate::decode::{DecodeError, Limits};

/// Reads `instances.json` and `refs(<split_by>).p` of `source`, checks their structure and joins
/// every ref of the selected splits with its annotation's box.
///
/// Each annotation file is read once; its SHA-256 is computed over the bytes that are parsed and
/// checked against `source.expected_sha256` when given.
///
/// Structural checks cover the whole of both files (not only the selected splits): duplicate
/// image / annotation / category / ref / sentence ids, refs whose annotation or image record is
/// missing or whose image differs from their annotation's, unknown split names, text that is not
/// UTF-8, `sent_ids` that differ from the sentences, image `file_name`s that are absolute or climb
/// out of the images folder; and for the refs' annotations and images: boxes that are not finite
/// or have a negative size, images of empty size. All of them are returned together in
/// [`DatasetError::Invalid`]. Image files are not touched here: see [`check_images`].
///
/// The result keeps the images that at least one selected ref references, in `instances.json`
/// order, and the selected refs in pickle order.
pub fn load(source: &DatasetSource) -> Result<Dataset, DatasetError> {
    let allowed = split_names(source.kind, source.split_by).ok_or_else(|| {
        DatasetError::SplitByNotOfKind {
            kind: source.kind,
            split_by: source.split_by,
            allowed: join(source.kind.split_bys().iter().map(|s| s.as_str())),
        }
    })?;
    let selected = source.selected_splits();
    for split in &selected {
        if !allowed.contains(&split.as_str()) {
            return Err(DatasetError::UnknownSelectedSplit {
                kind: source.kind,
                split_by: source.split_by,
                split: split.clone(),
                allowed: join(allowed.iter().copied()),
            });
        }
    }

    let instances_path = source.instances_path();
    let refs_path = source.refs_path();

    let instances_bytes = fs_err::read(&instances_path)?;
    let instances_file = SourceFile::of_bytes(&instances_path, &instances_bytes);
    check_sha256(&instances_file, source.expected_sha256.instances.as_deref())?;
    let instances: WireInstances =
        serde_json::from_slice(&instances_bytes).map_err(|error| DatasetError::Json {
            path: instances_path.clone(),
            error,
        })?;
    drop(instances_bytes);

    let refs_bytes = fs_err::read(&refs_path)?;
    let refs_file = SourceFile::of_bytes(&refs_path, &refs_bytes);
    check_sha256(&refs_file, source.expected_sha256.refs.as_deref())?;
    let wire_refs = read_refs(&refs_path, &refs_bytes)?;
    drop(refs_bytes);

    let mut problems = Vec::new();
    let dataset_name = format!("{} split by {}", source.kind, source.split_by);

    // Ids unique per kind of record.
    let mut images_by_id: HashMap<i64, &WireImage> = HashMap::with_capacity(instances.images.len());
    for image in &instances.images {
        if images_by_id.insert(image.id, image).is_some() {
            problems.push(duplicate(&instances_path, "image id", image.id));
        }
        if let Some(why) = unsafe_file_name(&image.file_name) {
            problems.push(Problem::UnsafeFileName {
                instances: instances_path.clone(),
                image_id: image.id,
                file_name: image.file_name.clone(),
                why,
            });
        }
    }
    let mut anns_by_id: HashMap<i64, &WireAnnotation> =
        HashMap::with_capacity(instances.annotations.len());
    for ann in &instances.annotations {
        if anns_by_id.insert(ann.id, ann).is_some() {
            problems.push(duplicate(&instances_path, "annotation id", ann.id));
        }
    }
    let mut categories = BTreeMap::new();
    for cat in &instances.categories {
        if categories.insert(cat.id, cat.name.clone()).is_some() {
            problems.push(duplicate(&instances_path, "category id", cat.id));
        }
    }

    let mut ref_ids = HashSet::with_capacity(wire_refs.len());
    let mut sent_ids = HashSet::with_capacity(wire_refs.len() * 2);
    let mut refs = Vec::new();
    let mut used_images = HashSet::new();
    let mut reported_sizes = HashSet::new();
    for wire in wire_refs {
        let ref_id = wire.ref_id;
        if !ref_ids.insert(ref_id) {
            problems.push(duplicate(&refs_path, "ref_id", ref_id));
        }
        for s in &wire.sentences {
            if !sent_ids.insert(s.sent_id) {
                problems.push(duplicate(&refs_path, "sent_id", s.sent_id));
            }
        }
        let sentence_ids: Vec<i64> = wire.sentences.iter().map(|s| s.sent_id).collect();
        if sentence_ids != wire.sent_ids {
            problems.push(Problem::SentIdsMismatch {
                refs: refs_path.clone(),
                ref_id,
                sent_ids: wire.sent_ids.clone(),
                sentence_ids,
            });
        }

        let mut text = |value: PyText, field: &dyn Fn() -> String| match value.into_string() {
            Ok(s) => s,
            Err(bytes) => {
                problems.push(Problem::InvalidUtf8 {
                    refs: refs_path.clone(),
                    ref_id,
                    field: field(),
                    bytes: bytes.len(),
                    preview: String::from_utf8_lossy(&bytes).into_owned(),
                });
                String::new()
            }
        };
        let split = text(wire.split, &|| "split".to_string());
        let mut sentences = Vec::with_capacity(wire.sentences.len());
        for (i, s) in wire.sentences.into_iter().enumerate() {
            let sent = text(s.sent, &|| format!("sentences[{i}].sent"));
            let raw = text(s.raw, &|| format!("sentences[{i}].raw"));
            let tokens = s
                .tokens
                .into_iter()
                .enumerate()
                .map(|(t, token)| text(token, &|| format!("sentences[{i}].tokens[{t}]")))
                .collect();
            sentences.push(Sentence {
                sent_id: s.sent_id,
                sent,
                raw,
                tokens,
            });
        }
        if !allowed.contains(&split.as_str()) {
            problems.push(Problem::UnknownSplit {
                refs: refs_path.clone(),
                ref_id,
                split: split.clone(),
                dataset: dataset_name.clone(),
                allowed: join(allowed.iter().copied()),
            });
        }

        let image = images_by_id.get(&wire.image_id);
        if image.is_none() {
            problems.push(Problem::MissingImageRecord {
                refs: refs_path.clone(),
                instances: instances_path.clone(),
                ref_id,
                image_id: wire.image_id,
            });
        }
        if let Some(image) = image
            && (image.width == 0 || image.height == 0)
            && reported_sizes.insert(image.id)
        {
            problems.push(Problem::EmptyImageSize {
                instances: instances_path.clone(),
                image_id: image.id,
                width: image.width,
                height: image.height,
            });
        }
        let Some(ann) = anns_by_id.get(&wire.ann_id) else {
            problems.push(Problem::MissingAnnotation {
                refs: refs_path.clone(),
                instances: instances_path.clone(),
                ref_id,
                ann_id: wire.ann_id,
            });
            continue;
        };
        if ann.image_id != wire.image_id {
            problems.push(Problem::ImageMismatch {
                refs: refs_path.clone(),
                ref_id,
                ann_id: ann.id,
                ref_image_id: wire.image_id,
                ann_image_id: ann.image_id,
            });
        }
        let [x, y, w, h] = ann.bbox;
        if !ann.bbox.iter().all(|v| v.is_finite()) || w < 0.0 || h < 0.0 {
            problems.push(Problem::InvalidBox {
                instances: instances_path.clone(),
                ann_id: ann.id,
                ref_id,
                bbox: ann.bbox,
            });
        }
        if selected.contains(&split) {
            used_images.insert(wire.image_id);
            refs.push(RefRecord {
                ref_id,
                ann_id: wire.ann_id,
                image_id: wire.image_id,
                category_id: wire.category_id,
                split,
                sentences,
                gt_box: BoxXyxy::from_coco_xywh(x, y, w, h),
            });
        }
    }

    if !problems.is_empty() {
        return Err(DatasetError::Invalid { problems });
    }

    let images = instances
        .images
        .into_iter()
        .filter(|image| used_images.contains(&image.id))
        .map(|image| ImageRecord {
            image_id: image.id,
            file_name: image.file_name,
            width: image.width,
            height: image.height,
        })
        .collect();

    Ok(Dataset {
        kind: source.kind,
        split_by: source.split_by.as_str().to_string(),
        images_dir: source.images_dir.clone(),
        images,
        refs,
        categories,
        sources: SourceFiles {
            instances: instances_file,
            refs: refs_file,
        },
    })
}

/// How closely [`check_images`] looks at each image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageCheck {
    /// The file's metadata only (`stat`, which never blocks): there, a plain file, not empty, not
    /// over the size limit.
    Metadata,
    /// Decode every image as a run would (size against instances.json included): catches
    /// truncated and corrupt files too, at the cost of a full decode.
    Decode,
}

/// Checks every image file of `dataset` as [`ImageCheck`] says, in `dataset.images` order. The
/// problems it returns are not fatal: the run records them per image in its errors report and
/// goes on; `refaug inspect` lists them and calls the source unhealthy.
pub fn check_images(dataset: &Dataset, how: ImageCheck, limits: &Limits) -> Vec<Problem> {
    dataset
        .images
        .par_iter()
        .filter_map(|image| {
            let path = dataset.images_dir.join(&image.file_name);
            let checked = match how {
                ImageCheck::Metadata => crate::decode::check_file(&path, limits),
                ImageCheck::Decode => {
                    crate::decode::decode_file_expecting(&path, (image.width, image.height), limits)
                        .map(drop)
                }
            };
            match checked {
                Ok(()) => None,
                Err(DecodeError::Missing { .. }) => Some(Problem::MissingImageFile {
                    path,
                    image_id: image.image_id,
                }),
                Err(e) => Some(Problem::UnreadableImageFile {
                    error: e
                        .to_string()
                        .replacen(&format!("{}: ", path.display()), "", 1),
                    path,
                    image_id: image.image_id,
                }),
            }
        })
        .collect()
}

/// Decodes the refs list: refuses code-bearing pickles first, then reads each entry, naming the
/// entry (and its ref_id when it has one) when it does not have the shape of a ref.
fn read_refs(path: &Path, bytes: &[u8]) -> Result<Vec<WireRef>, DatasetError> {
    let value = parse(bytes).map_err(|e| DatasetError::PickleNotData {
        path: path.to_path_buf(),
        offset: e.offset,
        what: e.what,
    })?;
    let serde_pickle::Value::List(items) = value else {
        return Err(DatasetError::Pickle {
            path: path.to_path_buf(),
            error: format!("expected a list of refs, found {}", value_kind(&value)),
        });
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let ref_id = ref_id_of(&item);
            serde_pickle::from_value::<WireRef>(item).map_err(|e| DatasetError::PickleRecord {
                path: path.to_path_buf(),
                index,
                ref_id,
                error: e.to_string(),
            })
        })
        .collect()
}

/// The `ref_id` of a ref dict, if it has a readable one (for error messages).
fn ref_id_of(value: &serde_pickle::Value) -> Option<i64> {
    use serde_pickle::{HashableValue, Value};
    let Value::Dict(map) = value else { return None };
    map.iter().find_map(|(k, v)| {
        let is_key = match k {
            HashableValue::Bytes(b) => b == b"ref_id",
            HashableValue::String(s) => s == "ref_id",
            _ => false,
        };
        match (is_key, v) {
            (true, Value::I64(id)) => Some(*id),
            _ => None,
        }
    })
}

fn value_kind(value: &serde_pickle::Value) -> &'static str {
    use serde_pickle::Value;
    match value {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::I64(_) | Value::Int(_) => "an int",
        Value::F64(_) => "a float",
        Value::Bytes(_) | Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Set(_) | Value::FrozenSet(_) => "a set",
        Value::Dict(_) => "a dict",
    }
}

fn check_sha256(file: &SourceFile, expected: Option<&str>) -> Result<(), DatasetError> {
    match expected {
        Some(want) if !want.eq_ignore_ascii_case(&file.sha256) => {
            Err(DatasetError::Sha256Mismatch {
                path: file.path.clone(),
                expected: want.to_string(),
                actual: file.sha256.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// Why a `file_name` could reach outside the images folder, if it could.
fn unsafe_file_name(file_name: &str) -> Option<&'static str> {
    let path = Path::new(file_name);
    if file_name.is_empty() {
        return Some("is empty");
    }
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => {
                return Some("is an absolute path, not one inside the images folder");
            }
            Component::ParentDir => return Some("climbs out of the images folder with `..`"),
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    None
}

fn duplicate(file: &Path, what: &'static str, id: i64) -> Problem {
    Problem::DuplicateId {
        file: file.to_path_buf(),
        what,
        id,
    }
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_inside_the_folder_are_safe() {
        assert_eq!(unsafe_file_name("COCO_train2014_000000000009.jpg"), None);
        assert_eq!(unsafe_file_name("train2014/a.jpg"), None);
        assert!(unsafe_file_name("../a.jpg").is_some());
        assert!(unsafe_file_name("x/../../a.jpg").is_some());
        assert!(unsafe_file_name("/etc/passwd").is_some());
        assert!(unsafe_file_name("").is_some());
    }
}
