//! MARCXML reader (the Library of Congress `MARC21/slim` schema): a `<collection>` of
//! `<record>`s or a single `<record>`, with or without a namespace prefix.
//!
//! Elements are matched by local name, so `marc:record`, `record` under a default
//! namespace and any other prefix all read the same. A record with a broken part is
//! reported and skipped; broken XML ends the reading there, since nothing after a syntax
//! error can be trusted, and the records before it are kept. The document is read event by
//! event ([`read_stream`]): memory holds one record, whatever the size of the file.

use std::io::BufRead;
use std::ops::ControlFlow;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::reader::Reader;

use super::record::{ControlField, DataField, Field, MarcRecord, Subfield};
use super::{MarcBatch, MarcItem, RecordError, RecordErrorKind};

/// Reads every `<record>` of a MARCXML document.
pub fn read(bytes: &[u8]) -> MarcBatch {
    let mut batch = MarcBatch::default();
    // Reading from memory cannot fail.
    let _ = read_stream(bytes, &mut |item| {
        batch.push(item);
        ControlFlow::Continue(())
    });
    batch
}

/// Reads the `<record>`s of `input` one at a time (quick-xml's streaming reader: memory
/// holds one record) and hands each, or its error, to `emit`, which may stop the reading.
pub fn read_stream<R: BufRead>(
    mut input: R,
    emit: &mut dyn FnMut(MarcItem) -> ControlFlow<()>,
) -> std::io::Result<()> {
    if input.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        input.consume(3);
    }
    let mut reader = Reader::from_reader(input);
    let mut state = State::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(quick_xml::Error::Io(e)) => return Err(std::io::Error::new(e.kind(), e)),
            Err(e) => {
                state.out.push(MarcItem::Error(RecordError::new(
                    state.index,
                    RecordErrorKind::Syntax,
                    format!(
                        "XML error at byte {}: {e}; the rest of the file was not read",
                        reader.error_position()
                    ),
                )));
                break;
            }
        };
        let end = matches!(event, Event::Eof);
        match event {
            Event::Start(e) => state.open(&e, false),
            Event::Empty(e) => state.open(&e, true),
            Event::End(e) => state.close(e.local_name().as_ref()),
            Event::Text(t) => match t.xml10_content() {
                Ok(text) => state.text(&text),
                Err(e) => state.fail(RecordErrorKind::InvalidUtf8, format!("text: {e}")),
            },
            Event::CData(t) => match t.decode() {
                Ok(text) => state.text(&text),
                Err(e) => state.fail(RecordErrorKind::InvalidUtf8, format!("CDATA: {e}")),
            },
            Event::GeneralRef(r) => match resolve(&r) {
                Ok(text) => state.text(&text),
                Err(message) => state.fail(RecordErrorKind::Malformed, message),
            },
            Event::Eof => {
                if state.record.is_some() {
                    state.out.push(MarcItem::Error(RecordError::new(
                        state.index,
                        RecordErrorKind::Truncated,
                        "the document ends inside a <record>",
                    )));
                }
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        for item in state.out.drain(..) {
            if emit(item).is_break() {
                return Ok(());
            }
        }
        if end {
            break;
        }
    }
    if !state.saw_root {
        state.out.push(MarcItem::Error(RecordError::new(
            0,
            RecordErrorKind::Malformed,
            "no MARCXML <collection> or <record> element",
        )));
    }
    for item in state.out.drain(..) {
        if emit(item).is_break() {
            break;
        }
    }
    Ok(())
}

/// An entity or character reference as text.
fn resolve(r: &BytesRef<'_>) -> Result<String, String> {
    if let Some(c) = r
        .resolve_char_ref()
        .map_err(|e| format!("bad character reference: {e}"))?
    {
        return Ok(c.to_string());
    }
    let name = r
        .decode()
        .map_err(|e| format!("bad entity reference: {e}"))?;
    quick_xml::escape::resolve_xml_entity(&name)
        .map(str::to_string)
        .ok_or_else(|| format!("unknown entity &{name};"))
}

