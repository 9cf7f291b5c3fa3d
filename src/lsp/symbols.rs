//! Where each name of a policy directory is declared and used, read off the syntax trees the
//! load parsed: what go-to-definition, find-references and hover look up.

use crate::ast::{
    Actions, AttrDecl, CapabilityClauseKind, EntityRef, Expr, ExprKind, File, Item, Name,
    TestStatement, TypeExpr, WithClause,
};
use crate::source::Span;

/// A declared thing a name can stand for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Symbol {
    Entity(String),
    /// An action or an action group (they share one namespace).
    Action(String),
    Role(String),
    Let(String),
    Attribute(String),
    /// A test's `data "tests/photos.json"`: the path as written.
    DataFile(String),
}

impl Symbol {
    /// The name as declared (the path as written, for a data file).
    pub fn name(&self) -> &str {
        match self {
            Symbol::Entity(name)
            | Symbol::Action(name)
            | Symbol::Role(name)
            | Symbol::Let(name)
            | Symbol::Attribute(name)
            | Symbol::DataFile(name) => name,
        }
    }
}

/// One place a symbol is named.
#[derive(Clone, Debug)]
pub(crate) struct Occurrence {
    /// The file, by index in the loaded files.
    pub file: usize,
    /// The name itself.
    pub span: Span,
    pub symbol: Symbol,
    /// On a declaration: the whole declaring item (what hover shows).
    pub declaration: Option<Span>,
    /// On an attribute: the entity type that declares it, or that a test's `given` names.
    pub owner: Option<String>,
    /// On an attribute read (`e.a`, `e has a`): the span of `e`, whose type says whose
    /// attribute it is.
    pub base: Option<Span>,
    /// On an attribute read `e.a`: the span of the whole read, whose type hover shows.
    pub expr: Option<Span>,
}

impl Occurrence {
    fn new(file: usize, span: Span, symbol: Symbol) -> Occurrence {
        Occurrence {
            file,
            span,
            symbol,
            declaration: None,
            owner: None,
            base: None,
            expr: None,
        }
    }
}

/// Every occurrence of every symbol in a set of files.
pub(crate) fn index<'f>(files: impl IntoIterator<Item = &'f File>) -> Vec<Occurrence> {
    let mut walker = Walker {
        file: 0,
        found: Vec::new(),
    };
    for (file, ast) in files.into_iter().enumerate() {
        walker.file = file;
        walker.file_items(ast);
    }
    walker.found
}

struct Walker {
    file: usize,
    found: Vec<Occurrence>,
}

impl Walker {
    fn add(&mut self, span: Span, symbol: Symbol) {
        self.found.push(Occurrence::new(self.file, span, symbol));
    }

    fn declare(&mut self, span: Span, symbol: Symbol, item: Span) {
        let mut occurrence = Occurrence::new(self.file, span, symbol);
        occurrence.declaration = Some(item);
        self.found.push(occurrence);
    }

    fn entity(&mut self, name: &crate::ast::Ident) {
        self.add(name.span, Symbol::Entity(name.name.clone()));
    }

    fn action(&mut self, name: &Name) {
        self.add(name.span, Symbol::Action(name.text.clone()));
    }

