//! SVG charts drawn on the server: lanes of a shared time axis (lines, confidence bands, stacked
//! bars, intervals, markers), sparklines and the time axis. Output is SVG text; every label that
//! may come from user data goes through [`esc`].
//!
//! All lanes use the same `viewBox` width, so one x position is one instant on every lane, and
//! the browser scales them together.

use std::fmt::Write;

use crate::time_range::rfc3339;

/// The width of every lane's `viewBox`.
pub const WIDTH: f64 = 1000.0;

/// Escapes text for SVG/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The colours series are drawn in, in order.
pub const PALETTE: &[&str] = &[
    "#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
];

pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// The x axis of a set of lanes: `[from, to)` in Unix nanoseconds mapped onto `[0, WIDTH]`.
#[derive(Debug, Clone, Copy)]
pub struct XAxis {
    pub from: i64,
    pub to: i64,
}

impl XAxis {
    pub fn x(&self, t: i64) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        ((t - self.from) as f64 / span * WIDTH).clamp(0.0, WIDTH)
    }
}

/// A line's look.
#[derive(Debug, Clone, Copy)]
pub struct Stroke {
    pub color: &'static str,
    pub dashed: bool,
}

/// One lane: a stack of layers drawn over buckets of equal width.
pub struct Lane {
    axis: XAxis,
    height: f64,
    /// Bucket starts (Unix nanoseconds) and width (nanoseconds).
    buckets: Vec<i64>,
    bucket_width: i64,
    y_max: f64,
    body: String,
}

impl Lane {
    pub fn new(axis: XAxis, height: f64, buckets: &[i64], bucket_width: i64, y_max: f64) -> Lane {
        Lane {
            axis,
            height,
            buckets: buckets.to_vec(),
            bucket_width,
            y_max: if y_max > 0.0 && y_max.is_finite() {
                y_max
            } else {
                1.0
            },
            body: String::new(),
        }
    }

    fn y(&self, v: f64) -> f64 {
        let pad = 4.0;
        let h = self.height - 2.0 * pad;
        pad + h - (v / self.y_max).clamp(0.0, 1.0) * h
    }

    /// The x of a bucket's middle.
    fn mid(&self, i: usize) -> f64 {
        self.axis.x(self.buckets[i] + self.bucket_width / 2)
    }

