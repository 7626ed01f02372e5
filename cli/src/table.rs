//! Aligned tables, as kubectl prints them: columns padded to their widest
//! cell, separated by three spaces, no trailing blanks.

use std::io::Write;

pub use osm_local::table::render;

/// Writes the table.
pub fn write<R: AsRef<[String]>>(
    out: &mut dyn Write,
    header: &[&str],
    rows: &[R],
) -> std::io::Result<()> {
    out.write_all(render(header, rows).as_bytes())
}
