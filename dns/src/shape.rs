//! Bounds on the zone's answers, applied where the handler assembles the
//! response, whatever [`crate::answer`] and [`crate::explain`] produced:
//!
//! * QTYPE=ANY gets one RRset, the first, and no additionals (RFC 8482
//!   §4.1: a subset of the RRsets is a valid answer), so ANY is never a
//!   bigger reflector than the single type it stands in for;
//! * TXT answers (explanations, ambiguity notes) carry at most
//!   [`MAX_ZONE_TXT_BYTES`] of text: they list node names, RTTs and
//!   distances, and their length must not grow with the directory;
//! * an extended DNS error's EXTRA-TEXT is at most [`MAX_EDE_TEXT`] bytes
//!   (RFC 8914 §2 leaves it unbounded; ours names apps, as many as exist).

use hickory_proto::rr::{RData, RecordType};

use crate::answer::Answer;

/// Most text bytes of one TXT answer of the zone (the sum of its
/// character-strings). explain.rs lists at most 10 candidates in lines of
/// at most 255 bytes, about 3.3 KB at worst; this keeps the worst case
/// under 2 KiB whatever it lists.
pub const MAX_ZONE_TXT_BYTES: usize = 2048;
/// Most bytes of an EDE EXTRA-TEXT we send.
pub const MAX_EDE_TEXT: usize = 255;
/// The last string of a TXT answer that was cut.
const CUT_MARK: &[u8] = b"... (cut)";

/// Shapes an answer of the zone to `qtype` (see the module doc).
pub fn shape_zone_answer(answer: &mut Answer, qtype: RecordType) {
    if qtype == RecordType::ANY {
        minimal_any(answer);
    }
    for record in &mut answer.answers {
        if let RData::TXT(txt) = &mut record.data {
            cap_txt(&mut txt.txt_data, MAX_ZONE_TXT_BYTES);
        }
    }
}

/// RFC 8482 §4.1: only the first RRset of the answer, no additionals.
fn minimal_any(answer: &mut Answer) {
    let Some(first) = answer.answers.first() else {
        return;
    };
    let (name, rtype) = (first.name.clone(), first.record_type());
    answer.answers.retain(|r| r.record_type() == rtype && r.name == name);
    answer.additionals.clear();
}

/// Keeps whole strings while they fit in `max` bytes, then a cut mark.
fn cap_txt(strings: &mut Box<[Box<[u8]>]>, max: usize) {
    let total: usize = strings.iter().map(|s| s.len()).sum();
    if total <= max {
        return;
    }
    let room = max.saturating_sub(CUT_MARK.len());
    let mut used = 0;
    let mut kept: Vec<Box<[u8]>> = Vec::new();
    for s in strings.iter() {
        if used + s.len() > room {
            break;
        }
        used += s.len();
        kept.push(s.clone());
    }
    kept.push(CUT_MARK.into());
    *strings = kept.into_boxed_slice();
}

/// `text` cut to [`MAX_EDE_TEXT`] bytes at a character boundary.
pub fn cap_ede_text(text: &mut String) {
    if text.len() > MAX_EDE_TEXT {
        let mut end = MAX_EDE_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::rdata::{A, TXT};
    use hickory_proto::rr::{Name, Record};

    use super::*;
    use crate::answer::Disposition;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn a(owner: &str, last: u8) -> Record {
        Record::from_rdata(name(owner), 2, RData::A(A(Ipv4Addr::new(10, 30, 0, last))))
    }

    #[test]
    fn any_keeps_the_first_rrset_only() {
        let mut answer = Answer {
            answers: vec![
                a("all.big.grove.", 1),
                a("all.big.grove.", 2),
                Record::from_rdata(name("all.big.grove."), 2, RData::TXT(TXT::new(vec!["x".into()]))),
                a("other.grove.", 3),
            ],
            additionals: vec![a("instance-1.big.grove.", 1)],
            ..Answer::empty(Disposition::Records)
        };
        shape_zone_answer(&mut answer, RecordType::ANY);
        assert_eq!(answer.answers.len(), 2);
        assert!(answer.answers.iter().all(|r| r.record_type() == RecordType::A));
        assert!(answer.additionals.is_empty());
        // Other types keep everything.
        let mut answer = Answer {
            answers: vec![a("x.grove.", 1), a("x.grove.", 2)],
            additionals: vec![a("y.grove.", 1)],
            ..Answer::empty(Disposition::Records)
        };
        shape_zone_answer(&mut answer, RecordType::A);
        assert_eq!((answer.answers.len(), answer.additionals.len()), (2, 1));
    }

    #[test]
    fn long_txt_answers_are_cut_with_a_mark() {
        let lines: Vec<String> = (0..40).map(|n| format!("#{n} {}", "x".repeat(200))).collect();
        let mut answer = Answer {
            answers: vec![Record::from_rdata(
                name("explain.all.big.grove."),
                0,
                RData::TXT(TXT::new(lines)),
            )],
            ..Answer::empty(Disposition::Records)
        };
        shape_zone_answer(&mut answer, RecordType::TXT);
        let RData::TXT(txt) = &answer.answers[0].data else {
            panic!("TXT")
        };
        let total: usize = txt.txt_data.iter().map(|s| s.len()).sum();
        assert!(total <= MAX_ZONE_TXT_BYTES, "{total}");
        assert!(txt.txt_data.len() > 2, "whole strings are kept while they fit");
        assert_eq!(txt.txt_data.last().map(|s| &s[..]), Some(CUT_MARK));
        // Short ones are left alone.
        let mut strings: Box<[Box<[u8]>]> = vec![b"short".to_vec().into_boxed_slice()].into_boxed_slice();
        cap_txt(&mut strings, MAX_ZONE_TXT_BYTES);
        assert_eq!(strings.len(), 1);
    }

    #[test]
    fn ede_text_is_cut_at_a_character_boundary() {
        let mut text = "é".repeat(200);
        cap_ede_text(&mut text);
        assert!(text.len() <= MAX_EDE_TEXT && text.len() >= MAX_EDE_TEXT - 1);
        assert!(text.chars().all(|c| c == 'é'));
        let mut short = "ambiguous".to_owned();
        cap_ede_text(&mut short);
        assert_eq!(short, "ambiguous");
    }
}
