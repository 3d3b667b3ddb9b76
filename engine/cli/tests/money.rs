//! Money as ISO 4217 has it: currency codes are checked against the standard, each
//! currency keeps its own minor unit (JPY none, KWD three), amounts are read the way people
//! write them in their language, and a deal that names no currency gets the configured one.

use crm_testing::stack::Options;
use crm_testing::{TestStack, send};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn currencies_follow_iso_4217_and_the_configured_default() {
    let options = Options { env: vec![("CRM_DEFAULT_CURRENCY".into(), "eur".into())], ..Options::default() };
    let s = TestStack::start_with("money_iso", options).await;

    let (st, deal) = s.post("/api/deals", json!({"title": "No currency named", "amount_minor": 100})).await;
    assert_eq!((st, deal["currency"].as_str()), (StatusCode::CREATED, Some("EUR")), "{deal}");
    let (st, err) = s.post("/api/deals", json!({"title": "Made up", "currency": "XYZ"})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["fields"][0]["field"], "currency", "{err}");

    // Amounts in a CSV file, as typed: each currency's minor unit, grouping and decimal
    // marks of either convention, symbols; the default for a row that names none.
    let csv = "title,amount,currency\n\
               Euro,\"1 500,50\",EUR\n\
               Dollar,\"1,500.50 USD\",\n\
               Yen,¥1500,\n\
               Dinar,1.250,KWD\n\
               Plain,99,\n\
               Too fine,1500.5,JPY\n";
    let (st, report) =
        send(s.request(Method::POST, "/api/import/deals").header("content-type", "text/csv").body(csv.to_string()))
            .await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(report["created"], 5, "{report}");
    assert_eq!(report["rejected"][0]["line"], 7, "{report}");
    assert!(report["rejected"][0]["reason"].as_str().unwrap_or("").contains("JPY has no smaller unit"), "{report}");

    let (_, deals) = s.get("/api/deals?limit=50").await;
    let amount = |title: &str| {
        let d = deals["items"].as_array().unwrap().iter().find(|d| d["title"] == title).cloned().unwrap_or_default();
        (d["amount_minor"].as_i64().unwrap_or(-1), d["currency"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(amount("Euro"), (150_050, "EUR".into()));
    assert_eq!(amount("Dollar"), (150_050, "USD".into()));
    assert_eq!(amount("Yen"), (1_500, "JPY".into()));
    assert_eq!(amount("Dinar"), (1_250, "KWD".into()));
    assert_eq!(amount("Plain"), (9_900, "EUR".into()));

    // Exported in each currency's own unit.
    let text = s.request(Method::GET, "/api/deals/export.csv").send().await.expect("export").text().await.expect("csv");
    assert!(text.contains(",1500,JPY,") && text.contains(",1.250,KWD,") && text.contains(",1500.50,EUR,"), "{text}");
}
