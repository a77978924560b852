//! Preprocessing: bytes of one input file into rows the model can take.
//!
//! A [`Feeder`] is decided once per job from the model's inputs and the kind of data
//! ([`resolve_feeder`]); it then turns each file into a [`DecodedFile`]: one typed, row-major
//! [`Buffer`] per model input, the row numbers that survived, pass-through columns, and the
//! rows that failed with their reason. Decoding is CPU work and runs on worker threads, never
//! on tokio's.
//!
//! Tabular data maps onto a model in one of two ways:
//! - one 2-D input `[N, F]` fed by F columns, in `--features` order, or by default every column
//!   of the file except the `--passthrough` ones, in file order;
//! - one input per column, matched by name (`[N]` or `[N, 1]` inputs, as scikit-learn pipelines
//!   with named inputs export).

pub mod compress;
pub mod image;
pub mod tabular;

use arrow::array::ArrayRef;

use crate::engine::model::{Buffer, ElemType, ModelInfo, TensorSpec};
use crate::engine::plan::{Compression, DataKind, FileKind};
use crate::engine::settings::{PassColumn, Settings, TabularOptions};

pub use self::image::ImageSpec;

/// How rows reach the model's inputs.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Feeder {
    /// Tabular: one 2-D input fed by several columns.
    Matrix {
        input: TensorSpec,
        /// `--features`, or `None` for every column except the pass-through ones.
        columns: Option<Vec<String>>,
        #[serde(flatten)]
        table: TableSpec,
    },
    /// Tabular: every input fed by the column of the same name.
    Named {
        inputs: Vec<TensorSpec>,
        #[serde(flatten)]
        table: TableSpec,
    },
    /// Images into one input.
    Image { input: TensorSpec, spec: ImageSpec },
}

/// How tabular files are read, whatever feeds the model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableSpec {
    pub passthrough: Vec<PassColumn>,
    #[serde(flatten)]
    pub options: TabularOptions,
}

/// A file decoded into model rows.
#[derive(Debug, Default)]
pub struct DecodedFile {
    /// Rows that will be scored.
    pub rows: usize,
    /// For tabular files, the 0-based row number in the file of each scored row.
    pub row_numbers: Option<Vec<u64>>,
    /// One buffer per model input, `rows * row_len` values each.
    pub inputs: Vec<Buffer>,
    /// The shape of one row of each input (without the batch dimension).
    pub row_shapes: Vec<Vec<i64>>,
    /// Pass-through columns, one value per scored row.
    pub passthrough: Vec<ArrayRef>,
    /// Rows that could not be scored: (row number in the file, reason).
    pub failed_rows: Vec<(u64, String)>,
    /// What the job report should say about the file (a pandas index column left out, ...).
    pub notes: Vec<String>,
}

/// A piece of a split tabular file, as read ([`crate::engine::split`]).
pub enum TabularPiece {
    /// Row groups `groups` of a Parquet file: their fetched column chunks and the file's footer.
    RowGroups {
        chunks: crate::engine::split::FetchedChunks,
        footer: parquet::arrow::arrow_reader::ArrowReaderMetadata,
        groups: std::ops::Range<usize>,
        first_row: u64,
    },
    /// CSV: the file's header and the piece's records.
    Csv(crate::engine::split::CsvPiece),
}

/// Why a whole file could not be decoded. Deterministic: retrying does not help.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Why the model and the data do not fit together; the job cannot start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FeedError(pub String);

/// Decides how rows feed the model, from its inputs, the kind of data, and the settings.
pub fn resolve_feeder(info: &ModelInfo, kind: DataKind, settings: &Settings) -> Result<Feeder, FeedError> {
    let describe =
        || info.inputs.iter().map(|i| format!("{} {:?} {:?}", i.name, i.dtype, i.shape)).collect::<Vec<_>>().join(", ");
    match kind {
        DataKind::Image => {
            if settings.features.is_some() || !settings.passthrough.is_empty() {
                return Err(FeedError("--features and --passthrough apply to tabular inputs, not images".into()));
            }
            let [input] = info.inputs.as_slice() else {
                return Err(FeedError(format!(
                    "images feed a model with one input; this model has {} ({})",
                    info.inputs.len(),
                    describe()
                )));
            };
            let spec = ImageSpec::resolve(input, &settings.image)?;
            Ok(Feeder::Image { input: input.clone(), spec })
        }
        DataKind::Tabular => {
            let table = TableSpec { passthrough: settings.passthrough.clone(), options: settings.tabular.clone() };
            let numeric_or_str = |t: &TensorSpec| {
                if t.dtype == ElemType::U8 {
                    Err(FeedError(format!("input {:?} takes uint8, which tabular columns do not feed", t.name)))
                } else {
                    Ok(())
                }
            };
            if let [input] = info.inputs.as_slice()
                && input.shape.len() == 2
                && (input.shape[1] != 1 || settings.features.is_some())
            {
                numeric_or_str(input)?;
                if let (Some(f), Some(w)) = (&settings.features, input.row_len())
                    && f.len() != w
                {
                    return Err(FeedError(format!(
                        "--features lists {} columns but model input {:?} takes {w} per row ({:?})",
                        f.len(),
                        input.name,
                        input.shape
                    )));
                }
                return Ok(Feeder::Matrix { input: input.clone(), columns: settings.features.clone(), table });
            }
            if settings.features.is_some() {
                return Err(FeedError(format!(
                    "--features feeds a model with one 2-D input; this model's inputs ({}) are matched to columns by name",
                    describe()
                )));
            }
            for input in &info.inputs {
                numeric_or_str(input)?;
                let per_column = input.shape.len() == 1 || (input.shape.len() == 2 && input.shape[1] == 1);
                if !per_column {
                    return Err(FeedError(format!(
                        "model input {:?} has shape {:?}; tabular data feeds one 2-D input [N, F] or one [N] / [N, 1] input per column",
                        input.name, input.shape
                    )));
                }
                if settings.passthrough.iter().any(|p| p.name == input.name) {
                    return Err(FeedError(format!(
                        "column {:?} feeds model input {:?}; it cannot also be a --passthrough column",
                        input.name, input.name
                    )));
                }
            }
            Ok(Feeder::Named { inputs: info.inputs.clone(), table })
        }
    }
}

