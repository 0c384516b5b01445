//! Dense ids for categorical GROUP BY keys.
//!
//! Grouping by model, service or route is what most questions about a day of spans do.
//! DataFusion 55 groups a string column by hashing and comparing every row's string in its group
//! map, and a dictionary column through its generic row format, slower still. This rule groups
//! such columns by a dense `UInt32` id instead: [`Intern`] maps each row to an id (for a
//! dictionary, one lookup per dictionary value and batch, then a gather of the keys; for string
//! views, a per-batch cache keyed by the 16-byte view), DataFusion groups the ids with its
//! primitive group map, and [`Restore`] turns the few result rows back into values of the
//! column's type. The rewrite is invisible to the query: same columns, names, types and rows.
//!
//! Only the columns Plumb stores as categories ([`CATEGORICAL_COLUMNS`]) are rewritten: the
//! interner keeps every distinct value outside the query's memory pool, which is fine for a few
//! thousand models or routes and not for trace ids.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, UInt32Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, UInt32Type};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{exec_err, Column, Result};
use datafusion::logical_expr::{
    Aggregate, ColumnarValue, Expr, LogicalPlan, Projection, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::schema::CATEGORICAL_COLUMNS;

/// The name of the function that maps a row's key to its id; `dense_aggregate` looks for it.
pub(super) const GROUP_KEY_FUNCTION: &str = "plumb_group_key";

/// The optimizer rule; see the module documentation.
#[derive(Debug, Default)]
pub(super) struct InternGroupKeys;

impl OptimizerRule for InternGroupKeys {
    fn name(&self) -> &str {
        "plumb_intern_group_keys"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = plan else {
            return Ok(Transformed::no(plan));
        };
        let keys = categorical_keys(&agg);
        if keys.iter().all(Option::is_none) {
            return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
        }
        let interner = Arc::new(Interner::default());
        let intern = ScalarUDF::new_from_impl(Intern::new(interner.clone()));
        let group_expr = agg
            .group_expr
            .iter()
            .zip(&keys)
            .enumerate()
            .map(|(i, (e, key))| match key {
                Some(_) => intern
                    .call(vec![e.clone()])
                    .alias(format!("__plumb_group_key_{i}")),
                None => e.clone(),
            })
            .collect();
        let ids = Aggregate::try_new(agg.input.clone(), group_expr, agg.aggr_expr.clone())?;
        let ids_schema = ids.schema.clone();
        let exprs = agg
            .schema
            .iter()
            .enumerate()
            .map(|(i, (qualifier, field))| {
                let (q, f) = ids_schema.qualified_field(i);
                let column = Expr::Column(Column::new(q.cloned(), f.name()));
                let value = match keys.get(i).cloned().flatten() {
                    Some(data_type) => {
                        ScalarUDF::new_from_impl(Restore::new(interner.clone(), data_type))
                            .call(vec![column])
                    }
                    None => column,
                };
                value.alias_qualified(qualifier.cloned(), field.name())
            })
            .collect();
        let restored = Projection::try_new_with_schema(
            exprs,
            Arc::new(LogicalPlan::Aggregate(ids)),
            agg.schema.clone(),
        )?;
        Ok(Transformed::yes(LogicalPlan::Projection(restored)))
    }
}

/// For each group expression of `agg`: its string type when it is a categorical column.
fn categorical_keys(agg: &Aggregate) -> Vec<Option<DataType>> {
    if agg
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return vec![None; agg.group_expr.len()];
    }
    let input = agg.input.schema();
    agg.group_expr
        .iter()
        .map(|e| match e {
            Expr::Column(c) if CATEGORICAL_COLUMNS.contains(&c.name.as_str()) => input
                .qualified_field_from_column(c)
                .ok()
                .map(|(_, f)| f.data_type().clone())
                .filter(is_text),
            _ => None,
        })
        .collect()
}

/// Strings, or a dictionary of strings.
fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => true,
        DataType::Dictionary(_, values) => is_text(values),
        _ => false,
    }
}

/// The distinct values of one query's group key and their ids (the position in `values`).
#[derive(Default)]
struct Interner {
    state: Mutex<InternerState>,
}

#[derive(Default)]
struct InternerState {
    ids: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    values: Vec<Box<str>>,
}

impl InternerState {
    fn id(&mut self, value: &str) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = u32::try_from(self.values.len()).expect("fewer than 2^32 categories");
        self.values.push(value.into());
        self.ids.insert(value.into(), id);
        id
    }
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interner")
    }
}

/// Two UDFs are equal when they share the interner: ids mean nothing across interners.
fn same_interner(a: &Arc<Interner>, b: &Arc<Interner>) -> bool {
    Arc::ptr_eq(a, b)
}

