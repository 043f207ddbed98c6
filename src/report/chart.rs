//! Figures as SVG, and their PNG rendering: panels side by side with
//! labelled axes (linear, log or categorical), lines with interval bands or
//! error bars, fitted curves, histograms, reference lines and a legend.
//!
//! The SVG is written here by hand and is the one drawing of a figure; the
//! PNG is that SVG rasterised by `resvg` with DejaVu Sans embedded in the
//! binary, so both look the same and no system font is needed.
//!
//! Not here: what a figure shows (`report::figures`).

use std::fmt::Write as _;
use std::sync::Arc;

use resvg::tiny_skia;
use resvg::usvg;

/// Tableau 10: distinguishable, and readable by most colour-blind readers.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
const GRAY: &str = "#555555";
const FONT: &str = "DejaVu Sans, Verdana, Arial, sans-serif";

const PANEL_W: f64 = 400.0;
const PANEL_H: f64 = 300.0;
const MARGIN_LEFT: f64 = 66.0;
const MARGIN_RIGHT: f64 = 16.0;
const MARGIN_TOP: f64 = 28.0;
const MARGIN_BOTTOM: f64 = 46.0;
const TITLE_H: f64 = 34.0;
const LEGEND_ROW: f64 = 18.0;

/// How a series is drawn: a palette colour (or gray), solid or dashed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Style {
    pub color: &'static str,
    pub dashed: bool,
}

impl Style {
    /// The style of the `i`-th series: ten colours, then the same dashed.
    pub fn nth(i: usize) -> Style {
        Style {
            color: PALETTE[i % PALETTE.len()],
            dashed: (i / PALETTE.len()) % 2 == 1,
        }
    }

    pub fn dashed(self) -> Style {
        Style {
            dashed: true,
            ..self
        }
    }

    pub const GRAY_DASHED: Style = Style {
        color: GRAY,
        dashed: true,
    };
}

/// A point with its 95% interval (`lo`, `hi` NaN where there is none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pt {
    pub x: f64,
    pub y: f64,
    pub lo: f64,
    pub hi: f64,
}

/// One thing drawn in a panel.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// A line through the points over a shaded interval band.
    Band { style: Style, points: Vec<Pt> },
    /// Markers with error bars, joined by a line; `dodge` shifts them
    /// sideways (pixels) so bars of different series at one x stay apart.
    Bars {
        style: Style,
        points: Vec<Pt>,
        dodge: f64,
    },
    /// A thin curve (a fit).
    Curve {
        style: Style,
        points: Vec<(f64, f64)>,
    },
    /// A histogram outline: `heights[i]` over `[edges[i], edges[i + 1])`.
    Steps {
        style: Style,
        edges: Vec<f64>,
        heights: Vec<f64>,
    },
    /// A labelled horizontal reference line.
    Rule { y: f64, label: String },
}

/// An axis: its label (with units), scale and optional fixed range or
/// tick positions. Non-empty `categories` make it categorical: category
/// `i` sits at `x = i`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Axis {
    pub label: String,
    pub log: bool,
    pub range: Option<(f64, f64)>,
    pub ticks: Option<Vec<f64>>,
    pub categories: Vec<String>,
}

impl Axis {
    pub fn new(label: impl Into<String>) -> Axis {
        Axis {
            label: label.into(),
            ..Axis::default()
        }
    }

    pub fn range(mut self, lo: f64, hi: f64) -> Axis {
        self.range = Some((lo, hi));
        self
    }

    pub fn log(mut self) -> Axis {
        self.log = true;
        self
    }

    pub fn ticks(mut self, at: Vec<f64>) -> Axis {
        self.ticks = Some(at);
        self
    }

