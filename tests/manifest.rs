//! `data-manifest.toml`: unknown keys, missing files, SHA-256 check, path resolution, and the
//! repository's own manifest.

use std::path::{Path, PathBuf};

use refaug::dataset::{self, DatasetError, DatasetKind, SplitBy};
use refaug::manifest::{Device, Manifest, ManifestError, RunDefaults};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn expected_sha(name: &str) -> String {
    let text = std::fs::read_to_string(repo().join("sample/refcocog/expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["sources"][name]["sha256"].as_str().unwrap().to_string()
}

/// A temp dir with `data/annotations` (a copy of the sample's), `data/images` (empty: the manifest
/// does not look inside) and `detectors/a.toml`, `detectors/b.toml` (dummy spec files).
fn workspace() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let ann = tmp.path().join("data/annotations");
    std::fs::create_dir_all(&ann).unwrap();
    for f in ["instances.json", "refs(umd).p"] {
        std::fs::copy(
            repo().join("sample/refcocog/annotations").join(f),
            ann.join(f),
        )
        .unwrap();
    }
    std::fs::create_dir_all(tmp.path().join("data/images")).unwrap();
    std::fs::create_dir_all(tmp.path().join("detectors")).unwrap();
    for f in ["a.toml", "b.toml"] {
        std::fs::write(tmp.path().join("detectors").join(f), "# dummy\n").unwrap();
    }
    tmp
}

const DATASET: &str = "[dataset]\nkind = \"refcocog\"\nsplit_by = \"umd\"\nannotations = \"data/annotations\"\nimages = \"data/images\"\n";
const REST: &str = "[[variant]]\nname = \"a\"\ndetector = \"detectors/a.toml\"\n\n[[variant]]\nname = \"b-2_x\"\ndetector = \"detectors/b.toml\"\n\n[output]\ndir = \"out\"\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn load_err(dir: &Path, text: &str) -> String {
    let path = write(dir, "m.toml", text);
    let err = Manifest::load(&path).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name the manifest: {msg}"
    );
    msg
}

#[test]
fn minimal_manifest_gets_defaults_and_resolved_paths() {
    let ws = workspace();
    let path = write(ws.path(), "m.toml", &format!("{DATASET}\n{REST}"));
    let m = Manifest::load(&path).unwrap();
    assert_eq!(m.path, path);
    assert_eq!(m.dataset.kind, DatasetKind::Refcocog);
    assert_eq!(m.dataset.split_by, SplitBy::Umd);
    assert_eq!(m.dataset.splits, ["train", "val", "test"]);
    assert_eq!(
        m.dataset.annotations_dir,
        ws.path().join("data/annotations")
    );
    assert_eq!(m.dataset.images_dir, ws.path().join("data/images"));
    assert_eq!(m.dataset.expected_sha256, Default::default());
    assert_eq!(
        m.variants
            .iter()
            .map(|v| (v.name.as_str(), v.detector.clone()))
            .collect::<Vec<_>>(),
        [
            ("a", ws.path().join("detectors/a.toml")),
            ("b-2_x", ws.path().join("detectors/b.toml"))
        ]
    );
    assert_eq!(m.output.dir, ws.path().join("out"));
    assert_eq!(
        m.run,
        RunDefaults {
            device: Device::Cpu,
            batch_size: 1,
            threads: 0
        }
    );
}

#[test]
fn paths_are_relative_to_the_manifest_not_the_working_directory() {
    let ws = workspace();
    let text = format!(
        "{}\n{}",
        DATASET.replace("\"data/", "\"../../data/"),
        REST.replace("\"detectors/", "\"../../detectors/")
            .replace("\"out\"", "\"../results\"")
    );
    let path = write(ws.path(), "conf/jobs/m.toml", &text);
    let m = Manifest::load(&path).unwrap();
    let base = ws.path().join("conf/jobs");
    assert_eq!(
        m.dataset.annotations_dir,
        base.join("../../data/annotations")
    );
    assert_eq!(m.output.dir, base.join("../results"));
    // The resolved paths work from anywhere: the test's working directory is the crate root.
    assert!(dataset::load(&m.dataset).is_ok());
}

#[test]
fn run_section_and_splits_are_read() {
    let ws = workspace();
    let text = format!(
        "{DATASET}splits = [\"val\", \"test\"]\n\n{REST}\n[run]\ndevice = \"cuda:1\"\nbatch_size = 8\nthreads = 3\n"
    );
    let m = Manifest::load(&write(ws.path(), "m.toml", &text)).unwrap();
    assert_eq!(m.dataset.splits, ["val", "test"]);
    assert_eq!(
        m.run,
        RunDefaults {
            device: Device::Cuda(1),
            batch_size: 8,
            threads: 3
        }
    );
    assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
    assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
}

