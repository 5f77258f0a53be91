//! The dataset reader against the bundled sample (expected values from `tools/make_sample.py`'s
//! `expected.json`), Python-2-style and hostile pickles, one test per validation problem on mutated
//! copies of the sample, and `refaug inspect` end to end.

use std::path::{Path, PathBuf};
use std::process::Command;

use refaug::dataset::{
    self, DatasetError, DatasetKind, DatasetSource, ExpectedSha256, Problem, ProblemKind, SplitBy,
    Summary,
};
use serde_json::Value;

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample/refcocog")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(sample_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn source(root: &Path, kind: DatasetKind, split_by: SplitBy) -> DatasetSource {
    DatasetSource {
        kind,
        split_by,
        annotations_dir: root.join("annotations"),
        images_dir: root.join("images"),
        splits: vec![],
        expected_sha256: ExpectedSha256::default(),
    }
}

fn umd(root: &Path) -> DatasetSource {
    source(root, DatasetKind::Refcocog, SplitBy::Umd)
}

/// A copy of the sample in a temp dir, to mutate.
fn sample_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&sample_dir(), tmp.path());
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn read_instances(root: &Path) -> Value {
    let text = std::fs::read_to_string(root.join("annotations/instances.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn write_instances(root: &Path, v: &Value) {
    std::fs::write(
        root.join("annotations/instances.json"),
        serde_json::to_vec(v).unwrap(),
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// A Python 2 pickler for test fixtures: protocol 2, opcodes as CPython 2.7's cPickle wrote them
// (byte strings SHORT_BINSTRING / BINSTRING, unicode BINUNICODE, BINPUT after each container and
// string). With `py3_bytes`, byte strings are written the way Python 3 pickles `bytes` at
// protocol 2: `_codecs.encode(<latin-1 text>, 'latin1')`.

enum Py {
    Int(i64),
    Bytes(Vec<u8>),
    Unicode(String),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

struct Pickler {
    out: Vec<u8>,
    memo: u32,
    py3_bytes: bool,
}

impl Pickler {
    fn dump(v: &Py, py3_bytes: bool) -> Vec<u8> {
        let mut p = Pickler {
            out: vec![0x80, 2],
            memo: 0,
            py3_bytes,
        };
        p.value(v);
        p.out.push(b'.');
        p.out
    }

    fn put(&mut self) {
        if self.memo < 256 {
            self.out.extend([b'q', self.memo as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend(self.memo.to_le_bytes());
        }
        self.memo += 1;
    }

    fn unicode(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend(s.as_bytes());
        self.put();
    }

    fn value(&mut self, v: &Py) {
        match v {
            Py::Int(i) if (0..=0xff).contains(i) => self.out.extend([b'K', *i as u8]),
            Py::Int(i) if (0..=0xffff).contains(i) => {
                self.out.push(b'M');
                self.out.extend((*i as u16).to_le_bytes());
            }
            Py::Int(i) => {
                self.out.push(b'J');
                self.out.extend((*i as i32).to_le_bytes());
            }
            Py::Bytes(b) if self.py3_bytes => {
                self.out.extend(b"c_codecs\nencode\n");
                self.put();
                let latin1: String = b.iter().map(|&c| c as char).collect();
                self.unicode(&latin1);
                self.unicode("latin1");
                self.out.push(0x86); // TUPLE2
                self.put();
                self.out.push(b'R');
                self.put();
            }
            Py::Bytes(b) if b.len() < 256 => {
                self.out.extend([b'U', b.len() as u8]);
                self.out.extend(b);
                self.put();
            }
            Py::Bytes(b) => {
                self.out.push(b'T');
                self.out.extend((b.len() as i32).to_le_bytes());
                self.out.extend(b);
                self.put();
            }
            Py::Unicode(s) => self.unicode(s),
            Py::List(items) => {
                self.out.push(b']');
                self.put();
                match items.len() {
                    0 => {}
                    1 => {
                        self.value(&items[0]);
                        self.out.push(b'a');
                    }
                    _ => {
                        self.out.push(b'(');
                        items.iter().for_each(|i| self.value(i));
                        self.out.push(b'e');
                    }
                }
            }
            Py::Dict(items) => {
                self.out.push(b'}');
                self.put();
                self.out.push(b'(');
                for (k, v) in items {
                    self.value(k);
                    self.value(v);
                }
                self.out.push(b'u');
            }
        }
    }
}

fn key(k: &str) -> Py {
    Py::Bytes(k.as_bytes().to_vec())
}

/// Python 2's view of a text: `str` (bytes) when ASCII, else `unicode`.
fn text(s: &str) -> Py {
    if s.is_ascii() {
        Py::Bytes(s.as_bytes().to_vec())
    } else {
        Py::Unicode(s.to_string())
    }
}

/// A ref dict in the real layout (including the suffixed `file_name` that names no file).
fn ref_dict(
    ref_id: i64,
    ann_id: i64,
    image_id: i64,
    category_id: i64,
    split: Py,
    sentences: Vec<(i64, Py, Py, Vec<Py>)>,
) -> Py {
    let sent_ids = sentences.iter().map(|s| Py::Int(s.0)).collect();
    let sentences = sentences
        .into_iter()
        .map(|(sent_id, sent, raw, tokens)| {
            Py::Dict(vec![
                (key("tokens"), Py::List(tokens)),
                (key("raw"), raw),
                (key("sent_id"), Py::Int(sent_id)),
                (key("sent"), sent),
            ])
        })
        .collect();
    Py::Dict(vec![
        (key("sent_ids"), Py::List(sent_ids)),
        (
            key("file_name"),
            text(&format!("COCO_train2014_{image_id:012}_{ann_id}.jpg")),
        ),
        (key("ann_id"), Py::Int(ann_id)),
        (key("ref_id"), Py::Int(ref_id)),
        (key("image_id"), Py::Int(image_id)),
        (key("split"), split),
        (key("sentences"), Py::List(sentences)),
        (key("category_id"), Py::Int(category_id)),
    ])
}

/// The sample's refs rebuilt from expected.json (so that tests can change them), as Python 2 had them.
fn sample_refs(mutate: impl Fn(&mut Value)) -> Vec<Py> {
    let mut refs = expected()["refs"].clone();
    for r in refs.as_array_mut().unwrap() {
        mutate(r);
    }
    refs.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let sentences = r["sentences"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["sent_id"].as_i64().unwrap(),
                        text(s["sent"].as_str().unwrap()),
                        text(s["raw"].as_str().unwrap()),
                        s["tokens"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|t| text(t.as_str().unwrap()))
                            .collect(),
                    )
                })
                .collect();
            ref_dict(
                r["ref_id"].as_i64().unwrap(),
                r["ann_id"].as_i64().unwrap(),
                r["image_id"].as_i64().unwrap(),
                r["category_id"].as_i64().unwrap(),
                text(r["split"].as_str().unwrap()),
                sentences,
            )
        })
        .collect()
}

fn write_refs(root: &Path, split_by: &str, refs: Vec<Py>, py3_bytes: bool) {
    std::fs::write(
        root.join(format!("annotations/refs({split_by}).p")),
        Pickler::dump(&Py::List(refs), py3_bytes),
    )
    .unwrap();
}

fn invalid(result: Result<dataset::Dataset, DatasetError>) -> Vec<Problem> {
    match result {
        Err(DatasetError::Invalid { problems }) => problems,
        Err(e) => panic!("expected structural problems, got: {e}"),
        Ok(_) => panic!("expected structural problems, the source loaded"),
    }
}

fn ref_in(split: &str) -> Value {
    expected()["refs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["split"] == split)
        .unwrap()
        .clone()
}

// ---------------------------------------------------------------------------------------------
// The bundled sample.

#[test]
fn sample_reads_as_expected() {
    let exp = expected();
    let d = dataset::load(&umd(&sample_dir())).unwrap();
    assert_eq!(d.kind, DatasetKind::Refcocog);
    assert_eq!(d.split_by, "umd");
    assert_eq!(d.categories.len(), 80);
    assert_eq!(d.categories[&90], "toothbrush");
    assert_eq!(d.categories[&1], "person");

    // Images: the used ones, in instances.json order.
    let want_images = exp["images_in_order"].as_array().unwrap();
    assert_eq!(d.images.len(), want_images.len());
    for (got, want) in d.images.iter().zip(want_images) {
        assert_eq!(got.image_id, want["image_id"].as_i64().unwrap());
        assert_eq!(got.file_name, want["file_name"].as_str().unwrap());
        assert_eq!(got.width as u64, want["width"].as_u64().unwrap());
        assert_eq!(got.height as u64, want["height"].as_u64().unwrap());
    }
    for unused in exp["unused_image_ids"].as_array().unwrap() {
        assert!(
            d.images
                .iter()
                .all(|i| i.image_id != unused.as_i64().unwrap())
        );
    }

    // Refs: pickle order, every field, the ground truth as xyxy (f64 in Python, stored as f32).
    let want_refs = exp["refs"].as_array().unwrap();
    assert_eq!(d.refs.len(), want_refs.len());
    for (got, want) in d.refs.iter().zip(want_refs) {
        assert_eq!(got.ref_id, want["ref_id"].as_i64().unwrap());
        assert_eq!(got.ann_id, want["ann_id"].as_i64().unwrap());
        assert_eq!(got.image_id, want["image_id"].as_i64().unwrap());
        assert_eq!(got.category_id, want["category_id"].as_i64().unwrap());
        assert_eq!(got.split, want["split"].as_str().unwrap());
        let b: Vec<f32> = want["gt_box_xyxy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(
            [
                got.gt_box.xmin,
                got.gt_box.ymin,
                got.gt_box.xmax,
                got.gt_box.ymax
            ],
            [b[0], b[1], b[2], b[3]],
            "ref_id {}",
            got.ref_id
        );
        let want_sents = want["sentences"].as_array().unwrap();
        assert_eq!(got.sentences.len(), want_sents.len());
        for (gs, ws) in got.sentences.iter().zip(want_sents) {
            assert_eq!(gs.sent_id, ws["sent_id"].as_i64().unwrap());
            assert_eq!(gs.sent, ws["sent"].as_str().unwrap());
            assert_eq!(gs.raw, ws["raw"].as_str().unwrap());
            let tokens: Vec<&str> = ws["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            assert_eq!(gs.tokens, tokens);
        }
    }
    // The sample holds BINUNICODE sentences next to byte strings.
    let all: Vec<&str> = d
        .refs
        .iter()
        .flat_map(|r| r.sentences.iter().map(|s| s.sent.as_str()))
        .collect();
    assert!(all.contains(&"the café table near the window"));

    // Counts per split and total.
    let splits: Vec<String> = ["train", "val", "test"].map(String::from).to_vec();
    let summary = Summary::of(&d, &splits);
    for row in summary.splits.iter().chain([&summary.total]) {
        let want = if row.split == "total" {
            &exp["total"]
        } else {
            &exp["splits"][&row.split]
        };
        for (field, got) in [
            ("images", row.images),
            ("refs", row.refs),
            ("sentences", row.sentences),
            ("categories", row.categories),
        ] {
            assert_eq!(
                got as u64,
                want[field].as_u64().unwrap(),
                "{} {field}",
                row.split
            );
        }
    }

    // Provenance: size and SHA-256 of the bytes parsed, as the generator computed them.
    for (got, name) in [
        (&d.sources.instances, "instances"),
        (&d.sources.refs, "refs"),
    ] {
        assert_eq!(got.size, exp["sources"][name]["size"].as_u64().unwrap());
        assert_eq!(got.sha256, exp["sources"][name]["sha256"].as_str().unwrap());
    }
    assert_eq!(
        d.sources.refs.path,
        sample_dir().join("annotations/refs(umd).p")
    );

    assert_eq!(
        dataset::check_images(
            &d,
            dataset::ImageCheck::Metadata,
            &refaug::decode::Limits::default()
        ),
        vec![]
    );
}

#[test]
fn selected_splits_keep_their_refs_and_images_only() {
    let exp = expected();
    let mut src = umd(&sample_dir());
    src.splits = vec!["val".into()];
    let d = dataset::load(&src).unwrap();
    assert!(d.refs.iter().all(|r| r.split == "val"));
    assert_eq!(
        d.refs.len() as u64,
        exp["splits"]["val"]["refs"].as_u64().unwrap()
    );
    assert_eq!(
        d.images.len() as u64,
        exp["splits"]["val"]["images"].as_u64().unwrap()
    );
    // Still in instances.json order.
    let order: Vec<i64> = exp["images_in_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image_id"].as_i64().unwrap())
        .filter(|id| d.refs.iter().any(|r| r.image_id == *id))
        .collect();
    assert_eq!(
        d.images.iter().map(|i| i.image_id).collect::<Vec<_>>(),
        order
    );
}

#[test]
fn unknown_selected_split_is_refused() {
    let mut src = umd(&sample_dir());
    src.splits = vec!["testA".into()];
    let err = dataset::load(&src).unwrap_err();
    assert!(
        matches!(err, DatasetError::UnknownSelectedSplit { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("\"testA\""), "{err}");
}

#[test]
fn split_by_of_another_kind_is_refused() {
    let err = dataset::load(&source(
        &sample_dir(),
        DatasetKind::RefcocoPlus,
        SplitBy::Umd,
    ))
    .unwrap_err();
    assert!(
        matches!(err, DatasetError::SplitByNotOfKind { .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Pickles.

#[test]
fn python2_byte_strings_binstring_and_unicode_are_read() {
    let tmp = sample_copy();
    let r = ref_in("train");
    let long = "a very long sentence ".repeat(15); // >= 256 bytes: BINSTRING
    let refs = vec![ref_dict(
        r["ref_id"].as_i64().unwrap(),
        r["ann_id"].as_i64().unwrap(),
        r["image_id"].as_i64().unwrap(),
        r["category_id"].as_i64().unwrap(),
        Py::Unicode("train".into()),
        vec![
            (
                900,
                Py::Bytes(b"the red one".to_vec()),
                Py::Unicode("The red one".into()),
                vec![key("the"), Py::Unicode("red".into()), key("one")],
            ),
            (
                901,
                Py::Unicode("naïve café".into()),
                Py::Bytes("naïve café".as_bytes().to_vec()), // UTF-8 bytes in a Python 2 str
                vec![
                    Py::Unicode("naïve".into()),
                    Py::Bytes("café".as_bytes().to_vec()),
                ],
            ),
            (902, Py::Bytes(long.clone().into_bytes()), text("x"), vec![]),
        ],
    )];
    write_refs(tmp.path(), "umd", refs, false);
    let d = dataset::load(&umd(tmp.path())).unwrap();
    assert_eq!(d.refs.len(), 1);
    let s = &d.refs[0].sentences;
    assert_eq!(
        (s[0].sent.as_str(), s[0].raw.as_str()),
        ("the red one", "The red one")
    );
    assert_eq!(s[0].tokens, ["the", "red", "one"]);
    assert_eq!(
        (s[1].sent.as_str(), s[1].raw.as_str()),
        ("naïve café", "naïve café")
    );
    assert_eq!(s[1].tokens, ["naïve", "café"]);
    assert_eq!(s[2].sent, long);
    assert!(s[2].tokens.is_empty());
    assert_eq!(d.images.len(), 1);
}

#[test]
fn python3_protocol2_bytes_via_codecs_encode_are_read() {
    let tmp = sample_copy();
    write_refs(tmp.path(), "umd", sample_refs(|_| {}), true);
    let pickle = std::fs::read(tmp.path().join("annotations/refs(umd).p")).unwrap();
    assert!(pickle.windows(16).any(|w| w == b"c_codecs\nencode\n"));
    let from_py3 = dataset::load(&umd(tmp.path())).unwrap();
    let original = dataset::load(&umd(&sample_dir())).unwrap();
    assert_eq!(from_py3.refs, original.refs);
}

/// `pickle.loads` of this runs `os.system("touch <marker>")` in Python.
fn system_pickle(marker: &Path) -> Vec<u8> {
    let cmd = format!("touch {}", marker.display());
    let mut p = b"\x80\x02cposix\nsystem\nq\x00X".to_vec();
    p.extend((cmd.len() as u32).to_le_bytes());
    p.extend(cmd.as_bytes());
    p.extend(b"q\x01\x85q\x02Rq\x03.");
    p
}

#[test]
fn pickle_calling_os_system_is_refused_and_runs_nothing() {
    let tmp = sample_copy();
    let marker = tmp.path().join("pwned");
    std::fs::write(
        tmp.path().join("annotations/refs(umd).p"),
        system_pickle(&marker),
    )
    .unwrap();
    let err = dataset::load(&umd(tmp.path())).unwrap_err();
    assert!(
        matches!(err, DatasetError::PickleNotData { offset: 2, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("refs(umd).p"), "{msg}");
    assert!(msg.contains("`posix.system`"), "{msg}");
    assert!(!marker.exists());
}

#[test]
fn pickle_with_a_call_inside_a_ref_is_refused() {
    // [{'ref_id': posix.system('touch <marker>')}]: the call hides inside the data.
    let tmp = sample_copy();
    let marker = tmp.path().join("pwned");
    let inner = system_pickle(&marker);
    let mut p = b"\x80\x02]q\x00}q\x01U\x06ref_idq\x02".to_vec();
    p.extend(&inner[2..inner.len() - 1]); // the call without PROTO and STOP
    p.extend(b"sa.");
    std::fs::write(tmp.path().join("annotations/refs(umd).p"), p).unwrap();
    let err = dataset::load(&umd(tmp.path())).unwrap_err();
    assert!(err.to_string().contains("`posix.system`"), "{err}");
    assert!(!marker.exists());
}

#[test]
fn protocol4_stack_global_is_refused() {
    // Python 3.11: pickle.dumps(E(), protocol=4) with E.__reduce__ = lambda self: (os.system, ("true",)).
    let tmp = sample_copy();
    let p = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.";
    std::fs::write(tmp.path().join("annotations/refs(umd).p"), p).unwrap();
    let err = dataset::load(&umd(tmp.path())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`posix.system` (STACK_GLOBAL)"), "{msg}");
}

#[test]
fn invalid_utf8_names_the_ref_and_field() {
    let tmp = sample_copy();
    let r = ref_in("val");
    let ref_id = r["ref_id"].as_i64().unwrap();
    let refs = vec![ref_dict(
        ref_id,
        r["ann_id"].as_i64().unwrap(),
        r["image_id"].as_i64().unwrap(),
        r["category_id"].as_i64().unwrap(),
        key("val"),
        vec![(
            5,
            key("fine"),
            key("Fine"),
            vec![key("fine"), Py::Bytes(b"caf\xe9".to_vec())],
        )],
    )];
    write_refs(tmp.path(), "umd", refs, false);
    let problems = invalid(dataset::load(&umd(tmp.path())));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind(), ProblemKind::InvalidUtf8);
    let msg = problems[0].to_string();
    assert!(msg.contains(&format!("ref_id {ref_id}")), "{msg}");
    assert!(msg.contains("sentences[0].tokens[1]"), "{msg}");
}

#[test]
fn a_ref_of_the_wrong_shape_is_named() {
    let tmp = sample_copy();
    let refs = vec![Py::Dict(vec![
        (key("ref_id"), Py::Int(77)),
        (key("split"), key("train")),
    ])];
    write_refs(tmp.path(), "umd", refs, false);
    let err = dataset::load(&umd(tmp.path())).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::PickleRecord {
                index: 0,
                ref_id: Some(77),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("missing field"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Validation: one mutation each; every message names the file and the record.

#[test]
fn missing_annotation_is_named() {
    let tmp = sample_copy();
    let r = ref_in("train");
    let ann_id = r["ann_id"].as_i64().unwrap();
    let mut inst = read_instances(tmp.path());
    inst["annotations"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["id"].as_i64() != Some(ann_id));
    write_instances(tmp.path(), &inst);
    let problems = invalid(dataset::load(&umd(tmp.path())));
    assert_eq!(problems.len(), 1, "{problems:?}");
    let msg = problems[0].to_string();
    assert!(msg.contains(&format!("ref_id {}:", r["ref_id"])), "{msg}");
    assert!(msg.contains(&format!("ann_id {ann_id} ")), "{msg}");
    assert!(msg.contains("instances.json"), "{msg}");
}

#[test]
fn missing_image_record_is_named_for_every_ref_of_it() {
    let tmp = sample_copy();
    let r = ref_in("test");
    let image_id = r["image_id"].as_i64().unwrap();
    let refs_of_image: Vec<i64> = expected()["refs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["image_id"].as_i64() == Some(image_id))
        .map(|x| x["ref_id"].as_i64().unwrap())
        .collect();
    let mut inst = read_instances(tmp.path());
    inst["images"]
        .as_array_mut()
        .unwrap()
        .retain(|i| i["id"].as_i64() != Some(image_id));
    write_instances(tmp.path(), &inst);
    let problems = invalid(dataset::load(&umd(tmp.path())));
    assert_eq!(problems.len(), refs_of_image.len(), "{problems:?}");
    for (p, ref_id) in problems.iter().zip(&refs_of_image) {
        assert_eq!(p.kind(), ProblemKind::MissingImageRecord);
        let msg = p.to_string();
        assert!(msg.contains(&format!("ref_id {ref_id}:")), "{msg}");
        assert!(msg.contains(&format!("image_id {image_id} ")), "{msg}");
    }
}

#[test]
fn absent_image_file_is_a_non_fatal_problem() {
    let tmp = sample_copy();
    let exp = expected();
    let victim = &exp["images_in_order"][3];
    let path = tmp
        .path()
        .join("images")
        .join(victim["file_name"].as_str().unwrap());
    std::fs::remove_file(&path).unwrap();
    let d = dataset::load(&umd(tmp.path())).unwrap();
    let problems = dataset::check_images(
        &d,
        dataset::ImageCheck::Metadata,
        &refaug::decode::Limits::default(),
    );
    assert_eq!(
        problems,
        vec![Problem::MissingImageFile {
            path: path.clone(),
            image_id: victim["image_id"].as_i64().unwrap()
        }]
    );
    assert!(!problems[0].is_fatal());
    let msg = problems[0].to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("image_id"),
        "{msg}"
    );
}

#[test]
fn image_file_that_is_a_folder_is_unreadable() {
    let tmp = sample_copy();
    let name = expected()["images_in_order"][0]["file_name"]
        .as_str()
        .unwrap()
        .to_string();
    let path = tmp.path().join("images").join(&name);
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let d = dataset::load(&umd(tmp.path())).unwrap();
    let problems = dataset::check_images(
        &d,
        dataset::ImageCheck::Metadata,
        &refaug::decode::Limits::default(),
    );
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].kind(), ProblemKind::UnreadableImageFile);
}

fn with_file_name(file_name: &str) -> Vec<Problem> {
    let tmp = sample_copy();
    let mut inst = read_instances(tmp.path());
    inst["images"][0]["file_name"] = file_name.into();
    write_instances(tmp.path(), &inst);
    invalid(dataset::load(&umd(tmp.path())))
}

#[test]
fn file_name_escaping_with_dotdot_is_refused() {
    let image_id = read_instances(&sample_dir())["images"][0]["id"]
        .as_i64()
        .unwrap();
    let problems = with_file_name("../../etc/COCO_train2014_000000000009.jpg");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind(), ProblemKind::UnsafeFileName);
    let msg = problems[0].to_string();
    assert!(
        msg.contains(&format!("image_id {image_id}:")) && msg.contains("`..`"),
        "{msg}"
    );
}

#[test]
fn absolute_file_name_is_refused() {
    let problems = with_file_name("/etc/passwd");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind(), ProblemKind::UnsafeFileName);
    assert!(
        problems[0].to_string().contains("\"/etc/passwd\""),
        "{}",
        problems[0]
    );
}

#[test]
fn duplicate_image_and_annotation_ids_are_named() {
    let tmp = sample_copy();
    let mut inst = read_instances(tmp.path());
    let image = inst["images"][2].clone();
    let ann = inst["annotations"][5].clone();
    inst["images"].as_array_mut().unwrap().push(image.clone());
    inst["annotations"]
        .as_array_mut()
        .unwrap()
        .push(ann.clone());
    write_instances(tmp.path(), &inst);
    let msgs: Vec<String> = invalid(dataset::load(&umd(tmp.path())))
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].ends_with(&format!(
            "instances.json: duplicate image id {}",
            image["id"]
        )),
        "{msgs:?}"
    );
    assert!(
        msgs[1].ends_with(&format!(
            "instances.json: duplicate annotation id {}",
            ann["id"]
        )),
        "{msgs:?}"
    );
}

#[test]
fn duplicate_ref_and_sent_ids_are_named() {
    let tmp = sample_copy();
    let exp = expected();
    let first = exp["refs"][0]["ref_id"].as_i64().unwrap();
    let sent = exp["refs"][0]["sentences"][0]["sent_id"].as_i64().unwrap();
    // Ref #1 takes ref #0's ref_id, ref #2's first sentence takes ref #0's first sent_id.
    let second = exp["refs"][1]["ref_id"].clone();
    let third = exp["refs"][2]["ref_id"].clone();
    let refs = sample_refs(|r| {
        if r["ref_id"] == second {
            r["ref_id"] = first.into();
        }
        if r["ref_id"] == third {
            // (sent_ids are written from the sentences, so they stay consistent.)
            r["sentences"][0]["sent_id"] = sent.into();
        }
    });
    write_refs(tmp.path(), "umd", refs, false);
    let msgs: Vec<String> = invalid(dataset::load(&umd(tmp.path())))
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        msgs.iter()
            .map(|m| m.rsplit("refs(umd).p: ").next().unwrap())
            .collect::<Vec<_>>(),
        [
            format!("duplicate ref_id {first}"),
            format!("duplicate sent_id {sent}")
        ],
        "{msgs:?}"
    );
}

#[test]
fn unknown_split_is_named() {
    let tmp = sample_copy();
    let target = expected()["refs"][4]["ref_id"].clone();
    write_refs(
        tmp.path(),
        "umd",
        sample_refs(|r| {
            if r["ref_id"] == target {
                r["split"] = "testB".into();
            }
        }),
        false,
    );
    let problems = invalid(dataset::load(&umd(tmp.path())));
    assert_eq!(problems.len(), 1, "{problems:?}");
    let msg = problems[0].to_string();
    assert!(
        msg.contains(&format!("ref_id {target}: split \"testB\"")),
        "{msg}"
    );
    assert!(msg.contains("train, val, test"), "{msg}");
}

#[test]
fn ref_image_differing_from_its_annotation_is_named() {
    let tmp = sample_copy();
    let exp = expected();
    let r0 = &exp["refs"][0];
    let other_image = exp["images_in_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image_id"].clone())
        .find(|id| *id != r0["image_id"])
        .unwrap();
    let target = r0["ref_id"].clone();
    write_refs(
        tmp.path(),
        "umd",
        sample_refs(|r| {
            if r["ref_id"] == target {
                r["image_id"] = other_image.clone();
            }
        }),
        false,
    );
    let problems = invalid(dataset::load(&umd(tmp.path())));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind(), ProblemKind::ImageMismatch);
    assert!(
        problems[0]
            .to_string()
            .contains(&format!("ref_id {target}:"))
    );
}

#[test]
fn all_structural_problems_are_listed_together() {
    let tmp = sample_copy();
    let mut inst = read_instances(tmp.path());
    inst["images"][0]["file_name"] = "../x.jpg".into();
    let ann_id = ref_in("val")["ann_id"].as_i64().unwrap();
    inst["annotations"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["id"].as_i64() != Some(ann_id));
    write_instances(tmp.path(), &inst);
    let err = dataset::load(&umd(tmp.path())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("2 structural problems"), "{msg}");
    assert!(msg.contains("\"../x.jpg\""), "{msg}");
    assert!(msg.contains(&format!("ann_id {ann_id} ")), "{msg}");
}

#[test]
fn malformed_json_reports_line_and_column() {
    let tmp = sample_copy();
    std::fs::write(
        tmp.path().join("annotations/instances.json"),
        "{\"images\": [\n  {\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 2, \"height\": 2},\n  {\"id\": 2,, \"file_name\": \"b.jpg\"}\n]}\n",
    )
    .unwrap();
    let err = dataset::load(&umd(tmp.path())).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::Json { .. }), "{msg}");
    assert!(msg.contains("instances.json: malformed COCO JSON"), "{msg}");
    // The second comma of `  {"id": 2,,` is column 12 of line 3.
    assert!(msg.contains("line 3 column 12"), "{msg}");
}

#[test]
fn sha256_mismatch_names_the_file_and_both_digests() {
    let mut src = umd(&sample_dir());
    src.expected_sha256.refs = Some("ab".repeat(32));
    let err = dataset::load(&src).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("refs(umd).p: SHA-256 mismatch"), "{msg}");
    assert!(msg.contains(&"ab".repeat(32)), "{msg}");
    assert!(
        msg.contains(expected()["sources"]["refs"]["sha256"].as_str().unwrap()),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// Other kinds and split_bys.

#[test]
fn google_and_unc_split_names_are_accepted_for_their_kinds() {
    let cases: [(DatasetKind, SplitBy, &[&str]); 4] = [
        (DatasetKind::Refcocog, SplitBy::Google, &["train", "val"]),
        (
            DatasetKind::Refcoco,
            SplitBy::Unc,
            &["train", "val", "testA", "testB"],
        ),
        (
            DatasetKind::RefcocoPlus,
            SplitBy::Unc,
            &["train", "val", "testA", "testB"],
        ),
        (
            DatasetKind::Refcoco,
            SplitBy::Google,
            &["train", "val", "testA", "testB"],
        ),
    ];
    for (kind, split_by, names) in cases {
        let tmp = sample_copy();
        let n = names.len();
        // Spread the sample's refs over the split names, in turn.
        let refs = sample_refs(|r| {
            let i = r["ref_id"].as_u64().unwrap() as usize % n;
            r["split"] = names[i].into();
        });
        write_refs(tmp.path(), split_by.as_str(), refs, false);
        let d = dataset::load(&source(tmp.path(), kind, split_by))
            .unwrap_or_else(|e| panic!("{kind} {split_by}: {e}"));
        assert_eq!(d.split_by, split_by.as_str());
        assert_eq!(d.refs.len(), expected()["refs"].as_array().unwrap().len());
        let splits: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let summary = Summary::of(&d, &splits);
        assert!(summary.splits.iter().all(|s| s.refs > 0), "{summary:?}");
    }
}

#[test]
fn google_split_of_refcocog_has_no_test() {
    let tmp = sample_copy();
    // The sample's umd refs (train/val/test) under the google name.
    std::fs::copy(
        sample_dir().join("annotations/refs(umd).p"),
        tmp.path().join("annotations/refs(google).p"),
    )
    .unwrap();
    let problems = invalid(dataset::load(&source(
        tmp.path(),
        DatasetKind::Refcocog,
        SplitBy::Google,
    )));
    let n_test = expected()["splits"]["test"]["refs"].as_u64().unwrap() as usize;
    assert_eq!(problems.len(), n_test);
    assert!(
        problems
            .iter()
            .all(|p| p.kind() == ProblemKind::UnknownSplit)
    );
    assert!(problems[0].to_string().contains("refs(google).p"));
}

// ---------------------------------------------------------------------------------------------
// `refaug inspect` end to end.

fn write_manifest(dir: &Path, data_root: &Path) -> PathBuf {
    let path = dir.join("m.toml");
    std::fs::write(
        &path,
        format!(
            "[dataset]\nkind = \"refcocog\"\nsplit_by = \"umd\"\nannotations = {:?}\nimages = {:?}\n\n\
             [[variant]]\nname = \"x\"\ndetector = \"missing-on-purpose.toml\"\n\n[output]\ndir = \"out\"\n",
            data_root.join("annotations"),
            data_root.join("images"),
        ),
    )
    .unwrap();
    path
}

fn inspect(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_refaug"))
        .arg("inspect")
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn inspect_prints_the_counts_table_and_a_healthy_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = write_manifest(tmp.path(), &sample_dir());
    let (code, stdout, stderr) = inspect(&["--manifest", manifest.to_str().unwrap()], tmp.path());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let exp = expected();
    for split in ["train", "val", "test", "total"] {
        let want = if split == "total" {
            &exp["total"]
        } else {
            &exp["splits"][split]
        };
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {split} ")))
            .unwrap_or_else(|| panic!("no {split} row in:\n{stdout}"));
        let cells: Vec<&str> = line
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let want_cells = [
            split.to_string(),
            want["images"].to_string(),
            want["refs"].to_string(),
            want["sentences"].to_string(),
            want["categories"].to_string(),
        ];
        assert_eq!(cells, want_cells, "{line}");
    }
    assert!(
        stdout.contains("| split | images | refs | sentences | categories |"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == "source OK: 0 problems"),
        "{stdout}"
    );
    assert!(stdout.contains(exp["sources"]["instances"]["sha256"].as_str().unwrap()));
    // Logs go to stderr, not into the data.
    assert!(stderr.contains("reading"), "{stderr}");
    assert!(!stdout.contains("reading"));
}

#[test]
fn inspect_json_is_machine_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = write_manifest(tmp.path(), &sample_dir());
    let (code, stdout, _) = inspect(
        &["--manifest", manifest.to_str().unwrap(), "--json"],
        tmp.path(),
    );
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let exp = expected();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["verdict"], "source OK: 0 problems");
    assert_eq!(v["problems"], Value::Array(vec![]));
    assert_eq!(v["dataset"]["kind"], "refcocog");
    assert_eq!(
        v["dataset"]["splits"],
        serde_json::json!(["train", "val", "test"])
    );
    for row in v["splits"].as_array().unwrap() {
        let split = row["split"].as_str().unwrap();
        for field in ["images", "refs", "sentences", "categories"] {
            assert_eq!(row[field], exp["splits"][split][field], "{split} {field}");
        }
    }
    assert_eq!(v["total"]["refs"], exp["total"]["refs"]);
    assert_eq!(
        v["sources"]["refs"]["sha256"],
        exp["sources"]["refs"]["sha256"]
    );
}

#[test]
fn inspect_reports_missing_image_files_and_exits_nonzero() {
    let tmp = sample_copy();
    let exp = expected();
    let victims: Vec<String> = (0..2)
        .map(|i| {
            exp["images_in_order"][i * 7]["file_name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for v in &victims {
        std::fs::remove_file(tmp.path().join("images").join(v)).unwrap();
    }
    let manifest = write_manifest(tmp.path(), tmp.path());
    let (code, stdout, _) = inspect(&["--manifest", manifest.to_str().unwrap()], tmp.path());
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l == "source has 2 problems (2 missing image files)"),
        "{stdout}"
    );
    for v in &victims {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("  - ") && l.contains(v.as_str())),
            "{stdout}"
        );
    }
    // The counts are still there: a missing file is not fatal.
    assert!(stdout.contains("| total |"), "{stdout}");
}

#[test]
fn inspect_json_reports_structural_problems_without_counts() {
    let tmp = sample_copy();
    let target = expected()["refs"][0]["ref_id"].clone();
    write_refs(
        tmp.path(),
        "umd",
        sample_refs(|r| {
            if r["ref_id"] == target {
                r["split"] = "dev".into();
            }
        }),
        false,
    );
    let manifest = write_manifest(tmp.path(), tmp.path());
    let (code, stdout, _) = inspect(
        &["--manifest", manifest.to_str().unwrap(), "--json"],
        tmp.path(),
    );
    assert_eq!(code, 1, "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["splits"], Value::Null);
    assert_eq!(
        v["verdict"],
        "source has 1 problem (1 ref with an unknown split)"
    );
    assert_eq!(v["problems"][0]["kind"], "unknown_split");
    assert_eq!(v["problems"][0]["fatal"], true);
    assert!(
        v["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("ref_id {target}:"))
    );
}

#[test]
fn inspect_with_the_repository_manifest_needs_only_the_dataset() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, stdout, stderr) = inspect(&[], repo);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("dataset: refcocog split by umd"),
        "{stdout}"
    );
}

