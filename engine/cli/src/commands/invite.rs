//! `crm user invite`: a one-time code that links a new Telegram user to a new CRM user.

use anyhow::Context;
use crm_concepts::records::Actor;
use crm_concepts::user::Role;

#[derive(clap::Args, Debug)]
pub struct InviteArgs {
    /// The role the new user gets: admin, manager or viewer.
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// How long the code works, e.g. 30m, 12h, 7d.
    #[arg(long, default_value = "7d", value_parser = parse_ttl)]
    pub expires_in: chrono::Duration,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
}

fn parse_ttl(s: &str) -> Result<chrono::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| format!("{s:?}: expected a number and a unit, e.g. 7d"))?;
    match unit {
        "m" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "d" | "" => Ok(chrono::Duration::days(n)),
        _ => Err(format!("{s:?}: the unit must be m, h or d")),
    }
}

pub async fn run(db: &crm_store::Db, args: InviteArgs) -> anyhow::Result<()> {
    let created = crm_store::invites::create(db, &Actor::system(), args.role, args.expires_in)
        .await
        .context("creating the invite")?;
    println!("{}", created.code);
    eprintln!(
        "one-time invite for a {} (expires {}). The new user sends the bot:\n  /start {}",
        created.invite.role,
        created.invite.expires_at.format("%Y-%m-%d %H:%M UTC"),
        created.code
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("30m").unwrap(), chrono::Duration::minutes(30));
        assert_eq!(parse_ttl("2").unwrap(), chrono::Duration::days(2));
        assert!(parse_ttl("soon").is_err());
        assert!(parse_ttl("3w").is_err());
    }
}
