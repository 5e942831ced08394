//! Puts memory.x where the cortex-m-rt linker script (link.x) finds it, and, for the `client-only` build, turns the
//! DC transcript recorded by the full build (`DC> H|M <hex>` lines of the handshake demo, `DC> R <round> <hex>` lines
//! of the connection demo) into Rust constants.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DC_TRANSCRIPT");

    if env::var_os("CARGO_FEATURE_CLIENT_ONLY").is_none() {
        return;
    }
    let path = env::var_os("DC_TRANSCRIPT").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("manifest dir")).join("target/dc_transcript.txt")
    });
    println!("cargo:rerun-if-changed={}", path.display());
    let text = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "client-only needs the DC transcript {} ({e}): run the full build first and keep its `DC> ` lines \
             (run.sh does this)",
            path.display()
        )
    });
    let mut handshake = 0usize;
    let mut key_id = None;
    let mut messages = Vec::new();
    let mut connection = Vec::new();
    let bytes = |hex: &str| {
        let b: Vec<String> = (0..hex.len() / 2)
            .map(|i| format!("0x{}", &hex[2 * i..2 * i + 2]))
            .collect();
        format!("&[{}]", b.join(","))
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("DC> R ") {
            let (round, hex) = rest.split_once(' ').expect("DC> R line: round and hex");
            let round: u32 = round.parse().expect("DC> R line: round number");
            connection.push(format!("({round}, {})", bytes(hex.trim())));
        } else if let Some(rest) = line.strip_prefix("DC> ") {
            let (kind, hex) = rest.split_once(' ').expect("DC> line: kind and hex");
            if kind == "H" {
                handshake += 1;
            }
            messages.push(bytes(hex));
        } else if let Some(id) = line.strip_prefix("DC KEY_ID ") {
            key_id = Some(id.trim().to_string());
        }
    }
    let key_id = key_id.expect("transcript has no `DC KEY_ID` line");
    assert!(handshake > 0 && messages.len() > handshake, "transcript incomplete");
    let code = format!(
        "/// DC→client payloads of the recorded run, in order.\nconst TRANSCRIPT: &[&[u8]] = &[{}];\n\
         /// How many of them belong to the handshake.\nconst HANDSHAKE_MESSAGES: usize = {handshake};\n\
         /// The auth_key_id the recorded DC derived.\nconst KEY_ID: u64 = 0x{key_id};\n",
        messages.join(",\n")
    );
    fs::write(out.join("transcript.rs"), code).expect("write transcript.rs");
    assert!(!connection.is_empty(), "transcript has no connection (`DC> R`) lines");
    let code = format!(
        "/// What the DC delivered to the client in each round of the connection demo (rounds without a delivery are \
         left out).\nconst CONNECTION: &[(u32, &[u8])] = &[{}];\n",
        connection.join(",\n")
    );
    fs::write(out.join("connection_transcript.rs"), code).expect("write connection_transcript.rs");
}
