//! The output contract end to end: rows built from records, Parquet shards written atomically and
//! deterministically, read back (by arrow-rs here, by pyarrow in `tests/python/read_back.py`),
//! and verified; `schemas/` kept in step with the code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use refaug::boxes::BoxXyxy;
use refaug::dataset::{ImageRecord, RefRecord, Sentence};
use refaug::detect::Detection;
use refaug::sha256_file as file_sha256;
use refaug::write::atomic::temp_path;
use refaug::write::row::{Proposal, Row, RowError};
use refaug::write::schema;
use refaug::write::shard::{
    ShardError, ShardOptions, ShardWriter, read_key_value_metadata, read_rows, shard_file_name,
};
use refaug::write::verify::{Location, verify_shard};

fn b(xmin: f32, ymin: f32, xmax: f32, ymax: f32) -> BoxXyxy {
    BoxXyxy {
        xmin,
        ymin,
        xmax,
        ymax,
    }
}

fn det(bbox: BoxXyxy, score: f32, class_id: i32) -> Detection {
    Detection {
        bbox,
        score,
        class_id,
    }
}

fn sentence(sent_id: i64, raw: &str) -> Sentence {
    let sent = raw.to_lowercase();
    Sentence {
        sent_id,
        tokens: sent.split_whitespace().map(str::to_string).collect(),
        sent,
        raw: raw.to_string(),
    }
}

fn coco_label(class_id: i32) -> String {
    match class_id {
        0 => "person",
        56 => "chair",
        62 => "tv",
        _ => "other",
    }
    .to_string()
}

fn image(image_id: i64, width: u32, height: u32) -> ImageRecord {
    ImageRecord {
        image_id,
        file_name: format!("COCO_train2014_{image_id:012}.jpg"),
        width,
        height,
    }
}

fn ref_record(ref_id: i64, image_id: i64, gt_box: BoxXyxy, sentences: Vec<Sentence>) -> RefRecord {
    RefRecord {
        ref_id,
        ann_id: 1_700_000 + ref_id,
        image_id,
        category_id: 1,
        split: "train".to_string(),
        sentences,
        gt_box,
    }
}

/// Rows with the shapes that matter: several proposals, none, non-ASCII text, an empty token
/// list, ties.
fn sample_rows() -> Vec<Row> {
    let img = image(581_857, 640, 480);
    let small = image(12, 20, 10);
    let gt = b(0.0, 0.0, 10.0, 10.0);
    let dets = [
        det(b(5.0, 0.0, 15.0, 10.0), 0.9, 0),
        det(b(0.0, 0.0, 10.0, 10.0), 0.8, 56),
        det(b(0.0, 0.0, 10.0, 10.0), 0.8, 62),
        det(b(100.5, 20.25, 639.0, 480.0), 0.125, 0),
    ];
    vec![
        Row::build(
            &ref_record(
                0,
                581_857,
                gt,
                vec![
                    sentence(0, "THE LADY with the blue shirt"),
                    sentence(1, "woman in blue"),
                ],
            ),
            &img,
            "person",
            &dets,
            coco_label,
        )
        .unwrap(),
        Row::build(
            &ref_record(
                3,
                581_857,
                b(300.0, 200.5, 640.0, 480.0),
                vec![sentence(7, "the café chair — left of the TV ☕")],
            ),
            &img,
            "person",
            &dets[..2],
            coco_label,
        )
        .unwrap(),
        Row::build(
            &ref_record(
                9,
                12,
                b(1.0, 2.0, 3.5, 4.25),
                vec![Sentence {
                    sent_id: 11,
                    sent: String::new(),
                    raw: String::new(),
                    tokens: vec![],
                }],
            ),
            &small,
            "person",
            &[],
            coco_label,
        )
        .unwrap(),
    ]
}

fn metadata() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            schema::META_REFAUG_VERSION.to_string(),
            "0.1.0-test".to_string(),
        ),
        (
            schema::META_DETECTOR.to_string(),
            r#"{"family":"yolov5","name":"yolov5s","clip_boxes":true}"#.to_string(),
        ),
    ])
}

