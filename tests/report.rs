//! `refaug report`: the numbers of a hand-made output folder worked out by hand, every number
//! of a random one recomputed from the shards by numpy (`tests/python/report_check.py`), the
//! written files and the charts.

mod output_fixture;

use refaug::report::{self, ReportOptions, SplitStats};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn split<'a>(stats: &'a [SplitStats], name: &str) -> &'a SplitStats {
    stats.iter().find(|s| s.split == name).unwrap()
}

/// detA (see `output_fixture::hand_made`), ground truth g1 = (0,0,100,100) unless said:
/// - ref 1, image 1: boxes (0,0,100,100) s .9 → IoU 1; (0,0,100,50) s .8 → 0.5;
///   (200,200,300,300) s .2 → 0. Best 1. Filter keeps the first two (the third has s ≤ .25):
///   2 boxes, best 1 > .5 → usable.
/// - ref 2, image 1, g2 = (200,200,300,300): IoUs 0, 0, 1. Best 1. Filter keeps boxes 1, 2
///   (IoU 0): best 0 → not usable.
/// - ref 3, image 2: no box. Best 0, not usable.
/// - ref 4, image 3: (0,0,100,70) s .9 → 0.7; (0,0,10,10) s .5 → 0.01. Best 0.7. Filter drops
///   the 10 px box: 1 left → not usable.
/// - ref 5 (val), image 4: (0,0,100,30) s .6 → 0.3; (0,0,50,50) s .3 → 0.25. Best 0.3; both
///   kept but 0.3 ≤ .5 → not usable.
///
/// train: 4 refs, 3 images, boxes [3, 3, 0, 2] → mean 2, median 2.5; best [1, 1, 0, .7] → mean
/// .675; recall .3/.5/.7 = 3/4 each (0.7 reaches 0.7); usable 1/4.
/// val: 1 ref, boxes 2, best .3; recall .3 = 1, .5 = .7 = 0; usable 0.
/// all: 5 refs, 4 images, boxes [3,3,0,2,2] → mean 2, median 2; best mean 3/5 = .6; recall
/// 4/5, 3/5, 3/5; usable 1/5.
/// detB: every ref has an exact box with s .95 and a second kept box: best 1, 2 boxes, all usable.
#[test]
fn hand_made_numbers() {
    let dir = tempfile::tempdir().unwrap();
    output_fixture::hand_made(dir.path());
    let r = report::compute(dir.path(), &ReportOptions::default()).unwrap();
    assert_eq!(
        r.variants
            .iter()
            .map(|v| v.variant.as_str())
            .collect::<Vec<_>>(),
        ["detA", "detB"]
    );
    let a = &r.variants[0];
    assert_eq!(
        a.splits
            .iter()
            .map(|s| s.split.as_str())
            .collect::<Vec<_>>(),
        ["train", "val"]
    );
    let train = split(&a.splits, "train");
    assert_eq!((train.refs, train.images), (4, 3));
    assert!(close(train.mean_proposals, 2.0));
    assert!(close(train.median_proposals, 2.5));
    assert!(close(train.mean_best_iou, 0.675));
    let recalls: Vec<f64> = train.recall.iter().map(|r| r.recall).collect();
    assert_eq!(recalls, [0.75, 0.75, 0.75]);
    assert_eq!((train.usable_refs, train.usable_share), (1, 0.25));
    assert_eq!(train.proposal_histogram, [1, 0, 1, 2]);

    let val = split(&a.splits, "val");
    assert_eq!((val.refs, val.images), (1, 1));
    assert!(close(val.mean_proposals, 2.0) && close(val.median_proposals, 2.0));
    assert!(close(val.mean_best_iou, 0.3));
    let recalls: Vec<f64> = val.recall.iter().map(|r| r.recall).collect();
    assert_eq!(recalls, [1.0, 0.0, 0.0]);
    assert_eq!(val.usable_refs, 0);

    let all = &a.all;
    assert_eq!((all.refs, all.images), (5, 4));
    assert!(close(all.mean_proposals, 2.0) && close(all.median_proposals, 2.0));
    assert!(close(all.mean_best_iou, 0.6));
    let recalls: Vec<f64> = all.recall.iter().map(|r| r.recall).collect();
    assert_eq!(recalls, [0.8, 0.6, 0.6]);
    assert_eq!((all.usable_refs, all.usable_share), (1, 0.2));
    // The curve: 1 at t = 0 (every ref reaches IoU 0), 4/5 up to 0.3, 3/5 up to 0.7, 2/5 (the
    // two exact boxes) above, to t = 1.
    let curve = &all.recall_curve;
    assert_eq!(curve.len(), 101);
    assert_eq!(
        [
            curve[0], curve[1], curve[30], curve[31], curve[70], curve[71], curve[100]
        ],
        [1.0, 0.8, 0.8, 0.6, 0.6, 0.4, 0.4]
    );

    let b = &r.variants[1];
    assert_eq!(b.all.refs, 5);
    assert!(close(b.all.mean_best_iou, 1.0));
    assert_eq!(b.all.usable_refs, 5);
    assert_eq!(b.all.proposal_histogram, [0, 0, 5]);

    // Stricter flags: with --min-proposals 1 ref 4 becomes usable (0.7 > 0.5); with
    // --min-best-iou 0.7 it would not (0.7 is not > 0.7).
    let loose = ReportOptions {
        min_proposals: 1,
        ..ReportOptions::default()
    };
    let r = report::compute(dir.path(), &loose).unwrap();
    assert_eq!(r.variants[0].all.usable_refs, 2);
    let strict = ReportOptions {
        min_proposals: 1,
        min_best_iou: 0.7,
        recall_at: vec![0.25, 1.0],
        ..ReportOptions::default()
    };
    let r = report::compute(dir.path(), &strict).unwrap();
    assert_eq!(r.variants[0].all.usable_refs, 1);
    let recalls: Vec<f64> = r.variants[0].all.recall.iter().map(|r| r.recall).collect();
    assert_eq!(recalls, [0.8, 0.4]);
}

