//! `crm component check|run`: the authoring tools, driven through the real binary with
//! neither Postgres nor Redis.

use std::process::Output;

fn crm(args: &[&str]) -> Output {
    // `crm()` points at no service: these commands must not need any.
    crm_testing::process::crm().args(args).output().expect("run crm")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows/lead-score/fixtures.json");

#[test]
fn run_scores_the_example_lead_from_the_fixture_file() {
    let out =
        crm(&["component", "run", crm_guests::LEAD_SCORE, "--input", r#"{"contact_id": 1}"#, "--records", FIXTURES]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let output: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is the step's JSON output");
    assert_eq!(output["name"], "Ann Lee");
    assert_eq!(output["grade"], "hot");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("log INFO  lead scored"), "{stderr}");
    assert!(stderr.contains("usage: ") && stderr.contains("peak memory"), "{stderr}");
}

#[test]
fn run_checks_custom_writes_against_the_fixture_fields_only() {
    // Ann is a hot lead; with write-back the step stores `lead_grade` on her.
    let mut fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURES).unwrap()).expect("fixture JSON");
    fixture["fields"] = serde_json::json!([{"kind": "contact", "key": "lead_grade", "label": "Lead grade",
        "type": "choice", "choices": ["warm", "cold"]}]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixtures.json");
    std::fs::write(&path, fixture.to_string()).unwrap();
    let args = |records: &str| -> Vec<String> {
        ["component", "run", crm_guests::LEAD_SCORE, "--input", r#"{"contact_id": 1}"#]
            .into_iter()
            .chain(["--step-config", r#"{"write_back": true}"#, "--records", records])
            .map(str::to_string)
            .collect()
    };
    let run = |records: &str| {
        let args = args(records);
        crm(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let refused = run(path.to_str().unwrap());
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("custom.lead_grade: Lead grade must be one of warm, cold"), "{stderr}");
    // Without definitions in the fixture nothing is checked: the database's are not read.
    let free = run(FIXTURES);
    assert!(free.status.success(), "{}", text(&free.stderr));
    let help = text(&crm(&["component", "run", "--help"]).stdout);
    assert!(help.contains("custom field definitions are not") && help.contains("\"fields\""), "{help}");
}

#[test]
fn run_with_explicit_grants_reports_the_missing_capability() {
    let out = crm(&[
        "component",
        "run",
        crm_guests::LEAD_SCORE,
        "--input",
        r#"{"contact_id": 1}"#,
        "--records",
        FIXTURES,
        "--grant",
        "records:read",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("capability_denied: capability `log` was not granted"), "{stderr}");
}

#[test]
fn run_refuses_bad_input_with_a_message() {
    let out = crm(&["component", "run", crm_guests::ECHO, "--input", "{not json"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--input is not valid JSON"), "{}", text(&out.stderr));
    let out = crm(&["component", "run", crm_guests::ECHO, "--grant", "fs:/etc"]);
    assert!(text(&out.stderr).contains("unknown capability \"fs:/etc\""), "{}", text(&out.stderr));
}

#[test]
fn check_accepts_a_step_and_explains_everything_else() {
    let ok = crm(&["component", "check", crm_guests::LEAD_SCORE]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("a crm:automation/step component"));
    assert!(text(&ok.stdout).contains("crm:automation/records@0.1.0"));

    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("core.wasm", b"\0asm\x01\0\0\0", "a core WebAssembly module, not a component"),
        ("random.bin", &[0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3], "not WebAssembly"),
        ("empty-component.wasm", b"\0asm\x0d\0\x01\0", "does not implement the crm:automation/step world"),
    ];
    for (name, bytes, message) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = crm(&["component", "check", path.to_str().unwrap()]);
        assert!(!out.status.success(), "{name}");
        assert!(text(&out.stderr).contains(message), "{name}: {}", text(&out.stderr));
    }

    let command = crm(&["component", "check", crm_guests::NOT_A_STEP]);
    assert!(!command.status.success());
    assert!(
        text(&command.stderr).contains("does not implement the crm:automation/step world"),
        "{}",
        text(&command.stderr)
    );

    // Sockets link (Python's and JavaScript's runtimes import them) and refuse at the call.
    let socket = crm(&["component", "check", crm_guests::OPEN_SOCKET]);
    assert!(socket.status.success(), "{}", text(&socket.stderr));
    let connect = crm(&["component", "run", crm_guests::OPEN_SOCKET]);
    assert!(!connect.status.success());
    assert!(text(&connect.stderr).contains("cannot connect: Permission denied"), "{}", text(&connect.stderr));
}
