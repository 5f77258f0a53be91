//! `refaug gallery`: the site's files, the selection (worked out here from the shards), each
//! image once, the errors; then a real headless Chromium on the site
//! (`tests/python/gallery_check.py`, over the DevTools protocol): no console error, the cards,
//! the overlay's boxes against the Parquet read by pyarrow, the score slider, the keys, a
//! screenshot that is not blank.
//!
//! The browser: `REFAUG_CHROMIUM`, else `chromium` / `chromium-browser` / `google-chrome` on
//! PATH (Debian: `apt-get install chromium`; `.ci/run` installs it). Without one the browser test
//! fails when `CI` or `REFAUG_REQUIRE_BROWSER` is set, and otherwise prints a SKIPPED banner.
//! `REFAUG_GALLERY_SCREENSHOT=PATH` keeps the screenshot.

mod output_fixture;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use refaug::gallery::select::SortOrder;
use refaug::gallery::thumbs::ImagesFrom;
use refaug::gallery::{self, GalleryError, GalleryOptions};
use refaug::report::{self, ReportOptions, find_variants};
use refaug::write::row::Row;
use refaug::write::shard::read_rows;

use output_fixture::{b, p};

/// Every row of every variant, per variant name.
fn all_rows(out: &Path) -> BTreeMap<String, Vec<Row>> {
    find_variants(out)
        .unwrap()
        .into_iter()
        .map(|v| {
            let rows = v
                .splits()
                .iter()
                .flat_map(|s| v.shard_paths(s).unwrap())
                .flat_map(|path| read_rows(&path).unwrap())
                .collect();
            (v.name, rows)
        })
        .collect()
}

/// A 640×480 JPEG per image of the output (a gradient and a rectangle that depends on the id).
fn write_images(out: &Path, images: &Path) {
    fs_err::create_dir_all(images).unwrap();
    let names: BTreeSet<(i64, String)> = all_rows(out)
        .values()
        .flatten()
        .map(|r| (r.image_id, r.file_name.clone()))
        .collect();
    for (id, name) in names {
        let x0 = (id as u32 * 37) % 400;
        let img = image::RgbImage::from_fn(640, 480, |x, y| {
            if (x0..x0 + 200).contains(&x) && (100..300).contains(&y) {
                image::Rgb([200, 60, 40])
            } else {
                image::Rgb([(x * 255 / 640) as u8, (y * 255 / 480) as u8, 120])
            }
        });
        img.save(images.join(name)).unwrap();
    }
}

/// The random output (variants `yolo`, `detr`) plus a variant `raw` holding only refs 1 and 2,
/// whose first proposal reaches outside the 640×480 image (as unclipped DETR boxes would), and
/// the images. Returns (out, images).
fn fixture(dir: &Path) -> (PathBuf, PathBuf) {
    let out = dir.join("out");
    output_fixture::random(&out, 11, &["yolo"]);
    // `detr`: the same refs and shards, other boxes (shifted, every other one dropped).
    let variant = &find_variants(&out).unwrap()[0];
    let splits: Vec<(String, Vec<Vec<Row>>)> = variant
        .splits()
        .into_iter()
        .map(|split| {
            let shards = variant
                .shard_paths(&split)
                .unwrap()
                .iter()
                .map(|path| {
                    read_rows(path)
                        .unwrap()
                        .into_iter()
                        .map(|r| {
                            let proposals = r
                                .proposals
                                .iter()
                                .step_by(2)
                                .map(|q| {
                                    let bb = q.bbox;
                                    p(
                                        b(bb.xmin * 0.9, bb.ymin, bb.xmax * 0.9 + 8.0, bb.ymax),
                                        q.score,
                                    )
                                })
                                .collect();
                            output_fixture::row(r.ref_id, r.image_id, &r.split, r.gt_box, proposals)
                        })
                        .collect()
                })
                .collect();
            (split, shards)
        })
        .collect();
    let splits: Vec<(&str, Vec<Vec<Row>>)> = splits
        .iter()
        .map(|(s, rows)| (s.as_str(), rows.clone()))
        .collect();
    output_fixture::write_variant(
        &out,
        "detr",
        output_fixture::detector("detr", "detr", false),
        &splits,
    );
    let yolo = &all_rows(&out)["yolo"];
    let raw: Vec<Row> = yolo
        .iter()
        .filter(|r| r.ref_id <= 2)
        .map(|r| {
            output_fixture::row(
                r.ref_id,
                r.image_id,
                &r.split,
                r.gt_box,
                vec![
                    p(b(-12.5, -3.25, 700.75, 490.5), 0.93),
                    p(b(10.1, 20.2, 30.3, 40.4), 0.2),
                ],
            )
        })
        .collect();
    assert_eq!(raw.len(), 2);
    output_fixture::write_variant(
        &out,
        "raw",
        output_fixture::detector("raw", "detr", false),
        &[("train", vec![raw])],
    );
    let images = dir.join("images");
    write_images(&out, &images);
    (out, images)
}

