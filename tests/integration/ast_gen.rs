//! Random syntax trees for property tests: every item, statement, type and expression kind,
//! bounded in depth, limited to trees the parser can produce.
//!
//! What the parser cannot produce is left out: identifiers that are keywords (but for entity
//! type names, where keywords are names), `i64::MIN` (its
//! digits do not fit an `i64` before the minus applies), a unary minus over an integer literal
//! (the parser folds `-5` into the literal), negative durations, and the `at` test statement
//! (no grammar rule produces it yet). Spans are all default: they compare equal anyway.
#![allow(dead_code, reason = "a toolbox: each property test uses what it needs")]

use proptest::prelude::*;
use warden::ast::*;
use warden::source::Span;
use warden::syntax::token::Token;

fn span() -> Span {
    Span::default()
}

/// An identifier that is not a keyword (nor `all`, `any`: after `contains` they read as the
/// set tests).
pub fn ident() -> impl Strategy<Value = Ident> {
    "[A-Za-z_][A-Za-z0-9_]{0,6}"
        .prop_filter("keywords are not identifiers", |name| {
            !Token::KEYWORDS.contains(&name.as_str()) && name != "all" && name != "any"
        })
        .prop_map(|name| Ident { name, span: span() })
}

/// An entity type name: an identifier, or any keyword but `properties` (a type name is the
/// one place every keyword is a name).
pub fn type_name() -> impl Strategy<Value = Ident> {
    prop_oneof![
        3 => ident(),
        1 => proptest::sample::select(Token::KEYWORDS)
            .prop_filter("`properties` is never a name", |k| *k != "properties")
            .prop_map(|name| Ident { name: name.to_string(), span: span() }),
    ]
}

fn type_names(max: usize) -> impl Strategy<Value = Vec<Ident>> {
    proptest::collection::vec(type_name(), 0..=max)
}

/// Any text: plain words, characters that need escaping, and arbitrary Unicode.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{0,8}",
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\t'),
                Just('\r'),
                Just('\0'),
                Just('\u{7}'),
                Just('\u{2028}'),
                Just('é'),
                Just('😀'),
                Just(' '),
                Just('-'),
                Just('/'),
                Just('*'),
                Just('a'),
            ],
            0..8
        )
        .prop_map(String::from_iter),
        proptest::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
    ]
}

/// A name (attribute, key, action): identifiers, keywords, `properties`, or any text.
pub fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        3 => "[A-Za-z_][A-Za-z0-9_]{0,6}",
        1 => proptest::sample::select(Token::KEYWORDS).prop_map(str::to_string),
        1 => text(),
    ]
    .prop_map(|text| Name { text, span: span() })
}

pub fn str_lit() -> impl Strategy<Value = StrLit> {
    text().prop_map(|value| StrLit {
        value,
        span: span(),
    })
}

fn expr_of(kind: ExprKind) -> Expr {
    Expr { kind, span: span() }
}

pub fn var() -> impl Strategy<Value = Var> {
    prop_oneof![
        Just(Var::Subject),
        Just(Var::Action),
        Just(Var::Resource),
        Just(Var::Context),
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        any::<bool>().prop_map(ExprKind::Bool),
        prop_oneof![(i64::MIN + 1)..=i64::MAX, -3i64..=3].prop_map(ExprKind::Int),
        text().prop_map(ExprKind::Str),
        prop_oneof![0i64..=i64::MAX, 0i64..=100_000_000].prop_map(ExprKind::Duration),
        (type_name(), text()).prop_map(|(ty, id)| ExprKind::Entity { ty, id }),
        var().prop_map(ExprKind::Var),
        ident().prop_map(ExprKind::Let),
    ]
    .prop_map(expr_of)
}

/// True when the parser would fold a minus in front of `expr` into an integer literal.
fn folds_under_minus(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Int(_) => true,
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => folds_under_minus(operand),
        _ => false,
    }
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    proptest::sample::select(vec![
        BinaryOp::Or,
        BinaryOp::And,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::In,
        BinaryOp::Contains,
        BinaryOp::ContainsAll,
        BinaryOp::ContainsAny,
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
    ])
}

