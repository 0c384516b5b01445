//! Bytes on disk of a writer setting, on the same rows: re-encodes the span files of a data dir
//! once with Plumb's writer settings (the baseline) and once with the settings changed as asked,
//! and prints bytes per row of both, in total and per column. A size change can be measured this
//! way without running ingest again, whose flushes would cut the rows into other files.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use comfy_table::Table as TextTable;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use plumb_store::persister::writer_properties;
use plumb_store::Table;

#[derive(Parser)]
struct Args {
    /// A Plumb data dir (its `objects/spans/...` files are read, never changed).
    data_dir: PathBuf,
    /// A column (dotted leaf path) to write without a dictionary. Repeatable.
    #[arg(long = "no-dictionary")]
    no_dictionary: Vec<String>,
    /// A column (dotted leaf path) to write with a dictionary. Repeatable.
    #[arg(long)]
    dictionary: Vec<String>,
    /// `COLUMN=KIB`: the data page size limit of a column. Repeatable.
    #[arg(long = "page-kib")]
    page_kib: Vec<String>,
    /// Columns to list, largest first.
    #[arg(long, default_value_t = 16)]
    top: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut files = Vec::new();
    parquet_files(&args.data_dir.join("objects").join("spans"), &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!("no span files under {}", args.data_dir.display());
    }
    let mut base = Sizes::default();
    let mut variant = Sizes::default();
    for f in &files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(f)?)?
            .with_batch_size(8192)
            .build()?;
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let props = writer_properties(Table::Spans, rows);
        base.add(&batches, rows, props.clone())?;
        variant.add(&batches, rows, changed(props, &args)?)?;
    }
    println!(
        "{} files, {} rows: {:.2} B/row with Plumb's settings, {:.2} B/row changed, ratio {:.4}",
        files.len(),
        base.rows,
        base.per_row(base.file_bytes),
        variant.per_row(variant.file_bytes),
        variant.file_bytes as f64 / base.file_bytes as f64
    );
    let mut columns: Vec<_> = base.columns.iter().collect();
    columns.sort_by_key(|(_, b)| std::cmp::Reverse(**b));
    let mut table = TextTable::new();
    table.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    table.set_header(["column", "B/row (Plumb)", "B/row (changed)"]);
    for (name, bytes) in columns.into_iter().take(args.top) {
        let changed = variant.columns.get(name).copied().unwrap_or(0);
        table.add_row([
            name.clone(),
            format!("{:.2}", base.per_row(*bytes)),
            format!("{:.2}", variant.per_row(changed)),
        ]);
    }
    println!("{table}");
    Ok(())
}

fn changed(props: WriterProperties, args: &Args) -> Result<WriterProperties> {
    let mut b = props.into_builder();
    for c in &args.no_dictionary {
        b = b.set_column_dictionary_enabled(column(c), false);
    }
    for c in &args.dictionary {
        b = b.set_column_dictionary_enabled(column(c), true);
    }
    for spec in &args.page_kib {
        let (c, kib) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--page-kib wants COLUMN=KIB, got {spec}"))?;
        let kib: usize = kib.parse().with_context(|| format!("--page-kib {spec}"))?;
        b = b.set_column_data_page_size_limit(column(c), kib << 10);
    }
    Ok(b.build())
}

fn column(dotted: &str) -> ColumnPath {
    ColumnPath::new(dotted.split('.').map(str::to_string).collect())
}

#[derive(Default)]
struct Sizes {
    rows: usize,
    file_bytes: usize,
    columns: BTreeMap<String, i64>,
}

impl Sizes {
    fn add(
        &mut self,
        batches: &[arrow::record_batch::RecordBatch],
        rows: usize,
        props: WriterProperties,
    ) -> Result<()> {
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, Table::Spans.file_schema(), Some(props))?;
        for b in batches {
            w.write(b)?;
        }
        let meta = w.close()?;
        for rg in meta.row_groups() {
            for c in rg.columns() {
                *self.columns.entry(c.column_path().string()).or_default() += c.compressed_size();
            }
        }
        self.rows += rows;
        self.file_bytes += out.len();
        Ok(())
    }

    fn per_row(&self, bytes: impl TryInto<i64>) -> f64 {
        bytes.try_into().unwrap_or(0) as f64 / self.rows as f64
    }
}

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.is_dir() {
            parquet_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    Ok(())
}
