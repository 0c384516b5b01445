//! Partial aggregation over an interned group id, without a hash table.
//!
//! After [`super::group_keys`] has turned a categorical GROUP BY key into `plumb_group_key(col)`,
//! every row's key is a small dense integer. DataFusion's partial aggregate still hashes each
//! row's key and probes its group map to find the group's index; for the full-table queries
//! Plumb is asked most (tokens per service, errors per model) that lookup was a fifth of the CPU
//! (`perf`), and its accumulators another fifth, checking each row's validity and group through
//! generic code. Here the id itself is the group index, and `sum`, `count` and `avg` of plain
//! numbers add up in a tight loop per batch ([`Fast`]), or in one running total when every row of
//! the batch has the same key (Int64 sums and counts), as grouping by the column a file is sorted
//! by gives; other aggregates get DataFusion's own accumulators, fed the ids directly. The result
//! has exactly the rows and columns, states included, that DataFusion's partial aggregate would
//! give its final stage.
//!
//! Only a partial aggregate with one group key, that key an interned id, and accumulators that
//! take group indices, is replaced; everything else keeps DataFusion's own operator.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, UInt32Array, UInt64Array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::filter;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef, UInt32Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{ColumnarValue, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::StreamExt;

use super::group_keys::GROUP_KEY_FUNCTION;

/// The physical optimizer rule; see the module documentation.
#[derive(Debug, Default)]
pub(super) struct DenseGroupAggregate;

