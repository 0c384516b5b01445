//! Decoding one scan's columns on two cores: two scans of the same files with the same
//! predicate, each with part of the columns, run as separate tasks and joined back row by row.
//!
//! A trace lookup returns a handful of rows, but each column it returns costs a whole Parquet
//! page to decompress (a 4 MiB page of prompts, 1 MiB of attribute values, 8k-row pages of
//! the rest), and DataFusion decodes all columns of a file range on one thread. Splitting the
//! columns between two scans puts the second core to work on the same rows. Both scans read the
//! same files, in the same groups, with the same predicate and batch size, so they produce the
//! same rows in the same order; the zip still checks that both sides end together.
//!
//! Only for point lookups: a large scan would read its predicate columns twice.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{internal_err, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::common::spawn_buffered;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::StreamExt;

/// Which input an output column comes from, and its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left(usize),
    Right(usize),
}

/// Joins two inputs that yield the same rows in the same order, each with some of the columns.
#[derive(Debug)]
pub struct ColumnZipExec {
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    columns: Vec<Side>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl ColumnZipExec {
    /// `columns` lists, for each output column in order, where it comes from.
    pub fn try_new(
        left: Arc<dyn ExecutionPlan>,
        right: Arc<dyn ExecutionPlan>,
        columns: Vec<Side>,
    ) -> Result<Self> {
        let partitions = left.output_partitioning().partition_count();
        if right.output_partitioning().partition_count() != partitions {
            return internal_err!("ColumnZipExec: its inputs are partitioned differently");
        }
        let (l, r) = (left.schema(), right.schema());
        let fields = columns
            .iter()
            .map(|side| match *side {
                Side::Left(i) => l.fields().get(i).cloned(),
                Side::Right(i) => r.fields().get(i).cloned(),
            })
            .collect::<Option<Vec<_>>>();
        let Some(fields) = fields else {
            return internal_err!("ColumnZipExec: a column index is out of range");
        };
        let schema = Arc::new(Schema::new(fields));
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(ColumnZipExec {
            left,
            right,
            columns,
            schema,
            properties,
        })
    }
}

impl DisplayAs for ColumnZipExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let (l, r) = (self.left.schema(), self.right.schema());
        let left: Vec<&str> = l.fields().iter().map(|f| f.name().as_str()).collect();
        let right: Vec<&str> = r.fields().iter().map(|f| f.name().as_str()).collect();
        write!(
            f,
            "ColumnZipExec: columns=[{}], left=[{}], right=[{}]",
            names.join(", "),
            left.join(", "),
            right.join(", ")
        )
    }
}

impl ExecutionPlan for ColumnZipExec {
    fn name(&self) -> &str {
        "ColumnZipExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.left, &self.right]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    /// Repartitioning one input (round robin, or splitting its files into other ranges than the
    /// other's) would pair rows that do not belong together.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false, false]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true, true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 2 {
            return internal_err!("ColumnZipExec takes two inputs");
        }
        let right = children.pop().expect("two children");
        let left = children.pop().expect("two children");
        Ok(Arc::new(ColumnZipExec::try_new(
            left,
            right,
            self.columns.clone(),
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        // Each side runs as its own task, so the two decode on different cores.
        let left = spawn_buffered(self.left.execute(partition, context.clone())?, 2);
        let right = spawn_buffered(self.right.execute(partition, context)?, 2);
        let zip = Zip {
            left: Pending::new(left),
            right: Pending::new(right),
            columns: self.columns.clone(),
            schema: self.schema.clone(),
        };
        let stream = futures::stream::unfold(zip, |mut zip| async move {
            zip.next_batch().await.map(|item| (item, zip))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

/// One input and the rows it has yielded but the zip has not yet used.
struct Pending {
    stream: SendableRecordBatchStream,
    batches: VecDeque<RecordBatch>,
    done: bool,
}

impl Pending {
    fn new(stream: SendableRecordBatchStream) -> Self {
        Pending {
            stream,
            batches: VecDeque::new(),
            done: false,
        }
    }

    /// Waits until a non-empty batch is at the front, or the input has ended.
    async fn fill(&mut self) -> Result<()> {
        while self.batches.is_empty() && !self.done {
            match self.stream.next().await {
                Some(batch) => {
                    let batch = batch?;
                    if batch.num_rows() > 0 {
                        self.batches.push_back(batch);
                    }
                }
                None => self.done = true,
            }
        }
        Ok(())
    }

    /// The first `rows` rows of the front batch, which must hold at least that many.
    fn take(&mut self, rows: usize) -> RecordBatch {
        let front = self.batches.pop_front().expect("a filled batch");
        if front.num_rows() > rows {
            self.batches
                .push_front(front.slice(rows, front.num_rows() - rows));
        }
        front.slice(0, rows)
    }
}

struct Zip {
    left: Pending,
    right: Pending,
    columns: Vec<Side>,
    schema: SchemaRef,
}

impl Zip {
    async fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        if let Err(e) = self.left.fill().await {
            return Some(Err(e));
        }
        if let Err(e) = self.right.fill().await {
            return Some(Err(e));
        }
        let rows = match (self.left.batches.front(), self.right.batches.front()) {
            (None, None) => return None,
            (Some(l), Some(r)) => l.num_rows().min(r.num_rows()),
            _ => {
                return Some(internal_err!(
                    "ColumnZipExec: one input ended before the other"
                ))
            }
        };
        let (l, r) = (self.left.take(rows), self.right.take(rows));
        let columns: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|side| match *side {
                Side::Left(i) => l.column(i).clone(),
                Side::Right(i) => r.column(i).clone(),
            })
            .collect();
        Some(RecordBatch::try_new(self.schema.clone(), columns).map_err(Into::into))
    }
}
