//! The formatter: one canonical layout for every Warden file, comments kept.
//!
//! [`format_file`] prints a parsed file back as text. The output parses to the same tree, and
//! formatting it again changes nothing (`fmt(fmt(x)) == fmt(x)`).
//!
//! # Layout rules
//!
//! - Indentation is 2 spaces; lines aim at 100 columns ([`MAX_WIDTH`]).
//! - Items are separated by one blank line. Consecutive one-line items of the same kind
//!   (`action` lines, `let`s, one-line rules, empty entities) stay together when the author wrote
//!   them without a blank line between them. A blank line the author left between items, members
//!   or comments is kept (several collapse into one); none is kept right after `{` or before `}`.
//! - Annotations stand on their own lines before their item or grant.
//! - Entity, role and test bodies put one member per line; entity attributes end with a comma.
//!   An entity without members has no braces; an empty role or test prints `{}`.
//! - Records, sets, record types, argument lists and action groups stay inline
//!   (`{ a: 1, b: 2 }`) when they fit and hold no comment; otherwise one element per line with a
//!   trailing comma, the closing bracket under the start of the line that opened it.
//! - A condition (of a rule or grant) and a `let` value that do not fit are broken before the
//!   `and`/`or` of their outermost chain, continued 2 spaces deeper than the item; an `and` chain
//!   inside an `or` chain that still does not fit is broken 2 spaces deeper again. An expectation
//!   that does not fit puts each `with`, `at` and `by` clause on its own continuation line.
//! - Parentheses are the fewest the precedence needs: `or` < `and` < `not` < comparisons
//!   (`==` `!=` `<` `<=` `>` `>=` `in` `contains` `has` `like` `is`, non-associative) <
//!   `+` `-` < unary `-` < postfix `.name` `["key"]` `.properties`. A negative integer literal
//!   (`-5`) counts as a unary minus.
//! - Names are quoted only when they must be: action names that are not identifiers or are
//!   keywords (`"read-todo"`); attributes print `.name` when identifier-like (keywords included)
//!   and `["weird key"]` otherwise, and `properties` prints `["properties"]` because
//!   `.properties` is what the caller sent; record keys and `has` targets likewise bare or quoted.
//! - Strings are re-escaped canonically; durations print with `d` `h` `m` `s` `ms`, largest unit
//!   first (`1h30m`); one parent type prints `in Group`, several `in [A, B]`. An action's
//!   `properties` print before its `context` and an entity's `properties` after its attributes,
//!   unless the author ordered them otherwise (then the comments inside them stay inside them).
//!
//! # Comments
//!
//! Comments are not in the tree; [`ParsedFile::comments`] holds them with their spans. Before
//! printing anything that starts at byte offset `X`, the printer flushes every comment that
//! starts before `X`: a comment that stood on the same line as the code before it stays at the
//! end of that line (a `//` comment then ends the line); any other comment gets a line of its
//! own. Comments left before a closing brace are flushed inside it, and the rest at the end of the
//! file. Every comment is printed exactly once, in source order. A construct that holds a comment
//! never takes its one-line form, so a comment never swallows code.
//!
//! Idempotence rests on one discipline: every layout decision depends only on the tree, on
//! which comments lie inside a construct's source range, and on blank lines between members —
//! and the printer puts each comment back inside the same constructs. To know which line a
//! comment stood on, the printer follows the source as it prints: keywords, operators and
//! brackets that the tree keeps no span for are matched to the next source token
//! (`Printer::keyword`).

use crate::ast::{
    Actions, Annotation, AttrDecl, BinaryOp, CapabilityClause, CapabilityClauseKind, ConditionKind,
    Effect, EntityDecl, EntityRef, Expectation, Expr, ExprKind, File, GivenEntity, Ident, Item,
    LimitDecl, Name, PeriodUnit, RoutePart, Rule, TestStatement, TypeExpr, UnaryOp, WithClause,
};
use crate::source::Span;
use crate::syntax::lexer::Comment;
use crate::syntax::parser::ParsedFile;
use crate::syntax::token::{Token, escape, parse_duration_literal};

/// The column the layout aims to stay within.
pub(crate) const MAX_WIDTH: usize = 100;

/// One level of indentation.
const INDENT: usize = 2;

/// Prints a parsed file in the canonical layout, comments included.
pub fn format_file(parsed: &ParsedFile) -> String {
    let mut printer = Printer::new(parsed.source.text(), &parsed.comments, false);
    printer.file(&parsed.ast);
    printer.out
}

/// Prints one expression on one line, without comments (for messages and tests).
pub(crate) fn format_expr(expr: &Expr) -> String {
    let mut printer = Printer::new("", &[], true);
    printer.expr(expr, 0);
    printer.out
}

/// True for text that lexes as one identifier token (keywords included).
pub(crate) fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_keyword(text: &str) -> bool {
    Token::KEYWORDS.contains(&text)
}

pub(crate) fn quoted(text: &str) -> String {
    format!("\"{}\"", escape(text))
}

/// An action name: bare when it is a plain identifier, or a namespace's name whose parts are
/// all words (`acme::read`, as the grammar reads it back); quoted otherwise.
pub(crate) fn action_name_text(text: &str) -> String {
    let plain = |part: &str| is_identifier(part) && !is_keyword(part);
    let word = |part: &str| is_identifier(part) && part != "properties";
    let bare = match text.split_once("::") {
        Some((first, rest)) => plain(first) && rest.split("::").all(word),
        None => plain(text),
    };
    if bare { text.to_string() } else { quoted(text) }
}

/// A record key, attribute declaration or `has` target: bare when the grammar takes it bare
/// (any identifier or keyword but `properties`), quoted otherwise.
pub(crate) fn key_text(text: &str) -> String {
    if is_identifier(text) && text != "properties" {
        text.to_string()
    } else {
        quoted(text)
    }
}

/// True when an attribute access can be written `.name` (else `["name"]`).
fn attribute_is_bare(text: &str) -> bool {
    is_identifier(text) && text != "properties"
}

/// An attribute access: `.name`, or `["name"]` when `.name` would not read back the same.
#[cfg(test)]
fn attribute_text(text: &str) -> String {
    if attribute_is_bare(text) {
        format!(".{text}")
    } else {
        format!("[{}]", quoted(text))
    }
}

/// The canonical text of a duration: units largest first, zero units left out (`1h30m`).
pub(crate) fn duration_text(millis: i64) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    if millis == 0 {
        return "0s".to_string();
    }
    // The parser never yields a negative duration; printing one as a negation is the closest
    // text that means the same.
    let mut text = if millis < 0 {
        "-".to_string()
    } else {
        String::new()
    };
    let mut rest = millis.unsigned_abs();
    for (unit, size) in UNITS {
        let count = rest / size;
        if count > 0 {
            text.push_str(&format!("{count}{unit}"));
            rest %= size;
        }
    }
    debug_assert!(millis < 0 || parse_duration_literal(&text) == Some(millis));
    text
}

