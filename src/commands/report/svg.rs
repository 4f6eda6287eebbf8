//! Inline SVG bar charts for the HTML report: horizontal bars, each a stack of segments, with
//! their numbers written beside them. No script, no external asset.

use super::html::escape;

/// One segment of a bar: its length in the chart's unit, its CSS class, its words.
pub struct Segment {
    pub value: f64,
    pub class: &'static str,
    pub text: String,
}

pub struct Bar {
    pub label: String,
    pub segments: Vec<Segment>,
}

const LABEL_WIDTH: f64 = 260.0;
const PLOT_WIDTH: f64 = 420.0;
const TEXT_WIDTH: f64 = 260.0;
const BAR_HEIGHT: f64 = 16.0;
const GAP: f64 = 6.0;

/// A chart titled `title` whose bars run from 0 to `max` (in `unit`).
pub fn bars(title: &str, unit: &str, max: f64, bars: &[Bar]) -> String {
    let height = 30.0 + bars.len() as f64 * (BAR_HEIGHT + GAP);
    let width = LABEL_WIDTH + PLOT_WIDTH + TEXT_WIDTH;
    let scale = if max > 0.0 { PLOT_WIDTH / max } else { 0.0 };
    let mut svg = format!(
        "<figure><svg role=\"img\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\">\
         <title>{title}</title>\
         <text x=\"{LABEL_WIDTH}\" y=\"14\" class=\"axis\">0</text>\
         <text x=\"{end}\" y=\"14\" class=\"axis\" text-anchor=\"end\">{max} {unit}</text>",
        title = escape(title),
        end = LABEL_WIDTH + PLOT_WIDTH,
        unit = escape(unit),
    );
    for (index, bar) in bars.iter().enumerate() {
        let y = 22.0 + index as f64 * (BAR_HEIGHT + GAP);
        svg.push_str(&format!(
            "<text x=\"{x}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>",
            x = LABEL_WIDTH - 6.0,
            ty = y + BAR_HEIGHT - 4.0,
            label = escape(&bar.label)
        ));
        let mut x = LABEL_WIDTH;
        for segment in &bar.segments {
            let w = (segment.value.max(0.0) * scale).min(LABEL_WIDTH + PLOT_WIDTH - x);
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{BAR_HEIGHT}\" class=\"{class}\"><title>{text}</title></rect>",
                class = segment.class,
                text = escape(&segment.text)
            ));
            x += w;
        }
        let words: Vec<&str> = bar.segments.iter().map(|s| s.text.as_str()).collect();
        svg.push_str(&format!(
            "<text x=\"{tx}\" y=\"{ty}\">{words}</text>",
            tx = LABEL_WIDTH + PLOT_WIDTH + 6.0,
            ty = y + BAR_HEIGHT - 4.0,
            words = escape(&words.join(", "))
        ));
    }
    svg.push_str(&format!(
        "</svg><figcaption>{}</figcaption></figure>\n",
        escape(title)
    ));
    svg
}
