//! [`ConfigError`]: one problem in a config file, with where it is and how to fix it.

use std::fmt;

use serde_path_to_error::{Path, Segment};
use serde_saphyr::{DefaultMessageFormatter, Error as YamlError, MessageFormatter};

/// One problem in a config file.
///
/// Displays as `file:line:column: field: message`, e.g.
/// `node-a.yaml:12:5: nodes[1].pod_cidr: 10.0.1.0/24 overlaps node.pod_cidr 10.0.1.0/24 (line 4): give every node its own PodCIDR`.
/// Parts that are unknown (no line for an unreadable file, no field for a
/// syntax error at the top level) are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (as given to [`crate::Config::load`]) or source name.
    pub source: String,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the problem has a place in the file.
    pub column: Option<usize>,
    /// Path of the field, e.g. `nodes[1].pod_cidr`; empty for whole-file problems.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Field path as the user wrote it: `nodes[1].pod_cidr`. `Spanned<T>` shows up in
/// serde's path as a struct with a `value` field; those segments are dropped.
pub(crate) fn field_path<'a>(segments: impl IntoIterator<Item = &'a Segment>) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if key == "value" => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn join_field(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

/// An unknown key: the path ends with the key itself; name it as written.
fn unknown_field(segments: &[Segment], field: &str, expected: &[&str]) -> (String, String) {
    let parent = field_path(&segments[..segments.len().saturating_sub(1)]);
    let message = if expected.is_empty() {
        format!("unknown field `{field}`: this section takes no fields")
    } else {
        format!(
            "unknown field `{field}`: the fields allowed here are {}; check the spelling and the indentation",
            expected.join(", ")
        )
    };
    (join_field(&parent, field), message)
}

/// A missing key: the reader notices at the end of the section, which is where it
/// points.
fn missing_field(segments: &[Segment], field: &str) -> (String, String) {
    let parent = field_path(segments);
    let section = if parent.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in {parent}")
    };
    (
        join_field(&parent, field),
        format!("missing required field `{field}` {section}: add it (see config/README.md)"),
    )
}

/// A key given twice in one section.
fn duplicate_key(segments: &[Segment], key: Option<&str>) -> (String, String) {
    let parent = field_path(segments);
    match key {
        Some(key) => (
            join_field(&parent, key),
            format!("`{key}` is given twice in the same section: keep only one"),
        ),
        None => (
            parent,
            "a key is given twice in the same section: keep only one".to_owned(),
        ),
    }
}

/// Turns an error raised while reading the YAML into the typed tree (syntax, unknown
/// or missing fields, wrong types) into a [`ConfigError`].
pub(crate) fn from_yaml(source: &str, path: Option<&Path>, err: &YamlError) -> ConfigError {
    let err = err.without_snippet();
    let location = err.location();
    let segments: Vec<Segment> = path
        .map(|p| p.iter().cloned().collect())
        .unwrap_or_default();
    let (field, message) = match err {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => unknown_field(&segments, field, expected),
        YamlError::SerdeMissingField { field, .. } => missing_field(&segments, field),
        YamlError::DuplicateMappingKey { key, .. } => duplicate_key(&segments, key.as_deref()),
        YamlError::InvalidScalar { ty, .. } => {
            let expected = if ty.starts_with('u') {
                "a whole number (0 or more)".to_owned()
            } else {
                format!("a value of type {ty}")
            };
            (
                field_path(&segments),
                format!("expected {expected}: write it without quotes, units or sign"),
            )
        }
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => (
            field_path(&segments),
            format!("expected {expected}, found {unexpected}"),
        ),
        YamlError::Unexpected { expected, .. } if segments.is_empty() => (
            String::new(),
            format!(
                "expected {expected} at the top of the file: a config is a mapping of sections (node:, cluster_cidr:, ...)"
            ),
        ),
        YamlError::Unexpected { expected, .. } => {
            let want = match *expected {
                "string scalar" => "a single value",
                "mapping start" => "a section (indented `key: value` lines)",
                "sequence start" => "a list (`- item` lines, or [a, b])",
                other => other,
            };
            (
                field_path(&segments),
                format!("expected {want} here; see config/README.md for this field's form"),
            )
        }
        other => (
            field_path(&segments),
            format!(
                "YAML syntax error: {}; check the indentation (spaces only) and quoting",
                DefaultMessageFormatter.format_message(other)
            ),
        ),
    };
    ConfigError {
        source: source.to_owned(),
        line: location.map(|l| to_usize(l.line())),
        column: location.map(|l| to_usize(l.column())),
        field,
        message,
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::ConfigError;

    #[test]
    fn display_leaves_out_unknown_parts() {
        let mut e = ConfigError {
            source: "node-a.yaml".into(),
            line: Some(12),
            column: Some(5),
            field: "nodes[1].pod_cidr".into(),
            message: "10.0.1.0/24 overlaps node.pod_cidr 10.0.1.0/24 (line 4): give every node its own PodCIDR".into(),
        };
        assert_eq!(e.to_string(), "node-a.yaml:12:5: nodes[1].pod_cidr: 10.0.1.0/24 overlaps node.pod_cidr 10.0.1.0/24 (line 4): give every node its own PodCIDR");
        e.line = None;
        e.column = None;
        e.field.clear();
        e.message = "cannot read the config file: denied".into();
        assert_eq!(
            e.to_string(),
            "node-a.yaml: cannot read the config file: denied"
        );
    }
}
