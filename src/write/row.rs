//! One output row (one ref, one detector) and its conversion to and from Arrow record batches
//! that follow [`super::schema`].

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, FieldRef, Float32Type, Int32Type, Int64Type};
use arrow::error::ArrowError;

use crate::boxes::BoxXyxy;
use crate::dataset::{ImageRecord, RefRecord, Sentence};
use crate::detect::Detection;
use crate::write::schema;

/// One box a detector kept, with its class name.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub bbox: BoxXyxy,
    pub score: f32,
    pub class_id: i32,
    pub label: String,
}

/// One row of a shard: a ref, its image, and one detector's proposals (see `schemas/README.md`).
///
/// Fields are public so that readers and tests can build any row; [`Row::build`] is the one
/// way the pipeline makes them, and it keeps the invariants `verify` checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ref_id: i64,
    pub ann_id: i64,
    pub image_id: i64,
    pub file_name: String,
    pub split: String,
    pub category_id: i32,
    pub category_name: String,
    pub image_width: i32,
    pub image_height: i32,
    pub sentences: Vec<Sentence>,
    pub gt_box: BoxXyxy,
    pub proposals: Vec<Proposal>,
    pub proposal_iou: Vec<f32>,
    pub best_index: Option<i32>,
    pub best_iou: f32,
}

/// Why a row could not be built from its records.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("ref {ref_id}: its image_id {ref_image_id} differs from the image record's {image_id}")]
    ImageMismatch {
        ref_id: i64,
        ref_image_id: i64,
        image_id: i64,
    },
    #[error("ref {ref_id}: {what} {value} does not fit the contract's int32")]
    OutOfRange {
        ref_id: i64,
        what: &'static str,
        value: i64,
    },
    #[error(
        "ref {ref_id}: detections are not score-descending: index {index} has score {score} after {previous}"
    )]
    NotScoreDescending {
        ref_id: i64,
        index: usize,
        score: f32,
        previous: f32,
    },
}

/// The IoU of every proposal with the ground truth, as stored: [`BoxXyxy::iou`] (f64) rounded to
/// f32.
pub fn proposal_ious(gt_box: &BoxXyxy, proposals: &[Proposal]) -> Vec<f32> {
    proposals
        .iter()
        .map(|p| p.bbox.iou(gt_box) as f32)
        .collect()
}

/// The index of the largest IoU, the first one on ties (what `numpy.argmax` and the research's
/// target selection pick), and that IoU; `(None, 0.0)` when there is none.
pub fn best_match(ious: &[f32]) -> (Option<i32>, f32) {
    let mut best: Option<(usize, f32)> = None;
    for (i, &iou) in ious.iter().enumerate() {
        // Strictly greater keeps the first index on ties.
        if best.is_none_or(|(_, b)| iou > b) {
            best = Some((i, iou));
        }
    }
    match best {
        Some((i, iou)) => (
            Some(i32::try_from(i).expect("proposal count fits i32")),
            iou,
        ),
        None => (None, 0.0),
    }
}

fn to_i32(ref_id: i64, what: &'static str, value: i64) -> Result<i32, RowError> {
    i32::try_from(value).map_err(|_| RowError::OutOfRange {
        ref_id,
        what,
        value,
    })
}

