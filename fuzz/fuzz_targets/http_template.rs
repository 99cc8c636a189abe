//! The path template of an `http` tool (`fill` in src/servers/http/call.rs): the caller's
//! arguments go into the upstream URL, so an argument must stay inside its own path segment.
//!
//! Input: the first line is the template; each further line is an argument value, given to
//! the placeholders in turn (none at all: every argument is missing).
//!
//! Asserts: `fill` asks for exactly the template's placeholders, in order; a filled path has
//! the same '/', '?' and '#' as the template filled with nothing (an argument adds none),
//! decodes back to the template with the raw values in place, and has no '.' or '..' segment
//! (percent-encoded or not) that an argument helped make; it refuses only when an argument
//! is all dots.
#![no_main]

use std::cell::RefCell;

use gumcp_actors::servers::http::call::fill;
use gumcp_actors::servers::http::spec::placeholders;
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

/// The template with each placeholder replaced by its raw value: what the URL must say once
/// the upstream decodes it (an independent reading of `{name}`: up to the first '}').
fn substituted(template: &str, values: &[String]) -> String {
    let mut out = String::new();
    let mut rest = template;
    let mut values = values.iter();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(values.next().map_or("", String::as_str));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// The path part (before '?' or '#') of a URL.
fn path_of(url: &str) -> &str {
    &url[..url.find(['?', '#']).unwrap_or(url.len())]
}

/// Whether a path segment is `.` or `..` as URL parsers read it (`%2e` is a dot).
fn is_dot_segment(segment: &str) -> bool {
    let normal = segment.to_ascii_lowercase().replace("%2e", ".");
    normal == "." || normal == ".."
}

fn delimiters(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| matches!(c, '/' | '?' | '#'))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let template = lines.next().unwrap_or_default();
    let values: Vec<String> = lines.map(str::to_owned).collect();
    let wanted = placeholders(template);
    // The value each placeholder gets, by position.
    let value_at = |i: usize| (!values.is_empty()).then(|| values[i % values.len()].clone());
    let given: Vec<String> = (0..wanted.len())
        .map(|i| value_at(i).unwrap_or_default())
        .collect();

    let asked = RefCell::new(Vec::new());
    let filled = fill(template, |name| {
        let mut asked = asked.borrow_mut();
        asked.push(name.to_owned());
        value_at(asked.len() - 1)
    });
    let asked = asked.into_inner();
    assert!(wanted.starts_with(&asked), "{asked:?} vs {wanted:?}");

    // The template's own text: every argument missing (never refused).
    let skeleton = fill(template, |_| None).expect("empty arguments cannot be refused");
    match filled {
        Ok(url) => {
            assert_eq!(asked, wanted);
            assert_eq!(delimiters(&url), delimiters(&skeleton), "{url:?}");
            // Each argument is there, encoded: decoding gives the raw substitution back.
            if !template.contains('%') {
                let decoded = percent_decode_str(&url).decode_utf8_lossy();
                assert_eq!(decoded, substituted(template, &given));
            }
            // No dot segment unless the template itself has it there with every argument empty.
            let segments = path_of(&url).split('/');
            let bare_segments = path_of(&skeleton).split('/');
            assert_eq!(segments.clone().count(), bare_segments.clone().count());
            for (segment, bare) in segments.zip(bare_segments) {
                assert!(
                    !is_dot_segment(segment) || segment == bare,
                    "{url:?} from {template:?} {given:?}"
                );
            }
        }
        // A refusal only when an argument is a dot segment or completes one.
        Err(failure) => {
            assert!(!given.is_empty());
            let _ = format!("{failure:?}");
            assert!(
                given
                    .iter()
                    .any(|v| !v.is_empty() && v.chars().all(|c| c == '.')),
                "refused {template:?} with {given:?}"
            );
        }
    }
});
