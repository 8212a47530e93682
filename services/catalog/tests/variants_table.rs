//! The kanji variant table that search folds with (`src/domain/variants_table.rs`) is what
//! `scripts/gen-variants.py` derives from Unihan (Debian `unicode-data`) and KANJIDIC2
//! (Debian `kanjidic-xml`), not a list anyone edited: regenerated here from the installed
//! packages and compared. The test command installs both (`scripts/ensure-japanese-data`).

use std::path::Path;
use std::process::Command;

#[test]
fn the_committed_variant_table_is_what_the_generator_derives_from_unihan_and_kanjidic2() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for source in [
        "/usr/share/unicode/Unihan_Variants.txt.bz2",
        "/usr/share/edict/kanjidic2.xml.gz",
    ] {
        assert!(
            Path::new(source).exists(),
            "{source} is missing: `bash scripts/ensure-japanese-data` installs it (the test \
             command does)"
        );
    }
    let out = Command::new("python3")
        .arg(root.join("scripts/gen-variants.py"))
        .output()
        .expect("run python3 scripts/gen-variants.py");
    assert!(
        out.status.success(),
        "gen-variants.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed =
        std::fs::read_to_string(root.join("services/catalog/src/domain/variants_table.rs"))
            .unwrap();
    assert!(
        generated == committed,
        "variants_table.rs differs from what scripts/gen-variants.py prints: regenerate it \
         (python3 scripts/gen-variants.py > services/catalog/src/domain/variants_table.rs)"
    );
    // And it holds the folds the catalogue relies on.
    for pair in [
        "('國', '国')",
        "('澤', '沢')",
        "('說', '説')",
        "('\u{FA11}', '崎')",
        "('髙', '高')",
    ] {
        assert!(generated.contains(pair), "{pair} missing from the table");
    }
}