/// Any expression, a few levels deep.
pub fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 24, 3, |inner| {
        let boxed = inner.clone().prop_map(Box::new);
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(ExprKind::Set),
            proptest::collection::vec((name(), inner.clone()), 0..3).prop_map(ExprKind::Record),
            (boxed.clone(), name()).prop_map(|(base, name)| ExprKind::Attr { base, name }),
            boxed.clone().prop_map(ExprKind::Properties),
            (ident(), proptest::collection::vec(inner.clone(), 0..3))
                .prop_map(|(function, args)| ExprKind::Call { function, args }),
            boxed.clone().prop_map(|operand| ExprKind::Unary {
                op: UnaryOp::Not,
                operand
            }),
            boxed
                .clone()
                .prop_filter("the parser folds `-` into an integer literal", |operand| {
                    !folds_under_minus(operand)
                })
                .prop_map(|operand| ExprKind::Unary {
                    op: UnaryOp::Neg,
                    operand
                }),
            (binary_op(), boxed.clone(), boxed.clone())
                .prop_filter(
                    "the parser reads `action in name` as an action test",
                    |(op, lhs, rhs)| !reads_as_action_test(*op, lhs, rhs)
                )
                .prop_map(|(op, lhs, rhs)| ExprKind::Binary { op, lhs, rhs }),
            action_test().prop_map(ExprKind::ActionTest),
            (boxed.clone(), name()).prop_map(|(base, name)| ExprKind::Has { base, name }),
            (boxed.clone(), str_lit()).prop_map(|(base, pattern)| ExprKind::Like { base, pattern }),
            (boxed.clone(), type_name())
                .prop_filter("`is empty` is the emptiness test", |(_, ty)| ty.name
                    != "empty")
                .prop_map(|(base, ty)| ExprKind::Is { base, ty }),
            boxed.clone().prop_map(|operand| ExprKind::Unary {
                op: UnaryOp::IsEmpty,
                operand
            }),
            (boxed.clone(), boxed.clone(), boxed).prop_map(|(cond, then, otherwise)| {
                ExprKind::If {
                    cond,
                    then,
                    otherwise,
                }
            }),
        ]
        .prop_map(expr_of)
    })
}

/// `action in write`, `action in [read, "x"]`, `action == read`, `action != read`.
pub fn action_test() -> impl Strategy<Value = ActionTest> {
    prop_oneof![
        name().prop_map(|n| ActionTest {
            op: ActionOp::In,
            names: vec![n],
            list: false
        }),
        proptest::collection::vec(name(), 0..3).prop_map(|names| ActionTest {
            op: ActionOp::In,
            names,
            list: true
        }),
        (any::<bool>(), name()).prop_map(|(eq, n)| ActionTest {
            op: if eq { ActionOp::Eq } else { ActionOp::Ne },
            names: vec![n],
            list: false
        }),
    ]
}

/// Whether `lhs op rhs` is what the parser reads as an [`ActionTest`].
fn reads_as_action_test(op: BinaryOp, lhs: &Expr, rhs: &Expr) -> bool {
    let named = |e: &Expr| matches!(e.kind, ExprKind::Let(_) | ExprKind::Str(_));
    lhs.kind == ExprKind::Var(Var::Action)
        && match op {
            BinaryOp::In => {
                named(rhs) || matches!(&rhs.kind, ExprKind::Set(es) if es.iter().all(named))
            }
            BinaryOp::Eq | BinaryOp::Ne => named(rhs),
            _ => false,
        }
}

/// A record literal, as `with` clauses take.
pub fn record_expr() -> impl Strategy<Value = Expr> {
    proptest::collection::vec((name(), expr()), 0..3)
        .prop_map(|entries| expr_of(ExprKind::Record(entries)))
}

pub fn type_expr() -> impl Strategy<Value = TypeExpr> {
    type_name()
        .prop_map(TypeExpr::Named)
        .prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                inner
                    .clone()
                    .prop_map(|element| TypeExpr::Set(Box::new(element), span())),
                proptest::collection::vec(attr_decl_of(inner), 0..3)
                    .prop_map(|fields| TypeExpr::Record(fields, span())),
            ]
        })
}

fn attr_decl_of(ty: impl Strategy<Value = TypeExpr>) -> impl Strategy<Value = AttrDecl> {
    (name(), any::<bool>(), ty).prop_map(|(name, optional, ty)| AttrDecl {
        name,
        optional,
        ty,
        span: span(),
    })
}

pub fn attr_decl() -> impl Strategy<Value = AttrDecl> {
    attr_decl_of(type_expr())
}

fn attr_decls() -> impl Strategy<Value = Vec<AttrDecl>> {
    proptest::collection::vec(attr_decl(), 0..3)
}

pub fn annotations() -> impl Strategy<Value = Vec<Annotation>> {
    proptest::collection::vec(
        (ident(), proptest::option::of(str_lit())).prop_map(|(name, value)| Annotation {
            name,
            value,
            span: span(),
        }),
        0..2,
    )
}

