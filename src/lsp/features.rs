//! What the editor asks for: diagnostics, hover, definitions, references, completion, code
//! actions and formatting, each read off the last load of the directory.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, CompletionItem,
    CompletionItemKind, CompletionParams, CompletionResponse, DiagnosticRelatedInformation,
    DiagnosticSeverity, DiagnosticTag, DocumentFormattingParams, DocumentSymbolParams,
    DocumentSymbolResponse, GotoDefinitionParams, GotoDefinitionResponse, Hover, HoverContents,
    HoverParams, Location, MarkupContent, MarkupKind, NumberOrString, Position, Range,
    ReferenceParams, SymbolInformation, SymbolKind, TextEdit, Uri, WorkspaceEdit,
};
use miette::Diagnostic as _;

use crate::ast::{Item, RoleDecl};
use crate::source::{Diagnostic, SourceFile, Span};
use crate::syntax::format_source;
use crate::syntax::token::Token;

use super::symbols::{Occurrence, Symbol};
use super::text::{LineIndex, path_to_uri};
use super::{Analysis, Server};

/// A diagnostic as the editor shows it: `warden check`'s message, the primary label, the
/// `help` line, the other labels as related places, and a "did you mean" fix as data for
/// [`code_actions`].
pub(crate) fn to_lsp_diagnostic(
    diagnostic: &Diagnostic,
    index: &LineIndex<'_>,
    uri: Option<&Uri>,
) -> lsp_types::Diagnostic {
    let labels: Vec<miette::LabeledSpan> = diagnostic
        .labels()
        .map(|labels| labels.collect())
        .unwrap_or_default();
    let span_of =
        |label: &miette::LabeledSpan| Span::new(label.offset(), label.offset() + label.len());
    let primary = labels.first().map(span_of).unwrap_or_default();
    let mut message = diagnostic.message();
    if let Some(label) = labels.first().and_then(|label| label.label()) {
        message.push_str(&format!("\n{label}"));
    }
    let help = diagnostic.help_text();
    if let Some(help) = &help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = match uri {
        Some(uri) => labels
            .iter()
            .skip(1)
            .map(|label| DiagnosticRelatedInformation {
                location: Location::new(uri.clone(), index.range(span_of(label))),
                message: label.label().unwrap_or("here").to_string(),
            })
            .collect(),
        None => Vec::new(),
    };
    let replacement = help.as_deref().and_then(did_you_mean).map(|suggested| {
        let written = diagnostic
            .file()
            .map(|file| file.slice(primary))
            .unwrap_or("");
        fix_text(written, suggested)
    });
    let unused = matches!(
        diagnostic.code().as_deref(),
        Some("warden::check::unused_let" | "warden::check::unused_role")
    );
    lsp_types::Diagnostic {
        range: index.range(primary),
        tags: unused.then(|| vec![DiagnosticTag::UNNECESSARY]),
        severity: Some(if diagnostic.is_error() {
            DiagnosticSeverity::ERROR
        } else {
            DiagnosticSeverity::WARNING
        }),
        code: diagnostic.code().map(NumberOrString::String),
        source: Some("warden".to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        data: replacement.map(|text| serde_json::json!({ "replacement": text })),
        ..lsp_types::Diagnostic::default()
    }
}

/// The name a "did you mean `x`?" help line suggests.
fn did_you_mean(help: &str) -> Option<&str> {
    const LEAD: &str = "did you mean `";
    let start = help.find(LEAD)? + LEAD.len();
    let rest = help.get(start..)?;
    rest.get(..rest.find('`')?)
}

/// The suggestion written the way the mistaken text was: quoted in JSON, `@` only once.
fn fix_text(written: &str, suggested: &str) -> String {
    if written.len() >= 2 && written.starts_with('"') && written.ends_with('"') {
        return format!("\"{suggested}\"");
    }
    match suggested.strip_prefix('@') {
        Some(bare) if !written.starts_with('@') => bare.to_string(),
        _ => suggested.to_string(),
    }
}

/// The quick fixes of the diagnostics the editor sends back: each "did you mean" suggestion.
pub(crate) fn code_actions(
    _server: &Server<'_>,
    params: CodeActionParams,
) -> Vec<CodeActionOrCommand> {
    params
        .context
        .diagnostics
        .iter()
        .filter_map(|diagnostic| {
            let replacement = diagnostic.data.as_ref()?.get("replacement")?.as_str()?;
            let edit = TextEdit::new(diagnostic.range, replacement.to_string());
            Some(CodeActionOrCommand::CodeAction(CodeAction {
                title: format!("replace with `{replacement}`"),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![diagnostic.clone()]),
                edit: Some(WorkspaceEdit::new(HashMap::from([(
                    params.text_document.uri.clone(),
                    vec![edit],
                )]))),
                is_preferred: Some(true),
                ..CodeAction::default()
            }))
        })
        .collect()
}

