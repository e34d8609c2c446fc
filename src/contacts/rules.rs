//! Segment rules (docs/rules/contacts.md, "Segments"): a tree of `{"all"|"any": [...]}` groups
//! and `{"field", "op", "value"}` conditions, checked against the fields a workspace has and
//! compiled to one parameterised SQL condition over `contacts c`.
//!
//! Pure: nothing here reads the database. Field names come from a fixed allow-list (and custom
//! keys from the workspace's definitions), and every value — custom keys' JSON paths included —
//! reaches SQL as a bound parameter, never as text of the statement.

use rusqlite::types::Value as SqlValue;
use serde_json::{Map, Value};

use crate::clock::{format_timestamp, parse_timestamp};
use crate::contacts::fields::{FieldType, one_of};
use crate::contacts::store::FieldRow;
use crate::contacts::{EmailState, Language, PhoneState};
use crate::error::FieldErrors;
use crate::ids::GroupId;

/// The deepest nesting of `all`/`any` groups, the root counting as one.
pub const MAX_DEPTH: usize = 5;
/// The most conditions one tree holds.
pub const MAX_CONDITIONS: usize = 100;
/// The most values an `in` list holds.
pub const MAX_LIST_VALUES: usize = 100;
/// The longest text value, in characters (a custom text value's limit).
pub const MAX_TEXT_LENGTH: usize = 1000;

crate::text_enum! {
    /// What a condition asks of a field's value.
    pub enum Op {
        Eq = "eq",
        Neq = "neq",
        Contains = "contains",
        StartsWith = "starts_with",
        In = "in",
        Gt = "gt",
        Gte = "gte",
        Lt = "lt",
        Lte = "lte",
        Between = "between",
        Before = "before",
        After = "after",
        IsSet = "is_set",
        IsNotSet = "is_not_set",
    }
}

/// What a field holds, and so which operators and values a condition on it takes.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Text: names, phone, email, custom `text` and `url`.
    Text,
    Number,
    /// A calendar day, `YYYY-MM-DD` (custom `date`).
    Day,
    /// A stored RFC 3339 UTC time (`created_at`, `updated_at`); values are days or times.
    Instant,
    Boolean,
    /// One of a fixed set of words (language, channel states, custom `select`).
    Choice(Vec<String>),
    /// Membership of the caller's groups.
    Group,
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Number => "number",
            Kind::Day | Kind::Instant => "date",
            Kind::Boolean => "boolean",
            Kind::Choice(_) => "choice",
            Kind::Group => "group",
        }
    }

    /// The operators that make sense on this kind (`is_set`/`is_not_set` only where a contact
    /// can lack the value).
    fn ops(&self, nullable: bool) -> Vec<Op> {
        use Op::*;
        let mut ops = match self {
            Kind::Text => vec![Eq, Neq, In, Contains, StartsWith],
            Kind::Number => vec![Eq, Neq, In, Gt, Gte, Lt, Lte, Between],
            Kind::Day | Kind::Instant => vec![Eq, Neq, Before, After, Gt, Gte, Lt, Lte, Between],
            Kind::Boolean => vec![Eq, Neq],
            Kind::Choice(_) | Kind::Group => vec![Eq, Neq, In],
        };
        if nullable {
            ops.extend([IsSet, IsNotSet]);
        }
        ops
    }
}

/// The SQL of a field's value: an expression from the fixed allow-list, or a custom field's
/// value read with its JSON path bound as a parameter.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Column(&'static str),
    Custom(String),
    Group,
}

#[derive(Debug, Clone, PartialEq)]
struct Field {
    expr: Expr,
    kind: Kind,
    nullable: bool,
    /// Values are lower-cased before comparing (stored emails are).
    lower_case: bool,
}

/// The built-in fields a condition may name, in the order the error message lists them.
const BUILT_IN: &[&str] = &[
    "name",
    "first_name",
    "last_name",
    "phone",
    "email",
    "language",
    "phone_state",
    "email_state",
    "sms_unsubscribed",
    "email_unsubscribed",
    "created_at",
    "updated_at",
    "group",
];

fn words<T: Copy + std::fmt::Display>(all: &[T]) -> Vec<String> {
    all.iter().map(ToString::to_string).collect()
}

fn built_in(name: &str) -> Option<Field> {
    let field = |expr, kind, nullable| Field {
        expr: Expr::Column(expr),
        kind,
        nullable,
        lower_case: false,
    };
    Some(match name {
        "name" => field("c.name", Kind::Text, false),
        "first_name" => field("c.first_name", Kind::Text, true),
        "last_name" => field("c.last_name", Kind::Text, true),
        "phone" => field("c.phone", Kind::Text, true),
        "email" => Field {
            lower_case: true,
            ..field("c.email", Kind::Text, true)
        },
        "language" => field("c.language", Kind::Choice(words(Language::ALL)), true),
        // A channel's state means nothing without its address (the view shows `null`).
        "phone_state" => field(
            "(CASE WHEN c.phone IS NULL THEN NULL ELSE c.phone_state END)",
            Kind::Choice(words(PhoneState::ALL)),
            true,
        ),
        "email_state" => field(
            "(CASE WHEN c.email IS NULL THEN NULL ELSE c.email_state END)",
            Kind::Choice(words(EmailState::ALL)),
            true,
        ),
        "sms_unsubscribed" => field("(c.sms_unsubscribed_at IS NOT NULL)", Kind::Boolean, false),
        "email_unsubscribed" => field(
            "(c.email_unsubscribed_at IS NOT NULL)",
            Kind::Boolean,
            false,
        ),
        "created_at" => field("c.created_at", Kind::Instant, false),
        "updated_at" => field("c.updated_at", Kind::Instant, false),
        "group" => Field {
            expr: Expr::Group,
            kind: Kind::Group,
            nullable: false,
            lower_case: false,
        },
        _ => return None,
    })
}

