//! GTID set arithmetic the decisions need: does one node's executed set
//! contain the other's? MySQL sets are `uuid[:tag]:a-b:c,...`; MariaDB
//! positions are `domain-server-seq,...` (per domain, the highest sequence).

use std::collections::BTreeMap;

use super::status::mariadb_pos_covers;
use super::version::Flavor;

/// A MySQL GTID set: source (uuid, with tag) to sorted closed intervals.
pub type MySqlGtidSet = BTreeMap<String, Vec<(u64, u64)>>;

/// Parses a MySQL GTID set; `None` when malformed. White space and new
/// lines (MySQL wraps long sets) are ignored.
pub fn parse_mysql(set: &str) -> Option<MySqlGtidSet> {
    let mut out: MySqlGtidSet = BTreeMap::new();
    let cleaned: String = set.chars().filter(|c| !c.is_whitespace()).collect();
    for part in cleaned.split(',').filter(|p| !p.is_empty()) {
        let mut fields = part.split(':');
        let mut source = fields.next()?.to_ascii_lowercase();
        let mut intervals = Vec::new();
        for f in fields {
            if f.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                let (a, b) = match f.split_once('-') {
                    Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                    None => {
                        let n = f.parse().ok()?;
                        (n, n)
                    }
                };
                intervals.push((a, b));
            } else {
                // A tag starts a new source "uuid:tag".
                source = format!("{}:{f}", source.split(':').next().unwrap_or(""));
            }
        }
        let entry = out.entry(source).or_default();
        entry.extend(intervals);
        entry.sort();
    }
    Some(out)
}

fn covered(have: &[(u64, u64)], (a, b): (u64, u64)) -> bool {
    // Merge-walk: every number of a..=b must be in some interval of `have`.
    let mut next = a;
    for &(x, y) in have {
        if x > next {
            break;
        }
        if y >= next {
            next = y + 1;
        }
        if next > b {
            return true;
        }
    }
    next > b
}

/// Whether `superset` contains every transaction of `subset`.
pub fn contains(flavor: Flavor, superset: &str, subset: &str) -> bool {
    match flavor {
        Flavor::MariaDB => mariadb_pos_covers(superset, subset),
        Flavor::MySQL => match (parse_mysql(superset), parse_mysql(subset)) {
            (Some(sup), Some(sub)) => sub.iter().all(|(source, intervals)| {
                let have = sup.get(source).map(Vec::as_slice).unwrap_or(&[]);
                intervals.iter().all(|&iv| covered(have, iv))
            }),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e7fdfd4-e7cc-11f1-a620-02fc00000001";
    const B: &str = "4b1a0c2e-e7cc-11f1-a620-02fc00000002";

    #[test]
    fn mysql_containment_table() {
        let cases = [
            (format!("{A}:1-10"), format!("{A}:1-5"), true),
            (format!("{A}:1-5"), format!("{A}:1-10"), false),
            (format!("{A}:1-5:7-9"), format!("{A}:6"), false),
            (format!("{A}:1-5:6-9"), format!("{A}:2-8"), true),
            (format!("{A}:1-5,\n{B}:1-3"), format!("{B}:1-3"), true),
            (format!("{A}:1-5"), format!("{B}:1"), false),
            (String::new(), String::new(), true),
            (format!("{A}:1-5"), String::new(), true),
            (String::new(), format!("{A}:1"), false),
            (format!("{A}:1-5:tag1:1-2"), format!("{A}:tag1:2"), true),
            (format!("{A}:1-5"), format!("{A}:tag1:2"), false),
            ("garbage:x".to_string(), format!("{A}:1"), false),
        ];
        for (sup, sub, want) in cases {
            assert_eq!(contains(Flavor::MySQL, &sup, &sub), want, "{sup} >= {sub}");
        }
    }

    #[test]
    fn mariadb_containment() {
        assert!(contains(
            Flavor::MariaDB,
            "1000-1000-5,1001-1001-3",
            "1001-1001-3"
        ));
        assert!(!contains(Flavor::MariaDB, "1000-1000-5", "1001-1001-1"));
    }
}