fn options(images: &Path) -> GalleryOptions {
    GalleryOptions {
        images: ImagesFrom::Dir(images.to_path_buf()),
        ..GalleryOptions::default()
    }
}

/// `data.js` as JSON.
fn data(site: &Path) -> serde_json::Value {
    let text = fs_err::read_to_string(site.join(gallery::DATA_FILE)).unwrap();
    let json = text
        .strip_prefix("window.REFAUG_GALLERY = ")
        .and_then(|t| t.strip_suffix(";\n"))
        .expect("data.js assigns one JSON object");
    serde_json::from_str(json).unwrap()
}

fn ref_ids(data: &serde_json::Value) -> Vec<i64> {
    data["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref_id"].as_i64().unwrap())
        .collect()
}

/// The expected order, worked out from the rows: per ref the lowest best IoU (worst) or the
/// most proposals over the variants that have it; ties by ref_id.
fn expected_order(out: &Path, sort: SortOrder, n: usize) -> Vec<i64> {
    let mut per_ref: BTreeMap<i64, (f32, usize)> = BTreeMap::new();
    for row in all_rows(out).values().flatten() {
        let e = per_ref.entry(row.ref_id).or_insert((f32::INFINITY, 0));
        e.0 = e.0.min(row.best_iou);
        e.1 = e.1.max(row.proposals.len());
    }
    let mut refs: Vec<(i64, f32, usize)> =
        per_ref.into_iter().map(|(k, v)| (k, v.0, v.1)).collect();
    match sort {
        SortOrder::Worst => refs.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0))),
        SortOrder::MostProposals => refs.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0))),
        _ => panic!("not worked out here"),
    }
    refs.into_iter().take(n).map(|r| r.0).collect()
}

