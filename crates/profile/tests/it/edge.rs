//! Awkward inputs: dialects, quoting, broken rows, null markers, inputs that are not CSV.

use crate::{col, run, run_with};
use forklift_profile::report::{BadRowKind, ColumnType, SCHEMA, Scalar};
use forklift_profile::{ProfileError, ProfileOptions};

#[test]
fn bom_crlf_and_quoted_newlines_and_delimiters() {
    let input =
        "\u{FEFF}id,note,amount\r\n1,\"hello, world\",2.5\r\n2,\"line1\r\nline2\",3\r\n3,,\r\n";
    let r = run(input.as_bytes());
    assert!(r.dialect.bom && r.dialect.header);
    assert_eq!((r.dialect.delimiter, r.rows, r.bad_rows.count), (',', 3, 0));
    assert_eq!(r.bytes, input.len() as u64);
    assert_eq!(col(&r, "id").kind, ColumnType::Integer);
    let note = col(&r, "note");
    assert_eq!(
        (note.kind, note.count, note.nulls),
        (ColumnType::String, 2, 1)
    );
    assert!(note.top_values.iter().any(|t| t.value == "line1\r\nline2"));
    assert!(note.top_values.iter().any(|t| t.value == "hello, world"));
    let amount = col(&r, "amount");
    assert_eq!(
        (amount.kind, amount.count, amount.nulls, amount.mean),
        (ColumnType::Float, 2, 1, Some(2.75))
    );
}

#[test]
fn ragged_rows_are_reported_with_line_numbers() {
    let r = run(b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n");
    assert_eq!(
        (
            r.rows,
            r.bad_rows.count,
            r.bad_rows.by_kind.wrong_field_count
        ),
        (2, 2, 2)
    );
    let lines: Vec<u64> = r.bad_rows.examples.iter().map(|b| b.line).collect();
    assert_eq!(lines, [3, 4]);
    assert_eq!(r.bad_rows.examples[0].kind, BadRowKind::WrongFieldCount);
    assert_eq!(r.bad_rows.examples[1].message, "expected 3 fields, found 4");
    assert_eq!(col(&r, "a").max, Some(Scalar::Integer(10)));
}

#[test]
fn examples_are_capped_but_all_bad_rows_counted() {
    let mut input = String::from("a,b\n");
    for i in 0..500 {
        input.push_str(if i % 2 == 0 { "1,2\n" } else { "1\n" });
    }
    let mut opts = ProfileOptions::default();
    opts.max_bad_row_examples = 5;
    let r = run_with(input.as_bytes(), &opts).unwrap();
    assert_eq!(
        (r.rows, r.bad_rows.count, r.bad_rows.examples.len()),
        (250, 250, 5)
    );
}

#[test]
fn empty_columns_and_null_markers() {
    let r = run(b"a,b,c\n1,,NULL\n2,,NA\nN/A,, \n4,,x\n");
    let a = col(&r, "a");
    assert_eq!((a.kind, a.count, a.nulls), (ColumnType::Integer, 3, 1));
    let b = col(&r, "b");
    assert_eq!(
        (b.kind, b.count, b.nulls, b.min.clone()),
        (ColumnType::Empty, 0, 4, None)
    );
    let c = col(&r, "c");
    assert_eq!((c.kind, c.count, c.nulls), (ColumnType::String, 1, 3));
}

#[test]
fn mixed_types_settle_on_the_common_type() {
    let input = "i,f,s,d,dt,b\n\
                 1,1,1,2024-01-01,2024-01-01,true\n\
                 2,2.5,x,2024-01-03,2024-01-02T10:30:00Z,No\n\
                 3,-4e2,3,2023-12-31,2024-01-02 11:00,FALSE\n";
    let r = run(input.as_bytes());
    let kinds: Vec<ColumnType> = r.columns.iter().map(|c| c.kind).collect();
    use ColumnType::*;
    assert_eq!(kinds, [Integer, Float, String, Date, Datetime, Boolean]);
    let s = col(&r, "s");
    assert_eq!(
        (s.type_counts.integer, s.type_counts.string, s.mean),
        (2, 1, None)
    );
    assert_eq!(col(&r, "f").min, Some(Scalar::Float(-400.0)));
    let d = col(&r, "d");
    assert_eq!(d.min, Some(Scalar::Text("2023-12-31".into())));
    assert_eq!(d.max, Some(Scalar::Text("2024-01-03".into())));
    assert_eq!(
        col(&r, "dt").max,
        Some(Scalar::Text("2024-01-02T11:00:00Z".into()))
    );
    assert!(col(&r, "d").histogram.is_some() && col(&r, "b").histogram.is_none());
}

#[test]
fn semicolons_tabs_pipes_without_header() {
    for delimiter in [';', '\t', '|'] {
        let input = "1;2,5;x\n2;3,5;y\n3;4,5;z\n".replace(';', &delimiter.to_string());
        let r = run(input.as_bytes());
        assert_eq!(
            (r.dialect.delimiter, r.dialect.header, r.rows),
            (delimiter, false, 3)
        );
        let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["column_1", "column_2", "column_3"]);
        assert_eq!(r.columns[0].kind, ColumnType::Integer);
    }
}

