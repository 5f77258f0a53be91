//! The report's charts, as PNG and SVG (plotters): recall against the IoU threshold, one line
//! per variant over all splits together (the splits of one variant differ little; Table 3 of the
//! research shows it), and the distribution of proposals per ref, one step line per variant.
//!
//! PNG text is rendered with ab_glyph from a subset of DejaVu Sans embedded in the binary
//! (`src/report/font/`), so no system font or fontconfig is needed and the PNG bytes depend only
//! on the report. SVG text is written as `<text>` elements in the `sans-serif` family.

use std::path::Path;
use std::sync::OnceLock;

use plotters::backend::{BitMapBackend, SVGBackend};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Report, ReportError};

/// Chart size in pixels (PNG) and user units (SVG).
pub const CHART_SIZE: (u32, u32) = (960, 600);
/// At most this many bins in the histogram; counts are grouped into equal-width bins above it.
pub const MAX_HISTOGRAM_BINS: usize = 60;

static FONT: &[u8] = include_bytes!("font/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

/// Register the embedded font for `sans-serif` once per process.
fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded font does not parse".to_string())
        })
        .clone()
}

fn plot_error(path: &Path, message: impl ToString) -> ReportError {
    ReportError::Plot {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn color(index: usize) -> RGBColor {
    // Colour-blind-safe qualitative palette (Okabe & Ito 2008), then plotters' own.
    const OKABE_ITO: [RGBColor; 7] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(0, 0, 0),
    ];
    match OKABE_ITO.get(index) {
        Some(&c) => c,
        None => {
            let (r, g, b) = Palette99::pick(index).rgb();
            RGBColor(r, g, b)
        }
    }
}

type DrawResult = Result<(), String>;

fn draw_recall<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, report: &Report) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Recall vs IoU threshold (all splits)",
            (FAMILY, 24).into_font(),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("IoU threshold t")
        .y_desc("share of refs with best IoU ≥ t")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()
        .map_err(e)?;
    for (i, variant) in report.variants.iter().enumerate() {
        let c = color(i);
        let points: Vec<(f64, f64)> = report
            .curve_thresholds
            .iter()
            .copied()
            .zip(variant.all.recall_curve.iter().copied())
            .collect();
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(3)))
            .map_err(e)?
            .label(&variant.variant)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

/// The histogram's bin width: 1 while the largest count fits [`MAX_HISTOGRAM_BINS`] bins.
pub fn histogram_bin_width(report: &Report) -> usize {
    let bins = report
        .variants
        .iter()
        .map(|v| v.all.proposal_histogram.len())
        .max()
        .unwrap_or(0);
    bins.div_ceil(MAX_HISTOGRAM_BINS).max(1)
}

/// Share of refs per bin of `width` proposals, for one histogram (index = proposal count).
pub fn binned_shares(histogram: &[u64], width: usize, bins: usize) -> Vec<f64> {
    let total: u64 = histogram.iter().sum();
    (0..bins)
        .map(|b| {
            let count: u64 = histogram.iter().skip(b * width).take(width).sum();
            if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            }
        })
        .collect()
}

fn draw_histogram<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &Report,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let width = histogram_bin_width(report);
    let longest = report
        .variants
        .iter()
        .map(|v| v.all.proposal_histogram.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let bins = longest.div_ceil(width);
    let shares: Vec<Vec<f64>> = report
        .variants
        .iter()
        .map(|v| binned_shares(&v.all.proposal_histogram, width, bins))
        .collect();
    let top = shares
        .iter()
        .flatten()
        .copied()
        .fold(0.0f64, f64::max)
        .max(0.01)
        * 1.1;
    root.fill(&WHITE).map_err(e)?;
    let caption = if width == 1 {
        "Proposals per ref (all splits)".to_string()
    } else {
        format!("Proposals per ref (all splits, bins of {width})")
    };
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FAMILY, 24).into_font())
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..(bins * width) as f64, 0f64..top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("proposals per ref")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("share of refs")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .draw()
        .map_err(e)?;
    for (i, (variant, shares)) in report.variants.iter().zip(&shares).enumerate() {
        let c = color(i);
        // A step line: each bin is a flat segment over [start, end).
        let mut points = Vec::with_capacity(2 * shares.len() + 2);
        points.push((0.0, 0.0));
        for (b, &share) in shares.iter().enumerate() {
            points.push(((b * width) as f64, share));
            points.push((((b + 1) * width) as f64, share));
        }
        points.push(((bins * width) as f64, 0.0));
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))
            .map_err(e)?
            .label(&variant.variant)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

fn png(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult,
) -> Result<(), ReportError> {
    register_font().map_err(|m| plot_error(path, m))?;
    let (w, h) = CHART_SIZE;
    let mut buffer = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, CHART_SIZE).into_drawing_area();
        draw(&root).map_err(|m| plot_error(path, m))?;
    }
    let image = image::RgbImage::from_raw(w, h, buffer)
        .ok_or_else(|| plot_error(path, "the pixel buffer has the wrong size"))?;
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|err| plot_error(path, err))?;
    fs_err::write(path, bytes).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn svg(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult,
) -> Result<(), ReportError> {
    // Text layout (label areas, legend boxes) measures glyphs even for SVG.
    register_font().map_err(|m| plot_error(path, m))?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, CHART_SIZE).into_drawing_area();
        draw(&root).map_err(|m| plot_error(path, m))?;
    }
    fs_err::write(path, text).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Draw the recall-vs-IoU curve as a PNG.
pub fn recall_curve_png(report: &Report, path: &Path) -> Result<(), ReportError> {
    png(path, |root| draw_recall(root, report))
}

/// Draw the recall-vs-IoU curve as an SVG.
pub fn recall_curve_svg(report: &Report, path: &Path) -> Result<(), ReportError> {
    svg(path, |root| draw_recall(root, report))
}

/// Draw the proposals-per-ref histogram as a PNG.
pub fn histogram_png(report: &Report, path: &Path) -> Result<(), ReportError> {
    png(path, |root| draw_histogram(root, report))
}

/// Draw the proposals-per-ref histogram as an SVG.
pub fn histogram_svg(report: &Report, path: &Path) -> Result<(), ReportError> {
    svg(path, |root| draw_histogram(root, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_group_counts_and_share_sums_to_one() {
        // 10 refs: 2 with 0 proposals, 3 with 1, 5 with 3.
        let histogram = [2, 3, 0, 5];
        assert_eq!(binned_shares(&histogram, 1, 4), vec![0.2, 0.3, 0.0, 0.5]);
        assert_eq!(binned_shares(&histogram, 2, 2), vec![0.5, 0.5]);
        assert_eq!(binned_shares(&[], 1, 1), vec![0.0]);
    }

    #[test]
    fn the_embedded_font_parses() {
        register_font().unwrap();
    }
}
