//! Training curves (`curves.png`): two panels side by side, loss (train / val) and Dice (train / val) per epoch.
//!
//! Drawn with plotters into an in-memory RGB buffer, encoded to PNG by `image`, written atomically (fsutil), so a
//! viewer refreshing the file mid-training never sees half a PNG. Text uses a font embedded in the binary
//! (`epaint_default_fonts`, egui's defaults) through plotters' `ab_glyph` backend: no system fonts, no fontconfig,
//! identical output on a bare server.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, ensure, Context, Result};
use plotters::prelude::*;

use crate::fsutil::save_png_atomic;

/// One line of the training log (one epoch). `train_*` are running averages over the epoch's batches,
/// `val_*` are over the whole validation set; `seconds` is the epoch's wall time.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_dice: f64,
    pub val_loss: f64,
    pub val_dice: f64,
    pub seconds: f64,
    pub images_per_s: f64,
}

/// Font family name under which the embedded font is registered with plotters.
const FONT: &str = "sans-serif";
static FONT_ONCE: Once = Once::new();

/// Register the embedded font once per process (plotters keeps a global registry).
fn register_font() {
    FONT_ONCE.call_once(|| {
        // The bytes are a known-good TTF shipped in the crate; failure would be a packaging bug.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT);
    });
}

/// One curve of a panel: legend name, colour, and which field of the row it plots.
type Series = (&'static str, RGBColor, fn(&EpochRow) -> f64);

/// Picture size in pixels (two panels side by side).
const SIZE: (u32, u32) = (1280, 480);
const TRAIN: RGBColor = RGBColor(31, 119, 180); // matplotlib's blue
const VAL: RGBColor = RGBColor(255, 127, 14); // matplotlib's orange
const LR_MARK: RGBColor = RGBColor(120, 120, 120);

/// Axis range covering the finite values with 5% headroom, clipped to `[lo_clip, hi_clip]`; a flat or empty series
/// still gets a non-degenerate range.
fn y_range(vals: impl Iterator<Item = f64>, lo_clip: f64, hi_clip: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (lo_clip.max(0.0), hi_clip.min(1.0));
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let (lo, hi) = ((lo - pad).max(lo_clip), (hi + pad).min(hi_clip));
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1e-3)
    }
}

/// One panel: train and val series of `pick(row)` against the epoch, with ticks, grid and a legend.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    rows: &[EpochRow],
    title: &str,
    y_desc: &str,
    (lo, hi): (f64, f64),
    legend_at: SeriesLabelPosition,
    series: [Series; 2],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    // x is f64 so the first and last epochs get a little margin (dots are not cut by the frame); ticks are shown
    // only on whole epochs.
    let e0 = rows.iter().map(|r| r.epoch).min().unwrap_or(0) as f64;
    let e1 = rows.iter().map(|r| r.epoch).max().unwrap_or(0) as f64;
    let pad = ((e1 - e0) * 0.02).max(if e1 > e0 { 0.3 } else { 1.0 });
    // Enough decimals on y to tell ticks apart: down to the first significant digit of the raw tick step.
    let step = (hi - lo) / 8.0;
    let decimals = (-step.log10()).ceil().clamp(0.0, 6.0) as usize;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(80)
        .build_cartesian_2d((e0 - pad)..(e1 + pad), lo..hi)
        .map_err(|e| anyhow!("plot: {e}"))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(((e1 - e0) as usize + 1).clamp(3, 12))
        .x_label_formatter(&|v| if (v - v.round()).abs() < 1e-6 { format!("{}", v.round()) } else { String::new() })
        .y_labels(8)
        .y_label_formatter(&|v| format!("{v:.decimals$}"))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(RGBColor(244, 244, 244))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(|e| anyhow!("plot: {e}"))?;
    // Learning-rate changes (ReduceLROnPlateau): a dashed grey line halfway between the two epochs.
    let mut first = true;
    for pair in rows.windows(2).filter(|p| p[1].lr != p[0].lr && p[0].lr.is_finite() && p[1].lr.is_finite()) {
        let x = (pair[0].epoch + pair[1].epoch) as f64 / 2.0;
        let s = chart
            .draw_series(DashedLineSeries::new([(x, lo), (x, hi)], 6, 4, LR_MARK.stroke_width(1)))
            .map_err(|e| anyhow!("plot: {e}"))?;
        if first {
            s.label("lr change").legend(|(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], LR_MARK.stroke_width(1)));
            first = false;
        }
    }
    for (name, color, pick) in series {
        // Non-finite values (a diverged epoch) are left out rather than poisoning the axis.
        let pts: Vec<(f64, f64)> =
            rows.iter().map(|r| (r.epoch as f64, pick(r))).filter(|(_, v)| v.is_finite()).collect();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| anyhow!("plot: {e}"))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3)));
        // Dots on the epochs themselves, so a 1-epoch run still shows something.
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| anyhow!("plot: {e}"))?;
    }
    chart
        .configure_series_labels()
        .position(legend_at)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(|e| anyhow!("plot: {e}"))?;
    Ok(())
}

/// Draw `curves.png` for `rows` (any number of epochs, at least one) and write it atomically to `path`.
/// The Dice panel's title names the best validation Dice and its epoch; dashed lines mark learning-rate changes.
pub fn plot_curves(rows: &[EpochRow], path: &Path) -> Result<()> {
    ensure!(!rows.is_empty(), "plot_curves: no epochs to plot for {}", path.display());
    register_font();
    let (w, h) = SIZE;
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
        let halves = root.split_evenly((1, 2));

        let loss = y_range(rows.iter().flat_map(|r| [r.train_loss, r.val_loss]), 0.0, f64::INFINITY);
        panel(
            &halves[0],
            rows,
            "loss",
            "BCE + Dice loss",
            loss,
            SeriesLabelPosition::UpperRight,
            [("train", TRAIN, |r| r.train_loss), ("val", VAL, |r| r.val_loss)],
        )?;

        let dice = y_range(rows.iter().flat_map(|r| [r.train_dice, r.val_dice]), 0.0, 1.0);
        let best = rows.iter().filter(|r| r.val_dice.is_finite()).max_by(|a, b| a.val_dice.total_cmp(&b.val_dice));
        let title = match best {
            Some(b) => format!("Dice (best val {:.4} at epoch {})", b.val_dice, b.epoch),
            None => "Dice".to_string(),
        };
        panel(
            &halves[1],
            rows,
            &title,
            "Dice",
            dice,
            SeriesLabelPosition::LowerRight,
            [("train", TRAIN, |r| r.train_dice), ("val", VAL, |r| r.val_dice)],
        )?;
        root.present().map_err(|e| anyhow!("plot: {e}"))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).context("plot_curves: buffer size")?;
    save_png_atomic(&image::DynamicImage::ImageRgb8(img), path)
}