/// `warden fmt`'s layout for the whole document; nothing for a file that does not parse.
pub(crate) fn formatting(
    server: &Server<'_>,
    params: DocumentFormattingParams,
) -> Option<Vec<TextEdit>> {
    let path = super::text::uri_to_path(&params.text_document.uri)?;
    if path.extension().is_none_or(|ext| ext != "warden") {
        return None;
    }
    let text = server.text_of(&path)?;
    let source = SourceFile::new(path.display().to_string(), text.clone());
    let formatted = format_source(&source).ok()?;
    if formatted == *text {
        return Some(Vec::new());
    }
    let index = LineIndex::new(&text, server.encoding);
    let whole = Range::new(Position::new(0, 0), index.position(text.len()));
    Some(vec![TextEdit::new(whole, formatted)])
}

/// The symbol under the cursor, and the analysis and file it is in.
struct Cursor<'s> {
    analysis: &'s Analysis,
    file: usize,
    offset: usize,
    occurrence: Option<&'s Occurrence>,
}

fn cursor<'s>(server: &'s Server<'_>, uri: &Uri, position: Position) -> Option<Cursor<'s>> {
    let (analysis, path) = server.analysis_for(uri)?;
    let file = analysis.file_index(&path)?;
    let text = analysis.files.get(file)?.source.text();
    let offset = LineIndex::new(text, server.encoding).offset(position);
    let occurrence = analysis
        .occurrences
        .iter()
        .filter(|o| {
            o.file == file && (o.span.start as usize) <= offset && offset <= o.span.end as usize
        })
        .min_by_key(|o| o.span.len());
    Some(Cursor {
        analysis,
        file,
        offset,
        occurrence,
    })
}

impl Analysis {
    fn location(&self, encoding: super::Encoding, file: usize, span: Span) -> Option<Location> {
        let parsed = self.files.get(file)?;
        let uri = path_to_uri(self.paths.get(file)?)?;
        let index = LineIndex::new(parsed.source.text(), encoding);
        Some(Location::new(uri, index.range(span)))
    }

    fn text(&self, file: usize, span: Span) -> &str {
        self.files
            .get(file)
            .map(|parsed| parsed.source.slice(span))
            .unwrap_or("")
    }

    /// The entity types whose attribute an occurrence names: its declaring or `given` type,
    /// or the types of the value it is read from.
    fn owners(&self, occurrence: &Occurrence) -> Vec<String> {
        if let Some(owner) = &occurrence.owner {
            return vec![owner.clone()];
        }
        let (Some(base), Some(path)) = (occurrence.base, self.paths.get(occurrence.file)) else {
            return Vec::new();
        };
        self.type_at(path, base)
            .map(|ty| ty.entity_types.clone())
            .unwrap_or_default()
    }

    /// Whether two occurrences name the same thing.
    fn same_symbol(&self, a: &Occurrence, a_owners: &[String], b: &Occurrence) -> bool {
        if a.symbol != b.symbol {
            return false;
        }
        if !matches!(a.symbol, Symbol::Attribute(_)) || a_owners.is_empty() {
            return true;
        }
        let b_owners = self.owners(b);
        b_owners.is_empty() || b_owners.iter().any(|owner| a_owners.contains(owner))
    }

    /// The declarations of what an occurrence names. For an attribute of known owners, the
    /// owners' declarations when there are some, else every declaration of the name.
    fn declarations(&self, occurrence: &Occurrence) -> Vec<&Occurrence> {
        let owners = self.owners(occurrence);
        let all: Vec<&Occurrence> = self
            .occurrences
            .iter()
            .filter(|o| o.declaration.is_some() && self.same_symbol(occurrence, &owners, o))
            .collect();
        let owned: Vec<&Occurrence> = all
            .iter()
            .copied()
            .filter(|o| o.owner.as_ref().is_some_and(|owner| owners.contains(owner)))
            .collect();
        if owned.is_empty() { all } else { owned }
    }

    fn role(&self, name: &str) -> Option<(usize, &RoleDecl)> {
        self.files.iter().enumerate().find_map(|(file, parsed)| {
            parsed.ast.items.iter().find_map(|item| match item {
                Item::Role(role) if role.name.name == name => Some((file, role)),
                _ => None,
            })
        })
    }
}

