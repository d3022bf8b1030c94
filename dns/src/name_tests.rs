//! Grammar tests: every policy in every form, case and trailing-dot variants,
//! and the ways a name from the network can be wrong.

use super::*;

fn zone() -> Zone {
    Zone::default()
}

fn label(s: &str) -> Label {
    Label::parse(s).expect("test label")
}

/// The same name in several spellings a resolver may send.
fn spellings(name: &str) -> Vec<String> {
    let upper = name.to_ascii_uppercase();
    let mixed: String = name
        .chars()
        .enumerate()
        .map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c })
        .collect();
    let mut out = Vec::new();
    for base in [name.to_owned(), upper, mixed] {
        out.push(format!("{base}."));
        out.push(base);
    }
    out
}

fn query(name: &str, zone: &Zone) -> QueryName {
    match parse_name(name, zone) {
        NameOutcome::Query(q) => q,
        other => panic!("{name}: expected a query, got {other:?}"),
    }
}

const POLICIES: [(&str, Policy); 6] = [
    ("closest", Policy::Closest),
    ("rr", Policy::RoundRobin),
    ("all", Policy::All),
    ("instance-0", Policy::Instance(0)),
    ("instance-3", Policy::Instance(3)),
    ("instance-4294967295", Policy::Instance(u32::MAX)),
];

/// (relative name, app, namespace, search context)
type Form<'a> = (String, Option<&'a str>, Option<&'a str>, Option<(&'a str, &'a str)>);

#[test]
fn every_policy_in_every_form_and_spelling() {
    for zone_name in ["grove", "edge.example.com"] {
        let zone = Zone::new(zone_name).expect("zone");
        for (word, policy) in POLICIES {
            let forms: [Form; 6] = [
                (format!("{word}.ms2"), None, None, None),
                (format!("{word}.ms2.web"), Some("web"), None, None),
                (format!("{word}.ms2.web.prod"), Some("web"), Some("prod"), None),
                // Short forms through the search domain.
                (format!("{word}.ms2.cam.edge.svc"), None, None, Some(("cam", "edge"))),
                (
                    format!("{word}.ms2.web.cam.edge.svc"),
                    Some("web"),
                    None,
                    Some(("cam", "edge")),
                ),
                (
                    format!("{word}.ms2.web.prod.cam.edge.svc"),
                    Some("web"),
                    Some("prod"),
                    Some(("cam", "edge")),
                ),
            ];
            for (relative, app, namespace, context) in forms {
                for explain in [false, true] {
                    let prefix = if explain { "explain." } else { "" };
                    for name in spellings(&format!("{prefix}{relative}.{zone_name}")) {
                        let q = query(&name, &zone);
                        assert_eq!(q.policy, policy, "{name}");
                        assert_eq!(q.explain, explain, "{name}");
                        assert_eq!(q.path.service, "ms2", "{name}");
                        assert_eq!(q.path.app.as_ref().map(Label::as_str), app, "{name}");
                        assert_eq!(q.path.namespace.as_ref().map(Label::as_str), namespace, "{name}");
                        let ctx = q.context.map(|c| (c.app, c.namespace));
                        assert_eq!(ctx, context.map(|(a, n)| (label(a), label(n))), "{name}");
                        assert_eq!(q.port, None);
                    }
                }
            }
        }
    }
}

#[test]
fn srv_prefix() {
    let q = query("_HTTP._tcp.closest.ms2.grove", &zone());
    assert_eq!(
        q.port,
        Some(PortSelector {
            name: label("http"),
            protocol: Protocol::Tcp
        })
    );
    let q = query("_dns._udp.explain.rr.ms2.web.prod.cam.edge.svc.grove.", &zone());
    assert_eq!(q.port.map(|p| p.protocol), Some(Protocol::Udp));
    assert!(q.explain);
    assert_eq!(q.to_string(), "_dns._udp.explain.rr.ms2.web.prod");
    for bad in [
        "_http.closest.ms2.grove",
        "_http._sctp.closest.ms2.grove",
        "__._tcp.closest.ms2.grove",
        "_._tcp.closest.ms2.grove",
    ] {
        assert!(
            matches!(
                parse_name(bad, &zone()),
                NameOutcome::Malformed {
                    error: NameError::BadPort,
                    ..
                }
            ),
            "{bad}: {:?}",
            parse_name(bad, &zone())
        );
    }
}