fn idents(max: usize) -> impl Strategy<Value = Vec<Ident>> {
    proptest::collection::vec(ident(), 0..=max)
}

pub fn actions() -> impl Strategy<Value = Actions> {
    prop_oneof![
        1 => Just(Actions::Any(span())),
        3 => proptest::collection::vec(name(), 1..3).prop_map(Actions::List),
    ]
}

pub fn condition() -> impl Strategy<Value = Condition> {
    (any::<bool>(), expr()).prop_map(|(unless, expr)| Condition {
        kind: if unless {
            ConditionKind::Unless
        } else {
            ConditionKind::If
        },
        expr,
    })
}

fn effect() -> impl Strategy<Value = Effect> {
    prop_oneof![Just(Effect::Allow), Just(Effect::Deny)]
}

pub fn entity_ref() -> impl Strategy<Value = EntityRef> {
    (type_name(), text()).prop_map(|(ty, id)| EntityRef {
        ty,
        id,
        span: span(),
    })
}

pub fn test_statement() -> impl Strategy<Value = TestStatement> {
    let with_clause = prop_oneof![
        record_expr().prop_map(WithClause::Context),
        (
            prop_oneof![Just(Var::Subject), Just(Var::Action), Just(Var::Resource)],
            record_expr()
        )
            .prop_map(|(var, record)| WithClause::Properties(var, record)),
        (ident(), proptest::option::of(record_expr()))
            .prop_map(|(name, record)| WithClause::Capability(name, record)),
    ];
    prop_oneof![
        str_lit().prop_map(TestStatement::Data),
        (
            entity_ref(),
            proptest::collection::vec(entity_ref(), 0..3),
            proptest::collection::vec((name(), expr()), 0..3)
        )
            .prop_map(|(entity, parents, attributes)| {
                TestStatement::Given(GivenEntity {
                    entity,
                    parents,
                    attributes,
                    span: span(),
                })
            }),
        (ident(), entity_ref(), proptest::option::of(entity_ref())).prop_map(
            |(role, subject, on)| TestStatement::GivenRole(GivenRole {
                role,
                subject,
                on,
                span: span(),
            })
        ),
        (
            effect(),
            entity_ref(),
            name(),
            entity_ref(),
            proptest::collection::vec(with_clause, 0..3),
            proptest::option::of(expr()),
            proptest::option::of(str_lit()),
        )
            .prop_map(|(verdict, subject, action, resource, with, at, by)| {
                TestStatement::Expect(Expectation {
                    verdict,
                    subject,
                    action,
                    resource,
                    with,
                    at,
                    by,
                    span: span(),
                })
            }),
    ]
}

pub fn item() -> impl Strategy<Value = Item> {
    let grant = (
        annotations(),
        actions(),
        type_names(2),
        proptest::option::of(condition()),
    )
        .prop_map(|(annotations, actions, resource_types, condition)| Grant {
            annotations,
            actions,
            resource_types,
            condition,
            span: span(),
        });
    prop_oneof![
        (
            annotations(),
            type_name(),
            type_names(2),
            attr_decls(),
            proptest::option::of(attr_decls())
        )
            .prop_map(|(annotations, name, parents, attributes, properties)| {
                Item::Entity(EntityDecl {
                    annotations,
                    name,
                    parents,
                    attributes,
                    properties,
                    span: span(),
                })
            }),
        (
            annotations(),
            proptest::collection::vec(name(), 1..3),
            proptest::collection::vec(name(), 0..3),
            type_names(2),
            type_names(2),
            proptest::option::of(attr_decls()),
            proptest::option::of(attr_decls())
        )
            .prop_map(
                |(
                    annotations,
                    names,
                    parents,
                    resource_types,
                    subject_types,
                    properties,
                    context,
                )| {
                    Item::Action(ActionDecl {
                        annotations,
                        names,
                        parents,
                        resource_types,
                        subject_types,
                        properties,
                        context,
                        span: span(),
                    })
                }
            ),
        (
            annotations(),
            name(),
            proptest::collection::vec(name(), 0..3)
        )
            .prop_map(|(annotations, name, members)| {
                Item::ActionGroup(ActionGroupDecl {
                    annotations,
                    name,
                    members,
                    span: span(),
                })
            }),
        (
            annotations(),
            ident(),
            idents(2),
            proptest::collection::vec(grant, 0..3)
        )
            .prop_map(|(annotations, name, inherits, grants)| {
                Item::Role(RoleDecl {
                    annotations,
                    name,
                    inherits,
                    grants,
                    span: span(),
                })
            }),
        (
            annotations(),
            effect(),
            actions(),
            type_names(2),
            proptest::option::of(condition())
        )
            .prop_map(
                |(annotations, effect, actions, resource_types, condition)| {
                    Item::Rule(Rule {
                        annotations,
                        effect,
                        actions,
                        resource_types,
                        condition,
                        span: span(),
                    })
                }
            ),
        (annotations(), ident(), expr()).prop_map(|(annotations, name, value)| {
            Item::Let(LetDecl {
                annotations,
                name,
                value,
                span: span(),
            })
        }),
        (
            annotations(),
            str_lit(),
            proptest::collection::vec(test_statement(), 0..4)
        )
            .prop_map(|(annotations, name, statements)| {
                Item::Test(TestBlock {
                    annotations,
                    name,
                    statements,
                    span: span(),
                })
            }),
        (
            annotations(),
            proptest::option::of(ident()),
            str_lit(),
            name(),
            type_name(),
            route_part(),
            proptest::collection::vec((name(), route_part()), 0..3)
        )
            .prop_map(
                |(annotations, method, path, action, resource_type, resource_id, properties)| {
                    Item::Route(RouteDecl {
                        annotations,
                        method,
                        path,
                        action,
                        resource_type,
                        resource_id,
                        properties,
                        span: span(),
                    })
                }
            ),
        capability(),
        limit(),
    ]
}

