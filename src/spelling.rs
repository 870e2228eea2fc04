//! Which known name a misspelt one most likely meant: config keys, variables,
//! backup names. A leaf, so that `config`, `cli` and `store` share it without
//! using each other.

/// The name in `names` a misspelling of `name` most likely meant, if one is close.
pub(crate) fn closest<'a>(name: &str, names: &'a [String]) -> Option<&'a str> {
    names
        .iter()
        .map(|known| (edit_distance(name, known), known))
        .min_by_key(|(distance, _)| *distance)
        .filter(|(distance, _)| *distance <= 2.max(name.len() / 4))
        .map(|(_, known)| known.as_str())
}

/// Levenshtein distance, by characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_the_closest_name() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let names = ["max_backups".to_string(), "db_path".to_string()];
        assert_eq!(closest("max_bakups", &names), Some("max_backups"));
        assert_eq!(closest("zzz", &names), None);
    }
}
