//! The one integration-test binary (one link step for every suite).

mod check;