/// The outline of a document: what it declares.
pub(crate) fn document_symbols(
    server: &Server<'_>,
    params: DocumentSymbolParams,
) -> Option<DocumentSymbolResponse> {
    let (analysis, path) = server.analysis_for(&params.text_document.uri)?;
    let file = analysis.file_index(&path)?;
    #[allow(
        deprecated,
        reason = "`deprecated` is a required field of the protocol's type"
    )]
    let symbols = analysis
        .occurrences
        .iter()
        .filter(|o| o.file == file && o.declaration.is_some())
        .filter_map(|o| {
            let kind = match (&o.symbol, &o.owner) {
                (Symbol::Entity(_), _) => SymbolKind::STRUCT,
                (Symbol::Action(_), _) => SymbolKind::FUNCTION,
                (Symbol::Role(_), _) => SymbolKind::CLASS,
                (Symbol::Let(_), _) => SymbolKind::CONSTANT,
                (Symbol::Attribute(_), Some(_)) => SymbolKind::FIELD,
                _ => return None,
            };
            Some(SymbolInformation {
                name: o.symbol.name().to_string(),
                kind,
                tags: None,
                deprecated: None,
                location: analysis.location(server.encoding, o.file, o.declaration?)?,
                container_name: o.owner.clone(),
            })
        })
        .collect();
    Some(DocumentSymbolResponse::Flat(symbols))
}

pub(crate) fn definition(
    server: &Server<'_>,
    params: GotoDefinitionParams,
) -> Option<GotoDefinitionResponse> {
    let at = params.text_document_position_params;
    let cursor = cursor(server, &at.text_document.uri, at.position)?;
    let occurrence = cursor.occurrence?;
    if let Symbol::DataFile(relative) = &occurrence.symbol {
        let policy = cursor.analysis.paths.get(cursor.file)?;
        let path = policy.parent()?.join(relative);
        let uri = path_to_uri(&path)?;
        return Some(GotoDefinitionResponse::Scalar(Location::new(
            uri,
            Range::default(),
        )));
    }
    let locations: Vec<Location> = cursor
        .analysis
        .declarations(occurrence)
        .into_iter()
        .filter_map(|o| cursor.analysis.location(server.encoding, o.file, o.span))
        .collect();
    (!locations.is_empty()).then_some(GotoDefinitionResponse::Array(locations))
}

pub(crate) fn references(server: &Server<'_>, params: ReferenceParams) -> Option<Vec<Location>> {
    let at = params.text_document_position;
    let cursor = cursor(server, &at.text_document.uri, at.position)?;
    let occurrence = cursor.occurrence?;
    let analysis = cursor.analysis;
    let owners = analysis.owners(occurrence);
    Some(
        analysis
            .occurrences
            .iter()
            .filter(|o| params.context.include_declaration || o.declaration.is_none())
            .filter(|o| analysis.same_symbol(occurrence, &owners, o))
            .filter_map(|o| analysis.location(server.encoding, o.file, o.span))
            .collect(),
    )
}

pub(crate) fn hover(server: &Server<'_>, params: HoverParams) -> Option<Hover> {
    let at = params.text_document_position_params;
    let cursor = cursor(server, &at.text_document.uri, at.position)?;
    let analysis = cursor.analysis;
    let path = analysis.paths.get(cursor.file)?;
    let text = match cursor.occurrence {
        Some(occurrence) => describe(analysis, path, occurrence)?,
        None => {
            // Any other expression: its type.
            let typed = analysis.typed.as_ref()?;
            let file = typed.paths.iter().position(|p| p == path)?;
            let now = analysis.files.get(cursor.file)?.source.text();
            let then = typed.texts.get(file)?;
            if **then != *now {
                return None;
            }
            let ty = typed
                .types
                .iter()
                .filter(|t| {
                    t.file == file
                        && (t.span.start as usize) <= cursor.offset
                        && cursor.offset <= t.span.end as usize
                })
                .min_by_key(|t| t.span.len())?;
            format!("`{}`: `{}`", now.get(ty.span.range())?, ty.ty)
        }
    };
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: text,
        }),
        range: cursor
            .occurrence
            .and_then(|o| analysis.location(server.encoding, o.file, o.span))
            .map(|location| location.range),
    })
}

fn code_block(text: &str) -> String {
    format!("```warden\n{}\n```", text.trim_end())
}