fn write_shard(
    path: &Path,
    rows: &[Row],
    options: &ShardOptions,
) -> refaug::write::shard::ShardSummary {
    let mut writer = ShardWriter::create(path, &metadata(), options).unwrap();
    writer.write_all(rows.iter().cloned()).unwrap();
    writer.close().unwrap()
}

fn visible_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn row_build_computes_iou_and_best_match_by_hand() {
    let rows = sample_rows();
    let row = &rows[0];
    // gt (0,0)-(10,10) against (5,0)-(15,10): 50 / (100 + 100 - 50) = 1/3; the two copies of
    // gt give 1; the far box does not touch gt: 0.
    assert_eq!(row.proposal_iou, vec![(1.0f64 / 3.0) as f32, 1.0, 1.0, 0.0]);
    // Tie between indices 1 and 2: the first wins.
    assert_eq!(row.best_index, Some(1));
    assert_eq!(row.best_iou, 1.0);
    assert_eq!(
        row.proposals
            .iter()
            .map(|p| p.label.as_str())
            .collect::<Vec<_>>(),
        ["person", "chair", "tv", "person"]
    );
    assert_eq!(row.file_name, "COCO_train2014_000000581857.jpg");
    assert_eq!((row.image_width, row.image_height), (640, 480));
    assert_eq!(row.category_name, "person");

    // The second ref's gt (300,200.5)-(640,480) meets neither proposal: IoU 0, best is the first.
    assert_eq!(rows[1].proposal_iou, vec![0.0, 0.0]);
    assert_eq!((rows[1].best_index, rows[1].best_iou), (Some(0), 0.0));

    assert_eq!(rows[2].proposals, Vec::<Proposal>::new());
    assert_eq!((rows[2].best_index, rows[2].best_iou), (None, 0.0));
}

