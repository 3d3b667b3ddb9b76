//! Workflow manifests that several scenario tests deploy.

/// A chain of `steps` steps that each sleep `ms` inside the component (`fixture-slow`), so a
/// crash or a takeover lands while steps are running.
pub fn slow_chain(name: &str, steps: usize, ms: u64) -> String {
    let mut m = format!("name = \"{name}\"\nversion = \"1\"\n");
    for i in 0..steps {
        m.push_str(&format!(
            "\n[[steps]]\nid = \"s{i}\"\ncomponent = \"fixture-slow\"\nconfig = {{ ms = {ms} }}\ntimeout = \"10s\"\n"
        ));
        if i > 0 {
            m.push_str(&format!("needs = [\"s{}\"]\n", i - 1));
        }
    }
    m
}

/// A discount that needs a manager's approval: `apply` on approval, `decline` on rejection
/// or after two days without a decision.
pub const DISCOUNT: &str = r#"
name = "discount"
version = "1"

[[steps]]
id = "ok"
approval = { role = "manager", text = "Give {{input.percent}}% off deal {{input.deal_id}}?", timeout = "2d", on_timeout = "rejected", on_reject = "decline" }

[[steps]]
id = "apply"
component = "fixture-echo"
needs = ["ok"]

[[steps]]
id = "decline"
component = "fixture-echo"
needs = ["ok"]
"#;
