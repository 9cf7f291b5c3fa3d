//! The property test that holds the compiled decision graph to the reference interpreter.
//!
//! Each case draws, from proptest's choices, a policy directory (declarations or none, lets, rules, roles
//! with grants), data (entities with parents, attributes, role bindings) and a dozen requests.
//! The policy is printed as source text and goes through the real pipeline (parse → check →
//! `load_store` → compile → decode → decide); the reference reads the parsed tree and the data
//! as generated. Verdict, reason set and error set must agree on every request.
//!
//! proptest draws a case as a list of choices that the generator reads in order (each a number
//! whose remainder picks an option, the first option the simplest); past the list's end every
//! choice is 0. A failing case is shrunk by proptest lowering choices toward 0, and shown as
//! the generated files, data and request; `PROPTEST_RNG_SEED` replays a run, and the number of
//! cases is proptest's (`PROPTEST_CASES`, default [`DEFAULT_CASES`]). Across the
//! run the test asserts that every construct was generated and that allows, denies overriding
//! an allow, and decisions with an erroring rule each make up at least 20% of the decisions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value as Json, json};

use crate::reference::{RBinding, RData, REntity, ROutcome, RRequest, RValue, Reference, Uid};
use warden::check;
use warden::compile;
use warden::data::load_store;
use warden::eval::{Frame, decide_in, request};
use warden::source::SourceFile;
use warden::syntax;

/// Cases per run unless `PROPTEST_CASES` says otherwise (about 12 decisions each).
const DEFAULT_CASES: u32 = 1000;
const REQUESTS_PER_CASE: usize = 12;

// ---------------------------------------------------------------------------------------------
// Randomness: the choices proptest drew for the case, read in order.

/// Choices drawn per case: more than a case reads (a choice read past them is 0).
const CHOICES: usize = 4096;

/// A case's choices. Shown in a failure's report as a count only: the report shows the case
/// they generate.
#[derive(Clone)]
struct Choices(Vec<u32>);

impl std::fmt::Debug for Choices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nonzero = self.0.iter().filter(|c| **c != 0).count();
        write!(f, "{} choices, {nonzero} of them not 0", self.0.len())
    }
}

struct Rng {
    choices: Choices,
    read: usize,
}

impl Rng {
    fn next(&mut self) -> u64 {
        let choice = self.choices.0.get(self.read).copied().unwrap_or(0);
        self.read += 1;
        u64::from(choice)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }

    /// Index by weights.
    fn weighted(&mut self, weights: &[usize]) -> usize {
        let total: usize = weights.iter().sum();
        let mut roll = self.below(total);
        for (index, weight) in weights.iter().enumerate() {
            if roll < *weight {
                return index;
            }
            roll -= weight;
        }
        weights.len() - 1
    }
}

// ---------------------------------------------------------------------------------------------
// The fixed cast: types, entities, attributes, actions, roles.

const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];
// Ids shared across types (`Group::"u1"`, `Photo::"a1"`) are different entities.
const GROUPS: [&str; 3] = ["g0", "g1", "u1"];
const ALBUMS: [&str; 4] = ["a0", "a1", "a2", "a3"];
const PHOTOS: [&str; 4] = ["p0", "p1", "p2", "a1"];
const STRINGS: [&str; 12] = [
    "legal", "eng", "ops", "", "a", "ab", "bab", "a*b", "lel", "ba", "é", "q\"\\",
];
const INTS: [i64; 10] = [0, 1, 2, -1, 5, 7, 100, i64::MAX, i64::MIN, i64::MAX - 1];
const ROLES: [&str; 3] = ["viewer", "editor", "admin"];
const TIMES: [&str; 6] = [
    "2026-03-02T08:30:00Z",
    "2026-03-02T10:00:00+01:00",
    "2026-03-02T14:00:00Z",
    "2026-03-01T23:59:00Z",
    "2026-03-07T12:00:00-05:00",
    "2025-12-31T23:00:00Z",
];
const DURATIONS: [(&str, i64); 6] = [
    ("1h", 3_600_000),
    ("90m", 5_400_000),
    ("500ms", 500),
    ("2d", 172_800_000),
    ("1h30m", 5_400_000),
    ("15s", 15_000),
];
/// Decimals as written, with their value in ten-thousandths.
const DECIMALS: [(&str, i64); 7] = [
    ("1.5", 15_000),
    ("1.5000", 15_000),
    ("-0.25", -2_500),
    ("0.0", 0),
    ("2.0001", 20_001),
    ("922337203685477.5807", i64::MAX),
    ("-922337203685477.5808", i64::MIN),
];
const ZONES: [&str; 3] = ["UTC", "Europe/Paris", "America/New_York"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ATy {
    Str,
    Int,
    Bool,
    User,
    StrSet,
    Roles,
    Time,
    Dur,
    Dec,
    Info,
}

impl ATy {
    fn declared(self) -> &'static str {
        match self {
            ATy::Str => "String",
            ATy::Int => "Int",
            ATy::Bool => "Bool",
            ATy::User => "User",
            ATy::StrSet | ATy::Roles => "Set<String>",
            ATy::Time => "Time",
            ATy::Dur => "Duration",
            ATy::Dec => "Decimal",
            ATy::Info => "{ score: Int, team: String }",
        }
    }
}

/// (name, type, always optional) for each entity type.
fn attribute_pool(ty: &str) -> &'static [(&'static str, ATy, bool)] {
    match ty {
        "User" => &[
            ("dept", ATy::Str, false),
            ("level", ATy::Int, false),
            ("suspended", ATy::Bool, true),
            ("manager", ATy::User, true),
            ("tags", ATy::StrSet, false),
            ("roles", ATy::Roles, false),
            ("expires", ATy::Time, true),
            ("info", ATy::Info, true),
        ],
        "Group" => &[
            ("dept", ATy::Str, false),
            ("tags", ATy::StrSet, false),
            ("info", ATy::Info, false),
        ],
        "Album" => &[
            ("dept", ATy::Str, false),
            ("public", ATy::Bool, false),
            ("owner", ATy::User, false),
            ("tags", ATy::StrSet, false),
            ("rating", ATy::Dec, true),
        ],
        _ => &[
            ("level", ATy::Int, false),
            ("public", ATy::Bool, false),
            ("owner", ATy::User, false),
            ("ttl", ATy::Dur, false),
            ("tags", ATy::StrSet, false),
        ],
    }
}

const TYPES: [&str; 4] = ["User", "Group", "Album", "Photo"];

fn parent_types(ty: &str) -> &'static [&'static str] {
    match ty {
        "User" | "Group" => &["Group"],
        _ => &["Album"],
    }
}

#[derive(Clone, Debug)]
struct AttrDecl {
    name: &'static str,
    ty: ATy,
    optional: bool,
}

// ---------------------------------------------------------------------------------------------
// Constructs, counted so the test can assert the generator reaches each.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum C {
    LitBool,
    LitInt,
    LitStr,
    LitDuration,
    EntityRef,
    SetLit,
    RecordLit,
    InEntity,
    InSet,
    Eq,
    Ne,
    Order,
    Add,
    Sub,
    Mul,
    Neg,
    And,
    Or,
    Not,
    Has,
    Like,
    Is,
    Contains,
    ContainsAll,
    ContainsAny,
    IsEmpty,
    IfThenElse,
    IpTest,
    Properties,
    Context,
    Let,
    Now,
    Hour,
    Calendar,
    InRange,
    Time,
    Ip,
    Decimal,
    ActionValue,
    Unless,
    NoCondition,
    AnyAction,
    ActionGroup,
    ActionIn,
    ActionHierarchy,
    ActionSubjects,
    Enum,
    OnTypes,
    RoleGrant,
    GrantCondition,
    DiscResourceIn,
    DiscResourceIs,
    DiscSubjectIn,
    DiscSubjectIs,
    DiscValue,
    Chaos,
    LiteralAttr,
    QuotedKey,
    TypedCaller,
    DefaultId,
    TwoFiles,
    Shared,
    Deep,
}