#[test]
fn inspect_errors_exit_2_with_the_message_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = inspect(&["--manifest", "nope.toml"], tmp.path());
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with("error: ") && stderr.contains("nope.toml"),
        "{stderr}"
    );
}

#[test]
fn negative_box_and_empty_image_size_are_named() {
    let tmp = sample_copy();
    let r = ref_in("train");
    let ann_id = r["ann_id"].as_i64().unwrap();
    let mut inst = read_instances(tmp.path());
    for a in inst["annotations"].as_array_mut().unwrap() {
        if a["id"].as_i64() == Some(ann_id) {
            a["bbox"][2] = (-3.5).into();
        }
    }
    for i in inst["images"].as_array_mut().unwrap() {
        if i["id"] == r["image_id"] {
            i["height"] = 0.into();
        }
    }
    write_instances(tmp.path(), &inst);
    let problems = invalid(dataset::load(&umd(tmp.path())));
    let kinds: Vec<ProblemKind> = problems.iter().map(|p| p.kind()).collect();
    assert!(kinds.contains(&ProblemKind::InvalidBox), "{problems:?}");
    assert!(kinds.contains(&ProblemKind::EmptyImageSize), "{problems:?}");
    let boxp = problems
        .iter()
        .find(|p| p.kind() == ProblemKind::InvalidBox)
        .unwrap();
    assert!(
        boxp.to_string()
            .contains(&format!("ann_id {ann_id} (ref_id {})", r["ref_id"])),
        "{boxp}"
    );
    let sizep = problems
        .iter()
        .find(|p| p.kind() == ProblemKind::EmptyImageSize)
        .unwrap();
    assert!(
        sizep
            .to_string()
            .contains(&format!("image_id {}:", r["image_id"])),
        "{sizep}"
    );
}

