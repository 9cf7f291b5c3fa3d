//! Cedar's entities JSON → a Warden data file; template links.

use serde_json::{Map, Value, json};

use super::ast::Uid;
use super::error::ImportError;
use super::schema::{Schema, Type};

/// A Cedar datetime (`2024-10-15`, `2024-10-15T11:35:00Z`, `…T11:35:00.000+0100`) as the
/// RFC 3339 text Warden reads.
pub fn datetime(text: &str) -> Option<String> {
    let valid_date = |d: &str| {
        d.len() == 10
            && d.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
    };
    if valid_date(text) {
        return Some(format!("{text}T00:00:00Z"));
    }
    let (date, time) = text.split_once('T')?;
    if !valid_date(date) {
        return None;
    }
    if let Some(clock) = time.strip_suffix('Z') {
        return Some(format!("{date}T{clock}Z"));
    }
    // `hh:mm:ss[.SSS](+|-)hhmm`
    let split = time.len().checked_sub(5)?;
    let (clock, offset) = (time.get(..split)?, time.get(split..)?);
    let (sign, digits) = offset.split_at(1);
    if !(sign == "+" || sign == "-") || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{date}T{clock}{sign}{}:{}",
        digits.get(..2)?,
        digits.get(2..)?
    ))
}

/// `{"type": T, "id": I}`, `{"__entity": {…}}` or `T::"I"`.
pub fn uid(value: &Value) -> Option<Uid> {
    match value {
        Value::Object(map) => {
            if let Some(inner) = map.get("__entity") {
                return uid(inner);
            }
            Some(Uid {
                ty: map.get("type")?.as_str()?.to_string(),
                id: map.get("id")?.as_str()?.to_string(),
            })
        }
        Value::String(text) => {
            let (ty, id) = text.rsplit_once("::")?;
            let id = id.strip_prefix('"')?.strip_suffix('"')?;
            Some(Uid {
                ty: ty.to_string(),
                id: id.to_string(),
            })
        }
        _ => None,
    }
}

fn uid_json(uid: &Uid) -> Value {
    json!({"type": uid.ty, "id": uid.id})
}

/// An attribute value, read through its declared type where the schema has one.
fn value(schema: &Schema, ty: Option<&Type>, v: &Value, at: &str) -> Result<Value, ImportError> {
    let resolved = ty.map(|t| resolve(schema, t));
    if let Value::Object(map) = v {
        if map.contains_key("__entity") {
            return uid(v)
                .map(|u| uid_json(&u))
                .ok_or_else(|| ImportError::json(format!("{at}: a malformed `__entity`")));
        }
        let extension = map.get("__extn").unwrap_or(v);
        if let (Some(function), Some(arg)) = (
            extension.get("fn").and_then(Value::as_str),
            extension.get("arg").and_then(Value::as_str),
        ) {
            return extension_value(function, arg, at);
        }
    }
    match (resolved.as_ref(), v) {
        (Some(Type::Named(name, _)), Value::String(text)) if name.ends_with("datetime") => {
            extension_value("datetime", text, at)
        }
        (Some(Type::Named(name, _)), Value::String(text)) if name.ends_with("decimal") => {
            extension_value("decimal", text, at)
        }
        (Some(Type::Set(inner)), Value::Array(items)) => Ok(Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| value(schema, Some(inner), item, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        )),
        (Some(Type::Record(attrs)), Value::Object(map)) => {
            let mut out = Map::new();
            for (k, item) in map {
                let ty = attrs.iter().find(|a| &a.name == k).map(|a| &a.ty);
                out.insert(k.clone(), value(schema, ty, item, &format!("{at}.{k}"))?);
            }
            Ok(Value::Object(out))
        }
        (None, Value::Array(items)) => Ok(Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| value(schema, None, item, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        )),
        (None, Value::Object(map)) => {
            let mut out = Map::new();
            for (k, item) in map {
                out.insert(k.clone(), value(schema, None, item, &format!("{at}.{k}"))?);
            }
            Ok(Value::Object(out))
        }
        (_, Value::Number(n)) if !n.is_i64() => Err(ImportError::json(format!(
            "{at}: `{n}` is not a Cedar `Long` (Cedar has no floating-point numbers)"
        ))),
        _ => Ok(v.clone()),
    }
}

fn resolve(schema: &Schema, ty: &Type) -> Type {
    let mut current = ty.clone();
    for _ in 0..=schema.common.len() {
        match &current {
            Type::Named(name, _) => match schema.common(name) {
                Some(inner) => current = inner.clone(),
                None => return current,
            },
            _ => return current,
        }
    }
    current
}