/// Hover text for a named thing: its declaration, and what the checker knows about it.
fn describe(analysis: &Analysis, path: &Path, occurrence: &Occurrence) -> Option<String> {
    let declarations = analysis.declarations(occurrence);
    let declared = declarations
        .iter()
        .filter_map(|o| Some(analysis.text(o.file, o.declaration?)))
        .map(code_block)
        .collect::<Vec<_>>()
        .join("\n\n");
    let schema = analysis.schema();
    let mut parts = Vec::new();
    match &occurrence.symbol {
        Symbol::Entity(name) => {
            if declared.is_empty() {
                parts.push(format!("entity type `{name}` (not declared)"));
            }
            parts.push(declared);
        }
        Symbol::Action(name) => {
            parts.push(declared);
            if let Some(schema) = schema {
                if let Some(members) = schema.action_groups.get(name) {
                    parts.push(format!("action group: stands for {}", names(members)));
                } else {
                    let groups: Vec<&String> = schema
                        .action_groups
                        .iter()
                        .filter(|(_, members)| members.contains(name))
                        .map(|(group, _)| group)
                        .collect();
                    if !groups.is_empty() {
                        parts.push(format!("in action group {}", names(groups)));
                    }
                }
            }
        }
        Symbol::Role(name) => parts.push(describe_role(analysis, name)?),
        Symbol::Let(name) => {
            parts.push(declared);
            let value = analysis
                .files
                .iter()
                .enumerate()
                .find_map(|(file, parsed)| {
                    parsed.ast.items.iter().find_map(|item| match item {
                        Item::Let(decl) if decl.name.name == *name => Some((file, decl.value.span)),
                        _ => None,
                    })
                });
            if let Some((file, span)) = value
                && let Some(ty) = analysis.type_at(analysis.paths.get(file)?, span)
            {
                parts.push(format!("type: `{}`", ty.ty));
            }
        }
        Symbol::Attribute(name) => {
            if let Some(ty) = occurrence
                .expr
                .and_then(|span| analysis.type_at(path, span))
            {
                let read = analysis.text(occurrence.file, occurrence.expr.unwrap_or_default());
                parts.push(format!("`{read}`: `{}`", ty.ty));
            }
            let owners: Vec<String> = declarations
                .iter()
                .filter_map(|o| o.owner.clone())
                .collect();
            if !owners.is_empty() {
                parts.push(format!("attribute `{name}` of {}", names(owners)));
            }
            parts.push(declared);
        }
        Symbol::DataFile(relative) => parts.push(format!("test data file `{relative}`")),
    }
    let text = parts
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    (!text.is_empty()).then_some(text)
}

/// A role: its head, the roles it inherits, and every grant it gives, its own first.
fn describe_role(analysis: &Analysis, name: &str) -> Option<String> {
    let (file, role) = analysis.role(name)?;
    let mut head = format!("role {name}");
    if !role.inherits.is_empty() {
        let parents: Vec<&str> = role.inherits.iter().map(|p| p.name.as_str()).collect();
        head.push_str(&format!(" : {}", parents.join(", ")));
    }
    let mut text = code_block(&head);
    let ancestors: Vec<String> = analysis
        .schema()
        .map(|schema| {
            let mut inherited = schema.role_closure(name);
            inherited.remove(name);
            inherited.into_iter().collect()
        })
        .unwrap_or_default();
    if !ancestors.is_empty() {
        text.push_str(&format!("\n\ninherits {}", names(&ancestors)));
    }
    let mut grants = Vec::new();
    for (holder, file, role) in std::iter::once((name.to_string(), file, role)).chain(
        ancestors.iter().filter_map(|ancestor| {
            let (file, role) = analysis.role(ancestor)?;
            Some((ancestor.clone(), file, role))
        }),
    ) {
        for grant in &role.grants {
            let start = grant
                .annotations
                .last()
                .map_or(grant.span.start, |annotation| annotation.span.end);
            let written = analysis.text(file, Span::new(start as usize, grant.span.end as usize));
            let line = written.split_whitespace().collect::<Vec<_>>().join(" ");
            grants.push(if holder == name {
                format!("- `{line}`")
            } else {
                format!("- `{line}` (from `{holder}`)")
            });
        }
    }
    if !grants.is_empty() {
        text.push_str(&format!("\n\npermissions:\n{}", grants.join("\n")));
    }
    Some(text)
}