#[test]
fn site_selection_and_each_image_once() {
    let dir = tempfile::tempdir().unwrap();
    let (out, images) = fixture(dir.path());
    let site = dir.path().join("site");
    let summary = gallery::make(
        &out,
        &site,
        &GalleryOptions {
            n: 25,
            ..options(&images)
        },
    )
    .unwrap();
    for file in ["index.html", "gallery.js", "gallery.css", "data.js"] {
        assert!(site.join(file).is_file(), "{file}");
    }
    let html = fs_err::read_to_string(site.join("index.html")).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from the network"
    );
    let d = data(&site);
    assert_eq!(ref_ids(&d), expected_order(&out, SortOrder::Worst, 25));
    assert_eq!(summary.refs, 25);
    let total: BTreeSet<i64> = all_rows(&out)
        .values()
        .flatten()
        .map(|r| r.ref_id)
        .collect();
    assert_eq!(summary.refs_in_output, total.len());
    // No run settings in the fixture: variants in name order.
    assert_eq!(summary.variants, ["detr", "raw", "yolo"]);

    // Each image of the selected refs once, downsized to 400×300, whatever the variants.
    let wanted: BTreeSet<i64> = d["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["image_id"].as_i64().unwrap())
        .collect();
    assert!(
        wanted.len() < 25,
        "the fixture has images with several refs"
    );
    let thumbs: BTreeSet<String> = fs_err::read_dir(site.join("thumbnails"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = wanted.iter().map(|id| format!("{id}.jpg")).collect();
    assert_eq!(thumbs, expected);
    assert_eq!(summary.images, wanted.len());
    let thumb = image::open(site.join("thumbnails").join(thumbs.first().unwrap())).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (400, 300));

    // The proposals of an image are stored once per variant, each ref pointing at them.
    let first = &d["refs"][0];
    let img = &d["images"][first["image_id"].as_i64().unwrap().to_string()];
    assert_eq!(
        img["thumbnail"],
        format!("thumbnails/{}.jpg", first["image_id"])
    );
    let rows = all_rows(&out);
    let row = rows["yolo"]
        .iter()
        .find(|r| r.ref_id == first["ref_id"].as_i64().unwrap())
        .unwrap();
    let set =
        &img["proposals"]["yolo"][first["variants"]["yolo"]["set"].as_u64().unwrap() as usize];
    assert_eq!(set.as_array().unwrap().len(), row.proposals.len());
    for (stored, proposal) in set.as_array().unwrap().iter().zip(&row.proposals) {
        let xyxy: Vec<f32> = (0..5).map(|i| stored[i].as_f64().unwrap() as f32).collect();
        let bb = proposal.bbox;
        assert_eq!(xyxy, [bb.xmin, bb.ymin, bb.xmax, bb.ymax, proposal.score]);
        assert_eq!(
            stored[7].as_bool().unwrap(),
            proposal.score > 0.25
                && f64::from(bb.xmax) - f64::from(bb.xmin) > 16.0
                && f64::from(bb.ymax) - f64::from(bb.ymin) > 16.0
        );
    }

    // Most proposals; a variant subset; a split subset.
    let most = dir.path().join("most");
    gallery::make(
        &out,
        &most,
        &GalleryOptions {
            n: 10,
            sort: SortOrder::MostProposals,
            ..options(&images)
        },
    )
    .unwrap();
    assert_eq!(
        ref_ids(&data(&most)),
        expected_order(&out, SortOrder::MostProposals, 10)
    );
    let val = dir.path().join("val");
    gallery::make(
        &out,
        &val,
        &GalleryOptions {
            splits: Some(vec!["val".to_string()]),
            variants: Some(vec!["detr".to_string()]),
            ..options(&images)
        },
    )
    .unwrap();
    let d = data(&val);
    let val_refs = rows["detr"].iter().filter(|r| r.split == "val").count();
    assert_eq!(ref_ids(&d).len(), val_refs);
    assert!(
        d["refs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["split"] == "val")
    );
    assert_eq!(d["variants"].as_array().unwrap().len(), 1);
}

#[test]
fn listed_refs_replacing_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (out, images) = fixture(dir.path());
    let site = dir.path().join("site");
    let listed = |refs: Vec<i64>| GalleryOptions {
        refs: Some(refs),
        sort: SortOrder::RefId,
        ..options(&images)
    };
    gallery::make(&out, &site, &listed(vec![5, 3, 5])).unwrap();
    assert_eq!(ref_ids(&data(&site)), [3, 5]);
    // A second gallery replaces the first.
    gallery::make(&out, &site, &listed(vec![7])).unwrap();
    assert_eq!(ref_ids(&data(&site)), [7]);
    let leftovers: Vec<String> = fs_err::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let message = |r: Result<gallery::GallerySummary, GalleryError>| {
        let e = r.unwrap_err();
        refaug::error_chain(&e)
    };
    let m = message(gallery::make(&out, &site, &listed(vec![999_999])));
    assert!(m.contains("ref_id 999999"), "{m}");
    let m = message(gallery::make(
        &out,
        &site,
        &GalleryOptions {
            n: 0,
            ..options(&images)
        },
    ));
    assert!(m.contains("--n"), "{m}");
    let m = message(gallery::make(
        &out,
        &site,
        &GalleryOptions {
            variants: Some(vec!["nope".to_string()]),
            ..options(&images)
        },
    ));
    assert!(
        m.contains("\"nope\"") && m.contains("detr, raw, yolo"),
        "{m}"
    );

    // A folder that is not a gallery is never replaced.
    let foreign = dir.path().join("foreign");
    fs_err::create_dir_all(&foreign).unwrap();
    fs_err::write(foreign.join("notes.txt"), "mine").unwrap();
    let m = message(gallery::make(&out, &foreign, &listed(vec![1])));
    assert!(
        m.contains("foreign") && m.contains("not a refaug gallery"),
        "{m}"
    );
    assert_eq!(
        fs_err::read_to_string(foreign.join("notes.txt")).unwrap(),
        "mine"
    );

    // A missing image and an image of another size name the file and the image; nothing is
    // left half-written.
    let row = all_rows(&out)["yolo"]
        .iter()
        .find(|r| r.ref_id == 1)
        .unwrap()
        .clone();
    let path = images.join(&row.file_name);
    fs_err::rename(&path, path.with_extension("bak")).unwrap();
    let fresh = dir.path().join("fresh");
    let m = message(gallery::make(&out, &fresh, &listed(vec![1])));
    assert!(
        m.contains(&format!("image {}", row.image_id)) && m.contains(&row.file_name),
        "{m}"
    );
    assert!(!fresh.exists());
    image::RgbImage::new(320, 240).save(&path).unwrap();
    let m = message(gallery::make(&out, &fresh, &listed(vec![1])));
    assert!(
        m.contains(&row.file_name) && m.contains("320x240") && m.contains("640x480"),
        "{m}"
    );
    assert!(!fresh.exists());

    // Finding the images through a data manifest that describes another dataset is refused.
    let m = message(gallery::make(
        &out,
        &fresh,
        &GalleryOptions {
            images: ImagesFrom::Manifest(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data-manifest.toml"),
            ),
            ..listed(vec![2])
        },
    ));
    assert!(m.contains("another dataset") && m.contains("sha256"), "{m}");
}

#[test]
fn report_links_the_gallery_whichever_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let (out, images) = fixture(dir.path());
    let r = report::compute(&out, &ReportOptions::default()).unwrap();
    let files = report::write(&r, &out.join("report")).unwrap();
    let site = out.join("gallery");
    gallery::make(&out, &site, &options(&images)).unwrap();
    for _ in 0..2 {
        report::link_gallery(&files.markdown, &site.join("index.html")).unwrap();
        let md = fs_err::read_to_string(&files.markdown).unwrap();
        assert_eq!(md.matches("## Gallery").count(), 1, "{md}");
        assert!(md.contains("](<../gallery/index.html>)"), "{md}");
        assert!(md.contains("## Per split"), "the report is kept: {md}");
    }
}

