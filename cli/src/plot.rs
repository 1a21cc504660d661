//! SVG line and scatter plots for `gradwire bench` (distortion against rate) and `gradwire
//! simulate` (accuracy against uplink bits): axes with decade or linear ticks, one colour per
//! series, a legend. Plain SVG 1.1 text, no dependency.

use std::fmt::Write as _;

/// One named series of `(x, y)` points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Joined by a line (else markers only).
    pub line: bool,
    /// Drawn dashed (bounds).
    pub dashed: bool,
}

/// A plot: title, axis labels and scales, series.
#[derive(Debug, Clone, Default)]
pub struct Plot {
    /// Title above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// Log10 x axis.
    pub log_x: bool,
    /// Log10 y axis.
    pub log_y: bool,
    /// The series.
    pub series: Vec<Series>,
}

const COLORS: [&str; 18] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
];

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 330.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// An axis: its range in plot coordinates (log10 of the values on a log axis).
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn fit(values: impl Iterator<Item = f64>, log: bool) -> Axis {
        let mapped: Vec<f64> =
            values.filter(|v| v.is_finite() && (!log || *v > 0.0)).map(|v| if log { v.log10() } else { v }).collect();
        let lo = mapped.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = mapped.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return Axis { lo: 0.0, hi: 1.0, log };
        }
        if log {
            Axis { lo: lo.floor(), hi: hi.ceil().max(lo.floor() + 1.0), log }
        } else {
            let pad = ((hi - lo) * 0.05).max(1e-9);
            Axis { lo: lo - pad, hi: hi + pad, log }
        }
    }

    /// Position in `[0, 1]` of `v`, or `None` when a log axis cannot show it.
    fn unit(&self, v: f64) -> Option<f64> {
        let m = if self.log {
            if v <= 0.0 {
                return None;
            }
            v.log10()
        } else {
            v
        };
        m.is_finite().then(|| (m - self.lo) / (self.hi - self.lo))
    }

    /// Tick positions (plot coordinates) and labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        if self.log {
            ((self.lo as i32)..=(self.hi as i32)).map(|d| (f64::from(d), format!("1e{d}"))).collect()
        } else {
            let step = nice_step((self.hi - self.lo) / 8.0);
            let first = (self.lo / step).ceil() as i64;
            let last = (self.hi / step).floor() as i64;
            (first..=last).map(|i| (i as f64 * step, format!("{}", (i as f64 * step * 1e6).round() / 1e6))).collect()
        }
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10.0 * p)
}

