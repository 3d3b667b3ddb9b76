//! `crm field`: typed custom fields of contacts, companies, deals and tasks. The command
//! line speaks to the database as the installation's operator, so it has an admin's say.

use anyhow::Context;
use clap::Subcommand;
use crm_concepts::custom_fields::{FieldDefinitionChange, FieldType, NewFieldDefinition};
use crm_concepts::records::RecordKind;

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum FieldCommand {
    /// Define a custom field; every later write of that kind of record is checked against it.
    Add {
        /// contact, company, deal or task.
        #[arg(long, value_parser = parse_kind)]
        kind: RecordKind,
        /// The key in the record's `custom` object: a-z, 0-9 and _, e.g. lead_source.
        #[arg(long)]
        key: String,
        /// What people see (default: the key).
        #[arg(long)]
        label: Option<String>,
        /// text, number, money, date, choice or yes_no.
        #[arg(long = "type", value_parser = parse_type)]
        field_type: FieldType,
        /// A choice field's choices, comma-separated: --choices gold,silver,bronze
        #[arg(long, value_delimiter = ',')]
        choices: Vec<String>,
        /// Every record of the kind written from now on must have it.
        #[arg(long)]
        required: bool,
    },
    /// List the custom fields (of one kind, with --kind).
    List {
        #[arg(long, value_parser = parse_kind)]
        kind: Option<RecordKind>,
    },
    /// Change a custom field's label, whether it is required, or a choice field's choices.
    ///
    /// The records of the kind are re-checked first: making the field required while
    /// records lack it, or dropping a choice that records still hold, is refused with how
    /// many there are and the first ids, and nothing changes. The type cannot change:
    /// remove the field and add it again with the new type.
    Change {
        #[arg(long, value_parser = parse_kind)]
        kind: RecordKind,
        key: String,
        /// What people see.
        #[arg(long)]
        label: Option<String>,
        /// Every record of the kind must have it (refused while some lack it).
        #[arg(long, conflicts_with = "optional")]
        required: bool,
        /// Records may leave it out.
        #[arg(long)]
        optional: bool,
        /// The whole new list of a choice field's choices, comma-separated (refused while
        /// records hold a dropped one).
        #[arg(long, value_delimiter = ',')]
        choices: Option<Vec<String>>,
        /// Refused unless it is the field's type already: the type cannot change.
        #[arg(long = "type", value_parser = parse_type)]
        field_type: Option<FieldType>,
    },
    /// Remove a custom field; records keep their values, free-form again.
    Remove {
        #[arg(long, value_parser = parse_kind)]
        kind: RecordKind,
        key: String,
    },
}

fn parse_kind(s: &str) -> Result<RecordKind, String> {
    s.parse::<RecordKind>().map_err(|e| e.to_string())
}

fn parse_type(s: &str) -> Result<FieldType, String> {
    s.parse::<FieldType>()
}

pub async fn run(config: &Config, command: FieldCommand) -> anyhow::Result<()> {
    let db = crate::commands::serve::connect(config).await?;
    match command {
        FieldCommand::Add { kind, key, label, field_type, choices, required } => {
            let choices = choices.into_iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
            let new = NewFieldDefinition {
                kind,
                label: label.unwrap_or_else(|| key.clone()),
                key,
                field_type,
                required,
                choices,
            };
            let def = crm_store::custom_fields::create(&db, &new).await.context("defining the field")?;
            println!("{}", line(&def));
        }
        FieldCommand::List { kind } => {
            for def in crm_store::custom_fields::list(&db, kind).await? {
                println!("{}", line(&def));
            }
        }
        FieldCommand::Change { kind, key, label, required, optional, choices, field_type } => {
            let change = FieldDefinitionChange {
                label,
                required: (required || optional).then_some(required),
                choices: choices
                    .map(|c| c.into_iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()),
                field_type,
            };
            if change == FieldDefinitionChange::default() {
                anyhow::bail!("nothing to change: give --label, --required, --optional or --choices");
            }
            let def = crm_store::custom_fields::change(&db, kind, &key, &change).await.context("changing the field")?;
            println!("{}", line(&def));
        }
        FieldCommand::Remove { kind, key } => {
            let def = crm_store::custom_fields::remove(&db, kind, &key).await?;
            eprintln!("removed {} {}; records keep their values", def.kind, def.key);
        }
    }
    Ok(())
}

/// `contact  tier  Tier  choice (gold, silver)  required`
fn line(def: &crm_concepts::custom_fields::FieldDefinition) -> String {
    let mut out = format!("{}\t{}\t{}\t{}", def.kind, def.key, def.label, def.field_type);
    if !def.choices.is_empty() {
        out.push_str(&format!(" ({})", def.choices.join(", ")));
    }
    if def.required {
        out.push_str("\trequired");
    }
    out
}
