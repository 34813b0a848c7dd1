//! Rebuilds the issuer when a migration changes: `sqlx::migrate!` embeds the SQL files at
//! compile time, and Cargo does not otherwise notice edits outside `src/`.

fn main() {
    println!("cargo:rerun-if-changed=../migrations/postgres");
    println!("cargo:rerun-if-changed=../migrations/sqlite");
}
