//! Protocol revisions and the era each belongs to.
//!
//! Legacy revisions open a connection with `initialize`; the modern one (2026-07-28) carries its
//! version in every request's `_meta` and has no handshake. One server serves both, chosen per
//! request by whether the request carries modern `_meta`.

use std::fmt;

/// Every revision this runtime speaks, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    V2024_11_05,
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
    V2026_07_28,
}

impl ProtocolVersion {
    /// Newest first, as `server/discover` and version errors list them.
    pub const ALL: [ProtocolVersion; 5] = [
        ProtocolVersion::V2026_07_28,
        ProtocolVersion::V2025_11_25,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_03_26,
        ProtocolVersion::V2024_11_05,
    ];

    /// The newest revision that is negotiated with `initialize`.
    pub const LATEST_LEGACY: ProtocolVersion = ProtocolVersion::V2025_11_25;
    pub const MODERN: ProtocolVersion = ProtocolVersion::V2026_07_28;

    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V2024_11_05 => "2024-11-05",
            ProtocolVersion::V2025_03_26 => "2025-03-26",
            ProtocolVersion::V2025_06_18 => "2025-06-18",
            ProtocolVersion::V2025_11_25 => "2025-11-25",
            ProtocolVersion::V2026_07_28 => "2026-07-28",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == text)
    }

    pub fn all_names() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.as_str()).collect()
    }

    pub fn is_modern(self) -> bool {
        self >= ProtocolVersion::V2026_07_28
    }

    /// The version to answer an `initialize` with: the client's if we speak it as a legacy
    /// revision, else our newest legacy one (the client then decides whether to go on).
    pub fn negotiate(requested: &str) -> ProtocolVersion {
        match Self::parse(requested) {
            Some(version) if !version.is_modern() => version,
            _ => Self::LATEST_LEGACY,
        }
    }

    /// JSON-RPC batches exist only in 2025-03-26.
    /// Whether the revision has the experimental `tasks` capability (2025-11-25 only: in
    /// 2026-07-28 tasks are an extension, `protocol::tasks`).
    pub fn has_legacy_tasks(self) -> bool {
        self == ProtocolVersion::V2025_11_25
    }

    pub fn allows_batches(self) -> bool {
        self == ProtocolVersion::V2025_03_26
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialize_gets_the_requested_legacy_version_or_the_newest_legacy_one() {
        for v in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
            assert_eq!(ProtocolVersion::negotiate(v).as_str(), v);
        }
        assert_eq!(
            ProtocolVersion::negotiate("1999-01-01").as_str(),
            "2025-11-25"
        );
        assert_eq!(
            ProtocolVersion::negotiate("2026-07-28").as_str(),
            "2025-11-25"
        );
    }

    #[test]
    fn only_2025_03_26_has_batches() {
        let with_batches: Vec<_> = ProtocolVersion::ALL
            .into_iter()
            .filter(|v| v.allows_batches())
            .collect();
        assert_eq!(with_batches, vec![ProtocolVersion::V2025_03_26]);
    }
}