    pub fn categories(mut self, names: Vec<String>) -> Axis {
        self.categories = names;
        self
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub layers: Vec<Layer>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub title: String,
    pub panels: Vec<Panel>,
    pub legend_title: String,
    pub legend: Vec<(String, Style)>,
}

/// A linear or log10 map from data to pixels.
struct Scale {
    lo: f64,
    hi: f64,
    log: bool,
    px_lo: f64,
    px_hi: f64,
}

impl Scale {
    fn map(&self, v: f64) -> f64 {
        let (v, lo, hi) = if self.log {
            (v.max(1e-300).log10(), self.lo.log10(), self.hi.log10())
        } else {
            (v, self.lo, self.hi)
        };
        self.px_lo + (v - lo) / (hi - lo) * (self.px_hi - self.px_lo)
    }
}

impl Figure {
    /// The figure as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        let bottom_extra = self
            .panels
            .iter()
            .map(|p| category_room(&p.x))
            .fold(0.0, f64::max);
        let panel_h = PANEL_H + bottom_extra;
        let legend_w = if self.legend.is_empty() {
            0.0
        } else {
            let longest = self
                .legend
                .iter()
                .map(|(l, _)| l.chars().count())
                .chain(std::iter::once(self.legend_title.chars().count()))
                .max()
                .unwrap_or(0);
            44.0 + 6.6 * longest as f64
        };
        let legend_h = 28.0 + LEGEND_ROW * self.legend.len() as f64;
        let width = PANEL_W * self.panels.len() as f64 + legend_w + 10.0;
        let height = TITLE_H + panel_h.max(legend_h + 10.0);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT}">"#,
            w = width.ceil(),
            h = height.ceil()
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" font-size="16" text-anchor="middle" fill="black">{}</text>"#,
            width / 2.0,
            escape(&self.title)
        );
        for (i, panel) in self.panels.iter().enumerate() {
            draw_panel(&mut s, panel, i, PANEL_W * i as f64, TITLE_H, bottom_extra);
        }
        if !self.legend.is_empty() {
            draw_legend(
                &mut s,
                &self.legend_title,
                &self.legend,
                PANEL_W * self.panels.len() as f64 + 6.0,
                TITLE_H + MARGIN_TOP,
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// Extra room under a panel for slanted category labels.
fn category_room(axis: &Axis) -> f64 {
    let longest = axis.categories.iter().map(|c| c.chars().count()).max();
    longest.map_or(0.0, |n| (n as f64 * 6.6 * 0.5).min(140.0))
}

fn draw_panel(s: &mut String, panel: &Panel, index: usize, left: f64, top: f64, extra: f64) {
    let (x0, x1) = (left + MARGIN_LEFT, left + PANEL_W - MARGIN_RIGHT);
    let (y0, y1) = (top + MARGIN_TOP, top + PANEL_H - MARGIN_BOTTOM);
    let (xr, yr) = (x_range(panel), y_range(panel));
    let xs = Scale {
        lo: xr.0,
        hi: xr.1,
        log: panel.x.log,
        px_lo: x0,
        px_hi: x1,
    };
    let ys = Scale {
        lo: yr.0,
        hi: yr.1,
        log: panel.y.log,
        px_lo: y1,
        px_hi: y0,
    };
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="13" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        top + 16.0,
        escape(&panel.title)
    );
    // Grid, ticks and tick labels.
    for (v, label) in ticks(&panel.y, yr) {
        let y = ys.map(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.2}" x2="{x1}" y2="{y:.2}" stroke="#e6e6e6"/><text x="{}" y="{:.2}" font-size="11" text-anchor="end">{}</text>"##,
            x0 - 6.0,
            y + 4.0,
            escape(&label)
        );
    }
    for (v, label) in ticks(&panel.x, xr) {
        let x = xs.map(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.2}" y1="{y1}" x2="{x:.2}" y2="{}" stroke="#333333"/>"##,
            y1 + 5.0
        );
        if panel.x.categories.is_empty() {
            let _ = writeln!(
                s,
                r#"<text x="{x:.2}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
                y1 + 17.0,
                escape(&label)
            );
        } else {
            let _ = writeln!(
                s,
                r#"<text x="{x:.2}" y="{ty}" font-size="11" text-anchor="end" transform="rotate(-30 {x:.2} {ty})">{}</text>"#,
                escape(&label),
                ty = y1 + 15.0
            );
        }
    }
    if panel.y.log {
        for v in minor_log_ticks(yr) {
            let y = ys.map(v);
            let _ = writeln!(
                s,
                r##"<line x1="{}" y1="{y:.2}" x2="{x0}" y2="{y:.2}" stroke="#333333"/>"##,
                x0 - 3.0
            );
        }
    }
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="none" stroke="#333333"/>"##,
        x1 - x0,
        y1 - y0
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        y1 + 36.0 + extra,
        escape(&panel.x.label)
    );
    let (lx, ly) = (left + 16.0, (y0 + y1) / 2.0);
    let _ = writeln!(
        s,
        r#"<text x="{lx}" y="{ly}" font-size="12" text-anchor="middle" transform="rotate(-90 {lx} {ly})">{}</text>"#,
        escape(&panel.y.label)
    );
    // Data, clipped to the plot area.
    let clip = format!("clip{index}");
    let _ = writeln!(
        s,
        r#"<clipPath id="{clip}"><rect x="{x0}" y="{y0}" width="{}" height="{}"/></clipPath><g clip-path="url(#{clip})">"#,
        x1 - x0,
        y1 - y0
    );
    for layer in &panel.layers {
        draw_layer(s, layer, &xs, &ys);
    }
    s.push_str("</g>\n");
}

