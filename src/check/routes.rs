//! `route` declarations: methods, templates, actions, types and parameters, and conflicts
//! between routes. The same pass builds the [`RouteTable`] the compiler puts in the program.

use std::sync::Arc;

use crate::ast::{Item, RouteDecl, RoutePart};
use crate::check::error::CheckError;
use crate::check::route_table::{Part, Route, RouteTable, Segment, is_method, parse_template};
use crate::check::schema::Schema;
use crate::check::suggest::{did_you_mean, list};
use crate::syntax::ParsedFile;

/// Checks every route and builds the table of the valid ones. `report` receives each error
/// with the index of its file.
pub(crate) fn table(
    files: &[ParsedFile],
    schema: &Schema,
    report: &mut dyn FnMut(usize, CheckError),
) -> RouteTable {
    let mut table = RouteTable::default();
    // (file, route span) of each route in the table, by index.
    let mut origins: Vec<(usize, crate::source::Span)> = Vec::new();
    for (file, parsed) in files.iter().enumerate() {
        for item in &parsed.ast.items {
            let Item::Route(decl) = item else { continue };
            let Some(route) = check_route(parsed, decl, schema, &mut |e| report(file, e)) else {
                continue;
            };
            if let Err((other, message)) = table.insert(route) {
                let first = other.and_then(|i| origins.get(i)).copied();
                let (first_span, help) = match first {
                    Some((f, span)) if f == file => (Some(span), String::new()),
                    Some((f, span)) => {
                        let (line, column) = files
                            .get(f)
                            .map(|p| p.source.line_col(span.start as usize))
                            .unwrap_or_default();
                        let name = files.get(f).map(|p| p.source.name()).unwrap_or_default();
                        (
                            None,
                            format!("the other route is at `{name}:{line}:{column}`; "),
                        )
                    }
                    None => (None, String::new()),
                };
                report(
                    file,
                    CheckError::RouteConflict {
                        message,
                        span: decl.path.span,
                        first: first_span,
                        help: format!(
                            "{help}remove one, or make one template more specific: a literal segment beats a `{{param}}`, which beats a `{{*rest}}`"
                        ),
                    },
                );
                continue;
            }
            origins.push((file, decl.path.span));
        }
    }
    table
}

fn check_route(
    parsed: &ParsedFile,
    decl: &RouteDecl,
    schema: &Schema,
    report: &mut dyn FnMut(CheckError),
) -> Option<Route> {
    let mut ok = true;
    if let Some(method) = &decl.method
        && !(is_method(&method.name) && method.name.bytes().all(|b| !b.is_ascii_lowercase()))
    {
        ok = false;
        report(CheckError::Route {
            message: format!("`{}` is not an HTTP method", method.name),
            span: method.span,
            label: "not a method".to_string(),
            help: format!(
                "methods are upper case (`{}`), or `*` for any method",
                method.name.to_ascii_uppercase()
            ),
        });
    }
    let segments = match parse_template(&decl.path.value) {
        Ok(segments) => segments,
        Err(message) => {
            report(CheckError::Route {
                message: format!("invalid route path: {message}"),
                span: decl.path.span,
                label: "this path".to_string(),
                help: "a path is `/` and segments: literal text, `{name}`, or a final `{*name}`"
                    .to_string(),
            });
            return None;
        }
    };
    let captured: Vec<&str> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Param(n) | Segment::Rest(n) => Some(n.as_str()),
            Segment::Literal(_) => None,
        })
        .collect();

    let action = decl.action.text.as_str();
    let ty = decl.resource_type.name.as_str();
    if schema.declares_actions() && !schema.actions.contains_key(action) {
        ok = false;
        if schema.action_groups.contains_key(action) {
            report(CheckError::NotAnAction {
                name: action.to_string(),
                span: decl.action.span,
                help: "a route maps a request to one action: name one of the group's members"
                    .to_string(),
            });
        } else {
            report(CheckError::UnknownAction {
                name: action.to_string(),
                span: decl.action.span,
                help: did_you_mean(action, schema.actions.keys().map(String::as_str), || {
                    format!("declare it: `action {action} on {ty}`")
                }),
            });
        }
    }
    if schema.declares_entities() && !schema.entity_types.contains_key(ty) {
        ok = false;
        report(CheckError::UnknownType {
            name: ty.to_string(),
            span: decl.resource_type.span,
            help: did_you_mean(ty, schema.entity_types.keys().map(String::as_str), || {
                format!("declare it: `entity {ty}`")
            }),
        });
    }
    if let Some(declared) = schema.actions.get(action)
        && !declared.resource_types.is_empty()
        && !declared.resource_types.iter().any(|t| t == ty)
    {
        ok = false;
        report(CheckError::Route {
            message: format!("action `{action}` does not apply to `{ty}`"),
            span: decl.resource_type.span,
            label: "this type".to_string(),
            help: format!(
                "`{action}` applies to {}: route to one of them, or add `{ty}` to its `on` list",
                list(declared.resource_types.iter())
            ),
        });
    }
    let mut part = |part: &RoutePart| -> Option<Part> {
        match part {
            RoutePart::Literal(text) => Some(Part::Literal(text.value.as_str().into())),
            RoutePart::Param(param) if captured.contains(&param.name.as_str()) => {
                Some(Part::Param(param.name.as_str().into()))
            }
            RoutePart::Param(param) => {
                report(CheckError::Route {
                    message: format!("parameter `{}` is not captured by the path", param.name),
                    span: param.span,
                    label: "not in the path".to_string(),
                    help: if captured.is_empty() {
                        "the path captures no parameter: add `{name}` to it, or use a literal id"
                            .to_string()
                    } else {
                        did_you_mean(&param.name, captured.iter().copied(), || {
                            format!("the path captures {}", list(captured.iter()))
                        })
                    },
                });
                None
            }
        }
    };
    let resource_id = part(&decl.resource_id);
    let mut properties = Vec::new();
    for (key, value) in &decl.properties {
        match part(value) {
            Some(value) => properties.push((Arc::from(key.text.as_str()), value)),
            None => ok = false,
        }
    }
    if let Some(declared) = schema
        .entity_types
        .get(ty)
        .and_then(|t| t.properties.as_ref())
    {
        for (key, _) in &decl.properties {
            if !declared.fields.contains_key(&key.text) {
                ok = false;
                report(CheckError::Route {
                    message: format!("`{ty}` declares no property `{}`", key.text),
                    span: key.span,
                    label: "unknown property".to_string(),
                    help: did_you_mean(
                        &key.text,
                        declared.fields.keys().map(String::as_str),
                        || format!("`{ty}`'s properties are declared in its `properties: {{...}}`"),
                    ),
                });
            }
        }
    }
    let resource_id = resource_id?;
    if !ok {
        return None;
    }
    let (line, _) = parsed.source.line_col(decl.span.start as usize);
    Some(Route {
        method: decl.method.as_ref().map(|m| m.name.as_str().into()),
        template: decl.path.value.as_str().into(),
        action: action.into(),
        resource_type: ty.into(),
        resource_id,
        properties,
        location: format!("{}:{line}", parsed.source.name()).into(),
    })
}
