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
        .unwrap_or(if crate::common::quick() { 200 } else { 2000 });
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

    /// The ranges, written out here (not read from the code under test), judged
    /// by the same parse a real run uses.
    #[test]
    fn config_values_are_judged_by_range(level in any::<i64>(), hours in any::<f64>(), keep in any::<i64>(), threads in -2i64..100, shrink in -10f64..300.0, age in "[0-9]{0,4}[smhdwy]?") {
        let text = format!("compression_level: {level}\nmin_interval_hours: {hours}\nmax_backups: {keep}\nthreads: {threads}\ncheck:\n  max_age: '{age}'\n  max_shrink: {shrink}\n");
        let verdict = dbbackup::config::check_text(&text);
        let age_ok = dbbackup::units::parse_duration(&age).is_ok();
        let expected = (1..=9).contains(&level)
            && hours.is_finite() && (0.0..=876_000.0).contains(&hours)
            && keep >= 1 && keep <= i64::from(u32::MAX)
            && (0..=64).contains(&threads)
            && (0.0..=100.0).contains(&shrink)
            && age_ok;
        prop_assert_eq!(verdict.is_ok(), expected, "{:?} for {}", verdict, text);
    }

    /// `resolve`, as `main` calls it, on a real file: a verdict, never a panic, and
    /// a file `check_text` accepts is accepted by the run too.
    #[test]
    fn a_run_reads_the_config_file_check_text_judges(text in config_like_text()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dbbackup.yaml");
        std::fs::write(&path, &text).unwrap();
        let request = dbbackup::config::Request {
            flags: dbbackup::options::Options {
                config: Some(path),
                ..Default::default()
            },
            ..Default::default()
        };
        let run = dbbackup::config::resolve(request);
        let judged = dbbackup::config::check_text(&text);
        prop_assert_eq!(run.is_ok(), judged.is_ok(), "{:?} / {:?} for {}", run.as_ref().err().map(ToString::to_string), judged, text);
        if let Err(message) = judged {
            let shown = run.unwrap_err().to_string();
            prop_assert!(shown.ends_with(&message), "{} vs {}", shown, message);
        }
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
            // Whatever decodes is well-formed metadata: it is written back and read
            // back unchanged.
            let again = metadata::encode(&decoded).expect("decoded metadata encodes");
            prop_assert_eq!(metadata::decode(&mut &again[..]).unwrap(), decoded);
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
        let job = dbbackup::slurm::job::JobContext::from_lookup(|_| Some(value.clone()), value.clone());
        let mut line = dbbackup::summary_log::Line::new(&job, "post-job", dbbackup::summary_log::EventStatus::Ok);
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

/// YAML with this project's keys and values of every kind, in or out of range.
fn config_like_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "compression_level",
        "max_backups",
        "keep_daily",
        "keep_weekly",
        "diff_backups",
        "min_interval_hours",
        "busy_timeout_seconds",
        "lock_timeout_seconds",
        "threads",
        "db_path",
        "bogus",
    ]);
    let value = prop::sample::select(vec![
        "0",
        "1",
        "9",
        "10",
        "-1",
        "64",
        "65",
        "1.5",
        "1e20",
        ".nan",
        "''",
        "x",
        "200",
        "604800",
        "604801",
        "4294967296",
    ]);
    let check_key = prop::sample::select(vec!["max_age", "min_count", "max_shrink", "min_free"]);
    let check_value = prop::sample::select(vec!["200", "50", "-1", "'24h'", "'1G'", "'x'", "0"]);
    (
        prop::collection::vec((key, value), 0..4),
        prop::collection::vec((check_key, check_value), 0..3),
    )
        .prop_map(|(top, check)| {
            let mut text: String = top.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
            if !check.is_empty() {
                text.push_str("check:\n");
                text.extend(check.iter().map(|(k, v)| format!("  {k}: {v}\n")));
            }
            text
        })
}

fn sample(source: String, job: String) -> Metadata {
    Metadata {
        format: metadata::FORMAT_VERSION,
        created: jiff::Timestamp::UNIX_EPOCH,
        source,
        db_size: 1,
        checksum: "sha256:0000000000000000000000000000000000000000000000000000000000000000"
            .parse()
            .unwrap(),
        host: "h".into(),
        job,
        kind: Kind::PostJob,
        check: CheckResult::Ok,
        check_detail: None,
        check_kind: Default::default(),
        fingerprint: Some(Fingerprint("f".into())),
        tool: "t".into(),
        adopted_from: None,
        file_size: Some(1),
        seq: None,
        members: None,
        diff: None,
        duration_seconds: None,
        name: None,
        free_bytes: None,
        numbering_since: None,
    }
}