fn dash(style: Style) -> &'static str {
    if style.dashed {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    }
}

fn polyline(s: &mut String, pts: &[(f64, f64)], style: Style, width: f64) {
    if pts.len() < 2 {
        return;
    }
    let d: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.2},{y:.2}")).collect();
    let _ = writeln!(
        s,
        r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{width}"{}/>"#,
        d.join(" "),
        style.color,
        dash(style)
    );
}

fn draw_layer(s: &mut String, layer: &Layer, xs: &Scale, ys: &Scale) {
    match layer {
        Layer::Band { style, points } => {
            let pts: Vec<&Pt> = points.iter().filter(|p| p.y.is_finite()).collect();
            let or = |v: f64, y: f64| if v.is_finite() { v } else { y };
            let mut outline: Vec<String> = pts
                .iter()
                .map(|p| format!("{:.2},{:.2}", xs.map(p.x), ys.map(or(p.hi, p.y))))
                .collect();
            outline.extend(
                pts.iter()
                    .rev()
                    .map(|p| format!("{:.2},{:.2}", xs.map(p.x), ys.map(or(p.lo, p.y)))),
            );
            let _ = writeln!(
                s,
                r#"<polygon points="{}" fill="{}" fill-opacity="0.18" stroke="none"/>"#,
                outline.join(" "),
                style.color
            );
            let line: Vec<(f64, f64)> = pts.iter().map(|p| (xs.map(p.x), ys.map(p.y))).collect();
            polyline(s, &line, *style, 2.0);
        }
        Layer::Bars {
            style,
            points,
            dodge,
        } => {
            let pts: Vec<&Pt> = points.iter().filter(|p| p.y.is_finite()).collect();
            let line: Vec<(f64, f64)> = pts
                .iter()
                .map(|p| (xs.map(p.x) + dodge, ys.map(p.y)))
                .collect();
            polyline(s, &line, *style, 1.8);
            for p in pts {
                let x = xs.map(p.x) + dodge;
                if p.lo.is_finite() && p.hi.is_finite() {
                    let (a, b) = (ys.map(p.lo), ys.map(p.hi));
                    let _ = writeln!(
                        s,
                        r#"<path d="M{x:.2},{a:.2}V{b:.2}M{:.2},{a:.2}H{:.2}M{:.2},{b:.2}H{:.2}" stroke="{}" stroke-width="1.4" fill="none"/>"#,
                        x - 3.0,
                        x + 3.0,
                        x - 3.0,
                        x + 3.0,
                        style.color
                    );
                }
                let _ = writeln!(
                    s,
                    r#"<circle cx="{x:.2}" cy="{:.2}" r="3.2" fill="{}"/>"#,
                    ys.map(p.y),
                    style.color
                );
            }
        }
        Layer::Curve { style, points } => {
            let line: Vec<(f64, f64)> = points
                .iter()
                .filter(|(_, y)| y.is_finite())
                .map(|&(x, y)| (xs.map(x), ys.map(y)))
                .collect();
            polyline(s, &line, *style, 1.3);
        }
        Layer::Steps {
            style,
            edges,
            heights,
        } => {
            let base = ys.map(if ys.log { ys.lo } else { 0.0 });
            let mut d = format!("M{:.2},{base:.2}", xs.map(edges[0]));
            for (i, h) in heights.iter().enumerate() {
                let y = ys.map(*h);
                let _ = write!(d, "V{y:.2}H{:.2}", xs.map(edges[i + 1]));
            }
            let _ = write!(d, "V{base:.2}Z");
            let _ = writeln!(
                s,
                r#"<path d="{d}" fill="{c}" fill-opacity="0.12" stroke="{c}" stroke-width="1.8"{}/>"#,
                dash(*style),
                c = style.color
            );
        }
        Layer::Rule { y, label } => {
            let py = ys.map(*y);
            let _ = writeln!(
                s,
                r##"<line x1="{}" y1="{py:.2}" x2="{}" y2="{py:.2}" stroke="{GRAY}" stroke-dasharray="3 3"/><text x="{}" y="{:.2}" font-size="10" text-anchor="end" fill="{GRAY}">{}</text>"##,
                xs.px_lo,
                xs.px_hi,
                xs.px_hi - 4.0,
                py - 4.0,
                escape(label)
            );
        }
    }
}