/// How tightly an expression binds; an operand that binds more loosely than its position
/// needs is parenthesised.
fn binding(expr: &Expr) -> u8 {
    match &expr.kind {
        // Its `else` branch reaches as far right as it can: parenthesised wherever an
        // operand stands.
        ExprKind::If { .. } => 0,
        ExprKind::Binary { op, .. } => match op {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Add | BinaryOp::Sub => 5,
            BinaryOp::Mul => 6,
            _ => 4,
        },
        ExprKind::Unary {
            op: UnaryOp::Not, ..
        } => 3,
        ExprKind::Has { .. }
        | ExprKind::Like { .. }
        | ExprKind::Is { .. }
        | ExprKind::ActionTest(_)
        | ExprKind::Unary {
            op: UnaryOp::IsEmpty,
            ..
        } => 4,
        ExprKind::Unary {
            op: UnaryOp::Neg, ..
        } => 7,
        ExprKind::Int(value) if *value < 0 => 7,
        ExprKind::Attr { .. } | ExprKind::Properties(_) => 8,
        _ => 9,
    }
}

/// The binding each operand of a binary operator needs: (left, right).
fn operand_bindings(op: BinaryOp) -> (u8, u8) {
    match op {
        BinaryOp::Or => (1, 2),
        BinaryOp::And => (2, 3),
        BinaryOp::Add | BinaryOp::Sub => (5, 6),
        BinaryOp::Mul => (6, 7),
        // Comparisons do not chain: both sides are sums.
        _ => (5, 5),
    }
}

/// The operands of a left-leaning chain of `op` (`a and b and c`), in order.
fn chain_operands(expr: &Expr, op: BinaryOp) -> Vec<&Expr> {
    let mut operands = Vec::new();
    let mut current = expr;
    while let ExprKind::Binary {
        op: found,
        lhs,
        rhs,
    } = &current.kind
    {
        if *found != op {
            break;
        }
        operands.push(rhs.as_ref());
        current = lhs;
    }
    operands.push(current);
    operands.reverse();
    operands
}

fn chain_op(expr: &Expr) -> Option<BinaryOp> {
    match &expr.kind {
        ExprKind::Binary {
            op: op @ (BinaryOp::And | BinaryOp::Or),
            ..
        } => Some(*op),
        _ => None,
    }
}

/// True when `text` holds a line with nothing but whitespace.
fn has_blank_line(text: &str) -> bool {
    let mut lines = text.split('\n');
    lines.next();
    let mut rest: Vec<&str> = lines.collect();
    // The last piece is the start of the line the next code stands on, not a whole line.
    rest.pop();
    rest.iter().any(|line| line.trim().is_empty())
}

/// How a kind of list is bracketed.
struct Brackets {
    open: &'static str,
    close: &'static str,
    inline_open: &'static str,
    inline_close: &'static str,
    empty: &'static str,
}

impl Brackets {
    const SET: Brackets = Brackets {
        open: "[",
        close: "]",
        inline_open: "[",
        inline_close: "]",
        empty: "[]",
    };
    const RECORD: Brackets = Brackets {
        open: "{",
        close: "}",
        inline_open: "{ ",
        inline_close: " }",
        empty: "{}",
    };
    const CALL: Brackets = Brackets {
        open: "(",
        close: ")",
        inline_open: "(",
        inline_close: ")",
        empty: "()",
    };
}

/// A member of an entity body.
enum EntityMember<'a> {
    Attribute(&'a AttrDecl),
    /// The fields, and where they stand in the source (up to the closing brace) if known.
    Properties(&'a [AttrDecl], Option<Span>),
}

#[derive(Clone)]
struct Printer<'a> {
    source: &'a str,
    comments: &'a [Comment],
    /// The first comment not printed yet.
    next_comment: usize,
    out: String,
    /// The indentation of the next line started.
    indent: usize,
    /// Where the code printed last ends in the source: a comment after it on the same source
    /// line stays at the end of the output line.
    last_code_end: usize,
    /// Measuring mode: never break a line (there are no comments to keep).
    flat: bool,
}

