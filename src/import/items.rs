//! What to import: the files under a folder, or the lines of a JSONL export, as [`Item`]s.
//! Reading a source never fails as a whole past opening it: a bad entry or line becomes a
//! failed item with its reason, and the rest goes on.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::Failure;

/// One file to import.
pub struct Item {
    /// How the report names it: the relative path, or `<file>:<line>`.
    pub label: String,
    pub filename: String,
    /// `None`: detected from the name and the first bytes.
    pub content_type: Option<String>,
    pub body: Body,
    /// What identifies the source across runs (`source_path`, or `source_file` with
    /// `source_id` or `source_line`); kept in the asset's metadata.
    pub source: BTreeMap<String, String>,
    /// Further metadata (a JSONL line's `metadata`, `source_line`, `source_file`).
    pub metadata: BTreeMap<String, String>,
}

pub enum Body {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// The regular files under `root`, sorted by path: symbolic links are neither followed nor
/// imported (`ignored` counts them and other non-regular entries), and hidden entries (a
/// name starting with `.`, e.g. `.git`, `.DS_Store`) are skipped with everything under them.
pub fn dir(root: &Path) -> (Vec<Result<Item, Failure>>, u64) {
    let mut items = Vec::new();
    let mut ignored = 0;
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().as_encoded_bytes().starts_with(b"."));
    for entry in walk {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let label = e.path().map_or_else(|| root.display().to_string(), |p| relative(root, p));
                items.push(Err(Failure { source: label, reason: format!("cannot read: {e}") }));
                continue;
            }
        };
        if entry.file_type().is_dir() {
            continue;
        }
        if !entry.file_type().is_file() {
            ignored += 1;
            continue;
        }
        let label = relative(root, entry.path());
        let Some(rel) = entry.path().strip_prefix(root).ok().and_then(Path::to_str) else {
            items.push(Err(Failure { source: label, reason: "the path is not UTF-8".into() }));
            continue;
        };
        let rel = rel.replace(std::path::MAIN_SEPARATOR, "/");
        items.push(Ok(Item {
            label,
            filename: rel.clone(),
            content_type: None,
            body: Body::File(entry.path().to_owned()),
            source: BTreeMap::from([("source_path".into(), rel)]),
            metadata: BTreeMap::new(),
        }));
    }
    (items, ignored)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned()
}

/// Standard alphabet, with or without `=` padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The lines of a JSONL export, read one at a time (a line's bytes are decoded only when
/// its turn comes). Blank lines are skipped.
pub struct Jsonl<R> {
    lines: std::io::Lines<R>,
    line_no: u64,
    /// The export's file name, recorded as `source_file`.
    file_name: String,
    /// `path` fields are relative to this folder.
    dir: PathBuf,
}

impl Jsonl<std::io::BufReader<std::fs::File>> {
    pub fn open(file: &Path) -> std::io::Result<Self> {
        let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
        let file_name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into());
        let dir = file.parent().map_or_else(|| PathBuf::from("."), Path::to_owned);
        Ok(Self { lines: reader.lines(), line_no: 0, file_name, dir })
    }
}

impl<R: BufRead> Iterator for Jsonl<R> {
    type Item = Result<Item, Failure>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.lines.next()?;
            self.line_no += 1;
            let label = format!("{}:{}", self.file_name, self.line_no);
            let line = match line {
                Ok(l) => l,
                Err(e) => return Some(Err(Failure { source: label, reason: format!("line {}: {e}", self.line_no) })),
            };
            if line.trim().is_empty() {
                continue;
            }
            return Some(
                self.parse(&line, label.clone())
                    .map_err(|reason| Failure { source: label, reason: format!("line {}: {reason}", self.line_no) }),
            );
        }
    }
}

/// One line of a JSONL export; unknown fields are refused (a misspelt `data_base64` must
/// not import an empty file).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    filename: String,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    data_base64: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

