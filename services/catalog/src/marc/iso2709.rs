//! ISO 2709 ("binary MARC", `.mrc`) reader for UTF-8 MARC 21 records.
//!
//! Records are cut by the length in leader/00-04; when that length does not land on a
//! record terminator the reader falls back to the next terminator and says so in a
//! warning, because exports with a miscounted length are common and their directory is
//! usually still right. Each field is then located through the directory (base address
//! in leader/12-16, 12-byte entries), never by scanning for terminators, so a stray
//! 0x1E inside data cannot shift the fields that follow. The file is read record by record
//! ([`read_stream`]), so its size does not matter.
//!
//! MARC-8 is not converted: a record that declares MARC-8 (leader/09 blank) and actually
//! uses anything beyond ASCII is refused. Pure-ASCII MARC-8 is byte-for-byte the same as
//! UTF-8, so such records (common in older exports) are read normally.

use std::io::BufRead;
use std::ops::ControlFlow;

use super::record::{ControlField, DataField, Field, MarcRecord, Subfield};
use super::{MarcBatch, MarcItem, RecordError, RecordErrorKind};

const RECORD_TERMINATOR: u8 = 0x1D;
const FIELD_TERMINATOR: u8 = 0x1E;
const SUBFIELD_DELIMITER: char = '\u{1F}';
const LEADER_LEN: usize = 24;
const ENTRY_LEN: usize = 12;

/// Reads every record of an ISO 2709 file; bad records become errors, the rest are kept.
pub fn read(bytes: &[u8]) -> MarcBatch {
    let mut batch = MarcBatch::default();
    // Reading from memory cannot fail.
    let _ = read_stream(bytes, &mut |item| {
        batch.push(item);
        ControlFlow::Continue(())
    });
    batch
}

/// Reads the records of `input` one at a time and hands each (or its error, or the
/// warning of its repair, before it) to `emit`, which may stop the reading. Memory holds
/// one record and one read-ahead buffer, whatever the size of the file.
///
/// One difference from holding the whole file: a run of more than [`MAX_HELD`] bytes
/// without a record terminator (no real record: ISO 2709 counts lengths in 5 digits) is
/// reported as one malformed record and not kept in memory.
pub fn read_stream<R: BufRead>(
    input: R,
    emit: &mut dyn FnMut(MarcItem) -> ControlFlow<()>,
) -> std::io::Result<()> {
    let mut window = Window::new(input);
    let mut index = 0;
    loop {
        // Line breaks or padding between records are not part of any record.
        loop {
            let skip = window
                .held()
                .iter()
                .take_while(|&&b| b.is_ascii_whitespace() || b == 0 || b == 0x1A)
                .count();
            let all = skip == window.held().len();
            window.consume(skip);
            if !all || !window.fill()? {
                break;
            }
        }
        if window.held().is_empty() {
            return Ok(());
        }
        let item = match split_record(&mut window)? {
            Split::ByLength(len) => window.take(len, |chunk| record_item(index, chunk)),
            Split::ByTerminator { len, declared } => {
                let warning = RecordError::new(
                    index,
                    RecordErrorKind::LengthMismatch,
                    match declared {
                        Some(d) => format!(
                            "leader says the record is {d} bytes, the record terminator is at \
                             {len}; read up to the terminator"
                        ),
                        None => format!(
                            "leader/00-04 is not a record length; read up to the record \
                             terminator at {len}"
                        ),
                    },
                );
                if emit(MarcItem::Warning(warning)).is_break() {
                    return Ok(());
                }
                window.take(len, |chunk| record_item(index, chunk))
            }
            Split::TooLong { len } => MarcItem::Error(RecordError::new(
                index,
                RecordErrorKind::Malformed,
                format!(
                    "no record terminator in {len} bytes: not ISO 2709 records (a record \
                         is at most 99999 bytes)"
                ),
            )),
            Split::Truncated { len } => {
                let _ = emit(MarcItem::Error(RecordError::new(
                    index,
                    RecordErrorKind::Truncated,
                    format!("no record terminator in the last {len} bytes: the file is cut short"),
                )));
                return Ok(());
            }
        };
        if emit(item).is_break() {
            return Ok(());
        }
        index += 1;
    }
}

