//! User ids and server names: the strings a caller controls that later become parts of file
//! paths (credential files) and actor keys. They are checked once, at the edge, against a
//! conservative alphabet, so nothing downstream has to think about `../`, `/`, `%2F` or NUL.

/// What a valid user id looks like, for error messages.
pub const USER_ID_RULE: &str =
    "must be 1-128 characters of letters, digits, '.', '_', '-', '@' or '+', and not '.' or '..'";

/// What a valid server name looks like, for error messages.
pub const SERVER_NAME_RULE: &str =
    "must be 1-64 characters of lowercase letters, digits, '-' or '_', starting with a letter or digit";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("invalid user id {0:?}: {USER_ID_RULE}")]
    UserId(String),
    #[error("invalid server name {0:?}: {SERVER_NAME_RULE}")]
    ServerName(String),
}

pub fn validate_user_id(user_id: &str) -> Result<(), IdError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+');
    let ok = (1..=128).contains(&user_id.len())
        && user_id.chars().all(allowed)
        && user_id != "."
        && user_id != "..";
    if ok {
        Ok(())
    } else {
        Err(IdError::UserId(printable(user_id)))
    }
}

pub fn validate_server_name(name: &str) -> Result<(), IdError> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_');
    let ok = (1..=64).contains(&name.len())
        && name.chars().all(allowed)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(IdError::ServerName(printable(name)))
    }
}

/// Echoes a rejected id without control characters or unbounded length.
fn printable(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_user_ids_pass() {
        for id in ["local", "alice@example.com", "user_42", "a.b-c+d"] {
            assert!(validate_user_id(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn user_ids_that_could_escape_a_folder_fail() {
        let long = "x".repeat(129);
        for id in [
            "", ".", "..", "../etc", "a/b", "a\\b", "a%2Fb", "a\0b", "a b", &long,
        ] {
            assert!(validate_user_id(id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn server_names_are_folder_safe() {
        assert!(validate_server_name("simple-tools-server").is_ok());
        for name in ["", "-x", "Upper", "a/b", "..", "a.b", "a%2F"] {
            assert!(validate_server_name(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn errors_do_not_echo_control_characters() {
        let err = validate_user_id("a\nb").unwrap_err().to_string();
        assert!(!err.contains('\n'));
    }
}