#[test]
fn a_non_utf8_line_is_a_bad_row() {
    let r = run(b"a,b\n1,x\n2,\xFF\xFE\n3,z\n");
    assert_eq!((r.rows, r.bad_rows.by_kind.invalid_utf8), (2, 1));
    assert_eq!(r.bad_rows.examples[0].line, 3);
    assert_eq!(col(&r, "a").max, Some(Scalar::Integer(3)));
}

#[test]
fn an_unterminated_quote_is_reported_not_fatal() {
    let r = run(b"a,b\n1,x\n2,\"oops\n3,y\n4,z\n");
    assert_eq!((r.rows, r.bad_rows.by_kind.unterminated_quote), (1, 1));
    assert_eq!(r.bad_rows.examples[0].line, 3);
}

#[test]
fn blank_lines_are_skipped_and_counted() {
    let r = run(b"a,b\n\n1,2\n\r\n3,4\n\n");
    assert_eq!((r.rows, r.blank_lines, r.bad_rows.count), (2, 3, 0));
}

#[test]
fn long_values_are_capped() {
    let long = "é".repeat(500);
    let r = run(format!("a\n{long}\n{long}\n").as_bytes());
    let a = col(&r, "a");
    assert_eq!(a.max_length, Some(500));
    assert!(a.top_values[0].value.len() <= 80 + '…'.len_utf8());
    assert!(a.top_values[0].value.ends_with('…'));
    assert_eq!(a.top_values[0].count, 2);
}

#[test]
fn inputs_that_are_not_csv_are_refused_clearly() {
    let opts = ProfileOptions::default();
    let err = |input: &[u8]| crate::run_with(input, &opts).unwrap_err();
    assert!(matches!(err(b""), ProfileError::Empty));
    assert!(matches!(err(b"\xEF\xBB\xBF"), ProfileError::Empty));
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    let message = err(&binary).to_string();
    assert!(
        message.starts_with("the input is not CSV text"),
        "{message}"
    );
    assert!(
        err(b"\x1F\x8B\x08\x00\x00\x00")
            .to_string()
            .contains("decompress")
    );
    assert!(matches!(
        err(b"\xFF\xFEa\x00,\x00"),
        ProfileError::UnsupportedEncoding { .. }
    ));
}

#[test]
fn too_many_columns_is_an_error() {
    let mut opts = ProfileOptions::default();
    opts.max_columns = 3;
    let err = run_with(b"a,b,c,d\n1,2,3,4\n", &opts).unwrap_err();
    assert!(
        matches!(err, ProfileError::TooManyColumns { found: 4, limit: 3 }),
        "{err}"
    );
    opts.header = Some(false);
    assert!(matches!(
        run_with(b"1,2,3,4\n", &opts),
        Err(ProfileError::TooManyColumns { .. })
    ));
}

#[test]
fn options_override_detection_and_are_validated() {
    let mut opts = ProfileOptions::default();
    opts.delimiter = Some(b';');
    opts.header = Some(false);
    let r = run_with(b"a,b;c\n", &opts).unwrap();
    assert_eq!((r.columns.len(), r.rows, r.dialect.header), (2, 1, false));
    opts.delimiter = Some(b'\n');
    assert!(matches!(
        run_with(b"a\n", &opts),
        Err(ProfileError::InvalidOption {
            name: "delimiter",
            ..
        })
    ));
}

#[test]
fn report_has_a_versioned_schema_and_round_trips() {
    let r = run(b"id,name,when,score\n1,ann,2024-01-01,0.5\n2,bob,2024-01-02T00:00:00Z,\n");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["schema"], SCHEMA);
    assert_eq!(json["columns"][0]["type"], "integer");
    assert_eq!(json["columns"][0]["min"], 1);
    assert_eq!(json["columns"][2]["type"], "datetime");
    assert_eq!(json["columns"][3]["distinct"]["exact"], true);
    let back: forklift_profile::report::Report = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}