fn record_item(index: usize, chunk: &[u8]) -> MarcItem {
    match parse_record(chunk) {
        Ok(record) => MarcItem::Record(index, record),
        Err((kind, message)) => MarcItem::Error(RecordError::new(index, kind, message)),
    }
}

/// Most bytes held while looking for a record terminator.
pub const MAX_HELD: usize = 16 << 20;

/// The bytes of `input` read but not yet consumed: the current record and what was read
/// ahead of it.
struct Window<R> {
    input: R,
    buf: Vec<u8>,
    start: usize,
}

impl<R: BufRead> Window<R> {
    fn new(input: R) -> Self {
        Window {
            input,
            buf: Vec::new(),
            start: 0,
        }
    }

    fn held(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Reads more; false at the end of the input.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let more = loop {
            match self.input.fill_buf() {
                Ok(more) => break more,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        let n = more.len();
        self.buf.extend_from_slice(more);
        self.input.consume(n);
        Ok(n > 0)
    }

    /// At least `n` bytes held, unless the input ends first.
    fn ensure(&mut self, n: usize) -> std::io::Result<()> {
        while self.held().len() < n && self.fill()? {}
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    fn take<T>(&mut self, n: usize, f: impl FnOnce(&[u8]) -> T) -> T {
        let out = f(&self.held()[..n]);
        self.consume(n);
        out
    }

    /// Counts and drops the rest of a terminator-less run: the length up to and including
    /// the next terminator, or `Err(len)` with the bytes left when the input ends first.
    fn skip_past_terminator(
        &mut self,
        mut counted: usize,
    ) -> std::io::Result<Result<usize, usize>> {
        loop {
            let held = self.held();
            if let Some(p) = held.iter().position(|&b| b == RECORD_TERMINATOR) {
                self.consume(p + 1);
                return Ok(Ok(counted + p + 1));
            }
            counted += held.len();
            self.consume(held.len());
            if !self.fill()? {
                return Ok(Err(counted));
            }
        }
    }
}

enum Split {
    /// The declared length ends on a record terminator.
    ByLength(usize),
    /// The declared length is wrong; the record ends at the next terminator.
    ByTerminator { len: usize, declared: Option<usize> },
    /// No terminator in [`MAX_HELD`] bytes; the run up to the next one (`len` bytes,
    /// already consumed) is not a record.
    TooLong { len: usize },
    /// Neither: the data ends before the record does (`len` bytes left).
    Truncated { len: usize },
}

fn split_record<R: BufRead>(window: &mut Window<R>) -> std::io::Result<Split> {
    window.ensure(5)?;
    let declared = window
        .held()
        .get(..5)
        .and_then(ascii_number)
        .filter(|&n| n > LEADER_LEN);
    if let Some(len) = declared {
        window.ensure(len)?;
        if window.held().get(len - 1) == Some(&RECORD_TERMINATOR) {
            return Ok(Split::ByLength(len));
        }
    }
    let mut searched = 0;
    loop {
        let held = window.held();
        if let Some(p) = held[searched..]
            .iter()
            .position(|&b| b == RECORD_TERMINATOR)
        {
            return Ok(Split::ByTerminator {
                len: searched + p + 1,
                declared,
            });
        }
        searched = held.len();
        if searched > MAX_HELD {
            let counted = searched;
            window.consume(counted);
            return Ok(match window.skip_past_terminator(counted)? {
                Ok(len) => Split::TooLong { len },
                Err(len) => Split::Truncated { len },
            });
        }
        if !window.fill()? {
            return Ok(Split::Truncated {
                len: window.held().len(),
            });
        }
    }
}

/// Parses one record, terminator included.
fn parse_record(raw: &[u8]) -> Result<MarcRecord, (RecordErrorKind, String)> {
    use RecordErrorKind::{InvalidUtf8, Malformed, Marc8NotSupported};

    let leader_bytes = raw
        .get(..LEADER_LEN)
        .filter(|_| raw.len() > LEADER_LEN)
        .ok_or_else(|| {
            (
                Malformed,
                format!("record of {} bytes is shorter than a leader", raw.len()),
            )
        })?;
    let leader = std::str::from_utf8(leader_bytes)
        .ok()
        .filter(|l| l.is_ascii())
        .ok_or_else(|| (Malformed, "leader is not ASCII".to_string()))?
        .to_string();

    // leader/09 blank declares MARC-8, whose G1 set and escape sequences are not
    // converted here; only when none is used is the text already what UTF-8 says.
    if leader_bytes[9] == b' ' && raw.iter().any(|&b| b >= 0x80 || b == 0x1B) {
        return Err((
            Marc8NotSupported,
            "record is MARC-8 encoded (leader/09 blank) with non-ASCII characters; \
             MARC-8 is not supported, convert the file to UTF-8"
                .to_string(),
        ));
    }

    let base = ascii_number(&leader_bytes[12..17]).ok_or_else(|| {
        (
            Malformed,
            "base address of data (leader/12-16) is not a number".to_string(),
        )
    })?;
    if base <= LEADER_LEN || base > raw.len() {
        return Err((
            Malformed,
            format!(
                "base address of data {base} lies outside the record of {} bytes",
                raw.len()
            ),
        ));
    }
    if raw[base - 1] != FIELD_TERMINATOR {
        return Err((
            Malformed,
            format!("no field terminator before the base address of data {base}"),
        ));
    }
    let directory = &raw[LEADER_LEN..base - 1];
    if !directory.len().is_multiple_of(ENTRY_LEN) {
        return Err((
            Malformed,
            format!(
                "directory of {} bytes is not made of 12-byte entries",
                directory.len()
            ),
        ));
    }
    if directory.is_empty() {
        return Err((Malformed, "record has no fields".to_string()));
    }
    // Field data must end before the record terminator.
    let data_end = raw.len() - 1;

    let mut fields = Vec::with_capacity(directory.len() / ENTRY_LEN);
    for (n, entry) in directory.chunks_exact(ENTRY_LEN).enumerate() {
        let tag = std::str::from_utf8(&entry[..3])
            .ok()
            .filter(|t| t.bytes().all(|b| b.is_ascii_alphanumeric()))
            .ok_or_else(|| (Malformed, format!("directory entry {n} has an invalid tag")))?;
        let (Some(len), Some(start)) = (ascii_number(&entry[3..7]), ascii_number(&entry[7..12]))
        else {
            return Err((
                Malformed,
                format!("directory entry {n} (tag {tag}) has a non-numeric length or start"),
            ));
        };
        let from = base + start;
        let to = from + len;
        if to > data_end {
            return Err((
                Malformed,
                format!("field {tag} (directory entry {n}) runs past the end of the record"),
            ));
        }
        let mut data = &raw[from..to];
        if let Some((&FIELD_TERMINATOR, head)) = data.split_last() {
            data = head;
        }
        let text = std::str::from_utf8(data).map_err(|e| {
            (
                InvalidUtf8,
                format!(
                    "field {tag} is not valid UTF-8 (byte {} of the field)",
                    e.valid_up_to()
                ),
            )
        })?;
        fields.push(if tag.starts_with("00") {
            Field::Control(ControlField {
                tag: tag.to_string(),
                value: text.to_string(),
            })
        } else {
            Field::Data(parse_data_field(tag, text)?)
        });
    }
    Ok(MarcRecord { leader, fields })
}

/// Splits a data field into indicators and subfields. Missing or odd indicators are kept
/// as found (blank when absent): they do not change what the record says.
fn parse_data_field(tag: &str, text: &str) -> Result<DataField, (RecordErrorKind, String)> {
    let mut parts = text.split(SUBFIELD_DELIMITER);
    let mut indicators = parts.next().unwrap_or_default().chars();
    let ind1 = indicators.next().unwrap_or(' ');
    let ind2 = indicators.next().unwrap_or(' ');
    let mut subfields = Vec::new();
    for chunk in parts {
        let mut chars = chunk.chars();
        let Some(code) = chars.next() else {
            // An empty subfield (two delimiters in a row) holds nothing.
            continue;
        };
        // The subfield code is one byte (leader/11 counts bytes): a multi-byte character
        // here means the bytes around it were damaged, typically by a lossy conversion
        // that left a U+FFFD behind, and the value cannot be trusted either.
        if !code.is_ascii() {
            return Err((
                RecordErrorKind::InvalidUtf8,
                format!(
                    "field {tag} has a subfield code {code:?} that is not one ASCII byte: \
                     the field was damaged by an encoding conversion"
                ),
            ));
        }
        subfields.push(Subfield {
            code,
            value: chars.as_str().to_string(),
        });
    }
    Ok(DataField {
        tag: tag.to_string(),
        ind1,
        ind2,
        subfields,
    })
}

fn ascii_number(bytes: &[u8]) -> Option<usize> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0usize, |n, &b| n * 10 + usize::from(b - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an ISO 2709 record from `(tag, field data)` pairs.
    pub(crate) fn build(leader_tail: &str, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut directory = String::new();
        let mut data = Vec::new();
        for (tag, body) in fields {
            let body = format!("{body}\u{1E}");
            directory.push_str(&format!("{tag}{:04}{:05}", body.len(), data.len()));
            data.extend_from_slice(body.as_bytes());
        }
        let base = LEADER_LEN + directory.len() + 1;
        let total = base + data.len() + 1;
        let mut out = format!("{total:05}{}", &leader_tail[..7]).into_bytes();
        out.extend_from_slice(format!("{base:05}{}", &leader_tail[12..]).as_bytes());
        out.extend_from_slice(directory.as_bytes());
        out.push(FIELD_TERMINATOR);
        out.extend_from_slice(&data);
        out.push(RECORD_TERMINATOR);
        out
    }

    const LEADER: &str = "00000nam a2200000 a 4500";

    #[test]
    fn reads_control_and_data_fields() {
        let bytes = build(
            &LEADER[5..],
            &[("001", "x1"), ("245", "10\u{1F}aタイトル :\u{1F}b副題")],
        );
        let batch = read(&bytes);
        assert!(batch.errors.is_empty(), "{:?}", batch.errors);
        let (_, record) = &batch.records[0];
        assert_eq!(record.control("001"), Some("x1"));
        let title = record.data_field("245").unwrap();
        assert_eq!((title.ind1, title.ind2), ('1', '0'));
        assert_eq!(title.subfield('a'), Some("タイトル :"));
        assert_eq!(title.subfield('b'), Some("副題"));
    }

    #[test]
    fn missing_indicators_are_blank() {
        let bytes = build(&LEADER[5..], &[("245", "\u{1F}aTitle")]);
        let batch = read(&bytes);
        let title = batch.records[0].1.data_field("245").unwrap().clone();
        assert_eq!((title.ind1, title.ind2), (' ', ' '));
        assert_eq!(title.subfield('a'), Some("Title"));
    }

    #[test]
    fn wrong_record_length_falls_back_to_the_terminator() {
        let mut bytes = build(&LEADER[5..], &[("245", "00\u{1F}aOne")]);
        bytes[..5].copy_from_slice(b"00999");
        bytes.extend(build(&LEADER[5..], &[("245", "00\u{1F}aTwo")]));
        let batch = read(&bytes);
        assert_eq!(batch.records.len(), 2);
        assert!(batch.errors.is_empty());
        assert_eq!(batch.warnings.len(), 1);
        assert_eq!(batch.warnings[0].kind, RecordErrorKind::LengthMismatch);
        assert_eq!(batch.warnings[0].index, 0);
    }

    #[test]
    fn invalid_utf8_is_reported_and_the_next_record_kept() {
        let mut bad = build(&LEADER[5..], &[("245", "00\u{1F}aOne é")]);
        let at = bad.len() - 3; // second byte of "é"
        bad[at] = 0x41;
        bad.extend(build(&LEADER[5..], &[("245", "00\u{1F}aTwo")]));
        let batch = read(&bad);
        assert_eq!(batch.errors.len(), 1);
        assert_eq!(batch.errors[0].kind, RecordErrorKind::InvalidUtf8);
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.records[0].0, 1);
    }

    #[test]
    fn ascii_marc8_is_read_but_marc8_with_ansel_is_refused() {
        let ascii = build("cam  2200000 a 4500", &[("245", "00\u{1F}aPlain")]);
        assert_eq!(read(&ascii).records.len(), 1);
        let mut ansel = build("cam  2200000 a 4500", &[("245", "00\u{1F}aCafe\u{7F}")]);
        let at = ansel.len() - 3;
        ansel[at] = 0xE2; // ANSEL acute accent
        let batch = read(&ansel);
        assert_eq!(batch.errors[0].kind, RecordErrorKind::Marc8NotSupported);
    }
}