const ALL_CONSTRUCTS: [C; 63] = [
    C::Shared,
    C::Deep,
    C::LiteralAttr,
    C::QuotedKey,
    C::TypedCaller,
    C::DefaultId,
    C::TwoFiles,
    C::LitBool,
    C::LitInt,
    C::LitStr,
    C::LitDuration,
    C::EntityRef,
    C::SetLit,
    C::RecordLit,
    C::InEntity,
    C::InSet,
    C::Eq,
    C::Ne,
    C::Order,
    C::Add,
    C::Sub,
    C::Mul,
    C::Neg,
    C::And,
    C::Or,
    C::Not,
    C::Has,
    C::Like,
    C::Is,
    C::Contains,
    C::ContainsAll,
    C::ContainsAny,
    C::IsEmpty,
    C::IfThenElse,
    C::IpTest,
    C::Properties,
    C::Context,
    C::Let,
    C::Now,
    C::Hour,
    C::Calendar,
    C::InRange,
    C::Time,
    C::Ip,
    C::Decimal,
    C::ActionValue,
    C::Unless,
    C::NoCondition,
    C::AnyAction,
    C::ActionGroup,
    C::ActionIn,
    C::ActionHierarchy,
    C::ActionSubjects,
    C::Enum,
    C::OnTypes,
    C::RoleGrant,
    C::GrantCondition,
    C::DiscResourceIn,
    C::DiscResourceIs,
    C::DiscSubjectIn,
    C::DiscSubjectIs,
    C::DiscValue,
    C::Chaos,
];

// ---------------------------------------------------------------------------------------------
// The expression generator.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum K {
    Bool,
    Int,
    Str,
    Ent,
    Set,
    Time,
    Dur,
    Dec,
    Rec,
}

const KINDS: [K; 9] = [
    K::Bool,
    K::Int,
    K::Str,
    K::Ent,
    K::Set,
    K::Time,
    K::Dur,
    K::Dec,
    K::Rec,
];

fn kind_of(ty: ATy) -> K {
    match ty {
        ATy::Str => K::Str,
        ATy::Int => K::Int,
        ATy::Bool => K::Bool,
        ATy::User => K::Ent,
        ATy::StrSet | ATy::Roles => K::Set,
        ATy::Time => K::Time,
        ATy::Dur => K::Dur,
        ATy::Dec => K::Dec,
        ATy::Info => K::Rec,
    }
}

struct Gen<'r> {
    rng: &'r mut Rng,
    typed: bool,
    /// Attributes by entity type: declared (typed) or the pool the data draws from (dynamic).
    attrs: BTreeMap<&'static str, Vec<AttrDecl>>,
    /// `let`s declared so far, with their kinds.
    lets: Vec<(String, K)>,
    /// The rule's single `on` type, if any: what `resource` is known to be.
    resource_type: Option<&'static str>,
    /// Percent chance of putting an expression of the wrong kind somewhere.
    chaos: usize,
    /// Percent chance of guarding a read of an optional attribute with `has`.
    guard_percent: usize,
    /// Guards requested by the paths of the atom being built.
    guards: Vec<String>,
    hits: BTreeSet<C>,
    /// Atoms generated so far in this policy.
    atoms: Vec<String>,
    /// Actions the policy may name (declared, or invented in dynamic mode).
    actions: Vec<&'static str>,
    group: Option<&'static str>,
    roles: Vec<&'static str>,
    /// `entity Tier enum ["gold", "silver"]` is declared.
    tiers: bool,
}

fn int_lit(i: i64) -> String {
    if i == i64::MIN {
        "((-9223372036854775807) - 1)".to_string()
    } else if i < 0 {
        format!("(-{})", -i128::from(i))
    } else {
        i.to_string()
    }
}

fn str_lit(s: impl AsRef<str>) -> String {
    format!("\"{}\"", warden::syntax::token::escape(s.as_ref()))
}

fn uid_lit(ty: &str, id: impl AsRef<str>) -> String {
    format!("{ty}::{}", str_lit(id))
}

