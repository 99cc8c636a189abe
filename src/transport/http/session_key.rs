//! guMCP's `session_key` path segment: `user_id` or `user_id:api_key`, URL-encoded. The user id
//! reaches file paths and keys, so it is validated; the API key is a credential, kept out of
//! logs and errors.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::ids;

/// A parsed session key.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey {
    pub user_id: String,
    pub api_key: Option<String>,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("user_id", &self.user_id)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a session key was refused; never echoes the API key.
#[derive(Debug, thiserror::Error)]
pub enum SessionKeyError {
    #[error("the session key is not valid UTF-8 once URL-decoded")]
    NotUtf8,
    #[error("invalid user id in the session key: {0}")]
    UserId(#[from] ids::IdError),
}

impl SessionKey {
    /// Parses a path segment (decoded or not: user ids never hold `%`, so decoding twice is
    /// harmless).
    pub fn parse(segment: &str) -> Result<SessionKey, SessionKeyError> {
        let decoded = percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| SessionKeyError::NotUtf8)?;
        let (user_id, api_key) = match decoded.split_once(':') {
            Some((user, key)) => (user, Some(key.to_owned())),
            None => (decoded.as_ref(), None),
        };
        ids::validate_user_id(user_id)?;
        Ok(SessionKey {
            user_id: user_id.to_owned(),
            api_key,
        })
    }

    /// The key as guMCP writes it into the `endpoint` event: Python's `urllib.parse.quote`
    /// (everything but letters, digits, `_.-~` encoded; so `:` becomes `%3A`).
    pub fn quoted(&self) -> String {
        let raw = match &self.api_key {
            Some(key) => format!("{}:{key}", self.user_id),
            None => self.user_id.clone(),
        };
        utf8_percent_encode(&raw, PYTHON_QUOTE).to_string()
    }
}

/// The characters Python's `quote(s, safe="/")` leaves alone, minus `/` (a key never spans
/// segments, so a `/` in it must be encoded too).
const PYTHON_QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_user_id() {
        let key = SessionKey::parse("alice").unwrap();
        assert_eq!(key.user_id, "alice");
        assert_eq!(key.api_key, None);
        assert_eq!(key.quoted(), "alice");
    }

    #[test]
    fn user_and_api_key_encoded_or_not() {
        for segment in ["alice:s3cr3t", "alice%3As3cr3t"] {
            let key = SessionKey::parse(segment).unwrap();
            assert_eq!(key.user_id, "alice");
            assert_eq!(key.api_key.as_deref(), Some("s3cr3t"));
            assert_eq!(key.quoted(), "alice%3As3cr3t");
        }
    }

    #[test]
    fn traversal_and_control_characters_are_refused() {
        for segment in ["..", "..%2F..%2Fetc", "a%00b", "%2Fetc", "a/b", ""] {
            assert!(SessionKey::parse(segment).is_err(), "{segment}");
        }
    }

    #[test]
    fn debug_output_hides_the_api_key() {
        let key = SessionKey::parse("alice:topsecret").unwrap();
        assert!(!format!("{key:?}").contains("topsecret"));
    }
}
