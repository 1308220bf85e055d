//! Rebuild when a migration is added: `refinery::embed_migrations!("sql")` reads the
//! folder at compile time, and cargo does not know to look at it otherwise.
fn main() {
    println!("cargo:rerun-if-changed=sql");
}