fn custom(definition: &FieldRow) -> Field {
    let kind = match definition.field_type {
        FieldType::Text | FieldType::Url => Kind::Text,
        FieldType::Number => Kind::Number,
        FieldType::Date => Kind::Day,
        FieldType::Boolean => Kind::Boolean,
        FieldType::Select => Kind::Choice(definition.options.clone().unwrap_or_default()),
    };
    // Keys are `[a-z][a-z0-9_]*` (checked when defined); quoted all the same, and bound as a
    // parameter, never written into the statement.
    Field {
        expr: Expr::Custom(format!("$.\"{}\"", definition.key)),
        kind,
        nullable: true,
        lower_case: false,
    }
}

/// A checked condition: the field's SQL and what is asked of it.
#[derive(Debug, Clone, PartialEq)]
struct Condition {
    expr: Expr,
    test: Test,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    /// `expr <op> ?` with `op` one of `=`, `>`, `>=`, `<`, `<=`.
    Compare(&'static str, SqlValue),
    /// Not equal, or no value (`IS NOT`).
    Neq(SqlValue),
    In(Vec<SqlValue>),
    /// A `LIKE … ESCAPE '\'` pattern, its wildcards escaped.
    Like(String),
    Between(SqlValue, SqlValue),
    /// `from <= expr < to`, either end open (a stored time against days or times).
    Range(Option<String>, Option<String>),
    /// Outside `[from, to)`.
    OutsideRange(String, String),
    IsSet,
    IsNotSet,
    /// A member of at least one of the groups.
    Member(Vec<GroupId>),
    NotMember(GroupId),
}

/// A checked rule tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Condition(Condition),
}

/// A condition in SQL over `contacts c`: its text with `?` placeholders, and their values in
/// order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SqlCondition {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl SqlCondition {
    /// The parameters as a JSON array, to store beside the SQL (a campaign keeps the audience
    /// its launch compiled): integers, reals, text and null.
    pub fn params_json(&self) -> String {
        let values: Vec<Value> = self
            .params
            .iter()
            .map(|param| match param {
                SqlValue::Null | SqlValue::Blob(_) => Value::Null,
                SqlValue::Integer(n) => Value::from(*n),
                SqlValue::Real(x) => Value::from(*x),
                SqlValue::Text(text) => Value::from(text.as_str()),
            })
            .collect();
        Value::Array(values).to_string()
    }

    /// A condition stored with `params_json`. `None` when the parameters are not such an array.
    pub fn from_stored(sql: String, params_json: &str) -> Option<SqlCondition> {
        let Ok(Value::Array(values)) = serde_json::from_str::<Value>(params_json) else {
            return None;
        };
        let params = values
            .into_iter()
            .map(|value| match value {
                Value::Null => Some(SqlValue::Null),
                Value::String(text) => Some(SqlValue::Text(text)),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => Some(SqlValue::Integer(i)),
                    None => n.as_f64().map(SqlValue::Real),
                },
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(SqlCondition { sql, params })
    }
}

impl Rules {
    /// Checks `value` (the body's `rules`, reported under `path`) against the workspace's custom
    /// field `definitions`. Every bad node goes to `errors` under its JSON path
    /// (`rules.all[2].any[0].value`); the rules come back only when there was none. Group ids
    /// are only checked for form here: the second part lists every well-formed one (even when
    /// other nodes are bad), with the path of its value, for the caller to check they are its
    /// own.
    pub fn parse(
        value: &Value,
        path: &str,
        definitions: &[FieldRow],
        errors: &mut FieldErrors,
    ) -> (Option<Rules>, Vec<(String, GroupId)>) {
        let mut parser = Parser {
            definitions,
            errors,
            conditions: 0,
            groups: Vec::new(),
        };
        let root = parser.group(value, path, 1);
        if parser.conditions > MAX_CONDITIONS {
            parser.errors.add(
                path,
                format!(
                    "holds {} conditions; at most {MAX_CONDITIONS}",
                    parser.conditions
                ),
            );
        }
        let groups = parser.groups;
        let rules = root
            .filter(|_| errors.is_empty())
            .map(|root| Rules { root });
        (rules, groups)
    }

    /// The tree as one SQL condition over `contacts c`.
    pub fn to_sql(&self) -> SqlCondition {
        let mut out = SqlCondition::default();
        write_node(&self.root, &mut out);
        out
    }
}

struct Parser<'a> {
    definitions: &'a [FieldRow],
    errors: &'a mut FieldErrors,
    conditions: usize,
    groups: Vec<(String, GroupId)>,
}

const NODE_SHAPE: &str = "must be a group {\"all\": [...]} or {\"any\": [...]}, or a condition {\"field\", \"op\", \"value\"}";

