//! The report as one self-contained HTML page: inline CSS, server-drawn SVG, no script.

use crate::report::{Column, ColumnType, Histogram, Report, Scalar};
use std::fmt::Write;

/// The standalone page's own rules: the document around the report.
const PAGE_STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1d2330}\
h1{font-size:1.5rem;overflow-wrap:anywhere}";

/// The report's layout, every rule scoped to the `.profile-report` element that
/// [`render_body`] wraps the report in, so a page embedding the report keeps its own
/// style elsewhere. [`render_html`] inlines it; a page whose Content-Security-Policy
/// forbids inline style serves it as a stylesheet. Colours may be themed by setting
/// `--report-line`, `--report-muted`, `--report-tag` and `--report-radius` on an ancestor.
///
/// Wide tables scroll inside their own box (the overview keeps a width its columns can
/// be read at) and charts shrink to the width available, so the report is never wider
/// than the screen.
pub const REPORT_CSS: &str = "\
.profile-report h2{font-size:1.2rem;margin:2rem 0 .5rem}\
.profile-report h3{font-size:1.05rem;margin:0;min-width:0;overflow-wrap:anywhere}\
.profile-report .table-scroll{max-width:100%;overflow-x:auto;margin:.5rem 0}\
.profile-report table{border-collapse:collapse;margin:.5rem 0}\
.profile-report th,.profile-report td{padding:.2rem .6rem;border-bottom:1px solid var(--report-line,#e3e6ec);\
text-align:left;vertical-align:top}\
.profile-report td.n{text-align:right;font-variant-numeric:tabular-nums}\
.profile-report section{border:1px solid var(--report-line,#e3e6ec);border-radius:var(--report-radius,6px);\
padding:1rem;margin:1rem 0;min-width:0}\
.profile-report .column-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:.25rem .6rem;margin:0 0 .5rem}\
.profile-report .type{font-size:.75rem;background:var(--report-tag,#eef1f6);border-radius:4px;padding:.1rem .4rem}\
.profile-report .cols{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}\
.profile-report .cols>*{min-width:0;max-width:100%}\
.profile-report .histogram{display:block;max-width:100%;height:auto}\
.profile-report .muted{color:var(--report-muted,#6b7383)}\
.profile-report code{overflow-wrap:anywhere}\
.profile-report .table-scroll code{overflow-wrap:normal}\
.profile-report table.overview{min-width:48rem}\
.profile-report table.overview a{overflow-wrap:anywhere}\
.profile-report svg text{font:11px system-ui,sans-serif;fill:var(--report-muted,#6b7383)}";

/// Renders `report` as a complete HTML document titled `title`.
///
/// Everything taken from the input — column names, values, messages — and the title are
/// escaped, so a hostile file cannot inject markup or script into the page.
pub fn render_html(report: &Report, title: &str) -> String {
    let mut out = String::with_capacity(16 * 1024 + report.columns.len() * 4096);
    let title = escape(title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{PAGE_STYLE}{REPORT_CSS}</style></head><body><h1>{title}</h1>"
    );
    out.push_str(&render_body(report));
    out.push_str("</body></html>\n");
    out
}

/// The report's content without the document around it — summary, overview table,
/// bad rows and one section per column with its SVG charts — in one
/// `<div class="profile-report">`, for embedding in a page that also loads
/// [`REPORT_CSS`], the same layout [`render_html`] uses. Escaped like [`render_html`];
/// no script, no inline style attributes (so a strict Content-Security-Policy allows it).
pub fn render_body(report: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024 + report.columns.len() * 4096);
    out.push_str("<div class=\"profile-report\">");
    summary(&mut out, report);
    overview(&mut out, report);
    bad_rows(&mut out, report);
    out.push_str("<h2>Columns</h2>");
    for column in &report.columns {
        column_section(&mut out, column, report.rows);
    }
    out.push_str("</div>");
    out
}