#[test]
fn sent_ids_differing_from_the_sentences_are_named() {
    let tmp = sample_copy();
    let r = ref_in("test");
    let mut refs = vec![ref_dict(
        r["ref_id"].as_i64().unwrap(),
        r["ann_id"].as_i64().unwrap(),
        r["image_id"].as_i64().unwrap(),
        r["category_id"].as_i64().unwrap(),
        key("test"),
        vec![(40, key("a"), key("A"), vec![key("a")])],
    )];
    // Replace the sent_ids list ([40]) with [41].
    if let Py::Dict(items) = &mut refs[0] {
        items[0].1 = Py::List(vec![Py::Int(41)]);
    }
    write_refs(tmp.path(), "umd", refs, false);
    let problems = invalid(dataset::load(&umd(tmp.path())));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind(), ProblemKind::SentIdsMismatch);
    assert!(
        problems[0]
            .to_string()
            .contains("sent_ids [41] differ from its sentences' sent_id [40]"),
        "{}",
        problems[0]
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile pickles that are data, not code (issue 11): nesting, huge integers, shared objects.

/// Writes `bytes` as the sample's refs pickle and returns the refusal message of loading it.
fn refused_pickle(bytes: &[u8]) -> String {
    let tmp = sample_copy();
    std::fs::write(tmp.path().join("annotations/refs(umd).p"), bytes).unwrap();
    let err = dataset::load(&umd(tmp.path())).unwrap_err();
    assert!(
        matches!(err, DatasetError::PickleNotData { .. }),
        "expected a refusal, got: {err}"
    );
    err.to_string()
}

/// `[[[…]]]` nested `depth` lists deep: PROTO 2, `depth` × EMPTY_LIST, `depth − 1` × APPEND, STOP.
fn nested_lists(depth: usize) -> Vec<u8> {
    let mut p = b"\x80\x02".to_vec();
    p.extend(std::iter::repeat_n(b']', depth));
    p.extend(std::iter::repeat_n(b'a', depth - 1));
    p.push(b'.');
    p
}

#[test]
fn pickle_nested_10000_levels_is_refused_before_decoding() {
    // 20 KB; decoding it overflowed the stack (exit 134) before the depth limit.
    let msg = refused_pickle(&nested_lists(10_000));
    assert!(msg.contains("more than 100 levels deep"), "{msg}");
    assert!(msg.contains("refs(umd).p"), "{msg}");
    // The limit is a limit, not a ban on nesting: 100 levels are data (of the wrong shape).
    let tmp = sample_copy();
    std::fs::write(
        tmp.path().join("annotations/refs(umd).p"),
        nested_lists(100),
    )
    .unwrap();
    let err = dataset::load(&umd(tmp.path())).unwrap_err();
    assert!(
        !matches!(err, DatasetError::PickleNotData { .. }),
        "100 levels must pass the check: {err}"
    );
}

#[test]
fn pickle_nested_10000_levels_through_inspect_exits_2_not_a_crash() {
    let tmp = sample_copy();
    std::fs::write(
        tmp.path().join("annotations/refs(umd).p"),
        nested_lists(10_000),
    )
    .unwrap();
    let manifest = write_manifest(tmp.path(), tmp.path());
    let (code, _, stderr) = inspect(&["--manifest", manifest.to_str().unwrap()], tmp.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("levels deep"), "{stderr}");
}

#[test]
fn pickle_with_a_huge_integer_is_refused_by_its_length() {
    // LONG4 with a 5 MB integer, and a 5-million-digit text LONG: parsing either is quadratic.
    let mut long4 = b"\x80\x02\x8b".to_vec();
    long4.extend(5_000_000u32.to_le_bytes());
    long4.extend(std::iter::repeat_n(0x7fu8, 5_000_000));
    long4.push(b'.');
    let msg = refused_pickle(&long4);
    assert!(msg.contains("integer of 5000000 bytes"), "{msg}");

    let mut text = b"L".to_vec();
    text.extend(std::iter::repeat_n(b'9', 5_000_000));
    text.extend(b"L\n.");
    let msg = refused_pickle(&text);
    assert!(
        msg.contains("integer written in 5000001 characters"),
        "{msg}"
    );
}

#[test]
fn pickle_that_grows_a_shared_list_after_fetching_it_is_refused() {
    // a = []; memo[0] = a; then GET 0 and APPEND into it: the one way to nest deeper than the
    // stack shows, which no pickler writes for data.
    let p = b"\x80\x02]q\x00h\x00K\x01a.";
    let msg = refused_pickle(p);
    assert!(msg.contains("fetched back from the memo"), "{msg}");
}

#[test]
fn pickle_stack_underflow_is_refused() {
    let msg = refused_pickle(b"\x80\x02a.");
    assert!(msg.contains("empty stack"), "{msg}");
}

#[test]
fn inspect_deep_decodes_and_finds_what_the_quick_check_cannot() {
    let tmp = sample_copy();
    let exp = expected();
    let name = |i: usize| {
        exp["images_in_order"][i]["file_name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (truncated, empty) = (name(0), name(3));
    let path = tmp.path().join("images").join(&truncated);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(tmp.path().join("images").join(&empty), b"").unwrap();
    let manifest = write_manifest(tmp.path(), tmp.path());
    let manifest = manifest.to_str().unwrap();

    // The quick check (metadata only) finds the empty file, not the truncated one.
    let (code, stdout, _) = inspect(&["--manifest", manifest], tmp.path());
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&empty) && stdout.contains("empty (0 bytes)"),
        "{stdout}"
    );
    assert!(!stdout.contains(&truncated), "{stdout}");

    // --deep decodes every image as a run would.
    let (code, stdout, _) = inspect(&["--manifest", manifest, "--deep"], tmp.path());
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&empty), "{stdout}");
    assert!(
        stdout.contains(&truncated) && stdout.contains("truncated"),
        "{stdout}"
    );
}