fn draw_legend(s: &mut String, title: &str, entries: &[(String, Style)], left: f64, top: f64) {
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="{}" font-size="12" fill="black">{}</text>"#,
        top + 4.0,
        escape(title)
    );
    for (i, (label, style)) in entries.iter().enumerate() {
        let y = top + 24.0 + LEGEND_ROW * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="2.5"{}/><text x="{}" y="{}" font-size="11">{}</text>"#,
            left + 26.0,
            style.color,
            dash(*style),
            left + 32.0,
            y + 4.0,
            escape(label)
        );
    }
}

/// Every finite value a layer puts on one axis.
fn values(panel: &Panel, y_axis: bool) -> Vec<f64> {
    let mut v = Vec::new();
    for layer in &panel.layers {
        match layer {
            Layer::Band { points, .. } | Layer::Bars { points, .. } => {
                for p in points.iter().filter(|p| p.y.is_finite()) {
                    if y_axis {
                        v.extend([p.y, p.lo, p.hi]);
                    } else {
                        v.push(p.x);
                    }
                }
            }
            Layer::Curve { points, .. } => {
                v.extend(points.iter().map(|&(x, y)| if y_axis { y } else { x }))
            }
            Layer::Steps { edges, heights, .. } => {
                if y_axis {
                    v.extend(heights);
                    v.push(0.0);
                } else {
                    v.extend(edges);
                }
            }
            Layer::Rule { y, .. } => {
                if y_axis {
                    v.push(*y);
                }
            }
        }
    }
    v.retain(|x| x.is_finite());
    v
}

fn x_range(panel: &Panel) -> (f64, f64) {
    if !panel.x.categories.is_empty() {
        return (-0.5, panel.x.categories.len() as f64 - 0.5);
    }
    axis_range(&panel.x, &values(panel, false))
}

fn y_range(panel: &Panel) -> (f64, f64) {
    axis_range(&panel.y, &values(panel, true))
}

