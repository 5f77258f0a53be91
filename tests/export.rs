//! `refaug export --format seed-csv`: the research notebook's CSV, parsed back and compared with
//! the Parquet rows.

mod output_fixture;

use std::collections::BTreeMap;

use refaug::export::{self, ExportFormat, SEED_CSV_HEADER, seed_csv_file_name};
use refaug::report::find_variants;
use refaug::write::shard::read_rows;

/// (file_name, [xmin, ymin, xmax, ymax, confidence]) per line, numbers parsed as float32.
fn parse(text: &str) -> Vec<(String, [f32; 5])> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(SEED_CSV_HEADER));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 6, "{line}");
            for f in &fields[1..] {
                // Plain decimals: no exponent, no spaces; a minus sign only in front (an unclipped
                // DETR box may start left of or above the image).
                let digits = f.strip_prefix('-').unwrap_or(f);
                assert!(
                    digits.chars().all(|c| c.is_ascii_digit() || c == '.'),
                    "{line}"
                );
            }
            let n: Vec<f32> = fields[1..].iter().map(|f| f.parse().unwrap()).collect();
            (fields[0].to_string(), [n[0], n[1], n[2], n[3], n[4]])
        })
        .collect()
}

#[test]
fn hand_made_lines() {
    let dir = tempfile::tempdir().unwrap();
    output_fixture::hand_made(dir.path());
    let dest = dir.path().join("csv");
    let summaries = export::export(dir.path(), &dest, ExportFormat::SeedCsv).unwrap();
    assert_eq!(summaries.len(), 2);
    assert_eq!((summaries[0].images, summaries[0].boxes), (4, 7));
    let text = fs_err::read_to_string(dest.join("bboxes[detA].csv")).unwrap();
    // Image 1 once (refs 1 and 2 share it), image 2 has no box, then images 3 and 4.
    assert_eq!(
        text,
        "file_name,xmin,ymin,xmax,ymax,confidence\n\
         COCO_train2014_000000000001.jpg,0,0,100,100,0.9\n\
         COCO_train2014_000000000001.jpg,0,0,100,50,0.8\n\
         COCO_train2014_000000000001.jpg,200,200,300,300,0.2\n\
         COCO_train2014_000000000003.jpg,0,0,100,70,0.9\n\
         COCO_train2014_000000000003.jpg,0,0,10,10,0.5\n\
         COCO_train2014_000000000004.jpg,0,0,100,30,0.6\n\
         COCO_train2014_000000000004.jpg,0,0,50,50,0.3\n"
    );
}

/// Every box of every image, once, in row order, bit-exact as float32.
#[test]
fn random_output_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    output_fixture::random(dir.path(), 11, &["yolov8x", "detr"]);
    let dest = dir.path().join("export");
    export::export(dir.path(), &dest, ExportFormat::SeedCsv).unwrap();
    for variant in find_variants(dir.path()).unwrap() {
        let mut expected = Vec::new();
        let mut seen = BTreeMap::new();
        for split in variant.splits() {
            for shard in variant.shard_paths(&split).unwrap() {
                for row in read_rows(&shard).unwrap() {
                    if seen.insert(row.image_id, ()).is_some() {
                        continue;
                    }
                    for p in &row.proposals {
                        let b = p.bbox;
                        expected.push((
                            row.file_name.clone(),
                            [b.xmin, b.ymin, b.xmax, b.ymax, p.score],
                        ));
                    }
                }
            }
        }
        let text = fs_err::read_to_string(dest.join(seed_csv_file_name(&variant.name))).unwrap();
        let got = parse(&text);
        assert!(got.len() > 100, "{}: {} lines", variant.name, got.len());
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g.0, e.0, "line {i}");
            let bits = |v: &[f32; 5]| v.map(f32::to_bits);
            assert_eq!(bits(&g.1), bits(&e.1), "line {i}: {:?} != {:?}", g.1, e.1);
        }
    }
}

/// pandas reads it as the research notebook did.
#[test]
fn pandas_reads_it() {
    let Some(python) = output_fixture::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    output_fixture::hand_made(dir.path());
    let dest = dir.path().join("export");
    export::export(dir.path(), &dest, ExportFormat::SeedCsv).unwrap();
    let script = "import sys, pandas as pd\n\
                  df = pd.read_csv(sys.argv[1])\n\
                  assert list(df.columns) == ['file_name','xmin','ymin','xmax','ymax','confidence'], df.columns\n\
                  assert len(df) == 7 and df.file_name.nunique() == 3, df\n\
                  assert df.confidence.dtype == 'float64' and abs(df.confidence.iloc[0] - 0.9) < 1e-12\n\
                  print(len(df))\n";
    let output = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(dest.join("bboxes[detA].csv"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