impl<'a> Printer<'a> {
    fn new(source: &'a str, comments: &'a [Comment], flat: bool) -> Printer<'a> {
        Printer {
            source,
            comments,
            next_comment: 0,
            out: String::new(),
            indent: 0,
            last_code_end: 0,
            flat,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Lines and words

    fn current_line(&self) -> &str {
        let start = self.out.rfind('\n').map_or(0, |i| i + 1);
        self.out.get(start..).unwrap_or("")
    }

    fn line_is_empty(&self) -> bool {
        self.current_line().is_empty()
    }

    /// The column the next word starts at.
    fn column(&self) -> usize {
        if self.line_is_empty() {
            self.indent
        } else {
            self.current_line().chars().count()
        }
    }

    /// The indentation of the current line (or of the next one, if none is started).
    fn line_indent(&self) -> usize {
        if self.line_is_empty() {
            self.indent
        } else {
            self.current_line().len() - self.current_line().trim_start().len()
        }
    }

    /// Appends text, indenting a fresh line and never doubling a space.
    fn write(&mut self, text: &str) {
        let mut text = text;
        if self.line_is_empty() {
            text = text.trim_start();
            if text.is_empty() {
                return;
            }
            self.out.push_str(&" ".repeat(self.indent));
        } else if self.out.ends_with(' ') {
            if text.starts_with(' ') {
                text = &text[1..];
            } else if text.starts_with([',', ')', ']']) || text == ">" {
                // A block comment left a space for the next word; punctuation does not want it.
                let trimmed = self.out.trim_end_matches(' ').len();
                self.out.truncate(trimmed);
            }
        }
        self.out.push_str(text);
    }

    fn newline(&mut self) {
        let trimmed = self.out.trim_end_matches(' ').len();
        self.out.truncate(trimmed);
        self.out.push('\n');
    }

    fn ensure_newline(&mut self) {
        if self.flat {
            self.write(" ");
        } else if !self.line_is_empty() {
            self.newline();
        }
    }

    /// Leaves one blank line, unless one is there already or the line before opens a block.
    fn blank_line(&mut self) {
        self.ensure_newline();
        if self.out.is_empty() || self.out.ends_with("\n\n") {
            return;
        }
        let before = self.out.trim_end_matches('\n');
        if before.ends_with(['{', '[', '(']) {
            return;
        }
        self.out.push('\n');
    }

    /// Records that the code printed last ends at `offset` in the source. Printing follows the
    /// source, so this never moves back (a parenthesised expression's span ends before its `)`).
    fn touch(&mut self, offset: u32) {
        self.advance_to(offset as usize);
    }

    fn advance_to(&mut self, offset: usize) {
        self.last_code_end = self.last_code_end.max(offset);
    }

    /// Prints a keyword or operator (`text`, with the spaces around it). When it is also the
    /// next token of the source, the comments before it come first and it counts as the code
    /// printed last, so a comment after it stays after it.
    fn keyword(&mut self, text: &str) {
        let word = text.trim();
        let at = self.next_code(self.last_code_end);
        let next_in_source = self
            .source
            .get(at..)
            .is_some_and(|rest| rest.starts_with(word));
        if next_in_source {
            self.flush(at, false);
        }
        self.write(text);
        if next_in_source {
            self.advance_to(at + word.len());
        }
    }

    /// Prints punctuation that hugs what comes before it (`,`). When it is also the next token
    /// of the source with no comment in between, it counts as the code printed last.
    fn punctuation(&mut self, text: &str) {
        self.write(text);
        self.pass_over(text);
    }

    /// Counts `text` as printed when it is the next token of the source with no comment in
    /// between (brackets the layout leaves out, such as those of a one-element parent list).
    fn pass_over(&mut self, text: &str) {
        let at = self.next_code(self.last_code_end);
        let comment_between = self
            .comments
            .get(self.next_comment)
            .is_some_and(|comment| (comment.span.start as usize) < at);
        let next_in_source = self
            .source
            .get(at..)
            .is_some_and(|rest| rest.starts_with(text));
        if next_in_source && !comment_between {
            self.advance_to(at + text.len());
        }
    }

    /// Prints a token that has a span: comments before it first.
    fn token(&mut self, span: Span, text: &str) {
        self.flush(span.start as usize, false);
        self.write(text);
        self.touch(span.end);
    }

    // -----------------------------------------------------------------------------------------
    // Comments

    fn source_between(&self, from: usize, to: usize) -> &str {
        self.source.get(from.min(to)..to).unwrap_or("")
    }

    /// True when some comment starts inside `span`.
    fn has_comments(&self, start: usize, end: usize) -> bool {
        let first = self
            .comments
            .partition_point(|c| (c.span.start as usize) < start);
        self.comments
            .get(first)
            .is_some_and(|c| (c.span.start as usize) < end)
    }

    /// The offset of the next code token at or after `offset`, skipping whitespace and comments.
    fn next_code(&self, offset: usize) -> usize {
        let mut at = offset;
        loop {
            let rest = self.source.get(at..).unwrap_or("");
            at += rest.len() - rest.trim_start().len();
            let index = self
                .comments
                .partition_point(|c| (c.span.start as usize) < at);
            match self.comments.get(index) {
                Some(comment) if comment.span.start as usize == at => {
                    at = comment.span.end as usize;
                }
                _ => return at,
            }
        }
    }

    /// Prints every comment that starts before `offset`: at the end of the current line when
    /// it stood on the same line as the code before it, else on a line of its own (after one
    /// blank line when the author left one and `blank_lines` allows it).
    fn flush(&mut self, offset: usize, blank_lines: bool) {
        while let Some(comment) = self.comments.get(self.next_comment) {
            let start = comment.span.start as usize;
            if start >= offset {
                break;
            }
            self.next_comment += 1;
            let gap = self.source_between(self.last_code_end, start);
            let same_line = !gap.contains('\n');
            let blank_before = has_blank_line(gap);
            let text = comment.text.as_str();
            if same_line && !self.line_is_empty() {
                let hugs = !text.starts_with("//") && self.out.ends_with(['(', '[']);
                if !hugs && !self.out.ends_with(' ') {
                    self.out.push(' ');
                }
                self.out.push_str(text);
                if text.starts_with("//") {
                    self.newline();
                } else {
                    self.out.push(' ');
                }
            } else {
                if blank_lines && blank_before {
                    self.blank_line();
                }
                self.ensure_newline();
                self.write(text);
                // A comment that follows on the same source line stays on this one.
                let followed_on_line = self.comments.get(self.next_comment).is_some_and(|next| {
                    (next.span.start as usize) < offset
                        && !self
                            .source_between(comment.span.end as usize, next.span.start as usize)
                            .contains('\n')
                });
                // Code after it on its line keeps it company only if that code is what gets
                // printed next.
                let end = comment.span.end as usize;
                let next_code = self.next_code(end);
                let code_follows_on_line =
                    next_code == offset && !self.source_between(end, next_code).contains('\n');
                if text.starts_with("//") || !(followed_on_line || code_follows_on_line) {
                    self.newline();
                } else {
                    self.out.push(' ');
                }
            }
            self.touch(comment.span.end);
        }
    }

    /// Ends the current line, keeping there the comments (before `limit`) that followed the
    /// last code on its source line.
    fn end_line(&mut self, limit: usize) {
        while let Some(comment) = self.comments.get(self.next_comment) {
            let start = comment.span.start as usize;
            if start >= limit
                || self
                    .source_between(self.last_code_end, start)
                    .contains('\n')
            {
                break;
            }
            self.flush(start + 1, false);
        }
        self.ensure_newline();
    }

    /// Prepares a new line for a member starting at `offset`: the comments before it, and the
    /// blank line the author left before it.
    fn lead(&mut self, offset: usize, blank_lines: bool) {
        self.flush(offset, blank_lines);
        if blank_lines && has_blank_line(self.source_between(self.last_code_end, offset)) {
            self.blank_line();
        }
    }

    /// Where the code that ends just before `offset` ends, skipping whitespace and comments.
    fn previous_code_end(&self, offset: usize) -> usize {
        let mut at = offset;
        loop {
            let before = self.source.get(..at).unwrap_or("");
            at = before.trim_end().len();
            let ending_here = self
                .comments
                .iter()
                .rev()
                .find(|comment| comment.span.end as usize == at);
            match ending_here {
                Some(comment) => at = comment.span.start as usize,
                None => return at,
            }
        }
    }

    /// Where a test statement begins (a `data` statement's span starts at its path).
    fn statement_start(&self, statement: &TestStatement) -> Span {
        match statement {
            TestStatement::Data(path) => {
                let end = self.previous_code_end(path.span.start as usize);
                let keyword = self.source.get(..end).is_some_and(|s| s.ends_with("data"));
                let start = if keyword { end - "data".len() } else { end };
                Span::new(start.min(path.span.start as usize), path.span.end as usize)
            }
            other => statement_span(other),
        }
    }

    /// The width `print` takes on one line.
    fn measure(&self, print: impl FnOnce(&mut Printer<'a>)) -> usize {
        let mut printer = Printer::new(self.source, &[], true);
        print(&mut printer);
        if printer.out.contains('\n') {
            usize::MAX / 2
        } else {
            printer.out.chars().count()
        }
    }

    fn fits(&self, width: usize) -> bool {
        self.column() + width <= MAX_WIDTH
    }

    // -----------------------------------------------------------------------------------------
    // Items

    fn file(&mut self, file: &File) {
        let mut previous: Option<&Item> = None;
        for item in &file.items {
            let start = item.span().start as usize;
            match previous {
                None => self.lead(start, true),
                Some(before) => {
                    self.end_line(start);
                    let gap = self.source_between(before.span().end as usize, start);
                    let together = same_kind(before, item)
                        && !has_blank_line(gap)
                        && self.one_line(before)
                        && self.one_line(item);
                    if together {
                        self.flush(start, false);
                    } else {
                        if !has_blank_line(self.source_between(self.last_code_end, start)) {
                            self.blank_line();
                        }
                        self.lead(start, true);
                    }
                }
            }
            self.item(item);
            previous = Some(item);
        }
        self.end_line(usize::MAX);
        self.flush(usize::MAX, true);
        self.ensure_newline();
    }

    /// True when `item` prints as a single line (with no annotation or comment inside).
    fn one_line(&self, item: &Item) -> bool {
        let span = item.span();
        if self.has_comments(span.start as usize, span.end as usize) {
            return false;
        }
        match item {
            Item::Entity(e) => {
                e.annotations.is_empty() && e.attributes.is_empty() && e.properties.is_none()
            }
            Item::Role(r) => r.annotations.is_empty() && r.grants.is_empty(),
            Item::Test(t) => t.annotations.is_empty() && t.statements.is_empty(),
            Item::Action(a) if !a.annotations.is_empty() => false,
            Item::ActionGroup(a) if !a.annotations.is_empty() => false,
            Item::Rule(r) if !r.annotations.is_empty() => false,
            Item::Let(l) if !l.annotations.is_empty() => false,
            Item::Route(r) if !r.annotations.is_empty() => false,
            Item::Limit(l) if !l.annotations.is_empty() => false,
            // Its clauses stand one per line, like a role's grants.
            Item::Capability(_) => false,
            _ => self.measure(|p| p.item(item)) <= MAX_WIDTH,
        }
    }

    fn annotations(&mut self, annotations: &[Annotation]) {
        for annotation in annotations {
            self.flush(annotation.span.start as usize, false);
            self.write("@");
            self.token(annotation.name.span, &annotation.name.name);
            if let Some(value) = &annotation.value {
                self.write("(");
                self.token(value.span, &quoted(&value.value));
                self.write(")");
            }
            self.touch(annotation.span.end);
            let next = self.next_code(annotation.span.end as usize);
            self.end_line(next);
        }
    }

    fn item(&mut self, item: &Item) {
        let block = self.indent;
        match item {
            Item::Entity(entity) => {
                self.annotations(&entity.annotations);
                self.entity(entity, block);
            }
            Item::Action(action) => {
                self.annotations(&action.annotations);
                self.keyword("action ");
                self.indent = block + INDENT;
                self.names(&action.names, ", ", action_name_text);
                self.action_parents(&action.parents);
                if !action.resource_types.is_empty() {
                    self.write(" on ");
                    self.idents(&action.resource_types);
                }
                if !action.subject_types.is_empty() {
                    self.write(" by ");
                    self.idents(&action.subject_types);
                }
                // `properties` before `context`, unless the author wrote them the other way
                // round: comments inside them then stay inside the same one.
                let mut clauses = [
                    ("properties", &action.properties),
                    ("context", &action.context),
                ];
                if first_field_start(&action.context) < first_field_start(&action.properties) {
                    clauses.reverse();
                }
                for (keyword, fields) in clauses {
                    if let Some(fields) = fields {
                        self.write(" ");
                        self.keyword(keyword);
                        self.write(" ");
                        self.record_type(fields, None);
                    }
                }
            }
            Item::ActionGroup(group) => {
                self.annotations(&group.annotations);
                self.keyword("action group ");
                self.indent = block + INDENT;
                self.token(group.name.span, &action_name_text(&group.name.text));
                self.write(" = ");
                let open = self.next_code(group.name.span.end as usize);
                let open = self.next_code(open + 1);
                self.list(
                    Brackets::SET,
                    &group.members,
                    (open, group.span.end as usize),
                    |member| member.span,
                    |p, member| p.token(member.span, &action_name_text(&member.text)),
                );
            }
            Item::Role(role) => {
                self.annotations(&role.annotations);
                self.keyword("role ");
                self.indent = block + INDENT;
                self.token(role.name.span, &role.name.name);
                if !role.inherits.is_empty() {
                    self.write(" : ");
                    self.idents(&role.inherits);
                }
                self.keyword(" {");
                let close = role.span.end as usize;
                self.block(
                    &role.grants,
                    close,
                    block,
                    |_, grant| Some(grant.span),
                    |p, grant| {
                        let grant_block = p.indent;
                        p.annotations(&grant.annotations);
                        p.rule_body(
                            Effect::Allow,
                            &grant.actions,
                            &grant.resource_types,
                            grant.condition.as_ref(),
                            grant_block,
                        );
                    },
                );
            }
            Item::Rule(rule) => {
                self.annotations(&rule.annotations);
                self.rule(rule, block);
            }
            Item::Let(decl) => {
                self.annotations(&decl.annotations);
                self.keyword("let ");
                self.indent = block + INDENT;
                self.token(decl.name.span, &decl.name.name);
                self.write(" = ");
                self.breakable(&decl.value);
            }
            Item::Test(test) => {
                self.annotations(&test.annotations);
                self.keyword("test ");
                self.indent = block + INDENT;
                self.token(test.name.span, &quoted(&test.name.value));
                self.keyword(" {");
                let close = test.span.end as usize;
                self.block(
                    &test.statements,
                    close,
                    block,
                    |p, statement| Some(p.statement_start(statement)),
                    |p, statement| p.test_statement(statement),
                );
            }
            Item::Route(route) => {
                self.annotations(&route.annotations);
                self.keyword("route ");
                self.indent = block + INDENT;
                match &route.method {
                    Some(method) => self.token(method.span, &method.name),
                    None => self.write("*"),
                }
                self.write(" ");
                self.token(route.path.span, &quoted(&route.path.value));
                self.write(" => ");
                self.token(route.action.span, &action_name_text(&route.action.text));
                self.write(" on ");
                self.token(route.resource_type.span, &route.resource_type.name);
                self.write("::");
                self.route_part(&route.resource_id);
                if !route.properties.is_empty() {
                    self.write(" with { ");
                    for (index, (key, part)) in route.properties.iter().enumerate() {
                        if index > 0 {
                            self.write(", ");
                        }
                        self.token(key.span, &key_text(&key.text));
                        self.write(": ");
                        self.route_part(part);
                    }
                    self.write(" }");
                }
            }
            Item::Capability(capability) => {
                self.annotations(&capability.annotations);
                self.keyword("capability ");
                self.indent = block + INDENT;
                self.token(capability.name.span, &capability.name.name);
                self.write(" on ");
                self.idents(&capability.resource_types);
                self.keyword(" {");
                let close = capability.span.end as usize;
                self.block(
                    &capability.clauses,
                    close,
                    block,
                    |_, clause| Some(clause.span),
                    |p, clause| p.capability_clause(clause),
                );
            }
            Item::Limit(limit) => {
                self.annotations(&limit.annotations);
                self.limit(limit, block);
            }
            Item::Namespace(namespace) => {
                self.annotations(&namespace.annotations);
                self.keyword("namespace ");
                self.token(namespace.name.span, &namespace.name.name);
            }
        }
        self.indent = block;
        self.touch(item.span().end);
    }

    fn capability_clause(&mut self, clause: &CapabilityClause) {
        let clause_block = self.indent;
        match &clause.kind {
            CapabilityClauseKind::Allow(names) => {
                self.keyword("allow ");
                self.indent = clause_block + INDENT;
                self.names(names, ", ", action_name_text);
            }
            CapabilityClauseKind::Lifetime(millis) => {
                self.keyword("lifetime ");
                self.indent = clause_block + INDENT;
                let at = self.next_code(self.last_code_end);
                self.token(
                    Span::new(at, clause.span.end as usize),
                    &duration_text(*millis),
                );
            }
            CapabilityClauseKind::Mint(condition) => {
                self.keyword("mint ");
                self.indent = clause_block + INDENT;
                self.keyword("if ");
                self.breakable(condition);
            }
            CapabilityClauseKind::Delegable => self.keyword("delegable"),
        }
        self.indent = clause_block;
    }

    fn route_part(&mut self, part: &RoutePart) {
        match part {
            RoutePart::Param(param) => {
                self.write("{");
                self.token(param.span, &param.name);
                self.write("}");
            }
            RoutePart::Literal(text) => self.token(text.span, &quoted(&text.value)),
        }
    }

    fn rule(&mut self, rule: &Rule, block: usize) {
        self.rule_body(
            rule.effect,
            &rule.actions,
            &rule.resource_types,
            rule.condition.as_ref(),
            block,
        );
    }

    /// `allow a, b on T if condition`, shared by rules and role grants.
    fn rule_body(
        &mut self,
        effect: Effect,
        actions: &Actions,
        resource_types: &[Ident],
        condition: Option<&crate::ast::Condition>,
        block: usize,
    ) {
        self.keyword(match effect {
            Effect::Allow => "allow ",
            Effect::Deny => "deny ",
        });
        self.indent = block + INDENT;
        self.head(actions, resource_types);
        self.condition(condition);
        self.indent = block;
    }

    /// The actions and `on` types of a rule head or limit.
    fn head(&mut self, actions: &Actions, resource_types: &[Ident]) {
        match actions {
            Actions::Any(span) => self.token(*span, "*"),
            Actions::List(names) => self.names(names, ", ", action_name_text),
        }
        if !resource_types.is_empty() {
            self.write(" on ");
            self.idents(resource_types);
        }
    }

    /// ` if <expr>` or ` unless <expr>`, when there is a condition.
    fn condition(&mut self, condition: Option<&crate::ast::Condition>) {
        if let Some(condition) = condition {
            let keyword = match condition.kind {
                ConditionKind::If => "if",
                ConditionKind::Unless => "unless",
            };
            self.write(" ");
            self.keyword(keyword);
            self.write(" ");
            self.breakable(&condition.expr);
        }
    }

    fn limit(&mut self, limit: &LimitDecl, block: usize) {
        self.keyword("limit ");
        self.indent = block + INDENT;
        self.token(limit.name.span, &limit.name.name);
        self.write(": ");
        self.token(limit.count_span, &limit.count.to_string());
        self.write(" ");
        self.head(&limit.actions, &limit.resource_types);
        self.write(" ");
        self.keyword("per");
        self.write(" ");
        match &limit.period.unit {
            PeriodUnit::Duration(millis, span) => self.token(*span, &duration_text(*millis)),
            PeriodUnit::Word(word) => self.token(word.span, &word.name),
        }
        if let Some(zone) = &limit.period.zone {
            self.write(" in ");
            self.token(zone.span, &quoted(&zone.value));
        }
        self.write(" ");
        self.keyword("per");
        self.write(" ");
        self.breakable(&limit.key);
        self.condition(limit.condition.as_ref());
        self.indent = block;
    }

    fn names(&mut self, names: &[Name], separator: &str, text: fn(&str) -> String) {
        for (index, name) in names.iter().enumerate() {
            if index > 0 {
                self.write(separator);
            }
            self.token(name.span, &text(&name.text));
        }
    }

    /// `in triage` after declared actions; several parents in brackets.
    fn action_parents(&mut self, parents: &[Name]) {
        match parents {
            [] => {}
            [one] => {
                self.write(" in ");
                self.token(one.span, &action_name_text(&one.text));
                self.pass_over("]");
            }
            _ => {
                self.write(" in [");
                self.names(parents, ", ", action_name_text);
                self.keyword("]");
            }
        }
    }

    fn idents(&mut self, idents: &[Ident]) {
        for (index, ident) in idents.iter().enumerate() {
            if index > 0 {
                self.write(", ");
            }
            self.token(ident.span, &ident.name);
        }
    }

    /// Type names after `in`: one bare, several in brackets.
    fn parent_types(&mut self, parents: &[Ident]) {
        match parents {
            [] => {}
            [one] => {
                self.write(" in ");
                self.token(one.span, &one.name);
                self.pass_over("]");
            }
            several => {
                self.write(" in [");
                self.idents(several);
                self.keyword("]");
            }
        }
    }

    /// The members of a `{ }` block (the `{` is printed), one per line, then the `}` at `block`.
    /// `span_of` tells where a member stands in the source, when the tree knows it.
    fn block<T>(
        &mut self,
        members: &[T],
        close: usize,
        block: usize,
        span_of: impl Fn(&Printer<'a>, &T) -> Option<Span>,
        mut print: impl FnMut(&mut Printer<'a>, &T),
    ) {
        let open = self.last_code_end;
        if members.is_empty() && !self.has_comments(open, close) {
            self.write("}");
            return;
        }
        if self.flat {
            // Measuring only: the real layout always breaks blocks.
            self.write(" ");
        }
        self.indent = block + INDENT;
        if !self.flat {
            // Only comments before the first member end the opening line; later ones are inside
            // that member.
            let first = members
                .iter()
                .find_map(|member| span_of(self, member))
                .map_or(close, |span| span.start as usize);
            self.end_line(first.min(close));
        }
        for (index, member) in members.iter().enumerate() {
            let span = span_of(self, member);
            if let (false, Some(span)) = (self.flat, span) {
                self.lead(span.start as usize, index > 0);
            }
            print(self, member);
            if let Some(span) = span {
                self.touch(span.end);
            }
            if self.flat {
                self.write(" ");
            } else {
                // Comments inside the next member are that member's.
                let next = members
                    .get(index + 1)
                    .and_then(|member| span_of(self, member))
                    .map_or(close, |span| span.start as usize);
                self.end_line(next.min(close));
            }
        }
        self.close_block(close, block);
    }

    /// Flushes what is left before a closing brace and prints it at `block`.
    fn close_block(&mut self, close: usize, block: usize) {
        if !self.flat {
            self.end_line(close);
            self.flush(close, true);
            self.ensure_newline();
        }
        self.indent = block;
        self.write("}");
        self.advance_to(close);
    }

    fn entity(&mut self, entity: &EntityDecl, block: usize) {
        self.keyword("entity ");
        self.indent = block + INDENT;
        self.token(entity.name.span, &entity.name.name);
        if let Some(ids) = &entity.ids {
            self.keyword(" enum ");
            let open = self.next_code(self.last_code_end);
            self.list(
                Brackets::SET,
                ids,
                (open, entity.span.end as usize),
                |id| id.span,
                |p, id| p.token(id.span, &quoted(&id.value)),
            );
            return;
        }
        self.parent_types(&entity.parents);
        let mut members: Vec<EntityMember<'_>> = entity
            .attributes
            .iter()
            .map(EntityMember::Attribute)
            .collect();
        if let Some(fields) = &entity.properties {
            // The caller's `properties` keep their place among the attributes (last when the
            // source does not tell), so the comments around and inside them stay there.
            let extent = self.properties_extent(entity);
            let at = extent.map_or(usize::MAX, |span| span.start as usize);
            let position = entity
                .attributes
                .iter()
                .position(|attribute| attribute.span.start as usize > at)
                .unwrap_or(members.len());
            members.insert(position, EntityMember::Properties(fields, extent));
        }
        let end = entity.span.end as usize;
        if members.is_empty() && !self.has_comments(self.last_code_end, end) {
            return;
        }
        self.keyword(" {");
        self.block(
            &members,
            end,
            block,
            |_, member| match member {
                EntityMember::Attribute(attribute) => Some(attribute.span),
                EntityMember::Properties(_, extent) => *extent,
            },
            |p, member| match member {
                EntityMember::Attribute(attribute) => {
                    p.attr_decl(attribute);
                    p.punctuation(",");
                }
                EntityMember::Properties(fields, _) => {
                    p.write("properties: ");
                    p.record_type(fields, None);
                    p.punctuation(",");
                }
            },
        );
    }

    /// Where an entity's `properties: { ... }` member stands in the source, from the keyword to
    /// the closing brace (the tree does not keep this span).
    fn properties_extent(&self, entity: &EntityDecl) -> Option<Span> {
        let base = entity.span.start as usize;
        let text = self.source.get(entity.span.range())?;
        let tokens = crate::syntax::lexer::lex(text).tokens;
        let mut depth = 0usize;
        let mut keyword = None;
        for (index, (start, token, end)) in tokens.iter().enumerate() {
            match token {
                Token::LBrace => depth += 1,
                Token::RBrace => {
                    depth = depth.saturating_sub(1);
                    if let (1, Some(keyword)) = (depth, keyword) {
                        return Some(Span::new(base + keyword, base + *end as usize));
                    }
                }
                Token::Properties if depth == 1 => {
                    let colon = matches!(tokens.get(index + 1), Some((_, Token::Colon, _)));
                    if colon {
                        keyword = Some(*start as usize);
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn attr_decl(&mut self, attribute: &AttrDecl) {
        self.token(attribute.name.span, &key_text(&attribute.name.text));
        if attribute.optional {
            self.write("?");
        }
        self.write(": ");
        self.type_expr(&attribute.ty);
        self.touch(attribute.span.end);
    }

    fn type_expr(&mut self, ty: &TypeExpr) {
        match ty {
            TypeExpr::Named(ident) => self.token(ident.span, &ident.name),
            TypeExpr::Set(element, _) => {
                self.write("Set<");
                self.type_expr(element);
                self.write(">");
            }
            TypeExpr::Record(fields, span) => self.record_type(fields, Some(*span)),
        }
    }

    /// `{ a: T, b?: U }` inline when it fits and holds no comment, else one field per line.
    /// `span` covers the braces where the tree knows it.
    fn record_type(&mut self, fields: &[AttrDecl], span: Option<Span>) {
        let (start, end) = match (span, fields.first(), fields.last()) {
            (Some(span), _, _) => (span.start as usize, span.end as usize),
            // Without the braces' span, the record is taken to start at its first field: comments
            // before that are printed before the first field whatever the layout.
            (None, Some(first), Some(last)) => (
                first.span.start as usize,
                self.closing_after(last.span.end as usize),
            ),
            _ => (self.last_code_end, self.last_code_end),
        };
        // Where the `{` stands: comments before it are printed before it.
        let open = span.map(|span| span.start as usize).or_else(|| {
            let at = self.next_code(self.last_code_end);
            let brace = self
                .source
                .get(at..)
                .is_some_and(|rest| rest.starts_with('{'));
            brace.then_some(at)
        });
        if let Some(open) = open {
            self.flush(open, false);
        }
        if fields.is_empty() && !self.has_comments(start, end) {
            self.write("{}");
            if let Some(span) = span {
                self.touch(span.end);
            }
            return;
        }
        let inline = self.flat
            || (!self.has_comments(start, end)
                && self.fits(self.measure(|p| p.record_type_inline(fields, None))));
        if inline {
            self.record_type_inline(fields, open);
        } else {
            let outer = self.indent;
            let block = self.line_indent();
            self.write("{");
            if let Some(open) = open {
                self.advance_to(open + 1);
            }
            self.block(
                fields,
                end,
                block,
                |_, field| Some(field.span),
                |p, field| {
                    p.attr_decl(field);
                    p.punctuation(",");
                },
            );
            self.indent = outer;
        }
        self.advance_to(end);
    }

    fn record_type_inline(&mut self, fields: &[AttrDecl], open: Option<usize>) {
        self.write("{ ");
        if let Some(open) = open {
            self.advance_to(open + 1);
        }
        for (index, field) in fields.iter().enumerate() {
            if index > 0 {
                self.write(", ");
            }
            self.attr_decl(field);
        }
        self.write(" }");
    }

    /// Where the `}` after a last field (and its optional comma) stands, plus one.
    fn closing_after(&self, offset: usize) -> usize {
        let mut at = self.next_code(offset);
        if self
            .source
            .get(at..)
            .is_some_and(|rest| rest.starts_with(','))
        {
            at = self.next_code(at + 1);
        }
        at + 1
    }

    // -----------------------------------------------------------------------------------------
    // Tests

    fn test_statement(&mut self, statement: &TestStatement) {
        let block = self.indent;
        match statement {
            TestStatement::Data(path) => {
                self.keyword("data ");
                self.token(path.span, &quoted(&path.value));
            }
            TestStatement::Given(given) => {
                self.given(given);
            }
            TestStatement::GivenRole(given) => {
                self.keyword("given ");
                self.keyword("role ");
                self.indent = block + INDENT;
                self.token(given.role.span, &given.role.name);
                self.write(" for ");
                self.entity_ref(&given.subject);
                if let Some(on) = &given.on {
                    self.write(" on ");
                    self.entity_ref(on);
                }
            }
            TestStatement::Expect(expectation) => self.expectation(expectation),
        }
        self.indent = block;
    }

    fn entity_ref(&mut self, entity: &EntityRef) {
        self.token(
            entity.span,
            &format!("{}::{}", entity.ty.name, quoted(&entity.id)),
        );
    }

    fn given(&mut self, given: &GivenEntity) {
        let block = self.indent;
        self.keyword("given ");
        self.indent = block + INDENT;
        self.entity_ref(&given.entity);
        match given.parents.as_slice() {
            [] => {}
            [one] => {
                self.write(" in ");
                self.entity_ref(one);
                self.pass_over("]");
            }
            several => {
                self.write(" in [");
                for (index, parent) in several.iter().enumerate() {
                    if index > 0 {
                        self.write(", ");
                    }
                    self.entity_ref(parent);
                }
                self.keyword("]");
            }
        }
        if !given.attributes.is_empty() {
            self.write(" ");
            // The `{` comes next in the source, after the `]` of a parent list.
            let mut start = self.next_code(self.last_code_end);
            if self
                .source
                .get(start..)
                .is_some_and(|rest| rest.starts_with(']'))
            {
                start = self.next_code(start + 1);
            }
            let end = given.span.end as usize;
            self.indent = block;
            self.record(&given.attributes, start, end);
        }
        self.indent = block;
        self.touch(given.span.end);
    }

    fn expectation(&mut self, expectation: &Expectation) {
        let block = self.indent;
        let span = expectation.span;
        let inline = self.flat
            || (!self.has_comments(span.start as usize, span.end as usize)
                && self.fits(self.measure(|p| p.expectation(expectation))));
        self.keyword(match expectation.verdict {
            Effect::Allow => "allow ",
            Effect::Deny => "deny ",
        });
        self.indent = block + INDENT;
        self.entity_ref(&expectation.subject);
        self.write(" ");
        self.token(
            expectation.action.span,
            &action_name_text(&expectation.action.text),
        );
        self.write(" ");
        self.entity_ref(&expectation.resource);
        for clause in &expectation.with {
            self.clause_break(inline, "with");
            let record = match clause {
                WithClause::Context(record) => {
                    self.write("context ");
                    record
                }
                WithClause::Properties(var, record) => {
                    self.write(&format!("{} properties ", var.as_str()));
                    record
                }
                WithClause::Capability(name, record) => {
                    self.keyword("capability ");
                    self.token(name.span, &name.name);
                    match record {
                        Some(record) => {
                            self.write(" ");
                            record
                        }
                        None => continue,
                    }
                }
            };
            self.expr(record, 0);
        }
        if let Some(at) = &expectation.at {
            self.clause_break(inline, "at");
            self.expr(at, 0);
        }
        if let Some(by) = &expectation.by {
            self.clause_break(inline, "by");
            self.token(by.span, &quoted(&by.value));
        }
        self.indent = block;
        self.touch(span.end);
    }

    /// Starts a `with`, `at` or `by` clause: after a space, or on a continuation line.
    fn clause_break(&mut self, inline: bool, keyword: &str) {
        let at = self.next_code(self.last_code_end);
        self.flush(at, false);
        if inline {
            self.write(" ");
        } else {
            self.ensure_newline();
        }
        self.keyword(keyword);
        self.write(" ");
    }

    // -----------------------------------------------------------------------------------------
    // Expressions

    /// An expression that may be broken before the `and`/`or` of its outermost chain.
    fn breakable(&mut self, expr: &Expr) {
        let span = expr.span;
        if self.flat
            || (!self.has_comments(span.start as usize, span.end as usize)
                && self.fits(self.measure(|p| p.expr(expr, 0))))
        {
            self.expr(expr, 0);
        } else {
            self.chain(expr);
        }
    }

    /// Prints a chain one operand per line, each after its operator.
    fn chain(&mut self, expr: &Expr) {
        let Some(op) = chain_op(expr) else {
            self.expr(expr, 0);
            return;
        };
        let operands = chain_operands(expr, op);
        let needed = operand_bindings(op).1;
        for (index, operand) in operands.iter().enumerate() {
            if index > 0 {
                // Comments before the operator go before its line; those after it stay after it.
                let at = self.next_code(self.last_code_end);
                let operator_next = self
                    .source
                    .get(at..)
                    .is_some_and(|rest| rest.starts_with(op.as_str()));
                let before = if operator_next {
                    at
                } else {
                    operand.span.start as usize
                };
                self.flush(before, false);
                self.ensure_newline();
                self.write(op.as_str());
                self.write(" ");
                if operator_next {
                    self.advance_to(at + op.as_str().len());
                }
            }
            let inner_chain = op == BinaryOp::Or && chain_op(operand) == Some(BinaryOp::And);
            let span = operand.span;
            if inner_chain
                && (self.has_comments(span.start as usize, span.end as usize)
                    || !self.fits(self.measure(|p| p.expr(operand, needed))))
            {
                let outer = self.indent;
                self.indent += INDENT;
                self.chain(operand);
                self.indent = outer;
            } else {
                self.expr(operand, needed);
            }
        }
        self.touch(expr.span.end);
    }

    /// Prints `expr`, parenthesised when it binds more loosely than `needed`.
    fn expr(&mut self, expr: &Expr, needed: u8) {
        // The span of a parenthesised expression starts inside its parentheses: the `(` (the
        // next token in the source) comes first, then the comments after it.
        let parens = binding(expr) < needed;
        if parens {
            self.keyword("(");
        }
        self.flush(expr.span.start as usize, false);
        self.expr_inner(expr);
        if parens {
            self.keyword(")");
        }
        self.touch(expr.span.end);
    }

    /// Prints a number or duration. A negative one written as `-` and the literal (the parser
    /// folds the two) is printed as two tokens at their places in the source, so that a comment
    /// between them stays between them: printed after the whole literal it would move out of
    /// the constructs that hold it, and the next formatting would lay them out otherwise.
    fn literal(&mut self, span: Span, text: &str) {
        let start = span.start as usize;
        let negated = self
            .source
            .get(start..)
            .is_some_and(|rest| rest.starts_with('-'));
        match text.strip_prefix('-') {
            Some(magnitude) if negated => {
                self.token(Span::new(start, start + 1), "-");
                let end = span.end as usize;
                let at = self.next_code(start + 1).min(end);
                self.token(Span::new(at, end), magnitude);
            }
            _ => self.token(span, text),
        }
    }

    fn expr_inner(&mut self, expr: &Expr) {
        let span = expr.span;
        match &expr.kind {
            ExprKind::Bool(value) => self.token(span, if *value { "true" } else { "false" }),
            ExprKind::Int(value) => self.literal(span, &value.to_string()),
            ExprKind::Str(text) => self.token(span, &quoted(text)),
            ExprKind::Duration(millis) => self.literal(span, &duration_text(*millis)),
            ExprKind::Entity { ty, id } => {
                self.token(span, &format!("{}::{}", ty.name, quoted(id)));
            }
            ExprKind::Var(var) => self.token(span, var.as_str()),
            ExprKind::Let(name) => self.token(name.span, &name.name),
            ExprKind::Set(elements) => self.set(elements, span),
            ExprKind::Record(entries) => {
                self.record(entries, span.start as usize, span.end as usize);
            }
            ExprKind::Attr { base, name } => {
                self.expr(base, 8);
                if attribute_is_bare(&name.text) {
                    self.keyword(".");
                    self.token(name.span, &name.text);
                } else {
                    self.keyword("[");
                    self.token(name.span, &quoted(&name.text));
                    self.keyword("]");
                }
            }
            ExprKind::Properties(base) => {
                self.expr(base, 8);
                self.keyword(".");
                self.keyword("properties");
            }
            ExprKind::Call { function, args } => {
                self.token(function.span, &function.name);
                let open = self.next_code(function.span.end as usize);
                self.list(
                    Brackets::CALL,
                    args,
                    (open, span.end as usize),
                    |arg| arg.span,
                    |p, arg| p.expr(arg, 0),
                );
            }
            ExprKind::Unary { op, operand } => match op {
                UnaryOp::Not => {
                    self.keyword("not ");
                    self.expr(operand, 3);
                }
                UnaryOp::Neg => {
                    self.keyword("-");
                    self.expr(operand, 7);
                }
                UnaryOp::IsEmpty => {
                    self.expr(operand, 5);
                    self.keyword(" is empty");
                }
            },
            ExprKind::Binary { op, lhs, rhs } => {
                let (left, right) = operand_bindings(*op);
                self.expr(lhs, left);
                self.keyword(&format!(" {} ", op.as_str()));
                self.expr(rhs, right);
            }
            ExprKind::Has { base, name } => {
                self.expr(base, 5);
                self.keyword(" has ");
                self.token(name.span, &key_text(&name.text));
            }
            ExprKind::Like { base, pattern } => {
                self.expr(base, 5);
                self.keyword(" like ");
                self.token(pattern.span, &quoted(&pattern.value));
            }
            ExprKind::Is { base, ty } => {
                self.expr(base, 5);
                self.keyword(" is ");
                self.token(ty.span, &ty.name);
            }
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.keyword("if ");
                self.expr(cond, 0);
                self.keyword(" then ");
                self.expr(then, 0);
                self.keyword(" else ");
                self.expr(otherwise, 0);
            }
            ExprKind::ActionTest(test) => {
                self.keyword("action");
                self.keyword(&format!(" {} ", test.op.as_str()));
                if test.list {
                    self.keyword("[");
                }
                self.names(&test.names, ", ", action_name_text);
                if test.list {
                    self.keyword("]");
                }
            }
        }
    }

    /// `[a, b]` inline when it fits and holds no comment, else one element per line.
    fn set(&mut self, elements: &[Expr], span: Span) {
        self.list(
            Brackets::SET,
            elements,
            (span.start as usize, span.end as usize),
            |element| element.span,
            |p, element| p.expr(element, 0),
        );
    }

    /// `{ k: v }` inline when it fits and holds no comment, else one entry per line. The `{`
    /// stands at `start` in the source and the `}` just before `end`.
    fn record(&mut self, entries: &[(Name, Expr)], start: usize, end: usize) {
        self.list(
            Brackets::RECORD,
            entries,
            (start, end),
            |(key, _)| key.span,
            |p, (key, value)| {
                p.token(key.span, &key_text(&key.text));
                p.write(": ");
                p.expr(value, 0);
            },
        );
    }

    /// A bracketed, comma-separated list: inline when it fits and holds no comment, else one
    /// element per line with a trailing comma and the closing bracket under the line's start.
    /// The list lies in `range` of the source, its opening bracket first.
    fn list<T>(
        &mut self,
        brackets: Brackets,
        elements: &[T],
        range: (usize, usize),
        span_of: impl Fn(&T) -> Span,
        print: impl Fn(&mut Printer<'a>, &T),
    ) {
        let (start, end) = range;
        // Comments before the opening bracket are printed before it, whatever the layout.
        self.flush(start, false);
        let commented = self.has_comments(start, end);
        if elements.is_empty() && !commented {
            self.write(brackets.empty);
            return;
        }
        let inline = self.flat
            || (!commented
                && self.fits(self.measure(|p| p.list_inline(&brackets, elements, &print))));
        if inline {
            self.list_inline(&brackets, elements, &print);
            self.advance_to(end);
            return;
        }
        let outer = self.indent;
        let block = self.line_indent();
        self.write(brackets.open);
        self.advance_to(start + 1);
        self.indent = block + INDENT;
        let first = elements
            .first()
            .map_or(end, |element| span_of(element).start as usize);
        self.end_line(first.min(end));
        for (index, element) in elements.iter().enumerate() {
            let span = span_of(element);
            self.lead(span.start as usize, index > 0);
            print(self, element);
            self.punctuation(",");
            // Comments inside the next element are that element's.
            let next = elements
                .get(index + 1)
                .map_or(end, |element| span_of(element).start as usize);
            self.end_line(next.min(end));
        }
        self.flush(end, true);
        self.ensure_newline();
        self.indent = block;
        self.write(brackets.close);
        self.advance_to(end);
        self.indent = outer;
    }

    fn list_inline<T>(
        &mut self,
        brackets: &Brackets,
        elements: &[T],
        print: &impl Fn(&mut Printer<'a>, &T),
    ) {
        if elements.is_empty() {
            self.write(brackets.empty);
            return;
        }
        self.write(brackets.inline_open);
        for (index, element) in elements.iter().enumerate() {
            if index > 0 {
                self.write(", ");
            }
            print(self, element);
        }
        self.write(brackets.inline_close);
    }
}

/// Where the first field of a record type stands in the source; past the end when unknown.
fn first_field_start(fields: &Option<Vec<AttrDecl>>) -> usize {
    fields
        .as_ref()
        .and_then(|fields| fields.first())
        .map_or(usize::MAX, |field| field.span.start as usize)
}

fn statement_span(statement: &TestStatement) -> Span {
    match statement {
        TestStatement::Data(path) => path.span,
        TestStatement::Given(given) => given.span,
        TestStatement::GivenRole(given) => given.span,
        TestStatement::Expect(expectation) => expectation.span,
    }
}

/// Items whose one-line forms may stand together without a blank line between them.
fn same_kind(a: &Item, b: &Item) -> bool {
    let kind = |item: &Item| match item {
        Item::Entity(_) => 0,
        Item::Action(_) | Item::ActionGroup(_) => 1,
        Item::Role(_) => 2,
        Item::Rule(_) => 3,
        Item::Let(_) => 4,
        Item::Test(_) => 5,
        Item::Route(_) => 6,
        Item::Capability(_) => 7,
        Item::Limit(_) => 8,
        Item::Namespace(_) => 9,
    };
    kind(a) == kind(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;
    use crate::syntax::parse;

    fn fmt(text: &str) -> String {
        let (parsed, diagnostics) = parse(&SourceFile::new("t.warden", text));
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        format_file(&parsed)
    }

    #[test]
    fn durations_print_largest_unit_first() {
        assert_eq!(duration_text(5_400_000), "1h30m");
        assert_eq!(duration_text(0), "0s");
        assert_eq!(duration_text(90_061_001), "1d1h1m1s1ms");
        assert_eq!(duration_text(500), "500ms");
    }

    #[test]
    fn names_are_quoted_only_when_needed() {
        assert_eq!(action_name_text("read"), "read");
        assert_eq!(action_name_text("read-todo"), "\"read-todo\"");
        assert_eq!(action_name_text("group"), "\"group\"");
        assert_eq!(action_name_text("acme::read"), "acme::read");
        assert_eq!(
            action_name_text("acme::billing::group"),
            "acme::billing::group"
        );
        assert_eq!(action_name_text("acme::read-todo"), "\"acme::read-todo\"");
        assert_eq!(action_name_text("acme::"), "\"acme::\"");
        assert_eq!(action_name_text("::read"), "\"::read\"");
        assert_eq!(action_name_text("data::read"), "\"data::read\"");
        assert_eq!(attribute_text("in"), ".in");
        assert_eq!(attribute_text("properties"), "[\"properties\"]");
        assert_eq!(attribute_text("x y"), "[\"x y\"]");
        assert_eq!(key_text("properties"), "\"properties\"");
    }

    #[test]
    fn trailing_and_leading_comments_stay() {
        let text = "// head\nallow view // why\n\n/* block */ deny x\n";
        assert_eq!(
            fmt(text),
            "// head\nallow view // why\n\n/* block */ deny x\n"
        );
    }

    #[test]
    fn long_conditions_break_before_and() {
        let text = format!(
            "allow view on Photo if subject has ticket and subject.ticket.album == resource.album and now() < subject.ticket.expires{}\n",
            ""
        );
        assert_eq!(
            fmt(&text),
            "allow view on Photo if subject has ticket\n  and subject.ticket.album == resource.album\n  and now() < subject.ticket.expires\n"
        );
    }
}
