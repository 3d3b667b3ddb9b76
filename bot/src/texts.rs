//! The bot's texts in each language it speaks, as Project Fluent messages in
//! `bot/locales/<code>.ftl`, built into the binary. Code names a text by its key with
//! [`t!`](crate::t); the tests below fail when a key the code uses is missing in a language,
//! or when the languages' keys or a message's variables differ.
//!
//! A person is spoken to in the language of their settings (`/settings language ru`), else
//! their Telegram app's, else English.

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

pub use crm_concepts::language::Language;

/// Each language's messages, as shipped.
pub const SOURCES: [(Language, &str); 2] =
    [(Language::En, include_str!("../locales/en.ftl")), (Language::Ru, include_str!("../locales/ru.ftl"))];

static BUNDLES: LazyLock<Vec<(Language, FluentBundle<FluentResource>)>> =
    LazyLock::new(|| SOURCES.iter().map(|(lang, source)| (*lang, bundle(*lang, source))).collect());

fn bundle(lang: Language, source: &str) -> FluentBundle<FluentResource> {
    // A syntax error drops only the broken entries; the tests refuse any, so none ship.
    let resource = FluentResource::try_new(source.to_string()).unwrap_or_else(|(partial, errors)| {
        tracing::error!(language = %lang, ?errors, "bot texts have syntax errors");
        partial
    });
    let id = lang.code().parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // Telegram shows plain text: the bidi isolation marks Fluent puts around arguments would
    // be invisible characters in names a user copies.
    bundle.set_use_isolating(false);
    if let Err(errors) = bundle.add_resource(resource) {
        tracing::error!(language = %lang, ?errors, "bot texts define a key twice");
    }
    bundle
}

/// The text `key` in `lang` with `args` filled in. A key missing in `lang` falls back to
/// English, and one missing there too shows as the key: a user still reads something.
pub fn text(lang: Language, key: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    let Some((_, bundle)) = BUNDLES.iter().find(|(l, _)| *l == lang) else {
        return key.to_string();
    };
    let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
        tracing::error!(key, language = %lang, "a bot text is missing");
        return if lang == Language::En { key.to_string() } else { text(Language::En, key, args) };
    };
    let mut fluent_args = FluentArgs::with_capacity(args.len());
    for (name, value) in args {
        fluent_args.set(*name, value.clone());
    }
    let mut errors = Vec::new();
    let out = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
    if !errors.is_empty() {
        tracing::error!(key, language = %lang, ?errors, "a bot text did not format");
    }
    out.into_owned()
}

/// A built-in command's description for `/help` and the command menu (`cmd-NAME`).
pub fn command_description(lang: Language, name: &str) -> String {
    text(lang, &format!("cmd-{name}"), &[])
}

/// The language to speak to a person in: their setting, else their Telegram app's
/// `language_code` when the bot speaks it, else English.
pub fn language_for(setting: Option<Language>, telegram_language: Option<&str>) -> Language {
    setting.or_else(|| telegram_language.and_then(Language::from_tag)).unwrap_or_default()
}

