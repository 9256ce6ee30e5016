//! Data-quality findings: what happened to a record or a value, with its source line (stored
//! in `data_quality_issue` by [`super::load::insert_issues`]).

/// What happened to a record or value, as stored in `data_quality_issue.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueAction {
    RowQuarantined,
    ValueNulled,
    ValueFlagged,
    /// A line that is not a record (a repeated header line) was skipped.
    LineSkipped,
    /// A line was stored after a layout repair (trailing delimiters, a stray BOM).
    LineRepaired,
}

impl IssueAction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::RowQuarantined => "row_quarantined",
            Self::ValueNulled => "value_nulled",
            Self::ValueFlagged => "value_flagged",
            Self::LineSkipped => "line_skipped",
            Self::LineRepaired => "line_repaired",
        }
    }
}

/// One data-quality finding with its source line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataIssue {
    pub line: i64,
    pub column: Option<String>,
    pub action: IssueAction,
    pub reason: String,
    pub value: Option<String>,
    pub raw: Option<String>,
}
