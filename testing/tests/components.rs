//! Every built guest component is exercised by some test: a component nothing runs is
//! either dead or untested. Hostile fixtures are covered by their `expected.toml` (the
//! runtime's containment test and the worker's hostile-components test run every one);
//! the rest are listed here with the test that runs them, and that test must name them.

use crm_testing::fixtures;
use crm_testing::workspace::root;

/// Components with scenario tests: (package, test file, what in that file runs it).
const SCENARIO_TESTED: &[(&str, &str, &str)] = &[
    ("lead-score", "engine/runtime/tests/examples.rs", "crm_guests::LEAD_SCORE"),
    ("follow-up-task", "engine/runtime/tests/examples.rs", "crm_guests::FOLLOW_UP_TASK"),
    ("deal-won-message", "engine/runtime/tests/examples.rs", "crm_guests::DEAL_WON_MESSAGE"),
    ("stale-deals", "engine/runtime/tests/examples.rs", "crm_guests::STALE_DEALS"),
    ("duplicate-contacts", "engine/runtime/tests/examples.rs", "crm_guests::DUPLICATE_CONTACTS"),
    ("inbound-lead", "engine/cli/tests/automations.rs", r#"deploy("inbound-lead")"#),
    // The `summary` step of workflows/qualify-lead.
    ("qualify-summary", "engine/cli/tests/runs.rs", r#"deploy("qualify-lead")"#),
    ("task-reminder", "engine/cli/tests/reminders.rs", r#"deploy("task-reminder")"#),
    // The three steps of workflows/discount-approval.
    ("deal-discount", "engine/cli/tests/example_automations.rs", r#"deploy("discount-approval")"#),
    ("fixture-echo", "engine/runtime/tests/containment.rs", "crm_guests::ECHO"),
    ("fixture-not-a-step", "engine/cli/tests/component.rs", "crm_guests::NOT_A_STEP"),
    ("fixture-counter", "engine/runtime/tests/state.rs", "crm_guests::COUNTER"),
    ("fixture-http-get", "engine/runtime/tests/http.rs", "crm_guests::HTTP_GET"),
    // Through `crm_testing::manifests::slow_chain`, whose steps are `fixture-slow`.
    ("fixture-slow", "engine/cli/tests/recovery.rs", "slow_chain("),
    ("fixture-note", "engine/cli/tests/effects.rs", "fixture-note"),
];

#[test]
fn every_built_component_is_exercised_by_a_test() {
    let hostile: Vec<String> = fixtures::hostile().into_iter().map(|f| f.package).collect();
    let mut problems = Vec::new();
    for (package, _) in crm_guests::ALL {
        let listed = SCENARIO_TESTED.iter().find(|(p, _, _)| p == package);
        match (hostile.iter().any(|h| h == package), listed) {
            (true, None) => {}
            (false, Some((_, file, needle))) => {
                let text = std::fs::read_to_string(root().join(file)).unwrap_or_default();
                if !text.contains(needle) {
                    problems.push(format!("{package}: {file} does not contain {needle:?}"));
                }
            }
            (true, Some(_)) => problems.push(format!("{package}: has an expected.toml and a scenario entry; keep one")),
            (false, None) => problems.push(format!(
                "{package}: no test runs it; give it an expected.toml (hostile fixtures) or a test and an \
                 entry in SCENARIO_TESTED"
            )),
        }
    }
    for (package, _, _) in SCENARIO_TESTED {
        if !crm_guests::ALL.iter().any(|(p, _)| p == package) {
            problems.push(format!("{package}: listed in SCENARIO_TESTED but not built (engine/guests/build.rs)"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