fn names<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    names
        .into_iter()
        .map(|name| format!("`{}`", name.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn completion(
    server: &Server<'_>,
    params: CompletionParams,
) -> Option<CompletionResponse> {
    let at = params.text_document_position;
    let (analysis, path) = server.analysis_for(&at.text_document.uri)?;
    let text = server.text_of(&path)?;
    let offset = LineIndex::new(&text, server.encoding).offset(at.position);
    let before = text.get(..offset)?;
    let word_start = before
        .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_')
        .len();
    let lead = before.get(..word_start)?;
    let items = if let Some(receiver) = lead.strip_suffix('.') {
        fields(analysis, &path, &text, receiver)
    } else {
        let line = lead.rsplit('\n').next().unwrap_or("");
        names_in_place(analysis, line)
    };
    Some(CompletionResponse::Array(items))
}

/// After `receiver.`: the attributes or fields of the receiver's type.
fn fields(analysis: &Analysis, path: &Path, text: &str, receiver: &str) -> Vec<CompletionItem> {
    let start = receiver
        .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        .len();
    let span = Span::new(start, receiver.len());
    let written = receiver.get(start..).unwrap_or("");
    let mut items = Vec::new();
    if matches!(written, "subject" | "resource" | "action") {
        items.push(item("properties", CompletionItemKind::KEYWORD, None));
    }
    let schema = analysis.schema();
    // The attributes (or declared `properties`) of some entity types, with their types.
    let of_entities = |types: &mut dyn Iterator<Item = &String>, properties: bool| {
        let mut all = BTreeMap::new();
        for entity in types.filter_map(|t| schema?.entity_types.get(t)) {
            let record = if properties {
                entity.properties.as_ref()
            } else {
                Some(&entity.attributes)
            };
            for (name, field) in record.into_iter().flat_map(|r| &r.fields) {
                all.entry(name.clone())
                    .or_insert_with(|| field.ty.describe());
            }
        }
        all.into_iter().collect::<Vec<_>>()
    };
    let fields = match analysis.type_of_text(path, text, span) {
        Some(ty) if ty.entity_types.is_empty() => ty.fields.clone(),
        Some(ty) => of_entities(&mut ty.entity_types.iter(), ty.properties),
        // Not typed yet (a new expression): every attribute of the receiver's possible types.
        None if matches!(written, "subject" | "resource") => schema
            .map(|schema| of_entities(&mut schema.entity_types.keys(), false))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    items.extend(
        fields
            .into_iter()
            .map(|(name, ty)| item(&name, CompletionItemKind::FIELD, Some(ty))),
    );
    items
}

/// Names that fit where the cursor is: entity types after `on`, `is` or `in`; types after
/// `name:` in a declaration; actions after `allow` or `deny` or in a group; roles after
/// `role name :` or `given role`; elsewhere keywords, `let`s and entity types.
fn names_in_place(analysis: &Analysis, line: &str) -> Vec<CompletionItem> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let last = words.last().copied().unwrap_or("");
    let first = words.first().copied().unwrap_or("");
    // The declared names of one kind, as completion items.
    let declared = |wanted: fn(&Symbol) -> bool, kind: CompletionItemKind| {
        let mut names: Vec<&str> = analysis
            .occurrences
            .iter()
            .filter(|o| o.declaration.is_some() && wanted(&o.symbol))
            .map(|o| o.symbol.name())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .map(|name| item(name, kind, None))
            .collect::<Vec<_>>()
    };
    let entities = || {
        declared(
            |s| matches!(s, Symbol::Entity(_)),
            CompletionItemKind::STRUCT,
        )
    };
    let in_head = words.iter().any(|w| matches!(*w, "allow" | "deny"));
    let after_on = words.iter().rposition(|w| *w == "on");
    if (first == "role" && line.contains(':')) || last == "role" {
        return declared(|s| matches!(s, Symbol::Role(_)), CompletionItemKind::CLASS);
    }
    let in_condition = line.contains(" if ") || line.contains(" unless ");
    if last.ends_with(':') && !in_condition {
        // A declared attribute's type.
        let mut items = entities();
        items.extend(
            crate::check::BUILTIN_TYPES
                .iter()
                .map(|name| item(name, CompletionItemKind::CLASS, None)),
        );
        return items;
    }
    if matches!(last, "is" | "in" | "on") || (after_on.is_some() && !in_condition) {
        return entities();
    }
    if (in_head && !in_condition) || line.contains("= [") {
        let mut items = declared(
            |s| matches!(s, Symbol::Action(_)),
            CompletionItemKind::FUNCTION,
        );
        items.extend(
            ["on", "if", "unless"]
                .into_iter()
                .map(|k| item(k, CompletionItemKind::KEYWORD, None)),
        );
        return items;
    }
    let mut items: Vec<CompletionItem> = Token::KEYWORDS
        .iter()
        .map(|keyword| item(keyword, CompletionItemKind::KEYWORD, None))
        .collect();
    items.extend(declared(
        |s| matches!(s, Symbol::Let(_)),
        CompletionItemKind::VARIABLE,
    ));
    items.extend(entities());
    items
}

fn item(label: &str, kind: CompletionItemKind, detail: Option<String>) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail,
        ..CompletionItem::default()
    }
}