impl Row {
    /// The row of `ref_` for one detector: `detections` must be the image's boxes in the
    /// detector's score-descending order; `label` names a detector class id; `category_name` is
    /// the dataset's name of the ref's category.
    pub fn build(
        ref_: &RefRecord,
        image: &ImageRecord,
        category_name: &str,
        detections: &[Detection],
        label: impl Fn(i32) -> String,
    ) -> Result<Row, RowError> {
        let ref_id = ref_.ref_id;
        if ref_.image_id != image.image_id {
            return Err(RowError::ImageMismatch {
                ref_id,
                ref_image_id: ref_.image_id,
                image_id: image.image_id,
            });
        }
        for (index, pair) in detections.windows(2).enumerate() {
            // Anything but "greater or equal" (NaN included) breaks the order.
            if !matches!(
                pair[0].score.partial_cmp(&pair[1].score),
                Some(Ordering::Greater | Ordering::Equal)
            ) {
                return Err(RowError::NotScoreDescending {
                    ref_id,
                    index: index + 1,
                    score: pair[1].score,
                    previous: pair[0].score,
                });
            }
        }
        let proposals: Vec<Proposal> = detections
            .iter()
            .map(|d| Proposal {
                bbox: d.bbox,
                score: d.score,
                class_id: d.class_id,
                label: label(d.class_id),
            })
            .collect();
        let proposal_iou = proposal_ious(&ref_.gt_box, &proposals);
        let (best_index, best_iou) = best_match(&proposal_iou);
        Ok(Row {
            ref_id,
            ann_id: ref_.ann_id,
            image_id: ref_.image_id,
            file_name: image.file_name.clone(),
            split: ref_.split.clone(),
            category_id: to_i32(ref_id, "category_id", ref_.category_id)?,
            category_name: category_name.to_string(),
            image_width: to_i32(ref_id, "image width", i64::from(image.width))?,
            image_height: to_i32(ref_id, "image height", i64::from(image.height))?,
            sentences: ref_.sentences.clone(),
            gt_box: ref_.gt_box,
            proposals,
            proposal_iou,
            best_index,
            best_iou,
        })
    }

    /// An upper estimate of the row's size in an uncompressed Parquet row group (values plus
    /// offsets and levels), used to bound row groups.
    pub fn uncompressed_size(&self) -> usize {
        const STRING_OVERHEAD: usize = 4 + 2;
        let string = |s: &str| s.len() + STRING_OVERHEAD;
        let scalars = 3 * 8 + 4 * 4 + 4 + 16 + 8;
        let strings = string(&self.file_name) + string(&self.split) + string(&self.category_name);
        let sentences: usize = self
            .sentences
            .iter()
            .map(|s| {
                8 + 2
                    + string(&s.sent)
                    + string(&s.raw)
                    + s.tokens.iter().map(|t| string(t)).sum::<usize>()
            })
            .sum();
        let proposals: usize = self
            .proposals
            .iter()
            .map(|p| 6 * 4 + 2 + string(&p.label) + 4 + 2)
            .sum();
        scalars + strings + sentences + proposals
    }
}

/// A batch or file does not hold rows of this contract.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("column `{0}` is missing")]
    MissingColumn(&'static str),
    #[error(
        "column `{name}` has type {found}, the contract says {expected} (nullable: {nullable})"
    )]
    WrongType {
        name: String,
        found: String,
        expected: String,
        nullable: bool,
    },
    #[error("the columns are [{found}], the contract says [{expected}]")]
    WrongColumns { found: String, expected: String },
    #[error("column `{column}` has a null at row {row}")]
    UnexpectedNull { column: &'static str, row: usize },
}