impl Plot {
    /// Writes the plot to `path`: PNG when the name ends in `.png` (the SVG rendered by resvg,
    /// twice the SVG's size, text in a sans-serif system font; without one, no text), SVG
    /// otherwise.
    ///
    /// # Errors
    /// When the file cannot be written or the SVG cannot be rendered.
    pub fn save(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let svg = self.to_svg();
        let png = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if !png {
            return std::fs::write(path, svg).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()));
        }
        let mut options = resvg::usvg::Options::default();
        let fonts = options.fontdb_mut();
        fonts.load_system_fonts();
        // usvg's generic sans-serif is Arial; take a sans-serif family this system has.
        let family = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans", "Arial", "Helvetica"]
            .into_iter()
            .find(|f| fonts.faces().any(|face| face.families.iter().any(|(name, _)| name == f)));
        if let Some(family) = family {
            fonts.set_sans_serif_family(family);
        }
        let tree = resvg::usvg::Tree::from_str(&svg, &options)?;
        let size = tree.size().to_int_size().scale_by(2.0).ok_or_else(|| anyhow::anyhow!("plot too large"))?;
        let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
            .ok_or_else(|| anyhow::anyhow!("cannot allocate a {}x{} image", size.width(), size.height()))?;
        pixmap.fill(resvg::tiny_skia::Color::WHITE);
        resvg::render(&tree, resvg::tiny_skia::Transform::from_scale(2.0, 2.0), &mut pixmap.as_mut());
        pixmap.save_png(path).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
    }

    /// The plot as an SVG document.
    #[must_use]
    pub fn to_svg(&self) -> String {
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let x_axis = Axis::fit(all().map(|p| p.0), self.log_x);
        let y_axis = Axis::fit(all().map(|p| p.1), self.log_y);
        let (w, h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let px = |v: f64| x_axis.unit(v).map(|u| LEFT + u * w);
        let py = |v: f64| y_axis.unit(v).map(|u| TOP + (1.0 - u) * h);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
            LEFT + w / 2.0,
            escape(&self.title)
        );
        for (at, label) in x_axis.ticks() {
            let gx = LEFT + (at - x_axis.lo) / (x_axis.hi - x_axis.lo) * w;
            let _ = writeln!(s, r##"<line x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{}" stroke="#e4e4e4"/>"##, TOP + h);
            let _ = writeln!(s, r#"<text x="{gx:.1}" y="{}" text-anchor="middle">{label}</text>"#, TOP + h + 16.0);
        }
        for (at, label) in y_axis.ticks() {
            let gy = TOP + (1.0 - (at - y_axis.lo) / (y_axis.hi - y_axis.lo)) * h;
            let _ =
                writeln!(s, r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{}" y2="{gy:.1}" stroke="#e4e4e4"/>"##, LEFT + w);
            let _ = writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end">{label}</text>"#, LEFT - 6.0, gy + 4.0);
        }
        let _ = writeln!(s, r#"<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="black"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + w / 2.0,
            HEIGHT - 12.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text x="16" y="{0}" text-anchor="middle" transform="rotate(-90 16 {0})">{1}</text>"#,
            TOP + h / 2.0,
            escape(&self.y_label)
        );
        for (i, series) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let dash = if series.dashed { r#" stroke-dasharray="6 4""# } else { "" };
            let points: Vec<(f64, f64)> = series.points.iter().filter_map(|&(a, b)| Some((px(a)?, py(b)?))).collect();
            if series.line && points.len() > 1 {
                let path: Vec<String> = points.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
                let _ = writeln!(
                    s,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="1.5"{dash} points="{}"/>"#,
                    path.join(" ")
                );
            } else {
                for (a, b) in &points {
                    let _ = writeln!(s, r#"<circle cx="{a:.1}" cy="{b:.1}" r="3.5" fill="{color}"/>"#);
                }
            }
            let ly = TOP + 10.0 + 17.0 * i as f64;
            let lx = LEFT + w + 14.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="3"{dash}/>"#,
                lx + 18.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}">{}</text>"#,
                lx + 24.0,
                ly + 4.0,
                escape(&legend_text(&series.name))
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// Legend entries longer than the legend column are cut with an ellipsis.
fn legend_text(name: &str) -> String {
    const MAX: usize = 44;
    if name.chars().count() <= MAX { name.to_owned() } else { name.chars().take(MAX - 1).chain(['…']).collect() }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_place_points_inside_the_frame_and_escape_text() {
        let plot = Plot {
            title: "a < b".into(),
            x_label: "bits".into(),
            y_label: "accuracy".into(),
            log_x: true,
            log_y: false,
            series: vec![
                Series { name: "raw".into(), points: vec![(1e3, 0.5), (1e5, 0.9)], line: true, dashed: false },
                Series { name: "zero".into(), points: vec![(0.0, 0.1), (10.0, 0.2)], line: false, dashed: true },
            ],
        };
        let svg = plot.to_svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt; b") && svg.contains(">1e1<") && svg.contains(">1e5<"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1, "x = 0 cannot be drawn on a log axis");
        assert!((nice_step(0.13) - 0.2).abs() < 1e-12);
        assert!((nice_step(7.0) - 10.0).abs() < 1e-12);
        // PNG: the rendered SVG at twice its size, on a white background.
        let path = std::env::temp_dir().join(format!("gradwire-plot-test-{}.png", std::process::id()));
        plot.save(&path).expect("renders");
        let png = std::fs::read(&path).expect("written");
        let _ = std::fs::remove_file(&path);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let dim = |at: usize| f64::from(u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes")));
        assert_eq!((dim(16), dim(20)), (2.0 * WIDTH, 2.0 * HEIGHT));
    }
}
