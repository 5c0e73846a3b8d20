use std::time::Instant;
fn main() {
    let bundle = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let bytes = std::fs::read(bundle.join("config.json")).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let n = 2000;
        for _ in 0..n {
            let s = asterism_init::config::load_bytes(&bundle, &bytes).unwrap();
            std::hint::black_box(s);
        }
        println!("load_bytes: {:?} per call", t.elapsed() / n);
        let t = Instant::now();
        for _ in 0..n {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            std::hint::black_box(v);
        }
        println!("serde_json Value only: {:?} per call", t.elapsed() / n);
        let text = std::str::from_utf8(&bytes).unwrap();
        let t = Instant::now();
        for _ in 0..n {
            let s = asterism_init::config::from_checked_text(text).unwrap();
            std::hint::black_box(s);
        }
        println!(
            "from_checked_text (init's parse): {:?} per call",
            t.elapsed() / n
        );
    }
}
