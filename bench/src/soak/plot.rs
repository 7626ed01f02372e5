//! `soak.png`: HTTP p50 and p99 per window over the run with the
//! disruptive churn marked (rollouts, controller and app kills), and
//! every process's resident memory over time.

use std::{collections::BTreeMap, path::Path};

use anyhow::Result;
use plotters::prelude::*;

use super::Outcome;

pub fn soak_png(outcome: &Outcome, title: &str, out: &Path) -> Result<()> {
    crate::pairs::plot::register_font()?;
    let root = BitMapBackend::new(out, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let panels = root.split_evenly((1, 2));

    let windows = outcome.report["kinds"]["http"]["windows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let point = |w: &serde_json::Value, key: &str| {
        Some((w["startMs"].as_f64()? / 1000.0, w[key].as_f64()?))
    };
    let p50: Vec<(f64, f64)> = windows.iter().filter_map(|w| point(w, "p50Ms")).collect();
    let p99: Vec<(f64, f64)> = windows.iter().filter_map(|w| point(w, "p99Ms")).collect();
    let end = p99.last().map_or(60.0, |(t, _)| t + 10.0);
    let top = p99.iter().map(|(_, v)| *v).fold(1.0_f64, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("HTTP latency per 10 s window (ms)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    for event in &outcome.events {
        let colour = match event.churn.as_str() {
            "rollout" => RGBColor(0, 158, 115),
            "controller" => RGBColor(213, 94, 0),
            "app" => RGBColor(204, 121, 167),
            _ => continue,
        };
        let t = event.at_ms as f64 / 1000.0;
        chart.draw_series(LineSeries::new([(t, 0.0), (t, top)], colour.mix(0.5)))?;
    }
    chart
        .draw_series(LineSeries::new(p50, RGBColor(86, 180, 233).stroke_width(2)))?
        .label("p50")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RGBColor(86, 180, 233)));
    chart
        .draw_series(LineSeries::new(p99, RGBColor(0, 114, 178).stroke_width(2)))?
        .label("p99 (green: rollout, orange: controller killed, pink: app killed)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RGBColor(0, 114, 178)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for s in &outcome.samples {
        series
            .entry(format!("{} {}", s.who, s.pid))
            .or_default()
            .push((s.at_ms as f64 / 1000.0, s.rss_kib as f64 / 1024.0));
    }
    let top = outcome
        .samples
        .iter()
        .map(|s| s.rss_kib as f64 / 1024.0)
        .fold(1.0_f64, f64::max)
        * 1.15;
    let end = outcome
        .samples
        .iter()
        .map(|s| s.at_ms as f64 / 1000.0)
        .fold(60.0_f64, f64::max);
    let mut chart = ChartBuilder::on(&panels[1])
        .caption("resident memory per process (MiB)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    for (name, points) in series {
        let colour = if name.starts_with("controller") {
            RGBColor(213, 94, 0)
        } else {
            RGBColor(0, 114, 178)
        };
        chart.draw_series(LineSeries::new(points, colour.mix(0.7)))?;
    }
    root.present()?;
    Ok(())
}