impl<R> Jsonl<R> {
    fn parse(&self, text: &str, label: String) -> Result<Item, String> {
        let line: Line = serde_json::from_str(text).map_err(|e| format!("not a valid import line: {e}"))?;
        let body = match (line.data_base64, line.path) {
            (Some(data), None) => {
                // psql's encode(.., 'base64') breaks lines every 76 characters: whitespace is
                // never part of base64, so it is dropped wherever it is.
                let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                Body::Bytes(BASE64.decode(compact).map_err(|e| format!("data_base64: not standard base64 ({e})"))?)
            }
            (None, Some(path)) => Body::File(self.dir.join(checked_relative(&path)?)),
            (Some(_), Some(_)) => return Err("give data_base64 or path, not both".into()),
            (None, None) => return Err("data_base64 or path is required".into()),
        };
        let mut metadata = BTreeMap::new();
        for (k, v) in line.metadata.unwrap_or_default() {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            metadata.insert(k, text);
        }
        let mut source = BTreeMap::from([("source_file".to_owned(), self.file_name.clone())]);
        match line.id {
            None | Some(serde_json::Value::Null) => {
                source.insert("source_line".into(), self.line_no.to_string());
            }
            Some(serde_json::Value::String(s)) => {
                source.insert("source_id".into(), s);
            }
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                source.insert("source_id".into(), v.to_string());
            }
            Some(_) => return Err("id: must be a string, a number or a boolean".into()),
        }
        metadata.insert("source_line".into(), self.line_no.to_string());
        Ok(Item { label, filename: line.filename, content_type: line.content_type, body, source, metadata })
    }
}

/// A `path` stays inside the export's folder: relative, without `..`.
fn checked_relative(path: &str) -> Result<&Path, String> {
    let p = Path::new(path);
    if path.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(format!("path {path:?}: must be relative to the export's folder, without `..`"));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Result<Item, Failure>> {
        Jsonl {
            lines: std::io::Cursor::new(text.to_owned()).lines(),
            line_no: 0,
            file_name: "x.jsonl".into(),
            dir: "/exports".into(),
        }
        .collect()
    }

    fn bytes(item: &Item) -> &[u8] {
        match &item.body {
            Body::Bytes(b) => b,
            Body::File(_) => panic!("a file"),
        }
    }

    #[test]
    fn base64_with_or_without_padding_and_with_psql_line_breaks() {
        let items = parse(concat!(
            r#"{"filename":"a","content_type":"text/plain","data_base64":"aGk="}"#,
            "\n\n",
            r#"{"filename":"b","content_type":"text/plain","data_base64":"aGk"}"#,
            "\n",
            r#"{"filename":"c","content_type":"text/plain","data_base64":"aGVs\nbG8=\n","id":7}"#,
        ));
        let items: Vec<Item> = items.into_iter().map(|r| r.ok().unwrap()).collect();
        assert_eq!(bytes(&items[0]), b"hi");
        assert_eq!(bytes(&items[1]), b"hi");
        assert_eq!(bytes(&items[2]), b"hello");
        assert_eq!(items[1].source["source_line"], "3", "blank lines still count");
        assert_eq!(items[2].source["source_id"], "7");
        assert!(!items[2].source.contains_key("source_line"), "an id identifies the line");
        assert_eq!(items[2].metadata["source_line"], "4");
    }

    #[test]
    fn bad_lines_are_failures_with_their_line_number() {
        let items = parse(concat!(
            "{not json\n",
            r#"{"filename":"a","data_b64":"aGk="}"#,
            "\n",
            r#"{"filename":"a","data_base64":"@@@"}"#,
            "\n",
            r#"{"filename":"a","path":"../etc/passwd"}"#,
            "\n",
            r#"{"filename":"a","path":"/etc/passwd"}"#,
            "\n",
            r#"{"filename":"a"}"#,
            "\n",
            r#"{"filename":"a","data_base64":"aGk=","id":[1]}"#,
        ));
        for (i, item) in items.iter().enumerate() {
            let f = item.as_ref().err().unwrap_or_else(|| panic!("line {} accepted", i + 1));
            assert!(f.reason.starts_with(&format!("line {}: ", i + 1)), "{}", f.reason);
        }
        assert_eq!(items.len(), 7);
    }

    #[test]
    fn metadata_values_that_are_not_strings_are_kept_as_json() {
        let items = parse(r#"{"filename":"a","path":"sub/a.bin","metadata":{"n":1,"s":"x","o":{"k":[true]}}}"#);
        let item = items.into_iter().next().unwrap().ok().unwrap();
        assert_eq!(item.metadata["n"], "1");
        assert_eq!(item.metadata["s"], "x");
        assert_eq!(item.metadata["o"], r#"{"k":[true]}"#);
        assert!(matches!(&item.body, Body::File(p) if p == Path::new("/exports/sub/a.bin")));
    }
}