    /// A polyline per run of present values (gaps stay gaps); single points become dots.
    pub fn line(&mut self, values: &[Option<f64>], stroke: Stroke) {
        let dash = if stroke.dashed {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, body: &mut String| {
            match run.len() {
                0 => {}
                1 => {
                    let _ = write!(
                        body,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{}\"/>",
                        run[0].0, run[0].1, stroke.color
                    );
                }
                _ => {
                    let pts: Vec<String> =
                        run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                    let _ = write!(
                        body,
                        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" vector-effect=\"non-scaling-stroke\"{dash} points=\"{}\"/>",
                        stroke.color,
                        pts.join(" ")
                    );
                }
            }
            run.clear();
        };
        let mut body = std::mem::take(&mut self.body);
        for (i, v) in values.iter().enumerate().take(self.buckets.len()) {
            match v {
                Some(v) if v.is_finite() => run.push((self.mid(i), self.y(*v))),
                _ => flush(&mut run, &mut body),
            }
        }
        flush(&mut run, &mut body);
        self.body = body;
    }

    /// A line through every present value, bridging gaps: for gauges sampled less often than
    /// the buckets, where a gap means "no sample here", not "no value".
    pub fn line_through_gaps(&mut self, values: &[Option<f64>], stroke: Stroke) {
        let present: Vec<Option<f64>> = values.iter().copied().filter(Option::is_some).collect();
        let xs: Vec<usize> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_some())
            .map(|(i, _)| i)
            .collect();
        if present.is_empty() {
            return;
        }
        let pts: Vec<String> = xs
            .iter()
            .zip(&present)
            .map(|(&i, v)| format!("{:.1},{:.1}", self.mid(i), self.y(v.unwrap_or(0.0))))
            .collect();
        let dash = if stroke.dashed {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let _ = write!(
            self.body,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" vector-effect=\"non-scaling-stroke\"{dash} points=\"{}\"/>",
            stroke.color,
            pts.join(" ")
        );
    }

    /// A shaded band between `lo` and `hi` (a confidence interval), per run of present values.
    pub fn band(&mut self, lo: &[Option<f64>], hi: &[Option<f64>], color: &str) {
        let mut i = 0;
        let n = self.buckets.len().min(lo.len()).min(hi.len());
        while i < n {
            if lo[i].is_none() || hi[i].is_none() {
                i += 1;
                continue;
            }
            let start = i;
            while i < n && lo[i].is_some() && hi[i].is_some() {
                i += 1;
            }
            let mut pts: Vec<String> = (start..i)
                .map(|k| format!("{:.1},{:.1}", self.mid(k), self.y(hi[k].unwrap_or(0.0))))
                .collect();
            pts.extend(
                (start..i)
                    .rev()
                    .map(|k| format!("{:.1},{:.1}", self.mid(k), self.y(lo[k].unwrap_or(0.0)))),
            );
            let _ = write!(
                self.body,
                "<polygon fill=\"{color}\" fill-opacity=\"0.15\" stroke=\"none\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
    }

    /// Stacked bars: `layers[k][i]` is layer k's height in bucket i. One `<path>` per layer
    /// keeps a day of buckets small on the wire.
    pub fn stacked_bars(&mut self, layers: &[(&'static str, &[u64])]) {
        let mut base = vec![0.0; self.buckets.len()];
        for (color, counts) in layers {
            let mut d = String::new();
            for (i, b) in base.iter_mut().enumerate() {
                let v = counts.get(i).copied().unwrap_or(0) as f64;
                if v <= 0.0 {
                    continue;
                }
                let x0 = self.axis.x(self.buckets[i]);
                let x1 = self.axis.x(self.buckets[i] + self.bucket_width);
                let w = ((x1 - x0) * 0.85).max(0.5);
                let (top, bottom) = (self.y(*b + v), self.y(*b));
                let _ = write!(
                    d,
                    "M{x0:.1} {top:.1}h{w:.1}v{:.1}h-{w:.1}z",
                    (bottom - top).max(0.5)
                );
                *b += v;
            }
            if !d.is_empty() {
                let _ = write!(self.body, "<path fill=\"{color}\" d=\"{d}\"/>");
            }
        }
    }

    /// A thin vertical line at `t` (a change, repeated on every lane; no hover target).
    pub fn rule(&mut self, t: i64, class: &str) {
        let x = self.axis.x(t);
        let _ = write!(
            self.body,
            "<line class=\"{class}\" vector-effect=\"non-scaling-stroke\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"0\" y2=\"{:.1}\"/>",
            self.height
        );
    }

    /// A marked interval `[from, to)` across the lane's height, with a hover title.
    pub fn interval(&mut self, from: i64, to: i64, class: &str, title: &str) {
        let (x0, x1) = (self.axis.x(from), self.axis.x(to));
        let _ = write!(
            self.body,
            "<rect class=\"{class}\" x=\"{x0:.1}\" y=\"0\" width=\"{:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
            (x1 - x0).max(2.0),
            self.height,
            esc(title)
        );
    }

    /// A vertical marker at `t`, with a hover title.
    pub fn marker(&mut self, t: i64, class: &str, title: &str) {
        let x = self.axis.x(t);
        let _ = write!(
            self.body,
            "<g class=\"{class}\"><line vector-effect=\"non-scaling-stroke\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"0\" y2=\"{h:.1}\"/>\
             <rect x=\"{:.1}\" y=\"0\" width=\"8\" height=\"{h:.1}\" fill-opacity=\"0\"/><title>{}</title></g>",
            x - 4.0,
            esc(title),
            h = self.height
        );
    }

    /// The SVG element. `name` names it for scripts and tests (`data-chart`). It stretches to
    /// its box (`preserveAspectRatio="none"`), so it carries no text; labels live in the HTML.
    pub fn render(&self, name: &str) -> String {
        format!(
            "<svg class=\"lane-chart\" data-chart=\"{}\" viewBox=\"0 0 {WIDTH} {h}\" preserveAspectRatio=\"none\" \
             role=\"img\"><line class=\"baseline\" x1=\"0\" x2=\"{WIDTH}\" y1=\"{b:.1}\" y2=\"{b:.1}\"/>{}</svg>",
            esc(name),
            self.body,
            h = self.height,
            b = self.height - 4.0,
        )
    }
}

/// The time axis under the lanes: six labels placed by percentage (HTML, so text is not
/// stretched with the lanes).
pub fn time_axis(axis: XAxis) -> String {
    let span = (axis.to - axis.from).max(1);
    let mut out = String::from("<div class=\"time-axis\">");
    for k in 0..=5 {
        let t = axis.from + span / 5 * k;
        let label = rfc3339(t);
        // The date only when the range spans days.
        let label = if span > 86_400_000_000_000 {
            label[5..16].replace('T', " ")
        } else {
            label[11..16].to_string()
        };
        let _ = write!(
            out,
            "<span class=\"tick t{k}\" style=\"left:{:.2}%\">{label}</span>",
            axis.x(t) / WIDTH * 100.0
        );
    }
    out.push_str("</div>");
    out
}

/// A small line of counts, for table cells.
pub fn sparkline(values: &[u64]) -> String {
    let (w, h) = (120.0, 24.0);
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = values.len().max(2) as f64 - 1.0;
    let pts: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 / n * w,
                h - 2.0 - *v as f64 / max * (h - 4.0)
            )
        })
        .collect();
    format!(
        "<svg class=\"sparkline\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">\
         <polyline fill=\"none\" stroke=\"#2563eb\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        pts.join(" ")
    )
}

/// The largest present value, for a lane's y scale.
pub fn max_of<'a>(series: impl IntoIterator<Item = &'a [Option<f64>]>) -> f64 {
    series
        .into_iter()
        .flat_map(|s| s.iter().flatten())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        let axis = XAxis { from: 0, to: 100 };
        let mut lane = Lane::new(axis, 40.0, &[0, 50], 50, 1.0);
        lane.marker(50, "change-marker", "model <b>");
        let svg = lane.render("changes");
        assert!(
            svg.contains("model &lt;b&gt;") && !svg.contains("<b>"),
            "{svg}"
        );
    }

    #[test]
    fn gaps_split_lines_and_lone_points_are_dots() {
        let axis = XAxis { from: 0, to: 40 };
        let mut lane = Lane::new(axis, 40.0, &[0, 10, 20, 30], 10, 1.0);
        lane.line(
            &[Some(0.5), Some(1.0), None, Some(0.2)],
            Stroke {
                color: "#000",
                dashed: false,
            },
        );
        let svg = lane.render("x");
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
    }
}