/// `t!(lang, "key")` or `t!(lang, "key", name = value, …)`: the text `key` in `lang`.
/// Keys are string literals, so the tests can find every one the code uses.
#[macro_export]
macro_rules! t {
    ($lang:expr, $key:literal) => {
        $crate::texts::text($lang, $key, &[])
    };
    ($lang:expr, $key:literal, $($name:ident = $value:expr),+ $(,)?) => {
        $crate::texts::text(
            $lang,
            $key,
            &[$((stringify!($name), ::fluent_bundle::FluentValue::from($value))),+],
        )
    };
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use fluent_syntax::ast;

    use super::*;

    /// Each message's key with the variables it uses (in its value and its variants).
    fn messages(lang: Language, source: &str) -> BTreeMap<String, BTreeSet<String>> {
        let resource = fluent_syntax::parser::parse(source)
            .unwrap_or_else(|(_, errors)| panic!("{lang}.ftl does not parse: {errors:?}"));
        let mut out = BTreeMap::new();
        for entry in resource.body {
            if let ast::Entry::Message(m) = entry {
                let mut vars = BTreeSet::new();
                if let Some(p) = &m.value {
                    pattern_vars(p, &mut vars);
                }
                assert!(out.insert(m.id.name.to_string(), vars).is_none(), "{lang}.ftl has {} twice", m.id.name);
            }
        }
        out
    }

    fn pattern_vars(p: &ast::Pattern<&str>, vars: &mut BTreeSet<String>) {
        for element in &p.elements {
            if let ast::PatternElement::Placeable { expression } = element {
                expression_vars(expression, vars);
            }
        }
    }

    fn expression_vars(e: &ast::Expression<&str>, vars: &mut BTreeSet<String>) {
        match e {
            ast::Expression::Select { selector, variants } => {
                inline_vars(selector, vars);
                for v in variants {
                    pattern_vars(&v.value, vars);
                }
            }
            ast::Expression::Inline(i) => inline_vars(i, vars),
        }
    }

    fn inline_vars(i: &ast::InlineExpression<&str>, vars: &mut BTreeSet<String>) {
        match i {
            ast::InlineExpression::VariableReference { id } => {
                vars.insert(id.name.to_string());
            }
            ast::InlineExpression::Placeable { expression } => expression_vars(expression, vars),
            _ => {}
        }
    }

    /// Every key a `t!(…, "key" …)` in the crate's sources names.
    fn keys_in_code() -> BTreeMap<String, String> {
        fn walk(dir: &Path, found: &mut BTreeMap<String, String>) {
            for entry in std::fs::read_dir(dir).expect("read src") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let code = std::fs::read_to_string(&path).expect("read source");
                    for (at, _) in code.match_indices("t!(") {
                        // `assert!(` and `print!(` end the same way; `"t!("` is this scan's own needle
                        if code[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"') {
                            continue;
                        }
                        let line_start = code[..at].rfind('\n').map_or(0, |i| i + 1);
                        if code[line_start..at].trim_start().starts_with("//") {
                            continue;
                        }
                        let rest = &code[at + 3..];
                        let Some(open) = rest.find('"') else { continue };
                        if rest[..open].contains(')') || rest[..open].contains('$') {
                            continue;
                        }
                        let key: String = rest[open + 1..].chars().take_while(|c| *c != '"').collect();
                        found.insert(key, path.display().to_string());
                    }
                }
            }
        }
        let mut found = BTreeMap::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
        found
    }

    #[test]
    fn every_language_has_the_same_keys_with_the_same_variables() {
        let english = messages(Language::En, SOURCES[0].1);
        for (lang, source) in &SOURCES[1..] {
            let other = messages(*lang, source);
            let missing: Vec<_> = english.keys().filter(|k| !other.contains_key(*k)).collect();
            let extra: Vec<_> = other.keys().filter(|k| !english.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{lang}.ftl lacks {missing:?}");
            assert!(extra.is_empty(), "{lang}.ftl has keys en.ftl lacks: {extra:?}");
            for (key, vars) in &english {
                assert_eq!(&other[key], vars, "{key} uses other variables in {lang}.ftl than in en.ftl");
            }
        }
    }

    #[test]
    fn every_key_the_code_uses_is_in_every_language() {
        let used = keys_in_code();
        assert!(used.len() > 20, "the scan found too few keys: {used:?}");
        for (lang, source) in &SOURCES {
            let defined = messages(*lang, source);
            for (key, file) in &used {
                assert!(defined.contains_key(key), "{key} (used in {file}) is missing in {lang}.ftl");
            }
        }
    }

    #[test]
    fn every_builtin_command_has_a_description_in_every_language() {
        for (lang, source) in &SOURCES {
            let defined = messages(*lang, source);
            for (name, _) in crate::handlers::BUILTIN {
                assert!(defined.contains_key(&format!("cmd-{name}")), "cmd-{name} is missing in {lang}.ftl");
            }
        }
    }

    #[test]
    fn texts_format_with_their_arguments_and_plurals() {
        assert_eq!(t!(Language::Ru, "settings-saved"), "✅ Сохранено.");
        assert_eq!(t!(Language::En, "settings-remind-before", minutes = 1), "1 min before the due time");
        assert_eq!(t!(Language::Ru, "settings-remind-before", minutes = 3), "за 3 минуты до срока");
        assert_eq!(t!(Language::Ru, "settings-remind-before", minutes = 15), "за 15 минут до срока");
        let hello = t!(Language::En, "start-hello", name = "Ann", role = "manager", help = "Commands:");
        assert_eq!(hello, "Hello, Ann! You are signed in as a manager.\n\nCommands:");
        assert_eq!(t!(Language::En, "list-empty", kind = "company"), "There are no companies yet.");
        assert_eq!(t!(Language::Ru, "pipeline-title", name = "Продажи", count = 2), "📊 Продажи — 2 открытые сделки");
    }

    #[test]
    fn the_language_is_the_setting_else_telegrams_else_english() {
        assert_eq!(language_for(Some(Language::En), Some("ru")), Language::En);
        assert_eq!(language_for(None, Some("ru-RU")), Language::Ru);
        assert_eq!(language_for(None, Some("de")), Language::En);
        assert_eq!(language_for(None, None), Language::En);
    }
}
