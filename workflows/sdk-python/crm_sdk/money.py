"""Money as people read it, from the exact minor-unit integers the records carry."""

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def format_money(amount_minor: int, currency: str) -> str:
    """`format_money(1_234_550, "USD")` → `"$12,345.50"`; other currencies keep their code:
    `"12,345.50 SEK"`."""
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 100)
    grouped = f"{major:,}"
    symbol = _SYMBOLS.get(currency)
    if symbol is not None:
        return f"{sign}{symbol}{grouped}.{minor:02d}"
    return f"{sign}{grouped}.{minor:02d} {currency}"
