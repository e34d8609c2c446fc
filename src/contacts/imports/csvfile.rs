//! The spooled CSV file of an import: its character set (detected when not given), its
//! delimiter (detected from the header line when not given), its header row, and its data rows
//! read from a byte offset, so a job resumes exactly after its last committed row.
//!
//! The `csv` crate parses bytes; each field is decoded on its own. That is sound for every
//! charset crier reads: in UTF-8 and in Windows-1252 the bytes of `,` `;` tab `"` CR and LF only
//! ever mean those characters, so the parse never splits a character and every offset the
//! parser reports is an offset in the file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use csv::{ByteRecord, ReaderBuilder};

crate::text_enum! {
    /// How the file's bytes are read as text.
    pub enum Charset {
        Utf8 = "utf-8",
        /// Excel's "CSV" on Western Windows: Latin-1 plus `€`, `œ`, curly quotes in 0x80–0x9F.
        Windows1252 = "windows-1252",
        /// Read as Windows-1252, as browsers do (WHATWG): the two agree on every printable
        /// character, and a file labelled Latin-1 that holds `€` is Windows-1252 in truth.
        Iso88591 = "iso-8859-1",
    }
}

crate::text_enum! {
    /// What separates fields.
    pub enum Delimiter {
        Comma = ",",
        Semicolon = ";",
        Tab = "tab",
    }
}

impl Delimiter {
    pub fn byte(self) -> u8 {
        match self {
            Delimiter::Comma => b',',
            Delimiter::Semicolon => b';',
            Delimiter::Tab => b'\t',
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// How much of the file the delimiter detection looks at for the header line.
const HEAD_BYTES: usize = 64 * 1024;
/// Bytes read per call when scanning or parsing the file.
const SCAN_CHUNK: usize = 256 * 1024;

/// UTF-8 when every byte of the file is valid UTF-8 (a BOM allowed), else Windows-1252, which
/// decodes any byte: what Excel writes outside UTF-8. Reads the whole file once, in chunks.
pub fn detect_charset(path: &Path) -> io::Result<Charset> {
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; SCAN_CHUNK + 4];
    // Bytes of a character cut by the end of the previous chunk, carried over.
    let mut carried = 0;
    loop {
        let read = file.read(&mut buffer[carried..carried + SCAN_CHUNK])?;
        let filled = carried + read;
        if read == 0 {
            return Ok(if carried == 0 {
                Charset::Utf8
            } else {
                Charset::Windows1252
            });
        }
        match std::str::from_utf8(&buffer[..filled]) {
            Ok(_) => carried = 0,
            Err(err) if err.error_len().is_none() => {
                // An incomplete character at the end: keep it for the next chunk.
                let valid = err.valid_up_to();
                buffer.copy_within(valid..filled, 0);
                carried = filled - valid;
            }
            Err(_) => return Ok(Charset::Windows1252),
        }
    }
}

/// How many bytes of UTF-8 BOM the file starts with (0 or 3).
fn bom_length(path: &Path) -> io::Result<u64> {
    let mut start = [0u8; 3];
    let mut file = File::open(path)?;
    let mut filled = 0;
    while filled < start.len() {
        let read = file.read(&mut start[filled..])?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    Ok(if start[..filled] == *UTF8_BOM { 3 } else { 0 })
}

/// The delimiter of the header line: whichever of `,` `;` tab appears most often in it outside
/// quotes; a comma when none does.
pub fn detect_delimiter(head: &[u8]) -> Delimiter {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &byte in head {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [Delimiter::Comma, Delimiter::Semicolon, Delimiter::Tab];
    let mut best = (0, Delimiter::Comma);
    for (count, delimiter) in counts.into_iter().zip(candidates) {
        if count > best.0 {
            best = (count, delimiter);
        }
    }
    best.1
}

/// Text of one field in `charset`. Valid UTF-8 was checked when the charset was detected; a
/// file declared UTF-8 that is not gets U+FFFD for the bad bytes (never mojibake).
pub fn decode(bytes: &[u8], charset: Charset) -> String {
    match charset {
        Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        Charset::Windows1252 | Charset::Iso88591 => {
            if bytes.is_ascii() {
                // ASCII is the same in every charset here: no decoder needed.
                String::from_utf8_lossy(bytes).into_owned()
            } else {
                encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(bytes)
                    .0
                    .into_owned()
            }
        }
    }
}

/// The file's first row: the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub delimiter: Delimiter,
    /// The header's fields, decoded and trimmed.
    pub columns: Vec<String>,
    /// Where the first data row starts.
    pub data_offset: u64,
}

/// Reads the header row (after a BOM). `None` when the file holds no row at all.
pub fn read_head(
    path: &Path,
    charset: Charset,
    delimiter: Option<Delimiter>,
) -> io::Result<Option<Head>> {
    let bom = bom_length(path)?;
    let delimiter = match delimiter {
        Some(delimiter) => delimiter,
        None => {
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(bom))?;
            let mut head = Vec::with_capacity(HEAD_BYTES);
            file.take(HEAD_BYTES as u64).read_to_end(&mut head)?;
            detect_delimiter(&head)
        }
    };
    let mut rows = Rows::open(path, bom, delimiter, charset)?;
    Ok(rows.next_row()?.map(|(columns, data_offset)| Head {
        delimiter,
        columns: columns
            .iter()
            .map(|column| column.trim().to_owned())
            .collect(),
        data_offset,
    }))
}

/// The rows of the file from a byte offset: each with its fields decoded and the offset just
/// after it (where to resume once it is committed).
pub struct Rows {
    reader: csv::Reader<File>,
    base: u64,
    record: ByteRecord,
    charset: Charset,
}

impl Rows {
    pub fn open(
        path: &Path,
        offset: u64,
        delimiter: Delimiter,
        charset: Charset,
    ) -> io::Result<Rows> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        let reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter.byte())
            .buffer_capacity(SCAN_CHUNK)
            .from_reader(file);
        Ok(Rows {
            reader,
            base: offset,
            record: ByteRecord::new(),
            charset,
        })
    }

