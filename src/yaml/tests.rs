use super::*;

#[test]
fn scalar_spans_cover_exactly_the_written_text() {
    let src = "a: plain\nb: 'single'\nc: \"double\"\nd: é-ü\ne: x:y@z\n";
    let doc = parse_single(src).unwrap();
    let pick = |k: &str| &src[doc.get(k).unwrap().span.bytes()];
    assert_eq!(pick("a"), "plain");
    assert_eq!(pick("b"), "'single'");
    assert_eq!(pick("c"), "\"double\"");
    assert_eq!(pick("d"), "é-ü");
    assert_eq!(pick("e"), "x:y@z");
    assert_eq!(doc.get("d").unwrap().span.start.line, 4);
    assert_eq!(doc.get("d").unwrap().span.start.column, 4);
}

#[test]
fn quoted_spans_stop_at_the_closing_quote() {
    let src = "a: 'x' # c\nb: \"y\\\" z\"   # d\nc: 'it''s'  \nd: {k: 'v' , l: \"w\" }\ne: &q \"é\"\t# ü\n";
    let doc = parse_single(src).unwrap();
    let pick = |k: &str| &src[doc.get(k).unwrap().span.bytes()];
    assert_eq!(pick("a"), "'x'");
    assert_eq!(pick("b"), "\"y\\\" z\"");
    assert_eq!(pick("c"), "'it''s'");
    assert_eq!(&src[doc.get_path("d.k").unwrap().span.bytes()], "'v'");
    assert_eq!(&src[doc.get_path("d.l").unwrap().span.bytes()], "\"w\"");
    assert_eq!(pick("e"), "\"é\"");
    let e = doc.get("e").unwrap().span;
    assert_eq!((e.end.line, e.end.column), (5, 10));
    let multi = "a: 'x\n  y' # c\n";
    let doc = parse_single(multi).unwrap();
    let a = doc.get("a").unwrap().span;
    assert_eq!(&multi[a.bytes()], "'x\n  y'");
    assert_eq!((a.end.line, a.end.column), (2, 5));
}

#[test]
fn spans_are_byte_offsets_after_multibyte_text() {
    let src = "# ünïcödé comment\nimage: 'nginx:1.25'\n";
    let doc = parse_single(src).unwrap();
    assert_eq!(&src[doc.get("image").unwrap().span.bytes()], "'nginx:1.25'");
}

#[test]
fn multi_document_streams_and_aliases() {
    let src = "a: &img nginx\nb: *img\nt: !!str  tagged\n---\nc: [1, 2]\n";
    let docs = parse_documents(src).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].get("b").unwrap().as_str(), Some("nginx"));
    // The alias keeps the anchor's span: editing it edits the anchor.
    assert_eq!(&src[docs[0].get("b").unwrap().span.bytes()], "nginx");
    assert_eq!(&src[docs[0].get("t").unwrap().span.bytes()], "tagged");
    assert_eq!(docs[1].get("c").unwrap().as_seq().unwrap().len(), 2);
}

#[test]
fn syntax_errors_carry_position() {
    let err = parse_single("a: [1, 2\nb: 3\n").unwrap_err();
    assert!(err.line >= 1 && err.column >= 1, "{err}");
    assert_eq!(err.kind, ErrorKind::Syntax);
}

/// `levels` mappings of `fan_out` aliases, each to the level before: the
/// expanded tree has about `fan_out^levels` nodes.
fn bomb(fan_out: usize, levels: usize) -> String {
    let mut src = format!("l0: &l0 [{}]\n", vec!["lol"; fan_out].join(", "));
    for i in 1..levels {
        let refs = vec![format!("*l{}", i - 1); fan_out].join(", ");
        src.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    src
}

#[test]
fn alias_bombs_are_refused_at_the_alias() {
    // 9^6 = 531,441 expanded nodes, past the default 250,000.
    let src = bomb(9, 6);
    let err = parse_single(&src).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Limit, "{err}");
    assert_eq!(
        err.message,
        "alias expansion exceeds 250000 nodes — YAML alias bombs are refused; remove the aliases or split the file"
    );
    // The refused alias is on the last line, where the bomb goes off.
    let line = src.lines().nth(err.line - 1).unwrap();
    assert!(line.starts_with("l5:"), "{err}");
    assert!(line[err.column - 1..].starts_with("*l4"), "{err}");
}

#[test]
fn every_alias_use_counts() {
    let src = format!("a: &a x\nb: [{}]\n", vec!["*a"; 101].join(", "));
    let tight = Limits {
        max_aliases: 100,
        ..Limits::DEFAULT
    };
    let err = parse_documents_with(&src, &tight).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Limit);
    assert!(err.message.starts_with("more than 100 aliases — "), "{err}");
    let enough = Limits {
        max_aliases: 101,
        ..Limits::DEFAULT
    };
    assert_eq!(parse_documents_with(&src, &enough).unwrap().len(), 1);
}

#[test]
fn long_scalars_behind_aliases_count_their_bytes() {
    let src = format!("a: &a {}\nb: [*a, *a, *a]\n", "x".repeat(100));
    let limits = Limits {
        max_scalar_bytes: 399,
        ..Limits::DEFAULT
    };
    let err = parse_documents_with(&src, &limits).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Limit);
    assert!(
        err.message
            .starts_with("alias expansion exceeds 399 bytes of text"),
        "{err}"
    );
    let limits = Limits {
        max_scalar_bytes: 400 + "a".len() + "b".len(),
        ..Limits::DEFAULT
    };
    assert!(parse_documents_with(&src, &limits).is_ok());
}

#[test]
fn node_limit_is_exact() {
    // One mapping, two keys, a list of three: 1 + 2 + 1 + 3 + 1 = 8.
    let src = "a: x\nb: [1, 2, 3]\n";
    let at = |max_nodes| Limits {
        max_nodes,
        ..Limits::DEFAULT
    };
    assert!(parse_documents_with(src, &at(8)).is_ok());
    let err = parse_documents_with(src, &at(7)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Limit);
    assert_eq!(
        err.message,
        "the YAML stream has more than 7 nodes — split the file"
    );
}

#[test]
fn deep_nesting_is_refused() {
    let deep: String = (0..200)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect::<String>()
        + &" ".repeat(200)
        + "v\n";
    let err = parse_single(&deep).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Limit, "{err}");
    assert_eq!(err.line, Limits::DEFAULT.max_depth + 1, "{err}");
    assert!(err.message.contains("more than 128 levels deep"), "{err}");
    let shallow: String = (0..100)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect::<String>()
        + &" ".repeat(100)
        + "v\n";
    assert!(parse_single(&shallow).is_ok());
}
