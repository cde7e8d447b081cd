//! sim (work in progress).

pub mod live;
