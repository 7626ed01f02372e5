//! The PNG: one panel per constant rate, the p50 / p90 / p99 latency of
//! each path as a line, so the gap between direct and each pair reads at a
//! glance.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;

use super::{paths::PathKind, report::Row};

/// A font from Debian's fonts-dejavu-core (plotters draws text with
/// ab_glyph and needs the bytes of a TrueType font).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

pub(crate) fn register_font() -> Result<()> {
    let bytes = std::fs::read(FONT)
        .with_context(|| format!("reading {FONT} (apt-get install fonts-dejavu-core)"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into()))
        .map_err(|_| anyhow!("{FONT} is not a usable font"))
}

fn colour(path: PathKind) -> RGBColor {
    match path {
        PathKind::Direct => RGBColor(90, 90, 90),
        PathKind::Osm => RGBColor(0, 114, 178),
        PathKind::OsmResilient => RGBColor(86, 180, 233),
        PathKind::OsmTraced1 => RGBColor(204, 121, 167),
        PathKind::OsmTraced100 => RGBColor(230, 159, 0),
        PathKind::OsmMultiplexed => RGBColor(120, 94, 240),
        PathKind::OsmBaseline => RGBColor(150, 150, 150),
        PathKind::Nginx => RGBColor(0, 158, 115),
        PathKind::Haproxy => RGBColor(213, 94, 0),
    }
}

const PERCENTILES: [&str; 3] = ["p50", "p90", "p99"];

/// Draws the latency percentiles of the constant-rate rows into `out`.
pub fn latency_png(rows: &[Row], title: &str, out: &Path) -> Result<()> {
    register_font()?;
    let mut rates: Vec<u32> = rows.iter().filter_map(|r| r.load.rate).collect();
    rates.dedup();
    anyhow::ensure!(!rates.is_empty(), "no constant-rate runs to plot");
    let root = BitMapBackend::new(out, (520 * rates.len() as u32, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    for (panel, rate) in root.split_evenly((1, rates.len())).iter().zip(&rates) {
        let at_rate: Vec<&Row> = rows.iter().filter(|r| r.load.rate == Some(*rate)).collect();
        let top = at_rate
            .iter()
            .map(|r| r.p99)
            .fold(0.0_f64, f64::max)
            .max(0.1)
            * 1.15;
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{rate} requests/s"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.25_f64..2.25_f64, 0.0_f64..top)?;
        chart
            .configure_mesh()
            .x_labels(3)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && (0.0..3.0).contains(&i) {
                    PERCENTILES[i as usize].to_string()
                } else {
                    String::new()
                }
            })
            .y_desc("latency (ms)")
            .draw()?;
        for row in at_rate {
            let c = colour(row.path);
            let points: Vec<(f64, f64)> = [row.p50, row.p90, row.p99]
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as f64, v))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
                .label(row.path.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pairs::load::Load;

    fn row(path: PathKind, rate: Option<u32>, p99: f64) -> Row {
        Row {
            path,
            load: Load {
                rate,
                connections: 16,
                duration: Duration::from_secs(1),
            },
            rps: 1000.0,
            p50: p99 / 3.0,
            p90: p99 / 2.0,
            p99,
            max: p99 * 4.0,
            cpu_per_1k: vec![],
            failed: 0,
            foreign_cores_max: 0.0,
        }
    }

    #[test]
    fn one_panel_per_rate_in_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("latency.png");
        let rows = vec![
            row(PathKind::Direct, Some(200), 0.3),
            row(PathKind::Osm, Some(200), 0.5),
            row(PathKind::Direct, Some(1000), 0.4),
            row(PathKind::Nginx, Some(1000), 0.8),
            row(PathKind::Haproxy, None, 3.0),
        ];
        latency_png(&rows, "test", &out).unwrap();
        let png = std::fs::read(&out).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width then height, big-endian, at bytes 16..24.
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((width, height), (2 * 520, 520), "two rates, two panels");
        assert!(latency_png(&rows[4..], "closed loop only", &out).is_err());
    }
}