#[test]
fn display_is_canonical() {
    let q = query("EXPLAIN.Instance-12.Ms2.Web.grove", &zone());
    assert_eq!(q.to_string(), "explain.instance-12.ms2.web");
}

#[test]
fn outside_apex_and_skeleton() {
    let z = zone();
    for name in [
        "",
        ".",
        "example.com",
        "closest.ms2",
        "grove.example",
        "closest.ms2.grovex",
        "closest.ms2.xgrove.",
    ] {
        assert_eq!(parse_name(name, &z), NameOutcome::Outside, "{name}");
    }
    for name in ["grove", "GROVE.", "Grove"] {
        assert_eq!(parse_name(name, &z), NameOutcome::Apex, "{name}");
    }
    for name in [
        "svc.grove",
        "edge.svc.grove.",
        "cam.edge.SVC.grove",
        "closest.svc.grove",
    ] {
        assert_eq!(parse_name(name, &z), NameOutcome::SearchDomain, "{name}");
    }
    let multi = Zone::new("edge.example.com").expect("zone");
    assert_eq!(parse_name("example.com", &multi), NameOutcome::Outside);
    assert_eq!(parse_name("Edge.Example.Com.", &multi), NameOutcome::Apex);
    assert_eq!(parse_name("closest.ms2.grove", &multi), NameOutcome::Outside);
}