#[test]
fn row_build_refuses_bad_input() {
    let gt = b(0.0, 0.0, 1.0, 1.0);
    let r = ref_record(5, 1, gt, vec![sentence(0, "x")]);
    let err = Row::build(&r, &image(2, 4, 4), "person", &[], coco_label).unwrap_err();
    assert!(
        matches!(err, RowError::ImageMismatch { ref_id: 5, .. }),
        "{err}"
    );

    let unsorted = [det(gt, 0.2, 0), det(gt, 0.5, 0)];
    let err = Row::build(&r, &image(1, 4, 4), "person", &unsorted, coco_label).unwrap_err();
    assert!(
        matches!(err, RowError::NotScoreDescending { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ref 5"), "{err}");

    let mut big = r.clone();
    big.category_id = i64::from(i32::MAX) + 1;
    let err = Row::build(&big, &image(1, 4, 4), "person", &[], coco_label).unwrap_err();
    assert!(matches!(err, RowError::OutOfRange { .. }), "{err}");
}

#[test]
fn rows_round_trip_through_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(shard_file_name("train", 0, 1));
    let rows = sample_rows();
    let summary = write_shard(&path, &rows, &ShardOptions::default());
    assert_eq!(summary.rows, 3);
    assert_eq!(summary.row_groups, 1);
    assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(summary.sha256, file_sha256(&path).unwrap());
    assert_eq!(read_rows(&path).unwrap(), rows);
    assert_eq!(visible_files(dir.path()), ["train-00000-of-00001.parquet"]);
}

#[test]
fn shard_file_names_follow_the_hub_convention() {
    assert_eq!(
        shard_file_name("train", 0, 3),
        "train-00000-of-00003.parquet"
    );
    assert_eq!(
        shard_file_name("testA", 12, 100),
        "testA-00012-of-00100.parquet"
    );
}

#[test]
fn file_schema_is_the_contract_with_spec_list_naming() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("val-00000-of-00001.parquet");
    write_shard(&path, &sample_rows(), &ShardOptions::default());
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();

    // The Parquet leaf columns, written out by hand from the contract: lists are
    // `<name>.list.element` (the Parquet spec's three-level LIST), never `item`.
    let leaves: Vec<String> = builder
        .parquet_schema()
        .columns()
        .iter()
        .map(|c| c.path().string())
        .collect();
    assert_eq!(
        leaves,
        [
            "ref_id",
            "ann_id",
            "image_id",
            "file_name",
            "split",
            "category_id",
            "category_name",
            "image_width",
            "image_height",
            "sentences.list.element.sent_id",
            "sentences.list.element.sent",
            "sentences.list.element.raw",
            "sentences.list.element.tokens.list.element",
            "gt_box.xmin",
            "gt_box.ymin",
            "gt_box.xmax",
            "gt_box.ymax",
            "proposals.list.element.xmin",
            "proposals.list.element.ymin",
            "proposals.list.element.xmax",
            "proposals.list.element.ymax",
            "proposals.list.element.score",
            "proposals.list.element.class_id",
            "proposals.list.element.label",
            "proposal_iou.list.element",
            "best_index",
            "best_iou",
        ]
    );

    // Arrow types as the contract states them, written independently of `schema.rs`.
    let types: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| format!("{} {} {}", f.name(), f.data_type(), f.is_nullable()))
        .collect();
    let expected_types = [
        "ref_id Int64 false",
        "ann_id Int64 false",
        "image_id Int64 false",
        "file_name Utf8 false",
        "split Utf8 false",
        "category_id Int32 false",
        "category_name Utf8 false",
        "image_width Int32 false",
        "image_height Int32 false",
        "gt_box Struct(\"xmin\": non-null Float32, \"ymin\": non-null Float32, \"xmax\": non-null Float32, \"ymax\": non-null Float32) false",
        "best_index Int32 true",
        "best_iou Float32 false",
    ];
    for expected in expected_types {
        assert!(
            types.iter().any(|t| t == expected),
            "{expected} not in {types:#?}"
        );
    }
    let proposals = builder.schema().field_with_name("proposals").unwrap();
    let arrow::datatypes::DataType::List(element) = proposals.data_type() else {
        panic!("proposals is {}", proposals.data_type())
    };
    assert_eq!(element.name(), "element");
    let arrow::datatypes::DataType::Struct(fields) = element.data_type() else {
        panic!("proposals element is {}", element.data_type())
    };
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        ["xmin", "ymin", "xmax", "ymax", "score", "class_id", "label"]
    );

    // Key-value metadata: the caller's keys, the schema version, and the HF features.
    let kv = read_key_value_metadata(&path).unwrap();
    assert_eq!(kv[schema::META_SCHEMA_VERSION], "2.0.0");
    assert_eq!(kv[schema::META_REFAUG_VERSION], "0.1.0-test");
    let hf: serde_json::Value = serde_json::from_str(&kv[schema::META_HUGGINGFACE]).unwrap();
    let value = |dtype: &str| serde_json::json!({"dtype": dtype, "_type": "Value"});
    let coords = |extra: serde_json::Value| {
        let mut m = serde_json::json!({
            "xmin": value("float32"), "ymin": value("float32"),
            "xmax": value("float32"), "ymax": value("float32"),
        });
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    };
    // What `datasets` (5.2) `Features.to_dict()` writes, with lists in the `[feature]` form.
    let expected_hf = serde_json::json!({"info": {"features": {
        "ref_id": value("int64"),
        "ann_id": value("int64"),
        "image_id": value("int64"),
        "file_name": value("string"),
        "split": value("string"),
        "category_id": value("int32"),
        "category_name": value("string"),
        "image_width": value("int32"),
        "image_height": value("int32"),
        "sentences": [{
            "sent_id": value("int64"),
            "sent": value("string"),
            "raw": value("string"),
            "tokens": [value("string")],
        }],
        "gt_box": coords(serde_json::json!({})),
        "proposals": [coords(serde_json::json!({
            "score": value("float32"),
            "class_id": value("int32"),
            "label": value("string"),
        }))],
        "proposal_iou": [value("float32")],
        "best_index": value("int32"),
        "best_iou": value("float32"),
    }}});
    assert_eq!(hf, expected_hf);
    // Column order matters to `datasets`: the features object lists them in file order.
    let raw = &kv[schema::META_HUGGINGFACE];
    let positions: Vec<usize> = schema::COLUMNS
        .iter()
        .map(|c| raw.find(&format!("\"{}\":", c.name)).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{raw}");
}

