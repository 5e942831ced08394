//! `cargo run -p tl-gen`: regenerates every file in `tl_gen::OUTPUTS` from the schemas under `tl-gen/schema/`.
//! Run from anywhere; paths are relative to the repository root (this crate's parent directory).

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match tl_gen::generate_all(&root) {
        Ok(files) => {
            for (path, text) in files {
                if let Err(e) = std::fs::write(root.join(&path), text) {
                    eprintln!("{path}: {e}");
                    std::process::exit(1);
                }
                println!("wrote {path}");
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