    /// The next row that is not blank (blank lines and rows of empty fields are passed over),
    /// with the offset just after it; `None` at the end of the file.
    pub fn next_row(&mut self) -> io::Result<Option<(Vec<String>, u64)>> {
        loop {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(io::Error::other)?;
            if !more {
                return Ok(None);
            }
            if self
                .record
                .iter()
                .all(|field| field.trim_ascii().is_empty())
            {
                continue;
            }
            let fields = self
                .record
                .iter()
                .map(|field| decode(field, self.charset))
                .collect();
            return Ok(Some((fields, self.base + self.reader.position().byte())));
        }
    }

    /// The offset just after the last row read (or passed over).
    pub fn offset(&self) -> u64 {
        self.base + self.reader.position().byte()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    #[test]
    fn utf8_is_detected_else_windows_1252() {
        let utf8 = file_with("\u{feff}name\nHélène,Zoë €\n".as_bytes());
        assert_eq!(detect_charset(utf8.path()).unwrap(), Charset::Utf8);
        let latin = file_with(b"name\nH\xe9l\xe8ne \x80\n");
        assert_eq!(detect_charset(latin.path()).unwrap(), Charset::Windows1252);
        assert_eq!(
            decode(b"H\xe9l\xe8ne \x80", Charset::Windows1252),
            "Hélène €"
        );
        // A character cut by the scan's chunk boundary is still valid UTF-8.
        let mut long = vec![b'a'; SCAN_CHUNK - 1];
        long.extend_from_slice("é".as_bytes());
        assert_eq!(
            detect_charset(file_with(&long).path()).unwrap(),
            Charset::Utf8
        );
    }

    #[test]
    fn the_delimiter_is_the_header_lines_most_frequent() {
        assert_eq!(
            detect_delimiter(b"name;phone;email\na,b,c,d,e"),
            Delimiter::Semicolon
        );
        assert_eq!(detect_delimiter(b"name,phone"), Delimiter::Comma);
        assert_eq!(detect_delimiter(b"name\tphone"), Delimiter::Tab);
        assert_eq!(detect_delimiter(b"\"a;b;c\",phone"), Delimiter::Comma);
        assert_eq!(detect_delimiter(b"name"), Delimiter::Comma);
    }

    #[test]
    fn rows_resume_from_the_offset_after_a_row() {
        let file = file_with(b"\xEF\xBB\xBFname;note\n\nAda;\"two\nlines\"\n;\nBob;x\n");
        let head = read_head(file.path(), Charset::Utf8, None)
            .unwrap()
            .unwrap();
        assert_eq!(head.delimiter, Delimiter::Semicolon);
        assert_eq!(head.columns, ["name", "note"]);
        let mut rows =
            Rows::open(file.path(), head.data_offset, head.delimiter, Charset::Utf8).unwrap();
        let (first, after_first) = rows.next_row().unwrap().unwrap();
        assert_eq!(first, ["Ada", "two\nlines"]);
        let mut resumed =
            Rows::open(file.path(), after_first, head.delimiter, Charset::Utf8).unwrap();
        assert_eq!(resumed.next_row().unwrap().unwrap().0, ["Bob", "x"]);
        assert_eq!(resumed.next_row().unwrap(), None);
    }
}