#[test]
fn reserved_metadata_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train-00000-of-00001.parquet");
    let mut meta = metadata();
    meta.insert(schema::META_SCHEMA_VERSION.to_string(), "0.9".to_string());
    let err = ShardWriter::create(&path, &meta, &ShardOptions::default()).unwrap_err();
    assert!(
        matches!(err, ShardError::ReservedMetadataKey { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("train-00000-of-00001.parquet"),
        "{err}"
    );
    assert!(visible_files(dir.path()).is_empty());
}

#[test]
fn same_rows_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, c) = (dir.path().join("a.parquet"), dir.path().join("c.parquet"));
    let rows = sample_rows();
    let sa = write_shard(&a, &rows, &ShardOptions::default());
    // Another batch size changes only how rows reach the writer, not the file.
    let other = ShardOptions {
        batch_rows: 1,
        ..ShardOptions::default()
    };
    let sc = write_shard(&c, &rows, &other);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
    assert_eq!(sa.sha256, sc.sha256);
}

#[test]
fn row_groups_are_bounded_by_rows_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Row> = (0..10)
        .map(|i| {
            let mut r = sample_rows()[0].clone();
            r.ref_id = i;
            r
        })
        .collect();
    let group_sizes = |path: &Path| -> Vec<i64> {
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
        builder
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect()
    };

    let by_rows = dir.path().join("rows.parquet");
    let options = ShardOptions {
        max_row_group_rows: 3,
        ..ShardOptions::default()
    };
    assert_eq!(write_shard(&by_rows, &rows, &options).row_groups, 4);
    assert_eq!(group_sizes(&by_rows), [3, 3, 3, 1]);

    // Each row's estimate is a few hundred bytes: a 1-byte budget closes a group per row, and a
    // budget of two rows' worth closes one every second row.
    let by_bytes = dir.path().join("bytes.parquet");
    let options = ShardOptions {
        max_row_group_bytes: 1,
        ..ShardOptions::default()
    };
    write_shard(&by_bytes, &rows, &options);
    assert_eq!(group_sizes(&by_bytes), [1; 10]);
    let by_two = dir.path().join("two.parquet");
    let options = ShardOptions {
        max_row_group_bytes: 2 * rows[0].uncompressed_size(),
        ..ShardOptions::default()
    };
    write_shard(&by_two, &rows, &options);
    assert_eq!(group_sizes(&by_two), [2; 5]);
    assert_eq!(read_rows(&by_two).unwrap(), rows);
}

#[test]
fn an_unfinished_shard_never_becomes_visible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train-00000-of-00001.parquet");
    let mut writer = ShardWriter::create(&path, &metadata(), &ShardOptions::default()).unwrap();
    writer.write_all(sample_rows()).unwrap();
    let temp = temp_path(&path);
    assert!(!path.exists());
    assert!(temp.exists());
    let temp_name = temp.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        temp_name.starts_with('.') && !temp_name.ends_with(".parquet"),
        "{temp_name}"
    );
    drop(writer);
    assert!(visible_files(dir.path()).is_empty());
}

#[test]
fn a_dropped_rewrite_leaves_the_committed_shard_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train-00000-of-00001.parquet");
    let committed = write_shard(&path, &sample_rows(), &ShardOptions::default());
    let mut writer = ShardWriter::create(&path, &metadata(), &ShardOptions::default()).unwrap();
    writer.write_all(sample_rows()[..1].to_vec()).unwrap();
    drop(writer);
    assert_eq!(file_sha256(&path).unwrap(), committed.sha256);
    assert_eq!(visible_files(dir.path()), ["train-00000-of-00001.parquet"]);
}

#[test]
fn an_unwritable_destination_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("missing-folder")
        .join("train-00000-of-00001.parquet");
    let err = ShardWriter::create(&path, &metadata(), &ShardOptions::default()).unwrap_err();
    assert!(matches!(err, ShardError::Io { .. }), "{err}");
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains("missing-folder"), "{chain}");
}

#[test]
fn verify_accepts_a_good_shard_and_catches_changed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train-00000-of-00001.parquet");
    let summary = write_shard(&path, &sample_rows(), &ShardOptions::default());
    assert_eq!(verify_shard(&path, Some(&summary.sha256)), vec![]);
    assert_eq!(verify_shard(&path, None), vec![]);

    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let violations = verify_shard(&path, Some(&summary.sha256));
    assert!(!violations.is_empty());
    assert_eq!(violations[0].location, Location::File);
    assert!(
        violations[0].message.contains("sha256"),
        "{}",
        violations[0]
    );
    assert!(
        violations[0]
            .to_string()
            .contains("train-00000-of-00001.parquet")
    );

    std::fs::write(&path, b"not parquet").unwrap();
    let violations = verify_shard(&path, None);
    assert_eq!(violations.len(), 1);
    assert!(
        violations[0]
            .message
            .contains("not a readable Parquet file"),
        "{}",
        violations[0]
    );
}

