//! Realistic sample records, generated deterministically from a seed and bulk-loaded with
//! COPY: `crm demo-data` for a demo, `crm bench search` for a million contacts.
//!
//! COPY bypasses the per-record transactions of the record modules on purpose: sample data
//! is not a change anyone made, so it writes no activity and no outbox events (which would
//! otherwise start workflows for a million fake contacts).

use chrono::{Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgConnection;

use crate::Db;
use crate::error::StoreError;

const FIRST: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Nancy",
    "Daniel",
    "Lisa",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Dorothy",
    "Kevin",
    "Carol",
    "Brian",
    "Amanda",
    "George",
    "Melissa",
    "Edward",
    "Deborah",
    "Ronald",
    "Stephanie",
    "Timothy",
    "Rebecca",
    "Jason",
    "Sharon",
    "Jeffrey",
    "Laura",
    "Ryan",
    "Cynthia",
    "Jacob",
    "Kathleen",
    "Gary",
    "Amy",
    "Nicholas",
    "Shirley",
    "Eric",
    "Angela",
    "Jonathan",
    "Helen",
    "Stephen",
    "Anna",
    "Larry",
    "Brenda",
    "Justin",
    "Pamela",
    "Scott",
    "Nicole",
    "Brandon",
    "Emma",
    "Benjamin",
    "Samantha",
    "Samuel",
    "Katherine",
    "Gregory",
    "Christine",
    "Frank",
    "Debra",
    "Alexander",
    "Rachel",
    "Raymond",
    "Catherine",
    "Patrick",
    "Carolyn",
    "Jack",
    "Janet",
    "Dennis",
    "Ruth",
    "Jerry",
    "Maria",
    "Tyler",
    "Heather",
    "Aaron",
    "Diane",
    "Jose",
    "Virginia",
    "Adam",
    "Julie",
    "Henry",
    "Joyce",
    "Nathan",
    "Victoria",
    "Douglas",
    "Olivia",
    "Zachary",
    "Kelly",
    "Peter",
    "Christina",
    "Kyle",
    "Lauren",
    "Walter",
    "Joan",
    "Ethan",
    "Evelyn",
    "Jeremy",
    "Judith",
    "Harold",
    "Megan",
    "Keith",
    "Cheryl",
    "Christian",
    "Andrea",
    "Roger",
    "Hannah",
    "Noah",
    "Martha",
    "Gerald",
    "Jacqueline",
    "Carl",
    "Frances",
    "Terry",
    "Gloria",
    "Sean",
    "Ann",
    "Austin",
    "Teresa",
    "Arthur",
    "Kathryn",
    "Lawrence",
    "Sara",
    "Jesse",
    "Janice",
    "Dylan",
    "Jean",
    "Bryan",
    "Alice",
    "Joe",
    "Madison",
    "Jordan",
    "Doris",
    "Billy",
    "Abigail",
    "Bruce",
    "Julia",
    "Albert",
    "Judy",
    "Willie",
    "Grace",
    "Gabriel",
    "Denise",
    "Logan",
    "Amber",
    "Alan",
    "Marilyn",
    "Juan",
    "Beverly",
    "Wayne",
    "Danielle",
    "Roy",
    "Theresa",
    "Ralph",
    "Sophia",
    "Randy",
    "Marie",
    "Eugene",
    "Diana",
    "Vincent",
    "Brittany",
    "Russell",
    "Natalie",
    "Elijah",
    "Isabella",
    "Louis",
    "Charlotte",
    "Bobby",
    "Rose",
    "Philip",
    "Alexis",
    "Johnny",
    "Kayla",
    "Aleksandr",
    "Olga",
    "Dmitri",
    "Svetlana",
    "Yuki",
    "Hiroshi",
    "Priya",
    "Arjun",
    "Chen",
    "Mei",
    "Fatima",
    "Omar",
    "Lucas",
    "Sofia",
    "Mateo",
    "Camila",
    "Liam",
    "Chloe",
    "Ingrid",
    "Lars",
    "Amara",
    "Kwame",
];

