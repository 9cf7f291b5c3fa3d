//! `warden lsp`: a language server over stdio for policy authors' editors.
//!
//! It keeps the editor's open documents as an overlay over the policy directory on disk and,
//! after each change, runs the same load the CLI runs ([`engine::load_directory_with`]) on the
//! whole directory: a change in `schema.warden` re-checks the rules that use it, and every
//! diagnostic carries the message, labels and `help` line `warden check` prints. Hover,
//! go-to-definition, references and completion read the trees that load parsed and the types
//! the checker gave each expression (so does the outline of declarations); formatting is
//! `warden fmt`'s printer. Bursts of edits are
//! checked once: a check runs when no further message is waiting, or before a request.

mod features;
mod symbols;
mod text;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::Notification as _;
use lsp_types::{
    CodeActionProviderCapability, CompletionOptions, DidChangeTextDocumentParams,
    DidCloseTextDocumentParams, DidOpenTextDocumentParams, HoverProviderCapability,
    InitializeParams, OneOf, PositionEncodingKind, PublishDiagnosticsParams, ServerCapabilities,
    TextDocumentSyncCapability, TextDocumentSyncKind, Uri, notification,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::check::{ExprType, Schema};
use crate::engine::{self, LoadOptions, Loaded};
use crate::source::{Diagnostic, Span};
use crate::syntax::ParsedFile;

use symbols::Occurrence;
use text::{Encoding, LineIndex, path_to_uri, uri_to_path};

/// Why the language server stopped.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LspError {
    #[error("language server protocol error: {0}")]
    #[diagnostic(
        code(warden::lsp::protocol),
        help("`warden lsp` is started by an editor, which speaks JSON-RPC on its standard input")
    )]
    Protocol(#[from] lsp_server::ProtocolError),
    #[error("cannot read or write a message: {0}")]
    #[diagnostic(code(warden::lsp::json))]
    Json(#[from] serde_json::Error),
    #[error("the connection to the editor closed")]
    #[diagnostic(code(warden::lsp::disconnected))]
    Disconnected,
    #[error("the standard input or output failed: {0}")]
    #[diagnostic(code(warden::lsp::io))]
    Io(#[from] std::io::Error),
}

/// How the server is started.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// The policy directory, when it should not be found from the opened files.
    pub policies: Option<PathBuf>,
}

/// Serves one editor on standard input and output until it says `exit`.
pub(crate) fn serve_stdio(options: Options) -> Result<(), LspError> {
    let (connection, threads) = Connection::stdio();
    let result = serve(&connection, options);
    // The writer thread ends when the last sender is gone.
    drop(connection);
    threads.join()?;
    result
}

/// Serves one editor on an established connection.
pub fn serve(connection: &Connection, options: Options) -> Result<(), LspError> {
    let (id, params) = connection.initialize_start()?;
    let params: InitializeParams = serde_json::from_value(params)?;
    let encoding = negotiate_encoding(&params);
    let workspace = workspace_root(&params);
    let policies = options.policies.or_else(|| {
        let option = params
            .initialization_options
            .as_ref()?
            .get("policies")?
            .as_str()?;
        let path = PathBuf::from(option);
        Some(match &workspace {
            Some(root) if path.is_relative() => root.join(path),
            _ => path,
        })
    });
    let capabilities = ServerCapabilities {
        position_encoding: Some(match encoding {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        }),
        text_document_sync: Some(TextDocumentSyncCapability::Kind(
            TextDocumentSyncKind::INCREMENTAL,
        )),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".to_string()]),
            ..CompletionOptions::default()
        }),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    };
    connection.initialize_finish(
        id,
        serde_json::json!({
            "capabilities": capabilities,
            "serverInfo": { "name": "warden", "version": env!("CARGO_PKG_VERSION") },
        }),
    )?;
    let mut server = Server {
        connection,
        encoding,
        policies: policies.map(|p| absolute(&p)),
        workspace,
        documents: BTreeMap::new(),
        analyses: BTreeMap::new(),
        dirty: BTreeSet::new(),
    };
    server.run()
}

/// UTF-8 columns when the editor offers them (no conversion), else the protocol's UTF-16.
fn negotiate_encoding(params: &InitializeParams) -> Encoding {
    let offered = params
        .capabilities
        .general
        .as_ref()
        .and_then(|general| general.position_encodings.as_ref());
    match offered {
        Some(kinds) if kinds.contains(&PositionEncodingKind::UTF8) => Encoding::Utf8,
        _ => Encoding::Utf16,
    }
}