#[test]
fn tables_round_like_table_3() {
    let dir = tempfile::tempdir().unwrap();
    output_fixture::hand_made(dir.path());
    let r = report::compute(dir.path(), &ReportOptions::default()).unwrap();
    let compare = r.compare_table().markdown();
    let lines: Vec<&str> = compare.lines().collect();
    assert_eq!(
        lines[0],
        "| split (refs) | detA best IoU | #boxes | detB best IoU | #boxes |"
    );
    assert_eq!(
        lines[2],
        "| train (4)    |         0.675 |   2.00 |         1.000 |   2.00 |"
    );
    assert_eq!(
        lines[3],
        "| val (1)      |         0.300 |   2.00 |         1.000 |   2.00 |"
    );
    assert_eq!(
        lines[4],
        "| all (5)      |         0.600 |   2.00 |         1.000 |   2.00 |"
    );
    let table = r.table().markdown();
    assert!(
        table.contains("| detA    | train |    4 |      3 |        2.00 |           2.5 |         0.675 |  75.0% |  75.0% |  75.0% |           25.0% (1) |\n| detA    | val   |    1 |"),
        "{table}"
    );
    let csv = r.csv();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "variant,detector,split,refs,images,mean_proposals,median_proposals,mean_best_iou,recall_at_0.3,recall_at_0.5,recall_at_0.7,usable_refs,usable_share"
    );
    assert_eq!(
        lines
            .next()
            .unwrap()
            .split(',')
            .take(7)
            .collect::<Vec<_>>()
            .join(","),
        "detA,detA,train,4,3,2,2.5"
    );
    assert_eq!(csv.lines().count(), 1 + 2 * 3);
}