#[test]
fn pickles_written_by_cpython_at_protocols_0_2_4_and_with_shared_tokens_read_as_python_reads_them()
{
    // tools/make_pickle_fixtures.py: the sample's refs re-pickled by CPython, and the same with
    // each ref's sentences sharing one tokens list (a memo reference serde-pickle refused);
    // expected.json is what Python's own pickle.load reads from each file.
    let dir = repo_path("tests/data/pickles");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    for (name, want) in expected.as_object().unwrap() {
        let tmp = sample_copy();
        std::fs::copy(dir.join(name), tmp.path().join("annotations/refs(umd).p")).unwrap();
        let d = dataset::load(&umd(tmp.path())).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = want.as_array().unwrap();
        assert_eq!(d.refs.len(), want.len(), "{name}");
        let mut got: Vec<&dataset::RefRecord> = d.refs.iter().collect();
        got.sort_by_key(|r| r.ref_id);
        let mut want: Vec<&Value> = want.iter().collect();
        want.sort_by_key(|w| w["ref_id"].as_i64().unwrap());
        for (r, w) in got.iter().zip(want) {
            assert_eq!(r.ref_id, w["ref_id"].as_i64().unwrap(), "{name}");
            assert_eq!(r.ann_id, w["ann_id"].as_i64().unwrap(), "{name}");
            assert_eq!(r.image_id, w["image_id"].as_i64().unwrap(), "{name}");
            assert_eq!(r.split, w["split"].as_str().unwrap(), "{name}");
            let sentences: Vec<Value> = r
                .sentences
                .iter()
                .map(|s| serde_json::json!([s.sent_id, s.sent, s.raw, s.tokens]))
                .collect();
            assert_eq!(
                &Value::from(sentences),
                &w["sentences"],
                "{name} ref {}",
                r.ref_id
            );
        }
    }
}

fn repo_path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}
