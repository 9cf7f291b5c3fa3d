//! `warden import cedar`: a Cedar application (schema, policies and templates, template links,
//! entities) turned into a Warden policy directory.
//!
//! Cedar is read by a reader of its own (no dependency on `cedar-policy`): a logos lexer, a
//! recursive-descent parser of the policy syntax and of the human schema form, serde for the JSON
//! schema form, entities and links. What Warden cannot say yet is refused with a diagnostic at
//! the Cedar construct; what would decide differently is guarded or warned about.

mod ast;
mod entities;
mod error;
mod lexer;
mod parser;
mod schema;
mod translate;

use std::collections::HashSet;

pub use error::ImportError;

use crate::source::{Diagnostic, SourceFile};

/// The Cedar application to import. The schema is read as JSON when its text starts with `{`,
/// in the human form otherwise.
pub struct Input {
    pub schema: Option<SourceFile>,
    pub policies: SourceFile,
    pub entities: Option<SourceFile>,
    pub links: Option<SourceFile>,
}

/// The Warden directory's files (relative name, text) and the warnings.
pub struct Imported {
    pub files: Vec<(String, String)>,
    pub warnings: Vec<Diagnostic>,
}

/// Imports a Cedar application; on failure, every problem found.
pub fn import(input: &Input) -> Result<Imported, Vec<Diagnostic>> {
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut warnings: Vec<Diagnostic> = Vec::new();
    let in_file = |e: ImportError, f: &SourceFile| Diagnostic::in_file(e, f);

    let schema = match &input.schema {
        None => None,
        Some(file) => {
            let parsed = if file.text().trim_start().starts_with('{') {
                schema::parse_json(file.text())
            } else {
                schema::parse_human(file.text())
            };
            match parsed {
                Ok(s) => Some(s),
                Err(e) => return Err(vec![in_file(e, file)]),
            }
        }
    };
    let policies = parser::parse_policies(input.policies.text())
        .map_err(|e| vec![in_file(e, &input.policies)])?;

    let mut files = Vec::new();
    if let (Some(schema), Some(file)) = (&schema, &input.schema) {
        let mut schema_errors = Vec::new();
        let text = translate::schema_text(schema, &mut schema_errors);
        errors.extend(schema_errors.into_iter().map(|e| in_file(e, file)));
        files.push((
            "schema.warden".to_string(),
            canonical("schema.warden", text),
        ));
    }

    // Cedar names an unannotated policy by its position (`policy0`, …); Warden ids are unique.
    let mut used = HashSet::new();
    let mut ids = Vec::new();
    for (i, p) in policies.iter().enumerate() {
        let mut id = p
            .annotation("id")
            .map_or_else(|| format!("policy{i}"), str::to_string);
        while !used.insert(id.clone()) {
            id.push('_');
        }
        ids.push(id);
    }
    let links = match &input.links {
        None => Vec::new(),
        Some(file) => match entities::links(file.text()) {
            Ok(links) => links,
            Err(e) => {
                errors.push(in_file(e, file));
                Vec::new()
            }
        },
    };
    let mut instances = Vec::new();
    for (p, id) in policies.iter().zip(&ids) {
        if !p.is_template() {
            instances.push(translate::Instance {
                policy: p,
                id: id.clone(),
                principal: None,
                resource: None,
            });
        }
    }
    for (n, link) in links.iter().enumerate() {
        let template = policies
            .iter()
            .zip(&ids)
            .find(|(p, id)| p.is_template() && (**id == link.template));
        match template {
            Some((p, _)) => {
                let mut id = link
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("{}#{n}", link.template));
                while !used.insert(id.clone()) {
                    id.push('_');
                }
                instances.push(translate::Instance {
                    policy: p,
                    id,
                    principal: link.principal.clone(),
                    resource: link.resource.clone(),
                });
            }
            None => {
                if let Some(file) = &input.links {
                    errors.push(in_file(
                        ImportError::Json {
                            message: format!("link {n} names no template `{}`", link.template),
                            help: Some(format!(
                                "the templates are: {}",
                                policies
                                    .iter()
                                    .zip(&ids)
                                    .filter(|(p, _)| p.is_template())
                                    .map(|(_, id)| format!("`{id}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                        },
                        file,
                    ));
                }
            }
        }
    }
    let mut rules = String::new();
    for inst in &instances {
        match translate::rule(schema.as_ref(), inst) {
            Ok(t) => {
                if let Some(text) = t.text {
                    rules.push_str(&text);
                    rules.push('\n');
                }
                warnings.extend(t.warnings.into_iter().map(|e| in_file(e, &input.policies)));
            }
            Err(es) => errors.extend(es.into_iter().map(|e| in_file(e, &input.policies))),
        }
    }
    files.push((
        "policies.warden".to_string(),
        canonical("policies.warden", rules),
    ));

    if let Some(file) = &input.entities {
        match entities::data_file(schema.as_ref(), file.text()) {
            Ok(data) => files.push((
                "entities.json".to_string(),
                serde_json::to_string_pretty(&data).unwrap_or_default() + "\n",
            )),
            Err(e) => errors.push(in_file(e, file)),
        }
    }
    if errors.is_empty() {
        Ok(Imported { files, warnings })
    } else {
        Err(errors)
    }
}

/// The text in Warden's canonical layout (as `warden fmt` writes it), or as generated when it
/// does not parse (the check that follows reports why).
fn canonical(name: &str, text: String) -> String {
    let file = SourceFile::new(name, text.clone());
    let (parsed, problems) = crate::syntax::parser::parse(&file);
    let mut out = if problems.is_empty() {
        crate::syntax::fmt::format_file(&parsed)
    } else {
        text
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}
