//! Statements that write many rows at once: `INSERT … VALUES (…), (…)` and
//! `UPDATE … FROM (VALUES …)`. Writing row by row costs more than the
//! per-statement overhead: the `CHECK (status IN (…))` constraints build
//! their list as a temporary table once per statement execution, which made
//! one-row inserts about four times slower than rows written in a chunk.
//! Chunks are powers of two up to a maximum, so each family has only a few
//! statement texts, each built once and kept prepared in the connection's
//! statement cache.

use std::sync::OnceLock;

/// The statement texts of one multi-row statement, one per chunk size.
pub struct Family {
    max: usize,
    build: fn(usize) -> String,
    texts: OnceLock<Vec<String>>,
}

impl Family {
    /// A family whose largest chunk is `max` rows (a power of two);
    /// `build(n)` writes the statement for `n` rows.
    pub const fn new(max: usize, build: fn(usize) -> String) -> Family {
        Family {
            max,
            build,
            texts: OnceLock::new(),
        }
    }

    /// How many of `waiting` rows (at least one) the next statement writes.
    pub fn chunk(&self, waiting: usize) -> usize {
        if waiting >= self.max {
            self.max
        } else {
            1 << waiting.ilog2()
        }
    }

    /// The statement for `n` rows, `n` a value [`Family::chunk`] returned.
    pub fn sql(&self, n: usize) -> &str {
        let texts = self.texts.get_or_init(|| {
            (0..=self.max.ilog2())
                .map(|k| (self.build)(1 << k))
                .collect()
        });
        &texts[n.ilog2() as usize]
    }

    /// Splits `items` into the chunks the statements of this family take.
    pub fn chunks<'a, T>(&self, mut items: &'a [T]) -> Vec<&'a [T]> {
        let mut out = Vec::new();
        while !items.is_empty() {
            let (head, rest) = items.split_at(self.chunk(items.len()));
            out.push(head);
            items = rest;
        }
        out
    }
}

/// `(?a, ?b, …), (…)`: `rows` tuples of `cols` numbered placeholders, the
/// first numbered `first`. Numbered, because a statement that also uses
/// fixed parameters such as `?1` would make anonymous `?` collide.
pub fn values(rows: usize, cols: usize, first: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('?');
            out.push_str(&(first + r * cols + c).to_string());
        }
        out.push(')');
    }
    out
}

/// `?a, ?b, …`: `n` numbered placeholders from `first`, for an `IN` list:
/// an `UPDATE … WHERE id IN (…)` that sets the same values on every listed
/// row, without the temporary table `UPDATE … FROM (VALUES …)` fills first.
pub fn list(n: usize, first: usize) -> String {
    let mut out = String::with_capacity(n * 6);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('?');
        out.push_str(&(first + i).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_up_to_the_maximum() {
        let f = Family::new(8, |n| n.to_string());
        let sizes: Vec<usize> = f.chunks(&[0u8; 21]).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![8, 8, 4, 1]);
        assert_eq!(f.sql(4), "4");
        assert_eq!(f.sql(1), "1");
        assert!(f.chunks::<u8>(&[]).is_empty());
    }

    #[test]
    fn values_numbers_every_placeholder() {
        assert_eq!(values(2, 2, 3), "(?3, ?4), (?5, ?6)");
        assert_eq!(list(3, 2), "?2, ?3, ?4");
    }
}