/// Check that a batch's fields are exactly the contract's: names, order, types, nullability
/// (list element names included).
pub fn check_fields(schema: &arrow::datatypes::Schema) -> Result<(), DecodeError> {
    let expected = schema::arrow_schema();
    let names = |s: &arrow::datatypes::Schema| {
        s.fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if schema.fields().len() != expected.fields().len()
        || schema
            .fields()
            .iter()
            .zip(expected.fields())
            .any(|(a, b)| a.name() != b.name())
    {
        return Err(DecodeError::WrongColumns {
            found: names(schema),
            expected: names(&expected),
        });
    }
    for (found, want) in schema.fields().iter().zip(expected.fields()) {
        // Field equality covers the type tree, child names and nullability; field metadata is
        // ignored (readers may add some).
        if found.data_type() != want.data_type() || found.is_nullable() != want.is_nullable() {
            return Err(DecodeError::WrongType {
                name: found.name().clone(),
                found: format!("{} (nullable: {})", found.data_type(), found.is_nullable()),
                expected: format!("{}", want.data_type()),
                nullable: want.is_nullable(),
            });
        }
    }
    Ok(())
}

fn element_field(index: usize) -> FieldRef {
    match schema::arrow_schema().field(index).data_type() {
        DataType::List(element) => element.clone(),
        other => unreachable!("column {index} is not a list: {other}"),
    }
}

fn list_of(
    field: FieldRef,
    lengths: impl IntoIterator<Item = usize>,
    values: ArrayRef,
) -> ArrayRef {
    Arc::new(ListArray::new(
        field,
        OffsetBuffer::from_lengths(lengths),
        values,
        None,
    ))
}

fn struct_of(field: &FieldRef, arrays: Vec<ArrayRef>) -> ArrayRef {
    let DataType::Struct(fields) = field.data_type() else {
        unreachable!("{} is not a struct", field.name())
    };
    Arc::new(StructArray::new(fields.clone(), arrays, None))
}

fn boxes_arrays<'a>(boxes: impl Iterator<Item = &'a BoxXyxy> + Clone) -> Vec<ArrayRef> {
    let coordinate = |get: fn(&BoxXyxy) -> f32| -> ArrayRef {
        Arc::new(boxes.clone().map(get).collect::<Float32Array>())
    };
    vec![
        coordinate(|b| b.xmin),
        coordinate(|b| b.ymin),
        coordinate(|b| b.xmax),
        coordinate(|b| b.ymax),
    ]
}

fn column_index(name: &str) -> usize {
    schema::COLUMNS
        .iter()
        .position(|c| c.name == name)
        .unwrap_or_else(|| unreachable!("no column {name}"))
}

/// The rows as one record batch with the contract's schema (no metadata).
pub fn rows_to_batch(rows: &[Row]) -> Result<RecordBatch, ArrowError> {
    let schema = schema::arrow_schema();
    let strings = |get: fn(&Row) -> &str| -> ArrayRef {
        Arc::new(rows.iter().map(|r| Some(get(r))).collect::<StringArray>())
    };

    let sentence_field = element_field(column_index("sentences"));
    let DataType::Struct(sentence_fields) = sentence_field.data_type() else {
        unreachable!("sentences are structs")
    };
    let token_field = match sentence_fields[3].data_type() {
        DataType::List(element) => element.clone(),
        other => unreachable!("tokens are a list, not {other}"),
    };
    let sentences: Vec<&Sentence> = rows.iter().flat_map(|r| &r.sentences).collect();
    let tokens: StringArray = sentences
        .iter()
        .flat_map(|s| s.tokens.iter().map(|t| Some(t.as_str())))
        .collect();
    let sentence_values = struct_of(
        &sentence_field,
        vec![
            Arc::new(sentences.iter().map(|s| s.sent_id).collect::<Int64Array>()),
            Arc::new(
                sentences
                    .iter()
                    .map(|s| Some(s.sent.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                sentences
                    .iter()
                    .map(|s| Some(s.raw.as_str()))
                    .collect::<StringArray>(),
            ),
            list_of(
                token_field,
                sentences.iter().map(|s| s.tokens.len()),
                Arc::new(tokens),
            ),
        ],
    );

    let gt_field = schema.field(column_index("gt_box"));
    let DataType::Struct(gt_fields) = gt_field.data_type() else {
        unreachable!("gt_box is a struct")
    };
    let gt_box: ArrayRef = Arc::new(StructArray::new(
        gt_fields.clone(),
        boxes_arrays(rows.iter().map(|r| &r.gt_box)),
        None,
    ));

    let proposal_field = element_field(column_index("proposals"));
    let proposals: Vec<&Proposal> = rows.iter().flat_map(|r| &r.proposals).collect();
    let mut proposal_arrays = boxes_arrays(proposals.iter().map(|p| &p.bbox));
    proposal_arrays.push(Arc::new(
        proposals.iter().map(|p| p.score).collect::<Float32Array>(),
    ));
    proposal_arrays.push(Arc::new(
        proposals.iter().map(|p| p.class_id).collect::<Int32Array>(),
    ));
    proposal_arrays.push(Arc::new(
        proposals
            .iter()
            .map(|p| Some(p.label.as_str()))
            .collect::<StringArray>(),
    ));

    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "ref_id",
            Arc::new(rows.iter().map(|r| r.ref_id).collect::<Int64Array>()),
        ),
        (
            "ann_id",
            Arc::new(rows.iter().map(|r| r.ann_id).collect::<Int64Array>()),
        ),
        (
            "image_id",
            Arc::new(rows.iter().map(|r| r.image_id).collect::<Int64Array>()),
        ),
        ("file_name", strings(|r| &r.file_name)),
        ("split", strings(|r| &r.split)),
        (
            "category_id",
            Arc::new(rows.iter().map(|r| r.category_id).collect::<Int32Array>()),
        ),
        ("category_name", strings(|r| &r.category_name)),
        (
            "image_width",
            Arc::new(rows.iter().map(|r| r.image_width).collect::<Int32Array>()),
        ),
        (
            "image_height",
            Arc::new(rows.iter().map(|r| r.image_height).collect::<Int32Array>()),
        ),
        (
            "sentences",
            list_of(
                sentence_field,
                rows.iter().map(|r| r.sentences.len()),
                sentence_values,
            ),
        ),
        ("gt_box", gt_box),
        (
            "proposals",
            list_of(
                proposal_field.clone(),
                rows.iter().map(|r| r.proposals.len()),
                struct_of(&proposal_field, proposal_arrays),
            ),
        ),
        (
            "proposal_iou",
            list_of(
                element_field(column_index("proposal_iou")),
                rows.iter().map(|r| r.proposal_iou.len()),
                Arc::new(
                    rows.iter()
                        .flat_map(|r| r.proposal_iou.iter().copied())
                        .collect::<Float32Array>(),
                ),
            ),
        ),
        (
            "best_index",
            Arc::new(rows.iter().map(|r| r.best_index).collect::<Int32Array>()),
        ),
        (
            "best_iou",
            Arc::new(rows.iter().map(|r| r.best_iou).collect::<Float32Array>()),
        ),
    ];
    // The columns above are listed by name so that two same-typed columns cannot be swapped
    // silently; the schema decides the order.
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let expected: Vec<&str> = schema::COLUMNS.iter().map(|c| c.name).collect();
    if names != expected {
        return Err(ArrowError::SchemaError(format!(
            "row columns {names:?} differ from the contract {expected:?}"
        )));
    }
    RecordBatch::try_new(
        schema,
        columns.into_iter().map(|(_, array)| array).collect(),
    )
}