const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Jimenez",
    "Powell",
    "Jenkins",
    "Perry",
    "Russell",
    "Sullivan",
    "Bell",
    "Coleman",
    "Butler",
    "Henderson",
    "Barnes",
    "Gonzales",
    "Fisher",
    "Vasquez",
    "Simmons",
    "Romero",
    "Jordan",
    "Patterson",
    "Alexander",
    "Hamilton",
    "Graham",
    "Reynolds",
    "Griffin",
    "Wallace",
    "Moreno",
    "West",
    "Cole",
    "Hayes",
    "Bryant",
    "Herrera",
    "Gibson",
    "Ellis",
    "Tran",
    "Medina",
    "Aguilar",
    "Stevens",
    "Murray",
    "Ford",
    "Castro",
    "Marshall",
    "Owens",
    "Harrison",
    "Fernandez",
    "McDonald",
    "Woods",
    "Washington",
    "Kennedy",
    "Wells",
    "Vargas",
    "Henry",
    "Chen",
    "Freeman",
    "Webb",
    "Tucker",
    "Guzman",
    "Burns",
    "Crawford",
    "Olson",
    "Simpson",
    "Porter",
    "Hunter",
    "Gordon",
    "Mendez",
    "Silva",
    "Shaw",
    "Snyder",
    "Mason",
    "Dixon",
    "Munoz",
    "Hunt",
    "Hicks",
    "Holmes",
    "Palmer",
    "Wagner",
    "Black",
    "Robertson",
    "Boyd",
    "Rose",
    "Stone",
    "Salazar",
    "Fox",
    "Warren",
    "Mills",
    "Meyer",
    "Rice",
    "Schmidt",
    "Garza",
    "Daniels",
    "Ferguson",
    "Nichols",
    "Stephens",
    "Soto",
    "Weaver",
    "Ryan",
    "Gardner",
    "Payne",
    "Grant",
    "Dunn",
    "Kelley",
    "Spencer",
    "Hawkins",
    "Arnold",
    "Pierce",
    "Hansen",
    "Peters",
    "Santos",
    "Hart",
    "Bradley",
    "Knight",
    "Elliott",
    "Cunningham",
    "Duncan",
    "Armstrong",
    "Hudson",
    "Carroll",
    "Lane",
    "Riley",
    "Andrews",
    "Ivanov",
    "Petrova",
    "Sokolov",
    "Tanaka",
    "Suzuki",
    "Sharma",
    "Gupta",
    "Wang",
    "Zhang",
    "Haddad",
    "Okafor",
    "Lindqvist",
    "Novak",
    "Kowalski",
    "Dubois",
    "Rossi",
    "Moreau",
    "Schneider",
    "Fischer",
    "O'Brien",
    "Mueller",
];

const COMPANY_A: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Pied Piper",
    "Dunder",
    "Massive",
    "Aperture",
    "Black Mesa",
    "Blue Sun",
    "Gringotts",
    "Monarch",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Litware",
    "Tailspin",
    "Woodgrove",
    "Adventure",
    "Alpine",
    "Coho",
    "Lucerne",
    "Margie",
    "Proseware",
    "Trey",
    "Wide World",
    "Bluebird",
    "Redwood",
    "Silverline",
    "Ironbridge",
    "Brightwater",
    "Evergreen",
    "Summit",
    "Harbor",
    "Pinnacle",
    "Keystone",
    "Cobalt",
    "Granite",
    "Nimbus",
    "Quantum",
    "Vertex",
    "Orchid",
    "Falcon",
    "Juniper",
    "Maple",
    "Atlas",
    "Beacon",
    "Cedar",
    "Delta",
    "Echo",
    "Fjord",
    "Helix",
];
const COMPANY_B: &[&str] = &[
    "Logistics",
    "Analytics",
    "Foods",
    "Robotics",
    "Health",
    "Energy",
    "Media",
    "Labs",
    "Systems",
    "Capital",
    "Consulting",
    "Industries",
    "Software",
    "Retail",
    "Motors",
    "Pharma",
    "Telecom",
    "Security",
    "Studios",
    "Travel",
];
const COMPANY_C: &[&str] = &["Ltd", "Inc", "LLC", "GmbH", "Group", "Co", "Partners", "AG", "SA", "Holdings"];
const PRODUCTS: &[&str] = &[
    "annual licence",
    "pilot",
    "renewal",
    "expansion",
    "support contract",
    "onboarding",
    "enterprise plan",
    "integration project",
    "training package",
    "hardware refresh",
];
const TASKS: &[&str] = &[
    "Call back",
    "Send proposal to",
    "Follow up with",
    "Book a demo for",
    "Prepare contract for",
    "Check in with",
    "Email pricing to",
    "Schedule kickoff with",
];
const TAGS: &[&str] = &["vip", "lead", "partner", "churn-risk", "newsletter", "event-2026", "referral"];