/// `plumb_group_key(text) -> UInt32`: the id of each row's value (null stays null).
#[derive(Debug)]
struct Intern {
    interner: Arc<Interner>,
    signature: Signature,
}

impl Intern {
    fn new(interner: Arc<Interner>) -> Self {
        Intern {
            interner,
            // Any type, so that dictionaries arrive as they are; `ids_of` takes only text.
            // Ids depend on the order rows arrive in: never fold, reorder or duplicate it.
            signature: Signature::any(1, Volatility::Volatile),
        }
    }
}

impl PartialEq for Intern {
    fn eq(&self, other: &Self) -> bool {
        same_interner(&self.interner, &other.interner)
    }
}

impl Eq for Intern {}

impl Hash for Intern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.interner).hash(state);
    }
}

impl ScalarUDFImpl for Intern {
    fn name(&self) -> &str {
        GROUP_KEY_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("plumb_group_key takes one argument");
        };
        let array = arg.to_array(args.number_rows)?;
        let mut state = self.interner.state.lock().expect("interner lock");
        Ok(ColumnarValue::Array(Arc::new(ids_of(&array, &mut state)?)))
    }
}

fn ids_of(array: &ArrayRef, state: &mut InternerState) -> Result<UInt32Array> {
    let ids: Vec<u32> = match array.data_type() {
        DataType::Utf8View => {
            let strings = array.as_string_view();
            // A view holds a short string whole, and a long one's length, prefix, buffer and
            // offset: inside one array, equal views are equal strings.
            let mut seen: HashMap<u128, u32, foldhash::fast::RandomState> = HashMap::default();
            let mut last: Option<(u128, u32)> = None;
            strings
                .views()
                .iter()
                .enumerate()
                .map(|(i, &view)| match last {
                    Some((v, id)) if v == view => id,
                    _ => {
                        let id = *seen
                            .entry(view)
                            .or_insert_with(|| state.id(strings.value(i)));
                        last = Some((view, id));
                        id
                    }
                })
                .collect()
        }
        DataType::Dictionary(_, _) => {
            // One id per dictionary value, then one gather per row: the strings of a Parquet
            // dictionary page are looked at once per batch, not once per row.
            let dictionary = array.as_any_dictionary();
            let value_ids: ArrayRef = Arc::new(ids_of(dictionary.values(), state)?);
            let ids = take(&value_ids, dictionary.keys(), None)?;
            return Ok(ids.as_primitive::<UInt32Type>().clone());
        }
        DataType::Utf8 => ids_of_strings(array.as_string::<i32>().iter(), state),
        DataType::LargeUtf8 => ids_of_strings(array.as_string::<i64>().iter(), state),
        other => return exec_err!("plumb_group_key takes text, not {other}"),
    };
    Ok(UInt32Array::new(ids.into(), array.nulls().cloned()))
}

fn ids_of_strings<'a>(
    values: impl Iterator<Item = Option<&'a str>>,
    state: &mut InternerState,
) -> Vec<u32> {
    let mut last: Option<(&str, u32)> = None;
    values
        .map(|v| {
            let v = v.unwrap_or_default();
            match last {
                Some((s, id)) if s == v => id,
                _ => {
                    let id = state.id(v);
                    last = Some((v, id));
                    id
                }
            }
        })
        .collect()
}

/// `plumb_group_value(id) -> text`: the value behind an id of the same interner.
#[derive(Debug)]
struct Restore {
    interner: Arc<Interner>,
    data_type: DataType,
    signature: Signature,
}

impl Restore {
    fn new(interner: Arc<Interner>, data_type: DataType) -> Self {
        Restore {
            interner,
            data_type,
            signature: Signature::exact(vec![DataType::UInt32], Volatility::Volatile),
        }
    }
}

impl PartialEq for Restore {
    fn eq(&self, other: &Self) -> bool {
        same_interner(&self.interner, &other.interner) && self.data_type == other.data_type
    }
}

impl Eq for Restore {}

impl Hash for Restore {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.interner).hash(state);
        self.data_type.hash(state);
    }
}

impl ScalarUDFImpl for Restore {
    fn name(&self) -> &str {
        "plumb_group_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.data_type.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("plumb_group_value takes one argument");
        };
        let ids = arg.to_array(args.number_rows)?;
        let state = self.interner.state.lock().expect("interner lock");
        let mut strings = Vec::with_capacity(ids.len());
        for id in ids.as_primitive::<UInt32Type>() {
            strings.push(match id {
                None => None,
                Some(id) => match state.values.get(id as usize) {
                    Some(v) => Some(v.as_ref()),
                    None => return exec_err!("group key id {id} was never assigned"),
                },
            });
        }
        let strings: ArrayRef = Arc::new(StringArray::from(strings));
        Ok(ColumnarValue::Array(cast(&strings, &self.data_type)?))
    }
}