impl Parser<'_> {
    /// A node: a group, or a condition (not at the root).
    fn node(&mut self, value: &Value, path: &str, depth: usize) -> Option<Node> {
        match value.as_object() {
            Some(object) if object.contains_key("all") || object.contains_key("any") => {
                self.group(value, path, depth)
            }
            Some(object) => self.condition(object, path).map(Node::Condition),
            None => {
                self.errors.add(path, NODE_SHAPE);
                None
            }
        }
    }

    fn group(&mut self, value: &Value, path: &str, depth: usize) -> Option<Node> {
        let Some(object) = value.as_object() else {
            self.errors.add(
                path,
                "must be an object {\"all\": [...]} or {\"any\": [...]}",
            );
            return None;
        };
        let (key, children) = match (object.len(), object.iter().next()) {
            (1, Some((key, children))) if key == "all" || key == "any" => (key.as_str(), children),
            _ => {
                self.errors
                    .add(path, "a group has exactly one key, \"all\" or \"any\"");
                return None;
            }
        };
        if depth > MAX_DEPTH {
            self.errors.add(
                path,
                format!("nests groups deeper than {MAX_DEPTH} levels (the root is the first)"),
            );
            return None;
        }
        let Some(children) = children.as_array().filter(|list| !list.is_empty()) else {
            self.errors.add(
                format!("{path}.{key}"),
                "must be a list of at least one condition or group",
            );
            return None;
        };
        let mut nodes = Vec::with_capacity(children.len());
        for (index, child) in children.iter().enumerate() {
            if let Some(node) = self.node(child, &format!("{path}.{key}[{index}]"), depth + 1) {
                nodes.push(node);
            }
        }
        Some(if key == "all" {
            Node::All(nodes)
        } else {
            Node::Any(nodes)
        })
    }

    fn resolve(&mut self, name: &str, path: &str) -> Option<Field> {
        if let Some(key) = name.strip_prefix("custom.") {
            let found = self.definitions.iter().find(|field| field.key == key);
            if found.is_none() {
                self.errors
                    .add(path, format!("{name} is not a defined custom field"));
            }
            return found.map(custom);
        }
        let found = built_in(name);
        if found.is_none() {
            self.errors.add(
                path,
                format!(
                    "must be one of {}, or custom.<key> of a defined custom field",
                    BUILT_IN.join(", ")
                ),
            );
        }
        found
    }

    fn condition(&mut self, object: &Map<String, Value>, path: &str) -> Option<Condition> {
        self.conditions += 1;
        let mut bad_shape = false;
        for key in object.keys() {
            if !matches!(key.as_str(), "field" | "op" | "value") {
                self.errors.add(
                    format!("{path}.{key}"),
                    "is not part of a condition (field, op, value)",
                );
                bad_shape = true;
            }
        }
        let field_path = format!("{path}.field");
        let field = match object.get("field") {
            Some(Value::String(name)) => self.resolve(name, &field_path),
            _ => {
                self.errors.add(&field_path, "is required: a field name");
                None
            }
        };
        let op_path = format!("{path}.op");
        let op = match object.get("op").and_then(Value::as_str) {
            Some(text) => {
                let op = Op::parse(text);
                if op.is_none() {
                    self.errors.add(&op_path, one_of(Op::ALL));
                }
                op
            }
            None => {
                self.errors.add(&op_path, "is required: an operator");
                None
            }
        };
        let (field, op) = (field?, op?);
        let allowed = field.kind.ops(field.nullable);
        if !allowed.contains(&op) {
            // `name is_set`: the kind allows it where a value may be missing; `name` never is.
            let why = if matches!(op, Op::IsSet | Op::IsNotSet) && !field.nullable {
                format!("{op} does not apply to this field: it always has a value")
            } else {
                format!("{op} does not apply to a {} field", field.kind.name())
            };
            self.errors
                .add(&op_path, format!("{why}; {}", one_of(&allowed)));
            return None;
        }
        let value_path = format!("{path}.value");
        let test = self.test(&field, op, object.get("value"), &value_path)?;
        if bad_shape {
            return None;
        }
        Some(Condition {
            expr: field.expr,
            test,
        })
    }

    fn test(&mut self, field: &Field, op: Op, value: Option<&Value>, path: &str) -> Option<Test> {
        if matches!(op, Op::IsSet | Op::IsNotSet) {
            if value.is_some() {
                self.errors.add(path, format!("must be left out for {op}"));
                return None;
            }
            return Some(if op == Op::IsSet {
                Test::IsSet
            } else {
                Test::IsNotSet
            });
        }
        let Some(value) = value else {
            self.errors.add(path, format!("is required for {op}"));
            return None;
        };
        match (&field.kind, op) {
            (Kind::Group, Op::Eq | Op::Neq) => {
                let id = self.group_id(value, path)?;
                Some(if op == Op::Eq {
                    Test::Member(vec![id])
                } else {
                    Test::NotMember(id)
                })
            }
            (Kind::Group, _) => {
                let ids = self.list(value, path, |parser, item, item_path| {
                    parser.group_id(item, item_path)
                })?;
                Some(Test::Member(ids))
            }
            (Kind::Instant, _) => self.instant_test(op, value, path),
            (_, Op::Contains | Op::StartsWith) => {
                let text = self.pattern_text(field, value, path)?;
                let mut pattern = like_escaped(&text);
                pattern.push('%');
                if op == Op::Contains {
                    pattern.insert(0, '%');
                }
                Some(Test::Like(pattern))
            }
            (_, Op::In) => {
                let values = self.list(value, path, |parser, item, item_path| {
                    parser.scalar(field, item, item_path)
                })?;
                Some(Test::In(values))
            }
            (_, Op::Between) => {
                let (low, high) = self.bounds(value, path, |parser, item, item_path| {
                    parser.scalar(field, item, item_path)
                })?;
                if compare(&low, &high) == Some(std::cmp::Ordering::Greater) {
                    self.errors
                        .add(path, "the first bound must not be above the second");
                    return None;
                }
                Some(Test::Between(low, high))
            }
            (_, Op::Neq) => Some(Test::Neq(self.scalar(field, value, path)?)),
            (_, op) => {
                let sql_op = match op {
                    Op::Gt | Op::After => ">",
                    Op::Gte => ">=",
                    Op::Lt | Op::Before => "<",
                    Op::Lte => "<=",
                    _ => "=",
                };
                Some(Test::Compare(sql_op, self.scalar(field, value, path)?))
            }
        }
    }

    /// A stored time against a day (the whole UTC day) or a time (that millisecond).
    fn instant_test(&mut self, op: Op, value: &Value, path: &str) -> Option<Test> {
        if op == Op::Between {
            let ((from, _), (_, to)) = self.bounds(value, path, |parser, item, item_path| {
                parser.instant(item, item_path)
            })?;
            if from >= to {
                self.errors
                    .add(path, "the first bound must not be after the second");
                return None;
            }
            return Some(Test::Range(Some(from), Some(to)));
        }
        let (from, to) = self.instant(value, path)?;
        Some(match op {
            Op::Eq => Test::Range(Some(from), Some(to)),
            Op::Neq => Test::OutsideRange(from, to),
            Op::Gt | Op::After => Test::Range(Some(to), None),
            Op::Gte => Test::Range(Some(from), None),
            Op::Lt | Op::Before => Test::Range(None, Some(from)),
            _ => Test::Range(None, Some(to)),
        })
    }

    /// `[from, to)` as stored timestamps: a day `YYYY-MM-DD` (UTC) or an RFC 3339 time.
    fn instant(&mut self, value: &Value, path: &str) -> Option<(String, String)> {
        let text = value.as_str().unwrap_or_default();
        let span = if let Ok(day) = crate::validate::calendar_day(text) {
            day.and_hms_opt(0, 0, 0).and_then(|start| {
                let start = start.and_utc();
                Some((start, start.checked_add_signed(chrono::TimeDelta::days(1))?))
            })
        } else {
            parse_timestamp(text).and_then(|at| {
                // Stored times have milliseconds: this time is its millisecond.
                let at = parse_timestamp(&format_timestamp(at))?;
                Some((
                    at,
                    at.checked_add_signed(chrono::TimeDelta::milliseconds(1))?,
                ))
            })
        };
        match span {
            Some((from, to)) => Some((format_timestamp(from), format_timestamp(to))),
            None => {
                self.errors.add(
                    path,
                    "must be a date YYYY-MM-DD or an RFC 3339 time (2026-11-25T09:30:00Z)",
                );
                None
            }
        }
    }

    fn group_id(&mut self, value: &Value, path: &str) -> Option<GroupId> {
        match value.as_str().and_then(GroupId::parse) {
            Some(id) => {
                self.groups.push((path.to_owned(), id.clone()));
                Some(id)
            }
            None => {
                self.errors.add(path, "must be a group id (grp_…)");
                None
            }
        }
    }

    /// The text of `contains` / `starts_with`: 1–1000 characters, no NUL (SQLite's `LIKE`
    /// would stop reading at it).
    fn pattern_text(&mut self, field: &Field, value: &Value, path: &str) -> Option<String> {
        match value.as_str() {
            Some(text)
                if !text.is_empty()
                    && text.chars().count() <= MAX_TEXT_LENGTH
                    && !text.contains('\0') =>
            {
                Some(if field.lower_case {
                    text.to_lowercase()
                } else {
                    text.to_owned()
                })
            }
            _ => {
                self.errors.add(
                    path,
                    format!("must be text of 1 to {MAX_TEXT_LENGTH} characters, without NUL"),
                );
                None
            }
        }
    }

    /// A value of the field's type, as bound to SQL.
    fn scalar(&mut self, field: &Field, value: &Value, path: &str) -> Option<SqlValue> {
        let parsed = match (&field.kind, value) {
            (Kind::Text, Value::String(text)) if text.chars().count() <= MAX_TEXT_LENGTH => {
                Some(SqlValue::Text(if field.lower_case {
                    text.to_lowercase()
                } else {
                    text.clone()
                }))
            }
            (Kind::Number, Value::Number(number)) => number
                .as_i64()
                .map(SqlValue::Integer)
                .or_else(|| number.as_f64().map(SqlValue::Real)),
            (Kind::Day, Value::String(text)) => crate::validate::calendar_day(text)
                .ok()
                .map(|_| SqlValue::Text(text.clone())),
            (Kind::Boolean, Value::Bool(flag)) => Some(SqlValue::Integer(i64::from(*flag))),
            (Kind::Choice(options), Value::String(choice)) if options.contains(choice) => {
                Some(SqlValue::Text(choice.clone()))
            }
            _ => None,
        };
        if parsed.is_none() {
            let reason = match &field.kind {
                Kind::Text => format!("must be text of at most {MAX_TEXT_LENGTH} characters"),
                Kind::Number => "must be a number".to_owned(),
                Kind::Day => crate::validate::calendar_day_problem(value).to_owned(),
                Kind::Boolean => "must be true or false".to_owned(),
                Kind::Choice(options) => format!("must be one of {}", options.join(", ")),
                Kind::Instant | Kind::Group => "is not a value of this field".to_owned(),
            };
            self.errors.add(path, reason);
        }
        parsed
    }

    /// 1–100 values, each checked by `item` (reported as `value[i]`).
    fn list<T>(
        &mut self,
        value: &Value,
        path: &str,
        mut item: impl FnMut(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Some(items) = value
            .as_array()
            .filter(|items| (1..=MAX_LIST_VALUES).contains(&items.len()))
        else {
            self.errors.add(
                path,
                format!("must be a list of 1 to {MAX_LIST_VALUES} values"),
            );
            return None;
        };
        let mut checked = Vec::with_capacity(items.len());
        let mut all_good = true;
        for (index, value) in items.iter().enumerate() {
            match item(self, value, &format!("{path}[{index}]")) {
                Some(value) => checked.push(value),
                None => all_good = false,
            }
        }
        all_good.then_some(checked)
    }

    /// `[low, high]`, each checked by `item`.
    fn bounds<T>(
        &mut self,
        value: &Value,
        path: &str,
        mut item: impl FnMut(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<(T, T)> {
        let Some([low, high]) = value.as_array().map(Vec::as_slice) else {
            self.errors
                .add(path, "must be a list of two bounds [low, high]");
            return None;
        };
        let low = item(self, low, &format!("{path}[0]"));
        let high = item(self, high, &format!("{path}[1]"));
        Some((low?, high?))
    }
}

fn compare(a: &SqlValue, b: &SqlValue) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (SqlValue::Integer(a), SqlValue::Integer(b)) => Some(a.cmp(b)),
        (SqlValue::Text(a), SqlValue::Text(b)) => Some(a.cmp(b)),
        (a, b) => as_f64(a)?.partial_cmp(&as_f64(b)?),
    }
}