#[test]
fn unknown_keys_are_refused_and_named() {
    let ws = workspace();
    let msg = load_err(ws.path(), &format!("{DATASET}image_dir = \"x\"\n\n{REST}"));
    assert!(msg.contains("unknown field `image_dir`"), "{msg}");
    let msg = load_err(
        ws.path(),
        &format!("{DATASET}\n{REST}\n[run]\ngpu = true\n"),
    );
    assert!(msg.contains("unknown field `gpu`"), "{msg}");
    let msg = load_err(ws.path(), &format!("{DATASET}\n{REST}\n[extras]\nx = 1\n"));
    assert!(msg.contains("unknown field `extras`"), "{msg}");
    let msg = load_err(
        ws.path(),
        &format!(
            "{DATASET}\n[dataset.sha256]\ninstance = \"{}\"\n\n{REST}",
            "0".repeat(64)
        ),
    );
    assert!(msg.contains("unknown field `instance`"), "{msg}");
}

#[test]
fn bad_values_are_refused_and_named() {
    let ws = workspace();
    let cases = [
        (
            DATASET.replace("refcocog", "refcocoh"),
            REST.to_string(),
            "unknown variant `refcocoh`",
        ),
        (
            DATASET.replace("\"umd\"", "\"unc\""),
            REST.to_string(),
            "dataset.split_by = \"unc\": refcocog is split by umd, google",
        ),
        (
            format!("{DATASET}splits = [\"testA\"]\n"),
            REST.to_string(),
            "dataset.splits = \"testA\": not a split of refcocog split by umd (it has train, val, test)",
        ),
        (
            format!("{DATASET}splits = [\"val\", \"val\"]\n"),
            REST.to_string(),
            "dataset.splits = \"val\": is listed twice",
        ),
        (
            format!("{DATASET}splits = []\n"),
            REST.to_string(),
            "dataset.splits = []",
        ),
        (
            format!("{DATASET}[dataset.sha256]\nrefs = \"abc\"\n"),
            REST.to_string(),
            "dataset.sha256.refs = \"abc\": is not a SHA-256 digest",
        ),
        (
            DATASET.to_string(),
            REST.replace("\"b-2_x\"", "\"B x\""),
            "variant[1].name = \"B x\": must match [a-z0-9_-]+",
        ),
        (
            DATASET.to_string(),
            REST.replace("\"b-2_x\"", "\"a\""),
            "variant[1].name = \"a\": is used by an earlier variant",
        ),
        (
            DATASET.to_string(),
            REST.replace("\"b-2_x\"", "\"report\""),
            "variant[1].name = \"report\": names a folder refaug writes beside the variants",
        ),
        (
            DATASET.to_string(),
            format!("{REST}[run]\ndevice = \"gpu\"\n"),
            "run.device = \"gpu\": invalid device `gpu`",
        ),
        (
            DATASET.to_string(),
            format!("{REST}[run]\nbatch_size = 0\n"),
            "run.batch_size = 0: must be at least 1",
        ),
        (
            DATASET.to_string(),
            "[output]\ndir = \"out\"\n".to_string(),
            "missing [[variant]]",
        ),
        (
            DATASET.to_string(),
            REST.replace("[output]\ndir = \"out\"\n", ""),
            "missing [output]",
        ),
    ];
    for (dataset_part, rest, want) in cases {
        let msg = load_err(ws.path(), &format!("{dataset_part}\n{rest}"));
        assert!(msg.contains(want), "want {want:?} in: {msg}");
    }
}

#[test]
fn missing_files_are_named() {
    let ws = workspace();
    let base = format!("{DATASET}\n{REST}");
    // (what to remove, the words the error must contain)
    let cases = [
        (
            "data/annotations/refs(umd).p",
            "data/annotations/refs(umd).p does not exist",
        ),
        (
            "data/annotations/instances.json",
            "data/annotations/instances.json does not exist",
        ),
        ("data/images", "dataset.images: folder"),
        ("detectors/b.toml", "variant.detector: detector spec file"),
    ];
    for (remove, want) in cases {
        let ws = workspace();
        let victim = ws.path().join(remove);
        if victim.is_dir() {
            std::fs::remove_dir(&victim).unwrap();
        } else {
            std::fs::remove_file(&victim).unwrap();
        }
        let msg = load_err(ws.path(), &base);
        assert!(msg.contains(want), "want {want:?} in: {msg}");
        assert!(msg.contains(&victim.display().to_string()), "{msg}");
    }
    let msg = load_err(ws.path(), &base.replace("data/annotations", "data/nowhere"));
    assert!(msg.contains("data/nowhere does not exist"), "{msg}");
    let err = Manifest::load(&ws.path().join("absent.toml")).unwrap_err();
    assert!(matches!(err, ManifestError::Io(_)));
    assert!(err.to_string().contains("absent.toml"), "{err}");
}