fn workspace_root(params: &InitializeParams) -> Option<PathBuf> {
    if let Some(folder) = params.workspace_folders.as_ref().and_then(|f| f.first()) {
        return uri_to_path(&folder.uri);
    }
    #[allow(deprecated, reason = "older editors send only `rootUri`")]
    params.root_uri.as_ref().and_then(uri_to_path)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// An open document: the editor's text, which stands in for the file on disk.
struct Document {
    text: Arc<str>,
    version: i32,
}

/// What the last load of one policy directory found.
pub(crate) struct Analysis {
    root: PathBuf,
    /// The policy files as last parsed (items with syntax errors left out).
    files: Vec<ParsedFile>,
    /// Each file's path, by the same index.
    paths: Vec<PathBuf>,
    /// Where every name of `files` is declared and used.
    occurrences: Vec<Occurrence>,
    /// The declarations and expression types of the last load that parsed: kept while a file
    /// has a syntax error, so hover and completion go on working as one types.
    typed: Option<Typed>,
    /// The diagnostics sent for each file.
    diagnostics: BTreeMap<PathBuf, Vec<lsp_types::Diagnostic>>,
}

pub(crate) struct Typed {
    schema: Schema,
    paths: Vec<PathBuf>,
    texts: Vec<Arc<str>>,
    types: Vec<ExprType>,
    /// Each expression's entry in `types`, by file and byte range.
    by_span: HashMap<(usize, u32, u32), usize>,
}

impl Analysis {
    fn new(root: PathBuf) -> Analysis {
        Analysis {
            root,
            files: Vec::new(),
            paths: Vec::new(),
            occurrences: Vec::new(),
            typed: None,
            diagnostics: BTreeMap::new(),
        }
    }

    fn file_index(&self, path: &Path) -> Option<usize> {
        self.paths.iter().position(|p| p == path)
    }

    fn schema(&self) -> Option<&Schema> {
        self.typed.as_ref().map(|typed| &typed.schema)
    }

    /// The type the checker gave the expression at `span` of the file at `path` as it reads
    /// now. When the file has changed since the last load that typed it, the nearest
    /// expression written the same way stands in.
    fn type_at(&self, path: &Path, span: Span) -> Option<&ExprType> {
        let file = self.file_index(path)?;
        let now = self.files.get(file)?.source.text();
        self.type_of_text(path, now, span)
    }

    fn type_of_text(&self, path: &Path, now: &str, span: Span) -> Option<&ExprType> {
        let typed = self.typed.as_ref()?;
        let file = typed.paths.iter().position(|p| p == path)?;
        let then = typed.texts.get(file)?;
        if **then == *now {
            let entry = typed.by_span.get(&(file, span.start, span.end))?;
            return typed.types.get(*entry);
        }
        let wanted = now.get(span.range())?;
        typed
            .types
            .iter()
            .filter(|t| t.file == file && then.get(t.span.range()) == Some(wanted))
            .min_by_key(|t| t.span.start.abs_diff(span.start))
    }
}

struct Server<'c> {
    connection: &'c Connection,
    encoding: Encoding,
    /// The policy directory given by flag or editor setting.
    policies: Option<PathBuf>,
    workspace: Option<PathBuf>,
    documents: BTreeMap<PathBuf, Document>,
    /// One analysis per policy directory with an open document, by directory.
    analyses: BTreeMap<PathBuf, Analysis>,
    /// Directories whose documents changed since their last load.
    dirty: BTreeSet<PathBuf>,
}

