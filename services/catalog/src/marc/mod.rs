//! Reading bibliographic records from outside (MARC 21 as ISO 2709 or MARCXML, and NDL
//! JAPAN/MARC already turned into JSON) into one plain shape for the catalog import,
//! `kitsuki import FILE`.
//!
//! Files are read record by record ([`read_stream`]): memory does not grow with the file.
//! A file is never all-or-nothing: every record that can be read is returned, every one
//! that cannot is reported with its position, and the import goes on. What a field means
//! (which title to display, which reading to index) is decided in one place, `import`,
//! for both MARC transports.

mod import;
pub mod iso2709;
pub mod marcxml;
pub mod ndl;
pub mod record;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::Path;

pub use import::to_import_record;
pub use record::{ControlField, DataField, Field, Linkage, MarcRecord, Subfield};

/// What the catalog lends: decides loan rules and where a title is shelved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaterialKind {
    Book,
    Magazine,
    Av,
}

/// One title as the catalog import wants it, whatever the source format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    /// Stable id of the source record: `marc:<001>` or `ndl:<record number>`; a record
    /// without one gets `marc-hash:`/`ndl-hash:` and a hash of its content.
    pub source_id: String,
    /// Display title, in original script when the record has it.
    pub title: String,
    /// Kana reading of the title when the record carries one, else empty.
    pub title_reading: String,
    pub author: String,
    /// The statement of responsibility as recorded (`モンゴメリ 著 ; 掛川恭子 訳`), or empty.
    pub responsibility: String,
    /// The NDC class number (`913.6`), or empty.
    pub ndc: String,
    pub publisher: String,
    pub year: Option<i32>,
    /// `020 $a` (or the NDL ISBN) as recorded; normalised and validated elsewhere.
    pub isbns: Vec<String>,
    pub kind: MaterialKind,
    /// Forms to search by but not to display: romanised title and author, variant and
    /// parallel titles, readings.
    pub aliases: Vec<String>,
}

/// Why a record was not imported (or, in `ParseReport::warnings`, what was repaired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordErrorKind {
    /// The record declares MARC-8 and uses characters beyond ASCII.
    Marc8NotSupported,
    /// Bytes that are not UTF-8 where UTF-8 was promised.
    InvalidUtf8,
    /// Structure broken: leader, directory, field offsets, XML or JSON shape.
    Malformed,
    /// The file ends inside a record.
    Truncated,
    /// Readable, but without a title the catalog cannot list it.
    NoTitle,
    /// The XML or JSON around the records is broken; what follows was not read.
    Syntax,
    /// Warning only: leader/00-04 was wrong and the record terminator was used instead.
    LengthMismatch,
}

/// One problem with one record. `index` counts records from 0 in file order, good and
/// bad alike, so the record can be found in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {index}: {message}")]
pub struct RecordError {
    pub index: usize,
    pub kind: RecordErrorKind,
    pub message: String,
}

impl RecordError {
    pub(crate) fn new(index: usize, kind: RecordErrorKind, message: impl Into<String>) -> Self {
        RecordError {
            index,
            kind,
            message: message.into(),
        }
    }
}

/// The outcome of reading one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseReport {
    pub records: Vec<ImportRecord>,
    /// Records that could not be imported.
    pub errors: Vec<RecordError>,
    /// Records deliberately left out, not errors: NDL records with status 削除 (deleted).
    pub skipped: usize,
    /// Records imported after a repair the operator may want to know about.
    pub warnings: Vec<RecordError>,
}

impl ParseReport {
    /// Adds one step of a [`read_stream`].
    pub fn push(&mut self, item: Parsed) {
        match item {
            Parsed::Record(r) => self.records.push(r),
            Parsed::Error(e) => self.errors.push(e),
            Parsed::Warning(w) => self.warnings.push(w),
            Parsed::Skipped => self.skipped += 1,
        }
    }
}

/// One step of reading a file record by record ([`read_stream`]): what became of one
/// record, or (`Warning`, just before the record it concerns) what was repaired in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Record(ImportRecord),
    Error(RecordError),
    Warning(RecordError),
    /// A record deliberately left out (NDL status 削除).
    Skipped,
}

/// The MARC records of a file, with the position of each, before they are mapped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarcBatch {
    pub records: Vec<(usize, MarcRecord)>,
    pub errors: Vec<RecordError>,
    pub warnings: Vec<RecordError>,
}

impl MarcBatch {
    pub(crate) fn push(&mut self, item: MarcItem) {
        match item {
            MarcItem::Record(index, r) => self.records.push((index, r)),
            MarcItem::Error(e) => self.errors.push(e),
            MarcItem::Warning(w) => self.warnings.push(w),
        }
    }
}