    fn file_items(&mut self, ast: &File) {
        for item in &ast.items {
            self.item(item);
        }
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Entity(decl) => {
                self.declare(
                    decl.name.span,
                    Symbol::Entity(decl.name.name.clone()),
                    decl.span,
                );
                decl.parents.iter().for_each(|p| self.entity(p));
                self.attr_decls(&decl.attributes, Some(&decl.name.name));
                if let Some(properties) = &decl.properties {
                    self.attr_decls(properties, None);
                }
            }
            Item::Action(decl) => {
                for name in &decl.names {
                    self.declare(name.span, Symbol::Action(name.text.clone()), decl.span);
                }
                decl.parents.iter().for_each(|p| self.action(p));
                decl.resource_types.iter().for_each(|t| self.entity(t));
                decl.subject_types.iter().for_each(|t| self.entity(t));
                for fields in [&decl.properties, &decl.context].into_iter().flatten() {
                    self.attr_decls(fields, None);
                }
            }
            Item::ActionGroup(decl) => {
                self.declare(
                    decl.name.span,
                    Symbol::Action(decl.name.text.clone()),
                    decl.span,
                );
                decl.members.iter().for_each(|m| self.action(m));
            }
            Item::Role(decl) => {
                self.declare(
                    decl.name.span,
                    Symbol::Role(decl.name.name.clone()),
                    decl.span,
                );
                for parent in &decl.inherits {
                    self.add(parent.span, Symbol::Role(parent.name.clone()));
                }
                for grant in &decl.grants {
                    self.head(&grant.actions, &grant.resource_types);
                    if let Some(condition) = &grant.condition {
                        self.expr(&condition.expr);
                    }
                }
            }
            Item::Rule(rule) => {
                self.head(&rule.actions, &rule.resource_types);
                if let Some(condition) = &rule.condition {
                    self.expr(&condition.expr);
                }
            }
            Item::Let(decl) => {
                self.declare(
                    decl.name.span,
                    Symbol::Let(decl.name.name.clone()),
                    decl.span,
                );
                self.expr(&decl.value);
            }
            Item::Test(test) => {
                for statement in &test.statements {
                    self.test_statement(statement);
                }
            }
            Item::Limit(limit) => {
                self.head(&limit.actions, &limit.resource_types);
                self.expr(&limit.key);
                if let Some(condition) = &limit.condition {
                    self.expr(&condition.expr);
                }
            }
            Item::Route(route) => {
                self.action(&route.action);
                self.entity(&route.resource_type);
            }
            Item::Capability(capability) => {
                capability
                    .resource_types
                    .iter()
                    .for_each(|t| self.entity(t));
                for clause in &capability.clauses {
                    match &clause.kind {
                        CapabilityClauseKind::Allow(names) => {
                            names.iter().for_each(|n| self.action(n));
                        }
                        CapabilityClauseKind::Mint(expr) => self.expr(expr),
                        CapabilityClauseKind::Lifetime(_) | CapabilityClauseKind::Delegable => {}
                    }
                }
            }
        }
    }

    fn head(&mut self, actions: &Actions, on: &[crate::ast::Ident]) {
        if let Actions::List(names) = actions {
            names.iter().for_each(|n| self.action(n));
        }
        on.iter().for_each(|t| self.entity(t));
    }

    fn attr_decls(&mut self, fields: &[AttrDecl], owner: Option<&str>) {
        for field in fields {
            let mut occurrence = Occurrence::new(
                self.file,
                field.name.span,
                Symbol::Attribute(field.name.text.clone()),
            );
            occurrence.declaration = Some(field.span);
            occurrence.owner = owner.map(str::to_string);
            self.found.push(occurrence);
            self.type_expr(&field.ty);
        }
    }

    fn type_expr(&mut self, ty: &TypeExpr) {
        match ty {
            TypeExpr::Named(name) => self.entity(name),
            TypeExpr::Set(element, _) => self.type_expr(element),
            TypeExpr::Record(fields, _) => self.attr_decls(fields, None),
        }
    }

    fn entity_ref(&mut self, entity: &EntityRef) {
        self.entity(&entity.ty);
    }

    fn test_statement(&mut self, statement: &TestStatement) {
        match statement {
            TestStatement::Data(path) => self.add(path.span, Symbol::DataFile(path.value.clone())),
            TestStatement::Given(given) => {
                self.entity_ref(&given.entity);
                given.parents.iter().for_each(|p| self.entity_ref(p));
                for (name, value) in &given.attributes {
                    let mut occurrence =
                        Occurrence::new(self.file, name.span, Symbol::Attribute(name.text.clone()));
                    occurrence.owner = Some(given.entity.ty.name.clone());
                    self.found.push(occurrence);
                    self.expr(value);
                }
            }
            TestStatement::GivenRole(given) => {
                self.add(given.role.span, Symbol::Role(given.role.name.clone()));
                self.entity_ref(&given.subject);
                if let Some(on) = &given.on {
                    self.entity_ref(on);
                }
            }
            TestStatement::Expect(expect) => {
                self.entity_ref(&expect.subject);
                self.action(&expect.action);
                self.entity_ref(&expect.resource);
                for with in &expect.with {
                    match with {
                        WithClause::Context(expr) | WithClause::Properties(_, expr) => {
                            self.expr(expr);
                        }
                        WithClause::Capability(_, caveats) => {
                            if let Some(expr) = caveats {
                                self.expr(expr);
                            }
                        }
                    }
                }
                if let Some(at) = &expect.at {
                    self.expr(at);
                }
            }
        }
    }

    fn attribute_read(&mut self, base: &Expr, name: &Name, whole: Option<Span>) {
        let mut occurrence =
            Occurrence::new(self.file, name.span, Symbol::Attribute(name.text.clone()));
        occurrence.base = Some(base.span);
        occurrence.expr = whole;
        self.found.push(occurrence);
    }

    fn expr(&mut self, expr: &Expr) {
        match &expr.kind {
            ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Str(_)
            | ExprKind::Duration(_)
            | ExprKind::Var(_) => {}
            ExprKind::ActionTest(test) => test.names.iter().for_each(|n| self.action(n)),
            ExprKind::Entity { ty, .. } => self.entity(ty),
            ExprKind::Set(elements) => elements.iter().for_each(|e| self.expr(e)),
            ExprKind::Record(entries) => entries.iter().for_each(|(_, e)| self.expr(e)),
            ExprKind::Let(name) => self.add(name.span, Symbol::Let(name.name.clone())),
            ExprKind::Attr { base, name } => {
                self.expr(base);
                self.attribute_read(base, name, Some(expr.span));
            }
            ExprKind::Has { base, name } => {
                self.expr(base);
                self.attribute_read(base, name, None);
            }
            ExprKind::Properties(base) | ExprKind::Like { base, .. } => self.expr(base),
            ExprKind::Call { args, .. } => args.iter().for_each(|a| self.expr(a)),
            ExprKind::Unary { operand, .. } => self.expr(operand),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Is { base, ty } => {
                self.expr(base);
                self.entity(ty);
            }
            ExprKind::If { .. } => expr.for_each_child(|child| self.expr(child)),
        }
    }
}
