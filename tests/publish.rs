//! `refaug publish`: the folder's layout, card, checksums and Croissant metadata, then real
//! clients on it (`tests/python/publish_check.py`: pyarrow, Hugging Face `datasets`, DuckDB,
//! mlcroissant) when the project's `.venv` exists.

mod output_fixture;

use std::path::Path;

use refaug::publish::{self, PublishError, PublishOptions};

fn published(dir: &Path) -> std::path::PathBuf {
    output_fixture::hand_made(&dir.join("out"));
    let dest = dir.join("hub");
    let summary = publish::publish(
        &dir.join("out"),
        &dest,
        &PublishOptions {
            repo_id: Some("someone/refcocog-proposals".to_string()),
            ..PublishOptions::default()
        },
    )
    .unwrap();
    // Same file system: every shard is a hard link.
    assert_eq!((summary.linked, summary.copied), (6, 0));
    assert_eq!(
        summary.files,
        [
            "LICENSE.md",
            "README.md",
            "SHA256SUMS",
            "croissant.json",
            "data/detA/train-00000-of-00002.parquet",
            "data/detA/train-00001-of-00002.parquet",
            "data/detA/val-00000-of-00001.parquet",
            "data/detB/train-00000-of-00002.parquet",
            "data/detB/train-00001-of-00002.parquet",
            "data/detB/val-00000-of-00001.parquet",
            "proposals_per_ref.png",
            "recall_vs_iou.png",
        ]
    );
    dest
}

#[test]
fn layout_card_and_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let dest = published(dir.path());
    let card = fs_err::read_to_string(dest.join("README.md")).unwrap();
    for expected in [
        "configs:\n- config_name: \"detA\"\n  default: true\n  data_files:\n  - split: \"train\"\n    path: \"data/detA/train-*.parquet\"\n",
        "- config_name: \"detB\"\n  data_files:",
        "  features:\n  - name: \"ref_id\"\n    dtype: \"int64\"\n",
        "  - name: \"proposals\"\n    list:\n    - name: \"xmin\"\n      dtype: \"float32\"\n",
        "  - name: \"proposal_iou\"\n    list: \"float32\"\n",
        "  - name: \"gt_box\"\n    struct:\n    - name: \"xmin\"\n",
        "  - name: \"train\"\n    num_bytes: ",
        "    num_examples: 4\n",
        "license: \"other\"\n",
        "task_categories:\n- \"object-detection\"\n",
        // detA's spec says it saw the evaluation images; detB's does not.
        "**Warning — `detA`:** this detector was trained on COCO train2017",
        "| train (4)    |         0.675 |   2.00 |         1.000 |   2.00 |",
        "![Recall vs IoU threshold](recall_vs_iou.png)",
        "load_dataset(\"someone/refcocog-proposals\", \"detA\")",
        "ONNX Runtime 1.31.1 (CPUExecutionProvider)",
        "@inproceedings{mao2016generation",
        "@inproceedings{nagaraja2016modeling",
        "@inproceedings{lin2014microsoft",
        "@software{jocher2020yolov5",
        "@inproceedings{carion2020end",
    ] {
        assert!(card.contains(expected), "card lacks {expected:?}:\n{card}");
    }
    assert!(!card.contains("**Warning — `detB`"), "{card}");

    // SHA256SUMS, checked by coreutils where it is installed, else by hand.
    let sums = fs_err::read_to_string(dest.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 11);
    let status = std::process::Command::new("sha256sum")
        .args(["--check", "--quiet", "--strict", "SHA256SUMS"])
        .current_dir(&dest)
        .status();
    match status {
        Ok(status) => assert!(status.success(), "sha256sum -c failed"),
        Err(_) => eprintln!("sha256sum not installed: checked by publish_check.py only"),
    }

    let croissant: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(dest.join("croissant.json")).unwrap())
            .unwrap();
    assert_eq!(
        croissant["conformsTo"],
        "http://mlcommons.org/croissant/1.0"
    );
    assert_eq!(
        croissant["distribution"][0]["includes"],
        "data/detA/*.parquet"
    );
    assert_eq!(
        croissant["url"],
        "https://huggingface.co/datasets/someone/refcocog-proposals"
    );
    let fields = croissant["recordSet"][1]["field"].as_array().unwrap();
    let proposals = fields
        .iter()
        .find(|f| f["@id"] == "detA/proposals")
        .unwrap();
    assert_eq!(proposals["repeated"], true);
    assert_eq!(proposals["subField"][4]["@id"], "detA/proposals/score");
    assert_eq!(proposals["subField"][4]["dataType"], "cr:Float32");
}

#[test]
fn refuses_a_non_empty_destination() {
    let dir = tempfile::tempdir().unwrap();
    output_fixture::hand_made(&dir.path().join("out"));
    let dest = dir.path().join("hub");
    fs_err::create_dir_all(&dest).unwrap();
    fs_err::write(dest.join("keep.txt"), "mine").unwrap();
    let err =
        publish::publish(&dir.path().join("out"), &dest, &PublishOptions::default()).unwrap_err();
    assert!(matches!(err, PublishError::NotEmpty { .. }), "{err}");
    assert_eq!(
        fs_err::read_to_string(dest.join("keep.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn real_clients_read_the_folder() {
    let Some(python) = output_fixture::python() else {
        return;
    };
    for build in ["hand-made", "random"] {
        let dir = tempfile::tempdir().unwrap();
        let dest = if build == "hand-made" {
            published(dir.path())
        } else {
            output_fixture::random(&dir.path().join("out"), 3, &["yolov8x", "frcnn"]);
            let dest = dir.path().join("hub");
            publish::publish(&dir.path().join("out"), &dest, &PublishOptions::default()).unwrap();
            dest
        };
        let cache = dir.path().join("hf-cache");
        let out = output_fixture::run_python(
            &python,
            "publish_check.py",
            &[dest.as_os_str(), cache.as_os_str()],
        );
        eprintln!("{build}:\n{out}");
    }
}
