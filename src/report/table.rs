//! Text tables for the terminal and Markdown: one format for both (pipe tables with padded
//! columns are valid Markdown and read well in a terminal).

/// A table of strings: a header line and rows of the same width.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// The leading columns that hold text (left-aligned); the others hold numbers.
    pub text_columns: usize,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new(headers: Vec<String>) -> Table {
        Table {
            headers,
            rows: Vec::new(),
            text_columns: 1,
        }
    }

    /// Append a row; it must have one cell per header.
    pub fn push(&mut self, row: Vec<String>) {
        assert_eq!(
            row.len(),
            self.headers.len(),
            "a row has one cell per column"
        );
        self.rows.push(row);
    }

    /// The table as a Markdown pipe table, columns padded to their widest cell, the text
    /// columns left-aligned and the others right-aligned.
    pub fn markdown(&self) -> String {
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain([self.headers[i].chars().count(), 3])
                .max()
                .unwrap_or(3)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i < self.text_columns {
                        format!("{c:<w$}", w = widths[i])
                    } else {
                        format!("{c:>w$}", w = widths[i])
                    }
                })
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&self.headers);
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                if i < self.text_columns {
                    format!(":{}", "-".repeat(w - 1))
                } else {
                    format!("{}:", "-".repeat(w - 1))
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_and_aligns_numbers_right() {
        let mut t = Table::new(vec!["split".into(), "refs".into()]);
        t.push(vec!["train".into(), "42,226".into()]);
        t.push(vec!["val".into(), "7".into()]);
        assert_eq!(
            t.markdown(),
            "| split |   refs |\n| :---- | -----: |\n| train | 42,226 |\n| val   |      7 |\n"
        );
    }
}
