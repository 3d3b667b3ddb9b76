//! Splitting a chat message into a command and its arguments.

/// A `/command args` message. `name` is lower-case without the slash or `@botname`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandText<'a> {
    pub name: String,
    pub args: &'a str,
}

/// What a text message is, from the bot's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    Command(CommandText<'a>),
    /// a command addressed to another bot in a group: not ours to answer
    OtherBot,
    /// `/` followed by something that cannot be a command name
    Malformed,
    /// plain text (a dialogue answer, or nothing)
    Text(&'a str),
}

/// Telegram command names: 1–32 of `a-z`, `0-9`, `_`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub fn parse<'a>(text: &'a str, bot_username: &str) -> Parsed<'a> {
    let trimmed = text.trim_start();
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Parsed::Text(text);
    };
    let (head, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let (name, addressee) = match head.split_once('@') {
        Some((n, a)) => (n, Some(a)),
        None => (head, None),
    };
    if let Some(addressee) = addressee
        && !addressee.eq_ignore_ascii_case(bot_username)
    {
        return Parsed::OtherBot;
    }
    let name = name.to_ascii_lowercase();
    if !is_valid_name(&name) {
        return Parsed::Malformed;
    }
    Parsed::Command(CommandText { name, args })
}

/// A quote opened in a command's arguments and never closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnclosedQuote;

/// Splits arguments on whitespace, keeping `"quoted text"` together. Unbalanced quotes
/// are an error so `/run x "oops` is refused rather than guessed at.
pub fn split_args(args: &str) -> Result<Vec<String>, UnclosedQuote> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut has_token = false;
    for c in args.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                has_token = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if has_token {
                    out.push(std::mem::take(&mut current));
                    has_token = false;
                }
            }
            c => {
                current.push(c);
                has_token = true;
            }
        }
    }
    if in_quotes {
        return Err(UnclosedQuote);
    }
    if has_token {
        out.push(current);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(name: &str, args: &'static str) -> Parsed<'static> {
        Parsed::Command(CommandText { name: name.into(), args })
    }

    #[test]
    fn commands_with_and_without_bot_name() {
        assert_eq!(parse("/find Ann Lee", "crmbot"), cmd("find", "Ann Lee"));
        assert_eq!(parse("/Find@CrmBot  x ", "crmbot"), cmd("find", "x"));
        assert_eq!(parse("/help@otherbot", "crmbot"), Parsed::OtherBot);
        assert_eq!(parse("/ find", "crmbot"), Parsed::Malformed);
        assert_eq!(parse("/найти", "crmbot"), Parsed::Malformed);
        assert_eq!(parse("hello /find", "crmbot"), Parsed::Text("hello /find"));
    }

    #[test]
    fn arguments_keep_quotes_together() {
        assert_eq!(split_args(r#"42 "big deal" x"#).unwrap(), vec!["42", "big deal", "x"]);
        assert_eq!(split_args(r#"a "" b"#).unwrap(), vec!["a", "", "b"]);
        assert!(split_args(r#"a "b"#).is_err());
        assert_eq!(split_args("  ").unwrap(), Vec::<String>::new());
    }
}
