//! Readings generated with the real IPADIC of Debian's `mecab-ipadic` (installed by the
//! test command, `scripts/ensure-japanese-data`): built from its source, cached, and read
//! back from the cache.

use std::path::Path;

use kitsuki_catalog::readings::{IPADIC_DIR, ReadingGenerator, ReadingsError};

#[test]
fn ipadic_spells_titles_and_names_in_kana_and_the_cache_gives_the_same() {
    assert!(
        Path::new(IPADIC_DIR).join("matrix.def").exists(),
        "{IPADIC_DIR} is missing: `bash scripts/ensure-japanese-data` installs mecab-ipadic \
         (the test command does)"
    );
    let dir = std::env::temp_dir().join(format!("kitsuki-readings-{}", std::process::id()));
    let cache = dir.join("ipadic.vibrato");
    let built = ReadingGenerator::load(Path::new(IPADIC_DIR), Some(&cache)).unwrap();
    assert!(cache.exists(), "the compiled dictionary was not cached");
    let cached = ReadingGenerator::load(Path::new(IPADIC_DIR), Some(&cache)).unwrap();
    for (text, reading) in [
        ("夏目漱石", "なつめそうせき"),
        ("吾輩は猫である", "わがはいはねこである"),
        ("錦絵", "にしきえ"),
        ("アンの愛情", "あんのあいじょう"),
        ("江戸時代の暮らし 上巻", "えどじだいのくらし じょうかん"),
    ] {
        assert_eq!(built.reading(text).as_deref(), Some(reading), "{text}");
        assert_eq!(
            cached.reading(text).as_deref(),
            Some(reading),
            "{text} (cached)"
        );
    }
    // No kanji, nothing to generate: kana and Latin are their own reading.
    assert_eq!(built.reading("Anne of Green Gables"), None);
    assert_eq!(built.reading("こころ"), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_dictionary_is_said_so() {
    let err = ReadingGenerator::load(Path::new("/nonexistent/ipadic"), None).unwrap_err();
    assert!(matches!(err, ReadingsError::Missing(_)), "{err}");
    assert!(err.to_string().contains("mecab-ipadic"));
}
