//! The MARC 21 record as the readers produce it: a leader, control fields and data
//! fields with indicators and subfields, whatever the transport (ISO 2709 or MARCXML).
//!
//! Only the structure lives here, plus the 880 linkage (`$6`) that ties a field in
//! romanised form to its original-script twin. What a record *means* for the catalog is
//! decided in `import`.

use std::fmt;

/// One bibliographic record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarcRecord {
    /// The 24 leader characters, as recorded.
    pub leader: String,
    /// Fields in record order (ISO 2709 directory order, or document order in MARCXML).
    pub fields: Vec<Field>,
}

/// A variable field: a control field (tags `00X`) or a data field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Control(ControlField),
    Data(DataField),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlField {
    pub tag: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataField {
    pub tag: String,
    pub ind1: char,
    pub ind2: char,
    pub subfields: Vec<Subfield>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subfield {
    pub code: char,
    pub value: String,
}

/// A parsed `$6` linkage: `880-02` in a regular field, `245-02/$1` in its 880 twin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linkage<'a> {
    /// The tag of the field at the other end of the link.
    pub tag: &'a str,
    /// The occurrence number pairing the two fields; `"00"` means "no twin".
    pub occurrence: &'a str,
    /// Script identification after the slash (`$1` = CJK), empty if absent.
    pub script: &'a str,
}

impl<'a> Linkage<'a> {
    /// Parses a `$6` value; `None` when it does not start with `TAG-NN`.
    pub fn parse(value: &'a str) -> Option<Self> {
        let value = value.trim();
        let (tag, rest) = value.split_once('-')?;
        if tag.len() != 3 || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let (occurrence, script) = rest.split_once('/').unwrap_or((rest, ""));
        if occurrence.is_empty() || !occurrence.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Linkage {
            tag,
            occurrence,
            script,
        })
    }
}

impl MarcRecord {
    /// The value of the first control field with this tag.
    pub fn control(&self, tag: &str) -> Option<&str> {
        self.fields.iter().find_map(|f| match f {
            Field::Control(c) if c.tag == tag => Some(c.value.as_str()),
            _ => None,
        })
    }

    /// All data fields with this tag, in record order.
    pub fn data_fields<'s, 't>(
        &'s self,
        tag: &'t str,
    ) -> impl Iterator<Item = &'s DataField> + use<'s, 't> {
        self.fields.iter().filter_map(move |f| match f {
            Field::Data(d) if d.tag == tag => Some(d),
            _ => None,
        })
    }

    /// The first data field with this tag.
    pub fn data_field(&self, tag: &str) -> Option<&DataField> {
        self.data_fields(tag).next()
    }

    /// The 880 holding the original-script form of `field`.
    ///
    /// Follows the field's own `$6 880-NN` first; an 880 whose `$6` names the tag with
    /// occurrence `00` (or a field that lost its `$6`) is matched by tag alone, so a
    /// record whose linkage was only half kept still yields its original script.
    pub fn linked_880(&self, field: &DataField) -> Option<&DataField> {
        if field.tag == "880" {
            return None;
        }
        let own = field.subfield('6').and_then(Linkage::parse);
        if let Some(link) = own
            .as_ref()
            .filter(|l| l.tag == "880" && l.occurrence != "00")
        {
            let twin = self.data_fields("880").find(|f| {
                f.linkage()
                    .is_some_and(|l| l.tag == field.tag && l.occurrence == link.occurrence)
            });
            if twin.is_some() {
                return twin;
            }
        }
        // Without a usable link, only an unambiguous answer is safe: the single 880 for
        // this tag.
        let mut candidates = self
            .data_fields("880")
            .filter(|f| f.linkage().is_some_and(|l| l.tag == field.tag));
        let first = candidates.next()?;
        if candidates.next().is_some() {
            return None;
        }
        Some(first)
    }

    /// The regular field an 880 belongs to (`$6 245-02` → the 245 with `$6 880-02`).
    pub fn linked_regular(&self, field_880: &DataField) -> Option<&DataField> {
        let link = field_880.linkage()?;
        if field_880.tag != "880" || link.occurrence == "00" {
            return None;
        }
        self.data_fields(link.tag).find(|f| {
            f.subfield('6')
                .and_then(Linkage::parse)
                .is_some_and(|l| l.tag == "880" && l.occurrence == link.occurrence)
        })
    }

    /// The first 880 whose `$6` names `tag`, whether or not a regular field links to it.
    pub fn first_880_for(&self, tag: &str) -> Option<&DataField> {
        self.data_fields("880")
            .find(|f| f.linkage().is_some_and(|l| l.tag == tag))
    }
}