/// A fixed range, or the data's with 6% room (log axes: whole decades).
fn axis_range(axis: &Axis, data: &[f64]) -> (f64, f64) {
    if let Some(r) = axis.range {
        return r;
    }
    if axis.log {
        let pos: Vec<f64> = data.iter().copied().filter(|&v| v > 0.0).collect();
        let lo = pos.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = pos.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return (0.1, 10.0);
        }
        let (a, b) = (lo.log10().floor(), hi.log10().ceil());
        return (10f64.powf(a), 10f64.powf(if b > a { b } else { a + 1.0 }));
    }
    let lo = data.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 * lo.abs().max(1e-300) || hi == lo {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - pad, hi + pad);
    }
    let pad = 0.06 * (hi - lo);
    (lo - pad, hi + pad)
}

/// Tick positions and labels inside `range`.
fn ticks(axis: &Axis, range: (f64, f64)) -> Vec<(f64, String)> {
    if !axis.categories.is_empty() {
        return axis
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| (i as f64, c.clone()))
            .collect();
    }
    if axis.log {
        let (a, b) = (
            range.0.log10().round() as i32,
            range.1.log10().round() as i32,
        );
        // At most about eight labelled decades.
        let every = ((b - a) / 8 + 1).max(1);
        return (a..=b)
            .filter(|k| (k - a) % every == 0)
            .map(|k| (10f64.powi(k), power_of_ten(k)))
            .collect();
    }
    if let Some(at) = &axis.ticks {
        return at
            .iter()
            .filter(|&&v| v >= range.0 && v <= range.1)
            .map(|&v| (v, tick_label(v, 1.0)))
            .collect();
    }
    let step = nice_step((range.1 - range.0) / 5.0);
    let first = (range.0 / step).ceil() as i64;
    let last = (range.1 / step).floor() as i64;
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            (v, tick_label(v, step))
        })
        .collect()
}

fn minor_log_ticks(range: (f64, f64)) -> Vec<f64> {
    let (a, b) = (
        range.0.log10().round() as i32,
        range.1.log10().round() as i32,
    );
    (a..b)
        .flat_map(|k| (2..10).map(move |m| m as f64 * 10f64.powi(k)))
        .collect()
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-(step.log10().floor())).clamp(0.0, 9.0) as usize;
    let text = format!("{v:.decimals$}");
    if text
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        "0".to_string()
    } else {
        text
    }
}

/// `10⁻³` with Unicode superscripts.
fn power_of_ten(k: i32) -> String {
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let digits: String = k
        .unsigned_abs()
        .to_string()
        .chars()
        .map(|c| SUP[c.to_digit(10).expect("a digit") as usize])
        .collect();
    format!("10{}{digits}", if k < 0 { "⁻" } else { "" })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders SVG documents to PNG, with the embedded font loaded once.
pub struct Rasteriser {
    options: usvg::Options<'static>,
}

impl Default for Rasteriser {
    fn default() -> Self {
        Self::new()
    }
}

impl Rasteriser {
    /// Pixels per SVG unit: 2 keeps text crisp on high-density screens.
    pub const SCALE: f32 = 2.0;

    pub fn new() -> Rasteriser {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(dejavu::sans::regular().to_vec());
        let options = usvg::Options {
            font_family: "DejaVu Sans".to_string(),
            fontdb: Arc::new(db),
            ..usvg::Options::default()
        };
        Rasteriser { options }
    }

    /// Parse an SVG document as a renderer does.
    pub fn parse(&self, svg: &str) -> Result<usvg::Tree, String> {
        usvg::Tree::from_str(svg, &self.options).map_err(|e| e.to_string())
    }

    /// The PNG file of an SVG document, at `SCALE` pixels per unit.
    pub fn png(&self, svg: &str) -> Result<Vec<u8>, String> {
        let tree = self.parse(svg)?;
        let size = tree
            .size()
            .to_int_size()
            .scale_by(Self::SCALE)
            .ok_or("empty figure")?;
        let mut pixmap =
            tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("figure too large")?;
        pixmap.fill(tiny_skia::Color::WHITE);
        resvg::render(
            &tree,
            tiny_skia::Transform::from_scale(Self::SCALE, Self::SCALE),
            &mut pixmap.as_mut(),
        );
        pixmap.encode_png().map_err(|e| e.to_string())
    }
}