impl PhysicalOptimizerRule for DenseGroupAggregate {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(agg) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            Ok(match DenseIdAggregateExec::replacing(agg)? {
                Some(exec) => Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "plumb_dense_group_aggregate"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A partial aggregate whose group index is the row's interned id (null keys: index 0).
#[derive(Debug)]
pub struct DenseIdAggregateExec {
    input: Arc<dyn ExecutionPlan>,
    key: Arc<dyn PhysicalExpr>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl DenseIdAggregateExec {
    /// The replacement of `agg`, where it qualifies (see the module documentation).
    fn replacing(agg: &AggregateExec) -> Result<Option<Self>> {
        let group_by = agg.group_expr();
        let qualifies = *agg.mode() == AggregateMode::Partial
            && group_by.is_single()
            && group_by.expr().len() == 1
            && agg.limit_options().is_none()
            && agg.dynamic_expressions_produced().is_empty()
            && agg
                .aggr_expr()
                .iter()
                .all(|a| a.groups_accumulator_supported() && a.order_bys().is_empty());
        if !qualifies {
            return Ok(None);
        }
        let key = group_by.expr()[0].0.clone();
        let interned = key
            .downcast_ref::<ScalarFunctionExpr>()
            .is_some_and(|f| f.name() == GROUP_KEY_FUNCTION);
        if !interned {
            return Ok(None);
        }
        Ok(Some(Self::try_new(
            agg.input().clone(),
            key,
            agg.aggr_expr().to_vec(),
            agg.filter_expr().to_vec(),
            agg.schema(),
        )?))
    }

    fn try_new(
        input: Arc<dyn ExecutionPlan>,
        key: Arc<dyn PhysicalExpr>,
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
        schema: SchemaRef,
    ) -> Result<Self> {
        if filters.len() != aggregates.len() {
            return internal_err!("DenseIdAggregateExec: one filter slot per aggregate");
        }
        // Like DataFusion's partial aggregate: one output per input partition, at the end.
        let properties = Arc::new(PlanProperties::new(
            datafusion::physical_expr::EquivalenceProperties::new(schema.clone()),
            input.output_partitioning().clone(),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(DenseIdAggregateExec {
            input,
            key,
            aggregates,
            filters,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for DenseIdAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self.aggregates.iter().map(|a| a.name()).collect();
        write!(
            f,
            "DenseIdAggregateExec: mode=Partial, gby=[{}], aggr=[{}]",
            self.key,
            names.join(", ")
        )
    }
}

impl ExecutionPlan for DenseIdAggregateExec {
    fn name(&self) -> &str {
        "DenseIdAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut exprs = vec![self.key.clone()];
        for a in &self.aggregates {
            exprs.extend(a.expressions());
        }
        exprs.extend(self.filters.iter().flatten().cloned());
        for e in &exprs {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("DenseIdAggregateExec takes one input");
        }
        Ok(Arc::new(DenseIdAggregateExec::try_new(
            children.pop().expect("one child"),
            self.key.clone(),
            self.aggregates.clone(),
            self.filters.clone(),
            self.schema.clone(),
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context.clone())?;
        let reservation = MemoryConsumer::new(format!("DenseIdAggregateExec[{partition}]"))
            .register(context.memory_pool());
        let mut state = Aggregation {
            reservation,
            input_schema: self.input.schema(),
            key: self.key.clone(),
            aggregates: self.aggregates.clone(),
            filters: self.filters.clone(),
            schema: self.schema.clone(),
            metrics: BaselineMetrics::new(&self.metrics, partition),
        };
        let schema = self.schema.clone();
        let stream = futures::stream::once(async move { state.run(input).await });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// One partition's aggregation.
struct Aggregation {
    /// The query's memory limit covers the per-group totals too.
    reservation: MemoryReservation,
    input_schema: SchemaRef,
    key: Arc<dyn PhysicalExpr>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    schema: SchemaRef,
    metrics: BaselineMetrics,
}

impl Aggregation {
    async fn run(&mut self, mut input: SendableRecordBatchStream) -> Result<RecordBatch> {
        let mut accumulators = self
            .aggregates
            .iter()
            .zip(&self.filters)
            .map(|(a, filter)| Accumulator::new(a, filter.is_some(), &self.input_schema))
            .collect::<Result<Vec<_>>>()?;
        // Group index = id + 1; index 0 is the null key. `seen` marks the groups this partition
        // has rows of: the ids are shared by all partitions of the query.
        let mut seen: Vec<bool> = Vec::new();
        let mut groups: Vec<usize> = Vec::new();
        while let Some(batch) = input.next().await {
            let batch = batch?;
            let _timer = self.metrics.elapsed_compute().timer();
            let rows = batch.num_rows();
            let ids = self.key.evaluate(&batch)?.into_array(rows)?;
            let Some(ids) = ids.as_primitive_opt::<UInt32Type>() else {
                return internal_err!("DenseIdAggregateExec: the group key is not an id");
            };
            groups.clear();
            match ids.nulls() {
                None => groups.extend(ids.values().iter().map(|&id| id as usize + 1)),
                Some(_) => groups.extend(ids.iter().map(|id| id.map_or(0, |id| id as usize + 1))),
            }
            let most = groups.iter().copied().max().map_or(0, |g| g + 1);
            if most > seen.len() {
                seen.resize(most, false);
            }
            for &g in &groups {
                seen[g] = true;
            }
            let uniform = one_group(&groups);
            for (i, acc) in accumulators.iter_mut().enumerate() {
                let args = self.aggregates[i]
                    .expressions()
                    .iter()
                    .map(|e| e.evaluate(&batch))
                    .collect::<Result<Vec<ColumnarValue>>>()?;
                match acc {
                    Accumulator::Fast(fast) => fast.update(&args, &groups, uniform, seen.len())?,
                    Accumulator::DataFusion(acc) => {
                        let values = args
                            .into_iter()
                            .map(|v| v.into_array(rows))
                            .collect::<Result<Vec<ArrayRef>>>()?;
                        let only: Option<BooleanArray> = match &self.filters[i] {
                            Some(f) => {
                                Some(f.evaluate(&batch)?.into_array(rows)?.as_boolean().clone())
                            }
                            None => None,
                        };
                        acc.update_batch(&values, &groups, only.as_ref(), seen.len())?;
                    }
                }
            }
            let bytes = seen.len()
                + accumulators
                    .iter()
                    .map(|a| match a {
                        Accumulator::Fast(f) => f.size(),
                        Accumulator::DataFusion(a) => a.size(),
                    })
                    .sum::<usize>();
            self.reservation.try_resize(bytes)?;
        }
        let _timer = self.metrics.elapsed_compute().timer();
        let total = seen.len();
        let keys: ArrayRef = Arc::new(UInt32Array::from_iter(
            (0..total).map(|g| g.checked_sub(1).map(|id| id as u32)),
        ));
        let mut columns = vec![keys];
        for acc in &mut accumulators {
            let states = match acc {
                Accumulator::Fast(fast) => fast.state(total),
                Accumulator::DataFusion(acc) => acc.state(EmitTo::All)?,
            };
            for s in states {
                if s.len() != total {
                    return internal_err!("DenseIdAggregateExec: an accumulator's state is short");
                }
                columns.push(s);
            }
        }
        let seen = BooleanArray::from(seen);
        let columns = columns
            .iter()
            .map(|c| filter(c.as_ref(), &seen))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let out = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.metrics.record_output(out.num_rows());
        Ok(out)
    }
}

enum Accumulator {
    Fast(Fast),
    DataFusion(Box<dyn GroupsAccumulator>),
}

impl Accumulator {
    fn new(
        a: &AggregateFunctionExpr,
        filtered: bool,
        input: &datafusion::arrow::datatypes::Schema,
    ) -> Result<Self> {
        if !filtered {
            if let Some(fast) = Fast::for_aggregate(a, input)? {
                return Ok(Accumulator::Fast(fast));
            }
        }
        Ok(Accumulator::DataFusion(a.create_groups_accumulator()?))
    }
}

/// `sum`, `count` and `avg` of plain numbers, per group index, in the state layout of
/// DataFusion's own accumulators (checked against [`AggregateFunctionExpr::state_fields`]).
///
/// Each group has [`LANES`] slots per running total, and row `i` adds to slot `i % LANES`: files
/// are sorted by service and route, so neighbouring rows mostly share a group, and with one slot
/// each row's add would wait for the previous row's store to the same place.
#[derive(Debug)]
enum Fast {
    /// `sum` of Int64 (wrapping, as DataFusion's), null where no value was seen.
    SumInt64 { sums: Vec<i64>, values: Vec<u64> },
    /// `sum` of Float64, null where no value was seen.
    SumFloat64 { sums: Vec<f64>, values: Vec<u64> },
    /// `count` of one argument (`count(*)` is `count(1)`): its non-null values.
    Count { counts: Vec<u64> },
    /// `avg` of Float64: state (count, sum).
    AvgFloat64 { counts: Vec<u64>, sums: Vec<f64> },
}

/// Slots per group and running total (see [`Fast`]).
const LANES: usize = 4;

impl Fast {
    fn for_aggregate(
        a: &AggregateFunctionExpr,
        input: &datafusion::arrow::datatypes::Schema,
    ) -> Result<Option<Fast>> {
        let args = a.expressions();
        if a.is_distinct() || args.len() != 1 {
            return Ok(None);
        }
        let arg = args[0].data_type(input)?;
        let state: Vec<DataType> = a
            .state_fields()?
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        use DataType::{Float64, Int64, UInt64};
        Ok(match (a.fun().name(), &arg, state.as_slice()) {
            ("sum", Int64, [Int64]) => Some(Fast::SumInt64 {
                sums: vec![],
                values: vec![],
            }),
            ("sum", Float64, [Float64]) => Some(Fast::SumFloat64 {
                sums: vec![],
                values: vec![],
            }),
            ("count", _, [Int64]) => Some(Fast::Count { counts: vec![] }),
            ("avg", Float64, [UInt64, Float64]) => Some(Fast::AvgFloat64 {
                counts: vec![],
                sums: vec![],
            }),
            _ => None,
        })
    }

    /// Adds one batch, whose rows are in `groups`; `uniform` is their group when they all share
    /// one.
    fn update(
        &mut self,
        args: &[ColumnarValue],
        groups: &[usize],
        uniform: Option<usize>,
        total: usize,
    ) -> Result<()> {
        let arg = &args[0];
        let slots = total * LANES;
        match self {
            Fast::SumInt64 { sums, values } => {
                sums.resize(slots, 0);
                values.resize(slots, 0);
                let array = arg.to_array(groups.len())?;
                let a = array.as_primitive::<Int64Type>();
                if let Some(g) = uniform {
                    // Files are sorted by service, so a batch grouped by it is mostly one group:
                    // one running total and no per-row slot.
                    let slot = g * LANES;
                    sums[slot] = sums[slot].wrapping_add(masked_sum(a.values(), a.nulls()));
                    values[slot] += (a.len() - a.null_count()) as u64;
                    return Ok(());
                }
                each_value(groups, a.values(), a.nulls(), |slot, v, valid| {
                    // A null's slot may hold anything: masked, not branched on, since nulls
                    // (spans without tokens) come in no order a branch predictor could learn.
                    sums[slot] = sums[slot].wrapping_add(v & -(valid as i64));
                    values[slot] += valid as u64;
                });
            }
            // The same running totals: sum and count of the non-null values.
            Fast::SumFloat64 {
                sums,
                values: counts,
            }
            | Fast::AvgFloat64 { counts, sums } => {
                counts.resize(slots, 0);
                sums.resize(slots, 0.0);
                let array = arg.to_array(groups.len())?;
                let a = array.as_primitive::<Float64Type>();
                each_value(groups, a.values(), a.nulls(), |slot, v, valid| {
                    sums[slot] += if valid { v } else { 0.0 };
                    counts[slot] += valid as u64;
                });
            }
            Fast::Count { counts } => {
                counts.resize(slots, 0);
                let valid = match arg {
                    ColumnarValue::Scalar(s) if s.is_null() => return Ok(()),
                    ColumnarValue::Scalar(_) => None,
                    ColumnarValue::Array(a) => a.logical_nulls(),
                };
                if let Some(g) = uniform {
                    let nulls = valid.as_ref().map_or(0, NullBuffer::null_count);
                    counts[g * LANES] += (groups.len() - nulls) as u64;
                    return Ok(());
                }
                let ones = vec![(); groups.len()];
                each_value(groups, &ones, valid.as_ref(), |slot, (), valid| {
                    counts[slot] += valid as u64;
                });
            }
        }
        Ok(())
    }

    /// Bytes held.
    fn size(&self) -> usize {
        match self {
            Fast::SumInt64 { sums, values } => sums.capacity() * 8 + values.capacity() * 8,
            Fast::SumFloat64 {
                sums,
                values: counts,
            }
            | Fast::AvgFloat64 { counts, sums } => counts.capacity() * 8 + sums.capacity() * 8,
            Fast::Count { counts } => counts.capacity() * 8,
        }
    }

    /// The state columns for group indices `0..total`.
    fn state(&mut self, total: usize) -> Vec<ArrayRef> {
        fn per_group<T: Copy + Default>(
            slots: &mut Vec<T>,
            total: usize,
            add: impl Fn(T, T) -> T,
        ) -> Vec<T> {
            slots.resize(total * LANES, T::default());
            let out = slots
                .chunks_exact(LANES)
                .map(|lanes| lanes.iter().copied().fold(T::default(), &add))
                .collect();
            slots.clear();
            out
        }
        let present = |values: Vec<u64>| NullBuffer::from_iter(values.iter().map(|&n| n > 0));
        match self {
            Fast::SumInt64 { sums, values } => {
                let sums = per_group(sums, total, i64::wrapping_add);
                let nulls = present(per_group(values, total, |a, b| a + b));
                vec![Arc::new(Int64Array::new(sums.into(), Some(nulls)))]
            }
            Fast::SumFloat64 { sums, values } => {
                let sums = per_group(sums, total, |a, b| a + b);
                let nulls = present(per_group(values, total, |a, b| a + b));
                vec![Arc::new(Float64Array::new(sums.into(), Some(nulls)))]
            }
            Fast::Count { counts } => {
                let counts = per_group(counts, total, |a, b| a + b);
                vec![Arc::new(Int64Array::from_iter_values(
                    counts.into_iter().map(|n| n as i64),
                ))]
            }
            Fast::AvgFloat64 { counts, sums } => vec![
                Arc::new(UInt64Array::from(per_group(counts, total, |a, b| a + b))),
                Arc::new(Float64Array::from(per_group(sums, total, |a, b| a + b))),
            ],
        }
    }
}

/// The group of every row, if they are all in one.
fn one_group(groups: &[usize]) -> Option<usize> {
    let (&first, rest) = groups.split_first()?;
    rest.iter().all(|&g| g == first).then_some(first)
}

/// The wrapping sum of the values that are not null, 64 rows per word of the validity bitmap so
/// that the loop has no per-row branch or bit lookup.
fn masked_sum(values: &[i64], nulls: Option<&NullBuffer>) -> i64 {
    let Some(nulls) = nulls else {
        return values.iter().fold(0, |s, &v| s.wrapping_add(v));
    };
    let bits = nulls.inner().bit_chunks();
    let add_masked = |sum: i64, chunk: &[i64], mask: u64| {
        chunk.iter().enumerate().fold(sum, |s, (j, &v)| {
            s.wrapping_add(v & -(((mask >> j) & 1) as i64))
        })
    };
    let full = values.chunks_exact(64);
    let tail = full.remainder();
    let sum = full
        .zip(bits.iter())
        .fold(0, |s, (chunk, mask)| add_masked(s, chunk, mask));
    add_masked(sum, tail, bits.remainder_bits())
}

/// Calls `add(slot, value, valid)` for every row, in row order, where `slot` is the row's group
/// times [`LANES`] plus its lane; `value` is anything where `valid` is false.
fn each_value<T: Copy>(
    groups: &[usize],
    values: &[T],
    nulls: Option<&NullBuffer>,
    mut add: impl FnMut(usize, T, bool),
) {
    let slot = |i: usize, g: usize| g * LANES + (i % LANES);
    match nulls {
        None => {
            for (i, (&g, &v)) in groups.iter().zip(values).enumerate() {
                add(slot(i, g), v, true);
            }
        }
        Some(nulls) => {
            let rows = groups.iter().zip(values).zip(nulls.inner().iter());
            for (i, ((&g, &v), valid)) in rows.enumerate() {
                add(slot(i, g), v, valid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens with nulls at irregular rows, as an array that starts mid-bitmap (a slice).
    fn tokens(rows: usize) -> Int64Array {
        let all: Int64Array = (0..rows + 3)
            .map(|i| (i % 3 != 0 && i % 7 != 2).then_some(i as i64 * 1_000 - 5))
            .collect();
        all.slice(3, rows)
    }

    #[test]
    fn masked_sum_adds_exactly_the_values_that_are_not_null() {
        for rows in [0, 1, 63, 64, 65, 200] {
            let a = tokens(rows);
            let want: i64 = a.iter().flatten().sum();
            assert_eq!(masked_sum(a.values(), a.nulls()), want, "{rows} rows");
            let no_nulls = Int64Array::from(a.values().to_vec());
            let want: i64 = a.values().iter().sum();
            assert_eq!(masked_sum(no_nulls.values(), None), want, "{rows} rows");
        }
    }

    #[test]
    fn a_batch_of_one_group_adds_up_as_row_by_row() {
        let a = tokens(200);
        let args = [ColumnarValue::Array(Arc::new(a.clone()))];
        let groups = vec![2; a.len()];
        let kinds: [fn() -> Fast; 2] = [
            || Fast::SumInt64 {
                sums: vec![],
                values: vec![],
            },
            || Fast::Count { counts: vec![] },
        ];
        for fresh in kinds {
            let (mut whole, mut by_row) = (fresh(), fresh());
            whole.update(&args, &groups, Some(2), 3).unwrap();
            by_row.update(&args, &groups, None, 3).unwrap();
            let (whole, by_row) = (whole.state(3), by_row.state(3));
            assert_eq!(whole.len(), by_row.len());
            for (w, r) in whole.iter().zip(&by_row) {
                assert_eq!(w.to_data(), r.to_data());
            }
        }
    }

    #[test]
    fn one_group_only_when_every_row_shares_it() {
        assert_eq!(one_group(&[]), None);
        assert_eq!(one_group(&[4, 4, 4]), Some(4));
        assert_eq!(one_group(&[4, 4, 1]), None);
    }
}
