//! What a search index's size is made of, field by field: `cargo run --release --example
//! index_space -- DATA_DIR/catalog-index`. For weighing what a field costs before adding
//! one (issue 10 measured its key fields with it).

use kitsuki_catalog::index::SearchIndex;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: index_space INDEX_DIR (e.g. data/catalog-index)");
    let index = SearchIndex::open_read_only(std::path::Path::new(&dir)).expect("open the index");
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "{} documents\n| field | terms | postings | positions | column | norms | all |\n|---|---|---|---|---|---|---|",
        index.num_docs()
    );
    let mut total = 0;
    for f in index.space_by_field().expect("space usage") {
        let all: u64 = f.bytes.iter().sum();
        total += all;
        let [t, p, pos, col, norms] = f.bytes.map(mb);
        println!(
            "| {} | {t:.1} | {p:.1} | {pos:.1} | {col:.1} | {norms:.1} | {:.1} MB |",
            f.field,
            mb(all)
        );
    }
    println!("| all fields | | | | | | {:.1} MB |", mb(total));
}
