//! The HTML page escapes everything that comes from the input.

use crate::run;
use forklift_profile::render_html;

#[test]
fn hostile_names_values_and_titles_are_escaped() {
    let input = "\"<script>alert(1)</script>\",n\n\"<img src=x onerror=alert(2)>\",1\nb&b,2\n";
    let report = run(input.as_bytes());
    assert_eq!(report.columns[0].name, "<script>alert(1)</script>");
    let page = render_html(&report, "</title><script>alert(3)</script>");
    assert!(!page.contains("<script"), "unescaped script tag");
    assert!(!page.contains("<img"), "unescaped img tag");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(page.contains("b&amp;b"));
}

#[test]
fn the_page_is_self_contained_with_charts() {
    let mut input = String::from("amount,when,city\n");
    for i in 0..500 {
        input.push_str(&format!(
            "{}.5,2024-01-{:02},{}\n",
            i % 97,
            i % 28 + 1,
            ["oslo", "lima"][i % 2]
        ));
    }
    let page = render_html(&run(input.as_bytes()), "Sales");
    assert!(page.starts_with("<!DOCTYPE html>"));
    // One histogram per numeric or date column, one null bar per column in each table.
    assert_eq!(page.matches("aria-label=\"histogram\"").count(), 2);
    assert_eq!(page.matches("% null</title>").count(), 6);
    for external in ["src=", "href=\"http", "@import", "url(", "<link", "<script"] {
        assert!(!page.contains(external), "{external}");
    }
}