impl DataField {
    /// The first value of a subfield.
    pub fn subfield(&self, code: char) -> Option<&str> {
        self.subfields
            .iter()
            .find(|s| s.code == code)
            .map(|s| s.value.as_str())
    }

    /// All values of a subfield, in order.
    pub fn subfields_of(&self, code: char) -> impl Iterator<Item = &str> {
        self.subfields
            .iter()
            .filter(move |s| s.code == code)
            .map(|s| s.value.as_str())
    }

    /// The field's `$6` linkage, if it has a well-formed one.
    pub fn linkage(&self) -> Option<Linkage<'_>> {
        self.subfield('6').and_then(Linkage::parse)
    }
}

/// The listing format of `yaz-marcdump` (leader line, `001 value`, `245 10 $a … $c …`),
/// so a record can be eyeballed, and compared with yaz's golden listings.
impl fmt::Display for MarcRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.leader)?;
        for field in &self.fields {
            match field {
                Field::Control(c) => writeln!(f, "{} {}", c.tag, c.value)?,
                Field::Data(d) => {
                    write!(f, "{} {}{}", d.tag, d.ind1, d.ind2)?;
                    for s in &d.subfields {
                        write!(f, " ${} {}", s.code, s.value)?;
                    }
                    writeln!(f)?;
                }
            }
        }
        Ok(())
    }
}

/// 64-bit FNV-1a: a stable hash (unlike `DefaultHasher`, which may change between Rust
/// releases) for ids of records that carry no control number.
pub(crate) fn fnv1a64(chunks: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in chunks {
        for &b in *chunk {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

impl MarcRecord {
    /// A hash of the record's content, the same whether it was read from ISO 2709 or
    /// MARCXML (the raw bytes of the two differ, the record does not).
    pub fn content_hash(&self) -> u64 {
        // Serialise in ISO 2709 style: the separators cannot occur inside decoded values
        // that came from ISO 2709, so distinct records give distinct byte strings.
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(self.leader.as_bytes());
        for field in &self.fields {
            bytes.push(0x1E);
            match field {
                Field::Control(c) => {
                    bytes.extend_from_slice(c.tag.as_bytes());
                    bytes.extend_from_slice(c.value.as_bytes());
                }
                Field::Data(d) => {
                    bytes.extend_from_slice(d.tag.as_bytes());
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(d.ind1.encode_utf8(&mut buf).as_bytes());
                    bytes.extend_from_slice(d.ind2.encode_utf8(&mut buf).as_bytes());
                    for s in &d.subfields {
                        bytes.push(0x1F);
                        bytes.extend_from_slice(s.code.encode_utf8(&mut buf).as_bytes());
                        bytes.extend_from_slice(s.value.as_bytes());
                    }
                }
            }
        }
        fnv1a64(&[&bytes])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(tag: &str, subfields: &[(char, &str)]) -> Field {
        Field::Data(DataField {
            tag: tag.into(),
            ind1: ' ',
            ind2: ' ',
            subfields: subfields
                .iter()
                .map(|&(code, value)| Subfield {
                    code,
                    value: value.into(),
                })
                .collect(),
        })
    }

    #[test]
    fn linkage_parses_both_directions() {
        let l = Linkage::parse("245-02/$1").unwrap();
        assert_eq!((l.tag, l.occurrence, l.script), ("245", "02", "$1"));
        let l = Linkage::parse("880-01").unwrap();
        assert_eq!((l.tag, l.occurrence, l.script), ("880", "01", ""));
        assert!(Linkage::parse("nonsense").is_none());
        assert!(Linkage::parse("24-01").is_none());
        assert!(Linkage::parse("245-").is_none());
    }

    #[test]
    fn linked_880_follows_the_occurrence_number() {
        let record = MarcRecord {
            leader: "00000nam a2200000 a 4500".into(),
            fields: vec![
                data("100", &[('6', "880-01"), ('a', "Abe, Kazue,")]),
                data("245", &[('6', "880-02"), ('a', "Dentō /")]),
                data("880", &[('6', "245-02/$1"), ('a', "伝統 /")]),
                data("880", &[('6', "100-01/$1"), ('a', "阿部主計,")]),
            ],
        };
        let title = record.data_field("245").unwrap();
        assert_eq!(
            record.linked_880(title).unwrap().subfield('a'),
            Some("伝統 /")
        );
        let author = record.data_field("100").unwrap();
        assert_eq!(
            record.linked_880(author).unwrap().subfield('a'),
            Some("阿部主計,")
        );
        let twin = record.linked_880(title).unwrap();
        assert_eq!(record.linked_regular(twin), Some(title));
    }
}
