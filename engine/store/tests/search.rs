//! Search finds records by misspelt, partial, lower-cased names, by email prefix and by
//! phone digits, and never returns deleted records.

use crm_concepts::records::{NewCompany, NewContact, NewDeal, RecordKind};
use crm_store::{Actor, Db, companies, contacts, deals, search};
use crm_testing::ScratchDb;

async fn titles(db: &Db, q: &str) -> Vec<String> {
    search::search(db, q, &[], 10).await.unwrap().into_iter().map(|h| h.title).collect()
}

#[tokio::test]
async fn forgiving_search() {
    let scratch = ScratchDb::new("search", 4).await;
    let db = scratch.db.clone();
    let a = Actor::system();
    let people = [
        ("John Smith", "john.smith@acme.example", "+1 (555) 010-2030"),
        ("Jon Smithers", "jon@example.org", "+44 20 7946 0018"),
        ("Mary Smith", "mary@acme.example", "555 777 1234"),
        ("Kimberly Nichols", "kim@globex.example", "+1 555 222 3333"),
        ("Zoë Ñandú", "zoe@example.es", "600 100 200"),
    ];
    let mut ids = Vec::new();
    for (n, e, p) in people {
        let c = contacts::create(
            &db,
            &a,
            NewContact { name: n.into(), email: Some(e.into()), phone: Some(p.into()), ..Default::default() },
        )
        .await
        .unwrap();
        ids.push(c.id);
    }
    companies::create(&db, &a, NewCompany { name: "Globex Analytics GmbH".into(), ..Default::default() })
        .await
        .unwrap();
    deals::create(&db, &a, NewDeal { title: "Globex renewal".into(), ..Default::default() }).await.unwrap();

    assert_eq!(titles(&db, "John Smith").await[0], "John Smith");
    assert_eq!(titles(&db, "jonh smtih").await[0], "John Smith", "two typos");
    assert_eq!(titles(&db, "kimbrely nichols").await[0], "Kimberly Nichols");
    assert_eq!(titles(&db, "Nichol").await[0], "Kimberly Nichols", "a word being typed");
    assert_eq!(titles(&db, "zoe nandu").await[0], "Zoë Ñandú", "a missing accent is one typo");
    assert_eq!(titles(&db, "Zoë").await[0], "Zoë Ñandú");
    let smiths = titles(&db, "smith").await;
    assert!(smiths.contains(&"John Smith".to_string()) && smiths.contains(&"Mary Smith".to_string()), "{smiths:?}");
    assert!(titles(&db, "quetzalcoatl").await.is_empty());
    assert!(titles(&db, "!!!").await.is_empty());

    let globex = search::search(&db, "globx", &[], 10).await.unwrap();
    let kinds: Vec<RecordKind> = globex.iter().map(|h| h.kind).collect();
    assert!(kinds.contains(&RecordKind::Company) && kinds.contains(&RecordKind::Deal), "{globex:?}");
    let only = search::search(&db, "globx", &[RecordKind::Deal], 10).await.unwrap();
    assert!(only.iter().all(|h| h.kind == RecordKind::Deal) && !only.is_empty());

    assert_eq!(titles(&db, "mary@acme").await, ["Mary Smith"], "email prefix");
    assert_eq!(titles(&db, "JOHN.SMITH@").await, ["John Smith"], "email prefix ignores case");
    assert_eq!(titles(&db, "010 2030").await, ["John Smith"], "phone digits, any formatting");
    assert_eq!(titles(&db, "5550102030").await, ["John Smith"]);

    contacts::delete(&db, &a, ids[0]).await.unwrap();
    assert!(!titles(&db, "john smith").await.contains(&"John Smith".to_string()), "deleted records are gone");

    db.pool.close().await;
    scratch.close().await;
}