fn column<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a ArrayRef, DecodeError> {
    batch
        .column_by_name(name)
        .ok_or(DecodeError::MissingColumn(name))
}

fn no_nulls(array: &dyn Array, column: &'static str) -> Result<(), DecodeError> {
    match array
        .nulls()
        .and_then(|n| (0..n.len()).find(|&i| n.is_null(i)))
    {
        Some(row) => Err(DecodeError::UnexpectedNull { column, row }),
        None => Ok(()),
    }
}

fn strings_at(array: &ArrayRef, column: &'static str) -> Result<Vec<String>, DecodeError> {
    no_nulls(array.as_ref(), column)?;
    Ok(array
        .as_string::<i32>()
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect())
}

fn boxes_at(array: &StructArray) -> Vec<BoxXyxy> {
    let c = |i: usize| array.column(i).as_primitive::<Float32Type>().values();
    let (xmin, ymin, xmax, ymax) = (c(0), c(1), c(2), c(3));
    (0..array.len())
        .map(|i| BoxXyxy {
            xmin: xmin[i],
            ymin: ymin[i],
            xmax: xmax[i],
            ymax: ymax[i],
        })
        .collect()
}

/// The values of row `i` of a list column, as a range into its flattened values.
fn list_range(list: &ListArray, i: usize) -> std::ops::Range<usize> {
    let offsets = list.value_offsets();
    offsets[i] as usize..offsets[i + 1] as usize
}