#[test]
fn policy_errors() {
    let z = zone();
    let err = |name: &str| match parse_name(name, &z) {
        NameOutcome::Malformed { error, .. } => error,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(
        err("nearest.ms2.grove"),
        NameError::UnknownPolicy {
            policy: label("nearest")
        }
    );
    assert_eq!(
        err("explain.explain.ms2.grove"),
        NameError::UnknownPolicy {
            policy: label("explain")
        }
    );
    assert_eq!(err("_http._tcp.grove"), NameError::MissingService);
    assert_eq!(err("instance-.ms2.grove"), NameError::BadLabel { position: 0 });
    for bad in [
        "instance-x",
        "instance-01",
        "instance-4294967296",
        "instance--1",
        "instance-1e3",
    ] {
        assert_eq!(err(&format!("{bad}.ms2.grove")), NameError::BadInstanceNumber, "{bad}");
    }
    assert_eq!(err("closest.grove"), NameError::MissingService);
    assert_eq!(err("explain.grove"), NameError::MissingService);
    assert_eq!(err("explain.closest.grove"), NameError::MissingService);
    assert_eq!(err("closest.cam.edge.svc.grove"), NameError::MissingService);
    assert_eq!(err("closest.a.b.c.d.grove"), NameError::TooManyLabels { count: 5 });
    assert_eq!(
        err("closest.a.b.c.d.cam.edge.svc.grove"),
        NameError::TooManyLabels { count: 8 }
    );
    assert_eq!(err("closest.svc.web.grove"), NameError::ReservedLabel);
    assert_eq!(err("closest.ms2.svc.prod.grove"), NameError::ReservedLabel);
}

#[test]
fn empty_non_terminals_carry_their_service_path() {
    let z = zone();
    let above = |name: &str| match parse_name(name, &z) {
        NameOutcome::Malformed { above, .. } => above.map(|p| p.to_string()),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(above("ms2.grove").as_deref(), Some("ms2"));
    assert_eq!(above("ms2.web.prod.grove").as_deref(), Some("ms2.web.prod"));
    assert_eq!(above("ms2.cam.edge.svc.grove").as_deref(), Some("ms2"));
    // `closest` may itself be a service (`rr.closest.grove`).
    assert_eq!(above("closest.grove").as_deref(), Some("closest"));
    assert_eq!(above("a.b.c.d.grove"), None);
    assert_eq!(above("instance-01.ms2.grove").as_deref(), Some("instance-01.ms2"));
}

#[test]
fn syntax_errors_are_invalid() {
    let z = zone();
    for (name, expected) in [
        ("a..grove", NameError::EmptyLabel),
        (".grove", NameError::EmptyLabel),
        ("closest..ms2.grove", NameError::EmptyLabel),
        ("..", NameError::EmptyLabel),
    ] {
        assert_eq!(parse_name(name, &z), NameOutcome::Invalid(expected), "{name}");
    }
    let long = "a".repeat(64);
    for name in [format!("closest.{long}.grove"), format!("{long}.example.com")] {
        assert_eq!(
            parse_name(&name, &z),
            NameOutcome::Invalid(NameError::LabelTooLong { len: 64 })
        );
    }
    // 4 × 63 + 3 dots = 255 > 253, whether in our zone or not.
    let l63 = "b".repeat(63);
    let too_long = format!("{l63}.{l63}.{l63}.{l63}");
    assert!(matches!(
        parse_name(&too_long, &z),
        NameOutcome::Invalid(NameError::NameTooLong { len: 255 })
    ));
    let in_zone = format!("{l63}.{l63}.{l63}.{}.grove", "c".repeat(60));
    assert!(matches!(
        parse_name(&in_zone, &z),
        NameOutcome::Invalid(NameError::NameTooLong { .. })
    ));
    // 253 exactly is fine.
    let fits = format!("{l63}.{l63}.{l63}.{}", "d".repeat(61));
    assert_eq!(fits.len(), 253);
    assert_eq!(parse_name(&fits, &z), NameOutcome::Outside);
    // Many one-byte labels: more than 127 cannot be a name.
    let many = vec!["a"; 200].join(".");
    assert!(matches!(
        parse_name(&many, &z),
        NameOutcome::Invalid(NameError::NameTooLong { .. })
    ));
    for e in [
        NameError::EmptyLabel,
        NameError::LabelTooLong { len: 64 },
        NameError::NameTooLong { len: 300 },
    ] {
        assert!(e.is_syntax());
    }
    assert!(!NameError::BadPort.is_syntax());
}

#[test]
fn garbage_labels_in_the_zone_are_malformed_not_invalid() {
    let z = zone();
    let garbage: [&[u8]; 9] = [
        "m\u{e9}s".as_bytes(),
        "\u{1F332}".as_bytes(),
        b"ms_2",
        b"-ms2",
        b"ms2-",
        b"a b",
        b"\0",
        &[0xff, 0x80, 0x41],
        b"*",
    ];
    for g in garbage {
        for position in 0..2 {
            let mut labels: Vec<&[u8]> = vec![b"closest", b"ms2", b"grove"];
            labels[position] = g;
            let outcome = parse_labels(labels.iter().copied(), &z);
            assert!(
                matches!(
                    outcome,
                    NameOutcome::Malformed {
                        error: NameError::BadLabel { .. },
                        ..
                    }
                ),
                "{g:?} at {position}: {outcome:?}"
            );
        }
        // Outside the zone, garbage is forwarded untouched.
        let labels: [&[u8]; 3] = [g, b"example", b"com"];
        assert_eq!(parse_labels(labels, &z), NameOutcome::Outside);
    }
    let labels: [&[u8]; 6] = [b"closest", b"ms2", b"c\xffm", b"edge", b"svc", b"grove"];
    assert!(matches!(
        parse_labels(labels, &z),
        NameOutcome::Malformed {
            error: NameError::BadLabel { .. },
            ..
        }
    ));
}

#[test]
fn wire_labels_and_text_agree() {
    let z = zone();
    for name in [
        "closest.ms2.grove",
        "explain.rr.ms2.web.prod.cam.edge.svc.grove",
        "x.example",
        "grove",
        "nearest.ms2.grove",
    ] {
        let from_text = parse_name(name, &z);
        let from_wire = parse_labels(name.split('.').map(str::as_bytes), &z);
        assert_eq!(from_text, from_wire, "{name}");
    }
}

/// Deterministic pseudo-random byte labels: parsing never panics and every
/// outcome is one of the documented ones.
#[test]
fn random_labels_never_panic() {
    let z = zone();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-_.ABCZ\xc3\xa9\x00\xff";
    for _ in 0..20_000 {
        let n_labels = (next() % 12) as usize;
        let mut storage: Vec<Vec<u8>> = Vec::new();
        for _ in 0..n_labels {
            let len = (next() % 70) as usize;
            storage.push((0..len).map(|_| alphabet[(next() as usize) % alphabet.len()]).collect());
        }
        if next() % 2 == 0 {
            storage.push(b"grove".to_vec());
        }
        let _ = parse_labels(storage.iter().map(Vec::as_slice), &z);
        let text: String = storage
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join(".");
        let _ = parse_name(&text, &z);
    }
}