pub struct Counts {
    pub companies: u64,
    pub contacts: u64,
    pub deals: u64,
    pub tasks: u64,
}

/// Rows per COPY chunk: big enough to amortise round trips, small enough for a smooth
/// progress bar and bounded memory.
const CHUNK: u64 = 20_000;

/// Called with (rows done, rows total) after each chunk.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// A generator of sample people and companies, reproducible from its seed.
pub struct Sample {
    rng: StdRng,
    /// makes emails unique across runs into the same database
    run: u32,
}

impl Sample {
    pub fn new(seed: u64) -> Sample {
        let mut rng = StdRng::seed_from_u64(seed);
        let run = rng.random_range(0..1_000_000);
        Sample { rng, run }
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.rng.random_range(0..list.len())]
    }

    pub fn person_name(&mut self) -> String {
        format!("{} {}", self.pick(FIRST), self.pick(LAST))
    }

    pub fn company_name(&mut self) -> String {
        format!("{} {} {}", self.pick(COMPANY_A), self.pick(COMPANY_B), self.pick(COMPANY_C))
    }

    pub fn phone(&mut self) -> String {
        format!("+1 555 {:03} {:04}", self.rng.random_range(0..1000), self.rng.random_range(0..10_000))
    }

    fn tags(&mut self) -> String {
        match self.rng.random_range(0..10) {
            0..=5 => "{}".into(),
            6..=8 => format!("{{{}}}", self.pick(TAGS)),
            _ => format!("{{{},{}}}", self.pick(TAGS), self.pick(TAGS)),
        }
    }

    /// A search query a user might type for `name`: exact, cut short, or misspelt.
    pub fn query_for(&mut self, name: &str) -> String {
        let chars: Vec<char> = name.chars().collect();
        match self.rng.random_range(0..5) {
            0 => name.to_string(),
            1 => name.split(' ').next_back().unwrap_or(name).to_string(),
            2 if chars.len() > 4 => {
                // swap two neighbouring letters
                let i = self.rng.random_range(1..chars.len() - 2);
                let mut c = chars.clone();
                c.swap(i, i + 1);
                c.into_iter().collect()
            }
            3 if chars.len() > 4 => {
                // drop a letter
                let i = self.rng.random_range(1..chars.len() - 1);
                chars.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, c)| c).collect()
            }
            _ => name.to_lowercase(),
        }
    }
}