impl Server<'_> {
    fn run(&mut self) -> Result<(), LspError> {
        let mut waiting = None;
        loop {
            let message = match waiting.take() {
                Some(message) => message,
                None => match self.connection.receiver.recv() {
                    Ok(message) => message,
                    Err(_) => return Ok(()),
                },
            };
            match message {
                Message::Request(request) => {
                    if self.connection.handle_shutdown(&request)? {
                        return Ok(());
                    }
                    self.refresh()?;
                    let response = self.request(request);
                    self.send(response.into())?;
                }
                Message::Notification(notification) => self.notification(notification),
                Message::Response(_) => {}
            }
            if !self.dirty.is_empty() {
                // Check once per burst of edits: only when no other message is waiting.
                match self.connection.receiver.try_recv() {
                    Ok(message) => waiting = Some(message),
                    Err(_) => self.refresh()?,
                }
            }
        }
    }

    fn send(&self, message: Message) -> Result<(), LspError> {
        self.connection
            .sender
            .send(message)
            .map_err(|_| LspError::Disconnected)
    }

    fn request(&self, request: Request) -> Response {
        let id = request.id.clone();
        match request.method.as_str() {
            "textDocument/hover" => answer(request, |p| features::hover(self, p)),
            "textDocument/definition" => answer(request, |p| features::definition(self, p)),
            "textDocument/references" => answer(request, |p| features::references(self, p)),
            "textDocument/completion" => answer(request, |p| features::completion(self, p)),
            "textDocument/formatting" => answer(request, |p| features::formatting(self, p)),
            "textDocument/codeAction" => answer(request, |p| features::code_actions(self, p)),
            "textDocument/documentSymbol" => {
                answer(request, |p| features::document_symbols(self, p))
            }
            method => Response::new_err(
                id,
                ErrorCode::MethodNotFound as i32,
                format!("`{method}` is not supported"),
            ),
        }
    }

    fn notification(&mut self, notification: Notification) {
        match notification.method.as_str() {
            notification::DidOpenTextDocument::METHOD => {
                if let Ok(params) = from_params::<DidOpenTextDocumentParams>(notification.params)
                    && let Some(path) = uri_to_path(&params.text_document.uri)
                {
                    let root = self.root_of(&path);
                    let json = path.extension().is_some_and(|ext| ext == "json");
                    if json && self.policies.as_ref() != Some(&root) && !holds_policies(&root) {
                        // A JSON file outside any policy directory is not a data file.
                        return;
                    }
                    self.documents.insert(
                        path.clone(),
                        Document {
                            text: Arc::from(params.text_document.text),
                            version: params.text_document.version,
                        },
                    );
                    self.analyses
                        .entry(root.clone())
                        .or_insert_with(|| Analysis::new(root.clone()));
                    self.dirty.insert(root);
                }
            }
            notification::DidChangeTextDocument::METHOD => {
                if let Ok(params) = from_params::<DidChangeTextDocumentParams>(notification.params)
                    && let Some(path) = uri_to_path(&params.text_document.uri)
                    && let Some(document) = self.documents.get_mut(&path)
                {
                    let mut text = document.text.to_string();
                    for change in params.content_changes {
                        match change.range {
                            Some(range) => {
                                let index = LineIndex::new(&text, self.encoding);
                                let start = index.offset(range.start);
                                let end = index.offset(range.end).max(start);
                                text.replace_range(start..end, &change.text);
                            }
                            None => text = change.text,
                        }
                    }
                    document.text = Arc::from(text);
                    document.version = params.text_document.version;
                    let root = self.root_of(&path);
                    self.dirty.insert(root);
                }
            }
            notification::DidCloseTextDocument::METHOD => {
                if let Ok(params) = from_params::<DidCloseTextDocumentParams>(notification.params)
                    && let Some(path) = uri_to_path(&params.text_document.uri)
                {
                    self.documents.remove(&path);
                    let root = self.root_of(&path);
                    self.dirty.insert(root);
                }
            }
            // The file on disk now says what the overlay said; a watched file changed outside
            // the editor: either way, load again.
            notification::DidSaveTextDocument::METHOD
            | notification::DidChangeWatchedFiles::METHOD => {
                self.dirty.extend(self.analyses.keys().cloned());
            }
            _ => {}
        }
    }

    /// The policy directory a file belongs to: the configured one when it holds the file, a
    /// directory already being analysed that holds it, or else the highest directory of the
    /// run of directories holding `.warden` files that starts at (or just above) the file.
    fn root_of(&self, path: &Path) -> PathBuf {
        if let Some(policies) = &self.policies
            && path.starts_with(policies)
        {
            return policies.clone();
        }
        if let Some(root) = self
            .analyses
            .keys()
            .filter(|root| path.starts_with(root))
            .max_by_key(|root| root.as_os_str().len())
        {
            return root.clone();
        }
        let start = path.parent().unwrap_or(path).to_path_buf();
        let mut best = None;
        let mut dir = Some(start.as_path());
        for _ in 0..8 {
            let Some(here) = dir else { break };
            if let Some(workspace) = &self.workspace
                && !here.starts_with(workspace)
            {
                break;
            }
            if holds_policies(here) {
                best = Some(here.to_path_buf());
            } else if best.is_some() {
                break;
            }
            dir = here.parent();
        }
        best.unwrap_or(start)
    }

    /// Loads every directory whose documents changed, and sends what it found.
    fn refresh(&mut self) -> Result<(), LspError> {
        let roots = std::mem::take(&mut self.dirty);
        for root in roots {
            let open = self.documents.keys().any(|path| path.starts_with(&root));
            if !open {
                // Nothing of the directory is open any more: take its diagnostics back.
                if let Some(analysis) = self.analyses.remove(&root) {
                    for path in analysis.diagnostics.keys() {
                        self.publish(path, Vec::new())?;
                    }
                }
                continue;
            }
            let options = LoadOptions {
                overlay: self
                    .documents
                    .iter()
                    .filter(|(path, _)| path.starts_with(&root))
                    .map(|(path, document)| (path.clone(), document.text.clone()))
                    .collect(),
                record_types: true,
            };
            let loaded = engine::load_directory_with(&root, &options);
            let mut analysis = self
                .analyses
                .remove(&root)
                .unwrap_or_else(|| Analysis::new(root.clone()));
            let before = std::mem::take(&mut analysis.diagnostics);
            match loaded {
                Ok(loaded) => self.update(&mut analysis, loaded),
                Err(diagnostic) => self.add_unplaced(&mut analysis, &diagnostic),
            }
            // Every open document hears back, so an editor knows its version was checked.
            let mut quiet: BTreeSet<&PathBuf> = before.keys().collect();
            quiet.extend(self.documents.keys().filter(|path| path.starts_with(&root)));
            for path in quiet {
                if !analysis.diagnostics.contains_key(path) {
                    self.publish(path, Vec::new())?;
                }
            }
            for (path, diagnostics) in &analysis.diagnostics {
                self.publish(path, diagnostics.clone())?;
            }
            self.analyses.insert(root, analysis);
        }
        Ok(())
    }

    fn update(&self, analysis: &mut Analysis, loaded: Loaded) {
        analysis.paths = loaded
            .files
            .iter()
            .map(|file| PathBuf::from(file.source.name()))
            .collect();
        analysis.occurrences = symbols::index(loaded.files.iter().map(|file| &file.ast));
        if let Some(schema) = loaded.schema {
            let by_span = loaded
                .types
                .iter()
                .enumerate()
                .map(|(entry, t)| ((t.file, t.span.start, t.span.end), entry))
                .collect();
            analysis.typed = Some(Typed {
                by_span,
                schema,
                paths: analysis.paths.clone(),
                texts: loaded
                    .files
                    .iter()
                    .map(|file| file.source.shared_text())
                    .collect(),
                types: loaded.types,
            });
        }
        analysis.files = loaded.files;
        for diagnostic in &loaded.diagnostics {
            match diagnostic.file() {
                Some(file) => {
                    let index = LineIndex::new(file.text(), self.encoding);
                    let path = PathBuf::from(file.name());
                    let uri = path_to_uri(&path);
                    let converted = features::to_lsp_diagnostic(diagnostic, &index, uri.as_ref());
                    analysis
                        .diagnostics
                        .entry(path)
                        .or_default()
                        .push(converted);
                }
                None => self.add_unplaced(analysis, diagnostic),
            }
        }
    }

    /// A diagnostic about no file in particular (an unreadable directory) is shown at the top
    /// of each open document of the directory.
    fn add_unplaced(&self, analysis: &mut Analysis, diagnostic: &Diagnostic) {
        let index = LineIndex::new("", self.encoding);
        let converted = features::to_lsp_diagnostic(diagnostic, &index, None);
        for path in self.documents.keys() {
            if path.starts_with(&analysis.root) {
                analysis
                    .diagnostics
                    .entry(path.clone())
                    .or_default()
                    .push(converted.clone());
            }
        }
    }

    fn publish(
        &self,
        path: &Path,
        diagnostics: Vec<lsp_types::Diagnostic>,
    ) -> Result<(), LspError> {
        let Some(uri) = path_to_uri(path) else {
            return Ok(());
        };
        let params = PublishDiagnosticsParams {
            uri,
            diagnostics,
            version: self.documents.get(path).map(|d| d.version),
        };
        self.send(Message::Notification(Notification {
            method: notification::PublishDiagnostics::METHOD.to_string(),
            params: serde_json::to_value(params)?,
        }))
    }

    /// The analysis that covers a document, and the document's path.
    fn analysis_for(&self, uri: &Uri) -> Option<(&Analysis, PathBuf)> {
        let path = uri_to_path(uri)?;
        let analysis = self
            .analyses
            .values()
            .filter(|analysis| path.starts_with(&analysis.root))
            .max_by_key(|analysis| analysis.root.as_os_str().len())?;
        Some((analysis, path))
    }

    /// The text of a document as the editor has it, else as on disk.
    fn text_of(&self, path: &Path) -> Option<Arc<str>> {
        match self.documents.get(path) {
            Some(document) => Some(document.text.clone()),
            None => std::fs::read_to_string(path).ok().map(Arc::from),
        }
    }
}

fn holds_policies(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.ends_with(".warden") && !name.starts_with('.'))
        })
    })
}

fn from_params<P: DeserializeOwned>(params: serde_json::Value) -> Result<P, serde_json::Error> {
    serde_json::from_value(params)
}

/// Answers one request: its parameters decoded, the result encoded.
fn answer<P: DeserializeOwned, R: Serialize>(
    request: Request,
    handle: impl FnOnce(P) -> R,
) -> Response {
    match from_params::<P>(request.params) {
        Ok(params) => match serde_json::to_value(handle(params)) {
            Ok(result) => Response {
                id: request.id,
                response_result: Ok(result),
            },
            Err(error) => Response::new_err(
                request.id,
                ErrorCode::InternalError as i32,
                error.to_string(),
            ),
        },
        Err(error) => Response::new_err(
            request.id,
            ErrorCode::InvalidParams as i32,
            format!("invalid parameters for `{}`: {error}", request.method),
        ),
    }
}