fn summary(out: &mut String, r: &Report) {
    let delimiter = match r.dialect.delimiter {
        '\t' => "tab".to_string(),
        d => format!("<code>{}</code>", escape(&d.to_string())),
    };
    let _ = write!(
        out,
        "<p>{} rows × {} columns, {} bytes. {} bad rows, {} blank lines. Delimiter {delimiter}, \
         quote <code>{}</code>, {}{}.</p>",
        r.rows,
        r.columns.len(),
        r.bytes,
        r.bad_rows.count,
        r.blank_lines,
        escape(&r.dialect.quote.to_string()),
        if r.dialect.header {
            "header row"
        } else {
            "no header row"
        },
        if r.dialect.bom {
            ", UTF-8 byte-order mark"
        } else {
            ""
        },
    );
}

fn overview(out: &mut String, r: &Report) {
    out.push_str(
        "<h2>Overview</h2><div class=\"table-scroll\"><table class=\"overview\"><tr><th>#</th><th>Column</th><th>Type</th><th>Nulls</th>\
         <th>Distinct</th><th>Min</th><th>Max</th><th>Mean</th></tr>",
    );
    for c in &r.columns {
        let _ = write!(
            out,
            "<tr><td class=\"n\">{}</td><td><a href=\"#col-{}\">{}</a></td><td>{}</td><td>{}</td>\
             <td class=\"n\">{}{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            c.index + 1,
            c.index,
            escape(&c.name),
            type_name(c.kind),
            null_bar(c.nulls, r.rows),
            if c.distinct.exact { "" } else { "≈" },
            c.distinct.value,
            c.min.as_ref().map_or(String::new(), scalar),
            c.max.as_ref().map_or(String::new(), scalar),
            c.mean.map_or(String::new(), number),
        );
    }
    out.push_str("</table></div>");
}

fn bad_rows(out: &mut String, r: &Report) {
    if r.bad_rows.count == 0 {
        return;
    }
    let _ = write!(
        out,
        "<h2>Bad rows ({})</h2><div class=\"table-scroll\"><table><tr><th>Line</th>\
         <th>Problem</th></tr>",
        r.bad_rows.count
    );
    for row in &r.bad_rows.examples {
        let _ = write!(
            out,
            "<tr><td class=\"n\">{}</td><td>{}</td></tr>",
            row.line,
            escape(&row.message)
        );
    }
    out.push_str("</table></div>");
    let listed = r.bad_rows.examples.len() as u64;
    if listed < r.bad_rows.count {
        let _ = write!(out, "<p class=\"muted\">The first {listed} are listed.</p>");
    }
}

fn column_section(out: &mut String, c: &Column, rows: u64) {
    let _ = write!(
        out,
        "<section id=\"col-{}\"><div class=\"column-head\"><h3>{}</h3>\
         <span class=\"type\">{}</span></div><div class=\"cols\"><table>",
        c.index,
        escape(&c.name),
        type_name(c.kind)
    );
    let mut stat = |label: &str, value: String| {
        let _ = write!(out, "<tr><th>{label}</th><td class=\"n\">{value}</td></tr>");
    };
    stat("Values", c.count.to_string());
    stat("Nulls", format!("{} {}", c.nulls, null_bar(c.nulls, rows)));
    stat(
        "Distinct",
        format!(
            "{}{}",
            if c.distinct.exact { "" } else { "≈ " },
            c.distinct.value
        ),
    );
    if let Some(v) = &c.min {
        stat("Min", scalar(v));
    }
    if let Some(v) = &c.max {
        stat("Max", scalar(v));
    }
    if let Some(v) = c.mean {
        stat("Mean", number(v));
    }
    if let Some(v) = c.stddev {
        stat("Std. dev.", number(v));
    }
    if let Some(q) = &c.quantiles {
        for (label, v) in [
            ("p1", &q.p1),
            ("p5", &q.p5),
            ("p25", &q.p25),
            ("Median", &q.p50),
        ] {
            stat(label, scalar(v));
        }
        for (label, v) in [("p75", &q.p75), ("p95", &q.p95), ("p99", &q.p99)] {
            stat(label, scalar(v));
        }
    }
    if let (Some(lo), Some(hi)) = (c.min_length, c.max_length) {
        stat("Length", format!("{lo}–{hi}"));
    }
    out.push_str("</table>");
    if let Some(h) = &c.histogram {
        histogram_svg(out, h, c.kind);
    }
    top_values(out, c);
    out.push_str("</div></section>");
}