/// Loads `companies` companies, `contacts` contacts (spread over the companies and the
/// existing users), and about a fifth as many deals and tasks.
pub async fn load(
    db: &Db,
    sample: &mut Sample,
    companies: u64,
    contacts: u64,
    with_deals: bool,
    progress: Progress<'_>,
) -> Result<Counts, StoreError> {
    let mut conn = db.pool.acquire().await?;
    let (deals, tasks) = if with_deals { (contacts / 5, contacts / 5) } else { (0, 0) };
    let total = companies + contacts + deals + tasks;
    let mut done = 0;

    let owners: Vec<i64> = sqlx::query_scalar("SELECT id FROM users WHERE disabled_at IS NULL AND role <> 'viewer'")
        .fetch_all(&mut *conn)
        .await?;
    let owner = |s: &mut Sample| -> String {
        if owners.is_empty() { String::new() } else { owners[s.rng.random_range(0..owners.len())].to_string() }
    };

    let first_company = next_id(&mut conn, "companies").await?;
    copy_rows(
        &mut conn,
        "COPY companies (name, domain, phone, owner_id, tags) FROM STDIN (FORMAT csv)",
        companies,
        |i| {
            let name = sample.company_name();
            let domain = format!("{}{i}.example.com", name.split(' ').next().unwrap_or("co").to_lowercase());
            let phone = sample.phone();
            let own = owner(sample);
            let tags = sample.tags();
            format!("{},{domain},{phone},{own},{}\n", csv(&name), csv(&tags))
        },
        &mut done,
        total,
        progress,
    )
    .await?;
    let company_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM companies WHERE id >= $1 ORDER BY id")
        .bind(first_company)
        .fetch_all(&mut *conn)
        .await?;

    let first_contact = next_id(&mut conn, "contacts").await?;
    let run = sample.run;
    copy_rows(
        &mut conn,
        "COPY contacts (name, email, phone, company_id, owner_id, tags) FROM STDIN (FORMAT csv)",
        contacts,
        |i| {
            let name = sample.person_name();
            let email = format!("{}.{i}.{run}@example.com", name.to_lowercase().replace([' ', '\''], "."));
            let phone = sample.phone();
            let company = if company_ids.is_empty() || sample.rng.random_range(0..10) == 0 {
                String::new()
            } else {
                company_ids[sample.rng.random_range(0..company_ids.len())].to_string()
            };
            let own = owner(sample);
            let tags = sample.tags();
            format!("{},{},{phone},{company},{own},{}\n", csv(&name), csv(&email), csv(&tags))
        },
        &mut done,
        total,
        progress,
    )
    .await?;

    if with_deals && contacts > 0 {
        let stages: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT s.id, s.pipeline_id, s.kind FROM stages s WHERE s.pipeline_id = (SELECT min(id) FROM pipelines) ORDER BY s.position",
        )
        .fetch_all(&mut *conn)
        .await?;
        let contact_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM contacts WHERE id >= $1 ORDER BY id")
            .bind(first_contact)
            .fetch_all(&mut *conn)
            .await?;
        let first_deal = next_id(&mut conn, "deals").await?;
        if !stages.is_empty() {
            let now = Utc::now();
            copy_rows(&mut conn,
                "COPY deals (title, amount_minor, currency, pipeline_id, stage_id, contact_id, owner_id, expected_close, status, closed_at, stage_changed_at) FROM STDIN (FORMAT csv)",
                deals, |_| {
                let contact = contact_ids[sample.rng.random_range(0..contact_ids.len())];
                let (stage, pipeline, kind) = &stages[sample.rng.random_range(0..stages.len())];
                let title = format!("{} {}", sample.company_name(), sample.pick(PRODUCTS));
                let amount = sample.rng.random_range(5..5_000) * 10_000;
                let close = (now + Duration::days(sample.rng.random_range(-30..120))).date_naive();
                let changed = now - Duration::days(sample.rng.random_range(0..60));
                let closed = if kind == "open" { String::new() } else { changed.to_rfc3339() };
                let own = owner(sample);
                format!("{},{amount},USD,{pipeline},{stage},{contact},{own},{close},{kind},{closed},{}\n", csv(&title), changed.to_rfc3339())
            }, &mut done, total, progress).await?;
            let deal_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM deals WHERE id >= $1 ORDER BY id")
                .bind(first_deal)
                .fetch_all(&mut *conn)
                .await?;
            copy_rows(
                &mut conn,
                "COPY tasks (title, due_at, done, done_at, assignee_id, deal_id) FROM STDIN (FORMAT csv)",
                tasks,
                |_| {
                    let deal = deal_ids[sample.rng.random_range(0..deal_ids.len())];
                    let title = format!("{} {}", sample.pick(TASKS), sample.person_name());
                    let due = now + Duration::hours(sample.rng.random_range(-72..24 * 30));
                    let done = sample.rng.random_range(0..4) == 0;
                    let done_at = if done { now.to_rfc3339() } else { String::new() };
                    let own = owner(sample);
                    format!("{},{},{done},{done_at},{own},{deal}\n", csv(&title), due.to_rfc3339())
                },
                &mut done,
                total,
                progress,
            )
            .await?;
        }
    }
    sqlx::query("ANALYZE companies, contacts, deals, tasks").execute(&mut *conn).await?;
    Ok(Counts { companies, contacts, deals, tasks })
}

async fn next_id(conn: &mut PgConnection, table: &str) -> Result<i64, StoreError> {
    let sql = format!("SELECT COALESCE(max(id), 0) + 1 FROM {table}");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(conn).await?)
}

async fn copy_rows(
    conn: &mut PgConnection,
    statement: &str,
    rows: u64,
    mut row: impl FnMut(u64) -> String,
    done: &mut u64,
    total: u64,
    progress: Progress<'_>,
) -> Result<(), StoreError> {
    let mut i = 0;
    while i < rows {
        let n = CHUNK.min(rows - i);
        let mut buf = String::with_capacity(n as usize * 96);
        for k in 0..n {
            buf.push_str(&row(i + k));
        }
        let mut copy = conn.copy_in_raw(statement).await?;
        copy.send(buf.into_bytes()).await?;
        copy.finish().await?;
        i += n;
        *done += n;
        progress(*done, total);
    }
    Ok(())
}

/// A CSV field, quoted so commas, quotes and braces survive.
fn csv(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
