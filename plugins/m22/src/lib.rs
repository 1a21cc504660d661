//! # gradwire-m22 (in progress)
#![forbid(unsafe_code)]

pub mod design;
pub mod fit;