#[derive(Default)]
struct State {
    /// Records (or errors) finished by the last event, not yet handed on.
    out: Vec<MarcItem>,
    /// Position of the current (or next) record in the document.
    index: usize,
    saw_root: bool,
    record: Option<RecordBuilder>,
}

struct RecordBuilder {
    leader: Option<String>,
    fields: Vec<Field>,
    /// Where text goes now.
    target: Target,
    datafield: Option<DataField>,
    /// First problem found; the record is reported at its end.
    error: Option<(RecordErrorKind, String)>,
}

enum Target {
    None,
    Leader(String),
    Control(String, String),
    Subfield(char, String),
}

impl State {
    fn open(&mut self, e: &BytesStart<'_>, empty: bool) {
        let name = e.local_name();
        let name = name.as_ref();
        if !self.saw_root && (name == b"collection" || name == b"record") {
            self.saw_root = true;
        }
        if name == b"record" {
            if self.record.is_some() {
                // A <record> inside a <record>: the outer one never ended properly.
                self.finish();
            }
            self.record = Some(RecordBuilder {
                leader: None,
                fields: Vec::new(),
                target: Target::None,
                datafield: None,
                error: None,
            });
            if empty {
                self.finish();
            }
            return;
        }
        let Some(record) = self.record.as_mut() else {
            return;
        };
        match name {
            b"leader" => record.target = Target::Leader(String::new()),
            b"controlfield" => match attribute(e, b"tag") {
                Ok(Some(tag)) => record.target = Target::Control(tag, String::new()),
                Ok(None) => record.fail(RecordErrorKind::Malformed, "controlfield without tag"),
                Err(message) => record.fail(RecordErrorKind::Malformed, message),
            },
            b"datafield" => {
                let tag = attribute(e, b"tag");
                let ind1 = attribute(e, b"ind1");
                let ind2 = attribute(e, b"ind2");
                match (tag, ind1, ind2) {
                    (Ok(Some(tag)), Ok(ind1), Ok(ind2)) => {
                        record.datafield = Some(DataField {
                            tag,
                            ind1: indicator(ind1),
                            ind2: indicator(ind2),
                            subfields: Vec::new(),
                        });
                    }
                    (Ok(None), _, _) => {
                        record.fail(RecordErrorKind::Malformed, "datafield without tag");
                    }
                    (Err(m), _, _) | (_, Err(m), _) | (_, _, Err(m)) => {
                        record.fail(RecordErrorKind::Malformed, m);
                    }
                }
            }
            b"subfield" => match attribute(e, b"code") {
                Ok(Some(code)) => match code.chars().next() {
                    Some(c) => record.target = Target::Subfield(c, String::new()),
                    None => record.fail(RecordErrorKind::Malformed, "subfield with empty code"),
                },
                Ok(None) => record.fail(RecordErrorKind::Malformed, "subfield without code"),
                Err(message) => record.fail(RecordErrorKind::Malformed, message),
            },
            // Anything else (extensions, stray markup) carries nothing MARC knows.
            _ => return,
        }
        if empty {
            self.close(name);
        }
    }

    fn close(&mut self, name: &[u8]) {
        if name == b"record" {
            self.finish();
            return;
        }
        let Some(record) = self.record.as_mut() else {
            return;
        };
        let target = std::mem::replace(&mut record.target, Target::None);
        match (name, target) {
            (b"leader", Target::Leader(text)) => record.leader = Some(text),
            (b"controlfield", Target::Control(tag, value)) => {
                record
                    .fields
                    .push(Field::Control(ControlField { tag, value }));
            }
            (b"subfield", Target::Subfield(code, value)) => {
                if let Some(field) = record.datafield.as_mut() {
                    field.subfields.push(Subfield { code, value });
                }
            }
            (b"datafield", _) => {
                if let Some(field) = record.datafield.take() {
                    record.fields.push(Field::Data(field));
                }
            }
            (_, target) => record.target = target,
        }
    }