fn top_values(out: &mut String, c: &Column) {
    if c.top_values.is_empty() {
        return;
    }
    out.push_str("<table><tr><th>Most frequent</th><th>Count</th></tr>");
    for entry in &c.top_values {
        let approx = if entry.error > 0 { "≤ " } else { "" };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=\"n\">{approx}{}</td></tr>",
            escape(&entry.value),
            entry.count
        );
    }
    out.push_str("</table>");
}

/// A thin bar whose red part is the fraction of null cells.
fn null_bar(nulls: u64, rows: u64) -> String {
    let fraction = if rows == 0 {
        0.0
    } else {
        nulls as f64 / rows as f64
    };
    format!(
        "<svg width=\"80\" height=\"10\" role=\"img\" aria-label=\"{pct:.1}% null\">\
         <title>{pct:.1}% null</title><rect width=\"80\" height=\"10\" fill=\"#dfe8f5\"/>\
         <rect width=\"{:.1}\" height=\"10\" fill=\"#d9534f\"/></svg>",
        80.0 * fraction,
        pct = 100.0 * fraction
    )
}

fn histogram_svg(out: &mut String, h: &Histogram, kind: ColumnType) {
    const W: f64 = 420.0;
    const H: f64 = 140.0;
    const AXIS: f64 = 18.0;
    let peak = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bar = W / h.counts.len().max(1) as f64;
    let _ = write!(
        out,
        "<svg class=\"histogram\" width=\"{W}\" height=\"{}\" viewBox=\"0 0 {W} {}\" \
         role=\"img\" aria-label=\"histogram\">",
        H + AXIS,
        H + AXIS
    );
    for (i, &count) in h.counts.iter().enumerate() {
        let height = H * count as f64 / peak;
        let lo = h.start + i as f64 * h.width;
        let _ = write!(
            out,
            "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{height:.2}\" fill=\"#4a78c2\">\
             <title>[{}, {}): {count}</title></rect>",
            i as f64 * bar,
            H - height,
            (bar - 1.0).max(0.5),
            escape(&axis_label(lo, kind)),
            escape(&axis_label(lo + h.width, kind)),
        );
    }
    let end = h.start + h.counts.len() as f64 * h.width;
    let _ = write!(
        out,
        "<text x=\"0\" y=\"{y}\">{}</text><text x=\"{W}\" y=\"{y}\" text-anchor=\"end\">{}</text></svg>",
        escape(&axis_label(h.start, kind)),
        escape(&axis_label(end, kind)),
        y = H + AXIS - 4.0,
    );
}

fn axis_label(x: f64, kind: ColumnType) -> String {
    match kind {
        ColumnType::Date => crate::value::format_date(x),
        ColumnType::Datetime => crate::value::format_datetime(x),
        _ => number(x),
    }
}

fn type_name(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::Empty => "empty",
        ColumnType::Integer => "integer",
        ColumnType::Float => "float",
        ColumnType::Boolean => "boolean",
        ColumnType::Date => "date",
        ColumnType::Datetime => "datetime",
        ColumnType::String => "string",
    }
}

fn scalar(v: &Scalar) -> String {
    match v {
        Scalar::Integer(i) => i.to_string(),
        Scalar::Float(x) => number(*x),
        Scalar::Text(s) => format!("<code>{}</code>", escape(s)),
    }
}

/// A number with about six significant digits, in plain notation where that stays short.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x != 0.0 && (x.abs() >= 1e9 || x.abs() < 1e-4) {
        format!("{x:.4e}")
    } else {
        let s = format!("{x:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn numbers_stay_short() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(1.0 / 3.0), "0.333333");
        assert_eq!(number(1.5e-7), "1.5000e-7");
    }
}
