// `sqlx::migrate!` embeds the migrations at compile time but does not tell cargo to watch
// the folder: without this, a new migration file is missing from an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
