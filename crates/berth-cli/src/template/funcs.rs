//! The template functions: docker's (json, join, split, lower, upper, title, truncate, pad,
//! println) and Go's (index, len, print, printf, eq, ne, lt, le, gt, ge, and, or, not), and
//! how values print.

use serde_json::Value;

/// Go's `%v` of a value. Null prints as Go prints a nil slice, the commonest null in
/// Docker's documents.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "[]".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(to_text).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", to_text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Go's `json.Marshal` (which escapes `<`, `>` and `&`; they occur only inside strings).
pub fn to_json(v: &Value) -> String {
    // Row contexts carry raw data for methods (`__labels`); it is no field of theirs.
    let v = match v {
        Value::Object(o) if o.keys().any(|k| k.starts_with("__")) => Value::Object(
            o.iter()
                .filter(|(k, _)| !k.starts_with("__"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        v => v.clone(),
    };
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
        Value::Null => "nil",
    }
}

fn cmp(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Ok(x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(std::cmp::Ordering::Equal)),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            kind(a),
            kind(b)
        )),
    }
}

fn sprintf(f: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('q') => out.push_str(
                &it.next()
                    .map(|v| Value::String(to_text(v)).to_string())
                    .unwrap_or_default(),
            ),
            Some(_) => out.push_str(&it.next().map(to_text).unwrap_or_else(|| "%!v(MISSING)".into())),
            None => out.push('%'),
        }
    }
    out
}

pub fn call(name: &str, a: Vec<Value>) -> Result<Value, String> {
    let s = |i: usize| a.get(i).map(to_text).unwrap_or_default();
    let n = |i: usize| a.get(i).and_then(|v| v.as_i64()).unwrap_or(0);
    let need = |k: usize| {
        if a.len() < k {
            Err(format!("wrong number of args for {name}: want {k} got {}", a.len()))
        } else {
            Ok(())
        }
    };
    Ok(match name {
        "json" => {
            need(1)?;
            Value::String(to_json(&a[0]))
        }
        "join" => {
            need(2)?;
            let items: Vec<String> = a[0]
                .as_array()
                .map(|v| v.iter().map(to_text).collect())
                .unwrap_or_default();
            Value::String(items.join(&s(1)))
        }
        "split" => {
            need(2)?;
            Value::from(s(0).split(&s(1)).map(str::to_string).collect::<Vec<_>>())
        }
        "lower" => Value::String(s(0).to_lowercase()),
        "upper" => Value::String(s(0).to_uppercase()),
        "title" => Value::String(
            s(0).split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "truncate" => {
            need(2)?;
            Value::String(s(0).chars().take(n(1).max(0) as usize).collect())
        }
        "pad" => {
            need(3)?;
            Value::String(format!(
                "{}{}{}",
                " ".repeat(n(1).max(0) as usize),
                s(0),
                " ".repeat(n(2).max(0) as usize)
            ))
        }
        "print" => Value::String(a.iter().map(to_text).collect::<Vec<_>>().join("")),
        "println" => Value::String(a.iter().map(to_text).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            need(1)?;
            Value::String(sprintf(&s(0), &a[1..]))
        }
        "len" => {
            need(1)?;
            Value::from(match &a[0] {
                Value::Array(x) => x.len(),
                Value::Object(x) => x.len(),
                Value::String(x) => x.len(),
                v => return Err(format!("len of {}", kind(v))),
            })
        }
        "index" => {
            need(1)?;
            let mut v = a[0].clone();
            for k in &a[1..] {
                v = match (&v, k) {
                    (Value::Array(x), Value::Number(i)) => x
                        .get(i.as_u64().unwrap_or(u64::MAX) as usize)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    (Value::Object(x), key) => x.get(&to_text(key)).cloned().unwrap_or(Value::String(String::new())),
                    (Value::Null, _) => Value::String(String::new()),
                    _ => return Err(format!("can't index item of type {}", kind(&v))),
                };
            }
            v
        }
        "not" => Value::Bool(!a.first().is_some_and(truthy)),
        "and" => a
            .iter()
            .find(|v| !truthy(v))
            .or(a.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => a
            .iter()
            .find(|v| truthy(v))
            .or(a.last())
            .cloned()
            .unwrap_or(Value::Null),
        "eq" => {
            need(2)?;
            Value::Bool(
                a[1..]
                    .iter()
                    .any(|b| b == &a[0] || (to_text(b) == to_text(&a[0]) && kind(b) == kind(&a[0]))),
            )
        }
        "ne" => {
            need(2)?;
            Value::Bool(a[0] != a[1])
        }
        "lt" | "le" | "gt" | "ge" => {
            need(2)?;
            let o = cmp(&a[0], &a[1])?;
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        _ => return Err(format!("function {name:?} not defined")),
    })
}