impl Gen<'_> {
    fn hit(&mut self, c: C) {
        self.hits.insert(c);
    }

    fn random_uid(&mut self) -> (String, String) {
        let (ty, ids): (&str, &[&str]) = match self.rng.below(5) {
            0 => ("User", &USERS),
            1 => ("Group", &GROUPS),
            2 => ("Album", &ALBUMS),
            3 => ("Photo", &PHOTOS),
            _ => ("User", &["ghost", "u1"]),
        };
        (ty.to_string(), self.rng.pick(ids).to_string())
    }

    fn entity_literal(&mut self) -> String {
        if self.tiers && self.rng.chance(15) {
            self.hit(C::Enum);
            return uid_lit("Tier", self.rng.pick(&["gold", "silver"]));
        }
        self.hit(C::EntityRef);
        let (ty, id) = self.random_uid();
        uid_lit(&ty, &id)
    }

    /// A stored attribute of the kind asked for, read from subject, resource or an entity
    /// attribute; records the `has` guard it needs.
    fn attr_path(&mut self, kind: K) -> Option<String> {
        let resource_type = self
            .resource_type
            .unwrap_or_else(|| *self.rng.pick(&["Album", "Photo", "User"]));
        let mut bases: Vec<(String, &'static str)> = vec![
            ("subject".to_string(), "User"),
            ("resource".to_string(), resource_type),
        ];
        if self.rng.chance(15) {
            // Read through an entity literal: the compiler folds it from the store.
            self.hit(C::LiteralAttr);
            let (ty, ids): (&'static str, &[&str]) = match self.rng.below(3) {
                0 => ("User", &USERS),
                1 => ("Album", &ALBUMS),
                _ => ("Photo", &PHOTOS),
            };
            bases = vec![(uid_lit(ty, self.rng.pick(ids)), ty)];
        }
        for (base, ty) in bases.clone() {
            let ty_attrs = self.attrs.get(ty).cloned().unwrap_or_default();
            for attr in ty_attrs {
                if attr.ty == ATy::User {
                    let path = format!("{base}.{}", attr.name);
                    bases.push((path, "User"));
                }
            }
        }
        let mut options = Vec::new();
        for (base, ty) in &bases {
            for attr in self.attrs.get(ty).cloned().unwrap_or_default() {
                if kind_of(attr.ty) == kind {
                    options.push((base.clone(), attr));
                }
            }
        }
        if options.is_empty() {
            return None;
        }
        let (base, attr) = self.rng.pick(&options).clone();
        if attr.optional || !self.typed {
            self.guards.push(format!("({base} has {})", attr.name));
        }
        // The base itself may be an optional entity attribute (`subject.manager`).
        if let Some((outer, name)) = base.rsplit_once('.')
            && let Some(outer_ty) = bases.iter().find(|(b, _)| b == outer).map(|(_, t)| *t)
            && self
                .attrs
                .get(outer_ty)
                .is_some_and(|a| a.iter().any(|d| d.name == name && d.optional))
        {
            self.guards.insert(
                self.guards.len().saturating_sub(1),
                format!("({outer} has {name})"),
            );
        }
        Some(format!("{base}.{}", attr.name))
    }

    /// A caller-sent value: context or properties.
    fn caller_path(&mut self, kind: K) -> Option<String> {
        let options: &[(&str, &str)] = match kind {
            K::Bool => &[
                ("context", "mfa"),
                ("subject.properties", "mfa"),
                ("action.properties", "soft"),
            ],
            K::Str => &[("context", "dept"), ("subject.properties", "dept")],
            K::Int => &[
                ("context", "n"),
                ("subject.properties", "level"),
                ("context", "x-y"),
            ],
            K::Time => &[("context", "when")],
            K::Dec => &[("context", "rate")],
            K::Ent => &[("context", "who")],
            K::Set => &[("context", "list")],
            K::Rec => &[("context", "rec")],
            _ => &[],
        };
        if options.is_empty() {
            return None;
        }
        let (base, name) = *self.rng.pick(options);
        if base == "context" {
            self.hit(C::Context);
        } else {
            self.hit(C::Properties);
        }
        if name.contains('-') {
            self.hit(C::QuotedKey);
            self.guards.push(format!("({base} has {})", str_lit(name)));
            return Some(format!("{base}[{}]", str_lit(name)));
        }
        self.guards.push(format!("({base} has {name})"));
        Some(format!("{base}.{name}"))
    }

    fn let_of(&mut self, kind: K) -> Option<String> {
        let options: Vec<String> = self
            .lets
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(n, _)| n.clone())
            .collect();
        if options.is_empty() {
            return None;
        }
        self.hit(C::Let);
        Some(self.rng.pick(&options).clone())
    }

    fn path(&mut self, kind: K) -> Option<String> {
        if self.rng.chance(35) {
            self.caller_path(kind).or_else(|| self.attr_path(kind))
        } else {
            self.attr_path(kind).or_else(|| self.caller_path(kind))
        }
    }

    fn expr(&mut self, kind: K, depth: u32) -> String {
        if self.rng.chance(self.chaos) {
            self.hit(C::Chaos);
            let other = *self.rng.pick(&KINDS);
            return self.expr_of(other, depth);
        }
        self.expr_of(kind, depth)
    }

    fn expr_of(&mut self, kind: K, depth: u32) -> String {
        match kind {
            K::Bool => self.bool_expr(depth),
            K::Int => self.int_expr(depth),
            K::Str => self.str_expr(),
            K::Ent => self.ent_expr(),
            K::Set => self.set_expr(depth),
            K::Time => self.time_expr(depth),
            K::Dur => self.dur_expr(depth),
            K::Dec => self.dec_expr(),
            K::Rec => self.rec_expr(depth),
        }
    }

    fn int_expr(&mut self, depth: u32) -> String {
        let choice = self.rng.weighted(&[
            4,
            4,
            1,
            if depth > 0 { 3 } else { 0 },
            1,
            1,
            if depth > 0 { 1 } else { 0 },
        ]);
        match choice {
            0 => {
                self.hit(C::LitInt);
                int_lit(*self.rng.pick(&INTS))
            }
            1 => self.path(K::Int).unwrap_or_else(|| "1".to_string()),
            2 => self.let_of(K::Int).unwrap_or_else(|| "2".to_string()),
            3 => {
                let op = self.rng.below(4);
                let a = self.expr(K::Int, depth - 1);
                let b = self.expr(K::Int, depth - 1);
                match op {
                    3 => {
                        self.hit(C::Mul);
                        format!("({a} * {b})")
                    }
                    0 => {
                        self.hit(C::Add);
                        format!("({a} + {b})")
                    }
                    1 => {
                        self.hit(C::Sub);
                        format!("({a} - {b})")
                    }
                    _ => {
                        self.hit(C::Neg);
                        format!("(-({a}))")
                    }
                }
            }
            4 => {
                self.hit(C::Hour);
                self.hit(C::Now);
                let zone = *self.rng.pick(&ZONES);
                format!("hour(now(), {})", str_lit(zone))
            }
            6 => {
                self.hit(C::IfThenElse);
                let c = self.expr(K::Bool, depth - 1);
                let a = self.expr(K::Int, depth - 1);
                let b = self.expr(K::Int, depth - 1);
                format!("(if {c} then {a} else {b})")
            }
            _ => {
                self.hit(C::Calendar);
                let f = *self
                    .rng
                    .pick(&["year", "month", "day", "minute", "weekday"]);
                let zone = *self.rng.pick(&ZONES);
                let t = self.time_expr(0);
                format!("{f}({t}, {})", str_lit(zone))
            }
        }
    }

    fn str_expr(&mut self) -> String {
        if self.rng.chance(45) {
            self.hit(C::LitStr);
            str_lit(self.rng.pick(&STRINGS))
        } else {
            self.path(K::Str)
                .unwrap_or_else(|| str_lit(self.rng.pick(&STRINGS)))
        }
    }

    fn ent_expr(&mut self) -> String {
        match self.rng.below(6) {
            0 => "subject".to_string(),
            1 => "resource".to_string(),
            2 => self.entity_literal(),
            3 => self.let_of(K::Ent).unwrap_or_else(|| "subject".to_string()),
            _ => self.path(K::Ent).unwrap_or_else(|| "resource".to_string()),
        }
    }

    fn set_expr(&mut self, depth: u32) -> String {
        match self.rng.below(6) {
            0 => {
                self.hit(C::SetLit);
                let n = self.rng.below(3);
                let members: Vec<String> = (0..n).map(|_| self.str_expr()).collect();
                format!("[{}]", members.join(", "))
            }
            1 => {
                self.hit(C::SetLit);
                let n = 1 + self.rng.below(3);
                let members: Vec<String> = (0..n).map(|_| self.entity_literal()).collect();
                format!("[{}]", members.join(", "))
            }
            2 if depth > 0 && !self.typed => {
                // A set that may mix kinds.
                self.hit(C::SetLit);
                let a = self.expr(K::Ent, depth - 1);
                let other = *self.rng.pick(&KINDS);
                let b = self.expr(other, 0);
                format!("[{a}, {b}]")
            }
            3 => self.let_of(K::Set).unwrap_or_else(|| "[]".to_string()),
            _ => self.path(K::Set).unwrap_or_else(|| "[\"a\"]".to_string()),
        }
    }

    fn time_expr(&mut self, depth: u32) -> String {
        match self.rng.weighted(&[3, 2, 2, if depth > 0 { 2 } else { 0 }]) {
            0 => {
                self.hit(C::Now);
                "now()".to_string()
            }
            1 => {
                self.hit(C::Time);
                format!("time({})", str_lit(self.rng.pick(&TIMES)))
            }
            2 => self.path(K::Time).unwrap_or_else(|| "now()".to_string()),
            _ => {
                let t = self.expr(K::Time, depth - 1);
                let d = self.expr(K::Dur, depth - 1);
                if self.rng.chance(50) {
                    self.hit(C::Add);
                    format!("({t} + {d})")
                } else {
                    self.hit(C::Sub);
                    format!("({t} - {d})")
                }
            }
        }
    }

    fn dur_expr(&mut self, depth: u32) -> String {
        match self.rng.weighted(&[4, 2, if depth > 0 { 1 } else { 0 }, 1]) {
            0 => {
                self.hit(C::LitDuration);
                self.rng.pick(&DURATIONS).0.to_string()
            }
            1 => self.path(K::Dur).unwrap_or_else(|| "1h".to_string()),
            2 => {
                self.hit(C::Sub);
                let a = self.time_expr(depth - 1);
                let b = self.time_expr(depth - 1);
                format!("({a} - {b})")
            }
            _ => {
                self.hit(C::Neg);
                format!("(-({}))", self.rng.pick(&DURATIONS).0)
            }
        }
    }

    fn dec_expr(&mut self) -> String {
        match self.rng.weighted(&[3, 3, 1]) {
            0 => {
                self.hit(C::Decimal);
                format!("decimal({})", str_lit(self.rng.pick(&DECIMALS).0))
            }
            1 => self
                .path(K::Dec)
                .unwrap_or_else(|| "decimal(\"1.0\")".to_string()),
            _ => self
                .let_of(K::Dec)
                .unwrap_or_else(|| "decimal(\"-1.0\")".to_string()),
        }
    }

    fn rec_expr(&mut self, depth: u32) -> String {
        match self.rng.below(4) {
            0 => {
                self.hit(C::RecordLit);
                let score = self.expr(K::Int, depth.saturating_sub(1));
                let team = self.str_expr();
                format!("{{score: {score}, team: {team}}}")
            }
            1 => {
                self.hit(C::Context);
                "context".to_string()
            }
            2 => {
                self.hit(C::Properties);
                "subject.properties".to_string()
            }
            _ => self.path(K::Rec).unwrap_or_else(|| "{}".to_string()),
        }
    }

    fn bool_expr(&mut self, depth: u32) -> String {
        if depth == 0 {
            return self.guarded_atom();
        }
        match self.rng.weighted(&[5, 1, 3, 2, 1, 1]) {
            0 => self.guarded_atom(),
            5 => {
                self.hit(C::IfThenElse);
                let c = self.expr(K::Bool, depth - 1);
                let a = self.expr(K::Bool, depth - 1);
                let b = self.expr(K::Bool, depth - 1);
                format!("(if {c} then {a} else {b})")
            }
            1 => {
                self.hit(C::Not);
                format!("(not {})", self.expr(K::Bool, depth - 1))
            }
            2 => {
                self.hit(C::And);
                let a = self.expr(K::Bool, depth - 1);
                let b = self.expr(K::Bool, depth - 1);
                format!("({a} and {b})")
            }
            3 => {
                self.hit(C::Or);
                let a = self.expr(K::Bool, depth - 1);
                let b = self.expr(K::Bool, depth - 1);
                format!("({a} or {b})")
            }
            _ => self.let_of(K::Bool).unwrap_or_else(|| self.guarded_atom()),
        }
    }

    /// An atom, guarded by the `has` tests its optional reads need (sometimes left unguarded,
    /// so that reading an absent value errors).
    fn guarded_atom(&mut self) -> String {
        // Reuse an atom now and then: shared sub-expressions are one node in the graph,
        // evaluated once per request and read from the memo by every rule after the first.
        if !self.atoms.is_empty() && self.rng.chance(20) {
            self.hit(C::Shared);
            return self.rng.pick(&self.atoms).clone();
        }
        let atom = self.fresh_atom();
        self.atoms.push(atom.clone());
        atom
    }

    fn fresh_atom(&mut self) -> String {
        let start = self.guards.len();
        let atom = self.atom();
        let guards: Vec<String> = self.guards.drain(start..).collect();
        if guards.is_empty() || !self.rng.chance(self.guard_percent) {
            return atom;
        }
        self.hit(C::Has);
        let mut unique: Vec<String> = Vec::new();
        for guard in guards {
            if !unique.contains(&guard) {
                unique.push(guard);
            }
        }
        format!("({} and {atom})", unique.join(" and "))
    }

    fn atom(&mut self) -> String {
        let choice = self.rng.weighted(&[
            2, 4, 4, 2, 3, 3, 2, 2, 2, 2, 3, 2, 2, 1, 1, 1, 1, 2, 2, 1, 2, 2,
        ]);
        match choice {
            0 => {
                self.hit(C::LitBool);
                if self.rng.chance(70) { "true" } else { "false" }.to_string()
            }
            1 => {
                let (a, b) = (self.str_expr(), self.str_expr());
                self.equality(a, b)
            }
            2 => {
                let (a, b) = (self.expr(K::Int, 1), self.expr(K::Int, 1));
                self.order(a, b)
            }
            3 => {
                let (a, b) = (self.ent_expr(), self.ent_expr());
                self.equality(a, b)
            }
            4 => {
                self.hit(C::InEntity);
                let a = self.ent_expr();
                let b = if self.rng.chance(60) {
                    self.entity_literal()
                } else {
                    self.ent_expr()
                };
                format!("({a} in {b})")
            }
            5 => {
                self.hit(C::InSet);
                let a = self.ent_expr();
                let b = self.set_expr(1);
                format!("({a} in {b})")
            }
            6 => {
                self.hit(C::Has);
                let (base, name) = match self.rng.below(6) {
                    0 => ("subject".to_string(), self.any_attr_name()),
                    1 => ("resource".to_string(), self.any_attr_name()),
                    2 => (
                        "context".to_string(),
                        self.rng.pick(&["mfa", "dept", "n", "who"]).to_string(),
                    ),
                    3 => (
                        "subject.properties".to_string(),
                        self.rng.pick(&["mfa", "dept", "level"]).to_string(),
                    ),
                    4 => (self.entity_literal(), self.any_attr_name()),
                    _ => (self.expr(K::Rec, 0), "score".to_string()),
                };
                format!("({base} has {name})")
            }
            7 => {
                self.hit(C::Like);
                let s = self.expr(K::Str, 0);
                let pattern = self.rng.pick(&[
                    "*", "a*", "*b", "le*l", "", "a\\\\*b", "*g*", "*a*b", "b*", "*\\\\**",
                    "lel*l", "*ab",
                ]);
                format!("({s} like \"{pattern}\")")
            }
            8 => {
                self.hit(C::Is);
                let e = self.expr(K::Ent, 0);
                let ty = self.rng.pick(&TYPES);
                format!("({e} is {ty})")
            }
            9 => {
                self.hit(C::Contains);
                let set = self.set_expr(1);
                let member = if self.rng.chance(50) {
                    self.str_expr()
                } else {
                    self.ent_expr()
                };
                format!("({set} contains {member})")
            }
            10 => {
                let path = self.path(K::Bool);
                path.unwrap_or_else(|| "true".to_string())
            }
            11 => {
                let (a, b) = (self.expr(K::Time, 1), self.expr(K::Time, 1));
                self.order(a, b)
            }
            12 => {
                let (a, b) = (self.expr(K::Dur, 1), self.expr(K::Dur, 1));
                self.order(a, b)
            }
            13 => {
                self.hit(C::InRange);
                self.hit(C::Hour);
                let zone = *self.rng.pick(&ZONES);
                let low = self.rng.below(12);
                format!(
                    "in_range(hour(now(), {}), {low}, {})",
                    str_lit(zone),
                    low + 8
                )
            }
            14 if self.rng.chance(50) => {
                self.hit(C::IpTest);
                let test = *self
                    .rng
                    .pick(&["is_ipv4", "is_ipv6", "is_loopback", "is_multicast"]);
                if !self.typed && self.rng.chance(15) {
                    // Not an address: an error in both.
                    return format!("{test}({})", self.str_expr());
                }
                let address = self.rng.pick(&[
                    "127.0.0.1",
                    "127.0.0.0/8",
                    "127.0.0.0/7",
                    "::1",
                    "::1/127",
                    "224.0.0.1",
                    "224.0.0.0/4",
                    "224.0.0.0/3",
                    "ff02::1",
                    "ff00::/8",
                    "ff00::/7",
                    "10.1.2.3",
                    "2001:db8::/32",
                ]);
                format!("{test}(ip(\"{address}\"))")
            }
            14 => {
                self.hit(C::Ip);
                let address = self.rng.pick(&["10.1.2.3", "192.168.0.1", "::1"]);
                let range = self.rng.pick(&["10.0.0.0/8", "192.168.0.0/16", "::/0"]);
                format!("(ip(\"{address}\") in ip(\"{range}\"))")
            }
            15 if !self.typed => {
                self.hit(C::ActionValue);
                format!("(action == {})", self.str_expr())
            }
            16 => {
                let (a, b) = (self.expr(K::Rec, 1), self.expr(K::Rec, 1));
                self.equality(a, b)
            }
            18 => {
                let (a, b) = (self.expr(K::Set, 1), self.expr(K::Set, 1));
                if self.rng.chance(50) {
                    self.hit(C::ContainsAll);
                    format!("({a} contains all {b})")
                } else {
                    self.hit(C::ContainsAny);
                    format!("({a} contains any {b})")
                }
            }
            19 => {
                self.hit(C::IsEmpty);
                format!("({} is empty)", self.expr(K::Set, 1))
            }
            20 => {
                let (a, b) = (self.expr(K::Dec, 1), self.expr(K::Dec, 1));
                self.order(a, b)
            }
            21 => self.action_test(),
            _ => {
                let (a, b) = (self.expr(K::Set, 1), self.expr(K::Set, 1));
                self.equality(a, b)
            }
        }
    }

    fn any_attr_name(&mut self) -> String {
        let ty = *self.rng.pick(&TYPES);
        let pool = attribute_pool(ty);
        self.rng.pick(pool).0.to_string()
    }

    fn equality(&mut self, a: String, b: String) -> String {
        if self.rng.chance(70) {
            self.hit(C::Eq);
            format!("({a} == {b})")
        } else {
            self.hit(C::Ne);
            format!("({a} != {b})")
        }
    }

    fn order(&mut self, a: String, b: String) -> String {
        let op = *self.rng.pick(&["<", "<=", ">", ">=", "==", "!="]);
        match op {
            "==" => self.hit(C::Eq),
            "!=" => self.hit(C::Ne),
            _ => self.hit(C::Order),
        }
        format!("({a} {op} {b})")
    }

    /// The first test of a rule that the compiler can discriminate on.
    fn discriminator(&mut self) -> String {
        match self.rng.below(6) {
            0 => {
                self.hit(C::DiscResourceIn);
                let (ty, ids) = if self.rng.chance(70) {
                    ("Album", &ALBUMS)
                } else {
                    ("Photo", &PHOTOS)
                };
                format!("(resource in {})", uid_lit(ty, *self.rng.pick(ids)))
            }
            1 => {
                self.hit(C::DiscResourceIs);
                let (ty, ids) = if self.rng.chance(70) {
                    ("Photo", &PHOTOS)
                } else {
                    ("Album", &ALBUMS)
                };
                format!("(resource == {})", uid_lit(ty, *self.rng.pick(ids)))
            }
            2 => {
                self.hit(C::DiscSubjectIn);
                format!("(subject in {})", uid_lit("Group", *self.rng.pick(&GROUPS)))
            }
            3 => {
                self.hit(C::DiscSubjectIs);
                format!("(subject == {})", uid_lit("User", *self.rng.pick(&USERS)))
            }
            _ => {
                self.hit(C::DiscValue);
                let (path, constant) = match self.rng.below(5) {
                    0 => ("subject.dept", str_lit(self.rng.pick(&STRINGS[..3]))),
                    1 => ("context.dept", str_lit(self.rng.pick(&STRINGS[..3]))),
                    2 => ("subject.level", int_lit(*self.rng.pick(&[1, 7, 100]))),
                    3 => ("resource.public", "true".to_string()),
                    _ => ("subject.properties.dept", str_lit("legal")),
                };
                if self.rng.chance(25) {
                    format!("({constant} == {path})")
                } else {
                    format!("({path} == {constant})")
                }
            }
        }
    }

    /// `action in write`, `action in [edit, comment]`, `action == view`, `action != view`.
    fn action_test(&mut self) -> String {
        self.hit(C::ActionIn);
        let name = |g: &mut Self, group: bool| -> String {
            let name = match g.group {
                Some(group_name) if group && g.rng.chance(40) => group_name,
                _ => *g.rng.pick(&g.actions),
            };
            if name.contains('-') {
                str_lit(name)
            } else {
                name.to_string()
            }
        };
        match self.rng.below(4) {
            0 => format!("(action in {})", name(self, true)),
            1 => {
                let (a, b) = (name(self, true), name(self, true));
                format!("(action in [{a}, {b}])")
            }
            2 => format!("(action == {})", name(self, false)),
            _ => format!("(action != {})", name(self, false)),
        }
    }

    fn actions(&mut self) -> String {
        if self.rng.chance(35) {
            self.hit(C::AnyAction);
            return "*".to_string();
        }
        let mut names: Vec<&str> = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let name = if let Some(group) = self.group
                && self.rng.chance(20)
            {
                self.hit(C::ActionGroup);
                group
            } else {
                *self.rng.pick(&self.actions)
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
            .iter()
            .map(|n| {
                if n.contains('-') {
                    str_lit(n)
                } else {
                    n.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn on_types(&mut self) -> String {
        self.resource_type = None;
        if self.rng.chance(50) {
            return String::new();
        }
        self.hit(C::OnTypes);
        if self.rng.chance(70) {
            let ty = *self.rng.pick(&["Photo", "Album"]);
            self.resource_type = Some(ty);
            format!(" on {ty}")
        } else {
            " on Photo, Album".to_string()
        }
    }

    /// `if …`, `unless …` or nothing.
    fn condition(&mut self, deny: bool) -> String {
        let none = if deny { 6 } else { 10 };
        match self.rng.weighted(&[none, 75, 12]) {
            0 => {
                self.hit(C::NoCondition);
                String::new()
            }
            1 => {
                let body = if self.rng.chance(45) {
                    let first = self.discriminator();
                    if self.rng.chance(65) {
                        self.hit(C::And);
                        let rest = self.expr(K::Bool, 1);
                        format!("{first} and {rest}")
                    } else {
                        first
                    }
                } else if self.rng.chance(10) {
                    self.hit(C::Deep);
                    self.expr(K::Bool, 4)
                } else {
                    self.expr(K::Bool, 2)
                };
                format!(" if {body}")
            }
            _ => {
                self.hit(C::Unless);
                format!(" unless {}", self.expr(K::Bool, 2))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One generated case.

struct Case {
    typed: bool,
    /// How many choices the generator read.
    choices_read: usize,
    /// Policy files: (name, text).
    files: Vec<(String, String)>,
    data_json: String,
    data: RData,
    requests: Vec<(Json, RRequest)>,
    hits: BTreeSet<C>,
}

fn json_of(value: &RValue) -> Json {
    match value {
        RValue::Bool(b) => json!(b),
        RValue::Int(i) => json!(i),
        RValue::Str(s) => json!(s),
        RValue::Entity(uid) => json!({"type": uid.ty, "id": uid.id}),
        RValue::Set(members) => Json::Array(members.iter().map(json_of).collect()),
        RValue::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), json_of(v)))
                .collect(),
        ),
        // Typed values only come from declared attributes, rendered by `data_value`.
        RValue::Time(t) => json!(t.to_string()),
        RValue::Duration(d) => json!(format!("{}ms", d.as_millis())),
        RValue::Ip(ip) => json!(ip.to_string()),
        RValue::Decimal(d) => json!(warden::syntax::decimal::decimal_text(*d)),
    }
}

/// A value of a declared attribute type, with how a data file writes it.
fn data_value(rng: &mut Rng, ty: ATy, roles: &[&str]) -> (RValue, Json) {
    match ty {
        ATy::Str => {
            let s = *rng.pick(&STRINGS);
            (RValue::str(s), json!(s))
        }
        ATy::Int => {
            let i = *rng.pick(&INTS);
            (RValue::Int(i), json!(i))
        }
        ATy::Bool => {
            let b = rng.chance(50);
            (RValue::Bool(b), json!(b))
        }
        ATy::User => {
            let id = *rng.pick(&["u0", "u1", "u2", "u3", "ghost"]);
            let written = if rng.chance(50) {
                json!(id)
            } else {
                json!({"type": "User", "id": id})
            };
            (RValue::Entity(Uid::new("User", id)), written)
        }
        ATy::StrSet => {
            let members: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(&STRINGS)).collect();
            (
                RValue::set(members.iter().map(RValue::str).collect()),
                json!(members),
            )
        }
        ATy::Roles => {
            let members: Vec<&str> = if roles.is_empty() {
                Vec::new()
            } else {
                (0..rng.below(3)).map(|_| *rng.pick(roles)).collect()
            };
            (
                RValue::set(members.iter().map(RValue::str).collect()),
                json!(members),
            )
        }
        ATy::Time => {
            let text = *rng.pick(&TIMES);
            let time: Timestamp = text.parse().unwrap_or(Timestamp::UNIX_EPOCH);
            (RValue::Time(time), json!(text))
        }
        ATy::Dur => {
            let (text, ms) = *rng.pick(&DURATIONS);
            (
                RValue::Duration(SignedDuration::from_millis(ms)),
                json!(text),
            )
        }
        ATy::Dec => {
            let (text, value) = *rng.pick(&DECIMALS);
            // Both of the ways a data file may write one.
            let written = if rng.chance(50) {
                json!(text)
            } else {
                json!({"__extn": {"fn": "decimal", "arg": text}})
            };
            (RValue::Decimal(value), written)
        }
        ATy::Info => {
            let score = *rng.pick(&INTS);
            let team = *rng.pick(&STRINGS);
            let mut fields = BTreeMap::new();
            fields.insert("score".to_string(), RValue::Int(score));
            fields.insert("team".to_string(), RValue::str(team));
            (
                RValue::Record(fields),
                json!({"score": score, "team": team}),
            )
        }
    }
}

/// A value of any JSON-representable kind (what undeclared data and callers may send).
fn loose_value(rng: &mut Rng) -> RValue {
    match rng.below(6) {
        0 => RValue::Bool(rng.chance(50)),
        1 => RValue::Int(*rng.pick(&INTS)),
        2 => RValue::str(rng.pick(&STRINGS)),
        3 => RValue::Entity(Uid::new("User", rng.pick(&USERS))),
        4 => RValue::set(vec![RValue::str(rng.pick(&STRINGS))]),
        _ => {
            let mut fields = BTreeMap::new();
            fields.insert("score".to_string(), RValue::Int(*rng.pick(&INTS)));
            RValue::Record(fields)
        }
    }
}

/// A value for a dynamic (undeclared) attribute: usually of the kind its name suggests.
fn dynamic_value(rng: &mut Rng, ty: ATy, roles: &[&str]) -> RValue {
    // Role names in data are checked against the declared roles, so only those are loose.
    if rng.chance(15) && (ty != ATy::Roles || roles.is_empty()) {
        return loose_value(rng);
    }
    match ty {
        // No typed decoding without declarations: times and durations cannot be stored.
        ATy::Time | ATy::Dur => RValue::str(rng.pick(&TIMES)),
        ATy::Dec => RValue::str(rng.pick(&DECIMALS).0),
        ATy::Roles => {
            let pool: Vec<&str> = if roles.is_empty() {
                vec!["viewer", "nobody"]
            } else {
                roles.to_vec()
            };
            RValue::set(
                (0..rng.below(3))
                    .map(|_| RValue::str(rng.pick(&pool)))
                    .collect(),
            )
        }
        other => data_value(rng, other, roles).0,
    }
}

fn generate(choices: Choices) -> Case {
    let mut rng = Rng { choices, read: 0 };
    let typed = rng.chance(50);
    let declare_actions = typed || rng.chance(50);
    // Typed `properties` and `context`: request values decoded through declarations.
    let typed_caller = typed && rng.chance(50);
    let mut policy = String::new();
    // Where items end, so the policy can be cut into two files between items.
    let mut cuts: Vec<usize> = Vec::new();

    // Declarations.
    let mut attrs: BTreeMap<&'static str, Vec<AttrDecl>> = BTreeMap::new();
    for ty in TYPES {
        let mut list = Vec::new();
        for (name, aty, always_optional) in attribute_pool(ty) {
            if !typed || rng.chance(75) {
                list.push(AttrDecl {
                    name,
                    ty: *aty,
                    optional: *always_optional || (typed && rng.chance(30)),
                });
            }
        }
        attrs.insert(ty, list);
    }
    if typed {
        for ty in TYPES {
            let parents = parent_types(ty).join(", ");
            let mut members: Vec<String> = attrs[ty]
                .iter()
                .map(|a| {
                    let q = if a.optional { "?" } else { "" };
                    format!("{}{q}: {}", a.name, a.ty.declared())
                })
                .collect();
            if typed_caller && ty == "User" {
                members.push("properties: { mfa?: Bool, dept?: String, level?: Int }".into());
            }
            let _ = writeln!(
                policy,
                "entity {ty} in [{parents}] {{ {} }}",
                members.join(", ")
            );
            cuts.push(policy.len());
        }
    }
    // An enumerated type: requests may name its listed ids or another (refused).
    let tiers = typed && rng.chance(50);
    if tiers {
        policy.push_str("entity Tier enum [\"gold\", \"silver\"]\n");
        cuts.push(policy.len());
    }
    let mut actions: Vec<&'static str> = vec!["view", "edit", "delete", "share"];
    let mut hierarchy = false;
    let mut subjects = false;
    if declare_actions {
        policy.push_str("action view, edit, delete, share");
        if typed_caller {
            policy.push_str(
                " context { mfa?: Bool, n?: Int, dept?: String, who?: User, when?: Time, \"x-y\"?: Int, rate?: Decimal }",
            );
        }
        policy.push('\n');
        cuts.push(policy.len());
        if rng.chance(50) {
            // Beneath `edit` or not: a rule naming `edit` then covers `comment` too.
            if rng.chance(60) {
                hierarchy = true;
                policy.push_str("action comment in edit on Photo");
            } else {
                policy.push_str("action comment on Photo");
            }
            // Only users may comment: a group asking is refused, and `subject` is a `User`.
            if rng.chance(50) {
                subjects = true;
                policy.push_str(" by User");
            }
            policy.push('\n');
            cuts.push(policy.len());
            actions.push("comment");
        }
    } else {
        actions.push("read-x");
    }
    let group = if rng.chance(70) {
        policy.push_str("action group write = [edit, share]\n");
        cuts.push(policy.len());
        Some("write")
    } else {
        None
    };
    if declare_actions && rng.chance(30) {
        // An action beneath an action and, when there is one, a group.
        hierarchy = true;
        let parents = if group.is_some() {
            "[write, delete]"
        } else {
            "delete"
        };
        let _ = writeln!(policy, "action approve in {parents} on Album");
        cuts.push(policy.len());
        actions.push("approve");
    }
    let role_count = rng.below(4);
    let roles: Vec<&'static str> = ROLES[..role_count].to_vec();

    let mut generator = Gen {
        rng: &mut rng,
        typed,
        attrs: attrs.clone(),
        lets: Vec::new(),
        resource_type: None,
        // Typed policies stay well-typed and guard every optional read (the checker's rules);
        // ill-typed expressions and unguarded reads are left to dynamic policies.
        chaos: if typed { 0 } else { 12 },
        guard_percent: if typed { 100 } else { 50 },
        guards: Vec::new(),
        hits: BTreeSet::new(),
        atoms: Vec::new(),
        actions: actions.clone(),
        group,
        roles: roles.clone(),
        tiers,
    };

    // Lets.
    for index in 0..generator.rng.below(4) {
        let kind = *generator
            .rng
            .pick(&[K::Bool, K::Bool, K::Int, K::Ent, K::Set]);
        let value = generator.expr(kind, 2);
        let name = format!("l{index}");
        let _ = writeln!(policy, "let {name} = {value}");
        cuts.push(policy.len());
        generator.lets.push((name, kind));
    }

    // Roles and their grants.
    let mut grant_number = 0;
    for (index, role) in generator.roles.clone().iter().enumerate() {
        let inherits = match index {
            0 => String::new(),
            _ => format!(" : {}", ROLES[generator.rng.below(index)]),
        };
        let _ = writeln!(policy, "role {role}{inherits} {{");
        for _ in 0..1 + generator.rng.below(2) {
            generator.hit(C::RoleGrant);
            let actions = generator.actions();
            let on = generator.on_types();
            generator.guard_percent = if typed { 100 } else { 50 };
            let condition = if generator.rng.chance(60) {
                generator.hit(C::GrantCondition);
                format!(" if {}", generator.expr(K::Bool, 1))
            } else {
                String::new()
            };
            let id = if generator.rng.chance(20) {
                generator.hit(C::DefaultId);
                String::new()
            } else {
                format!("@id(\"g{grant_number}\") ")
            };
            let _ = writeln!(policy, "  {id}allow {actions}{on}{condition}");
            grant_number += 1;
        }
        policy.push_str("}\n");
        cuts.push(policy.len());
    }

    // Rules.
    let allows = 3 + generator.rng.below(5);
    let denies = 1 + generator.rng.below(3);
    for index in 0..allows + denies {
        let deny = index >= allows;
        let actions = generator.actions();
        let on = generator.on_types();
        generator.guard_percent = if typed { 100 } else { 50 };
        let condition = generator.condition(deny);
        let effect = if deny { "deny" } else { "allow" };
        let id = if generator.rng.chance(20) {
            generator.hit(C::DefaultId);
            String::new()
        } else {
            format!("@id(\"r{index}\") ")
        };
        let _ = writeln!(policy, "{id}{effect} {actions}{on}{condition}");
        cuts.push(policy.len());
    }
    if typed_caller {
        generator.hit(C::TypedCaller);
    }
    // One file, or two cut between items (names resolve across files).
    let files = match cuts.len() {
        n if n > 1 && generator.rng.chance(40) => {
            generator.hit(C::TwoFiles);
            let cut = cuts[generator.rng.below(n - 1)];
            vec![
                ("a.warden".to_string(), policy[..cut].to_string()),
                ("b.warden".to_string(), policy[cut..].to_string()),
            ]
        }
        _ => vec![("a.warden".to_string(), policy)],
    };
    if hierarchy {
        generator.hit(C::ActionHierarchy);
    }
    if subjects {
        generator.hit(C::ActionSubjects);
    }
    let hits = std::mem::take(&mut generator.hits);
    drop(generator);

    // Data.
    let mut data = RData::default();
    let mut entities_json = Vec::new();
    let all: Vec<(&str, &[&str])> = vec![
        ("Group", &GROUPS),
        ("User", &USERS),
        ("Album", &ALBUMS),
        ("Photo", &PHOTOS),
    ];
    for (ty, ids) in &all {
        for (position, id) in ids.iter().enumerate() {
            if rng.chance(12) {
                continue; // named, never stored
            }
            let mut entity = REntity::default();
            let mut attributes = serde_json::Map::new();
            for attr in &attrs[ty] {
                let present = !attr.optional || rng.chance(60);
                if typed {
                    if present {
                        let (value, written) = data_value(&mut rng, attr.ty, &roles);
                        entity.attributes.insert(attr.name.to_string(), value);
                        attributes.insert(attr.name.to_string(), written);
                    } else if rng.chance(30) {
                        attributes.insert(attr.name.to_string(), Json::Null);
                    }
                } else if present && rng.chance(80) {
                    let value = dynamic_value(&mut rng, attr.ty, &roles);
                    attributes.insert(attr.name.to_string(), json_of(&value));
                    entity.attributes.insert(attr.name.to_string(), value);
                }
            }
            // Parents: acyclic, earlier groups / albums only (or ones never stored).
            let parent_ty = parent_types(ty)[0];
            let pool: &[&str] = if parent_ty == "Group" {
                &GROUPS
            } else {
                &ALBUMS
            };
            let limit = if ty == &parent_ty {
                position
            } else {
                pool.len()
            };
            let mut parents_json = Vec::new();
            for _ in 0..rng.below(3) {
                if limit == 0 {
                    break;
                }
                let parent = pool[rng.below(limit)];
                let uid = Uid::new(parent_ty, parent);
                if entity.parents.contains(&uid) {
                    continue;
                }
                parents_json.push(if typed && rng.chance(50) {
                    json!(parent)
                } else {
                    json!({"type": parent_ty, "id": parent})
                });
                entity.parents.push(uid);
            }
            let mut object = serde_json::Map::new();
            object.insert("type".into(), json!(ty));
            object.insert("id".into(), json!(id));
            if !attributes.is_empty() || rng.chance(50) {
                object.insert("attributes".into(), Json::Object(attributes));
            }
            if !parents_json.is_empty() {
                object.insert("parents".into(), Json::Array(parents_json));
            }
            entities_json.push(Json::Object(object));
            data.entities.insert(Uid::new(ty, id), entity);
        }
    }
    let mut bindings_json = Vec::new();
    if !roles.is_empty() {
        for _ in 0..rng.below(5) {
            let role = *rng.pick(&roles);
            let subject = if rng.chance(60) {
                Uid::new("User", rng.pick(&USERS))
            } else {
                Uid::new("Group", rng.pick(&GROUPS))
            };
            let on = match rng.below(5) {
                0 | 1 => None,
                2 | 3 => Some(Uid::new("Album", rng.pick(&ALBUMS))),
                _ => Some(Uid::new("Photo", rng.pick(&PHOTOS))),
            };
            let mut binding = serde_json::Map::new();
            binding.insert("role".into(), json!(role));
            binding.insert(
                "subject".into(),
                json!({"type": subject.ty, "id": subject.id}),
            );
            if let Some(on) = &on {
                binding.insert("on".into(), json!({"type": on.ty, "id": on.id}));
            }
            bindings_json.push(Json::Object(binding));
            data.bindings.push(RBinding {
                role: role.to_string(),
                subject,
                on,
            });
        }
    }
    let data_json = serde_json::to_string_pretty(&json!({
        "entities": entities_json,
        "roles": bindings_json,
    }))
    .unwrap_or_default();

    // Requests.
    let now: Timestamp = rng
        .pick(&[
            "2026-03-02T08:30:00Z",
            "2026-03-02T14:00:00Z",
            "2026-03-07T23:59:00Z",
        ])
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let mut requests = Vec::new();
    for _ in 0..REQUESTS_PER_CASE {
        let subject = match rng.below(20) {
            0 => Uid::new("User", "ghost"),
            1 => Uid::new("Group", rng.pick(&GROUPS)),
            2 if typed => Uid::new("Robot", "r1"),
            _ => Uid::new("User", rng.pick(&USERS)),
        };
        let resource = match rng.below(20) {
            0 if tiers => Uid::new("Tier", rng.pick(&["gold", "silver", "bronze"])),
            0 => Uid::new("Photo", "nope"),
            1 => Uid::new("User", rng.pick(&USERS)),
            2..=9 => Uid::new("Album", rng.pick(&ALBUMS)),
            _ => Uid::new("Photo", rng.pick(&PHOTOS)),
        };
        let mut action_pool = actions.clone();
        if !declare_actions || rng.chance(5) {
            action_pool.push("other");
        }
        let action = rng.pick(&action_pool).to_string();
        // Declared properties and context must fit their declarations (or the request is
        // invalid); undeclared members are ignored.
        let typed_props = typed_caller && subject.ty == "User";
        let typed_context = typed_caller && actions[..4].contains(&action.as_str());
        let mut written_context: Vec<(String, Json)> = Vec::new();
        let mut subject_properties = BTreeMap::new();
        for (name, kind) in [("mfa", 0), ("dept", 1), ("level", 2)] {
            if rng.chance(50) {
                let value = if typed_props || rng.chance(80) {
                    match kind {
                        0 => RValue::Bool(rng.chance(50)),
                        1 => RValue::str(rng.pick(&STRINGS)),
                        _ => RValue::Int(*rng.pick(&INTS)),
                    }
                } else {
                    loose_value(&mut rng)
                };
                subject_properties.insert(name.to_string(), value);
            }
        }
        let mut action_properties = BTreeMap::new();
        if rng.chance(50) {
            action_properties.insert("soft".to_string(), RValue::Bool(rng.chance(50)));
        }
        let mut context = BTreeMap::new();
        let members = [
            ("mfa", 0),
            ("dept", 1),
            ("n", 2),
            ("who", 3),
            ("list", 4),
            ("when", 5),
            ("x-y", 2),
            ("rate", 6),
        ];
        for (name, kind) in members {
            if !rng.chance(50) {
                if rng.chance(10) {
                    // `null` means absent.
                    written_context.push((name.to_string(), Json::Null));
                }
                continue;
            }
            let (value, written) = if typed_context || rng.chance(80) {
                match kind {
                    0 => {
                        let b = rng.chance(50);
                        (RValue::Bool(b), json!(b))
                    }
                    1 => {
                        let s = *rng.pick(&STRINGS);
                        (RValue::str(s), json!(s))
                    }
                    2 => {
                        let i = *rng.pick(&INTS);
                        (RValue::Int(i), json!(i))
                    }
                    3 => {
                        let id = *rng.pick(&USERS);
                        let written = if typed_context && rng.chance(50) {
                            json!(id)
                        } else {
                            json!({"type": "User", "id": id})
                        };
                        (RValue::Entity(Uid::new("User", id)), written)
                    }
                    4 => {
                        let value = RValue::set(vec![
                            RValue::Entity(Uid::new("Group", rng.pick(&GROUPS))),
                            RValue::str(rng.pick(&STRINGS)),
                        ]);
                        let written = json_of(&value);
                        (value, written)
                    }
                    6 => {
                        let (text, value) = *rng.pick(&DECIMALS);
                        if !typed_context {
                            (RValue::str(text), json!(text))
                        } else if rng.chance(50) {
                            (RValue::Decimal(value), json!(text))
                        } else {
                            let written = json!({"__extn": {"fn": "decimal", "arg": text}});
                            (RValue::Decimal(value), written)
                        }
                    }
                    _ => {
                        let text = *rng.pick(&TIMES);
                        let value = if typed_context {
                            RValue::Time(text.parse().unwrap_or(Timestamp::UNIX_EPOCH))
                        } else {
                            RValue::str(text)
                        };
                        (value, json!(text))
                    }
                }
            } else {
                let value = loose_value(&mut rng);
                let written = json_of(&value);
                (value, written)
            };
            written_context.push((name.to_string(), written));
            // Declared context ignores members it does not declare.
            if !(typed_context && name == "list") {
                context.insert(name.to_string(), value);
            }
        }
        // Sometimes the subject also carries verified attributes (claims of a token).
        let mut verified = None;
        let mut claims = serde_json::Map::new();
        if subject.ty == "User" && rng.chance(35) {
            let mut fields = BTreeMap::new();
            for attr in &attrs["User"] {
                if !rng.chance(50) {
                    continue;
                }
                let (value, written) = if typed {
                    data_value(&mut rng, attr.ty, &roles)
                } else {
                    let value = dynamic_value(&mut rng, attr.ty, &roles);
                    let written = json_of(&value);
                    (value, written)
                };
                fields.insert(attr.name.to_string(), value);
                claims.insert(attr.name.to_string(), written);
            }
            if typed && rng.chance(30) {
                // Undeclared claims are dropped.
                claims.insert("undeclared".to_string(), json!("x"));
            }
            verified = Some(fields);
        }
        let record = |fields: &BTreeMap<String, RValue>| json_of(&RValue::Record(fields.clone()));
        let mut body = json!({
            "subject": {"type": subject.ty, "id": subject.id, "properties": record(&subject_properties)},
            "action": {"name": action, "properties": record(&action_properties)},
            "resource": {"type": resource.ty, "id": resource.id},
            "context": Json::Object(written_context.into_iter().collect()),
        });
        if verified.is_some()
            && let Some(members) = body.as_object_mut()
        {
            members.insert("_verified".to_string(), Json::Object(claims));
        }
        requests.push((
            body,
            RRequest {
                subject,
                action,
                resource,
                subject_properties,
                action_properties,
                resource_properties: BTreeMap::new(),
                context,
                now,
                verified,
            },
        ));
    }

    Case {
        typed,
        choices_read: rng.read,
        files,
        data_json,
        data,
        requests,
        hits,
    }
}

// ---------------------------------------------------------------------------------------------
// Running cases.

#[derive(Debug, Default)]
struct Stats {
    cases: usize,
    typed_cases: usize,
    /// Cases the checker finds errors in. They are still compiled and decided: the property
    /// is about the compiler and evaluator against the reference, and ill-typed policies are
    /// what produce run-time errors of every kind. Declaration errors would make the schema
    /// wrong, so the generator never makes them (asserted below).
    ill_typed: usize,
    decisions: usize,
    invalid: usize,
    allowed: usize,
    overriding_denies: usize,
    with_errors: usize,
    /// Applicable rules the graph's index and discriminators kept from evaluation.
    pruned: usize,
    /// Outcomes of discriminating first tests, by (test, outcome).
    first_tests: BTreeMap<(&'static str, &'static str), usize>,
    hits: BTreeSet<C>,
    /// The most choices one case read.
    most_choices_read: usize,
}

/// Tallies the first tests the compiler discriminates on, by shape and outcome, so the test
/// can assert each shape met matching, non-matching and (for `path == constant`) other-kind
/// requests.
fn tally_first_tests(reference: &Reference<'_>, request: &RRequest, stats: &mut Stats) {
    use warden::ast::{BinaryOp, ExprKind, Var};
    for (_, test, outcome) in reference.first_tests(request) {
        let ExprKind::Binary { op, lhs, rhs } = &test.kind else {
            continue;
        };
        let var = |e: &warden::ast::Expr| match e.kind {
            ExprKind::Var(Var::Subject) => Some("subject"),
            ExprKind::Var(Var::Resource) => Some("resource"),
            _ => None,
        };
        let is_entity = |e: &warden::ast::Expr| matches!(e.kind, ExprKind::Entity { .. });
        let literal_kind = |e: &warden::ast::Expr| match e.kind {
            ExprKind::Str(_) => Some("String"),
            ExprKind::Int(_) => Some("Int"),
            ExprKind::Bool(_) => Some("Bool"),
            _ => None,
        };
        let shape = match op {
            BinaryOp::In if is_entity(rhs) => match var(lhs) {
                Some("subject") => "subject in K",
                Some(_) => "resource in K",
                None => continue,
            },
            BinaryOp::Eq => {
                let (path, constant) = if literal_kind(rhs).is_some() || is_entity(rhs) {
                    (lhs, rhs)
                } else {
                    (rhs, lhs)
                };
                match (var(path), is_entity(constant), literal_kind(constant)) {
                    (Some("subject"), true, _) => "subject == K",
                    (Some(_), true, _) => "resource == K",
                    (None, false, Some(kind)) => {
                        if reference
                            .eval_expr(path, request)
                            .is_ok_and(|value| value.kind() != kind)
                        {
                            *stats
                                .first_tests
                                .entry(("path == c", "other kind"))
                                .or_default() += 1;
                        }
                        "path == c"
                    }
                    _ => continue,
                }
            }
            _ => continue,
        };
        let result = match outcome {
            Ok(RValue::Bool(true)) => "true",
            Ok(_) => "false",
            Err(_) => "error",
        };
        *stats.first_tests.entry((shape, result)).or_default() += 1;
    }
}

/// What the graph decided, in the reference's terms.
fn graph_outcome(
    program: &warden::program::Program,
    body: &Json,
    now: Timestamp,
    frame: &mut Frame,
) -> Result<ROutcome, String> {
    let id = |rule: warden::program::RuleId| {
        program
            .rule(rule)
            .map_or_else(|| format!("#{}", rule.0), |r| r.id.to_string())
    };
    let request = match request::read(program, body.to_string().as_bytes(), now) {
        Ok(mut request) => {
            if let Some(Json::Object(claims)) = body.get("_verified") {
                let subject_type = body
                    .pointer("/subject/type")
                    .and_then(Json::as_str)
                    .unwrap_or_default();
                let verified = request::Verified::decode(program, subject_type, claims)
                    .map_err(|e| format!("generated verified claims that do not decode: {e}"))?;
                request.verified = Some(std::sync::Arc::new(verified));
            }
            request
        }
        Err(request::RequestError::Invalid(_)) => {
            return Ok(ROutcome {
                invalid: true,
                ..ROutcome::default()
            });
        }
        Err(request::RequestError::Malformed(message)) => {
            return Err(format!("generated a malformed request: {message}"));
        }
    };
    let decision = decide_in(program, &request, frame);
    let candidates: BTreeSet<String> = frame.candidates().iter().map(|r| id(*r)).collect();
    Ok(ROutcome {
        invalid: false,
        allowed: decision.allowed,
        reasons: decision.reasons.iter().map(|r| id(*r)).collect(),
        errors: decision.errors.iter().map(|e| id(e.rule)).collect(),
        // The candidates the graph evaluated, in the slot the reference uses for applicable
        // allows (only read by the statistics).
        allows_held: candidates,
        ..ROutcome::default()
    })
}

/// One case; `frame` is shared by every case of a run, as a server thread's frame is shared
/// by every program it serves.
fn run_case(choices: Choices, stats: &mut Stats, frame: &mut Frame) -> Result<(), String> {
    let case = generate(choices);
    stats.most_choices_read = stats.most_choices_read.max(case.choices_read);
    let shown = || {
        let mut text = String::new();
        for (name, policy) in &case.files {
            let _ = write!(text, "--- {name} ---\n{policy}");
        }
        let _ = writeln!(text, "--- data ---\n{}", case.data_json);
        text
    };
    let mut files = Vec::new();
    for (name, text) in &case.files {
        let (parsed, problems) = syntax::parse(&SourceFile::new(name.as_str(), text.as_str()));
        if problems.iter().any(|d| d.is_error()) {
            let messages: Vec<String> = problems.iter().map(|d| d.render(false)).collect();
            return Err(format!(
                "generated policy does not parse:\n{}\n{}",
                messages.join("\n"),
                shown()
            ));
        }
        files.push(parsed);
    }
    stats.cases += 1;
    if case.typed {
        stats.typed_cases += 1;
    }
    let checked = check::check(&files);
    if checked.has_errors() {
        stats.ill_typed += 1;
        let declaration_error = checked.diagnostics.iter().any(|d| {
            d.is_error()
                && d.code().is_some_and(|code| {
                    code.contains("duplicate")
                        || code.contains("cycle")
                        || code.contains("undeclared")
                })
        });
        if declaration_error {
            return Err(format!(
                "the generated declarations do not check:\n{}",
                shown()
            ));
        }
    }
    let (store, problems) = load_store(
        &[SourceFile::new("data.json", case.data_json.clone())],
        &checked.schema,
    );
    if problems.iter().any(|d| d.is_error()) {
        let messages: Vec<String> = problems.iter().map(|d| d.render(false)).collect();
        return Err(format!(
            "generated data does not load:\n{}\n{}",
            messages.join("\n"),
            shown()
        ));
    }
    let program =
        compile::compile(&files, &checked.schema, store, "test".into()).map_err(|diagnostics| {
            let messages: Vec<String> = diagnostics.iter().map(|d| d.render(false)).collect();
            format!("does not compile:\n{}\n{}", messages.join("\n"), shown())
        })?;
    let reference = Reference {
        files: &files,
        schema: &checked.schema,
        data: &case.data,
    };
    stats.hits.extend(case.hits.iter().copied());
    for (body, request) in &case.requests {
        let expected = reference.decide(request);
        let got = graph_outcome(&program, body, request.now, frame)
            .map_err(|e| format!("{e}\n{}", shown()))?;
        let same = got.invalid == expected.invalid
            && got.allowed == expected.allowed
            && got.reasons == expected.reasons
            && got.errors == expected.errors;
        if !same {
            return Err(format!(
                "graph and reference disagree\n{}--- request ---\n{body}\n--- graph ---\n{got:?}\n--- reference ---\n{expected:?}\n",
                shown()
            ));
        }
        stats.decisions += 1;
        if expected.invalid {
            stats.invalid += 1;
            continue;
        }
        stats.pruned += reference
            .applicable(request)
            .difference(&got.allows_held)
            .count();
        tally_first_tests(&reference, request, stats);
        if expected.allowed {
            stats.allowed += 1;
        }
        if !expected.denies_held.is_empty() && !expected.allows_held.is_empty() {
            stats.overriding_denies += 1;
        }
        if !expected.errors.is_empty() {
            stats.with_errors += 1;
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

#[test]
fn graph_agrees_with_reference() {
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        // Each shrinking step generates, compiles and decides a case: enough steps to simplify
        // a failure, few enough to report it soon.
        max_shrink_iters: 1024,
        ..Config::default()
    };
    let stats = std::cell::RefCell::new(Stats::default());
    let frame = std::cell::RefCell::new(Frame::new());
    let mut runner = TestRunner::new(config);
    let choices = proptest::collection::vec(any::<u32>(), CHOICES).prop_map(Choices);
    let result = runner.run(&choices, |choices| {
        run_case(choices, &mut stats.borrow_mut(), &mut frame.borrow_mut())
            .map_err(TestCaseError::fail)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    let stats = stats.into_inner();
    eprintln!("{stats:?}");
    let missing: Vec<&C> = ALL_CONSTRUCTS
        .iter()
        .filter(|c| !stats.hits.contains(c))
        .collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
    // A case that reads past its choices gets the first option for the rest: raise CHOICES.
    assert!(
        stats.most_choices_read <= CHOICES,
        "a case read {} choices, more than the {CHOICES} drawn",
        stats.most_choices_read
    );
    // Well-typed policies must be a real part of the run too, not only chaos.
    assert!(
        stats.ill_typed * 10 <= stats.cases * 9,
        "the checker rejected {} of {} generated policies",
        stats.ill_typed,
        stats.cases
    );
    let valid = stats.decisions - stats.invalid;
    if cases() >= DEFAULT_CASES {
        assert!(
            stats.decisions >= 2000,
            "only {} decisions",
            stats.decisions
        );
    }
    let share = |n: usize| n as f64 / valid as f64;
    assert!(share(stats.allowed) >= 0.2, "allows: {stats:?}");
    assert!(
        share(stats.overriding_denies) >= 0.2,
        "overriding denies: {stats:?}"
    );
    assert!(share(stats.with_errors) >= 0.2, "errors: {stats:?}");
    assert!(
        stats.pruned > 0,
        "the index never kept an applicable rule out: {stats:?}"
    );
    for shape in [
        "resource in K",
        "resource == K",
        "subject in K",
        "subject == K",
        "path == c",
    ] {
        for outcome in ["true", "false"] {
            assert!(
                stats.first_tests.contains_key(&(shape, outcome)),
                "no `{shape}` first test came out {outcome}: {stats:?}"
            );
        }
    }
    assert!(
        stats.first_tests.contains_key(&("path == c", "other kind")),
        "no `path == constant` met a value of another kind: {stats:?}"
    );
}
