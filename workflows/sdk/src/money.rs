//! Money as people read it, from the exact minor-unit integers the records carry.

/// `format_money(1_234_550, "USD")` → `"$12,345.50"`; currencies without a symbol here
/// keep their code: `"12,345.50 SEK"`.
pub fn format_money(amount_minor: i64, currency: &str) -> String {
    let negative = amount_minor < 0;
    let abs = amount_minor.unsigned_abs();
    let (major, minor) = (abs / 100, abs % 100);
    let digits = major.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if negative { "-" } else { "" };
    let symbol = match currency {
        "USD" => Some("$"),
        "EUR" => Some("€"),
        "GBP" => Some("£"),
        _ => None,
    };
    match symbol {
        Some(s) => format!("{sign}{s}{grouped}.{minor:02}"),
        None => format!("{sign}{grouped}.{minor:02} {currency}"),
    }
}

#[cfg(test)]
mod tests {
    use super::format_money;

    #[test]
    fn groups_thousands_and_keeps_cents() {
        assert_eq!(format_money(1_234_550, "USD"), "$12,345.50");
        assert_eq!(format_money(5, "EUR"), "€0.05");
        assert_eq!(format_money(100_000_000, "SEK"), "1,000,000.00 SEK");
        assert_eq!(format_money(-250, "GBP"), "-£2.50");
    }
}
