//! Names, declarations, types and lints: everything that can be known about a policy directory
//! before any request arrives.

pub mod schema;

pub use schema::Schema;