#[test]
fn writes_every_file_and_the_charts() {
    let dir = tempfile::tempdir().unwrap();
    output_fixture::hand_made(dir.path());
    let r = report::compute(dir.path(), &ReportOptions::default()).unwrap();
    let out = dir.path().join("report");
    let files = report::write(&r, &out).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&files.json).unwrap()).unwrap();
    assert_eq!(json["variants"][0]["all"]["refs"], 5);
    assert_eq!(json["options"]["min_proposals"], 2);
    let md = fs_err::read_to_string(&files.markdown).unwrap();
    assert!(
        md.contains("![recall_vs_iou.png](recall_vs_iou.png)"),
        "{md}"
    );
    for png in [&files.recall_plot[0], &files.histogram_plot[0]] {
        let image = image::open(png).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), report::plot::CHART_SIZE);
        // Text is drawn: the caption row holds dark pixels (anti-aliased glyphs) besides white.
        let dark = image
            .rows()
            .take(40)
            .flatten()
            .filter(|p| p.0.iter().all(|&c| c < 100))
            .count();
        assert!(
            dark > 50,
            "{}: no caption text drawn ({dark} dark pixels)",
            png.display()
        );
    }
    for svg in [&files.recall_plot[1], &files.histogram_plot[1]] {
        let text = fs_err::read_to_string(svg).unwrap();
        assert!(text.starts_with("<svg"), "{}", svg.display());
        assert!(
            text.contains("detA") && text.contains("detB"),
            "{}: legend",
            svg.display()
        );
    }
    // Deterministic: the same report draws the same bytes.
    let again = dir.path().join("again");
    let files2 = report::write(&r, &again).unwrap();
    assert_eq!(
        fs_err::read(&files.recall_plot[0]).unwrap(),
        fs_err::read(&files2.recall_plot[0]).unwrap()
    );
}

#[test]
fn missing_shard_and_empty_folder_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = report::compute(dir.path(), &ReportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no variant folder"), "{err}");
    output_fixture::hand_made(dir.path());
    fs_err::remove_file(dir.path().join("detA/val-00000-of-00001.parquet")).unwrap();
    let err = report::compute(dir.path(), &ReportOptions::default()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("detA/manifest.json") && message.contains("val-00000-of-00001.parquet"),
        "{message}"
    );
}

/// Every number of the JSON report, recomputed from the shards with pyarrow and numpy.
#[test]
fn numpy_recomputes_the_json_report() {
    let Some(python) = output_fixture::python() else {
        return;
    };
    for (case, build) in [
        (
            "hand-made",
            output_fixture::hand_made as fn(&std::path::Path),
        ),
        ("random", |p: &std::path::Path| {
            output_fixture::random(p, 7, &["yolov8x", "frcnn", "detr"])
        }),
    ] {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        for options in [
            ReportOptions::default(),
            ReportOptions {
                train_conf: 0.4,
                min_size: 30.0,
                min_proposals: 1,
                min_best_iou: 0.3,
                recall_at: vec![0.1, 0.25, 0.5, 0.75, 0.9],
            },
        ] {
            let r = report::compute(dir.path(), &options).unwrap();
            let files = report::write(&r, &dir.path().join("report")).unwrap();
            let out = output_fixture::run_python(
                &python,
                "report_check.py",
                &[dir.path().as_os_str(), files.json.as_os_str()],
            );
            eprintln!("{case}: {out}");
        }
    }
}

#[test]
fn variants_follow_the_data_manifests_order_not_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let order = ["yolov8x", "frcnn", "detr"];
    output_fixture::random(dir.path(), 11, &order);
    // What a run records: the data manifest's variants, in its order, in every manifest.json.
    let settings = serde_json::json!({
        "variants": order.iter().map(|n| serde_json::json!({"name": n})).collect::<Vec<_>>()
    });
    for name in order {
        let path = dir.path().join(name).join("manifest.json");
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        m["settings"] = settings.clone();
        std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    }
    let r = report::compute(dir.path(), &ReportOptions::default()).unwrap();
    let got: Vec<&str> = r.variants.iter().map(|v| v.variant.as_str()).collect();
    assert_eq!(got, order);
    let files = report::write(&r, &dir.path().join("report")).unwrap();
    if let Some(python) = output_fixture::python() {
        output_fixture::run_python(
            &python,
            "report_check.py",
            &[dir.path().as_os_str(), files.json.as_os_str()],
        );
    }
}
