//! Which server this is: flavour and version, from what the server reports.

use std::fmt;

/// Server flavour; decides the replication dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Oracle MySQL (and compatible builds such as Percona Server).
    MySQL,
    /// MariaDB.
    MariaDB,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::MySQL => "MySQL",
            Flavor::MariaDB => "MariaDB",
        })
    }
}

/// A server version, `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl Version {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses the leading `X.Y.Z` of a version string such as `9.7.4-2` or
    /// `10.11.14-MariaDB-0+deb12u2`.
    pub fn parse(s: &str) -> Option<Self> {
        let head = s
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()?;
        let mut parts = head.split('.').map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        let minor = parts.next()?.ok()?;
        let patch = parts.next().unwrap_or(Ok(0)).ok()?;
        Some(Self::new(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Oldest MySQL with `CHANGE REPLICATION SOURCE TO`.
pub const MIN_MYSQL: Version = Version::new(8, 0, 23);
/// Oldest supported MariaDB.
pub const MIN_MARIADB: Version = Version::new(10, 6, 0);

/// Flavour, version and identity of a running server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// Flavour.
    pub flavor: Flavor,
    /// Version.
    pub version: Version,
    /// `@@version` as reported.
    pub version_string: String,
    /// `@@server_id`.
    pub server_id: u32,
    /// `@@server_uuid` (MySQL only).
    pub server_uuid: Option<String>,
}

/// Identifies a supported server from `@@version` and
/// `@@version_comment`; `None` when it is unknown or too old.
pub fn identify(version: &str, comment: &str) -> Option<(Flavor, Version)> {
    let v = Version::parse(version)?;
    let is_mariadb = version.to_ascii_lowercase().contains("mariadb")
        || comment.to_ascii_lowercase().contains("mariadb");
    let (flavor, min) = if is_mariadb {
        (Flavor::MariaDB, MIN_MARIADB)
    } else {
        (Flavor::MySQL, MIN_MYSQL)
    };
    (v >= min).then_some((flavor, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (&'static str, &'static str, Option<(Flavor, Version)>);

    #[test]
    fn identify_table() {
        let cases: &[Case] = &[
            (
                "9.7.4-2",
                "(Debian)",
                Some((Flavor::MySQL, Version::new(9, 7, 4))),
            ),
            (
                "8.4.3",
                "MySQL Community Server - GPL",
                Some((Flavor::MySQL, Version::new(8, 4, 3))),
            ),
            (
                "8.0.23",
                "MySQL Community Server - GPL",
                Some((Flavor::MySQL, Version::new(8, 0, 23))),
            ),
            (
                "8.0.36-28",
                "Percona Server (GPL)",
                Some((Flavor::MySQL, Version::new(8, 0, 36))),
            ),
            ("8.0.22", "MySQL Community Server - GPL", None),
            ("5.7.44-log", "MySQL Community Server (GPL)", None),
            (
                "10.11.14-MariaDB-0+deb12u2",
                "Debian 12",
                Some((Flavor::MariaDB, Version::new(10, 11, 14))),
            ),
            (
                "11.4.2-MariaDB-ubu2404",
                "mariadb.org binary distribution",
                Some((Flavor::MariaDB, Version::new(11, 4, 2))),
            ),
            (
                "10.6.0-MariaDB",
                "",
                Some((Flavor::MariaDB, Version::new(10, 6, 0))),
            ),
            ("10.5.22-MariaDB", "", None),
            ("5.5.5-10.11.6-MariaDB", "", None),
            ("", "", None),
            ("not a version", "", None),
        ];
        for (version, comment, want) in cases {
            assert_eq!(identify(version, comment), *want, "{version} / {comment}");
        }
    }
}
