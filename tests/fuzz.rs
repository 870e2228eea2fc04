//! Property-based fuzzing of everything that parses outside input: the config
//! file, backup names, backup metadata, and the summary-line writer. Bounded
//! (DBBACKUP_FUZZ_CASES, default 2000 per target) so it runs in every `cargo test`.

use dbbackup::store::metadata::{self, CheckResult, Fingerprint, Kind, Metadata};
use dbbackup::store::naming::BackupName;
use proptest::prelude::*;

use crate::common::parse_logfmt;

fn cases() -> ProptestConfig {
    let cases = std::env::var("DBBACKUP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    /// Any text: a verdict, never a panic; YAML-shaped text with our keys too.
    #[test]
    fn config_text_never_panics(text in ".{0,400}") {
        let _ = dbbackup::config::check_text(&text);
    }

    #[test]
    fn config_values_are_judged_by_range(level in any::<i64>(), hours in any::<f64>(), keep in any::<i64>(), age in "[0-9]{0,4}[smhdwy]?") {
        let text = format!("compression_level: {level}\nmin_interval_hours: {hours}\nmax_backups: {keep}\ncheck:\n  max_age: '{age}'\n");
        let verdict = dbbackup::config::check_text(&text);
        let age_ok = dbbackup::units::parse_duration(&age).is_ok();
        let expected = (1..=9).contains(&level) && hours.is_finite() && hours >= 0.0 && keep >= 1 && keep <= u32::MAX as i64 && age_ok;
        prop_assert_eq!(verdict.is_ok(), expected, "{:?} for {}", verdict, text);
    }

    #[test]
    fn backup_names_never_panic_and_round_trip(name in "(backup_)?[0-9_.a-z]{0,40}(\\.db\\.gz)?") {
        if let Some(parsed) = BackupName::parse(&name) {
            prop_assert_eq!(parsed.file_name(), name);
        }
    }

    #[test]
    fn generated_names_parse_back(y in 1970i16..2200, mo in 1i8..=12, d in 1i8..=28, h in 0i8..24, mi in 0i8..60, s in 0i8..60, seq in 0u32..1000, failed in any::<bool>()) {
        let stamp = jiff::civil::date(y, mo, d).at(h, mi, s, 0);
        let name = BackupName::new(stamp, seq, failed);
        prop_assert_eq!(BackupName::parse(&name.file_name()), Some(name));
    }

    #[test]
    fn metadata_reader_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..9000)) {
        let _ = metadata::decode(&mut &bytes[..]);
    }

    #[test]
    fn metadata_reader_never_panics_on_damaged_headers(flips in proptest::collection::vec((0usize..8192, any::<u8>()), 1..8), source in ".{0,200}", job in ".{0,80}") {
        let meta = sample(source, job);
        let mut header = metadata::encode(&meta).unwrap();
        for (at, value) in flips {
            header[at] = value;
        }
        if let Ok(decoded) = metadata::decode(&mut &header[..]) {
            // Whatever decodes is well-formed metadata.
            prop_assert!(decoded.format >= 1 || decoded.format == 0);
        }
    }

    #[test]
    fn metadata_round_trips(source in ".{0,300}", job in ".{0,80}") {
        let meta = sample(source, job);
        let header = metadata::encode(&meta).unwrap();
        prop_assert_eq!(metadata::decode(&mut &header[..]).unwrap(), meta);
    }

    /// No value can break a summary line or forge a field, and values read back.
    #[test]
    fn summary_values_stay_inside_their_field(value in "(?s).{0,300}", key_value in "[a-z]{1,5}=[a-z]{0,5}") {
        let job = dbbackup::jobenv::JobContext::from_lookup(|_| Some(value.clone()), value.clone());
        let mut line = dbbackup::summary::Line::new(&job, "post-job", dbbackup::summary::Status::Ok);
        line.field("error", &value).field("note", &key_value);
        let text = line.text();
        prop_assert!(!text.contains('\n') && !text.contains('\r'));
        let fields = parse_logfmt(text).expect("parses");
        prop_assert_eq!(fields.get("event").map(String::as_str), Some("post-job"));
        prop_assert_eq!(fields.get("status").map(String::as_str), Some("ok"));
        let bounded: String = value.chars().take(512).collect();
        prop_assert_eq!(fields.get("error"), Some(&bounded));
        prop_assert_eq!(fields.get("note"), Some(&key_value));
    }
}

fn sample(source: String, job: String) -> Metadata {
    Metadata {
        format: metadata::FORMAT_VERSION,
        created: jiff::Timestamp::UNIX_EPOCH,
        source,
        db_size: 1,
        checksum: "sha256:00".into(),
        host: "h".into(),
        job,
        kind: Kind::PostJob,
        check: CheckResult::Ok,
        check_detail: None,
        fingerprint: Some(Fingerprint("f".into())),
        tool: "t".into(),
        adopted_from: None,
    }
}