fn extension_value(function: &str, arg: &str, at: &str) -> Result<Value, ImportError> {
    match function {
        "ip" | "ipaddr" | "duration" => Ok(Value::String(arg.to_string())),
        "datetime" => datetime(arg)
            .map(Value::String)
            .ok_or_else(|| ImportError::json(format!("{at}: `{arg}` is not a Cedar datetime"))),
        // Written as the string a Warden data file holds where the schema says `Decimal`.
        "decimal" => match crate::syntax::decimal::parse_decimal(arg) {
            Ok(_) => Ok(Value::String(arg.to_string())),
            Err(error) => Err(ImportError::json(format!(
                "{at}: `{arg}` is not a Cedar decimal: {error}"
            ))),
        },
        other => Err(ImportError::UnsupportedJson {
            message: format!(
                "Warden cannot say the extension value `{other}(\"{arg}\")` yet, at {at}"
            ),
            help: "the extensions Warden reads are `ip`, `ipaddr`, `datetime`, `duration` and \
                   `decimal`"
                .to_string(),
        }),
    }
}

/// Cedar's entities file (`[{"uid", "attrs", "parents"}]`) as a Warden data file.
pub(crate) fn data_file(schema: Option<&Schema>, text: &str) -> Result<Value, ImportError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| ImportError::json(format!("the entities file is not valid JSON: {e}")))?;
    let Value::Array(items) = root else {
        return Err(ImportError::json(
            "the entities file must be a JSON array".to_string(),
        ));
    };
    let empty = Schema::default();
    let schema = schema.unwrap_or(&empty);
    let mut entities = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("[{i}]");
        let Some(id) = item.get("uid").and_then(uid) else {
            return Err(ImportError::json(format!("{at}: an entity needs a `uid`")));
        };
        if super::schema::is_action_type(&id.ty) {
            continue;
        }
        if item
            .get("tags")
            .and_then(Value::as_object)
            .is_some_and(|t| !t.is_empty())
        {
            return Err(ImportError::UnsupportedJson {
                message: format!("Warden cannot say entity tags yet, at {at}"),
                help: "store the tags as a record attribute".to_string(),
            });
        }
        let declared = schema.entity(&id.ty);
        let mut attributes = Map::new();
        if let Some(Value::Object(attrs)) = item.get("attrs") {
            for (k, v) in attrs {
                let ty = declared
                    .and_then(|d| d.attrs.iter().find(|a| &a.name == k))
                    .map(|a| &a.ty);
                attributes.insert(k.clone(), value(schema, ty, v, &format!("{at}.attrs.{k}"))?);
            }
        }
        let mut parents = Vec::new();
        if let Some(Value::Array(list)) = item.get("parents") {
            for (j, p) in list.iter().enumerate() {
                match uid(p) {
                    Some(p) => parents.push(uid_json(&p)),
                    None => {
                        return Err(ImportError::json(format!(
                            "{at}.parents[{j}]: not an entity"
                        )));
                    }
                }
            }
        }
        let mut entity = Map::new();
        entity.insert("type".to_string(), Value::String(id.ty));
        entity.insert("id".to_string(), Value::String(id.id));
        if !attributes.is_empty() {
            entity.insert("attributes".to_string(), Value::Object(attributes));
        }
        if !parents.is_empty() {
            entity.insert("parents".to_string(), Value::Array(parents));
        }
        entities.push(Value::Object(entity));
    }
    Ok(json!({ "entities": entities }))
}

/// One template link.
pub struct Link {
    pub template: String,
    pub id: Option<String>,
    pub principal: Option<Uid>,
    pub resource: Option<Uid>,
}

/// Template links: the Cedar CLI's form (`[{"template_id", "link_id", "args": {"?principal":
/// …}}]`) or `[{"template", "principal", "resource"}]`.
pub fn links(text: &str) -> Result<Vec<Link>, ImportError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| ImportError::json(format!("the links file is not valid JSON: {e}")))?;
    let Value::Array(items) = root else {
        return Err(ImportError::json(
            "the links file must be a JSON array".to_string(),
        ));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let template = item
            .get("template_id")
            .or_else(|| item.get("template"))
            .and_then(Value::as_str)
            .ok_or_else(|| ImportError::json(format!("[{i}]: a link needs a `template_id`")))?;
        let id = item
            .get("link_id")
            .or_else(|| item.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let arg = |slot: &str, plain: &str| {
            item.get("args")
                .and_then(|a| a.get(slot))
                .or_else(|| item.get(plain))
                .map(|v| {
                    uid(v).ok_or_else(|| {
                        ImportError::json(format!("[{i}]: `{slot}` is not an entity"))
                    })
                })
                .transpose()
        };
        out.push(Link {
            template: template.to_string(),
            id,
            principal: arg("?principal", "principal")?,
            resource: arg("?resource", "resource")?,
        });
    }
    Ok(out)
}