impl Feeder {
    /// Decodes one file's bytes. `name` is the file's path, for messages; its extension says
    /// how a text file is compressed (`.csv.gz`) and a `.tsv` file's delimiter.
    pub fn decode(&self, kind: FileKind, name: &str, bytes: bytes::Bytes) -> Result<DecodedFile, DecodeError> {
        match self {
            Feeder::Image { input, spec } => image::decode(spec, input, name, &bytes),
            Feeder::Matrix { table, .. } | Feeder::Named { table, .. } => {
                let bytes = match Compression::from_name(name) {
                    Compression::None => bytes,
                    c => compress::decompress(
                        c,
                        name,
                        &bytes,
                        compress::max_decompressed(table.options.max_record_bytes, bytes.len() as u64),
                    )?,
                };
                tabular::decode(self, kind, name, bytes)
            }
        }
    }

    /// How tabular files are read (`None` for images).
    pub fn table(&self) -> Option<&TableSpec> {
        match self {
            Feeder::Matrix { table, .. } | Feeder::Named { table, .. } => Some(table),
            Feeder::Image { .. } => None,
        }
    }

    /// Decodes a piece of a tabular file. `name` is the file's path, for messages; row numbers
    /// are the file's.
    pub fn decode_piece(&self, name: &str, piece: TabularPiece) -> Result<DecodedFile, DecodeError> {
        if matches!(self, Feeder::Image { .. }) {
            return Err(DecodeError(format!("{name}: a piece of a tabular file cannot feed an image model")));
        }
        let src = match piece {
            TabularPiece::RowGroups { chunks, footer, groups, first_row } => {
                tabular::Source::RowGroups { chunks, footer, groups: groups.collect(), first_row }
            }
            TabularPiece::Csv(p) => {
                let delimiter = self.table().map_or(b',', |t| t.options.delimiter_for(name));
                tabular::Source::Csv { bytes: p.bytes, first_row: p.first_row, line_offset: p.line_offset, delimiter }
            }
        };
        tabular::decode_source(self, name, src)
    }

    /// The columns decoding reads from a tabular file, so that only these are fetched from
    /// Parquet pieces; `None` when every column is needed (the features are "all the others").
    pub fn columns(&self) -> Option<Vec<String>> {
        match self {
            Feeder::Matrix { columns: Some(c), table, .. } => {
                Some(c.iter().cloned().chain(table.passthrough.iter().map(|p| p.name.clone())).collect())
            }
            Feeder::Matrix { columns: None, .. } | Feeder::Image { .. } => None,
            Feeder::Named { inputs, table } => Some(
                inputs.iter().map(|i| i.name.clone()).chain(table.passthrough.iter().map(|p| p.name.clone())).collect(),
            ),
        }
    }

    /// Default rows per model call for this kind of input.
    pub fn default_batch_size(&self) -> usize {
        match self {
            Feeder::Image { .. } => 32,
            _ => 1024,
        }
    }

    /// Whether output rows carry a `row` column (tabular inputs).
    pub fn has_row_numbers(&self) -> bool {
        !matches!(self, Feeder::Image { .. })
    }

    /// The pass-through columns.
    pub fn passthrough(&self) -> &[PassColumn] {
        match self {
            Feeder::Matrix { table, .. } | Feeder::Named { table, .. } => &table.passthrough,
            Feeder::Image { .. } => &[],
        }
    }

    /// The model inputs fed, in feeding order.
    pub fn inputs(&self) -> Vec<&TensorSpec> {
        match self {
            Feeder::Matrix { input, .. } | Feeder::Image { input, .. } => vec![input],
            Feeder::Named { inputs, .. } => inputs.iter().collect(),
        }
    }
}