/// Rows of a record batch that follows the contract (checked first with [`check_fields`]).
pub fn rows_from_batch(batch: &RecordBatch) -> Result<Vec<Row>, DecodeError> {
    check_fields(&batch.schema())?;
    // With the schema checked, every downcast below matches; nulls are refused where the
    // contract has none, since the Parquet reader trusts the file's own nullability.
    for spec in &schema::COLUMNS {
        if !spec.nullable {
            no_nulls(column(batch, spec.name)?.as_ref(), spec.name)?;
        }
    }
    let int64 = |name| -> Result<&[i64], DecodeError> {
        Ok(column(batch, name)?.as_primitive::<Int64Type>().values())
    };
    let int32 = |name| -> Result<&[i32], DecodeError> {
        Ok(column(batch, name)?.as_primitive::<Int32Type>().values())
    };
    let (ref_id, ann_id, image_id) = (int64("ref_id")?, int64("ann_id")?, int64("image_id")?);
    let file_name = strings_at(column(batch, "file_name")?, "file_name")?;
    let split = strings_at(column(batch, "split")?, "split")?;
    let category_id = int32("category_id")?;
    let category_name = strings_at(column(batch, "category_name")?, "category_name")?;
    let (width, height) = (int32("image_width")?, int32("image_height")?);

    let sentences = column(batch, "sentences")?.as_list::<i32>();
    let sentence_values = sentences.values().as_struct();
    let sent_id = sentence_values
        .column(0)
        .as_primitive::<Int64Type>()
        .values();
    let sent = strings_at(sentence_values.column(1), "sentences.sent")?;
    let raw = strings_at(sentence_values.column(2), "sentences.raw")?;
    let tokens = sentence_values.column(3).as_list::<i32>();
    let token_values = strings_at(tokens.values(), "sentences.tokens")?;

    let gt_box = boxes_at(column(batch, "gt_box")?.as_struct());

    let proposals = column(batch, "proposals")?.as_list::<i32>();
    let proposal_values = proposals.values().as_struct();
    let proposal_boxes = boxes_at(proposal_values);
    let score = proposal_values
        .column(4)
        .as_primitive::<Float32Type>()
        .values();
    let class_id = proposal_values
        .column(5)
        .as_primitive::<Int32Type>()
        .values();
    let label = strings_at(proposal_values.column(6), "proposals.label")?;

    let ious = column(batch, "proposal_iou")?.as_list::<i32>();
    let iou_values = ious.values().as_primitive::<Float32Type>().values();
    let best_index = column(batch, "best_index")?.as_primitive::<Int32Type>();
    let best_iou = column(batch, "best_iou")?
        .as_primitive::<Float32Type>()
        .values();

    Ok((0..batch.num_rows())
        .map(|i| Row {
            ref_id: ref_id[i],
            ann_id: ann_id[i],
            image_id: image_id[i],
            file_name: file_name[i].clone(),
            split: split[i].clone(),
            category_id: category_id[i],
            category_name: category_name[i].clone(),
            image_width: width[i],
            image_height: height[i],
            sentences: list_range(sentences, i)
                .map(|s| Sentence {
                    sent_id: sent_id[s],
                    sent: sent[s].clone(),
                    raw: raw[s].clone(),
                    tokens: token_values[list_range(tokens, s)].to_vec(),
                })
                .collect(),
            gt_box: gt_box[i],
            proposals: list_range(proposals, i)
                .map(|p| Proposal {
                    bbox: proposal_boxes[p],
                    score: score[p],
                    class_id: class_id[p],
                    label: label[p].clone(),
                })
                .collect(),
            proposal_iou: iou_values[list_range(ious, i)].to_vec(),
            best_index: best_index.is_valid(i).then(|| best_index.value(i)),
            best_iou: best_iou[i],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_match_takes_the_first_maximum() {
        assert_eq!(best_match(&[]), (None, 0.0));
        assert_eq!(best_match(&[0.0]), (Some(0), 0.0));
        assert_eq!(best_match(&[0.2, 0.7, 0.7, 0.1]), (Some(1), 0.7));
        assert_eq!(best_match(&[0.9, 0.3]), (Some(0), 0.9));
    }
}
