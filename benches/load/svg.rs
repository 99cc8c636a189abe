//! The plot for BENCHMARKS.md, as hand-written SVG (a plotting crate would cost more build time
//! than these two charts are worth): throughput per scenario and target as bars, and latency
//! p50/p90/p99 on a log axis.

use crate::report::Row;

const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 260.0;
const ROW_H: f64 = 22.0;
const PLOT_W: f64 = WIDTH - LABEL_W - 90.0;

fn color(target: &str) -> &'static str {
    match target {
        "gumcp" => "#2b6cb0",
        "floor" => "#718096",
        "rmcp-default" => "#dd6b20",
        "rmcp-tuned" => "#c05621",
        "bare-upstream" => "#a0aec0",
        _ => "#38a169",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn render(rows: &[Row], title: &str) -> String {
    let rated: Vec<&Row> = rows.iter().filter(|r| r.rps > 0.0).collect();
    let timed: Vec<&Row> = rows.iter().filter(|r| r.requests > 0).collect();
    let top1 = 60.0;
    let height1 = rated.len() as f64 * ROW_H;
    let top2 = top1 + height1 + 80.0;
    let height2 = timed.len() as f64 * ROW_H;
    let total = top2 + height2 + 70.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{total}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>\n\
         <text x=\"10\" y=\"{}\" font-weight=\"bold\">Throughput (requests/s; session-cycle: cycles/s)</text>\n",
        escape(title),
        top1 - 12.0
    );
    let max_rps = rated.iter().map(|r| r.rps).fold(1.0, f64::max);
    for (i, row) in rated.iter().enumerate() {
        let y = top1 + i as f64 * ROW_H;
        let w = (row.rps / max_rps * PLOT_W).max(1.0);
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} · {}</text>\
             <rect x=\"{LABEL_W}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\">{:.0}</text>\n",
            LABEL_W - 6.0,
            y + 14.0,
            escape(&row.scenario),
            escape(&row.target),
            y + 3.0,
            ROW_H - 6.0,
            color(&row.target),
            LABEL_W + w + 4.0,
            y + 14.0,
            row.rps
        ));
    }
    // Latency: log10 axis from 10 µs to the largest p99/max seen.
    let lo = 0.01f64.log10();
    let hi = timed
        .iter()
        .map(|r| r.p99_ms.max(r.p50_ms))
        .fold(1.0, f64::max)
        .log10()
        .ceil();
    let x_of = |v: f64| LABEL_W + (v.max(0.01).log10() - lo) / (hi - lo) * PLOT_W;
    svg.push_str(&format!(
        "<text x=\"10\" y=\"{}\" font-weight=\"bold\">Latency, ms (log scale): \
         <tspan fill=\"#2f855a\">● p50</tspan>  <tspan fill=\"#d69e2e\">● p90</tspan>  \
         <tspan fill=\"#c53030\">● p99</tspan></text>\n",
        top2 - 12.0
    ));
    let mut decade = lo;
    while decade <= hi {
        let x = x_of(10f64.powf(decade));
        svg.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{top2}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#e2e8f0\"/>\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#4a5568\">{}</text>\n",
            top2 + height2,
            top2 + height2 + 16.0,
            10f64.powf(decade)
        ));
        decade += 1.0;
    }
    for (i, row) in timed.iter().enumerate() {
        let y = top2 + i as f64 * ROW_H + ROW_H / 2.0;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} · {}</text>\
             <line x1=\"{:.1}\" y1=\"{y}\" x2=\"{:.1}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"2\"/>\n",
            LABEL_W - 6.0,
            y + 4.0,
            escape(&row.scenario),
            escape(&row.target),
            x_of(row.p50_ms),
            x_of(row.p99_ms),
            color(&row.target)
        ));
        for (value, fill) in [
            (row.p50_ms, "#2f855a"),
            (row.p90_ms, "#d69e2e"),
            (row.p99_ms, "#c53030"),
        ] {
            svg.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"4\" fill=\"{fill}\"/>",
                x_of(value)
            ));
        }
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" fill=\"#4a5568\">{:.3} / {:.3} / {:.3}</text>\n",
            x_of(row.p99_ms) + 8.0,
            y + 4.0,
            row.p50_ms,
            row.p90_ms,
            row.p99_ms
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
