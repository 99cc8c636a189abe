//! guMCP's `session_key` path segment (`user_id[:api_key]`, URL-encoded) and the id validators
//! behind it: whatever a client puts in the URL, a user id that passes can never name another
//! folder, hide a control character, or fail to round-trip through `quoted`.
#![no_main]

use gumcp_actors::ids::{validate_server_name, validate_user_id};
use gumcp_actors::transport::http::session_key::SessionKey;
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

/// What a valid user id must never be or contain: it becomes a file name under
/// `local_auth/credentials/<service>/` and part of an actor key.
fn assert_safe_user_id(user_id: &str) {
    assert!((1..=128).contains(&user_id.len()), "{user_id:?}");
    assert!(user_id != "." && user_id != "..", "{user_id:?}");
    for bad in ['/', '\\', '\0', '\r', '\n', '%', ':', ' '] {
        assert!(!user_id.contains(bad), "{user_id:?} holds {bad:?}");
    }
    assert!(user_id.chars().all(|c| c.is_ascii_graphic()), "{user_id:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    match validate_user_id(text) {
        Ok(()) => assert_safe_user_id(text),
        // The refusal echoes the id: never with a control character (log injection).
        Err(err) => assert!(!err.to_string().chars().any(char::is_control), "{err}"),
    }
    if validate_server_name(text).is_ok() {
        assert!((1..=64).contains(&text.len()));
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'));
        assert!(!text.starts_with(['-', '_']), "{text:?}");
    }

    let Ok(key) = SessionKey::parse(text) else {
        return;
    };
    assert_safe_user_id(&key.user_id);
    validate_user_id(&key.user_id).expect("a parsed user id is valid");
    // The API key is a credential: Debug shows only that there is one.
    let shown = key.api_key.as_ref().map(|_| "<redacted>");
    let expected = format!(
        "SessionKey {{ user_id: {:?}, api_key: {shown:?} }}",
        key.user_id
    );
    assert_eq!(format!("{key:?}"), expected);
    // What guMCP writes into the `endpoint` event parses back to the same key, and stays one
    // path segment of plain characters.
    let quoted = key.quoted();
    assert!(
        quoted
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-~%".contains(&b)),
        "{quoted:?}"
    );
    assert_eq!(SessionKey::parse(&quoted).ok(), Some(key.clone()));
    // Decoding twice is harmless for the user id (it never holds '%').
    if let Ok(once) = percent_decode_str(text).decode_utf8() {
        if let Ok(again) = SessionKey::parse(&once) {
            assert_eq!(again.user_id, key.user_id);
        }
    }
});