/// One step of reading MARC record by record, before the record is mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarcItem {
    Record(usize, MarcRecord),
    Error(RecordError),
    Warning(RecordError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Iso2709,
    MarcXml,
    NdlJson,
}

/// Guesses the format from the first bytes, ignoring a byte-order mark and whitespace.
pub fn detect_format(bytes: &[u8]) -> Option<Format> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &bytes[start..];
    match head[0] {
        b'<' => Some(Format::MarcXml),
        b'[' | b'{' => Some(Format::NdlJson),
        _ if head.len() >= 5 && head[..5].iter().all(u8::is_ascii_digit) => Some(Format::Iso2709),
        _ => None,
    }
}

/// Reads every record of `bytes` in the given format.
pub fn parse(bytes: &[u8], format: Format) -> ParseReport {
    let mut report = ParseReport::default();
    // Reading from memory cannot fail.
    let _ = read_stream(bytes, format, &mut |item| {
        report.push(item);
        ControlFlow::Continue(())
    });
    report
}

/// Reads the records of `input` one at a time, maps each and hands what became of it to
/// `emit`, which may stop the reading (`ControlFlow::Break`). Memory holds one record (and
/// a read-ahead buffer) whatever the size of the input; the steps come in file order, so
/// collecting them gives what [`parse`] gives.
pub fn read_stream<R: BufRead>(
    input: R,
    format: Format,
    emit: &mut dyn FnMut(Parsed) -> ControlFlow<()>,
) -> std::io::Result<()> {
    let mut marc = |item: MarcItem| emit(from_marc(item));
    match format {
        Format::Iso2709 => iso2709::read_stream(input, &mut marc),
        Format::MarcXml => marcxml::read_stream(input, &mut marc),
        Format::NdlJson => ndl::read_stream(input, emit),
    }
}

/// The format of what `input` holds, from its first bytes (read ahead, not consumed).
pub fn detect_stream_format<R: BufRead>(input: &mut R) -> std::io::Result<Option<Format>> {
    Ok(detect_format(input.fill_buf()?))
}

/// Opens a file for [`read_stream`], detecting its format from its content.
pub fn open_file(path: &Path) -> std::io::Result<(BufReader<File>, Format)> {
    open_reader(path, File::open(path)?)
}

/// [`open_file`] over any reader of the file `path` (one that counts what it reads).
pub fn open_reader<R: Read>(path: &Path, file: R) -> std::io::Result<(BufReader<R>, Format)> {
    let mut input = BufReader::with_capacity(READ_BUFFER, file);
    let format = detect_stream_format(&mut input)?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{}: not MARC (ISO 2709), MARCXML or NDL JSON",
                path.display()
            ),
        )
    })?;
    Ok((input, format))
}

/// Read-ahead of a file: large enough that reading costs few system calls.
const READ_BUFFER: usize = 256 * 1024;

/// Reads a whole file into one report (tests, small files): [`read_stream`] collected.
#[tracing::instrument]
pub fn parse_file(path: &Path) -> std::io::Result<ParseReport> {
    let (input, format) = open_file(path)?;
    let mut report = ParseReport::default();
    read_stream(input, format, &mut |item| {
        report.push(item);
        ControlFlow::Continue(())
    })?;
    tracing::info!(
        ?format,
        records = report.records.len(),
        errors = report.errors.len(),
        skipped = report.skipped,
        warnings = report.warnings.len(),
        "records read"
    );
    Ok(report)
}

/// A MARC record mapped to what the catalog imports (a record without a title is an error).
fn from_marc(item: MarcItem) -> Parsed {
    match item {
        MarcItem::Record(index, record) => match to_import_record(&record) {
            Some(r) => Parsed::Record(r),
            None => Parsed::Error(RecordError::new(
                index,
                RecordErrorKind::NoTitle,
                "record has no title (245)",
            )),
        },
        MarcItem::Error(e) => Parsed::Error(e),
        MarcItem::Warning(w) => Parsed::Warning(w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_by_its_first_byte() {
        assert_eq!(detect_format(b"\xEF\xBB\xBF <?xml"), Some(Format::MarcXml));
        assert_eq!(detect_format(b"\n[{}]"), Some(Format::NdlJson));
        assert_eq!(detect_format(b"{\"a\":1}"), Some(Format::NdlJson));
        assert_eq!(detect_format(b"00865cam a2200"), Some(Format::Iso2709));
        assert_eq!(detect_format(b"0086"), None);
        assert_eq!(detect_format(b"hello"), None);
        assert_eq!(detect_format(b"   "), None);
        assert_eq!(detect_format(b""), None);
    }
}