#[test]
fn publish_adds_a_gallery_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let (out, images) = fixture(dir.path());
    let hub = dir.path().join("hub");
    let summary = refaug::publish::publish(
        &out,
        &hub,
        &refaug::publish::PublishOptions {
            gallery: Some(GalleryOptions {
                n: 5,
                ..options(&images)
            }),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(summary.files.iter().any(|f| f == "gallery/index.html"));
    assert!(
        summary
            .files
            .iter()
            .any(|f| f.starts_with("gallery/thumbnails/"))
    );
    let sums = fs_err::read_to_string(hub.join("SHA256SUMS")).unwrap();
    assert!(sums.contains("  gallery/data.js\n"), "{sums}");
    let card = fs_err::read_to_string(hub.join("README.md")).unwrap();
    assert!(
        card.contains("## Gallery") && card.contains("(gallery/index.html)"),
        "{card}"
    );
    assert!(card.contains("shows 5 of the"), "{card}");
    assert_eq!(ref_ids(&data(&hub.join("gallery"))).len(), 5);
}

/// The browser to drive, or None (with the reason printed loudly, or a panic where CI needs it).
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("REFAUG_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .flat_map(|d| ["chromium", "chromium-browser", "google-chrome"].map(|n| d.join(n)))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        let required = ["CI", "REFAUG_REQUIRE_BROWSER"]
            .iter()
            .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"));
        let why = "no browser found (REFAUG_CHROMIUM, or chromium / chromium-browser / \
                   google-chrome on PATH; Debian: apt-get install chromium)";
        assert!(!required, "the gallery's browser test cannot run: {why}");
        // Straight to stderr, past the test harness's capture, so the line shows when the
        // test passes too.
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\nSKIPPED: the gallery's browser test did not run: {why}\n{bar}\n",
            bar = "!".repeat(100)
        );
    }
    found
}

#[test]
fn a_real_browser_shows_what_the_parquet_holds() {
    let Some(browser) = chromium() else {
        return;
    };
    let Some(python) = output_fixture::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (out, images) = fixture(dir.path());
    let site = dir.path().join("site");
    // Random order: the page sorts the cards itself at load, so its order (gallery.js) must be
    // the command's (select.rs). Every ref is shown; ref 1 has `raw`'s box outside the image.
    let summary = gallery::make(
        &out,
        &site,
        &GalleryOptions {
            n: 10_000,
            sort: SortOrder::Random,
            seed: 5,
            ..options(&images)
        },
    )
    .unwrap();
    let total: BTreeSet<i64> = all_rows(&out)
        .values()
        .flatten()
        .map(|r| r.ref_id)
        .collect();
    assert_eq!(summary.refs, total.len());
    let sample = 1;
    let screenshot = std::env::var_os("REFAUG_GALLERY_SCREENSHOT")
        .map_or_else(|| dir.path().join("gallery.png"), PathBuf::from);
    let report = output_fixture::run_python(
        &python,
        "gallery_check.py",
        &[
            browser.as_os_str(),
            site.as_os_str(),
            out.as_os_str(),
            total.len().to_string().as_ref(),
            sample.to_string().as_ref(),
            screenshot.as_os_str(),
        ],
    );
    eprintln!("{report}");
    assert!(report.contains("gallery_check: ok"), "{report}");
}