/// Rows that break one invariant each, written through the writer (which does not check):
/// `verify` names each row by index and ref_id.
#[test]
fn verify_names_the_rows_that_break_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train-00000-of-00001.parquet");
    let good = sample_rows();
    let mut outside = good[0].clone();
    outside.ref_id = 10;
    outside.proposals[3].bbox.xmax = 641.0; // image is 640 wide
    let mut wrong_best = good[0].clone();
    wrong_best.ref_id = 11;
    wrong_best.best_index = Some(2); // the tie's first index is 1
    let mut wrong_iou = good[1].clone();
    wrong_iou.ref_id = 12;
    wrong_iou.proposal_iou[1] = 0.5;
    let mut unsorted = good[1].clone();
    unsorted.ref_id = 13;
    unsorted.proposals.swap(0, 1);
    unsorted.proposal_iou.swap(0, 1);
    let mut no_best = good[2].clone();
    no_best.ref_id = 14;
    no_best.best_index = Some(0);
    let mut out_of_order = good[2].clone();
    out_of_order.ref_id = 1;
    let rows = vec![
        good[0].clone(),
        outside,
        wrong_best,
        wrong_iou,
        unsorted,
        no_best,
        out_of_order,
    ];
    write_shard(&path, &rows, &ShardOptions::default());

    let violations = verify_shard(&path, None);
    let found: Vec<(usize, i64, String)> = violations
        .iter()
        .map(|v| match v.location {
            Location::Row { index, ref_id } => (index, ref_id, v.message.clone()),
            Location::File => panic!("file-level violation {v}"),
        })
        .collect();
    let expect = |index: usize, ref_id: i64, needle: &str| {
        assert!(
            found
                .iter()
                .any(|(i, r, m)| *i == index && *r == ref_id && m.contains(needle)),
            "no violation at row {index} (ref {ref_id}) containing {needle:?}: {found:#?}"
        );
    };
    expect(1, 10, "not inside the 640x480 image");
    expect(2, 11, "best_index is Some(2)");
    expect(3, 12, "proposal_iou[1] is 0.5");
    expect(4, 13, "score-descending");
    expect(5, 14, "best_index is Some(0)");
    expect(6, 1, "ascending ref_id");
    assert!(found.iter().all(|(i, _, _)| *i != 0), "{found:#?}");
    assert_eq!(found.len(), 6, "{found:#?}");
    assert!(
        violations[0]
            .to_string()
            .contains("train-00000-of-00001.parquet: row 1 (ref_id 10)"),
        "{}",
        violations[0]
    );
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `schemas/` is generated from `refaug::write::schema`; this fails when it is stale, and
/// `REFAUG_BLESS=1 cargo test --test write` rewrites it.
#[test]
fn schemas_folder_is_up_to_date() {
    let dir = repo_root().join("schemas");
    let bless = std::env::var_os("REFAUG_BLESS").is_some_and(|v| v == "1");
    if bless {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut stale = Vec::new();
    for (name, content) in schema::schema_files() {
        let path = dir.join(&name);
        if bless {
            std::fs::write(&path, &content).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "schemas/ is stale ({}): run `REFAUG_BLESS=1 cargo test --test write` and commit schemas/",
        stale.join(", ")
    );
}

fn row_json(row: &Row) -> serde_json::Value {
    let bbox = |b: &BoxXyxy| serde_json::json!({"xmin": b.xmin, "ymin": b.ymin, "xmax": b.xmax, "ymax": b.ymax});
    serde_json::json!({
        "ref_id": row.ref_id,
        "ann_id": row.ann_id,
        "image_id": row.image_id,
        "file_name": row.file_name,
        "split": row.split,
        "category_id": row.category_id,
        "category_name": row.category_name,
        "image_width": row.image_width,
        "image_height": row.image_height,
        "sentences": row.sentences.iter().map(|s| serde_json::json!({
            "sent_id": s.sent_id, "sent": s.sent, "raw": s.raw, "tokens": s.tokens,
        })).collect::<Vec<_>>(),
        "gt_box": bbox(&row.gt_box),
        "proposals": row.proposals.iter().map(|p| {
            let mut v = bbox(&p.bbox);
            let m = v.as_object_mut().unwrap();
            m.insert("score".into(), p.score.into());
            m.insert("class_id".into(), p.class_id.into());
            m.insert("label".into(), p.label.clone().into());
            v
        }).collect::<Vec<_>>(),
        "proposal_iou": row.proposal_iou,
        "best_index": row.best_index,
        "best_iou": row.best_iou,
    })
}

/// pyarrow reads a shard written here: types (list<struct>, `element` children), metadata and
/// values equal to a JSON dump of the rows. Runs when the project's `.venv` exists.
#[test]
fn pyarrow_reads_the_shard() {
    let python = repo_root().join(".venv/bin/python");
    if !python.exists() {
        eprintln!(
            "skipped: {} not found (run scripts/setup.sh)",
            python.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shard = dir.path().join("train-00000-of-00001.parquet");
    let rows = sample_rows();
    write_shard(&shard, &rows, &ShardOptions::default());
    let dump = dir.path().join("rows.json");
    let json: Vec<serde_json::Value> = rows.iter().map(row_json).collect();
    std::fs::write(&dump, serde_json::to_string_pretty(&json).unwrap()).unwrap();

    let output = std::process::Command::new(&python)
        .arg(repo_root().join("tests/python/read_back.py"))
        .arg(&shard)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "read_back.py failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Contract 2.0: a variant whose detector keeps boxes past the image (`clip_boxes` false, DETR's
/// default) validates with such boxes; its boxes must still be finite and ordered, and a shard
/// whose metadata does not say whether it clips is refused.
#[test]
fn unclipped_variants_may_extend_past_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, detector: &str, rows: &[Row]| {
        let path = dir.path().join(name);
        let mut meta = metadata();
        meta.insert(schema::META_DETECTOR.to_string(), detector.to_string());
        let mut writer = ShardWriter::create(&path, &meta, &ShardOptions::default()).unwrap();
        writer.write_all(rows.iter().cloned()).unwrap();
        writer.close().unwrap();
        path
    };
    let mut past = sample_rows()[0].clone();
    past.proposals[3].bbox.xmin = -12.5; // image is 640 wide, 480 high
    past.proposals[3].bbox.ymax = 500.0;
    past.proposal_iou = refaug::write::row::proposal_ious(&past.gt_box, &past.proposals);
    let (best_index, best_iou) = refaug::write::row::best_match(&past.proposal_iou);
    past.best_index = best_index;
    past.best_iou = best_iou;
    let mut nan = past.clone();
    nan.ref_id += 1;
    nan.proposals[0].bbox.xmax = f32::NAN;
    nan.proposal_iou = refaug::write::row::proposal_ious(&nan.gt_box, &nan.proposals);

    let unclipped = r#"{"family":"detr","name":"detr","clip_boxes":false}"#;
    let clipped = r#"{"family":"detr","name":"detr","clip_boxes":true}"#;
    let path = write("unclipped.parquet", unclipped, std::slice::from_ref(&past));
    assert_eq!(verify_shard(&path, None), vec![]);
    let path = write("clipped.parquet", clipped, std::slice::from_ref(&past));
    let v = verify_shard(&path, None);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message.contains("not inside the 640x480 image"),
        "{}",
        v[0]
    );
    let path = write("nan.parquet", unclipped, &[past.clone(), nan]);
    let v = verify_shard(&path, None);
    assert!(
        v.iter()
            .any(|v| v.message.contains("proposal 0 box")
                && v.message.contains("not a finite xyxy box")),
        "{v:?}"
    );
    let path = write(
        "silent.parquet",
        r#"{"family":"detr","name":"detr"}"#,
        &[past],
    );
    let v = verify_shard(&path, None);
    assert!(
        v.iter()
            .any(|v| v.location == Location::File && v.message.contains("clip_boxes")),
        "{v:?}"
    );
}
