//! `crm schedule list`: the cron schedules of the deployed workflows and when each fires next.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// List cron schedules with their next fire times.
    List {
        /// How many upcoming fire times to show per schedule.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
        next: u16,
        /// Include schedules of disabled or removed triggers.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: &Config, command: ScheduleCommand) -> anyhow::Result<()> {
    match command {
        ScheduleCommand::List { next, all, json } => list(config, usize::from(next), all, json).await,
    }
}

async fn list(config: &Config, next: usize, all: bool, json: bool) -> anyhow::Result<()> {
    let db = crm_store::Db::connect(&config.database_url, 2).await?;
    // Bring the table in line with what is deployed, so the list is right even when no
    // engine has run since the last deploy.
    crm_triggers::schedules::sync(&db.pool).await.context("syncing schedules from the deployed workflows")?;
    let mut items = crm_triggers::schedules::list(&db.pool, next).await.context("listing schedules")?;
    if !all {
        items.retain(|s| s.enabled);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "items": items }))?);
        return Ok(());
    }
    if items.is_empty() {
        println!("no cron schedules (deploy a workflow with a `kind = \"cron\"` trigger)");
        return Ok(());
    }
    let now = Utc::now();
    let rows: Vec<[String; 4]> = items
        .iter()
        .map(|s| {
            let tz: chrono_tz::Tz = s.timezone.parse().unwrap_or(chrono_tz::UTC);
            let times = if s.next_fire_times.is_empty() {
                if s.enabled { "never".to_string() } else { "disabled".to_string() }
            } else {
                let first = s.next_fire_times[0];
                let mut parts: Vec<String> = s
                    .next_fire_times
                    .iter()
                    .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z").to_string())
                    .collect();
                parts[0] = format!("{} (in {})", parts[0], humanize(first, now));
                parts.join(", ")
            };
            [s.workflow.clone(), s.expression.clone(), s.timezone.clone(), times]
        })
        .collect();
    let headers = ["WORKFLOW", "SCHEDULE", "TIME ZONE", "NEXT FIRE TIMES"];
    let widths: Vec<usize> =
        (0..3).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).max(headers[i].len())).collect();
    println!(
        "{:w0$}  {:w1$}  {:w2$}  {}",
        headers[0],
        headers[1],
        headers[2],
        headers[3],
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2]
    );
    for r in rows {
        println!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3], w0 = widths[0], w1 = widths[1], w2 = widths[2]);
    }
    Ok(())
}

/// "3s", "5m 10s", "2h 5m", "3d 4h": how far away a fire time is, to the useful precision.
fn humanize(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds().max(0);
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_useful_precision() {
        let now = Utc::now();
        assert_eq!(humanize(now + chrono::Duration::seconds(4), now), "4s");
        assert_eq!(humanize(now + chrono::Duration::seconds(310), now), "5m 10s");
        assert_eq!(humanize(now + chrono::Duration::seconds(7500), now), "2h 5m");
        assert_eq!(humanize(now + chrono::Duration::seconds(3 * 86_400 + 4 * 3600), now), "3d 4h");
    }
}