fn as_f64(value: &SqlValue) -> Option<f64> {
    match value {
        SqlValue::Integer(n) => Some(*n as f64),
        SqlValue::Real(x) => Some(*x),
        _ => None,
    }
}

/// `text` with `LIKE`'s `%`, `_` and the escape `\` taken literally (for `ESCAPE '\'`).
fn like_escaped(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

fn write_node(node: &Node, out: &mut SqlCondition) {
    match node {
        Node::All(children) | Node::Any(children) => {
            let joint = if matches!(node, Node::All(_)) {
                " AND "
            } else {
                " OR "
            };
            // Cheapest first: SQLite stops at the first false of an AND (true of an OR), so a
            // column test can spare a custom value's read. `AND`/`OR` commute, NULLs included.
            let mut children: Vec<&Node> = children.iter().collect();
            children.sort_by_key(|child| cost(child));
            out.sql.push('(');
            for (index, child) in children.into_iter().enumerate() {
                if index > 0 {
                    out.sql.push_str(joint);
                }
                write_node(child, out);
            }
            out.sql.push(')');
        }
        Node::Condition(condition) => write_condition(condition, out),
    }
}

/// How dear a node is to evaluate per contact, to order siblings: a column, a group
/// membership, a custom value, then nested groups.
fn cost(node: &Node) -> u8 {
    match node {
        Node::Condition(condition) => match condition.expr {
            Expr::Column(_) => 0,
            Expr::Group => 1,
            Expr::Custom(_) => 2,
        },
        Node::All(_) | Node::Any(_) => 3,
    }
}

/// The field's SQL expression (a custom field's JSON path bound as a parameter).
fn write_expr(expr: &Expr, out: &mut SqlCondition) {
    match expr {
        Expr::Column(sql) => out.sql.push_str(sql),
        Expr::Custom(path) => {
            // The JSONB copy of `custom` (V16): read without parsing text per contact.
            out.sql.push_str("json_extract(c.custom_jsonb, ?)");
            out.params.push(SqlValue::Text(path.clone()));
        }
        Expr::Group => out.sql.push_str("c.id"),
    }
}

fn placeholders(count: usize) -> String {
    vec!["?"; count].join(", ")
}

/// The rowids of a group's members, up to the condition on `m.group_id` that ends it. A contact
/// id names one row, so `c.rowid IN` this set is `c.id IN` the members' ids.
const MEMBER_ROWIDS: &str = "SELECT mc.rowid FROM group_members m \
    JOIN contacts mc ON mc.id = m.contact_id WHERE m.group_id";

fn write_condition(condition: &Condition, out: &mut SqlCondition) {
    let expr = &condition.expr;
    let compare = |out: &mut SqlCondition, op: &str, value: SqlValue| {
        write_expr(expr, out);
        out.sql.push_str(&format!(" {op} ?"));
        out.params.push(value);
    };
    match &condition.test {
        Test::Compare(op, value) => compare(out, op, value.clone()),
        Test::Neq(value) => compare(out, "IS NOT", value.clone()),
        Test::In(values) => {
            out.sql.push('(');
            write_expr(expr, out);
            out.sql
                .push_str(&format!(" IN ({}))", placeholders(values.len())));
            out.params.extend(values.iter().cloned());
        }
        Test::Like(pattern) => {
            write_expr(expr, out);
            out.sql.push_str(" LIKE ? ESCAPE '\\'");
            out.params.push(SqlValue::Text(pattern.clone()));
        }
        Test::Between(low, high) => {
            out.sql.push('(');
            write_expr(expr, out);
            out.sql.push_str(" BETWEEN ? AND ?)");
            out.params.extend([low.clone(), high.clone()]);
        }
        Test::Range(from, to) => {
            out.sql.push('(');
            let mut first = true;
            for (bound, op) in [(from, ">="), (to, "<")] {
                if let Some(bound) = bound {
                    if !first {
                        out.sql.push_str(" AND ");
                    }
                    first = false;
                    compare(out, op, SqlValue::Text(bound.clone()));
                }
            }
            out.sql.push(')');
        }
        Test::OutsideRange(from, to) => {
            out.sql.push_str("NOT (");
            compare(out, ">=", SqlValue::Text(from.clone()));
            out.sql.push_str(" AND ");
            compare(out, "<", SqlValue::Text(to.clone()));
            out.sql.push(')');
        }
        Test::IsSet | Test::IsNotSet => {
            write_expr(expr, out);
            out.sql.push_str(if condition.test == Test::IsSet {
                " IS NOT NULL"
            } else {
                " IS NULL"
            });
        }
        Test::Member(groups) => {
            // `IN (subquery)`: SQLite builds the members' set once per statement (and may walk
            // it instead of the contacts), rather than seeking the members table per contact.
            // The set holds their rowids, not their ids: probing it for each of a million
            // contacts compares integers, not 30-character ids that share their first 14
            // (a third of the nested segment's count, README "Segment counts").
            out.sql.push_str(&format!(
                "c.rowid IN ({MEMBER_ROWIDS} IN ({}))",
                placeholders(groups.len())
            ));
            out.params
                .extend(groups.iter().map(|id| SqlValue::Text(id.to_string())));
        }
        Test::NotMember(group) => {
            out.sql
                .push_str(&format!("c.rowid NOT IN ({MEMBER_ROWIDS} = ?)"));
            out.params.push(SqlValue::Text(group.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ContactFieldId, WorkspaceId};
    use serde_json::json;

    fn definition(key: &str, field_type: FieldType, options: Option<&[&str]>) -> FieldRow {
        FieldRow {
            id: ContactFieldId::parse("cfd_1").unwrap(),
            workspace_id: WorkspaceId::parse("wsp_1").unwrap(),
            key: key.to_owned(),
            label: key.to_owned(),
            field_type,
            options: options.map(|o| o.iter().map(|s| (*s).to_owned()).collect()),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn definitions() -> Vec<FieldRow> {
        vec![
            definition("tier", FieldType::Select, Some(&["gold", "silver"])),
            definition("score", FieldType::Number, None),
            definition("birthday", FieldType::Date, None),
            definition("vip", FieldType::Boolean, None),
            definition("note", FieldType::Text, None),
            definition("site", FieldType::Url, None),
        ]
    }

    fn compile(rules: Value) -> Result<SqlCondition, Vec<(String, String)>> {
        let mut errors = FieldErrors::new();
        match Rules::parse(&rules, "rules", &definitions(), &mut errors).0 {
            Some(rules) => Ok(rules.to_sql()),
            None => Err(errors
                .iter()
                .map(|(path, reason)| (path.clone(), reason.clone()))
                .collect()),
        }
    }

    /// One condition under `all`, compiled.
    fn one(field: &str, op: &str, value: Option<Value>) -> Result<SqlCondition, Vec<String>> {
        let mut condition = json!({"field": field, "op": op});
        if let Some(value) = value {
            condition["value"] = value;
        }
        compile(json!({ "all": [condition] }))
            .map_err(|errors| errors.into_iter().map(|(path, _)| path).collect())
    }

    fn text(value: &str) -> SqlValue {
        SqlValue::Text(value.to_owned())
    }

    #[test]
    fn a_stored_condition_reads_back_the_same() {
        let condition = SqlCondition {
            sql: "c.a = ? AND c.b > ? AND c.c < ? AND c.d IS ?".to_owned(),
            params: vec![
                SqlValue::Text("fr".to_owned()),
                SqlValue::Integer(-3),
                SqlValue::Real(2.5),
                SqlValue::Null,
            ],
        };
        let stored = condition.params_json();
        assert_eq!(
            SqlCondition::from_stored(condition.sql.clone(), &stored),
            Some(condition)
        );
        // A real with no fraction stays a real.
        let real = SqlCondition {
            sql: String::new(),
            params: vec![SqlValue::Real(100.0)],
        };
        assert_eq!(
            SqlCondition::from_stored(String::new(), &real.params_json()),
            Some(real)
        );
        assert_eq!(SqlCondition::from_stored(String::new(), "{}"), None);
        assert_eq!(SqlCondition::from_stored(String::new(), "[[1]]"), None);
    }

    #[test]
    fn a_nested_tree_compiles_to_parameterised_sql() {
        // Siblings go cheapest first: columns, then group membership, then custom values, then
        // nested groups.
        let compiled = compile(json!({"all": [
            {"any": [
                {"field": "custom.score", "op": "between", "value": [10, 20.5]},
                {"field": "name", "op": "contains", "value": "50%_off"},
                {"field": "group", "op": "in", "value": ["grp_a", "grp_b"]}
            ]},
            {"field": "language", "op": "eq", "value": "fr"}
        ]}))
        .unwrap();
        assert_eq!(
            compiled.sql,
            "(c.language = ? AND (c.name LIKE ? ESCAPE '\\' OR c.rowid IN (SELECT mc.rowid \
             FROM group_members m JOIN contacts mc ON mc.id = m.contact_id \
             WHERE m.group_id IN (?, ?)) OR \
             (json_extract(c.custom_jsonb, ?) BETWEEN ? AND ?)))"
        );
        assert_eq!(
            compiled.params,
            vec![
                text("fr"),
                text("%50\\%\\_off%"),
                text("grp_a"),
                text("grp_b"),
                text("$.\"score\""),
                SqlValue::Integer(10),
                SqlValue::Real(20.5),
            ]
        );
    }

    #[test]
    fn every_operator_on_every_type_compiles() {
        let cases: &[(&str, &str, Option<Value>, &str)] = &[
            ("name", "eq", Some(json!("Ada")), "c.name = ?"),
            (
                "first_name",
                "neq",
                Some(json!("Ada")),
                "c.first_name IS NOT ?",
            ),
            (
                "last_name",
                "in",
                Some(json!(["A", "B"])),
                "(c.last_name IN (?, ?))",
            ),
            (
                "phone",
                "starts_with",
                Some(json!("+237")),
                "c.phone LIKE ? ESCAPE '\\'",
            ),
            (
                "email",
                "contains",
                Some(json!("@x")),
                "c.email LIKE ? ESCAPE '\\'",
            ),
            ("email", "is_set", None, "c.email IS NOT NULL"),
            ("phone", "is_not_set", None, "c.phone IS NULL"),
            ("language", "in", Some(json!(["en"])), "(c.language IN (?))"),
            (
                "phone_state",
                "eq",
                Some(json!("invalid")),
                "(CASE WHEN c.phone IS NULL THEN NULL ELSE c.phone_state END) = ?",
            ),
            (
                "email_state",
                "neq",
                Some(json!("bounced")),
                "(CASE WHEN c.email IS NULL THEN NULL ELSE c.email_state END) IS NOT ?",
            ),
            (
                "sms_unsubscribed",
                "eq",
                Some(json!(true)),
                "(c.sms_unsubscribed_at IS NOT NULL) = ?",
            ),
            (
                "email_unsubscribed",
                "neq",
                Some(json!(true)),
                "(c.email_unsubscribed_at IS NOT NULL) IS NOT ?",
            ),
            (
                "created_at",
                "eq",
                Some(json!("2026-01-31")),
                "(c.created_at >= ? AND c.created_at < ?)",
            ),
            (
                "created_at",
                "neq",
                Some(json!("2026-01-31")),
                "NOT (c.created_at >= ? AND c.created_at < ?)",
            ),
            (
                "created_at",
                "before",
                Some(json!("2026-01-31")),
                "(c.created_at < ?)",
            ),
            (
                "updated_at",
                "after",
                Some(json!("2026-01-31")),
                "(c.updated_at >= ?)",
            ),
            (
                "updated_at",
                "gte",
                Some(json!("2026-01-31")),
                "(c.updated_at >= ?)",
            ),
            (
                "updated_at",
                "lte",
                Some(json!("2026-01-31")),
                "(c.updated_at < ?)",
            ),
            (
                "updated_at",
                "between",
                Some(json!(["2026-01-01", "2026-01-31T12:00:00+01:00"])),
                "(c.updated_at >= ? AND c.updated_at < ?)",
            ),
            (
                "custom.score",
                "gt",
                Some(json!(1)),
                "json_extract(c.custom_jsonb, ?) > ?",
            ),
            (
                "custom.score",
                "lte",
                Some(json!(1.5)),
                "json_extract(c.custom_jsonb, ?) <= ?",
            ),
            (
                "custom.score",
                "in",
                Some(json!([1, 2])),
                "(json_extract(c.custom_jsonb, ?) IN (?, ?))",
            ),
            (
                "custom.birthday",
                "before",
                Some(json!("2000-01-01")),
                "json_extract(c.custom_jsonb, ?) < ?",
            ),
            (
                "custom.birthday",
                "between",
                Some(json!(["1990-01-01", "1999-12-31"])),
                "(json_extract(c.custom_jsonb, ?) BETWEEN ? AND ?)",
            ),
            (
                "custom.vip",
                "eq",
                Some(json!(true)),
                "json_extract(c.custom_jsonb, ?) = ?",
            ),
            (
                "custom.vip",
                "is_not_set",
                None,
                "json_extract(c.custom_jsonb, ?) IS NULL",
            ),
            (
                "custom.tier",
                "neq",
                Some(json!("gold")),
                "json_extract(c.custom_jsonb, ?) IS NOT ?",
            ),
            (
                "custom.note",
                "contains",
                Some(json!("vip")),
                "json_extract(c.custom_jsonb, ?) LIKE ? ESCAPE '\\'",
            ),
            (
                "custom.site",
                "starts_with",
                Some(json!("https://")),
                "json_extract(c.custom_jsonb, ?) LIKE ? ESCAPE '\\'",
            ),
            (
                "group",
                "eq",
                Some(json!("grp_1")),
                "c.rowid IN (SELECT mc.rowid FROM group_members m JOIN contacts mc \
                 ON mc.id = m.contact_id WHERE m.group_id IN (?))",
            ),
            (
                "group",
                "neq",
                Some(json!("grp_1")),
                "c.rowid NOT IN (SELECT mc.rowid FROM group_members m JOIN contacts mc \
                 ON mc.id = m.contact_id WHERE m.group_id = ?)",
            ),
        ];
        for (field, op, value, sql) in cases {
            let compiled = one(field, op, value.clone())
                .unwrap_or_else(|errors| panic!("{field} {op}: {errors:?}"));
            assert_eq!(compiled.sql, format!("({sql})"), "{field} {op}");
            assert_eq!(
                compiled.sql.matches('?').count(),
                compiled.params.len(),
                "{field} {op}"
            );
        }
    }

    #[test]
    fn dates_and_times_become_ranges_of_stored_timestamps() {
        let day = one("created_at", "eq", Some(json!("2026-01-31"))).unwrap();
        assert_eq!(
            day.params,
            vec![
                text("2026-01-31T00:00:00.000Z"),
                text("2026-02-01T00:00:00.000Z")
            ]
        );
        let instant = one(
            "created_at",
            "after",
            Some(json!("2026-01-31T10:00:00+01:00")),
        )
        .unwrap();
        assert_eq!(instant.params, vec![text("2026-01-31T09:00:00.001Z")]);
        let before = one("created_at", "before", Some(json!("2026-01-31"))).unwrap();
        assert_eq!(before.params, vec![text("2026-01-31T00:00:00.000Z")]);
        let lte = one("created_at", "lte", Some(json!("2026-01-31"))).unwrap();
        assert_eq!(lte.params, vec![text("2026-02-01T00:00:00.000Z")]);
    }

    #[test]
    fn values_are_parameters_never_sql_text() {
        let hostile = "'; DROP TABLE contacts; --\"%_\\";
        for (field, op) in [
            ("name", "eq"),
            ("name", "contains"),
            ("email", "starts_with"),
            ("custom.note", "neq"),
        ] {
            let compiled = one(field, op, Some(json!(hostile))).unwrap();
            assert!(!compiled.sql.contains("DROP"), "{}", compiled.sql);
            assert!(!compiled.sql.contains('%'), "{}", compiled.sql);
        }
        // Emails compare lower-cased, as stored.
        let email = one("email", "eq", Some(json!("Ada@X.IO"))).unwrap();
        assert_eq!(email.params, vec![text("ada@x.io")]);
    }

    #[test]
    fn every_bad_node_is_named_by_its_path() {
        let errors = compile(json!({"all": [
            {"field": "nope", "op": "eq", "value": 1},
            {"field": "name", "op": "gt", "value": "a"},
            {"any": [
                {"field": "custom.score", "op": "eq", "value": "ten"},
                {"field": "custom.gone", "op": "eq", "value": 1},
                {"field": "custom.tier", "op": "in", "value": ["gold", "tin"]},
                {"field": "email", "op": "is_set", "value": true},
                {"field": "phone", "op": "eq"},
                {"field": "created_at", "op": "between", "value": ["2026-02-01", "2026-01-01"]},
                {"field": "group", "op": "eq", "value": "con_1"},
                {"field": "name", "op": "eq", "value": "a", "extra": 1},
                {"field": "name", "op": "contains", "value": ""},
                {"field": "custom.birthday", "op": "eq", "value": "2026-02-30"},
                {"field": "custom.vip", "op": "eq", "value": "yes"},
                {"field": "name", "op": "like", "value": "a"},
                {"field": "custom.score", "op": "between", "value": [5, 1]},
                {"field": "language", "op": "eq", "value": "de"},
                {"field": "name", "op": "in", "value": []}
            ]},
            "a string",
            {"all": []},
            {"all": [], "any": []}
        ]}))
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "rules.all[0].field",
                "rules.all[1].op",
                "rules.all[2].any[0].value",
                "rules.all[2].any[10].value",
                "rules.all[2].any[11].op",
                "rules.all[2].any[12].value",
                "rules.all[2].any[13].value",
                "rules.all[2].any[14].value",
                "rules.all[2].any[1].field",
                "rules.all[2].any[2].value[1]",
                "rules.all[2].any[3].value",
                "rules.all[2].any[4].value",
                "rules.all[2].any[5].value",
                "rules.all[2].any[6].value",
                "rules.all[2].any[7].extra",
                "rules.all[2].any[8].value",
                "rules.all[2].any[9].value",
                "rules.all[3]",
                "rules.all[4].all",
                "rules.all[5]",
            ]
        );
        let reason = |path: &str| {
            errors
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, reason)| reason.clone())
                .unwrap()
        };
        assert!(reason("rules.all[1].op").contains("gt does not apply to a text field"));
        // A text field that always has a value: is_set is refused for that reason, not its kind.
        let errors = compile(json!({"all": [{"field": "name", "op": "is_set"}]})).unwrap_err();
        let (_, why) = errors.first().unwrap();
        assert!(
            why.contains("is_set does not apply to this field: it always has a value"),
            "{why}"
        );
        assert!(reason("rules.all[2].any[2].value[1]").contains("gold, silver"));
        assert!(reason("rules.all[2].any[1].field").contains("custom.gone"));
        // A day written right but missing from the calendar is told so (`validate::calendar_day`).
        assert_eq!(
            reason("rules.all[2].any[9].value"),
            "is not a date of the calendar"
        );
    }

    #[test]
    fn the_root_is_a_group_and_the_tree_is_bounded() {
        let condition = json!({"field": "name", "op": "eq", "value": "a"});
        assert_eq!(
            compile(condition.clone()).unwrap_err()[0].0,
            "rules",
            "a bare condition is not a tree"
        );
        assert_eq!(compile(json!([condition])).unwrap_err()[0].0, "rules");
        // Five levels of groups are fine; a sixth is named.
        let mut tree = json!({"all": [condition]});
        for _ in 0..4 {
            tree = json!({ "any": [tree] });
        }
        assert!(compile(tree.clone()).is_ok());
        let errors = compile(json!({ "all": [tree] })).unwrap_err();
        assert_eq!(errors[0].0, "rules.all[0].any[0].any[0].any[0].any[0]");
        // A hundred conditions are fine; the 101st is refused.
        let hundred: Vec<Value> = (0..100).map(|_| condition.clone()).collect();
        assert!(compile(json!({ "all": hundred })).is_ok());
        let more: Vec<Value> = (0..101).map(|_| condition.clone()).collect();
        let errors = compile(json!({ "all": more })).unwrap_err();
        assert_eq!(errors[0].0, "rules");
        assert!(errors[0].1.contains("at most 100"));
        let long: Vec<Value> = (0..101).map(|n| json!(n)).collect();
        assert_eq!(
            one("custom.score", "in", Some(json!(long))).unwrap_err(),
            ["rules.all[0].value"]
        );
        assert_eq!(
            one("name", "eq", Some(json!("x".repeat(1001)))).unwrap_err(),
            ["rules.all[0].value"]
        );
        assert!(one("name", "eq", Some(json!("x".repeat(1000)))).is_ok());
    }

    #[test]
    fn group_ids_are_listed_with_their_paths() {
        let mut errors = FieldErrors::new();
        let (rules, groups) = Rules::parse(
            &json!({"any": [
                {"field": "group", "op": "eq", "value": "grp_a"},
                {"field": "group", "op": "in", "value": ["grp_b", "grp_a"]},
                {"field": "nope", "op": "eq", "value": "x"}
            ]}),
            "rules",
            &[],
            &mut errors,
        );
        assert!(rules.is_none());
        let listed: Vec<(&str, &str)> = groups
            .iter()
            .map(|(path, id)| (path.as_str(), id.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                ("rules.any[0].value", "grp_a"),
                ("rules.any[1].value[0]", "grp_b"),
                ("rules.any[1].value[1]", "grp_a"),
            ]
        );
    }

    #[test]
    fn like_patterns_and_nul() {
        assert_eq!(like_escaped(r"10%_a\b"), r"10\%\_a\\b");
        assert_eq!(
            one("name", "contains", Some(json!("a\u{0}b"))).unwrap_err(),
            ["rules.all[0].value"]
        );
        // Equality compares whole values, NUL included.
        assert!(one("name", "eq", Some(json!("a\u{0}b"))).is_ok());
    }
}