#[test]
fn dataset_only_loading_does_not_need_the_detector_specs() {
    let ws = workspace();
    let text = format!(
        "{DATASET}\n{}",
        REST.replace("detectors/a.toml", "detectors/none.toml")
    );
    let path = write(ws.path(), "m.toml", &text);
    assert!(matches!(
        Manifest::load(&path),
        Err(ManifestError::MissingPath { .. })
    ));
    let source = Manifest::load_dataset_only(&path).unwrap();
    assert_eq!(source.annotations_dir, ws.path().join("data/annotations"));
    // Unknown keys are still refused.
    let path = write(ws.path(), "m2.toml", &format!("{text}\n[run]\nspeed = 3\n"));
    let err = Manifest::load_dataset_only(&path).unwrap_err();
    assert!(err.to_string().contains("unknown field `speed`"), "{err}");
}

#[test]
fn sha256_given_in_the_manifest_is_checked_when_loading() {
    let ws = workspace();
    let good = format!(
        "{DATASET}\n[dataset.sha256]\ninstances = \"{}\"\nrefs = \"{}\"\n\n{REST}",
        expected_sha("instances").to_uppercase(),
        expected_sha("refs")
    );
    let m = Manifest::load(&write(ws.path(), "m.toml", &good)).unwrap();
    assert_eq!(
        m.dataset.expected_sha256.instances,
        Some(expected_sha("instances"))
    );
    dataset::load(&m.dataset).unwrap();

    let wrong = "1".repeat(64);
    let bad = format!("{DATASET}\n[dataset.sha256]\nrefs = \"{wrong}\"\n\n{REST}");
    let m = Manifest::load(&write(ws.path(), "m.toml", &bad)).unwrap();
    let err = dataset::load(&m.dataset).unwrap_err();
    assert!(matches!(err, DatasetError::Sha256Mismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("refs(umd).p"), "{msg}");
    assert!(
        msg.contains(&wrong) && msg.contains(&expected_sha("refs")),
        "{msg}"
    );
}

#[test]
fn repository_manifest_parses_and_points_at_the_sample() {
    let path = repo().join("data-manifest.toml");
    let source = Manifest::load_dataset_only(&path).unwrap();
    assert_eq!(source.kind, DatasetKind::Refcocog);
    assert_eq!(source.split_by, SplitBy::Umd);
    assert_eq!(
        source.annotations_dir,
        repo().join("sample/refcocog/annotations")
    );
    assert_eq!(source.images_dir, repo().join("sample/refcocog/images"));
    // Its digests are the sample's (re-run tools/make_sample.py, then update them if this fails).
    assert_eq!(
        source.expected_sha256.instances,
        Some(expected_sha("instances"))
    );
    assert_eq!(source.expected_sha256.refs, Some(expected_sha("refs")));
    dataset::load(&source).unwrap();
}

#[test]
fn repository_manifest_loads_whole_with_its_three_variants() {
    // The detector specs live elsewhere in the repository; a copy of the manifest next to dummy
    // specs and a link to the sample checks the rest of it.
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("data-manifest.toml")).unwrap();
    let path = write(tmp.path(), "data-manifest.toml", &text);
    std::os::unix::fs::symlink(repo().join("sample"), tmp.path().join("sample")).unwrap();
    for f in [
        "fixture-ultralytics.toml",
        "fixture-detr.toml",
        "fixture-torchvision.toml",
    ] {
        write(tmp.path(), &format!("detectors/{f}"), "# dummy\n");
    }
    write(tmp.path(), "encoders/fixture-clip.toml", "# dummy\n");
    let m = Manifest::load(&path).unwrap();
    assert_eq!(
        m.embed.as_ref().map(|e| e.encoder.clone()),
        Some(tmp.path().join("encoders/fixture-clip.toml"))
    );
    assert_eq!(
        m.variants
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        ["yolo", "detr", "fasterrcnn"]
    );
    assert_eq!(
        m.variants[1].detector,
        tmp.path().join("detectors/fixture-detr.toml")
    );
    assert_eq!(m.output.dir, tmp.path().join("out/sample"));
    assert_eq!(
        m.run,
        RunDefaults {
            device: Device::Cpu,
            batch_size: 4,
            threads: 0
        }
    );
}
