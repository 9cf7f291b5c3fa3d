//! Importers: policies written for other engines, turned into a Warden policy directory.

pub mod cedar;