    fn text(&mut self, text: &str) {
        let Some(record) = self.record.as_mut() else {
            return;
        };
        match &mut record.target {
            Target::Leader(buf) | Target::Control(_, buf) | Target::Subfield(_, buf) => {
                buf.push_str(text);
            }
            // Indentation between elements.
            Target::None => {}
        }
    }

    fn fail(&mut self, kind: RecordErrorKind, message: impl Into<String>) {
        if let Some(record) = self.record.as_mut() {
            record.fail(kind, message);
        }
    }

    /// Ends the current record: into the batch, or into the errors.
    fn finish(&mut self) {
        let Some(record) = self.record.take() else {
            return;
        };
        let index = self.index;
        self.index += 1;
        let result = match (record.error, record.leader) {
            (Some(error), _) => Err(error),
            (None, None) => Err((RecordErrorKind::Malformed, "record without leader".into())),
            (None, Some(leader)) if leader.chars().count() != 24 => Err((
                RecordErrorKind::Malformed,
                format!(
                    "leader has {} characters instead of 24",
                    leader.chars().count()
                ),
            )),
            (None, Some(_)) if record.fields.is_empty() => {
                Err((RecordErrorKind::Malformed, "record has no fields".into()))
            }
            (None, Some(leader)) => Ok(MarcRecord {
                leader,
                fields: record.fields,
            }),
        };
        self.out.push(match result {
            Ok(r) => MarcItem::Record(index, r),
            Err((kind, message)) => MarcItem::Error(RecordError::new(index, kind, message)),
        });
    }
}

impl RecordBuilder {
    fn fail(&mut self, kind: RecordErrorKind, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some((kind, message.into()));
        }
    }
}

fn attribute(e: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, String> {
    match e.try_get_attribute(name) {
        Ok(Some(attr)) => attr
            .unescape_value()
            .map(|v| Some(v.into_owned()))
            .map_err(|err| format!("attribute {}: {err}", String::from_utf8_lossy(name))),
        Ok(None) => Ok(None),
        Err(err) => Err(format!("attributes: {err}")),
    }
}

/// An indicator attribute as one character; absent or empty is blank, as in ISO 2709.
fn indicator(value: Option<String>) -> char {
    value.and_then(|v| v.chars().next()).unwrap_or(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_single_record_without_prefix() {
        let xml = br#"<record><leader>00000nam a2200000 a 4500</leader>
            <controlfield tag="001">x1</controlfield>
            <datafield tag="245" ind1="1" ind2="0"><subfield code="a">A &amp; B&#x3042;</subfield></datafield>
        </record>"#;
        let batch = read(xml);
        assert!(batch.errors.is_empty(), "{:?}", batch.errors);
        let (_, r) = &batch.records[0];
        assert_eq!(r.control("001"), Some("x1"));
        assert_eq!(r.data_field("245").unwrap().subfield('a'), Some("A & Bあ"));
    }

    #[test]
    fn broken_xml_keeps_the_records_before_it() {
        let xml = br#"<m:collection xmlns:m="http://www.loc.gov/MARC21/slim">
          <m:record><m:leader>00000nam a2200000 a 4500</m:leader>
            <m:datafield tag="245" ind1="0" ind2="0"><m:subfield code="a">One</m:subfield></m:datafield></m:record>
          <m:record><m:leader>00000nam a2200000 a 4500</m:leader><m:datafield tag="245"></m:record>"#;
        let batch = read(xml);
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.errors.len(), 1);
        assert_eq!(batch.errors[0].index, 1);
        assert_eq!(batch.errors[0].kind, RecordErrorKind::Syntax);
    }

    #[test]
    fn a_record_without_leader_is_reported() {
        let xml = br#"<collection><record><controlfield tag="001">1</controlfield></record>
            <record><leader>00000nam a2200000 a 4500</leader><controlfield tag="001">2</controlfield></record></collection>"#;
        let batch = read(xml);
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.records[0].0, 1);
        assert_eq!(batch.errors[0].index, 0);
    }

    #[test]
    fn not_marcxml_is_reported() {
        let batch = read(b"<html><body>hello</body></html>");
        assert!(batch.records.is_empty());
        assert_eq!(batch.errors.len(), 1);
    }
}
