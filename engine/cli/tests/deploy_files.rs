//! The deploy files, checked without Docker or a cluster: the systemd units pass
//! `systemd-analyze verify` against the built binary; the compose files validate against
//! the Compose Specification's schema (`check-jsonschema`) and the Kubernetes manifests
//! against the Kubernetes API's schemas (`kubernetes-validate`, offline), both installed
//! by `.ci/run`; the image's build context leaves
//! build outputs out and its runtime stage is the `crm` binary alone (the examples are
//! compiled in) under a non-root user; compose bootstraps the admin and the credentials
//! and restarts what must keep running; every
//! Kubernetes container asks for resources, migrations run before the engine, the bot runs
//! alone, and workers and the bot have health checks.

use std::process::Command;

fn read(path: &str) -> String {
    std::fs::read_to_string(crm_testing::workspace::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn systemd_units_verify_and_the_engine_migrates_on_upgrade() {
    let dir = tempfile::tempdir().expect("temp dir");
    let crm = crm_testing::process::crm_bin();
    let units = ["crm-engine.service", "crm-worker.service", "crm-bot.service"];
    for unit in units {
        let text = read(&format!("deploy/systemd/{unit}"));
        // The units name the installed path; verify them against this build's binary.
        std::fs::write(dir.path().join(unit), text.replace("/usr/local/bin/crm", &crm.display().to_string()))
            .expect("write unit");
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(units.iter().map(|u| dir.path().join(u)))
        .output()
        .expect("systemd-analyze (Debian's systemd package) runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!units.iter().any(|u| stderr.contains(u)), "no warning about a unit: {stderr}");

    let engine = read("deploy/systemd/crm-engine.service");
    let pre = engine.find("ExecStartPre=/usr/local/bin/crm migrate").expect("the engine migrates before it serves");
    assert!(pre < engine.find("ExecStart=/usr/local/bin/crm serve").expect("serve"));
    // Each service reads only its own secrets.
    assert!(read("deploy/systemd/crm-worker.service").contains("EnvironmentFile=/etc/crm/worker.env"));
    assert!(read("deploy/systemd/crm-bot.service").contains("EnvironmentFile=/etc/crm/bot.env"));
    assert!(read("deploy/systemd/crm.sysusers").lines().any(|l| l.starts_with("u crm ")));
}

#[test]
fn the_image_sends_no_build_outputs_and_runs_the_binary_alone_as_a_user() {
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/") && ignore.lines().any(|l| l.trim() == ".git/"), "{ignore}");
    let dockerfile = read("deploy/Dockerfile");
    let runtime = dockerfile.rsplit("\nFROM ").next().expect("a runtime stage");
    let copies: Vec<&str> = runtime.lines().filter(|l| l.starts_with("COPY")).collect();
    assert_eq!(copies, ["COPY --from=build /usr/local/bin/crm /usr/local/bin/crm"], "{runtime}");
    // Dependencies stay built between image builds (a cache mount, not a layer).
    let build = dockerfile.split("\nFROM ").nth(1).expect("a build stage");
    assert!(
        build.contains("--mount=type=cache,target=/src/target") && build.contains("cargo build --release"),
        "{build}"
    );
    assert!(runtime.lines().any(|l| l.starts_with("USER ") && !l.contains("root")), "{runtime}");
    // What `crm up` deploys is inside that binary, not beside it.
    for (package, _) in crm_guests::ALL.iter().filter(|(p, _)| !p.starts_with("fixture-")) {
        assert!(crm_guests::embedded(package).is_some_and(|b| !b.is_empty()), "{package} is compiled in");
    }
}

/// Runs a validator on deploy files; panics with what it said unless it passes.
fn validate(program: &str, args: &[&str], files: &[std::path::PathBuf]) {
    let out = Command::new(program)
        .args(args)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs (`.ci/run` installs it with pip): {e}"));
    assert!(
        out.status.success(),
        "{program} rejects {files:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compose_files_follow_the_compose_specification() {
    let root = crm_testing::workspace::root();
    let files = [root.join("deploy/compose.yaml"), root.join("deploy/compose.dev.yaml")];
    validate("check-jsonschema", &["--builtin-schema", "vendor.compose-spec"], &files);
}

#[test]
fn kubernetes_manifests_follow_the_kubernetes_api() {
    let dir = crm_testing::workspace::root().join("deploy/k8s");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("deploy/k8s")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "manifests in {}", dir.display());
    // Strict: a misspelt or misplaced field is an error, not silently ignored.
    validate("kubernetes-validate", &["--strict", "--kubernetes-version", "1.37.0", "--quiet"], &files);
}

/// The top-level blocks under `services:` of the compose file: (name, its lines).
fn compose_services(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty() {
            inside = line.starts_with("services:");
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(name) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ') && !l.starts_with('#')) {
            out.push((name.trim_end_matches(':').to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

#[test]
fn compose_restarts_the_long_running_services() {
    let services = compose_services(&read("deploy/compose.yaml"));
    for name in ["postgres", "redis", "engine", "worker", "bot"] {
        let (_, body) = services.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} in compose"));
        assert!(body.contains("restart: unless-stopped"), "{name}:\n{body}");
    }
    let (_, engine) = services.iter().find(|(n, _)| n == "engine").expect("engine");
    assert!(engine.contains("bootstrap: { condition: service_completed_successfully }"), "{engine}");
    // No manual step: the bootstrap writes the credentials the worker and the bot read.
    let (_, bootstrap) = services.iter().find(|(n, _)| n == "bootstrap").expect("bootstrap");
    assert!(bootstrap.contains("--worker-credential=/run/crm/worker/credential"), "{bootstrap}");
    assert!(bootstrap.contains("--bot-token=/run/crm/bot/token"), "{bootstrap}");
    for (name, file) in [("worker", "CRM_WORKER_CREDENTIAL_FILE"), ("bot", "CRM_ENGINE_TOKEN_FILE")] {
        let (_, body) = services.iter().find(|(n, _)| n == name).expect("service");
        assert!(body.contains(file) && !body.contains("CRM_DATABASE_URL"), "{name}:\n{body}");
    }
}

#[test]
fn the_dev_overlay_publishes_only_postgres_and_redis_on_loopback() {
    let services = compose_services(&read("deploy/compose.dev.yaml"));
    let names: Vec<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["postgres", "redis"]);
    for (name, body) in &services {
        assert!(body.contains("ports: [\"127.0.0.1:"), "{name} is published on loopback only:\n{body}");
    }
}

#[test]
fn kubernetes_containers_request_resources_and_migrations_come_first() {
    let text = read("deploy/k8s/crm.yaml");
    let images = text.matches("image: crm:latest").count();
    assert_eq!(text.matches("requests:").count(), images, "every container states its requests");
    let docs: Vec<&str> = text.split("\n---\n").collect();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d.contains(&format!("kind: {kind}")) && d.contains(&format!("name: {name} }}")))
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .to_string()
    };
    let engine = find("Deployment", "crm-engine");
    let (init, main) = engine.split_once("containers:\n        - name: engine").expect("the engine container");
    assert!(init.contains("initContainers:") && init.contains("args: [\"migrate\"]"), "{engine}");
    assert!(main.contains("readinessProbe") && main.contains("livenessProbe"));
    for name in ["crm-worker", "crm-bot"] {
        let d = find("Deployment", name);
        assert!(d.contains("livenessProbe: { httpGet: { path: /healthz, port: 9464 } }"), "{d}");
        assert!(d.contains("CRM_METRICS_LISTEN"), "{d}");
    }
    assert!(find("Deployment", "crm-bot").contains("replicas: 1"));
    for name in ["crm-engine", "crm-worker"] {
        find("PodDisruptionBudget", name);
    }
}

fn yaml(path: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

fn keys(v: &serde_yaml::Value) -> Vec<String> {
    match v {
        serde_yaml::Value::Mapping(m) => m.keys().filter_map(|k| k.as_str().map(str::to_string)).collect(),
        serde_yaml::Value::Sequence(s) => s.iter().filter_map(|k| k.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn compose_files_parse_and_refer_only_to_what_they_define() {
    let dev = yaml("deploy/compose.dev.yaml");
    let compose = yaml("deploy/compose.yaml");
    let services = keys(&compose["services"]);
    let volumes = keys(&compose["volumes"]);
    for name in keys(&dev["services"]) {
        assert!(services.contains(&name), "the dev overlay names {name}, which compose.yaml lacks");
    }
    for name in &services {
        let service = &compose["services"][name.as_str()];
        assert!(!service["image"].is_null() || !service["build"].is_null(), "{name} has an image or a build");
        for dep in keys(&service["depends_on"]) {
            assert!(services.contains(&dep), "{name} depends on {dep}, which is not a service");
        }
        for mount in service["volumes"].as_sequence().into_iter().flatten().filter_map(|m| m.as_str()) {
            let source = mount.split(':').next().unwrap_or_default();
            if !source.starts_with(['/', '.']) {
                assert!(volumes.iter().any(|v| v == source), "{name} mounts {source}, which is not a declared volume");
            }
        }
    }
}

#[test]
fn kubernetes_documents_parse_and_select_their_own_pods() {
    let text = read("deploy/k8s/crm.yaml");
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("each document is valid YAML"))
        .collect();
    let kind = |d: &serde_yaml::Value| d["kind"].as_str().unwrap_or_default().to_string();
    let deployments: Vec<&serde_yaml::Value> = docs.iter().filter(|d| kind(d) == "Deployment").collect();
    assert_eq!(deployments.len(), 3, "engine, worker and bot");
    let labels_of = |d: &serde_yaml::Value| d["spec"]["template"]["metadata"]["labels"].clone();
    for d in &deployments {
        let name = d["metadata"]["name"].as_str().unwrap_or_default();
        let labels = labels_of(d);
        for (k, v) in d["spec"]["selector"]["matchLabels"].as_mapping().expect("a selector") {
            assert_eq!(&labels[k], v, "{name}: the selector matches the pod labels");
        }
        let pod = &d["spec"]["template"]["spec"];
        let containers = pod["containers"].as_sequence().into_iter().chain(pod["initContainers"].as_sequence());
        for c in containers.flatten() {
            let requests = &c["resources"]["requests"];
            assert!(
                !requests["cpu"].is_null() && !requests["memory"].is_null(),
                "{name}/{:?} states its requests",
                c["name"]
            );
            assert!(c["image"].as_str().is_some_and(|i| !i.is_empty()), "{name}: an image");
        }
    }
    for d in docs.iter().filter(|d| matches!(kind(d).as_str(), "PodDisruptionBudget" | "Service")) {
        let selector =
            if kind(d) == "Service" { &d["spec"]["selector"] } else { &d["spec"]["selector"]["matchLabels"] };
        assert!(
            deployments.iter().any(|dep| labels_of(dep)["app"] == selector["app"]),
            "{:?} selects the pods of a Deployment",
            d["metadata"]["name"]
        );
    }
}