/// A limit declaration: any count, actions, types, period, key and condition.
pub fn limit() -> impl Strategy<Value = Item> {
    let period = prop_oneof![
        (0i64..=100_000_000).prop_map(|millis| LimitPeriod {
            unit: PeriodUnit::Duration(millis, span()),
            zone: None,
            span: span(),
        }),
        (ident(), proptest::option::of(str_lit())).prop_map(|(word, zone)| LimitPeriod {
            unit: PeriodUnit::Word(word),
            zone,
            span: span(),
        }),
    ];
    (
        annotations(),
        ident(),
        prop_oneof![1i64..=i64::MAX, 1i64..=100],
        actions(),
        idents(2),
        period,
        expr(),
        proptest::option::of(condition()),
    )
        .prop_map(
            |(annotations, name, count, actions, resource_types, period, key, condition)| {
                Item::Limit(LimitDecl {
                    annotations,
                    name,
                    count,
                    count_span: span(),
                    actions,
                    resource_types,
                    period,
                    key,
                    condition,
                    span: span(),
                })
            },
        )
}

/// A capability declaration: its required clauses, maybe `mint` and `delegable`, in any order.
pub fn capability() -> impl Strategy<Value = Item> {
    (
        annotations(),
        ident(),
        proptest::collection::vec(type_name(), 1..3),
        proptest::collection::vec(name(), 1..3),
        1i64..=i64::MAX,
        proptest::option::of(expr()),
        any::<bool>(),
    )
        .prop_flat_map(
            |(annotations, name, resource_types, actions, lifetime, mint, delegable)| {
                let mut clauses = vec![
                    CapabilityClause {
                        kind: CapabilityClauseKind::Allow(actions),
                        span: span(),
                    },
                    CapabilityClause {
                        kind: CapabilityClauseKind::Lifetime(lifetime),
                        span: span(),
                    },
                ];
                if let Some(mint) = mint {
                    clauses.push(CapabilityClause {
                        kind: CapabilityClauseKind::Mint(mint),
                        span: span(),
                    });
                }
                if delegable {
                    clauses.push(CapabilityClause {
                        kind: CapabilityClauseKind::Delegable,
                        span: span(),
                    });
                }
                Just(clauses).prop_shuffle().prop_map(move |clauses| {
                    Item::Capability(CapabilityDecl {
                        annotations: annotations.clone(),
                        name: name.clone(),
                        resource_types: resource_types.clone(),
                        clauses,
                        span: span(),
                    })
                })
            },
        )
}

/// What a route fills in: `{param}` or `"literal"`.
pub fn route_part() -> impl Strategy<Value = RoutePart> {
    prop_oneof![
        ident().prop_map(RoutePart::Param),
        str_lit().prop_map(RoutePart::Literal),
    ]
}

/// A whole file of a few items.
pub fn file() -> impl Strategy<Value = File> {
    proptest::collection::vec(item(), 0..5).prop_map(|items| File { items })
}
