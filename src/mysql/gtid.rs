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

fn subtract(have: &[(u64, u64)], (a, b): (u64, u64)) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut next = a;
    for &(x, y) in have {
        if next > b {
            break;
        }
        if y < next {
            continue;
        }
        if x > next {
            out.push((next, b.min(x - 1)));
        }
        next = next.max(y.saturating_add(1));
    }
    if next <= b {
        out.push((next, b));
    }
    out
}

/// One source's part of a GTID set: its source (MySQL `uuid[:tag]`, MariaDB
/// `domain-server`) and the text of the transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// MySQL: the source uuid (with `:tag`); MariaDB: the originating
    /// `server_id`.
    pub source: String,
    /// The part as it is written in a set.
    pub text: String,
}

/// The transactions of `of` that `have` lacks, per source. An unparsable set
/// is reported whole (nothing can be shown to be contained).
pub fn missing(flavor: Flavor, have: &str, of: &str) -> Vec<Part> {
    match flavor {
        Flavor::MySQL => {
            let (Some(h), Some(o)) = (parse_mysql(have), parse_mysql(of)) else {
                return vec![Part {
                    source: String::new(),
                    text: of.trim().to_string(),
                }];
            };
            o.iter()
                .filter_map(|(source, intervals)| {
                    let held = h.get(source).map(Vec::as_slice).unwrap_or(&[]);
                    let gaps: Vec<String> = intervals
                        .iter()
                        .flat_map(|&iv| subtract(held, iv))
                        .map(|(a, b)| {
                            if a == b {
                                a.to_string()
                            } else {
                                format!("{a}-{b}")
                            }
                        })
                        .collect();
                    (!gaps.is_empty()).then(|| Part {
                        source: source.clone(),
                        text: format!("{source}:{}", gaps.join(":")),
                    })
                })
                .collect()
        }
        Flavor::MariaDB => {
            let cur = super::status::parse_mariadb_pos(have).unwrap_or_default();
            of.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let mut it = p.split('-');
                    let (d, s, n) = (it.next()?, it.next()?, it.next()?);
                    let (d, n): (u32, u64) = (d.parse().ok()?, n.parse().ok()?);
                    (cur.get(&d).is_none_or(|c| *c < n)).then(|| Part {
                        source: s.to_string(),
                        text: p.to_string(),
                    })
                })
                .collect()
        }
    }
}

/// Errant transactions of a failover candidate: what it executed beyond
/// the last executed set known of the failed writer (`writer_known`),
/// except what originated on the writer itself (`writer_source`: its
/// server uuid on MySQL, its server_id on MariaDB), which the candidate may
/// have received after that set was recorded. Empty: none.
pub fn errant(
    flavor: Flavor,
    candidate: &str,
    writer_known: &str,
    writer_source: &str,
) -> Vec<String> {
    missing(flavor, writer_known, candidate)
        .into_iter()
        .filter(|p| {
            let origin = p.source.split(':').next().unwrap_or_default();
            !origin.eq_ignore_ascii_case(writer_source)
        })
        .map(|p| p.text)
        .collect()
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

    #[test]
    fn missing_table() {
        let cases = [
            (format!("{A}:1-10"), format!("{A}:1-5"), vec![]),
            (
                format!("{A}:1-5"),
                format!("{A}:1-10"),
                vec![format!("{A}:6-10")],
            ),
            (
                format!("{A}:1-5:8-9"),
                format!("{A}:1-12"),
                vec![format!("{A}:6-7:10-12")],
            ),
            (
                format!("{A}:2-3"),
                format!("{A}:1-4"),
                vec![format!("{A}:1:4")],
            ),
            (
                format!("{A}:1-5"),
                format!("{A}:1-5,{B}:1-2"),
                vec![format!("{B}:1-2")],
            ),
            (String::new(), format!("{A}:7"), vec![format!("{A}:7")]),
            (format!("{A}:1-5"), String::new(), vec![]),
        ];
        for (have, of, want) in cases {
            let got: Vec<String> = missing(Flavor::MySQL, &have, &of)
                .into_iter()
                .map(|p| p.text)
                .collect();
            assert_eq!(got, want, "{of} - {have}");
        }
        let got = missing(Flavor::MariaDB, "0-1-10,1-2-3", "0-1-10,1-3-5,2-2-1");
        assert_eq!(
            got,
            vec![
                Part {
                    source: "3".into(),
                    text: "1-3-5".into()
                },
                Part {
                    source: "2".into(),
                    text: "2-2-1".into()
                }
            ]
        );
    }

    #[test]
    fn errant_table() {
        // (candidate, last known writer set, writer source, errant)
        let cases: Vec<(Flavor, String, String, &str, Vec<String>)> = vec![
            // Received more from the writer after status recorded it: fine.
            (
                Flavor::MySQL,
                format!("{A}:1-20"),
                format!("{A}:1-10"),
                A,
                vec![],
            ),
            // Its own transactions the writer never had: errant.
            (
                Flavor::MySQL,
                format!("{A}:1-10,{B}:1-3"),
                format!("{A}:1-10,{B}:1"),
                A,
                vec![format!("{B}:2-3")],
            ),
            // The writer had them (replicated in master-master): fine.
            (
                Flavor::MySQL,
                format!("{A}:1-10,{B}:1-3"),
                format!("{A}:1-10,{B}:1-3"),
                A,
                vec![],
            ),
            (
                Flavor::MariaDB,
                "0-1-20".into(),
                "0-1-10".into(),
                "1",
                vec![],
            ),
            (
                Flavor::MariaDB,
                "0-2-11".into(),
                "0-1-10".into(),
                "1",
                vec!["0-2-11".into()],
            ),
            (
                Flavor::MariaDB,
                "0-2-9".into(),
                "0-1-10".into(),
                "1",
                vec![],
            ),
        ];
        for (flavor, cand, known, source, want) in cases {
            assert_eq!(
                errant(flavor, &cand, &known, source),
                want,
                "{cand} vs {known}"
            );
        }
    }
}
